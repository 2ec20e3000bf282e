/*
 * Standardisation for nn-cli: every feature column is shifted by its mean and divided by
 * its standard deviation, both taken from the training rows only (as scikit-learn's
 * StandardScaler: population standard deviation; a constant column is divided by 1).
 * The numbers travel with the model as text: comma-separated %.17g, which reads back
 * to the same doubles, so predict computes exactly the inputs train did.
 */
#ifndef NN_CLI_STANDARDIZE_H
#define NN_CLI_STANDARDIZE_H

#include <stddef.h>

/* Column means and scales of `x` (rows, cols) into `mean` and `scale` (cols each). */
void standardize_fit(const double *x, size_t rows, size_t cols, double *mean, double *scale);

/* x[r][c] = (x[r][c] - mean[c]) / scale[c], in place. */
void standardize_apply(double *x, size_t rows, size_t cols, const double *mean,
                       const double *scale);

/* "v0,v1,…" with %.17g; NULL if out of memory. The caller frees it. */
char *encode_doubles(const double *values, size_t n);

/* Reads exactly `n` comma-separated finite numbers into `out`; returns 0, or 1 if the
 * text does not hold exactly that. */
int decode_doubles(const char *text, double *out, size_t n);

#endif /* NN_CLI_STANDARDIZE_H */
