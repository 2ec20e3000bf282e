// libnn on a GPU beside libnn on the CPU, in one run (issue #5's speed checks).
//
//   bench_cuda [--repeat N] [--what spiral|wide|all]
//
// spiral: the book's chapter-1 training (spiral 300 × 2, 2-10-3 sigmoid/softmax, 300
//   epochs of SGD with batch 30, lr 1.0, a loss record every 10 steps), float32 and
//   float64, on the CPU plugin and on CUDA device 0 (the fused kernel, and the cuBLAS +
//   graph path forced with NN_CUDA_PATH=graph). Only nn_fit is timed; one warm-up fit per
//   device first (context creation, module loading). The bar: GPU time at most 2×
//   libnn's own CPU time (the seed's CuPy run was 10× slower than NumPy).
// wide: a 784-1024-1024-10 relu MLP, float32, batch 512, 16 steps per epoch on random
//   data: milliseconds per step on CUDA and on the CPU plugin, and the time cuBLAS SGEMM
//   alone takes for the same eight products of a step (three forward, three weight
//   gradients, two input gradients; strict float32, no TF32) on the same device. The
//   issue's bars: at least 60% of SGEMM's throughput, at least 20× the CPU plugin.
//
// Prints one line per measurement and a summary of medians last. Needs a CUDA device:
// without one it says why and exits 2.
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "nn/nn.h"

