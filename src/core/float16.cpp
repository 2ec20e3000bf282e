#include "core/float16.h"

#include <cmath>
#include <cstring>

namespace nn {

uint16_t f16_from_double(double value) {
    uint64_t bits;
    std::memcpy(&bits, &value, sizeof bits);
    const uint16_t sign = uint16_t((bits >> 48) & 0x8000u);
    if (std::isnan(value)) {
        // NumPy keeps the top ten payload bits and makes sure the result stays a NaN.
        uint16_t h = uint16_t(0x7c00u + ((bits & 0x000fffffffffffffull) >> 42));
        if (h == 0x7c00u) ++h;
        return uint16_t(sign | h);
    }
    const double a = std::fabs(value);
    if (a >= 65520.0) return uint16_t(sign | 0x7c00u);  // rounds past 65504: ±inf
    if (a < 0x1p-14) {
        // Subnormal (or zero): a multiple of 2^-24; scaling by a power of two is exact,
        // so nearbyint (round half to even) is the one rounding.
        const double q = std::nearbyint(a * 0x1p24);
        return uint16_t(sign | uint16_t(q));  // q == 1024 is the smallest normal: correct
    }
    int e2;
    std::frexp(a, &e2);  // a = m·2^e2, m in [0.5, 1)
    int e = e2 - 1;      // a = 1.f·2^e, e in [-14, 15]
    double q = std::nearbyint(std::ldexp(a, 10 - e));  // in [1024, 2048]
    if (q == 2048.0) {
        q = 1024.0;
        ++e;
    }
    if (e > 15) return uint16_t(sign | 0x7c00u);
    return uint16_t(sign | uint16_t((e + 15) << 10) | uint16_t(q - 1024.0));
}

uint16_t f16_from_float(float value) {
    if (!std::isnan(value)) return f16_from_double(double(value));
    uint32_t bits;
    std::memcpy(&bits, &value, sizeof bits);
    uint16_t h = uint16_t(0x7c00u + ((bits & 0x007fffffu) >> 13));
    if (h == 0x7c00u) ++h;
    return uint16_t(((bits >> 16) & 0x8000u) | h);
}

double f16_to_double(uint16_t h) {
    const double sign = (h & 0x8000u) ? -1.0 : 1.0;
    const int e = (h >> 10) & 0x1f;
    const int m = h & 0x3ff;
    if (e == 0) return sign * std::ldexp(double(m), -24);
    if (e == 31 && m != 0) {  // NaN: keep sign and payload, as NumPy does
        const uint64_t bits = (uint64_t(h & 0x8000u) << 48) | 0x7ff0000000000000ull | (uint64_t(m) << 42);
        double d;
        std::memcpy(&d, &bits, sizeof d);
        return d;
    }
    if (e == 31) return sign * HUGE_VAL;
    return sign * std::ldexp(double(1024 + m), e - 25);
}

}  // namespace nn
