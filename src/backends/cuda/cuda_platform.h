// The little of CUDA that libnn-backend-cuda.so uses, in one place, so that the same
// backend source also compiles as plain C++ against a host emulation
// (NN_CUDA_EMULATION, built only for tests/cuda): there, device memory is host memory
// with a fake capacity (poisoned with NaN bytes when allocated, as cudaMalloc promises
// nothing about it), a kernel runs its threads one after another, cuBLAS is a plain
// column-major product, and a captured graph records the launches and replays them with
// the arguments they were captured with. Everything the backend decides — layouts,
// leading dimensions, which buffer a step reads, what a replayed graph sees — is then
// checked on a machine without a GPU; what only a GPU can check (races, launch limits,
// the real cuBLAS) is not.
//
// Kernels are functors whose templated operator() takes an "executor": GridExec (a
// grid-stride loop over all threads of a launch), BlockExec (one block: a block-stride
// loop, __syncthreads and dynamic shared memory) or HostExec (the emulation). Their
// bodies only use ex.for_each(n, f), ex.sync() and ex.shared(). Lambdas given to
// for_each capture by value ([=]), so a body can never write a variable of the enclosing
// function — on a GPU each thread has its own copy, and a value that one phase computes
// for the next must go through memory.
#ifndef NN_BACKENDS_CUDA_CUDA_PLATFORM_H
#define NN_BACKENDS_CUDA_CUDA_PLATFORM_H

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <utility>

#include "nn/nn_backend.h"

#if !defined(NN_CUDA_EMULATION)
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <dlfcn.h>

#include <type_traits>
#define NN_DEV __device__
#else
#include <cmath>
#include <functional>
#include <mutex>
#include <vector>
#define NN_DEV
#endif

