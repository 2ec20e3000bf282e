// The model file format (docs/model-format.md): bytes ↔ what a Model needs.
#ifndef NN_CORE_MODEL_FILE_H
#define NN_CORE_MODEL_FILE_H

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/model.h"

namespace nn::file {

inline constexpr uint32_t kFormatVersion = 1;
inline constexpr size_t kMaxKey = 256, kMaxValue = 65536;

struct SaveConfig {
    nn_dtype storage = NN_DTYPE_FLOAT32;
    bool training_state = true;
};

// Everything a file holds, checked.
struct Contents {
    NetShape shape;
    std::vector<double> params;
    // TRNG, with EPCH's validation figures merged into `epochs` (NaN where the file has
    // none: files written before EPCH existed).
    bool has_training_state = false;
    uint64_t epochs_done = 0;
    LegacyRng rng;
    std::vector<LossRecord> records;
    std::vector<EpochRecord> epochs;
    // OPTM (only with TRNG): the optimizer's state, values exact in the model's dtype.
    bool has_optimizer = false;
    OptimizerState optimizer;
    std::map<std::string, std::string> metadata;
};

// The file's bytes. Throws nn::Error (NN_ERR_NON_FINITE) for a parameter the storage
// dtype cannot hold, or, with the training state, for an optimizer state value that is
// not finite.
std::vector<unsigned char> serialize(const Model &model, const SaveConfig &config);

// Checks and decodes; throws nn::Error (NN_ERR_CORRUPT, NN_ERR_VERSION). Never allocates
// more than a small multiple of `size`.
Contents parse(const unsigned char *data, size_t size);

// CRC-32 (IEEE 802.3, as zlib's crc32), exposed for the tests.
uint32_t crc32(const unsigned char *data, size_t size, uint32_t crc = 0);

}  // namespace nn::file

#endif  // NN_CORE_MODEL_FILE_H
