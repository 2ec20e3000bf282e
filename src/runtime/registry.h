// Plugin discovery and the device registry. Plugins are looked for once, on first use,
// in NN_BACKEND_PATH, then libnn's own directory and its nn/ subdirectory (an installed
// tree's lib/nn), then the configured install directory (never the current directory),
// and are never unloaded.
#ifndef NN_RUNTIME_REGISTRY_H
#define NN_RUNTIME_REGISTRY_H

#include <string>
#include <vector>

#include "nn/nn.h"
#include "nn/nn_backend.h"

namespace nn::runtime {

struct Device {
    nn_device_kind kind;
    int index;                     // within its kind
    bool available;
    std::string name;
    std::string reason;            // why not available
    const nn_backend_iface *iface; // null when not available
    int backend_index;             // the index the backend knows the device by
};

// Every device entry: the reference first, then per plugin kind its devices, or one
// unavailable entry that says why there are none. Immutable after the first call.
const std::vector<Device> &devices();

// The device a request names. AUTO picks CUDA 0, else the CPU plugin, else the
// reference. Throws nn::Error (NN_ERR_DEVICE_UNAVAILABLE with the reason, or
// NN_ERR_INVALID_ARGUMENT) when it cannot be met.
const Device &resolve(nn_device_kind kind, int index);

// The directories searched, in order (for messages and tests).
std::vector<std::string> search_path();

}  // namespace nn::runtime

#endif  // NN_RUNTIME_REGISTRY_H
