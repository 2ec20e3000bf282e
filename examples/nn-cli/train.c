/*
 * nn-cli train: CSV → standardised features (and class indices) → an MLP trained one
 * epoch per nn_fit call → a model file with everything predict needs in its metadata.
 *
 * One random stream, seeded with --seed, draws the holdout split, then the initial
 * weights, then every epoch's shuffle, so a run is reproducible from its seed.
 */
#include <nn/nn.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "csv.h"
#include "model_meta.h"
#include "output.h"
#include "standardize.h"
#include "train.h"

/* The label column: a header name first, else a 0-based index. Returns 0 or 2. */
static int find_label(const csv_table *t, const char *label, size_t *out)
{
    long named = csv_find_column(t, label);
    if (named >= 0) {
        *out = (size_t)named;
        return 0;
    }
    size_t index = 0;
    int numeric = label[0] >= '0' && label[0] <= '9' && strspn(label, "0123456789") == strlen(label);
    if (!numeric) {
        fprintf(stderr, "nn-cli: %s: line %zu: no column named '%s' in the header\n", t->path,
                t->header_line, label);
        return CLI_EXIT_BAD_CSV;
    }
    errno = 0;
    index = (size_t)strtoull(label, NULL, 10);
    if (errno || index >= t->n_cols) {
        fprintf(stderr, "nn-cli: %s: line %zu: --label %s is out of range: the header has %zu columns (0 to %zu)\n",
                t->path, t->header_line, label, t->n_cols, t->n_cols - 1);
        return CLI_EXIT_BAD_CSV;
    }
    *out = index;
    return 0;
}

/* Header checks and the class list or numeric labels. Returns 0, 1 or 2. */
static int read_targets(const csv_table *t, size_t label_col, cli_meta *meta, int32_t *classes,
                        double *values)
{
    for (size_t a = 0; a < t->n_cols; ++a)
        for (size_t b = a + 1; b < t->n_cols; ++b)
            if (strcmp(t->header[a], t->header[b]) == 0) {
                fprintf(stderr, "nn-cli: %s: line %zu: columns %zu and %zu are both named '%s'\n",
                        t->path, t->header_line, a + 1, b + 1, t->header[a]);
                return CLI_EXIT_BAD_CSV;
            }
    if (t->n_cols < 2) {
        fprintf(stderr, "nn-cli: %s: line %zu: no feature columns beside the label '%s'\n",
                t->path, t->header_line, t->header[label_col]);
        return CLI_EXIT_BAD_CSV;
    }
    if (meta->task == CLI_REGRESS) {
        for (size_t r = 0; r < t->n_rows; ++r)
            if (csv_number(t, r, label_col, &values[r]))
                return CLI_EXIT_BAD_CSV;
        return 0;
    }
    meta->classes = malloc(t->n_rows * sizeof *meta->classes);
    if (!meta->classes)
        return CLI_EXIT_FAILURE;
    for (size_t r = 0; r < t->n_rows; ++r) {
        const char *label = csv_cell(t, r, label_col);
        if (label[0] == '\0') {
            fprintf(stderr, "nn-cli: %s: line %zu, column %zu ('%s'): the label is empty\n",
                    t->path, t->row_line[r], label_col + 1, t->header[label_col]);
            return CLI_EXIT_BAD_CSV;
        }
        int32_t k = meta_class_index(meta, label);
        if (k < 0) {
            meta->classes[meta->n_classes] = cli_strdup(label);
            if (!meta->classes[meta->n_classes])
                return CLI_EXIT_FAILURE;
            k = (int32_t)meta->n_classes++;
        }
        classes[r] = k;
    }
    if (meta->n_classes < 2) {
        fprintf(stderr, "nn-cli: %s: line %zu: the label column '%s' has one value only ('%s'); "
                        "a classifier needs two or more\n",
                t->path, t->row_line[t->n_rows - 1], t->header[label_col], meta->classes[0]);
        return CLI_EXIT_BAD_CSV;
    }
    return 0;
}

static int compare_index(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}


/* Trains one epoch per nn_fit call, so progress shows after each. Returns 0 or 1.
 * The histories, the epoch counter and the shared stream carry over between calls, but
 * the row order does not: each call permutes the rows as given, where one
 * nn_fit(epochs = N) would compound N permutations. Both are uniformly random orders,
 * so training is as good, but not bit-identical to a single call. */
