"""libnn.Model: an owning wrapper over nn_model with NumPy in and out."""
import collections
import ctypes
import enum
import operator
import os

import numpy as np

from . import _capi
from ._arrays import as_matrix, as_targets, dtype_code, output, ptr
from ._errors import InvalidArgumentError, ShapeMismatchError, check, error_for
from .rng import _KIND_NAMES, DEVICE_KINDS, _Handle, _uint32, device_info_from

ACTIVATIONS = {"sigmoid": _capi.NN_ACTIVATION_SIGMOID, "relu": _capi.NN_ACTIVATION_RELU,
               "tanh": _capi.NN_ACTIVATION_TANH, "identity": _capi.NN_ACTIVATION_IDENTITY}
LOSSES = {"softmax_cross_entropy": _capi.NN_LOSS_SOFTMAX_CROSS_ENTROPY,
          "mean_squared_error": _capi.NN_LOSS_MEAN_SQUARED_ERROR,
          "mse": _capi.NN_LOSS_MEAN_SQUARED_ERROR}
INITS = {"normal": _capi.NN_INIT_NORMAL, "xavier": _capi.NN_INIT_XAVIER, "he": _capi.NN_INIT_HE}
DTYPES = {"float32": _capi.NN_DTYPE_FLOAT32, "float64": _capi.NN_DTYPE_FLOAT64}
PRECISIONS = {"strict": _capi.NN_PRECISION_STRICT, "tf32": _capi.NN_PRECISION_TF32,
              "float16": _capi.NN_PRECISION_FLOAT16, "bfloat16": _capi.NN_PRECISION_BFLOAT16}
_PRECISION_NAMES = {v: k for k, v in PRECISIONS.items()}
STORAGE = {"model": _capi.NN_DTYPE_MODEL, "float16": _capi.NN_DTYPE_FLOAT16,
           "float32": _capi.NN_DTYPE_FLOAT32, "float64": _capi.NN_DTYPE_FLOAT64}

OPTIMIZERS = {"sgd": _capi.NN_OPTIMIZER_SGD, "momentum": _capi.NN_OPTIMIZER_MOMENTUM,
              "nesterov": _capi.NN_OPTIMIZER_NESTEROV, "adagrad": _capi.NN_OPTIMIZER_ADAGRAD,
              "rmsprop": _capi.NN_OPTIMIZER_RMSPROP, "adam": _capi.NN_OPTIMIZER_ADAM}


class Optimizer(enum.IntEnum):
    """nn_optimizer: the update rules of the book's common/optimizer.py."""
    SGD = _capi.NN_OPTIMIZER_SGD
    MOMENTUM = _capi.NN_OPTIMIZER_MOMENTUM
    NESTEROV = _capi.NN_OPTIMIZER_NESTEROV
    ADAGRAD = _capi.NN_OPTIMIZER_ADAGRAD
    RMSPROP = _capi.NN_OPTIMIZER_RMSPROP
    ADAM = _capi.NN_OPTIMIZER_ADAM


Optimizer.__module__ = "libnn"

FitReport = collections.namedtuple(
    "FitReport", "epochs_run steps_run steps_per_epoch final_loss seconds device_kind device_index "
                 "stopped_early best_epoch best_loss final_val_loss final_val_accuracy")
FitReport.__doc__ = """What one fit call did (nn_fit_report). best_epoch/best_loss come with early
stopping (0 / NaN without), final_val_loss/final_val_accuracy with validation (NaN without)."""
Evaluation = collections.namedtuple("Evaluation", "loss accuracy")
#: What a progress callback receives: event is "report" (a loss record was taken; loss is the
#: mean since the previous record) or "epoch_end" (loss is the epoch's mean); epoch is
#: 1-based over the model's life, iteration 1-based within the epoch; val_loss and
#: val_accuracy are those of the latest validated epoch (NaN when none); elapsed is in
#: seconds since the fit call started.
Progress = collections.namedtuple(
    "Progress", "event epoch iteration steps_per_epoch loss val_loss val_accuracy elapsed")
