sentinel_add_fuzzer(http1_chunked SOURCE ${CMAKE_CURRENT_SOURCE_DIR}/http1_chunked_fuzz.cpp LIBS sentinel_http1)
