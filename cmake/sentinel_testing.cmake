# Helpers shared by every test folder.

# sentinel_add_unit_test(<target> SOURCES ... LIBS ...)
# Registers each GoogleTest case with CTest, labelled `unit`.
function(sentinel_add_unit_test target)
  cmake_parse_arguments(arg "" "" "SOURCES;LIBS" ${ARGN})
  add_executable(${target} ${arg_SOURCES})
  target_link_libraries(${target} PRIVATE ${arg_LIBS} GTest::gtest GTest::gmock GTest::gtest_main)
  gtest_discover_tests(${target} TEST_PREFIX "${target}." PROPERTIES LABELS unit
                       DISCOVERY_TIMEOUT 60)
endfunction()

# sentinel_add_fuzzer(<name> SOURCE file LIBS ...)
# With SENTINEL_FUZZ (clang) the target is a libFuzzer binary; otherwise it links a small
# replay driver. Either way CTest replays the committed corpus in test/fuzz/corpus/<name>/.
function(sentinel_add_fuzzer name)
  cmake_parse_arguments(arg "" "SOURCE" "LIBS" ${ARGN})
  set(target fuzz_${name})
  if(SENTINEL_FUZZ)
    add_executable(${target} ${arg_SOURCE})
    target_compile_options(${target} PRIVATE -fsanitize=fuzzer)
    target_link_options(${target} PRIVATE -fsanitize=fuzzer)
    set(corpus ${PROJECT_SOURCE_DIR}/test/fuzz/corpus/${name})
    add_test(NAME fuzz.${name}.replay COMMAND ${target} -runs=0 ${corpus})
  else()
    add_executable(${target} ${arg_SOURCE} ${PROJECT_SOURCE_DIR}/test/fuzz/replay_main.cpp)
    add_test(NAME fuzz.${name}.replay
             COMMAND ${target} ${PROJECT_SOURCE_DIR}/test/fuzz/corpus/${name})
  endif()
  target_link_libraries(${target} PRIVATE ${arg_LIBS})
  set_tests_properties(fuzz.${name}.replay PROPERTIES LABELS fuzz)
endfunction()