namespace {

double now_s() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

double median(std::vector<double> v) {
    if (v.empty()) return 0.0;
    std::sort(v.begin(), v.end());
    const size_t n = v.size();
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

bool ok(nn_status s, const char *what) {
    if (s == NN_OK) return true;
    std::fprintf(stderr, "bench_cuda: %s failed: %s: %s\n", what, nn_status_string(s), nn_last_error_message());
    return false;
}

std::string cuda_name(std::string &why) {
    size_t n = 0;
    nn_device_count(&n);
    for (size_t i = 0; i < n; ++i) {
        nn_device_info info;
        nn_device_info_init(&info);
        if (nn_device_get(i, &info) == NN_OK && info.kind == NN_DEVICE_CUDA && info.index == 0) {
            if (info.available) return info.name;
            why = info.reason;
            return "";
        }
    }
    why = "no CUDA entry in the device list";
    return "";
}

// One book run; returns nn_fit's seconds, or a negative number on failure.
double spiral_once(nn_dtype dtype, nn_device_kind device, double *final_record) {
    nn_rng *rng = nullptr;
    nn_model *model = nullptr;
    double elapsed = -1.0;
    std::vector<double> x(600);
    std::vector<int32_t> t(300);
    const size_t sizes[] = {2, 10, 3};
    nn_model_desc desc;
    nn_fit_options fit;
    size_t n = 0;
    if (!ok(nn_rng_create(&rng, 1984), "nn_rng_create")) goto done;
    if (!ok(nn_dataset_spiral(x.data(), 600, t.data(), 300, 100, 3, rng, 0), "nn_dataset_spiral")) goto done;
    nn_model_desc_init(&desc);
    desc.n_layer_sizes = 3;
    desc.layer_sizes = sizes;
    desc.dtype = dtype;
    desc.rng = rng;
    if (!ok(nn_create(&model, &desc), "nn_create")) goto done;
    if (!ok(nn_set_device(model, device, 0), "nn_set_device")) goto done;
    nn_fit_options_init(&fit);
    fit.epochs = 300;
    fit.batch_size = 30;
    fit.learning_rate = 1.0;
    fit.report_interval = 10;
    fit.rng = rng;
    {
        const double t0 = now_s();
        const nn_status s = nn_fit(model, x.data(), NN_DTYPE_FLOAT64, 300, 2, t.data(), NN_TARGET_CLASS_INDEX, 1, &fit, nullptr);
        const double t1 = now_s();
        if (!ok(s, "nn_fit")) goto done;
        elapsed = t1 - t0;
    }
    if (nn_get_loss_history(model, nullptr, 0, &n) == NN_OK && n > 0) {
        std::vector<nn_loss_record> r(n);
        nn_get_loss_history(model, r.data(), n, &n);
        *final_record = r.back().loss;
    }
done:
    nn_destroy(model);
    nn_rng_destroy(rng);
    return elapsed;
}

struct Spiral {
    double cpu = 0, fused = 0, graph = 0;
};

Spiral bench_spiral(nn_dtype dtype, int repeat) {
    const char *name = dtype == NN_DTYPE_FLOAT32 ? "float32" : "float64";
    Spiral out;
    struct Variant {
        const char *label;
        nn_device_kind device;
        const char *path;
        double *result;
    } variants[] = {{"cpu", NN_DEVICE_CPU, nullptr, &out.cpu},
                    {"cuda-fused", NN_DEVICE_CUDA, "fused", &out.fused},
                    {"cuda-graph", NN_DEVICE_CUDA, "graph", &out.graph}};
    std::vector<std::vector<double>> times(3);
    for (int r = -1; r < repeat; ++r)  // r = -1: warm-up
        for (size_t v = 0; v < 3; ++v) {
            if (variants[v].path)
                setenv("NN_CUDA_PATH", variants[v].path, 1);
            else
                unsetenv("NN_CUDA_PATH");
            double record = 0.0;
            const double s = spiral_once(dtype, variants[v].device, &record);
            if (s < 0) continue;
            if (r >= 0) {
                times[v].push_back(s);
                std::printf("spiral %s %s run %d in_loop_s %.6f final_record %.4f\n", name, variants[v].label, r, s, record);
            }
        }
    unsetenv("NN_CUDA_PATH");
    for (size_t v = 0; v < 3; ++v) *variants[v].result = median(times[v]);
    return out;
}

// ---- the wide MLP ------------------------------------------------------------------------

constexpr size_t kWideSizes[] = {784, 1024, 1024, 10};
constexpr size_t kWideBatch = 512, kWideRows = 512 * 16;

const char *precision_name(nn_precision p) {
    return p == NN_PRECISION_TF32 ? "tf32" : p == NN_PRECISION_FLOAT16 ? "float16" : p == NN_PRECISION_BFLOAT16 ? "bfloat16" : "strict";
}

// Seconds per step of nn_fit over `epochs` epochs (16 steps each), median of `repeat`,
// with the products in `precision` (nn_set_precision).
double wide_step_s(nn_device_kind device, size_t epochs, int repeat, const std::vector<double> &x,
                   const std::vector<int32_t> &t, nn_precision precision = NN_PRECISION_STRICT) {
    std::vector<double> per_step;
    for (int r = -1; r < repeat; ++r) {
        nn_model *model = nullptr;
        nn_model_desc desc;
        nn_model_desc_init(&desc);
        desc.n_layer_sizes = 4;
        desc.layer_sizes = kWideSizes;
        desc.hidden_activation = NN_ACTIVATION_RELU;
        desc.dtype = NN_DTYPE_FLOAT32;
        desc.init = NN_INIT_HE;
        if (!ok(nn_create(&model, &desc), "nn_create") || !ok(nn_set_device(model, device, 0), "nn_set_device") ||
            !ok(nn_set_precision(model, precision), "nn_set_precision")) {
            nn_destroy(model);
            return -1.0;
        }
        nn_fit_options fit;
        nn_fit_options_init(&fit);
        fit.epochs = r < 0 ? 1 : epochs;
        fit.batch_size = kWideBatch;
        fit.learning_rate = 0.01;
        fit.report_interval = 0;
        const double t0 = now_s();
        const nn_status s =
            nn_fit(model, x.data(), NN_DTYPE_FLOAT64, kWideRows, 784, t.data(), NN_TARGET_CLASS_INDEX, 1, &fit, nullptr);
        const double t1 = now_s();
        nn_destroy(model);
        if (!ok(s, "nn_fit")) return -1.0;
        if (r >= 0) {
            const double step = (t1 - t0) / double(fit.epochs * (kWideRows / kWideBatch));
            per_step.push_back(step);
            std::printf("wide %s %s run %d ms_per_step %.4f\n", device == NN_DEVICE_CUDA ? "cuda" : "cpu",
                        precision_name(precision), r, 1e3 * step);
        }
    }
    return median(per_step);
}

#define CU(call)                                                                                         \
    do {                                                                                                 \
        cudaError_t e_ = (call);                                                                         \
        if (e_ != cudaSuccess) {                                                                         \
            std::fprintf(stderr, "bench_cuda: %s: %s\n", #call, cudaGetErrorString(e_));                 \
            return -1.0;                                                                                 \
        }                                                                                                \
    } while (0)
#define CB(call)                                                                                         \
    do {                                                                                                 \
        if ((call) != CUBLAS_STATUS_SUCCESS) {                                                           \
            std::fprintf(stderr, "bench_cuda: %s failed\n", #call);                                      \
            return -1.0;                                                                                 \
        }                                                                                                \
    } while (0)

// The eight SGEMMs of one step of the wide MLP, in the plugin's shapes, timed with events:
// median seconds per step over `reps` steps (after warm-up), on random inputs. A reduced
// precision makes them cublasGemmEx with the compute type the plugin uses for it.
double sgemm_step_s(int reps, nn_precision precision = NN_PRECISION_STRICT) {
    const size_t L = 3, B = kWideBatch;
    std::vector<float *> W(L), A(L + 1), D(L + 1), G(L);
    std::mt19937 gen(1);
    std::normal_distribution<float> normal(0.0f, 0.05f);
    auto alloc = [&](float **p, size_t n) -> bool {
        if (cudaMalloc(p, n * sizeof(float)) != cudaSuccess) return false;
        std::vector<float> h(n);
        for (float &v : h) v = normal(gen);
        return cudaMemcpy(*p, h.data(), n * sizeof(float), cudaMemcpyHostToDevice) == cudaSuccess;
    };
    for (size_t l = 0; l <= L; ++l) {
        if (!alloc(&A[l], B * kWideSizes[l]) || !alloc(&D[l], B * kWideSizes[l])) return -1.0;
        if (l < L && (!alloc(&W[l], kWideSizes[l] * kWideSizes[l + 1]) || !alloc(&G[l], kWideSizes[l] * kWideSizes[l + 1])))
            return -1.0;
    }
    cublasHandle_t h;
    CB(cublasCreate(&h));
    CB(cublasSetMathMode(h, CUBLAS_DEFAULT_MATH));
    const float one = 1.0f, zero = 0.0f;
    const cublasComputeType_t type = precision == NN_PRECISION_TF32      ? CUBLAS_COMPUTE_32F_FAST_TF32
                                     : precision == NN_PRECISION_FLOAT16 ? CUBLAS_COMPUTE_32F_FAST_16F
                                                                         : CUBLAS_COMPUTE_32F_FAST_16BF;
    auto gemm = [&](cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, const float *a, int lda,
                    const float *b, int ldb, float *c, int ldc) {
        if (precision == NN_PRECISION_STRICT)
            return cublasSgemm(h, ta, tb, m, n, k, &one, a, lda, b, ldb, &zero, c, ldc) == CUBLAS_STATUS_SUCCESS;
        return cublasGemmEx(h, ta, tb, m, n, k, &one, a, CUDA_R_32F, lda, b, CUDA_R_32F, ldb, &zero, c, CUDA_R_32F, ldc,
                            type, CUBLAS_GEMM_DEFAULT) == CUBLAS_STATUS_SUCCESS;
    };
    auto step = [&]() -> bool {
        for (size_t l = 0; l < L; ++l) {
            const int I = int(kWideSizes[l]), O = int(kWideSizes[l + 1]);
            if (!gemm(CUBLAS_OP_N, CUBLAS_OP_N, O, int(B), I, W[l], O, A[l], I, A[l + 1], O)) return false;
        }
        for (size_t l = L; l-- > 0;) {
            const int I = int(kWideSizes[l]), O = int(kWideSizes[l + 1]);
            if (!gemm(CUBLAS_OP_N, CUBLAS_OP_T, O, I, int(B), D[l + 1], O, A[l], I, G[l], O)) return false;
            if (l > 0 && !gemm(CUBLAS_OP_T, CUBLAS_OP_N, I, int(B), O, W[l], O, D[l + 1], O, D[l], I)) return false;
        }
        return true;
    };
    cudaEvent_t e0, e1;
    CU(cudaEventCreate(&e0));
    CU(cudaEventCreate(&e1));
    for (int i = 0; i < 10; ++i)
        if (!step()) return -1.0;
    std::vector<double> times;
    for (int r = 0; r < reps; ++r) {
        CU(cudaEventRecord(e0));
        for (int i = 0; i < 10; ++i)
            if (!step()) return -1.0;
        CU(cudaEventRecord(e1));
        CU(cudaEventSynchronize(e1));
        float ms = 0;
        CU(cudaEventElapsedTime(&ms, e0, e1));
        times.push_back(double(ms) / 1e3 / 10.0);
    }
    cublasDestroy(h);
    for (size_t l = 0; l <= L; ++l) {
        cudaFree(A[l]);
        cudaFree(D[l]);
        if (l < L) {
            cudaFree(W[l]);
            cudaFree(G[l]);
        }
    }
    return median(times);
}

}  // namespace

int main(int argc, char **argv) {
    int repeat = 5;
    std::string what = "all";
    for (int i = 1; i + 1 < argc; i += 2) {
        if (std::strcmp(argv[i], "--repeat") == 0)
            repeat = std::max(1, std::atoi(argv[i + 1]));
        else if (std::strcmp(argv[i], "--what") == 0)
            what = argv[i + 1];
    }
    std::string why;
    const std::string gpu = cuda_name(why);
    if (gpu.empty()) {
        std::printf("bench_cuda: no CUDA device: %s\n", why.c_str());
        return 2;
    }
    std::printf("# bench_cuda: %s; repeat %d\n", gpu.c_str(), repeat);
    Spiral s32, s64;
    double wide_gpu = -1, wide_cpu = -1, sgemm = -1;
    const nn_precision reduced[] = {NN_PRECISION_TF32, NN_PRECISION_BFLOAT16};
    double wide_reduced[2] = {-1, -1}, gemm_reduced[2] = {-1, -1};
    if (what == "spiral" || what == "all") {
        s32 = bench_spiral(NN_DTYPE_FLOAT32, repeat);
        s64 = bench_spiral(NN_DTYPE_FLOAT64, repeat);
    }
    if (what == "wide" || what == "all") {
        std::vector<double> x(kWideRows * 784);
        std::vector<int32_t> t(kWideRows);
        std::mt19937 gen(5);
        std::normal_distribution<double> normal(0.0, 1.0);
        for (double &v : x) v = normal(gen);
        for (auto &v : t) v = int32_t(gen() % 10);
        sgemm = sgemm_step_s(20);
        wide_gpu = wide_step_s(NN_DEVICE_CUDA, 20, repeat, x, t);
        wide_cpu = wide_step_s(NN_DEVICE_CPU, 1, std::min(repeat, 3), x, t);
        for (int k = 0; k < 2; ++k) {  // on request: tensor cores (nn_set_precision)
            gemm_reduced[k] = sgemm_step_s(20, reduced[k]);
            wide_reduced[k] = wide_step_s(NN_DEVICE_CUDA, 20, repeat, x, t, reduced[k]);
        }
    }
    std::printf("\n# summary (medians) on %s\n", gpu.c_str());
    if (what == "spiral" || what == "all")
        for (const auto &[name, s] : {std::pair<const char *, Spiral>{"float32", s32}, {"float64", s64}})
            std::printf("spiral %s: cpu %.2f ms, cuda fused %.2f ms (gpu/cpu %.2f), cuda graph %.2f ms (gpu/cpu %.2f)"
                        " [bar: gpu/cpu <= 2]\n",
                        name, 1e3 * s.cpu, 1e3 * s.fused, s.fused / s.cpu, 1e3 * s.graph, s.graph / s.cpu);
    if (what == "wide" || what == "all") {
        const double flop = 2.0 * double(kWideBatch) * (784.0 * 1024 + 1024.0 * 1024 + 1024.0 * 10) * 3.0;
        std::printf("wide 784-1024-1024-10 f32 b512: cuda %.3f ms/step (%.1f TFLOP/s), sgemm alone %.3f ms/step "
                    "(%.1f TFLOP/s), libnn/sgemm throughput %.0f%% [bar: >= 60%%]\n",
                    1e3 * wide_gpu, flop / wide_gpu / 1e12, 1e3 * sgemm, flop / sgemm / 1e12, 100.0 * sgemm / wide_gpu);
        std::printf("wide: cpu plugin %.2f ms/step, cuda/cpu speed-up %.1fx [bar: >= 20x]\n", 1e3 * wide_cpu,
                    wide_cpu / wide_gpu);
        for (int k = 0; k < 2; ++k)
            std::printf("wide %s (on request): cuda %.3f ms/step (%.1f TFLOP/s, %.2fx strict), gemm alone %.3f ms/step, "
                        "libnn/gemm throughput %.0f%%\n",
                        precision_name(reduced[k]), 1e3 * wide_reduced[k], flop / wide_reduced[k] / 1e12,
                        wide_gpu / wide_reduced[k], 1e3 * gemm_reduced[k], 100.0 * gemm_reduced[k] / wide_reduced[k]);
    }
    return 0;
}
