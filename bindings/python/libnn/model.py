"""libnn.Model: an owning wrapper over nn_model with NumPy in and out."""
import collections
import ctypes
import operator
import os

import numpy as np

from . import _capi
from ._arrays import as_matrix, as_targets, dtype_code, output, ptr
from ._errors import InvalidArgumentError, check
from .rng import _KIND_NAMES, DEVICE_KINDS, _Handle, _uint32, device_info_from

ACTIVATIONS = {"sigmoid": _capi.NN_ACTIVATION_SIGMOID, "relu": _capi.NN_ACTIVATION_RELU,
               "tanh": _capi.NN_ACTIVATION_TANH, "identity": _capi.NN_ACTIVATION_IDENTITY}
LOSSES = {"softmax_cross_entropy": _capi.NN_LOSS_SOFTMAX_CROSS_ENTROPY,
          "mean_squared_error": _capi.NN_LOSS_MEAN_SQUARED_ERROR,
          "mse": _capi.NN_LOSS_MEAN_SQUARED_ERROR}
INITS = {"normal": _capi.NN_INIT_NORMAL, "xavier": _capi.NN_INIT_XAVIER, "he": _capi.NN_INIT_HE}
DTYPES = {"float32": _capi.NN_DTYPE_FLOAT32, "float64": _capi.NN_DTYPE_FLOAT64}
STORAGE = {"model": _capi.NN_DTYPE_MODEL, "float16": _capi.NN_DTYPE_FLOAT16,
           "float32": _capi.NN_DTYPE_FLOAT32, "float64": _capi.NN_DTYPE_FLOAT64}

FitReport = collections.namedtuple(
    "FitReport", "epochs_run steps_run steps_per_epoch final_loss seconds device_kind device_index")
Evaluation = collections.namedtuple("Evaluation", "loss accuracy")
#: The layout of nn_loss_record, so loss_history() is filled in place.
LOSS_RECORD_DTYPE = np.dtype([("epoch", "<u8"), ("iteration", "<u8"),
                              ("steps_per_epoch", "<u8"), ("loss", "<f8")])
assert LOSS_RECORD_DTYPE.itemsize == ctypes.sizeof(_capi.nn_loss_record)


def _choice(name, value, table):
    key = np.dtype(value).name if name in ("dtype", "storage") and not isinstance(value, str) else value
    try:
        return table[key]
    except (KeyError, TypeError):
        raise ValueError(f"{name} must be one of {sorted(table)}; got {value!r}") from None


def _count(name, value):
    """A non-negative integer; refused here because ctypes would wrap -1 to 2**64-1."""
    try:
        v = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an integer; got {value!r}") from None
    if v < 0:
        raise ValueError(f"{name} must be non-negative; got {v}")
    return v


