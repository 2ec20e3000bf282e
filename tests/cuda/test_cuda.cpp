// The CUDA backend (issue #5), through the public C API and through the plugin's own
// table. Run against the real plugin (ctest prefix cuda., label cuda) every test needs a
// usable CUDA device and is skipped, with the plugin's reason, where there is none —
// except CudaPlugin.LoadsAndReportsItsDevices, which checks that situation. Run against
// the host emulation of the same source (cuda_emu., label emulation) they all run.
//
// NN_CUDA_TEST_PLUGIN names the plugin file under test; main() puts its directory first
// on NN_BACKEND_PATH. NN_CUDA_PATH=fused|graph (read by the plugin at each call) makes a
// test take each of the plugin's two ways to run a step.
#include <dlfcn.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "nn/nn.h"
#include "nn/nn_backend.h"

namespace {

#define ASSERT_NN_OK(expr) ASSERT_EQ((expr), NN_OK) << nn_last_error_message()
#define EXPECT_NN_OK(expr) EXPECT_EQ((expr), NN_OK) << nn_last_error_message()

// ---- the CUDA entry of the device list ---------------------------------------------------

struct CudaEntry {
    bool found = false, available = false;
    std::string name, reason;
};

CudaEntry cuda_entry() {
    CudaEntry e;
    size_t n = 0;
    if (nn_device_count(&n) != NN_OK) return e;
    for (size_t i = 0; i < n; ++i) {
        nn_device_info info;
        nn_device_info_init(&info);
        if (nn_device_get(i, &info) != NN_OK || info.kind != NN_DEVICE_CUDA || info.index != 0) continue;
        e.found = true;
        e.available = info.available != 0;
        e.name = info.name;
        e.reason = info.reason;
        break;
    }
    return e;
}

#define REQUIRE_CUDA()                                                                          \
    do {                                                                                        \
        const CudaEntry cuda_ = cuda_entry();                                                   \
        if (!cuda_.available) GTEST_SKIP() << "no usable CUDA device: " << cuda_.reason;        \
    } while (0)

// Sets NN_CUDA_PATH for one scope ("" removes it).
class PathScope {
public:
    explicit PathScope(const char *path) {
        if (path && *path)
            setenv("NN_CUDA_PATH", path, 1);
        else
            unsetenv("NN_CUDA_PATH");
    }
    ~PathScope() { unsetenv("NN_CUDA_PATH"); }
};

const char *const kPaths[] = {"fused", "graph"};

// ---- runs through the C API ------------------------------------------------------------------

struct Case {
    std::vector<size_t> sizes;
    nn_activation act;
    nn_loss loss;
    nn_dtype dtype;
    size_t batch;
    nn_optimizer optimizer;
    double max_grad_norm, weight_decay;
    bool class_weights;
};

std::string name_of(const Case &c) {
    static const char *acts[] = {"Sigmoid", "Relu", "Tanh", "Identity"};
    static const char *opts[] = {"Sgd", "Momentum", "Nesterov", "AdaGrad", "RmsProp", "Adam"};
    std::string n = std::string(acts[c.act]) + (c.loss == NN_LOSS_SOFTMAX_CROSS_ENTROPY ? "CE" : "MSE") +
                    (c.dtype == NN_DTYPE_FLOAT64 ? "F64" : "F32") + opts[c.optimizer] + "_B" + std::to_string(c.batch);
    if (c.max_grad_norm > 0) n += "_Clip";
    if (c.weight_decay > 0) n += "_Decay";
    if (c.class_weights) n += "_Weighted";
    for (size_t s : c.sizes) n += "_" + std::to_string(s);
    return n;
}

void PrintTo(const Case &c, std::ostream *os) { *os << name_of(c); }

double learning_rate_of(nn_optimizer o) {
    switch (o) {
    case NN_OPTIMIZER_SGD: return 0.1;
    case NN_OPTIMIZER_MOMENTUM:
    case NN_OPTIMIZER_NESTEROV: return 0.05;
    case NN_OPTIMIZER_ADAGRAD: return 0.1;
    default: return 0.01;  // RMSprop, Adam
    }
}

struct Data {
    size_t rows = 0;
    std::vector<double> x, targets;
    std::vector<int32_t> labels;
};

Data random_data(const Case &c, size_t rows, unsigned seed) {
    Data d;
    d.rows = rows;
    std::mt19937 gen(seed);
    std::normal_distribution<double> normal(0.0, 1.0);
    d.x.resize(rows * c.sizes.front());
    d.targets.resize(rows * c.sizes.back());
    d.labels.resize(rows);
    for (double &v : d.x) v = normal(gen);
    for (double &v : d.targets) v = normal(gen);
    for (auto &l : d.labels) l = int32_t(gen() % c.sizes.back());
    return d;
}

// The book's 2-10-3 net with the library's defaults, its weights drawn from `rng` when
// given; nullptr (the failure recorded) if nn_create fails.
nn_model *book_net(nn_dtype dtype, nn_rng *rng = nullptr) {
    const size_t sizes[] = {2, 10, 3};
    nn_model_desc desc;
    nn_model_desc_init(&desc);
    desc.n_layer_sizes = 3;
    desc.layer_sizes = sizes;
    desc.dtype = dtype;
    desc.rng = rng;
    nn_model *m = nullptr;
    EXPECT_EQ(nn_create(&m, &desc), NN_OK) << nn_last_error_message();
    return m;
}

nn_model *create(const Case &c, nn_device_kind device) {
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
    if (m) {
        EXPECT_EQ(nn_set_device(m, device, 0), NN_OK) << nn_last_error_message();
    }
    return m;
}

struct Trained {
    nn_status status = NN_OK;
    std::vector<double> params, scores, epoch_losses, step_losses;
};

Trained read_back(nn_model *m, const Data &d, size_t outputs, size_t inputs) {
    Trained t;
    size_t count = 0;
    nn_param_count(m, &count);
    t.params.resize(count);
    EXPECT_EQ(nn_get_params(m, t.params.data(), count), NN_OK);
    t.scores.resize(d.rows * outputs);
    EXPECT_EQ(nn_predict(m, d.x.data(), NN_DTYPE_FLOAT64, d.rows, inputs, NN_OUTPUT_SCORES, t.scores.data(),
                         NN_DTYPE_FLOAT64, t.scores.size()),
              NN_OK)
        << nn_last_error_message();
    nn_get_epoch_losses(m, nullptr, 0, &count);
    t.epoch_losses.resize(count);
    nn_get_epoch_losses(m, t.epoch_losses.data(), count, &count);
    nn_get_loss_history(m, nullptr, 0, &count);
    std::vector<nn_loss_record> records(count);
    nn_get_loss_history(m, records.data(), count, &count);
    for (const auto &r : records) t.step_losses.push_back(r.loss);
    return t;
}

void fit_options(const Case &c, nn_fit_options &o, const std::vector<double> &weights, size_t epochs) {
    nn_fit_options_init(&o);
    o.epochs = epochs;
    o.batch_size = c.batch;
    o.learning_rate = learning_rate_of(c.optimizer);
    o.optimizer = c.optimizer;
    o.max_grad_norm = c.max_grad_norm;
    o.weight_decay = c.weight_decay;
    o.report_interval = 1;  // a record per step: the per-step losses
    if (c.class_weights) {
        o.class_weights = weights.data();
        o.n_class_weights = weights.size();
    }
}

nn_status fit(nn_model *m, const Case &c, const Data &d, size_t epochs) {
    std::vector<double> weights;
    for (size_t j = 0; j < c.sizes.back(); ++j) weights.push_back(0.5 + 0.25 * double(j % 4));
    nn_fit_options o;
    fit_options(c, o, weights, epochs);
    const bool ce = c.loss == NN_LOSS_SOFTMAX_CROSS_ENTROPY;
    return nn_fit(m, d.x.data(), NN_DTYPE_FLOAT64, d.rows, c.sizes.front(),
                  ce ? static_cast<const void *>(d.labels.data()) : d.targets.data(),
                  ce ? NN_TARGET_CLASS_INDEX : NN_TARGET_ROWS_FLOAT64, ce ? 1 : c.sizes.back(), &o, nullptr);
}

Trained train_on(nn_device_kind device, const Case &c, const Data &d, size_t epochs = 3) {
    nn_model *m = create(c, device);
    Trained t;
    if (!m) {
        t.status = NN_ERR_INTERNAL;
        return t;
    }
    t.status = fit(m, c, d, epochs);
    Trained r = read_back(m, d, c.sizes.back(), c.sizes.front());
    r.status = t.status;
    nn_destroy(m);
    return r;
}

// |got − want| ≤ rel · max(|want|, floor) everywhere; records the worst ratio.
void expect_close(const std::vector<double> &got, const std::vector<double> &want, double rel, double floor,
                  const std::string &what) {
    ASSERT_EQ(got.size(), want.size()) << what;
    double worst = 0.0;
    for (size_t i = 0; i < got.size(); ++i) {
        const double scale = std::max(std::fabs(want[i]), floor);
        const double err = std::fabs(got[i] - want[i]) / scale;
        if (!(err <= rel)) {  // NaN fails too
            ADD_FAILURE() << what << "[" << i << "]: cuda " << got[i] << ", reference " << want[i] << " (relative "
                          << err << " > " << rel << ")";
            return;
        }
        worst = std::max(worst, err);
    }
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.3g", worst);
    ::testing::Test::RecordProperty(what + " worst", buf);
}

// ---- the device list ---------------------------------------------------------------------------

std::string lower(std::string s) {
    for (char &ch : s) ch = char(std::tolower(static_cast<unsigned char>(ch)));
    return s;
}

TEST(CudaPlugin, LoadsAndReportsItsDevices) {
    const CudaEntry e = cuda_entry();
    ASSERT_TRUE(e.found) << "no CUDA entry in the device list";
    // The plugin itself loaded: the reason is its own, not the loader's.
    for (const char *loader : {"not found (looked in", "cannot be loaded", "refused to start", "plugin ABI version",
                               "function table is incomplete", "does not export"})
        EXPECT_EQ(e.reason.find(loader), std::string::npos) << "the plugin did not load: " << e.reason;

    nn_model *m = book_net(NN_DTYPE_FLOAT64);
    ASSERT_NE(m, nullptr);
    nn_device_info where;
    nn_device_info_init(&where);

    if (!e.available) {
        // No driver, no device, or too old a device: the plugin's reason, with the CUDA
        // runtime's own text.
        ASSERT_FALSE(e.reason.empty());
        const std::string r = lower(e.reason);
        const bool cuda_text = r.find("cuda driver version is insufficient") != std::string::npos ||
                               r.find("no cuda driver") != std::string::npos ||
                               r.find("no cuda-capable device") != std::string::npos ||
                               r.find("no cuda device") != std::string::npos ||
                               r.find("compute capability") != std::string::npos;
        EXPECT_TRUE(cuda_text) << e.reason;
        EXPECT_NE(e.reason.find("libnn-backend-cuda.so: "), std::string::npos) << e.reason;
        std::printf("cuda:0 unavailable, as expected without a GPU: %s\n", e.reason.c_str());

        // An explicit request fails with that reason and leaves the model where it was.
        ASSERT_NN_OK(nn_get_device(m, &where));
        const nn_device_kind before = where.kind;
        EXPECT_NE(before, NN_DEVICE_CUDA);
        EXPECT_EQ(nn_set_device(m, NN_DEVICE_CUDA, 0), NN_ERR_DEVICE_UNAVAILABLE);
        const std::string msg = nn_last_error_message();
        EXPECT_NE(msg.find(e.reason.substr(std::strlen("libnn-backend-cuda.so: "))), std::string::npos) << msg;
        ASSERT_NN_OK(nn_get_device(m, &where));
        EXPECT_EQ(where.kind, before);
    } else {
        EXPECT_FALSE(e.name.empty());
        std::printf("cuda:0 available: %s\n", e.name.c_str());
        ASSERT_NN_OK(nn_set_device(m, NN_DEVICE_CUDA, 0));
        ASSERT_NN_OK(nn_get_device(m, &where));
        EXPECT_EQ(where.kind, NN_DEVICE_CUDA);
    }

    // Either way the model trains where it is.
    std::vector<double> x(600);
    std::vector<int32_t> t(300);
    ASSERT_NN_OK(nn_dataset_spiral(x.data(), x.size(), t.data(), t.size(), 100, 3, nullptr, 1984));
    std::vector<double> before(63), after(63);
    ASSERT_NN_OK(nn_get_params(m, before.data(), 63));
    nn_fit_options o;
    nn_fit_options_init(&o);
    o.epochs = 5;
    o.batch_size = 30;
    o.learning_rate = 1.0;
    ASSERT_NN_OK(nn_fit(m, x.data(), NN_DTYPE_FLOAT64, 300, 2, t.data(), NN_TARGET_CLASS_INDEX, 1, &o, nullptr));
    ASSERT_NN_OK(nn_get_params(m, after.data(), 63));
    EXPECT_NE(before, after);
    nn_destroy(m);
}

// ---- parity with the reference path ------------------------------------------------------------

class CudaParity : public ::testing::TestWithParam<Case> {};

// float64: rounding only (other summation orders), 1e-9 relative per step, as the CPU plugin.
// float32: the same at float32's precision, grown over 3 epochs (2e-3 relative, 1e-2
// floor, as the CPU plugin); the adaptive optimizers (AdaGrad, RMSprop, Adam) divide by a
// running root of g², which magnifies the rounding of small gradients, so they get 5e-2
// (the emulation, which sums as the reference does except in the clipping norm, reaches
// 1.2e-2 on a relu net with Adam and batch 1; cuBLAS sums in other orders).
TEST_P(CudaParity, MatchesReference) {
    REQUIRE_CUDA();
    const Case &c = GetParam();
    const Data d = random_data(c, 80, 3);
    const Trained ref = train_on(NN_DEVICE_REFERENCE, c, d);
    ASSERT_EQ(ref.status, NN_OK);
    const bool f64 = c.dtype == NN_DTYPE_FLOAT64;
    const bool adaptive = c.optimizer >= NN_OPTIMIZER_ADAGRAD;
    const double rel = f64 ? 1e-9 : adaptive ? 5e-2 : 2e-3;
    const double floor = f64 ? 1e-6 : 1e-2;
    for (const char *path : kPaths) {
        SCOPED_TRACE(path);
        PathScope scope(path);
        const Trained got = train_on(NN_DEVICE_CUDA, c, d);
        ASSERT_EQ(got.status, NN_OK) << nn_last_error_message();
        const std::string p = std::string(path) + " ";
        expect_close(got.step_losses, ref.step_losses, rel, floor, p + "step loss");
        expect_close(got.epoch_losses, ref.epoch_losses, rel, floor, p + "epoch loss");
        expect_close(got.params, ref.params, rel, floor, p + "params");
        expect_close(got.scores, ref.scores, rel, floor, p + "scores");
    }
}

std::vector<Case> cases() {
    const std::vector<std::vector<size_t>> shapes = {{3, 4}, {2, 10, 3}, {5, 1, 4}, {4, 17, 9, 3}, {6, 70, 70, 70, 5}, {70, 70, 2}};
    std::vector<Case> out;
    size_t k = 0;
    for (const auto &sizes : shapes)
        for (int act = 0; act < 4; ++act)
            for (nn_dtype dtype : {NN_DTYPE_FLOAT64, NN_DTYPE_FLOAT32}) {
                // Batch 1, a small batch, a larger one, all 80 rows, more than all rows; the
                // losses, optimizers and regularisers rotate through the shapes.
                const size_t batches[] = {1, 7, 64, 80, 200};
                const nn_loss loss = k % 3 == 2 ? NN_LOSS_MEAN_SQUARED_ERROR : NN_LOSS_SOFTMAX_CROSS_ENTROPY;
                Case c{sizes, nn_activation(act), loss, dtype, batches[k % 5], nn_optimizer(k % 6), 0.0, 0.0, false};
                if (k % 4 == 1 || k % 4 == 3) c.max_grad_norm = 0.5;
                if (k % 4 == 2 || k % 4 == 3) c.weight_decay = 0.01;
                c.class_weights = loss == NN_LOSS_SOFTMAX_CROSS_ENTROPY && k % 5 == 3;
                if (sizes.back() == 1 && loss == NN_LOSS_SOFTMAX_CROSS_ENTROPY) c.loss = NN_LOSS_MEAN_SQUARED_ERROR;
                out.push_back(c);
                ++k;
            }
    return out;
}

INSTANTIATE_TEST_SUITE_P(RandomNets, CudaParity, ::testing::ValuesIn(cases()),
                         [](const auto &info) { return name_of(info.param); });

// Divergence: the same step stops the fit, without its update, on both devices.
TEST(CudaParityEdge, DivergenceStopsAtTheReferenceStep) {
    REQUIRE_CUDA();
    Case c{{3, 8, 2}, NN_ACTIVATION_IDENTITY, NN_LOSS_MEAN_SQUARED_ERROR, NN_DTYPE_FLOAT64, 4, NN_OPTIMIZER_SGD,
           0.0, 0.0, false};
    Data d = random_data(c, 40, 5);
    for (double &v : d.targets) v *= 1e3;
    auto run = [&](nn_device_kind device) {
        nn_model *m = create(c, device);
        std::vector<double> w;
        nn_fit_options o;
        fit_options(c, o, w, 50);
        o.learning_rate = 50.0;
        Trained t;
        t.status = nn_fit(m, d.x.data(), NN_DTYPE_FLOAT64, d.rows, 3, d.targets.data(), NN_TARGET_ROWS_FLOAT64, 2, &o,
                          nullptr);
        Trained r = read_back(m, d, 2, 3);
        r.status = t.status;
        nn_destroy(m);
        return r;
    };
    const Trained ref = run(NN_DEVICE_REFERENCE);
    ASSERT_EQ(ref.status, NN_ERR_DIVERGED);
    for (const char *path : kPaths) {
        SCOPED_TRACE(path);
        PathScope scope(path);
        const Trained got = run(NN_DEVICE_CUDA);
        EXPECT_EQ(got.status, NN_ERR_DIVERGED);
        ASSERT_EQ(got.step_losses.size(), ref.step_losses.size());
        expect_close(got.params, ref.params, 1e-9, 1e-6, std::string(path) + " params");
    }
}

// Predictions on layers big enough for cuBLAS, and more rows than one chunk of a small net.
TEST(CudaParityEdge, PredictMatchesReference) {
    REQUIRE_CUDA();
    for (const auto &sizes : {std::vector<size_t>{256, 300, 10}, std::vector<size_t>{2, 10, 3}})
        for (nn_dtype dtype : {NN_DTYPE_FLOAT64, NN_DTYPE_FLOAT32}) {
            Case c{sizes, NN_ACTIVATION_TANH, NN_LOSS_SOFTMAX_CROSS_ENTROPY, dtype, 8, NN_OPTIMIZER_SGD, 0, 0, false};
            const Data d = random_data(c, sizes.front() == 2 ? 70000 : 200, 9);
            std::vector<double> a(d.rows * sizes.back()), b(a.size());
            nn_model *ref = create(c, NN_DEVICE_REFERENCE);
            nn_model *gpu = create(c, NN_DEVICE_CUDA);
            ASSERT_NN_OK(nn_predict(ref, d.x.data(), NN_DTYPE_FLOAT64, d.rows, sizes.front(), NN_OUTPUT_PROBABILITIES,
                                    a.data(), NN_DTYPE_FLOAT64, a.size()));
            ASSERT_NN_OK(nn_predict(gpu, d.x.data(), NN_DTYPE_FLOAT64, d.rows, sizes.front(), NN_OUTPUT_PROBABILITIES,
                                    b.data(), NN_DTYPE_FLOAT64, b.size()));
            expect_close(b, a, dtype == NN_DTYPE_FLOAT64 ? 1e-12 : 1e-5, 1e-3, "probabilities");
            nn_destroy(ref);
            nn_destroy(gpu);
        }
}

// ---- the book's chapter 1 ------------------------------------------------------------------------

// The book's numbers: NN_REFERENCE_DIR from the environment (scripts/gpu-check carries a
// copy to the device machine), else the configured ../shared/reference.
const std::string kBook = [] {
    const char *env = std::getenv("NN_REFERENCE_DIR");
    return std::string(env && *env ? env : NN_REFERENCE_DIR) + "/book-ch01/";
}();

std::vector<double> read_values(const std::string &path) {
    std::ifstream in(path);
    EXPECT_TRUE(in.good()) << "cannot open " << path;
    std::vector<double> out;
    std::string line;
    while (std::getline(in, line)) {
        if (line.empty() || line[0] == '#' || line.find_first_of("abcdfghijklmnopqrstuvwxyz") != std::string::npos)
            continue;
        std::stringstream ss(line);
        std::string cell;
        while (std::getline(ss, cell, ',')) out.push_back(std::strtod(cell.c_str(), nullptr));
    }
    return out;
}

std::vector<std::vector<std::string>> read_rows(const std::string &path) {
    std::ifstream in(path);
    std::vector<std::vector<std::string>> rows;
    std::string line;
    bool first = true;
    while (std::getline(in, line)) {
        if (line.empty() || line[0] == '#') continue;
        if (first && line.find_first_of("abcdfghijklmnopqrstuvwxyz") != std::string::npos) {
            first = false;
            continue;
        }
        first = false;
        std::vector<std::string> cells;
        std::stringstream ss(line);
        std::string cell;
        while (std::getline(ss, cell, ',')) cells.push_back(cell);
        rows.push_back(cells);
    }
    return rows;
}

struct BookRun {
    std::vector<double> final_params, epoch_losses;
    double accuracy = 0.0;
};

BookRun run_book(nn_dtype dtype, const char *path) {
    PathScope scope(path);
    BookRun run;
    nn_rng *rng = nullptr;
    EXPECT_EQ(nn_rng_create(&rng, 1984), NN_OK);
    std::vector<double> x(600);
    std::vector<int32_t> t(300);
    EXPECT_EQ(nn_dataset_spiral(x.data(), 600, t.data(), 300, 100, 3, rng, 0), NN_OK);
    nn_model *model = book_net(dtype, rng);
    EXPECT_EQ(nn_set_device(model, NN_DEVICE_CUDA, 0), NN_OK) << nn_last_error_message();
    nn_fit_options opts;
    nn_fit_options_init(&opts);
    opts.epochs = 300;
    opts.batch_size = 30;
    opts.learning_rate = 1.0;
    opts.report_interval = 10;
    opts.rng = rng;
    EXPECT_EQ(nn_fit(model, x.data(), NN_DTYPE_FLOAT64, 300, 2, t.data(), NN_TARGET_CLASS_INDEX, 1, &opts, nullptr), NN_OK)
        << nn_last_error_message();
    run.final_params.resize(63);
    EXPECT_EQ(nn_get_params(model, run.final_params.data(), 63), NN_OK);
    size_t n = 0;
    nn_get_epoch_losses(model, nullptr, 0, &n);
    run.epoch_losses.resize(n);
    nn_get_epoch_losses(model, run.epoch_losses.data(), n, &n);
    EXPECT_EQ(nn_evaluate(model, x.data(), NN_DTYPE_FLOAT64, 300, 2, t.data(), NN_TARGET_CLASS_INDEX, 1, nullptr,
                          &run.accuracy),
              NN_OK);
    nn_destroy(model);
    nn_rng_destroy(rng);
    return run;
}

std::string two_decimals(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.2f", v);
    return buf;
}

TEST(CudaBook, Float64ReproducesTheBook) {
    REQUIRE_CUDA();
    std::vector<double> want;
    for (const char *name : {"W1", "b1", "W2", "b2"}) {
        const auto v = read_values(kBook + "trainer_final_" + std::string(name) + ".csv");
        want.insert(want.end(), v.begin(), v.end());
    }
    ASSERT_EQ(want.size(), 63u);
    const auto custom = read_rows(kBook + "libm-variant/custom_loop_loss.csv");
    for (const char *path : kPaths) {
        SCOPED_TRACE(path);
        const BookRun run = run_book(NN_DTYPE_FLOAT64, path);
        // Within 1e-8 relative of the book's final weights (relative to max(|w|, 1e-3)).
        expect_close(run.final_params, want, 1e-8, 1e-3, std::string(path) + " final params");
        ASSERT_EQ(run.epoch_losses.size(), custom.size());
        for (size_t e = 0; e < custom.size(); ++e)
            EXPECT_EQ(two_decimals(run.epoch_losses[e]), custom[e][2]) << "epoch " << e + 1;
        EXPECT_EQ(std::lround(run.accuracy * 300), 291);
    }
}

TEST(CudaBook, Float32ReachesAtLeast96Percent) {
    REQUIRE_CUDA();
    for (const char *path : kPaths) {
        SCOPED_TRACE(path);
        const BookRun run = run_book(NN_DTYPE_FLOAT32, path);
        EXPECT_GE(run.accuracy, 0.96);
        ASSERT_EQ(run.epoch_losses.size(), 300u);
        EXPECT_EQ(two_decimals(run.epoch_losses.back()), "0.11");
    }
}

// How often a fit waits for the device: the emulation counts its waits (the real plugin
// has no counter; the test is skipped there). The core hands epochs to the plugin in
// groups when no callback needs them apart, so the book's 300 epochs wait as often as 2
// do (one train_steps call, one wait, besides the fit's fixed copies); a callback that
// never cancels brings back at least one call, so one wait, per epoch.
TEST(CudaBook, GroupedEpochsWaitOnceForTheWholeFit) {
    REQUIRE_CUDA();
    void *h = dlopen(std::getenv("NN_CUDA_TEST_PLUGIN"), RTLD_NOW | RTLD_NOLOAD);
    const auto waits = h ? reinterpret_cast<uint64_t (*)(void)>(dlsym(h, "nn_cuda_emu_waits")) : nullptr;
    if (!waits) GTEST_SKIP() << "the plugin under test does not count its waits (only the emulation does)";
    std::vector<double> x(600);
    std::vector<int32_t> t(300);
    ASSERT_NN_OK(nn_dataset_spiral(x.data(), x.size(), t.data(), t.size(), 100, 3, nullptr, 1984));
    const auto waits_of_fit = [&](size_t epochs, nn_progress_fn progress) {
        nn_model *m = book_net(NN_DTYPE_FLOAT32);
        EXPECT_NN_OK(nn_set_device(m, NN_DEVICE_CUDA, 0));
        nn_fit_options o;
        nn_fit_options_init(&o);
        o.epochs = epochs;
        o.batch_size = 30;
        o.learning_rate = 1.0;
        o.progress = progress;
        const uint64_t before = waits();
        EXPECT_NN_OK(nn_fit(m, x.data(), NN_DTYPE_FLOAT64, 300, 2, t.data(), NN_TARGET_CLASS_INDEX, 1, &o, nullptr));
        const uint64_t n = waits() - before;
        nn_destroy(m);
        return n;
    };
    const nn_progress_fn never_cancel = [](const nn_progress *, void *) { return 0; };
    for (const char *path : kPaths) {
        SCOPED_TRACE(path);
        PathScope scope(path);
        const uint64_t two = waits_of_fit(2, nullptr), book = waits_of_fit(300, nullptr);
        const uint64_t with_callback = waits_of_fit(300, never_cancel);
        EXPECT_GT(two, 0u);
        EXPECT_EQ(book, two);
        EXPECT_GE(with_callback, book + 299);
    }
}

// ---- moving a model ------------------------------------------------------------------------------

std::vector<unsigned char> saved(nn_model *m) {
    size_t size = 0;
    EXPECT_EQ(nn_save_to_buffer(m, nullptr, 0, &size, nullptr), NN_OK) << nn_last_error_message();
    std::vector<unsigned char> bytes(size);
    EXPECT_EQ(nn_save_to_buffer(m, bytes.data(), bytes.size(), &size, nullptr), NN_OK) << nn_last_error_message();
    return bytes;
}

// CPU → CUDA → CPU in the middle of training continues the trajectory of a model that
// stayed on the CPU: weights, Adam's moments and step count, histories.
TEST(CudaMove, RoundTripMidTrainingContinuesTheTrajectory) {
    REQUIRE_CUDA();
    for (nn_optimizer opt : {NN_OPTIMIZER_ADAM, NN_OPTIMIZER_MOMENTUM})
        for (const char *path : kPaths) {
            SCOPED_TRACE(std::string(path) + (opt == NN_OPTIMIZER_ADAM ? " adam" : " momentum"));
            PathScope scope(path);
            Case c{{4, 16, 3}, NN_ACTIVATION_TANH, NN_LOSS_SOFTMAX_CROSS_ENTROPY, NN_DTYPE_FLOAT64, 10, opt, 1.0, 0.001,
                   false};
            const Data d = random_data(c, 60, 21);

            // Three fit calls on each (each call restarts the row order, as the book's Trainer).
            nn_model *stay = create(c, NN_DEVICE_CPU);
            for (int k = 0; k < 3; ++k) ASSERT_NN_OK(fit(stay, c, d, 3));
            const Trained want = read_back(stay, d, 3, 4);

            nn_model *moved = create(c, NN_DEVICE_CPU);
            ASSERT_NN_OK(fit(moved, c, d, 3));
            const std::vector<unsigned char> before = saved(moved);
            ASSERT_NN_OK(nn_set_device(moved, NN_DEVICE_CUDA, 0));
            EXPECT_EQ(saved(moved), before) << "moving to CUDA changed the model file (weights, optimizer, history)";
            ASSERT_NN_OK(fit(moved, c, d, 3));
            ASSERT_NN_OK(nn_set_device(moved, NN_DEVICE_CPU, 0));
            ASSERT_NN_OK(fit(moved, c, d, 3));
            const Trained got = read_back(moved, d, 3, 4);

            expect_close(got.params, want.params, 1e-9, 1e-6, "params");
            expect_close(got.epoch_losses, want.epoch_losses, 1e-9, 1e-6, "epoch losses");
            expect_close(got.step_losses, want.step_losses, 1e-9, 1e-6, "step losses");
            nn_destroy(stay);
            nn_destroy(moved);
        }
}

// ---- out of memory ---------------------------------------------------------------------------------

// A workspace no GPU has (a 65536-wide hidden layer on a 600000-row batch: hundreds of
// GB): the fit fails with NN_ERR_OUT_OF_MEMORY, the model keeps its weights and device,
// and trains afterwards.
TEST(CudaOutOfMemory, HugeBatchIsAStatusAndTheModelStaysUsable) {
    REQUIRE_CUDA();
    Case c{{1, 65536, 2}, NN_ACTIVATION_RELU, NN_LOSS_SOFTMAX_CROSS_ENTROPY, NN_DTYPE_FLOAT32, 600000, NN_OPTIMIZER_SGD,
           0, 0, false};
    nn_model *m = create(c, NN_DEVICE_CUDA);
    ASSERT_NE(m, nullptr);
    size_t n = 0;
    ASSERT_NN_OK(nn_param_count(m, &n));
    std::vector<double> p0(n), p1(n), p2(n);
    const Data small = random_data(c, 64, 2);
    const Data huge = random_data(c, 600000, 3);
    for (int round = 0; round < 2; ++round) {  // first with no training set uploaded, then with one
        SCOPED_TRACE(round);
        ASSERT_NN_OK(nn_get_params(m, p0.data(), n));
        EXPECT_EQ(fit(m, c, huge, 1), NN_ERR_OUT_OF_MEMORY) << nn_last_error_message();
        ASSERT_NN_OK(nn_get_params(m, p1.data(), n));
        EXPECT_EQ(p0, p1);
        nn_device_info where;
        nn_device_info_init(&where);
        ASSERT_NN_OK(nn_get_device(m, &where));
        EXPECT_EQ(where.kind, NN_DEVICE_CUDA);
        Case ok = c;
        ok.batch = 16;
        ASSERT_NN_OK(fit(m, ok, small, 1));
        ASSERT_NN_OK(nn_get_params(m, p2.data(), n));
        EXPECT_NE(p1, p2);
    }
    nn_destroy(m);
}

// ---- reduced precision (nn_set_precision) ----------------------------------------------------------

// Whether the plugin under test is the host emulation (its device name says so).
bool emulated() { return lower(cuda_entry().name).find("emulation") != std::string::npos; }

// Compute capability × 10 of GPU 0, from its name ("… (compute capability 9.0, …)"); the
// emulation's is NN_CUDA_EMU_CC, 90 by default.
int gpu_cc() {
    if (emulated()) {
        const char *env = std::getenv("NN_CUDA_EMU_CC");
        return env && *env ? std::atoi(env) : 90;
    }
    const std::string name = cuda_entry().name;
    const size_t at = name.find("compute capability ");
    int major = 0, minor = 0;
    if (at != std::string::npos) std::sscanf(name.c_str() + at, "compute capability %d.%d", &major, &minor);
    return major * 10 + minor;
}

// Whether the GPU takes products in `p` to its tensor cores (the plugin computes strictly
// otherwise, as the setting allows): float16 from 7.0, TF32 and bfloat16 from 8.0, TF32
// not where NVIDIA_TF32_OVERRIDE=0 turns it off for every CUDA library.
bool honoured(nn_precision p) {
    if (p == NN_PRECISION_STRICT) return false;
    if (p == NN_PRECISION_TF32) {
        const char *off = std::getenv("NVIDIA_TF32_OVERRIDE");
        if (off && std::strcmp(off, "0") == 0) return false;
    }
    return gpu_cc() >= (p == NN_PRECISION_FLOAT16 ? 70 : 80);
}

// A float32 net for the graph path (its products are cuBLAS's), wide enough that a GPU's
// cuBLAS surely takes them to tensor cores when allowed: 512 wide on a GPU, 128 in the
// (slow) emulation.
Case precision_case() {
    const size_t w = emulated() ? 128 : 512;
    return Case{{32, w, w, 10}, NN_ACTIVATION_RELU, NN_LOSS_SOFTMAX_CROSS_ENTROPY, NN_DTYPE_FLOAT32, 32,
                NN_OPTIMIZER_SGD, 0, 0, false};
}

// The largest |got − want| over the largest |want|.
double spread(const std::vector<double> &got, const std::vector<double> &want) {
    double diff = 0.0, scale = 0.0;
    for (size_t i = 0; i < got.size() && i < want.size(); ++i) {
        diff = std::max(diff, std::fabs(got[i] - want[i]));
        scale = std::max(scale, std::fabs(want[i]));
    }
    return scale > 0.0 ? diff / scale : diff;
}

// Trains `c` on the GPU with products in `p`, the setting made on the CPU before the move
// or on the GPU after it.
Trained train_in(const Case &c, const Data &d, nn_precision p, bool before_moving, size_t epochs = 2) {
    Trained t;
    nn_model *m = create(c, before_moving ? NN_DEVICE_CPU : NN_DEVICE_CUDA);
    if (!m) {
        t.status = NN_ERR_INTERNAL;
        return t;
    }
    t.status = nn_set_precision(m, p);
    if (t.status == NN_OK && before_moving) t.status = nn_set_device(m, NN_DEVICE_CUDA, 0);
    nn_precision now = NN_PRECISION_STRICT;
    if (t.status == NN_OK) t.status = nn_get_precision(m, &now);
    EXPECT_EQ(now, p);
    if (t.status == NN_OK) t.status = fit(m, c, d, epochs);
    Trained r = read_back(m, d, c.sizes.back(), c.sizes.front());
    r.status = t.status;
    nn_destroy(m);
    return r;
}

const char *precision_name(nn_precision p) {
    switch (p) {
    case NN_PRECISION_TF32: return "tf32";
    case NN_PRECISION_FLOAT16: return "float16";
    case NN_PRECISION_BFLOAT16: return "bfloat16";
    default: return "strict";
    }
}

// Each reduced precision changes the results (the products really ran in it) and stays
// near the strict run: after 16 SGD steps no parameter is further from the strict run's
// than 1e-2 of its largest parameter, and every step's loss is within 2e-3 relative (TF32,
// float16: 10 fraction bits) or 5e-3 (bfloat16: 7). The emulation measured 3.5e-3 and
// 2.1e-4 / 6.0e-4 (each run records its figures as test properties). On a GPU without
// tensor cores for a format, that format's run is the strict one, bit for bit.
TEST(CudaPrecision, ReducedProductsStayCloseToStrict) {
    REQUIRE_CUDA();
    PathScope scope("graph");
    const Case c = precision_case();
    const Data d = random_data(c, 256, 31);
    const Trained strict = train_in(c, d, NN_PRECISION_STRICT, false);
    ASSERT_NN_OK(strict.status);
    for (nn_precision p : {NN_PRECISION_TF32, NN_PRECISION_FLOAT16, NN_PRECISION_BFLOAT16}) {
        SCOPED_TRACE(precision_name(p));
        const Trained got = train_in(c, d, p, false);
        ASSERT_NN_OK(got.status);
        if (!honoured(p)) {
            EXPECT_EQ(got.params, strict.params) << "compute capability " << gpu_cc() << " lacks it: strict";
            continue;
        }
        EXPECT_NE(got.params, strict.params) << "the products did not change: still strict?";
        const double worst = spread(got.params, strict.params);
        RecordProperty(std::string(precision_name(p)) + " params spread", std::to_string(worst));
        EXPECT_LE(worst, 1e-2);
        expect_close(got.step_losses, strict.step_losses, p == NN_PRECISION_BFLOAT16 ? 5e-3 : 2e-3, 1e-3,
                     std::string(precision_name(p)) + " step losses");
    }
}

// The setting belongs to the model: made on the CPU, it applies once the model is on the
// GPU, exactly as when made there.
TEST(CudaPrecision, SettingFollowsTheModelOntoTheGpu) {
    REQUIRE_CUDA();
    PathScope scope("graph");
    const Case c = precision_case();
    const Data d = random_data(c, 256, 32);
    const Trained here = train_in(c, d, NN_PRECISION_TF32, false);
    const Trained moved = train_in(c, d, NN_PRECISION_TF32, true);
    ASSERT_NN_OK(here.status);
    ASSERT_NN_OK(moved.status);
    EXPECT_EQ(moved.params, here.params);
    EXPECT_EQ(moved.step_losses, here.step_losses);
}

// Changing the setting between fits takes effect at the next fit, and going back to
// strict gives the strict trajectory bit for bit.
TEST(CudaPrecision, ChangingItBetweenFitsTakesEffect) {
    REQUIRE_CUDA();
    PathScope scope("graph");
    const Case c = precision_case();
    const Data d = random_data(c, 256, 33);
    std::vector<std::vector<double>> finals;
    // 0: strict, strict; 1: strict, TF32; 2: strict, (TF32 then strict again).
    for (int variant = 0; variant < 3; ++variant) {
        nn_model *m = create(c, NN_DEVICE_CUDA);
        ASSERT_NE(m, nullptr);
        ASSERT_NN_OK(fit(m, c, d, 1));
        if (variant >= 1) {
            ASSERT_NN_OK(nn_set_precision(m, NN_PRECISION_TF32));
        }
        if (variant == 2) {
            ASSERT_NN_OK(nn_set_precision(m, NN_PRECISION_STRICT));
        }
        ASSERT_NN_OK(fit(m, c, d, 1));
        finals.push_back(read_back(m, d, c.sizes.back(), c.sizes.front()).params);
        nn_destroy(m);
    }
    if (honoured(NN_PRECISION_TF32)) {
        EXPECT_NE(finals[1], finals[0]) << "the second fit kept the strict graph";
        EXPECT_LE(spread(finals[1], finals[0]), 1e-2);
    } else {
        EXPECT_EQ(finals[1], finals[0]);
    }
    EXPECT_EQ(finals[2], finals[0]);
}

// Predictions through a wide layer (cuBLAS) follow the setting; strict again gives the
// strict scores bit for bit.
TEST(CudaPrecision, WidePredictionsFollowIt) {
    REQUIRE_CUDA();
    const Case c = precision_case();
    const Data d = random_data(c, 256, 34);  // 256 rows × w × w ≥ 2^22: the hidden layer's product is cuBLAS's
    nn_model *m = create(c, NN_DEVICE_CUDA);
    ASSERT_NE(m, nullptr);
    const std::vector<double> strict = read_back(m, d, c.sizes.back(), c.sizes.front()).scores;
    ASSERT_NN_OK(nn_set_precision(m, NN_PRECISION_BFLOAT16));
    const std::vector<double> reduced = read_back(m, d, c.sizes.back(), c.sizes.front()).scores;
    ASSERT_NN_OK(nn_set_precision(m, NN_PRECISION_STRICT));
    const std::vector<double> again = read_back(m, d, c.sizes.back(), c.sizes.front()).scores;
    if (honoured(NN_PRECISION_BFLOAT16)) {
        EXPECT_NE(reduced, strict);
        EXPECT_LE(spread(reduced, strict), 2e-2);
    } else {
        EXPECT_EQ(reduced, strict);
    }
    EXPECT_EQ(again, strict);
    nn_destroy(m);
}

// Sets an environment variable for one scope.
class EnvScope {
public:
    EnvScope(const char *name, const char *value) : name_(name) { setenv(name, value, 1); }
    ~EnvScope() { unsetenv(name_); }

private:
    const char *name_;
};

// An older GPU (the emulation told it has compute capability 7.5) computes TF32 and
// bfloat16 strictly, as the setting allows, and float16 on its tensor cores.
TEST(CudaPrecision, OlderGpuComputesStrictlyWhatItLacks) {
    REQUIRE_CUDA();
    if (!emulated()) GTEST_SKIP() << "the emulation's compute capability can be chosen; a GPU's cannot";
    EnvScope cc("NN_CUDA_EMU_CC", "75");
    PathScope scope("graph");
    const Case c = precision_case();
    const Data d = random_data(c, 256, 36);
    const Trained strict = train_in(c, d, NN_PRECISION_STRICT, false, 1);
    ASSERT_NN_OK(strict.status);
    for (nn_precision p : {NN_PRECISION_TF32, NN_PRECISION_BFLOAT16}) {
        const Trained got = train_in(c, d, p, false, 1);
        ASSERT_NN_OK(got.status);
        EXPECT_EQ(got.params, strict.params) << precision_name(p);
    }
    const Trained half = train_in(c, d, NN_PRECISION_FLOAT16, false, 1);
    ASSERT_NN_OK(half.status);
    EXPECT_NE(half.params, strict.params);
}

// The fused kernel (small nets) computes strictly whatever the setting: the book's net in
// float32 trains bit for bit as without it.
TEST(CudaPrecision, FusedKernelStaysStrict) {
    REQUIRE_CUDA();
    PathScope scope("fused");
    Case c{{2, 10, 3}, NN_ACTIVATION_SIGMOID, NN_LOSS_SOFTMAX_CROSS_ENTROPY, NN_DTYPE_FLOAT32, 30, NN_OPTIMIZER_SGD,
           0, 0, false};
    const Data d = random_data(c, 300, 35);
    const Trained strict = train_in(c, d, NN_PRECISION_STRICT, false, 3);
    const Trained tf32 = train_in(c, d, NN_PRECISION_TF32, false, 3);
    ASSERT_NN_OK(strict.status);
    ASSERT_NN_OK(tf32.status);
    EXPECT_EQ(tf32.params, strict.params);
    EXPECT_EQ(tf32.step_losses, strict.step_losses);
}

// ---- the plugin's table, driven directly ------------------------------------------------------------

thread_local std::string g_plugin_error;

void plugin_set_error(const char *m) { g_plugin_error = m ? m : ""; }
void plugin_log(int, const char *) {}

const nn_host_services kServices = {NN_BACKEND_ABI_VERSION, sizeof(nn_host_services), plugin_set_error, plugin_log};

// The plugin under test (NN_CUDA_TEST_PLUGIN). libnn may have loaded the same file: then
// this is the same copy, and its messages come here from now on (each ctest is its own
// process).
const nn_backend_iface *plugin(std::string &why) {
    const char *path = std::getenv("NN_CUDA_TEST_PLUGIN");
    if (!path || !*path) {
        why = "NN_CUDA_TEST_PLUGIN is not set";
        return nullptr;
    }
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        why = dlerror();
        return nullptr;
    }
    auto entry = reinterpret_cast<nn_backend_entry_fn>(dlsym(h, NN_BACKEND_ENTRY_SYMBOL));
    const nn_backend_iface *iface = entry ? entry(&kServices) : nullptr;
    if (!iface) {
        why = "the entry refused: " + g_plugin_error;
        return nullptr;
    }
    char none[256] = {0};
    if (iface->device_count(none, sizeof none) <= 0) {
        why = none;
        return nullptr;
    }
    return iface;
}

