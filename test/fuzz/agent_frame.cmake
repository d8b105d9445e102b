sentinel_add_fuzzer(agent_frame SOURCE ${CMAKE_CURRENT_SOURCE_DIR}/agent_frame_fuzz.cpp LIBS sentinel_agent)
