// Models, training, inference and devices at the C boundary: every argument is checked
// here, before the core sees it, so that a rejected call changes nothing.
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <vector>

#include "capi/guard.h"
#include "capi/handles.h"
#include "runtime/comm.h"
#include "runtime/registry.h"

using nn::fail;
using nn::capi::checked_mul;
using nn::capi::check_dtype;
using nn::capi::check_struct_size;
using nn::capi::guard;
using nn::capi::physical_memory_bytes;
using nn::capi::placement_of;
using nn::capi::require;

namespace {

std::string cell(size_t r, size_t c) { return "[" + std::to_string(r) + ", " + std::to_string(c) + "]"; }

// x (rows × cols, caller dtype) → model dtype, refusing NaN, ±inf and values the
// model's dtype cannot hold. Already in the model's dtype, x is borrowed, not copied:
// the training data is then held once, by its owner.
nn::InputMatrix convert_inputs(const nn::NetShape &shape, const void *x, nn_dtype x_dtype, size_t rows, size_t cols) {
    require(x, "x");
    check_dtype(x_dtype, "x_dtype");
    if (rows == 0) fail(NN_ERR_INVALID_ARGUMENT, "rows is 0");
    if (cols != shape.inputs())
        fail(NN_ERR_SHAPE_MISMATCH, "x has " + std::to_string(cols) + " columns, the model expects " +
                                        std::to_string(shape.inputs()));
    const size_t n = checked_mul(rows, cols, "x");
    for (size_t i = 0; i < n; ++i) {
        const double v = nn::load(x, x_dtype, i);
        if (!std::isfinite(v)) fail(NN_ERR_NON_FINITE, "x" + cell(i / cols, i % cols) + " is " + (std::isnan(v) ? "NaN" : "infinite"));
        if (shape.dtype == NN_DTYPE_FLOAT32 && !std::isfinite(float(v)))
            fail(NN_ERR_NON_FINITE, "x" + cell(i / cols, i % cols) + " = " + nn::num(v) + " overflows float32");
    }
    nn::InputMatrix out;
    if (x_dtype == shape.dtype) {
        out.borrowed = x;
    } else {
        out.owned = nn::TypedBuffer(shape.dtype, n);
        nn::convert(x, x_dtype, out.owned.data(), shape.dtype, n);
    }
    return out;
}

// Targets in any accepted form → class indices (softmax) or model-dtype rows (regression).
void convert_targets(const nn::NetShape &shape, const void *targets, nn_target_type type, size_t target_cols,
                     size_t rows, nn::TrainData &data) {
    require(targets, "targets");
    const size_t outs = shape.outputs();
    const bool softmax = shape.loss == NN_LOSS_SOFTMAX_CROSS_ENTROPY;
    if (type == NN_TARGET_CLASS_INDEX) {
        if (target_cols != 1)
            fail(NN_ERR_SHAPE_MISMATCH, "class-index targets have 1 column, not " + std::to_string(target_cols));
        const auto *labels = static_cast<const int32_t *>(targets);
        for (size_t r = 0; r < rows; ++r)
            if (labels[r] < 0 || size_t(labels[r]) >= outs)
                fail(NN_ERR_LABEL_OUT_OF_RANGE, "targets[" + std::to_string(r) + "] = " + std::to_string(labels[r]) +
                                                    " is not a class of a model with " + std::to_string(outs) + " outputs");
        if (softmax) {
            data.labels.assign(labels, labels + rows);
        } else {  // regression against one-hot rows
            data.targets = nn::TypedBuffer(shape.dtype, checked_mul(rows, outs, "targets"));
            std::vector<double> onehot(outs);
            for (size_t r = 0; r < rows; ++r) {
                std::fill(onehot.begin(), onehot.end(), 0.0);
                onehot[size_t(labels[r])] = 1.0;
                nn::convert(onehot.data(), NN_DTYPE_FLOAT64,
                            static_cast<unsigned char *>(data.targets.data()) + r * outs * nn::dtype_size(shape.dtype),
                            shape.dtype, outs);
            }
        }
        return;
    }
    if (type != NN_TARGET_ROWS_FLOAT32 && type != NN_TARGET_ROWS_FLOAT64)
        fail(NN_ERR_INVALID_ARGUMENT, "target_type is not a known nn_target_type (" + std::to_string(int(type)) + ")");
    if (target_cols != outs)
        fail(NN_ERR_SHAPE_MISMATCH, "targets have " + std::to_string(target_cols) + " columns, the model has " +
                                        std::to_string(outs) + " outputs");
    const nn_dtype t_dtype = type == NN_TARGET_ROWS_FLOAT32 ? NN_DTYPE_FLOAT32 : NN_DTYPE_FLOAT64;
    const size_t n = checked_mul(rows, outs, "targets");
    for (size_t i = 0; i < n; ++i) {
        const double v = nn::load(targets, t_dtype, i);
        if (!std::isfinite(v)) fail(NN_ERR_NON_FINITE, "targets" + cell(i / outs, i % outs) + " is " + (std::isnan(v) ? "NaN" : "infinite"));
        if (shape.dtype == NN_DTYPE_FLOAT32 && !std::isfinite(float(v)))
            fail(NN_ERR_NON_FINITE, "targets" + cell(i / outs, i % outs) + " overflows float32");
    }
    if (softmax) {  // the book reduces one-hot rows with argmax (first maximum)
        data.labels.resize(rows);
        for (size_t r = 0; r < rows; ++r) {
            size_t best = 0;
            for (size_t j = 1; j < outs; ++j)
                if (nn::load(targets, t_dtype, r * outs + j) > nn::load(targets, t_dtype, r * outs + best)) best = j;
            data.labels[r] = int32_t(best);
        }
    } else {
        data.targets = nn::TypedBuffer(shape.dtype, n);
        nn::convert(targets, t_dtype, data.targets.data(), shape.dtype, n);
    }
}

// A hyperparameter in an open or closed interval, with a message that names it.
void check_range(const char *name, double v, double lo, bool lo_open, double hi, bool hi_open) {
    const bool ok = std::isfinite(v) && (lo_open ? v > lo : v >= lo) && (hi_open ? v < hi : v <= hi);
    if (!ok)
        fail(NN_ERR_BAD_HYPERPARAMETER, std::string(name) + " must be in " + (lo_open ? "(" : "[") + nn::num(lo) + ", " +
                                            nn::num(hi) + (hi_open ? ")" : "]") + ", got " + nn::num(v));
}

// The optimizer, regularisation, early-stopping and callback options → config.
void check_trainer_options(const nn::NetShape &shape, const nn_fit_options &o, nn::FitConfig &config) {
    if (o.optimizer < NN_OPTIMIZER_SGD || o.optimizer > NN_OPTIMIZER_ADAM)
        fail(NN_ERR_INVALID_ARGUMENT, "optimizer is not a known nn_optimizer (" + std::to_string(int(o.optimizer)) + ")");
    config.optimizer = o.optimizer;
    const double inf = HUGE_VAL;
    // Every optimizer's settings are checked whichever is chosen: a bad value is a
    // mistake even where it would go unused.
    check_range("momentum", o.momentum, 0.0, false, 1.0, true);
    check_range("decay_rate", o.decay_rate, 0.0, true, 1.0, true);
    check_range("beta1", o.beta1, 0.0, true, 1.0, true);
    check_range("beta2", o.beta2, 0.0, true, 1.0, true);
    if (!(std::isfinite(o.epsilon) && o.epsilon > 0.0))
        fail(NN_ERR_BAD_HYPERPARAMETER, "epsilon must be finite and > 0, got " + nn::num(o.epsilon));
    if (shape.dtype == NN_DTYPE_FLOAT32 && !(float(o.epsilon) > 0.0f))
        fail(NN_ERR_BAD_HYPERPARAMETER, "epsilon " + nn::num(o.epsilon) + " rounds to 0 in a float32 model");
    config.momentum = o.momentum;
    config.decay_rate = o.decay_rate;
    config.beta1 = o.beta1;
    config.beta2 = o.beta2;
    config.epsilon = o.epsilon;
    check_range("max_grad_norm", o.max_grad_norm, 0.0, false, inf, true);
    check_range("weight_decay", o.weight_decay, 0.0, false, inf, true);
    config.max_grad_norm = o.max_grad_norm;
    config.weight_decay = o.weight_decay;

    if (o.class_weights || o.n_class_weights) {
        if (!o.class_weights) fail(NN_ERR_NULL_POINTER, "class_weights is NULL while n_class_weights is " + std::to_string(o.n_class_weights));
        if (shape.loss != NN_LOSS_SOFTMAX_CROSS_ENTROPY)
            fail(NN_ERR_BAD_HYPERPARAMETER, "class weights need a softmax model; this one is a regression model");
        if (o.n_class_weights != shape.outputs())
            fail(NN_ERR_SHAPE_MISMATCH, "got " + std::to_string(o.n_class_weights) + " class weights, the model has " +
                                            std::to_string(shape.outputs()) + " classes");
        bool any = false;
        for (size_t k = 0; k < o.n_class_weights; ++k) {
            const double w = o.class_weights[k];
            if (!(std::isfinite(w) && w >= 0.0))
                fail(NN_ERR_BAD_HYPERPARAMETER, "class_weights[" + std::to_string(k) + "] must be finite and >= 0, got " + nn::num(w));
            any = any || w > 0.0;
        }
        if (!any) fail(NN_ERR_BAD_HYPERPARAMETER, "class weights are all 0");
        config.class_weights.assign(o.class_weights, o.class_weights + o.n_class_weights);
    }

    if (o.patience < 0) fail(NN_ERR_BAD_HYPERPARAMETER, "patience must be >= 0, got " + std::to_string(o.patience));
    check_range("min_delta", o.min_delta, 0.0, false, inf, true);
    config.early_stopping = o.early_stopping != 0;
    config.patience = size_t(o.patience);
    config.min_delta = o.min_delta;
    config.restore_best = o.restore_best != 0;
    config.progress = o.progress;
    config.progress_user = o.progress_user;
}

void fill_device_info(nn_device_info *out, nn_device_kind kind, int index, bool available, const std::string &name,
                      const std::string &reason) {
    out->kind = kind;
    out->index = index;
    out->available = available ? 1 : 0;
    std::snprintf(out->name, sizeof out->name, "%s", name.c_str());
    std::snprintf(out->reason, sizeof out->reason, "%s", reason.c_str());
}

nn::Model &model_of(nn_model *m) {
    require(m, "model");
    return *m->impl;
}
const nn::Model &model_of(const nn_model *m) {
    require(m, "model");
    return *m->impl;
}

// Every argument check of nn_fit, and the converted data and config; throws nn::Error.
void prepare_fit(nn::Model &m, const void *x, nn_dtype x_dtype, size_t rows, size_t cols, const void *targets,
                 nn_target_type target_type, size_t target_cols, const nn_fit_options &o, nn::TrainData &data,
                 nn::TrainData &validation, nn::FitConfig &config) {
    data.x = convert_inputs(m.shape(), x, x_dtype, rows, cols);
    data.rows = rows;
    convert_targets(m.shape(), targets, target_type, target_cols, rows, data);

    if (o.epochs == 0) fail(NN_ERR_BAD_HYPERPARAMETER, "epochs is 0");
    if (o.batch_size == 0) fail(NN_ERR_BAD_HYPERPARAMETER, "batch_size is 0");
    if (!(std::isfinite(o.learning_rate) && o.learning_rate > 0.0))
        fail(NN_ERR_BAD_HYPERPARAMETER, "learning_rate must be finite and > 0, got " + nn::num(o.learning_rate));
    if (m.shape().dtype == NN_DTYPE_FLOAT32 && !(std::isfinite(float(o.learning_rate)) && float(o.learning_rate) > 0.0f))
        fail(NN_ERR_BAD_HYPERPARAMETER, "learning_rate " + nn::num(o.learning_rate) +
                                            " is not representable in a float32 model (it rounds to " +
                                            nn::num(float(o.learning_rate)) + ")");
    config.epochs = o.epochs;
    config.learning_rate = o.learning_rate;
    config.shuffle = o.shuffle != 0;
    config.report_interval = o.report_interval;
    check_trainer_options(m.shape(), o, config);

    // Validation: a caller's set, or a held-out fraction of the rows.
    size_t train_rows = rows;
    if (o.validation_fraction != 0.0 && !(o.validation_fraction > 0.0 && o.validation_fraction < 1.0))
        fail(NN_ERR_BAD_HYPERPARAMETER, "validation_fraction must be in [0, 1), got " + nn::num(o.validation_fraction));
    if (o.val_x) {
        if (o.val_rows == 0) fail(NN_ERR_INVALID_ARGUMENT, "val_rows is 0 while val_x is set");
        try {
            validation.x = convert_inputs(m.shape(), o.val_x, o.val_x_dtype, o.val_rows, o.val_cols);
            validation.rows = o.val_rows;
            convert_targets(m.shape(), o.val_targets, o.val_target_type, o.val_target_cols, o.val_rows, validation);
        } catch (const nn::Error &e) {
            throw nn::Error(e.status(), std::string("validation set: ") + e.what());
        }
        config.validation = &validation;
    } else if (o.val_rows != 0 || o.val_targets) {
        fail(NN_ERR_NULL_POINTER, "val_x is NULL while val_rows or val_targets is set");
    } else if (o.validation_fraction != 0.0) {
        const size_t held = nn::validation_rows(o.validation_fraction, rows);
        if (held >= rows)
            fail(NN_ERR_BAD_HYPERPARAMETER, "validation_fraction " + nn::num(o.validation_fraction) + " of " +
                                                std::to_string(rows) + " rows leaves no training row");
        config.validation_fraction = o.validation_fraction;
        train_rows = rows - held;
    }

    const size_t batch = std::min(o.batch_size, train_rows);
    config.batch_size = batch;
    // The histories grow by one epoch record and up to steps/interval loss records per
    // epoch; refuse an epoch count whose history could never fit in memory.
    const size_t steps = train_rows / batch;
    const size_t per_epoch = o.report_interval ? steps / o.report_interval + (steps % o.report_interval != 0) : 0;
    const double history_bytes =
        double(o.epochs) * (double(per_epoch) * sizeof(nn_loss_record) + sizeof(nn_epoch_record));
    if (history_bytes > physical_memory_bytes())
        fail(NN_ERR_BAD_HYPERPARAMETER, "epochs " + std::to_string(o.epochs) +
                                            " is too many: their loss history would not fit in memory");

    if (o.parallel != NN_PARALLEL_NONE && o.parallel != NN_PARALLEL_MPI)
        fail(NN_ERR_INVALID_ARGUMENT, "parallel is not a known nn_parallel (" + std::to_string(int(o.parallel)) + ")");
    if (!(std::isfinite(o.parallel_timeout) && o.parallel_timeout > 0.0))
        fail(NN_ERR_BAD_HYPERPARAMETER, "parallel_timeout must be finite and > 0, got " + nn::num(o.parallel_timeout));
}

// One process's view of a fit, for agree(): the values every process must share.
enum View : size_t { kOk, kRows, kBatch, kEpochs, kShape, kDtype, kTrained, kOptimizer, kSettings, kInterval,
                     kValidation, kShuffle, kSharded, kCallbacksEverywhere, kCallback, kViewSize };
const char *const kViewNames[kViewSize] = {"", "rows", "batch_size", "epochs", "the model's layers, activation or loss",
                                           "the model's dtype",
                                           "the epochs the model has already trained (reset the histories, or start "
                                           "every process from the same model)",
                                           "optimizer",
                                           "the training settings (learning rate, optimizer hyperparameters, "
                                           "clipping, weight decay, class weights, validation fraction, early stopping)",
                                           "report_interval", "having a validation set", "shuffle", "sharded",
                                           "progress_on_every_process", ""};

// 52 bits of an FNV-1a hash, exact in a double: equal inputs give equal keys.
struct Key {
    uint64_t h = 1469598103934665603ull;
    void bytes(const void *p, size_t n) {
        const auto *b = static_cast<const unsigned char *>(p);
        for (size_t i = 0; i < n; ++i) h = (h ^ b[i]) * 1099511628211ull;
    }
    template <typename T>
    void value(T v) { bytes(&v, sizeof v); }
    double get() const { return double(h >> 12); }
};

// Every setting that must be the same on every process for the models to stay equal
// and for the processes to run the same collectives.
double settings_key(const nn_fit_options &o) {
    Key k;
    for (double v : {o.learning_rate, o.momentum, o.decay_rate, o.beta1, o.beta2, o.epsilon, o.max_grad_norm,
                     o.weight_decay, o.validation_fraction, o.min_delta})
        k.value(v);
    k.value(int64_t(o.early_stopping != 0));
    k.value(int64_t(o.patience));
    k.value(int64_t(o.restore_best != 0));
    k.value(uint64_t(o.n_class_weights));
    if (o.class_weights) k.bytes(o.class_weights, o.n_class_weights * sizeof(double));
    return k.get();
}

// The model's architecture as one number that is exact in a double (a 52-bit FNV-1a hash
// of the layer sizes, activation and loss).
double shape_key(const nn::NetShape &shape) {
    Key k;
    for (size_t n : shape.sizes) k.value(uint64_t(n));
    k.value(uint64_t(shape.activation));
    k.value(uint64_t(shape.loss));
    return k.get();
}

std::vector<double> fit_view(const nn::Model &m, const nn_fit_options &o, size_t rows, bool ok) {
    std::vector<double> v(kViewSize);
    v[kOk] = ok;
    v[kRows] = double(rows);
    v[kBatch] = double(o.batch_size);
    v[kEpochs] = double(o.epochs);
    v[kShape] = shape_key(m.shape());
    v[kDtype] = double(m.shape().dtype);
    v[kTrained] = double(m.epochs_done());
    v[kSettings] = settings_key(o);
    v[kCallbacksEverywhere] = o.progress_on_every_process != 0;
    v[kOptimizer] = double(o.optimizer);
    v[kInterval] = double(o.report_interval);
    v[kValidation] = (o.val_x != nullptr) + 2.0 * (o.validation_fraction != 0.0);
    v[kShuffle] = o.shuffle != 0;
    v[kSharded] = o.sharded != 0;
    v[kCallback] = o.progress != nullptr;
    return v;
}

// Gathers every process's view (each writes its own row of a zeroed table, one sum) and
// fails with NN_ERR_COMM unless all passed their checks and agree.
void agree(const nn::runtime::Group &g, double timeout, const std::vector<double> &mine, bool sharded,
           bool *any_callback = nullptr, bool callbacks_everywhere = false) {
    const size_t P = size_t(g.size), r = size_t(g.rank);
    std::vector<double> all(P * kViewSize, 0.0);
    std::copy(mine.begin(), mine.end(), all.begin() + std::ptrdiff_t(r * kViewSize));
    if (g.iface->allreduce_sum(all.data(), all.size(), NN_COMM_FLOAT64, timeout) != 0)
        fail(NN_ERR_COMM, "the processes could not compare their nn_fit arguments: " + nn::take_backend_error());
    if (mine[kOk] == 0.0) return;  // this process's own error is the one to report
    for (size_t p = 0; p < P; ++p)
        if (all[p * kViewSize + kOk] == 0.0)
            fail(NN_ERR_COMM, "process " + std::to_string(p) + " rejected its nn_fit arguments (its own status says why)");
    for (size_t k = kRows; k < kCallback; ++k) {
        if (k == kRows && sharded) continue;
        for (size_t p = 1; p < P; ++p)
            if (all[p * kViewSize + k] != all[k])
                fail(NN_ERR_COMM, std::string("the processes disagree on ") + kViewNames[k] + ": process 0 has " +
                                      nn::num(all[k]) + ", process " + std::to_string(p) + " has " +
                                      nn::num(all[p * kViewSize + k]));
    }
    if (any_callback) {
        *any_callback = false;
        for (size_t p = 0; p < P; ++p)
            if (all[p * kViewSize + kCallback] != 0.0 && (callbacks_everywhere || p == 0)) *any_callback = true;
    }
}

// The process group a fit asks for (the option, or NN_PARALLEL=mpi), or null for one
// process. Fails with NN_ERR_COMM when it is unavailable.
const nn::runtime::Group *parallel_group(const nn_fit_options &o) {
    bool want = o.parallel == NN_PARALLEL_MPI;
    if (o.parallel == NN_PARALLEL_NONE) {
        if (const char *env = std::getenv("NN_PARALLEL")) {
            const std::string v = env;
            if (v == "mpi" || v == "MPI")
                want = true;
            else if (!v.empty() && v != "none")
                fail(NN_ERR_INVALID_ARGUMENT, "NN_PARALLEL=" + v + " is not a known value (mpi or none)");
        }
    }
    if (!want) return nullptr;
    const nn::runtime::Group &g = nn::runtime::mpi_group();
    if (!g.iface) fail(NN_ERR_COMM, "multi-process training is unavailable: " + g.why);
    return &g;
}

}  // namespace

