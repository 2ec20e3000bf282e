/* Data-parallel nn_fit through nn.h alone, run by mpi_test.sh under mpirun (and once
 * without it). Results go to files so that the driver can compare processes, runs and
 * the single-process trajectory.
 *
 *   mpi_fit_test train OUTDIR TAG        every configuration below, data-parallel (or, with
 *                                        TAG "single", in one process on the same global
 *                                        batches); writes OUTDIR/<config>.<TAG><rank>.txt
 *   mpi_fit_test train-env OUTDIR TAG    the "sgd" configuration with `parallel` left unset
 *                                        (the driver sets NN_PARALLEL=mpi)
 *   mpi_fit_test bad OUTDIR              a process with NaN in its x, then one with another
 *                                        batch size, model dtype or layers: every process
 *                                        fails at once, and the group stays usable
 *   mpi_fit_test kill OUTDIR             process 1 is SIGKILLed mid-fit by a thread
 *   mpi_fit_test kill-callback OUTDIR    process 1 SIGKILLs itself from its progress callback
 *   mpi_fit_test nompirun OUTDIR         no mpirun: NN_ERR_COMM, "not launched under mpirun"
 *   mpi_fit_test noplugin OUTDIR         libnn without the plugin: NN_ERR_COMM, "not found"
 *   mpi_fit_test compare A B TOL         A and B hold the same lines, numbers within TOL
 *                                        relative (0: bit for bit); prints the worst error
 *
 * Checking modes write "PASS" or their failures to OUTDIR/check.<rank>.txt. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "nn/nn.h"

/* ---- small helpers ---------------------------------------------------------- */

static FILE *g_check;
static int g_failures;
#define CHECK(cond, ...)                                  \
    do {                                                  \
        if (!(cond)) {                                    \
            fprintf(g_check, "FAIL line %d: ", __LINE__); \
            fprintf(g_check, __VA_ARGS__);                \
            fprintf(g_check, "\n");                       \
            fflush(g_check);                              \
            ++g_failures;                                 \
        }                                                 \
    } while (0)

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int g_rank = 0, g_size = 1;

/* Joins the job (the first call loads the plugin); 0 without one. */
static int join(void) {
    if (nn_parallel_info(NN_PARALLEL_MPI, &g_rank, &g_size) != NN_OK) {
        fprintf(stderr, "nn_parallel_info: %s\n", nn_last_error_message());
        return 0;
    }
    return 1;
}

static void open_check(const char *dir) {
    char path[4096];
    snprintf(path, sizeof path, "%s/check.%d.txt", dir, g_rank);
    g_check = fopen(path, "w");
    if (!g_check) exit(2);
}

static int close_check(void) {
    if (!g_failures) fprintf(g_check, "PASS\n");
    fclose(g_check);
    return 0;
}

/* ---- data and models -------------------------------------------------------- */

enum { kPerClass = 100, kClasses = 3, kRows = kPerClass * kClasses };
static double g_x[kRows * 2], g_vx[kRows * 2];
static int32_t g_t[kRows], g_vt[kRows];

static void make_data(void) {
    if (nn_dataset_spiral(g_x, kRows * 2, g_t, kRows, kPerClass, kClasses, NULL, 1984) != NN_OK ||
        nn_dataset_spiral(g_vx, kRows * 2, g_vt, kRows, kPerClass, kClasses, NULL, 7) != NN_OK) {
        fprintf(stderr, "spiral: %s\n", nn_last_error_message());
        exit(2);
    }
}

/* Float64, the book's 2-10-3 sigmoid net. Each process seeds its own differently: the
 * fit must start every process from process 0's weights and stream. */
static nn_model *make_model(int seed_offset) {
    static const size_t sizes[] = {2, 10, 3};
    nn_model_desc d;
    nn_model_desc_init(&d);
    d.n_layer_sizes = 3;
    d.layer_sizes = sizes;
    d.dtype = NN_DTYPE_FLOAT64;
    d.init_std = 1.0;
    d.seed = 1984u + (uint32_t)seed_offset;
    nn_model *m = NULL;
    if (nn_create(&m, &d) != NN_OK) {
        fprintf(stderr, "nn_create: %s\n", nn_last_error_message());
        exit(2);
    }
    return m;
}

