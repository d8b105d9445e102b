sentinel_add_fuzzer(route_match SOURCE ${CMAKE_CURRENT_SOURCE_DIR}/route_match_fuzz.cpp LIBS sentinel_router)
