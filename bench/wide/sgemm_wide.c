/*
 * The ceiling of the wide workload: OpenBLAS SGEMM alone on the matrix products of one
 * training step of a 784-H-H-10 net with batch B (bench_wide's), nothing else: per layer
 * the forward product, the weight gradient and (every layer but the first) the input
 * gradient, 2·(3·ΣW − W1)·B flop a step. No bias, activation, loss, update or gather.
 *
 * The same products can be laid out three ways, and SGEMM's speed differs between them,
 * so each is timed and the fastest is the ceiling:
 *   book   X (B, I), W (I, O): Y = X·W, dW = Xᵀ·dY, dX = dY·Wᵀ (NumPy's loop)
 *   torch  X (B, I), W (O, I): Y = X·Wᵀ, dW = dYᵀ·X, dX = dY·W (torch.nn.Linear)
 *   libnn  x (I, B), W (I, O): y = Wᵀ·x, dW = x·dᵀ, dx = W·d (the CPU plugin's
 *          feature-major activations)
 *
 *   sgemm_wide [--hidden H] [--batch B] [--steps N] [--rounds R]
 *
 * Each of R rounds times N steps of every layout in turn (after a warm-up step each),
 * so drift of a shared vCPU hits all alike; the figure is the median over rounds.
 * Threads: OPENBLAS_NUM_THREADS, as for bench_wide.
 *
 * Prints:
 *   sgemm openblas config <openblas_get_config()> corename <name> threads <n>
 *   sgemm wide layout <name> threads <n> batch <b> step_s <median> min_step_s <x> max_step_s <x> gflops <x>
 *         fwd_us <x> dw_us <x> dx_us <x>         (per step, median round)
 *   sgemm wide ceiling layout <name> threads <n> step_s <x> gflops <x>
 */
#define _POSIX_C_SOURCE 199309L

#include <cblas.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* OpenBLAS's own, declared by its cblas.h; repeated here in case another cblas.h is found. */
char *openblas_get_config(void);
char *openblas_get_corename(void);
int openblas_get_num_threads(void);

enum { N_INPUTS = 784, N_CLASSES = 10, N_LAYERS = 3, N_LAYOUTS = 3, MAX_ROUNDS = 64 };
static const char *const layout_names[N_LAYOUTS] = {"book", "torch", "libnn"};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static float *filled(size_t n, uint64_t seed)
{
    float *p = malloc(n * sizeof *p);
    if (p == NULL) {
        fprintf(stderr, "sgemm_wide: out of memory\n");
        exit(1);
    }
    for (size_t i = 0; i < n; ++i) {
        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        p[i] = (float)(seed >> 40) * 0x1p-24f - 0.5f;
    }
    return p;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static size_t sizes[N_LAYERS + 1];
static float *W[N_LAYERS], *dW[N_LAYERS], *act[N_LAYERS + 1], *grad[N_LAYERS + 1];

/* One step's products in a layout; adds each kind's seconds to t[0..2]. */
static void step(int layout, int B, double t[3])
{
    for (int l = 0; l < N_LAYERS; ++l) {
        const int ni = (int)sizes[l], no = (int)sizes[l + 1];
        double t0 = now_s();
        if (layout == 0)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, no, ni, 1.0f, act[l], ni, W[l], no, 0.0f, act[l + 1], no);
        else if (layout == 1)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, no, ni, 1.0f, act[l], ni, W[l], ni, 0.0f, act[l + 1], no);
        else
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, no, B, ni, 1.0f, W[l], no, act[l], B, 0.0f, act[l + 1], B);
        t[0] += now_s() - t0;
    }
    for (int l = N_LAYERS - 1; l >= 0; --l) {
        const int ni = (int)sizes[l], no = (int)sizes[l + 1];
        double t0 = now_s();
        if (layout == 0)
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, ni, no, B, 1.0f, act[l], ni, grad[l + 1], no, 0.0f, dW[l], no);
        else if (layout == 1)
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, no, ni, B, 1.0f, grad[l + 1], no, act[l], ni, 0.0f, dW[l], ni);
        else
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, ni, no, B, 1.0f, act[l], B, grad[l + 1], B, 0.0f, dW[l], no);
        double t1 = now_s();
        t[1] += t1 - t0;
        if (l == 0) continue; /* nothing needs the gradient of the data */
        if (layout == 0)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, ni, no, 1.0f, grad[l + 1], no, W[l], no, 0.0f, grad[l], ni);
        else if (layout == 1)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, ni, no, 1.0f, grad[l + 1], no, W[l], ni, 0.0f, grad[l], ni);
        else
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, ni, B, no, 1.0f, W[l], no, grad[l + 1], B, 0.0f, grad[l], B);
        t[2] += now_s() - t1;
    }
}

