// nn_math.h's shared per-element math, where a form written for one target must equal
// another: the call-free pairwise summation (what GPU threads run) against NumPy's
// recursion as numpy/core/src/umath/loops_utils.h.src writes it.
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <vector>

#include "common/nn_math.h"

namespace {

// NumPy's pairwise_sum, recursive, as the reference.
template <typename T>
T numpy_pairwise(const T *a, std::size_t n, std::ptrdiff_t stride) {
    if (n <= 128) return nn::math::pairwise_block(a, n, stride);
    std::size_t n2 = n / 2;
    n2 -= n2 % 8;
    return numpy_pairwise(a, n2, stride) + numpy_pairwise(a + std::ptrdiff_t(n2) * stride, n - n2, stride);
}

template <typename T>
void expect_same_sums(unsigned seed) {
    std::mt19937_64 gen(seed);
    // Magnitudes spread over 2^±20, so that the grouping changes the rounding.
    std::uniform_real_distribution<double> mant(-1.0, 1.0);
    std::uniform_int_distribution<int> expo(-20, 20);
    std::vector<T> a(3 * 70000);
    for (T &v : a) v = T(std::ldexp(mant(gen), expo(gen)));
    std::vector<std::size_t> sizes;
    for (std::size_t n = 0; n <= 1100; ++n) sizes.push_back(n);
    for (std::size_t n : {2047u, 2048u, 2049u, 4095u, 4096u, 4100u, 12345u, 65536u, 69999u, 70000u}) sizes.push_back(n);
    int differing_from_in_order = 0;
    for (std::ptrdiff_t stride : {1, 3})
        for (std::size_t n : sizes) {
            const T got = nn::math::pairwise_sum(a.data(), n, stride);
            const T want = numpy_pairwise(a.data(), n, stride);
            ASSERT_EQ(std::memcmp(&got, &want, sizeof(T)), 0) << "n " << n << " stride " << stride << ": " << got
                                                                << " vs " << want;
            T in_order = T(0);
            for (std::size_t i = 0; i < n; ++i) in_order += a[i * std::size_t(stride)];
            differing_from_in_order += in_order != got;
        }
    // The comparison means something: the grouping is not plain left-to-right addition.
    EXPECT_GT(differing_from_in_order, 100);
}

TEST(MathPairwise, CallFreeWalkGroupsAsNumPyFloat64) { expect_same_sums<double>(1); }
TEST(MathPairwise, CallFreeWalkGroupsAsNumPyFloat32) { expect_same_sums<float>(2); }

}  // namespace
