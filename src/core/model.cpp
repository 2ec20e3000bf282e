#include "core/model.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstring>

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
    if (precision_ != NN_PRECISION_STRICT) write_precision(state.get(), placement.iface, precision_);
    return state;
}

void Model::write_precision(nn_backend_model *state, const nn_backend_iface *iface, nn_precision precision) {
    if (iface->struct_size < offsetof(nn_backend_iface, precision_set) + sizeof(void *) || !iface->precision_set)
        return;  // such a backend computes strictly, which the setting allows
    check_backend(iface->precision_set(state, uint32_t(precision)), "setting the precision of the products");
}

void Model::set_precision(nn_precision precision) {
    if (precision != NN_PRECISION_STRICT && shape_.dtype != NN_DTYPE_FLOAT32)
        fail(NN_ERR_UNSUPPORTED, "reduced precision applies to float32 models; this model computes in float64");
    if (precision == precision_) return;
    write_precision(state_.get(), placement_.iface, precision);
    precision_ = precision;
}

void Model::write_params(nn_backend_model *state, const nn_backend_iface *iface) const {
    TypedBuffer buf(shape_.dtype, params_.size());
    convert(params_.data(), NN_DTYPE_FLOAT64, buf.data(), shape_.dtype, params_.size());
    check_backend(iface->params_write(state, buf.data()), "writing parameters to the backend");
}

void Model::reset_history() {
    epochs_done_ = 0;
    records_.clear();
    epochs_.clear();
}

