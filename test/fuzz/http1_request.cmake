sentinel_add_fuzzer(http1_request SOURCE ${CMAKE_CURRENT_SOURCE_DIR}/http1_request_fuzz.cpp LIBS sentinel_http1)
