// libnn-backend-cuda.so: the CUDA backend.
//
// One model keeps everything a fit needs on its GPU: parameters, gradients, optimizer
// state, the training set, and a workspace sized at data_upload for the largest batch.
// train_steps sends the host's row order up once per call (with the call's settings),
// runs every step on the device, and copies the losses back once at the end: no
// allocation and no synchronisation between the steps of a call (except around the
// multi-process `exchange`, which takes host memory and so needs one per step). Without
// a progress callback, validation or early stopping, one call carries many epochs (the
// host draws their shuffles ahead): the book's 300 epochs are one call and one wait.
//
// Two ways to run a step:
// - fused (small nets, the book's 2-10-3 on batch 30): one kernel, one block, runs all
//   steps of the call — gather, forward, loss, backward, weight decay, clipping, update —
//   with a barrier between stages and, when they fit, the parameters, optimizer state and
//   activations in shared memory. One launch per call instead of a dozen per step.
// - graph (everything else): the step's stages — gather, per layer a cuBLAS product and a
//   bias/activation kernel, the loss, the backward products (cuBLAS), decay and clipping,
//   the update — are captured once as a CUDA graph (the step number lives on the device
//   and each replay advances it) and replayed once per step.
// Both take every setting from device memory, so a graph captured for one call replays
// for the next; it is captured again only when the batch, the stages needed, or a buffer
// it points at changes.
//
// Arithmetic: nn_math.h's per-element rules, compiled without fused multiply-adds
// (--fmad=false), like the rest of libnn; cuBLAS in strict float32/float64 (no TF32)
// unless the caller let a float32 model's products use TF32, float16 or bfloat16.
// Sums over a batch or over the parameters are grouped in a fixed order (no atomics), so
// a run repeats bit for bit on one device.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "backends/cuda/cuda_kernels.h"
#include "backends/cuda/cuda_platform.h"
#include "common/nn_optim.h"
#include "nn/nn_backend.h"

#ifndef NN_CUDA_MIN_CC
#define NN_CUDA_MIN_CC 75  // the oldest compute capability the built code runs on (×10)
#endif

namespace nncuda {
// Not an anonymous namespace: nn_backend_model (global, as the ABI declares it) holds a
// Model. Nothing of it is exported (the version script keeps only the entry).
namespace impl {

const nn_host_services *g_host = nullptr;

void report(const std::string &message) {
    if (g_host && g_host->set_error) g_host->set_error(message.c_str());
}

void log_line(const std::string &message) {
    if (g_host && g_host->struct_size >= offsetof(nn_host_services, log) + sizeof(void *) && g_host->log)
        g_host->log(1, message.c_str());
}

#if defined(NN_CUDA_EMULATION)
constexpr const char *kName = "cuda (emulation)";
#else
constexpr const char *kName = "cuda";
#endif

// ---- devices -------------------------------------------------------------------------

struct Enumeration {
    int count = 0;
    std::string why_none;
    std::vector<nn_backend_device> devices;
};

std::string gib(size_t bytes) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f GiB", double(bytes) / double(size_t(1) << 30));
    return buf;
}

#if !defined(NN_CUDA_EMULATION)
std::string cuda_version_text(int v) { return std::to_string(v / 1000) + "." + std::to_string(v % 1000 / 10); }

Enumeration enumerate_devices() {
    Enumeration out;
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
        int driver = 0;
        (void)cudaDriverGetVersion(&driver);
        (void)cudaGetLastError();
        std::string why;
        if (e == cudaErrorNoDevice)
            why = "no CUDA device: ";
        else if (driver == 0)
            why = "no CUDA driver: ";
        else
            why = "the CUDA driver cannot be used: ";
        why += cuda_text(e);
        if (e == cudaErrorInsufficientDriver) {
            if (driver == 0)
                why += "; libcuda.so.1 was not found or did not load";
            else
                why += "; the driver supports CUDA " + cuda_version_text(driver) + ", this plugin needs " +
                       cuda_version_text(CUDART_VERSION);
        }
        out.why_none = why;
        return out;
    }
    if (n <= 0) {
        out.why_none = "no CUDA device: cudaGetDeviceCount found none";
        return out;
    }
    int usable = 0;
    std::string first_reason;
    for (int i = 0; i < n; ++i) {
        nn_backend_device d{};
        cudaDeviceProp p{};
        e = cudaGetDeviceProperties(&p, i);
        if (e != cudaSuccess) {
            (void)cudaGetLastError();
            std::snprintf(d.name, sizeof d.name, "CUDA device %d", i);
            std::snprintf(d.reason, sizeof d.reason, "its properties cannot be read: %.200s", cuda_text(e).c_str());
        } else {
            const int cc = p.major * 10 + p.minor;
            const std::string name = std::string(p.name).substr(0, 80);  // fits nn_backend_device's fields
            std::snprintf(d.name, sizeof d.name, "%.80s (compute capability %d.%d, %s, %d SMs)", name.c_str(), p.major,
                          p.minor, gib(p.totalGlobalMem).c_str(), p.multiProcessorCount);
            if (cc >= NN_CUDA_MIN_CC) {
                d.available = 1;
                ++usable;
            } else {
                std::snprintf(d.reason, sizeof d.reason,
                              "%.80s has compute capability %d.%d; this build of the plugin needs %d.%d or newer",
                              name.c_str(), p.major, p.minor, NN_CUDA_MIN_CC / 10, NN_CUDA_MIN_CC % 10);
            }
        }
        if (!d.available && first_reason.empty()) first_reason = d.reason;
        out.devices.push_back(d);
    }
    if (usable == 0) {
        out.why_none = "no usable CUDA device: " + first_reason;
        out.devices.clear();
        return out;
    }
    out.count = n;
    return out;
}

