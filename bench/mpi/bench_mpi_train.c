/* The wide MLP (784-1024-1024-10 ReLU, softmax, float32, global batch 128) trained
 * data-parallel, timed per step through nn.h. Run by run.sh at 1, 2 and 4 processes:
 *
 *   [mpirun -n P] bench_mpi_train [--steps S] [--fits F] [--batch B]
 *
 * Each of the F fits is one epoch of S steps of the global batch B (default 128; rows =
 * B S, random inputs, teacher labels);
 * the first fit is a warm-up. Process 0 prints every fit's milliseconds per step (the
 * fit's own clock, report.seconds / steps), their median and their minimum (the fit least
 * disturbed by other work on the machine). Under mpirun the fit is
 * data-parallel; without it, one process. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/nn.h"

enum { kInputs = 784, kClasses = 10 };

static int cmp(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int fail(const char *what) {
    fprintf(stderr, "%s: %s\n", what, nn_last_error_message());
    return 1;
}

int main(int argc, char **argv) {
    size_t steps = 20, fits = 8, batch = 128;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--steps") == 0) steps = strtoul(argv[i + 1], NULL, 10);
        if (strcmp(argv[i], "--fits") == 0) fits = strtoul(argv[i + 1], NULL, 10);
        if (strcmp(argv[i], "--batch") == 0) batch = strtoul(argv[i + 1], NULL, 10);
    }
    int rank = 0, size = 1;
    const int parallel = nn_parallel_info(NN_PARALLEL_MPI, &rank, &size) == NN_OK;

    const size_t rows = steps * batch;
    float *x = malloc(rows * kInputs * sizeof *x);
    int32_t *t = malloc(rows * sizeof *t);
    double *row = malloc(kInputs * sizeof *row);
    nn_rng *rng = NULL;
    if (!x || !t || !row || nn_rng_create(&rng, 1000) != NN_OK) return fail("setup");
    for (size_t r = 0; r < rows; ++r) {
        nn_rng_rand(rng, row, kInputs);
        int32_t best = 0;
        for (int j = 0; j < kInputs; ++j) x[r * kInputs + (size_t)j] = (float)row[j];
        for (int j = 1; j < kClasses; ++j)
            if (row[j] > row[best]) best = j;
        t[r] = best;
    }
    nn_rng_destroy(rng);

    static const size_t sizes[] = {kInputs, 1024, 1024, kClasses};
    nn_model_desc d;
    nn_model_desc_init(&d);
    d.n_layer_sizes = 4;
    d.layer_sizes = sizes;
    d.hidden_activation = NN_ACTIVATION_RELU;
    d.init = NN_INIT_HE;
    nn_model *m = NULL;
    if (nn_create(&m, &d) != NN_OK) return fail("nn_create");
    size_t n_params = 0;
    nn_param_count(m, &n_params);
    nn_device_info dev;
    nn_device_info_init(&dev);
    nn_get_device(m, &dev);

    double *ms = malloc(fits * sizeof *ms);
    for (size_t f = 0; f < fits; ++f) {
        nn_fit_options o;
        nn_fit_options_init(&o);
        o.epochs = 1;
        o.batch_size = batch;
        o.optimizer = NN_OPTIMIZER_MOMENTUM;
        o.learning_rate = 0.01;
        o.report_interval = 0;
        o.parallel = parallel ? NN_PARALLEL_MPI : NN_PARALLEL_NONE;
        nn_fit_report rep;
        nn_fit_report_init(&rep);
        if (nn_fit(m, x, NN_DTYPE_FLOAT32, rows, kInputs, t, NN_TARGET_CLASS_INDEX, 1, &o, &rep) != NN_OK)
            return fail("nn_fit");
        ms[f] = 1e3 * rep.seconds / (double)rep.steps_run;
        if (rank == 0) printf("fit %zu: %.2f ms/step, loss %.4f\n", f, ms[f], rep.final_loss);
    }
    if (rank == 0) {
        qsort(ms + 1, fits - 1, sizeof *ms, cmp); /* fit 0 is the warm-up */
        printf("RESULT processes %d batch %zu params %zu step_ms_median %.2f step_ms_min %.2f device %s\n", size, batch, n_params,
               ms[1 + (fits - 1) / 2], ms[1], dev.name);
    }
    free(ms);
    free(row);
    free(x);
    free(t);
    nn_destroy(m);
    return 0;
}
