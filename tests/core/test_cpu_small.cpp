// The CPU plugin's small-layer kernels (float32 nets too small for BLAS, batches up to
// 64 rows) against its generic loops, bit for bit. The plugin's source is compiled into
// this test so that one model can be trained both ways: same weights, data, shuffle and
// settings, once with the kernels and once with Model::small_kernels off.
#if defined(__SANITIZE_THREAD__)
// The training loop's ifunc clones would be resolved before ThreadSanitizer's runtime is
// up (a crash at start); the plugin itself is dlopen'ed later and keeps them.
#define NN_CPU_NO_CLONES 1
#endif
#include "backends/cpu/cpu_backend.cpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

namespace {

std::string g_error;
void record_error(const char *message) { g_error = message; }
const nn_host_services kHost = {NN_BACKEND_ABI_VERSION, sizeof(nn_host_services), record_error, nullptr};

const nn_backend_iface &plugin() {
    static const nn_backend_iface *iface = nn_backend_entry(&kHost);
    return *iface;
}

struct Case {
    std::vector<size_t> sizes;
    uint32_t act = 0, loss = 0, optimizer = 0;
    size_t rows = 0, batch = 0, steps = 0;
    double max_grad_norm = 0.0, weight_decay = 0.0;
    bool class_weights = false;
};

std::string describe(const Case &c) {
    std::string s = "net";
    for (size_t w : c.sizes) s += " " + std::to_string(w);
    s += " act " + std::to_string(c.act) + " loss " + std::to_string(c.loss) + " optimizer " +
         std::to_string(c.optimizer) + " rows " + std::to_string(c.rows) + " batch " + std::to_string(c.batch) +
         (c.max_grad_norm > 0 ? " clip" : "") + (c.weight_decay > 0 ? " decay" : "") +
         (c.class_weights ? " class-weights" : "");
    return s;
}

// Trains a fresh float32 model on the case's data for c.steps steps and returns its
// parameters, optimizer state and step losses, one after the other, as raw bits.
struct Outcome {
    std::vector<float> params, state;
    std::vector<double> losses;
    size_t blocks = 0;  // small_blocks(batch) of the model
};

Outcome train(const Case &c, bool small, uint32_t seed) {
    std::mt19937 gen(seed);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    const size_t in = c.sizes.front(), out = c.sizes.back();
    nn_backend_net net{0, c.act, c.loss, uint32_t(c.sizes.size()), c.sizes.data()};
    nn_backend_model *m = nullptr;
    EXPECT_EQ(plugin().model_create(0, &net, &m), NN_BACKEND_OK) << g_error;
    m->m32.small_kernels = small;
    Outcome o;
    o.blocks = m->m32.small_blocks(c.batch);

    std::vector<float> params(m->m32.params.size());
    for (float &p : params) p = 0.3f * normal(gen);
    EXPECT_EQ(plugin().params_write(m, params.data()), NN_BACKEND_OK);
    std::vector<float> x(c.rows * in), t(c.rows * out);
    std::vector<int32_t> labels(c.rows);
    for (float &v : x) v = normal(gen);
    for (float &v : t) v = normal(gen);
    for (int32_t &l : labels) l = int32_t(gen() % out);
    const void *targets = c.loss == nn::math::kSoftmaxCrossEntropy ? static_cast<const void *>(labels.data()) : t.data();
    EXPECT_EQ(plugin().data_upload(m, x.data(), targets, c.rows, c.batch), NN_BACKEND_OK) << g_error;
    const size_t slots = NN_BACKEND_OPTIMIZER_SLOTS(c.optimizer);
    EXPECT_EQ(plugin().optimizer_state_write(m, c.optimizer, nullptr, slots * params.size()), NN_BACKEND_OK) << g_error;

    // Steps draw their rows anywhere in the data, repeats included.
    std::vector<int64_t> order(c.steps * c.batch);
    for (int64_t &r : order) r = int64_t(gen() % c.rows);
    std::vector<double> weights(out);
    for (double &w : weights) w = 0.5 + double(gen() % 100) / 50.0;
    nn_backend_train_config config{};
    config.struct_size = sizeof config;
    config.learning_rate = c.optimizer == 0 ? 0.5 : 0.05;
    config.optimizer = c.optimizer;
    config.momentum = 0.9;
    config.decay_rate = 0.99;
    config.beta1 = 0.9;
    config.beta2 = 0.999;
    config.epsilon = 1e-7;
    config.max_grad_norm = c.max_grad_norm;
    config.weight_decay = c.weight_decay;
    config.class_weights = c.class_weights ? weights.data() : nullptr;
    config.stop_on_non_finite = 1;
    o.losses.assign(c.steps, 0.0);
    EXPECT_EQ(plugin().train_steps(m, order.data(), c.steps, c.batch, &config, o.losses.data()), NN_BACKEND_OK)
        << g_error;

    o.params.resize(params.size());
    EXPECT_EQ(plugin().params_read(m, o.params.data()), NN_BACKEND_OK);
    o.state.resize(slots * params.size());
    EXPECT_EQ(plugin().optimizer_state_read(m, o.state.data(), o.state.size()), NN_BACKEND_OK);
    plugin().model_destroy(m);
    return o;
}

template <typename V>
bool same_bits(const V &a, const V &b) {
    return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof a[0]) == 0);
}

