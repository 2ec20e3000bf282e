// A model: its shape, the host copy of its parameters, its training history and the
// backend state that holds the working copy. Training policy (shuffle, step order,
// reporting) lives here; how a step is computed lives in the backend.
#ifndef NN_CORE_MODEL_H
#define NN_CORE_MODEL_H

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/convert.h"
#include "core/net.h"
#include "core/rng.h"
#include "nn/nn.h"
#include "nn/nn_backend.h"
#include "nn/nn_comm.h"

namespace nn {

// Where a model runs: a backend's function table and its device.
struct Placement {
    const nn_backend_iface *iface = nullptr;
    int backend_index = 0;
    nn_device_kind kind = NN_DEVICE_REFERENCE;
    int index = 0;
    std::string name;
};

// Training data already converted and checked by the caller of fit.
// Rows × columns in the model dtype: the caller's own memory when it already is in that
// dtype (borrowed for the duration of one API call), else a converted copy.
struct InputMatrix {
    TypedBuffer owned;
    const void *borrowed = nullptr;
    const void *data() const { return borrowed ? borrowed : owned.data(); }
};

struct TrainData {
    InputMatrix x;                // rows × inputs, model dtype
    std::vector<int32_t> labels;  // softmax models
    TypedBuffer targets;          // regression models: rows × outputs, model dtype
    size_t rows = 0;
};

// Data-parallel training over a process group (nn_comm.h), already agreed on by every
// process (the C API checks that they call fit alike).
struct ParallelConfig {
    const nn_comm_iface *comm = nullptr;  // null: one process
    int rank = 0, size = 1;
    bool sharded = false;               // each process passes its own rows
    bool callbacks_everywhere = false;  // else only process 0 runs the callback
    bool any_callback = false;          // some process will run one (so all vote on stopping)
    double timeout = 60.0;
};

// The host side of a step's gradient exchange (the backend calls exchange_gradients).
struct Exchange {
    const nn_comm_iface *comm;
    double timeout;
    TypedBuffer pack;  // params + 1 values of the model dtype
    nn_dtype dtype;
    bool failed;
    std::string message;
};
int exchange_gradients(void *context, void *grads, size_t count, double *loss) noexcept;

struct FitConfig {
    size_t epochs = 10;
    size_t batch_size = 32;
    double learning_rate = 0.01;
    bool shuffle = true;
    size_t report_interval = 20;
    // The optimizer (values already checked).
    nn_optimizer optimizer = NN_OPTIMIZER_SGD;
    double momentum = 0.9, decay_rate = 0.99, beta1 = 0.9, beta2 = 0.999, epsilon = 1e-7;
    double max_grad_norm = 0.0, weight_decay = 0.0;
    std::vector<double> class_weights;  // empty: none; else one per output
    // Validation: a checked set, or a fraction of the rows held out (validation == nullptr).
    const TrainData *validation = nullptr;
    double validation_fraction = 0.0;
    bool early_stopping = false;
    size_t patience = 10;
    double min_delta = 0.0;
    bool restore_best = true;
    nn_progress_fn progress = nullptr;
    void *progress_user = nullptr;
    ParallelConfig parallel;
};

enum class StopReason { kCompleted, kEarlyStopped, kCancelled, kDiverged, kCommFailed };

struct FitSummary {
    size_t epochs_run = 0, steps_run = 0, steps_per_epoch = 0;
    double final_loss = 0.0, seconds = 0.0;
    StopReason stop = StopReason::kCompleted;
    std::string stop_message;  // for kCancelled / kDiverged
    uint64_t best_epoch = 0;
    double best_loss = 0.0, final_val_loss = 0.0, final_val_accuracy = 0.0;
};

struct Evaluation {
    double loss;      // the training loss formula over all rows as one batch
    double accuracy;  // first maximal score == target class; NaN for regression
};

struct LossRecord {
    uint64_t epoch, iteration, steps_per_epoch;
    double loss;
};

struct EpochRecord {
    uint64_t epoch;  // 1-based, over the model's life
    double loss;     // mean training loss of the epoch's steps
    double val_loss, val_accuracy;  // NaN without validation
};

// What a model's optimizer holds between fit calls (the state itself lives on the
// backend; this is its host-side description, or a copy of it for saving and moving).
struct OptimizerState {
    nn_optimizer kind = NN_OPTIMIZER_SGD;
    uint64_t adam_step = 0;     // Adam's t after the last step
    std::vector<double> values; // slots × params, model-dtype values as doubles
};

// Rows a validation fraction holds out of `rows`: ceil(fraction · rows), 0 for 0.
size_t validation_rows(double fraction, size_t rows);

// Number of per-parameter state slots of an optimizer.
inline size_t optimizer_slots(nn_optimizer o) { return NN_BACKEND_OPTIMIZER_SLOTS(uint32_t(o)); }

enum class InitRule { kNormal, kXavier, kHe };

// Initial parameters as the book draws them: per layer W from randn in C order
// (scaled by the rule), b zero; rounded once to the dtype.
std::vector<double> initial_params(const NetShape &shape, nn_init rule, double init_std, LegacyRng &rng);

class Model {
public:
    // `rng` becomes the model's own stream (the shuffle's, unless fit is given one).
    Model(NetShape shape, std::vector<double> params, const LegacyRng &rng, const Placement &placement);

