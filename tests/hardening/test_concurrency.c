/*
 * Many threads at once (nn.h: "different handles may be used from different threads at
 * the same time"):
 *
 * - a mixed workload on 8+ threads, each with its own models: create, fit, predict,
 *   evaluate, histories, save/load through buffers and through per-thread files, device
 *   switches between the reference and the CPU plugin, metadata. Every result (parameters,
 *   predictions, histories, saved bytes, reports) is logged, and the log of each thread
 *   must be bit-identical to the log of the same work done serially on the main thread.
 * - the very first library call made by many threads at the same moment, in a freshly
 *   exec'd copy of this program (so device discovery has not happened yet): every thread
 *   succeeds and sees the same device list, which is the list this process sees.
 * - nn_last_error_message() is per thread: threads failing with different errors at the
 *   same moment each read back their own text, and it survives other threads' failures.
 *
 * Worker threads never call cmocka's assertions (they are not thread-safe); they record
 * what they saw and the main thread asserts.
 */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <nn/nn.h>

#include "capi_test_util.h" /* capi_remove_dir */

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define WORK_THREADS 10
#define ROUNDS 5
#define WORK_REPEATS 3 /* the threaded run, against the one serial run */
#define FIRST_CALL_THREADS 16
#define FIRST_CALL_CHILDREN 4
#define ERR_THREADS 8

static const char *g_self = NULL; /* argv[0], for re-executing this program */

/* The test's temporary directory, removed with whatever is left in it by the teardown,
 * which cmocka runs after a failed test too. */
static char g_dir[64];

static int remove_temp_dir(void **state)
{
    (void)state;
    if (g_dir[0] == '\0') return 0;
    capi_remove_dir(g_dir);
    g_dir[0] = '\0';
    return 0;
}

/* ---- a log of every result, compared section by section ------------------------- */

typedef struct log_entry {
    char tag[64];
    size_t off;
    size_t len;
} log_entry;

typedef struct result_log {
    unsigned char *data;
    size_t size, cap;
    log_entry *entries;
    size_t n_entries, entries_cap;
    int oom;
} result_log;

static void log_add(result_log *log, const char *tag, int round, const void *bytes, size_t len)
{
    if (log->oom) return;
    if (log->size + len > log->cap) {
        size_t cap = log->cap ? log->cap : 4096;
        unsigned char *p;
        while (cap < log->size + len) cap *= 2;
        p = realloc(log->data, cap);
        if (!p) {
            log->oom = 1;
            return;
        }
        log->data = p;
        log->cap = cap;
    }
    if (log->n_entries == log->entries_cap) {
        size_t cap = log->entries_cap ? 2 * log->entries_cap : 64;
        log_entry *e = realloc(log->entries, cap * sizeof *e);
        if (!e) {
            log->oom = 1;
            return;
        }
        log->entries = e;
        log->entries_cap = cap;
    }
    snprintf(log->entries[log->n_entries].tag, sizeof log->entries[0].tag, "round %d: %s", round, tag);
    log->entries[log->n_entries].off = log->size;
    log->entries[log->n_entries].len = len;
    ++log->n_entries;
    if (len) memcpy(log->data + log->size, bytes, len);
    log->size += len;
}

static void log_free(result_log *log)
{
    free(log->data);
    free(log->entries);
    memset(log, 0, sizeof *log);
}

/* Non-zero if equal; otherwise prints the first section that differs. */
static int logs_equal(const result_log *a, const result_log *b, int id)
{
    size_t i;
    if (a->oom || b->oom) {
        print_error("thread %d: out of memory while logging\n", id);
        return 0;
    }
    for (i = 0; i < a->n_entries && i < b->n_entries; ++i) {
        const log_entry *ea = &a->entries[i], *eb = &b->entries[i];
        if (strcmp(ea->tag, eb->tag) != 0) {
            print_error("thread %d: entry %zu is \"%s\" serially, \"%s\" in the thread\n", id, i, ea->tag,
                        eb->tag);
            return 0;
        }
        if (ea->len != eb->len) {
            print_error("thread %d: \"%s\" has %zu bytes serially, %zu in the thread\n", id, ea->tag, ea->len,
                        eb->len);
            return 0;
        }
        if (memcmp(a->data + ea->off, b->data + eb->off, ea->len) != 0) {
            size_t k = 0;
            while (a->data[ea->off + k] == b->data[eb->off + k]) ++k;
            print_error("thread %d: \"%s\" differs at byte %zu of %zu\n", id, ea->tag, k, ea->len);
            return 0;
        }
    }
    if (a->n_entries != b->n_entries) {
        print_error("thread %d: %zu log entries serially, %zu in the thread\n", id, a->n_entries, b->n_entries);
        return 0;
    }
    return 1;
}

