#!/usr/bin/python3
"""Writes tests/data/float16_vectors.txt: float16 conversions as NumPy does them.

Run by hand, only to regenerate the checked-in file, with Debian's python3 and its
python3-numpy (1.24):

    /usr/bin/python3 tests/reference/gen_float16_vectors.py

tests/core/test_float16.cpp reads the file in place and checks nn::f16_from_double,
nn::f16_from_float and nn::f16_to_double against it bit for bit (BOOK-CH01.md §9:
NumPy rounds float64 -> float16 once, to nearest even; float32 -> float16 likewise).

Every value is written as its IEEE bit pattern in hex, so the file round-trips exactly
(NaN payloads and -0 included). Line kinds (fields separated by one space):

  D <float64 bits, 16 hex> <float16 of it> <float16 of float32(it)>
        np.float64 -> np.float16, and np.float64 -> np.float32 -> np.float16
  F <float32 bits, 8 hex> <float16 of it>
        np.float32 -> np.float16 straight from a float32 (signalling NaNs included)
  X <float16 bits, 4 hex> <float64 bits, 16 hex>
        np.float16 -> np.float64 for selected patterns (every exponent's edges, NaNs)
  H <fnv1a64, 16 hex>
        FNV-1a 64 over the little-endian float64 bits of np.float16 -> np.float64 for
        every one of the 65536 patterns in order, NaN patterns left out
  # comment (ignored)
"""

import os
import struct
import sys
import warnings

import numpy as np

SEED = 20240601
N_RANDOM = 5000

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "float16_vectors.txt")


def bits64(x):
    return struct.unpack("<Q", struct.pack("<d", x))[0]


def from_bits64(b):
    return np.array([b], dtype=np.uint64).view(np.float64)[0]


def from_bits32(b):
    return np.array([b], dtype=np.uint32).view(np.float32)[0]


def d_line(b):
    """One D line for the float64 with bit pattern b (NumPy does both conversions)."""
    a = np.array([b], dtype=np.uint64).view(np.float64)
    h64 = int(a.astype(np.float16).view(np.uint16)[0])
    h32 = int(a.astype(np.float32).astype(np.float16).view(np.uint16)[0])
    return "D %016x %04x %04x" % (b, h64, h32)


def f_line(b):
    a = np.array([b], dtype=np.uint32).view(np.float32)
    return "F %08x %04x" % (b, int(a.astype(np.float16).view(np.uint16)[0]))


