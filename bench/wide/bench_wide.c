/*
 * The "wide" workload of the CPU-speed issue through libnn's C API: a 784-1024-1024-10
 * ReLU net with softmax cross-entropy, plain SGD (lr 0.01), batch 128, one epoch over
 * 60,000 random float32 rows (uniform [0, 1), labels uniform in 0..9), He initial weights.
 * The nn_fit call is timed whole: the check and copy of the data, its upload to the CPU
 * plugin, the per-epoch shuffle and the rows/batch steps (the tail is dropped).
 *
 *   bench_wide [--rows N] [--hidden H] [--batch B] [--epochs E] [--lr RATE] [--repeat N]
 *
 * Threads: the CPU plugin's products run on OpenBLAS, whose thread count is
 * OPENBLAS_NUM_THREADS (bench/run sets it and pins the process with taskset).
 *
 * Work counted: the matrix products of a step, 2·(3·ΣW − W1) flop per row, where ΣW is
 * the number of weights (784·H + H·H + H·10) and W1 the first layer's: forward, the
 * weight gradients, and the input gradients of every layer but the first (nothing needs
 * the gradient of the data). sgemm_wide times exactly these products, so the ratio of
 * the two GFLOP/s figures is the fraction of the SGEMM ceiling.
 *
 * Memory: the peak resident set (VmHWM, see peak_rss_bytes) against what the workload must hold:
 * the data set once (the caller's), the parameters, their gradients, the optimizer state
 * (none for SGD), one index per row for the shuffle, and one batch's activations (every
 * layer's output, inputs included) with two gradient buffers of the widest layer. The
 * process's own baseline (libnn, the plugin and OpenBLAS loaded, before any data) is
 * printed beside it.
 *
 * Each run also times, on a fresh model, the same nn_fit stopped by its progress callback
 * after the first step (first_step_s): what a fit costs besides its steps, plus one step,
 * so that bench/run can tell the per-step speed from the per-fit costs.
 *
 * Prints, per run:
 *   libnn wide run <i> threads <t> rows <n> steps <s> batch <b> fit_s <s> loop_s <s> first_step_s <s>
 *         samples_per_s <x> gflops <x> final_loss <x> device <name>
 * and once, at the end (the peak taken after the first timed fit):
 *   libnn wide memory peak_rss_bytes <x> must_hold_bytes <x> baseline_rss_bytes <x> ratio <x> ...
 */
#define _POSIX_C_SOURCE 199309L

#include <nn/nn.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

enum { N_INPUTS = 784, N_CLASSES = 10 };

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The peak resident set of this process image: VmHWM of /proc/self/status. getrusage's
 * ru_maxrss would do, but Linux carries it over exec, so a bench_wide started from a big
 * parent (a Python driver forks, then execs) would report the parent's peak; VmHWM starts
 * afresh at exec. ru_maxrss is the fallback where /proc is missing. */