void Model::restore_training_state(uint64_t epochs_done, const LegacyRng &rng, std::vector<LossRecord> records,
                                   std::vector<EpochRecord> epochs) {
    epochs_done_ = epochs_done;
    rng_ = rng;
    records_ = std::move(records);
    epochs_ = std::move(epochs);
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

bool Model::has_optimizer_members(const nn_backend_iface *iface) {
    return iface->struct_size >= offsetof(nn_backend_iface, optimizer_state_read) + sizeof(void *) &&
           iface->optimizer_state_write && iface->optimizer_state_read;
}

bool Model::backend_trains_optimizers() const { return has_optimizer_members(placement_.iface); }

void Model::write_optimizer(nn_backend_model *state, const nn_backend_iface *iface, nn_optimizer kind,
                            const void *values) const {
    if (!has_optimizer_members(iface)) {
        if (kind == NN_OPTIMIZER_SGD) return;  // such a backend trains plain SGD and holds no state
        fail(NN_ERR_UNSUPPORTED, "the " + std::string(iface->name) +
                                     " backend cannot hold optimizer state (its plugin predates optimizers)");
    }
    check_backend(iface->optimizer_state_write(state, uint32_t(kind), values, optimizer_slots(kind) * params_.size()),
                  "setting the optimizer state");
}

OptimizerState Model::optimizer_state() const {
    OptimizerState st;
    st.kind = opt_kind_;
    st.adam_step = adam_step_;
    const size_t n = optimizer_slots(opt_kind_) * params_.size();
    if (n == 0) return st;
    TypedBuffer buf(shape_.dtype, n);
    check_backend(placement_.iface->optimizer_state_read(state_.get(), buf.data(), n), "reading the optimizer state");
    st.values.resize(n);
    convert(buf.data(), shape_.dtype, st.values.data(), NN_DTYPE_FLOAT64, n);
    return st;
}

void Model::set_optimizer_state(const OptimizerState &st) {
    const size_t n = optimizer_slots(st.kind) * params_.size();
    if (st.values.size() != n && !(st.values.empty()))
        fail(NN_ERR_INTERNAL, "optimizer state of " + std::to_string(st.values.size()) + " values, expected " +
                                  std::to_string(n));
    TypedBuffer buf(shape_.dtype, n);
    if (!st.values.empty()) convert(st.values.data(), NN_DTYPE_FLOAT64, buf.data(), shape_.dtype, n);
    write_optimizer(state_.get(), placement_.iface, st.kind, st.values.empty() ? nullptr : buf.data());
    opt_kind_ = st.kind;
    adam_step_ = st.adam_step;
}

void Model::reset_optimizer() { set_optimizer_state(OptimizerState{}); }

void Model::move_to(const Placement &placement) {
    // Everything is read and written before anything changes: on failure the model stays.
    const OptimizerState opt = optimizer_state();
    State fresh = create_state(placement);
    if (opt.kind != NN_OPTIMIZER_SGD || has_optimizer_members(placement.iface)) {
        TypedBuffer buf(shape_.dtype, opt.values.size());
        convert(opt.values.data(), NN_DTYPE_FLOAT64, buf.data(), shape_.dtype, opt.values.size());
        if (opt.kind != NN_OPTIMIZER_SGD && !has_optimizer_members(placement.iface))
            fail(NN_ERR_UNSUPPORTED, "the " + std::string(placement.iface->name) +
                                         " backend cannot hold this model's optimizer state; reset the optimizer first");
        write_optimizer(fresh.get(), placement.iface, opt.kind, opt.values.empty() ? nullptr : buf.data());
    }
    state_ = std::move(fresh);
    placement_ = placement;
}

namespace {

// Rows `pick[0..n)` of a data set, in that order.
TrainData gather_rows(const TrainData &d, const NetShape &shape, const int64_t *pick, size_t n) {
    TrainData out;
    out.rows = n;
    const size_t in = shape.inputs(), outs = shape.outputs(), es = dtype_size(shape.dtype);
    out.x.owned = TypedBuffer(shape.dtype, n * in);
    const auto *src = static_cast<const unsigned char *>(d.x.data());
    auto *dst = static_cast<unsigned char *>(out.x.owned.data());
    for (size_t r = 0; r < n; ++r) std::memcpy(dst + r * in * es, src + size_t(pick[r]) * in * es, in * es);
    if (shape.loss == NN_LOSS_SOFTMAX_CROSS_ENTROPY) {
        out.labels.resize(n);
        for (size_t r = 0; r < n; ++r) out.labels[r] = d.labels[size_t(pick[r])];
    } else {
        out.targets = TypedBuffer(shape.dtype, n * outs);
        const auto *ts = static_cast<const unsigned char *>(d.targets.data());
        auto *td = static_cast<unsigned char *>(out.targets.data());
        for (size_t r = 0; r < n; ++r) std::memcpy(td + r * outs * es, ts + size_t(pick[r]) * outs * es, outs * es);
    }
    return out;
}

std::string epoch_step(uint64_t epoch, size_t step) {
    return "epoch " + std::to_string(epoch) + ", step " + std::to_string(step + 1);
}

}  // namespace

namespace {

// A communication call's result: a failure is NN_ERR_COMM with the plugin's reason.
void comm_check(int rc, const char *what) {
    if (rc == 0) return;
    const std::string detail = take_backend_error();
    fail(NN_ERR_COMM, std::string(what) + " failed: " + (detail.empty() ? "no reason given" : detail));
}

}  // namespace

// Sums a step's gradients and loss over the processes in one all-reduce (packed into one
// buffer with the loss as its last element). Called by the backend; never throws.
int exchange_gradients(void *context, void *grads, size_t count, double *loss) noexcept {
    auto *x = static_cast<Exchange *>(context);
    if (x->failed) return 1;
    const size_t es = dtype_size(x->dtype);
    unsigned char *buf = static_cast<unsigned char *>(x->pack.data());
    std::memcpy(buf, grads, count * es);
    if (x->dtype == NN_DTYPE_FLOAT64) {
        reinterpret_cast<double *>(buf)[count] = *loss;
    } else {
        reinterpret_cast<float *>(buf)[count] = float(*loss);
    }
    const uint32_t t = x->dtype == NN_DTYPE_FLOAT64 ? NN_COMM_FLOAT64 : NN_COMM_FLOAT32;
    if (x->comm->allreduce_sum(buf, count + 1, t, x->timeout) != 0) {
        x->failed = true;
        try {
            x->message = take_backend_error();
        } catch (...) {
            x->message = "no reason given";
        }
        return 1;
    }
    std::memcpy(grads, buf, count * es);
    *loss = x->dtype == NN_DTYPE_FLOAT64 ? reinterpret_cast<double *>(buf)[count]
                                         : double(reinterpret_cast<float *>(buf)[count]);
    return 0;
}

size_t validation_rows(double fraction, size_t rows) {
    if (!(fraction > 0.0)) return 0;
    return size_t(std::ceil(fraction * double(rows)));
}

FitSummary Model::fit(const TrainData &all, const FitConfig &config, LegacyRng &shuffle_rng) {
    const nn_backend_iface *iface = placement_.iface;
    const bool plain_sgd = config.optimizer == NN_OPTIMIZER_SGD && config.max_grad_norm == 0.0 &&
                           config.weight_decay == 0.0 && config.class_weights.empty();
    if (!plain_sgd && !has_optimizer_members(iface))
        fail(NN_ERR_UNSUPPORTED, "the " + std::string(iface->name) +
                                     " backend trains plain SGD only (its plugin predates optimizers, clipping, "
                                     "weight decay and class weights)");
    const LegacyRng rng_before = shuffle_rng;  // restored if the backend fails midway
    // Until the call returns normally, any exception puts the stream back (the split and
    // the processes' shared stream change it before the training loop's own rollback).
    struct StreamGuard {
        LegacyRng &stream;
        const LegacyRng &saved;
        bool armed = true;
        ~StreamGuard() {
            if (armed) stream = saved;
        }
    } stream_guard{shuffle_rng, rng_before};
    const ParallelConfig &par = config.parallel;
    const bool multi = par.comm != nullptr;
    if (multi) {
        if (!has_optimizer_members(iface))
            fail(NN_ERR_UNSUPPORTED, "the " + std::string(iface->name) +
                                         " backend cannot train across processes (its plugin predates it)");
        // Every process shuffles with process 0's stream, so the global batches agree.
        LegacyRng::State st = shuffle_rng.state();
        comm_check(par.comm->broadcast(&st, sizeof st, 0, par.timeout), "sharing process 0's random stream");
        LegacyRng shared;
        if (!shared.set_state(st)) fail(NN_ERR_COMM, "process 0 sent a random stream no generator can be in");
        shuffle_rng = shared;
    }

    // The validation split: one permutation from the fit's stream, before training.
    TrainData split_train, split_val;
    const TrainData *train = &all, *val = config.validation;
    if (!val && config.validation_fraction > 0.0) {
        const size_t n_val = validation_rows(config.validation_fraction, all.rows);
        std::vector<int64_t> perm(all.rows);
        shuffle_rng.permutation(perm);
        split_val = gather_rows(all, shape_, perm.data(), n_val);
        split_train = gather_rows(all, shape_, perm.data() + n_val, all.rows - n_val);
        train = &split_train;
        val = &split_val;
    }

    const size_t rows = train->rows;
    // Alone, a step takes `batch` rows (the Trainer drops the tail of each epoch). Across
    // P processes the global batch is split into P slices; this process takes `slice`
    // rows of it, starting at `slice_at`.
    size_t batch = std::min(config.batch_size, rows), slice = batch, slice_at = 0, steps = rows / batch;
    if (multi) {
        const size_t P = size_t(par.size), r = size_t(par.rank);
        batch = par.sharded ? config.batch_size : batch;
        if (batch < P)
            fail(NN_ERR_BAD_HYPERPARAMETER, "a global batch of " + std::to_string(batch) + " rows cannot be split over " +
                                                std::to_string(P) + " processes");
        slice = batch / P + (r < batch % P);
        slice_at = r * (batch / P) + std::min(r, batch % P);
        if (par.sharded) {
            // Each process steps through its own shard; an epoch has the smallest shard's steps.
            std::vector<double> mine(P, 0.0);
            mine[r] = double(rows / slice);
            comm_check(par.comm->allreduce_sum(mine.data(), P, NN_COMM_FLOAT64, par.timeout), "agreeing on the epoch length");
            steps = size_t(*std::min_element(mine.begin(), mine.end()));
            if (steps == 0) fail(NN_ERR_COMM, "a process's shard has fewer rows than its slice of the global batch");
        }
    }
    const size_t interval = config.report_interval;
    const size_t n_params = params_.size();

    // Everything the loop touches is allocated here, before the first step.
    std::vector<int64_t> order(rows);
    for (size_t i = 0; i < rows; ++i) order[i] = int64_t(i);
    // Across processes with the same rows: this process's slices of each epoch's order.
    std::vector<int64_t> slices(multi && !par.sharded ? steps * slice : 0);
    // When nothing happens on the host between epochs (no callback, validation, early
    // stopping or other processes) and the backend takes it (NN_BACKEND_CAP_EPOCH_GROUPS;
    // an older plugin may size its buffers for one epoch), the epochs go in groups: their
    // orders are drawn ahead and one train_steps call runs them all, so a GPU waits once
    // per group instead of once per epoch. Groups hold up to NN_BACKEND_GROUP_ORDER row
    // indices (1 MiB), at least one epoch; the results are those of one call per epoch,
    // bit for bit.
    const bool groups_ok = iface->struct_size >= offsetof(nn_backend_iface, capabilities) + sizeof(uint64_t) &&
                           (iface->capabilities & NN_BACKEND_CAP_EPOCH_GROUPS) != 0;
    const bool grouped =
        groups_ok && !multi && !config.progress && !val && !config.early_stopping && config.epochs > 1;
    const size_t group_cap =
        grouped ? std::max<size_t>(1, std::min(config.epochs, NN_BACKEND_GROUP_ORDER / (steps * batch))) : 1;
    std::vector<int64_t> group_rows(group_cap > 1 ? group_cap * steps * batch : 0);
    std::vector<double> step_losses(group_cap * steps);
    Exchange exchange{par.comm, par.timeout, TypedBuffer(shape_.dtype, multi ? n_params + 1 : 0), shape_.dtype, false, {}};
    // The histories grow in place (room reserved now); a failure truncates them back.
    const size_t old_records = records_.size(), old_epochs = epochs_.size();
    if (interval > 0) {
        const size_t per_epoch = steps / interval + (steps % interval != 0);  // records per epoch
        records_.reserve(old_records + config.epochs * per_epoch);
    }
    epochs_.reserve(old_epochs + config.epochs);
    TypedBuffer before(shape_.dtype, n_params), after(shape_.dtype, n_params);
    convert(params_.data(), NN_DTYPE_FLOAT64, before.data(), shape_.dtype, n_params);
    TypedBuffer best(shape_.dtype, config.early_stopping && config.restore_best ? n_params : 0);
    TypedBuffer val_scores(shape_.dtype, val ? val->rows * shape_.outputs() : 0);
    TypedBuffer val_terms(shape_.dtype, val ? val->rows * shape_.outputs() : 0);

    // The optimizer: its state persists while the kind stays; another kind starts at zero.
    const OptimizerState opt_before = optimizer_state();
    const uint64_t epochs_done_before = epochs_done_;
    TypedBuffer opt_before_buf(shape_.dtype, opt_before.values.size());
    convert(opt_before.values.data(), NN_DTYPE_FLOAT64, opt_before_buf.data(), shape_.dtype, opt_before.values.size());
    const auto put_back = [&] {
        // Undo everything (buffers made before the loop, so this cannot fail for lack
        // of host memory): the backend's parameters and optimizer, the stream, histories.
        iface->params_write(state_.get(), before.data());
        if (has_optimizer_members(iface))
            iface->optimizer_state_write(state_.get(), uint32_t(opt_before.kind),
                                         opt_before.values.empty() ? nullptr : opt_before_buf.data(),
                                         opt_before.values.size());
        opt_kind_ = opt_before.kind;
        adam_step_ = opt_before.adam_step;
        epochs_done_ = epochs_done_before;
        shuffle_rng = rng_before;
        records_.resize(old_records);
        epochs_.resize(old_epochs);
    };

    const void *targets = shape_.loss == NN_LOSS_SOFTMAX_CROSS_ENTROPY ? static_cast<const void *>(train->labels.data())
                                                                        : train->targets.data();
    FitSummary summary;
    summary.steps_per_epoch = steps;
    summary.final_loss = summary.best_loss = summary.final_val_loss = summary.final_val_accuracy = std::nan("");
    nn_backend_train_config tc{};
    tc.struct_size = sizeof tc;
    tc.learning_rate = config.learning_rate;
    tc.optimizer = uint32_t(config.optimizer);
    tc.momentum = config.momentum;
    tc.decay_rate = config.decay_rate;
    tc.beta1 = config.beta1;
    tc.beta2 = config.beta2;
    tc.epsilon = config.epsilon;
    tc.max_grad_norm = config.max_grad_norm;
    tc.weight_decay = config.weight_decay;
    tc.class_weights = config.class_weights.empty() ? nullptr : config.class_weights.data();
    tc.stop_on_non_finite = 1;
    if (multi) {
        tc.global_batch = batch;
        tc.exchange = exchange_gradients;
        tc.exchange_context = &exchange;
    }
    const size_t tc_size = has_optimizer_members(iface) ? sizeof tc : offsetof(nn_backend_train_config, optimizer);
    tc.struct_size = uint32_t(tc_size);

    double total = 0.0;  // the Trainer's running sum restarts with each fit call
    size_t count = 0;
    double last_val_loss = std::nan(""), last_val_acc = std::nan("");
    double best_monitored = std::nan("");
    bool legacy_diverged = false;
    size_t waited = 0;
    bool have_best_weights = false;
    const auto start = std::chrono::steady_clock::now();
    const auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); };
    const auto call_progress = [&](nn_progress_event event, uint64_t epoch, uint64_t iteration, double loss) {
        nn_progress p{};
        p.struct_size = sizeof p;
        p.event = event;
        p.epoch = epoch;
        p.iteration = iteration;
        p.steps_per_epoch = steps;
        p.loss = loss;
        p.val_loss = last_val_loss;
        p.val_accuracy = last_val_acc;
        p.elapsed_seconds = elapsed();
        return config.progress(&p, config.progress_user) != 0;
    };
    // A collective that fails during training stops the fit like a cancel (the completed
    // steps are kept), with NN_ERR_COMM: records why and returns false.
    const auto collective = [&](int rc, const char *what) {
        if (rc == 0) return true;
        summary.stop = StopReason::kCommFailed;
        summary.stop_message = std::string(what) + " failed: " + take_backend_error() + "; the model keeps its completed steps";
        return false;
    };
    // Whether to stop here; across processes, one process's stop stops them all. Stopping
    // because the vote itself failed leaves summary.stop at kCommFailed.
    const auto notify = [&](nn_progress_event event, uint64_t epoch, uint64_t iteration, double loss) {
        bool stop_here = false;
        if (config.progress && (!multi || par.callbacks_everywhere || par.rank == 0))
            stop_here = call_progress(event, epoch, iteration, loss);
        if (multi && par.any_callback) {
            double votes = stop_here ? 1.0 : 0.0;
            if (!collective(par.comm->allreduce_sum(&votes, 1, NN_COMM_FLOAT64, par.timeout), "sharing the callback's answer"))
                return true;
            stop_here = votes > 0.0;
        }
        return stop_here;
    };
    try {
        if (multi) {
            // Process 0's parameters, optimizer and epoch counter, so that every copy starts equal.
            uint64_t head[3] = {uint64_t(opt_kind_), adam_step_, epochs_done_};
            comm_check(par.comm->broadcast(head, sizeof head, 0, par.timeout), "sharing process 0's training state");
            if (head[0] > uint64_t(NN_OPTIMIZER_ADAM)) fail(NN_ERR_COMM, "process 0 sent an unknown optimizer");
            const auto kind = nn_optimizer(head[0]);
            TypedBuffer p0(shape_.dtype, n_params);
            convert(params_.data(), NN_DTYPE_FLOAT64, p0.data(), shape_.dtype, n_params);
            comm_check(par.comm->broadcast(p0.data(), p0.bytes.size(), 0, par.timeout), "sharing process 0's parameters");
            TypedBuffer s0(shape_.dtype, optimizer_slots(kind) * n_params);
            if (s0.size() > 0) {
                if (par.rank == 0)
                    check_backend(iface->optimizer_state_read(state_.get(), s0.data(), s0.size()), "reading the optimizer state");
                comm_check(par.comm->broadcast(s0.data(), s0.bytes.size(), 0, par.timeout), "sharing process 0's optimizer state");
            }
            check_backend(iface->params_write(state_.get(), p0.data()), "writing parameters to the backend");
            write_optimizer(state_.get(), iface, kind, s0.size() > 0 ? s0.data() : nullptr);
            opt_kind_ = kind;
            adam_step_ = head[1];
            epochs_done_ = head[2];
        }
        if (opt_kind_ != config.optimizer) {
            write_optimizer(state_.get(), iface, config.optimizer, nullptr);
            opt_kind_ = config.optimizer;
            adam_step_ = 0;
        }
        // A backend that can refers to the training set in place (it lives, converted
        // or the caller's own, until this call returns) instead of copying it.
        const bool attach = iface->struct_size >= offsetof(nn_backend_iface, data_attach) + sizeof(void *) &&
                            iface->data_attach;
        check_backend((attach ? iface->data_attach : iface->data_upload)(state_.get(), train->x.data(), targets, rows, slice),
                      "uploading the training set");
        const int64_t *step_rows = slices.empty() ? order.data() : slices.data();
        const bool chunk_at_reports = (multi ? par.any_callback : config.progress != nullptr) && interval > 0;
        bool stop = false;
        // The group being run: epochs [group_begin, group_end) of this call, and the stream
        // as it was before their shuffles (to put back the draws of epochs that never ran).
        size_t group_begin = 0, group_end = 0, e = 0;
        LegacyRng group_stream = shuffle_rng;
        for (; e < config.epochs && !stop; ++e) {
            const uint64_t epoch = epochs_done_ + 1;
            const double *losses = step_losses.data();  // this epoch's step losses
            if (group_cap > 1) {
                if (e == group_end) {  // draw the next group's orders and run all its steps
                    group_begin = e;
                    group_end = std::min(config.epochs, e + group_cap);
                    group_stream = shuffle_rng;
                    for (size_t g = 0; g < group_end - group_begin; ++g) {
                        if (config.shuffle) shuffle_rng.shuffle(order);
                        std::copy_n(order.begin(), steps * batch, group_rows.begin() + std::ptrdiff_t(g * steps * batch));
                    }
                    const size_t n = (group_end - group_begin) * steps;
                    std::fill(step_losses.begin(), step_losses.begin() + std::ptrdiff_t(n), 0.0);
                    tc.adam_step = adam_step_;
                    check_backend(iface->train_steps(state_.get(), group_rows.data(), n, batch, &tc, step_losses.data()),
                                  "training");
                }
                losses = step_losses.data() + (e - group_begin) * steps;
            } else if (config.shuffle) {
                // x = x[permutation(N)]: permute the current order, so epochs compound.
                shuffle_rng.shuffle(order);
            }
            if (!slices.empty()) {  // this process's slice of every global batch of the epoch
                for (size_t st = 0; st < steps; ++st)
                    std::copy_n(order.begin() + std::ptrdiff_t(st * batch + slice_at), slice,
                                slices.begin() + std::ptrdiff_t(st * slice));
                step_rows = slices.data();
            } else {
                step_rows = order.data();
            }
            double epoch_total = 0.0;
            size_t it = 0;
            while (it < steps && !stop) {
                // With a callback, run up to the next report point so that a cancel
                // lands right after the step it was called for; else the whole epoch
                // (or, grouped, nothing: the group's call ran it).
                size_t end = steps;
                if (chunk_at_reports) end = std::min(steps, (it + interval - 1) / interval * interval + 1);
                if (group_cap == 1) {
                    std::fill(step_losses.begin() + it, step_losses.begin() + end, 0.0);
                    tc.adam_step = adam_step_;
                    check_backend(iface->train_steps(state_.get(), step_rows + it * slice, end - it, slice, &tc,
                                                     step_losses.data() + it),
                                  "training");
                }
                for (; it < end; ++it) {
                    const double l = losses[it];
                    if (exchange.failed && !std::isfinite(l)) {
                        summary.stop = StopReason::kCommFailed;
                        summary.stop_message = "the processes could not exchange gradients at " + epoch_step(epoch, it) +
                                               ": " + exchange.message + "; the model keeps its completed steps";
                        stop = true;
                        break;
                    }
                    if (!std::isfinite(l) && !has_optimizer_members(iface)) {
                        // A plugin from before 0.2 does not stop at the first non-finite
                        // loss: it ran the rest of the call, so nothing of it can be kept.
                        legacy_diverged = true;
                        stop = true;
                        break;
                    }
                    if (!std::isfinite(l)) {
                        summary.stop = StopReason::kDiverged;
                        summary.stop_message = "training diverged: the loss is " + std::string(std::isnan(l) ? "NaN" : "infinite") +
                                               " at " + epoch_step(epoch, it) +
                                               "; the model keeps the weights from before that step (lower the "
                                               "learning rate, or clip gradients)";
                        stop = true;
                        break;
                    }
                    ++adam_step_;
                    ++summary.steps_run;
                    total += l;
                    ++count;
                    epoch_total += l;
                    if (interval > 0 && it % interval == 0) {
                        records_.push_back({epoch, it + 1, steps, total / double(count)});
                        total = 0.0;
                        count = 0;
                        if (notify(NN_PROGRESS_REPORT, epoch, it + 1, records_.back().loss)) {
                            if (summary.stop != StopReason::kCommFailed) {
                                summary.stop = StopReason::kCancelled;
                                summary.stop_message = "the progress callback stopped the fit after " + epoch_step(epoch, it);
                            }
                            stop = true;
                            ++it;
                            break;
                        }
                    }
                }
            }
            if (it < steps) break;  // an interrupted epoch is not counted
            // The epoch is complete.
            const double epoch_loss = epoch_total / double(steps);
            bool validation_failed = false;
            if (val) {
                const Evaluation ev = evaluate_into(*val, val_scores, val_terms);
                last_val_loss = ev.loss;
                last_val_acc = ev.accuracy;
                if (multi && par.sharded) {  // the figures over every process's validation rows
                    double sums[3] = {ev.loss * double(val->rows), ev.accuracy * double(val->rows), double(val->rows)};
                    if (collective(par.comm->allreduce_sum(sums, 3, NN_COMM_FLOAT64, par.timeout),
                                   "summing the validation figures")) {
                        last_val_loss = sums[0] / sums[2];
                        last_val_acc = sums[1] / sums[2];
                    } else {  // the epoch's steps are done and kept; its figures are unknown
                        last_val_loss = last_val_acc = std::nan("");
                        stop = validation_failed = true;
                    }
                }
            }
            epochs_.push_back({epoch, epoch_loss, val ? last_val_loss : std::nan(""), val ? last_val_acc : std::nan("")});
            ++epochs_done_;
            summary.epochs_run = e + 1;
            summary.final_loss = epoch_loss;
            summary.final_val_loss = val ? last_val_loss : std::nan("");
            summary.final_val_accuracy = val ? last_val_acc : std::nan("");
            if (config.early_stopping && !validation_failed) {
                const double monitored = val ? last_val_loss : epoch_loss;
                if (std::isfinite(monitored) &&
                    (std::isnan(best_monitored) || best_monitored - monitored > config.min_delta)) {
                    best_monitored = monitored;
                    summary.best_epoch = epoch;
                    summary.best_loss = monitored;
                    waited = 0;
                    if (config.restore_best) {
                        check_backend(iface->params_read(state_.get(), best.data()), "reading the best parameters");
                        have_best_weights = true;
                    }
                } else if (++waited >= config.patience && summary.stop == StopReason::kCompleted) {
                    // (A cancel or failure already recorded for this epoch keeps its status.)
                    summary.stop = StopReason::kEarlyStopped;
                    stop = true;
                }
            }
            if (summary.stop != StopReason::kCancelled && summary.stop != StopReason::kCommFailed &&
                notify(NN_PROGRESS_EPOCH_END, epoch, steps, epoch_loss) && !stop) {
                if (summary.stop != StopReason::kCommFailed) {
                    summary.stop = StopReason::kCancelled;
                    summary.stop_message = "the progress callback stopped the fit at the end of epoch " + std::to_string(epoch);
                }
                stop = true;
            }
        }
        if (group_cap > 1 && e < group_end) {
            // Stopped (diverged) in epoch e of a group: the stream keeps the shuffles of the
            // epochs that began, e included, as one call per epoch would have left it. The
            // draws of a shuffle depend only on the number of rows: they are replayed on
            // `order`, which is not needed any more.
            shuffle_rng = group_stream;
            if (config.shuffle)
                for (size_t g = group_begin; g <= e; ++g) shuffle_rng.shuffle(order);
        }
        const bool finished = summary.stop == StopReason::kCompleted || summary.stop == StopReason::kEarlyStopped;
        if (finished && have_best_weights)
            check_backend(iface->params_write(state_.get(), best.data()), "restoring the best parameters");
        check_backend(iface->params_read(state_.get(), after.data()), "reading parameters back");
    } catch (...) {
        put_back();
        throw;
    }
    // (Checked in the model dtype, then widened straight into the host copy: no third
    // copy of the parameters for a large model.)
    bool overflowed = false;
    for (size_t i = 0; i < n_params && !overflowed; ++i) overflowed = !std::isfinite(load(after.data(), shape_.dtype, i));
    if (overflowed || legacy_diverged) {
        // Keep nothing of it: a parameter overflowed while the loss stayed finite, or an
        // old plugin trained past the first non-finite loss.
        put_back();
        FitSummary undone;
        undone.steps_per_epoch = steps;
        undone.final_loss = undone.best_loss = undone.final_val_loss = undone.final_val_accuracy = std::nan("");
        undone.stop = StopReason::kDiverged;
        undone.stop_message = overflowed ? "training diverged: a parameter overflowed to a non-finite value while the "
                                           "loss stayed finite; the model is as it was before this call"
                                         : "training diverged: the loss became non-finite, and the " +
                                               std::string(iface->name) +
                                               " backend (a plugin from before libnn 0.2) cannot stop before that "
                                               "step; the model is as it was before this call";
        undone.seconds = elapsed();
        return undone;
    }
    summary.seconds = elapsed();
    convert(after.data(), shape_.dtype, params_.data(), NN_DTYPE_FLOAT64, n_params);  // cannot fail
    stream_guard.armed = false;
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
    TypedBuffer scores(shape_.dtype, data.rows * shape_.outputs()), terms(shape_.dtype, data.rows * shape_.outputs());
    return evaluate_into(data, scores, terms);
}

Evaluation Model::evaluate_into(const TrainData &data, TypedBuffer &scores, TypedBuffer &terms) {
    const size_t rows = data.rows, outs = shape_.outputs();
    predict(data.x.data(), rows, scores.data());
    Evaluation e{0.0, std::nan("")};
    with_dtype(shape_.dtype, scores.data(), [&](auto *s) {
        using T = std::remove_pointer_t<decltype(s)>;
        T *scratch = static_cast<T *>(terms.data());
        if (shape_.loss == NN_LOSS_SOFTMAX_CROSS_ENTROPY) {
            size_t correct = 0;
            for (size_t r = 0; r < rows; ++r) correct += math::argmax(s + r * outs, outs) == size_t(data.labels[r]);
            e.accuracy = double(correct) / double(rows);
            e.loss = ref::softmax_cross_entropy(s, data.labels.data(), rows, outs, scratch);
        } else {
            e.loss = ref::mean_squared_error(s, static_cast<const T *>(data.targets.data()), rows, outs, scratch);
        }
    });
    return e;
}

}  // namespace nn
