// IEEE binary16 conversions, as NumPy's astype(np.float16): one rounding to nearest
// even straight from float64 (or from float32, widened exactly first), overflow to
// ±inf, subnormals kept, NaN kept a NaN with its top payload bits (BOOK-CH01.md §9).
#ifndef NN_CORE_FLOAT16_H
#define NN_CORE_FLOAT16_H

#include <cstdint>

namespace nn {

uint16_t f16_from_double(double value);
// Widening a finite float to double is exact, so one rounding; a NaN keeps its own
// payload bits (widening would quiet a signalling NaN).
uint16_t f16_from_float(float value);
// Exact: every binary16 value is a double (and a float).
double f16_to_double(uint16_t bits);

}  // namespace nn

#endif  // NN_CORE_FLOAT16_H
