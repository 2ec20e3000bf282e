/*
 * libnn backend plugin ABI.
 *
 * A backend is a shared object (libnn-backend-NAME.so) that exports exactly one
 * symbol, NN_BACKEND_ENTRY_SYMBOL, of type ::nn_backend_entry_fn. libnn calls it once
 * with a table of host services and gets back a static table of function pointers.
 * Plugins never link against libnn.
 *
 * Rules of the table:
 * - It starts with its ABI version and its own size; members are only ever appended,
 *   so a host accepts a table whose struct_size covers the members it uses.
 * - Every member of ABI version 1 up to `predict` is required; members appended later
 *   may be NULL (or beyond a shorter table's struct_size), meaning "not supported".
 * - Every fallible function returns an ::nn_backend_result; on failure it first calls
 *   the host's `set_error` with a sentence that says what went wrong.
 * - The boundary is crossed per epoch or less often, not per operation: the backend
 *   keeps the parameters, gradients, workspace and training data in its own memory, and
 *   the host asks it to run whole epochs of steps (several at once from a backend that
 *   sets NN_BACKEND_CAP_EPOCH_GROUPS) on rows the host's shuffle chose.
 * - A backend never prints, exits or aborts, and no C++ exception leaves it.
 *
 * Parameter layout (host and backend alike): one flat array; for each layer l in
 * order, W_l (in_l × out_l, row-major) then b_l (out_l).
 */
#ifndef NN_NN_BACKEND_H
#define NN_NN_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Bumped whenever a change is not a pure append. Host and plugin must agree. */
#define NN_BACKEND_ABI_VERSION 1
/** The one symbol a plugin exports. */
#define NN_BACKEND_ENTRY_SYMBOL "nn_backend_entry"

/** Result of a backend call. */
typedef enum nn_backend_result {
    NN_BACKEND_OK = 0,
    NN_BACKEND_ERR_OUT_OF_MEMORY = 1, /**< Host or device allocation failed; nothing changed. */
    NN_BACKEND_ERR_DEVICE = 2,        /**< The device failed (driver error, lost device). */
    NN_BACKEND_ERR_UNSUPPORTED = 3,   /**< This backend cannot do what was asked (dtype, loss…). */
    NN_BACKEND_ERR_INVALID = 4        /**< The host broke the contract (a bug in libnn). */
} nn_backend_result;

/** What the host offers a plugin. */
typedef struct nn_host_services {
    uint32_t abi_version; /**< NN_BACKEND_ABI_VERSION of the host. */
    uint32_t struct_size; /**< sizeof(nn_host_services) of the host. */
    /** Records the detail of a failure for the caller (thread-local on the host side). */
    void (*set_error)(const char *message);
    /** Diagnostic log line; the host decides whether it goes anywhere (default: nowhere). */
    void (*log)(int level, const char *message);
} nn_host_services;

/** Description of a network handed to model_create. Enum values are those of nn.h. */
typedef struct nn_backend_net {
    uint32_t dtype;              /**< nn_dtype. */
    uint32_t hidden_activation;  /**< nn_activation. */
    uint32_t loss;               /**< nn_loss. */
    uint32_t n_layer_sizes;      /**< ≥ 2. */
    const size_t *layer_sizes;   /**< Valid only during the call. */
} nn_backend_net;

/** What a train_steps call uses. Appended to, never reordered: a plugin reads only the
 *  members its own header declares and that `struct_size` covers. Enum values are nn.h's. */
