sentinel_add_fuzzer(http1_response SOURCE ${CMAKE_CURRENT_SOURCE_DIR}/http1_response_fuzz.cpp LIBS sentinel_http1)
