// Versions, statuses, errors, random streams and data sets.
#include <cstdio>
#include <span>

#include "capi/guard.h"
#include "capi/handles.h"
#include "core/dataset.h"

using nn::capi::guard;
using nn::capi::require;

namespace nn::capi {

namespace {
thread_local std::string t_message;
// When there is no memory for the message, it goes here instead, cut to fit: the
// caller still reads this call's message, never an earlier one.
thread_local char t_fallback[512];
thread_local bool t_use_fallback = false;
}

void set_last_error(const char *function, const char *prefix, const char *message) noexcept {
    try {
        std::string text = function;
        text += ": ";
        text += prefix;
        text += message;
        t_message.swap(text);
        t_use_fallback = false;
    } catch (...) {
        std::snprintf(t_fallback, sizeof t_fallback, "%s: %s%s", function, prefix, message);
        t_use_fallback = true;
    }
}

const char *last_error() noexcept { return t_use_fallback ? t_fallback : t_message.c_str(); }

}  // namespace nn::capi

#define NN_STR2(x) #x
#define NN_STR(x) NN_STR2(x)

extern "C" {

NN_API void nn_version(int *out_major, int *out_minor, int *out_patch) {
    if (out_major) *out_major = NN_VERSION_MAJOR;
    if (out_minor) *out_minor = NN_VERSION_MINOR;
    if (out_patch) *out_patch = NN_VERSION_PATCH;
}

NN_API const char *nn_version_string(void) {
    return NN_STR(NN_VERSION_MAJOR) "." NN_STR(NN_VERSION_MINOR) "." NN_STR(NN_VERSION_PATCH);
}

NN_API const char *nn_status_string(nn_status status) {
    switch (status) {
    case NN_OK: return "NN_OK: success";
    case NN_ERR_NULL_POINTER: return "NN_ERR_NULL_POINTER: a required pointer was NULL";
    case NN_ERR_INVALID_ARGUMENT: return "NN_ERR_INVALID_ARGUMENT: invalid argument";
    case NN_ERR_STRUCT_SIZE: return "NN_ERR_STRUCT_SIZE: option struct of unknown size";
    case NN_ERR_SIZE_OVERFLOW: return "NN_ERR_SIZE_OVERFLOW: sizes too large";
    case NN_ERR_SHAPE_MISMATCH: return "NN_ERR_SHAPE_MISMATCH: shape mismatch";
    case NN_ERR_LABEL_OUT_OF_RANGE: return "NN_ERR_LABEL_OUT_OF_RANGE: class label out of range";
    case NN_ERR_NON_FINITE: return "NN_ERR_NON_FINITE: NaN or infinity in the data";
    case NN_ERR_BAD_HYPERPARAMETER: return "NN_ERR_BAD_HYPERPARAMETER: training option out of range";
    case NN_ERR_BUFFER_TOO_SMALL: return "NN_ERR_BUFFER_TOO_SMALL: output buffer too small";
    case NN_ERR_OUT_OF_MEMORY: return "NN_ERR_OUT_OF_MEMORY: out of memory";
    case NN_ERR_DEVICE_UNAVAILABLE: return "NN_ERR_DEVICE_UNAVAILABLE: device not available";
    case NN_ERR_BACKEND: return "NN_ERR_BACKEND: backend failure";
    case NN_ERR_UNSUPPORTED: return "NN_ERR_UNSUPPORTED: not supported";
    case NN_ERR_INTERNAL: return "NN_ERR_INTERNAL: internal error";
    case NN_ERR_IO: return "NN_ERR_IO: file input/output failed";
    case NN_ERR_CORRUPT: return "NN_ERR_CORRUPT: not a valid libnn model";
    case NN_ERR_VERSION: return "NN_ERR_VERSION: model format version too new";
    case NN_ERR_CANCELLED: return "NN_ERR_CANCELLED: stopped by the progress callback";
    case NN_ERR_DIVERGED: return "NN_ERR_DIVERGED: training diverged";
    case NN_ERR_BUSY: return "NN_ERR_BUSY: the handle is in use by another call";
    case NN_ERR_COMM: return "NN_ERR_COMM: multi-process training unavailable or failed";
    case NN_STATUS_FORCE_INT32_: break;
    }
    return "unknown status";
}

NN_API const char *nn_last_error_message(void) { return nn::capi::last_error(); }

NN_API nn_status nn_rng_create(nn_rng **out, uint32_t seed) {
    return guard("nn_rng_create", [&] {
        require(out, "out");
        *out = nullptr;
        *out = new nn_rng{nn::LegacyRng(seed)};
    });
}

NN_API void nn_rng_destroy(nn_rng *rng) { delete rng; }

NN_API nn_status nn_rng_seed(nn_rng *rng, uint32_t seed) {
    return guard("nn_rng_seed", [&] {
        require(rng, "rng");
        const nn::capi::Use use(rng->users, nn::capi::Access::kWrite, "stream");
        rng->impl.seed_int(seed);
    });
}

NN_API nn_status nn_rng_seed_array(nn_rng *rng, const uint32_t *key, size_t n) {
    return guard("nn_rng_seed_array", [&] {
        require(rng, "rng");
        const nn::capi::Use use(rng->users, nn::capi::Access::kWrite, "stream");
        nn::capi::check_count(n, sizeof(uint32_t), "n");
        require(key, "key");
        if (n == 0) nn::fail(NN_ERR_INVALID_ARGUMENT, "key has no elements");
        rng->impl.seed_array(std::span<const uint32_t>(key, n));
    });
}

NN_API nn_status nn_rng_randn(nn_rng *rng, double *out, size_t n) {
    return guard("nn_rng_randn", [&] {
        require(rng, "rng");
        const nn::capi::Use use(rng->users, nn::capi::Access::kWrite, "stream");
        nn::capi::check_count(n, sizeof(double), "n");
        if (n > 0) require(out, "out");
        for (size_t i = 0; i < n; ++i) out[i] = rng->impl.next_gauss();
    });
}

NN_API nn_status nn_rng_rand(nn_rng *rng, double *out, size_t n) {
    return guard("nn_rng_rand", [&] {
        require(rng, "rng");
        const nn::capi::Use use(rng->users, nn::capi::Access::kWrite, "stream");
        nn::capi::check_count(n, sizeof(double), "n");
        if (n > 0) require(out, "out");
        for (size_t i = 0; i < n; ++i) out[i] = rng->impl.next_double();
    });
}

NN_API nn_status nn_rng_permutation(nn_rng *rng, int64_t *out, size_t n) {
    return guard("nn_rng_permutation", [&] {
        require(rng, "rng");
        const nn::capi::Use use(rng->users, nn::capi::Access::kWrite, "stream");
        nn::capi::check_count(n, sizeof(int64_t), "n");
        if (n > 0) require(out, "out");
        rng->impl.permutation(std::span<int64_t>(out, n));
    });
}

NN_API nn_status nn_dataset_spiral(double *out_x, size_t x_capacity, int32_t *out_labels, size_t labels_capacity,
                                   size_t points_per_class, size_t n_classes, nn_rng *rng, uint32_t seed) {
    return guard("nn_dataset_spiral", [&] {
        require(out_x, "out_x");
        require(out_labels, "out_labels");
        if (points_per_class == 0) nn::fail(NN_ERR_INVALID_ARGUMENT, "points_per_class is 0");
        if (n_classes == 0) nn::fail(NN_ERR_INVALID_ARGUMENT, "n_classes is 0");
        if (n_classes > size_t(INT32_MAX)) nn::fail(NN_ERR_INVALID_ARGUMENT, "n_classes does not fit a 32-bit label");
        const size_t rows = nn::capi::checked_mul(points_per_class, n_classes, "points_per_class × n_classes");
        const size_t xs = nn::capi::checked_mul(rows, 2, "the spiral's coordinates");
        if (x_capacity < xs)
            nn::fail(NN_ERR_BUFFER_TOO_SMALL, "out_x holds " + std::to_string(x_capacity) + " doubles, the spiral needs " +
                                                  std::to_string(xs));
        if (labels_capacity < rows)
            nn::fail(NN_ERR_BUFFER_TOO_SMALL, "out_labels holds " + std::to_string(labels_capacity) +
                                                  " labels, the spiral needs " + std::to_string(rows));
        if (rng) {
            const nn::capi::Use use(rng->users, nn::capi::Access::kWrite, "stream");
            nn::spiral(out_x, out_labels, points_per_class, n_classes, rng->impl);
        } else {
            nn::LegacyRng own(seed);
            nn::spiral(out_x, out_labels, points_per_class, n_classes, own);
        }
    });
}

}  // extern "C"