typedef struct nn_backend_train_config {
    uint32_t struct_size; /**< sizeof(nn_backend_train_config) of the host. */
    double learning_rate; /**< The optimizer's lr. */

    /* Appended in libnn 0.2. A host sends anything but plain SGD (optimizer 0, no clipping,
     * no weight decay, no class weights) only to a plugin whose table has the optimizer
     * state members below. */
    uint32_t optimizer;          /**< nn_optimizer; its state was set by optimizer_state_write. */
    double momentum;             /**< Momentum, Nesterov. */
    double decay_rate;           /**< RMSprop. */
    double beta1;                /**< Adam's β1. */
    double beta2;                /**< Adam's β2. */
    double epsilon;              /**< AdaGrad, RMSprop, Adam: added after the square root. */
    uint64_t adam_step;          /**< Adam's step count before this call's first step (its t is adam_step + s + 1). */
    double max_grad_norm;        /**< > 0: the book's clip_grads over all gradients; 0: none. */
    double weight_decay;         /**< λ: g += λ·W for weight matrices (not biases) before clipping. */
    const double *class_weights; /**< NULL or one weight per output class (softmax loss). */
    /** Non-zero: at the first step whose loss is not finite, write that loss, apply no
     *  update, and return NN_BACKEND_OK without running the remaining steps (their
     *  out_losses entries are left as they were). */
    uint32_t stop_on_non_finite;

    /* Appended for data-parallel training (libnn 0.2). */
    /** 0, or the number of rows of the global batch that this process's `batch` rows are a
     *  slice of: the loss and its gradient are then divided by `global_batch` instead of
     *  `batch`, so that summing them over the processes gives the global batch's mean. */
    size_t global_batch;
    /** NULL, or called once per step after backward and before weight decay, clipping and
     *  the update, with the step's gradients (the flat layout, model dtype, `count`
     *  values) and its loss: it replaces both with their sums over all processes. It
     *  returns 0, or non-zero when the exchange failed: the backend then writes NaN as the
     *  step's loss, applies no update, and returns NN_BACKEND_OK without running the
     *  remaining steps (the host knows why). */
    int (*exchange)(void *context, void *grads, size_t count, double *loss);
    void *exchange_context; /**< Passed to `exchange`. */
} nn_backend_train_config;

/** The most row indices the host puts in one train_steps call that spans several epochs
 *  (it groups epochs only up to this, and only for a backend that sets
 *  NN_BACKEND_CAP_EPOCH_GROUPS; a call within one epoch may be longer when the training
 *  set is). A backend that stages the order can size its buffer for it. */
#define NN_BACKEND_GROUP_ORDER ((size_t)1 << 17)

/** Bits of nn_backend_iface::capabilities. */
#define NN_BACKEND_CAP_EPOCH_GROUPS 1u /**< train_steps takes several epochs in one call. */

/** Elements (model dtype) of optimizer state per parameter: 0 SGD, 1 Momentum/Nesterov (v),
 *  1 AdaGrad/RMSprop (h), 2 Adam (m then v). The state is that many copies of the flat
 *  parameter layout, one after the other. */
#define NN_BACKEND_OPTIMIZER_SLOTS(optimizer) ((optimizer) == 5 ? 2u : (optimizer) == 0 ? 0u : 1u)

/** One device of a backend. */
typedef struct nn_backend_device {
    int available;        /**< Non-zero when models can be created on it. */
    char name[128];       /**< Human-readable name. */
    char reason[256];     /**< Why not available, or "". */
} nn_backend_device;

/** Opaque per-model state owned by the backend. */
typedef struct nn_backend_model nn_backend_model;

