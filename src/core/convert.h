// Element conversions between caller buffers and the model's dtype.
#ifndef NN_CORE_CONVERT_H
#define NN_CORE_CONVERT_H

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "nn/nn.h"

namespace nn {

inline size_t dtype_size(nn_dtype t) { return t == NN_DTYPE_FLOAT64 ? sizeof(double) : sizeof(float); }

inline double load(const void *p, nn_dtype t, size_t i) {
    return t == NN_DTYPE_FLOAT64 ? static_cast<const double *>(p)[i] : double(static_cast<const float *>(p)[i]);
}

// Copies n elements, rounding once when narrowing (float64 → float32).
inline void convert(const void *src, nn_dtype src_t, void *dst, nn_dtype dst_t, size_t n) {
    if (n == 0) return;  // empty buffers may have null data (memcpy must not see it)
    if (src_t == dst_t) {
        std::memcpy(dst, src, n * dtype_size(src_t));
    } else if (dst_t == NN_DTYPE_FLOAT32) {
        const double *s = static_cast<const double *>(src);
        float *d = static_cast<float *>(dst);
        for (size_t i = 0; i < n; ++i) d[i] = float(s[i]);
    } else {
        const float *s = static_cast<const float *>(src);
        double *d = static_cast<double *>(dst);
        for (size_t i = 0; i < n; ++i) d[i] = double(s[i]);
    }
}

// A host buffer of the model's dtype.
struct TypedBuffer {
    nn_dtype dtype = NN_DTYPE_FLOAT32;
    std::vector<unsigned char> bytes;

    TypedBuffer() = default;
    TypedBuffer(nn_dtype t, size_t n) : dtype(t), bytes(n * dtype_size(t)) {}
    void *data() { return bytes.data(); }
    const void *data() const { return bytes.data(); }
    size_t size() const { return bytes.size() / dtype_size(dtype); }
};

}  // namespace nn

#endif  // NN_CORE_CONVERT_H
