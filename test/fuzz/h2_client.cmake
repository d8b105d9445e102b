sentinel_add_fuzzer(h2_client SOURCE ${CMAKE_CURRENT_SOURCE_DIR}/h2_client_fuzz.cpp
                    LIBS sentinel_h2)
