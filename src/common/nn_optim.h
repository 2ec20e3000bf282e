// What happens to the gradients of one training step after backward, on the host side
// of a backend (the reference path and the CPU plugin compile this; a GPU backend uses
// the per-element rules of nn_math.h in its own kernels): weight decay, the book's
// clip_grads, then one flat loop of the optimizer's update over the parameter buffer.
//
// The parameter buffer is the ABI's flat layout (for each layer W_l then b_l), so the
// book's list of arrays [W1, b1, W2, b2, …] is walked in the same order.
#ifndef NN_COMMON_NN_OPTIM_H
#define NN_COMMON_NN_OPTIM_H

#include <cmath>
#include <cstddef>
#include <cstdint>

#include "common/nn_math.h"
#include "nn/nn_backend.h"

namespace nn::optim {

// Optimizer kinds (nn_optimizer values), repeated so plugins need no nn.h.
enum Kind : uint32_t { kSgd = 0, kMomentum = 1, kNesterov = 2, kAdaGrad = 3, kRmsProp = 4, kAdam = 5 };

// Reads the train config as far as the host filled it (struct_size); members it did
// not send keep plain-SGD defaults.
struct Settings {
    uint32_t optimizer = kSgd;
    double lr = 0.0, momentum = 0.9, decay_rate = 0.99, beta1 = 0.9, beta2 = 0.999, epsilon = 1e-7;
    uint64_t adam_step = 0;
    double max_grad_norm = 0.0, weight_decay = 0.0;
    const double *class_weights = nullptr;
    bool stop_on_non_finite = false;
    size_t global_batch = 0;  // 0: divide by the step's own rows
    int (*exchange)(void *, void *, size_t, double *) = nullptr;
    void *exchange_context = nullptr;

