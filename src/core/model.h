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
struct TrainData {
    TypedBuffer x;                // rows × inputs, model dtype
    std::vector<int32_t> labels;  // softmax models
    TypedBuffer targets;          // regression models: rows × outputs, model dtype
    size_t rows = 0;
};

struct FitConfig {
    size_t epochs = 10;
    size_t batch_size = 32;
    double learning_rate = 0.01;
    bool shuffle = true;
    size_t report_interval = 20;
};

struct FitSummary {
    size_t epochs_run = 0, steps_run = 0, steps_per_epoch = 0;
    double final_loss = 0.0, seconds = 0.0;
};

struct Evaluation {
    double loss;      // the training loss formula over all rows as one batch
    double accuracy;  // first maximal score == target class; NaN for regression
};

struct LossRecord {
    uint64_t epoch, iteration, steps_per_epoch;
    double loss;
};

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
    const std::vector<double> &epoch_losses() const { return epoch_losses_; }
    uint64_t epochs_done() const { return epochs_done_; }
    void reset_history();
    // Puts back what a saved model carried (epoch counter, own stream, histories).
    void restore_training_state(uint64_t epochs_done, const LegacyRng &rng, std::vector<LossRecord> records,
                                std::vector<double> epoch_losses);

    // Metadata strings saved with the model.
    const std::map<std::string, std::string> &metadata() const { return metadata_; }
    std::map<std::string, std::string> &metadata() { return metadata_; }

    // Replaces the parameters (values already rounded to the dtype).
    void set_params(const std::vector<double> &params);
    // Moves to another backend/device; on failure the model stays where it was.
    void move_to(const Placement &placement);
    // Trains; all-or-nothing: if a backend fails midway, parameters and histories
    // are restored to what they were before the call.
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

    NetShape shape_;
    std::vector<double> params_;  // host copy, values exact in the model dtype
    LegacyRng rng_;
    Placement placement_;
    State state_;
    uint64_t epochs_done_ = 0;
    std::vector<LossRecord> records_;
    std::vector<double> epoch_losses_;
    std::map<std::string, std::string> metadata_;
};

// Throws nn::Error for a backend result, with the plugin's message.
void check_backend(nn_backend_result r, const char *what);

}  // namespace nn

#endif  // NN_CORE_MODEL_H
