"""The raw layer: ctypes declarations of every function and struct in include/nn/nn.h.

Nothing here owns anything or raises on a status; the wrappers in model.py, rng.py and
devices.py do. Structs mirror nn.h field for field and are only ever filled by their
`_init` functions (`desc()`, `fit_options()`, ... below), so `struct_size` is always right.
"""
import ctypes
import ctypes.util
import os
import pathlib

# ---- enums (nn.h: stable values, 32-bit signed) -------------------------------------
NN_OK = 0
NN_ERR_NULL_POINTER = 1
NN_ERR_INVALID_ARGUMENT = 2
NN_ERR_STRUCT_SIZE = 3
NN_ERR_SIZE_OVERFLOW = 4
NN_ERR_SHAPE_MISMATCH = 5
NN_ERR_LABEL_OUT_OF_RANGE = 6
NN_ERR_NON_FINITE = 7
NN_ERR_BAD_HYPERPARAMETER = 8
NN_ERR_BUFFER_TOO_SMALL = 9
NN_ERR_OUT_OF_MEMORY = 10
NN_ERR_DEVICE_UNAVAILABLE = 11
NN_ERR_BACKEND = 12
NN_ERR_UNSUPPORTED = 13
NN_ERR_INTERNAL = 14
NN_ERR_IO = 15
NN_ERR_CORRUPT = 16
NN_ERR_VERSION = 17
NN_ERR_CANCELLED = 18
NN_ERR_DIVERGED = 19

NN_DTYPE_FLOAT32, NN_DTYPE_FLOAT64, NN_DTYPE_FLOAT16, NN_DTYPE_MODEL = 0, 1, 2, 3
NN_ACTIVATION_SIGMOID, NN_ACTIVATION_RELU, NN_ACTIVATION_TANH, NN_ACTIVATION_IDENTITY = 0, 1, 2, 3
NN_LOSS_SOFTMAX_CROSS_ENTROPY, NN_LOSS_MEAN_SQUARED_ERROR = 0, 1
NN_INIT_NORMAL, NN_INIT_XAVIER, NN_INIT_HE = 0, 1, 2
NN_DEVICE_CPU, NN_DEVICE_CUDA, NN_DEVICE_REFERENCE, NN_DEVICE_AUTO = 0, 1, 2, 3
NN_PRECISION_STRICT, NN_PRECISION_TF32, NN_PRECISION_FLOAT16, NN_PRECISION_BFLOAT16 = 0, 1, 2, 3
NN_TARGET_CLASS_INDEX, NN_TARGET_ROWS_FLOAT32, NN_TARGET_ROWS_FLOAT64 = 0, 1, 2
NN_OUTPUT_SCORES, NN_OUTPUT_PROBABILITIES = 0, 1
(NN_OPTIMIZER_SGD, NN_OPTIMIZER_MOMENTUM, NN_OPTIMIZER_NESTEROV, NN_OPTIMIZER_ADAGRAD,
 NN_OPTIMIZER_RMSPROP, NN_OPTIMIZER_ADAM) = 0, 1, 2, 3, 4, 5
NN_PROGRESS_REPORT, NN_PROGRESS_EPOCH_END = 0, 1

c_status = ctypes.c_int  # every nn.h enum is a signed 32-bit int
c_enum = ctypes.c_int
c_size = ctypes.c_size_t
c_void_p = ctypes.c_void_p


class nn_model(ctypes.Structure):
    """Opaque."""


class nn_rng(ctypes.Structure):
    """Opaque."""


nn_model_p = ctypes.POINTER(nn_model)
nn_rng_p = ctypes.POINTER(nn_rng)


class nn_model_desc(ctypes.Structure):
    _fields_ = [
        ("struct_size", c_size),
        ("n_layer_sizes", c_size),
        ("layer_sizes", ctypes.POINTER(c_size)),
        ("hidden_activation", c_enum),
        ("loss", c_enum),
        ("dtype", c_enum),
        ("init", c_enum),
        ("init_std", ctypes.c_double),
        ("seed", ctypes.c_uint32),
        ("rng", nn_rng_p),
    ]