/* ---- the mixed workload ----------------------------------------------------------- */

#define PER_CLASS 100
#define ROWS (3 * PER_CLASS)
#define PROBE 16

typedef struct work_job {
    int id;
    int cpu_available;
    const char *dir;
    const char *prefix;            /* "serial" or "thread": file names differ, contents not */
    pthread_barrier_t *start;      /* NULL when run serially */
    result_log log;
    char failure[512];             /* first failure, "" if none */
} work_job;

#define STEP(call)                                                                         \
    do {                                                                                   \
        nn_status s_ = (call);                                                             \
        if (s_ != NN_OK) {                                                                 \
            snprintf(j->failure, sizeof j->failure, "round %d: %s -> %s: %s", round, #call,  \
                     nn_status_string(s_), nn_last_error_message());                       \
            goto done;                                                                     \
        }                                                                                  \
    } while (0)

static int read_whole_file(const char *path, unsigned char **out, size_t *out_len)
{
    FILE *f = fopen(path, "rb");
    unsigned char *buf = NULL;
    size_t len = 0, cap = 0;
    if (!f) return 0;
    for (;;) {
        size_t got;
        if (len == cap) {
            unsigned char *p;
            cap = cap ? 2 * cap : 65536;
            p = realloc(buf, cap);
            if (!p) {
                free(buf);
                fclose(f);
                return 0;
            }
            buf = p;
        }
        got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0) break;
    }
    if (ferror(f)) {
        free(buf);
        fclose(f);
        return 0;
    }
    fclose(f);
    *out = buf;
    *out_len = len;
    return 1;
}

static void log_model_state(work_job *j, int round, const char *what, nn_model *m, const double *probe)
{
    double params[2048];
    size_t n = 0, count = 0;
    double scores[PROBE * 3];
    float probs[PROBE * 3];
    int32_t classes[PROBE];
    nn_loss_record records[256];
    double epochs[64];
    char tag[48];
    if (nn_param_count(m, &n) != NN_OK || n > 2048) {
        snprintf(j->failure, sizeof j->failure, "round %d: %s: param count %zu", round, what, n);
        return;
    }
    if (nn_get_params(m, params, n) != NN_OK) goto failed;
    snprintf(tag, sizeof tag, "%s params", what);
    log_add(&j->log, tag, round, params, n * sizeof params[0]);
    if (nn_predict(m, probe, NN_DTYPE_FLOAT64, PROBE, 2, NN_OUTPUT_SCORES, scores, NN_DTYPE_FLOAT64,
                   PROBE * 3) != NN_OK)
        goto failed;
    snprintf(tag, sizeof tag, "%s scores", what);
    log_add(&j->log, tag, round, scores, sizeof scores);
    if (nn_predict(m, probe, NN_DTYPE_FLOAT64, PROBE, 2, NN_OUTPUT_PROBABILITIES, probs, NN_DTYPE_FLOAT32,
                   PROBE * 3) != NN_OK)
        goto failed;
    snprintf(tag, sizeof tag, "%s probabilities", what);
    log_add(&j->log, tag, round, probs, sizeof probs);
    if (nn_predict_classes(m, probe, NN_DTYPE_FLOAT64, PROBE, 2, classes, PROBE) != NN_OK) goto failed;
    snprintf(tag, sizeof tag, "%s classes", what);
    log_add(&j->log, tag, round, classes, sizeof classes);
    if (nn_get_loss_history(m, records, 256, &count) != NN_OK || count > 256) goto failed;
    snprintf(tag, sizeof tag, "%s loss history", what);
    log_add(&j->log, tag, round, records, count * sizeof records[0]);
    if (nn_get_epoch_losses(m, epochs, 64, &count) != NN_OK || count > 64) goto failed;
    snprintf(tag, sizeof tag, "%s epoch losses", what);
    log_add(&j->log, tag, round, epochs, count * sizeof epochs[0]);
    return;
failed:
    snprintf(j->failure, sizeof j->failure, "round %d: %s: %s", round, what, nn_last_error_message());
}

