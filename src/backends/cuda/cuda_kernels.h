// The CUDA backend's kernels, written once for every executor (cuda_platform.h): the
// graph path's grid kernels (one per stage, cuBLAS between them), its two single-block
// reductions, and the fused kernel that runs whole training steps of a small net in one
// block. The per-element math is nn_math.h's, as in every other backend.
//
// Layout on the device (the same as the ABI's host layout): parameters flat, for each
// layer W_l (in × out, row-major) then b_l; activations row-major per batch row,
// A_l[b·width + k] — to cuBLAS (column-major) that is width × B with leading dimension
// width, and W_l is out × in with leading dimension out.
#ifndef NN_BACKENDS_CUDA_CUDA_KERNELS_H
#define NN_BACKENDS_CUDA_CUDA_KERNELS_H

#include <cmath>
#include <cstddef>
#include <cstdint>

#include "backends/cuda/cuda_platform.h"
#include "common/nn_math.h"

namespace nncuda {

// Optimizer kinds (nn_optimizer values), as nn_optim.h.
enum : uint32_t { kSgd = 0, kMomentum = 1, kNesterov = 2, kAdaGrad = 3, kRmsProp = 4, kAdam = 5 };

// The settings of one train_steps call, in device memory so that a captured graph
// replays with the values of the current call. Coefficients the book computes from
// Python floats are computed on the host in double and rounded to T once, as
// nn_optim.h does.
template <typename T>
struct StepConfig {
    T lr, momentum, mm, one_plus_m_lr, decay, one_minus_decay, eps, one_minus_b1, one_minus_b2, lambda;
    double lr_d, beta1, beta2, max_norm;
    uint64_t adam_step;  // Adam's step count before the chunk's first step
    uint64_t divisor;    // of the loss and its gradient
    uint32_t optimizer, stop_check, decay_on, clip_on, weighted;
};

// What the steps of a call leave for the host and for each other.
struct Scalars {
    uint64_t counter;  // the step (within the chunk) the graph's next replay runs
    uint64_t stopped;  // 0, or 1 + the step whose non-finite loss stopped the call
    double loss;       // the latest step's loss (read by the host around an exchange)
    double lr_t;       // Adam's step size for the current step
    double rate;       // the current step's clipping factor (applied when < 1)
};

// Scratch of the single-block reductions and the fused kernel's bookkeeping.
struct Misc {
    double total, value, lr_t, rate;
    uint32_t stop;
    uint32_t pad[3];
};

// Virtual lanes of the reductions: fixed counts, independent of the launch shape, so a
// sum is grouped the same on any device and in the emulation.
constexpr size_t kReduceLanes = 256;      // single-block sums (loss, norm of partials); a power of 2
constexpr size_t kNormLanes = 8192;       // the graph path's first pass over the gradients
constexpr size_t kFusedNormLanes = kReduceLanes;  // the fused kernel's pass over them
constexpr size_t kMaxFusedLayers = 16;

// ---- shared stage bodies ---------------------------------------------------------------

// The batch of one step: rows[0..B) of the stored set into X (B × in) and the labels or
// target rows.
template <typename T>
struct DataView {
    const T *x;
    const int32_t *labels;  // softmax
    const T *targets;       // regression
    size_t in, out;
    bool ce;
};

template <typename T>
struct BatchView {
    T *x;
    int32_t *labels;
    T *targets;
};

template <typename T, class Ex>
NN_DEV void gather(const Ex &ex, const int64_t *rows, size_t B, const DataView<T> &d, const BatchView<T> &b) {
    const size_t in = d.in, out = d.out;
    const T *dx = d.x;
    T *bx = b.x;
    ex.for_each(B * in, [=](size_t i) {
        const size_t r = div_index(i, in), k = i - r * in;
        bx[i] = dx[size_t(rows[r]) * in + k];
    });
    if (d.ce) {
        const int32_t *dl = d.labels;
        int32_t *bl = b.labels;
        ex.for_each(B, [=](size_t r) { bl[r] = dl[rows[r]]; });
    } else {
        const T *dt = d.targets;
        T *bt = b.targets;
        ex.for_each(B * out, [=](size_t i) {
            const size_t r = div_index(i, out), j = i - r * out;
            bt[i] = dt[size_t(rows[r]) * out + j];
        });
    }
}

// out (B × O) = act(x (B × I) · W + bias), each sum in order from zero and the bias added
// last, as the reference does; `last` leaves the output layer's scores linear.
template <typename T, class Ex>
NN_DEV void affine_forward(const Ex &ex, T *out, const T *x, const T *W, const T *bias, size_t B, size_t I, size_t O,
                           uint32_t act, bool last) {
    ex.for_each(B * O, [=](size_t i) {
        const size_t r = div_index(i, O), j = i - r * O;
        const T *xr = x + r * I;
        T acc = T(0);
        for (size_t k = 0; k < I; ++k) acc += xr[k] * W[k * O + j];
        const T z = acc + bias[j];
        out[i] = last ? z : nn::math::activate(act, z);
    });
}

// Z (B × O, the product) += bias, then the activation (none for the output layer).
template <typename T, class Ex>
NN_DEV void bias_activate(const Ex &ex, T *Z, const T *bias, size_t B, size_t O, uint32_t act, bool last) {
    ex.for_each(B * O, [=](size_t i) {
        const size_t r = div_index(i, O), j = i - r * O;
        const T z = Z[i] + bias[j];
        Z[i] = last ? z : nn::math::activate(act, z);
    });
}

// The loss of each row and d loss / d scores in place of the scores (B × O).
// Softmax cross-entropy: terms[r] = w·log(p[label] + 1e-7); d = (p − onehot)·w / divisor.
// Mean squared error: terms[r·O + j] = (y − t)²; d = (y − t) / divisor.
template <typename T, class Ex>
NN_DEV void loss_rows(const Ex &ex, T *s, T *terms, const int32_t *labels, const T *targets, const double *class_weights,
                      size_t B, size_t O, uint64_t divisor, bool ce, bool weighted) {
    const T div = T(divisor);
    if (ce) {
        ex.for_each(B, [=](size_t r) {
            T *row = s + r * O;
            T m = row[0];
            for (size_t j = 1; j < O; ++j) m = row[j] > m ? row[j] : m;
            for (size_t j = 0; j < O; ++j) row[j] = nn::math::exp_t(row[j] - m);
            const T sum = nn::math::pairwise_sum(row, O, 1);
            for (size_t j = 0; j < O; ++j) row[j] = row[j] / sum;
            const size_t label = size_t(labels[r]);
            T term = nn::math::cross_entropy_term(row[label]);
            row[label] -= T(1);
            if (weighted) {
                const T w = T(class_weights[label]);
                term = w * term;
                for (size_t j = 0; j < O; ++j) row[j] = row[j] * w;
            }
            for (size_t j = 0; j < O; ++j) row[j] = row[j] / div;
            terms[r] = term;
        });
    } else {
        ex.for_each(B * O, [=](size_t i) {
            const T diff = s[i] - targets[i];
            terms[i] = diff * diff;
            s[i] = diff / div;
        });
    }
}

// red[0..kReduceLanes) summed into red[0] by a fixed binary tree (log2 rounds, a barrier
// after each): deterministic, the same grouping on every device and in the emulation.
// Starts and ends with a barrier's worth of ordering: the caller syncs before it.
template <class Ex>
NN_DEV void block_tree(const Ex &ex, double *red) {
    for (size_t half = kReduceLanes / 2; half > 0; half /= 2) {
        ex.for_each(half, [=](size_t i) { red[i] = red[i] + red[i + half]; });
        ex.sync();
    }
}

// *out = Σ vals[0..n) in double: lane l first sums vals[i] for i ≡ l (mod kReduceLanes)
// in order, then the lanes are combined by block_tree. Ends with a barrier.
template <typename T, class Ex>
NN_DEV void block_sum(const Ex &ex, const T *vals, size_t n, double *red, double *out) {
    ex.for_each(kReduceLanes, [=](size_t lane) {
        double acc = 0.0;
        for (size_t i = lane; i < n; i += kReduceLanes) acc += double(vals[i]);
        red[lane] = acc;
    });
    ex.sync();
    block_tree(ex, red);
    ex.for_each(1, [=](size_t) { *out = red[0]; });
    ex.sync();
}

// The step's mean loss from the summed terms: −Σ/divisor (cross-entropy) or ½Σ/divisor.
NN_DEV inline double loss_value(double total, uint64_t divisor, bool ce) {
    return ce ? -total / double(divisor) : 0.5 * total / double(divisor);
}

// Backward through one affine layer from d (B × O): gW = xᵀ·d, gb = Σ_rows d, and (when
// dn) dn (B × I) = d·Wᵀ followed by the activation's backward through x, the forward
// output of the layer below. The three only read d, x and W: one phase.
template <typename T, class Ex>
NN_DEV void affine_backward(const Ex &ex, T *dn, T *gW, T *gb, const T *d, const T *x, const T *W, size_t B, size_t I,
                            size_t O, uint32_t act) {
    ex.for_each(I * O, [=](size_t i) {
        const size_t k = div_index(i, O), j = i - k * O;
        T acc = T(0);
        for (size_t r = 0; r < B; ++r) acc += x[r * I + k] * d[r * O + j];
        gW[i] = acc;
    });
    ex.for_each(O, [=](size_t j) {
        T acc = d[j];  // np.sum(axis=0) starts from the first row
        for (size_t r = 1; r < B; ++r) acc += d[r * O + j];
        gb[j] = acc;
    });
    if (dn)
        ex.for_each(B * I, [=](size_t i) {
            const size_t r = div_index(i, I), k = i - r * I;
            const T *dr = d + r * O;
            const T *wk = W + k * O;
            T acc = T(0);
            for (size_t j = 0; j < O; ++j) acc += dr[j] * wk[j];
            dn[i] = nn::math::activate_backward(act, acc, x[i]);
        });
}

// Weight decay (g += λ·W on the weight matrices, arrays of even index) and, for clipping,
// each lane's sum of g² in double over its strided share of every array. `starts` holds
// the 2L + 1 array boundaries of the flat layout.
template <typename T, class Ex>
NN_DEV void decay_and_square(const Ex &ex, size_t lanes, T *G, const T *P, const size_t *starts, size_t n_arrays,
                             const StepConfig<T> *cfg, double *red) {
    const bool decay = cfg->decay_on != 0, clip = cfg->clip_on != 0;
    const T lambda = cfg->lambda;
    ex.for_each(lanes, [=](size_t lane) {
        double acc = 0.0;
        for (size_t a = 0; a < n_arrays; ++a) {
            const bool weights = (a % 2) == 0;
            const size_t end = starts[a + 1];
            for (size_t i = starts[a] + lane; i < end; i += lanes) {
                T g = G[i];
                if (decay && weights) {
                    g = g + lambda * P[i];
                    G[i] = g;
                }
                if (clip) {
                    const T sq = g * g;
                    acc += double(sq);
                }
            }
        }
        red[lane] = acc;
    });
}

// The book's clip_grads factor from the squared norm: max_norm / (sqrt(total) + 1e-6).
NN_DEV inline double clip_rate(double total, double max_norm) { return max_norm / (std::sqrt(total) + 1e-6); }

// One optimizer update of parameter i (nn_math.h's rules); `g` already decayed and clipped.
template <typename T>
NN_DEV inline void update_one(size_t i, size_t n, T *P, T *S, T g, const StepConfig<T> &c, T lr_t) {
    switch (c.optimizer) {
    case kMomentum: nn::math::momentum_update(P[i], S[i], g, c.lr, c.momentum); break;
    case kNesterov: nn::math::nesterov_update(P[i], S[i], g, c.lr, c.momentum, c.mm, c.one_plus_m_lr); break;
    case kAdaGrad: nn::math::adagrad_update(P[i], S[i], g, c.lr, c.eps); break;
    case kRmsProp: nn::math::rmsprop_update(P[i], S[i], g, c.lr, c.decay, c.one_minus_decay, c.eps); break;
    case kAdam: nn::math::adam_update(P[i], S[i], S[n + i], g, lr_t, c.one_minus_b1, c.one_minus_b2, c.eps); break;
    default: P[i] = nn::math::sgd_update(P[i], g, c.lr); break;
    }
}

template <typename T, class Ex>
NN_DEV void update_all(const Ex &ex, T *P, const T *G, T *S, size_t n, const StepConfig<T> *cfg, double lr_t, double rate) {
    const StepConfig<T> c = *cfg;
    const bool scale = c.clip_on != 0 && rate < 1.0;  // NaN: no clipping, as clip_grads
    const T r = T(rate), lt = T(lr_t);
    ex.for_each(n, [=](size_t i) {
        T g = G[i];
        if (scale) g = g * r;
        update_one(i, n, P, S, g, c, lt);
    });
}

// ---- the graph path's kernels ----------------------------------------------------------

// Each reads the step from sc->counter; LossReduce advances it, after the last read.

template <typename T>
struct GatherK {
    const int64_t *order;
    const Scalars *sc;
    size_t B;
    DataView<T> data;
    BatchView<T> batch;
    template <class Ex>
    NN_DEV void operator()(const Ex &ex) const {
        gather(ex, order + sc->counter * B, B, data, batch);
    }
};

template <typename T>
struct BiasActK {
    T *Z;
    const T *bias;
    size_t B, O;
    uint32_t act;
    bool last;
    template <class Ex>
    NN_DEV void operator()(const Ex &ex) const {
        bias_activate(ex, Z, bias, B, O, act, last);
    }
};

template <typename T>
struct ForwardK {  // a whole affine layer without cuBLAS (predict on small layers)
    T *out;
    const T *x, *W, *bias;
    size_t B, I, O;
    uint32_t act;
    bool last;
    template <class Ex>
    NN_DEV void operator()(const Ex &ex) const {
        affine_forward(ex, out, x, W, bias, B, I, O, act, last);
    }
};

template <typename T>
struct LossRowsK {
    T *s, *terms;
    const int32_t *labels;
    const T *targets;
    const double *class_weights;
    const StepConfig<T> *cfg;
    size_t B, O;
    bool ce;
    template <class Ex>
    NN_DEV void operator()(const Ex &ex) const {
        loss_rows(ex, s, terms, labels, targets, class_weights, B, O, cfg->divisor, ce, cfg->weighted != 0);
    }
};

// One block: the step's loss into losses[step] (unless the call has stopped), the stop
// flag, Adam's step size, and the counter advanced.
template <typename T>
struct LossReduceK {
    const T *terms;
    size_t n_terms;
    bool ce;
    const StepConfig<T> *cfg;
    Scalars *sc;
    double *losses;
    template <class Ex>
    NN_DEV void operator()(const Ex &ex) const {
        double *red = reinterpret_cast<double *>(ex.shared());
        double *total = red + kReduceLanes;
        block_sum(ex, terms, n_terms, red, total);
        const StepConfig<T> *c = cfg;
        Scalars *s = sc;
        double *l = losses;
        const bool is_ce = ce;
        ex.for_each(1, [=](size_t) {
            const uint64_t step = s->counter;
            const double value = loss_value(*total, c->divisor, is_ce);
            if (s->stopped == 0) {
                l[step] = value;
                s->loss = value;
                if (c->stop_check && !std::isfinite(value)) s->stopped = step + 1;
            }
            if (c->optimizer == kAdam)
                s->lr_t = nn::math::adam_step_size(c->lr_d, c->beta1, c->beta2, double(c->adam_step + step + 1));
            s->counter = step + 1;
        });
    }
};

template <typename T>
struct ActBackwardK {
    T *d;
    const T *h;
    size_t n;
    uint32_t act;
    template <class Ex>
    NN_DEV void operator()(const Ex &ex) const {
        T *dd = d;
        const T *hh = h;
        const uint32_t a = act;
        ex.for_each(n, [=](size_t i) { dd[i] = nn::math::activate_backward(a, dd[i], hh[i]); });
    }
};

template <typename T>
struct DecayNormK {
    T *G;
    const T *P;
    const size_t *starts;
    size_t n_arrays;
    const StepConfig<T> *cfg;
    const Scalars *sc;
    double *partials;  // kNormLanes
    template <class Ex>
    NN_DEV void operator()(const Ex &ex) const {
        if (sc->stopped) return;
        decay_and_square(ex, kNormLanes, G, P, starts, n_arrays, cfg, partials);
    }
};

// One block: the clipping factor from the partial sums.
template <typename T>
struct NormFinalK {
    const double *partials;
    const StepConfig<T> *cfg;
    Scalars *sc;
    template <class Ex>
    NN_DEV void operator()(const Ex &ex) const {
        if (!cfg->clip_on || sc->stopped) return;
        double *red = reinterpret_cast<double *>(ex.shared());
        double *total = red + kReduceLanes;
        block_sum(ex, partials, kNormLanes, red, total);
        const StepConfig<T> *c = cfg;
        Scalars *s = sc;
        ex.for_each(1, [=](size_t) { s->rate = clip_rate(*total, c->max_norm); });
    }
};

template <typename T>
struct UpdateK {
    T *P;
    const T *G;
    T *S;
    size_t n;
    const StepConfig<T> *cfg;
    const Scalars *sc;
    template <class Ex>
    NN_DEV void operator()(const Ex &ex) const {
        if (sc->stopped) return;
        update_all(ex, P, G, S, n, cfg, sc->lr_t, sc->rate);
    }
};

// ---- the fused path --------------------------------------------------------------------

// Byte offsets of a step's scratch for batch B, from a 16-aligned base (shared memory or
// a device buffer): the activations of every layer, two delta buffers, the loss terms,
// the batch's labels or targets, reduction lanes and Misc.
struct Workspace {
    size_t acts[kMaxFusedLayers + 1];
    size_t delta[2], terms, labels, targets, red, misc, total;
};

inline size_t align16(size_t n) { return add(n, 15) & ~size_t(15); }

template <typename T>
Workspace workspace_layout(const size_t *sizes, size_t L, size_t B, bool ce) {
    Workspace w{};
    size_t off = 0, widest_hidden = 1;
    for (size_t l = 1; l < L; ++l) widest_hidden = sizes[l] > widest_hidden ? sizes[l] : widest_hidden;
    const auto take = [&](size_t bytes) {
        const size_t at = off;
        off = align16(add(off, bytes));
        return at;
    };
    for (size_t l = 0; l <= L && l <= kMaxFusedLayers; ++l) w.acts[l] = take(mul(mul(B, sizes[l]), sizeof(T)));
    w.delta[0] = take(mul(mul(B, widest_hidden), sizeof(T)));
    w.delta[1] = take(mul(mul(B, widest_hidden), sizeof(T)));
    w.terms = take(mul(mul(B, sizes[L]), sizeof(T)));
    w.labels = take(ce ? mul(B, sizeof(int32_t)) : 0);
    w.targets = take(ce ? 0 : mul(mul(B, sizes[L]), sizeof(T)));
    w.red = take(kReduceLanes * sizeof(double));
    w.misc = take(sizeof(Misc));
    w.total = off;
    return w;
}

enum FusedMode : uint32_t { kFusedFull = 0, kFusedGrads = 1, kFusedUpdate = 2 };

// Whole training steps of a small net in one block. Each phase is a block-stride loop
// and ends with a barrier. Full mode runs `steps` steps; with an exchange the host runs
// each step as Grads (up to the gradients and the loss) then Update.
template <typename T>
struct FusedK {
    size_t L, N, slots;
    size_t sizes[kMaxFusedLayers + 1];
    size_t w_off[kMaxFusedLayers], b_off[kMaxFusedLayers];
    uint32_t act;
    bool ce;
    T *P, *G, *S;                  // global
    bool params_shared;            // copy P and S into shared memory for the call (G lives there)
    unsigned char *ws_global;      // the workspace, when it is not in shared memory
    size_t params_bytes;           // shared bytes before the workspace (when params_shared)
    Workspace ws;
    DataView<T> data;
    const int64_t *order;
    size_t B, first_step, steps;   // steps first_step … first_step + steps − 1 of the chunk
    const StepConfig<T> *cfg;
    const double *class_weights;
    const size_t *starts;
    Scalars *sc;
    double *losses;
    uint32_t mode;

