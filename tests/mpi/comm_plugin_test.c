/* The MPI plugin on its own (include/nn/nn_comm.h), loaded as libnn loads it (dlopen,
 * RTLD_LOCAL), without libnn. Each process writes "PASS" or its failures to
 * OUTDIR/rank<r>.txt; run_mpi.sh checks the files.
 *
 *   comm_plugin_test PLUGIN OUTDIR sums P       bit-exact sums in the documented order,
 *                                               broadcast, barrier, bad arguments
 *   comm_plugin_test PLUGIN OUTDIR stuck P      process 1 skips a collective: the others
 *                                               time out, then every call fails fast
 *   comm_plugin_test PLUGIN OUTDIR kill P       process 1 is SIGKILLed during a fit-like
 *                                               loop: the others time out
 *   comm_plugin_test PLUGIN OUTDIR nompirun 1   run without mpirun: open says why */
#define _POSIX_C_SOURCE 200809L
#include <dlfcn.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "nn/nn_comm.h"

static char g_error[1024];
static void host_set_error(const char *m) { snprintf(g_error, sizeof g_error, "%s", m); }
static void host_log(int level, const char *m) {
    (void)level;
    (void)m;
}
static const nn_host_services kHost = {NN_BACKEND_ABI_VERSION, sizeof(nn_host_services), host_set_error, host_log};

static FILE *g_out;
static int g_failures;
#define CHECK(cond, ...)                          \
    do {                                          \
        if (!(cond)) {                            \
            fprintf(g_out, "FAIL line %d: ", __LINE__); \
            fprintf(g_out, __VA_ARGS__);          \
            fprintf(g_out, "\n");                 \
            fflush(g_out);                        \
            ++g_failures;                         \
        }                                         \
    } while (0)

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* Process q's input element i: a spread of magnitudes, so that the order of the sum
 * changes its rounding. */
static double value(int q, size_t i, size_t n) {
    uint64_t h = (uint64_t)q * 0x9E3779B97F4A7C15ull ^ (uint64_t)i * 0xBF58476D1CE4E5B9ull ^ (uint64_t)n;
    h ^= h >> 31;
    h *= 0x94D049BB133111EBull;
    h ^= h >> 29;
    const double unit = (double)(h >> 11) / 9007199254740992.0 - 0.5; /* [-0.5, 0.5) */
    return ldexp(unit, (int)(h % 24) - 12);
}

/* The chunk of element i when n elements are split over p processes, as the plugin
 * splits them (chunk c starts at (n / p) * c + min(c, n % p)). */
static size_t chunk_of(size_t i, size_t n, size_t p) {
    const size_t base = n / p, extra = n % p;
    const size_t big = (base + 1) * extra; /* the first `extra` chunks have base + 1 */
    if (i < big) return i / (base + 1);
    return extra + (i - big) / base;
}

static int check_sums(const nn_comm_iface *c, int rank, int size, int dtype, size_t n) {
    const size_t esz = dtype == NN_COMM_FLOAT32 ? 4 : 8;
    unsigned char *buf = malloc(n * esz), *root = malloc(n * esz);
    if (!buf || !root) return 1;
    for (size_t i = 0; i < n; ++i) {
        if (dtype == NN_COMM_FLOAT32)
            ((float *)buf)[i] = (float)value(rank, i, n);
        else
            ((double *)buf)[i] = value(rank, i, n);
    }
    int rc = c->allreduce_sum(buf, n, (uint32_t)dtype, 30.0);
    CHECK(rc == 0, "allreduce_sum(n=%zu, dtype %d): %s", n, dtype, g_error);
    if (rc) return 1;
    /* The documented order: chunk k's total is x_k + x_{k+1} + ... + x_{k-1}. */
    size_t wrong = 0, order_matters = 0;
    for (size_t i = 0; i < n; ++i) {
        const size_t k = chunk_of(i, n, (size_t)size);
        if (dtype == NN_COMM_FLOAT32) {
            float s = (float)value((int)k, i, n), naive = 0.0f;
            for (int j = 1; j < size; ++j) s = s + (float)value((int)((k + (size_t)j) % (size_t)size), i, n);
            for (int j = 0; j < size; ++j) naive = naive + (float)value(j, i, n);
            wrong += memcmp(&s, &((float *)buf)[i], 4) != 0;
            order_matters += memcmp(&s, &naive, 4) != 0;
        } else {
            double s = value((int)k, i, n), naive = 0.0;
            for (int j = 1; j < size; ++j) s = s + value((int)((k + (size_t)j) % (size_t)size), i, n);
            for (int j = 0; j < size; ++j) naive = naive + value(j, i, n);
            wrong += memcmp(&s, &((double *)buf)[i], 8) != 0;
            order_matters += memcmp(&s, &naive, 8) != 0;
        }
    }
    CHECK(wrong == 0, "n=%zu dtype %d: %zu elements differ from the ring order's sum", n, dtype, wrong);
    /* Every process holds rank 0's bytes. */
    memcpy(root, buf, n * esz);
    rc = c->broadcast(root, n * esz, 0, 30.0);
    CHECK(rc == 0 && memcmp(root, buf, n * esz) == 0, "n=%zu dtype %d: differs from process 0's result", n, dtype);
    free(buf);
    free(root);
    return (int)order_matters > 0;
}