#define REQUIRE_PLUGIN(var)                                                   \
    std::string why_;                                                         \
    const nn_backend_iface *var = plugin(why_);                               \
    if (!var) GTEST_SKIP() << "no usable CUDA device: " << why_

nn_backend_train_config base_config(double lr) {
    nn_backend_train_config c{};
    c.struct_size = sizeof c;
    c.learning_rate = lr;
    c.optimizer = 0;
    c.momentum = 0.9;
    c.decay_rate = 0.99;
    c.beta1 = 0.9;
    c.beta2 = 0.999;
    c.epsilon = 1e-7;
    c.stop_on_non_finite = 1;
    return c;
}

// One model on the plugin, with typed buffers: a float32 or float64 copy of everything.
struct Direct {
    const nn_backend_iface *f = nullptr;
    nn_backend_model *m = nullptr;
    bool f64 = true;
    size_t n = 0, in = 0, out = 0;
    bool ce = true;

    Direct(const nn_backend_iface *iface, std::vector<size_t> sizes, bool f64_, bool ce_, uint32_t optimizer)
        : f(iface), f64(f64_), in(sizes.front()), out(sizes.back()), ce(ce_) {
        nn_backend_net net{uint32_t(f64 ? 1 : 0), 2, uint32_t(ce ? 0 : 1), uint32_t(sizes.size()), sizes.data()};
        EXPECT_EQ(f->model_create(0, &net, &m), NN_BACKEND_OK) << g_plugin_error;
        for (size_t l = 0; l + 1 < sizes.size(); ++l) n += sizes[l] * sizes[l + 1] + sizes[l + 1];
        std::mt19937 gen(7);
        std::normal_distribution<double> normal(0.0, 0.5);
        std::vector<double> p(n);
        for (double &v : p) v = normal(gen);
        EXPECT_EQ(f->params_write(m, typed(p).data()), NN_BACKEND_OK);
        EXPECT_EQ(f->optimizer_state_write(m, optimizer, nullptr,
                                           NN_BACKEND_OPTIMIZER_SLOTS(optimizer) * n),
                  NN_BACKEND_OK)
            << g_plugin_error;
    }
    ~Direct() { f->model_destroy(m); }

