/*
 * libnn — an embeddable neural-network library with a C ABI.
 *
 * This header is the specification of the public API: what it does not declare
 * is not API. It is plain C99 without varargs, so FFI tools (ctypes, cffi, koffi)
 * can read it.
 *
 * Conventions that hold for every function below:
 * - Every fallible call returns an ::nn_status. ::NN_OK is 0; all other codes are
 *   stable and never renumbered. On failure ::nn_last_error_message gives a
 *   thread-local sentence that says what was wrong, and every object passed in is
 *   left exactly as it was before the call.
 * - The library never prints, never exits and never aborts because of something a
 *   caller did. No C++ exception crosses this boundary. Any call that allocates may
 *   return ::NN_ERR_OUT_OF_MEMORY, leaving everything as it was.
 * - A count of caller elements whose bytes could not fit in an address space (more than
 *   PTRDIFF_MAX bytes) gets ::NN_ERR_SIZE_OVERFLOW before any memory is touched.
 * - Output parameters are named `out…`. Constructors (`nn_*_create`) write a new
 *   handle to `*out`; `nn_*_destroy(NULL)` is a no-op.
 * - The library keeps no caller pointer after a call returns and never hands out
 *   memory the caller must free; results are written into caller buffers whose
 *   capacity (in elements) is passed beside them.
 * - Option and result structs start with `struct_size`; fill them with their `_init`
 *   function and change the fields you need. Fields are only ever appended: a library
 *   accepts its own sizes and those of every earlier release (0.2 accepts 0.1's
 *   ::nn_fit_options and ::nn_fit_report, whose fields end before `optimizer` and
 *   `stopped_early`; the fields they lack take their defaults or are not written). An
 *   `_init` function fills the struct of the library's own version, so a program must be
 *   compiled against the header of the library it runs with, or a newer one (an FFI
 *   caller that lays out an older struct itself should fill it without `_init`).
 * - Threads: different handles may be used from different threads at the same time.
 *   On one handle, each function says what it allows: a *reader* of a model may run
 *   beside other readers of the same model; a *writer* needs the model alone. A call that
 *   breaks this — from another thread, or from inside the model's own progress callback —
 *   is detected and gets ::NN_ERR_BUSY, with nothing changed; only destroying a handle
 *   while it is in use cannot be detected.
 * - Matrices are dense and row-major: element (r, c) of an R×C matrix is at r*C + c.
 */
#ifndef NN_NN_H
#define NN_NN_H

#include <stddef.h>
#include <stdint.h>

#if defined(_WIN32)
#  if defined(NN_BUILDING_LIBRARY)
#    define NN_API __declspec(dllexport)
#  else
#    define NN_API __declspec(dllimport)
#  endif
#else
#  define NN_API __attribute__((visibility("default")))
#endif

