// The shape of a multilayer perceptron and its one flat parameter layout:
// for each layer l, W_l (in_l × out_l, row-major) then b_l (out_l).
#ifndef NN_CORE_NET_H
#define NN_CORE_NET_H

#include <cstddef>
#include <vector>

#include "nn/nn.h"

namespace nn {

struct NetShape {
    std::vector<size_t> sizes;  // input, hidden…, output
    nn_activation activation = NN_ACTIVATION_SIGMOID;
    nn_loss loss = NN_LOSS_SOFTMAX_CROSS_ENTROPY;
    nn_dtype dtype = NN_DTYPE_FLOAT32;

    size_t layers() const { return sizes.size() - 1; }
    size_t inputs() const { return sizes.front(); }
    size_t outputs() const { return sizes.back(); }
    size_t max_width() const {
        size_t m = 0;
        for (size_t s : sizes) m = s > m ? s : m;
        return m;
    }
    size_t weight_offset(size_t l) const {
        size_t off = 0;
        for (size_t k = 0; k < l; ++k) off += sizes[k] * sizes[k + 1] + sizes[k + 1];
        return off;
    }
    size_t bias_offset(size_t l) const { return weight_offset(l) + sizes[l] * sizes[l + 1]; }
    size_t param_count() const { return weight_offset(layers()); }
};

}  // namespace nn

#endif  // NN_CORE_NET_H
