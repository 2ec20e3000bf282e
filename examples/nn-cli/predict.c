/*
 * nn-cli predict and evaluate: a model written by nn-cli train, applied to a CSV whose
 * columns are matched to the model's by name (extra columns, the label among them, are
 * ignored), with the standardisation stored in the model.
 */
#include <nn/nn.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "csv.h"
#include "model_meta.h"
#include "output.h"
#include "standardize.h"

static void predict_usage(FILE *to)
{
    fputs("usage: nn-cli predict MODEL.nnm DATA.csv [--out PRED.csv]\n"
          "\n"
          "Writes one prediction per data row of DATA.csv as CSV: a header line (the label\n"
          "column's name) and then, for each row, the predicted label string (a classifier) or\n"
          "value (a regressor). DATA.csv needs a header with every feature column the model was\n"
          "trained on, in any order; other columns, the label's among them, are ignored.\n"
          "\n"
          "  --out PRED.csv   write there instead of standard output\n"
          "\n"
          "Exit status: 0 ok; 1 usage, I/O or libnn error; 2 a CSV that cannot be used.\n",
          to);
}

static void evaluate_usage(FILE *to)
{
    fputs("usage: nn-cli evaluate MODEL.nnm DATA.csv\n"
          "\n"
          "Prints the model's accuracy (a classifier: the fraction of rows whose predicted label\n"
          "is the row's label; a label the model never saw counts as wrong) or mean squared\n"
          "error (a regressor, in the label's units) on DATA.csv, which needs the label column\n"
          "and every feature column of the model, matched by name.\n"
          "\n"
          "Exit status: 0 ok; 1 usage, I/O or libnn error; 2 a CSV that cannot be used.\n",
          to);
}

/* MODEL and DATA, and --out when `out` is not NULL. Returns -1 to go on, else the
 * exit status. */
static int parse_args(int argc, char **argv, void (*usage)(FILE *), const char **model,
                      const char **data, const char **out)
{
    *model = *data = NULL;
    for (int i = 1; i < argc; ++i) {
        const char *v = NULL;
        int took = out ? take_option(argc, argv, &i, "--out", &v) : 0;
        if (took < 0)
            return CLI_EXIT_FAILURE;
        if (took) {
            *out = v;
        } else if (is_help(argv[i])) {
            usage(stdout);
            return CLI_EXIT_OK;
        } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            fprintf(stderr, "nn-cli %s: unknown option '%s'\n", argv[0], argv[i]);
            usage(stderr);
            return CLI_EXIT_FAILURE;
        } else if (!*model) {
            *model = argv[i];
        } else if (!*data) {
            *data = argv[i];
        } else {
            fprintf(stderr, "nn-cli %s: '%s' is one argument too many\n", argv[0], argv[i]);
            return CLI_EXIT_FAILURE;
        }
    }
    if (!*data) {
        fprintf(stderr, "nn-cli %s: MODEL.nnm and DATA.csv are required\n", argv[0]);
        usage(stderr);
        return CLI_EXIT_FAILURE;
    }
    return -1;
}

/* Loads the model and its metadata, reads the CSV and builds its standardised feature
 * matrix `*x` (rows, n_features). Returns 0, 1 or 2; on failure nothing is left to free. */
static int load_inputs(const char *model_path, const char *data_path, nn_model **model,
                       cli_meta *meta, csv_table *table, double **x)
{
    *model = NULL;
    *x = NULL;
    memset(table, 0, sizeof *table);
    nn_status s = nn_load(model, model_path);
    if (s != NN_OK)
        return report_nn_error("nn_load", s);
    int rc = meta_load(*model, model_path, meta);
    if (rc == 0)
        rc = csv_read(data_path, table);
    size_t *cols = rc == 0 ? malloc(meta->n_features * sizeof *cols) : NULL;
    if (rc == 0 && !cols) {
        fputs("nn-cli: out of memory\n", stderr);
        rc = CLI_EXIT_FAILURE;
    }
    if (rc == 0)
        rc = meta_match_columns(meta, table, cols);
    if (rc == 0)
        rc = table_matrix(table, NULL, table->n_rows, cols, meta->n_features, x);
    free(cols);
    if (rc == 0) {
        standardize_apply(*x, table->n_rows, meta->n_features, meta->mean, meta->scale);
        return 0;
    }
    csv_free(table);
    meta_free(meta);
    nn_destroy(*model);
    *model = NULL;
    return rc;
}