    std::vector<unsigned char> typed(const std::vector<double> &v) const {
        std::vector<unsigned char> b(v.size() * (f64 ? 8 : 4));
        for (size_t i = 0; i < v.size(); ++i) {
            if (f64)
                std::memcpy(b.data() + 8 * i, &v[i], 8);
            else {
                const float x = float(v[i]);
                std::memcpy(b.data() + 4 * i, &x, 4);
            }
        }
        return b;
    }
    std::vector<unsigned char> params() const {
        std::vector<unsigned char> b(n * (f64 ? 8 : 4));
        EXPECT_EQ(f->params_read(m, b.data()), NN_BACKEND_OK);
        return b;
    }
    void upload(const std::vector<double> &x, const std::vector<int32_t> &labels, const std::vector<double> &targets,
                size_t rows, size_t max_batch) {
        const auto tx = typed(x), tt = typed(targets);
        ASSERT_EQ(f->data_upload(m, tx.data(), ce ? static_cast<const void *>(labels.data()) : tt.data(), rows, max_batch),
                  NN_BACKEND_OK)
            << g_plugin_error;
    }
};

struct Problem {
    std::vector<double> x, targets;
    std::vector<int32_t> labels;
    std::vector<int64_t> order;
};

Problem problem(size_t rows, size_t in, size_t out, size_t order_len, unsigned seed) {
    Problem p;
    std::mt19937 gen(seed);
    std::normal_distribution<double> normal(0.0, 1.0);
    p.x.resize(rows * in);
    p.targets.resize(rows * out);
    for (double &v : p.x) v = normal(gen);
    for (double &v : p.targets) v = normal(gen);
    for (size_t r = 0; r < rows; ++r) p.labels.push_back(int32_t(gen() % out));
    for (size_t i = 0; i < order_len; ++i) p.order.push_back(int64_t(gen() % rows));
    return p;
}

