# Runs a libFuzzer binary for ctest (cmake -P):
#   MODE=regressions: each file of INPUT_DIRS once (libFuzzer runs file arguments once);
#   MODE=fuzz:        SECONDS of fuzzing from a scratch copy of INPUT_DIRS, one job.
# FUZZER: the binary; WORK_DIR: scratch space in the build tree (emptied first).
foreach(_v FUZZER MODE INPUT_DIRS WORK_DIR)
  if(NOT DEFINED ${_v})
    message(FATAL_ERROR "run_fuzzer.cmake: ${_v} is not set")
  endif()
endforeach()

file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}/artifacts")

set(_inputs)
foreach(_dir IN LISTS INPUT_DIRS)
  file(GLOB _files LIST_DIRECTORIES false "${_dir}/*")
  foreach(_f IN LISTS _files)
    get_filename_component(_name "${_f}" NAME)
    if(NOT _name MATCHES "^\\." AND NOT _name MATCHES "^README")  # .gitkeep, README.md
      list(APPEND _inputs "${_f}")
    endif()
  endforeach()
endforeach()
list(LENGTH _inputs _count)

if(MODE STREQUAL "regressions")
  if(_count EQUAL 0)
    message(FATAL_ERROR "no inputs in ${INPUT_DIRS}")
  endif()
  message(STATUS "running ${_count} inputs once")
  execute_process(COMMAND "${FUZZER}" "-artifact_prefix=${WORK_DIR}/artifacts/" ${_inputs}
                  RESULT_VARIABLE _rc)
elseif(MODE STREQUAL "fuzz")
  if(NOT DEFINED SECONDS)
    set(SECONDS 60)
  endif()
  file(MAKE_DIRECTORY "${WORK_DIR}/corpus")
  if(_count GREATER 0)
    file(COPY ${_inputs} DESTINATION "${WORK_DIR}/corpus")
  endif()
  message(STATUS "fuzzing for ${SECONDS} s from ${_count} seeds (scratch corpus: ${WORK_DIR}/corpus)")
  # -jobs=1: one fuzzing job in a child process, its output in fuzz-0.log (printed below).
  execute_process(COMMAND "${FUZZER}" -max_total_time=${SECONDS} -rss_limit_mb=2048 -jobs=1
                          -print_final_stats=1 "-artifact_prefix=${WORK_DIR}/artifacts/" "${WORK_DIR}/corpus"
                  WORKING_DIRECTORY "${WORK_DIR}"
                  RESULT_VARIABLE _rc)
  if(EXISTS "${WORK_DIR}/fuzz-0.log")
    file(READ "${WORK_DIR}/fuzz-0.log" _log)
    string(LENGTH "${_log}" _len)
    if(_rc EQUAL 0 AND _len GREATER 6000)
      math(EXPR _from "${_len} - 6000")
      string(SUBSTRING "${_log}" ${_from} -1 _log)  # the end: final stats
    endif()
    message("${_log}")
  endif()
else()
  message(FATAL_ERROR "run_fuzzer.cmake: MODE is '${MODE}', not regressions or fuzz")
endif()

file(GLOB _found "${WORK_DIR}/artifacts/*")
if(MODE STREQUAL "regressions" AND NOT _rc EQUAL 0)
  message(FATAL_ERROR "the fuzzer failed (exit ${_rc}) on a saved input: the last \"Running:\" line above names it")
elseif(NOT _rc EQUAL 0 OR _found)
  message(FATAL_ERROR "the fuzzer failed (exit ${_rc}); inputs that broke it: ${_found}\n"
                      "Copy each to tests/fuzz/regressions/ so it stays a regression test.")
endif()
