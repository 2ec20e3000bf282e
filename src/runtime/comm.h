// The communication plugin (libnn-comm-mpi.so, include/nn/nn_comm.h): found in the
// backends' search path on first use, loaded once, never unloaded.
#ifndef NN_RUNTIME_COMM_H
#define NN_RUNTIME_COMM_H

#include <string>

#include "nn/nn_comm.h"

namespace nn::runtime {

// This process's place in a multi-process job.
struct Group {
    const nn_comm_iface *iface = nullptr;  // null when unavailable
    int rank = 0, size = 1;
    std::string why;                       // why unavailable
};

// Loads the MPI plugin and joins its group (once per process; thread-safe). Never
// throws: an unavailable group says why.
const Group &mpi_group();

}  // namespace nn::runtime

#endif  // NN_RUNTIME_COMM_H
