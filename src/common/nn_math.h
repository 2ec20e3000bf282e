// Per-element math that every backend compiles — the reference path in libnn, the
// OpenBLAS plugin and (with NN_HD = __host__ __device__) the CUDA plugin — so that the
// backends cannot drift from each other or from the book (BOOK-CH01.md §3–§5).
//
// Every formula keeps NumPy's order of operations; the library is compiled with
// -ffp-contract=off so that no a*b+c becomes an FMA behind our back.
#ifndef NN_COMMON_NN_MATH_H
#define NN_COMMON_NN_MATH_H

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>

#if defined(__CUDACC__)
#define NN_HD __host__ __device__
#else
#define NN_HD
#endif

namespace nn::math {

// Values of nn_activation / nn_loss (nn.h), repeated here so plugins need no C++ glue.
enum Activation : uint32_t { kSigmoid = 0, kRelu = 1, kTanh = 2, kIdentity = 3 };
enum Loss : uint32_t { kSoftmaxCrossEntropy = 0, kMeanSquaredError = 1 };

// The epsilon the book adds inside the log of cross_entropy_error.
inline constexpr double kCrossEntropyEps = 1e-7;

// Float bits and back, without type punning (std::bit_cast is C++20; this header is
// also compiled by nvcc).
NN_HD inline int32_t bits_of(float f) {
    int32_t i;
    std::memcpy(&i, &f, sizeof i);
    return i;
}
NN_HD inline float float_of(int32_t i) {
    float f;
    std::memcpy(&f, &i, sizeof f);
    return f;
}

// exp for float32 without a libm call, so that loops over it vectorise: Cody–Waite
// range reduction by ln 2 (rounding with the 1.5·2^23 trick, which needs no SSE4.1),
// a degree-6 polynomial, and 2^n applied as two factors so that results down into the
// subnormals and up to overflow come out right. Within 1 ulp of glibc's expf for every
// float whose exp is normal (checked exhaustively); NaN stays NaN, -inf gives 0, +inf inf.
NN_HD inline float exp_f32(float x) {
    const bool nan = x != x;
    float c = nan ? 0.0f : x;
    c = c < -104.0f ? -104.0f : (c > 88.8f ? 88.8f : c);
    const float n = (c * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    const float r = (c - n * 0.693359375f) - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = (p * r) * r + r + 1.0f;
    const int32_t k = int32_t(n), k1 = k / 2, k2 = k - k1;  // |k1|, |k2| ≤ 75
    const float y = (p * float_of((k1 + 127) << 23)) * float_of((k2 + 127) << 23);
    return nan ? x : y;
}

// log for float32 without a libm call (Cephes logf: mantissa in [√½, √2), degree-8
// polynomial, exponent times ln 2 split in two). Within 1 ulp of glibc's logf for every
// positive float, subnormals included (checked exhaustively); log(0) = -inf, log of a
// negative number NaN, log(inf) = inf, NaN stays NaN.
NN_HD inline float log_f32(float x) {
    const bool subnormal = x < 1.17549435e-38f;  // also true for 0 and negatives
    const float xs = subnormal ? x * 8388608.0f : x;  // 2^23 makes subnormals normal
    const int32_t b = bits_of(xs);
    float e = float(((b >> 23) & 0xff) - 126) - (subnormal ? 23.0f : 0.0f);
    float m = float_of((b & 0x007fffff) | 0x3f000000);  // mantissa in [0.5, 1)
    const bool small = m < 0.707106781186547524f;
    e = small ? e - 1.0f : e;
    m = small ? (m + m) - 1.0f : m - 1.0f;
    const float z = m * m;
    float y = 7.0376836292e-2f;
    y = y * m - 1.1514610310e-1f;
    y = y * m + 1.1676998740e-1f;
    y = y * m - 1.2420140846e-1f;
    y = y * m + 1.4249322787e-1f;
    y = y * m - 1.6668057665e-1f;
    y = y * m + 2.0000714765e-1f;
    y = y * m - 2.4999993993e-1f;
    y = y * m + 3.3333331174e-1f;
    y = (y * m) * z;
    y = y + -2.12194440e-4f * e;
    y = y - 0.5f * z;
    float result = (m + y) + 0.693359375f * e;
    result = x == 0.0f ? -std::numeric_limits<float>::infinity() : result;
    result = x < 0.0f ? std::numeric_limits<float>::quiet_NaN() : result;
    result = x == std::numeric_limits<float>::infinity() ? x : result;
    return x != x ? x : result;
}

// exp in the model's dtype: float64 keeps libm's exp (glibc's, as NumPy with SIMD off
// in the reference data), float32 uses exp_f32 on every backend alike.
NN_HD inline double exp_t(double x) { return std::exp(x); }
NN_HD inline float exp_t(float x) { return exp_f32(x); }
NN_HD inline double log_t(double x) { return std::log(x); }
NN_HD inline float log_t(float x) { return log_f32(x); }

// Activation forward: out = f(x).
template <typename T>
NN_HD inline T activate(uint32_t act, T x) {
    switch (act) {
    case kSigmoid: return T(1) / (T(1) + exp_t(-x));
    case kRelu: return x > T(0) ? x : T(0);
    case kTanh: return std::tanh(x);
    default: return x;
    }
}

// Activation backward in terms of the forward *output*, as the book's layers keep it:
// sigmoid dx = (dout * (1 - out)) * out; relu passes where out > 0 (⇔ x > 0);
// tanh dx = dout * (1 - out²).
template <typename T>
NN_HD inline T activate_backward(uint32_t act, T dout, T out) {
    switch (act) {
    case kSigmoid: return (dout * (T(1) - out)) * out;
    case kRelu: return out > T(0) ? dout : T(0);
    case kTanh: return dout * (T(1) - out * out);
    default: return dout;
    }
}

// SGD: p -= lr * g, evaluated as NumPy does (the product first, then the subtraction).
template <typename T>
NN_HD inline T sgd_update(T p, T g, T lr) {
    return p - lr * g;
}

// ---- the optimizers of the book's common/optimizer.py (BOOK-CH01.md §5) --------------
// One element each. Coefficients that the book computes from Python floats (m·m,
// (1 + m)·lr, 1 − d, Adam's lr_t) arrive already computed in double and rounded to T
// once, as NumPy casts a Python scalar to the array's dtype; everything else keeps
// the book's order of operations.

// Momentum: v = m·v − lr·g; p += v.
template <typename T>
NN_HD inline void momentum_update(T &p, T &v, T g, T lr, T m) {
    v = m * v - lr * g;
    p = p + v;
}

// Nesterov: v *= m; v −= lr·g; p += (m·m)·v; p −= ((1 + m)·lr)·g.
template <typename T>
NN_HD inline void nesterov_update(T &p, T &v, T g, T lr, T m, T mm, T one_plus_m_lr) {
    v = v * m;
    v = v - lr * g;
    p = p + mm * v;
    p = p - one_plus_m_lr * g;
}

// AdaGrad: h += g·g; p −= lr·g / (sqrt(h) + eps).
template <typename T>
NN_HD inline void adagrad_update(T &p, T &h, T g, T lr, T eps) {
    h = h + g * g;
    p = p - lr * g / (std::sqrt(h) + eps);
}

// RMSprop: h *= d; h += (1 − d)·g·g; p −= lr·g / (sqrt(h) + eps).
template <typename T>
NN_HD inline void rmsprop_update(T &p, T &h, T g, T lr, T d, T one_minus_d, T eps) {
    h = h * d;
    h = h + one_minus_d * g * g;
    p = p - lr * g / (std::sqrt(h) + eps);
}

// Adam in the book's form: m += (1 − β1)(g − m); v += (1 − β2)(g² − v);
// p −= lr_t·m / (sqrt(v) + eps), with the bias correction folded into lr_t.
template <typename T>
NN_HD inline void adam_update(T &p, T &m, T &v, T g, T lr_t, T one_minus_b1, T one_minus_b2, T eps) {
    m = m + one_minus_b1 * (g - m);
    v = v + one_minus_b2 * (g * g - v);
    p = p - lr_t * m / (std::sqrt(v) + eps);
}

// Adam's step size at step t (1-based): lr·sqrt(1 − β2^t) / (1 − β1^t), in double as
// the book computes it from Python floats.
NN_HD inline double adam_step_size(double lr, double beta1, double beta2, double t) {
    return lr * std::sqrt(1.0 - std::pow(beta2, t)) / (1.0 - std::pow(beta1, t));
}

// NumPy's pairwise summation (numpy/core/src/umath/loops_utils.h.src, pairwise_sum):
// fewer than 8 elements are added in order; up to 128 use eight interleaved partial
// sums combined as ((r0+r1)+(r2+r3))+((r4+r5)+(r6+r7)) plus an in-order tail; longer
// runs split in two at a multiple of 8. np.sum over a contiguous axis uses it, so the
// book's loss values depend on it in the last bit.
template <typename T>
NN_HD inline T pairwise_block(const T *a, std::size_t n, std::ptrdiff_t stride) {  // n ≤ 128
    if (n < 8) {
        T res = T(0);
        for (std::size_t i = 0; i < n; ++i) res += a[std::ptrdiff_t(i) * stride];
        return res;
    }
    T r[8];
    for (int k = 0; k < 8; ++k) r[k] = a[k * stride];
    std::size_t i = 8;
    for (; i < n - (n % 8); i += 8)
        for (int k = 0; k < 8; ++k) r[k] += a[std::ptrdiff_t(i + k) * stride];
    T res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
    for (; i < n; ++i) res += a[std::ptrdiff_t(i) * stride];
    return res;
}

// NumPy's recursion, sum(a, n) = sum(a, n2) + sum(a + n2, n − n2) above 128 elements,
// walked without calls (a GPU thread's call stack is 1 KiB by default, which the recursion
// overflows on rows of a few thousand): size[d] is the size of the node at depth d on the
// path to the current block, left[d] its left half's sum once that is done. Each level
// halves the size, so 60 levels cover any size_t.
template <typename T>
NN_HD inline T pairwise_sum(const T *a, std::size_t n, std::ptrdiff_t stride) {
    if (n <= 128) return pairwise_block(a, n, stride);
    constexpr int kMaxDepth = 60;
    std::size_t size[kMaxDepth];
    T left[kMaxDepth];
    std::uint64_t in_right = 0;  // bit d: the path goes through node d's right half
    std::size_t start = 0;       // of the node at depth d
    int d = 0;
    size[0] = n;
    for (;;) {
        while (size[d] > 128) {  // down the left halves to a block
            std::size_t n2 = size[d] / 2;
            n2 -= n2 % 8;
            in_right &= ~(std::uint64_t(1) << d);
            size[d + 1] = n2;
            ++d;
        }
        T v = pairwise_block(a + std::ptrdiff_t(start) * stride, size[d], stride);
        for (;;) {  // up through the nodes whose halves are both done
            if (d == 0) return v;
            const int p = d - 1;
            if (!(in_right & (std::uint64_t(1) << p))) {  // v is p's left half: on to its right half
                left[p] = v;
                in_right |= std::uint64_t(1) << p;
                start += size[d];
                size[d] = size[p] - size[d];
                break;
            }
            v = left[p] + v;
            start -= size[p] - size[d];
            d = p;
        }
    }
}

// Softmax of one row in place, as common/functions.py: subtract the row max, exp,
// divide by the (pairwise) row sum.
template <typename T>
NN_HD inline void softmax_row(T *row, std::size_t n) {
    T m = row[0];
    for (std::size_t j = 1; j < n; ++j) m = row[j] > m ? row[j] : m;
    for (std::size_t j = 0; j < n; ++j) row[j] = exp_t(row[j] - m);
    T s = pairwise_sum(row, n, 1);
    for (std::size_t j = 0; j < n; ++j) row[j] = row[j] / s;
}

// log(p + 1e-7) for the true-class probability p (the loss negates the sum of these);
// the eps is rounded to T first,
// as NumPy casts the Python scalar to the array's dtype.
template <typename T>
NN_HD inline T cross_entropy_term(T p) {
    return log_t(p + T(kCrossEntropyEps));
}

// Index of the first maximal element (np.argmax).
template <typename T>
NN_HD inline std::size_t argmax(const T *row, std::size_t n) {
    std::size_t best = 0;
    for (std::size_t j = 1; j < n; ++j)
        if (row[j] > row[best]) best = j;
    return best;
}

}  // namespace nn::math

#endif  // NN_COMMON_NN_MATH_H