class Model(_Handle):
    """A multilayer perceptron: Affine -> activation -> ... -> Affine -> loss.

    Model([2, 10, 3]) is the book's chapter-1 net (sigmoid, softmax cross-entropy, 0.01*randn
    init, seed 1984) in float32; pass dtype="float64" to reproduce the book's run exactly.
    `rng` (a libnn.Rng) draws the initial weights from a shared stream instead of `seed`.
    """

    _destroy = staticmethod(_capi.nn_destroy)

    def __init__(self, layer_sizes, activation="sigmoid", loss="softmax_cross_entropy",
                 dtype="float32", init="normal", init_std=0.01, seed=1984, rng=None, device=None):
        sizes = [_count("layer size", s) for s in layer_sizes]
        desc = _capi.model_desc()
        arr = (ctypes.c_size_t * len(sizes))(*sizes)
        desc.n_layer_sizes = len(sizes)
        desc.layer_sizes = arr
        desc.hidden_activation = _choice("activation", activation, ACTIVATIONS)
        desc.loss = _choice("loss", loss, LOSSES)
        desc.dtype = _choice("dtype", dtype, DTYPES)
        desc.init = _choice("init", init, INITS)
        desc.init_std = float(init_std)
        desc.seed = _uint32(seed)
        out = _capi.nn_model_p()
        if rng is not None:
            with rng._lock:
                desc.rng = rng._handle
                check(_capi.nn_create(ctypes.byref(out), ctypes.byref(desc)))
        else:
            check(_capi.nn_create(ctypes.byref(out), ctypes.byref(desc)))
        self._adopt(out)
        if device is not None:
            self.set_device(device)

    def _adopt(self, handle):
        _Handle.__init__(self, handle)
        count = ctypes.c_size_t()
        check(_capi.nn_model_layer_count(handle, ctypes.byref(count)))
        sizes = (ctypes.c_size_t * count.value)()
        check(_capi.nn_model_layer_sizes(handle, sizes, count.value))
        self.layer_sizes = tuple(sizes)
        code = ctypes.c_int()
        check(_capi.nn_model_dtype(handle, ctypes.byref(code)))
        self.dtype = np.dtype(np.float64 if code.value == _capi.NN_DTYPE_FLOAT64 else np.float32)
        check(_capi.nn_param_count(handle, ctypes.byref(count)))
        self.param_count = count.value

    @classmethod
    def _from_handle(cls, handle):
        self = cls.__new__(cls)
        self._adopt(handle)
        return self

    n_inputs = property(lambda self: self.layer_sizes[0])
    n_outputs = property(lambda self: self.layer_sizes[-1])

    def __repr__(self):
        if self.closed:
            return "<libnn.Model (closed)>"
        return f"<libnn.Model {list(self.layer_sizes)} {self.dtype.name} on {self.device.name}>"

    # ---- training ---------------------------------------------------------------------
    def fit(self, x, y, epochs=None, batch_size=None, learning_rate=None, shuffle=None,
            report_interval=None, rng=None):
        """Minibatch SGD as the book's Trainer.fit; None means nn.h's default (10 epochs,
        batch 32, lr 0.01, shuffle on, a loss record every 20 steps). `y`: int class labels
        (rows,) or float targets (rows, outputs). Histories persist across calls. Returns a
        FitReport. On a bad argument nothing about the model changes."""
        x = as_matrix(x, fallback=self.dtype)
        y, target_type, target_cols = as_targets(y, x.shape[0], self.n_outputs)
        options = _capi.fit_options()
        if epochs is not None:
            options.epochs = _count("epochs", epochs)
        if batch_size is not None:
            options.batch_size = _count("batch_size", batch_size)
        if learning_rate is not None:
            options.learning_rate = float(learning_rate)
        if shuffle is not None:
            options.shuffle = 1 if shuffle else 0
        if report_interval is not None:
            options.report_interval = _count("report_interval", report_interval)
        report = _capi.fit_report()
        with self._lock:
            if rng is not None:
                with rng._lock:
                    options.rng = rng._handle
                    status = self._fit_call(x, y, target_type, target_cols, options, report)
            else:
                status = self._fit_call(x, y, target_type, target_cols, options, report)
        check(status)
        return FitReport(report.epochs_run, report.steps_run, report.steps_per_epoch,
                         report.final_loss, report.seconds,
                         _KIND_NAMES.get(report.device_kind, str(report.device_kind)),
                         report.device_index)

    def _fit_call(self, x, y, target_type, target_cols, options, report):
        return _capi.nn_fit(self._handle, ptr(x), dtype_code(x.dtype), x.shape[0], x.shape[1],
                            ptr(y), target_type, target_cols, ctypes.byref(options), ctypes.byref(report))

    def loss_history(self):
        """The Trainer's loss records as a structured array (epoch, iteration,
        steps_per_epoch, loss), oldest first."""
        return self._history(_capi.nn_get_loss_history, LOSS_RECORD_DTYPE)

    def epoch_losses(self):
        """Mean training loss of each completed epoch (float64), across all fit calls."""
        return self._history(_capi.nn_get_epoch_losses, np.float64)

    def _history(self, fn, dtype):
        count = ctypes.c_size_t()
        with self._lock:
            check(fn(self._handle, None, 0, ctypes.byref(count)))
            out = np.empty(count.value, dtype=dtype)
            check(fn(self._handle, ptr(out), out.size, ctypes.byref(count)))
        return out

    def reset_history(self):
        with self._lock:
            check(_capi.nn_reset_history(self._handle))

    # ---- inference --------------------------------------------------------------------
    def predict(self, x, out=None, dtype=None):
        """Raw scores of the last affine layer, (rows, outputs), in `dtype` (default: the
        model's). `out` may be a preallocated C-contiguous array to write into."""
        return self._predict(x, _capi.NN_OUTPUT_SCORES, out, dtype)

    def predict_proba(self, x, out=None, dtype=None):
        """Softmax probabilities (softmax cross-entropy models only)."""
        return self._predict(x, _capi.NN_OUTPUT_PROBABILITIES, out, dtype)

    def _predict(self, x, what, out, dtype):
        x = as_matrix(x, fallback=self.dtype)
        dt = self.dtype if dtype is None else np.dtype(dtype)
        if dt not in (np.float32, np.float64):
            raise ValueError(f"dtype must be float32 or float64; got {dt}")
        result = output(out, (x.shape[0], self.n_outputs), dt)
        with self._lock:
            check(_capi.nn_predict(self._handle, ptr(x), dtype_code(x.dtype), x.shape[0], x.shape[1],
                                   what, ptr(result), dtype_code(dt), result.size))
        return result

    def predict_classes(self, x, out=None):
        """Index of the first maximal score of each row (int32)."""
        x = as_matrix(x, fallback=self.dtype)
        result = output(out, (x.shape[0],), np.int32)
        with self._lock:
            check(_capi.nn_predict_classes(self._handle, ptr(x), dtype_code(x.dtype), x.shape[0],
                                           x.shape[1], ptr(result), result.size))
        return result

    def evaluate(self, x, y):
        """(loss, accuracy) over all rows; accuracy is NaN for regression models."""
        x = as_matrix(x, fallback=self.dtype)
        y, target_type, target_cols = as_targets(y, x.shape[0], self.n_outputs)
        loss, accuracy = ctypes.c_double(), ctypes.c_double()
        with self._lock:
            check(_capi.nn_evaluate(self._handle, ptr(x), dtype_code(x.dtype), x.shape[0], x.shape[1],
                                    ptr(y), target_type, target_cols, ctypes.byref(loss),
                                    ctypes.byref(accuracy)))
        return Evaluation(loss.value, accuracy.value)

    # ---- parameters -------------------------------------------------------------------
    def get_params(self):
        """Every parameter as float64 in nn.h's flat layout: per layer W (in x out) then b."""
        out = np.empty(self.param_count, dtype=np.float64)
        with self._lock:
            check(_capi.nn_get_params(self._handle, ptr(out), out.size))
        return out

    def set_params(self, params):
        """Replaces every parameter (same layout as get_params), rounded to the model's dtype."""
        p = np.ascontiguousarray(params, dtype=np.float64)
        if p.ndim != 1:
            raise ValueError(f"params must be 1-D; got shape {p.shape}")
        with self._lock:
            check(_capi.nn_set_params(self._handle, ptr(p), p.size))

    params = property(get_params, set_params)

    def weights(self):
        """The parameters as a list of (W, b) arrays, views into one get_params() copy."""
        flat, result, at = self.get_params(), [], 0
        for fan_in, fan_out in zip(self.layer_sizes, self.layer_sizes[1:]):
            w = flat[at:at + fan_in * fan_out].reshape(fan_in, fan_out)
            at += fan_in * fan_out
            result.append((w, flat[at:at + fan_out]))
            at += fan_out
        return result

    # ---- saving and loading -----------------------------------------------------------
    def _save_options(self, storage, include_training_state):
        o = _capi.save_options()
        o.storage = _choice("storage", storage, STORAGE)
        o.include_training_state = 1 if include_training_state else 0
        return o

    def save(self, path, storage="model", include_training_state=True):
        """Writes the model atomically to `path`. storage: "model" (lossless), "float16",
        "float32" or "float64"."""
        o = self._save_options(storage, include_training_state)
        with self._lock:
            check(_capi.nn_save(self._handle, os.fsencode(path), ctypes.byref(o)))

    def to_bytes(self, storage="model", include_training_state=True):
        """The model file's bytes (what save() would write)."""
        o = self._save_options(storage, include_training_state)
        size = ctypes.c_size_t()
        with self._lock:
            check(_capi.nn_save_to_buffer(self._handle, None, 0, ctypes.byref(size), ctypes.byref(o)))
            buf = ctypes.create_string_buffer(size.value)
            check(_capi.nn_save_to_buffer(self._handle, buf, size.value, ctypes.byref(size), ctypes.byref(o)))
        return buf.raw[:size.value]

    @classmethod
    def load(cls, path):
        out = _capi.nn_model_p()
        check(_capi.nn_load(ctypes.byref(out), os.fsencode(path)))
        return cls._from_handle(out)

    @classmethod
    def from_bytes(cls, data):
        buf = np.frombuffer(memoryview(data).cast("B"), dtype=np.uint8)
        out = _capi.nn_model_p()
        check(_capi.nn_load_from_buffer(ctypes.byref(out), ptr(buf), buf.size))
        return cls._from_handle(out)

    def __getstate__(self):
        return {"model": self.to_bytes()}

    def __setstate__(self, state):
        out = _capi.nn_model_p()
        buf = np.frombuffer(state["model"], dtype=np.uint8)
        check(_capi.nn_load_from_buffer(ctypes.byref(out), ptr(buf), buf.size))
        self._adopt(out)

    @property
    def metadata(self):
        """Metadata strings saved with the model: model.metadata["author"] = "me"."""
        return Metadata(self)

    # ---- devices ----------------------------------------------------------------------
    def set_device(self, kind="auto", index=0):
        """Moves the model: kind "cpu", "cuda", "reference" or "auto" (or "cuda:1").
        An explicit request that cannot be met raises DeviceUnavailableError and leaves
        the model where it was."""
        if isinstance(kind, str) and ":" in kind:
            kind, index = kind.split(":", 1)
            index = int(index)
        code = _choice("device", kind, DEVICE_KINDS)
        with self._lock:
            check(_capi.nn_set_device(self._handle, code, int(index)))
        return self.device

    @property
    def device(self):
        info = _capi.device_info()
        with self._lock:
            check(_capi.nn_get_device(self._handle, ctypes.byref(info)))
        return device_info_from(info)


