sentinel_add_fuzzer(route_path SOURCE ${CMAKE_CURRENT_SOURCE_DIR}/route_path_fuzz.cpp LIBS sentinel_router)