namespace nncuda {

// nn.h's nn_precision, as the ABI passes it: how float32 products may be computed.
constexpr uint32_t kPrecisionStrict = 0, kPrecisionTf32 = 1, kPrecisionFloat16 = 2, kPrecisionBfloat16 = 3;

// A failure inside the backend, turned into a status and a sentence at the table's
// boundary (kind is an nn_backend_result).
struct Failure {
    nn_backend_result kind;
    std::string message;
};

[[noreturn]] inline void fail(nn_backend_result kind, std::string message) { throw Failure{kind, std::move(message)}; }

// a·b for sizes, failing as "out of memory" when it does not fit in size_t: such a
// buffer could never be allocated.
inline size_t mul(size_t a, size_t b) {
    if (a != 0 && b > SIZE_MAX / a) fail(NN_BACKEND_ERR_OUT_OF_MEMORY, "cuda backend: a buffer size overflows size_t");
    return a * b;
}
inline size_t add(size_t a, size_t b) {
    if (b > SIZE_MAX - a) fail(NN_BACKEND_ERR_OUT_OF_MEMORY, "cuda backend: a buffer size overflows size_t");
    return a + b;
}

// Index arithmetic in kernels: 32-bit division when both operands fit (a 64-bit division
// is a long instruction sequence on a GPU).
NN_DEV inline size_t div_index(size_t a, size_t b) {
    return ((a | b) >> 32) == 0 ? size_t(uint32_t(a) / uint32_t(b)) : a / b;
}

#if !defined(NN_CUDA_EMULATION)
// ======================================================================================
// The real thing.

using Stream = cudaStream_t;

inline std::string cuda_text(cudaError_t e) {
    return std::string(cudaGetErrorString(e)) + " (" + cudaGetErrorName(e) + ")";
}

// Errors after which the process's CUDA context is unusable: every later call fails too.
inline bool context_lost(cudaError_t e) {
    switch (e) {
    case cudaErrorIllegalAddress:
    case cudaErrorLaunchTimeout:
    case cudaErrorContextIsDestroyed:
    case cudaErrorAssert:
    case cudaErrorHardwareStackError:
    case cudaErrorIllegalInstruction:
    case cudaErrorMisalignedAddress:
    case cudaErrorInvalidAddressSpace:
    case cudaErrorInvalidPc:
    case cudaErrorLaunchFailure: return true;
    default: return false;
    }
}

// Throws for anything but success; a failed allocation is "out of memory", the rest a
// device failure. Clears the runtime's last (non-sticky) error so it does not resurface;
// a sticky one is named as such, since the caller cannot recover from it in this process.
inline void check(cudaError_t e, const char *what) {
    if (e == cudaSuccess) return;
    (void)cudaGetLastError();
    fail(e == cudaErrorMemoryAllocation ? NN_BACKEND_ERR_OUT_OF_MEMORY : NN_BACKEND_ERR_DEVICE,
         std::string("cuda backend: ") + what + ": " + cuda_text(e) +
             (context_lost(e) ? "; the GPU context of this process is lost: no model can use the GPU again until "
                                "the process restarts (models on the CPU are unaffected)"
                              : ""));
}

inline const char *cublas_text(cublasStatus_t s) {
    switch (s) {
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
    case CUBLAS_STATUS_MAPPING_ERROR: return "CUBLAS_STATUS_MAPPING_ERROR";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "CUBLAS_STATUS_INTERNAL_ERROR";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    default: return "cuBLAS error";
    }
}

inline void check_blas(cublasStatus_t s, const char *what) {
    if (s == CUBLAS_STATUS_SUCCESS) return;
    (void)cudaGetLastError();
    fail(s == CUBLAS_STATUS_ALLOC_FAILED ? NN_BACKEND_ERR_OUT_OF_MEMORY : NN_BACKEND_ERR_DEVICE,
         std::string("cuda backend: ") + what + ": " + cublas_text(s));
}

inline void set_device(int index) { check(cudaSetDevice(index), "selecting the device"); }

inline void *device_alloc(size_t bytes, const char *what) {
    if (bytes == 0) return nullptr;
    void *p = nullptr;
    cudaError_t e = cudaMalloc(&p, bytes);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        fail(e == cudaErrorMemoryAllocation ? NN_BACKEND_ERR_OUT_OF_MEMORY : NN_BACKEND_ERR_DEVICE,
             std::string("cuda backend: out of device memory for ") + what + " (" + std::to_string(bytes) +
                 " bytes): " + cuda_text(e));
    }
    return p;
}
inline void device_free(void *p) {
    if (p) (void)cudaFree(p);
}
inline void *pinned_alloc(size_t bytes, const char *what) {
    if (bytes == 0) return nullptr;
    void *p = nullptr;
    cudaError_t e = cudaMallocHost(&p, bytes);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        fail(NN_BACKEND_ERR_OUT_OF_MEMORY, std::string("cuda backend: out of pinned host memory for ") + what + " (" +
                                               std::to_string(bytes) + " bytes): " + cuda_text(e));
    }
    return p;
}
inline void pinned_free(void *p) {
    if (p) (void)cudaFreeHost(p);
}

inline Stream stream_create() {
    cudaStream_t s = nullptr;
    check(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), "creating a stream");
    return s;
}
inline void stream_destroy(Stream s) {
    if (s) (void)cudaStreamDestroy(s);
}
inline void copy_async(void *dst, const void *src, size_t bytes, Stream s) {
    if (bytes) check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDefault, s), "copying");
}
inline void zero_async(void *dst, size_t bytes, Stream s) {
    if (bytes) check(cudaMemsetAsync(dst, 0, bytes, s), "clearing device memory");
}
inline void stream_sync(Stream s) { check(cudaStreamSynchronize(s), "waiting for the device"); }
// Waits for what `s` has queued whatever happened (for a call that failed midway); the
// error, if any, was already reported.
inline void stream_drain(Stream s) noexcept {
    (void)cudaStreamSynchronize(s);
    (void)cudaGetLastError();
}

// ---- launches ------------------------------------------------------------------------

struct GridExec {
    template <class F>
    __device__ void for_each(size_t n, F f) const {
        const size_t stride = size_t(gridDim.x) * blockDim.x;
        for (size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) f(i);
    }
};

struct BlockExec {
    unsigned char *smem;
    template <class F>
    __device__ void for_each(size_t n, F f) const {
        for (size_t i = threadIdx.x; i < n; i += blockDim.x) f(i);
    }
    __device__ void sync() const { __syncthreads(); }
    __device__ unsigned char *shared() const { return smem; }
};

template <class K>
__global__ void grid_entry(K k) {
    k(GridExec{});
}