// Out of device memory at model creation (a 1M × 1M float64 layer: 8 TB) is a status, and
// the plugin serves the next model.
TEST(CudaAbi, ModelCreateOutOfMemoryIsAStatus) {
    REQUIRE_PLUGIN(f);
    const size_t huge[] = {size_t(1) << 20, size_t(1) << 20};
    nn_backend_net net{1, 0, 0, 2, huge};
    nn_backend_model *m = nullptr;
    EXPECT_EQ(f->model_create(0, &net, &m), NN_BACKEND_ERR_OUT_OF_MEMORY);
    EXPECT_EQ(m, nullptr);
    EXPECT_NE(g_plugin_error.find("out of device memory"), std::string::npos) << g_plugin_error;
    const size_t small[] = {2, 3};
    net.layer_sizes = small;
    EXPECT_EQ(f->model_create(0, &net, &m), NN_BACKEND_OK) << g_plugin_error;
    f->model_destroy(m);
}

struct Exchange {
    bool f64;
    int calls = 0, fail_at = -1, nan_loss_at = -1;
};

// Stands in for the sum over two processes that hold the same batch: doubles everything.
int doubling_exchange(void *context, void *grads, size_t count, double *loss) {
    auto *ex = static_cast<Exchange *>(context);
    if (ex->calls++ == ex->fail_at) return 1;
    for (size_t i = 0; i < count; ++i) {
        if (ex->f64)
            static_cast<double *>(grads)[i] *= 2.0;
        else
            static_cast<float *>(grads)[i] *= 2.0f;
    }
    *loss = ex->calls - 1 == ex->nan_loss_at ? std::nan("") : *loss * 2.0;
    return 0;
}

