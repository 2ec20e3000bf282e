#include "core/dataset.h"

#include <cmath>

namespace nn {

void spiral(double *x, int32_t *labels, size_t points_per_class, size_t classes, LegacyRng &rng) {
    const double n = double(points_per_class);
    for (size_t j = 0; j < classes; ++j) {
        for (size_t i = 0; i < points_per_class; ++i) {
            const double rate = double(i) / n;
            const double radius = 1.0 * rate;
            const double theta = (double(j) * 4.0 + 4.0 * rate) + rng.next_gauss() * 0.2;
            const size_t row = points_per_class * j + i;
            x[2 * row] = radius * std::sin(theta);
            x[2 * row + 1] = radius * std::cos(theta);
            labels[row] = int32_t(j);
        }
    }
}

}  // namespace nn
