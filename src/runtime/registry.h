// Plugin discovery and the device registry. Plugins are looked for once, on first use,
// in NN_BACKEND_PATH, then libnn's own directory and its nn/ subdirectory (an installed
// tree's lib/nn), then the configured install directory (never the current directory),
// and are never unloaded.
#ifndef NN_RUNTIME_REGISTRY_H
#define NN_RUNTIME_REGISTRY_H

#include <dlfcn.h>

#include <string>
#include <vector>

#include "core/error.h"

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

// The services libnn offers every plugin (error text, log).
const nn_host_services *host_services();

// Opens a plugin file (never unloaded: models may hold state it owns until exit), and
// calls its entry symbol with the host's services. Returns the table the entry returned,
// or null with `why` saying which step failed: the file does not load, lacks the symbol,
// or refused (with the plugin's own message).
template <typename Table>
const Table *start_plugin(const std::string &path, const char *symbol, std::string &why) {
    void *handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
        const char *err = dlerror();
        why = path + ": cannot be loaded: " + (err ? err : "unknown dlopen error");
        return nullptr;
    }
    using Entry = const Table *(*)(const nn_host_services *);
    auto entry = reinterpret_cast<Entry>(dlsym(handle, symbol));
    if (!entry) {
        why = path + ": does not export " + symbol;
        return nullptr;
    }
    take_backend_error();
    const Table *table = entry(host_services());
    if (!table) {
        const std::string detail = take_backend_error();
        why = path + ": refused to start" + (detail.empty() ? std::string() : ": " + detail);
    }
    return table;
}

}  // namespace nn::runtime

#endif  // NN_RUNTIME_REGISTRY_H