int cmd_predict(int argc, char **argv)
{
    const char *model_path, *data_path, *out_path = NULL;
    int rc = parse_args(argc, argv, predict_usage, &model_path, &data_path, &out_path);
    if (rc >= 0)
        return rc;
    nn_model *model;
    cli_meta meta;
    csv_table t;
    double *x;
    rc = load_inputs(model_path, data_path, &model, &meta, &t, &x);
    if (rc)
        return rc;
    size_t rows = t.n_rows;
    int32_t *classes = malloc(rows * sizeof *classes);
    double *values = malloc(rows * sizeof *values);
    nn_dtype dtype = NN_DTYPE_FLOAT32;
    rc = CLI_EXIT_FAILURE;
    nn_status s = NN_OK;
    if (!classes || !values) {
        fputs("nn-cli: out of memory\n", stderr);
    } else if ((s = nn_model_dtype(model, &dtype)) != NN_OK) {
        report_nn_error("nn_model_dtype", s);
    } else if (meta.task == CLI_CLASSIFY) {
        s = nn_predict_classes(model, x, NN_DTYPE_FLOAT64, rows, meta.n_features, classes, rows);
        if (s != NN_OK)
            report_nn_error("nn_predict_classes", s);
        else
            rc = 0;
    } else {
        rc = predict_values(model, &meta, x, rows, values);
    }
    if (rc == 0) /* enough digits to read each value back as the model's dtype computed it */
        rc = write_predictions(out_path, stdout, &meta, classes, values, rows,
                               dtype == NN_DTYPE_FLOAT64 ? 17 : 9);
    free(classes);
    free(values);
    free(x);
    csv_free(&t);
    meta_free(&meta);
    nn_destroy(model);
    return rc;
}

int cmd_evaluate(int argc, char **argv)
{
    const char *model_path, *data_path;
    int rc = parse_args(argc, argv, evaluate_usage, &model_path, &data_path, NULL);
    if (rc >= 0)
        return rc;
    nn_model *model;
    cli_meta meta;
    csv_table t;
    double *x;
    rc = load_inputs(model_path, data_path, &model, &meta, &t, &x);
    if (rc)
        return rc;
    size_t rows = t.n_rows, unknown = 0;
    long label_col = csv_find_column(&t, meta.label);
    int32_t *classes = malloc(rows * sizeof *classes);
    double *values = malloc(rows * sizeof *values), score = 0.0;
    rc = CLI_EXIT_FAILURE;
    if (label_col < 0) {
        fprintf(stderr, "nn-cli: %s: line %zu: no label column '%s' to evaluate against\n",
                t.path, t.header_line, meta.label);
        rc = CLI_EXIT_BAD_CSV;
    } else if (!classes || !values) {
        fputs("nn-cli: out of memory\n", stderr);
    } else if (meta.task == CLI_CLASSIFY) {
        for (size_t r = 0; r < rows; ++r) {
            classes[r] = meta_class_index(&meta, csv_cell(&t, r, (size_t)label_col));
            unknown += classes[r] < 0;
        }
        if (unknown)
            fprintf(stderr, "nn-cli: %zu row%s labels the model never saw (counted as wrong)\n",
                    unknown, unknown == 1 ? " has" : "s have");
        rc = score_accuracy(model, x, rows, meta.n_features, classes, &score);
        if (rc == 0)
            printf("accuracy %.6f (%zu rows)\n", score, rows);
    } else {
        rc = 0;
        for (size_t r = 0; r < rows && rc == 0; ++r)
            rc = csv_number(&t, r, (size_t)label_col, &values[r]);
        if (rc == 0)
            rc = score_mse(model, &meta, x, rows, values, &score);
        if (rc == 0)
            printf("mse %.9g (%zu rows)\n", score, rows);
    }
    free(classes);
    free(values);
    free(x);
    csv_free(&t);
    meta_free(&meta);
    nn_destroy(model);
    return rc;
}
