#include "core/model.h"

#include <chrono>
#include <cmath>

#include "common/nn_math.h"
#include "core/error.h"
#include "core/reference.h"

namespace nn {

void check_backend(nn_backend_result r, const char *what) {
    if (r == NN_BACKEND_OK) return;
    std::string detail = take_backend_error();
    std::string msg = std::string(what) + " failed" + (detail.empty() ? std::string() : ": " + detail);
    switch (r) {
    case NN_BACKEND_ERR_OUT_OF_MEMORY: fail(NN_ERR_OUT_OF_MEMORY, msg);
    case NN_BACKEND_ERR_UNSUPPORTED: fail(NN_ERR_UNSUPPORTED, msg);
    case NN_BACKEND_ERR_INVALID: fail(NN_ERR_INTERNAL, msg);
    default: fail(NN_ERR_BACKEND, msg);
    }
}

std::vector<double> initial_params(const NetShape &shape, nn_init rule, double init_std, LegacyRng &rng) {
    std::vector<double> p(shape.param_count(), 0.0);
    for (size_t l = 0; l < shape.layers(); ++l) {
        const size_t fan_in = shape.sizes[l], n = shape.sizes[l] * shape.sizes[l + 1];
        double *w = p.data() + shape.weight_offset(l);
        for (size_t i = 0; i < n; ++i) {
            const double g = rng.next_gauss();
            switch (rule) {
            case NN_INIT_XAVIER: w[i] = g / std::sqrt(double(fan_in)); break;
            case NN_INIT_HE: w[i] = g * std::sqrt(2.0 / double(fan_in)); break;
            default: w[i] = init_std * g; break;  // the book: 0.01 * randn(I, H)
            }
            if (shape.dtype == NN_DTYPE_FLOAT32) w[i] = double(float(w[i]));
        }
    }
    return p;
}

Model::Model(NetShape shape, std::vector<double> params, const LegacyRng &rng, const Placement &placement)
    : shape_(std::move(shape)), params_(std::move(params)), rng_(rng), placement_(placement),
      state_(create_state(placement)) {}

Model::State Model::create_state(const Placement &placement) const {
    nn_backend_net net{
        .dtype = uint32_t(shape_.dtype),
        .hidden_activation = uint32_t(shape_.activation),
        .loss = uint32_t(shape_.loss),
        .n_layer_sizes = uint32_t(shape_.sizes.size()),
        .layer_sizes = shape_.sizes.data(),
    };
    nn_backend_model *raw = nullptr;
    check_backend(placement.iface->model_create(placement.backend_index, &net, &raw), "creating the model on the backend");
    State state(raw, StateDeleter{placement.iface});
    write_params(state.get(), placement.iface);
    return state;
}

void Model::write_params(nn_backend_model *state, const nn_backend_iface *iface) const {
    TypedBuffer buf(shape_.dtype, params_.size());
    convert(params_.data(), NN_DTYPE_FLOAT64, buf.data(), shape_.dtype, params_.size());
    check_backend(iface->params_write(state, buf.data()), "writing parameters to the backend");
}

void Model::reset_history() {
    epochs_done_ = 0;
    records_.clear();
    epoch_losses_.clear();
}

void Model::restore_training_state(uint64_t epochs_done, const LegacyRng &rng, std::vector<LossRecord> records,
                                   std::vector<double> epoch_losses) {
    epochs_done_ = epochs_done;
    rng_ = rng;
    records_ = std::move(records);
    epoch_losses_ = std::move(epoch_losses);
}

void Model::set_params(const std::vector<double> &params) {
    std::vector<double> old = params_;
    params_ = params;
    try {
        write_params(state_.get(), placement_.iface);
    } catch (...) {
        params_ = std::move(old);
        throw;
    }
}

void Model::move_to(const Placement &placement) {
    State fresh = create_state(placement);  // throws before anything changes
    state_ = std::move(fresh);
    placement_ = placement;
}

FitSummary Model::fit(const TrainData &data, const FitConfig &config, LegacyRng &shuffle_rng) {
    const size_t rows = data.rows, batch = config.batch_size;
    const size_t steps = rows / batch;  // the Trainer drops the tail of each epoch
    const nn_backend_iface *iface = placement_.iface;

    // Everything the loop touches is allocated here, before the first step.
    std::vector<int64_t> order(rows), perm(rows), next(rows);
    for (size_t i = 0; i < rows; ++i) order[i] = int64_t(i);
    std::vector<double> step_losses(steps);
    // The histories grow in place (room reserved now); a failure truncates them back.
    const size_t interval = config.report_interval;
    const size_t old_records = records_.size(), old_epochs = epoch_losses_.size();
    if (interval > 0) {
        const size_t per_epoch = steps / interval + (steps % interval != 0);  // records per epoch
        records_.reserve(old_records + config.epochs * per_epoch);
    }
    epoch_losses_.reserve(old_epochs + config.epochs);
    TypedBuffer before(shape_.dtype, params_.size()), after(shape_.dtype, params_.size());
    convert(params_.data(), NN_DTYPE_FLOAT64, before.data(), shape_.dtype, params_.size());
    std::vector<double> updated(params_.size());
    const LegacyRng rng_before = shuffle_rng;  // restored if the backend fails midway

    const void *targets = shape_.loss == NN_LOSS_SOFTMAX_CROSS_ENTROPY ? static_cast<const void *>(data.labels.data())
                                                                        : data.targets.data();
    check_backend(iface->data_upload(state_.get(), data.x.data(), targets, rows, batch), "uploading the training set");

    nn_backend_train_config train{.struct_size = sizeof(nn_backend_train_config), .learning_rate = config.learning_rate};
    FitSummary summary;
    summary.steps_per_epoch = steps;
    double total = 0.0;  // the Trainer's running sum restarts with each fit call
    size_t count = 0;
    const auto start = std::chrono::steady_clock::now();
    try {
        for (size_t e = 0; e < config.epochs; ++e) {
            if (config.shuffle) {
                // x = x[permutation(N)]: permute the current order, so epochs compound.
                shuffle_rng.permutation(perm);
                for (size_t i = 0; i < rows; ++i) next[i] = order[size_t(perm[i])];
                order.swap(next);
            }
            check_backend(iface->train_steps(state_.get(), order.data(), steps, batch, &train, step_losses.data()),
                          "training");
            double epoch_total = 0.0;
            for (size_t it = 0; it < steps; ++it) {
                total += step_losses[it];
                ++count;
                epoch_total += step_losses[it];
                if (interval > 0 && it % interval == 0) {
                    records_.push_back({epochs_done_ + e + 1, it + 1, steps, total / double(count)});
                    total = 0.0;
                    count = 0;
                }
            }
            epoch_losses_.push_back(epoch_total / double(steps));
            summary.epochs_run = e + 1;
            summary.steps_run += steps;
        }
        check_backend(iface->params_read(state_.get(), after.data()), "reading parameters back");
    } catch (...) {
        // Put everything back as it was: the backend's parameters (from a buffer made
        // before the loop, so this cannot fail for lack of memory) and the stream.
        iface->params_write(state_.get(), before.data());
        shuffle_rng = rng_before;
        records_.resize(old_records);
        epoch_losses_.resize(old_epochs);
        throw;
    }
    summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    summary.final_loss = epoch_losses_.back();

    convert(after.data(), shape_.dtype, updated.data(), NN_DTYPE_FLOAT64, updated.size());
    params_.swap(updated);
    epochs_done_ += summary.epochs_run;
    return summary;
}

void Model::predict(const void *x, size_t rows, void *scores) {
    check_backend(placement_.iface->predict(state_.get(), x, rows, scores), "predicting");
}

namespace {
// Calls f with the buffer as float* or double*, by the model's dtype.
template <typename F>
void with_dtype(nn_dtype t, void *p, F &&f) {
    if (t == NN_DTYPE_FLOAT64)
        f(static_cast<double *>(p));
    else
        f(static_cast<float *>(p));
}
}  // namespace

void Model::softmax_rows(void *scores, size_t rows) const {
    const size_t outs = shape_.outputs();
    with_dtype(shape_.dtype, scores, [&](auto *s) {
        for (size_t r = 0; r < rows; ++r) math::softmax_row(s + r * outs, outs);
    });
}

void Model::argmax_rows(const void *scores, size_t rows, int32_t *classes) const {
    const size_t outs = shape_.outputs();
    with_dtype(shape_.dtype, const_cast<void *>(scores), [&](auto *s) {
        for (size_t r = 0; r < rows; ++r) classes[r] = int32_t(math::argmax(s + r * outs, outs));
    });
}

Evaluation Model::evaluate(const TrainData &data) {
    const size_t rows = data.rows, outs = shape_.outputs();
    TypedBuffer scores(shape_.dtype, rows * outs);
    predict(data.x.data(), rows, scores.data());
    Evaluation e{0.0, std::nan("")};
    with_dtype(shape_.dtype, scores.data(), [&](auto *s) {
        using T = std::remove_pointer_t<decltype(s)>;
        if (shape_.loss == NN_LOSS_SOFTMAX_CROSS_ENTROPY) {
            size_t correct = 0;
            for (size_t r = 0; r < rows; ++r) correct += math::argmax(s + r * outs, outs) == size_t(data.labels[r]);
            e.accuracy = double(correct) / double(rows);
            std::vector<T> terms(rows);
            e.loss = ref::softmax_cross_entropy(s, data.labels.data(), rows, outs, terms.data());
        } else {
            std::vector<T> terms(rows * outs);
            e.loss = ref::mean_squared_error(s, static_cast<const T *>(data.targets.data()), rows, outs, terms.data());
        }
    });
    return e;
}

}  // namespace nn