class nn_progress(ctypes.Structure):
    _fields_ = [
        ("struct_size", c_size),
        ("event", c_enum),
        ("epoch", ctypes.c_uint64),
        ("iteration", ctypes.c_uint64),
        ("steps_per_epoch", ctypes.c_uint64),
        ("loss", ctypes.c_double),
        ("val_loss", ctypes.c_double),
        ("val_accuracy", ctypes.c_double),
        ("elapsed_seconds", ctypes.c_double),
    ]


#: int (*nn_progress_fn)(const nn_progress *progress, void *user)
nn_progress_fn = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(nn_progress), c_void_p)


class nn_fit_options(ctypes.Structure):
    _fields_ = [
        ("struct_size", c_size),
        ("epochs", c_size),
        ("batch_size", c_size),
        ("learning_rate", ctypes.c_double),
        ("shuffle", ctypes.c_int),
        ("report_interval", c_size),
        ("rng", nn_rng_p),
        # the optimizer
        ("optimizer", c_enum),
        ("momentum", ctypes.c_double),
        ("decay_rate", ctypes.c_double),
        ("beta1", ctypes.c_double),
        ("beta2", ctypes.c_double),
        ("epsilon", ctypes.c_double),
        # regularisation
        ("max_grad_norm", ctypes.c_double),
        ("weight_decay", ctypes.c_double),
        ("class_weights", c_void_p),       # const double *
        ("n_class_weights", c_size),
        # validation and early stopping
        ("val_x", c_void_p),
        ("val_x_dtype", c_enum),
        ("val_rows", c_size),
        ("val_cols", c_size),
        ("val_targets", c_void_p),
        ("val_target_type", c_enum),
        ("val_target_cols", c_size),
        ("validation_fraction", ctypes.c_double),
        ("early_stopping", ctypes.c_int),
        ("patience", ctypes.c_int32),
        ("min_delta", ctypes.c_double),
        ("restore_best", ctypes.c_int),
        # progress
        ("progress", nn_progress_fn),
        ("progress_user", c_void_p),
        ("parallel", ctypes.c_int),
        ("sharded", ctypes.c_int),
        ("progress_on_every_process", ctypes.c_int),
        ("parallel_timeout", ctypes.c_double),
    ]


class nn_fit_report(ctypes.Structure):
    _fields_ = [
        ("struct_size", c_size),
        ("epochs_run", c_size),
        ("steps_run", c_size),
        ("steps_per_epoch", c_size),
        ("final_loss", ctypes.c_double),
        ("seconds", ctypes.c_double),
        ("device_kind", c_enum),
        ("device_index", ctypes.c_int),
        ("stopped_early", ctypes.c_int),
        ("best_epoch", ctypes.c_uint64),
        ("best_loss", ctypes.c_double),
        ("final_val_loss", ctypes.c_double),
        ("final_val_accuracy", ctypes.c_double),
    ]


class nn_loss_record(ctypes.Structure):
    _fields_ = [
        ("epoch", ctypes.c_uint64),
        ("iteration", ctypes.c_uint64),
        ("steps_per_epoch", ctypes.c_uint64),
        ("loss", ctypes.c_double),
    ]


class nn_epoch_record(ctypes.Structure):
    _fields_ = [
        ("epoch", ctypes.c_uint64),
        ("loss", ctypes.c_double),
        ("val_loss", ctypes.c_double),
        ("val_accuracy", ctypes.c_double),
    ]


class nn_save_options(ctypes.Structure):
    _fields_ = [
        ("struct_size", c_size),
        ("storage", c_enum),
        ("include_training_state", ctypes.c_int),
    ]


class nn_device_info(ctypes.Structure):
    _fields_ = [
        ("struct_size", c_size),
        ("kind", c_enum),
        ("index", ctypes.c_int),
        ("available", ctypes.c_int),
        ("name", ctypes.c_char * 128),
        ("reason", ctypes.c_char * 256),
    ]