int compute_capability(int device) {
    int major = 0, minor = 0;
    check(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device), "reading the compute capability");
    check(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device), "reading the compute capability");
    return major * 10 + minor;
}

size_t shared_memory_limit(int device) {
    int v = 0;
    check(cudaDeviceGetAttribute(&v, cudaDevAttrMaxSharedMemoryPerBlockOptin, device), "reading the shared-memory limit");
    return size_t(v);
}

// A kernel image for this device exists (the PTX of the oldest architecture built, or
// its machine code).
void check_kernel_image() {
    cudaFuncAttributes a{};
    check(cudaFuncGetAttributes(&a, grid_entry<UpdateK<float>>), "looking for this plugin's kernels on the device");
}
#else
Enumeration enumerate_devices() {
    Enumeration out;
    nn_backend_device d{};
    d.available = 1;
    std::snprintf(d.name, sizeof d.name, "libnn CUDA emulation on the host (tests only; %s of emulated device memory)",
                  gib(EmuMemory::get().capacity()).c_str());
    out.devices.push_back(d);
    out.count = 1;
    return out;
}
// A Hopper GPU, unless NN_CUDA_EMU_CC (e.g. 75) says otherwise: read at model creation,
// so that a test can see what an older GPU does with a precision it lacks.
int compute_capability(int) {
    const char *env = std::getenv("NN_CUDA_EMU_CC");
    return env && *env ? std::atoi(env) : 90;
}
size_t shared_memory_limit(int) { return 227 * 1024; }
void check_kernel_image() {}
#endif

const Enumeration &devices() {
    static const Enumeration e = enumerate_devices();
    return e;
}

// ---- one model -------------------------------------------------------------------------

// Byte offsets of a step's scratch for batch B inside one buffer (any depth); for nets of
// at most kMaxFusedLayers layers the same offsets make the fused kernel's Workspace.
struct HostLayout {
    std::vector<size_t> acts;
    size_t delta[2] = {0, 0}, terms = 0, labels = 0, targets = 0, red = 0, misc = 0, total = 0;
};

