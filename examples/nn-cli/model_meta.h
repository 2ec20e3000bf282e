/*
 * What nn-cli keeps beside a libnn model, and the helpers train, predict and evaluate
 * share so that they compute the same numbers from the same rows.
 *
 * Metadata keys (nn_set_metadata; all text):
 *   nn-cli.format   "1"
 *   nn-cli.task     "classify" or "regress"
 *   nn-cli.label    the label column's name
 *   nn-cli.columns  the feature columns' names, in the model's input order
 *   nn-cli.means    the features' training means, %.17g, comma-separated
 *   nn-cli.stds     the features' scales (population standard deviation, 1 if constant)
 *   nn-cli.labels   classify: the label strings, class index order
 *   nn-cli.target   regress: "mean,std" of the label, which the net learns standardised
 * Name lists are comma-separated with '%', ',', CR and LF written as %25, %2C, %0D, %0A.
 */
#ifndef NN_CLI_MODEL_META_H
#define NN_CLI_MODEL_META_H

#include <nn/nn.h>

#include <stddef.h>
#include <stdint.h>

#include "csv.h"

typedef enum cli_task { CLI_CLASSIFY = 0, CLI_REGRESS = 1 } cli_task;

typedef struct cli_meta {
    cli_task task;
    char *label;          /* label column name */
    size_t n_features;
    char **columns;       /* (n_features) feature column names */
    double *mean;         /* (n_features) */
    double *scale;        /* (n_features) */
    size_t n_classes;     /* classify: the model's outputs */
    char **classes;       /* (n_classes) label strings; classify only */
    double target_mean;   /* regress only */
    double target_scale;  /* regress only */
} cli_meta;

char *cli_strdup(const char *text);

/* Stores `meta` in the model's metadata. Returns 0, or 1 after printing libnn's message. */
int meta_save(nn_model *model, const cli_meta *meta);

/* Reads it back, checked against the model's layer sizes. Returns 0, or 1 after a
 * message naming `model_path`. `out` is owned by the caller (meta_free). */
int meta_load(nn_model *model, const char *model_path, cli_meta *out);

void meta_free(cli_meta *meta);

/* For each model feature, the index of the CSV column of that name. Returns 0, or 2
 * after naming the missing column. */
int meta_match_columns(const cli_meta *meta, const csv_table *table, size_t *out_cols);

/* The class index of a label string, or -1 if the model never saw it. */
int32_t meta_class_index(const cli_meta *meta, const char *label);

/* Builds the (n_rows, n_cols) matrix of table rows `rows` (NULL: all rows in order) and
 * columns `cols` into a new buffer `*out`. Returns 0; 2 after naming a bad cell;
 * 1 if out of memory. */
int table_matrix(const csv_table *table, const size_t *rows, size_t n_rows, const size_t *cols,
                 size_t n_cols, double **out);

/* Accuracy of the model's classes against `targets` (-1: a label the model does not
 * know, always wrong). `x` is standardised. Returns 0, or 1 after libnn's message. */
int score_accuracy(nn_model *model, const double *x, size_t rows, size_t cols,
                   const int32_t *targets, double *out_accuracy);

/* Regression predictions in the label's own units into `out` (rows). */
int predict_values(nn_model *model, const cli_meta *meta, const double *x, size_t rows,
                   double *out);

/* Mean squared error, in the label's units, of the predictions against `y`. */
int score_mse(nn_model *model, const cli_meta *meta, const double *x, size_t rows,
              const double *y, double *out_mse);

#endif /* NN_CLI_MODEL_META_H */
