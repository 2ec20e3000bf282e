/*
 * nn_predict through the C API, µs per call: one row and 1,000 rows, on the book's spiral
 * net (2-10-3 sigmoid, trained as in bench_spiral: 300 epochs of SGD, batch 30, lr 1.0) in
 * float32 and float64, and on the wide net (784-1024-1024-10 ReLU, float32, He initial
 * weights, untrained: the work per call does not depend on the values). Inputs are in
 * the model's dtype, the output is the scores (NN_OUTPUT_SCORES) in the model's dtype, so
 * no conversion beyond libnn's own copy is timed.
 *
 *   bench_predict [--rounds R] [--target-s S] [--nets spiral,wide]
 *
 * Each measurement first calibrates how many calls take about S seconds (default 0.05),
 * then times R rounds (default 7) of that many calls; the figure is the median round's
 * µs per call. Threads: OPENBLAS_NUM_THREADS (bench/run pins 1 thread to one core).
 *
 * Prints one line per measurement:
 *   libnn predict net <spiral|wide> dtype <d> rows <n> us_per_call <median> min_us <x> max_us <x> calls <n>
 */
#define _POSIX_C_SOURCE 199309L

#include <nn/nn.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { MAX_ROUNDS = 64 };

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int fail(const char *what, nn_status status)
{
    fprintf(stderr, "bench_predict: %s failed: %s: %s\n", what, nn_status_string(status), nn_last_error_message());
    return 1;
}

static size_t calls_in(nn_model *m, const void *x, nn_dtype dt, size_t rows, size_t cols, void *out, size_t cap,
                       double target_s)
{
    size_t n = 1;
    for (;;) {
        double t0 = now_s();
        for (size_t i = 0; i < n; ++i)
            nn_predict(m, x, dt, rows, cols, NN_OUTPUT_SCORES, out, dt, cap);
        double t = now_s() - t0;
        if (t >= target_s / 4 || n >= ((size_t)1 << 30)) {
            double want = (double)n * target_s / (t > 0 ? t : 1e-9);
            return want < 1 ? 1 : (size_t)want;
        }
        n *= 4;
    }
}

static int measure(const char *net, nn_model *m, nn_dtype dt, size_t rows, size_t cols, size_t outs, int rounds,
                   double target_s)
{
    const size_t esize = dt == NN_DTYPE_FLOAT64 ? 8 : 4;
    unsigned char *x = malloc(rows * cols * esize), *out = malloc(rows * outs * esize);
    if (x == NULL || out == NULL) {
        fprintf(stderr, "bench_predict: out of memory\n");
        return 1;
    }
    uint64_t s = 7;
    for (size_t i = 0; i < rows * cols; ++i) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        double v = (double)(s >> 11) * 0x1p-53 * 2.0 - 1.0;
        if (dt == NN_DTYPE_FLOAT64)
            ((double *)x)[i] = v;
        else
            ((float *)x)[i] = (float)v;
    }
    nn_status st = nn_predict(m, x, dt, rows, cols, NN_OUTPUT_SCORES, out, dt, rows * outs); /* warm, and checked */
    if (st != NN_OK) {
        free(x);
        free(out);
        return fail("nn_predict", st);
    }
    const size_t calls = calls_in(m, x, dt, rows, cols, out, rows * outs, target_s);
    double us[MAX_ROUNDS];
    for (int r = 0; r < rounds; ++r) {
        double t0 = now_s();
        for (size_t i = 0; i < calls; ++i)
            nn_predict(m, x, dt, rows, cols, NN_OUTPUT_SCORES, out, dt, rows * outs);
        us[r] = (now_s() - t0) / (double)calls * 1e6;
    }
    qsort(us, (size_t)rounds, sizeof us[0], cmp_double);
    const double median = rounds % 2 ? us[rounds / 2] : 0.5 * (us[rounds / 2 - 1] + us[rounds / 2]);
    printf("libnn predict net %s dtype %s rows %zu us_per_call %.3f min_us %.3f max_us %.3f calls %zu\n", net,
           dt == NN_DTYPE_FLOAT64 ? "float64" : "float32", rows, median, us[0], us[rounds - 1], calls);
    fflush(stdout);
    free(x);
    free(out);
    return 0;
}