/** The function table a plugin returns. */
typedef struct nn_backend_iface {
    uint32_t abi_version; /**< NN_BACKEND_ABI_VERSION the plugin was built with. */
    uint32_t struct_size; /**< sizeof(nn_backend_iface) of the plugin. */
    const char *name;     /**< Short name: "cpu", "cuda". */

    /** Number of devices this backend can drive (0 if none). When 0, `why_none`
     *  receives the reason ("no CUDA driver"). */
    int (*device_count)(char *why_none, size_t why_none_capacity);
    /** Describes device `index`. */
    nn_backend_result (*device_describe)(int index, nn_backend_device *out);

    /** Creates the state of one model on device `index`, parameters zero-filled. */
    nn_backend_result (*model_create)(int index, const nn_backend_net *net, nn_backend_model **out);
    /** Frees everything the model holds. NULL is a no-op. */
    void (*model_destroy)(nn_backend_model *model);

    /** Copies the flat parameters in (from host memory, model dtype). */
    nn_backend_result (*params_write)(nn_backend_model *model, const void *params);
    /** Copies the flat parameters out (to host memory, model dtype). */
    nn_backend_result (*params_read)(nn_backend_model *model, void *out_params);

    /** Stores a training set in the backend's memory, replacing any earlier one.
     *  `x` is rows × inputs (model dtype). `targets` is int32 class indices (softmax
     *  loss) or rows × outputs values (model dtype, regression loss). Host memory,
     *  valid only during the call. Also sizes the workspace for `max_batch` rows. */
    nn_backend_result (*data_upload)(nn_backend_model *model, const void *x, const void *targets,
                                     size_t rows, size_t max_batch);

    /** Runs `steps` optimizer steps of `batch` rows each. Step s trains on the stored
     *  rows order[s·batch … s·batch + batch): forward, loss, backward, weight decay,
     *  clipping and the optimizer update the config describes. Writes each step's mean
     *  loss (before the update) to `out_losses[s]`. No allocation is allowed here.
     *  One call covers part of an epoch or one epoch; for a backend that sets
     *  NN_BACKEND_CAP_EPOCH_GROUPS, also several epochs one after the other (up to
     *  NN_BACKEND_GROUP_ORDER row indices, when the host has nothing to do between them),
     *  so `steps` is not bounded by the uploaded rows. */
    nn_backend_result (*train_steps)(nn_backend_model *model, const int64_t *order,
                                     size_t steps, size_t batch,
                                     const nn_backend_train_config *config, double *out_losses);

    /** Forward pass on host inputs (rows × inputs, model dtype) into host scores
     *  (rows × outputs, model dtype). May allocate. */
    nn_backend_result (*predict)(nn_backend_model *model, const void *x, size_t rows, void *out_scores);

    /* ---- Appended in libnn 0.2; NULL (or a shorter table): the plugin trains plain SGD only. ---- */

    /** Sets the optimizer whose state train_steps updates, allocating its state (the only
     *  place that may allocate it): `count` = NN_BACKEND_OPTIMIZER_SLOTS(optimizer) ×
     *  parameters elements of host memory in the model dtype, or `state` NULL for zeros. */
    nn_backend_result (*optimizer_state_write)(nn_backend_model *model, uint32_t optimizer, const void *state,
                                               size_t count);
    /** Copies the current optimizer state out (`count` elements as above). */
    nn_backend_result (*optimizer_state_read)(nn_backend_model *model, void *out_state, size_t count);

    /** Like data_upload, but the backend may keep `x` and `targets` instead of copying
     *  them: the host keeps both valid and unchanged until the fit that attached them
     *  ends, and calls train_steps only within that fit. So a large training set is held
     *  once, by its owner. NULL: the host uses data_upload. (Appended in libnn 0.2.) */
    nn_backend_result (*data_attach)(nn_backend_model *model, const void *x, const void *targets, size_t rows,
                                     size_t max_batch);

    /** NN_BACKEND_CAP_* bits; 0 (or beyond a shorter table's struct_size): none. What the
     *  backend accepts beyond the calls above. (Appended in libnn 0.2.) */
    uint64_t capabilities;

    /** Sets how the model's float32 matrix products may be computed: an nn_precision of
     *  nn.h (0 strict, 1 TF32, 2 float16, 3 bfloat16). A permission: the backend may
     *  compute strictly anyway (say, where its hardware lacks the format); sums over a
     *  batch and every per-element operation stay in the model's dtype. The host calls it
     *  after model_create when the model's setting is not 0, and whenever the setting
     *  changes; never with anything but 0 for a float64 model. NULL (or beyond a shorter
     *  table's struct_size): the backend always computes strictly. (Appended in libnn 0.2.) */
    nn_backend_result (*precision_set)(nn_backend_model *model, uint32_t precision);
} nn_backend_iface;

/** Type of the exported entry symbol. Returns NULL if the plugin cannot serve this host
 *  at all (it should then call host->set_error first). */
typedef const nn_backend_iface *(*nn_backend_entry_fn)(const nn_host_services *host);

#ifdef __cplusplus
}
#endif

#endif /* NN_NN_BACKEND_H */