template <typename T>
HostLayout host_layout(const std::vector<size_t> &sizes, size_t B, bool ce) {
    HostLayout w;
    const size_t L = sizes.size() - 1;
    size_t off = 0, widest_hidden = 1;
    for (size_t l = 1; l < L; ++l) widest_hidden = std::max(widest_hidden, sizes[l]);
    const auto take = [&](size_t bytes) {
        const size_t at = off;
        off = align16(add(off, bytes));
        return at;
    };
    for (size_t l = 0; l <= L; ++l) w.acts.push_back(take(mul(mul(B, sizes[l]), sizeof(T))));
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

Workspace fused_workspace(const HostLayout &h) {
    Workspace w{};
    for (size_t l = 0; l < h.acts.size() && l <= kMaxFusedLayers; ++l) w.acts[l] = h.acts[l];
    w.delta[0] = h.delta[0];
    w.delta[1] = h.delta[1];
    w.terms = h.terms;
    w.labels = h.labels;
    w.targets = h.targets;
    w.red = h.red;
    w.misc = h.misc;
    w.total = h.total;
    return w;
}

static_assert(kFusedNormLanes <= kReduceLanes, "the fused kernel's norm lanes live in the reduction scratch");
static_assert(sizeof(FusedK<double>) <= 4000, "kernel arguments are limited to 4 KiB on older drivers");

size_t slots_of(uint32_t optimizer) { return NN_BACKEND_OPTIMIZER_SLOTS(optimizer); }

// Multiply-adds of one forward pass over a batch of B rows, from which the fused path is
// chosen (NN_CUDA_PATH=fused|graph forces one; NN_CUDA_FUSED_MACS moves the threshold).
// Not yet measured on a GPU: the threshold is an estimate (a block does about 64 float32
// or 32 float64 multiply-adds a cycle; a graph step of a dozen nodes costs 20–30 µs).
size_t fused_mac_limit(bool f64) {
    if (const char *env = std::getenv("NN_CUDA_FUSED_MACS"); env && *env) return size_t(std::strtoull(env, nullptr, 10));
    return f64 ? size_t(1) << 18 : size_t(1) << 19;
}

// Drains the stream when the scope is left by an exception: a call that fails midway may
// have queued copies that still read its pinned buffers, which the next call refills at
// once.
class DrainOnFailure {
public:
    explicit DrainOnFailure(Stream s) : s_(s), pending_(std::uncaught_exceptions()) {}
    DrainOnFailure(const DrainOnFailure &) = delete;
    DrainOnFailure &operator=(const DrainOnFailure &) = delete;
    ~DrainOnFailure() {
        if (std::uncaught_exceptions() > pending_) stream_drain(s_);
    }

private:
    Stream s_;
    int pending_;
};

template <typename T>
class Model {
public:
    Model(int device, const nn_backend_net &net) : device_(device) {
        sizes_.assign(net.layer_sizes, net.layer_sizes + net.n_layer_sizes);
        L_ = sizes_.size() - 1;
        act_ = net.hidden_activation;
        ce_ = net.loss == nn::math::kSoftmaxCrossEntropy;
        size_t off = 0;
        starts_host_.push_back(0);
        for (size_t l = 0; l < L_; ++l) {
            w_off_.push_back(off);
            off = add(off, mul(sizes_[l], sizes_[l + 1]));
            b_off_.push_back(off);
            starts_host_.push_back(off);
            off = add(off, sizes_[l + 1]);
            starts_host_.push_back(off);
        }
        N_ = off;
        set_device(device_);
        check_kernel_image();
        smem_limit_ = shared_memory_limit(device_);
        cc_ = compute_capability(device_);
        stream_ = stream_create();
        try {
            P_ = DeviceBuffer<T>(N_, "the parameters");
            G_ = DeviceBuffer<T>(N_, "the gradients");
            starts_ = DeviceBuffer<size_t>(starts_host_.size(), "the parameter layout");
            sc_ = DeviceBuffer<Scalars>(1, "the step scalars");
            cfg_ = DeviceBuffer<StepConfig<T>>(1, "the step settings");
            cw_ = DeviceBuffer<double>(sizes_.back(), "the class weights");
            h_cfg_ = PinnedBuffer<StepConfig<T>>(1, "the step settings");
            h_sc_ = PinnedBuffer<Scalars>(1, "the step scalars");
            h_cw_ = PinnedBuffer<double>(sizes_.back(), "the class weights");
            zero_async(P_.get(), P_.bytes(), stream_);
            zero_async(G_.get(), G_.bytes(), stream_);
            copy_async(starts_.get(), starts_host_.data(), starts_.bytes(), stream_);
            stream_sync(stream_);
        } catch (...) {
            release();
            throw;
        }
    }
    ~Model() { release(); }

    void params_write(const void *params) {
        set_device(device_);
        copy_async(P_.get(), params, P_.bytes(), stream_);
        stream_sync(stream_);
    }
    void params_read(void *out) {
        set_device(device_);
        copy_async(out, P_.get(), P_.bytes(), stream_);
        stream_sync(stream_);
    }

    void optimizer_state_write(uint32_t optimizer, const void *state, size_t count) {
        if (optimizer > kAdam) fail(NN_BACKEND_ERR_UNSUPPORTED, "cuda backend: unknown optimizer");
        if (count != mul(slots_of(optimizer), N_))
            fail(NN_BACKEND_ERR_INVALID, "cuda backend: optimizer state of the wrong size");
        set_device(device_);
        DeviceBuffer<T> fresh(count, "the optimizer state");
        if (count) {
            if (state)
                copy_async(fresh.get(), state, fresh.bytes(), stream_);
            else
                zero_async(fresh.get(), fresh.bytes(), stream_);
            stream_sync(stream_);
        }
        S_ = std::move(fresh);
        opt_kind_ = optimizer;
        drop_graphs();  // they point at the old state
    }
    void optimizer_state_read(void *out, size_t count) {
        if (count != S_.size()) fail(NN_BACKEND_ERR_INVALID, "cuda backend: optimizer state of the wrong size");
        if (!count) return;
        set_device(device_);
        copy_async(out, S_.get(), S_.bytes(), stream_);
        stream_sync(stream_);
    }

    void data_upload(const void *x, const void *targets, size_t rows, size_t max_batch) {
        if (rows == 0 || max_batch == 0) fail(NN_BACKEND_ERR_INVALID, "cuda backend: an empty training set or batch");
        if (max_batch > size_t(INT32_MAX) || rows > size_t(INT32_MAX))
            fail(NN_BACKEND_ERR_UNSUPPORTED, "cuda backend: more than 2^31 - 1 rows do not fit cuBLAS's int sizes");
        if (ce_) {  // libnn checks them first; a label out of range would read outside a row on the GPU
            const auto *labels = static_cast<const int32_t *>(targets);
            for (size_t r = 0; r < rows; ++r)
                if (labels[r] < 0 || size_t(labels[r]) >= sizes_.back())
                    fail(NN_BACKEND_ERR_INVALID, "cuda backend: a class label outside the outputs");
        }
        set_device(device_);
        try {
            upload(x, targets, rows, max_batch);
        } catch (const Failure &f) {
            if (f.kind != NN_BACKEND_ERR_OUT_OF_MEMORY || data_.rows == 0) throw;
            // Make room: the previous training set (only ever used by the next train_steps,
            // which needs this one) and the cached graphs and prediction buffers go.
            drop_graphs();
            data_ = Data{};
            pred_ = Predict{};
            upload(x, targets, rows, max_batch);
        }
    }

    void train_steps(const int64_t *order, size_t steps, size_t batch, const nn_backend_train_config &config,
                     double *out_losses) {
        const nn::optim::Settings st(config);
        if (!st.known()) fail(NN_BACKEND_ERR_UNSUPPORTED, "cuda backend: unknown optimizer");
        if (st.optimizer != opt_kind_ || S_.size() != slots_of(st.optimizer) * N_)
            fail(NN_BACKEND_ERR_INVALID, "cuda backend: the optimizer state was not set for this optimizer");
        if (data_.rows == 0) fail(NN_BACKEND_ERR_INVALID, "cuda backend: train_steps before data_upload");
        if (batch == 0 || batch > data_.max_batch)
            fail(NN_BACKEND_ERR_INVALID, "cuda backend: a batch larger than data_upload's max_batch");
        if (steps == 0) return;
        const size_t n_order = mul(steps, batch);
        for (size_t i = 0; i < n_order; ++i)
            if (order[i] < 0 || uint64_t(order[i]) >= data_.rows)
                fail(NN_BACKEND_ERR_INVALID, "cuda backend: a row index outside the uploaded training set");
        set_device(device_);
        const DrainOnFailure drain(stream_);

        const bool split = st.exchange != nullptr;
        const bool fused = use_fused(batch);
        const bool reg = st.weight_decay > 0.0 || st.max_grad_norm > 0.0;
        if (!fused) prepare_graphs(batch, reg, split);

        StepConfig<T> &c = *h_cfg_.get();
        c = StepConfig<T>{};
        c.lr = T(st.lr);
        c.momentum = T(st.momentum);
        c.mm = T(st.momentum * st.momentum);
        c.one_plus_m_lr = T((1.0 + st.momentum) * st.lr);
        c.decay = T(st.decay_rate);
        c.one_minus_decay = T(1.0 - st.decay_rate);
        c.eps = T(st.epsilon);
        c.one_minus_b1 = T(1.0 - st.beta1);
        c.one_minus_b2 = T(1.0 - st.beta2);
        c.lambda = T(st.weight_decay);
        c.lr_d = st.lr;
        c.beta1 = st.beta1;
        c.beta2 = st.beta2;
        c.max_norm = st.max_grad_norm;
        c.divisor = st.divisor(batch);
        c.optimizer = st.optimizer;
        c.stop_check = st.stop_on_non_finite && !split;
        c.decay_on = st.weight_decay > 0.0;
        c.clip_on = st.max_grad_norm > 0.0;
        c.weighted = ce_ && st.class_weights != nullptr;
        if (c.weighted) std::copy(st.class_weights, st.class_weights + sizes_.back(), h_cw_.get());

        FusedK<T> fk{};
        unsigned fused_threads = 0;
        size_t fused_smem = 0;
        if (fused) fk = fused_kernel(batch, split, fused_threads, fused_smem);

        // A chunk is what the order buffer holds (≥ 1 step: batch ≤ max_batch ≤ order_cap),
        // at most kMaxChunkSteps steps, and for the fused kernel (one block: one SM) at most
        // kFusedLaunchMacs forward multiply-adds, so that one launch stays well under a
        // second (a GPU that drives a display has a watchdog): the book's net on batch 30
        // runs 16,384 steps a launch, a net at the fused threshold about 2,000.
        size_t per_chunk = std::min(data_.order_cap / batch, kMaxChunkSteps);
        if (fused) per_chunk = std::min(per_chunk, std::max<size_t>(1, kFusedLaunchMacs / (macs_per_row() * batch)));
        for (size_t done = 0; done < steps;) {
            const size_t n = std::min(per_chunk, steps - done);
            std::memcpy(data_.h_order.get(), order + done * batch, n * batch * sizeof(int64_t));
            c.adam_step = st.adam_step + done;
            copy_async(data_.order.get(), data_.h_order.get(), n * batch * sizeof(int64_t), stream_);
            copy_async(cfg_.get(), h_cfg_.get(), sizeof(StepConfig<T>), stream_);
            if (c.weighted) copy_async(cw_.get(), h_cw_.get(), cw_.bytes(), stream_);
            zero_async(sc_.get(), sizeof(Scalars), stream_);
            if (!split) {
                if (fused) {
                    fk.mode = kFusedFull;
                    fk.first_step = 0;
                    fk.steps = n;
                    launch_block(stream_, fused_threads, fused_smem, fk);
                } else {
                    for (size_t s = 0; s < n; ++s) graph_launch(graph_step_, stream_);
                }
                copy_async(data_.h_losses.get(), data_.losses.get(), n * sizeof(double), stream_);
                copy_async(h_sc_.get(), sc_.get(), sizeof(Scalars), stream_);
                stream_sync(stream_);  // the call's one wait (per chunk of order_cap rows)
                const uint64_t stopped = h_sc_.get()->stopped;
                const size_t written = stopped ? size_t(stopped) : n;
                std::copy(data_.h_losses.get(), data_.h_losses.get() + written, out_losses + done);
                if (stopped) return;
            } else {
                for (size_t s = 0; s < n; ++s) {
                    if (fused) {
                        fk.mode = kFusedGrads;
                        fk.first_step = s;
                        fk.steps = 1;
                        launch_block(stream_, fused_threads, fused_smem, fk);
                    } else {
                        graph_launch(graph_step_, stream_);
                    }
                    copy_async(data_.h_grads.get(), G_.get(), G_.bytes(), stream_);
                    copy_async(h_sc_.get(), sc_.get(), sizeof(Scalars), stream_);
                    stream_sync(stream_);
                    double loss = h_sc_.get()->loss;
                    if (st.exchange(st.exchange_context, data_.h_grads.get(), N_, &loss) != 0) {
                        out_losses[done + s] = std::nan("");  // the host knows why
                        return;
                    }
                    out_losses[done + s] = loss;
                    if (st.stop_on_non_finite && !std::isfinite(loss)) return;
                    copy_async(G_.get(), data_.h_grads.get(), G_.bytes(), stream_);
                    if (fused) {
                        fk.mode = kFusedUpdate;
                        launch_block(stream_, fused_threads, fused_smem, fk);
                    } else {
                        graph_launch(graph_update_, stream_);
                    }
                    if (st.stops_on_non_finite() && !std::isfinite(loss)) {  // as the CPU plugin: after the update
                        stream_sync(stream_);
                        return;
                    }
                }
                stream_sync(stream_);
            }
            done += n;
        }
    }

    void predict(const void *x, size_t rows, void *out_scores) {
        if (rows == 0) return;
        set_device(device_);
        const DrainOnFailure drain(stream_);
        const size_t in = sizes_.front(), out = sizes_.back();
        const size_t widest = *std::max_element(sizes_.begin(), sizes_.end());
        // Chunks of at most 64 MiB per activation buffer.
        size_t chunk = std::max<size_t>(1, (size_t(64) << 20) / mul(widest, sizeof(T)));
        chunk = std::min({chunk, rows, size_t(INT32_MAX)});
        if (pred_.rows < chunk) {
            Predict fresh;
            fresh.x = DeviceBuffer<T>(mul(chunk, in), "prediction inputs");
            fresh.a = DeviceBuffer<T>(mul(chunk, widest), "prediction activations");
            fresh.b = DeviceBuffer<T>(mul(chunk, widest), "prediction activations");
            fresh.rows = chunk;
            pred_ = std::move(fresh);
        }
        const T *xs = static_cast<const T *>(x);
        T *scores = static_cast<T *>(out_scores);
        for (size_t start = 0; start < rows; start += chunk) {
            const size_t n = std::min(chunk, rows - start);
            copy_async(pred_.x.get(), xs + start * in, n * in * sizeof(T), stream_);
            const T *cur = pred_.x.get();
            T *bufs[2] = {pred_.a.get(), pred_.b.get()};
            for (size_t l = 0; l < L_; ++l) {
                T *dst = bufs[l % 2];
                const size_t I = sizes_[l], O = sizes_[l + 1];
                const T *W = P_.get() + w_off_[l], *b = P_.get() + b_off_[l];
                const bool last = l + 1 == L_;
                if (mul(mul(n, I), O) >= (size_t(1) << 22) && blas_available()) {
                    ensure_blas();
                    gemm(blas_, stream_, false, false, int(O), int(n), int(I), W, int(O), cur, int(I), dst, int(O));
                    launch_grid(stream_, n * O, BiasActK<T>{dst, b, n, O, act_, last});
                } else {
                    launch_grid(stream_, n * O, ForwardK<T>{dst, cur, W, b, n, I, O, act_, last});
                }
                cur = dst;
            }
            copy_async(scores + start * out, cur, n * out * sizeof(T), stream_);
            stream_sync(stream_);
        }
    }

    // How the float32 products (cuBLAS's) may be computed. Honoured where the device has
    // tensor cores for the format (float16 from compute capability 7.0, TF32 and bfloat16
    // from 8.0), strict elsewhere, which the setting allows. The fused kernel's products
    // are always strict: they are too small for tensor cores to pay.
    void set_precision(uint32_t precision) {
        if (precision > kPrecisionBfloat16) fail(NN_BACKEND_ERR_UNSUPPORTED, "cuda backend: an unknown precision");
        if (sizeof(T) != sizeof(float) && precision != kPrecisionStrict)
            fail(NN_BACKEND_ERR_INVALID, "cuda backend: reduced precision for a float64 model");
        const int needs = precision == kPrecisionFloat16 ? 70 : 80;
        const uint32_t effective = precision != kPrecisionStrict && cc_ >= needs ? precision : kPrecisionStrict;
        if (effective == precision_) return;
        set_device(device_);
        drop_graphs();  // they were captured with the other kind of product
        precision_ = effective;
        blas_.precision = effective;
    }

    size_t params() const { return N_; }

private:
    static constexpr size_t kMaxChunkSteps = 16384;
    static constexpr size_t kFusedLaunchMacs = size_t(1) << 30;

    struct Data {
        DeviceBuffer<T> x, targets;
        DeviceBuffer<int32_t> labels;
        size_t rows = 0, max_batch = 0, order_cap = 0;
        DeviceBuffer<int64_t> order;
        PinnedBuffer<int64_t> h_order;
        DeviceBuffer<double> losses;
        PinnedBuffer<double> h_losses;
        DeviceBuffer<unsigned char> ws;
        HostLayout layout;  // of ws, for max_batch rows
        DeviceBuffer<T> ones;
        DeviceBuffer<double> partials;
        PinnedBuffer<T> h_grads;
    };
    struct Predict {
        DeviceBuffer<T> x, a, b;
        size_t rows = 0;
    };

    void release() {
        drop_graphs();
        blas_destroy(blas_);
        data_ = Data{};
        pred_ = Predict{};
        P_ = DeviceBuffer<T>();
        G_ = DeviceBuffer<T>();
        S_ = DeviceBuffer<T>();
        starts_ = DeviceBuffer<size_t>();
        sc_ = DeviceBuffer<Scalars>();
        cfg_ = DeviceBuffer<StepConfig<T>>();
        cw_ = DeviceBuffer<double>();
        h_cfg_ = PinnedBuffer<StepConfig<T>>();
        h_sc_ = PinnedBuffer<Scalars>();
        h_cw_ = PinnedBuffer<double>();
        stream_destroy(stream_);
        stream_ = Stream{};
    }

    void drop_graphs() {
        graph_free(graph_step_);
        graph_free(graph_update_);
        graph_ready_ = false;
    }

    void ensure_blas() {
        if (blas_.handle) return;
        blas_ = blas_create(stream_);
        blas_.precision = precision_;
    }

    size_t macs_per_row() const {  // of the forward pass
        size_t macs = 0;
        for (size_t l = 0; l < L_; ++l) macs += sizes_[l] * sizes_[l + 1];
        return macs;
    }

    bool use_fused(size_t batch) const {
        const char *env = std::getenv("NN_CUDA_PATH");
        if (L_ > kMaxFusedLayers || (env && std::strcmp(env, "graph") == 0)) return false;
        if (env && std::strcmp(env, "fused") == 0) return true;
        return macs_per_row() <= fused_mac_limit(sizeof(T) == 8) / batch;
    }

    void upload(const void *x, const void *targets, size_t rows, size_t max_batch) {
        const size_t in = sizes_.front(), out = sizes_.back();
        Data d;
        d.rows = rows;
        d.max_batch = max_batch;
        // Room for one epoch's order at least, and for the host's groups of epochs
        // (NN_BACKEND_GROUP_ORDER row indices) so that a group runs with one wait: 1 MiB of
        // indices and 1 MiB of losses, pinned and on the device.
        d.order_cap = std::max({rows, max_batch, NN_BACKEND_GROUP_ORDER});
        d.x = DeviceBuffer<T>(mul(rows, in), "the training inputs");
        if (ce_)
            d.labels = DeviceBuffer<int32_t>(rows, "the training labels");
        else
            d.targets = DeviceBuffer<T>(mul(rows, out), "the training targets");
        d.order = DeviceBuffer<int64_t>(d.order_cap, "the row order");
        d.h_order = PinnedBuffer<int64_t>(d.order_cap, "the row order");
        d.losses = DeviceBuffer<double>(d.order_cap, "the step losses");
        d.h_losses = PinnedBuffer<double>(d.order_cap, "the step losses");
        d.layout = host_layout<T>(sizes_, max_batch, ce_);
        d.ws = DeviceBuffer<unsigned char>(d.layout.total, "the training workspace");
        d.ones = DeviceBuffer<T>(max_batch, "a vector of ones");
        d.partials = DeviceBuffer<double>(kNormLanes, "the gradient-norm partial sums");
        d.h_grads = PinnedBuffer<T>(N_, "the gradients exchanged between processes");
        if (!use_fused(max_batch)) ensure_blas();  // the graph path's products
        copy_async(d.x.get(), x, d.x.bytes(), stream_);
        if (ce_)
            copy_async(d.labels.get(), targets, d.labels.bytes(), stream_);
        else
            copy_async(d.targets.get(), targets, d.targets.bytes(), stream_);
        std::vector<T> ones(max_batch, T(1));
        copy_async(d.ones.get(), ones.data(), d.ones.bytes(), stream_);
        stream_sync(stream_);
        drop_graphs();  // they point at the old buffers
        data_ = std::move(d);
        log_line(std::string("cuda backend: training set of ") + std::to_string(rows) + " rows, batches up to " +
                 std::to_string(max_batch) + ": " + (use_fused(max_batch) ? "fused kernel" : "cuBLAS + CUDA graph"));
    }

    template <typename P>
    P *ws(size_t offset) const {
        return reinterpret_cast<P *>(data_.ws.get() + offset);
    }

    // The fused kernel's arguments for batch B (all but mode and the steps).
    FusedK<T> fused_kernel(size_t B, bool split, unsigned &threads, size_t &smem) const {
        FusedK<T> k{};
        k.L = L_;
        k.N = N_;
        k.slots = slots_of(opt_kind_);
        for (size_t l = 0; l <= L_; ++l) k.sizes[l] = sizes_[l];
        for (size_t l = 0; l < L_; ++l) {
            k.w_off[l] = w_off_[l];
            k.b_off[l] = b_off_[l];
        }
        k.act = act_;
        k.ce = ce_;
        k.P = P_.get();
        k.G = G_.get();
        k.S = S_.get();
        const HostLayout lay = host_layout<T>(sizes_, B, ce_);  // ≤ data_.layout.total
        k.ws = fused_workspace(lay);
        const size_t params_bytes = align16(mul(mul(2 + k.slots, N_), sizeof(T)));
        k.params_shared = !split && add(params_bytes, lay.total) <= smem_limit_;
        k.params_bytes = k.params_shared ? params_bytes : 0;
        const bool ws_shared = add(k.params_bytes, lay.total) <= smem_limit_;
        k.ws_global = ws_shared ? nullptr : data_.ws.get();
        smem = k.params_bytes + (ws_shared ? lay.total : 0);
        k.data = DataView<T>{data_.x.get(), data_.labels.get(), data_.targets.get(), sizes_.front(), sizes_.back(), ce_};
        k.order = data_.order.get();
        k.B = B;
        k.cfg = cfg_.get();
        k.class_weights = cw_.get();
        k.starts = starts_.get();
        k.sc = sc_.get();
        k.losses = data_.losses.get();
        size_t work = std::min<size_t>(N_, 1024);
        for (size_t l = 0; l <= L_; ++l) work = std::max(work, B * sizes_[l]);
        for (size_t l = 0; l < L_; ++l) work = std::max(work, sizes_[l] * sizes_[l + 1]);
        work = std::min<size_t>(std::max<size_t>(work, 64), 1024);
        threads = unsigned((work + 31) / 32 * 32);
        return k;
    }

    // Captures the graph path's step for batch B (and, with an exchange, its update
    // separately), unless the graphs in hand fit.
    void prepare_graphs(size_t B, bool reg, bool split) {
        if (graph_ready_ && graph_batch_ == B && graph_reg_ == reg && graph_split_ == split) return;
        drop_graphs();
        ensure_blas();
        preload_grid<GatherK<T>>();
        preload_grid<BiasActK<T>>();
        preload_grid<LossRowsK<T>>();
        preload_block<LossReduceK<T>>();
        preload_grid<ActBackwardK<T>>();
        preload_grid<DecayNormK<T>>();
        preload_block<NormFinalK<T>>();
        preload_grid<UpdateK<T>>();
        capture_begin(stream_);
        try {
            enqueue_gradients(B);
            if (!split) enqueue_update(reg);
        } catch (...) {
            capture_abort(stream_);
            throw;
        }
        graph_step_ = capture_end(stream_);
        if (split) {
            capture_begin(stream_);
            try {
                enqueue_update(reg);
            } catch (...) {
                capture_abort(stream_);
                drop_graphs();
                throw;
            }
            graph_update_ = capture_end(stream_);
        }
        graph_ready_ = true;
        graph_batch_ = B;
        graph_reg_ = reg;
        graph_split_ = split;
    }

    // Gather, forward, loss, backward for batch B: the gradients in G_, the loss recorded.
    void enqueue_gradients(size_t B) {
        const HostLayout &lay = data_.layout;
        const size_t in = sizes_.front(), out = sizes_.back();
        std::vector<T *> A;
        for (size_t l = 0; l <= L_; ++l) A.push_back(ws<T>(lay.acts[l]));
        T *delta[2] = {ws<T>(lay.delta[0]), ws<T>(lay.delta[1])};
        T *terms = ws<T>(lay.terms);
        int32_t *labels = ws<int32_t>(lay.labels);
        T *targets = ws<T>(lay.targets);
        const int Bi = int(B);
        launch_grid(stream_, B * std::max(in, out),
                    GatherK<T>{data_.order.get(), sc_.get(), B,
                               DataView<T>{data_.x.get(), data_.labels.get(), data_.targets.get(), in, out, ce_},
                               BatchView<T>{A[0], labels, targets}});
        T *P = P_.get(), *G = G_.get();
        for (size_t l = 0; l < L_; ++l) {
            const int I = int(sizes_[l]), O = int(sizes_[l + 1]);
            gemm(blas_, stream_, false, false, O, Bi, I, P + w_off_[l], O, A[l], I, A[l + 1], O);
            launch_grid(stream_, B * sizes_[l + 1], BiasActK<T>{A[l + 1], P + b_off_[l], B, sizes_[l + 1], act_, l + 1 == L_});
        }
        launch_grid(stream_, ce_ ? B : B * out,
                    LossRowsK<T>{A[L_], terms, labels, targets, cw_.get(), cfg_.get(), B, out, ce_});
        launch_block(stream_, 256, (kReduceLanes + 1) * sizeof(double),
                     LossReduceK<T>{terms, ce_ ? B : B * out, ce_, cfg_.get(), sc_.get(), data_.losses.get()});
        const T *d = A[L_];
        int cur = 0;
        for (size_t l = L_; l-- > 0;) {
            const int I = int(sizes_[l]), O = int(sizes_[l + 1]);
            gemm(blas_, stream_, false, true, O, I, Bi, d, O, A[l], I, G + w_off_[l], O);
            gemv(blas_, stream_, O, Bi, d, O, data_.ones.get(), G + b_off_[l]);
            if (l > 0) {
                T *dn = delta[cur];
                gemm(blas_, stream_, true, false, I, Bi, O, P + w_off_[l], O, d, O, dn, I);
                launch_grid(stream_, B * sizes_[l], ActBackwardK<T>{dn, A[l], B * sizes_[l], act_});
                d = dn;
                cur ^= 1;
            }
        }
    }

    // Weight decay and clipping (when `reg`), then the optimizer's update.
    void enqueue_update(bool reg) {
        if (reg) {
            launch_grid(stream_, kNormLanes,
                        DecayNormK<T>{G_.get(), P_.get(), starts_.get(), 2 * L_, cfg_.get(), sc_.get(),
                                      data_.partials.get()});
            launch_block(stream_, 256, (kReduceLanes + 1) * sizeof(double),
                         NormFinalK<T>{data_.partials.get(), cfg_.get(), sc_.get()});
        }
        launch_grid(stream_, N_, UpdateK<T>{P_.get(), G_.get(), S_.get(), N_, cfg_.get(), sc_.get()});
    }

    int device_;
    Stream stream_{};
    std::vector<size_t> sizes_, w_off_, b_off_, starts_host_;
    size_t L_ = 0, N_ = 0, smem_limit_ = 0;
    int cc_ = 0;                           // compute capability × 10
    uint32_t precision_ = kPrecisionStrict;  // in effect for the float32 products
    uint32_t act_ = 0;
    bool ce_ = true;
    DeviceBuffer<T> P_, G_, S_;
    uint32_t opt_kind_ = kSgd;
    DeviceBuffer<size_t> starts_;
    DeviceBuffer<Scalars> sc_;
    DeviceBuffer<StepConfig<T>> cfg_;
    DeviceBuffer<double> cw_;
    PinnedBuffer<StepConfig<T>> h_cfg_;
    PinnedBuffer<Scalars> h_sc_;
    PinnedBuffer<double> h_cw_;
    Data data_;
    Predict pred_;
    Blas blas_;
    Graph graph_step_, graph_update_;
    bool graph_ready_ = false, graph_reg_ = false, graph_split_ = false;
    size_t graph_batch_ = 0;
};

}  // namespace impl
}  // namespace nncuda