static int spiral(nn_dtype dt, int rounds, double target_s)
{
    int rc = 0;
    nn_rng *rng = NULL;
    nn_model *m = NULL;
    static double x[600];
    static int32_t t[300];
    nn_status s = nn_rng_create(&rng, 1984);
    if (s == NN_OK) s = nn_dataset_spiral(x, 600, t, 300, 100, 3, rng, 0);
    const size_t sizes[] = {2, 10, 3};
    nn_model_desc desc;
    nn_model_desc_init(&desc);
    desc.n_layer_sizes = 3;
    desc.layer_sizes = sizes;
    desc.dtype = dt;
    desc.rng = rng;
    if (s == NN_OK) s = nn_create(&m, &desc);
    if (s == NN_OK) s = nn_set_device(m, NN_DEVICE_AUTO, 0);
    nn_fit_options fit;
    nn_fit_options_init(&fit);
    fit.epochs = 300;
    fit.batch_size = 30;
    fit.learning_rate = 1.0;
    fit.report_interval = 10;
    fit.rng = rng;
    if (s == NN_OK) s = nn_fit(m, x, NN_DTYPE_FLOAT64, 300, 2, t, NN_TARGET_CLASS_INDEX, 1, &fit, NULL);
    if (s != NN_OK)
        rc = fail("spiral net", s);
    if (rc == 0) rc = measure("spiral", m, dt, 1, 2, 3, rounds, target_s);
    if (rc == 0) rc = measure("spiral", m, dt, 1000, 2, 3, rounds, target_s);
    nn_destroy(m);
    nn_rng_destroy(rng);
    return rc;
}

static int wide(int rounds, double target_s)
{
    nn_model *m = NULL;
    const size_t sizes[] = {784, 1024, 1024, 10};
    nn_model_desc desc;
    nn_model_desc_init(&desc);
    desc.n_layer_sizes = 4;
    desc.layer_sizes = sizes;
    desc.hidden_activation = NN_ACTIVATION_RELU;
    desc.init = NN_INIT_HE;
    nn_status s = nn_create(&m, &desc);
    if (s == NN_OK) s = nn_set_device(m, NN_DEVICE_AUTO, 0);
    int rc = s != NN_OK ? fail("wide net", s) : 0;
    if (rc == 0) rc = measure("wide", m, NN_DTYPE_FLOAT32, 1, 784, 10, rounds, target_s);
    if (rc == 0) rc = measure("wide", m, NN_DTYPE_FLOAT32, 1000, 784, 10, rounds, target_s);
    nn_destroy(m);
    return rc;
}

int main(int argc, char **argv)
{
    int rounds = 7, do_spiral = 1, do_wide = 1;
    double target_s = 0.05;
    for (int i = 1; i < argc; i += 2) {
        const char *arg = argv[i], *value = i + 1 < argc ? argv[i + 1] : NULL;
        if (value == NULL) {
            fprintf(stderr, "bench_predict: %s needs a value\n", arg);
            return 1;
        }
        if (strcmp(arg, "--rounds") == 0 && atoi(value) >= 1 && atoi(value) <= MAX_ROUNDS)
            rounds = atoi(value);
        else if (strcmp(arg, "--target-s") == 0 && atof(value) > 0)
            target_s = atof(value);
        else if (strcmp(arg, "--nets") == 0) {
            do_spiral = strstr(value, "spiral") != NULL;
            do_wide = strstr(value, "wide") != NULL;
        } else {
            fprintf(stderr, "usage: bench_predict [--rounds R<=%d] [--target-s S] [--nets spiral,wide]\n", MAX_ROUNDS);
            return 1;
        }
    }
    if (do_spiral && (spiral(NN_DTYPE_FLOAT32, rounds, target_s) || spiral(NN_DTYPE_FLOAT64, rounds, target_s)))
        return 1;
    if (do_wide && wide(rounds, target_s))
        return 1;
    return 0;
}