template <class K>
__global__ void __launch_bounds__(1024) block_entry(K k) {
    extern __shared__ __align__(16) unsigned char nn_smem[];
    k(BlockExec{nn_smem});
}

constexpr unsigned kGridThreads = 256;
constexpr size_t kGridMaxBlocks = 8192;  // a grid-stride loop covers the rest

// A grid kernel over `work` items (the largest for_each of its body).
template <class K>
void launch_grid(Stream s, size_t work, const K &k) {
    size_t blocks = (work + kGridThreads - 1) / kGridThreads;
    blocks = blocks < 1 ? 1 : blocks > kGridMaxBlocks ? kGridMaxBlocks : blocks;
    grid_entry<K><<<unsigned(blocks), kGridThreads, 0, s>>>(k);
    check(cudaGetLastError(), "launching a kernel");
}

// One block of `threads` threads with `smem` bytes of dynamic shared memory. Above 48 KiB
// the kernel's limit is raised to the device's whole opt-in amount, never to `smem`: the
// attribute belongs to the function, so another thread's model could otherwise lower it
// between this raise and this launch.
template <class K>
void launch_block(Stream s, unsigned threads, size_t smem, const K &k) {
    if (smem > 48 * 1024) {
        int device = 0, most = 0;
        check(cudaGetDevice(&device), "reading the current device");
        check(cudaDeviceGetAttribute(&most, cudaDevAttrMaxSharedMemoryPerBlockOptin, device),
              "reading the shared-memory limit");
        check(cudaFuncSetAttribute(block_entry<K>, cudaFuncAttributeMaxDynamicSharedMemorySize, most),
              "raising a kernel's shared-memory limit");
    }
    block_entry<K><<<1, threads, smem, s>>>(k);
    check(cudaGetLastError(), "launching a kernel");
}

// Loads a kernel's module now (CUDA loads kernels lazily, at first launch), so that a
// graph capture does not have to.
template <class K>
void preload_grid() {
    cudaFuncAttributes a{};
    check(cudaFuncGetAttributes(&a, grid_entry<K>), "loading a kernel");
}
template <class K>
void preload_block() {
    cudaFuncAttributes a{};
    check(cudaFuncGetAttributes(&a, block_entry<K>), "loading a kernel");
}

// ---- graphs --------------------------------------------------------------------------

struct Graph {
    cudaGraphExec_t exec = nullptr;
};

inline void capture_begin(Stream s) {
    check(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal), "starting a graph capture");
}
// Ends the capture and instantiates it; on failure the capture is still ended.
inline Graph capture_end(Stream s) {
    cudaGraph_t graph = nullptr;
    check(cudaStreamEndCapture(s, &graph), "capturing a training step");
    Graph g;
    cudaError_t e = cudaGraphInstantiate(&g.exec, graph, 0);
    (void)cudaGraphDestroy(graph);
    check(e, "instantiating the step graph");
    return g;
}
// Abandons a capture after a failure inside it.
inline void capture_abort(Stream s) {
    cudaGraph_t graph = nullptr;
    if (cudaStreamEndCapture(s, &graph) == cudaSuccess && graph) (void)cudaGraphDestroy(graph);
    (void)cudaGetLastError();
}
inline void graph_launch(const Graph &g, Stream s) { check(cudaGraphLaunch(g.exec, s), "replaying the step graph"); }
inline void graph_free(Graph &g) {
    if (g.exec) (void)cudaGraphExecDestroy(g.exec);
    g.exec = nullptr;
}

// ---- cuBLAS --------------------------------------------------------------------------

// cuBLAS is opened with dlopen the first time a model needs it (the graph path, or a
// prediction through a wide layer), not linked: a process that loads the plugin on a
// machine without a GPU — every libnn program, at device discovery — never maps
// libcublas and libcublasLt (over half a gigabyte), and a machine with a GPU but no
// cuBLAS still trains small nets on the fused path.
#ifndef NN_CUDA_CUBLAS_DIR
#define NN_CUDA_CUBLAS_DIR ""
#endif

