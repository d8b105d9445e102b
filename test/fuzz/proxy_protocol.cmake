sentinel_add_fuzzer(proxy_protocol SOURCE ${CMAKE_CURRENT_SOURCE_DIR}/proxy_protocol_fuzz.cpp
                    LIBS sentinel_net)
