#!/usr/bin/python3
"""Which BLAS NumPy and PyTorch load, and which OpenBLAS kernel it picked, in the current
environment (OPENBLAS_CORETYPE, OPENBLAS_NUM_THREADS as set): one line per library,
    blas <numpy|torch> <library path> corename <name> config <openblas_get_config()>
or `blas <name> missing` when it cannot be imported. bench/run prints these beside the
kernel libnn's CPU plugin reports."""

import ctypes
import importlib


def loaded_blas():
    with open("/proc/self/maps") as maps:
        paths = {line.split()[-1] for line in maps if "/" in line}
    return sorted(p for p in paths if "openblas" in p or "libblas" in p)


def describe(path):
    try:
        lib = ctypes.CDLL(path)
        lib.openblas_get_corename.restype = ctypes.c_char_p
        lib.openblas_get_config.restype = ctypes.c_char_p
        return "corename %s config %s" % (lib.openblas_get_corename().decode(), lib.openblas_get_config().decode())
    except (OSError, AttributeError):
        return "(not OpenBLAS)"


for name in ("numpy", "torch"):
    try:
        mod = importlib.import_module(name)
    except ImportError:
        print("blas %s missing" % name)
        continue
    # One product, so that a lazily loaded BLAS is in the maps.
    if name == "numpy":
        a = mod.ones((64, 64), dtype=mod.float32)
        a @ a
    else:
        a = mod.ones(64, 64)
        a @ a
    libs = [p for p in loaded_blas() if "openblas" in p] or loaded_blas()
    print("blas %s %s %s" % (name, libs[0] if libs else "?", describe(libs[0]) if libs else ""))
