// The plain reference implementation of every operation: straightforward loops in
// NumPy's order of evaluation. It is the oracle the tests compare backends against,
// and the backend libnn uses when no plugin is present. Speed is not its job.
#ifndef NN_CORE_REFERENCE_H
#define NN_CORE_REFERENCE_H

#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/net.h"

namespace nn::ref {

// out (B, O) = x (B, I) · W (I, O) + b (O)
template <typename T>
void affine_forward(T *out, const T *x, const T *W, const T *b, size_t B, size_t I, size_t O);

// dx (B, I) = dout · Wᵀ (skipped when dx is null); dW (I, O) = xᵀ · dout; db (O) = Σ_rows dout
template <typename T>
void affine_backward(T *dx, T *dW, T *db, const T *dout, const T *x, const T *W, size_t B, size_t I, size_t O);

// In place on h (n values): h = f(h).
template <typename T>
void activation_forward(T *h, size_t n, uint32_t act);

// dh (n) = f'(·) · dh, from the forward output `out`.
template <typename T>
void activation_backward(T *dh, const T *out, size_t n, uint32_t act);

// Softmax-with-loss on scores (B, O) holding class indices `labels` (B): turns
// `scores` into d loss / d scores = (softmax − onehot) / B and returns the mean loss.
// `terms` is scratch for B values.
template <typename T>
double softmax_cross_entropy(T *scores, const int32_t *labels, size_t B, size_t O, T *terms);

// Mean squared error Σ_rows ½ Σ_cols (y − t)² / B on y (B, O) against t (B, O);
// turns y into (y − t) / B and returns the loss. `terms` is scratch for B·O values.
template <typename T>
double mean_squared_error(T *y, const T *t, size_t B, size_t O, T *terms);

// One model's state on the reference backend: parameters, gradients, the stored
// training set and the workspace, all plain host vectors.
template <typename T>
class Model {
public:
    explicit Model(NetShape shape);

    std::vector<T> &params() { return params_; }
    void upload(const T *x, const void *targets, size_t rows, size_t max_batch);
    const std::vector<T> &grads() const { return grads_; }
    // Forward, loss and backward on the stored rows order[0..B): fills grads() and
    // returns the mean loss.
    double loss_and_gradients(const int64_t *order, size_t B);
    // One SGD step on the stored rows order[0..B); returns the loss before the update.
    double train_step(const int64_t *order, size_t B, T learning_rate);
    void predict(const T *x, size_t rows, T *scores);

private:
    void size_workspace(size_t batch);
    void forward(size_t B);  // acts_[0] holds the batch on entry
    double loss_and_backward(size_t B);

    NetShape shape_;
    std::vector<T> params_, grads_;
    std::vector<T> data_x_, data_t_;   // stored training set
    std::vector<int32_t> data_labels_;
    size_t rows_ = 0, batch_capacity_ = 0;
    std::vector<std::vector<T>> acts_;  // acts_[l]: (B, sizes[l]); acts_.back() = scores
    std::vector<T> delta_, delta_next_, terms_, batch_t_;
    std::vector<int32_t> batch_labels_;
};

}  // namespace nn::ref

#endif  // NN_CORE_REFERENCE_H
