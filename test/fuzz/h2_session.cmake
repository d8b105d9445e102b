sentinel_add_fuzzer(h2_session SOURCE ${CMAKE_CURRENT_SOURCE_DIR}/h2_session_fuzz.cpp
                    LIBS sentinel_h2)