static double peak_rss_bytes(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (f != NULL) {
        char line[256];
        double kb = -1;
        while (fgets(line, sizeof line, f) != NULL)
            if (strncmp(line, "VmHWM:", 6) == 0) {
                kb = atof(line + 6);
                break;
            }
        fclose(f);
        if (kb >= 0) return 1024.0 * kb;
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return 1024.0 * (double)ru.ru_maxrss; /* Linux: kilobytes */
}

static uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Stops nn_fit at its first loss record: with report_interval 1, right after step 1. */
static int cancel_at_first_step(const nn_progress *progress, void *user)
{
    (void)progress;
    (void)user;
    return 1;
}

static int fail(const char *what, nn_status status)
{
    fprintf(stderr, "bench_wide: %s failed: %s: %s\n", what, nn_status_string(status), nn_last_error_message());
    return 1;
}

static size_t arg_size(const char *name, const char *value)
{
    char *end = NULL;
    long long v = strtoll(value, &end, 10);
    if (end == value || *end != '\0' || v < 1) {
        fprintf(stderr, "bench_wide: %s must be a whole number above 0\n", name);
        exit(1);
    }
    return (size_t)v;
}

int main(int argc, char **argv)
{
    size_t rows = 60000, hidden = 1024, batch = 128, epochs = 1, repeat = 1;
    double lr = 0.01;
    for (int i = 1; i < argc; i += 2) {
        const char *arg = argv[i], *value = i + 1 < argc ? argv[i + 1] : NULL;
        if (value == NULL) {
            fprintf(stderr, "bench_wide: %s needs a value\n", arg);
            return 1;
        }
        if (strcmp(arg, "--rows") == 0) rows = arg_size(arg, value);
        else if (strcmp(arg, "--hidden") == 0) hidden = arg_size(arg, value);
        else if (strcmp(arg, "--batch") == 0) batch = arg_size(arg, value);
        else if (strcmp(arg, "--epochs") == 0) epochs = arg_size(arg, value);
        else if (strcmp(arg, "--repeat") == 0) repeat = arg_size(arg, value);
        else if (strcmp(arg, "--lr") == 0) lr = atof(value);
        else {
            fprintf(stderr, "usage: bench_wide [--rows N] [--hidden H] [--batch B] [--epochs E] [--lr RATE]"
                            " [--repeat N]\n");
            return 1;
        }
    }
    if (batch > rows) {
        fprintf(stderr, "bench_wide: --batch must not exceed --rows\n");
        return 1;
    }
    const size_t sizes[] = {N_INPUTS, hidden, hidden, N_CLASSES};
    const size_t n_sizes = sizeof sizes / sizeof sizes[0];
    int rc = 0;

    /* Baseline: libnn, the CPU plugin and OpenBLAS loaded (a tiny model on the CPU
     * predicts once), before the data or the wide model exist. */
    {
        nn_model *tiny = NULL;
        const size_t tiny_sizes[] = {2, 2};
        nn_model_desc d;
        nn_model_desc_init(&d);
        d.n_layer_sizes = 2;
        d.layer_sizes = tiny_sizes;
        nn_status s = nn_create(&tiny, &d);
        if (s != NN_OK) return fail("nn_create (tiny)", s);
        s = nn_set_device(tiny, NN_DEVICE_CPU, 0);
        if (s != NN_OK) return fail("nn_set_device (tiny)", s);
        const float in[2] = {0.5f, 0.25f};
        float out[2];
        s = nn_predict(tiny, in, NN_DTYPE_FLOAT32, 1, 2, NN_OUTPUT_SCORES, out, NN_DTYPE_FLOAT32, 2);
        if (s != NN_OK) return fail("nn_predict (tiny)", s);
        nn_destroy(tiny);
    }
    const double baseline = peak_rss_bytes();

    float *x = malloc(rows * N_INPUTS * sizeof *x);
    int32_t *labels = malloc(rows * sizeof *labels);
    if (x == NULL || labels == NULL) {
        fprintf(stderr, "bench_wide: out of memory for %zu rows\n", rows);
        return 1;
    }
    uint64_t state = 1984;
    for (size_t i = 0; i < rows * N_INPUTS; ++i) x[i] = (float)(splitmix64(&state) >> 40) * 0x1p-24f;
    for (size_t r = 0; r < rows; ++r) labels[r] = (int32_t)(splitmix64(&state) % N_CLASSES);

    size_t weights = 0, params = 0;
    for (size_t l = 0; l + 1 < n_sizes; ++l) {
        weights += sizes[l] * sizes[l + 1];
        params += sizes[l] * sizes[l + 1] + sizes[l + 1];
    }
    const double flop_per_row = 2.0 * (3.0 * (double)weights - (double)(sizes[0] * sizes[1]));
    const size_t steps = rows / batch * epochs;

    const char *threads = getenv("OPENBLAS_NUM_THREADS");
    double peak = 0;
    for (size_t run = 0; run < repeat && rc == 0; ++run) {
        /* Twice: the timed fit, then the same fit on a fresh model stopped by the progress
         * callback after its first step, which times what a fit costs besides its steps
         * (checking and copying the data, the upload, the first shuffle) plus one step. */
        double seconds[2] = {0, 0};
        nn_fit_report report;
        nn_device_info info;
        nn_fit_report_init(&report);
        nn_device_info_init(&info);
        for (int pass = 0; pass < 2 && rc == 0; ++pass) {
            nn_model *model = NULL;
            nn_model_desc desc;
            nn_model_desc_init(&desc);
            desc.n_layer_sizes = n_sizes;
            desc.layer_sizes = sizes;
            desc.hidden_activation = NN_ACTIVATION_RELU;
            desc.loss = NN_LOSS_SOFTMAX_CROSS_ENTROPY;
            desc.dtype = NN_DTYPE_FLOAT32;
            desc.init = NN_INIT_HE;
            desc.seed = 1984;
            nn_status s = nn_create(&model, &desc);
            if (s == NN_OK) s = nn_set_device(model, NN_DEVICE_CPU, 0);
            if (s != NN_OK) {
                rc = fail("nn_create / nn_set_device", s);
                nn_destroy(model);
                break;
            }
            nn_fit_options fit;
            nn_fit_options_init(&fit);
            fit.epochs = epochs;
            fit.batch_size = batch;
            fit.learning_rate = lr;
            fit.report_interval = 0;
            if (pass == 1) {
                fit.report_interval = 1;
                fit.progress = cancel_at_first_step;
            }
            nn_fit_report r;
            nn_fit_report_init(&r);
            const double t0 = now_s();
            s = nn_fit(model, x, NN_DTYPE_FLOAT32, rows, N_INPUTS, labels, NN_TARGET_CLASS_INDEX, 1, &fit, &r);
            seconds[pass] = now_s() - t0;
            if (s != (pass == 0 ? NN_OK : NN_ERR_CANCELLED)) {
                rc = fail("nn_fit", s);
            } else if (pass == 0) {
                report = r;
                nn_get_device(model, &info);
                if (peak == 0) peak = peak_rss_bytes();
            }
            nn_destroy(model);
        }
        if (rc != 0) break;
        const double samples = (double)(steps * batch);
        printf("libnn wide run %zu threads %s rows %zu steps %zu batch %zu fit_s %.6f loop_s %.6f first_step_s %.6f"
               " samples_per_s %.1f gflops %.2f final_loss %.4f device %s\n",
               run, threads ? threads : "default", rows, steps, batch, seconds[0], report.seconds, seconds[1],
               samples / seconds[0], samples * flop_per_row / seconds[0] * 1e-9, report.final_loss, info.name);
        fflush(stdout);
    }
    if (rc != 0) return rc;

    /* What the workload must hold, in bytes (float32 everywhere, int32 labels). */
    size_t act = 0, widest = 0;
    for (size_t l = 0; l < n_sizes; ++l) {
        act += sizes[l];
        if (sizes[l] > widest) widest = sizes[l];
    }
    const double b_params = 4.0 * (double)params, b_grads = b_params, b_opt = 0.0;
    const double b_data = 4.0 * (double)(rows * N_INPUTS) + 4.0 * (double)rows;
    const double b_order = 8.0 * (double)rows;
    const double b_acts = 4.0 * (double)(batch * (act + 2 * widest));
    const double must = b_params + b_grads + b_opt + b_data + b_order + b_acts;
    printf("libnn wide memory peak_rss_bytes %.0f must_hold_bytes %.0f baseline_rss_bytes %.0f ratio %.3f"
           " ratio_over_baseline %.3f params %.0f grads %.0f optimizer %.0f data %.0f order %.0f activations %.0f"
           " flop_per_row %.0f weights %zu param_count %zu\n",
           peak, must, baseline, peak / must, (peak - baseline) / must, b_params, b_grads, b_opt, b_data, b_order,
           b_acts, flop_per_row, weights, params);
    free(x);
    free(labels);
    return 0;
}