_EVENTS = {_capi.NN_PROGRESS_REPORT: "report", _capi.NN_PROGRESS_EPOCH_END: "epoch_end"}
#: The layout of nn_loss_record, so loss_history() is filled in place.
LOSS_RECORD_DTYPE = np.dtype([("epoch", "<u8"), ("iteration", "<u8"),
                              ("steps_per_epoch", "<u8"), ("loss", "<f8")])
assert LOSS_RECORD_DTYPE.itemsize == ctypes.sizeof(_capi.nn_loss_record)
#: The layout of nn_epoch_record, so epoch_history() is filled in place.
EPOCH_RECORD_DTYPE = np.dtype([("epoch", "<u8"), ("loss", "<f8"), ("val_loss", "<f8"),
                               ("val_accuracy", "<f8")])
assert EPOCH_RECORD_DTYPE.itemsize == ctypes.sizeof(_capi.nn_epoch_record)
_INT32 = np.iinfo(np.int32)


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


def _int32(name, value):
    """An int that fits nn.h's int32 fields (range checks beyond that are the library's)."""
    try:
        v = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an integer; got {value!r}") from None
    if not _INT32.min <= v <= _INT32.max:
        raise ValueError(f"{name} must fit in int32; got {v}")
    return v


def _optimizer(value):
    """A name ("adam", any case), an Optimizer or an int. Unknown ints go to the library,
    which refuses them with its own message."""
    if isinstance(value, str):
        try:
            return OPTIMIZERS[value.lower()]
        except KeyError:
            raise ValueError(f"optimizer must be one of {list(OPTIMIZERS)}; got {value!r}") from None
    return _int32("optimizer", value)


def _real(name, value):
    """A float for a double field; range checks are the library's (so its message is shown)."""
    try:
        return float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a real number; got {value!r}") from None


def _progress(p):
    return Progress(_EVENTS.get(p.event, p.event), p.epoch, p.iteration, p.steps_per_epoch, p.loss,
                    p.val_loss, p.val_accuracy, p.elapsed_seconds)


def _fit_report(r):
    return FitReport(r.epochs_run, r.steps_run, r.steps_per_epoch, r.final_loss, r.seconds,
                     _KIND_NAMES.get(r.device_kind, str(r.device_kind)), r.device_index,
                     bool(r.stopped_early), r.best_epoch, r.best_loss, r.final_val_loss,
                     r.final_val_accuracy)


class _Trampoline:
    """The C progress callback around a Python callable. A Python exception cannot cross the
    C frames of nn_fit, so the trampoline stores it and returns 1 (stop); fit() re-raises it
    after nn_fit has returned. The CFUNCTYPE object lives as long as this object, which
    fit() holds for the whole call."""

    def __init__(self, callback):
        if not callable(callback):
            raise TypeError(f"callback must be callable; got {callback!r}")
        self.callback = callback
        self.error = None
        self.c_function = _capi.nn_progress_fn(self._call)

    def _call(self, progress, _user):
        try:
            return 1 if self.callback(_progress(progress.contents)) else 0
        except BaseException as e:  # KeyboardInterrupt too: it stops the fit cleanly
            self.error = e
            return 1


