// The legacy NumPy stream, bit for bit, against NumPy 1.24.2's own output
// (shared/reference/rng/expected_numpy_basic_seed1984.txt, epoch_permutations.txt).
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "core/rng.h"

namespace {

struct Expected {
    std::map<std::string, std::vector<uint64_t>> bits;  // tag → IEEE bits of each double
    std::map<std::string, std::vector<int64_t>> perms;  // tag → permutation
};

Expected load_expected() {
    Expected e;
    std::ifstream in(std::string(NN_REFERENCE_DIR) + "/rng/expected_numpy_basic_seed1984.txt");
    EXPECT_TRUE(in.good());
    std::string line;
    while (std::getline(in, line)) {
        std::istringstream ss(line);
        std::string tag;
        ss >> tag;
        if (tag.find("perm") != std::string::npos) {
            int64_t v;
            while (ss >> v) e.perms[tag].push_back(v);
        } else {
            std::string value, hex;
            ss >> value >> hex;
            e.bits[tag].push_back(std::stoull(hex, nullptr, 16));
        }
    }
    return e;
}

uint64_t bits_of(double d) {
    uint64_t u;
    std::memcpy(&u, &d, sizeof u);
    return u;
}

std::vector<uint64_t> gauss_bits(nn::LegacyRng &rng, size_t n) {
    std::vector<uint64_t> out;
    for (size_t i = 0; i < n; ++i) out.push_back(bits_of(rng.next_gauss()));
    return out;
}

std::vector<uint64_t> uniform_bits(nn::LegacyRng &rng, size_t n) {
    std::vector<uint64_t> out;
    for (size_t i = 0; i < n; ++i) out.push_back(bits_of(rng.next_double()));
    return out;
}

std::vector<int64_t> perm(nn::LegacyRng &rng, size_t n) {
    std::vector<int64_t> p(n);
    rng.permutation(p);
    return p;
}

class LegacyRngTest : public ::testing::Test {
protected:
    static void SetUpTestSuite() { expected_ = new Expected(load_expected()); }
    static void TearDownTestSuite() { delete expected_; }
    static Expected *expected_;
};
Expected *LegacyRngTest::expected_ = nullptr;

TEST_F(LegacyRngTest, RandnMatchesNumpySeed1984) {
    nn::LegacyRng rng(1984);
    EXPECT_EQ(gauss_bits(rng, 10), expected_->bits["randn"]);
}

TEST_F(LegacyRngTest, RandMatchesNumpySeed1984) {
    nn::LegacyRng rng(1984);
    EXPECT_EQ(uniform_bits(rng, 5), expected_->bits["rand"]);
}

TEST_F(LegacyRngTest, PermutationMatchesNumpySeed1984) {
    nn::LegacyRng rng(1984);
    EXPECT_EQ(perm(rng, 300), expected_->perms["perm300"]);
}

TEST_F(LegacyRngTest, CachedGaussianSurvivesOtherDraws) {
    // randn(3), rand(5), randn(), permutation(300), randn(2): the 4th gaussian comes
    // from the cache filled by the 3rd call, across the uniform draws.
    nn::LegacyRng rng(1984);
    EXPECT_EQ(gauss_bits(rng, 3), expected_->bits["s_randn3"]);
    EXPECT_EQ(uniform_bits(rng, 5), expected_->bits["s_rand5"]);
    EXPECT_EQ(gauss_bits(rng, 1), expected_->bits["s_randn1"]);
    EXPECT_EQ(perm(rng, 300), expected_->perms["s_perm300"]);
    EXPECT_EQ(gauss_bits(rng, 2), expected_->bits["s_randn2"]);
}

TEST_F(LegacyRngTest, ArraySeedUsesInitByArray) {
    nn::LegacyRng rng;
    const uint32_t key[] = {1984, 7};
    rng.seed_array(key);
    EXPECT_EQ(gauss_bits(rng, 4), expected_->bits["a_randn"]);
    EXPECT_EQ(perm(rng, 10), expected_->perms["a_perm10"]);
}

TEST_F(LegacyRngTest, ExtremeSeeds) {
    nn::LegacyRng zero(0), max(4294967295u);
    EXPECT_EQ(uniform_bits(zero, 2), expected_->bits["z_rand"]);
    EXPECT_EQ(uniform_bits(max, 2), expected_->bits["m_rand"]);
}

TEST_F(LegacyRngTest, ReseedClearsTheCachedGaussian) {
    nn::LegacyRng a(1984), b(1984);
    a.next_gauss();  // leaves a cached value
    a.seed_int(1984);
    EXPECT_EQ(gauss_bits(a, 3), gauss_bits(b, 3));
}

TEST_F(LegacyRngTest, RawDrawsEqualStdMt19937) {
    nn::LegacyRng rng(1984);
    std::mt19937 std_rng(1984);
    for (int i = 0; i < 5000; ++i) ASSERT_EQ(rng.next_u32(), std_rng()) << "draw " << i;
}

TEST_F(LegacyRngTest, BookEpochPermutationsFollowTheSpiralAndWeights) {
    // The book's stream: 300 spiral gaussians, 20 + 30 weight gaussians, then one
    // permutation(300) per epoch.
    nn::LegacyRng rng(1984);
    for (int i = 0; i < 350; ++i) rng.next_gauss();
    std::ifstream in(std::string(NN_REFERENCE_DIR) + "/book-ch01/epoch_permutations.txt");
    ASSERT_TRUE(in.good());
    std::string line;
    int epochs = 0;
    while (std::getline(in, line)) {
        std::istringstream ss(line);
        std::vector<int64_t> want;
        int64_t v;
        while (ss >> v) want.push_back(v);
        ASSERT_EQ(perm(rng, 300), want) << "epoch " << epochs + 1;
        ++epochs;
    }
    EXPECT_EQ(epochs, 300);
}

// shuffle(x) is x[permutation(n)] from the same stream (what the training loop uses to
// compound the epochs' orders), and leaves the stream where permutation(n) leaves it.
// (permutation is shuffle of arange, so that part holds for any swap sequence: the check
// with teeth is the next one.) permutation follows interval's draws one by one: the
// branch-free loop draws and swaps exactly as NumPy's rejection loop.
TEST_F(LegacyRngTest, ShuffleIsIndexingByAPermutation) {
    for (size_t n : {0u, 1u, 2u, 3u, 64u, 300u, 1000u, 5000u}) {
        nn::LegacyRng a(99), b(99), c(99);
        std::vector<int64_t> values(n), want(n), p(n);
        for (size_t i = 0; i < n; ++i) values[i] = int64_t(7 * i * i + 3);
        a.permutation(p);
        for (size_t i = 0; i < n; ++i) want[i] = values[size_t(p[i])];
        b.shuffle(values);
        EXPECT_EQ(values, want) << n;
        std::vector<int64_t> by_interval(n);
        for (size_t i = 0; i < n; ++i) by_interval[i] = int64_t(i);
        for (size_t i = n; i-- > 1;) std::swap(by_interval[i], by_interval[size_t(c.interval(i))]);
        EXPECT_EQ(p, by_interval) << n;
        const uint32_t next = a.next_u32();
        EXPECT_EQ(b.next_u32(), next) << n;
        EXPECT_EQ(c.next_u32(), next) << n;
    }
}

TEST_F(LegacyRngTest, IntervalNeverExceedsItsBound) {
    nn::LegacyRng rng(7);
    for (uint64_t max : {1ull, 2ull, 5ull, 299ull, 1000ull, 0xffffffffull, 0x1ffffffffull})
        for (int i = 0; i < 200; ++i) ASSERT_LE(rng.interval(max), max);
    EXPECT_EQ(rng.interval(0), 0u);
}

}  // namespace