void expect_identical(const Case &c, uint32_t seed) {
    SCOPED_TRACE(describe(c));
    const Outcome small = train(c, true, seed), generic = train(c, false, seed);
    ASSERT_GT(small.blocks, 0u) << "the case does not reach the small-layer kernels";
    ASSERT_EQ(generic.blocks, 0u);
    for (double l : small.losses) ASSERT_TRUE(std::isfinite(l));
    EXPECT_TRUE(same_bits(small.losses, generic.losses));
    EXPECT_TRUE(same_bits(small.params, generic.params));
    EXPECT_TRUE(same_bits(small.state, generic.state));
    // Training moved the weights (a kernel that did nothing would not be caught above
    // if both paths did nothing).
    const Outcome untouched = [&] {
        Case none = c;
        none.steps = 0;
        return train(none, true, seed);
    }();
    EXPECT_FALSE(same_bits(small.params, untouched.params));
}

TEST(CpuSmallKernels, BookNetIsBitIdenticalToTheGenericLoops) {
    expect_identical({{2, 10, 3}, nn::math::kSigmoid, nn::math::kSoftmaxCrossEntropy, 0, 300, 30, 50}, 1984);
}

// Every batch from 1 to 64 (block counts 1, 2, 4 and 8, and the padded lanes a
// rounded-up batch adds), on a net with a layer of more than eight units.
TEST(CpuSmallKernels, EveryBatchUpTo64) {
    for (size_t batch = 1; batch <= 64; ++batch)
        expect_identical({{3, 11, 4}, nn::math::kTanh, nn::math::kSoftmaxCrossEntropy, 0, 97, batch, 7},
                         uint32_t(batch));
}

// Random nets: depths 1-4, widths 1-40, every activation, loss and optimizer, with and
// without clipping, weight decay and class weights.
TEST(CpuSmallKernels, RandomNetsAndSettings) {
    std::mt19937 gen(2026);
    size_t checked = 0;
    for (int i = 0; checked < 150 && i < 1000; ++i) {
        Case c;
        const size_t depth = 1 + gen() % 4;
        for (size_t l = 0; l <= depth; ++l) c.sizes.push_back(1 + gen() % 40);
        c.act = uint32_t(gen() % 4);
        c.loss = uint32_t(gen() % 2);
        if (c.loss == nn::math::kSoftmaxCrossEntropy && c.sizes.back() < 2) c.sizes.back() = 2;
        c.optimizer = uint32_t(gen() % 6);
        c.rows = 1 + gen() % 120;
        c.batch = 1 + gen() % 64;
        c.steps = 1 + gen() % 12;
        c.max_grad_norm = gen() % 3 == 0 ? 0.5 : 0.0;
        c.weight_decay = gen() % 3 == 0 ? 0.01 : 0.0;
        c.class_weights = c.loss == nn::math::kSoftmaxCrossEntropy && gen() % 3 == 0;
        // Only nets the kernels take (every layer under the BLAS threshold at this batch).
        bool small = true;
        for (size_t l = 0; l + 1 < c.sizes.size(); ++l)
            small = small && small_lanes(c.batch) * c.sizes[l] * c.sizes[l + 1] < kBlasThreshold;
        if (!small) continue;
        expect_identical(c, uint32_t(i));
        ++checked;
    }
    EXPECT_EQ(checked, 150u);
}

// What the kernels do not take: float64, batches over 64 rows, layers big enough for BLAS.
TEST(CpuSmallKernels, OnlyFloat32SmallNetsAndBatches) {
    const size_t book[] = {2, 10, 3}, big[] = {784, 256, 10};
    nn_backend_net net{0, 0, 0, 3, book};
    nn_backend_model *m = nullptr;
    ASSERT_EQ(plugin().model_create(0, &net, &m), NN_BACKEND_OK);
    EXPECT_EQ(m->m32.small_blocks(30), 4u);
    EXPECT_EQ(m->m32.small_blocks(64), 8u);
    EXPECT_EQ(m->m32.small_blocks(65), 0u);
    EXPECT_EQ(m->m32.small_blocks(1), 1u);
    EXPECT_EQ(m->m32.small_blocks(9), 2u);
    EXPECT_EQ(m->m32.small_blocks(17), 4u);
    EXPECT_EQ(m->m32.small_blocks(33), 8u);
    plugin().model_destroy(m);
    net.dtype = 1;
    ASSERT_EQ(plugin().model_create(0, &net, &m), NN_BACKEND_OK);
    EXPECT_EQ(m->m64.small_blocks(30), 0u);
    plugin().model_destroy(m);
    net = {0, 0, 0, 3, big};
    ASSERT_EQ(plugin().model_create(0, &net, &m), NN_BACKEND_OK);
    EXPECT_EQ(m->m32.small_blocks(32), 0u);
    plugin().model_destroy(m);
}

}  // namespace