struct CublasApi {
    decltype(&cublasCreate_v2) create = nullptr;
    decltype(&cublasDestroy_v2) destroy = nullptr;
    decltype(&cublasSetStream_v2) set_stream = nullptr;
    decltype(&cublasSetMathMode) set_math_mode = nullptr;
    decltype(&cublasSetWorkspace_v2) set_workspace = nullptr;
    decltype(&cublasSetPointerMode_v2) set_pointer_mode = nullptr;
    decltype(&cublasSgemm_v2) sgemm = nullptr;
    decltype(&cublasDgemm_v2) dgemm = nullptr;
    decltype(&cublasSgemv_v2) sgemv = nullptr;
    decltype(&cublasDgemv_v2) dgemv = nullptr;
    // cublasGemmEx's C entry (the header overloads the name in C++).
    cublasStatus_t (*gemm_ex)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int, const void *,
                              const void *, cudaDataType, int, const void *, cudaDataType, int, const void *, void *,
                              cudaDataType, int, cublasComputeType_t, cublasGemmAlgo_t) = nullptr;
    std::string error;  // why it could not be loaded, or ""
};

inline CublasApi load_cublas() {
    CublasApi api;
    const std::string soname = "libcublas.so." + std::to_string(CUBLAS_VER_MAJOR);
    // The plugin's RUNPATH (the toolkit it was built with) and the system's paths, then
    // that toolkit's directory by absolute path.
    void *h = dlopen(soname.c_str(), RTLD_NOW | RTLD_LOCAL);
    std::string why = h ? "" : std::string(dlerror());
    if (!h && *NN_CUDA_CUBLAS_DIR) {
        h = dlopen((std::string(NN_CUDA_CUBLAS_DIR) + "/" + soname).c_str(), RTLD_NOW | RTLD_LOCAL);
        if (!h) (void)dlerror();
    }
    if (!h) {
        api.error = "cuBLAS could not be loaded (" + why + ")";
        return api;
    }
    bool all = true;
    const auto sym = [&](auto &fn, const char *name) {
        fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(dlsym(h, name));
        if (!fn) all = false;
    };
    sym(api.create, "cublasCreate_v2");
    sym(api.destroy, "cublasDestroy_v2");
    sym(api.set_stream, "cublasSetStream_v2");
    sym(api.set_math_mode, "cublasSetMathMode");
    sym(api.set_workspace, "cublasSetWorkspace_v2");
    sym(api.set_pointer_mode, "cublasSetPointerMode_v2");
    sym(api.sgemm, "cublasSgemm_v2");
    sym(api.dgemm, "cublasDgemm_v2");
    sym(api.sgemv, "cublasSgemv_v2");
    sym(api.dgemv, "cublasDgemv_v2");
    sym(api.gemm_ex, "cublasGemmEx");
    if (!all) api.error = soname + " lacks a function this plugin uses (an older cuBLAS?)";
    return api;  // the library stays loaded for the life of the process
}

inline const CublasApi &cublas() {
    static const CublasApi api = load_cublas();
    return api;
}

struct Blas {
    cublasHandle_t handle = nullptr;
    void *workspace = nullptr;
    uint32_t precision = kPrecisionStrict;  // of the float32 products
};

constexpr size_t kBlasWorkspace = size_t(32) << 20;  // Hopper's recommended 32 MiB

// Whether cuBLAS can be had (loading it the first time).
inline bool blas_available(std::string *why = nullptr) {
    const CublasApi &api = cublas();
    if (why) *why = api.error;
    return api.error.empty();
}