static void run_work(work_job *j)
{
    const size_t hidden = (size_t)(8 + 4 * (j->id % 4));
    size_t sizes[4];
    double x[ROWS * 2], probe[PROBE * 2];
    int32_t labels[ROWS];
    nn_model_desc desc;
    nn_model *m = NULL, *m2 = NULL, *m3 = NULL;
    nn_rng *rng = NULL;
    unsigned char *buf = NULL, *file = NULL;
    size_t buf_size = 0, file_size = 0;
    char path[4096], meta[64], got_meta[64];
    int round = -1, i;
    sizes[0] = 2;
    sizes[1] = hidden;
    sizes[2] = 8;
    sizes[3] = 3;
    for (i = 0; i < PROBE * 2; ++i) probe[i] = -1.5 + 3.0 * (double)((i * 7 + j->id) % 23) / 22.0;
    snprintf(path, sizeof path, "%s/%s-%d.nn", j->dir, j->prefix, j->id);

    if (j->start) {
        int rc = pthread_barrier_wait(j->start);
        if (rc != 0 && rc != PTHREAD_BARRIER_SERIAL_THREAD) {
            snprintf(j->failure, sizeof j->failure, "pthread_barrier_wait: %d", rc);
            return;
        }
    }
    STEP(nn_dataset_spiral(x, ROWS * 2, labels, ROWS, PER_CLASS, 3, NULL, (uint32_t)(500 + j->id)));
    STEP(nn_rng_create(&rng, (uint32_t)(900 + j->id)));
    nn_model_desc_init(&desc);
    desc.n_layer_sizes = 4;
    desc.layer_sizes = sizes;
    desc.dtype = j->id % 2 ? NN_DTYPE_FLOAT32 : NN_DTYPE_FLOAT64;
    desc.hidden_activation = (nn_activation)(j->id % 3); /* sigmoid, relu, tanh */
    desc.init = (nn_init)(j->id % 3);
    desc.seed = (uint32_t)(1000 + j->id);
    STEP(nn_create(&m, &desc));

    for (round = 0; round < ROUNDS; ++round) {
        nn_fit_options o;
        nn_fit_report rep;
        nn_save_options so;
        nn_device_info dev;
        double loss = 0.0, acc = 0.0;
        size_t len = 0;
        int32_t dev_kind;
        const nn_device_kind want =
            ((j->id + round) % 2 == 0 && j->cpu_available) ? NN_DEVICE_CPU : NN_DEVICE_REFERENCE;

        STEP(nn_set_device(m, want, 0));
        nn_device_info_init(&dev);
        STEP(nn_get_device(m, &dev));
        dev_kind = (int32_t)dev.kind;
        log_add(&j->log, "device", round, &dev_kind, sizeof dev_kind);

        snprintf(meta, sizeof meta, "job %d round %d", j->id, round);
        STEP(nn_set_metadata(m, "round", meta));
        STEP(nn_set_metadata(m, round % 2 ? "odd" : "even", meta));

        nn_fit_options_init(&o);
        o.epochs = 3;
        o.batch_size = 10;
        o.learning_rate = 0.5;
        o.report_interval = 4;
        o.rng = round % 2 ? rng : NULL; /* the shared stream on odd rounds */
        nn_fit_report_init(&rep);
        STEP(nn_fit(m, x, NN_DTYPE_FLOAT64, ROWS, 2, labels, NN_TARGET_CLASS_INDEX, 1, &o, &rep));
        log_add(&j->log, "report epochs", round, &rep.epochs_run, sizeof rep.epochs_run);
        log_add(&j->log, "report steps", round, &rep.steps_run, sizeof rep.steps_run);
        log_add(&j->log, "report final loss", round, &rep.final_loss, sizeof rep.final_loss);
        dev_kind = (int32_t)rep.device_kind;
        log_add(&j->log, "report device", round, &dev_kind, sizeof dev_kind);
        log_model_state(j, round, "fitted", m, probe);
        if (j->failure[0]) goto done;

        STEP(nn_evaluate(m, x, NN_DTYPE_FLOAT64, ROWS, 2, labels, NN_TARGET_CLASS_INDEX, 1, &loss, &acc));
        log_add(&j->log, "evaluate loss", round, &loss, sizeof loss);
        log_add(&j->log, "evaluate accuracy", round, &acc, sizeof acc);

        /* Through a buffer, in a storage dtype that changes with the round. */
        nn_save_options_init(&so);
        so.storage = round == 0 ? NN_DTYPE_MODEL : round == 1 ? NN_DTYPE_FLOAT16 : NN_DTYPE_FLOAT64;
        STEP(nn_save_to_buffer(m, NULL, 0, &buf_size, &so));
        buf = malloc(buf_size);
        if (!buf) {
            snprintf(j->failure, sizeof j->failure, "round %d: out of memory", round);
            goto done;
        }
        STEP(nn_save_to_buffer(m, buf, buf_size, &len, &so));
        log_add(&j->log, "saved buffer", round, buf, len);
        STEP(nn_load_from_buffer(&m2, buf, len));
        free(buf);
        buf = NULL;
        log_model_state(j, round, "loaded from buffer", m2, probe);
        if (j->failure[0]) goto done;
        STEP(nn_get_metadata(m2, "round", got_meta, sizeof got_meta, &len));
        log_add(&j->log, "buffer metadata", round, got_meta, len);

        /* Through this thread's own file. */
        STEP(nn_set_metadata(m2, "file", "written to this thread's own file"));
        STEP(nn_save(m2, path, NULL));
        if (!read_whole_file(path, &file, &file_size)) {
            snprintf(j->failure, sizeof j->failure, "round %d: cannot read back %.300s: %s", round, path,
                     strerror(errno));
            goto done;
        }
        log_add(&j->log, "saved file", round, file, file_size);
        free(file);
        file = NULL;
        STEP(nn_load(&m3, path));
        log_model_state(j, round, "loaded from file", m3, probe);
        if (j->failure[0]) goto done;
        STEP(nn_get_metadata(m3, "file", got_meta, sizeof got_meta, &len));
        log_add(&j->log, "file metadata", round, got_meta, len);

        /* The loaded model keeps training exactly where the saved one was, on the other device. */
        STEP(nn_set_device(m3, want == NN_DEVICE_CPU || !j->cpu_available ? NN_DEVICE_REFERENCE : NN_DEVICE_CPU, 0));
        o.epochs = 1;
        o.rng = NULL;
        STEP(nn_fit(m3, x, NN_DTYPE_FLOAT64, ROWS, 2, labels, NN_TARGET_CLASS_INDEX, 1, &o, NULL));
        log_model_state(j, round, "loaded and refitted", m3, probe);
        if (j->failure[0]) goto done;
        STEP(nn_set_metadata(m, round % 2 ? "odd" : "even", NULL));
        nn_destroy(m2);
        nn_destroy(m3);
        m2 = m3 = NULL;
    }
    round = ROUNDS;
    log_model_state(j, round, "final", m, probe);
done:
    free(buf);
    free(file);
    nn_destroy(m3);
    nn_destroy(m2);
    nn_destroy(m);
    nn_rng_destroy(rng);
}