static int fit_epochs(nn_model *model, const train_options *opt, nn_rng *rng, const double *x,
                      size_t rows, size_t cols, const void *targets, nn_target_type target_type)
{
    nn_fit_options fit;
    nn_fit_options_init(&fit);
    fit.epochs = 1;
    fit.batch_size = opt->batch;
    fit.learning_rate = opt->lr;
    fit.report_interval = 0; /* the epoch history is all this tool reads */
    fit.rng = rng;
    progress bar;
    progress_begin(&bar, opt->epochs);
    double loss = 0.0;
    for (size_t epoch = 1; epoch <= opt->epochs; ++epoch) {
        nn_fit_report report;
        nn_fit_report_init(&report);
        nn_status s = nn_fit(model, x, NN_DTYPE_FLOAT64, rows, cols, targets, target_type, 1, &fit,
                             &report);
        if (s != NN_OK) {
            progress_end(&bar);
            return report_nn_error("nn_fit", s);
        }
        loss = report.final_loss;
        progress_epoch(&bar, epoch, loss);
        if (!isfinite(loss)) {
            progress_end(&bar);
            fprintf(stderr, "nn-cli: training diverged at epoch %zu (loss %g); try a smaller --lr "
                            "than %g\n", epoch, loss, opt->lr);
            return CLI_EXIT_FAILURE;
        }
    }
    double seconds = progress_end(&bar);
    printf("trained %zu epochs on %zu rows in %.2f s, final loss %.6g\n", opt->epochs, rows,
           seconds, loss);
    return 0;
}

/* Creates the model on the requested device. Returns 0 or 1. */
static int create_model(nn_model **out, const train_options *opt, const cli_meta *meta,
                        nn_rng *rng)
{
    size_t sizes[MAX_HIDDEN + 2], n = 0;
    sizes[n++] = meta->n_features;
    for (size_t i = 0; i < opt->n_hidden; ++i)
        sizes[n++] = opt->hidden[i];
    sizes[n++] = meta->task == CLI_CLASSIFY ? meta->n_classes : 1;
    nn_model_desc desc;
    nn_model_desc_init(&desc);
    desc.n_layer_sizes = n;
    desc.layer_sizes = sizes;
    desc.hidden_activation = opt->activation;
    desc.loss = meta->task == CLI_CLASSIFY ? NN_LOSS_SOFTMAX_CROSS_ENTROPY : NN_LOSS_MEAN_SQUARED_ERROR;
    desc.dtype = opt->dtype;
    /* The book's 0.01·randn starves deeper nets of signal; scale to the fan-in instead. */
    desc.init = opt->activation == NN_ACTIVATION_RELU ? NN_INIT_HE : NN_INIT_XAVIER;
    desc.rng = rng;
    nn_status s = nn_create(out, &desc);
    if (s != NN_OK)
        return report_nn_error("nn_create", s);
    s = nn_set_device(*out, opt->device, 0);
    if (s != NN_OK)
        return report_nn_error("nn_set_device", s);
    nn_device_info info;
    nn_device_info_init(&info);
    s = nn_get_device(*out, &info);
    if (s != NN_OK)
        return report_nn_error("nn_get_device", s);
    printf("model");
    for (size_t i = 0; i < n; ++i)
        printf("%s%zu", i ? "-" : " ", sizes[i]);
    printf(" on %s\n", info.name);
    return 0;
}

/* Reports accuracy (classify) or MSE (regress) of `rows` standardised rows. */
static int report_score(nn_model *model, const cli_meta *meta, const char *what, const double *x,
                        size_t rows, const int32_t *classes, const double *values)
{
    double score = 0.0;
    if (meta->task == CLI_CLASSIFY) {
        if (score_accuracy(model, x, rows, meta->n_features, classes, &score))
            return 1;
        printf("%s accuracy %.6f (%zu rows)\n", what, score, rows);
    } else {
        if (score_mse(model, meta, x, rows, values, &score))
            return 1;
        printf("%s mse %.9g (%zu rows)\n", what, score, rows);
    }
    return 0;
}

