// The CPU plugin against the reference implementation on random nets, through the
// public C API: depths 1–4, several widths (small ones take the fused loops, wide ones
// OpenBLAS), every activation and loss, both dtypes, batch 1 up to beyond the data.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "nn/nn.h"

namespace {

struct Case {
    std::vector<size_t> sizes;
    nn_activation act;
    nn_loss loss;
    nn_dtype dtype;
    size_t batch;
};

std::string name_of(const Case &c) {
    static const char *acts[] = {"Sigmoid", "Relu", "Tanh", "Identity"};
    std::string n = std::string(acts[c.act]) + (c.loss == NN_LOSS_SOFTMAX_CROSS_ENTROPY ? "CE" : "MSE") +
                    (c.dtype == NN_DTYPE_FLOAT64 ? "F64" : "F32") + "_B" + std::to_string(c.batch);
    for (size_t s : c.sizes) n += "_" + std::to_string(s);
    return n;
}

void PrintTo(const Case &c, std::ostream *os) { *os << name_of(c); }

bool cpu_plugin_available() {
    size_t n = 0;
    nn_device_count(&n);
    for (size_t i = 0; i < n; ++i) {
        nn_device_info info;
        nn_device_info_init(&info);
        if (nn_device_get(i, &info) == NN_OK && info.kind == NN_DEVICE_CPU && info.available) return true;
    }
    return false;
}

struct Trained {
    std::vector<double> params, scores, epoch_losses;
};

Trained train_on(nn_device_kind device, const Case &c, const std::vector<double> &x, const std::vector<int32_t> &labels,
                 const std::vector<double> &targets, size_t rows) {
    nn_model_desc desc;
    nn_model_desc_init(&desc);
    desc.n_layer_sizes = c.sizes.size();
    desc.layer_sizes = c.sizes.data();
    desc.hidden_activation = c.act;
    desc.loss = c.loss;
    desc.dtype = c.dtype;
    desc.init = NN_INIT_XAVIER;
    desc.seed = 11;
    nn_model *m = nullptr;
    EXPECT_EQ(nn_create(&m, &desc), NN_OK) << nn_last_error_message();
    EXPECT_EQ(nn_set_device(m, device, 0), NN_OK) << nn_last_error_message();
    nn_fit_options o;
    nn_fit_options_init(&o);
    o.epochs = 3;
    o.batch_size = c.batch;
    o.learning_rate = 0.1;
    const size_t in = c.sizes.front(), out = c.sizes.back();
    const bool ce = c.loss == NN_LOSS_SOFTMAX_CROSS_ENTROPY;
    EXPECT_EQ(nn_fit(m, x.data(), NN_DTYPE_FLOAT64, rows, in, ce ? static_cast<const void *>(labels.data()) : targets.data(),
                     ce ? NN_TARGET_CLASS_INDEX : NN_TARGET_ROWS_FLOAT64, ce ? 1 : out, &o, nullptr),
              NN_OK)
        << nn_last_error_message();
    Trained t;
    size_t count = 0;
    nn_param_count(m, &count);
    t.params.resize(count);
    EXPECT_EQ(nn_get_params(m, t.params.data(), count), NN_OK);
    t.scores.resize(rows * out);
    EXPECT_EQ(nn_predict(m, x.data(), NN_DTYPE_FLOAT64, rows, in, NN_OUTPUT_SCORES, t.scores.data(), NN_DTYPE_FLOAT64,
                         t.scores.size()),
              NN_OK);
    nn_get_epoch_losses(m, nullptr, 0, &count);
    t.epoch_losses.resize(count);
    nn_get_epoch_losses(m, t.epoch_losses.data(), count, &count);
    nn_destroy(m);
    return t;
}

void expect_close(const std::vector<double> &got, const std::vector<double> &want, double rel, double floor,
                  const char *what) {
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < got.size(); ++i)
        ASSERT_LE(std::fabs(got[i] - want[i]), rel * std::max(std::fabs(want[i]), floor))
            << what << "[" << i << "]: plugin " << got[i] << ", reference " << want[i];
}

class PluginParity : public ::testing::TestWithParam<Case> {};

TEST_P(PluginParity, CpuPluginMatchesReference) {
    if (!cpu_plugin_available()) GTEST_SKIP() << "libnn-backend-cpu.so is not available";
    const Case &c = GetParam();
    const size_t rows = 80, in = c.sizes.front(), out = c.sizes.back();
    std::mt19937 gen(3);
    std::normal_distribution<double> normal(0.0, 1.0);
    std::vector<double> x(rows * in), targets(rows * out);
    std::vector<int32_t> labels(rows);
    for (double &v : x) v = normal(gen);
    for (double &v : targets) v = normal(gen);
    for (size_t r = 0; r < rows; ++r) labels[r] = int32_t(gen() % out);

    const Trained ref = train_on(NN_DEVICE_REFERENCE, c, x, labels, targets, rows);
    const Trained cpu = train_on(NN_DEVICE_CPU, c, x, labels, targets, rows);
    // float64: rounding differences only (BLAS may sum in another order); float32: the
    // same, at float32's precision, grown over 3 epochs of steps.
    const double rel = c.dtype == NN_DTYPE_FLOAT64 ? 1e-9 : 2e-3;
    const double floor = c.dtype == NN_DTYPE_FLOAT64 ? 1e-6 : 1e-2;
    expect_close(cpu.params, ref.params, rel, floor, "params");
    expect_close(cpu.scores, ref.scores, rel, floor, "scores");
    expect_close(cpu.epoch_losses, ref.epoch_losses, rel, floor, "epoch loss");
}

std::vector<Case> cases() {
    const std::vector<std::vector<size_t>> shapes = {
        {3, 4}, {2, 10, 3}, {5, 1, 4}, {4, 17, 9, 3}, {6, 70, 70, 70, 5}, {70, 70, 2}};
    std::vector<Case> out;
    size_t k = 0;
    for (const auto &sizes : shapes)
        for (int act = 0; act < 4; ++act)
            for (nn_dtype dtype : {NN_DTYPE_FLOAT64, NN_DTYPE_FLOAT32}) {
                // Rotate the batch sizes and losses through the shapes: batch 1, a small batch,
                // a BLAS-sized batch, all rows, and more than all rows (one full batch).
                const size_t batches[] = {1, 7, 64, 80, 200};
                out.push_back({sizes, nn_activation(act), k % 3 == 2 ? NN_LOSS_MEAN_SQUARED_ERROR : NN_LOSS_SOFTMAX_CROSS_ENTROPY,
                               dtype, batches[k % 5]});
                ++k;
            }
    return out;
}

INSTANTIATE_TEST_SUITE_P(RandomNets, PluginParity, ::testing::ValuesIn(cases()),
                         [](const auto &info) { return name_of(info.param); });

}  // namespace
