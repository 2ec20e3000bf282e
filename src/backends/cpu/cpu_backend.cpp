// libnn-backend-cpu.so: the CPU backend.
//
// Activations are kept feature-major — (features, batch), the batch contiguous — so
// that every inner loop runs over the batch: on the book's 2-10-3 net with batch 30
// that gives a few dozen loops of 30 instead of a thousand loops of 3 or 10. The batch
// stride is padded to a multiple of 8 lanes, so those loops are whole vectors with no
// scalar tail; padded lanes carry zero inputs, zero hidden activations and zero
// gradients, and never enter a loss or a sum. Large products go to OpenBLAS (it takes strided operands, so the
// layout costs nothing there). One model keeps its parameters, gradients, training set and
// workspace together, sized before training starts: a training step allocates nothing.
#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <new>
#include <type_traits>
#include <vector>

#include "common/nn_math.h"
#include "common/nn_optim.h"
#include "nn/nn_backend.h"

namespace {

const nn_host_services *g_host = nullptr;

void report(const char *message) {
    if (g_host && g_host->set_error) g_host->set_error(message);
}

// Lanes per block: the batch stride is a multiple of this.
constexpr size_t kLanes = 8;
inline size_t padded(size_t n) { return (n + kLanes - 1) / kLanes * kLanes; }

// From this many multiply-adds on, a product goes to BLAS; below, the loops here win
// (measured with bench/spiral and the wide parity nets).
constexpr size_t kBlasThreshold = 48 * 48 * 48;

// C = alpha·op(A)·op(B) + beta·C.
template <typename T>
void gemm(bool trans_a, bool trans_b, size_t M, size_t N, size_t K, const T *A, size_t lda, const T *B, size_t ldb, T *C,
          size_t ldc, T alpha = T(1), T beta = T(0)) {
    const auto ta = trans_a ? CblasTrans : CblasNoTrans, tb = trans_b ? CblasTrans : CblasNoTrans;
    if constexpr (sizeof(T) == 8)
        cblas_dgemm(CblasRowMajor, ta, tb, int(M), int(N), int(K), alpha, A, int(lda), B, int(ldb), beta, C, int(ldc));
    else
        cblas_sgemm(CblasRowMajor, ta, tb, int(M), int(N), int(K), alpha, A, int(lda), B, int(ldb), beta, C, int(ldc));
}

// Σ a[r]·b[r] over n (a multiple of kLanes) in eight interleaved partial sums, so the
// compiler can vectorise it without reassociating anything itself.
template <typename T>
inline T dot(const T *__restrict a, const T *__restrict b, size_t n) {
    T acc[kLanes] = {};
    for (size_t r = 0; r < n; r += kLanes)
        for (size_t l = 0; l < kLanes; ++l) acc[l] += a[r + l] * b[r + l];
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

// Σ a[r] over n (a multiple of kLanes), in the same eight partial sums as dot.
template <typename T>
inline T sum(const T *__restrict a, size_t n) {
    T acc[kLanes] = {};
    for (size_t r = 0; r < n; r += kLanes)
        for (size_t l = 0; l < kLanes; ++l) acc[l] += a[r + l];
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

// o[r] = f(o[r] + b) over a batch, with the activation chosen once per call.
template <uint32_t Act, typename T>
void bias_activate(T *__restrict o, T b, size_t n) {
    for (size_t r = 0; r < n; ++r) o[r] = Act == 99 ? o[r] + b : nn::math::activate(Act, o[r] + b);
}

template <typename T>
void bias_activate(T *o, T b, size_t n, int act) {
    switch (act) {
    case nn::math::kSigmoid: bias_activate<nn::math::kSigmoid>(o, b, n); break;
    case nn::math::kRelu: bias_activate<nn::math::kRelu>(o, b, n); break;
    case nn::math::kTanh: bias_activate<nn::math::kTanh>(o, b, n); break;
    case nn::math::kIdentity: bias_activate<nn::math::kIdentity>(o, b, n); break;
    default: bias_activate<99>(o, b, n); break;  // the output layer: bias only
    }
}

// d[r] = f'(h[r]) · d[r] from the forward output h.
template <uint32_t Act, typename T>
void activate_backward(T *__restrict d, const T *__restrict h, size_t n) {
    for (size_t r = 0; r < n; ++r) d[r] = nn::math::activate_backward(Act, d[r], h[r]);
}

template <typename T>
void activate_backward(T *d, const T *h, size_t n, uint32_t act) {
    switch (act) {
    case nn::math::kSigmoid: activate_backward<nn::math::kSigmoid>(d, h, n); break;
    case nn::math::kRelu: activate_backward<nn::math::kRelu>(d, h, n); break;
    case nn::math::kTanh: activate_backward<nn::math::kTanh>(d, h, n); break;
    default: break;  // identity
    }
}

// out (O, B) = Wᵀ · x (I, B) + b, then the activation (act < 0: none). B is the
// padded batch.
template <typename T>
void affine_forward(T *out, const T *x, const T *W, const T *b, size_t B, size_t I, size_t O, int act) {
    if (B * I * O >= kBlasThreshold) {
        gemm<T>(true, false, O, B, I, W, O, x, B, out, B);
        for (size_t j = 0; j < O; ++j) bias_activate(out + j * B, b[j], B, act);
        return;
    }
    // One block of lanes at a time, its sums kept in registers across k (in order
    // from zero, as the reference adds them).
    for (size_t j = 0; j < O; ++j) {
        T *__restrict o = out + j * B;
        for (size_t r = 0; r < B; r += kLanes) {
            T acc[kLanes] = {};
            for (size_t k = 0; k < I; ++k) {
                const T w = W[k * O + j];
                const T *__restrict xk = x + k * B + r;
                for (size_t l = 0; l < kLanes; ++l) acc[l] += xk[l] * w;
            }
            for (size_t l = 0; l < kLanes; ++l) o[r + l] = acc[l];
        }
        bias_activate(o, b[j], B, act);
    }
}

// dW (I, O) = x · dᵀ, db = Σ_batch d, and (when dx) dx (I, B) = W · d followed by the
// activation's backward through h = x (the forward output of the layer below). B is
// the padded batch; padded lanes of d are zero.
template <typename T>
void affine_backward(T *dx, T *dW, T *db, const T *d, const T *x, const T *W, size_t B, size_t I, size_t O, uint32_t act) {
    const bool blas = B * I * O >= kBlasThreshold;
    if (blas) {
        gemm<T>(false, true, I, O, B, x, B, d, B, dW, O);
    } else {
        for (size_t k = 0; k < I; ++k)
            for (size_t j = 0; j < O; ++j) dW[k * O + j] = dot(x + k * B, d + j * B, B);
    }
    // db in eight partial sums like dot (padded lanes of d are zero): the in-order sum
    // NumPy does was a tenth of the step, one dependent add per row.
    for (size_t j = 0; j < O; ++j) db[j] = sum(d + j * B, B);
    if (!dx) return;
    if (blas) {
        gemm<T>(false, false, I, B, O, W, O, d, B, dx, B);
    } else {
        for (size_t k = 0; k < I; ++k) {
            T *__restrict o = dx + k * B;
            const T *__restrict wk = W + k * O;
            for (size_t r = 0; r < B; r += kLanes) {
                T acc[kLanes] = {};
                for (size_t j = 0; j < O; ++j) {
                    const T *__restrict dj = d + j * B + r;
                    for (size_t l = 0; l < kLanes; ++l) acc[l] += wk[j] * dj[l];
                }
                for (size_t l = 0; l < kLanes; ++l) o[r + l] = acc[l];
            }
        }
    }
    for (size_t k = 0; k < I; ++k) activate_backward(dx + k * B, x + k * B, B, act);
}

// affine_backward for a float32 layer big enough for BLAS under plain SGD (no decay,
// clipping or exchange, which need the gradient itself): the update is folded into the weight-
// gradient product, W ← W + (−lr)·x·dᵀ (BLAS's β = 1), after dx has used the old W.
// Nothing writes dW, and the update's pass over W (reading dW and W, writing W) runs
// inside the threaded product instead of on one thread after it. The
// bias gradient is written as usual; the caller updates the biases. The one difference
// from the unfused update is rounding: BLAS may add α·Σ to W in one fused multiply-add.
template <typename T>
void affine_backward_sgd(T *dx, T *W, T *db, const T *d, const T *x, size_t B, size_t I, size_t O, uint32_t act,
                         T lr) {
    for (size_t j = 0; j < O; ++j) db[j] = sum(d + j * B, B);
    if (dx) {
        gemm<T>(false, false, I, B, O, W, O, d, B, dx, B);
        for (size_t k = 0; k < I; ++k) activate_backward(dx + k * B, x + k * B, B, act);
    }
    gemm<T>(false, true, I, O, B, x, B, d, B, W, O, -lr, T(1));
}

// ---- small layers: the batch held in registers ----------------------------------------
//
// float32 nets whose layers are all too small for BLAS, on batches of up to
// kMaxSmallBlocks·kLanes rows, take these kernels: the padded batch is a power-of-two
// number NV of kLanes blocks known at compile time, the NV blocks of a row are accumulated
// together in registers (one broadcast of a weight feeds them all), and the gradients of a
// layer — dW and db, contiguous in the gradient buffer — are reduced eight sums at a time.
// Every sum keeps the generic loops' order — per lane from zero in the order of k (or j),
// the lanes combined as ((l0+l1)+(l2+l3))+((l4+l5)+(l6+l7)) — and the extra padded lanes
// of a rounded-up batch only ever add zeros (their hidden activations are zeroed, as the
// generic path's are), so the results are the generic path's bit for bit
// (tests/core/test_cpu_paths.cpp checks it). float64 keeps the generic loops: it is
// the book's fidelity path, and its per-element cost is libm's exp, not the loops.

constexpr size_t kMaxSmallBlocks = 8;

// The lanes a batch of `rows` takes on the small path: the padded batch rounded up to a
// power-of-two number of blocks (1, 2, 4 or 8), so that four kernels cover every batch.
inline size_t small_lanes(size_t rows) {
    size_t blocks = 1;
    while (blocks * kLanes < rows) blocks *= 2;
    return blocks * kLanes;
}

typedef float lanes_f __attribute__((vector_size(kLanes * sizeof(float))));

inline lanes_f load_lanes(const float *p) {
    lanes_f v;
    __builtin_memcpy(&v, p, sizeof v);
    return v;
}

inline void store_lanes(float *p, lanes_f v) { __builtin_memcpy(p, &v, sizeof v); }

typedef int32_t lanes_i __attribute__((vector_size(kLanes * sizeof(float))));

// Lanes rows … B−1 of every row of a (O, NV·kLanes) activation set to zero, a block at a
// time in registers (vector stores, so later vector loads do not stall).
template <size_t NV>
inline void zero_padded_lanes(float *a, size_t O, size_t rows) {
    constexpr size_t B = NV * kLanes;
    const lanes_i lane = {0, 1, 2, 3, 4, 5, 6, 7};
    for (size_t q = rows / kLanes; q < NV; ++q) {
        const lanes_i keep = lane + int32_t(q * kLanes) < int32_t(rows);
        for (size_t j = 0; j < O; ++j) {
            float *p = a + j * B + q * kLanes;
            store_lanes(p, (lanes_f)((lanes_i)load_lanes(p) & keep));
        }
    }
}

// [a0+a1, a2+a3, b0+b1, b2+b3, a4+a5, a6+a7, b4+b5, b6+b7] (the pattern of x86's hadd).
// (__builtin_shufflevector: GCC ≥ 12 and Clang.)
inline lanes_f pair_sums(lanes_f a, lanes_f b) {
    return __builtin_shufflevector(a, b, 0, 2, 8, 10, 4, 6, 12, 14) + __builtin_shufflevector(a, b, 1, 3, 9, 11, 5, 7, 13, 15);
}

// Lane l of the result: the sum of v_l's lanes, ((0+1)+(2+3))+((4+5)+(6+7)) as dot adds them.
inline lanes_f lane_totals(lanes_f v0, lanes_f v1, lanes_f v2, lanes_f v3, lanes_f v4, lanes_f v5, lanes_f v6,
                           lanes_f v7) {
    // lo: [v0..v3's (0+1)+(2+3) | v0..v3's (4+5)+(6+7)]; hi: the same of v4..v7
    const lanes_f lo = pair_sums(pair_sums(v0, v1), pair_sums(v2, v3));
    const lanes_f hi = pair_sums(pair_sums(v4, v5), pair_sums(v6, v7));
    return __builtin_shufflevector(lo, hi, 0, 1, 2, 3, 8, 9, 10, 11) +
           __builtin_shufflevector(lo, hi, 4, 5, 6, 7, 12, 13, 14, 15);
}

// As affine_forward with B = NV·kLanes.
template <size_t NV>
inline void affine_forward_small(float *out, const float *x, const float *W, const float *b, size_t I, size_t O,
                                 int act) {
    constexpr size_t B = NV * kLanes;
    for (size_t j = 0; j < O; ++j) {
        lanes_f acc[NV] = {};
        for (size_t k = 0; k < I; ++k) {
            const float w = W[k * O + j];
            for (size_t q = 0; q < NV; ++q) acc[q] += load_lanes(x + k * B + q * kLanes) * w;
        }
        float *o = out + j * B;
        for (size_t q = 0; q < NV; ++q) store_lanes(o + q * kLanes, acc[q]);
        bias_activate(o, b[j], B, act);
    }
}

// Σ over the NV blocks of a·b per lane from zero, as dot does (sum, for db, is the same
// with a = 1: 1·d is d exactly).
template <size_t NV>
inline lanes_f block_dot(const float *a, const float *b) {
    lanes_f acc = {};
    for (size_t q = 0; q < NV; ++q) acc += load_lanes(a + q * kLanes) * load_lanes(b + q * kLanes);
    return acc;
}

// As affine_backward with B = NV·kLanes. g is the layer's gradient block, dW (I, O) then
// db (O), which is the (I+1, O) product of [x; 1] and dᵀ: its entries are taken eight at
// a time in memory order, so that all but the last eight are stored as whole vectors.
// `ones` holds B ones.
template <size_t NV>
inline void affine_backward_small(float *dx, float *g, const float *d, const float *x, const float *ones,
                                  const float *W, size_t I, size_t O, uint32_t act) {
    constexpr size_t B = NV * kLanes;
    const size_t P = (I + 1) * O;
    size_t k = 0, j = 0;  // the pair (row of [x; 1], row of d) of entry p0
    for (size_t p0 = 0; p0 < P; p0 += kLanes) {
        lanes_f acc[kLanes];
        for (size_t l = 0; l < kLanes; ++l) {
            acc[l] = block_dot<NV>(k < I ? x + k * B : ones, d + j * B);
            if (p0 + l + 1 < P && ++j == O) {  // past the last entry: repeat it (not stored)
                j = 0;
                ++k;
            }
        }
        const lanes_f sums = lane_totals(acc[0], acc[1], acc[2], acc[3], acc[4], acc[5], acc[6], acc[7]);
        if (P - p0 >= kLanes)
            store_lanes(g + p0, sums);
        else
            for (size_t l = 0; l < P - p0; ++l) g[p0 + l] = sums[l];
    }
    if (!dx) return;
    for (size_t kk = 0; kk < I; ++kk) {
        lanes_f acc[NV] = {};
        const float *wk = W + kk * O;
        for (size_t jj = 0; jj < O; ++jj)
            for (size_t q = 0; q < NV; ++q) acc[q] += wk[jj] * load_lanes(d + jj * B + q * kLanes);
        float *o = dx + kk * B;
        for (size_t q = 0; q < NV; ++q) store_lanes(o + q * kLanes, acc[q]);
        activate_backward(o, x + kk * B, B, act);
    }
}

// ---- one model --------------------------------------------------------------------

template <typename T>
struct Model {
    std::vector<size_t> sizes;
    uint32_t act = 0, loss = 0;
    std::vector<size_t> w_off, b_off;
    std::vector<T> params, grads;
    std::vector<T> data_x, data_t;  // row-major, as uploaded (data_upload's own copies)
    std::vector<int32_t> data_labels;
    // What steps read: the copies above, or the host's memory (data_attach).
    const T *xs = nullptr, *ts = nullptr;
    const int32_t *labels = nullptr;
    size_t capacity = 0;
    std::vector<std::vector<T>> acts;  // acts[l]: (sizes[l], B); acts.back(): the scores
    std::vector<T> delta, delta_next, terms, batch_t, row_max, row_sum, row_weight;
    std::vector<int32_t> batch_labels;
    std::vector<T> ones;  // the bias's row of the small path's gradient product
    uint32_t opt_kind = nn::optim::kSgd;
    std::vector<T> opt_state, squares;  // slots × params; clipping scratch

    size_t layers() const { return sizes.size() - 1; }

    void init(const nn_backend_net &net) {
        sizes.assign(net.layer_sizes, net.layer_sizes + net.n_layer_sizes);
        act = net.hidden_activation;
        loss = net.loss;
        size_t off = 0;
        for (size_t l = 0; l < layers(); ++l) {
            w_off.push_back(off);
            off += sizes[l] * sizes[l + 1];
            b_off.push_back(off);
            off += sizes[l + 1];
        }
        params.assign(off, T(0));
        grads.assign(off, T(0));
        squares.assign(nn::optim::largest_array(sizes.data(), sizes.size()), T(0));
        acts.resize(sizes.size());
    }

    void size_workspace(size_t rows) {
        // A batch the small path may take is rounded up to its lanes (the same or more).
        const size_t batch = std::is_same_v<T, float> && rows <= kMaxSmallBlocks * kLanes ? small_lanes(rows) : padded(rows);
        if (batch <= capacity) return;
        const size_t widest = *std::max_element(sizes.begin(), sizes.end());
        for (size_t l = 0; l < acts.size(); ++l) acts[l].assign(batch * sizes[l], T(0));
        delta.assign(batch * widest, T(0));
        delta_next.assign(batch * widest, T(0));
        terms.assign(batch * sizes.back(), T(0));
        batch_t.assign(batch * sizes.back(), T(0));
        row_max.assign(batch, T(0));
        row_sum.assign(batch, T(0));
        row_weight.assign(batch, T(0));
        batch_labels.assign(batch, 0);
        ones.assign(batch, T(1));
        capacity = batch;
    }

    // Tests turn the small-layer kernels and the fused SGD update off to compare them with
    // the generic loops and the separate update.
    bool small_kernels = true, fuse_sgd = true;

    // The number of kLanes blocks the small path gives a batch of `rows` if the model is
    // float32 and its layers are all small enough for the generic loops (no BLAS) at that
    // batch, else 0: the generic loops.
    size_t small_blocks(size_t rows) const {
        if (!std::is_same_v<T, float> || !small_kernels || rows > kMaxSmallBlocks * kLanes) return 0;
        const size_t B = small_lanes(rows);
        for (size_t l = 0; l < layers(); ++l)
            if (padded(rows) * sizes[l] * sizes[l + 1] >= kBlasThreshold || B * sizes[l] * sizes[l + 1] >= kBlasThreshold)
                return 0;
        return B / kLanes;
    }

    // acts[0] holds the batch (inputs, B) on entry, `rows` real lanes; B is padded
    // (NV·kLanes when NV > 0). The hidden layers' padded lanes are set to zero: their
    // f(b) never reaches a loss, but it does reach the weight-gradient sums as f(b)·0,
    // which is NaN where f(b) overflowed (and the small path pads more lanes than the
    // generic one, so both zero them to agree).
    template <size_t NV = 0>
    void forward(size_t B, size_t rows) {
        for (size_t l = 0; l < layers(); ++l) {
            const bool hidden = l + 1 < layers();
            const size_t O = sizes[l + 1];
            T *out = acts[l + 1].data();
            if constexpr (NV > 0) {
                affine_forward_small<NV>(out, acts[l].data(), params.data() + w_off[l], params.data() + b_off[l],
                                         sizes[l], O, hidden ? int(act) : -1);
                if (hidden && rows < B) zero_padded_lanes<NV>(out, O, rows);
            } else {
                affine_forward(out, acts[l].data(), params.data() + w_off[l], params.data() + b_off[l], B, sizes[l], O,
                               hidden ? int(act) : -1);
                if (hidden)
                    for (size_t j = 0; j < O; ++j) std::fill(out + j * B + rows, out + (j + 1) * B, T(0));
            }
        }
    }

    // Scores (O, B) → d loss / d scores in place; returns the mean loss over the
    // `rows` real lanes and leaves the padded lanes' gradient zero.
    double softmax_cross_entropy(T *s, size_t B, size_t rows, size_t O, const double *class_weights, size_t divisor) {
        T *__restrict m = row_max.data(), *__restrict sum = row_sum.data();
        std::copy(s, s + B, m);
        for (size_t j = 1; j < O; ++j) {
            const T *sj = s + j * B;
            for (size_t r = 0; r < B; ++r) m[r] = sj[r] > m[r] ? sj[r] : m[r];
        }
        for (size_t j = 0; j < O; ++j) {
            T *__restrict sj = s + j * B;
            for (size_t r = 0; r < B; ++r) sj[r] = nn::math::exp_t(sj[r] - m[r]);
        }
        if (O < 8) {  // NumPy's row sum: in order from zero below 8 elements
            std::fill(sum, sum + B, T(0));
            for (size_t j = 0; j < O; ++j) {
                const T *sj = s + j * B;
                for (size_t r = 0; r < B; ++r) sum[r] += sj[r];
            }
        } else {
            for (size_t r = 0; r < B; ++r) sum[r] = nn::math::pairwise_sum(s + r, O, std::ptrdiff_t(B));
        }
        const T batch_rows = T(divisor);
        for (size_t j = 0; j < O; ++j) {
            T *__restrict sj = s + j * B;
            for (size_t r = 0; r < B; ++r) sj[r] = sj[r] / sum[r];
        }
        // Gather the true-class probabilities first so that the log runs as one loop. For
        // a few classes, a pass over every class (labels compared lane by lane) vectorises
        // where a gather does not; for many, the gather does less work. Padded lanes
        // (label 0) are zeroed below.
        T *__restrict term = terms.data();
        const int32_t *__restrict label = batch_labels.data();
        if (O <= 16) {
            for (size_t j = 0; j < O; ++j) {
                T *__restrict sj = s + j * B;
                for (size_t r = 0; r < B; ++r) {
                    const bool hit = label[r] == int32_t(j);
                    term[r] = hit ? sj[r] : term[r];
                    sj[r] = hit ? sj[r] - T(1) : sj[r];
                }
            }
        } else {
            for (size_t r = 0; r < B; ++r) {
                T &p = s[size_t(label[r]) * B + r];
                term[r] = p;
                p -= T(1);
            }
        }
        // Over every lane, so that it vectorises without a scalar tail; only the rows'
        // terms are summed.
        for (size_t r = 0; r < B; ++r) term[r] = nn::math::cross_entropy_term(term[r]);
        if (class_weights) {  // row r's term and gradient times its class's weight
            T *__restrict w = row_weight.data();
            for (size_t r = 0; r < rows; ++r) w[r] = T(class_weights[batch_labels[r]]);
            for (size_t r = 0; r < rows; ++r) term[r] = w[r] * term[r];
            for (size_t j = 0; j < O; ++j) {
                T *__restrict sj = s + j * B;
                for (size_t r = 0; r < rows; ++r) sj[r] = sj[r] * w[r];
            }
        }
        const double value = double(-nn::math::pairwise_sum(terms.data(), rows, 1)) / double(divisor);
        for (size_t j = 0; j < O; ++j) {
            T *__restrict sj = s + j * B;
            for (size_t r = 0; r < B; ++r) sj[r] = r < rows ? sj[r] / batch_rows : T(0);
        }
        return value;
    }

    double mean_squared_error(T *s, size_t B, size_t rows, size_t O, size_t divisor) {
        for (size_t j = 0; j < O; ++j)
            for (size_t r = 0; r < B; ++r) {
                const T diff = s[j * B + r] - batch_t[j * B + r];
                if (r < rows) terms[r * O + j] = diff * diff;  // row-major, the order NumPy sums in
                s[j * B + r] = r < rows ? diff / T(divisor) : T(0);
            }
        return 0.5 * double(nn::math::pairwise_sum(terms.data(), rows * O, 1)) / double(divisor);
    }

    // The rows `order` picks of a row-major (·, width) source into dst (width,
    // NV·kLanes), zero in the padded lanes, built a block of lanes at a time in
    // registers: scalar stores read back as vectors would stall the next loads.
    template <size_t NV>
    static void gather_small(float *dst, const float *src, size_t width, const int64_t *order, size_t rows) {
        constexpr size_t B = NV * kLanes;
        for (size_t q = 0; q < NV; ++q) {
            const size_t r0 = q * kLanes;
            for (size_t k = 0; k < width; ++k) {
                lanes_f v = {};
                for (size_t l = 0; l < kLanes; ++l)
                    if (r0 + l < rows) v[l] = src[size_t(order[r0 + l]) * width + k];
                store_lanes(dst + k * B + r0, v);
            }
        }
    }

    // One step on `rows` rows; NV > 0: with the small-layer kernels, NV = small_blocks(rows).
    template <size_t NV = 0>
    double step(const int64_t *order, size_t rows, const nn::optim::Settings &settings, uint64_t t) {
        const size_t in = sizes.front(), out = sizes.back(), L = layers(), B = NV > 0 ? NV * kLanes : padded(rows);
        T *x = acts[0].data();
        if constexpr (NV > 0) {
            gather_small<NV>(x, xs, in, order, rows);
            if (loss == nn::math::kSoftmaxCrossEntropy)
                for (size_t r = 0; r < B; ++r) batch_labels[r] = r < rows ? labels[order[r]] : 0;
            else
                gather_small<NV>(batch_t.data(), ts, out, order, rows);
        } else {
            for (size_t r = 0; r < B; ++r) {
                if (r >= rows) {  // padded lanes: zero inputs and targets
                    for (size_t k = 0; k < in; ++k) x[k * B + r] = T(0);
                    batch_labels[r] = 0;
                    if (loss != nn::math::kSoftmaxCrossEntropy)
                        for (size_t j = 0; j < out; ++j) batch_t[j * B + r] = T(0);
                    continue;
                }
                const size_t src = size_t(order[r]);
                for (size_t k = 0; k < in; ++k) x[k * B + r] = xs[src * in + k];
                if (loss == nn::math::kSoftmaxCrossEntropy)
                    batch_labels[r] = labels[src];
                else
                    for (size_t j = 0; j < out; ++j) batch_t[j * B + r] = ts[src * out + j];
            }
        }
        forward<NV>(B, rows);
        T *s = acts[L].data();
        const size_t divisor = settings.divisor(rows);
        double value = loss == nn::math::kSoftmaxCrossEntropy
                           ? softmax_cross_entropy(s, B, rows, out, settings.class_weights, divisor)
                           : mean_squared_error(s, B, rows, out, divisor);
        // Alone, a non-finite loss skips the rest; with an exchange every process must
        // take part in it first, and decide on the summed loss.
        if (!settings.exchange && settings.stop_on_non_finite && !std::isfinite(value)) return value;  // no update
        const T *d = s;
        // Plain SGD folds the update of BLAS-sized weight matrices into their gradient
        // product (affine_backward_sgd); fused_weights counts them. float32 only: float64
        // keeps the separate update, so that its results do not move in the last bits with
        // a setting that never takes effect (a clipping norm never reached, say).
        const bool plain_sgd = std::is_same_v<T, float> && fuse_sgd && settings.optimizer == nn::optim::kSgd &&
                               settings.weight_decay == 0.0 && settings.max_grad_norm == 0.0 && !settings.exchange;
        size_t fused_weights = 0;
        for (size_t l = L; l-- > 0;) {
            T *dx = l > 0 ? delta_next.data() : nullptr;
            if constexpr (NV > 0)
                affine_backward_small<NV>(dx, grads.data() + w_off[l], d, acts[l].data(), ones.data(),
                                          params.data() + w_off[l], sizes[l], sizes[l + 1], act);
            else if (plain_sgd && fuses(l, B)) {
                affine_backward_sgd(dx, params.data() + w_off[l], grads.data() + b_off[l], d, acts[l].data(), B,
                                    sizes[l], sizes[l + 1], act, T(settings.lr));
                ++fused_weights;
            } else {
                affine_backward(dx, grads.data() + w_off[l], grads.data() + b_off[l], d, acts[l].data(),
                                params.data() + w_off[l], B, sizes[l], sizes[l + 1], act);
            }
            if (l > 0) {
                delta.swap(delta_next);
                d = delta.data();
            }
        }
        if (settings.exchange) {
            if (settings.exchange(settings.exchange_context, grads.data(), grads.size(), &value) != 0)
                return std::nan("");  // the exchange failed: no update, the call ends
            if (settings.stop_on_non_finite && !std::isfinite(value)) return value;
        }
        if (fused_weights == 0) {
            nn::optim::apply_step(params.data(), grads.data(), opt_state.data(), params.size(), sizes.data(),
                                  sizes.size(), settings, t, squares.data());
        } else {  // the rest of the SGD update: every bias, the weights not fused
            for (size_t l = 0; l < L; ++l) {
                const size_t from = fuses(l, B) ? b_off[l] : w_off[l], to = b_off[l] + sizes[l + 1];
                nn::optim::update(params.data() + from, grads.data() + from, opt_state.data(), to - from, settings, t);
            }
        }
        return value;
    }

    // Whether layer l's weight update is folded into its gradient product under plain
    // SGD (affine_backward_sgd): the layers that go to BLAS at this padded batch.
    bool fuses(size_t l, size_t B) const { return B * sizes[l] * sizes[l + 1] >= kBlasThreshold; }

    void predict(const T *xs, size_t rows, T *scores) {
        const size_t in = sizes.front(), out = sizes.back();
        const size_t chunk = std::min<size_t>(rows, 1024);
        size_workspace(chunk);
        for (size_t start = 0; start < rows; start += chunk) {
            const size_t n = std::min(chunk, rows - start), B = padded(n);
            T *x = acts[0].data();
            for (size_t r = 0; r < B; ++r)
                for (size_t k = 0; k < in; ++k) x[k * B + r] = r < n ? xs[(start + r) * in + k] : T(0);
            forward(B, n);
            const T *s = acts.back().data();
            for (size_t r = 0; r < n; ++r)
                for (size_t j = 0; j < out; ++j) scores[(start + r) * out + j] = s[j * B + r];
        }
    }
};

}  // namespace

struct nn_backend_model {
    bool f64;
    Model<float> m32;
    Model<double> m64;
};

namespace {

template <typename Fn>
nn_backend_result guarded(Fn &&fn) {
    try {
        fn();
        return NN_BACKEND_OK;
    } catch (const std::bad_alloc &) {
        report("cpu backend: out of memory");
        return NN_BACKEND_ERR_OUT_OF_MEMORY;
    } catch (...) {
        report("cpu backend: unexpected failure");
        return NN_BACKEND_ERR_INVALID;
    }
}

template <typename Fn>
void dispatch(nn_backend_model *m, Fn &&fn) {
    if (m->f64)
        fn(m->m64);
    else
        fn(m->m32);
}

template <typename M>
using elem_t = typename std::decay_t<decltype(std::declval<M &>().params)>::value_type;

int cpu_device_count(char *, size_t) { return 1; }

nn_backend_result cpu_device_describe(int index, nn_backend_device *out) {
    if (index != 0) {
        report("cpu backend: only device 0 exists");
        return NN_BACKEND_ERR_INVALID;
    }
    out->available = 1;
    std::snprintf(out->name, sizeof out->name, "cpu (%s, %d threads)", openblas_get_config(), openblas_get_num_threads());
    out->reason[0] = '\0';
    return NN_BACKEND_OK;
}

nn_backend_result cpu_model_create(int, const nn_backend_net *net, nn_backend_model **out) {
    // BLAS takes int dimensions: refuse what it could not be given.
    for (uint32_t l = 0; l < net->n_layer_sizes; ++l)
        if (net->layer_sizes[l] > size_t(INT32_MAX) / 2) {
            report("cpu backend: a layer wider than 2^30 units does not fit OpenBLAS's int sizes");
            return NN_BACKEND_ERR_UNSUPPORTED;
        }
    return guarded([&] {
        auto m = new nn_backend_model{net->dtype == 1, {}, {}};
        try {
            dispatch(m, [&](auto &impl) { impl.init(*net); });
        } catch (...) {
            delete m;
            throw;
        }
        *out = m;
    });
}

void cpu_model_destroy(nn_backend_model *m) { delete m; }

nn_backend_result cpu_params_write(nn_backend_model *m, const void *params) {
    dispatch(m, [&](auto &impl) {
        std::memcpy(impl.params.data(), params, impl.params.size() * sizeof(elem_t<decltype(impl)>));
    });
    return NN_BACKEND_OK;
}

nn_backend_result cpu_params_read(nn_backend_model *m, void *out) {
    dispatch(m, [&](auto &impl) {
        std::memcpy(out, impl.params.data(), impl.params.size() * sizeof(elem_t<decltype(impl)>));
    });
    return NN_BACKEND_OK;
}

// Stores (copy) or refers to (attach) a training set, and sizes the workspace first so
// that a failure changes nothing.
nn_backend_result data_set(nn_backend_model *m, const void *x, const void *targets, size_t rows, size_t max_batch,
                           bool copy) {
    if (max_batch > size_t(INT32_MAX) / 2) {
        report("cpu backend: a batch of more than 2^30 rows does not fit OpenBLAS's int sizes");
        return NN_BACKEND_ERR_UNSUPPORTED;
    }
    return guarded([&] {
        dispatch(m, [&](auto &impl) {
            using T = elem_t<decltype(impl)>;
            const size_t in = impl.sizes.front(), out = impl.sizes.back();
            const bool softmax = impl.loss == nn::math::kSoftmaxCrossEntropy;
            impl.size_workspace(max_batch);
            const T *x_in = static_cast<const T *>(x);
            if (!copy) {
                // Attached: the host keeps its memory valid for the whole fit; any earlier
                // copy is released.
                std::vector<T>().swap(impl.data_x);
                std::vector<T>().swap(impl.data_t);
                std::vector<int32_t>().swap(impl.data_labels);
                impl.xs = x_in;
                impl.labels = softmax ? static_cast<const int32_t *>(targets) : nullptr;
                impl.ts = softmax ? nullptr : static_cast<const T *>(targets);
                return;
            }
            std::vector<T> nx(x_in, x_in + rows * in), nt;
            std::vector<int32_t> nl;
            if (softmax) {
                const int32_t *l = static_cast<const int32_t *>(targets);
                nl.assign(l, l + rows);
            } else {
                const T *t = static_cast<const T *>(targets);
                nt.assign(t, t + rows * out);
            }
            impl.data_x.swap(nx);
            impl.data_t.swap(nt);
            impl.data_labels.swap(nl);
            impl.xs = impl.data_x.data();
            impl.ts = impl.data_t.data();
            impl.labels = impl.data_labels.data();
        });
    });
}

nn_backend_result cpu_data_upload(nn_backend_model *m, const void *x, const void *targets, size_t rows, size_t max_batch) {
    return data_set(m, x, targets, rows, max_batch, true);
}

nn_backend_result cpu_data_attach(nn_backend_model *m, const void *x, const void *targets, size_t rows, size_t max_batch) {
    return data_set(m, x, targets, rows, max_batch, false);
}

// The training loop is compiled twice, for AVX2 and for the x86-64 baseline, and the
// loader picks by CPU (an ifunc); everything it calls is inlined into each clone
// (flatten), so no code built for one instruction set is shared with the other.
// NN_CPU_NO_CLONES: one build for the compiler's target (tests/core/test_cpu_paths.cpp under
// ThreadSanitizer, whose runtime is not up yet when an executable's ifuncs are resolved).
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(NN_CPU_NO_CLONES)  // Clang: no flatten with clones
#define NN_CPU_CLONES __attribute__((target_clones("avx2", "default"), flatten))
#else
#define NN_CPU_CLONES
#endif

template <size_t NV, typename T>
inline void train_with(Model<T> &m, const int64_t *order, size_t steps, size_t batch, const nn::optim::Settings &settings,
                       double *losses) {
    for (size_t s = 0; s < steps; ++s) {
        losses[s] = m.template step<NV>(order + s * batch, batch, settings, settings.adam_step + s + 1);
        if (settings.stops_on_non_finite() && !std::isfinite(losses[s])) break;
    }
}

// Every step of a call has the same batch: the kernels are chosen once.
template <typename T>
inline void train(Model<T> &m, const int64_t *order, size_t steps, size_t batch, const nn::optim::Settings &settings,
                  double *losses) {
    if constexpr (std::is_same_v<T, float>) {
        static_assert(kMaxSmallBlocks == 8, "one case per block count");
        switch (m.small_blocks(batch)) {
        case 1: return train_with<1>(m, order, steps, batch, settings, losses);
        case 2: return train_with<2>(m, order, steps, batch, settings, losses);
        case 4: return train_with<4>(m, order, steps, batch, settings, losses);
        case 8: return train_with<8>(m, order, steps, batch, settings, losses);
        default: break;
        }
    }
    train_with<0>(m, order, steps, batch, settings, losses);
}

NN_CPU_CLONES void train_f32(Model<float> &m, const int64_t *order, size_t steps, size_t batch,
                             const nn::optim::Settings &settings, double *losses) {
    train(m, order, steps, batch, settings, losses);
}

NN_CPU_CLONES void train_f64(Model<double> &m, const int64_t *order, size_t steps, size_t batch,
                             const nn::optim::Settings &settings, double *losses) {
    train(m, order, steps, batch, settings, losses);
}

NN_CPU_CLONES void predict_f32(Model<float> &m, const float *x, size_t rows, float *scores) { m.predict(x, rows, scores); }

NN_CPU_CLONES void predict_f64(Model<double> &m, const double *x, size_t rows, double *scores) { m.predict(x, rows, scores); }

nn_backend_result cpu_train_steps(nn_backend_model *m, const int64_t *order, size_t steps, size_t batch,
                                  const nn_backend_train_config *config, double *out_losses) {
    const nn::optim::Settings settings(*config);
    if (!settings.known()) {
        report("cpu backend: unknown optimizer");
        return NN_BACKEND_ERR_UNSUPPORTED;
    }
    bool ready = true;
    dispatch(m, [&](auto &impl) {
        ready = impl.opt_kind == settings.optimizer &&
                impl.opt_state.size() == NN_BACKEND_OPTIMIZER_SLOTS(settings.optimizer) * impl.params.size();
    });
    if (!ready) {
        report("cpu backend: the optimizer state was not set for this optimizer");
        return NN_BACKEND_ERR_INVALID;
    }
    if (m->f64)
        train_f64(m->m64, order, steps, batch, settings, out_losses);
    else
        train_f32(m->m32, order, steps, batch, settings, out_losses);
    return NN_BACKEND_OK;
}

nn_backend_result cpu_optimizer_state_write(nn_backend_model *m, uint32_t optimizer, const void *state, size_t count) {
    if (optimizer > nn::optim::kAdam) {
        report("cpu backend: unknown optimizer");
        return NN_BACKEND_ERR_UNSUPPORTED;
    }
    bool size_ok = true;
    nn_backend_result r = guarded([&] {
        dispatch(m, [&](auto &impl) {
            using T = elem_t<decltype(impl)>;
            if (count != NN_BACKEND_OPTIMIZER_SLOTS(optimizer) * impl.params.size()) {
                size_ok = false;
                return;
            }
            // assign keeps the capacity: switching back to a kind that was held before
            // (the host's rollback) allocates nothing, and a failed growth changes nothing.
            if (state) {
                const T *src = static_cast<const T *>(state);
                impl.opt_state.assign(src, src + count);
            } else {
                impl.opt_state.assign(count, T(0));
            }
            impl.opt_kind = optimizer;
        });
    });
    if (r == NN_BACKEND_OK && !size_ok) {
        report("cpu backend: optimizer state of the wrong size");
        return NN_BACKEND_ERR_INVALID;
    }
    return r;
}

nn_backend_result cpu_optimizer_state_read(nn_backend_model *m, void *out, size_t count) {
    bool size_ok = true;
    dispatch(m, [&](auto &impl) {
        using T = elem_t<decltype(impl)>;
        if (count != impl.opt_state.size()) {
            size_ok = false;
            return;
        }
        if (count) std::memcpy(out, impl.opt_state.data(), count * sizeof(T));
    });
    if (!size_ok) {
        report("cpu backend: optimizer state of the wrong size");
        return NN_BACKEND_ERR_INVALID;
    }
    return NN_BACKEND_OK;
}

nn_backend_result cpu_predict(nn_backend_model *m, const void *x, size_t rows, void *out_scores) {
    return guarded([&] {
        if (m->f64)
            predict_f64(m->m64, static_cast<const double *>(x), rows, static_cast<double *>(out_scores));
        else
            predict_f32(m->m32, static_cast<const float *>(x), rows, static_cast<float *>(out_scores));
    });
}

const nn_backend_iface kCpuIface = {
    .abi_version = NN_BACKEND_ABI_VERSION,
    .struct_size = sizeof(nn_backend_iface),
    .name = "cpu",
    .device_count = cpu_device_count,
    .device_describe = cpu_device_describe,
    .model_create = cpu_model_create,
    .model_destroy = cpu_model_destroy,
    .params_write = cpu_params_write,
    .params_read = cpu_params_read,
    .data_upload = cpu_data_upload,
    .train_steps = cpu_train_steps,
    .predict = cpu_predict,
    .optimizer_state_write = cpu_optimizer_state_write,
    .optimizer_state_read = cpu_optimizer_state_read,
    .data_attach = cpu_data_attach,
    .capabilities = NN_BACKEND_CAP_EPOCH_GROUPS,
    .precision_set = nullptr,  // no reduced-precision products on the CPU: always strict
};

}  // namespace

extern "C" __attribute__((visibility("default"))) const nn_backend_iface *nn_backend_entry(const nn_host_services *host) {
    if (!host || host->abi_version != NN_BACKEND_ABI_VERSION) {
        if (host && host->set_error && host->struct_size >= sizeof(uint32_t) * 2 + sizeof(void *))
            host->set_error("cpu backend: host ABI version differs from the plugin's");
        return nullptr;
    }
    g_host = host;
    return &kCpuIface;
}