static void *work_thread(void *arg)
{
    run_work(arg);
    return NULL;
}

static int cpu_is_available(void)
{
    size_t n = 0, i;
    if (nn_device_count(&n) != NN_OK) return 0;
    for (i = 0; i < n; ++i) {
        nn_device_info info;
        nn_device_info_init(&info);
        if (nn_device_get(i, &info) == NN_OK && info.kind == NN_DEVICE_CPU && info.available) return 1;
    }
    return 0;
}

static void test_mixed_workload_on_threads_matches_serial(void **state)
{
    static work_job serial[WORK_THREADS], threaded[WORK_THREADS];
    pthread_t t[WORK_THREADS];
    pthread_barrier_t start;
    const char *dir = g_dir;
    int i, rep, cpu;
    (void)state;
    snprintf(g_dir, sizeof g_dir, "/tmp/nn-hardening-XXXXXX");
    assert_non_null(mkdtemp(g_dir));
    cpu = cpu_is_available();
    if (!cpu) print_message("the CPU plugin is not available: every round runs on the reference\n");

    for (i = 0; i < WORK_THREADS; ++i) {
        memset(&serial[i], 0, sizeof serial[i]);
        serial[i].id = i;
        serial[i].cpu_available = cpu;
        serial[i].dir = dir;
        serial[i].prefix = "serial";
        run_work(&serial[i]);
        if (serial[i].failure[0]) print_error("serial job %d: %s\n", i, serial[i].failure);
        assert_string_equal(serial[i].failure, "");
        assert_true(serial[i].log.n_entries > 0);
    }
    for (rep = 0; rep < WORK_REPEATS; ++rep) {
        for (i = 0; i < WORK_THREADS; ++i) {
            memset(&threaded[i], 0, sizeof threaded[i]);
            threaded[i].id = i;
            threaded[i].cpu_available = cpu;
            threaded[i].dir = dir;
            threaded[i].prefix = "thread";
            threaded[i].start = &start;
        }
        assert_int_equal(pthread_barrier_init(&start, NULL, WORK_THREADS), 0);
        for (i = 0; i < WORK_THREADS; ++i)
            assert_int_equal(pthread_create(&t[i], NULL, work_thread, &threaded[i]), 0);
        for (i = 0; i < WORK_THREADS; ++i) assert_int_equal(pthread_join(t[i], NULL), 0);
        pthread_barrier_destroy(&start);
        for (i = 0; i < WORK_THREADS; ++i) {
            if (threaded[i].failure[0]) print_error("run %d, thread %d: %s\n", rep, i, threaded[i].failure);
            assert_string_equal(threaded[i].failure, "");
            assert_true(logs_equal(&serial[i].log, &threaded[i].log, i));
            log_free(&threaded[i].log);
        }
    }
    for (i = 0; i < WORK_THREADS; ++i) {
        char path[4096];
        log_free(&serial[i].log);
        snprintf(path, sizeof path, "%s/serial-%d.nn", dir, i);
        assert_int_equal(unlink(path), 0);
        snprintf(path, sizeof path, "%s/thread-%d.nn", dir, i);
        assert_int_equal(unlink(path), 0);
    }
    assert_int_equal(rmdir(dir), 0); /* and no temporary file was left behind */
    g_dir[0] = '\0';
}

