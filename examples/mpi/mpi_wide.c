/* Data-parallel training over MPI (docs/distributed.md): the wide MLP, 784-1024-1024-10
 * ReLU with softmax, float32, a global batch of 128, on random data that a teacher rule
 * labels (the class is the largest of the first 10 inputs), so the loss has something to
 * learn.
 *
 *   mpirun -n 4 ./mpi_wide [--rows N] [--epochs E] [--sharded]
 *
 * Every process runs this same program. Without --sharded each generates all N rows from
 * the same seed (the data every process holds); with it each generates only its own
 * N / P rows. nn_fit does the rest: process 0's weights are copied to the others, each
 * step's batch of 128 is split into P slices of 128 / P rows, and the gradients are
 * summed across processes, so the models stay identical. Process 0 alone prints.
 * Run without mpirun, it trains in one process. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/nn.h"

enum { kInputs = 784, kClasses = 10 };

static int check(nn_status s, const char *what) {
    if (s == NN_OK) return 0;
    fprintf(stderr, "%s: %s (%s)\n", what, nn_status_string(s), nn_last_error_message());
    return 1;
}

static int print_progress(const nn_progress *p, void *user) {
    (void)user;
    if (p->event == NN_PROGRESS_EPOCH_END)
        printf("epoch %" PRIu64 ": mean loss %.4f (%.1f s)\n", p->epoch, p->loss, p->elapsed_seconds);
    else
        printf("  step %" PRIu64 "/%" PRIu64 ": loss %.4f\n", p->iteration, p->steps_per_epoch, p->loss);
    fflush(stdout);
    return 0;
}

/* `rows` random rows in [0, 1) and their teacher labels. */
static int make_data(uint32_t seed, size_t rows, float **out_x, int32_t **out_t) {
    nn_rng *rng = NULL;
    double *row = malloc(kInputs * sizeof *row);
    float *x = malloc(rows * kInputs * sizeof *x);
    int32_t *t = malloc(rows * sizeof *t);
    if (!row || !x || !t || check(nn_rng_create(&rng, seed), "nn_rng_create")) return 1;
    for (size_t r = 0; r < rows; ++r) {
        if (check(nn_rng_rand(rng, row, kInputs), "nn_rng_rand")) return 1;
        int32_t best = 0;
        for (int j = 0; j < kInputs; ++j) x[r * kInputs + (size_t)j] = (float)row[j];
        for (int j = 1; j < kClasses; ++j)
            if (row[j] > row[best]) best = j;
        t[r] = best;
    }
    nn_rng_destroy(rng);
    free(row);
    *out_x = x;
    *out_t = t;
    return 0;
}

int main(int argc, char **argv) {
    size_t rows = 8192, epochs = 3;
    int sharded = 0;
    for (int i = 1; i < argc; ++i) {
        if (strcmp(argv[i], "--rows") == 0 && i + 1 < argc) {
            rows = strtoul(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--epochs") == 0 && i + 1 < argc) {
            epochs = strtoul(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--sharded") == 0) {
            sharded = 1;
        } else {
            fprintf(stderr, "usage: mpirun -n P %s [--rows N] [--epochs E] [--sharded]\n", argv[0]);
            return 2;
        }
    }

    /* Which process this is; a program started without mpirun trains alone. */
    int rank = 0, size = 1;
    nn_parallel parallel = NN_PARALLEL_MPI;
    if (nn_parallel_info(NN_PARALLEL_MPI, &rank, &size) != NN_OK) {
        fprintf(stderr, "%s: training in one process\n", nn_last_error_message());
        parallel = NN_PARALLEL_NONE;
        sharded = 0;
    }
    if (rank == 0)
        printf("wide MLP 784-1024-1024-10 on %d process%s, %zu rows%s, global batch 128\n", size, size > 1 ? "es" : "",
               rows, sharded ? " in shards" : "");

    /* The data: all rows on every process (same seed), or this process's shard. */
    const size_t my_rows = sharded ? rows / (size_t)size : rows;
    float *x = NULL;
    int32_t *t = NULL;
    if (make_data(sharded ? 1000u + (uint32_t)rank : 1000u, my_rows, &x, &t)) return 1;

    static const size_t sizes[] = {kInputs, 1024, 1024, kClasses};
    nn_model_desc desc;
    nn_model_desc_init(&desc);
    desc.n_layer_sizes = 4;
    desc.layer_sizes = sizes;
    desc.hidden_activation = NN_ACTIVATION_RELU;
    desc.init = NN_INIT_HE;
    nn_model *model = NULL;
    if (check(nn_create(&model, &desc), "nn_create")) return 1;

    nn_fit_options o;
    nn_fit_options_init(&o);
    o.epochs = epochs;
    o.batch_size = 128; /* the global batch: each process computes 128 / P rows of it */
    o.optimizer = NN_OPTIMIZER_MOMENTUM;
    o.learning_rate = 0.01;
    o.report_interval = 20;
    o.progress = print_progress; /* runs on process 0 only */
    o.parallel = parallel;
    o.sharded = sharded;
    o.parallel_timeout = 60.0;
    nn_fit_report report;
    nn_fit_report_init(&report);
    if (check(nn_fit(model, x, NN_DTYPE_FLOAT32, my_rows, kInputs, t, NN_TARGET_CLASS_INDEX, 1, &o, &report),
              "nn_fit"))
        return 1;

    /* Every process holds the same weights: print a checksum of their bits from each. */
    size_t n = 0;
    if (check(nn_param_count(model, &n), "nn_param_count")) return 1;
    double *params = malloc(n * sizeof *params);
    if (!params || check(nn_get_params(model, params, n), "nn_get_params")) return 1;
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; ++i) {
        unsigned char b[sizeof(double)];
        memcpy(b, &params[i], sizeof b);
        for (size_t k = 0; k < sizeof b; ++k) h = (h ^ b[k]) * 1099511628211ull;
    }
    if (rank == 0)
        printf("%zu steps in %.2f s (%.1f ms a step), final loss %.4f\n", report.steps_run, report.seconds,
               1e3 * report.seconds / (double)(report.steps_run ? report.steps_run : 1), report.final_loss);
    printf("process %d of %d: parameter checksum %016" PRIx64 "\n", rank, size, h);
    free(params);
    free(x);
    free(t);
    nn_destroy(model);
    return 0;
}
