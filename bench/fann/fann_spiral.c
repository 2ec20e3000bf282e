/*
 * FANN (libfann-dev) as a peer of bench_spiral on the book's chapter-1 workload, as close
 * as FANN allows: the same spiral (300 × 2, seed 1984, from libnn's nn_dataset_spiral), a
 * 2-10-3 net with sigmoid hidden units, 300 epochs, the data shuffled every epoch, weights
 * drawn with the book's scale (uniform with standard deviation 0.01), biases at zero.
 *
 * What FANN cannot do like the book, and does instead (report it as such):
 * - no softmax cross-entropy: sigmoid outputs against one-hot targets, with the plain
 *   mean squared error (FANN_ERRORFUNC_LINEAR);
 * - no mini-batches: FANN_TRAIN_INCREMENTAL updates the weights after every sample (300
 *   updates an epoch, 90,000 in all, where the book makes 3,000 updates of 30 rows), or
 *   FANN_TRAIN_BATCH (--mode batch) one update per epoch over all 300 rows.
 * The arithmetic per epoch is the same forward and backward over 300 rows either way.
 *
 * Built twice: fann_spiral_f32 against libfloatfann, fann_spiral_f64 against libdoublefann
 * (FANN_F64 defined). Only the 300 calls of fann_train_epoch and the shuffles are timed.
 *
 *   fann_spiral_f32 [--mode incremental|batch] [--lr RATE] [--epochs N] [--repeat N]
 *
 * Prints one line per run, the shape of bench_spiral's:
 *   fann <dtype> run <i> in_loop_s <seconds> final_mse <mse> accuracy <fraction> mode <mode> lr <rate>
 */
#define _POSIX_C_SOURCE 199309L

#ifdef FANN_F64
#include <doublefann.h>
#define DTYPE_NAME "float64"
#else
#include <floatfann.h>
#define DTYPE_NAME "float32"
#endif

