'use strict';
// nn_status -> JS exceptions: every failed call throws a LibnnError with the status code,
// its name ("NN_ERR_SHAPE_MISMATCH") and the library's thread-local message. A fit stopped
// by its progress callback throws a CancelledError, one that diverged a DivergedError
// (both LibnnErrors, with `.report`: the training that was kept).
const { fn } = require('./ffi');

const STATUS = Object.freeze({
  OK: 0, NULL_POINTER: 1, INVALID_ARGUMENT: 2, STRUCT_SIZE: 3, SIZE_OVERFLOW: 4, SHAPE_MISMATCH: 5,
  LABEL_OUT_OF_RANGE: 6, NON_FINITE: 7, BAD_HYPERPARAMETER: 8, BUFFER_TOO_SMALL: 9,
  OUT_OF_MEMORY: 10, DEVICE_UNAVAILABLE: 11, BACKEND: 12, UNSUPPORTED: 13, INTERNAL: 14, IO: 15,
  CORRUPT: 16, VERSION: 17, CANCELLED: 18, DIVERGED: 19,
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

/** The progress callback stopped the fit; the training before is kept (`.report`). */
class CancelledError extends LibnnError {
  constructor(status, message) { super(status, message); this.name = 'CancelledError'; this.report = null; }
}

/** The loss became non-finite (too large a learning rate); the fit stopped before that
 *  step's update and kept the training before it (`.report`). */
class DivergedError extends LibnnError {
  constructor(status, message) { super(status, message); this.name = 'DivergedError'; this.report = null; }
}

const CLASSES = { [STATUS.CANCELLED]: CancelledError, [STATUS.DIVERGED]: DivergedError };

// The exception for a failed status, with the message read on the same thread right after
// the failing call (koffi's sync calls run on the JS thread, so the thread-local text is
// the call's own).
function errorFor(status) {
  const Cls = CLASSES[status] || LibnnError;
  return new Cls(status, fn.nn_last_error_message());
}

function check(status) {
  if (status !== 0) throw errorFor(status);
}

module.exports = { LibnnError, CancelledError, DivergedError, STATUS, check, errorFor };