def handpicked():
    """(comment, [float64 values or ('bits', pattern)]) groups of edge cases."""
    groups = []
    ties = []
    # Ties to even and their neighbours at several exponents: a float16 has 10 fraction
    # bits, so at 2^e the spacing is 2^(e-10) and the midpoints are odd multiples of 2^(e-11).
    for e in (-14, -13, -10, -5, -1, 0, 1, 4, 10, 11, 14, 15):
        ulp = 2.0 ** (e - 10)
        base = 2.0 ** e
        for k in (1, 3, 5, 7, 1021, 1023, 2045, 2047):
            mid = base + k * ulp / 2  # k odd: exactly between two float16 values
            ties += [mid, np.nextafter(mid, 0), np.nextafter(mid, np.inf), -mid]
    groups.append(("ties to even (odd multiples of half an ulp) and their float64 neighbours", ties))
    groups.append(("named ties: 1+2^-11 -> 1, 1+3*2^-11 -> 1+2^-9, 2048+1 -> 2048, 2048+3 -> 2052",
                   [1 + 2.0 ** -11, 1 + 3 * 2.0 ** -11, 2049.0, 2051.0, 4097.0, 4098.0, 4099.0, 4102.0]))
    groups.append(("the largest finite 65504 and the overflow threshold 65520 (ties away: odd 65504 -> inf)",
                   [65504.0, 65505.0, 65519.0, 65519.99, float(np.nextafter(65520.0, 0)), 65520.0,
                    float(np.nextafter(65520.0, np.inf)), 65536.0, 1e5, 1e10, 3.4028234663852886e38,
                    1e300, 1.7976931348623157e308]))
    groups.append(("negative counterparts of the overflow edge",
                   [-65504.0, -65519.0, -65519.99, -float(np.nextafter(65520.0, 0)), -65520.0, -1e300]))
    tiny = 2.0 ** -24
    sub = [tiny, 2 * tiny, 3 * tiny, 1023 * tiny, 0.5 * tiny, 1.5 * tiny, 2.5 * tiny, 3.5 * tiny,
           1022.5 * tiny, 1023.5 * tiny, float(np.nextafter(0.5 * tiny, 0)), float(np.nextafter(0.5 * tiny, 1)),
           0.25 * tiny, 2.0 ** -26, 2.0 ** -30, 2.0 ** -60, 2.0 ** -149, 2.0 ** -1074, 5e-324, 1e-310,
           float(np.nextafter(1.5 * tiny, 0)), float(np.nextafter(1.5 * tiny, 1)),
           3 * 2.0 ** -25, 5 * 2.0 ** -25, 2.9802322387695312e-08, 5.960464477539063e-08]
    groups.append(("subnormals: 2^-24, ties at odd multiples of 2^-25, 2^-25 -> 0, just above/below half of 2^-24",
                   sub + [-x for x in sub]))
    smallest_normal = 2.0 ** -14
    normal = [smallest_normal, float(np.nextafter(smallest_normal, 0)), float(np.nextafter(smallest_normal, 1)),
              smallest_normal - tiny, smallest_normal - tiny / 2, smallest_normal + tiny / 2,
              float(np.nextafter(smallest_normal - tiny / 2, 0)), float(np.nextafter(smallest_normal - tiny / 2, 1)),
              smallest_normal + tiny, smallest_normal + 1.5 * tiny]
    groups.append(("the smallest normal 2^-14 and its neighbours (1023.5 * 2^-24 rounds up to it)",
                   normal + [-x for x in normal]))
    groups.append(("BOOK-CH01 §9 double rounding: 1 + 2^-11 + 2^-40 -> 0x3c01 directly, 0x3c00 via float32",
                   [1 + 2.0 ** -11 + 2.0 ** -40, -(1 + 2.0 ** -11 + 2.0 ** -40), 1 + 2.0 ** -11 + 2.0 ** -30,
                    1 + 2.0 ** -11 + 2.0 ** -24, 1 + 2.0 ** -11 + 2.0 ** -25, 1 + 3 * 2.0 ** -11 - 2.0 ** -40,
                    2048 + 1 + 2.0 ** -30, 2.0 ** -14 + 2.0 ** -25 + 2.0 ** -50, 2.0 ** -25 + 2.0 ** -60,
                    65504 + 16 - 2.0 ** -30]))
    groups.append(("zeros and infinities", [0.0, -0.0, float("inf"), float("-inf")]))
    groups.append(("ordinary values", [1.0, -1.0, 0.5, 2.0, 0.1, -0.1, 1.0 / 3, 3.141592653589793, 0.01, 1e-4,
                                       1e-5, 6.1e-5, 1000.0, 1984.0, 12345.678, 0.9999, 1.0009765625]))
    nans = [0x7ff8000000000000, 0xfff8000000000000, 0x7ff0000000000001, 0xfff0000000000001,
            0x7ff4000000000000, 0x7ff0040000000000, 0x7ff003ffffffffff, 0x7ffc000000000000,
            0x7fffffffffffffff, 0xffffffffffffffff, 0x7ff8000000000001, 0x7ff0000020000000,
            0x7ff123456789abcd, 0xfff0000000000400]
    groups.append(("NaNs: NumPy keeps the top ten payload bits (and makes sure a NaN stays a NaN)",
                   [("bits", b) for b in nans]))
    return groups