P = ctypes.POINTER
# name: (restype, argtypes), in nn.h order. Pointers to data are c_void_p so NumPy's
# `arr.ctypes.data_as(c_void_p)` / plain ints pass without per-call type conversion.
_SIGNATURES = {
    "nn_version": (None, [P(ctypes.c_int), P(ctypes.c_int), P(ctypes.c_int)]),
    "nn_version_string": (ctypes.c_char_p, []),
    "nn_status_string": (ctypes.c_char_p, [c_status]),
    "nn_last_error_message": (ctypes.c_char_p, []),
    "nn_rng_create": (c_status, [P(nn_rng_p), ctypes.c_uint32]),
    "nn_rng_destroy": (None, [nn_rng_p]),
    "nn_rng_seed": (c_status, [nn_rng_p, ctypes.c_uint32]),
    "nn_rng_seed_array": (c_status, [nn_rng_p, c_void_p, c_size]),   # const uint32_t *
    "nn_rng_randn": (c_status, [nn_rng_p, c_void_p, c_size]),        # double *
    "nn_rng_rand": (c_status, [nn_rng_p, c_void_p, c_size]),         # double *
    "nn_rng_permutation": (c_status, [nn_rng_p, c_void_p, c_size]),  # int64_t *
    "nn_dataset_spiral": (c_status, [c_void_p, c_size, c_void_p, c_size, c_size, c_size,
                                     nn_rng_p, ctypes.c_uint32]),
    "nn_model_desc_init": (None, [P(nn_model_desc)]),
    "nn_create": (c_status, [P(nn_model_p), P(nn_model_desc)]),
    "nn_destroy": (None, [nn_model_p]),
    "nn_model_layer_count": (c_status, [nn_model_p, P(c_size)]),
    "nn_model_layer_sizes": (c_status, [nn_model_p, P(c_size), c_size]),
    "nn_model_dtype": (c_status, [nn_model_p, P(c_enum)]),
    "nn_param_count": (c_status, [nn_model_p, P(c_size)]),
    "nn_get_params": (c_status, [nn_model_p, c_void_p, c_size]),     # double *
    "nn_set_params": (c_status, [nn_model_p, c_void_p, c_size]),     # const double *
    "nn_fit_options_init": (None, [P(nn_fit_options)]),
    "nn_fit_report_init": (None, [P(nn_fit_report)]),
    "nn_fit": (c_status, [nn_model_p, c_void_p, c_enum, c_size, c_size,
                          c_void_p, c_enum, c_size, P(nn_fit_options), P(nn_fit_report)]),
    "nn_get_loss_history": (c_status, [nn_model_p, c_void_p, c_size, P(c_size)]),
    "nn_get_epoch_losses": (c_status, [nn_model_p, c_void_p, c_size, P(c_size)]),
    "nn_get_epoch_history": (c_status, [nn_model_p, c_void_p, c_size, P(c_size)]),  # nn_epoch_record *
    "nn_reset_history": (c_status, [nn_model_p]),
    "nn_reset_optimizer": (c_status, [nn_model_p]),
    "nn_predict": (c_status, [nn_model_p, c_void_p, c_enum, c_size, c_size,
                              c_enum, c_void_p, c_enum, c_size]),
    "nn_predict_classes": (c_status, [nn_model_p, c_void_p, c_enum, c_size, c_size,
                                      c_void_p, c_size]),                # int32_t *
    "nn_evaluate": (c_status, [nn_model_p, c_void_p, c_enum, c_size, c_size,
                               c_void_p, c_enum, c_size, P(ctypes.c_double), P(ctypes.c_double)]),
    "nn_save_options_init": (None, [P(nn_save_options)]),
    "nn_save": (c_status, [nn_model_p, ctypes.c_char_p, P(nn_save_options)]),
    "nn_save_to_buffer": (c_status, [nn_model_p, c_void_p, c_size, P(c_size), P(nn_save_options)]),
    "nn_load": (c_status, [P(nn_model_p), ctypes.c_char_p]),
    "nn_load_from_buffer": (c_status, [P(nn_model_p), c_void_p, c_size]),
    "nn_set_metadata": (c_status, [nn_model_p, ctypes.c_char_p, ctypes.c_char_p]),
    "nn_get_metadata": (c_status, [nn_model_p, ctypes.c_char_p, c_void_p, c_size, P(c_size)]),
    "nn_device_info_init": (None, [P(nn_device_info)]),
    "nn_device_count": (c_status, [P(c_size)]),
    "nn_device_get": (c_status, [c_size, P(nn_device_info)]),
    "nn_set_device": (c_status, [nn_model_p, c_enum, ctypes.c_int]),
    "nn_set_precision": (c_status, [nn_model_p, c_enum]),
    "nn_get_precision": (c_status, [nn_model_p, P(c_enum)]),
    "nn_get_device": (c_status, [nn_model_p, P(nn_device_info)]),
}


