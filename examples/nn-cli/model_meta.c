#include "model_meta.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "output.h"
#include "standardize.h"

char *cli_strdup(const char *text)
{
    size_t n = strlen(text) + 1;
    char *copy = malloc(n);
    if (copy)
        memcpy(copy, text, n);
    return copy;
}

/* ---- name lists: comma-separated, with %, comma, CR and LF escaped ---- */

static char *encode_names(char *const *names, size_t n)
{
    size_t len = 1;
    for (size_t i = 0; i < n; ++i)
        len += 3 * strlen(names[i]) + 1;
    char *text = malloc(len), *w = text;
    if (!text)
        return NULL;
    for (size_t i = 0; i < n; ++i) {
        if (i)
            *w++ = ',';
        for (const char *c = names[i]; *c; ++c) {
            if (*c == '%' || *c == ',' || *c == '\r' || *c == '\n')
                w += sprintf(w, "%%%02X", (unsigned)(unsigned char)*c);
            else
                *w++ = *c;
        }
    }
    *w = '\0';
    return text;
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Splits `text` into exactly `n` names (a new array of new strings); NULL if it does
 * not hold exactly `n` well-formed names or memory runs out. */
static char **decode_names(const char *text, size_t n)
{
    char **names = calloc(n ? n : 1, sizeof *names);
    if (!names)
        return NULL;
    const char *p = text;
    for (size_t i = 0; i < n; ++i) {
        const char *end = strchr(p, ',');
        if (!end)
            end = p + strlen(p);
        if ((i + 1 < n) != (*end == ','))
            goto bad;
        char *name = malloc((size_t)(end - p) + 1), *w = name;
        if (!name)
            goto bad;
        names[i] = name;
        for (; p < end; ++p) {
            if (*p != '%') {
                *w++ = *p;
                continue;
            }
            int hi = p + 2 < end ? hex_digit(p[1]) : -1, lo = hi >= 0 ? hex_digit(p[2]) : -1;
            if (lo < 0)
                goto bad;
            *w++ = (char)(hi * 16 + lo);
            p += 2;
        }
        *w = '\0';
        p = end + (*end == ',');
    }
    return names;
bad:
    for (size_t i = 0; i < n; ++i)
        free(names[i]);
    free(names);
    return NULL;
}

static void free_names(char **names, size_t n)
{
    if (!names)
        return;
    for (size_t i = 0; i < n; ++i)
        free(names[i]);
    free(names);
}

/* ---- the metadata ---- */

static int set_owned(nn_model *model, const char *key, char *value)
{
    if (!value) {
        fprintf(stderr, "nn-cli: out of memory encoding %s\n", key);
        return 1;
    }
    nn_status s = nn_set_metadata(model, key, value);
    free(value);
    if (s != NN_OK) {
        char what[300];
        snprintf(what, sizeof what, "nn_set_metadata(\"%s\")", key);
        return report_nn_error(what, s);
    }
    return 0;
}

int meta_save(nn_model *model, const cli_meta *meta)
{
    int classify = meta->task == CLI_CLASSIFY;
    double target[2] = {meta->target_mean, meta->target_scale};
    char *label = meta->label;
    if (set_owned(model, "nn-cli.format", cli_strdup("1")) ||
        set_owned(model, "nn-cli.task", cli_strdup(classify ? "classify" : "regress")) ||
        set_owned(model, "nn-cli.label", encode_names(&label, 1)) ||
        set_owned(model, "nn-cli.columns", encode_names(meta->columns, meta->n_features)) ||
        set_owned(model, "nn-cli.means", encode_doubles(meta->mean, meta->n_features)) ||
        set_owned(model, "nn-cli.stds", encode_doubles(meta->scale, meta->n_features)))
        return 1;
    if (classify)
        return set_owned(model, "nn-cli.labels", encode_names(meta->classes, meta->n_classes));
    return set_owned(model, "nn-cli.target", encode_doubles(target, 2));
}

/* The value of `key` as a new string, or NULL after a message. */
static char *get_text(nn_model *model, const char *model_path, const char *key)
{
    size_t len = 0;
    if (nn_get_metadata(model, key, NULL, 0, &len) != NN_OK) {
        fprintf(stderr, "nn-cli: %s: no '%s' metadata: %s (was it written by nn-cli train?)\n",
                model_path, key, nn_last_error_message());
        return NULL;
    }
    char *text = malloc(len + 1);
    nn_status s = text ? nn_get_metadata(model, key, text, len + 1, &len) : NN_ERR_OUT_OF_MEMORY;
    if (s != NN_OK) {
        free(text);
        report_nn_error("nn_get_metadata", s);
        return NULL;
    }
    return text;
}

int meta_load(nn_model *model, const char *model_path, cli_meta *out)
{
    memset(out, 0, sizeof *out);
    size_t n_sizes = 0, sizes[1025];
    nn_status s = nn_model_layer_count(model, &n_sizes);
    if (s == NN_OK && (n_sizes < 2 || n_sizes > 1025))
        s = NN_ERR_INTERNAL;
    if (s == NN_OK)
        s = nn_model_layer_sizes(model, sizes, n_sizes);
    if (s != NN_OK)
        return report_nn_error("nn_model_layer_sizes", s);
    out->n_features = sizes[0];
    size_t n_outputs = sizes[n_sizes - 1];

    char *format = get_text(model, model_path, "nn-cli.format");
    char *task = format ? get_text(model, model_path, "nn-cli.task") : NULL;
    char *label = task ? get_text(model, model_path, "nn-cli.label") : NULL;
    char *columns = label ? get_text(model, model_path, "nn-cli.columns") : NULL;
    char *means = columns ? get_text(model, model_path, "nn-cli.means") : NULL;
    char *stds = means ? get_text(model, model_path, "nn-cli.stds") : NULL;
    int ok = stds != NULL, classify = 0;
    const char *bad = NULL;
    if (ok && strcmp(format, "1") != 0)
        bad = "nn-cli.format (a newer nn-cli?)";
    else if (ok && strcmp(task, "classify") != 0 && strcmp(task, "regress") != 0)
        bad = "nn-cli.task";
    classify = ok && strcmp(task, "classify") == 0;
    out->task = classify ? CLI_CLASSIFY : CLI_REGRESS;
    char **label_names = NULL;
    if (ok && !bad) {
        out->columns = decode_names(columns, out->n_features);
        out->mean = malloc(out->n_features * sizeof *out->mean);
        out->scale = malloc(out->n_features * sizeof *out->scale);
        label_names = decode_names(label, 1);
        if (!label_names)
            bad = "nn-cli.label";
        else if (!out->columns)
            bad = "nn-cli.columns";
        else if (!out->mean || !out->scale || decode_doubles(means, out->mean, out->n_features))
            bad = "nn-cli.means";
        else if (decode_doubles(stds, out->scale, out->n_features))
            bad = "nn-cli.stds";
    }
    if (label_names) {
        out->label = label_names[0];
        free(label_names);
    }
    if (ok && !bad && classify) {
        char *labels = get_text(model, model_path, "nn-cli.labels");
        ok = labels != NULL;
        out->n_classes = n_outputs;
        out->classes = ok ? decode_names(labels, n_outputs) : NULL;
        if (ok && !out->classes)
            bad = "nn-cli.labels";
        free(labels);
    } else if (ok && !bad) {
        char *target = get_text(model, model_path, "nn-cli.target");
        double t[2];
        ok = target != NULL;
        if (ok && (n_outputs != 1 || decode_doubles(target, t, 2)))
            bad = "nn-cli.target";
        out->target_mean = ok && !bad ? t[0] : 0.0;
        out->target_scale = ok && !bad ? t[1] : 1.0;
        free(target);
    }
    free(format);
    free(task);
    free(label);
    free(columns);
    free(means);
    free(stds);
    if (ok && bad)
        fprintf(stderr, "nn-cli: %s: the metadata %s does not match the model\n", model_path, bad);
    if (!ok || bad) {
        meta_free(out);
        return 1;
    }
    return 0;
}

void meta_free(cli_meta *meta)
{
    if (!meta)
        return;
    free(meta->label);
    free_names(meta->columns, meta->n_features);
    free_names(meta->classes, meta->n_classes);
    free(meta->mean);
    free(meta->scale);
    memset(meta, 0, sizeof *meta);
}

int meta_match_columns(const cli_meta *meta, const csv_table *table, size_t *out_cols)
{
    for (size_t i = 0; i < meta->n_features; ++i) {
        long c = csv_find_column(table, meta->columns[i]);
        if (c < 0) {
            fprintf(stderr,
                    "nn-cli: %s: line %zu: no column named '%s', which the model was trained on\n",
                    table->path, table->header_line, meta->columns[i]);
            return 2;
        }
        out_cols[i] = (size_t)c;
    }
    return 0;
}

int32_t meta_class_index(const cli_meta *meta, const char *label)
{
    for (size_t k = 0; k < meta->n_classes; ++k)
        if (strcmp(meta->classes[k], label) == 0)
            return (int32_t)k;
    return -1;
}

int table_matrix(const csv_table *table, const size_t *rows, size_t n_rows, const size_t *cols,
                 size_t n_cols, double **out)
{
    *out = NULL;
    double *x = malloc((n_rows ? n_rows : 1) * (n_cols ? n_cols : 1) * sizeof *x);
    if (!x) {
        fprintf(stderr, "nn-cli: out of memory for %zu x %zu numbers\n", n_rows, n_cols);
        return 1;
    }
    for (size_t i = 0; i < n_rows; ++i) {
        size_t r = rows ? rows[i] : i;
        for (size_t j = 0; j < n_cols; ++j) {
            if (csv_number(table, r, cols[j], &x[i * n_cols + j]) != 0) {
                free(x);
                return 2;
            }
        }
    }
    *out = x;
    return 0;
}

int score_accuracy(nn_model *model, const double *x, size_t rows, size_t cols,
                   const int32_t *targets, double *out_accuracy)
{
    int32_t *predicted = malloc(rows * sizeof *predicted);
    if (!predicted) {
        fputs("nn-cli: out of memory\n", stderr);
        return 1;
    }
    nn_status s = nn_predict_classes(model, x, NN_DTYPE_FLOAT64, rows, cols, predicted, rows);
    if (s != NN_OK) {
        free(predicted);
        return report_nn_error("nn_predict_classes", s);
    }
    size_t right = 0;
    for (size_t r = 0; r < rows; ++r)
        right += predicted[r] == targets[r];
    free(predicted);
    *out_accuracy = (double)right / (double)rows;
    return 0;
}

int predict_values(nn_model *model, const cli_meta *meta, const double *x, size_t rows,
                   double *out)
{
    nn_status s = nn_predict(model, x, NN_DTYPE_FLOAT64, rows, meta->n_features,
                             NN_OUTPUT_SCORES, out, NN_DTYPE_FLOAT64, rows);
    if (s != NN_OK)
        return report_nn_error("nn_predict", s);
    for (size_t r = 0; r < rows; ++r)
        out[r] = out[r] * meta->target_scale + meta->target_mean;
    return 0;
}

int score_mse(nn_model *model, const cli_meta *meta, const double *x, size_t rows,
              const double *y, double *out_mse)
{
    double *pred = malloc(rows * sizeof *pred);
    if (!pred) {
        fputs("nn-cli: out of memory\n", stderr);
        return 1;
    }
    if (predict_values(model, meta, x, rows, pred) != 0) {
        free(pred);
        return 1;
    }
    double sum = 0.0;
    for (size_t r = 0; r < rows; ++r)
        sum += (pred[r] - y[r]) * (pred[r] - y[r]);
    free(pred);
    *out_mse = sum / (double)rows;
    return 0;
}
