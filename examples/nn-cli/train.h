/* nn-cli train's options, shared by its argument parser and the command. */
#ifndef NN_CLI_TRAIN_H
#define NN_CLI_TRAIN_H

#include <nn/nn.h>

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "model_meta.h"

enum { MAX_HIDDEN = 64 };

typedef struct train_options {
    const char *data, *label, *out, *save_holdout;
    cli_task task;
    size_t hidden[MAX_HIDDEN]; /* (n_hidden) hidden layer sizes */
    size_t n_hidden;
    nn_activation activation;
    size_t epochs, batch;
    double lr, holdout;
    nn_device_kind device;
    uint32_t seed;
    nn_dtype dtype;
} train_options;

void train_usage(FILE *to);

/* Parses the arguments after "train" (argv[0] is "train") into `opt`; returns -1 to go
 * on, else the exit status (0 after --help). */
int parse_train_args(int argc, char **argv, train_options *opt);

#endif /* NN_CLI_TRAIN_H */