// global_batch = 2·batch with an exchange that doubles the gradients and the loss is, to
// the bit, plain training on the batch: a power-of-two scaling commutes with rounding.
TEST(CudaAbi, ExchangeOfTwoEqualProcessesEqualsPlainSteps) {
    REQUIRE_PLUGIN(f);
    for (bool f64 : {true, false})
        for (bool ce : {true, false})
            for (const char *path : kPaths) {
                SCOPED_TRACE(std::string(path) + (f64 ? " f64" : " f32") + (ce ? " ce" : " mse"));
                PathScope scope(path);
                const Problem p = problem(12, 3, 4, 24, 4);
                Direct a(f, {3, 8, 4}, f64, ce, 5), b(f, {3, 8, 4}, f64, ce, 5);
                a.upload(p.x, p.labels, p.targets, 12, 4);
                b.upload(p.x, p.labels, p.targets, 12, 4);
                nn_backend_train_config ca = base_config(0.05), cb = base_config(0.05);
                ca.optimizer = cb.optimizer = 5;
                ca.max_grad_norm = cb.max_grad_norm = 0.7;
                ca.weight_decay = cb.weight_decay = 0.01;
                Exchange ex{f64};
                cb.global_batch = 8;
                cb.exchange = doubling_exchange;
                cb.exchange_context = &ex;
                std::vector<double> la(6, -7.0), lb(6, -7.0);
                ASSERT_EQ(f->train_steps(a.m, p.order.data(), 6, 4, &ca, la.data()), NN_BACKEND_OK) << g_plugin_error;
                ASSERT_EQ(f->train_steps(b.m, p.order.data(), 6, 4, &cb, lb.data()), NN_BACKEND_OK) << g_plugin_error;
                EXPECT_EQ(ex.calls, 6);
                EXPECT_EQ(la, lb);
                EXPECT_EQ(a.params(), b.params());
                for (double l : la) EXPECT_TRUE(std::isfinite(l));
            }
}