// A handle bound to `s`, strict float32/float64 (no TF32: CUBLAS_DEFAULT_MATH; a reduced
// precision the caller asked for is a compute type of the float32 products), with its
// own workspace so that a graph capture never makes cuBLAS allocate.
inline Blas blas_create(Stream s) {
    const CublasApi &api = cublas();
    if (!api.error.empty())
        fail(NN_BACKEND_ERR_UNSUPPORTED, "cuda backend: this net needs cuBLAS, and " + api.error);
    Blas b;
    b.workspace = device_alloc(kBlasWorkspace, "the cuBLAS workspace");
    cublasStatus_t st = api.create(&b.handle);
    if (st != CUBLAS_STATUS_SUCCESS) {
        device_free(b.workspace);
        check_blas(st, "creating a cuBLAS handle");
    }
    st = api.set_stream(b.handle, s);
    if (st == CUBLAS_STATUS_SUCCESS) st = api.set_math_mode(b.handle, CUBLAS_DEFAULT_MATH);
    if (st == CUBLAS_STATUS_SUCCESS) st = api.set_workspace(b.handle, b.workspace, kBlasWorkspace);
    if (st == CUBLAS_STATUS_SUCCESS) st = api.set_pointer_mode(b.handle, CUBLAS_POINTER_MODE_HOST);
    if (st != CUBLAS_STATUS_SUCCESS) {
        (void)api.destroy(b.handle);
        device_free(b.workspace);
        check_blas(st, "setting up cuBLAS");
    }
    return b;
}
inline void blas_destroy(Blas &b) {
    if (b.handle) (void)cublas().destroy(b.handle);
    device_free(b.workspace);
    b = Blas{};
}

// C (m×n) = op(A) · op(B), column-major, as cublas<t>gemm with α = 1, β = 0. float32
// products in a reduced precision go through cublasGemmEx with float32 buffers and a
// compute type that lets cuBLAS round the inputs to that format on tensor cores.
inline void gemm(const Blas &b, Stream, bool ta, bool tb, int m, int n, int k, const float *A, int lda, const float *B,
                 int ldb, float *C, int ldc) {
    const float one = 1.0f, zero = 0.0f;
    const cublasOperation_t opa = ta ? CUBLAS_OP_T : CUBLAS_OP_N, opb = tb ? CUBLAS_OP_T : CUBLAS_OP_N;
    if (b.precision == kPrecisionStrict) {
        check_blas(cublas().sgemm(b.handle, opa, opb, m, n, k, &one, A, lda, B, ldb, &zero, C, ldc),
                   "a float32 matrix product");
        return;
    }
    const cublasComputeType_t type = b.precision == kPrecisionTf32      ? CUBLAS_COMPUTE_32F_FAST_TF32
                                     : b.precision == kPrecisionFloat16 ? CUBLAS_COMPUTE_32F_FAST_16F
                                                                        : CUBLAS_COMPUTE_32F_FAST_16BF;
    check_blas(cublas().gemm_ex(b.handle, opa, opb, m, n, k, &one, A, CUDA_R_32F, lda, B, CUDA_R_32F, ldb, &zero, C,
                                CUDA_R_32F, ldc, type, CUBLAS_GEMM_DEFAULT),
               "a float32 matrix product in reduced precision");
}
inline void gemm(const Blas &b, Stream, bool ta, bool tb, int m, int n, int k, const double *A, int lda,
                 const double *B, int ldb, double *C, int ldc) {
    const double one = 1.0, zero = 0.0;
    check_blas(cublas().dgemm(b.handle, ta ? CUBLAS_OP_T : CUBLAS_OP_N, tb ? CUBLAS_OP_T : CUBLAS_OP_N, m, n, k, &one, A,
                              lda, B, ldb, &zero, C, ldc),
               "a float64 matrix product");
}
// y (m) = A (m×n, column-major) · x, as cublas<t>gemv with α = 1, β = 0.
inline void gemv(const Blas &b, Stream, int m, int n, const float *A, int lda, const float *x, float *y) {
    const float one = 1.0f, zero = 0.0f;
    check_blas(cublas().sgemv(b.handle, CUBLAS_OP_N, m, n, &one, A, lda, x, 1, &zero, y, 1), "a float32 bias gradient");
}
inline void gemv(const Blas &b, Stream, int m, int n, const double *A, int lda, const double *x, double *y) {
    const double one = 1.0, zero = 0.0;
    check_blas(cublas().dgemv(b.handle, CUBLAS_OP_N, m, n, &one, A, lda, x, 1, &zero, y, 1), "a float64 bias gradient");
}

#else
// ======================================================================================
// The host emulation (tests only).

struct EmuStream {};
using Stream = EmuStream *;

// Emulated device memory: NN_CUDA_EMU_MEMORY bytes (default 4 GiB) that allocations count
// against, so that "out of device memory" can be provoked without a GPU.
struct EmuMemory {
    std::mutex mutex;
    size_t used = 0;
    size_t capacity() const {
        const char *env = std::getenv("NN_CUDA_EMU_MEMORY");
        return env && *env ? size_t(std::strtoull(env, nullptr, 10)) : size_t(4) << 30;
    }
    static EmuMemory &get() {
        static EmuMemory m;
        return m;
    }
};

