// What the C API's opaque handles are.
#ifndef NN_CAPI_HANDLES_H
#define NN_CAPI_HANDLES_H

#include <memory>

#include "core/model.h"
#include "core/rng.h"
#include "nn/nn.h"
#include "runtime/registry.h"

namespace nn::capi {
inline Placement placement_of(const runtime::Device &d) { return {d.iface, d.backend_index, d.kind, d.index, d.name}; }
}  // namespace nn::capi

struct nn_rng {
    nn::LegacyRng impl;
};

struct nn_model {
    std::unique_ptr<nn::Model> impl;
};

#endif  // NN_CAPI_HANDLES_H
