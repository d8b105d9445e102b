sentinel_add_fuzzer(h2_response SOURCE ${CMAKE_CURRENT_SOURCE_DIR}/h2_response_fuzz.cpp
                    LIBS sentinel_h2)
