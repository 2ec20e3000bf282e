#include "core/reference.h"

#include <algorithm>
#include <cstring>

#include "common/nn_math.h"

namespace nn::ref {

template <typename T>
void affine_forward(T *out, const T *x, const T *W, const T *b, size_t B, size_t I, size_t O) {
    for (size_t r = 0; r < B; ++r)
        for (size_t j = 0; j < O; ++j) {
            T acc = T(0);
            for (size_t k = 0; k < I; ++k) acc += x[r * I + k] * W[k * O + j];
            out[r * O + j] = acc + b[j];
        }
}

template <typename T>
void affine_backward(T *dx, T *dW, T *db, const T *dout, const T *x, const T *W, size_t B, size_t I, size_t O) {
    if (dx)
        for (size_t r = 0; r < B; ++r)
            for (size_t k = 0; k < I; ++k) {
                T acc = T(0);
                for (size_t j = 0; j < O; ++j) acc += dout[r * O + j] * W[k * O + j];
                dx[r * I + k] = acc;
            }
    for (size_t k = 0; k < I; ++k)
        for (size_t j = 0; j < O; ++j) {
            T acc = T(0);
            for (size_t r = 0; r < B; ++r) acc += x[r * I + k] * dout[r * O + j];
            dW[k * O + j] = acc;
        }
    for (size_t j = 0; j < O; ++j) {
        T acc = dout[j];  // np.sum(axis=0) starts from the first row
        for (size_t r = 1; r < B; ++r) acc += dout[r * O + j];
        db[j] = acc;
    }
}

template <typename T>
void activation_forward(T *h, size_t n, uint32_t act) {
    for (size_t i = 0; i < n; ++i) h[i] = math::activate(act, h[i]);
}

template <typename T>
void activation_backward(T *dh, const T *out, size_t n, uint32_t act) {
    for (size_t i = 0; i < n; ++i) dh[i] = math::activate_backward(act, dh[i], out[i]);
}

template <typename T>
double softmax_cross_entropy(T *scores, const int32_t *labels, size_t B, size_t O, T *terms,
                             const double *class_weights, size_t divisor) {
    const size_t D = divisor ? divisor : B;
    for (size_t r = 0; r < B; ++r) {
        T *row = scores + r * O;
        math::softmax_row(row, O);
        terms[r] = math::cross_entropy_term(row[labels[r]]);
        if (class_weights) terms[r] = T(class_weights[labels[r]]) * terms[r];
    }
    // -np.sum(log(...)) / batch_size: the negated sum divided by an int (float64 result).
    double loss = double(-math::pairwise_sum(terms, B, 1)) / double(D);
    for (size_t r = 0; r < B; ++r) {
        T *row = scores + r * O;
        row[labels[r]] -= T(1);
        if (class_weights) {
            const T w = T(class_weights[labels[r]]);
            for (size_t j = 0; j < O; ++j) row[j] = row[j] * w;
        }
        for (size_t j = 0; j < O; ++j) row[j] = row[j] / T(D);
    }
    return loss;
}

template <typename T>
double mean_squared_error(T *y, const T *t, size_t B, size_t O, T *terms, size_t divisor) {
    const size_t n = B * O, D = divisor ? divisor : B;
    for (size_t i = 0; i < n; ++i) {
        y[i] = y[i] - t[i];
        terms[i] = y[i] * y[i];
    }
    double loss = 0.5 * double(math::pairwise_sum(terms, n, 1)) / double(D);
    for (size_t i = 0; i < n; ++i) y[i] = y[i] / T(D);
    return loss;
}

template <typename T>
Model<T>::Model(NetShape shape) : shape_(std::move(shape)) {
    params_.assign(shape_.param_count(), T(0));
    grads_.assign(shape_.param_count(), T(0));
    squares_.assign(optim::largest_array(shape_.sizes.data(), shape_.sizes.size()), T(0));
    acts_.resize(shape_.sizes.size());
}

template <typename T>
void Model<T>::size_workspace(size_t batch) {
    if (batch <= batch_capacity_) return;
    for (size_t l = 0; l < acts_.size(); ++l) acts_[l].assign(batch * shape_.sizes[l], T(0));
    delta_.assign(batch * shape_.max_width(), T(0));
    delta_next_.assign(batch * shape_.max_width(), T(0));
    terms_.assign(batch * shape_.outputs(), T(0));
    batch_t_.assign(batch * shape_.outputs(), T(0));
    batch_labels_.assign(batch, 0);
    batch_capacity_ = batch;
}

template <typename T>
void Model<T>::upload(const T *x, const void *targets, size_t rows, size_t max_batch) {
    const size_t in = shape_.inputs(), out = shape_.outputs();
    data_x_.assign(x, x + rows * in);
    if (shape_.loss == NN_LOSS_SOFTMAX_CROSS_ENTROPY) {
        const auto *labels = static_cast<const int32_t *>(targets);
        data_labels_.assign(labels, labels + rows);
        data_t_.clear();
    } else {
        const auto *t = static_cast<const T *>(targets);
        data_t_.assign(t, t + rows * out);
        data_labels_.clear();
    }
    rows_ = rows;
    size_workspace(max_batch);
}

template <typename T>
void Model<T>::forward(size_t B) {
    for (size_t l = 0; l < shape_.layers(); ++l) {
        const size_t I = shape_.sizes[l], O = shape_.sizes[l + 1];
        affine_forward(acts_[l + 1].data(), acts_[l].data(), params_.data() + shape_.weight_offset(l),
                       params_.data() + shape_.bias_offset(l), B, I, O);
        if (l + 1 < shape_.layers()) activation_forward(acts_[l + 1].data(), B * O, shape_.activation);
    }
}

template <typename T>
double Model<T>::loss_and_backward(size_t B, const double *class_weights, size_t divisor) {
    const size_t L = shape_.layers(), out = shape_.outputs();
    T *dscores = acts_[L].data();  // the loss turns the scores into their gradient
    double loss = shape_.loss == NN_LOSS_SOFTMAX_CROSS_ENTROPY
                      ? softmax_cross_entropy(dscores, batch_labels_.data(), B, out, terms_.data(), class_weights, divisor)
                      : mean_squared_error(dscores, batch_t_.data(), B, out, terms_.data(), divisor);
    std::copy(dscores, dscores + B * out, delta_.begin());
    for (size_t l = L; l-- > 0;) {
        const size_t I = shape_.sizes[l], O = shape_.sizes[l + 1];
        T *dx = l > 0 ? delta_next_.data() : nullptr;
        affine_backward(dx, grads_.data() + shape_.weight_offset(l), grads_.data() + shape_.bias_offset(l),
                        delta_.data(), acts_[l].data(), params_.data() + shape_.weight_offset(l), B, I, O);
        if (l > 0) {
            activation_backward(delta_next_.data(), acts_[l].data(), B * I, shape_.activation);
            delta_.swap(delta_next_);
        }
    }
    return loss;
}

template <typename T>
double Model<T>::loss_and_gradients(const int64_t *order, size_t B, const double *class_weights, size_t divisor) {
    const size_t in = shape_.inputs(), out = shape_.outputs();
    T *x = acts_[0].data();
    for (size_t r = 0; r < B; ++r) {
        const size_t src = size_t(order[r]);
        std::memcpy(x + r * in, data_x_.data() + src * in, in * sizeof(T));
        if (shape_.loss == NN_LOSS_SOFTMAX_CROSS_ENTROPY)
            batch_labels_[r] = data_labels_[src];
        else
            std::memcpy(batch_t_.data() + r * out, data_t_.data() + src * out, out * sizeof(T));
    }
    forward(B);
    return loss_and_backward(B, class_weights, divisor);
}

template <typename T>
double Model<T>::train_step(const int64_t *order, size_t B, const optim::Settings &s, uint64_t t) {
    double loss = loss_and_gradients(order, B, s.class_weights, s.divisor(B));
    if (s.exchange && s.exchange(s.exchange_context, grads_.data(), grads_.size(), &loss) != 0)
        return std::nan("");  // the exchange failed: no update, the call ends
    if (s.stop_on_non_finite && !std::isfinite(loss)) return loss;
    optim::apply_step(params_.data(), grads_.data(), opt_state_.data(), params_.size(), shape_.sizes.data(),
                      shape_.sizes.size(), s, t, squares_.data());
    return loss;
}

template <typename T>
void Model<T>::set_optimizer(uint32_t kind, const T *values) {
    // assign keeps the capacity, so going back to an earlier kind (a rollback) allocates nothing.
    const size_t n = NN_BACKEND_OPTIMIZER_SLOTS(kind) * params_.size();
    if (values)
        opt_state_.assign(values, values + n);
    else
        opt_state_.assign(n, T(0));
    opt_kind_ = kind;
}

template <typename T>
void Model<T>::predict(const T *x, size_t rows, T *scores) {
    const size_t in = shape_.inputs(), out = shape_.outputs(), L = shape_.layers();
    const size_t chunk = std::min<size_t>(rows, 4096);
    size_workspace(chunk);
    for (size_t start = 0; start < rows; start += chunk) {
        const size_t B = std::min(chunk, rows - start);
        std::memcpy(acts_[0].data(), x + start * in, B * in * sizeof(T));
        forward(B);
        std::memcpy(scores + start * out, acts_[L].data(), B * out * sizeof(T));
    }
}

#define NN_REF_INSTANTIATE(T)                                                                        \
    template void affine_forward<T>(T *, const T *, const T *, const T *, size_t, size_t, size_t);   \
    template void affine_backward<T>(T *, T *, T *, const T *, const T *, const T *, size_t, size_t, \
                                     size_t);                                                        \
    template void activation_forward<T>(T *, size_t, uint32_t);                                      \
    template void activation_backward<T>(T *, const T *, size_t, uint32_t);                          \
    template double softmax_cross_entropy<T>(T *, const int32_t *, size_t, size_t, T *, const double *, size_t); \
    template double mean_squared_error<T>(T *, const T *, size_t, size_t, T *, size_t);              \
    template class Model<T>;

NN_REF_INSTANTIATE(float)
NN_REF_INSTANTIATE(double)

}  // namespace nn::ref
