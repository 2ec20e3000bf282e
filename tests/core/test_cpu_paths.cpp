// The CPU plugin's specialised paths against its generic ones. The plugin's source is
// compiled into this test so that one model can be trained both ways: same weights,
// data, shuffle and settings, once on the path and once with it turned off.
// - The small-layer kernels (float32 nets too small for BLAS, batches up to 64 rows)
//   against the generic loops (Model::small_kernels off): bit for bit.
// - The plain-SGD update folded into the BLAS weight-gradient product, float32 (Model::
//   fuse_sgd off: the product, then the update): within rounding, as BLAS may fuse α·Σ + W.
#if defined(__SANITIZE_THREAD__)
// The training loop's ifunc clones would be resolved before ThreadSanitizer's runtime is
// up (a crash at start); the plugin itself is dlopen'ed later and keeps them.
#define NN_CPU_NO_CLONES 1
#endif
#include "backends/cpu/cpu_backend.cpp"

#include <gtest/gtest.h>

#include <algorithm>
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
    double init = 0.3, lr = 0.0;  // initial weights' deviation; lr 0: 0.5 for SGD, else 0.05
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

// Trains a fresh model (float32 or float64: T) on the case's data for c.steps steps and
// returns its parameters, optimizer state, step losses and gradient buffer.
template <typename T>
struct Outcome {
    std::vector<T> params, state, grads;
    std::vector<double> losses;
    size_t blocks = 0;  // small_blocks(batch) of the model
};

template <typename T>
Model<T> &impl(nn_backend_model *m) {
    if constexpr (std::is_same_v<T, float>)
        return m->m32;
    else
        return m->m64;
}

template <typename T = float>
Outcome<T> train(const Case &c, bool small, uint32_t seed, bool fuse = true) {
    std::mt19937 gen(seed);
    std::normal_distribution<T> normal(T(0), T(1));
    const size_t in = c.sizes.front(), out = c.sizes.back();
    nn_backend_net net{std::is_same_v<T, float> ? 0u : 1u, c.act, c.loss, uint32_t(c.sizes.size()), c.sizes.data()};
    nn_backend_model *m = nullptr;
    EXPECT_EQ(plugin().model_create(0, &net, &m), NN_BACKEND_OK) << g_error;
    impl<T>(m).small_kernels = small;
    impl<T>(m).fuse_sgd = fuse;
    Outcome<T> o;
    o.blocks = impl<T>(m).small_blocks(c.batch);

    std::vector<T> params(impl<T>(m).params.size());
    for (T &p : params) p = T(c.init) * normal(gen);
    EXPECT_EQ(plugin().params_write(m, params.data()), NN_BACKEND_OK);
    std::vector<T> x(c.rows * in), t(c.rows * out);
    std::vector<int32_t> labels(c.rows);
    for (T &v : x) v = normal(gen);
    for (T &v : t) v = normal(gen);
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
    config.learning_rate = c.lr > 0 ? c.lr : c.optimizer == 0 ? 0.5 : 0.05;
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
    o.grads = impl<T>(m).grads;
    plugin().model_destroy(m);
    return o;
}

template <typename V>
bool same_bits(const V &a, const V &b) {
    return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof a[0]) == 0);
}

