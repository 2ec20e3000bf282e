/*
 * Times the book's chapter-1 training (spiral 300 × 2, 2-10-3 sigmoid/softmax net,
 * 300 epochs of SGD, batch 30, lr 1.0, Trainer reports every 10 steps) through libnn's
 * C API. Only the nn_fit call is timed ("in-loop" time, the counterpart of the NumPy
 * script's training loop); data, model creation and device placement happen before.
 *
 *   bench_spiral [--dtype float32|float64|both] [--repeat N] [--device auto|cpu|cuda|reference]
 *                [--optimizer NAME[,NAME...]] [--lr RATE]
 *
 * --optimizer (default sgd) picks the update rule among sgd, momentum, nesterov, adagrad,
 * rmsprop and adam, each with its learning rate of the table below (the same as
 * numpy_spiral.py's) and the book's other defaults; --lr overrides the rate. Given a
 * list, each repeat runs every dtype with every optimizer in turn (sgd,adam: SGD, Adam,
 * SGD, Adam, ...), so that an optimizer's cost over SGD can be paired run by run.
 *
 * Prints one line per run:
 *   libnn <dtype> run <i> in_loop_s <seconds> report_s <seconds> final_record <loss> device <name>
 * and for any optimizer but SGD the same line ending in "optimizer <name>".
 * run.sh alternates this program with numpy_spiral.py and takes medians.
 */
#define _POSIX_C_SOURCE 199309L

#include <nn/nn.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { POINTS_PER_CLASS = 100, N_CLASSES = 3, N_ROWS = 300, N_INPUTS = 2, N_HIDDEN = 10 };

/* Each optimizer's learning rate here, as numpy_spiral.py's OPTIMIZERS: SGD the book's
 * 1.0; the momentum methods 0.1 (their steady step is about 10 lr·g); AdaGrad 0.5,
 * RMSprop 0.01, Adam 0.02. Every other hyperparameter is nn_fit_options_init's (the book's). */
static const struct bench_optimizer {
    const char *name;
    nn_optimizer kind;
    double learning_rate;
} optimizers[] = {
    {"sgd", NN_OPTIMIZER_SGD, 1.0},          {"momentum", NN_OPTIMIZER_MOMENTUM, 0.1},
    {"nesterov", NN_OPTIMIZER_NESTEROV, 0.1}, {"adagrad", NN_OPTIMIZER_ADAGRAD, 0.5},
    {"rmsprop", NN_OPTIMIZER_RMSPROP, 0.01},  {"adam", NN_OPTIMIZER_ADAM, 0.02},
};
enum { N_OPTIMIZERS = sizeof optimizers / sizeof optimizers[0], MAX_LIST = 16 };

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int fail(const char *what, nn_status status)
{
    fprintf(stderr, "bench_spiral: %s failed: %s: %s\n", what, nn_status_string(status),
            nn_last_error_message());
    return 1;
}

