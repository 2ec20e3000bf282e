"""Random streams (NumPy's legacy RandomState, bit for bit), the spiral and devices."""
import collections
import ctypes
import threading

import numpy as np

from . import _capi
from ._arrays import ptr
from ._errors import check


class _Handle:
    """Owns one libnn handle: freed by close(), `with`, or garbage collection. A lock
    serialises calls, because nn.h allows one thread at a time per handle and ctypes
    releases the GIL during a call."""

    _destroy = None  # set by subclasses: the nn_*_destroy function
    # True while nn_fit runs on the handle. Other threads wait on the lock meanwhile, so only
    # a progress callback (same thread, re-entering the RLock) can see it: nn.h forbids the
    # callback to use the model being trained.
    _busy = False

    def __init__(self, handle):
        self._h = handle
        self._lock = threading.RLock()

    @property
    def _handle(self):
        if not self._h:
            raise ValueError(f"this {type(self).__name__} is closed")
        if self._busy:
            raise RuntimeError(f"this {type(self).__name__} is in use by a running fit: a progress "
                               "callback must not use the model being trained (or its fit's Rng)")
        return self._h

    @property
    def closed(self):
        return not self._h

    def close(self):
        """Frees the handle now; later use raises ValueError. Closing twice is a no-op."""
        lock = getattr(self, "_lock", None)
        if lock is None:
            return
        with lock:
            if self._busy:
                raise RuntimeError(f"this {type(self).__name__} is in use by a running fit: a "
                                   "progress callback must not close it")
            h, self._h = getattr(self, "_h", None), None
            if h:
                type(self)._destroy(h)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:  # interpreter shutdown may have torn down the module already
            pass


class Rng(_Handle):
    """A random stream seeded as `np.random.seed(seed)`; `seed` may be an int or a
    sequence of uint32 (init_by_array). Its draws equal NumPy's legacy global stream."""

    _destroy = staticmethod(_capi.nn_rng_destroy)

    def __init__(self, seed=0):
        out = _capi.nn_rng_p()
        check(_capi.nn_rng_create(ctypes.byref(out), 0))
        super().__init__(out)
        self.seed(seed)

    def seed(self, seed):
        with self._lock:
            if np.ndim(seed) == 0:
                check(_capi.nn_rng_seed(self._handle, _uint32(seed)))
            else:
                key = np.ascontiguousarray([_uint32(k) for k in seed], dtype=np.uint32)
                if key.size == 0:
                    raise ValueError("seed array must not be empty")
                check(_capi.nn_rng_seed_array(self._handle, ptr(key), key.size))

    def _draw(self, fn, size, dtype):
        shape = () if size is None else (tuple(size) if np.ndim(size) else (int(size),))
        out = np.empty(shape, dtype=dtype)
        with self._lock:
            check(fn(self._handle, ptr(out), out.size))
        return out[()] if size is None else out

    def randn(self, size=None):
        """Standard normal draws, as np.random.randn(*size) (a float when size is None)."""
        return self._draw(_capi.nn_rng_randn, size, np.float64)

    def rand(self, size=None):
        """Uniform draws in [0, 1), as np.random.rand(*size)."""
        return self._draw(_capi.nn_rng_rand, size, np.float64)

    def permutation(self, n):
        """A permutation of range(n), as np.random.permutation(n) (int64)."""
        if int(n) < 0:
            raise ValueError("n must be non-negative")
        return self._draw(_capi.nn_rng_permutation, int(n), np.int64)


def _uint32(v):
    v = int(v)
    if not 0 <= v < 2**32:
        raise ValueError(f"seed {v} is not a uint32 (0 .. 2**32-1)")
    return v


def spiral(points_per_class=100, classes=3, seed=1984, rng=None):
    """The book's spiral data set: (x float64 (N, 2), t int32 (N,)), class-major, N =
    points_per_class * classes. With `rng` the stream is continued (not reseeded) and
    `seed` is ignored; without, a private stream seeded with `seed` is used."""
    n = int(points_per_class) * int(classes)
    x = np.empty((n, 2), dtype=np.float64)
    t = np.empty(n, dtype=np.int32)
    rng_handle = rng._handle if rng is not None else None
    lock = rng._lock if rng is not None else threading.Lock()
    with lock:
        check(_capi.nn_dataset_spiral(ptr(x), x.size, ptr(t), t.size, int(points_per_class),
                                      int(classes), rng_handle, _uint32(seed)))
    return x, t


DeviceInfo = collections.namedtuple("DeviceInfo", "kind index available name reason")
DEVICE_KINDS = {"cpu": _capi.NN_DEVICE_CPU, "cuda": _capi.NN_DEVICE_CUDA,
                "reference": _capi.NN_DEVICE_REFERENCE, "auto": _capi.NN_DEVICE_AUTO}
_KIND_NAMES = {v: k for k, v in DEVICE_KINDS.items()}


def device_info_from(info):
    return DeviceInfo(_KIND_NAMES.get(info.kind, str(info.kind)), info.index, bool(info.available),
                      info.name.decode("utf-8", "replace"), info.reason.decode("utf-8", "replace"))


def devices():
    """Every device entry libnn knows, available or not, with the reason when not."""
    count = ctypes.c_size_t()
    check(_capi.nn_device_count(ctypes.byref(count)))
    result = []
    for i in range(count.value):
        info = _capi.device_info()
        check(_capi.nn_device_get(i, ctypes.byref(info)))
        result.append(device_info_from(info))
    return result