// Six steps of batch 4 through the doubling exchange (global batch 8) on a 3-8-4 float64
// softmax net, the exchange misbehaving at step 2 as `ex` says, against `plain_steps` plain
// steps on a twin: the call ends after step 2 with NaN as its loss, the steps before it
// equal the twin's, nothing after it runs, and the parameters are the twin's.
void expect_exchange_call_ends_at_step_2(const nn_backend_iface *f, uint32_t optimizer, Exchange ex,
                                         bool stop_on_non_finite, size_t plain_steps, unsigned seed) {
    for (const char *path : kPaths) {
        SCOPED_TRACE(path);
        PathScope scope(path);
        const Problem p = problem(12, 3, 4, 24, seed);
        Direct a(f, {3, 8, 4}, true, true, optimizer), b(f, {3, 8, 4}, true, true, optimizer);
        a.upload(p.x, p.labels, p.targets, 12, 4);
        b.upload(p.x, p.labels, p.targets, 12, 4);
        nn_backend_train_config ca = base_config(0.05), cb = base_config(0.05);
        ca.optimizer = cb.optimizer = optimizer;
        cb.stop_on_non_finite = stop_on_non_finite;
        Exchange run = ex;
        cb.global_batch = 8;
        cb.exchange = doubling_exchange;
        cb.exchange_context = &run;
        std::vector<double> la(plain_steps, -7.0), lb(6, -7.0);
        ASSERT_EQ(f->train_steps(a.m, p.order.data(), plain_steps, 4, &ca, la.data()), NN_BACKEND_OK);
        ASSERT_EQ(f->train_steps(b.m, p.order.data(), 6, 4, &cb, lb.data()), NN_BACKEND_OK);
        EXPECT_EQ(run.calls, 3);
        EXPECT_EQ(lb[0], la[0]);
        EXPECT_EQ(lb[1], la[1]);
        EXPECT_TRUE(std::isnan(lb[2]));
        for (size_t s = 3; s < 6; ++s) EXPECT_EQ(lb[s], -7.0) << "step " << s << " should not have run";
        EXPECT_EQ(a.params(), b.params());
    }
}

