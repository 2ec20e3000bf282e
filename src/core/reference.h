// The plain reference implementation of every operation: straightforward loops in
// NumPy's order of evaluation. It is the oracle the tests compare backends against,
// and the backend libnn uses when no plugin is present. Speed is not its job.
#ifndef NN_CORE_REFERENCE_H
#define NN_CORE_REFERENCE_H

#include <cstddef>
#include <cstdint>
#include <vector>

#include "common/nn_optim.h"
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
// `terms` is scratch for B values. With `class_weights` (one per class), row r's term
// and gradient are multiplied by class_weights[labels[r]] (still divided by B).
template <typename T>
double softmax_cross_entropy(T *scores, const int32_t *labels, size_t B, size_t O, T *terms,
                             const double *class_weights = nullptr, size_t divisor = 0);

// Mean squared error Σ_rows ½ Σ_cols (y − t)² / B on y (B, O) against t (B, O);
// turns y into (y − t) / B and returns the loss. `terms` is scratch for B·O values.
// `divisor` (0: B) replaces B in both (data-parallel slices divide by the global batch).
template <typename T>
double mean_squared_error(T *y, const T *t, size_t B, size_t O, T *terms, size_t divisor = 0);

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
    double loss_and_gradients(const int64_t *order, size_t B, const double *class_weights = nullptr,
                              size_t divisor = 0);
    // One step on the stored rows order[0..B) as `s` describes (decay, clipping, the
    // optimizer; `t` is Adam's step number); returns the loss before the update. With
    // s.stop_on_non_finite, a non-finite loss skips the update.
    double train_step(const int64_t *order, size_t B, const optim::Settings &s, uint64_t t);
    // Selects the optimizer and sets its state (values, or zeros when null).
    void set_optimizer(uint32_t kind, const T *values);
    const std::vector<T> &optimizer_state() const { return opt_state_; }
    void predict(const T *x, size_t rows, T *scores);

private:
    void size_workspace(size_t batch);
    void forward(size_t B);  // acts_[0] holds the batch on entry
    double loss_and_backward(size_t B, const double *class_weights, size_t divisor);

    NetShape shape_;
    std::vector<T> params_, grads_;
    uint32_t opt_kind_ = 0;
    std::vector<T> opt_state_, squares_;
    std::vector<T> data_x_, data_t_;   // stored training set
    std::vector<int32_t> data_labels_;
    size_t rows_ = 0, batch_capacity_ = 0;
    std::vector<std::vector<T>> acts_;  // acts_[l]: (B, sizes[l]); acts_.back() = scores
    std::vector<T> delta_, delta_next_, terms_, batch_t_;
    std::vector<int32_t> batch_labels_;
};

}  // namespace nn::ref

#endif  // NN_CORE_REFERENCE_H
