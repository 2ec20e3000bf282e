// Failures inside libnn travel as nn::Error (a status and a sentence) up to the C
// boundary, where capi's guard turns them into a return code and the thread-local
// message. Nothing below capi prints or aborts.
#ifndef NN_CORE_ERROR_H
#define NN_CORE_ERROR_H

#include <cstdio>
#include <stdexcept>
#include <string>

#include "nn/nn.h"

namespace nn {

class Error : public std::runtime_error {
public:
    Error(nn_status status, const std::string &message) : std::runtime_error(message), status_(status) {}
    nn_status status() const noexcept { return status_; }

private:
    nn_status status_;
};

[[noreturn]] inline void fail(nn_status status, const std::string &message) { throw Error(status, message); }

// A double as a message shows it: %g with enough digits to tell values apart (1e+300,
// 1e-50, 0.01), where std::to_string would print 300 digits or 0.000000.
inline std::string num(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.9g", v);
    return buf;
}

// The detail a backend plugin reported through the host's set_error service, kept per
// thread until the host turns the failed call into an Error.
void set_backend_error(const char *message) noexcept;
std::string take_backend_error();

}  // namespace nn

#endif  // NN_CORE_ERROR_H
