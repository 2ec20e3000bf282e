'use strict';
// nn_status -> JS exceptions: every failed call throws a LibnnError with the status code,
// its name ("NN_ERR_SHAPE_MISMATCH") and the library's thread-local message.
const { fn } = require('./ffi');

const STATUS = Object.freeze({
  OK: 0, NULL_POINTER: 1, INVALID_ARGUMENT: 2, STRUCT_SIZE: 3, SIZE_OVERFLOW: 4, SHAPE_MISMATCH: 5,
  LABEL_OUT_OF_RANGE: 6, NON_FINITE: 7, BAD_HYPERPARAMETER: 8, BUFFER_TOO_SMALL: 9,
  OUT_OF_MEMORY: 10, DEVICE_UNAVAILABLE: 11, BACKEND: 12, UNSUPPORTED: 13, INTERNAL: 14, IO: 15,
  CORRUPT: 16, VERSION: 17,
});
const NAMES = Object.fromEntries(Object.entries(STATUS).map(([k, v]) => [v, k === 'OK' ? 'NN_OK' : `NN_ERR_${k}`]));

class LibnnError extends Error {
  constructor(status, message) {
    super(`${message} [${NAMES[status] || `status ${status}`}]`);
    this.name = 'LibnnError';
    this.status = status;                       // the nn_status code
    this.code = NAMES[status] || String(status); // "NN_ERR_SHAPE_MISMATCH"
    this.detail = message;                       // nn_last_error_message()
    this.statusText = fn.nn_status_string(status);
  }
}

// Reads the message on the same thread right after the failing call (koffi's sync calls
// run on the JS thread, so the thread-local text is the call's own).
function check(status) {
  if (status !== 0) throw new LibnnError(status, fn.nn_last_error_message());
}

module.exports = { LibnnError, STATUS, check };