/* ---- the trajectories ------------------------------------------------------- */

typedef struct Config {
    const char *name;
    nn_optimizer optimizer;
    double lr, clip, weight_decay, val_fraction;
    int val_x, early_stopping, patience;
    double min_delta;
    int fits;
    size_t epochs;
    int sharded;
} Config;

static const Config kConfigs[] = {
    {"sgd", NN_OPTIMIZER_SGD, 1.0, 0, 0, 0, 0, 0, 0, 0, 4, 1, 0},
    {"momentum", NN_OPTIMIZER_MOMENTUM, 0.3, 0, 0, 0, 0, 0, 0, 0, 3, 1, 0},
    {"nesterov", NN_OPTIMIZER_NESTEROV, 0.3, 0, 0, 0, 0, 0, 0, 0, 3, 1, 0},
    {"adagrad", NN_OPTIMIZER_ADAGRAD, 0.3, 0, 0, 0, 0, 0, 0, 0, 3, 1, 0},
    {"rmsprop", NN_OPTIMIZER_RMSPROP, 0.03, 0, 0, 0, 0, 0, 0, 0, 3, 1, 0},
    /* Adam, clipping that bites, weight decay, a held-out fraction and early stopping
     * that stops (min_delta is large) and restores the best epoch. */
    {"adam_clip_val_es", NN_OPTIMIZER_ADAM, 0.05, 0.5, 1e-3, 0.2, 0, 1, 1, 0.02, 1, 12, 0},
    /* Adam with an explicit validation set, two multi-epoch fits (state carried over). */
    {"adam_valx", NN_OPTIMIZER_ADAM, 0.02, 2.0, 0, 0, 1, 0, 0, 0, 2, 3, 0},
    /* Each process passes only its own rows r, r + P, …: no single-process twin. */
    {"sharded", NN_OPTIMIZER_SGD, 1.0, 0, 0, 0, 1, 0, 0, 0, 3, 1, 1},
};

static void put_hex_line(FILE *f, const char *name, int fit, const char *what, const double *v, size_t n) {
    fprintf(f, "%s fit %d %s", name, fit, what);
    for (size_t i = 0; i < n; ++i) fprintf(f, " %a", v[i]);
    fprintf(f, "\n");
}

static void fill_options(nn_fit_options *o, const Config *c, int parallel) {
    nn_fit_options_init(o);
    o->epochs = c->epochs;
    o->batch_size = 30; /* the global batch: 10 steps an epoch, slices 15/15 or 8/8/7/7 */
    o->learning_rate = c->lr;
    o->report_interval = 1; /* the loss of every step */
    o->optimizer = c->optimizer;
    o->max_grad_norm = c->clip;
    o->weight_decay = c->weight_decay;
    o->validation_fraction = c->val_fraction;
    if (c->val_x) {
        o->val_x = g_vx;
        o->val_x_dtype = NN_DTYPE_FLOAT64;
        o->val_rows = kRows;
        o->val_cols = 2;
        o->val_targets = g_vt;
        o->val_target_type = NN_TARGET_CLASS_INDEX;
        o->val_target_cols = 1;
    }
    o->early_stopping = c->early_stopping;
    o->patience = c->patience;
    o->min_delta = c->min_delta;
    o->parallel = parallel ? NN_PARALLEL_MPI : NN_PARALLEL_NONE;
    o->sharded = c->sharded;
    o->parallel_timeout = 30.0;
}

/* Trains one configuration and writes, after every nn_fit call, the report, the
 * parameters, the epoch history and every step's loss. */