extern "C" {

NN_API void nn_model_desc_init(nn_model_desc *desc) {
    if (!desc) return;
    std::memset(desc, 0, sizeof *desc);
    desc->struct_size = sizeof *desc;
    desc->hidden_activation = NN_ACTIVATION_SIGMOID;
    desc->loss = NN_LOSS_SOFTMAX_CROSS_ENTROPY;
    desc->dtype = NN_DTYPE_FLOAT32;
    desc->init = NN_INIT_NORMAL;
    desc->init_std = 0.01;
    desc->seed = 1984;
}

NN_API nn_status nn_create(nn_model **out, const nn_model_desc *desc) {
    if (out) *out = nullptr;
    return guard("nn_create", [&] {
        require(out, "out");
        require(desc, "desc");
        check_struct_size(desc->struct_size, sizeof(nn_model_desc), "nn_model_desc");
        require(desc->layer_sizes, "desc->layer_sizes");
        if (desc->n_layer_sizes < 2)
            fail(NN_ERR_INVALID_ARGUMENT, "a model needs at least 2 layer sizes (input and output), got " +
                                              std::to_string(desc->n_layer_sizes));
        if (desc->n_layer_sizes > 1024) fail(NN_ERR_INVALID_ARGUMENT, "more than 1024 layer sizes");
        nn::NetShape shape;
        shape.sizes.assign(desc->layer_sizes, desc->layer_sizes + desc->n_layer_sizes);
        size_t total = 0;
        for (size_t l = 0; l < shape.sizes.size(); ++l) {
            if (shape.sizes[l] == 0) fail(NN_ERR_INVALID_ARGUMENT, "layer_sizes[" + std::to_string(l) + "] is 0");
            if (l + 1 < shape.sizes.size()) {
                size_t w = checked_mul(shape.sizes[l], shape.sizes[l + 1], "a weight matrix");
                if (__builtin_add_overflow(total, w + shape.sizes[l + 1], &total) || total > (SIZE_MAX >> 4))
                    fail(NN_ERR_SIZE_OVERFLOW, "the parameter count is too large");
            }
        }
        if (desc->hidden_activation < NN_ACTIVATION_SIGMOID || desc->hidden_activation > NN_ACTIVATION_IDENTITY)
            fail(NN_ERR_INVALID_ARGUMENT, "hidden_activation is not a known nn_activation (" +
                                              std::to_string(int(desc->hidden_activation)) + ")");
        if (desc->loss != NN_LOSS_SOFTMAX_CROSS_ENTROPY && desc->loss != NN_LOSS_MEAN_SQUARED_ERROR)
            fail(NN_ERR_INVALID_ARGUMENT, "loss is not a known nn_loss (" + std::to_string(int(desc->loss)) + ")");
        check_dtype(desc->dtype, "dtype");
        if (desc->init != NN_INIT_NORMAL && desc->init != NN_INIT_XAVIER && desc->init != NN_INIT_HE)
            fail(NN_ERR_INVALID_ARGUMENT, "init is not a known nn_init (" + std::to_string(int(desc->init)) + ")");
        if (desc->init == NN_INIT_NORMAL && !(std::isfinite(desc->init_std) && desc->init_std >= 0.0))
            fail(NN_ERR_BAD_HYPERPARAMETER, "init_std must be finite and >= 0, got " + nn::num(desc->init_std));
        // Refuse what cannot fit before trying: a model holds its parameters at least
        // three times (the host copy in float64, the backend's parameters and gradients),
        // and a request beyond the machine's memory is better a status now than an
        // overcommitted crash later.
        const double model_bytes = double(total) * double(sizeof(double) + 2 * nn::dtype_size(desc->dtype));
        if (model_bytes > physical_memory_bytes())
            fail(NN_ERR_OUT_OF_MEMORY, "a model of " + std::to_string(total) + " parameters needs more memory than this machine has (" +
                                           nn::num(physical_memory_bytes() / 1073741824.0) + " GiB)");
        if (desc->loss == NN_LOSS_SOFTMAX_CROSS_ENTROPY && shape.sizes.back() < 2)
            fail(NN_ERR_INVALID_ARGUMENT, "a softmax model needs at least 2 outputs, got " + std::to_string(shape.sizes.back()));
        shape.activation = desc->hidden_activation;
        shape.loss = desc->loss;
        shape.dtype = desc->dtype;

        const nn::Placement place = placement_of(nn::runtime::resolve(NN_DEVICE_AUTO, 0));
        std::optional<nn::capi::Use> rng_use;
        if (desc->rng) rng_use.emplace(desc->rng->users, nn::capi::Access::kWrite, "stream desc->rng");
        nn::LegacyRng own(desc->seed);
        // Draw from a copy of the shared stream and commit it only once the model exists.
        nn::LegacyRng draw = desc->rng ? desc->rng->impl : own;
        std::vector<double> params = nn::initial_params(shape, desc->init, desc->init_std, draw);
        auto handle = std::make_unique<nn_model>();
        handle->impl = std::make_unique<nn::Model>(std::move(shape), std::move(params), desc->rng ? own : draw, place);
        if (desc->rng) desc->rng->impl = draw;
        *out = handle.release();
    });
}

NN_API void nn_destroy(nn_model *model) { delete model; }

NN_API nn_status nn_model_layer_count(const nn_model *model, size_t *out_count) {
    return guard("nn_model_layer_count", [&] {
        const nn::Model &m = model_of(model);
        require(out_count, "out_count");
        *out_count = m.shape().sizes.size();
    });
}

NN_API nn_status nn_model_layer_sizes(const nn_model *model, size_t *out_sizes, size_t capacity) {
    return guard("nn_model_layer_sizes", [&] {
        const nn::Model &m = model_of(model);
        require(out_sizes, "out_sizes");
        const auto &s = m.shape().sizes;
        if (capacity < s.size())
            fail(NN_ERR_BUFFER_TOO_SMALL, "capacity " + std::to_string(capacity) + " < " + std::to_string(s.size()) + " layer sizes");
        std::copy(s.begin(), s.end(), out_sizes);
    });
}

NN_API nn_status nn_model_dtype(const nn_model *model, nn_dtype *out_dtype) {
    return guard("nn_model_dtype", [&] {
        const nn::Model &m = model_of(model);
        require(out_dtype, "out_dtype");
        *out_dtype = m.shape().dtype;
    });
}

NN_API nn_status nn_param_count(const nn_model *model, size_t *out_count) {
    return guard("nn_param_count", [&] {
        const nn::Model &m = model_of(model);
        require(out_count, "out_count");
        *out_count = m.params().size();
    });
}

NN_API nn_status nn_get_params(nn_model *model, double *out_params, size_t capacity) {
    return guard("nn_get_params", [&] {
        const nn::Model &m = model_of(model);
        const nn::capi::Use use(model->users, nn::capi::Access::kRead, "model");
        require(out_params, "out_params");
        const auto &p = m.params();
        if (capacity < p.size())
            fail(NN_ERR_BUFFER_TOO_SMALL, "capacity " + std::to_string(capacity) + " < " + std::to_string(p.size()) + " parameters");
        std::copy(p.begin(), p.end(), out_params);
    });
}

NN_API nn_status nn_set_params(nn_model *model, const double *params, size_t count) {
    return guard("nn_set_params", [&] {
        nn::Model &m = model_of(model);
        const nn::capi::Use use(model->users, nn::capi::Access::kWrite, "model");
        require(params, "params");
        if (count != m.params().size())
            fail(NN_ERR_SHAPE_MISMATCH, "got " + std::to_string(count) + " parameters, the model has " +
                                            std::to_string(m.params().size()));
        std::vector<double> p(params, params + count);
        for (size_t i = 0; i < count; ++i) {
            if (m.shape().dtype == NN_DTYPE_FLOAT32) p[i] = double(float(p[i]));
            if (!std::isfinite(p[i]))
                fail(NN_ERR_NON_FINITE, "params[" + std::to_string(i) + "] = " + nn::num(params[i]) +
                                            " is not finite in the model's dtype");
        }
        m.set_params(p);
    });
}

NN_API void nn_fit_options_init(nn_fit_options *options) {
    if (!options) return;
    std::memset(options, 0, sizeof *options);
    options->struct_size = sizeof *options;
    options->epochs = 10;
    options->batch_size = 32;
    options->learning_rate = 0.01;
    options->shuffle = 1;
    options->report_interval = 20;
    options->rng = nullptr;
    options->optimizer = NN_OPTIMIZER_SGD;
    options->momentum = 0.9;
    options->decay_rate = 0.99;
    options->beta1 = 0.9;
    options->beta2 = 0.999;
    options->epsilon = 1e-7;
    options->max_grad_norm = 0.0;
    options->weight_decay = 0.0;
    options->val_x_dtype = NN_DTYPE_FLOAT64;
    options->val_target_type = NN_TARGET_CLASS_INDEX;
    options->val_target_cols = 1;
    options->patience = 10;
    options->min_delta = 0.0;
    options->restore_best = 1;
    options->parallel = NN_PARALLEL_NONE;
    options->parallel_timeout = 60.0;
}

NN_API void nn_fit_report_init(nn_fit_report *report) {
    if (!report) return;
    std::memset(report, 0, sizeof *report);
    report->struct_size = sizeof *report;
}

NN_API nn_status nn_fit(nn_model *model, const void *x, nn_dtype x_dtype, size_t rows, size_t cols,
                        const void *targets, nn_target_type target_type, size_t target_cols,
                        const nn_fit_options *options, nn_fit_report *out_report) {
    return guard("nn_fit", [&] {
        nn::Model &m = model_of(model);
        const nn::capi::Use use(model->users, nn::capi::Access::kWrite, "model");
        nn_fit_options defaults;
        nn_fit_options_init(&defaults);
        // Structs from 0.1's header end before the trainer's fields: take what they have
        // and the defaults for the rest (and write a 0.1 report only as far as it goes).
        constexpr size_t kOptionsV01 = offsetof(nn_fit_options, optimizer);
        constexpr size_t kReportV01 = offsetof(nn_fit_report, stopped_early);
        if (options) {
            if (options->struct_size == kOptionsV01)
                std::memcpy(static_cast<void *>(&defaults), options, kOptionsV01);
            else
                check_struct_size(options->struct_size, sizeof(nn_fit_options), "nn_fit_options");
        }
        if (out_report && out_report->struct_size != kReportV01)
            check_struct_size(out_report->struct_size, sizeof(nn_fit_report), "nn_fit_report");
        const nn_fit_options &o = options && options->struct_size == sizeof(nn_fit_options) ? *options : defaults;

        // Across processes, every process must learn whether the others' arguments passed
        // their checks, or a process that rejected its own would leave the rest waiting.
        const nn::runtime::Group *group = parallel_group(o);
        const double timeout = std::isfinite(o.parallel_timeout) && o.parallel_timeout > 0.0 ? o.parallel_timeout : 60.0;
        nn::TrainData data, validation;
        nn::FitConfig config;
        try {
            prepare_fit(m, x, x_dtype, rows, cols, targets, target_type, target_cols, o, data, validation, config);
        } catch (const nn::Error &) {
            if (group) agree(*group, timeout, fit_view(m, o, rows, false), o.sharded != 0);
            throw;
        }
        if (group) {
            agree(*group, timeout, fit_view(m, o, rows, true), o.sharded != 0, &config.parallel.any_callback,
                  o.progress_on_every_process != 0);
            config.parallel.comm = group->iface;
            config.parallel.rank = group->rank;
            config.parallel.size = group->size;
            config.parallel.sharded = o.sharded != 0;
            config.parallel.callbacks_everywhere = o.progress_on_every_process != 0;
            config.parallel.timeout = timeout;
            if (o.sharded) config.batch_size = o.batch_size;  // the global batch, not capped by this shard
        }

        std::optional<nn::capi::Use> rng_use;
        if (o.rng) rng_use.emplace(o.rng->users, nn::capi::Access::kWrite, "stream options->rng");
        nn::FitSummary s = m.fit(data, config, o.rng ? o.rng->impl : m.rng());
        if (out_report) {
            nn_fit_report r;
            nn_fit_report_init(&r);
            r.epochs_run = s.epochs_run;
            r.steps_run = s.steps_run;
            r.steps_per_epoch = s.steps_per_epoch;
            r.final_loss = s.final_loss;
            r.seconds = s.seconds;
            r.device_kind = m.placement().kind;
            r.device_index = m.placement().index;
            r.stopped_early = s.stop == nn::StopReason::kEarlyStopped;
            r.best_epoch = s.best_epoch;
            r.best_loss = s.best_loss;
            r.final_val_loss = s.final_val_loss;
            r.final_val_accuracy = s.final_val_accuracy;
            r.struct_size = out_report->struct_size;
            std::memcpy(static_cast<void *>(out_report), &r, out_report->struct_size);
        }
        if (s.stop == nn::StopReason::kCancelled) fail(NN_ERR_CANCELLED, s.stop_message);
        if (s.stop == nn::StopReason::kDiverged) fail(NN_ERR_DIVERGED, s.stop_message);
        if (s.stop == nn::StopReason::kCommFailed) fail(NN_ERR_COMM, s.stop_message);
    });
}


NN_API nn_status nn_get_loss_history(const nn_model *model, nn_loss_record *out, size_t capacity, size_t *out_count) {
    return guard("nn_get_loss_history", [&] {
        const nn::Model &m = model_of(model);
        const nn::capi::Use use(model->users, nn::capi::Access::kRead, "model");
        require(out_count, "out_count");
        if (capacity > 0) require(out, "out");
        const auto &h = m.loss_history();
        for (size_t i = 0; i < h.size() && i < capacity; ++i)
            out[i] = {h[i].epoch, h[i].iteration, h[i].steps_per_epoch, h[i].loss};
        *out_count = h.size();
    });
}

NN_API nn_status nn_get_epoch_losses(const nn_model *model, double *out, size_t capacity, size_t *out_count) {
    return guard("nn_get_epoch_losses", [&] {
        const nn::Model &m = model_of(model);
        const nn::capi::Use use(model->users, nn::capi::Access::kRead, "model");
        require(out_count, "out_count");
        if (capacity > 0) require(out, "out");
        const auto &h = m.epoch_history();
        for (size_t i = 0; i < h.size() && i < capacity; ++i) out[i] = h[i].loss;
        *out_count = h.size();
    });
}

NN_API nn_status nn_get_epoch_history(const nn_model *model, nn_epoch_record *out, size_t capacity, size_t *out_count) {
    return guard("nn_get_epoch_history", [&] {
        const nn::Model &m = model_of(model);
        const nn::capi::Use use(model->users, nn::capi::Access::kRead, "model");
        require(out_count, "out_count");
        if (capacity > 0) require(out, "out");
        const auto &h = m.epoch_history();
        for (size_t i = 0; i < h.size() && i < capacity; ++i)
            out[i] = {h[i].epoch, h[i].loss, h[i].val_loss, h[i].val_accuracy};
        *out_count = h.size();
    });
}

NN_API nn_status nn_reset_history(nn_model *model) {
    return guard("nn_reset_history", [&] {
        nn::Model &m = model_of(model);
        const nn::capi::Use use(model->users, nn::capi::Access::kWrite, "model");
        m.reset_history();
    });
}

NN_API nn_status nn_parallel_info(nn_parallel kind, int *out_rank, int *out_size) {
    return guard("nn_parallel_info", [&] {
        if (kind != NN_PARALLEL_MPI)
            fail(NN_ERR_INVALID_ARGUMENT, "kind is not a multi-process nn_parallel (" + std::to_string(int(kind)) + ")");
        const nn::runtime::Group &g = nn::runtime::mpi_group();
        if (!g.iface) fail(NN_ERR_COMM, "multi-process training is unavailable: " + g.why);
        if (out_rank) *out_rank = g.rank;
        if (out_size) *out_size = g.size;
    });
}

NN_API nn_status nn_reset_optimizer(nn_model *model) {
    return guard("nn_reset_optimizer", [&] {
        nn::Model &m = model_of(model);
        const nn::capi::Use use(model->users, nn::capi::Access::kWrite, "model");
        m.reset_optimizer();
    });
}

}  // extern "C"

