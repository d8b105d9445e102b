sentinel_add_fuzzer(websocket_frame SOURCE ${CMAKE_CURRENT_SOURCE_DIR}/websocket_frame_fuzz.cpp
                    LIBS sentinel_websocket)