static int run_config(const Config *c, const char *dir, const char *tag, int parallel) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.%s%d.txt", dir, c->name, tag, g_rank);
    FILE *f = fopen(path, "w");
    if (!f) return 1;
    nn_model *m = make_model(parallel ? 7 * g_rank : 0);
    /* Sharded: process r passes rows r, r + P, r + 2P, … (its shard). */
    static double sx[kRows * 2];
    static int32_t st[kRows];
    const double *x = g_x;
    const int32_t *t = g_t;
    size_t rows = kRows;
    if (c->sharded) {
        rows = 0;
        for (size_t i = (size_t)g_rank; i < kRows; i += (size_t)g_size, ++rows) {
            sx[2 * rows] = g_x[2 * i];
            sx[2 * rows + 1] = g_x[2 * i + 1];
            st[rows] = g_t[i];
        }
        x = sx;
        t = st;
    }
    size_t n_params = 0;
    nn_param_count(m, &n_params);
    double *params = malloc(n_params * sizeof *params);
    nn_epoch_record *epochs = malloc(1000 * sizeof *epochs);
    nn_loss_record *records = malloc(10000 * sizeof *records);
    double *v = malloc(10000 * sizeof *v);
    for (int k = 0; k < c->fits; ++k) {
        nn_fit_options o;
        fill_options(&o, c, parallel);
        nn_fit_report r;
        nn_fit_report_init(&r);
        const nn_status s = nn_fit(m, x, NN_DTYPE_FLOAT64, rows, 2, t, NN_TARGET_CLASS_INDEX, 1, &o, &r);
        if (s != NN_OK) fprintf(stderr, "%s fit %d: %s\n", c->name, k, nn_last_error_message());
        fprintf(f, "%s fit %d status %d epochs_run %zu steps_run %zu steps_per_epoch %zu stopped_early %d best_epoch %llu\n",
                c->name, k, (int)s, r.epochs_run, r.steps_run, r.steps_per_epoch, r.stopped_early,
                (unsigned long long)r.best_epoch);
        nn_get_params(m, params, n_params);
        put_hex_line(f, c->name, k, "params", params, n_params);
        size_t ne = 0, nr = 0;
        nn_get_epoch_history(m, epochs, 1000, &ne);
        for (size_t i = 0; i < ne && i < 1000; ++i) {
            v[3 * i] = epochs[i].loss;
            v[3 * i + 1] = epochs[i].val_loss;
            v[3 * i + 2] = epochs[i].val_accuracy;
        }
        put_hex_line(f, c->name, k, "epochs", v, 3 * (ne < 1000 ? ne : 1000));
        nn_get_loss_history(m, records, 10000, &nr);
        for (size_t i = 0; i < nr && i < 10000; ++i) v[i] = records[i].loss;
        put_hex_line(f, c->name, k, "steps", v, nr < 10000 ? nr : 10000);
    }
    if (c->sharded) { /* across the fits, the epoch loss went down */
        size_t ne = 0;
        nn_get_epoch_history(m, epochs, 1000, &ne);
        fprintf(f, "%s learned %s\n", c->name, ne >= 2 && epochs[ne - 1].loss < epochs[0].loss ? "yes" : "no");
    }
    free(params);
    free(epochs);
    free(records);
    free(v);
    nn_destroy(m);
    fclose(f);
    return 0;
}

static int mode_train(const char *dir, const char *tag, int env_only) {
    const int parallel = strcmp(tag, "single") != 0;
    if (parallel && !join()) return 1;
    make_data();
    if (env_only) {
        /* An unchanged program: `parallel` stays NONE, NN_PARALLEL=mpi does the rest. */
        return run_config(&kConfigs[0], dir, tag, 0);
    }
    for (size_t i = 0; i < sizeof kConfigs / sizeof kConfigs[0]; ++i) {
        if (!parallel && kConfigs[i].sharded) continue;
        if (run_config(&kConfigs[i], dir, tag, parallel)) return 1;
    }
    return 0;
}

/* ---- failures --------------------------------------------------------------- */