int cmd_train(int argc, char **argv)
{
    train_options opt;
    int rc = parse_train_args(argc, argv, &opt);
    if (rc >= 0)
        return rc;
    csv_table t;
    rc = csv_read(opt.data, &t);
    if (rc)
        return rc;

    cli_meta meta = {.task = opt.task, .target_scale = 1.0};
    size_t rows = t.n_rows, label_col = 0, n_hold = 0, n_train = rows, nf = t.n_cols - 1;
    int32_t *classes = calloc(rows, sizeof *classes);
    double *values = calloc(rows, sizeof *values), *x_train = NULL, *x_hold = NULL;
    int32_t *c_split = malloc(rows * sizeof *c_split);   /* (rows) holdout then train */
    double *y_split = malloc(rows * sizeof *y_split);    /* (rows) holdout then train */
    double *y_train_std = malloc(rows * sizeof *y_train_std);
    int64_t *perm = malloc(rows * sizeof *perm);
    size_t *order = malloc(rows * sizeof *order), *cols = malloc(t.n_cols * sizeof *cols);
    nn_rng *rng = NULL;
    nn_model *model = NULL;
    rc = CLI_EXIT_FAILURE;
    if (!classes || !values || !c_split || !y_split || !y_train_std || !perm || !order || !cols) {
        fputs("nn-cli: out of memory\n", stderr);
        goto done;
    }
    if ((rc = find_label(&t, opt.label, &label_col)) != 0 ||
        (rc = read_targets(&t, label_col, &meta, classes, values)) != 0)
        goto done;
    rc = CLI_EXIT_FAILURE;

    /* The features: every column but the label, in file order. */
    meta.n_features = nf;
    meta.label = cli_strdup(t.header[label_col]);
    meta.columns = calloc(nf, sizeof *meta.columns);
    meta.mean = malloc(nf * sizeof *meta.mean);
    meta.scale = malloc(nf * sizeof *meta.scale);
    if (!meta.label || !meta.columns || !meta.mean || !meta.scale)
        goto done;
    for (size_t c = 0, j = 0; c < t.n_cols; ++c) {
        if (c == label_col)
            continue;
        cols[j] = c;
        if (!(meta.columns[j++] = cli_strdup(t.header[c])))
            goto done;
    }

    /* The split: the first n_hold rows of a permutation are held out, in file order. */
    nn_status s = nn_rng_create(&rng, opt.seed);
    if (s != NN_OK) {
        rc = report_nn_error("nn_rng_create", s);
        goto done;
    }
    if (opt.holdout > 0.0) {
        n_hold = (size_t)floor(opt.holdout * (double)rows + 0.5);
        if (n_hold == 0 || n_hold >= rows) {
            fprintf(stderr, "nn-cli: --holdout %g of %zu rows leaves %s\n", opt.holdout, rows,
                    n_hold == 0 ? "no row to hold out" : "no row to train on");
            goto done;
        }
        if ((s = nn_rng_permutation(rng, perm, rows)) != NN_OK) {
            rc = report_nn_error("nn_rng_permutation", s);
            goto done;
        }
        qsort(perm, n_hold, sizeof *perm, compare_index);
    } else {
        for (size_t r = 0; r < rows; ++r)
            perm[r] = (int64_t)r;
    }
    n_train = rows - n_hold;
    for (size_t r = 0; r < rows; ++r) {
        order[r] = (size_t)perm[r];
        c_split[r] = classes[order[r]];
        y_split[r] = values[order[r]];
    }
    if ((rc = table_matrix(&t, order + n_hold, n_train, cols, nf, &x_train)) != 0 ||
        (rc = table_matrix(&t, order, n_hold, cols, nf, &x_hold)) != 0)
        goto done;
    rc = CLI_EXIT_FAILURE;

    /* Standardise with the training rows' statistics only. */
    standardize_fit(x_train, n_train, nf, meta.mean, meta.scale);
    standardize_apply(x_train, n_train, nf, meta.mean, meta.scale);
    standardize_apply(x_hold, n_hold, nf, meta.mean, meta.scale);
    if (meta.task == CLI_REGRESS) {
        standardize_fit(y_split + n_hold, n_train, 1, &meta.target_mean, &meta.target_scale);
        memcpy(y_train_std, y_split + n_hold, n_train * sizeof *y_train_std);
        standardize_apply(y_train_std, n_train, 1, &meta.target_mean, &meta.target_scale);
    }
    if (meta.task == CLI_CLASSIFY)
        printf("%zu rows, %zu features, %zu classes\n", rows, nf, meta.n_classes);
    else
        printf("%zu rows, %zu features, regression on '%s'\n", rows, nf, meta.label);

    if (create_model(&model, &opt, &meta, rng))
        goto done;
    if (meta.task == CLI_CLASSIFY)
        rc = fit_epochs(model, &opt, rng, x_train, n_train, nf, c_split + n_hold,
                        NN_TARGET_CLASS_INDEX);
    else
        rc = fit_epochs(model, &opt, rng, x_train, n_train, nf, y_train_std,
                        NN_TARGET_ROWS_FLOAT64);
    if (rc)
        goto done;
    rc = CLI_EXIT_FAILURE;
    if (report_score(model, &meta, "train", x_train, n_train, c_split + n_hold, y_split + n_hold))
        goto done;
    if (n_hold && report_score(model, &meta, "holdout", x_hold, n_hold, c_split, y_split))
        goto done;
    if (meta_save(model, &meta))
        goto done;
    if ((s = nn_save(model, opt.out, NULL)) != NN_OK) {
        rc = report_nn_error("nn_save", s);
        goto done;
    }
    printf("saved %s\n", opt.out);
    if (opt.save_holdout && !n_hold)
        fprintf(stderr, "nn-cli: --save-holdout %s: nothing to write without --holdout\n",
                opt.save_holdout);
    if (opt.save_holdout && n_hold) {
        if (csv_write_rows(&t, order, n_hold, opt.save_holdout))
            goto done;
        printf("held-out rows written to %s\n", opt.save_holdout);
    }
    rc = CLI_EXIT_OK;
done:
    nn_destroy(model);
    nn_rng_destroy(rng);
    meta_free(&meta);
    free(classes);
    free(values);
    free(x_train);
    free(x_hold);
    free(c_split);
    free(y_split);
    free(y_train_std);
    free(perm);
    free(order);
    free(cols);
    csv_free(&t);
    return rc;
}
