# KDL parser: parse, and on success check print -> parse -> print is a fixed point.
sentinel_add_fuzzer(kdl SOURCE ${CMAKE_CURRENT_SOURCE_DIR}/kdl_fuzz.cpp LIBS sentinel_kdl)