// While a graph is captured on this thread, launches, copies and products are recorded
// here instead of run.
inline std::vector<std::function<void()>> *&emu_recording() {
    thread_local std::vector<std::function<void()>> *rec = nullptr;
    return rec;
}
template <class F>
void emu_run(F &&f) {
    if (auto *rec = emu_recording())
        rec->push_back(std::forward<F>(f));
    else
        f();
}

inline void set_device(int index) {
    if (index != 0) fail(NN_BACKEND_ERR_INVALID, "cuda backend (emulation): only device 0 exists");
}

inline void *device_alloc(size_t bytes, const char *what) {
    if (bytes == 0) return nullptr;
    EmuMemory &m = EmuMemory::get();
    {
        std::lock_guard<std::mutex> lock(m.mutex);
        if (bytes > m.capacity() || m.used > m.capacity() - bytes)
            fail(NN_BACKEND_ERR_OUT_OF_MEMORY, std::string("cuda backend: out of device memory for ") + what + " (" +
                                                   std::to_string(bytes) +
                                                   " bytes): out of memory (cudaErrorMemoryAllocation, emulated)");
        m.used += bytes;
    }
    // A header keeps the size; the payload starts 16-aligned. Poisoned with 0xff bytes:
    // NaN as float or double, -1 as an integer.
    unsigned char *raw = static_cast<unsigned char *>(std::malloc(bytes + 16));
    if (!raw) {
        std::lock_guard<std::mutex> lock(m.mutex);
        m.used -= bytes;
        fail(NN_BACKEND_ERR_OUT_OF_MEMORY, std::string("cuda backend: host memory for emulated ") + what);
    }
    std::memcpy(raw, &bytes, sizeof bytes);
    std::memset(raw + 16, 0xff, bytes);
    return raw + 16;
}
inline void device_free(void *p) {
    if (!p) return;
    unsigned char *raw = static_cast<unsigned char *>(p) - 16;
    size_t bytes;
    std::memcpy(&bytes, raw, sizeof bytes);
    EmuMemory &m = EmuMemory::get();
    {
        std::lock_guard<std::mutex> lock(m.mutex);
        m.used -= bytes;
    }
    std::free(raw);
}
inline void *pinned_alloc(size_t bytes, const char *what) {
    if (bytes == 0) return nullptr;
    void *p = std::malloc(bytes);
    if (!p) fail(NN_BACKEND_ERR_OUT_OF_MEMORY, std::string("cuda backend: out of host memory for ") + what);
    std::memset(p, 0xff, bytes);
    return p;
}
inline void pinned_free(void *p) { std::free(p); }

inline Stream stream_create() { return new EmuStream; }
inline void stream_destroy(Stream s) { delete s; }
inline void copy_async(void *dst, const void *src, size_t bytes, Stream) {
    if (bytes) emu_run([=] { std::memmove(dst, src, bytes); });
}
inline void zero_async(void *dst, size_t bytes, Stream) {
    if (bytes) emu_run([=] { std::memset(dst, 0, bytes); });
}
// Waits for the device, counted so that a test can check how often the backend waits
// (tests/cuda: a fit of the book's 300 epochs waits once, not once per epoch).
inline std::atomic<uint64_t> &emu_waits() {
    static std::atomic<uint64_t> n{0};
    return n;
}
inline void stream_sync(Stream) { ++emu_waits(); }
inline void stream_drain(Stream) noexcept {}

struct HostExec {
    unsigned char *smem;
    template <class F>
    void for_each(size_t n, F f) const {
        for (size_t i = 0; i < n; ++i) f(i);
    }
    void sync() const {}
    unsigned char *shared() const { return smem; }
};

