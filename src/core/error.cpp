#include "core/error.h"

namespace nn {

namespace {
thread_local std::string t_backend_error;
}

void set_backend_error(const char *message) noexcept {
    try {
        t_backend_error = message ? message : "";
    } catch (...) {
        // Out of memory while recording a message: keep whatever was there.
    }
}

std::string take_backend_error() {
    std::string out;
    out.swap(t_backend_error);
    return out;
}

}  // namespace nn
