// Every optimizer, with and without gradient clipping (plus weight decay, class weights and
// continued training), trained in float64 through the public C API on the reference path and
// on the CPU plugin, compared with a NumPy implementation of the book's formulas
// (BOOK-CH01.md §3-§7): tests/reference/gen_optimizer_golden.py writes the golden files into
// NN_OPTIMIZER_GOLDEN_DIR (the ctest fixture reference.optimizer_golden_files runs it first).
//
// Each case: the spiral of book-ch01/spiral.csv, the Trainer's initial weights
// (book-ch01/trainer_initial_*.csv), nn_fit for 50 epochs of 10 steps of 30 rows with the
// shuffle drawn from an nn_rng seeded as the script's RandomState. Every epoch loss and
// every final parameter (for continued training: the parameters after each of the 50 calls)
// must be within 1e-9 relative of NumPy's, element by element: |got - want| <= 1e-9 |want|.
// There is no absolute floor: the script refuses to write a golden value that is exactly 0,
// and it checks that each case is well enough conditioned (one-ulp noise per step moves its
// results by less than 5e-11 relative) for a correct implementation to pass.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "nn/nn.h"

namespace {

const std::string kBook = std::string(NN_REFERENCE_DIR) + "/book-ch01/";
const std::string kGolden = std::string(NN_OPTIMIZER_GOLDEN_DIR) + "/";
constexpr double kTolerance = 1e-9;
constexpr size_t kParams = 63;   // 2-10-3: W1 20, b1 10, W2 30, b2 3
constexpr size_t kEpochs = 50;

// The cases gen_optimizer_golden.py must have written (compile-time, so that ctest lists
// them before the script has run, and a case the script dropped fails here).
const std::vector<std::string> kCases = {
    "sgd",        "sgd_clip",         "momentum",       "momentum_clip",      "nesterov",   "nesterov_clip",
    "adagrad",    "adagrad_clip",     "rmsprop",        "rmsprop_clip",       "adam",       "adam_clip",
    "adam_wd_cw", "adam_wd_cw_clip", "adam_continued", "momentum_continued",
};

#define ASSERT_NN_OK(expr) ASSERT_EQ((expr), NN_OK) << nn_last_error_message()

std::vector<std::string> split(const std::string &s, char sep) {
    std::vector<std::string> out;
    std::stringstream ss(s);
    std::string cell;
    while (std::getline(ss, cell, sep)) out.push_back(cell);
    return out;
}

double to_double(const std::string &s) {
    char *end = nullptr;
    const double v = std::strtod(s.c_str(), &end);
    EXPECT_TRUE(end && *end == '\0' && !s.empty()) << "not a number: '" << s << "'";
    return v;
}

// Non-empty, non-comment lines of a file.
std::vector<std::string> read_lines(const std::string &path) {
    std::ifstream in(path);
    EXPECT_TRUE(in.good()) << "cannot open " << path << " (run the ctest fixture reference.optimizer_golden_files)";
    std::vector<std::string> lines;
    std::string line;
    while (std::getline(in, line))
        if (!line.empty() && line[0] != '#') lines.push_back(line);
    return lines;
}

// All numbers of a file: comma- or line-separated.
std::vector<double> read_numbers(const std::string &path) {
    std::vector<double> out;
    for (const auto &line : read_lines(path))
        for (const auto &cell : split(line, ',')) out.push_back(to_double(cell));
    return out;
}

// The book's Trainer initial weights in libnn's flat layout.
std::vector<double> initial_params() {
    std::vector<double> all;
    for (const char *name : {"W1", "b1", "W2", "b2"}) {
        const auto v = read_numbers(kBook + "trainer_initial_" + name + ".csv");
        all.insert(all.end(), v.begin(), v.end());
    }
    EXPECT_EQ(all.size(), kParams);
    return all;
}

struct Spiral {
    std::vector<double> x;
    std::vector<int32_t> labels;
};

Spiral spiral() {
    Spiral s;
    std::ifstream in(kBook + "spiral.csv");
    EXPECT_TRUE(in.good()) << "cannot open " << kBook << "spiral.csv";
    std::string line;
    std::getline(in, line);
    EXPECT_EQ(line, "x0,x1,label");
    while (std::getline(in, line)) {
        if (line.empty()) continue;
        const auto cells = split(line, ',');
        EXPECT_EQ(cells.size(), 3u) << line;
        if (cells.size() != 3) continue;
        s.x.push_back(to_double(cells[0]));
        s.x.push_back(to_double(cells[1]));
        s.labels.push_back(int32_t(std::atoi(cells[2].c_str())));
    }
    EXPECT_EQ(s.labels.size(), 300u);
    return s;
}

// cases.txt: one line per case, "name key=value key=value ...".
std::map<std::string, std::map<std::string, std::string>> read_manifest() {
    std::map<std::string, std::map<std::string, std::string>> cases;
    for (const auto &line : read_lines(kGolden + "cases.txt")) {
        const auto words = split(line, ' ');
        auto &opts = cases[words.at(0)];
        for (size_t i = 1; i < words.size(); ++i) {
            const auto eq = words[i].find('=');
            EXPECT_NE(eq, std::string::npos) << words[i];
            if (eq != std::string::npos) opts[words[i].substr(0, eq)] = words[i].substr(eq + 1);
        }
    }
    return cases;
}

nn_optimizer optimizer_named(const std::string &name) {
    static const std::map<std::string, nn_optimizer> names = {
        {"sgd", NN_OPTIMIZER_SGD},         {"momentum", NN_OPTIMIZER_MOMENTUM}, {"nesterov", NN_OPTIMIZER_NESTEROV},
        {"adagrad", NN_OPTIMIZER_ADAGRAD}, {"rmsprop", NN_OPTIMIZER_RMSPROP},   {"adam", NN_OPTIMIZER_ADAM},
    };
    const auto it = names.find(name);
    EXPECT_NE(it, names.end()) << "unknown optimizer " << name;
    return it == names.end() ? NN_OPTIMIZER_SGD : it->second;
}

// Largest |got - want| / |want| over the elements; an exact-0 want (which the script never
// writes) counts as infinitely wrong unless got is 0 too.
double worst_relative(const std::vector<double> &got, const std::vector<double> &want, size_t *at = nullptr) {
    double worst = 0.0;
    for (size_t i = 0; i < std::min(got.size(), want.size()); ++i) {
        const double diff = std::fabs(got[i] - want[i]);
        const double err = want[i] == 0.0 ? (diff == 0.0 ? 0.0 : INFINITY) : diff / std::fabs(want[i]);
        if (!(err <= worst)) {   // NaN-safe
            worst = err;
            if (at) *at = i;
        }
    }
    return worst;
}

// Checks every element within kTolerance relative; returns the worst relative error.
double expect_close(const std::vector<double> &got, const std::vector<double> &want, const std::string &what) {
    EXPECT_EQ(got.size(), want.size()) << what;
    size_t at = 0;
    const double worst = worst_relative(got, want, &at);
    EXPECT_LE(worst, kTolerance) << what << ": element " << at << " is " << got[at] << ", NumPy's "
                                 << want[at] << " (relative error " << worst << ")";
    return worst;
}

std::string device_name(nn_device_kind d) { return d == NN_DEVICE_CPU ? "CpuPlugin" : "Reference"; }

class OptimizerGolden : public ::testing::TestWithParam<std::tuple<std::string, nn_device_kind>> {};

TEST_P(OptimizerGolden, Float64TrajectoryEqualsNumPy) {
    const std::string name = std::get<0>(GetParam());
    const nn_device_kind device = std::get<1>(GetParam());
    const auto manifest = read_manifest();
    const auto found = manifest.find(name);
    ASSERT_NE(found, manifest.end()) << "case " << name << " is missing from " << kGolden << "cases.txt";
    const auto &o = found->second;
    auto opt = [&](const char *key) {
        const auto it = o.find(key);
        EXPECT_NE(it, o.end()) << name << ": no " << key << " in cases.txt";
        return it == o.end() ? std::string("0") : it->second;
    };

    const Spiral data = spiral();
    const std::vector<double> initial = initial_params();
    const auto want_losses = read_numbers(kGolden + name + ".losses.txt");
    const auto want_final = read_numbers(kGolden + name + ".params.txt");
    ASSERT_EQ(want_losses.size(), kEpochs);
    ASSERT_EQ(want_final.size(), kParams);
    const size_t calls = size_t(std::stoul(opt("calls")));
    std::vector<double> want_calls;
    if (calls > 1) {
        want_calls = read_numbers(kGolden + name + ".calls.txt");
        ASSERT_EQ(want_calls.size(), calls * kParams);
    }

    // The model: float64 2-10-3, sigmoid, softmax cross-entropy, the Trainer's initial weights.
    const size_t sizes[] = {2, 10, 3};
    nn_model_desc desc;
    nn_model_desc_init(&desc);
    desc.n_layer_sizes = 3;
    desc.layer_sizes = sizes;
    desc.dtype = NN_DTYPE_FLOAT64;
    desc.hidden_activation = NN_ACTIVATION_SIGMOID;
    desc.loss = NN_LOSS_SOFTMAX_CROSS_ENTROPY;
    nn_model *model = nullptr;
    ASSERT_NN_OK(nn_create(&model, &desc));
    ASSERT_NN_OK(nn_set_params(model, initial.data(), initial.size()));
    ASSERT_NN_OK(nn_set_device(model, device, 0));
    nn_device_info info;
    nn_device_info_init(&info);
    ASSERT_NN_OK(nn_get_device(model, &info));
    ASSERT_EQ(info.kind, device) << info.name;

    nn_rng *rng = nullptr;
    ASSERT_NN_OK(nn_rng_create(&rng, uint32_t(std::stoul(opt("seed")))));

    std::vector<double> class_weights;
    if (o.count("class_weights"))
        for (const auto &c : split(o.at("class_weights"), ',')) class_weights.push_back(to_double(c));

    nn_fit_options fo;
    nn_fit_options_init(&fo);
    fo.epochs = size_t(std::stoul(opt("epochs")));
    fo.batch_size = size_t(std::stoul(opt("batch_size")));
    fo.learning_rate = to_double(opt("learning_rate"));
    fo.shuffle = 1;
    fo.report_interval = 10;
    fo.rng = rng;
    fo.optimizer = optimizer_named(opt("optimizer"));
    fo.momentum = to_double(opt("momentum"));
    fo.decay_rate = to_double(opt("decay_rate"));
    fo.beta1 = to_double(opt("beta1"));
    fo.beta2 = to_double(opt("beta2"));
    fo.epsilon = to_double(opt("epsilon"));
    fo.max_grad_norm = to_double(opt("max_grad_norm"));
    fo.weight_decay = to_double(opt("weight_decay"));
    fo.class_weights = class_weights.empty() ? nullptr : class_weights.data();
    fo.n_class_weights = class_weights.size();
    ASSERT_EQ(fo.epochs * calls, kEpochs);

    // Continued training: `calls` fits of fo.epochs each, the parameters checked after each.
    double worst_calls = 0.0;
    std::vector<double> params(kParams);
    for (size_t call = 0; call < calls; ++call) {
        nn_fit_report report;
        nn_fit_report_init(&report);
        ASSERT_NN_OK(nn_fit(model, data.x.data(), NN_DTYPE_FLOAT64, 300, 2, data.labels.data(), NN_TARGET_CLASS_INDEX,
                            1, &fo, &report));
        EXPECT_EQ(report.epochs_run, fo.epochs);
        EXPECT_EQ(report.steps_run, fo.epochs * 10);
        EXPECT_EQ(report.steps_per_epoch, 10u);
        EXPECT_EQ(report.device_kind, device);
        EXPECT_FALSE(report.stopped_early);
        if (calls > 1) {
            ASSERT_NN_OK(nn_get_params(model, params.data(), params.size()));
            const std::vector<double> want(want_calls.begin() + long(call * kParams),
                                           want_calls.begin() + long((call + 1) * kParams));
            worst_calls = std::max(worst_calls, expect_close(params, want, name + ": params after call " +
                                                                               std::to_string(call + 1)));
        }
    }

    // The epoch history (over the model's life, so across the continued calls too).
    size_t n = 0;
    ASSERT_NN_OK(nn_get_epoch_history(model, nullptr, 0, &n));
    ASSERT_EQ(n, kEpochs);
    std::vector<nn_epoch_record> history(n);
    ASSERT_NN_OK(nn_get_epoch_history(model, history.data(), n, &n));
    std::vector<double> losses;
    for (size_t e = 0; e < n; ++e) {
        EXPECT_EQ(history[e].epoch, e + 1);
        EXPECT_TRUE(std::isnan(history[e].val_loss)) << "epoch " << e + 1;
        EXPECT_TRUE(std::isnan(history[e].val_accuracy)) << "epoch " << e + 1;
        losses.push_back(history[e].loss);
    }
    std::vector<double> epoch_losses(kEpochs);
    ASSERT_NN_OK(nn_get_epoch_losses(model, epoch_losses.data(), epoch_losses.size(), &n));
    ASSERT_EQ(n, kEpochs);
    EXPECT_EQ(epoch_losses, losses) << "nn_get_epoch_losses and nn_get_epoch_history disagree";
    ASSERT_NN_OK(nn_get_loss_history(model, nullptr, 0, &n));
    EXPECT_EQ(n, kEpochs);   // report_interval 10 = steps per epoch: one record per epoch

    const double worst_losses = expect_close(losses, want_losses, name + ": epoch losses");
    ASSERT_NN_OK(nn_get_params(model, params.data(), params.size()));
    const double worst_params = expect_close(params, want_final, name + ": final params");

    // Matching its own golden file must not be possible while ignoring an option: the
    // result must be far from every other case's final parameters (all of which the script
    // made differ from each other by orders of magnitude more than the tolerance).
    for (const auto &other : kCases) {
        if (name == other) continue;
        const auto theirs = read_numbers(kGolden + other + ".params.txt");
        EXPECT_GT(worst_relative(params, theirs), 1e-6) << name << " ends where " << other << " does";
    }

    char line[256];
    std::snprintf(line, sizeof line, "%-20s %-10s worst relative error: losses %.3g, final params %.3g", name.c_str(),
                  device_name(device).c_str(), worst_losses, worst_params);
    std::string summary = line;
    if (calls > 1) {
        std::snprintf(line, sizeof line, ", params after each call %.3g", worst_calls);
        summary += line;
    }
    std::printf("%s\n", summary.c_str());
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.3g", worst_losses);
    ::testing::Test::RecordProperty("worst_relative_error_losses", buf);
    std::snprintf(buf, sizeof buf, "%.3g", worst_params);
    ::testing::Test::RecordProperty("worst_relative_error_params", buf);
    if (calls > 1) {
        std::snprintf(buf, sizeof buf, "%.3g", worst_calls);
        ::testing::Test::RecordProperty("worst_relative_error_params_per_call", buf);
    }

    nn_rng_destroy(rng);
    nn_destroy(model);
}

INSTANTIATE_TEST_SUITE_P(Cases, OptimizerGolden,
                         ::testing::Combine(::testing::ValuesIn(kCases),
                                            ::testing::Values(NN_DEVICE_REFERENCE, NN_DEVICE_CPU)),
                         [](const auto &info) {
                             return std::get<0>(info.param) + "_" + device_name(std::get<1>(info.param));
                         });

// The script wrote exactly the cases above, and they are far apart from each other.
TEST(OptimizerGoldenFiles, EveryCaseWrittenAndDistinct) {
    const auto manifest = read_manifest();
    std::set<std::string> written, expected(kCases.begin(), kCases.end());
    for (const auto &kv : manifest) written.insert(kv.first);
    EXPECT_EQ(written, expected);
    std::map<std::string, std::vector<double>> finals;
    for (const auto &c : kCases) finals[c] = read_numbers(kGolden + c + ".params.txt");
    for (const auto &a : finals)
        for (const auto &b : finals) {
            if (a.first < b.first) {
                EXPECT_GT(worst_relative(a.second, b.second), 1e-4) << a.first << " and " << b.first;
            }
        }
}

}  // namespace
