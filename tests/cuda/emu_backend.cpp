// libnn-backend-cuda.so's own source, compiled as plain C++ against the host emulation
// of src/backends/cuda/cuda_platform.h: the test suite runs against it on machines
// without a GPU (ctest label "emulation"), so that the backend's logic — layouts and
// leading dimensions, what a replayed graph reads, the fused kernel's phases, chunking,
// the exchange, out-of-memory handling — is checked everywhere the plugin is built.
#define NN_CUDA_EMULATION 1
#include "backends/cuda/cuda_backend.cu"

// The emulation's count of waits for the device (stream_sync), for tests/cuda. The real
// plugin has no such symbol (tests/abi checks it exports its entry alone).
extern "C" __attribute__((visibility("default"))) uint64_t nn_cuda_emu_waits(void) { return nncuda::emu_waits().load(); }