static int mode_bad(const char *dir) {
    if (!join()) return 1;
    open_check(dir);
    make_data();
    const double timeout = 5.0;
    /* 1. Process 1 has a NaN in its x: it fails its own check, the others learn of it. */
    nn_model *m = make_model(0);
    size_t n_params = 0;
    nn_param_count(m, &n_params);
    double before[64], after[64];
    nn_get_params(m, before, 64);
    static double x[kRows * 2];
    memcpy(x, g_x, sizeof x);
    if (g_rank == 1) x[17] = NAN;
    nn_fit_options o;
    nn_fit_options_init(&o);
    o.epochs = 2;
    o.batch_size = 30;
    o.parallel = NN_PARALLEL_MPI;
    o.parallel_timeout = timeout;
    double t0 = now();
    nn_status s = nn_fit(m, x, NN_DTYPE_FLOAT64, kRows, 2, g_t, NN_TARGET_CLASS_INDEX, 1, &o, NULL);
    double took = now() - t0;
    if (g_rank == 1) {
        CHECK(s == NN_ERR_NON_FINITE, "NaN process: status %d (%s)", (int)s, nn_last_error_message());
    } else {
        CHECK(s == NN_ERR_COMM, "status %d (%s), expected NN_ERR_COMM", (int)s, nn_last_error_message());
        CHECK(strstr(nn_last_error_message(), "process 1") != NULL, "message '%s' does not name process 1",
              nn_last_error_message());
    }
    CHECK(took < timeout, "the failed fit took %.2f s (timeout %.0f s)", took, timeout);
    nn_get_params(m, after, 64);
    CHECK(memcmp(before, after, n_params * sizeof(double)) == 0, "a refused fit changed the model");

    /* 2. Process 1 asks for another batch size: every process refuses, with the reason. */
    o.batch_size = g_rank == 1 ? 20 : 30;
    t0 = now();
    s = nn_fit(m, g_x, NN_DTYPE_FLOAT64, kRows, 2, g_t, NN_TARGET_CLASS_INDEX, 1, &o, NULL);
    took = now() - t0;
    CHECK(s == NN_ERR_COMM, "batch sizes differ: status %d (%s)", (int)s, nn_last_error_message());
    CHECK(strstr(nn_last_error_message(), "batch_size") != NULL, "message '%s'", nn_last_error_message());
    CHECK(took < timeout, "the refused fit took %.2f s", took);

    /* 2b. Process 1's model is float32 (the others' float64), then has another hidden
     * width: refused everywhere, at once, naming what differs. */
    {
        static const size_t wider[] = {2, 12, 3};
        nn_model_desc d;
        nn_model_desc_init(&d);
        d.n_layer_sizes = 3;
        d.layer_sizes = wider;
        d.dtype = NN_DTYPE_FLOAT64;
        for (int variant = 0; variant < 2; ++variant) {
            nn_model *other = NULL;
            if (g_rank == 1) {
                static const size_t same[] = {2, 10, 3};
                d.layer_sizes = variant == 0 ? same : wider;
                d.dtype = variant == 0 ? NN_DTYPE_FLOAT32 : NN_DTYPE_FLOAT64;
                if (nn_create(&other, &d) != NN_OK) other = NULL;
            }
            nn_model *use = other ? other : m;
            o.batch_size = 30;
            t0 = now();
            s = nn_fit(use, g_x, NN_DTYPE_FLOAT64, kRows, 2, g_t, NN_TARGET_CLASS_INDEX, 1, &o, NULL);
            took = now() - t0;
            const char *what = variant == 0 ? "dtype" : "layers";
            CHECK(s == NN_ERR_COMM, "%s differ: status %d (%s)", what, (int)s, nn_last_error_message());
            CHECK(strstr(nn_last_error_message(), "disagree") != NULL && strstr(nn_last_error_message(), what) != NULL,
                  "%s differ: message '%s'", what, nn_last_error_message());
            CHECK(took < timeout, "the refused fit took %.2f s", took);
            nn_destroy(other);
        }
    }

    /* 3. The processes still work together afterwards, and stay identical. */
    o.batch_size = 30;
    s = nn_fit(m, g_x, NN_DTYPE_FLOAT64, kRows, 2, g_t, NN_TARGET_CLASS_INDEX, 1, &o, NULL);
    CHECK(s == NN_OK, "fit after the refusals: %s", nn_last_error_message());
    nn_get_params(m, after, 64);
    char path[4096];
    snprintf(path, sizeof path, "%s/params.%d.txt", dir, g_rank);
    FILE *f = fopen(path, "w");
    if (f) {
        put_hex_line(f, "bad", 3, "params", after, n_params);
        fclose(f);
    }
    nn_destroy(m);
    return close_check();
}