struct nn_backend_model {
    bool f64 = false;
    std::unique_ptr<nncuda::impl::Model<float>> m32;
    std::unique_ptr<nncuda::impl::Model<double>> m64;
};

namespace nncuda {
namespace impl {

template <typename Fn>
nn_backend_result guarded(Fn &&fn) {
    try {
        fn();
        return NN_BACKEND_OK;
    } catch (const Failure &f) {
        report(f.message);
        return f.kind;
    } catch (const std::bad_alloc &) {
        report("cuda backend: out of host memory");
        return NN_BACKEND_ERR_OUT_OF_MEMORY;
    } catch (...) {
        report("cuda backend: unexpected failure");
        return NN_BACKEND_ERR_INVALID;
    }
}

template <typename Fn>
nn_backend_result with_model(nn_backend_model *m, Fn &&fn) {
    if (!m) {
        report("cuda backend: no model");
        return NN_BACKEND_ERR_INVALID;
    }
    return guarded([&] {
        if (m->f64)
            fn(*m->m64);
        else
            fn(*m->m32);
    });
}

int cuda_device_count(char *why_none, size_t capacity) {
    try {
        const Enumeration &e = devices();
        if (e.count == 0 && why_none && capacity > 0) std::snprintf(why_none, capacity, "%s", e.why_none.c_str());
        return e.count;
    } catch (...) {
        if (why_none && capacity > 0) std::snprintf(why_none, capacity, "cuda backend: device enumeration failed");
        return 0;
    }
}

nn_backend_result cuda_device_describe(int index, nn_backend_device *out) {
    return guarded([&] {
        const Enumeration &e = devices();
        if (!out || index < 0 || size_t(index) >= e.devices.size())
            fail(NN_BACKEND_ERR_INVALID, "cuda backend: no device " + std::to_string(index));
        *out = e.devices[size_t(index)];
    });
}

nn_backend_result cuda_model_create(int index, const nn_backend_net *net, nn_backend_model **out) {
    return guarded([&] {
        if (!net || !out || net->n_layer_sizes < 2 || !net->layer_sizes)
            fail(NN_BACKEND_ERR_INVALID, "cuda backend: a net needs at least two layer sizes");
        if (net->dtype > 1) fail(NN_BACKEND_ERR_UNSUPPORTED, "cuda backend: only float32 and float64 models");
        if (net->loss > 1 || net->hidden_activation > 3)
            fail(NN_BACKEND_ERR_UNSUPPORTED, "cuda backend: unknown loss or activation");
        for (uint32_t l = 0; l < net->n_layer_sizes; ++l)
            if (net->layer_sizes[l] == 0 || net->layer_sizes[l] > size_t(INT32_MAX))
                fail(NN_BACKEND_ERR_UNSUPPORTED, "cuda backend: a layer size of 0 or above 2^31 - 1 (cuBLAS's int sizes)");
        const Enumeration &e = devices();
        if (index < 0 || size_t(index) >= e.devices.size() || !e.devices[size_t(index)].available)
            fail(NN_BACKEND_ERR_INVALID, "cuda backend: device " + std::to_string(index) + " is not available");
        auto m = std::make_unique<nn_backend_model>();
        m->f64 = net->dtype == 1;
        if (m->f64)
            m->m64 = std::make_unique<Model<double>>(index, *net);
        else
            m->m32 = std::make_unique<Model<float>>(index, *net);
        *out = m.release();
    });
}

void cuda_model_destroy(nn_backend_model *m) {
    try {
        delete m;
    } catch (...) {
    }
}

nn_backend_result cuda_params_write(nn_backend_model *m, const void *params) {
    return with_model(m, [&](auto &impl) { impl.params_write(params); });
}

nn_backend_result cuda_params_read(nn_backend_model *m, void *out) {
    return with_model(m, [&](auto &impl) { impl.params_read(out); });
}

nn_backend_result cuda_data_upload(nn_backend_model *m, const void *x, const void *targets, size_t rows, size_t max_batch) {
    return with_model(m, [&](auto &impl) { impl.data_upload(x, targets, rows, max_batch); });
}

nn_backend_result cuda_train_steps(nn_backend_model *m, const int64_t *order, size_t steps, size_t batch,
                                   const nn_backend_train_config *config, double *out_losses) {
    if (!config) {
        report("cuda backend: no train config");
        return NN_BACKEND_ERR_INVALID;
    }
    return with_model(m, [&](auto &impl) { impl.train_steps(order, steps, batch, *config, out_losses); });
}

nn_backend_result cuda_predict(nn_backend_model *m, const void *x, size_t rows, void *out_scores) {
    return with_model(m, [&](auto &impl) { impl.predict(x, rows, out_scores); });
}

nn_backend_result cuda_optimizer_state_write(nn_backend_model *m, uint32_t optimizer, const void *state, size_t count) {
    return with_model(m, [&](auto &impl) { impl.optimizer_state_write(optimizer, state, count); });
}

nn_backend_result cuda_optimizer_state_read(nn_backend_model *m, void *out, size_t count) {
    return with_model(m, [&](auto &impl) { impl.optimizer_state_read(out, count); });
}

nn_backend_result cuda_precision_set(nn_backend_model *m, uint32_t precision) {
    return with_model(m, [&](auto &impl) { impl.set_precision(precision); });
}

const nn_backend_iface kCudaIface = {
    .abi_version = NN_BACKEND_ABI_VERSION,
    .struct_size = sizeof(nn_backend_iface),
    .name = kName,
    .device_count = cuda_device_count,
    .device_describe = cuda_device_describe,
    .model_create = cuda_model_create,
    .model_destroy = cuda_model_destroy,
    .params_write = cuda_params_write,
    .params_read = cuda_params_read,
    .data_upload = cuda_data_upload,
    .train_steps = cuda_train_steps,
    .predict = cuda_predict,
    .optimizer_state_write = cuda_optimizer_state_write,
    .optimizer_state_read = cuda_optimizer_state_read,
    .data_attach = nullptr,  // the training set is copied to the GPU anyway
    .capabilities = NN_BACKEND_CAP_EPOCH_GROUPS,
    .precision_set = cuda_precision_set,
};

}  // namespace impl
}  // namespace nncuda

// The plugin's one export. It never fails for lack of a GPU: without a driver or a
// device the table is returned and device_count says why (libnn shows that reason).
extern "C" __attribute__((visibility("default"))) const nn_backend_iface *nn_backend_entry(const nn_host_services *host) {
    if (!host || host->abi_version != NN_BACKEND_ABI_VERSION) {
        if (host && host->set_error && host->struct_size >= sizeof(uint32_t) * 2 + sizeof(void *))
            host->set_error("cuda backend: host ABI version differs from the plugin's");
        return nullptr;
    }
    nncuda::impl::g_host = host;
    return &nncuda::impl::kCudaIface;
}
