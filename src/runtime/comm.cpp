#include "runtime/comm.h"

#include <unistd.h>

#include <vector>

#include "core/error.h"
#include "runtime/registry.h"

namespace nn::runtime {
namespace {

constexpr const char *kMpiPlugin = "libnn-comm-mpi.so";

const nn_comm_iface *load(const std::string &path, std::string &why) {
    const nn_comm_iface *iface = start_plugin<nn_comm_iface>(path, NN_COMM_ENTRY_SYMBOL, why);
    if (!iface) return nullptr;
    if (iface->abi_version != NN_COMM_ABI_VERSION) {
        why = path + ": plugin ABI version " + std::to_string(iface->abi_version) + ", libnn expects " +
              std::to_string(NN_COMM_ABI_VERSION);
        return nullptr;
    }
    if (iface->struct_size < sizeof(nn_comm_iface) || !iface->open || !iface->allreduce_sum || !iface->broadcast ||
        !iface->barrier) {
        why = path + ": plugin function table is incomplete";
        return nullptr;
    }
    return iface;
}

Group join() {
    Group g;
    std::vector<std::string> looked;
    std::string first_why;
    for (const std::string &dir : search_path()) {
        const std::string path = dir + "/" + kMpiPlugin;
        looked.push_back(dir);
        if (access(path.c_str(), F_OK) != 0) continue;
        std::string why;
        g.iface = load(path, why);
        if (g.iface) break;
        if (first_why.empty()) first_why = why;
    }
    if (!g.iface) {
        if (first_why.empty()) {
            first_why = std::string(kMpiPlugin) + " not found (looked in:";
            for (const auto &d : looked) first_why += " " + d;
            first_why += looked.empty() ? " nowhere)" : ")";
        }
        g.why = first_why;
        return g;
    }
    char why[256] = {0};
    if (g.iface->open(&g.rank, &g.size, why, sizeof why) != 0 || g.size < 1 || g.rank < 0 || g.rank >= g.size) {
        why[sizeof why - 1] = '\0';
        g.why = std::string(kMpiPlugin) + ": " + (why[0] ? why : "cannot join the process group");
        g.iface = nullptr;
        g.rank = 0;
        g.size = 1;
    }
    return g;
}

}  // namespace

const Group &mpi_group() {
    static const Group kGroup = join();
    return kGroup;
}

}  // namespace nn::runtime