/* ---- the very first call, from many threads at once ---------------------------- */

typedef struct first_call_job {
    int id;
    pthread_barrier_t *start;
    char listing[4096];
    char failure[512];
} first_call_job;

/* One line per device entry; returns 0 and fills `failure` on an error. Without the names,
 * the list compares across processes even under valgrind, whose CPU emulation makes
 * OpenBLAS name another core in the plugin's description. */
static int list_devices(char *out, size_t cap, int with_names, char *failure, size_t failure_cap)
{
    size_t n = 0, i, used = 0;
    nn_status s = nn_device_count(&n);
    out[0] = '\0';
    if (s != NN_OK) {
        snprintf(failure, failure_cap, "nn_device_count: %s: %s", nn_status_string(s), nn_last_error_message());
        return 0;
    }
    for (i = 0; i < n; ++i) {
        nn_device_info info;
        int k;
        nn_device_info_init(&info);
        s = nn_device_get(i, &info);
        if (s != NN_OK) {
            snprintf(failure, failure_cap, "nn_device_get(%zu): %s: %s", i, nn_status_string(s),
                     nn_last_error_message());
            return 0;
        }
        k = snprintf(out + used, cap - used, "%d %d %d %s | %s\n", (int)info.kind, info.index, info.available,
                     with_names ? info.name : "", info.reason);
        if (k < 0 || (size_t)k >= cap - used) {
            snprintf(failure, failure_cap, "device listing longer than %zu bytes", cap);
            return 0;
        }
        used += (size_t)k;
    }
    return 1;
}

