"""libnn: Python binding (ctypes) over libnn's C API, include/nn/nn.h.

    import libnn
    x, t = libnn.spiral(100, 3, seed=1984)
    with libnn.Model([2, 10, 3]) as model:
        model.fit(x, t, epochs=300, batch_size=30, learning_rate=1.0)
        print(model.evaluate(x, t).accuracy)          # 0.97

Model.fit takes every nn_fit_options field (optimizer="adam", early_stopping=True,
validation_data=(x_val, y_val), class_weight=..., callback=...); see its docstring.

libnn.so is found through $NN_LIBRARY (its path), then this package's directory, then the
system's library search. `libnn.MLPClassifier` / `libnn.MLPRegressor` (scikit-learn
estimators) are imported lazily, so scikit-learn is needed only when they are used.
"""
from . import _capi
from ._errors import (BackendError, BadHyperparameterError, BufferTooSmallError, CancelledError,
                      CorruptModelError, DeviceUnavailableError, DivergedError, Error, FileError,
                      InternalError, InvalidArgumentError, LabelOutOfRangeError, NonFiniteError,
                      NullPointerError, OutOfMemoryError, ShapeMismatchError, SizeOverflowError,
                      StructSizeError, UnsupportedError, VersionError)
from .model import Evaluation, FitReport, Model, Optimizer, Progress
from .rng import DeviceInfo, Rng, devices, spiral

__version__ = "0.2.0"
library_path = _capi.library_path


def version():
    """The loaded library's version string ("0.2.0")."""
    return _capi.nn_version_string().decode()


def __getattr__(name):
    if name in ("MLPClassifier", "MLPRegressor"):
        from . import sklearn as _sk
        return getattr(_sk, name)
    raise AttributeError(f"module 'libnn' has no attribute {name!r}")


__all__ = ["Model", "Rng", "spiral", "devices", "version", "DeviceInfo", "FitReport", "Evaluation",
           "Optimizer", "Progress", "CancelledError", "DivergedError",
           "MLPClassifier", "MLPRegressor", "Error", "NullPointerError", "InvalidArgumentError",
           "StructSizeError", "SizeOverflowError", "ShapeMismatchError", "LabelOutOfRangeError",
           "NonFiniteError", "BadHyperparameterError", "BufferTooSmallError", "OutOfMemoryError",
           "DeviceUnavailableError", "BackendError", "UnsupportedError", "InternalError",
           "FileError", "CorruptModelError", "VersionError"]