/* Process 1's killer: a thread that SIGKILLs its process while the fit runs. */
static double g_kill_after = 0.8;
static const char *g_dir;
static void record_kill_time(void) {
    char path[4096];
    snprintf(path, sizeof path, "%s/killed_at.txt", g_dir);
    FILE *f = fopen(path, "w");
    if (f) {
        fprintf(f, "%.6f\n", now());
        fclose(f);
    }
}
static void *killer(void *arg) {
    (void)arg;
    struct timespec d = {(time_t)g_kill_after, (long)((g_kill_after - (double)(time_t)g_kill_after) * 1e9)};
    nanosleep(&d, NULL);
    record_kill_time();
    kill(getpid(), SIGKILL);
    return NULL;
}

static double read_kill_time(void) {
    char path[4096];
    snprintf(path, sizeof path, "%s/killed_at.txt", g_dir);
    double t = 0;
    FILE *f = fopen(path, "r");
    if (f) {
        if (fscanf(f, "%lf", &t) != 1) t = 0;
        fclose(f);
    }
    return t;
}

/* Replays `steps` steps in one process (a callback cancels after the last one). */
typedef struct Replay {
    size_t steps, seen;
} Replay;
static int replay_progress(const nn_progress *p, void *user) {
    Replay *r = user;
    if (p->event != NN_PROGRESS_REPORT) return 0;
    return ++r->seen >= r->steps;
}

static int kill_callback(const nn_progress *p, void *user) {
    (void)user;
    if (g_rank == 1 && p->event == NN_PROGRESS_REPORT && p->epoch == 3 && p->iteration == 6) {
        record_kill_time();
        kill(getpid(), SIGKILL);
    }
    return 0;
}