static const nn_comm_iface *load(const char *path) {
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        fprintf(stderr, "dlopen %s: %s\n", path, dlerror());
        return NULL;
    }
    nn_comm_entry_fn entry;
    *(void **)&entry = dlsym(h, NN_COMM_ENTRY_SYMBOL);
    return entry ? entry(&kHost) : NULL;
}

int main(int argc, char **argv) {
    if (argc != 5) return 2;
    const char *outdir = argv[2], *mode = argv[3];
    const int want_size = atoi(argv[4]);
    const nn_comm_iface *c = load(argv[1]);
    if (!c) return 2;

    int rank = -1, size = -1;
    char why[256] = "";
    const int opened = c->open(&rank, &size, why, sizeof why) == 0;
    char path[4096];
    snprintf(path, sizeof path, "%s/rank%d.txt", outdir, opened ? rank : 0);
    g_out = fopen(path, "w");
    if (!g_out) return 2;

    if (strcmp(mode, "nompirun") == 0) {
        CHECK(!opened, "open succeeded without mpirun (rank %d of %d)", rank, size);
        CHECK(strstr(why, "not launched under mpirun") != NULL, "reason '%s'", why);
        /* The answer is remembered, and the collectives refuse. */
        char again[256] = "";
        CHECK(c->open(&rank, &size, again, sizeof again) != 0 && strcmp(again, why) == 0, "second open: '%s'", again);
        double x = 1;
        CHECK(c->allreduce_sum(&x, 1, NN_COMM_FLOAT64, 1.0) != 0 && strstr(g_error, "not open"),
              "allreduce before open: '%s'", g_error);
        fprintf(g_out, g_failures ? "" : "PASS\n");
        fclose(g_out);
        return 0;
    }
    CHECK(opened, "open: %s", why);
    CHECK(size == want_size, "size %d, expected %d", size, want_size);
    if (!opened) {
        fclose(g_out);
        return 0;
    }
    int r2 = -1, s2 = -1;
    CHECK(c->open(&r2, &s2, why, sizeof why) == 0 && r2 == rank && s2 == size, "second open differs");

    if (strcmp(mode, "sums") == 0) {
        const size_t counts[] = {1, 2, 3, 5, 7, 64, 1000, 4097, 65537, 300001, 2000003};
        int order_matters = 0;
        for (size_t k = 0; k < sizeof counts / sizeof counts[0]; ++k) {
            order_matters += check_sums(c, rank, size, NN_COMM_FLOAT32, counts[k]);
            order_matters += check_sums(c, rank, size, NN_COMM_FLOAT64, counts[k]);
        }
        /* With 2 processes every order gives the same bits (a + b == b + a); with more
         * the check above is only worth something if the order changes some sums. */
        if (size > 2) CHECK(order_matters > 0, "no sum depends on the order: the check proves nothing");
        /* Broadcast from the last process; zero-length calls; barrier. */
        char msg[64] = "";
        if (rank == size - 1) snprintf(msg, sizeof msg, "from %d", rank);
        CHECK(c->broadcast(msg, sizeof msg, size - 1, 10.0) == 0, "broadcast: %s", g_error);
        char expect[64];
        snprintf(expect, sizeof expect, "from %d", size - 1);
        CHECK(strcmp(msg, expect) == 0, "broadcast gave '%s'", msg);
        CHECK(c->allreduce_sum(NULL, 0, NN_COMM_FLOAT32, 1.0) == 0, "empty allreduce: %s", g_error);
        CHECK(c->barrier(10.0) == 0, "barrier: %s", g_error);
        /* Bad arguments are refused locally and leave the group usable. */
        double x = 1;
        CHECK(c->allreduce_sum(&x, 1, 7, 1.0) != 0 && strstr(g_error, "unknown element type"), "dtype 7: '%s'", g_error);
        CHECK(c->allreduce_sum(&x, 1, NN_COMM_FLOAT64, 0.0) != 0 && strstr(g_error, "timeout"), "timeout 0: '%s'",
              g_error);
        CHECK(c->allreduce_sum(&x, 1, NN_COMM_FLOAT64, NAN) != 0, "timeout NaN accepted");
        CHECK(c->broadcast(&x, 8, size, 1.0) != 0 && strstr(g_error, "broadcast from process"), "root %d: '%s'", size,
              g_error);
        CHECK(c->allreduce_sum(&x, 1, NN_COMM_FLOAT64, 10.0) == 0 && x == size, "after bad calls: x=%g (%s)", x, g_error);
    } else if (strcmp(mode, "stuck") == 0) {
        /* Process 1 does not join the second all-reduce until the others have given up. */
        double x = 1;
        CHECK(c->allreduce_sum(&x, 1, NN_COMM_FLOAT64, 10.0) == 0, "first allreduce: %s", g_error);
        const double timeout = 1.0;
        if (rank == 1) sleep(3);
        const double t0 = now();
        const int rc = c->allreduce_sum(&x, 1, NN_COMM_FLOAT64, timeout);
        const double waited = now() - t0;
        /* Process 1 arrives after the others gave up; they never answer it again. */
        CHECK(rc != 0, "the all-reduce succeeded (process 1 late by 3 s)");
        CHECK(strstr(g_error, "no answer from the other processes within 1 s"), "message '%s'", g_error);
        CHECK(waited < timeout + 2.0, "gave up after %.2f s, timeout %.1f s", waited, timeout);
        if (rank != 1) CHECK(waited >= timeout * 0.9, "gave up after %.2f s, before the timeout %.1f s", waited, timeout);
        /* Broken from now on: the next calls fail at once with the first error. */
        const double t1 = now();
        CHECK(c->barrier(30.0) != 0, "barrier after the failure succeeded");
        CHECK(strstr(g_error, "unusable after an earlier failure") && strstr(g_error, "no answer"), "message '%s'",
              g_error);
        CHECK(c->broadcast(&x, 8, 0, 30.0) != 0, "broadcast after the failure succeeded");
        CHECK(now() - t1 < 0.5, "the failed-fast calls took %.2f s", now() - t1);
    } else if (strcmp(mode, "kill") == 0) {
        /* A training-like loop: the gradient-sized all-reduce every step; process 1 is
         * killed at step 3. */
        const size_t n = 200000;
        float *g = calloc(n, sizeof *g);
        int step = 0, rc = 0;
        double t0 = 0;
        for (step = 0; step < 10 && rc == 0; ++step) {
            if (rank == 1 && step == 3) kill(getpid(), SIGKILL);
            for (size_t i = 0; i < n; ++i) g[i] = 1.0f;
            t0 = now();
            rc = c->allreduce_sum(g, n, NN_COMM_FLOAT32, 2.0);
            if (rc == 0) CHECK(g[0] == (float)size && g[n - 1] == (float)size, "step %d sum %g", step, g[0]);
        }
        CHECK(rank != 1, "process 1 survived its SIGKILL");
        CHECK(rc != 0 && step == 4, "the loop ended at step %d with %d", step, rc);
        CHECK(strstr(g_error, "no answer from the other processes within 2 s") || strstr(g_error, "failed:"),
              "message '%s'", g_error);
        CHECK(now() - t0 < 2.0 + 2.0, "gave up after %.2f s", now() - t0);
        free(g);
    }
    fprintf(g_out, g_failures ? "" : "PASS\n");
    fclose(g_out);
    return 0;
}