    explicit Settings(const nn_backend_train_config &c) {
        lr = c.learning_rate;
        if (c.struct_size < offsetof(nn_backend_train_config, stop_on_non_finite) + sizeof c.stop_on_non_finite)
            return;  // a host from before the optimizer members: plain SGD
        optimizer = c.optimizer;
        momentum = c.momentum;
        decay_rate = c.decay_rate;
        beta1 = c.beta1;
        beta2 = c.beta2;
        epsilon = c.epsilon;
        adam_step = c.adam_step;
        max_grad_norm = c.max_grad_norm;
        weight_decay = c.weight_decay;
        class_weights = c.class_weights;
        stop_on_non_finite = c.stop_on_non_finite != 0;
        if (c.struct_size < offsetof(nn_backend_train_config, exchange_context) + sizeof c.exchange_context) return;
        global_batch = c.global_batch;
        exchange = c.exchange;
        exchange_context = c.exchange_context;
    }
    // The divisor of a step's loss and gradient over `rows` rows.
    size_t divisor(size_t rows) const { return global_batch ? global_batch : rows; }
    // Whether a non-finite loss ends the call (always after a failed exchange).
    bool stops_on_non_finite() const { return stop_on_non_finite || exchange; }
    bool known() const { return optimizer <= kAdam; }
};

// g_W += λ·W for every weight matrix (not the biases), as the book's first volume
// (`grads['W'] = dW + lambda * W`).
template <typename T>
void weight_decay(T *__restrict g, const T *__restrict p, const size_t *sizes, size_t n_sizes, T lambda) {
    size_t off = 0;
    for (size_t l = 0; l + 1 < n_sizes; ++l) {
        const size_t nw = sizes[l] * sizes[l + 1];
        for (size_t i = off; i < off + nw; ++i) g[i] = g[i] + lambda * p[i];
        off += nw + sizes[l + 1];
    }
}

// The book's clip_grads: total = sqrt(Σ over the arrays in order of np.sum(g**2)),
// rate = max_norm / (total + 1e-6), all gradients scaled by rate when it is below 1.
// Each array's sum of squares is NumPy's pairwise sum of the squares in T (`squares`
// is scratch for the largest array); the running total is a double (float64 in the
// book; for float32 models this is more exact than NumPy's float32 scalar). Returns
// whether it clipped.
template <typename T>
bool clip_grads(T *__restrict g, const size_t *sizes, size_t n_sizes, double max_norm, T *__restrict squares) {
    double total = 0.0;
    size_t off = 0;
    for (size_t l = 0; l + 1 < n_sizes; ++l) {
        const size_t arrays[2] = {sizes[l] * sizes[l + 1], sizes[l + 1]};
        for (size_t n : arrays) {
            for (size_t i = 0; i < n; ++i) squares[i] = g[off + i] * g[off + i];
            total += double(math::pairwise_sum(squares, n, 1));
            off += n;
        }
    }
    const double rate = max_norm / (std::sqrt(total) + 1e-6);
    if (!(rate < 1.0)) return false;
    const T r = T(rate);
    for (size_t i = 0; i < off; ++i) g[i] = g[i] * r;
    return true;
}

// One optimizer update over n parameters. `state` holds slots × n values
// (NN_BACKEND_OPTIMIZER_SLOTS); `t` is Adam's 1-based step number.
template <typename T>
void update(T *__restrict p, const T *__restrict g, T *__restrict state, size_t n, const Settings &s, uint64_t t) {
    const T lr = T(s.lr), eps = T(s.epsilon);
    switch (s.optimizer) {
    case kMomentum: {
        const T m = T(s.momentum);
        for (size_t i = 0; i < n; ++i) math::momentum_update(p[i], state[i], g[i], lr, m);
        break;
    }
    case kNesterov: {
        const T m = T(s.momentum), mm = T(s.momentum * s.momentum), k = T((1.0 + s.momentum) * s.lr);
        for (size_t i = 0; i < n; ++i) math::nesterov_update(p[i], state[i], g[i], lr, m, mm, k);
        break;
    }
    case kAdaGrad:
        for (size_t i = 0; i < n; ++i) math::adagrad_update(p[i], state[i], g[i], lr, eps);
        break;
    case kRmsProp: {
        const T d = T(s.decay_rate), one_minus_d = T(1.0 - s.decay_rate);
        for (size_t i = 0; i < n; ++i) math::rmsprop_update(p[i], state[i], g[i], lr, d, one_minus_d, eps);
        break;
    }
    case kAdam: {
        const T lr_t = T(math::adam_step_size(s.lr, s.beta1, s.beta2, double(t)));
        const T b1 = T(1.0 - s.beta1), b2 = T(1.0 - s.beta2);
        T *__restrict m = state, *__restrict v = state + n;
        for (size_t i = 0; i < n; ++i) math::adam_update(p[i], m[i], v[i], g[i], lr_t, b1, b2, eps);
        break;
    }
    default:
        for (size_t i = 0; i < n; ++i) p[i] = math::sgd_update(p[i], g[i], lr);
        break;
    }
}

// Everything after backward: decay, clipping, the update. `squares` is scratch for the
// largest array (only touched when clipping).
template <typename T>
void apply_step(T *p, T *g, T *state, size_t n, const size_t *sizes, size_t n_sizes, const Settings &s, uint64_t t,
                T *squares) {
    if (s.weight_decay > 0.0) weight_decay(g, p, sizes, n_sizes, T(s.weight_decay));
    if (s.max_grad_norm > 0.0) clip_grads(g, sizes, n_sizes, s.max_grad_norm, squares);
    update(p, g, state, n, s, t);
}

// Elements of the largest single array (a W or a b) of a net: the size of the
// clipping scratch.
inline size_t largest_array(const size_t *sizes, size_t n_sizes) {
    size_t m = 0;
    for (size_t l = 0; l + 1 < n_sizes; ++l) {
        const size_t w = sizes[l] * sizes[l + 1];
        m = w > m ? w : m;
        m = sizes[l + 1] > m ? sizes[l + 1] : m;
    }
    return m;
}

}  // namespace nn::optim

#endif  // NN_COMMON_NN_OPTIM_H