static int mode_kill(const char *dir, int from_callback) {
    g_dir = dir;
    if (!join()) return 1;
    open_check(dir);
    make_data();
    const double timeout = 2.0;
    nn_model *m = make_model(0);
    size_t n_params = 0;
    nn_param_count(m, &n_params);
    double start_params[64], params[64];
    nn_get_params(m, start_params, 64);
    nn_fit_options o;
    nn_fit_options_init(&o);
    o.batch_size = 30;
    o.learning_rate = 0.3;
    o.parallel = NN_PARALLEL_MPI;
    o.parallel_timeout = timeout;
    if (from_callback) {
        o.epochs = 6;
        o.report_interval = 5;
        o.progress = kill_callback;
        o.progress_on_every_process = 1;
    } else {
        o.epochs = 100000;   /* far longer than the kill takes to come */
        o.report_interval = 0;
        pthread_t th;
        if (g_rank == 1) pthread_create(&th, NULL, killer, NULL);
    }
    nn_fit_report r;
    nn_fit_report_init(&r);
    const nn_status s = nn_fit(m, g_x, NN_DTYPE_FLOAT64, kRows, 2, g_t, NN_TARGET_CLASS_INDEX, 1, &o, &r);
    const double end = now();
    const char *msg = nn_last_error_message();
    CHECK(g_rank != 1, "process 1 survived its SIGKILL (status %d)", (int)s);
    CHECK(s == NN_ERR_COMM, "status %d (%s), expected NN_ERR_COMM", (int)s, msg);
    CHECK(strstr(msg, "no answer from the other processes within 2 s") != NULL, "message '%s'", msg);
    const double killed_at = read_kill_time();
    CHECK(killed_at > 0, "no kill time recorded");
    CHECK(end - killed_at < timeout + 2.0, "returned %.2f s after the kill (timeout %.0f s)", end - killed_at, timeout);
    /* The completed training is kept: epochs before the kill in the history, the
     * parameters of the last completed step. */
    size_t ne = 0;
    nn_get_epoch_history(m, NULL, 0, &ne);
    fprintf(stderr, "process %d: status %d after %zu epochs, %zu steps: %s\n", g_rank, (int)s, r.epochs_run,
            r.steps_run, msg);
    if (from_callback) {
        CHECK(ne == 2, "epoch history has %zu epochs, expected the 2 before the kill", ne);
        CHECK(r.epochs_run == 2, "report says %zu epochs", r.epochs_run);
    } else {
        CHECK(ne >= 1 && ne == r.epochs_run, "epoch history has %zu epochs, the report %zu", ne, r.epochs_run);
    }
    CHECK(r.steps_run >= ne * 10, "report says %zu steps for %zu epochs", r.steps_run, ne);
    nn_get_params(m, params, 64);
    CHECK(memcmp(params, start_params, n_params * sizeof(double)) != 0, "the model lost its training");
    /* Those parameters are those of one process training the same number of steps. */
    if (r.steps_run > 0) {
        nn_model *ref = make_model(0);
        Replay rp = {r.steps_run, 0};
        nn_fit_options ro = o;
        ro.parallel = NN_PARALLEL_NONE;
        ro.epochs = r.steps_run / 10 + 1;
        ro.report_interval = 1;
        ro.progress = replay_progress;
        ro.progress_user = &rp;
        const nn_status rs = nn_fit(ref, g_x, NN_DTYPE_FLOAT64, kRows, 2, g_t, NN_TARGET_CLASS_INDEX, 1, &ro, NULL);
        CHECK(rs == NN_ERR_CANCELLED || rs == NN_OK, "replay: %s", nn_last_error_message());
        double rparams[64], worst = 0, scale = 0;
        nn_get_params(ref, rparams, 64);
        for (size_t i = 0; i < n_params; ++i) scale = fmax(scale, fabs(rparams[i]));
        for (size_t i = 0; i < n_params; ++i) worst = fmax(worst, fabs(params[i] - rparams[i]) / scale);
        fprintf(stderr, "process %d: %zu steps, parameters within %.3g (relative to the largest) of one process's\n",
                g_rank, r.steps_run, worst);
        CHECK(worst <= 1e-12, "parameters differ from %zu steps of one process by %.3g relative", r.steps_run, worst);
        nn_destroy(ref);
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/params.%d.txt", dir, g_rank);
    FILE *f = fopen(path, "w");
    if (f) {
        fprintf(f, "steps %zu epochs %zu\n", r.steps_run, ne);
        put_hex_line(f, "kill", 0, "params", params, n_params);
        fclose(f);
    }
    nn_destroy(m);
    return close_check();
}

/* ---- without mpirun, without the plugin ------------------------------------- */

static int mode_unavailable(const char *dir, const char *want) {
    int joined_rank = -1, joined_size = -1;
    nn_status s = nn_parallel_info(NN_PARALLEL_MPI, &joined_rank, &joined_size);
    /* Under mpirun (noplugin) each process names its own file after OMPI's rank. */
    const char *env_rank = getenv("OMPI_COMM_WORLD_RANK");
    g_rank = env_rank ? atoi(env_rank) : 0;
    open_check(dir);
    CHECK(s == NN_ERR_COMM, "nn_parallel_info: status %d", (int)s);
    CHECK(strstr(nn_last_error_message(), want) != NULL, "nn_parallel_info: '%s' lacks '%s'", nn_last_error_message(),
          want);
    CHECK(nn_parallel_info((nn_parallel)7, NULL, NULL) == NN_ERR_INVALID_ARGUMENT, "kind 7 accepted");
    make_data();
    nn_model *m = make_model(0);
    size_t n_params = 0;
    nn_param_count(m, &n_params);
    double before[64], after[64];
    nn_get_params(m, before, 64);
    nn_fit_options o;
    nn_fit_options_init(&o);
    o.epochs = 1;
    o.batch_size = 30;
    o.parallel_timeout = 2.0;
    /* The option, then the environment variable (the driver sets NN_PARALLEL=mpi in a
     * second run: then the option-less fit must fail the same way). */
    const int env_set = getenv("NN_PARALLEL") != NULL;
    o.parallel = env_set ? NN_PARALLEL_NONE : NN_PARALLEL_MPI;
    const double t0 = now();
    s = nn_fit(m, g_x, NN_DTYPE_FLOAT64, kRows, 2, g_t, NN_TARGET_CLASS_INDEX, 1, &o, NULL);
    CHECK(s == NN_ERR_COMM, "nn_fit (%s): status %d (%s)", env_set ? "NN_PARALLEL=mpi" : "parallel option", (int)s,
          nn_last_error_message());
    CHECK(strstr(nn_last_error_message(), want) != NULL, "nn_fit: '%s' lacks '%s'", nn_last_error_message(), want);
    CHECK(now() - t0 < 1.0, "the refusal took %.2f s", now() - t0);
    nn_get_params(m, after, 64);
    CHECK(memcmp(before, after, n_params * sizeof(double)) == 0, "a refused fit changed the model");
    /* One process still trains when nobody asks for more. */
    if (!env_set) {
        o.parallel = NN_PARALLEL_NONE;
        CHECK(nn_fit(m, g_x, NN_DTYPE_FLOAT64, kRows, 2, g_t, NN_TARGET_CLASS_INDEX, 1, &o, NULL) == NN_OK,
              "single-process fit: %s", nn_last_error_message());
    }
    nn_destroy(m);
    return close_check();
}

/* ---- comparing result files ------------------------------------------------- */

static int is_number(const char *tok) {
    const char *p = tok + (*tok == '-');
    return strncmp(p, "0x", 2) == 0 || strcmp(p, "nan") == 0 || strcmp(p, "inf") == 0;
}

/* Compares two files token by token: words exactly, numbers within `tol` of each other
 * relative to the larger magnitude (0: the same bits). */
static int mode_compare(const char *a_path, const char *b_path, double tol) {
    FILE *a = fopen(a_path, "r"), *b = fopen(b_path, "r");
    if (!a || !b) {
        fprintf(stderr, "compare: cannot open %s or %s\n", a_path, b_path);
        return 1;
    }
    char ta[128], tb[128];
    size_t numbers = 0, bad = 0;
    double worst = 0;
    for (;;) {
        const int ra = fscanf(a, "%127s", ta), rb = fscanf(b, "%127s", tb);
        if (ra != 1 || rb != 1) {
            if (ra != rb) {
                fprintf(stderr, "compare: %s and %s have different lengths\n", a_path, b_path);
                ++bad;
            }
            break;
        }
        if (is_number(ta) && is_number(tb)) {
            const double x = strtod(ta, NULL), y = strtod(tb, NULL);
            ++numbers;
            if (isnan(x) && isnan(y)) continue;
            const double m = fmax(fabs(x), fabs(y));
            const double rel = x == y ? 0.0 : fabs(x - y) / m;
            if (rel > worst) worst = rel;
            if ((tol == 0 && strcmp(ta, tb) != 0) || !(rel <= tol)) {
                if (bad < 5) fprintf(stderr, "compare: %s differs: %s vs %s (relative %.3g)\n", a_path, ta, tb, rel);
                ++bad;
            }
        } else if (strcmp(ta, tb) != 0) {
            if (bad < 5) fprintf(stderr, "compare: %s: '%s' vs '%s'\n", a_path, ta, tb);
            ++bad;
        }
    }
    fclose(a);
    fclose(b);
    printf("%s vs %s: %zu numbers, worst relative difference %.3g, %zu outside %.3g\n", a_path, b_path, numbers, worst,
           bad, tol);
    return bad != 0 || numbers == 0;
}

int main(int argc, char **argv) {
    if (argc < 3) return 2;
    const char *mode = argv[1];
    if (strcmp(mode, "compare") == 0 && argc == 5) return mode_compare(argv[2], argv[3], atof(argv[4]));
    if (strcmp(mode, "train") == 0 && argc == 4) return mode_train(argv[2], argv[3], 0);
    if (strcmp(mode, "train-env") == 0 && argc == 4) return mode_train(argv[2], argv[3], 1);
    if (strcmp(mode, "bad") == 0) return mode_bad(argv[2]);
    if (strcmp(mode, "kill") == 0) return mode_kill(argv[2], 0);
    if (strcmp(mode, "kill-callback") == 0) return mode_kill(argv[2], 1);
    if (strcmp(mode, "nompirun") == 0) return mode_unavailable(argv[2], "not launched under mpirun");
    if (strcmp(mode, "noplugin") == 0) return mode_unavailable(argv[2], "libnn-comm-mpi.so not found");
    return 2;
}