#include <nn/nn.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { POINTS_PER_CLASS = 100, N_CLASSES = 3, N_ROWS = 300, N_INPUTS = 2, N_HIDDEN = 10 };

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int run_once(int incremental, float lr, unsigned epochs, int index)
{
    static double x[N_ROWS * N_INPUTS];
    static int32_t labels[N_ROWS];
    if (nn_dataset_spiral(x, N_ROWS * N_INPUTS, labels, N_ROWS, POINTS_PER_CLASS, N_CLASSES, NULL, 1984) != NN_OK) {
        fprintf(stderr, "fann_spiral: nn_dataset_spiral failed: %s\n", nn_last_error_message());
        return 1;
    }
    struct fann_train_data *data = fann_create_train(N_ROWS, N_INPUTS, N_CLASSES);
    struct fann *ann = fann_create_standard(3, N_INPUTS, N_HIDDEN, N_CLASSES);
    if (data == NULL || ann == NULL) {
        fprintf(stderr, "fann_spiral: FANN could not create the net or the data\n");
        return 1;
    }
    for (unsigned r = 0; r < N_ROWS; ++r) {
        for (unsigned k = 0; k < N_INPUTS; ++k)
            data->input[r][k] = (fann_type)x[r * N_INPUTS + k];
        for (unsigned j = 0; j < N_CLASSES; ++j)
            data->output[r][j] = (fann_type)(labels[r] == (int32_t)j ? 1 : 0);
    }
    /* FANN_SIGMOID is 1 / (1 + exp(-2·s·x)); steepness 0.5 makes it the book's sigmoid. */
    fann_set_activation_function_hidden(ann, FANN_SIGMOID);
    fann_set_activation_function_output(ann, FANN_SIGMOID);
    fann_set_activation_steepness_hidden(ann, 0.5f);
    fann_set_activation_steepness_output(ann, 0.5f);
    fann_set_training_algorithm(ann, incremental ? FANN_TRAIN_INCREMENTAL : FANN_TRAIN_BATCH);
    fann_set_train_error_function(ann, FANN_ERRORFUNC_LINEAR);
    fann_set_learning_rate(ann, lr);
    fann_set_learning_momentum(ann, 0.0f);

    /* The book's scale: 0.01·randn for weights, zero biases. FANN draws with rand(), so draw
     * uniform in ±0.01·√3 (standard deviation 0.01), then zero the bias connections. */
    srand(1984);
    fann_randomize_weights(ann, (fann_type)(-0.01 * sqrt(3.0)), (fann_type)(0.01 * sqrt(3.0)));
    {
        unsigned n = fann_get_total_connections(ann);
        struct fann_connection *c = malloc(n * sizeof *c);
        if (c == NULL) {
            fprintf(stderr, "fann_spiral: out of memory\n");
            return 1;
        }
        fann_get_connection_array(ann, c);
        /* The bias neuron of each layer is its last: index N_INPUTS in layer 0 and
         * N_INPUTS + 1 + N_HIDDEN in layer 1. */
        for (unsigned i = 0; i < n; ++i)
            if (c[i].from_neuron == N_INPUTS || c[i].from_neuron == N_INPUTS + 1 + N_HIDDEN)
                fann_set_weight(ann, c[i].from_neuron, c[i].to_neuron, 0);
        free(c);
    }

    float mse = 0.0f;
    double t0 = now_s();
    for (unsigned e = 0; e < epochs; ++e) {
        fann_shuffle_train_data(data);
        mse = fann_train_epoch(ann, data);
    }
    double elapsed = now_s() - t0;

    unsigned correct = 0;
    for (unsigned r = 0; r < N_ROWS; ++r) {
        fann_type *y = fann_run(ann, data->input[r]);
        unsigned best = 0;
        for (unsigned j = 1; j < N_CLASSES; ++j)
            if (y[j] > y[best])
                best = j;
        correct += data->output[r][best] > (fann_type)0.5;
    }
    printf("fann %s run %d in_loop_s %.6f final_mse %.4f accuracy %.3f mode %s lr %g\n", DTYPE_NAME, index, elapsed,
           (double)mse, (double)correct / N_ROWS, incremental ? "incremental" : "batch", (double)lr);
    fflush(stdout);
    fann_destroy(ann);
    fann_destroy_train(data);
    return 0;
}

int main(int argc, char **argv)
{
    int incremental = 1, repeat = 1;
    float lr = 0.0f; /* 0: each mode's default below */
    unsigned epochs = 300;
    for (int i = 1; i < argc; i += 2) {
        const char *arg = argv[i], *value = i + 1 < argc ? argv[i + 1] : NULL;
        if (value == NULL) {
            fprintf(stderr, "fann_spiral: %s needs a value\n", arg);
            return 1;
        }
        if (strcmp(arg, "--mode") == 0 && (strcmp(value, "incremental") == 0 || strcmp(value, "batch") == 0))
            incremental = strcmp(value, "incremental") == 0;
        else if (strcmp(arg, "--lr") == 0 && atof(value) > 0)
            lr = (float)atof(value);
        else if (strcmp(arg, "--epochs") == 0 && atoi(value) > 0)
            epochs = (unsigned)atoi(value);
        else if (strcmp(arg, "--repeat") == 0 && atoi(value) > 0)
            repeat = atoi(value);
        else {
            fprintf(stderr, "usage: fann_spiral [--mode incremental|batch] [--lr RATE] [--epochs N] [--repeat N]\n");
            return 1;
        }
    }
    /* FANN's default rate 0.7 for per-sample updates; the book's 1.0 for the full-batch
     * mode, whose update FANN divides by the number of rows like the book's mean. */
    if (lr == 0.0f)
        lr = incremental ? 0.7f : 1.0f;
    for (int r = 0; r < repeat; ++r)
        if (run_once(incremental, lr, epochs, r) != 0)
            return 1;
    return 0;
}