namespace {

// Forward pass for the inference entry points: checked inputs in, model-dtype scores out.
nn::TypedBuffer run_scores(nn::Model &m, const void *x, nn_dtype x_dtype, size_t rows, size_t cols) {
    const nn::InputMatrix in = convert_inputs(m.shape(), x, x_dtype, rows, cols);
    nn::TypedBuffer scores(m.shape().dtype, checked_mul(rows, m.shape().outputs(), "the scores"));
    m.predict(in.data(), rows, scores.data());
    return scores;
}


}  // namespace

extern "C" {

NN_API nn_status nn_predict(nn_model *model, const void *x, nn_dtype x_dtype, size_t rows, size_t cols,
                            nn_output what, void *out, nn_dtype out_dtype, size_t out_capacity) {
    return guard("nn_predict", [&] {
        nn::Model &m = model_of(model);
        const nn::capi::Use use(model->users, nn::capi::Access::kWrite, "model");
        require(out, "out");
        check_dtype(out_dtype, "out_dtype");
        if (what != NN_OUTPUT_SCORES && what != NN_OUTPUT_PROBABILITIES)
            fail(NN_ERR_INVALID_ARGUMENT, "what is not a known nn_output (" + std::to_string(int(what)) + ")");
        if (what == NN_OUTPUT_PROBABILITIES && m.shape().loss != NN_LOSS_SOFTMAX_CROSS_ENTROPY)
            fail(NN_ERR_UNSUPPORTED, "probabilities need a softmax model; this one is a regression model");
        if (rows == 0) fail(NN_ERR_INVALID_ARGUMENT, "rows is 0");
        const size_t need = checked_mul(rows, m.shape().outputs(), "the output");
        if (out_capacity < need)
            fail(NN_ERR_BUFFER_TOO_SMALL, "out holds " + std::to_string(out_capacity) + " values, " + std::to_string(rows) +
                                              " rows × " + std::to_string(m.shape().outputs()) + " outputs need " +
                                              std::to_string(need));
        nn::TypedBuffer s = run_scores(m, x, x_dtype, rows, cols);
        if (what == NN_OUTPUT_PROBABILITIES) m.softmax_rows(s.data(), rows);
        nn::convert(s.data(), s.dtype, out, out_dtype, need);
    });
}

NN_API nn_status nn_predict_classes(nn_model *model, const void *x, nn_dtype x_dtype, size_t rows, size_t cols,
                                    int32_t *out_classes, size_t out_capacity) {
    return guard("nn_predict_classes", [&] {
        nn::Model &m = model_of(model);
        const nn::capi::Use use(model->users, nn::capi::Access::kWrite, "model");
        require(out_classes, "out_classes");
        if (rows == 0) fail(NN_ERR_INVALID_ARGUMENT, "rows is 0");
        if (out_capacity < rows)
            fail(NN_ERR_BUFFER_TOO_SMALL, "out_classes holds " + std::to_string(out_capacity) + " values, " +
                                              std::to_string(rows) + " rows need as many");
        nn::TypedBuffer s = run_scores(m, x, x_dtype, rows, cols);
        m.argmax_rows(s.data(), rows, out_classes);
    });
}

NN_API nn_status nn_evaluate(nn_model *model, const void *x, nn_dtype x_dtype, size_t rows, size_t cols,
                             const void *targets, nn_target_type target_type, size_t target_cols, double *out_loss,
                             double *out_accuracy) {
    return guard("nn_evaluate", [&] {
        nn::Model &m = model_of(model);
        const nn::capi::Use use(model->users, nn::capi::Access::kWrite, "model");
        if (!out_loss && !out_accuracy) fail(NN_ERR_NULL_POINTER, "out_loss and out_accuracy are both NULL");
        nn::TrainData data;
        data.x = convert_inputs(m.shape(), x, x_dtype, rows, cols);
        data.rows = rows;
        convert_targets(m.shape(), targets, target_type, target_cols, rows, data);
        const nn::Evaluation e = m.evaluate(data);
        if (out_loss) *out_loss = e.loss;
        if (out_accuracy) *out_accuracy = e.accuracy;
    });
}

NN_API void nn_device_info_init(nn_device_info *info) {
    if (!info) return;
    std::memset(info, 0, sizeof *info);
    info->struct_size = sizeof *info;
}

NN_API nn_status nn_device_count(size_t *out_count) {
    return guard("nn_device_count", [&] {
        require(out_count, "out_count");
        *out_count = nn::runtime::devices().size();
    });
}

NN_API nn_status nn_device_get(size_t i, nn_device_info *out_info) {
    return guard("nn_device_get", [&] {
        require(out_info, "out_info");
        check_struct_size(out_info->struct_size, sizeof(nn_device_info), "nn_device_info");
        const auto &all = nn::runtime::devices();
        if (i >= all.size())
            fail(NN_ERR_INVALID_ARGUMENT, "device " + std::to_string(i) + " does not exist; there are " + std::to_string(all.size()));
        const auto &d = all[i];
        fill_device_info(out_info, d.kind, d.index, d.available, d.name, d.reason);
    });
}

NN_API nn_status nn_set_device(nn_model *model, nn_device_kind kind, int index) {
    return guard("nn_set_device", [&] {
        nn::Model &m = model_of(model);
        const nn::capi::Use use(model->users, nn::capi::Access::kWrite, "model");
        if (index < 0) fail(NN_ERR_INVALID_ARGUMENT, "device index " + std::to_string(index) + " is negative");
        const nn::runtime::Device &d = nn::runtime::resolve(kind, kind == NN_DEVICE_AUTO ? 0 : index);
        if (d.iface == m.placement().iface && d.backend_index == m.placement().backend_index) return;
        m.move_to(placement_of(d));
    });
}

NN_API nn_status nn_get_device(const nn_model *model, nn_device_info *out_info) {
    return guard("nn_get_device", [&] {
        const nn::Model &m = model_of(model);
        const nn::capi::Use use(model->users, nn::capi::Access::kRead, "model");
        require(out_info, "out_info");
        check_struct_size(out_info->struct_size, sizeof(nn_device_info), "nn_device_info");
        const nn::Placement &p = m.placement();
        fill_device_info(out_info, p.kind, p.index, true, p.name, "");
    });
}

NN_API nn_status nn_set_precision(nn_model *model, nn_precision precision) {
    return guard("nn_set_precision", [&] {
        nn::Model &m = model_of(model);
        const nn::capi::Use use(model->users, nn::capi::Access::kWrite, "model");
        if (precision < NN_PRECISION_STRICT || precision > NN_PRECISION_BFLOAT16)
            fail(NN_ERR_INVALID_ARGUMENT, "precision is not a known nn_precision (" + std::to_string(int(precision)) + ")");
        m.set_precision(precision);
    });
}

NN_API nn_status nn_get_precision(const nn_model *model, nn_precision *out_precision) {
    return guard("nn_get_precision", [&] {
        const nn::Model &m = model_of(model);
        const nn::capi::Use use(model->users, nn::capi::Access::kRead, "model");
        require(out_precision, "out_precision");
        *out_precision = m.precision();
    });
}

}  // extern "C"