class Metadata:
    """A dict-like view of a model's metadata (no listing: nn.h has no key enumeration)."""

    def __init__(self, model):
        self._model = model

    def __getitem__(self, key):
        k = key.encode()
        length = ctypes.c_size_t()
        m = self._model
        with m._lock:
            status = _capi.nn_get_metadata(m._handle, k, None, 0, ctypes.byref(length))
            if status == _capi.NN_ERR_INVALID_ARGUMENT:
                raise KeyError(key)
            check(status)
            buf = ctypes.create_string_buffer(length.value + 1)
            check(_capi.nn_get_metadata(m._handle, k, buf, len(buf), ctypes.byref(length)))
        return buf.raw[:length.value].decode("utf-8", "surrogateescape")

    def __setitem__(self, key, value):
        v = value.encode("utf-8", "surrogateescape") if isinstance(value, str) else bytes(value)
        with self._model._lock:
            check(_capi.nn_set_metadata(self._model._handle, key.encode(), v))

    def __delitem__(self, key):
        self[key]  # KeyError if absent
        with self._model._lock:
            check(_capi.nn_set_metadata(self._model._handle, key.encode(), None))

    def __contains__(self, key):
        try:
            self[key]
            return True
        except KeyError:
            return False

    def get(self, key, default=None):
        try:
            return self[key]
        except KeyError:
            return default
