#include "standardize.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void standardize_fit(const double *x, size_t rows, size_t cols, double *mean, double *scale)
{
    for (size_t c = 0; c < cols; ++c) {
        /* Two passes: the mean first, then squared deviations from it, which stays
         * accurate when a column's values are large and close together. */
        double sum = 0.0;
        for (size_t r = 0; r < rows; ++r)
            sum += x[r * cols + c];
        double m = sum / (double)rows;
        double ss = 0.0;
        for (size_t r = 0; r < rows; ++r) {
            double d = x[r * cols + c] - m;
            ss += d * d;
        }
        double sd = sqrt(ss / (double)rows);
        mean[c] = m;
        scale[c] = sd > 0.0 && isfinite(sd) ? sd : 1.0;
    }
}

void standardize_apply(double *x, size_t rows, size_t cols, const double *mean,
                       const double *scale)
{
    for (size_t r = 0; r < rows; ++r)
        for (size_t c = 0; c < cols; ++c)
            x[r * cols + c] = (x[r * cols + c] - mean[c]) / scale[c];
}

char *encode_doubles(const double *values, size_t n)
{
    enum { MAX_NUMBER = 32 }; /* "-1.2345678901234567e-308" and a comma */
    char *text = malloc(n * MAX_NUMBER + 1);
    if (!text)
        return NULL;
    size_t len = 0;
    text[0] = '\0';
    for (size_t i = 0; i < n; ++i)
        len += (size_t)snprintf(text + len, MAX_NUMBER + 1, "%s%.17g", i ? "," : "", values[i]);
    return text;
}

int decode_doubles(const char *text, double *out, size_t n)
{
    const char *p = text;
    for (size_t i = 0; i < n; ++i) {
        char *rest = NULL;
        double v = strtod(p, &rest);
        if (rest == p || !isfinite(v))
            return 1;
        out[i] = v;
        if (i + 1 < n) {
            if (*rest != ',')
                return 1;
            p = rest + 1;
        } else if (*rest != '\0') {
            return 1;
        }
    }
    return n == 0 && *text != '\0';
}
