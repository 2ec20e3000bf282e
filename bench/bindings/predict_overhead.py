#!/usr/bin/python3
"""Microseconds per nn_predict call through the Python binding, on one spiral row and on
1,000 rows, beside NumPy's own forward pass of the same 2-10-3 net (same weights).

    NN_LIBRARY=build/release/lib/libnn.so PYTHONPATH=bindings/python \
        /usr/bin/python3 bench/bindings/predict_overhead.py

Rows: libnn.Model.predict (the whole binding: checks, lock, output array), the raw ctypes
nn_predict with a preallocated output (the FFI floor), and NumPy. Each figure is the median
over many batches of calls, divided by the batch's call count. The model is the book's,
trained 300 epochs in float64, on the device libnn picks (auto).
"""
import argparse
import ctypes
import statistics
import time

import numpy as np

import libnn
from libnn import _capi


def per_call_us(fn, calls, batches):
    fn()  # warm
    samples = []
    for _ in range(batches):
        t0 = time.perf_counter_ns()
        for _ in range(calls):
            fn()
        samples.append((time.perf_counter_ns() - t0) / calls / 1e3)
    return statistics.median(samples)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--dtype", default="float64", choices=["float32", "float64"])
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()

    rng = libnn.Rng(1984)
    x, t = libnn.spiral(100, 3, rng=rng)
    model = libnn.Model([2, 10, 3], dtype=args.dtype, rng=rng, device=args.device)
    model.fit(x, t, epochs=300, batch_size=30, learning_rate=1.0, rng=rng)
    (w1, b1), (w2, b2) = [(w.astype(args.dtype), b.astype(args.dtype)) for w, b in model.weights()]
    dt = np.dtype(args.dtype)
    x1000 = np.ascontiguousarray(np.tile(x, (4, 1))[:1000], dtype=dt)
    one = np.ascontiguousarray(x[:1], dtype=dt)

    def numpy_forward(a):
        return (1 / (1 + np.exp(-(a @ w1 + b1)))) @ w2 + b2

    tol = dict(rtol=1e-4, atol=1e-5) if dt == np.float32 else dict(rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(model.predict(x1000), numpy_forward(x1000), **tol)  # same net

    code = _capi.NN_DTYPE_FLOAT64 if dt == np.float64 else _capi.NN_DTYPE_FLOAT32
    handle = model._handle

    def raw(a, out):
        pa, po = a.ctypes.data, out.ctypes.data
        n, cols, cap = a.shape[0], a.shape[1], out.size
        return lambda: _capi.nn_predict(handle, pa, code, n, cols, 0, po, code, cap)

    print(f"libnn {libnn.version()} ({libnn.library_path}), {args.dtype}, device: {model.device.name}")
    print(f"{'rows':>6} | {'libnn.Model.predict':>20} | {'raw ctypes nn_predict':>21} | {'NumPy forward':>13} | {'predict / NumPy':>15}")
    print("-" * 88)
    for rows, a, calls, batches in ((1, one, 200, 200), (1000, x1000, 20, 100)):
        out = np.empty((rows, 3), dt)
        wrapped = per_call_us(lambda: model.predict(a), calls, batches)
        floor = per_call_us(raw(a, out), calls, batches)
        ref = per_call_us(lambda: numpy_forward(a), calls, batches)
        print(f"{rows:>6} | {wrapped:>17.2f} µs | {floor:>18.2f} µs | {ref:>10.2f} µs | {wrapped / ref:>14.2f}x")
    model.close()


if __name__ == "__main__":
    main()
