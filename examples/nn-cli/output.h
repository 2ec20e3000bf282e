/*
 * Everything nn-cli prints beyond CSV diagnostics: libnn failures, training progress
 * (a bar on a terminal, one line per epoch when piped) and predictions as CSV.
 */
#ifndef NN_CLI_OUTPUT_H
#define NN_CLI_OUTPUT_H

#include <nn/nn.h>

#include <stddef.h>
#include <stdio.h>

#include "model_meta.h"

/* Prints "nn-cli: WHAT: STATUS: libnn's message" to stderr; returns 1 (the exit code). */
int report_nn_error(const char *what, nn_status status);

typedef struct progress {
    int tty;          /* stdout is a terminal: redraw one bar line */
    size_t epochs;    /* total */
    double started;   /* seconds, monotonic */
} progress;

void progress_begin(progress *p, size_t epochs);
/* After epoch `epoch` (1-based) with mean training loss `loss`. */
void progress_epoch(progress *p, size_t epoch, double loss);
/* Ends the bar line on a terminal; returns the seconds since progress_begin. */
double progress_end(progress *p);

/* Monotonic seconds. */
double now_seconds(void);

/* Writes a header line (the label column's name) and one line per row: the label string
 * (classify, from `classes`) or the value (regress, from `values`). `digits` is the
 * %g precision of values. Returns 0, or 1 after the OS reason. */
int write_predictions(const char *path, FILE *to, const cli_meta *meta, const int32_t *classes,
                      const double *values, size_t rows, int digits);

#endif /* NN_CLI_OUTPUT_H */
