// Finite-difference checks of every layer and loss of the reference implementation in
// float64: the backward pass must be the derivative of the forward pass.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "core/reference.h"

namespace {

using nn::NetShape;

struct Case {
    std::vector<size_t> sizes;
    nn_activation act;
    nn_loss loss;
};

std::string name_of(const Case &c) {
    static const char *acts[] = {"Sigmoid", "Relu", "Tanh", "Identity"};
    std::string n = acts[c.act];
    n += c.loss == NN_LOSS_SOFTMAX_CROSS_ENTROPY ? "SoftmaxCE" : "MSE";
    for (size_t s : c.sizes) n += "_" + std::to_string(s);
    return n;
}

void PrintTo(const Case &c, std::ostream *os) { *os << name_of(c); }

class NetGradient : public ::testing::TestWithParam<Case> {};

TEST_P(NetGradient, BackwardMatchesFiniteDifference) {
    const Case &c = GetParam();
    NetShape shape;
    shape.sizes = c.sizes;
    shape.activation = c.act;
    shape.loss = c.loss;
    shape.dtype = NN_DTYPE_FLOAT64;
    nn::ref::Model<double> model(shape);

    std::mt19937 gen(42);
    std::normal_distribution<double> normal(0.0, 1.0);
    for (double &p : model.params()) p = 0.3 * normal(gen);

    const size_t rows = 9, B = 6, in = shape.inputs(), out = shape.outputs();
    std::vector<double> x(rows * in);
    for (double &v : x) v = normal(gen);
    std::vector<int32_t> labels(rows);
    std::vector<double> targets(rows * out);
    for (size_t r = 0; r < rows; ++r) labels[r] = int32_t(r % out);
    for (double &v : targets) v = normal(gen);
    const void *t = c.loss == NN_LOSS_SOFTMAX_CROSS_ENTROPY ? static_cast<const void *>(labels.data()) : targets.data();
    model.upload(x.data(), t, rows, B);
    const std::vector<int64_t> order = {8, 1, 5, 3, 0, 7};  // any subset of rows, any order

    model.loss_and_gradients(order.data(), B);
    const std::vector<double> analytic = model.grads();

    const double h = 1e-6;
    for (size_t i = 0; i < analytic.size(); ++i) {
        const double saved = model.params()[i];
        model.params()[i] = saved + h;
        const double up = model.loss_and_gradients(order.data(), B);
        model.params()[i] = saved - h;
        const double down = model.loss_and_gradients(order.data(), B);
        model.params()[i] = saved;
        const double numeric = (up - down) / (2 * h);
        // The book's softmax backward ignores the 1e-7 inside the log: allow for it.
        EXPECT_NEAR(analytic[i], numeric, 1e-6 + 1e-5 * std::fabs(numeric)) << "parameter " << i;
    }
}

std::vector<Case> cases() {
    std::vector<Case> out;
    for (int act = 0; act < 4; ++act)
        for (nn_loss loss : {NN_LOSS_SOFTMAX_CROSS_ENTROPY, NN_LOSS_MEAN_SQUARED_ERROR})
            for (const auto &sizes : std::vector<std::vector<size_t>>{{3, 4}, {2, 5, 3}, {4, 6, 5, 2}, {3, 4, 4, 4, 3}})
                out.push_back({sizes, nn_activation(act), loss});
    return out;
}

INSTANTIATE_TEST_SUITE_P(AllLayersAndLosses, NetGradient, ::testing::ValuesIn(cases()),
                         [](const auto &info) { return name_of(info.param); });

// The affine layer's input gradient, which the network check only sees through the
// layers below it: d/dx Σ (out ⊙ R) = R · Wᵀ.
TEST(Affine, InputGradientMatchesFiniteDifference) {
    const size_t B = 3, I = 4, O = 5;
    std::mt19937 gen(7);
    std::normal_distribution<double> normal(0.0, 1.0);
    std::vector<double> x(B * I), W(I * O), b(O), R(B * O), out(B * O), dx(B * I), dW(I * O), db(O);
    for (auto *v : {&x, &W, &b, &R})
        for (double &e : *v) e = normal(gen);
    nn::ref::affine_backward(dx.data(), dW.data(), db.data(), R.data(), x.data(), W.data(), B, I, O);
    auto objective = [&] {
        nn::ref::affine_forward(out.data(), x.data(), W.data(), b.data(), B, I, O);
        double s = 0;
        for (size_t i = 0; i < out.size(); ++i) s += out[i] * R[i];
        return s;
    };
    const double h = 1e-6;
    for (size_t i = 0; i < x.size(); ++i) {
        const double saved = x[i];
        x[i] = saved + h;
        const double up = objective();
        x[i] = saved - h;
        const double down = objective();
        x[i] = saved;
        EXPECT_NEAR(dx[i], (up - down) / (2 * h), 1e-7) << "x " << i;
    }
}

TEST(Activation, BackwardMatchesFiniteDifference) {
    for (uint32_t act = 0; act < 4; ++act) {
        for (double x : {-2.5, -0.3, 0.4, 1.7}) {
            double out = x, dx = 1.0;
            nn::ref::activation_forward(&out, 1, act);
            nn::ref::activation_backward(&dx, &out, 1, act);
            double up = x + 1e-6, down = x - 1e-6;
            nn::ref::activation_forward(&up, 1, act);
            nn::ref::activation_forward(&down, 1, act);
            EXPECT_NEAR(dx, (up - down) / 2e-6, 1e-8) << "activation " << act << " at " << x;
        }
    }
}

TEST(SoftmaxCrossEntropy, MatchesTheBookFormula) {
    // Two rows, three classes: loss = -Σ log(p[t] + 1e-7) / 2, gradient (p − onehot) / 2.
    std::vector<double> s = {1.0, 2.0, 3.0, 0.5, -0.5, 0.0};
    const std::vector<int32_t> t = {2, 0};
    std::vector<double> terms(2);
    const double loss = nn::ref::softmax_cross_entropy(s.data(), t.data(), 2, 3, terms.data());
    const double e0 = std::exp(1.0 - 3.0), e1 = std::exp(2.0 - 3.0), e2 = 1.0;
    const double p02 = e2 / (e0 + e1 + e2);
    const double f0 = 1.0, f1 = std::exp(-1.0), f2 = std::exp(-0.5);
    const double p10 = f0 / (f0 + f1 + f2);
    EXPECT_NEAR(loss, -(std::log(p02 + 1e-7) + std::log(p10 + 1e-7)) / 2, 1e-15);
    EXPECT_NEAR(s[2], (p02 - 1) / 2, 1e-15);
    EXPECT_NEAR(s[3], (p10 - 1) / 2, 1e-15);
}

}  // namespace
