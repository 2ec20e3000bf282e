#include "runtime/registry.h"

#include <dlfcn.h>
#include <limits.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdlib>
#include <memory>

#include "core/error.h"
#include "core/reference_backend.h"

#ifndef NN_PLUGIN_INSTALL_FULL_DIR
#define NN_PLUGIN_INSTALL_FULL_DIR "/usr/local/lib/nn"
#endif

namespace nn::runtime {
namespace {

void host_log(int, const char *) {}

const nn_host_services kHostServices = {
    .abi_version = NN_BACKEND_ABI_VERSION,
    .struct_size = sizeof(nn_host_services),
    .set_error = set_backend_error,
    .log = host_log,
};

// The last member the host calls; a plugin table must reach at least this far.
constexpr size_t kRequiredIfaceSize = offsetof(nn_backend_iface, predict) + sizeof(void *);

struct PluginKind {
    nn_device_kind kind;
    const char *file;
    const char *label;
};
constexpr PluginKind kPluginKinds[] = {
    {NN_DEVICE_CPU, "libnn-backend-cpu.so", "cpu"},
    {NN_DEVICE_CUDA, "libnn-backend-cuda.so", "cuda"},
};

std::string own_directory() {
    Dl_info info{};
    if (dladdr(reinterpret_cast<void *>(&own_directory), &info) == 0 || !info.dli_fname) return {};
    // The loader reports the name it was given, which is relative when libnn was found
    // through a relative LD_LIBRARY_PATH or dlopen'ed by a relative path: resolve it.
    char resolved[PATH_MAX];
    if (!realpath(info.dli_fname, resolved)) return {};
    std::string path = resolved;
    size_t slash = path.rfind('/');
    if (slash == std::string::npos) return {};
    return path.substr(0, slash);
}

// Loads one plugin file; returns its table, or null with `why` filled in.
const nn_backend_iface *load_plugin(const std::string &path, std::string &why) {
    const nn_backend_iface *iface = start_plugin<nn_backend_iface>(path, NN_BACKEND_ENTRY_SYMBOL, why);
    if (!iface) return nullptr;
    if (iface->abi_version != NN_BACKEND_ABI_VERSION) {
        why = path + ": plugin ABI version " + std::to_string(iface->abi_version) + ", libnn expects " +
              std::to_string(NN_BACKEND_ABI_VERSION);
        return nullptr;
    }
    if (iface->struct_size < kRequiredIfaceSize || !iface->device_count || !iface->device_describe ||
        !iface->model_create || !iface->model_destroy || !iface->params_write || !iface->params_read ||
        !iface->data_upload || !iface->train_steps || !iface->predict) {
        why = path + ": plugin function table is incomplete";
        return nullptr;
    }
    return iface;
}

void add_plugin_devices(std::vector<Device> &out, const PluginKind &kind) {
    const nn_backend_iface *iface = nullptr;
    std::string why;
    std::vector<std::string> looked;
    for (const std::string &dir : search_path()) {
        std::string path = dir + "/" + kind.file;
        looked.push_back(dir);
        if (access(path.c_str(), F_OK) != 0) continue;
        std::string this_why;
        iface = load_plugin(path, this_why);
        if (iface) break;
        if (why.empty()) why = this_why;  // report the first broken copy
    }
    if (!iface) {
        if (why.empty()) {
            why = std::string(kind.file) + " not found (looked in:";
            for (const auto &d : looked) why += " " + d;
            why += looked.empty() ? " nowhere)" : ")";
        }
        out.push_back({kind.kind, 0, false, kind.label, why, nullptr, 0});
        return;
    }
    char none[256] = {0};
    int count = iface->device_count(none, sizeof none);
    if (count <= 0) {
        none[sizeof none - 1] = '\0';
        out.push_back({kind.kind, 0, false, kind.label,
                       std::string(kind.file) + ": " + (none[0] ? none : "no device"), nullptr, 0});
        return;
    }
    for (int i = 0; i < count; ++i) {
        nn_backend_device d{};
        nn_backend_result r = iface->device_describe(i, &d);
        d.name[sizeof d.name - 1] = '\0';
        d.reason[sizeof d.reason - 1] = '\0';
        if (r != NN_BACKEND_OK) {
            out.push_back({kind.kind, i, false, kind.label, take_backend_error(), nullptr, i});
            continue;
        }
        out.push_back({kind.kind, i, d.available != 0, d.name, d.available ? "" : d.reason,
                       d.available ? iface : nullptr, i});
    }
}

std::vector<Device> discover() {
    std::vector<Device> out;
    out.push_back({NN_DEVICE_REFERENCE, 0, true, "reference (built-in plain loops)", "", reference_backend(), 0});
    for (const PluginKind &kind : kPluginKinds) {
        try {
            add_plugin_devices(out, kind);
        } catch (const std::exception &e) {
            out.push_back({kind.kind, 0, false, kind.label, std::string("discovery failed: ") + e.what(), nullptr, 0});
        }
    }
    return out;
}

const char *kind_name(nn_device_kind kind) {
    switch (kind) {
    case NN_DEVICE_CPU: return "cpu";
    case NN_DEVICE_CUDA: return "cuda";
    case NN_DEVICE_REFERENCE: return "reference";
    default: return "auto";
    }
}

}  // namespace

const nn_host_services *host_services() { return &kHostServices; }

std::vector<std::string> search_path() {
    std::vector<std::string> dirs;
    auto add = [&](const std::string &d) {
        // An empty entry would mean the current directory, which is never searched.
        if (d.empty() || d[0] != '/') return;
        if (std::find(dirs.begin(), dirs.end(), d) == dirs.end()) dirs.push_back(d);
    };
    // secure_getenv: a set-user-ID program embedding libnn must not load plugins from a
    // directory its caller chose.
    if (const char *env = secure_getenv("NN_BACKEND_PATH")) {
        std::string s = env;
        size_t start = 0;
        while (start <= s.size()) {
            size_t colon = s.find(':', start);
            if (colon == std::string::npos) colon = s.size();
            add(s.substr(start, colon - start));
            start = colon + 1;
        }
    }
    const std::string own = own_directory();
    add(own);
    // An installed tree keeps its plugins in lib/nn beside lib/libnn.so, wherever it was
    // installed or moved to.
    if (!own.empty()) add(own + "/nn");
    add(NN_PLUGIN_INSTALL_FULL_DIR);
    return dirs;
}

const std::vector<Device> &devices() {
    static const std::vector<Device> kDevices = discover();
    return kDevices;
}

const Device &resolve(nn_device_kind kind, int index) {
    const auto &all = devices();
    if (kind == NN_DEVICE_AUTO) {
        for (nn_device_kind k : {NN_DEVICE_CUDA, NN_DEVICE_CPU, NN_DEVICE_REFERENCE})
            for (const Device &d : all)
                if (d.kind == k && d.available) return d;
        fail(NN_ERR_INTERNAL, "no device available, not even the reference");
    }
    if (kind != NN_DEVICE_CPU && kind != NN_DEVICE_CUDA && kind != NN_DEVICE_REFERENCE)
        fail(NN_ERR_INVALID_ARGUMENT, "unknown device kind " + std::to_string(int(kind)));
    if (index < 0) fail(NN_ERR_INVALID_ARGUMENT, "device index " + std::to_string(index) + " is negative");
    const Device *first_of_kind = nullptr;
    for (const Device &d : all) {
        if (d.kind != kind) continue;
        if (!first_of_kind) first_of_kind = &d;
        if (d.index == index) {
            if (!d.available) fail(NN_ERR_DEVICE_UNAVAILABLE, std::string(kind_name(kind)) + ":" +
                                                                  std::to_string(index) + " is not available: " + d.reason);
            return d;
        }
    }
    if (first_of_kind && !first_of_kind->available)
        fail(NN_ERR_DEVICE_UNAVAILABLE, std::string(kind_name(kind)) + " is not available: " + first_of_kind->reason);
    fail(NN_ERR_DEVICE_UNAVAILABLE,
         std::string(kind_name(kind)) + ":" + std::to_string(index) + " does not exist");
}

}  // namespace nn::runtime