def _candidates():
    """Where libnn.so is looked for, in order: $NN_LIBRARY, the package directory, the
    system's search (ctypes.util.find_library), then the SONAME for the loader's path."""
    env = os.environ.get("NN_LIBRARY")
    if env:
        yield env
        return  # an explicit choice is never second-guessed
    here = pathlib.Path(__file__).resolve().parent
    for name in ("libnn.so", "libnn.so.0"):
        if (here / name).exists():
            yield str(here / name)
    found = ctypes.util.find_library("nn")
    if found:
        yield found
    yield "libnn.so.0"


def _load():
    errors = []
    for path in _candidates():
        try:
            return ctypes.CDLL(path), path
        except OSError as e:
            errors.append(f"{path}: {e}")
    raise OSError("libnn: could not load libnn.so; set NN_LIBRARY to its path. Tried:\n  "
                  + "\n  ".join(errors))


lib, library_path = _load()
for _name, (_restype, _argtypes) in _SIGNATURES.items():
    _fn = getattr(lib, _name)
    _fn.restype = _restype
    _fn.argtypes = _argtypes
    globals()[_name] = _fn  # so callers write _capi.nn_predict(...)


def model_desc():
    d = nn_model_desc()
    nn_model_desc_init(ctypes.byref(d))
    return d


def fit_options():
    o = nn_fit_options()
    nn_fit_options_init(ctypes.byref(o))
    return o


def fit_report():
    r = nn_fit_report()
    nn_fit_report_init(ctypes.byref(r))
    return r


def save_options():
    o = nn_save_options()
    nn_save_options_init(ctypes.byref(o))
    return o


def device_info():
    i = nn_device_info()
    nn_device_info_init(ctypes.byref(i))
    return i


def _check_header_version():
    major, minor = ctypes.c_int(), ctypes.c_int()
    nn_version(ctypes.byref(major), ctypes.byref(minor), None)
    if major.value != 0:  # this binding mirrors nn.h 0.x; another major may change structs
        raise ImportError(f"libnn: {library_path} is version {major.value}.{minor.value}, "
                          "this binding speaks the 0.x ABI")
    # The library accepts only the struct sizes it knows: compare each _init's struct_size
    # with this binding's layout now, rather than failing every call later. The init writes
    # into a padded buffer, so a library whose structs have grown cannot overrun it.
    for init, struct in ((nn_model_desc_init, nn_model_desc), (nn_fit_options_init, nn_fit_options),
                         (nn_fit_report_init, nn_fit_report), (nn_save_options_init, nn_save_options),
                         (nn_device_info_init, nn_device_info)):
        buf = (ctypes.c_char * (ctypes.sizeof(struct) + 4096))()
        init(ctypes.cast(buf, P(struct)))
        theirs = c_size.from_buffer(buf).value
        if theirs != ctypes.sizeof(struct):
            raise ImportError(f"libnn: {library_path} has a {struct.__name__} of {theirs} bytes, this "
                              f"binding's is {ctypes.sizeof(struct)}: the binding and the library are "
                              "from different versions")


_check_header_version()