static void *first_call_thread(void *arg)
{
    first_call_job *j = arg;
    static const size_t sizes[] = {2, 5, 3};
    nn_model_desc desc;
    nn_model *m = NULL;
    nn_device_info dev;
    nn_status s;
    char line[64];
    int rc = pthread_barrier_wait(j->start);
    if (rc != 0 && rc != PTHREAD_BARRIER_SERIAL_THREAD) {
        snprintf(j->failure, sizeof j->failure, "pthread_barrier_wait: %d", rc);
        return NULL;
    }
    nn_model_desc_init(&desc); /* not a library call that discovers anything, but first either way */
    desc.n_layer_sizes = 3;
    desc.layer_sizes = sizes;
    desc.seed = (uint32_t)j->id;
    if (j->id % 2 == 0) {
        /* Even threads start with nn_create, odd ones with nn_device_count. */
        s = nn_create(&m, &desc);
        if (s != NN_OK) {
            snprintf(j->failure, sizeof j->failure, "nn_create: %s: %s", nn_status_string(s),
                     nn_last_error_message());
            return NULL;
        }
        if (!list_devices(j->listing, sizeof j->listing, 1, j->failure, sizeof j->failure)) goto done;
    } else {
        if (!list_devices(j->listing, sizeof j->listing, 1, j->failure, sizeof j->failure)) return NULL;
        s = nn_create(&m, &desc);
        if (s != NN_OK) {
            snprintf(j->failure, sizeof j->failure, "nn_create: %s: %s", nn_status_string(s),
                     nn_last_error_message());
            return NULL;
        }
    }
    nn_device_info_init(&dev);
    s = nn_get_device(m, &dev);
    if (s != NN_OK) {
        snprintf(j->failure, sizeof j->failure, "nn_get_device: %s: %s", nn_status_string(s),
                 nn_last_error_message());
        goto done;
    }
    snprintf(line, sizeof line, "model on %d %d\n", (int)dev.kind, dev.index);
    if (strlen(j->listing) + strlen(line) < sizeof j->listing) strcat(j->listing, line);
done:
    nn_destroy(m);
    return NULL;
}

/* The child: no libnn call happens before the barrier releases every thread. */
static int first_call_child(void)
{
    static first_call_job jobs[FIRST_CALL_THREADS];
    pthread_t t[FIRST_CALL_THREADS];
    pthread_barrier_t start;
    int i, ok = 1;
    if (pthread_barrier_init(&start, NULL, FIRST_CALL_THREADS) != 0) return 2;
    for (i = 0; i < FIRST_CALL_THREADS; ++i) {
        jobs[i].id = i;
        jobs[i].start = &start;
        if (pthread_create(&t[i], NULL, first_call_thread, &jobs[i]) != 0) {
            fprintf(stderr, "pthread_create failed\n");
            _exit(2); /* the others wait on the barrier forever */
        }
    }
    for (i = 0; i < FIRST_CALL_THREADS; ++i) pthread_join(t[i], NULL);
    pthread_barrier_destroy(&start);
    for (i = 0; i < FIRST_CALL_THREADS; ++i) {
        if (jobs[i].failure[0]) {
            fprintf(stderr, "first-call thread %d: %s\n", i, jobs[i].failure);
            ok = 0;
        } else if (strcmp(jobs[i].listing, jobs[0].listing) != 0) {
            fprintf(stderr, "first-call thread %d saw\n%s\nthread 0 saw\n%s\n", i, jobs[i].listing,
                    jobs[0].listing);
            ok = 0;
        }
    }
    if (!ok) return 1;
    {
        char plain[4096], failure[512], line[64];
        nn_device_info dev;
        nn_model *m = NULL;
        static const size_t sizes[] = {2, 5, 3};
        nn_model_desc desc;
        nn_model_desc_init(&desc);
        desc.n_layer_sizes = 3;
        desc.layer_sizes = sizes;
        failure[0] = '\0';
        if (!list_devices(plain, sizeof plain - 64, 0, failure, sizeof failure) || nn_create(&m, &desc) != NN_OK) {
            fprintf(stderr, "first-call child, afterwards: %s%s\n", failure, nn_last_error_message());
            return 1;
        }
        nn_device_info_init(&dev);
        (void)nn_get_device(m, &dev);
        nn_destroy(m);
        snprintf(line, sizeof line, "model on %d %d\n", (int)dev.kind, dev.index);
        strcat(plain, line);
        fputs(plain, stdout);
    }
    return fflush(stdout) == 0 ? 0 : 1;
}