#define CHECK(call)                                 \
    do {                                            \
        nn_status status_ = (call);                 \
        if (status_ != NN_OK) {                     \
            rc = fail(#call, status_);              \
            goto done;                              \
        }                                           \
    } while (0)

/* One run: a fresh stream seeded 1984 feeds data, weights and shuffle as in the book. */
static int run_once(nn_dtype dtype, nn_device_kind device, const struct bench_optimizer *opt,
                    double learning_rate, int index)
{
    int rc = 0;
    nn_rng *rng = NULL;
    nn_model *model = NULL;
    static double x[N_ROWS * N_INPUTS]; /* (300, 2) */
    static int32_t t[N_ROWS];

    CHECK(nn_rng_create(&rng, 1984));
    CHECK(nn_dataset_spiral(x, N_ROWS * N_INPUTS, t, N_ROWS, POINTS_PER_CLASS, N_CLASSES, rng, 0));

    const size_t sizes[] = {N_INPUTS, N_HIDDEN, N_CLASSES};
    nn_model_desc desc;
    nn_model_desc_init(&desc);
    desc.n_layer_sizes = 3;
    desc.layer_sizes = sizes;
    desc.dtype = dtype;
    desc.rng = rng;
    CHECK(nn_create(&model, &desc));
    CHECK(nn_set_device(model, device, 0));

    nn_fit_options fit;
    nn_fit_options_init(&fit);
    fit.epochs = 300;
    fit.batch_size = 30;
    fit.optimizer = opt->kind;
    fit.learning_rate = learning_rate > 0.0 ? learning_rate : opt->learning_rate;
    fit.report_interval = 10;
    fit.rng = rng;
    nn_fit_report report;
    nn_fit_report_init(&report);

    double t0 = now_s();
    nn_status fit_status = nn_fit(model, x, NN_DTYPE_FLOAT64, N_ROWS, N_INPUTS, t,
                                  NN_TARGET_CLASS_INDEX, 1, &fit, &report);
    double elapsed = now_s() - t0;
    CHECK(fit_status);

    nn_loss_record last;
    size_t n_records = 0;
    CHECK(nn_get_loss_history(model, NULL, 0, &n_records));
    if (n_records == 0) {
        fprintf(stderr, "bench_spiral: no loss records\n");
        rc = 1;
        goto done;
    }
    /* The history is copied oldest first, so fetch all and keep the last. */
    nn_loss_record *all = malloc(n_records * sizeof *all);
    if (all == NULL) {
        fprintf(stderr, "bench_spiral: out of memory\n");
        rc = 1;
        goto done;
    }
    nn_status st = nn_get_loss_history(model, all, n_records, &n_records);
    last = all[n_records - 1];
    free(all);
    CHECK(st);

    nn_device_info info;
    nn_device_info_init(&info);
    CHECK(nn_get_device(model, &info));
    printf("libnn %s run %d in_loop_s %.6f report_s %.6f final_record %.4f device %s%s%s\n",
           dtype == NN_DTYPE_FLOAT32 ? "float32" : "float64", index, elapsed, report.seconds,
           last.loss, info.name, opt->kind == NN_OPTIMIZER_SGD ? "" : " optimizer ",
           opt->kind == NN_OPTIMIZER_SGD ? "" : opt->name);
    fflush(stdout);

done:
    nn_destroy(model);
    nn_rng_destroy(rng);
    return rc;
}

int main(int argc, char **argv)
{
    int do32 = 1, do64 = 1, repeat = 1;
    nn_device_kind device = NN_DEVICE_AUTO;
    const struct bench_optimizer *list[MAX_LIST] = {&optimizers[0]};
    size_t n_list = 1;
    double learning_rate = 0.0; /* 0: each optimizer's own */
    for (int i = 1; i < argc; ++i) {
        const char *arg = argv[i];
        const char *value = i + 1 < argc ? argv[i + 1] : NULL;
        if (value == NULL) {
            fprintf(stderr, "bench_spiral: %s needs a value\n", arg);
            return 1;
        }
        ++i;
        if (strcmp(arg, "--dtype") == 0) {
            do32 = strcmp(value, "float32") == 0 || strcmp(value, "both") == 0;
            do64 = strcmp(value, "float64") == 0 || strcmp(value, "both") == 0;
            if (!do32 && !do64) {
                fprintf(stderr, "bench_spiral: --dtype float32|float64|both\n");
                return 1;
            }
        } else if (strcmp(arg, "--repeat") == 0) {
            repeat = atoi(value);
            if (repeat < 1) {
                fprintf(stderr, "bench_spiral: --repeat must be at least 1\n");
                return 1;
            }
        } else if (strcmp(arg, "--device") == 0) {
            if (strcmp(value, "auto") == 0) device = NN_DEVICE_AUTO;
            else if (strcmp(value, "cpu") == 0) device = NN_DEVICE_CPU;
            else if (strcmp(value, "cuda") == 0) device = NN_DEVICE_CUDA;
            else if (strcmp(value, "reference") == 0) device = NN_DEVICE_REFERENCE;
            else {
                fprintf(stderr, "bench_spiral: --device auto|cpu|cuda|reference\n");
                return 1;
            }
        } else if (strcmp(arg, "--optimizer") == 0) {
            n_list = 0;
            for (const char *p = value; *p != '\0';) {
                size_t len = strcspn(p, ",");
                size_t k = 0;
                while (k < N_OPTIMIZERS &&
                       (strlen(optimizers[k].name) != len || strncmp(optimizers[k].name, p, len) != 0))
                    ++k;
                if (k == N_OPTIMIZERS || n_list == MAX_LIST) {
                    fprintf(stderr, "bench_spiral: --optimizer takes up to %d of sgd, momentum,"
                                    " nesterov, adagrad, rmsprop, adam, comma-separated\n",
                            (int)MAX_LIST);
                    return 1;
                }
                list[n_list++] = &optimizers[k];
                p += len;
                if (*p == ',')
                    ++p;
            }
            if (n_list == 0) {
                fprintf(stderr, "bench_spiral: --optimizer needs a name\n");
                return 1;
            }
        } else if (strcmp(arg, "--lr") == 0) {
            char *end = NULL;
            learning_rate = strtod(value, &end);
            if (end == value || *end != '\0' || !(learning_rate > 0.0)) {
                fprintf(stderr, "bench_spiral: --lr must be a number above 0\n");
                return 1;
            }
        } else {
            fprintf(stderr, "usage: bench_spiral [--dtype float32|float64|both] [--repeat N]"
                            " [--device auto|cpu|cuda|reference] [--optimizer NAME[,NAME...]]"
                            " [--lr RATE]\n");
            return 1;
        }
    }
    for (int r = 0; r < repeat; ++r) {
        for (size_t k = 0; k < n_list; ++k)
            if (do32 && run_once(NN_DTYPE_FLOAT32, device, list[k], learning_rate, r) != 0)
                return 1;
        for (size_t k = 0; k < n_list; ++k)
            if (do64 && run_once(NN_DTYPE_FLOAT64, device, list[k], learning_rate, r) != 0)
                return 1;
    }
    return 0;
}