class Model(_Handle):
    """A multilayer perceptron: Affine -> activation -> ... -> Affine -> loss.

    Model([2, 10, 3]) is the book's chapter-1 net (sigmoid, softmax cross-entropy, 0.01*randn
    init, seed 1984) in float32; pass dtype="float64" to reproduce the book's run exactly.
    `rng` (a libnn.Rng) draws the initial weights from a shared stream instead of `seed`.
    """

    _destroy = staticmethod(_capi.nn_destroy)

    def __init__(self, layer_sizes, activation="sigmoid", loss="softmax_cross_entropy",
                 dtype="float32", init="normal", init_std=0.01, seed=1984, rng=None, device=None,
                 precision="strict"):
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
        if precision != "strict":
            self.precision = precision
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
            report_interval=None, rng=None, *, optimizer=None, momentum=None, decay_rate=None,
            beta1=None, beta2=None, epsilon=None, max_grad_norm=None, weight_decay=None,
            class_weight=None, validation_data=None, validation_fraction=None, early_stopping=None,
            patience=None, min_delta=None, restore_best=None, callback=None):
        """Trains as the book's Trainer.fit; None means nn.h's default (10 epochs, batch 32,
        lr 0.01, shuffle on, a loss record every 20 steps, plain SGD). `y`: int class labels
        (rows,) or float targets (rows, outputs). Returns a FitReport.

        optimizer: "sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam" (or an
        libnn.Optimizer), with momentum (0.9), decay_rate (RMSprop, 0.99), beta1 (0.9),
        beta2 (0.999) and epsilon (1e-7). Adam's book default lr is 0.001: set learning_rate.
        max_grad_norm: clip by global norm (0: none); weight_decay: L2 lambda on the weights.
        class_weight: one weight per output class, or a dict {class index: weight} (others 1).
        validation_data=(x_val, y_val), or validation_fraction of the rows held out (split by
        the fit's stream): validation loss and accuracy per epoch, see epoch_history().
        early_stopping with patience (10), min_delta (0) and restore_best (True).
        callback(progress) is called at every loss record and epoch end with a
        libnn.Progress; a truthy return stops the fit with CancelledError. An exception raised
        by the callback also stops it and is re-raised here. The callback must not use this
        model (RuntimeError).

        Histories, the epoch counter and the optimizer state persist across calls (see
        reset_history, reset_optimizer). On a bad argument nothing about the model changes.
        CancelledError and DivergedError keep the training done before them; their `.report`
        says how much.
        """
        x = as_matrix(x, fallback=self.dtype)
        y, target_type, target_cols = as_targets(y, x.shape[0], self.n_outputs)
        options = _capi.fit_options()
        if epochs is not None:
            options.epochs = _count("epochs", epochs)
        if batch_size is not None:
            options.batch_size = _count("batch_size", batch_size)
        if learning_rate is not None:
            options.learning_rate = _real("learning_rate", learning_rate)
        if shuffle is not None:
            options.shuffle = 1 if shuffle else 0
        if report_interval is not None:
            options.report_interval = _count("report_interval", report_interval)
        if optimizer is not None:
            options.optimizer = _optimizer(optimizer)
        for name, value in (("momentum", momentum), ("decay_rate", decay_rate), ("beta1", beta1),
                            ("beta2", beta2), ("epsilon", epsilon), ("max_grad_norm", max_grad_norm),
                            ("weight_decay", weight_decay), ("validation_fraction", validation_fraction),
                            ("min_delta", min_delta)):
            if value is not None:
                setattr(options, name, _real(name, value))
        keep = []  # arrays options points into, alive until nn_fit returns
        if class_weight is not None:
            weights = self._class_weights(class_weight)
            keep.append(weights)
            options.class_weights = weights.ctypes.data if weights.size else None
            options.n_class_weights = weights.size
        if validation_data is not None:
            try:
                vx, vy = validation_data
            except (TypeError, ValueError):
                raise TypeError("validation_data must be a pair (x_val, y_val)") from None
            vx = as_matrix(vx, name="validation x", fallback=self.dtype)
            vy, vtype, vcols = as_targets(vy, vx.shape[0], self.n_outputs)
            keep += [vx, vy]
            options.val_x, options.val_x_dtype, options.val_rows = vx.ctypes.data, dtype_code(vx.dtype), vx.shape[0]
            options.val_cols = vx.shape[1]
            options.val_targets, options.val_target_type, options.val_target_cols = vy.ctypes.data, vtype, vcols
        if early_stopping is not None:
            options.early_stopping = 1 if early_stopping else 0
        if patience is not None:
            options.patience = _int32("patience", patience)
        if restore_best is not None:
            options.restore_best = 1 if restore_best else 0
        trampoline = None
        if callback is not None:
            trampoline = _Trampoline(callback)
            options.progress = trampoline.c_function
        report = _capi.fit_report()
        with self._lock:
            if rng is not None:
                with rng._lock:
                    options.rng = rng._handle
                    rng._busy = True
                    try:
                        status = self._fit_call(x, y, target_type, target_cols, options, report)
                    finally:
                        rng._busy = False
            else:
                status = self._fit_call(x, y, target_type, target_cols, options, report)
        del keep
        if trampoline is not None and trampoline.error is not None:
            error, trampoline.error = trampoline.error, None
            raise error  # the callback's own exception, with its traceback
        if status != _capi.NN_OK:
            err = error_for(status)
            if status in (_capi.NN_ERR_CANCELLED, _capi.NN_ERR_DIVERGED):
                err.report = _fit_report(report)
            raise err
        return _fit_report(report)

    def _class_weights(self, class_weight):
        """A sequence of per-class weights (length checked by the library), or a dict
        {class index: weight} with the classes not named weighted 1."""
        if isinstance(class_weight, dict):
            weights = np.ones(self.n_outputs, dtype=np.float64)
            for k, w in class_weight.items():
                try:
                    i = operator.index(k)
                except TypeError:
                    raise TypeError(f"class_weight keys must be class indices; got {k!r}") from None
                if not 0 <= i < self.n_outputs:
                    raise ValueError(f"class_weight has class {i}; the model has classes "
                                     f"0..{self.n_outputs - 1}")
                weights[i] = _real(f"class_weight[{i}]", w)
            return weights
        weights = np.ascontiguousarray(class_weight, dtype=np.float64)
        if weights.ndim != 1:
            raise ValueError(f"class_weight must be 1-D (one weight per class) or a dict; got shape "
                             f"{weights.shape}")
        return weights

    def _fit_call(self, x, y, target_type, target_cols, options, report):
        handle = self._handle
        self._busy = True  # the callback runs on this thread, inside the lock: see _Handle
        try:
            return _capi.nn_fit(handle, ptr(x), dtype_code(x.dtype), x.shape[0], x.shape[1], ptr(y),
                                target_type, target_cols, ctypes.byref(options), ctypes.byref(report))
        finally:
            self._busy = False

    def loss_history(self):
        """The Trainer's loss records as a structured array (epoch, iteration,
        steps_per_epoch, loss), oldest first."""
        return self._history(_capi.nn_get_loss_history, LOSS_RECORD_DTYPE)

    def epoch_losses(self):
        """Mean training loss of each completed epoch (float64), across all fit calls."""
        return self._history(_capi.nn_get_epoch_losses, np.float64)

    def epoch_history(self):
        """One record per completed epoch, across fit calls, as a structured array (epoch,
        loss, val_loss, val_accuracy); the validation figures are NaN for epochs trained
        without validation (and val_accuracy for regression)."""
        return self._history(_capi.nn_get_epoch_history, EPOCH_RECORD_DTYPE)

    history = property(epoch_history, doc="The epoch history: history['loss'], history['val_loss'], ...")

    def _history(self, fn, dtype):
        count = ctypes.c_size_t()
        with self._lock:
            check(fn(self._handle, None, 0, ctypes.byref(count)))
            out = np.empty(count.value, dtype=dtype)
            check(fn(self._handle, ptr(out), out.size, ctypes.byref(count)))
        return out

    def reset_history(self):
        """Clears both histories and the epoch counter (a fresh Trainer); keeps the
        optimizer state."""
        with self._lock:
            check(_capi.nn_reset_history(self._handle))

    def reset_optimizer(self):
        """Drops the optimizer state (moments, squares, Adam's step count): the next fit
        starts its optimizer from zero."""
        with self._lock:
            check(_capi.nn_reset_optimizer(self._handle))

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
        # The precision is not in the model file (nn_set_precision): a copy keeps it here.
        return {"model": self.to_bytes(), "precision": self.precision}

    def __setstate__(self, state):
        out = _capi.nn_model_p()
        buf = np.frombuffer(state["model"], dtype=np.uint8)
        check(_capi.nn_load_from_buffer(ctypes.byref(out), ptr(buf), buf.size))
        self._adopt(out)
        if state.get("precision", "strict") != "strict":
            self.precision = state["precision"]

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

    @property
    def precision(self):
        """How the float32 matrix products may be computed: "strict" (the default), or
        "tf32", "float16", "bfloat16" (tensor cores on a GPU that has them; the CPU and the
        reference stay strict). It moves with the model and is not saved. float64 models
        are always strict (UnsupportedError otherwise)."""
        code = ctypes.c_int()
        with self._lock:
            check(_capi.nn_get_precision(self._handle, ctypes.byref(code)))
        return _PRECISION_NAMES.get(code.value, str(code.value))

    @precision.setter
    def precision(self, value):
        code = _choice("precision", value, PRECISIONS)
        with self._lock:
            check(_capi.nn_set_precision(self._handle, code))


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