// A failed exchange: NaN for that step's loss, no update (the twin trains 2 steps),
// nothing after it.
TEST(CudaAbi, FailedExchangeStopsTheCallWithoutAnUpdate) {
    REQUIRE_PLUGIN(f);
    Exchange ex{true};
    ex.fail_at = 2;
    expect_exchange_call_ends_at_step_2(f, 1, ex, true, 2, 5);
}

// With an exchange, a summed loss that is not finite ends the call even when
// stop_on_non_finite is off, as on the CPU plugin: that step's update is applied (its
// gradients are finite here, so the twin trains 3 steps), nothing after it runs.
TEST(CudaAbi, NonFiniteExchangedLossEndsTheCallAsOnTheCpu) {
    REQUIRE_PLUGIN(f);
    Exchange ex{true};
    ex.nan_loss_at = 2;
    expect_exchange_call_ends_at_step_2(f, 0, ex, false, 3, 6);
}

// stop_on_non_finite: the step whose loss is not finite writes it and is not applied, and
// the call ends there (later entries untouched) — a device-side flag, no per-step wait.
TEST(CudaAbi, NonFiniteLossStopsTheCallWithoutAnUpdate) {
    REQUIRE_PLUGIN(f);
    for (bool f64 : {true, false})
        for (const char *path : kPaths) {
            SCOPED_TRACE(std::string(path) + (f64 ? " f64" : " f32"));
            PathScope scope(path);
            Problem p = problem(10, 3, 4, 0, 6);
            for (int64_t i = 0; i < 10; ++i) p.order.push_back(i);
            p.x[5 * 3 + 1] = NAN;  // row 5: in step 2 (rows 4, 5)
            Direct a(f, {3, 6, 4}, f64, true, 0), b(f, {3, 6, 4}, f64, true, 0);
            a.upload(p.x, p.labels, p.targets, 10, 2);
            b.upload(p.x, p.labels, p.targets, 10, 2);
            nn_backend_train_config c = base_config(0.1);
            std::vector<double> la(2, -7.0), lb(5, -7.0);
            ASSERT_EQ(f->train_steps(a.m, p.order.data(), 2, 2, &c, la.data()), NN_BACKEND_OK);
            ASSERT_EQ(f->train_steps(b.m, p.order.data(), 5, 2, &c, lb.data()), NN_BACKEND_OK);
            EXPECT_EQ(lb[0], la[0]);
            EXPECT_EQ(lb[1], la[1]);
            EXPECT_FALSE(std::isfinite(lb[2]));
            EXPECT_EQ(lb[3], -7.0);
            EXPECT_EQ(lb[4], -7.0);
            EXPECT_EQ(a.params(), b.params());
            // Without the flag the call runs on (and the NaN spreads into the weights).
            nn_backend_train_config go = c;
            go.stop_on_non_finite = 0;
            std::vector<double> lc(5, -7.0);
            Direct d(f, {3, 6, 4}, f64, true, 0);
            d.upload(p.x, p.labels, p.targets, 10, 2);
            ASSERT_EQ(f->train_steps(d.m, p.order.data(), 5, 2, &go, lc.data()), NN_BACKEND_OK);
            EXPECT_NE(lc[4], -7.0);
        }
}

