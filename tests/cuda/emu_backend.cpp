// libnn-backend-cuda.so's own source, compiled as plain C++ against the host emulation
// of src/backends/cuda/cuda_platform.h: the test suite runs against it on machines
// without a GPU (ctest label "emulation"), so that the backend's logic — layouts and
// leading dimensions, what a replayed graph reads, the fused kernel's phases, chunking,
// the exchange, out-of-memory handling — is checked everywhere the plugin is built.
#define NN_CUDA_EMULATION 1
#include "backends/cuda/cuda_backend.cu"