static void test_first_call_from_many_threads_in_a_fresh_process(void **state)
{
    char mine[4096], failure[512];
    int child;
    (void)state;
    assert_non_null(g_self);
    for (child = 0; child < FIRST_CALL_CHILDREN; ++child) {
        int fds[2], status = 0;
        pid_t pid;
        char out[8192];
        size_t used = 0;
        assert_int_equal(pipe(fds), 0);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            char *const args[] = {(char *)g_self, (char *)"--first-call-child", NULL};
            close(fds[0]);
            if (dup2(fds[1], STDOUT_FILENO) < 0) _exit(126);
            close(fds[1]);
            /* argv[0] first: under valgrind, /proc/self/exe is valgrind's own tool. */
            if (strchr(g_self, '/') != NULL) execv(g_self, args);
            execv("/proc/self/exe", args);
            _exit(127);
        }
        close(fds[1]);
        for (;;) {
            ssize_t k = read(fds[0], out + used, sizeof out - 1 - used);
            if (k < 0 && errno == EINTR) continue;
            if (k <= 0) break;
            used += (size_t)k;
            if (used == sizeof out - 1) break;
        }
        out[used] = '\0';
        close(fds[0]);
        while (waitpid(pid, &status, 0) < 0) assert_int_equal(errno, EINTR);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
            print_error("child %d: %s %d (its stderr is above)\n", child,
                        WIFEXITED(status) ? "exit status" : "killed by signal",
                        WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);

        /* The child's list (plus where its models landed) is the one this process sees. */
        failure[0] = '\0';
        if (!list_devices(mine, sizeof mine - 64, 0, failure, sizeof failure)) print_error("%s\n", failure);
        assert_string_equal(failure, "");
        {
            static const size_t sizes[] = {2, 5, 3};
            nn_model_desc desc;
            nn_model *m = NULL;
            nn_device_info dev;
            char line[64];
            nn_model_desc_init(&desc);
            desc.n_layer_sizes = 3;
            desc.layer_sizes = sizes;
            assert_int_equal(nn_create(&m, &desc), NN_OK);
            nn_device_info_init(&dev);
            assert_int_equal(nn_get_device(m, &dev), NN_OK);
            nn_destroy(m);
            snprintf(line, sizeof line, "model on %d %d\n", (int)dev.kind, dev.index);
            strcat(mine, line);
        }
        assert_string_equal(out, mine);
    }
}

/* ---- per-thread error text ------------------------------------------------------ */

#define ERR_ROWS 12

typedef struct err_job {
    int id;
    pthread_barrier_t *barrier;
    nn_status want_status, want_status2;
    char want[512], want2[512]; /* the texts the same calls leave on the main thread */
    nn_status got_status, got_status2;
    char got_after_barrier[512], got_while_others_fail[512], got_second[512], got_after_success[512];
    char failure[256];
} err_job;

static double err_x[ERR_ROWS * 2];

/* Even jobs: predict with the wrong column count. Odd jobs: fit with a label out of
 * range. The numbers depend on the job and the attempt, so every text is distinct. */
static nn_status failing_call(nn_model *m, int id, int attempt)
{
    if (id % 2 == 0) {
        double out[3];
        return nn_predict(m, err_x, NN_DTYPE_FLOAT64, 1, (size_t)(10 + id + 100 * attempt), NN_OUTPUT_SCORES, out,
                          NN_DTYPE_FLOAT64, 3);
    } else {
        int32_t labels[ERR_ROWS];
        int r;
        for (r = 0; r < ERR_ROWS; ++r) labels[r] = r % 3;
        labels[(id + attempt) % ERR_ROWS] = 3 + id + 100 * attempt;
        return nn_fit(m, err_x, NN_DTYPE_FLOAT64, ERR_ROWS, 2, labels, NN_TARGET_CLASS_INDEX, 1, NULL, NULL);
    }
}

static nn_model *err_model(void)
{
    static const size_t sizes[] = {2, 4, 3};
    nn_model_desc desc;
    nn_model *m = NULL;
    nn_model_desc_init(&desc);
    desc.n_layer_sizes = 3;
    desc.layer_sizes = sizes;
    desc.dtype = NN_DTYPE_FLOAT64;
    return nn_create(&m, &desc) == NN_OK ? m : NULL;
}

static void copy_message(char *dst, size_t cap)
{
    const char *msg = nn_last_error_message();
    snprintf(dst, cap, "%s", msg ? msg : "(null)");
}

static int barrier(err_job *j)
{
    int rc = pthread_barrier_wait(j->barrier);
    if (rc != 0 && rc != PTHREAD_BARRIER_SERIAL_THREAD) {
        snprintf(j->failure, sizeof j->failure, "pthread_barrier_wait: %d", rc);
        return 0;
    }
    return 1;
}

