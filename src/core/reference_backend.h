#ifndef NN_CORE_REFERENCE_BACKEND_H
#define NN_CORE_REFERENCE_BACKEND_H

#include "nn/nn_backend.h"

namespace nn {

// The built-in backend over the reference implementation (always available).
const nn_backend_iface *reference_backend();

}  // namespace nn

#endif  // NN_CORE_REFERENCE_BACKEND_H