int main(int argc, char **argv)
{
    long hidden = 1024, batch = 128, steps = 10, rounds = 5;
    for (int i = 1; i < argc; i += 2) {
        const char *arg = argv[i], *value = i + 1 < argc ? argv[i + 1] : NULL;
        long v = value ? atol(value) : 0;
        if (v < 1) {
            fprintf(stderr, "sgemm_wide: %s needs a whole number above 0\n", arg);
            return 1;
        }
        if (strcmp(arg, "--hidden") == 0) hidden = v;
        else if (strcmp(arg, "--batch") == 0) batch = v;
        else if (strcmp(arg, "--steps") == 0) steps = v;
        else if (strcmp(arg, "--rounds") == 0 && v <= MAX_ROUNDS) rounds = v;
        else {
            fprintf(stderr, "usage: sgemm_wide [--hidden H] [--batch B] [--steps N] [--rounds R<=%d]\n", MAX_ROUNDS);
            return 1;
        }
    }
    sizes[0] = N_INPUTS;
    sizes[1] = sizes[2] = (size_t)hidden;
    sizes[3] = N_CLASSES;
    double weights = 0;
    for (int l = 0; l < N_LAYERS; ++l) {
        W[l] = filled(sizes[l] * sizes[l + 1], 11u + (uint64_t)l);
        dW[l] = filled(sizes[l] * sizes[l + 1], 21u + (uint64_t)l);
        weights += (double)(sizes[l] * sizes[l + 1]);
    }
    for (int l = 0; l <= N_LAYERS; ++l) {
        act[l] = filled(sizes[l] * (size_t)batch, 31u + (uint64_t)l);
        grad[l] = filled(sizes[l] * (size_t)batch, 41u + (uint64_t)l);
    }
    const double flop = 2.0 * (3.0 * weights - (double)(sizes[0] * sizes[1])) * (double)batch;
    const int threads = openblas_get_num_threads();
    printf("sgemm openblas config %s corename %s threads %d\n", openblas_get_config(), openblas_get_corename(), threads);

    double per_step[N_LAYOUTS][MAX_ROUNDS], parts[N_LAYOUTS][MAX_ROUNDS][3];
    for (long r = 0; r < rounds; ++r)
        for (int k = 0; k < N_LAYOUTS; ++k) {
            double t[3] = {0, 0, 0};
            step(k, (int)batch, t); /* warm-up: packing buffers, caches */
            t[0] = t[1] = t[2] = 0;
            double t0 = now_s();
            for (long s = 0; s < steps; ++s) step(k, (int)batch, t);
            per_step[k][r] = (now_s() - t0) / (double)steps;
            for (int p = 0; p < 3; ++p) parts[k][r][p] = t[p] / (double)steps;
        }
    int best = 0;
    double best_median = 0;
    for (int k = 0; k < N_LAYOUTS; ++k) {
        double sorted[MAX_ROUNDS];
        memcpy(sorted, per_step[k], (size_t)rounds * sizeof(double));
        qsort(sorted, (size_t)rounds, sizeof(double), cmp_double);
        const double median = rounds % 2 ? sorted[rounds / 2] : 0.5 * (sorted[rounds / 2 - 1] + sorted[rounds / 2]);
        long mid = 0; /* the round whose step time is nearest the median, for the breakdown */
        for (long r = 1; r < rounds; ++r)
            if ((per_step[k][r] > median ? per_step[k][r] - median : median - per_step[k][r]) <
                (per_step[k][mid] > median ? per_step[k][mid] - median : median - per_step[k][mid]))
                mid = r;
        printf("sgemm wide layout %s threads %d batch %ld step_s %.6f min_step_s %.6f max_step_s %.6f gflops %.2f"
               " fwd_us %.1f dw_us %.1f dx_us %.1f\n",
               layout_names[k], threads, batch, median, sorted[0], sorted[rounds - 1], flop / median * 1e-9,
               parts[k][mid][0] * 1e6, parts[k][mid][1] * 1e6, parts[k][mid][2] * 1e6);
        if (k == 0 || median < best_median) {
            best = k;
            best_median = median;
        }
    }
    printf("sgemm wide ceiling layout %s threads %d batch %ld step_s %.6f gflops %.2f\n", layout_names[best], threads,
           batch, best_median, flop / best_median * 1e-9);
    return 0;
}