    const NetShape &shape() const { return shape_; }
    const Placement &placement() const { return placement_; }
    const std::vector<double> &params() const { return params_; }
    LegacyRng &rng() { return rng_; }
    const LegacyRng &rng() const { return rng_; }
    const std::vector<LossRecord> &loss_history() const { return records_; }
    const std::vector<EpochRecord> &epoch_history() const { return epochs_; }
    uint64_t epochs_done() const { return epochs_done_; }
    void reset_history();
    // Puts back what a saved model carried (epoch counter, own stream, histories).
    void restore_training_state(uint64_t epochs_done, const LegacyRng &rng, std::vector<LossRecord> records,
                                std::vector<EpochRecord> epochs);

    // The optimizer: its kind and step count, and a copy of its state read from the backend.
    nn_optimizer optimizer_kind() const { return opt_kind_; }
    uint64_t adam_step() const { return adam_step_; }
    OptimizerState optimizer_state() const;
    // Replaces the optimizer state (values.size() must be slots × params; values exact in
    // the dtype). On failure nothing changes.
    void set_optimizer_state(const OptimizerState &state);
    // Drops the state: the next fit starts its optimizer from zero.
    void reset_optimizer();
    // True when the backend holds optimizer state (tables with the 0.2 members).
    bool backend_trains_optimizers() const;

    // Metadata strings saved with the model.
    const std::map<std::string, std::string> &metadata() const { return metadata_; }
    std::map<std::string, std::string> &metadata() { return metadata_; }

    // Replaces the parameters (values already rounded to the dtype).
    void set_params(const std::vector<double> &params);
    // Moves to another backend/device; on failure the model stays where it was.
    void move_to(const Placement &placement);
    // How float32 products may be computed (nn_precision), on this backend and any the
    // model moves to; on failure the setting stays as it was.
    nn_precision precision() const { return precision_; }
    void set_precision(nn_precision precision);
    // Trains. All-or-nothing on failure: if a backend fails midway, parameters,
    // optimizer state, histories and `shuffle_rng` are restored to what they were. A
    // cancel or divergence is not a failure: the summary says so and the work is kept.
    FitSummary fit(const TrainData &data, const FitConfig &config, LegacyRng &shuffle_rng);
    // Scores (rows × outputs, model dtype) for inputs x (rows × inputs, model dtype).
    void predict(const void *x, size_t rows, void *scores);
    // Scores → probabilities in place (softmax per row, model dtype).
    void softmax_rows(void *scores, size_t rows) const;
    // The first maximal score of each row.
    void argmax_rows(const void *scores, size_t rows, int32_t *classes) const;
    // Loss and accuracy on checked, converted data.
    Evaluation evaluate(const TrainData &data);

private:
    struct StateDeleter {
        const nn_backend_iface *iface;
        void operator()(nn_backend_model *m) const { if (m) iface->model_destroy(m); }
    };
    using State = std::unique_ptr<nn_backend_model, StateDeleter>;

    State create_state(const Placement &placement) const;
    void write_params(nn_backend_model *state, const nn_backend_iface *iface) const;
    static bool has_optimizer_members(const nn_backend_iface *iface);
    // Hands `precision` to a backend state (nothing when the backend has no such member).
    static void write_precision(nn_backend_model *state, const nn_backend_iface *iface, nn_precision precision);
    // Writes `kind` with `values` (model dtype bytes, or null for zeros) to a backend state.
    void write_optimizer(nn_backend_model *state, const nn_backend_iface *iface, nn_optimizer kind,
                         const void *values) const;
    Evaluation evaluate_into(const TrainData &data, TypedBuffer &scores, TypedBuffer &terms);

    NetShape shape_;
    std::vector<double> params_;  // host copy, values exact in the model dtype
    LegacyRng rng_;
    Placement placement_;
    nn_precision precision_ = NN_PRECISION_STRICT;  // before state_: create_state reads it
    State state_;
    uint64_t epochs_done_ = 0;
    std::vector<LossRecord> records_;
    std::vector<EpochRecord> epochs_;
    nn_optimizer opt_kind_ = NN_OPTIMIZER_SGD;
    uint64_t adam_step_ = 0;
    std::map<std::string, std::string> metadata_;
};

// Throws nn::Error for a backend result, with the plugin's message.
void check_backend(nn_backend_result r, const char *what);

}  // namespace nn

#endif  // NN_CORE_MODEL_H