    template <class Ex>
    NN_DEV void operator()(const Ex &ex) const {
        unsigned char *sh = ex.shared();
        unsigned char *base = ws_global ? ws_global : sh + (params_shared ? params_bytes : 0);
        T *p = P, *g = G, *st = S;
        const size_t n = N, ns = slots * N;
        if (params_shared) {
            T *sp = reinterpret_cast<T *>(sh);
            T *sg = sp + n;
            T *sst = sg + n;
            const T *gp = P, *gs = S;
            ex.for_each(n, [=](size_t i) { sp[i] = gp[i]; });
            ex.for_each(ns, [=](size_t i) { sst[i] = gs[i]; });
            ex.sync();
            p = sp;
            g = sg;
            st = sst;
        }
        T *acts[kMaxFusedLayers + 1];
        for (size_t l = 0; l <= L; ++l) acts[l] = reinterpret_cast<T *>(base + ws.acts[l]);
        T *delta[2] = {reinterpret_cast<T *>(base + ws.delta[0]), reinterpret_cast<T *>(base + ws.delta[1])};
        T *terms = reinterpret_cast<T *>(base + ws.terms);
        int32_t *labels = reinterpret_cast<int32_t *>(base + ws.labels);
        T *targets = reinterpret_cast<T *>(base + ws.targets);
        double *red = reinterpret_cast<double *>(base + ws.red);
        Misc *misc = reinterpret_cast<Misc *>(base + ws.misc);
        const StepConfig<T> *c = cfg;
        const size_t Bn = B, out = sizes[L];

        for (size_t s = first_step; s < first_step + steps; ++s) {
            if (mode != kFusedUpdate) {
                gather(ex, order + s * Bn, Bn, data, BatchView<T>{acts[0], labels, targets});
                ex.sync();
                for (size_t l = 0; l < L; ++l) {
                    affine_forward(ex, acts[l + 1], acts[l], p + w_off[l], p + b_off[l], Bn, sizes[l], sizes[l + 1], act,
                                   l + 1 == L);
                    ex.sync();
                }
                T *scores = acts[L];
                loss_rows(ex, scores, terms, labels, targets, class_weights, Bn, out, c->divisor, ce, c->weighted != 0);
                ex.sync();
                block_sum(ex, terms, ce ? Bn : Bn * out, red, &misc->total);
                const bool is_ce = ce, full = mode == kFusedFull;
                Scalars *scl = sc;
                double *lv = losses;
                ex.for_each(1, [=](size_t) {
                    const double value = loss_value(misc->total, c->divisor, is_ce);
                    misc->stop = 0;
                    if (full) {
                        lv[s] = value;
                        if (c->stop_check && !std::isfinite(value)) {
                            misc->stop = 1;
                            scl->stopped = s + 1;
                        }
                    } else {
                        scl->loss = value;
                    }
                });
                ex.sync();
                if (misc->stop) break;  // no update; the rest of the call is skipped
                const T *d = scores;
                int cur = 0;
                for (size_t l = L; l-- > 0;) {
                    T *dn = l > 0 ? delta[cur] : nullptr;
                    affine_backward(ex, dn, g + w_off[l], g + b_off[l], d, acts[l], p + w_off[l], Bn, sizes[l],
                                    sizes[l + 1], act);
                    ex.sync();
                    if (dn) {
                        d = dn;
                        cur ^= 1;
                    }
                }
                if (mode == kFusedGrads) break;
            }
            // Weight decay, clipping, the update.
            const bool decay = c->decay_on != 0, clip = c->clip_on != 0;
            if (decay || clip) {
                decay_and_square(ex, kFusedNormLanes, g, p, starts, 2 * L, c, red);
                ex.sync();
                if (clip) block_tree(ex, red);
            }
            const bool adam = c->optimizer == kAdam;
            ex.for_each(1, [=](size_t) {
                misc->rate = clip ? clip_rate(red[0], c->max_norm) : 1.0;
                misc->lr_t = adam ? nn::math::adam_step_size(c->lr_d, c->beta1, c->beta2, double(c->adam_step + s + 1)) : 0.0;
            });
            ex.sync();
            update_all(ex, p, g, st, n, c, misc->lr_t, misc->rate);
            ex.sync();
        }
        if (params_shared) {
            T *gp = P, *gs = S;
            const T *sp = p, *sst = st;
            ex.for_each(n, [=](size_t i) { gp[i] = sp[i]; });
            ex.for_each(ns, [=](size_t i) { gs[i] = sst[i]; });
        }
    }
};

}  // namespace nncuda

#endif  // NN_BACKENDS_CUDA_CUDA_KERNELS_H
