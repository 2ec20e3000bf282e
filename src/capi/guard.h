// The C boundary's exception firewall and argument checks. Every exported function
// runs its body inside guard(): an nn::Error becomes its status, anything else a
// generic one, the message is stored per thread, and nothing escapes to C.
#ifndef NN_CAPI_GUARD_H
#define NN_CAPI_GUARD_H

#include <unistd.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <new>
#include <stdexcept>
#include <string>

#include "core/error.h"
#include "nn/nn.h"

namespace nn::capi {

// Stores "function: prefix message" as this thread's last error. Never throws and never
// loses the message: without memory for it, a fixed buffer holds it (cut to fit).
void set_last_error(const char *function, const char *prefix, const char *message) noexcept;
const char *last_error() noexcept;

template <typename Fn>
nn_status guard(const char *function, Fn &&body) noexcept {
    // No handler builds a string itself: an allocation failing inside one would escape
    // this noexcept function and terminate the caller's process.
    try {
        body();
        return NN_OK;
    } catch (const Error &e) {
        set_last_error(function, "", e.what());
        return e.status();
    } catch (const std::bad_alloc &) {
        set_last_error(function, "", "out of memory");
        return NN_ERR_OUT_OF_MEMORY;
    } catch (const std::length_error &) {
        set_last_error(function, "", "a size is too large to allocate");
        return NN_ERR_SIZE_OVERFLOW;
    } catch (const std::exception &e) {
        set_last_error(function, "internal error: ", e.what());
        return NN_ERR_INTERNAL;
    } catch (...) {
        set_last_error(function, "", "internal error: unknown exception");
        return NN_ERR_INTERNAL;
    }
}

// A caller's array of n elements of `size` bytes cannot exist beyond PTRDIFF_MAX bytes:
// such a count is refused before any memory is touched.
inline void check_count(size_t n, size_t size, const char *name) {
    if (n > size_t(PTRDIFF_MAX) / size)
        fail(NN_ERR_SIZE_OVERFLOW, std::string(name) + " = " + std::to_string(n) + " elements cannot fit in memory");
}

// The machine's memory in bytes (infinity if unknown): requests beyond it are refused
// up front rather than left to the allocator and the overcommitting kernel.
inline double physical_memory_bytes() {
    const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    return pages > 0 && page > 0 ? double(pages) * double(page) : HUGE_VAL;
}

inline void require(const void *p, const char *name) {
    if (!p) fail(NN_ERR_NULL_POINTER, std::string(name) + " is NULL");
}

// a·b, or NN_ERR_SIZE_OVERFLOW naming what was being sized.
inline size_t checked_mul(size_t a, size_t b, const char *what) {
    size_t r;
    if (__builtin_mul_overflow(a, b, &r) || r > (SIZE_MAX >> 4))
        fail(NN_ERR_SIZE_OVERFLOW, std::string(what) + " (" + std::to_string(a) + " × " + std::to_string(b) +
                                       ") is too large");
    return r;
}

// Accepts option structs from this release on; rejects anything else (an
// uninitialised struct, or one from a newer header than this library).
inline void check_struct_size(size_t got, size_t current, const char *type) {
    if (got != current)
        fail(NN_ERR_STRUCT_SIZE, std::string(type) + ".struct_size is " + std::to_string(got) + ", this libnn expects " +
                                     std::to_string(current) + " (fill it with its _init function)");
}

inline void check_dtype(nn_dtype t, const char *name) {
    if (t == NN_DTYPE_FLOAT16 || t == NN_DTYPE_MODEL)
        fail(NN_ERR_INVALID_ARGUMENT, std::string(name) + " is a storage choice for saved models, not a compute or buffer dtype");
    if (t != NN_DTYPE_FLOAT32 && t != NN_DTYPE_FLOAT64)
        fail(NN_ERR_INVALID_ARGUMENT, std::string(name) + " is not a known nn_dtype (" + std::to_string(int(t)) + ")");
}

}  // namespace nn::capi

#endif  // NN_CAPI_GUARD_H
