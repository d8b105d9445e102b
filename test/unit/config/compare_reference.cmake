# Runs config_docgen into OUT and fails when it differs from the committed EXPECTED file.
execute_process(COMMAND ${DOCGEN} OUTPUT_FILE ${OUT} RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "config_docgen failed (${rc})")
endif()
execute_process(COMMAND ${CMAKE_COMMAND} -E compare_files ${OUT} ${EXPECTED} RESULT_VARIABLE diff)
if(NOT diff EQUAL 0)
  message(FATAL_ERROR "${EXPECTED} is stale; regenerate it with:\n"
                      "  build/src/config/config_docgen > docs/config-reference.md\n"
                      "(generated copy: ${OUT})")
endif()
