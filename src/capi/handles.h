// What the C API's opaque handles are, and the in-use marker that turns a caller's
// concurrent use of one handle into NN_ERR_BUSY instead of a data race.
#ifndef NN_CAPI_HANDLES_H
#define NN_CAPI_HANDLES_H

#include <atomic>
#include <memory>
#include <string>

#include "core/error.h"
#include "core/model.h"
#include "core/rng.h"
#include "nn/nn.h"
#include "runtime/registry.h"

namespace nn::capi {
inline Placement placement_of(const runtime::Device &d) { return {d.iface, d.backend_index, d.kind, d.index, d.name}; }

// Users of a handle right now: n > 0 readers, or -1 for one writer.
using UseCount = std::atomic<int>;

enum class Access { kRead, kWrite };

// Holds a handle for one call; a conflicting use fails with NN_ERR_BUSY before anything
// is touched. Nothing blocks: a caller who shares a handle gets a status, not a wait.
class Use {
public:
    Use(UseCount &users, Access access, const char *what) : users_(users), access_(access) {
        int seen = users_.load(std::memory_order_relaxed);
        for (;;) {
            const bool free_for_it = access == Access::kWrite ? seen == 0 : seen >= 0;
            if (!free_for_it)
                fail(NN_ERR_BUSY, std::string("the ") + what + " is in use by another call (on another thread, or "
                                                              "this model's progress callback); share it one call at a time");
            const int want = access == Access::kWrite ? -1 : seen + 1;
            if (users_.compare_exchange_weak(seen, want, std::memory_order_acquire, std::memory_order_relaxed)) break;
        }
    }
    ~Use() {
        if (access_ == Access::kWrite)
            users_.store(0, std::memory_order_release);
        else
            users_.fetch_sub(1, std::memory_order_release);
    }
    Use(const Use &) = delete;
    Use &operator=(const Use &) = delete;

private:
    UseCount &users_;
    Access access_;
};
}  // namespace nn::capi

struct nn_rng {
    nn::LegacyRng impl;
    mutable nn::capi::UseCount users{0};
};

struct nn_model {
    std::unique_ptr<nn::Model> impl;
    mutable nn::capi::UseCount users{0};
};

#endif  // NN_CAPI_HANDLES_H