static void *err_thread(void *arg)
{
    err_job *j = arg;
    nn_model *m = err_model();
    double out[3];
    int i;
    /* Every thread passes every barrier, even after a failure, or the others hang. */
    if (!m) snprintf(j->failure, sizeof j->failure, "nn_create: %s", nn_last_error_message());
    barrier(j);
    /* 1: everybody fails at once. */
    if (m) j->got_status = failing_call(m, j->id, 0);
    barrier(j);
    /* 2: everybody reads its own text. */
    copy_message(j->got_after_barrier, sizeof j->got_after_barrier);
    barrier(j);
    /* 3: odd threads fail again while even threads keep re-reading theirs. */
    if (j->id % 2 == 1) {
        if (m) j->got_status2 = failing_call(m, j->id, 1);
    } else {
        for (i = 0; i < 200; ++i) {
            copy_message(j->got_while_others_fail, sizeof j->got_while_others_fail);
            if (strcmp(j->got_while_others_fail, j->want) != 0) break;
        }
    }
    barrier(j);
    copy_message(j->got_second, sizeof j->got_second);
    /* 4: a successful call does not touch the text. */
    if (m && nn_predict(m, err_x, NN_DTYPE_FLOAT64, 1, 2, NN_OUTPUT_SCORES, out, NN_DTYPE_FLOAT64, 3) != NN_OK)
        snprintf(j->failure, sizeof j->failure, "a valid nn_predict failed: %s", nn_last_error_message());
    barrier(j);
    copy_message(j->got_after_success, sizeof j->got_after_success);
    nn_destroy(m);
    return NULL;
}

static void test_error_text_is_per_thread(void **state)
{
    static err_job jobs[ERR_THREADS];
    pthread_t t[ERR_THREADS];
    pthread_barrier_t b;
    char main_text[512];
    int i;
    (void)state;
    for (i = 0; i < ERR_ROWS * 2; ++i) err_x[i] = 0.1 * (double)i - 1.0;

    /* The texts each failure leaves when made alone on this thread. */
    for (i = 0; i < ERR_THREADS; ++i) {
        nn_model *m = err_model();
        assert_non_null(m);
        memset(&jobs[i], 0, sizeof jobs[i]);
        jobs[i].id = i;
        jobs[i].barrier = &b;
        jobs[i].want_status = failing_call(m, i, 0);
        copy_message(jobs[i].want, sizeof jobs[i].want);
        jobs[i].want_status2 = failing_call(m, i, 1);
        copy_message(jobs[i].want2, sizeof jobs[i].want2);
        nn_destroy(m);
        assert_int_equal(jobs[i].want_status, i % 2 ? NN_ERR_LABEL_OUT_OF_RANGE : NN_ERR_SHAPE_MISMATCH);
        assert_true(jobs[i].want[0] != '\0');
        assert_string_not_equal(jobs[i].want, jobs[i].want2);
        if (i > 0) assert_string_not_equal(jobs[i].want, jobs[i - 1].want);
    }
    /* This thread's own last failure, which the threads must not disturb. */
    assert_int_equal(nn_rng_seed(NULL, 7), NN_ERR_NULL_POINTER);
    copy_message(main_text, sizeof main_text);

    assert_int_equal(pthread_barrier_init(&b, NULL, ERR_THREADS), 0);
    for (i = 0; i < ERR_THREADS; ++i) assert_int_equal(pthread_create(&t[i], NULL, err_thread, &jobs[i]), 0);
    for (i = 0; i < ERR_THREADS; ++i) assert_int_equal(pthread_join(t[i], NULL), 0);
    pthread_barrier_destroy(&b);

    for (i = 0; i < ERR_THREADS; ++i) {
        err_job *j = &jobs[i];
        assert_string_equal(j->failure, "");
        assert_int_equal(j->got_status, j->want_status);
        assert_string_equal(j->got_after_barrier, j->want);
        if (i % 2 == 1) {
            assert_int_equal(j->got_status2, j->want_status2);
            assert_string_equal(j->got_second, j->want2);
            assert_string_equal(j->got_after_success, j->want2);
        } else {
            assert_string_equal(j->got_while_others_fail, j->want);
            assert_string_equal(j->got_second, j->want);
            assert_string_equal(j->got_after_success, j->want);
        }
    }
    assert_string_equal(nn_last_error_message(), main_text);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        /* First, while this process itself has made no library call either. */
        cmocka_unit_test(test_first_call_from_many_threads_in_a_fresh_process),
        cmocka_unit_test(test_error_text_is_per_thread),
        cmocka_unit_test_teardown(test_mixed_workload_on_threads_matches_serial, remove_temp_dir),
    };
    g_self = argv[0];
    if (argc > 1 && strcmp(argv[1], "--first-call-child") == 0) return first_call_child();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