void expect_identical(const Case &c, uint32_t seed) {
    SCOPED_TRACE(describe(c));
    const Outcome<float> small = train(c, true, seed), generic = train(c, false, seed);
    ASSERT_GT(small.blocks, 0u) << "the case does not reach the small-layer kernels";
    ASSERT_EQ(generic.blocks, 0u);
    for (double l : small.losses) ASSERT_TRUE(std::isfinite(l));
    EXPECT_TRUE(same_bits(small.losses, generic.losses));
    EXPECT_TRUE(same_bits(small.params, generic.params));
    EXPECT_TRUE(same_bits(small.state, generic.state));
    // Training moved the weights (a kernel that did nothing would not be caught above
    // if both paths did nothing).
    const Outcome<float> untouched = [&] {
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

// A hidden unit whose f(b) overflows where the input is zero: real rows (x = 1) keep it at
// relu(0) = 0, but the padded lanes (x = 0) give relu(1e30) = 1e30 and then 1e30·1e30 = inf
// in the next layer. Those lanes never reach a loss, and they must not reach a gradient
// sum as inf·0 = NaN either: batch 24 pads to 32 lanes on the small path and to none on
// the generic one, and both train the same, finite.
TEST(CpuSmallKernels, PaddedLanesNeverReachAGradient) {
    const size_t sizes[] = {1, 1, 1, 2}, rows = 24;
    for (bool small : {true, false}) {
        SCOPED_TRACE(small ? "small" : "generic");
        nn_backend_net net{0, nn::math::kRelu, nn::math::kSoftmaxCrossEntropy, 4, sizes};
        nn_backend_model *m = nullptr;
        ASSERT_EQ(plugin().model_create(0, &net, &m), NN_BACKEND_OK);
        m->m32.small_kernels = small;
        EXPECT_EQ(m->m32.small_blocks(rows), small ? 4u : 0u);
        // W1 b1 W2 b2 W3 (1×2) b3
        const float params[] = {-1e30f, 1e30f, 1e30f, 0.0f, 0.5f, -0.5f, 0.1f, 0.0f};
        ASSERT_EQ(m->m32.params.size(), 8u);
        ASSERT_EQ(plugin().params_write(m, params), NN_BACKEND_OK);
        std::vector<float> x(rows, 1.0f);
        std::vector<int32_t> labels(rows);
        for (size_t r = 0; r < rows; ++r) labels[r] = int32_t(r % 2);
        ASSERT_EQ(plugin().data_upload(m, x.data(), labels.data(), rows, rows), NN_BACKEND_OK);
        ASSERT_EQ(plugin().optimizer_state_write(m, 0, nullptr, 0), NN_BACKEND_OK);
        std::vector<int64_t> order(3 * rows);
        for (size_t i = 0; i < order.size(); ++i) order[i] = int64_t(i % rows);
        nn_backend_train_config config{};
        config.struct_size = sizeof config;
        config.learning_rate = 0.1;
        config.stop_on_non_finite = 1;
        double losses[3] = {-1, -1, -1};
        ASSERT_EQ(plugin().train_steps(m, order.data(), 3, rows, &config, losses), NN_BACKEND_OK);
        for (double l : losses) EXPECT_TRUE(std::isfinite(l)) << l;
        float after[8];
        ASSERT_EQ(plugin().params_read(m, after), NN_BACKEND_OK);
        for (float v : after) EXPECT_TRUE(std::isfinite(v)) << v;
        EXPECT_NE(after[6], params[6]);  // the output layer learned (its bias: h2 is 0)
        plugin().model_destroy(m);
    }
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

// Plain SGD on layers big enough for BLAS: the update folded into the weight-gradient
// product gives the separate update's weights within rounding (BLAS may add α·Σ to W in
// one fused multiply-add), for every activation and loss, batches from 1 row. float32
// only: float64 keeps the separate update (the same bits either way).
TEST(CpuFusedSgd, MatchesTheSeparateUpdate) {
    std::mt19937 gen(7);
    for (int i = 0; i < 24; ++i) {
        Case c;
        c.sizes = {size_t(40 + gen() % 80), size_t(60 + gen() % 100), size_t(2 + gen() % 20)};
        if (i % 3 == 0) c.sizes.insert(c.sizes.begin() + 1, size_t(100 + gen() % 50));
        c.act = uint32_t(i % 4);
        c.loss = uint32_t((i / 4) % 2);
        c.rows = 200 + gen() % 100;
        c.batch = i % 6 == 5 ? 1 : size_t(65 + gen() % 100);
        c.steps = 8;
        c.init = 0.05;  // no divergence on these widths
        c.lr = 0.05;
        SCOPED_TRACE(describe(c));
        const auto check = [&](auto dtype, double rel) {
            using T = decltype(dtype);
            const Outcome<T> fused = train<T>(c, false, uint32_t(i), true), separate = train<T>(c, false, uint32_t(i), false);
            ASSERT_EQ(fused.params.size(), separate.params.size());
            double worst = 0.0;
            for (size_t k = 0; k < fused.params.size(); ++k) {
                const double a = double(fused.params[k]), b = double(separate.params[k]);
                ASSERT_TRUE(std::isfinite(a)) << k;
                worst = std::max(worst, std::fabs(a - b) / std::max(std::fabs(b), 1e-3));
            }
            EXPECT_LE(worst, rel) << (sizeof(T) == 8 ? "float64" : "float32");
            for (size_t k = 0; k < fused.losses.size(); ++k) {
                ASSERT_TRUE(std::isfinite(separate.losses[k])) << k;
                EXPECT_LE(std::fabs(fused.losses[k] - separate.losses[k]), rel * std::max(1.0, separate.losses[k]));
            }
            // The fused path ran (float32 only): the first weight matrix (BLAS-sized at this
            // batch unless the batch is one row) never had its gradient written; the
            // separate one did.
            const size_t first = c.sizes[0] * c.sizes[1];
            const bool blas = std::is_same_v<T, float> && padded(c.batch) * first >= kBlasThreshold;
            const auto zero = [&](const std::vector<T> &g) {
                return std::all_of(g.begin(), g.begin() + std::ptrdiff_t(first), [](T v) { return v == T(0); });
            };
            EXPECT_EQ(zero(fused.grads), blas);
            EXPECT_FALSE(zero(separate.grads));
        };
        check(double{}, 0.0);
        check(float{}, 2e-5);
    }
}

// Settings that need the gradient itself keep the separate update: bit for bit with the
// fusion turned off.
TEST(CpuFusedSgd, NotUsedWhenTheGradientIsNeeded) {
    for (int variant = 0; variant < 3; ++variant) {
        Case c{{100, 150, 10}, nn::math::kRelu, nn::math::kSoftmaxCrossEntropy, 0, 300, 128, 5};
        if (variant == 0) c.max_grad_norm = 0.5;
        if (variant == 1) c.weight_decay = 0.01;
        if (variant == 2) c.optimizer = nn::optim::kMomentum;
        SCOPED_TRACE(describe(c));
        const Outcome<float> a = train<float>(c, false, 3, true), b = train<float>(c, false, 3, false);
        EXPECT_TRUE(same_bits(a.params, b.params));
        EXPECT_TRUE(same_bits(a.losses, b.losses));
    }
}

}  // namespace