template <class K>
void launch_grid(Stream, size_t, const K &k) {
    emu_run([k] { k(HostExec{nullptr}); });
}
template <class K>
void launch_block(Stream, unsigned threads, size_t smem, const K &k) {
    if (threads == 0 || threads > 1024) fail(NN_BACKEND_ERR_INVALID, "cuda backend (emulation): bad block size");
    if (smem > 227 * 1024) fail(NN_BACKEND_ERR_INVALID, "cuda backend (emulation): shared memory over 227 KiB");
    emu_run([k, smem] {
        std::vector<double> buf(smem / sizeof(double) + 1);
        std::memset(buf.data(), 0xff, buf.size() * sizeof(double));  // poisoned, as real shared memory is garbage
        k(HostExec{reinterpret_cast<unsigned char *>(buf.data())});
    });
}

template <class K>
void preload_grid() {}
template <class K>
void preload_block() {}

struct Graph {
    std::shared_ptr<std::vector<std::function<void()>>> ops;
};
inline void capture_begin(Stream) {
    if (emu_recording()) fail(NN_BACKEND_ERR_INVALID, "cuda backend (emulation): nested capture");
    emu_recording() = new std::vector<std::function<void()>>;
}
inline Graph capture_end(Stream) {
    Graph g;
    g.ops.reset(emu_recording());
    emu_recording() = nullptr;
    return g;
}
inline void capture_abort(Stream) {
    delete emu_recording();
    emu_recording() = nullptr;
}
inline void graph_launch(const Graph &g, Stream) {
    if (!g.ops) fail(NN_BACKEND_ERR_INVALID, "cuda backend (emulation): no graph");
    for (auto &op : *g.ops) op();
}
inline void graph_free(Graph &g) { g.ops.reset(); }

struct Blas {
    void *handle = nullptr;
    void *workspace = nullptr;
    uint32_t precision = kPrecisionStrict;  // of the float32 products
};
constexpr size_t kBlasWorkspace = size_t(32) << 20;
inline bool blas_available(std::string *why = nullptr) {
    if (why) why->clear();
    return true;
}
inline Blas blas_create(Stream) {
    Blas b;
    b.workspace = device_alloc(kBlasWorkspace, "the cuBLAS workspace");
    b.handle = b.workspace;
    return b;
}
inline void blas_destroy(Blas &b) {
    device_free(b.workspace);
    b = Blas{};
}

// A float32 input of a reduced-precision product, approximately as the tensor cores see it
// (cuBLAS does not specify its conversion; it may round differently or flush subnormals):
// rounded to nearest, ties to even, with `fraction` fraction bits; float16 also to its
// range (subnormals below 2^-14, infinity from 65520 on).
inline float emu_round_fraction(float v, int fraction) {
    uint32_t u;
    std::memcpy(&u, &v, sizeof u);
    if ((u & 0x7f800000u) == 0x7f800000u) return v;  // infinity, NaN
    const int drop = 23 - fraction;
    u = (u + ((1u << (drop - 1)) - 1u) + ((u >> drop) & 1u)) & ~((1u << drop) - 1u);
    std::memcpy(&v, &u, sizeof v);
    return v;
}
inline float emu_reduce(float v, uint32_t precision) {
    switch (precision) {
    case kPrecisionTf32: return emu_round_fraction(v, 10);
    case kPrecisionBfloat16: return emu_round_fraction(v, 7);
    case kPrecisionFloat16: {
        if (std::fabs(v) < 0x1p-14f) return std::nearbyint(v * 0x1p24f) * 0x1p-24f;  // subnormal steps of 2^-24
        const float r = emu_round_fraction(v, 10);
        return std::fabs(r) >= 65536.0f ? std::copysign(INFINITY, r) : r;
    }
    default: return v;
    }
}
inline double emu_reduce(double v, uint32_t) { return v; }  // float64 products are always strict

