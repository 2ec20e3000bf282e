"""NumPy <-> C buffers. Arrays that are already C-contiguous float32/float64 (int32 for
labels) are passed by pointer, never copied; anything else is converted once."""
import ctypes

import numpy as np

from . import _capi

_DTYPE_CODE = {np.dtype(np.float32): _capi.NN_DTYPE_FLOAT32, np.dtype(np.float64): _capi.NN_DTYPE_FLOAT64}
_INT32 = np.iinfo(np.int32)


def ptr(a):
    """The address of an array's first element as a c_void_p (None for no data)."""
    return ctypes.c_void_p(a.ctypes.data) if a.size else None


def dtype_code(dtype):
    return _DTYPE_CODE[np.dtype(dtype)]


def as_matrix(x, name="x", fallback=np.float64):
    """x as a C-contiguous float32/float64 2-D array (no copy when it already is one)."""
    if not isinstance(x, np.ndarray):
        x = np.asarray(x)
    if x.dtype not in _DTYPE_CODE:
        if x.dtype.kind not in "biuf":
            raise ValueError(f"{name} must hold numbers; got dtype {x.dtype}")
        x = x.astype(fallback)
    if x.ndim != 2:
        hint = "; use x.reshape(1, -1) for one sample or x.reshape(-1, 1) for one feature" if x.ndim == 1 else ""
        raise ValueError(f"{name} must be 2-D (rows, features); got shape {x.shape}{hint}")
    if x.shape[0] == 0:
        raise ValueError(f"{name} has no rows (shape {x.shape})")
    return np.ascontiguousarray(x)


def as_targets(y, rows, n_outputs):
    """Targets for nn_fit / nn_evaluate: (array, target_type, target_cols).

    Integer (or bool) 1-D arrays are class indices; 2-D arrays are rows of n_outputs values
    (one-hot or real); a float 1-D array is a column for one-output models (which are
    regression models: a softmax model has at least 2 outputs).
    """
    if not isinstance(y, np.ndarray):
        y = np.asarray(y)
    if y.shape[:1] != (rows,):
        raise ValueError(f"y has {y.shape[0] if y.ndim else 0} rows, x has {rows}")
    if y.ndim == 1 and y.dtype.kind in "biu":
        if y.dtype != np.int32:
            if y.size and (y.min() < _INT32.min or y.max() > _INT32.max):
                raise ValueError("class labels must fit in int32")
            y = y.astype(np.int32)
        return np.ascontiguousarray(y), _capi.NN_TARGET_CLASS_INDEX, 1
    if y.ndim == 1 and y.dtype.kind == "f":
        if n_outputs != 1:
            raise ValueError("1-D float targets are only for one-output regression models; "
                             "give class labels as integers or targets as (rows, outputs)")
        y = y.reshape(-1, 1)
    if y.ndim != 2:
        raise ValueError(f"y must be 1-D class labels or 2-D (rows, outputs); got shape {y.shape}")
    if y.dtype.kind not in "biuf":
        raise ValueError(f"y must hold numbers; got dtype {y.dtype}")
    if y.dtype not in _DTYPE_CODE:
        y = y.astype(np.float64)
    y = np.ascontiguousarray(y)
    kind = _capi.NN_TARGET_ROWS_FLOAT32 if y.dtype == np.float32 else _capi.NN_TARGET_ROWS_FLOAT64
    return y, kind, y.shape[1]


def output(out, shape, dtype):
    """A result buffer: a new array, or the caller's `out` after checking it fits exactly."""
    if out is None:
        return np.empty(shape, dtype=dtype)
    if not isinstance(out, np.ndarray) or out.dtype != np.dtype(dtype) or out.shape != shape \
            or not out.flags.c_contiguous or not out.flags.writeable:
        raise ValueError(f"out must be a writeable C-contiguous {np.dtype(dtype)} array of shape {shape}")
    return out
