#include "core/rng.h"

#include <algorithm>
#include <cmath>
#include <utility>

namespace nn {

void LegacyRng::seed_int(uint32_t seed) {
    key_[0] = seed;
    for (int k = 1; k < kN; ++k)
        key_[k] = 1812433253u * (key_[k - 1] ^ (key_[k - 1] >> 30)) + uint32_t(k);
    pos_ = kN;
    has_gauss_ = false;
    gauss_ = 0.0;
}

void LegacyRng::seed_array(std::span<const uint32_t> key) {
    seed_int(19650218u);
    const size_t len = key.size();
    int i = 1;
    size_t j = 0;
    for (size_t k = size_t(kN) > len ? size_t(kN) : len; k > 0; --k) {
        key_[i] = (key_[i] ^ ((key_[i - 1] ^ (key_[i - 1] >> 30)) * 1664525u)) + key[j] + uint32_t(j);
        ++i;
        ++j;
        if (i >= kN) {
            key_[0] = key_[kN - 1];
            i = 1;
        }
        if (j >= len) j = 0;
    }
    for (int k = kN - 1; k > 0; --k) {
        key_[i] = (key_[i] ^ ((key_[i - 1] ^ (key_[i - 1] >> 30)) * 1566083941u)) - uint32_t(i);
        ++i;
        if (i >= kN) {
            key_[0] = key_[kN - 1];
            i = 1;
        }
    }
    key_[0] = 0x80000000u;
    pos_ = kN;
    has_gauss_ = false;
    gauss_ = 0.0;
}

LegacyRng::State LegacyRng::state() const {
    State s;
    std::copy(key_, key_ + kN, s.key);
    s.pos = pos_;
    s.has_gauss = has_gauss_;
    s.gauss = gauss_;
    return s;
}

bool LegacyRng::set_state(const State &s) {
    if (s.pos < 0 || s.pos > kN || (s.has_gauss && !std::isfinite(s.gauss))) return false;
    std::copy(s.key, s.key + kN, key_);
    pos_ = s.pos;
    has_gauss_ = s.has_gauss;
    gauss_ = s.has_gauss ? s.gauss : 0.0;
    return true;
}

void LegacyRng::twist() {
    constexpr uint32_t kMatrixA = 0x9908b0dfu, kUpper = 0x80000000u, kLower = 0x7fffffffu;
    constexpr int kM = 397;
    int i = 0;
    for (; i < kN - kM; ++i) {
        uint32_t y = (key_[i] & kUpper) | (key_[i + 1] & kLower);
        key_[i] = key_[i + kM] ^ (y >> 1) ^ (-(y & 1u) & kMatrixA);
    }
    for (; i < kN - 1; ++i) {
        uint32_t y = (key_[i] & kUpper) | (key_[i + 1] & kLower);
        key_[i] = key_[i + (kM - kN)] ^ (y >> 1) ^ (-(y & 1u) & kMatrixA);
    }
    uint32_t y = (key_[kN - 1] & kUpper) | (key_[0] & kLower);
    key_[kN - 1] = key_[kM - 1] ^ (y >> 1) ^ (-(y & 1u) & kMatrixA);
    pos_ = 0;
}

double LegacyRng::next_double() {
    int32_t a = int32_t(next_u32() >> 5);
    int32_t b = int32_t(next_u32() >> 6);
    return (a * 67108864.0 + b) / 9007199254740992.0;
}

double LegacyRng::next_gauss() {
    if (has_gauss_) {
        double tmp = gauss_;
        has_gauss_ = false;
        gauss_ = 0.0;
        return tmp;
    }
    double x1, x2, r2;
    do {
        x1 = 2.0 * next_double() - 1.0;
        x2 = 2.0 * next_double() - 1.0;
        r2 = x1 * x1 + x2 * x2;
    } while (r2 >= 1.0 || r2 == 0.0);
    double f = std::sqrt(-2.0 * std::log(r2) / r2);
    gauss_ = f * x1;
    has_gauss_ = true;
    return f * x2;
}

uint64_t LegacyRng::interval(uint64_t max) {
    if (max == 0) return 0;
    // max with every bit below its top bit set (NumPy ORs in shifts of 1, 2, 4, … 32).
    const uint64_t mask = ~uint64_t(0) >> __builtin_clzll(max);
    uint64_t value;
    if (max <= 0xffffffffu) {
        while ((value = (next_u32() & mask)) > max) {
        }
    } else {
        // NumPy's next_uint64 is (draw << 32) | draw; fix the order (high word first).
        do {
            uint64_t hi = next_u32();
            uint64_t lo = next_u32();
            value = ((hi << 32) | lo) & mask;
        } while (value > max);
    }
    return value;
}

void LegacyRng::permutation(std::span<int64_t> out) {
    for (size_t i = 0; i < out.size(); ++i) out[i] = int64_t(i);
    shuffle(out);
}

void LegacyRng::shuffle(std::span<int64_t> out) {
    const size_t n = out.size();
    if (n < 2) return;
    size_t i = n - 1;
    for (; i > 0xffffffffu; --i) {  // 64-bit draws (more than 2^32 elements)
        const size_t j = size_t(interval(i));
        std::swap(out[i], out[j]);
    }
    // The same draws as interval(i) for each i in turn, without its unpredictable
    // rejection branch: a rejected draw swaps out[i] with itself and keeps i. This was
    // a sixth of the book's float32 fit.
    // interval's mask (i with every bit below its top bit set) changes only when i drops
    // below a power of two: following it with a predictable branch keeps the count of
    // leading zeros out of the loop's dependency chain.
    uint64_t mask = i ? ~uint64_t(0) >> __builtin_clzll(i) : 0;
    while (i >= 1) {
        if (pos_ == kN) twist();
        int p = pos_;
        for (; p < kN && i >= 1; ++p) {
            if (i <= mask >> 1) mask >>= 1;
            const uint64_t value = temper(key_[p]) & mask;
            const bool ok = value <= i;
            const size_t j = ok ? size_t(value) : i;
            const int64_t tmp = out[i];
            out[i] = out[j];
            out[j] = tmp;
            i -= ok;
        }
        pos_ = p;
    }
}

}  // namespace nn
