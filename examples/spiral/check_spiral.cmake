# ctest example.spiral: cmake -DSPIRAL=… -DOUT_DIR=… [-DREFERENCE_LOSS_CSV=…] -P check_spiral.cmake
#
# Passes when the example exits 0, prints 300 loss records whose last line is the book's
# Trainer's last line, and writes two non-empty PNG files; when a run with --progress
# draws its bar on stderr and prints the same stdout, byte for byte; and when a run with
# --optimizer adam trains the spiral too.

foreach(var SPIRAL OUT_DIR)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "check_spiral.cmake needs -D${var}=…")
  endif()
endforeach()

# The book's last Trainer record (epoch 300, iter 1 of 10, loss 0.11). Taken from the
# reference CSV when it is there, so the check follows the reference, not a copy of it.
set(expected "| epoch 300 |  iter 1 / 10 | loss 0.11")
if(DEFINED REFERENCE_LOSS_CSV AND EXISTS "${REFERENCE_LOSS_CSV}")
  file(STRINGS "${REFERENCE_LOSS_CSV}" csv_lines)
  list(GET csv_lines -1 last)            # epoch,iter,time_s,loss,loss_exact
  string(REPLACE "," ";" fields "${last}")
  list(GET fields 0 epoch)
  list(GET fields 1 iter)
  list(GET fields 3 loss)
  set(expected "| epoch ${epoch} |  iter ${iter} / 10 | loss ${loss}")
endif()

file(REMOVE_RECURSE "${OUT_DIR}")
file(MAKE_DIRECTORY "${OUT_DIR}")
execute_process(COMMAND "${SPIRAL}" --dtype float64 --out-dir "${OUT_DIR}"
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
message("${out}")
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "spiral exited with ${rc}: ${err}")
endif()

string(REGEX MATCHALL "\\| epoch [0-9]+ \\|  iter [0-9]+ / [0-9]+ \\| loss [0-9.]+" records "${out}")
list(LENGTH records n_records)
if(NOT n_records EQUAL 300)
  message(FATAL_ERROR "expected 300 loss records, got ${n_records}")
endif()
list(GET records -1 last_record)
if(NOT last_record STREQUAL expected)
  message(FATAL_ERROR "last loss record is '${last_record}', the book's is '${expected}'")
endif()

foreach(png loss.png decision_boundary.png)
  set(path "${OUT_DIR}/${png}")
  if(NOT EXISTS "${path}")
    message(FATAL_ERROR "${png} was not written")
  endif()
  file(SIZE "${path}" size)
  file(READ "${path}" magic LIMIT 8 HEX)
  if(size EQUAL 0 OR NOT magic STREQUAL "89504e470d0a1a0a")
    message(FATAL_ERROR "${png} is empty or not a PNG (${size} bytes)")
  endif()
endforeach()

# The progress bar (nn_fit's progress callback) goes to stderr and leaves the book's
# lines on stdout untouched. (Without --progress it is drawn only on a terminal.)
execute_process(COMMAND "${SPIRAL}" --dtype float64 --out-dir "${OUT_DIR}" --no-plot --progress
                RESULT_VARIABLE rc OUTPUT_VARIABLE out_progress ERROR_VARIABLE err_progress)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "spiral --progress exited with ${rc}: ${err_progress}")
endif()
if(NOT out_progress STREQUAL out)
  message(FATAL_ERROR "spiral --progress printed another stdout:\n${out_progress}")
endif()
if(NOT err_progress MATCHES "\\[#+\\] epoch 300 / 300 \\| loss 0\\.[0-9]+ \\| [0-9.]+ s\n$")
  message(FATAL_ERROR "spiral --progress drew no finished bar on stderr: '${err_progress}'")
endif()
if(err MATCHES "epoch")
  message(FATAL_ERROR "spiral drew a progress bar on a stderr that is not a terminal: '${err}'")
endif()

# Another of the book's optimizers, through --optimizer.
execute_process(COMMAND "${SPIRAL}" --dtype float64 --out-dir "${OUT_DIR}" --no-plot --optimizer adam
                RESULT_VARIABLE rc OUTPUT_VARIABLE out_adam ERROR_VARIABLE err_adam)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "spiral --optimizer adam exited with ${rc}: ${err_adam}")
endif()
string(REGEX MATCHALL "\\| epoch [0-9]+ \\|  iter [0-9]+ / [0-9]+ \\| loss [0-9.]+" records "${out_adam}")
list(LENGTH records n_records)
if(NOT n_records EQUAL 300 OR NOT out_adam MATCHES "accuracy 0\\.9[0-9] .*optimizer adam, lr 0\\.02")
  message(FATAL_ERROR "spiral --optimizer adam: ${n_records} records, or no accuracy above 0.9:\n${out_adam}")
endif()
message(STATUS "example.spiral: '${expected}' and both PNGs present; --progress and --optimizer adam")
