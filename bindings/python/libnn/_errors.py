"""nn_status -> Python exceptions.

Every failure is a `libnn.Error` carrying `.status` (the int code), `.status_name` and
`.message` (the library's thread-local sentence). Each code has its own subclass, which
also derives from the built-in exception a Python caller would expect: bad arguments are
ValueErrors, missing memory a MemoryError, file trouble an OSError, and so on.
"""
from . import _capi


class Error(Exception):
    """A libnn call failed. `status` is the nn_status code, `message` the library's text."""

    status = None
    #: For CancelledError and DivergedError raised by a fit: the FitReport of the kept training.
    report = None

    def __init__(self, message, status=None):
        if status is not None:
            self.status = status
        self.message = message
        self.status_name = _capi.nn_status_string(self.status).decode() if self.status is not None else ""
        Exception.__init__(self, f"{message} [{self.status_name}]" if self.status_name else message)

    def __reduce__(self):
        return (type(self), (self.message, self.status))


Error.__module__ = "libnn"


def _make(name, status, *bases, doc):
    return type(name, (Error,) + bases, {"status": status, "__doc__": doc, "__module__": "libnn"})


NullPointerError = _make("NullPointerError", _capi.NN_ERR_NULL_POINTER, ValueError,
                         doc="A required pointer was NULL (a binding bug if you see it).")
InvalidArgumentError = _make("InvalidArgumentError", _capi.NN_ERR_INVALID_ARGUMENT, ValueError,
                             doc="An enum value or count the library does not accept.")
StructSizeError = _make("StructSizeError", _capi.NN_ERR_STRUCT_SIZE, RuntimeError,
                        doc="The binding and the library disagree on a struct's size.")
SizeOverflowError = _make("SizeOverflowError", _capi.NN_ERR_SIZE_OVERFLOW, ValueError,
                          doc="Sizes whose product does not fit in memory arithmetic.")
ShapeMismatchError = _make("ShapeMismatchError", _capi.NN_ERR_SHAPE_MISMATCH, ValueError,
                           doc="A matrix has the wrong number of columns or elements.")
LabelOutOfRangeError = _make("LabelOutOfRangeError", _capi.NN_ERR_LABEL_OUT_OF_RANGE, ValueError,
                             doc="A class index is negative or not below the number of outputs.")
NonFiniteError = _make("NonFiniteError", _capi.NN_ERR_NON_FINITE, ValueError,
                       doc="NaN, infinity, or a value the model's dtype cannot hold.")
BadHyperparameterError = _make("BadHyperparameterError", _capi.NN_ERR_BAD_HYPERPARAMETER, ValueError,
                               doc="A training option is out of range.")
BufferTooSmallError = _make("BufferTooSmallError", _capi.NN_ERR_BUFFER_TOO_SMALL, ValueError,
                            doc="An output buffer is smaller than the result.")
OutOfMemoryError = _make("OutOfMemoryError", _capi.NN_ERR_OUT_OF_MEMORY, MemoryError,
                         doc="An allocation failed; nothing was changed.")
DeviceUnavailableError = _make("DeviceUnavailableError", _capi.NN_ERR_DEVICE_UNAVAILABLE, RuntimeError,
                               doc="The requested device cannot be used; the message says why.")
BackendError = _make("BackendError", _capi.NN_ERR_BACKEND, RuntimeError,
                     doc="A backend plugin failed; the model keeps its last good state.")
UnsupportedError = _make("UnsupportedError", _capi.NN_ERR_UNSUPPORTED, NotImplementedError,
                         doc="Valid, but this model or build does not support it.")
InternalError = _make("InternalError", _capi.NN_ERR_INTERNAL, RuntimeError,
                      doc="A bug in libnn; please report the message.")
FileError = _make("FileError", _capi.NN_ERR_IO, OSError,
                  doc="A file could not be opened, read, written or renamed.")
CorruptModelError = _make("CorruptModelError", _capi.NN_ERR_CORRUPT, ValueError,
                          doc="Bytes that are not a valid libnn model.")
VersionError = _make("VersionError", _capi.NN_ERR_VERSION, ValueError,
                     doc="A model file newer than this library reads.")
CancelledError = _make("CancelledError", _capi.NN_ERR_CANCELLED,
                       doc="The progress callback stopped the fit. The training done before is kept "
                           "(weights of the last completed step, histories up to it); `.report` "
                           "describes it.")
DivergedError = _make("DivergedError", _capi.NN_ERR_DIVERGED, FloatingPointError,
                      doc="Training produced a non-finite loss (too large a learning rate). The fit "
                          "stopped before that step's update; `.report` describes what was kept.")

_BY_STATUS = {cls.status: cls for cls in (
    NullPointerError, InvalidArgumentError, StructSizeError, SizeOverflowError,
    ShapeMismatchError, LabelOutOfRangeError, NonFiniteError, BadHyperparameterError,
    BufferTooSmallError, OutOfMemoryError, DeviceUnavailableError, BackendError,
    UnsupportedError, InternalError, FileError, CorruptModelError, VersionError, CancelledError,
    DivergedError)}


def error_for(status):
    """The exception for a failed status, with the message of the last failure on this
    thread (ctypes calls and this read happen on the same OS thread)."""
    message = _capi.nn_last_error_message().decode("utf-8", "replace")
    cls = _BY_STATUS.get(status)
    if cls is None:
        return Error(message or f"libnn status {status}", status)
    return cls(message)


def check(status):
    if status != 0:
        raise error_for(status)
