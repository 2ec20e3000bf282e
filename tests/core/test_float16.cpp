// float16 conversions bit for bit against NumPy 1.24's own (BOOK-CH01.md §9): the vectors
// in tests/data/float16_vectors.txt were written by tests/reference/gen_float16_vectors.py.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "core/float16.h"

namespace {

struct DoubleCase {
    uint64_t bits;
    uint16_t from_double, via_float;
    int line;
};
struct FloatCase {
    uint32_t bits;
    uint16_t half;
    int line;
};
struct WidenCase {
    uint16_t half;
    uint64_t bits;
    int line;
};

struct Vectors {
    std::vector<DoubleCase> d;
    std::vector<FloatCase> f;
    std::vector<WidenCase> x;
    bool have_hash = false;
    uint64_t hash = 0;
};

uint64_t hex(const std::string &s) { return std::stoull(s, nullptr, 16); }

Vectors load() {
    Vectors v;
    const std::string path = std::string(NN_TEST_DATA_DIR) + "/float16_vectors.txt";
    std::ifstream in(path);
    EXPECT_TRUE(in.good()) << "cannot read " << path;
    std::string line;
    int n = 0;
    while (std::getline(in, line)) {
        ++n;
        if (line.empty() || line[0] == '#') continue;
        std::istringstream ss(line);
        std::string kind, a, b, c;
        ss >> kind >> a >> b >> c;
        if (kind == "D") {
            v.d.push_back({hex(a), uint16_t(hex(b)), uint16_t(hex(c)), n});
        } else if (kind == "F") {
            v.f.push_back({uint32_t(hex(a)), uint16_t(hex(b)), n});
        } else if (kind == "X") {
            v.x.push_back({uint16_t(hex(a)), hex(b), n});
        } else if (kind == "H") {
            v.have_hash = true;
            v.hash = hex(a);
        } else {
            ADD_FAILURE() << path << ":" << n << ": unknown line kind '" << kind << "'";
        }
    }
    return v;
}

double double_of(uint64_t b) {
    double d;
    std::memcpy(&d, &b, sizeof d);
    return d;
}
float float_of(uint32_t b) {
    float f;
    std::memcpy(&f, &b, sizeof f);
    return f;
}
uint64_t bits_of(double d) {
    uint64_t b;
    std::memcpy(&b, &d, sizeof b);
    return b;
}

std::string h4(unsigned v) {
    char s[8];
    std::snprintf(s, sizeof s, "%04x", v);
    return s;
}
std::string h16(uint64_t v) {
    char s[24];
    std::snprintf(s, sizeof s, "%016llx", static_cast<unsigned long long>(v));
    return s;
}

bool is_nan_half(uint16_t h) { return (h & 0x7c00u) == 0x7c00u && (h & 0x3ffu) != 0; }

class Float16 : public ::testing::Test {
protected:
    static void SetUpTestSuite() { v_ = new Vectors(load()); }
    static void TearDownTestSuite() { delete v_; }
    static Vectors *v_;
};
Vectors *Float16::v_ = nullptr;

TEST_F(Float16, VectorFileIsComplete) {
    EXPECT_GE(v_->d.size(), 5000u);
    EXPECT_GE(v_->f.size(), 200u);
    EXPECT_EQ(v_->x.size(), 256u);
    EXPECT_TRUE(v_->have_hash);
}

TEST_F(Float16, FromDoubleMatchesNumpy) {
    int bad = 0;
    for (const DoubleCase &c : v_->d) {
        const uint16_t got = nn::f16_from_double(double_of(c.bits));
        if (got != c.from_double && ++bad <= 20)
            ADD_FAILURE() << "line " << c.line << ": f16_from_double(" << h16(c.bits) << " = "
                          << double_of(c.bits) << ") = " << h4(got) << ", NumPy " << h4(c.from_double);
    }
    EXPECT_EQ(bad, 0) << "of " << v_->d.size() << " values";
}

TEST_F(Float16, FromFloatOfFloat32MatchesNumpy) {
    // NumPy's float64 -> float32 -> float16: the first rounding is the hardware's, as here.
    int bad = 0;
    for (const DoubleCase &c : v_->d) {
        const float f = static_cast<float>(double_of(c.bits));
        const uint16_t got = nn::f16_from_float(f);
        if (got != c.via_float && ++bad <= 20)
            ADD_FAILURE() << "line " << c.line << ": f16_from_float(float(" << h16(c.bits) << ")) = " << h4(got)
                          << ", NumPy " << h4(c.via_float);
    }
    EXPECT_EQ(bad, 0) << "of " << v_->d.size() << " values";
}

TEST_F(Float16, BookDoubleRoundingExample) {
    // BOOK-CH01.md §9: 1 + 2^-11 + 2^-40 is 1.001 (0x3c01) straight from float64 but
    // 1.0 (0x3c00) through float32, whose rounding lands exactly on the tie.
    const double x = 1.0 + std::ldexp(1.0, -11) + std::ldexp(1.0, -40);
    EXPECT_EQ(nn::f16_from_double(x), 0x3c01);
    EXPECT_EQ(nn::f16_from_float(static_cast<float>(x)), 0x3c00);
    bool listed = false;
    for (const DoubleCase &c : v_->d)
        if (c.bits == bits_of(x)) listed = c.from_double == 0x3c01 && c.via_float == 0x3c00;
    EXPECT_TRUE(listed) << "the vector file lacks the §9 example or NumPy disagrees with the book";
}

TEST_F(Float16, FromFloatMatchesNumpyOnNonSignallingInputs) {
    int bad = 0;
    for (const FloatCase &c : v_->f) {
        const float f = float_of(c.bits);
        const bool signalling = std::isnan(f) && (c.bits & 0x00400000u) == 0;
        if (signalling) continue;  // see the next test
        const uint16_t got = nn::f16_from_float(f);
        if (got != c.half && ++bad <= 20)
            ADD_FAILURE() << "line " << c.line << ": f16_from_float(" << h4(c.bits >> 16) << h4(c.bits & 0xffffu)
                          << ") = " << h4(got) << ", NumPy " << h4(c.half);
    }
    EXPECT_EQ(bad, 0);
}

TEST_F(Float16, FromFloatKeepsSignallingNaNPayloadAsNumpy) {
    // NumPy takes the top ten payload bits of the float32 itself (0x7f800001 -> 0x7c01,
    // 0x7f802000 -> 0x7c01); widening a signalling NaN to double first would set its quiet
    // bit (0x7f800001 -> 0x7e00), so f16_from_float converts NaNs from their own bits.
    std::string diffs;
    for (const FloatCase &c : v_->f) {
        const float f = float_of(c.bits);
        if (!(std::isnan(f) && (c.bits & 0x00400000u) == 0)) continue;
        const uint16_t got = nn::f16_from_float(f);
        EXPECT_TRUE(is_nan_half(got)) << "line " << c.line << ": " << h4(got) << " is not a NaN";
        EXPECT_EQ(got & 0x8000u, (c.bits >> 16) & 0x8000u) << "line " << c.line << ": sign lost";
        if (got != c.half)
            diffs += " " + h4(c.bits >> 16) + h4(c.bits & 0xffffu) + "->" + h4(got) + "(NumPy " + h4(c.half) + ")";
    }
    EXPECT_TRUE(diffs.empty()) << "signalling-NaN payloads differ from NumPy:" << diffs;
}

TEST_F(Float16, ToDoubleMatchesNumpyOnSelectedPatterns) {
    for (const WidenCase &c : v_->x) {
        const double got = nn::f16_to_double(c.half);
        // NaNs included: NumPy keeps sign and payload (0x7c01 -> 0x7ff0040000000000).
        EXPECT_EQ(bits_of(got), c.bits) << "line " << c.line << ": f16_to_double(" << h4(c.half) << ") = " << got;
    }
}

TEST_F(Float16, ToDoubleMatchesNumpyOnEveryPattern) {
    uint64_t fnv = 0xcbf29ce484222325ull;
    for (uint32_t h = 0; h < 65536; ++h) {
        const double d = nn::f16_to_double(uint16_t(h));
        if (is_nan_half(uint16_t(h))) continue;
        const uint64_t b = bits_of(d);
        for (int i = 0; i < 8; ++i) {
            fnv ^= (b >> (8 * i)) & 0xffu;
            fnv *= 0x100000001b3ull;
        }
    }
    EXPECT_EQ(h16(fnv), h16(v_->hash)) << "FNV-1a of f16_to_double over all non-NaN patterns differs from NumPy's";
}

TEST(Float16Exhaustive, ToDoubleIsExactAndRoundTrips) {
    for (uint32_t i = 0; i < 65536; ++i) {
        const uint16_t h = uint16_t(i);
        const double d = nn::f16_to_double(h);
        if (is_nan_half(h)) {
            EXPECT_TRUE(std::isnan(d)) << h4(h);
            EXPECT_EQ(std::signbit(d), (h & 0x8000u) != 0) << h4(h);
            EXPECT_TRUE(is_nan_half(nn::f16_from_double(d))) << h4(h) << " does not stay a NaN";
            continue;
        }
        // Exact: the value is a float too, and converting back gives the same pattern.
        EXPECT_EQ(double(float(d)), d) << h4(h);
        EXPECT_EQ(nn::f16_from_double(d), h) << h4(h) << " -> " << d;
        EXPECT_EQ(nn::f16_from_float(float(d)), h) << h4(h) << " -> " << d;
        EXPECT_EQ(std::signbit(d), (h & 0x8000u) != 0) << h4(h);
        // Monotonic over the non-negative patterns: each step is the next float16 up.
        if (h > 0 && h < 0x7c00u) {
            EXPECT_LT(nn::f16_to_double(uint16_t(h - 1)), d) << h4(h);
        }
    }
}

}  // namespace
