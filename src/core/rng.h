// NumPy's legacy RandomState (MT19937 + polar gaussian), bit for bit (BOOK-CH01.md §12).
#ifndef NN_CORE_RNG_H
#define NN_CORE_RNG_H

#include <cstddef>
#include <cstdint>
#include <span>

namespace nn {

class LegacyRng {
public:
    explicit LegacyRng(uint32_t seed = 1984) { seed_int(seed); }

    // np.random.seed(int): init_genrand; clears the cached gaussian.
    void seed_int(uint32_t seed);
    // np.random.seed(array): init_by_array; clears the cached gaussian.
    void seed_array(std::span<const uint32_t> key);

    uint32_t next_u32() {
        if (pos_ == kN) twist();
        return temper(key_[pos_++]);
    }
    // (a·2^26 + b) / 2^53 with a = draw>>5 then b = draw>>6.
    double next_double();
    // legacy_gauss: Marsaglia polar method with the second value cached.
    double next_gauss();
    // random_interval: masked rejection sampling in [0, max].
    uint64_t interval(uint64_t max);
    // np.random.permutation(n): arange(n) shuffled by Fisher–Yates from the top.
    void permutation(std::span<int64_t> out);
    // np.random.shuffle(values): the draws and swaps of permutation, on the values
    // themselves, so that x = x[permutation(n)] needs neither the index array nor the
    // gather. Draws inline and branch-free: the per-epoch shuffle is a large part of a
    // small net's fit.
    void shuffle(std::span<int64_t> values);

    static constexpr int kN = 624;

    // The whole state, for saving a model's stream with it.
    struct State {
        uint32_t key[kN];
        int pos;  // 0..624
        bool has_gauss;
        double gauss;
    };
    State state() const;
    // Returns false (and changes nothing) for a state no stream can be in.
    bool set_state(const State &s);

private:
    void twist();
    static uint32_t temper(uint32_t y) {
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c5680u;
        y ^= (y << 15) & 0xefc60000u;
        y ^= y >> 18;
        return y;
    }

    uint32_t key_[kN];
    int pos_ = kN;
    bool has_gauss_ = false;
    double gauss_ = 0.0;
};

}  // namespace nn

#endif  // NN_CORE_RNG_H