// cuBLAS's column-major semantics, spelled out: element (r, c) of a matrix with leading
// dimension ld is at r + c·ld; op T reads the stored matrix transposed. Arguments that
// cuBLAS would reject are rejected. A reduced precision rounds each input as above and
// sums in float32.
template <typename T>
void gemm(const Blas &b, Stream, bool ta, bool tb, int m, int n, int k, const T *A, int lda, const T *B, int ldb, T *C,
          int ldc) {
    if (!b.handle) fail(NN_BACKEND_ERR_INVALID, "cuda backend (emulation): gemm without a handle");
    if (m < 0 || n < 0 || k < 0 || lda < (ta ? k : m) || lda < 1 || ldb < (tb ? n : k) || ldb < 1 || ldc < m || ldc < 1)
        fail(NN_BACKEND_ERR_DEVICE, "cuda backend: a float matrix product: CUBLAS_STATUS_INVALID_VALUE (emulated)");
    const uint32_t precision = b.precision;
    emu_run([=] {
        for (int c = 0; c < n; ++c)
            for (int r = 0; r < m; ++r) {
                T acc = T(0);
                for (int p = 0; p < k; ++p) {
                    const T a = emu_reduce(ta ? A[p + size_t(r) * lda] : A[r + size_t(p) * lda], precision);
                    const T bb = emu_reduce(tb ? B[c + size_t(p) * ldb] : B[p + size_t(c) * ldb], precision);
                    acc += a * bb;
                }
                C[r + size_t(c) * ldc] = acc;
            }
    });
}
template <typename T>
void gemv(const Blas &b, Stream, int m, int n, const T *A, int lda, const T *x, T *y) {
    if (!b.handle) fail(NN_BACKEND_ERR_INVALID, "cuda backend (emulation): gemv without a handle");
    if (m < 0 || n < 0 || lda < m || lda < 1)
        fail(NN_BACKEND_ERR_DEVICE, "cuda backend: a bias gradient: CUBLAS_STATUS_INVALID_VALUE (emulated)");
    emu_run([=] {
        for (int r = 0; r < m; ++r) {
            T acc = T(0);
            for (int c = 0; c < n; ++c) acc += A[r + size_t(c) * lda] * x[c];
            y[r] = acc;
        }
    });
}
#endif

// ---- owning buffers ------------------------------------------------------------------

// Device memory, freed with its owner; move-only, so that a set of new buffers can be
// made first and swapped in only when all of them exist.
template <typename T>
class DeviceBuffer {
public:
    DeviceBuffer() = default;
    DeviceBuffer(size_t count, const char *what) : count_(count) {
        p_ = static_cast<T *>(device_alloc(mul(count, sizeof(T)), what));
    }
    DeviceBuffer(DeviceBuffer &&o) noexcept : p_(o.p_), count_(o.count_) {
        o.p_ = nullptr;
        o.count_ = 0;
    }
    DeviceBuffer &operator=(DeviceBuffer &&o) noexcept {
        if (this != &o) {
            device_free(p_);
            p_ = o.p_;
            count_ = o.count_;
            o.p_ = nullptr;
            o.count_ = 0;
        }
        return *this;
    }
    DeviceBuffer(const DeviceBuffer &) = delete;
    DeviceBuffer &operator=(const DeviceBuffer &) = delete;
    ~DeviceBuffer() { device_free(p_); }
    T *get() const { return p_; }
    size_t size() const { return count_; }
    size_t bytes() const { return count_ * sizeof(T); }

private:
    T *p_ = nullptr;
    size_t count_ = 0;
};

// Page-locked host memory (what an asynchronous copy needs), likewise.
template <typename T>
class PinnedBuffer {
public:
    PinnedBuffer() = default;
    PinnedBuffer(size_t count, const char *what) : count_(count) {
        p_ = static_cast<T *>(pinned_alloc(mul(count, sizeof(T)), what));
    }
    PinnedBuffer(PinnedBuffer &&o) noexcept : p_(o.p_), count_(o.count_) {
        o.p_ = nullptr;
        o.count_ = 0;
    }
    PinnedBuffer &operator=(PinnedBuffer &&o) noexcept {
        if (this != &o) {
            pinned_free(p_);
            p_ = o.p_;
            count_ = o.count_;
            o.p_ = nullptr;
            o.count_ = 0;
        }
        return *this;
    }
    PinnedBuffer(const PinnedBuffer &) = delete;
    PinnedBuffer &operator=(const PinnedBuffer &) = delete;
    ~PinnedBuffer() { pinned_free(p_); }
    T *get() const { return p_; }
    size_t size() const { return count_; }

private:
    T *p_ = nullptr;
    size_t count_ = 0;
};

}  // namespace nncuda

#endif  // NN_BACKENDS_CUDA_CUDA_PLATFORM_H
