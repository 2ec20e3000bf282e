#ifndef NN_CORE_DATASET_H
#define NN_CORE_DATASET_H

#include <cstddef>
#include <cstdint>

#include "core/rng.h"

namespace nn {

// The book's dataset/spiral.py: class-major rows (r·sin θ, r·cos θ) with
// θ = (4j + 4·rate) + 0.2·randn(), one gaussian per point in loop order.
// x receives (points·classes) × 2 values, labels one class index per row.
void spiral(double *x, int32_t *labels, size_t points_per_class, size_t classes, LegacyRng &rng);

}  // namespace nn

#endif  // NN_CORE_DATASET_H
