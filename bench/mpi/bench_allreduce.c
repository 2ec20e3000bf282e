/* The cost of one all-reduce of the wide MLP's gradient buffer (1,863,690 + 1 floats:
 * the parameters' gradients and the loss, as nn_fit sends them), by the plugin libnn uses
 * and, beside it, by Open MPI's own MPI_Allreduce and MPI_Iallreduce on the same buffer.
 *
 *   mpirun -n P bench_allreduce PLUGIN [COUNT] [REPS]
 *
 * Every repetition starts after a barrier; its time is the slowest process's. Process 0
 * prints the median of each and MB/s of buffer (COUNT * 4 bytes / time). */
#include <dlfcn.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/nn_comm.h"

static void quiet(const char *m) { fprintf(stderr, "plugin: %s\n", m); }
static void nolog(int l, const char *m) {
    (void)l;
    (void)m;
}
static const nn_host_services kHost = {NN_BACKEND_ABI_VERSION, sizeof(nn_host_services), quiet, nolog};

static int cmp(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    const size_t count = argc > 2 ? strtoul(argv[2], NULL, 10) : 1863691;
    const int reps = argc > 3 ? atoi(argv[3]) : 30;
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    void *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    nn_comm_entry_fn entry;
    *(void **)&entry = h ? dlsym(h, NN_COMM_ENTRY_SYMBOL) : NULL;
    const nn_comm_iface *c = entry ? entry(&kHost) : NULL;
    int r2, s2;
    char why[256];
    if (!c || c->open(&r2, &s2, why, sizeof why) != 0) {
        fprintf(stderr, "plugin: %s\n", c ? why : dlerror());
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    float *buf = malloc(count * sizeof *buf), *out = malloc(count * sizeof *out);
    double *t = malloc((size_t)reps * sizeof *t);
    const char *names[] = {"libnn plugin (ring, fixed order)", "MPI_Allreduce", "MPI_Iallreduce + MPI_Wait"};
    for (int method = 0; method < 3; ++method) {
        for (int k = -2; k < reps; ++k) { /* two warm-ups */
            for (size_t i = 0; i < count; ++i) buf[i] = (float)(i % 1000) * 1e-3f;
            MPI_Barrier(MPI_COMM_WORLD);
            const double t0 = MPI_Wtime();
            if (method == 0) {
                if (c->allreduce_sum(buf, count, NN_COMM_FLOAT32, 60.0) != 0) MPI_Abort(MPI_COMM_WORLD, 1);
            } else if (method == 1) {
                MPI_Allreduce(buf, out, (int)count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
            } else {
                MPI_Request q;
                MPI_Iallreduce(buf, out, (int)count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD, &q);
                MPI_Wait(&q, MPI_STATUS_IGNORE);
            }
            double dt = MPI_Wtime() - t0, slowest;
            MPI_Allreduce(&dt, &slowest, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
            if (k >= 0) t[k] = slowest;
        }
        qsort(t, (size_t)reps, sizeof *t, cmp);
        const double med = t[reps / 2];
        if (rank == 0)
            printf("RESULT processes %d count %zu method \"%s\" median_ms %.2f min_ms %.2f MB_per_s %.0f\n", size, count,
                   names[method], 1e3 * med, 1e3 * t[0], (double)count * 4 / med / 1e6);
    }
    free(buf);
    free(out);
    free(t);
    MPI_Finalize();
    return 0;
}