def random_values(rng):
    """~5000 float64 bit patterns over many magnitudes, weighted towards rounding edges."""
    out = []
    n = N_RANDOM
    # 1. Uniform mantissa over exponents 2^-30 .. 2^17 (zero, subnormal, normal, overflow).
    for _ in range(n * 2 // 5):
        e = int(rng.integers(-30, 18))
        m = int(rng.integers(0, 1 << 52))
        s = int(rng.integers(0, 2))
        out.append((s << 63) | ((e + 1023) << 52) | m)
    # 2. Exact float16 midpoints, and their float64 and float32 neighbours.
    for _ in range(n * 3 // 10):
        h = int(rng.integers(0, 0x7bff))  # a finite, non-negative float16 below the max
        lo = float(np.array([h], dtype=np.uint16).view(np.float16)[0])
        hi = float(np.array([h + 1], dtype=np.uint16).view(np.float16)[0])
        mid = (lo + hi) / 2  # exact in float64
        k = int(rng.integers(0, 5))
        if k == 0:
            x = mid
        elif k == 1:
            x = float(np.nextafter(mid, 0))
        elif k == 2:
            x = float(np.nextafter(mid, np.inf))
        else:
            # A few float32 ulps either side: exercises the float32 rounding first.
            f = np.float32(mid)
            for _ in range(int(rng.integers(1, 4))):
                f = np.nextafter(f, np.float32(0) if k == 3 else np.float32(np.inf))
            x = float(f)
        if rng.integers(0, 2):
            x = -x
        out.append(bits64(x))
    # 3. Double rounding: midpoint + a perturbation below half a float32 ulp, which
    #    float64 -> float16 rounds away from the tie but float32 rounds onto it.
    for _ in range(n * 2 // 10):
        h = int(rng.integers(0x0400, 0x7bff))  # normals, where float32 has 13 more bits
        lo = float(np.array([h], dtype=np.uint16).view(np.float16)[0])
        hi = float(np.array([h + 1], dtype=np.uint16).view(np.float16)[0])
        mid = (lo + hi) / 2
        ulp32 = float(np.spacing(np.float32(mid)))
        frac = float(rng.uniform(1e-6, 0.5))
        x = mid + (frac if rng.integers(0, 2) else -frac) * ulp32
        if rng.integers(0, 2):
            x = -x
        out.append(bits64(x))
    # 4. Subnormal float16 range, uniform.
    while len(out) < n:
        x = float(rng.uniform(0, 2.0 ** -14))
        if rng.integers(0, 2):
            x = -x
        out.append(bits64(x))
    return out


def main():
    warnings.simplefilter("ignore")  # NumPy warns about casting NaN and inf
    rng = np.random.default_rng(SEED)
    lines = [
        "# float16 conversions as NumPy %s does them (tests/reference/gen_float16_vectors.py;" % np.__version__,
        "# do not edit: regenerate). D <f64 bits> <f16(f64)> <f16(f32(f64))> | F <f32 bits> <f16(f32)> |",
        "# X <f16 bits> <f64(f16)> | H <fnv1a64 of f64(f16) over all non-NaN patterns>",
    ]
    for comment, values in handpicked():
        lines.append("# " + comment)
        for v in values:
            b = v[1] if isinstance(v, tuple) else bits64(float(v))
            lines.append(d_line(b))
    lines.append("# %d random values (numpy.random.default_rng(%d)): many magnitudes, float16 midpoints "
                 "and neighbours, double-rounding cases, subnormals" % (N_RANDOM, SEED))
    for b in random_values(rng):
        lines.append(d_line(b))

    lines.append("# float32 inputs: edges, signalling and quiet NaNs (NumPy keeps the top ten payload bits "
                 "of the float32 itself)")
    f32 = [0x00000000, 0x80000000, 0x7f800000, 0xff800000, 0x3f800000, 0x3f801000, 0x3f803000, 0x3f801001,
           0x477fe000, 0x477fefff, 0x477ff000, 0x33800000, 0x33000000, 0x33000001, 0x32ffffff, 0x33c00000,
           0x38800000, 0x387fc000, 0x387fe000, 0x00000001, 0x7f7fffff,
           0x7fc00000, 0xffc00000, 0x7f800001, 0xff800001, 0x7f802000, 0x7fa00000, 0x7fbfffff, 0x7fffffff,
           0x7f801fff, 0x7fc00001, 0xffe00000]
    for b in f32:
        lines.append(f_line(b))
    for _ in range(200):
        lines.append(f_line(int(rng.integers(0, 1 << 32))))

    everything = np.arange(65536, dtype=np.uint32).astype(np.uint16)
    wide = everything.view(np.float16).astype(np.float64)
    wide_bits = wide.view(np.uint64)
    lines.append("# float16 -> float64: each exponent's first, second, middle and last pattern, both signs")
    for sign in (0, 0x8000):
        for e in range(32):
            for m in (0x000, 0x001, 0x200, 0x3ff):
                h = sign | (e << 10) | m
                lines.append("X %04x %016x" % (h, int(wide_bits[h])))
    h_fnv = 0xcbf29ce484222325
    for h in range(65536):
        if np.isnan(wide[h]):
            continue
        for byte in struct.pack("<Q", int(wide_bits[h])):
            h_fnv = ((h_fnv ^ byte) * 0x100000001b3) & 0xffffffffffffffff
    lines.append("# FNV-1a 64 of the little-endian float64 bits of every non-NaN float16, in pattern order")
    lines.append("H %016x" % h_fnv)

    # The §9 example must come out as the book says, or this NumPy is not the reference.
    x = 1 + 2.0 ** -11 + 2.0 ** -40
    assert d_line(bits64(x)).endswith(" 3c01 3c00"), d_line(bits64(x))

    with open(OUT, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("wrote %s: %d lines, %d bytes" % (os.path.normpath(OUT), len(lines), os.path.getsize(OUT)), file=sys.stderr)


if __name__ == "__main__":
    main()