// An order longer than the device's order buffer (max(rows, max_batch,
// NN_BACKEND_GROUP_ORDER) entries, for the host's groups of epochs) or than a launch's
// 16,384 steps runs in chunks, with Adam's step count carried across them: the same as
// separate calls.
TEST(CudaAbi, LongOrdersRunInChunks) {
    REQUIRE_PLUGIN(f);
    const size_t cap = NN_BACKEND_GROUP_ORDER, steps = cap / 2 + 3;  // five chunks of batch-2 steps
    for (bool f64 : {true, false})
        for (const char *path : kPaths) {
            SCOPED_TRACE(std::string(path) + (f64 ? " f64" : " f32"));
            PathScope scope(path);
            const Problem p = problem(6, 2, 3, 2 * steps, 8);
            Direct a(f, {2, 5, 3}, f64, true, 5), b(f, {2, 5, 3}, f64, true, 5);
            a.upload(p.x, p.labels, p.targets, 6, 2);
            b.upload(p.x, p.labels, p.targets, 6, 2);
            nn_backend_train_config c = base_config(0.01);
            c.optimizer = 5;
            c.adam_step = 4;
            std::vector<double> la(steps, -7.0), lb(steps, -7.0);
            ASSERT_EQ(f->train_steps(a.m, p.order.data(), steps, 2, &c, la.data()), NN_BACKEND_OK) << g_plugin_error;
            const size_t parts[] = {0, 3, cap / 4, steps};  // separate calls of 3, 32765 and 32771 steps
            for (size_t k = 0; k + 1 < 4; ++k) {
                nn_backend_train_config ck = c;
                ck.adam_step = 4 + parts[k];
                ASSERT_EQ(f->train_steps(b.m, p.order.data() + 2 * parts[k], parts[k + 1] - parts[k], 2, &ck,
                                         lb.data() + parts[k]),
                          NN_BACKEND_OK);
            }
            EXPECT_EQ(la, lb);
            EXPECT_EQ(a.params(), b.params());
            EXPECT_NE(la.back(), -7.0);
        }
}

TEST(CudaAbi, OptimizerStateRoundTripAndContractChecks) {
    REQUIRE_PLUGIN(f);
    for (bool f64 : {true, false}) {
        Direct a(f, {2, 4, 3}, f64, true, 0);
        std::vector<double> s(2 * a.n);
        for (size_t i = 0; i < s.size(); ++i) s[i] = 0.001 * double(i);
        const auto ts = a.typed(s);
        ASSERT_EQ(f->optimizer_state_write(a.m, 5, ts.data(), s.size()), NN_BACKEND_OK);
        std::vector<unsigned char> back(ts.size());
        ASSERT_EQ(f->optimizer_state_read(a.m, back.data(), s.size()), NN_BACKEND_OK);
        EXPECT_EQ(back, ts);
        EXPECT_EQ(f->optimizer_state_write(a.m, 5, ts.data(), s.size() - 1), NN_BACKEND_ERR_INVALID);
        EXPECT_EQ(f->optimizer_state_read(a.m, back.data(), 1), NN_BACKEND_ERR_INVALID);
        EXPECT_EQ(f->optimizer_state_write(a.m, 9, nullptr, 0), NN_BACKEND_ERR_UNSUPPORTED);
        // Training with another optimizer than the state's is the host's mistake.
        const Problem p = problem(4, 2, 3, 4, 1);
        a.upload(p.x, p.labels, p.targets, 4, 2);
        nn_backend_train_config c = base_config(0.1);
        c.optimizer = 1;
        double l[2];
        EXPECT_EQ(f->train_steps(a.m, p.order.data(), 2, 2, &c, l), NN_BACKEND_ERR_INVALID);
        // So are a batch over max_batch and a row outside the set.
        c.optimizer = 5;
        EXPECT_EQ(f->train_steps(a.m, p.order.data(), 1, 3, &c, l), NN_BACKEND_ERR_INVALID);
        const int64_t bad[2] = {0, 4};
        EXPECT_EQ(f->train_steps(a.m, bad, 1, 2, &c, l), NN_BACKEND_ERR_INVALID);
        EXPECT_EQ(f->train_steps(a.m, p.order.data(), 2, 2, &c, l), NN_BACKEND_OK) << g_plugin_error;
        // A class label outside the outputs is refused at upload (it would be read on the
        // GPU), and the training set already there stays.
        const auto tx = a.typed(p.x);
        for (int32_t label : {-1, 3}) {
            std::vector<int32_t> labels = p.labels;
            labels[2] = label;
            EXPECT_EQ(f->data_upload(a.m, tx.data(), labels.data(), 4, 2), NN_BACKEND_ERR_INVALID) << label;
        }
        EXPECT_EQ(f->train_steps(a.m, p.order.data(), 2, 2, &c, l), NN_BACKEND_OK) << g_plugin_error;
    }
}

TEST(CudaAbi, PrecisionSetChecksItsArguments) {
    REQUIRE_PLUGIN(f);
    ASSERT_GE(f->struct_size, offsetof(nn_backend_iface, precision_set) + sizeof(void *));
    ASSERT_NE(f->precision_set, nullptr);
    EXPECT_EQ(f->precision_set(nullptr, 0), NN_BACKEND_ERR_INVALID);
    Direct d64(f, {2, 4, 3}, true, true, 0);
    EXPECT_EQ(f->precision_set(d64.m, 1), NN_BACKEND_ERR_INVALID) << "a float64 model is only ever given 0";
    EXPECT_EQ(f->precision_set(d64.m, 0), NN_BACKEND_OK) << g_plugin_error;
    Direct d32(f, {2, 4, 3}, false, true, 0);
    EXPECT_EQ(f->precision_set(d32.m, 4), NN_BACKEND_ERR_UNSUPPORTED);
    for (uint32_t p = 0; p <= 3; ++p) EXPECT_EQ(f->precision_set(d32.m, p), NN_BACKEND_OK) << g_plugin_error;
}

// Set between two train_steps calls on one training set, the precision applies to the
// second call although its step graph was captured by the first: it is captured again.
TEST(CudaAbi, PrecisionSetBetweenCallsRecapturesTheStep) {
    REQUIRE_PLUGIN(f);
    PathScope scope("graph");
    const std::vector<size_t> sizes = precision_case().sizes;  // wide enough for tensor cores
    const size_t in = sizes.front(), out = sizes.back(), rows = 128, B = 32, steps = rows / B;
    const Problem p = problem(rows, in, out, rows, 3);
    Direct a(f, sizes, false, true, 0), b(f, sizes, false, true, 0);
    a.upload(p.x, p.labels, p.targets, rows, B);
    b.upload(p.x, p.labels, p.targets, rows, B);
    const nn_backend_train_config c = base_config(0.1);
    std::vector<double> la(steps), lb(steps);
    ASSERT_EQ(f->train_steps(a.m, p.order.data(), steps, B, &c, la.data()), NN_BACKEND_OK) << g_plugin_error;
    ASSERT_EQ(f->train_steps(b.m, p.order.data(), steps, B, &c, lb.data()), NN_BACKEND_OK) << g_plugin_error;
    ASSERT_EQ(a.params(), b.params());
    ASSERT_EQ(f->precision_set(a.m, 1), NN_BACKEND_OK) << g_plugin_error;
    ASSERT_EQ(f->train_steps(a.m, p.order.data(), steps, B, &c, la.data()), NN_BACKEND_OK) << g_plugin_error;
    ASSERT_EQ(f->train_steps(b.m, p.order.data(), steps, B, &c, lb.data()), NN_BACKEND_OK) << g_plugin_error;
    if (!honoured(NN_PRECISION_TF32)) {
        EXPECT_EQ(a.params(), b.params()) << "compute capability " << gpu_cc() << " lacks TF32: strict";
        return;
    }
    EXPECT_NE(a.params(), b.params()) << "the second call replayed the strict graph";
    EXPECT_NE(la, lb);
}

}  // namespace

int main(int argc, char **argv) {
    // The plugin under test comes first on the search path (before libnn's own directory).
    if (const char *plugin = std::getenv("NN_CUDA_TEST_PLUGIN"); plugin && *plugin && !std::getenv("NN_BACKEND_PATH")) {
        std::string dir(plugin);
        dir = dir.substr(0, dir.rfind('/'));
        setenv("NN_BACKEND_PATH", dir.c_str(), 1);
    }
    ::testing::InitGoogleTest(&argc, argv);
    return RUN_ALL_TESTS();
}