#ifdef __cplusplus
extern "C" {
#endif

/** @name Versions
 *  Compile-time version of this header. Compare with ::nn_version at run time to
 *  catch a header/library mismatch. The shared library's SONAME carries the major.
 *  @{ */
#define NN_VERSION_MAJOR 0
#define NN_VERSION_MINOR 2
#define NN_VERSION_PATCH 0
/** The version as one integer, major*10000 + minor*100 + patch. */
#define NN_VERSION_NUMBER (NN_VERSION_MAJOR * 10000 + NN_VERSION_MINOR * 100 + NN_VERSION_PATCH)
/** @} */

/** Status of a call. Codes are stable: new ones are appended, none is renumbered. */
typedef enum nn_status {
    NN_OK = 0,                      /**< Success. */
    NN_ERR_NULL_POINTER = 1,        /**< A required pointer argument was NULL. */
    NN_ERR_INVALID_ARGUMENT = 2,    /**< An enum value or count is not one the library knows, or is zero where it may not be. */
    NN_ERR_STRUCT_SIZE = 3,         /**< An option struct's `struct_size` is not one this library understands (was it filled by its `_init`?). */
    NN_ERR_SIZE_OVERFLOW = 4,       /**< Sizes whose product does not fit in memory arithmetic. */
    NN_ERR_SHAPE_MISMATCH = 5,      /**< A matrix has the wrong number of columns or a buffer the wrong number of elements. */
    NN_ERR_LABEL_OUT_OF_RANGE = 6,  /**< A class index is negative or not below the number of outputs. */
    NN_ERR_NON_FINITE = 7,          /**< Input data, targets or parameters contain NaN or infinity, or a value the model's dtype cannot hold (1e300 in a float32 model). */
    NN_ERR_BAD_HYPERPARAMETER = 8,  /**< A training option is out of range (non-positive batch size or learning rate, …). */
    NN_ERR_BUFFER_TOO_SMALL = 9,    /**< An output buffer's capacity is below what the result needs. */
    NN_ERR_OUT_OF_MEMORY = 10,      /**< An allocation failed; nothing was changed. */
    NN_ERR_DEVICE_UNAVAILABLE = 11, /**< The requested device cannot be used; the message says why. */
    NN_ERR_BACKEND = 12,            /**< A backend plugin failed while running; the model keeps its last good state. */
    NN_ERR_UNSUPPORTED = 13,        /**< The request is valid but this model or build does not support it. */
    NN_ERR_INTERNAL = 14,            /**< A bug in libnn; please report the message. */
    NN_ERR_IO = 15,                  /**< A file could not be opened, read, written, flushed or renamed; the message has the system's reason. Nothing was changed. */
    NN_ERR_CORRUPT = 16,             /**< Bytes that are not a valid libnn model: wrong magic, truncated, checksum mismatch, impossible sizes, non-finite parameters. */
    NN_ERR_VERSION = 17,             /**< A model file of a format version newer than this library reads. */
    NN_ERR_CANCELLED = 18,           /**< The progress callback asked ::nn_fit to stop. Unlike other failures, the training done before is kept: the model holds the weights of the last completed step and its histories up to it. */
    NN_ERR_DIVERGED = 19,            /**< Training produced a non-finite loss (too large a learning rate). ::nn_fit stopped before that step's update: the model keeps the weights the step started from and its histories up to the step before. */
    NN_ERR_BUSY = 20,                /**< The model or stream is in use by another call right now (another thread, or the model's own progress callback); nothing was done. */
    NN_ERR_COMM = 21,                /**< Multi-process training is unavailable (not launched under mpirun, no libnn-comm-mpi.so or its MPI library) or failed (a peer process failed or timed out, or the processes disagree); the message says which. A fit that fails during training keeps its completed steps, as with ::NN_ERR_CANCELLED. */
    NN_STATUS_FORCE_INT32_ = -2147483647 - 1 /**< Not a value: makes the type a signed 32-bit int, so any int a caller passes is representable and gets a status. */
} nn_status;

/** Element type of a model's parameters and computation, or of a caller buffer. */
typedef enum nn_dtype {
    NN_DTYPE_FLOAT32 = 0, /**< IEEE binary32 (`float`): the default compute type. */
    NN_DTYPE_FLOAT64 = 1,  /**< IEEE binary64 (`double`): what the book's chapter 1 trains in. */
    NN_DTYPE_FLOAT16 = 2,  /**< IEEE binary16: a storage type for saved parameters only (::nn_save_options), as the book's `save_params`; not a compute or buffer type. */
    NN_DTYPE_MODEL = 3,    /**< Only as ::nn_save_options::storage: the model's own dtype (lossless; the default). */
    NN_DTYPE_FORCE_INT32_ = -2147483647 - 1 /**< Not a value: makes the type a signed 32-bit int, so any int a caller passes is representable and gets a status. */
} nn_dtype;

/** Activation applied after every hidden affine layer. */
typedef enum nn_activation {
    NN_ACTIVATION_SIGMOID = 0,  /**< 1 / (1 + exp(-x)), the book's choice. */
    NN_ACTIVATION_RELU = 1,     /**< max(0, x). */
    NN_ACTIVATION_TANH = 2,     /**< tanh(x). */
    NN_ACTIVATION_IDENTITY = 3,  /**< x (a linear hidden layer). */
    NN_ACTIVATION_FORCE_INT32_ = -2147483647 - 1 /**< Not a value: makes the type a signed 32-bit int, so any int a caller passes is representable and gets a status. */
} nn_activation;

/** Loss at the output layer. */
typedef enum nn_loss {
    /** Softmax then cross-entropy −Σ log(p[true class] + 1e-7) / batch, as the book's SoftmaxWithLoss. */
    NN_LOSS_SOFTMAX_CROSS_ENTROPY = 0,
    /** Mean squared error for regression: Σ_rows ½ Σ_cols (y − t)² / batch. Class-index
     *  targets are taken as one-hot rows. */
    NN_LOSS_MEAN_SQUARED_ERROR = 1,
    NN_LOSS_FORCE_INT32_ = -2147483647 - 1 /**< Not a value: makes the type a signed 32-bit int, so any int a caller passes is representable and gets a status. */
} nn_loss;

/** How initial weights are drawn (biases always start at zero). fan_in is a layer's input size. */
typedef enum nn_init {
    NN_INIT_NORMAL = 0, /**< `init_std` × N(0, 1): the book's `0.01 * randn` with the default init_std. */
    NN_INIT_XAVIER = 1, /**< N(0, 1) / sqrt(fan_in), as the book's later chapters. */
    NN_INIT_HE = 2,      /**< N(0, 1) × sqrt(2 / fan_in). */
    NN_INIT_FORCE_INT32_ = -2147483647 - 1 /**< Not a value: makes the type a signed 32-bit int, so any int a caller passes is representable and gets a status. */
} nn_init;

/** Kinds of compute device. */
typedef enum nn_device_kind {
    NN_DEVICE_CPU = 0,       /**< The CPU through the OpenBLAS plugin `libnn-backend-cpu.so`. */
    NN_DEVICE_CUDA = 1,      /**< An NVIDIA GPU through `libnn-backend-cuda.so`; `index` picks the GPU. */
    NN_DEVICE_REFERENCE = 2, /**< The plain reference implementation built into libnn: always available, slow. */
    NN_DEVICE_AUTO = 3,       /**< The best available: CUDA device 0, else the CPU plugin, else the reference. */
    NN_DEVICE_FORCE_INT32_ = -2147483647 - 1 /**< Not a value: makes the type a signed 32-bit int, so any int a caller passes is representable and gets a status. */
} nn_device_kind;

/** How a float32 model's matrix products may be computed. A permission, not a demand: a
 *  backend without such hardware (the CPU plugin, the reference, a GPU older than the
 *  mode needs) computes them in float32 as always. Every other operation (activations,
 *  losses, optimizer updates, sums over a batch) stays in the model's dtype. */
typedef enum nn_precision {
    NN_PRECISION_STRICT = 0,   /**< Every product in the model's dtype: the default, and the only choice for float64 models. */
    NN_PRECISION_TF32 = 1,     /**< The products' inputs may be rounded to TF32 (float32's range, 10 fraction bits) on tensor cores, sums kept in float32. About 1e-3 relative per product. */
    NN_PRECISION_FLOAT16 = 2,  /**< Inputs may be rounded to IEEE float16 (10 fraction bits, sums in float32), whose range is narrow: magnitudes from 65520 on become infinity, and below 2^-14 lose bits (below 2^-25, zero). No loss scaling is applied, and the backward pass's deltas (divided by the batch) can be that small: prefer ::NN_PRECISION_BFLOAT16 for training. */
    NN_PRECISION_BFLOAT16 = 3, /**< Inputs may be rounded to bfloat16 (float32's range, 7 fraction bits), sums in float32. */
    NN_PRECISION_FORCE_INT32_ = -2147483647 - 1 /**< Not a value: makes the type a signed 32-bit int, so any int a caller passes is representable and gets a status. */
} nn_precision;

/** How training targets are given to ::nn_fit and ::nn_evaluate. */
typedef enum nn_target_type {
    NN_TARGET_CLASS_INDEX = 0,  /**< `const int32_t[rows]`: one class index per row; `target_cols` must be 1. */
    NN_TARGET_ROWS_FLOAT32 = 1, /**< `const float[rows × outputs]`: one-hot or real-valued rows. */
    NN_TARGET_ROWS_FLOAT64 = 2,  /**< `const double[rows × outputs]`: one-hot or real-valued rows. */
    NN_TARGET_FORCE_INT32_ = -2147483647 - 1 /**< Not a value: makes the type a signed 32-bit int, so any int a caller passes is representable and gets a status. */
} nn_target_type;

/** What ::nn_predict writes. */
typedef enum nn_output {
    NN_OUTPUT_SCORES = 0,       /**< The last affine layer's raw output (the book's `predict`). */
    NN_OUTPUT_PROBABILITIES = 1, /**< Softmax of the scores (softmax cross-entropy models only). */
    NN_OUTPUT_FORCE_INT32_ = -2147483647 - 1 /**< Not a value: makes the type a signed 32-bit int, so any int a caller passes is representable and gets a status. */
} nn_output;

/** Update rule of ::nn_fit, as the book's `common/optimizer.py` (BOOK-CH01.md §5), with
 *  `p` a parameter, `g` its gradient and `eps` ::nn_fit_options::epsilon (the book's 1e-7).
 *  State starts at zero and lives beside the parameters, on their device. */
typedef enum nn_optimizer {
    NN_OPTIMIZER_SGD = 0,      /**< `p -= lr·g`. */
    NN_OPTIMIZER_MOMENTUM = 1, /**< `v = momentum·v − lr·g; p += v`. */
    NN_OPTIMIZER_NESTEROV = 2, /**< `v *= m; v −= lr·g; p += m·m·v; p −= (1 + m)·lr·g`, m the momentum. */
    NN_OPTIMIZER_ADAGRAD = 3,  /**< `h += g·g; p −= lr·g / (sqrt(h) + eps)`. */
    NN_OPTIMIZER_RMSPROP = 4,  /**< `h *= d; h += (1 − d)·g·g; p −= lr·g / (sqrt(h) + eps)`, d the decay rate. */
    /** Per step t (counted over the model's life): `lr_t = lr·sqrt(1 − β2^t) / (1 − β1^t)`;
     *  `m += (1 − β1)(g − m); v += (1 − β2)(g² − v); p −= lr_t·m / (sqrt(v) + eps)`: the
     *  book's form, with the bias correction folded into the step size. */
    NN_OPTIMIZER_ADAM = 5,
    NN_OPTIMIZER_FORCE_INT32_ = -2147483647 - 1 /**< Not a value: makes the type a signed 32-bit int, so any int a caller passes is representable and gets a status. */
} nn_optimizer;

/** How ::nn_fit spreads its work over processes. */
typedef enum nn_parallel {
    NN_PARALLEL_NONE = 0, /**< One process (unless the environment variable `NN_PARALLEL=mpi` asks for MPI). */
    /** Data-parallel over the processes of an MPI job (`mpirun -n P program`), through the
     *  plugin `libnn-comm-mpi.so`: every process calls ::nn_fit on its copy of the model;
     *  each step's global batch is split into P slices, one per process, their gradients
     *  are summed with one all-reduce, and every process applies the same update, so the
     *  models stay identical. */
    NN_PARALLEL_MPI = 1,
    NN_PARALLEL_FORCE_INT32_ = -2147483647 - 1 /**< Not a value: makes the type a signed 32-bit int. */
} nn_parallel;

/** Why the progress callback is being called. */
typedef enum nn_progress_event {
    NN_PROGRESS_REPORT = 0,    /**< A loss record was just taken (every `report_interval` steps). */
    NN_PROGRESS_EPOCH_END = 1, /**< An epoch ended (after its validation, when there is one). */
    NN_PROGRESS_FORCE_INT32_ = -2147483647 - 1 /**< Not a value: makes the type a signed 32-bit int. */
} nn_progress_event;

/** Opaque model handle. */
typedef struct nn_model nn_model;

/** Opaque random stream: NumPy's legacy `RandomState` (MT19937), bit for bit. */
typedef struct nn_rng nn_rng;

/* ------------------------------------------------------------------------- */
/** @name Versions and errors
 *  @{ */

/** Writes the library's run-time version. Any out pointer may be NULL.
 *  Never fails.
 *  Threads: any thread, any time. */
NN_API void nn_version(int *out_major, int *out_minor, int *out_patch);

/** The run-time version as "MAJOR.MINOR.PATCH"; static storage.
 *  Threads: any thread, any time. */
NN_API const char *nn_version_string(void);

/** A static, never-NULL English name for a status code ("NN_ERR_SHAPE_MISMATCH:
 *  shape mismatch"); unknown codes give "unknown status".
 *  Threads: any thread, any time. */
NN_API const char *nn_status_string(nn_status status);

/** The message of the last failed call on this thread, or "" if none failed yet.
 *  The text stays valid until the next failing call on the same thread.
 *  Threads: any thread; each thread has its own message. */
NN_API const char *nn_last_error_message(void);

/** @} */
/* ------------------------------------------------------------------------- */
/** @name Random streams
 *  A stream reproduces NumPy's legacy global generator (`np.random.seed`, `randn`,
 *  `rand`, `permutation`) bit for bit, including the cached second gaussian. One
 *  stream can feed a data set, a model's initial weights and the training shuffle,
 *  as the book's single global NumPy stream does.
 *  @{ */

/** Creates a stream seeded as `np.random.seed(seed)`.
 *  @return ::NN_OK; ::NN_ERR_NULL_POINTER if `out` is NULL; ::NN_ERR_OUT_OF_MEMORY.
 *  Threads: any thread, any time. */
NN_API nn_status nn_rng_create(nn_rng **out, uint32_t seed);

/** Destroys a stream. NULL is a no-op.
 *  Threads: no other call may be using `rng` or run after this on it. */
NN_API void nn_rng_destroy(nn_rng *rng);

/** Reseeds as `np.random.seed(seed)` (also clears the cached gaussian).
 *  @return ::NN_OK; ::NN_ERR_NULL_POINTER.
 *  Threads: uses `rng` exclusively (::NN_ERR_BUSY while another call uses it). */
NN_API nn_status nn_rng_seed(nn_rng *rng, uint32_t seed);

/** Reseeds as `np.random.seed([key[0], …, key[n-1]])` (MT19937 init_by_array).
 *  @return ::NN_OK; ::NN_ERR_NULL_POINTER if `rng` or `key` is NULL;
 *          ::NN_ERR_INVALID_ARGUMENT if `n` is 0; ::NN_ERR_SIZE_OVERFLOW if n keys cannot exist.
 *  Threads: uses `rng` exclusively (::NN_ERR_BUSY while another call uses it). */
NN_API nn_status nn_rng_seed_array(nn_rng *rng, const uint32_t *key, size_t n);

/** Fills `out[0..n)` with standard normal draws, as `np.random.randn(n)`.
 *  @return ::NN_OK; ::NN_ERR_NULL_POINTER if `rng` is NULL or `out` is NULL with n > 0;
 *          ::NN_ERR_SIZE_OVERFLOW if n elements cannot exist; ::NN_ERR_BUSY.
 *  Threads: uses `rng` exclusively (::NN_ERR_BUSY while another call uses it). */
NN_API nn_status nn_rng_randn(nn_rng *rng, double *out, size_t n);

/** Fills `out[0..n)` with uniform draws in [0, 1), as `np.random.rand(n)`.
 *  @return ::NN_OK; ::NN_ERR_NULL_POINTER if `rng` is NULL or `out` is NULL with n > 0;
 *          ::NN_ERR_SIZE_OVERFLOW if n elements cannot exist; ::NN_ERR_BUSY.
 *  Threads: uses `rng` exclusively (::NN_ERR_BUSY while another call uses it). */
NN_API nn_status nn_rng_rand(nn_rng *rng, double *out, size_t n);

/** Writes a random permutation of 0..n-1, as `np.random.permutation(n)`.
 *  @return ::NN_OK; ::NN_ERR_NULL_POINTER if `rng` is NULL or `out` is NULL with n > 0;
 *          ::NN_ERR_SIZE_OVERFLOW if n elements cannot exist; ::NN_ERR_BUSY.
 *  Threads: uses `rng` exclusively (::NN_ERR_BUSY while another call uses it). */
NN_API nn_status nn_rng_permutation(nn_rng *rng, int64_t *out, size_t n);

/** @} */
/* ------------------------------------------------------------------------- */
/** @name Data sets
 *  @{ */

/** The book's spiral (`dataset/spiral.py`): `points_per_class` points for each of
 *  `n_classes` arms, class-major, one `randn()` of angle noise per point in loop
 *  order, coordinates (r·sin θ, r·cos θ).
 *
 *  @param out_x       receives (points_per_class × n_classes) × 2 doubles.
 *  @param x_capacity  elements available at `out_x`.
 *  @param out_labels  receives one int32 class index per row.
 *  @param labels_capacity elements available at `out_labels`.
 *  @param points_per_class points in each arm (the book: 100).
 *  @param n_classes   number of arms and classes (the book: 3).
 *  @param rng         the stream to draw from (continued, not reseeded), or NULL for
 *                     a private stream seeded with `seed`. The book's
 *                     `load_data(seed=1984)` is a stream reseeded with 1984.
 *  @param seed        used only when `rng` is NULL.
 *  @return ::NN_OK; ::NN_ERR_NULL_POINTER; ::NN_ERR_INVALID_ARGUMENT if a count is 0;
 *          ::NN_ERR_SIZE_OVERFLOW; ::NN_ERR_BUFFER_TOO_SMALL. Nothing is drawn on failure.

 *  Threads: any thread; uses `rng` exclusively when given. */
NN_API nn_status nn_dataset_spiral(double *out_x, size_t x_capacity,
                                   int32_t *out_labels, size_t labels_capacity,
                                   size_t points_per_class, size_t n_classes,
                                   nn_rng *rng, uint32_t seed);

/** @} */
/* ------------------------------------------------------------------------- */
/** @name Models
 *  @{ */

/** Description of a multilayer perceptron: Affine → activation → … → Affine → loss. */
typedef struct nn_model_desc {
    size_t struct_size;              /**< sizeof(nn_model_desc), set by ::nn_model_desc_init. */
    size_t n_layer_sizes;            /**< Entries in `layer_sizes`: at least 2 (input and output). */
    const size_t *layer_sizes;       /**< Input size, hidden sizes…, output size. Copied. */
    nn_activation hidden_activation; /**< Default ::NN_ACTIVATION_SIGMOID (the book's). */
    nn_loss loss;                    /**< Default ::NN_LOSS_SOFTMAX_CROSS_ENTROPY. */
    nn_dtype dtype;                  /**< Default ::NN_DTYPE_FLOAT32. */
    nn_init init;                    /**< Default ::NN_INIT_NORMAL. */
    double init_std;                 /**< Scale for ::NN_INIT_NORMAL; default 0.01 (the book's). */
    uint32_t seed;                   /**< Seeds the model's own stream; default 1984. */
    /** Optional shared stream: when set, the initial weights are drawn from it (continuing
     *  it) instead of from the model's own stream. Not kept after ::nn_create returns. */
    nn_rng *rng;
} nn_model_desc;

/** Fills `desc` with the defaults above (layer sizes empty).
 *  Does nothing if `desc` is NULL.
 *  Threads: any thread, any time. */
NN_API void nn_model_desc_init(nn_model_desc *desc);

/** Creates a model. Initial weights are drawn layer by layer, each W in row-major
 *  order (input × output), as the book's `randn(I, H)`; float32 models are drawn in
 *  float64 and rounded once. The model starts on ::NN_DEVICE_AUTO's choice.
 *  @return ::NN_OK; ::NN_ERR_NULL_POINTER (`out`, `desc` or `desc->layer_sizes`);
 *          ::NN_ERR_STRUCT_SIZE; ::NN_ERR_INVALID_ARGUMENT (fewer than 2 sizes, more than
 *          1024, a zero size, an unknown enum, a softmax model with fewer than 2 outputs);
 *          ::NN_ERR_BAD_HYPERPARAMETER (init_std not finite or negative);
 *          ::NN_ERR_SIZE_OVERFLOW; ::NN_ERR_OUT_OF_MEMORY. On failure `*out` is set to NULL
 *          and `desc->rng` has not been drawn from.
 *  Threads: any thread; uses `desc->rng` exclusively when given. */
NN_API nn_status nn_create(nn_model **out, const nn_model_desc *desc);

/** Destroys a model and frees its device memory. NULL is a no-op.
 *  Threads: no other call may be using `model` or run on it after this (not detectable). */
NN_API void nn_destroy(nn_model *model);

/** Number of entries of the model's layer-size list (depth + 1).
 *  @return ::NN_OK; ::NN_ERR_NULL_POINTER.
 *  Threads: any thread, any time while the model exists (the value never changes). */
NN_API nn_status nn_model_layer_count(const nn_model *model, size_t *out_count);

/** Copies the layer sizes (input, hidden…, output).
 *  @return ::NN_OK; ::NN_ERR_NULL_POINTER; ::NN_ERR_BUFFER_TOO_SMALL.
 *  Threads: any thread, any time while the model exists (the value never changes). */
NN_API nn_status nn_model_layer_sizes(const nn_model *model, size_t *out_sizes, size_t capacity);

/** The model's compute dtype. @return ::NN_OK; ::NN_ERR_NULL_POINTER.
 *  Threads: any thread, any time while the model exists (the value never changes). */
NN_API nn_status nn_model_dtype(const nn_model *model, nn_dtype *out_dtype);

/** Total number of parameters (weights and biases of every layer).
 *  @return ::NN_OK; ::NN_ERR_NULL_POINTER.
 *  Threads: any thread, any time while the model exists (the value never changes). */
NN_API nn_status nn_param_count(const nn_model *model, size_t *out_count);

/** Copies every parameter, as doubles, in the model's one flat layout: for each layer
 *  in order, W (in × out, row-major) then b (out). For the book's 2-10-3 net that is
 *  W1 (20), b1 (10), W2 (30), b2 (3).
 *  @return ::NN_OK; ::NN_ERR_NULL_POINTER; ::NN_ERR_BUFFER_TOO_SMALL; ::NN_ERR_BACKEND.
 *  Threads: a reader of `model`: concurrent with other readers, not with a writer (::NN_ERR_BUSY). */
NN_API nn_status nn_get_params(nn_model *model, double *out_params, size_t capacity);

/** Replaces every parameter (same layout as ::nn_get_params), rounding to the model's
 *  dtype. @p count must equal ::nn_param_count.
 *  @return ::NN_OK; ::NN_ERR_NULL_POINTER; ::NN_ERR_SHAPE_MISMATCH; ::NN_ERR_NON_FINITE;
 *          ::NN_ERR_OUT_OF_MEMORY; ::NN_ERR_BACKEND.
 *  Threads: a writer of `model`: exclusive (::NN_ERR_BUSY while another call uses it). */
NN_API nn_status nn_set_params(nn_model *model, const double *params, size_t count);

/** @} */
/* ------------------------------------------------------------------------- */
/** @name Training
 *  @{ */

/** What the progress callback receives. Valid only during the call. */
typedef struct nn_progress {
    size_t struct_size;        /**< sizeof(nn_progress) of the library. */
    nn_progress_event event;   /**< Why this call. */
    uint64_t epoch;            /**< 1-based epoch, counted over the model's life (as the loss records). */
    uint64_t iteration;        /**< 1-based step within the epoch; steps_per_epoch at ::NN_PROGRESS_EPOCH_END. */
    uint64_t steps_per_epoch;  /**< Steps in one epoch. */
    double loss;               /**< REPORT: the record's loss (mean since the previous record).
                                    EPOCH_END: the epoch's mean training loss. */
    double val_loss;           /**< Validation loss of the latest validated epoch; NaN when there is none yet. */
    double val_accuracy;       /**< Its accuracy; NaN when there is none or for regression. */
    double elapsed_seconds;    /**< Since this ::nn_fit call started. */
} nn_progress;

/** Progress callback of ::nn_fit. Return 0 to go on; any other value stops the fit at
 *  this step boundary with ::NN_ERR_CANCELLED (the work done so far is kept). It runs on
 *  the thread that called ::nn_fit and must not use the model being trained (other
 *  handles are fine). */
typedef int (*nn_progress_fn)(const nn_progress *progress, void *user);

/** Training options. Defaults follow the book's `Trainer.fit` and `SGD`. */
typedef struct nn_fit_options {
    size_t struct_size;     /**< sizeof(nn_fit_options), set by ::nn_fit_options_init. */
    size_t epochs;          /**< Passes over the data; default 10 (`max_epoch`). Must be > 0. */
    size_t batch_size;      /**< Rows per step; default 32. Must be > 0. The tail of each epoch's
                                 shuffled data (rows mod batch_size) is dropped, as the book's
                                 Trainer does. A batch size above the number of rows trains on all
                                 rows as one batch (the book would run no step at all). */
    double learning_rate;   /**< The optimizer's `lr`; default 0.01 (the book's default for every
                                 optimizer but Adam, whose is 0.001: set it). Must be finite and > 0. */
    int shuffle;            /**< Non-zero (default): permute the current row order at the start of
                                 every epoch, compounding as the book does (`x = x[perm]`). */
    size_t report_interval; /**< The Trainer's `eval_interval`, default 20: a loss record is kept
                                 whenever the 0-based step index within an epoch is a multiple of it.
                                 0 keeps none. */
    nn_rng *rng;            /**< Optional stream for the shuffle and the validation split; NULL uses
                                 the model's own stream. Not kept after ::nn_fit returns. */

    /* ---- the optimizer ---- */
    nn_optimizer optimizer; /**< Default ::NN_OPTIMIZER_SGD. Its state persists across ::nn_fit calls
                                 while the optimizer stays the same (the book's Trainer keeps its
                                 optimizer); another optimizer, or ::nn_reset_optimizer, starts from zero. */
    double momentum;        /**< Momentum and Nesterov: default 0.9; in [0, 1). */
    double decay_rate;      /**< RMSprop: default 0.99; in (0, 1). */
    double beta1;           /**< Adam: default 0.9; in (0, 1). */
    double beta2;           /**< Adam: default 0.999; in (0, 1). */
    double epsilon;         /**< AdaGrad, RMSprop and Adam: default 1e-7 (the book's); finite and > 0.
                                 These five are checked whichever optimizer is chosen. */

    /* ---- regularisation ---- */
    /** Gradient clipping by global norm, as the book's `clip_grads(grads, max_grad)`: with
     *  `total` the L2 norm over every gradient, all gradients are scaled by
     *  `max_grad_norm / (total + 1e-6)` when that is below 1. Default 0: no clipping. */
    double max_grad_norm;
    /** L2 weight decay λ ≥ 0 (default 0): `λ·W` is added to the gradient of every weight
     *  matrix (not the biases) before clipping, as the book's `weight_decay_lambda`. The
     *  reported losses are the data loss, without the ½λΣW² term. */
    double weight_decay;
    /** Optional per-class loss weights (softmax models): `n_class_weights` must equal the
     *  number of outputs, each finite and ≥ 0, not all 0. Row r's loss term and gradient
     *  are multiplied by `class_weights[class of r]`; the batch mean still divides by the
     *  batch size (so weights all 1 are the unweighted loss). NULL (default): no weights.
     *  Validation figures are unweighted. Copied; not kept. */
    const double *class_weights;
    size_t n_class_weights; /**< Entries in `class_weights`. */

    /* ---- validation and early stopping ---- */
    /** Optional validation inputs: `val_rows` × `val_cols` values of `val_x_dtype`.
     *  When given, the loss and accuracy on them are computed after every epoch and kept
     *  in the epoch history, and `validation_fraction` is ignored. Default NULL; with it
     *  NULL, `val_rows` must be 0 and `val_targets` NULL. */
    const void *val_x;
    nn_dtype val_x_dtype;          /**< Element type of `val_x`. */
    size_t val_rows;               /**< Rows of `val_x` and `val_targets` (> 0 when val_x is set). */
    size_t val_cols;               /**< Columns of `val_x`: the model's input size. */
    const void *val_targets;       /**< Validation targets, laid out as `val_target_type` says. */
    nn_target_type val_target_type; /**< As ::nn_fit's `target_type`. */
    size_t val_target_cols;        /**< As ::nn_fit's `target_cols`. */
    /** When `val_x` is NULL: the fraction of the training rows held out for validation, in
     *  [0, 1); 0 (default) holds none out. One permutation of the rows is drawn from the
     *  fit's stream before training; its first `ceil(fraction · rows)` entries are the
     *  held-out rows and the rest, in that order, the training rows. At least one row
     *  must remain for training. */
    double validation_fraction;
    /** Non-zero: stop when the monitored loss — the validation loss when there is a
     *  validation set, else the epoch's mean training loss — has not improved on its best
     *  by more than `min_delta` for `patience` epochs in a row. The best is the last value
     *  that counted as an improvement. Default 0. */
    int early_stopping;
    int32_t patience;       /**< Epochs without improvement before stopping; default 10; ≥ 0 (0 stops at
                                 the first epoch that does not improve). Checked even when early
                                 stopping is off. */
    double min_delta;       /**< Least decrease that counts as an improvement; default 0; finite and ≥ 0. */
    /** With early stopping: non-zero (default) puts back the weights of the best epoch when
     *  the call ends, whether it stopped early or ran all its epochs (not when it ends with
     *  ::NN_ERR_CANCELLED or ::NN_ERR_DIVERGED). */
    int restore_best;

    /* ---- progress ---- */
    nn_progress_fn progress; /**< Optional callback, called at every loss record and at every epoch's end. */
    void *progress_user;     /**< Passed to `progress` unchanged. */

    /* ---- several processes ---- */
    /** Default ::NN_PARALLEL_NONE. With ::NN_PARALLEL_MPI every process of the job must
     *  call ::nn_fit with the same options and a model of the same shape, dtype and number
     *  of epochs already trained (else all fail at once with ::NN_ERR_COMM); process 0's
     *  parameters, optimizer state and stream are copied to the others at the start, so
     *  the shuffle and the trajectory are those of one process training on the same
     *  global batches (up to the order of the gradient sum). The batch size is the global
     *  batch (at least the number of processes); process r trains on slice r of it. */
    nn_parallel parallel;
    /** With ::NN_PARALLEL_MPI: 0 (default) when every process passes all the rows (the
     *  same data); non-zero when each passes only its own shard of them. With shards, each
     *  process shuffles its shard with the shared stream, a step takes its slice of the
     *  global batch from its shard, an epoch has the steps of the smallest shard, and the
     *  validation figures are computed over all processes' validation rows. */
    int sharded;
    /** With ::NN_PARALLEL_MPI: 0 (default) runs the progress callback on process 0 only
     *  (its decision to stop is sent to the others); non-zero runs it on every process. */
    int progress_on_every_process;
    /** Seconds any process waits for the others at a step before the fit fails with
     *  ::NN_ERR_COMM (a killed or stuck peer); default 60; > 0. */
    double parallel_timeout;
} nn_fit_options;

/** Fills `options` with the defaults. Does nothing if `options` is NULL.
 *  Threads: any thread, any time. */
NN_API void nn_fit_options_init(nn_fit_options *options);

/** Summary of one ::nn_fit call. Also written when the call ends with ::NN_ERR_CANCELLED
 *  or ::NN_ERR_DIVERGED, describing the training that was kept. */
typedef struct nn_fit_report {
    size_t struct_size;     /**< Set by ::nn_fit_report_init; the library writes only that much. */
    size_t epochs_run;      /**< Epochs completed in this call. */
    size_t steps_run;       /**< Optimizer steps in this call. */
    size_t steps_per_epoch; /**< rows / batch_size (rows after any validation split). */
    double final_loss;      /**< Mean training loss over the last completed epoch of this call (NaN if none). */
    double seconds;         /**< Wall time of the training loop. */
    nn_device_kind device_kind; /**< The device that trained. */
    int device_index;       /**< Its index. */
    int stopped_early;      /**< Non-zero when early stopping ended the call. */
    uint64_t best_epoch;    /**< With early stopping: the (life-long, 1-based) epoch of the best monitored loss, 0 if none. */
    double best_loss;       /**< That best monitored loss; NaN without early stopping. */
    double final_val_loss;  /**< Validation loss after the last completed epoch; NaN without validation. */
    double final_val_accuracy; /**< Its accuracy; NaN without validation or for regression. */
} nn_fit_report;

/** Prepares a report struct for ::nn_fit. Does nothing if `report` is NULL.
 *  Threads: any thread, any time. */
NN_API void nn_fit_report_init(nn_fit_report *report);

/** Trains the model, as the book's `Trainer.fit`.
 *
 *  Each epoch permutes the current row order (compounding), runs rows/batch_size steps
 *  of forward, backward, weight decay, clipping and the optimizer's update, and appends
 *  the epoch's mean loss (and validation figures) to the epoch history; loss records
 *  follow `report_interval` (see ::nn_get_loss_history). Like the book's Trainer, the
 *  histories, the epoch counter and the optimizer state persist across calls (use
 *  ::nn_reset_history and ::nn_reset_optimizer), while the running loss sum and the row
 *  order restart with each call.
 *
 *  Training that diverges stops at the first step whose loss is not finite, with
 *  ::NN_ERR_DIVERGED: that step's update is not applied. A progress callback that returns
 *  non-zero stops the call with ::NN_ERR_CANCELLED after the step (or at the epoch end) it
 *  was called for; a cancel at the record of an epoch's last step completes that epoch
 *  without its ::NN_PROGRESS_EPOCH_END call. In both cases the completed training is kept,
 *  `out_report` describes it, and an interrupted epoch is not counted. (Should a parameter
 *  overflow while the loss stays finite, the call also ends with ::NN_ERR_DIVERGED, but
 *  keeps nothing: the model is as before the call, as after any other failure.)
 *
 *  @param model        the model to train.
 *  @param x            rows × cols inputs of type `x_dtype`; converted to the model dtype.
 *  @param x_dtype      element type of `x`.
 *  @param rows         number of rows (samples) in `x` and `targets`; must be > 0.
 *  @param cols         columns of `x`; must equal the model's input size.
 *  @param targets      see ::nn_target_type; for softmax models one-hot rows are reduced to
 *                      their first maximal column, as the book does.
 *  @param target_type  how `targets` is laid out.
 *  @param target_cols  1 for class indices, else the model's output size.
 *  @param options      NULL for the defaults.
 *  @param out_report   NULL, or a report prepared by ::nn_fit_report_init.
 *  @return ::NN_OK; ::NN_ERR_NULL_POINTER; ::NN_ERR_INVALID_ARGUMENT (rows 0, bad enum);
 *          ::NN_ERR_STRUCT_SIZE; ::NN_ERR_SHAPE_MISMATCH (cols ≠ input size, target_cols
 *          wrong, validation set of the wrong width, class-weight count ≠ outputs);
 *          ::NN_ERR_LABEL_OUT_OF_RANGE; ::NN_ERR_NON_FINITE (in the training or validation
 *          data); ::NN_ERR_BAD_HYPERPARAMETER (epochs 0, or so many that their history could
 *          not fit in memory; batch size 0; learning rate not finite, ≤ 0, or not
 *          representable in the model's dtype; momentum outside [0, 1); decay rate, β1 or
 *          β2 outside (0, 1); epsilon ≤ 0; max_grad_norm or weight_decay negative or not
 *          finite; class weights negative, not finite or all 0, or given to a regression
 *          model; validation_fraction outside [0, 1) or leaving no row on a side; patience
 *          < 0; min_delta negative); ::NN_ERR_UNSUPPORTED (an option the model's backend
 *          cannot run); ::NN_ERR_SIZE_OVERFLOW; ::NN_ERR_OUT_OF_MEMORY; ::NN_ERR_BACKEND;
 *          ::NN_ERR_CANCELLED; ::NN_ERR_DIVERGED.
 *          All argument checks happen before any change: on a failed check the model,
 *          its histories and `options->rng` are untouched. If a backend fails midway,
 *          the parameters, optimizer state, histories and stream are restored to what
 *          they were.
 *  Threads: a writer of `model` for the whole call, including its progress callback (a call on `model` from the callback gets ::NN_ERR_BUSY); uses `options->rng` exclusively. */
NN_API nn_status nn_fit(nn_model *model,
                        const void *x, nn_dtype x_dtype, size_t rows, size_t cols,
                        const void *targets, nn_target_type target_type, size_t target_cols,
                        const nn_fit_options *options, nn_fit_report *out_report);

/** One loss record: the book Trainer's `loss_list` entry with where it was taken. */
typedef struct nn_loss_record {
    uint64_t epoch;           /**< 1-based epoch (the Trainer's current_epoch + 1). */
    uint64_t iteration;       /**< 1-based step within the epoch (iters + 1). */
    uint64_t steps_per_epoch; /**< max_iters. */
    double loss;              /**< Mean loss of the steps since the previous record. */
} nn_loss_record;

/** Copies the loss records (oldest first). Writes min(capacity, count) records and the
 *  total count to `*out_count`; `out` may be NULL when `capacity` is 0 (a size query).
 *  @return ::NN_OK; ::NN_ERR_NULL_POINTER.
 *  Threads: a reader of `model`: concurrent with other readers, not with a writer (::NN_ERR_BUSY). */
NN_API nn_status nn_get_loss_history(const nn_model *model, nn_loss_record *out,
                                     size_t capacity, size_t *out_count);

/** Copies the mean training loss of each completed epoch (the book's custom loop's
 *  printed value), with the same contract as ::nn_get_loss_history.
 *  @return ::NN_OK; ::NN_ERR_NULL_POINTER.
 *  Threads: a reader of `model`: concurrent with other readers, not with a writer (::NN_ERR_BUSY). */
NN_API nn_status nn_get_epoch_losses(const nn_model *model, double *out,
                                     size_t capacity, size_t *out_count);

/** One epoch of the epoch history. */
typedef struct nn_epoch_record {
    uint64_t epoch;       /**< 1-based epoch, counted over the model's life. */
    double loss;          /**< Mean training loss of its steps (the book's custom loop's printed value). */
    double val_loss;      /**< Validation loss after it; NaN when the fit had no validation set. */
    double val_accuracy;  /**< Validation accuracy; NaN without validation or for regression. */
} nn_epoch_record;

/** Copies the epoch history (oldest first), with the same contract as
 *  ::nn_get_loss_history.
 *  @return ::NN_OK; ::NN_ERR_NULL_POINTER.
 *  Threads: a reader of `model`: concurrent with other readers, not with a writer (::NN_ERR_BUSY). */
NN_API nn_status nn_get_epoch_history(const nn_model *model, nn_epoch_record *out,
                                      size_t capacity, size_t *out_count);

/** Clears both histories and the epoch counter (a fresh Trainer). The optimizer state
 *  is kept; see ::nn_reset_optimizer.
 *  @return ::NN_OK; ::NN_ERR_NULL_POINTER.
 *  Threads: a writer of `model`: exclusive (::NN_ERR_BUSY while another call uses it). */
NN_API nn_status nn_reset_history(nn_model *model);

/** Drops the optimizer state (moments, accumulated squares, Adam's step count), so that
 *  the next ::nn_fit starts its optimizer from zero (a fresh optimizer object).
 *  @return ::NN_OK; ::NN_ERR_NULL_POINTER.
 *  Threads: a writer of `model`: exclusive (::NN_ERR_BUSY while another call uses it). */
NN_API nn_status nn_reset_optimizer(nn_model *model);

/** Joins the process group of a multi-process job, as ::nn_fit with `parallel` does, and
 *  tells this process's rank and the number of processes. Any out pointer may be NULL.
 *  @return ::NN_OK; ::NN_ERR_INVALID_ARGUMENT (`kind` not a multi-process kind);
 *          ::NN_ERR_COMM with the reason (not launched under mpirun, libnn-comm-mpi.so or
 *          its MPI library missing).
 *  Threads: any thread, any time. */
NN_API nn_status nn_parallel_info(nn_parallel kind, int *out_rank, int *out_size);

/** @} */
/* ------------------------------------------------------------------------- */
/** @name Inference
 *  @{ */

/** Runs the network forward on `rows` inputs and writes rows × outputs values of
 *  `out_dtype` to `out` (`out_capacity` elements available).
 *  @return ::NN_OK; ::NN_ERR_NULL_POINTER; ::NN_ERR_INVALID_ARGUMENT (rows 0, bad enum);
 *          ::NN_ERR_SHAPE_MISMATCH; ::NN_ERR_NON_FINITE; ::NN_ERR_BUFFER_TOO_SMALL;
 *          ::NN_ERR_UNSUPPORTED (probabilities of a regression model); ::NN_ERR_SIZE_OVERFLOW;
 *          ::NN_ERR_OUT_OF_MEMORY; ::NN_ERR_BACKEND.
 *  Threads: a writer of `model` (it uses the model's workspace): concurrent calls on one model, even two predictions, get ::NN_ERR_BUSY; give each thread its own model (::nn_save_to_buffer / ::nn_load_from_buffer clone one). */
NN_API nn_status nn_predict(nn_model *model,
                            const void *x, nn_dtype x_dtype, size_t rows, size_t cols,
                            nn_output what, void *out, nn_dtype out_dtype, size_t out_capacity);

/** Writes the predicted class (first maximal score) of each row to `out_classes`.
 *  @return as ::nn_predict.
 *  Threads: a writer of `model` (it uses the model's workspace): concurrent calls on one model, even two predictions, get ::NN_ERR_BUSY; give each thread its own model (::nn_save_to_buffer / ::nn_load_from_buffer clone one). */
NN_API nn_status nn_predict_classes(nn_model *model,
                                    const void *x, nn_dtype x_dtype, size_t rows, size_t cols,
                                    int32_t *out_classes, size_t out_capacity);

/** Mean loss over all rows (one batch, the training loss formula) and accuracy (the
 *  fraction of rows whose first maximal score is the target class; NaN for regression).
 *  Either out pointer may be NULL, not both.
 *  @return as ::nn_fit without the hyperparameter codes.
 *  Threads: a writer of `model` (it uses the model's workspace): concurrent calls on one model, even two predictions, get ::NN_ERR_BUSY; give each thread its own model (::nn_save_to_buffer / ::nn_load_from_buffer clone one). */
NN_API nn_status nn_evaluate(nn_model *model,
                             const void *x, nn_dtype x_dtype, size_t rows, size_t cols,
                             const void *targets, nn_target_type target_type, size_t target_cols,
                             double *out_loss, double *out_accuracy);

/** @} */
/* ------------------------------------------------------------------------- */
/** @name Saving and loading
 *  A model file describes itself: the architecture, the parameters in a storage dtype
 *  of the caller's choice, optionally the training state (epoch counter, the model's own
 *  random stream, both histories) so that training continues after a load exactly as
 *  without it, and metadata strings; little-endian, versioned, with a CRC-32 over every
 *  byte. `docs/model-format.md` specifies it; readers accept every older version.
 *  @{ */

/** How ::nn_save and ::nn_save_to_buffer write a model. */
typedef struct nn_save_options {
    size_t struct_size;    /**< sizeof(nn_save_options), set by ::nn_save_options_init. */
    /** Storage type of the parameters: ::NN_DTYPE_MODEL (the default: the model's own
     *  dtype, lossless), ::NN_DTYPE_FLOAT16, ::NN_DTYPE_FLOAT32 or ::NN_DTYPE_FLOAT64. float16 rounds each
     *  value once, to nearest even, from the model's dtype (as NumPy's `astype`); a value
     *  that would round beyond ±65504 cannot be stored, and ::nn_save refuses it. */
    nn_dtype storage;
    int include_training_state; /**< Non-zero (default): also store the epoch counter, the
                                     model's own stream, both histories (with the validation
                                     figures) and the optimizer state, so that training goes on
                                     after ::nn_load exactly as without the round trip. */
} nn_save_options;

/** Fills `options` with the defaults. Does nothing if `options` is NULL.
 *  Threads: any thread, any time. */
NN_API void nn_save_options_init(nn_save_options *options);

/** Writes the model to `path`, atomically: the bytes go to a temporary file in the same
 *  directory, which is flushed to disk and then renamed over `path`. A failed save leaves
 *  any previous file at `path` intact and no temporary file behind.
 *  @param model   the model to write.
 *  @param path    the file to create or replace.
 *  @param options NULL for the defaults.
 *  @return ::NN_OK; ::NN_ERR_NULL_POINTER; ::NN_ERR_STRUCT_SIZE; ::NN_ERR_INVALID_ARGUMENT
 *          (storage not a float type, empty path, `path` names something other than a
 *          regular file); ::NN_ERR_NON_FINITE (a parameter is NaN or infinite, or overflows
 *          float16; or, with the training state, an optimizer state value is not finite);
 *          ::NN_ERR_IO; ::NN_ERR_OUT_OF_MEMORY; ::NN_ERR_BACKEND.
 *  The model is never changed.
 *  Threads: a reader of `model`: concurrent with other readers, not with a writer (::NN_ERR_BUSY). */
NN_API nn_status nn_save(nn_model *model, const char *path, const nn_save_options *options);

/** Writes the model into caller memory. With `out` NULL (and any `capacity`) it only
 *  stores the size the bytes need in `*out_size`; otherwise it writes them if `capacity`
 *  suffices and stores their size.
 *  @return as ::nn_save without ::NN_ERR_IO, plus ::NN_ERR_BUFFER_TOO_SMALL (`*out_size`
 *          then holds the size needed).
 *  Threads: a reader of `model`: concurrent with other readers, not with a writer (::NN_ERR_BUSY). */
NN_API nn_status nn_save_to_buffer(nn_model *model, void *out, size_t capacity, size_t *out_size,
                                   const nn_save_options *options);

/** Reads a model written by ::nn_save (by this or any earlier version of libnn). Every
 *  field is checked — magic, version, checksum, sizes (nothing is allocated from an
 *  unchecked field), enums, finiteness — before a model is built. The model starts on
 *  ::NN_DEVICE_AUTO's choice (or the reference, when the file holds optimizer state and
 *  AUTO's plugin cannot hold it), in the compute dtype it was saved from; float16 values
 *  are widened exactly.
 *  @return ::NN_OK; ::NN_ERR_NULL_POINTER; ::NN_ERR_INVALID_ARGUMENT (empty path, not a
 *          regular file); ::NN_ERR_IO (missing, unreadable); ::NN_ERR_CORRUPT;
 *          ::NN_ERR_VERSION; ::NN_ERR_OUT_OF_MEMORY. On failure `*out` is NULL.
 *  Threads: any thread, any time. */
NN_API nn_status nn_load(nn_model **out, const char *path);

/** Reads a model from `size` bytes at `data` (see ::nn_load).
 *  @return as ::nn_load without ::NN_ERR_IO, plus ::NN_ERR_SIZE_OVERFLOW (`size` beyond any buffer).
 *  Threads: any thread, any time. */
NN_API nn_status nn_load_from_buffer(nn_model **out, const void *data, size_t size);

/** Sets a metadata string kept with the model and saved with it (UTF-8 or any bytes
 *  without NUL; keys up to 256 bytes, values up to 65536). A NULL `value` removes the key.
 *  @return ::NN_OK; ::NN_ERR_NULL_POINTER (`model`, `key`); ::NN_ERR_INVALID_ARGUMENT
 *          (empty or too long key, too long value); ::NN_ERR_OUT_OF_MEMORY.
 *  Threads: a writer of `model`: exclusive (::NN_ERR_BUSY while another call uses it). */
NN_API nn_status nn_set_metadata(nn_model *model, const char *key, const char *value);

/** Copies the metadata value of `key`, NUL-terminated, into `out` (`capacity` bytes) and
 *  its length without the NUL into `*out_length`. With `out` NULL only the length is
 *  stored (a size query).
 *  @return ::NN_OK; ::NN_ERR_NULL_POINTER; ::NN_ERR_INVALID_ARGUMENT (no such key);
 *          ::NN_ERR_BUFFER_TOO_SMALL (`*out_length` still set).
 *  Threads: a reader of `model`: concurrent with other readers, not with a writer (::NN_ERR_BUSY). */
NN_API nn_status nn_get_metadata(const nn_model *model, const char *key, char *out, size_t capacity,
                                 size_t *out_length);

/** @} */
/* ------------------------------------------------------------------------- */
/** @name Devices
 *  Backends are plugins found, in order, in the directories of `NN_BACKEND_PATH`
 *  (colon-separated, absolute), the directory libnn itself was loaded from and its `nn/`
 *  subdirectory (where an install puts them), and the configured install directory;
 *  never the current directory. They are loaded on first use and never
 *  unloaded.
 *  @{ */

/** One compute device, available or not. */
typedef struct nn_device_info {
    size_t struct_size;    /**< Set by ::nn_device_info_init. */
    nn_device_kind kind;   /**< ::NN_DEVICE_CPU, ::NN_DEVICE_CUDA or ::NN_DEVICE_REFERENCE. */
    int index;             /**< Index within its kind. */
    int available;         /**< Non-zero if a model can be placed on it. */
    char name[128];        /**< E.g. "reference (built-in plain loops)", "cpu (OpenBLAS 0.3.21 … , 2 threads)" (OpenBLAS's configuration string and thread count). */
    char reason[256];      /**< Why it is not available ("libnn-backend-cuda.so: no CUDA driver"), or "". */
} nn_device_info;

/** Prepares an info struct for ::nn_device_get and ::nn_get_device (sets struct_size).
 *  Does nothing if `info` is NULL.
 *  Threads: any thread, any time. */
NN_API void nn_device_info_init(nn_device_info *info);

/** Number of device entries: the reference, one entry per plugin kind that was looked
 *  for (present or not), and one per GPU. Never fails for a non-NULL argument.
 *  @return ::NN_OK; ::NN_ERR_NULL_POINTER.
 *  Threads: any thread, any time. */
NN_API nn_status nn_device_count(size_t *out_count);

/** Describes device entry `i` (0 ≤ i < ::nn_device_count).
 *  @return ::NN_OK; ::NN_ERR_NULL_POINTER; ::NN_ERR_STRUCT_SIZE; ::NN_ERR_INVALID_ARGUMENT.
 *  Threads: any thread, any time. */
NN_API nn_status nn_device_get(size_t i, nn_device_info *out_info);

/** Moves the model (its parameters, optimizer state and histories) to a device. ::NN_DEVICE_AUTO picks
 *  the best available one; ask ::nn_get_device which. An explicit request that cannot
 *  be met fails with the reason, and the model stays where it was, unchanged.
 *  @return ::NN_OK; ::NN_ERR_NULL_POINTER; ::NN_ERR_INVALID_ARGUMENT (bad kind, negative
 *          index); ::NN_ERR_DEVICE_UNAVAILABLE; ::NN_ERR_UNSUPPORTED (the target's plugin
 *          cannot hold the model's optimizer state: reset it first); ::NN_ERR_OUT_OF_MEMORY;
 *          ::NN_ERR_BACKEND.
 *  Threads: a writer of `model`: exclusive (::NN_ERR_BUSY while another call uses it). */
NN_API nn_status nn_set_device(nn_model *model, nn_device_kind kind, int index);

/** Describes the device the model is on.
 *  @return ::NN_OK; ::NN_ERR_NULL_POINTER; ::NN_ERR_STRUCT_SIZE.
 *  Threads: a reader of `model`: concurrent with other readers, not with a writer (::NN_ERR_BUSY). */
NN_API nn_status nn_get_device(const nn_model *model, nn_device_info *out_info);

/** Lets the model's matrix products run in reduced precision where its device can (see
 *  ::nn_precision): on the CUDA plugin, the cuBLAS products of training (nets too big for
 *  its fused kernel) and of predictions through wide layers (rows × inputs × outputs of a
 *  layer ≥ 2^22, so a prediction of a few rows may stay strict where the same rows in a
 *  large batch do not) use tensor cores in that format; the fused kernel for small nets,
 *  the CPU plugin and the reference stay in float32. The setting belongs to the model, not
 *  to its device: it moves with ::nn_set_device and applies whenever the model is on a
 *  device that can honour it. It is not saved with the model (a loaded model starts
 *  ::NN_PRECISION_STRICT). On failure the setting stays as it was.
 *  @return ::NN_OK; ::NN_ERR_NULL_POINTER; ::NN_ERR_INVALID_ARGUMENT (not an ::nn_precision);
 *          ::NN_ERR_UNSUPPORTED (a reduced precision for a float64 model); ::NN_ERR_BACKEND.
 *  Threads: a writer of `model`: exclusive (::NN_ERR_BUSY while another call uses it). */
NN_API nn_status nn_set_precision(nn_model *model, nn_precision precision);

/** The precision the model's products may use, as last set (::NN_PRECISION_STRICT unless
 *  ::nn_set_precision said otherwise): what was allowed, not whether the current device
 *  uses it (a GPU without tensor cores for the format computes strictly).
 *  @return ::NN_OK; ::NN_ERR_NULL_POINTER.
 *  Threads: a reader of `model`: concurrent with other readers, not with a writer (::NN_ERR_BUSY). */
NN_API nn_status nn_get_precision(const nn_model *model, nn_precision *out_precision);

/** @} */

#ifdef __cplusplus
}
#endif

#endif /* NN_NN_H */
