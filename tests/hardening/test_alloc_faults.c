/*
 * Allocation-failure injection (issue #9, item 4): every heap allocation that a public
 * call makes is made to fail, one at a time, and the call must cope.
 *
 * malloc, calloc, realloc, free and the aligned allocators are interposed here (as in
 * tests/capi/test_alloc.c; C++ operator new goes through malloc, glibc's own internal
 * allocations through these symbols too). For each operation below, runs N = 1, 2, ...
 * fail allocation N of the calling thread (NULL, errno ENOMEM) until a run completes
 * without reaching its Nth allocation, in two passes:
 *   - single: only allocation N fails, every other one succeeds;
 *   - exhaustion: allocation N and every later one of the call fail (memory stays short).
 * For every injected failure the test asserts:
 *   - no crash (a crash prints the operation and N from a signal handler);
 *   - the status is NN_ERR_OUT_OF_MEMORY, and nn.h documents it for the function (the
 *     documented statuses come from nn_api_statuses.h, generated from nn.h by
 *     gen_misuse.py);
 *   - nn_last_error_message() is a fresh, non-empty message that says memory ran out;
 *   - the model is unchanged: its saved bytes with training state (parameters, the
 *     model's stream, histories, optimizer state, metadata), nn_get_params,
 *     nn_get_loss_history, nn_get_epoch_history and nn_get_device; output buffers are
 *     untouched; constructors leave *out NULL; a stream passed in is not advanced;
 *   - for nn_fit, a later successful fit of that model gives, bit for bit, the model that
 *     the same fit gives without any failure before it;
 *   - for nn_save, the previous file is intact (or, for a new path, absent) and no
 *     temporary file is left in the directory;
 *   - no leak: the count of outstanding allocations (allocations minus frees, every
 *     thread) is back at its value from before the handles were made, once they are
 *     destroyed.
 * It prints, per operation and in total, the injection points exercised (allocation
 * indices N) and the distinct code sites the single failures hit (the innermost frame
 * outside this program, libc, libstdc++ and the loader that made the failed allocation).
 *
 * A census then runs the rest of the model API the same way: a function that allocates
 * must list NN_ERR_OUT_OF_MEMORY among its statuses in nn.h. Last, error paths: calls that
 * fail for a documented reason while their own error reporting runs out of memory, one
 * child process per injection so that a crash is reported with its N.
 *
 * Third-party allocations that cannot fail gracefully are kept out narrowly: everything
 * the library does once per process (plugin discovery and dlopen, OpenBLAS's start-up and
 * thread pool, the first message of a thread, libgcc's unwinder for backtrace()) is warmed
 * up before counting starts, and only the calling thread's allocations are failed
 * (OpenBLAS's worker threads are counted for leaks but never failed: their allocation
 * order is not deterministic).
 *
 * Plain builds only: the sanitizers own malloc. NN_FAULT_VERBOSE=1 prints every injection;
 * NN_FAULT_TRAP="operation substring:N[:exhaust]" raises SIGTRAP at that injection, for a
 * debugger's backtrace.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <execinfo.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <nn/nn.h>

#ifdef NN_HAVE_API_STATUSES
#include "nn_api_statuses.h" /* generated from nn.h by gen_misuse.py: each function's documented statuses */
#endif

/* ======================================================================================
 * The interposed allocator
 * ====================================================================================== */

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void __libc_free(void *);
extern void *__libc_memalign(size_t, size_t);
extern void *__libc_valloc(size_t);
extern void *__libc_pvalloc(size_t);

#define EXPORT __attribute__((visibility("default")))

static long g_outstanding;      /* allocations minus frees, all threads (atomic) */
static pthread_t g_main_thread; /* the only thread whose allocations are counted and failed */
static int g_main_set;
static long g_fail_at;          /* 0: disarmed; else fail the allocation with this index */
static long g_index;            /* allocations of the main thread since arming */
static int g_injected;          /* the g_fail_at'th allocation was reached and failed */
static int g_exhaust;           /* exhaustion mode: every allocation from the g_fail_at'th on fails */
static int g_in_hook;           /* the hook itself is running (backtrace, dladdr) */
static int g_trap;              /* NN_FAULT_TRAP matched the current operation: raise SIGTRAP */
static long g_trap_n;           /* at this injection (for a debugger's backtrace) */

/* Where the failed allocation came from. */
#define MAX_FRAMES 48
static const char *g_site_obj;
static uintptr_t g_site_off;

static int on_main_thread(void) { return g_main_set && pthread_equal(pthread_self(), g_main_thread); }

static int system_object(const char *path)
{
    static const char *const skip[] = {"/libc.so", "/libstdc++.so", "/ld-linux", "/libgcc_s.so", "/libm.so"};
    size_t i;
    for (i = 0; i < sizeof skip / sizeof skip[0]; ++i)
        if (strstr(path, skip[i])) return 1;
    return 0;
}

/* The innermost frame that is neither this program nor libc/libstdc++/the loader. */
static void record_site(void)
{
    void *frames[MAX_FRAMES];
    int n, i;
    Dl_info self, info;
    g_site_obj = "?";
    g_site_off = 0;
    n = backtrace(frames, MAX_FRAMES);
    if (!dladdr((void *)&g_outstanding, &self)) self.dli_fbase = NULL;
    for (i = 1; i < n; ++i) {
        if (!dladdr(frames[i], &info) || !info.dli_fname) continue;
        if (info.dli_fbase == self.dli_fbase) continue;
        if (system_object(info.dli_fname)) continue;
        g_site_obj = info.dli_fname;
        g_site_off = (uintptr_t)frames[i] - (uintptr_t)info.dli_fbase - 1; /* inside the call */
        return;
    }
}

/* Called for every allocation request: non-zero means fail this one. */
static int should_fail(void)
{
    if (g_fail_at == 0 || g_in_hook || !on_main_thread()) return 0;
    ++g_index;
    if (g_exhaust ? g_index < g_fail_at : g_index != g_fail_at) return 0;
    if (!g_injected) {
        g_injected = 1;
        g_in_hook = 1;
        record_site();
        g_in_hook = 0;
        if (g_trap && g_trap_n == g_fail_at) raise(SIGTRAP);
    }
    errno = ENOMEM;
    return 1;
}

static void *counted(void *p)
{
    if (p) __atomic_add_fetch(&g_outstanding, 1, __ATOMIC_RELAXED);
    return p;
}

EXPORT void *malloc(size_t n) { return should_fail() ? NULL : counted(__libc_malloc(n)); }
EXPORT void *calloc(size_t a, size_t b) { return should_fail() ? NULL : counted(__libc_calloc(a, b)); }
EXPORT void *memalign(size_t a, size_t n) { return should_fail() ? NULL : counted(__libc_memalign(a, n)); }
EXPORT void *aligned_alloc(size_t a, size_t n) { return should_fail() ? NULL : counted(__libc_memalign(a, n)); }
EXPORT void *valloc(size_t n) { return should_fail() ? NULL : counted(__libc_valloc(n)); }
EXPORT void *pvalloc(size_t n) { return should_fail() ? NULL : counted(__libc_pvalloc(n)); }
EXPORT int posix_memalign(void **out, size_t a, size_t n)
{
    void *p;
    if (should_fail()) return ENOMEM;
    p = counted(__libc_memalign(a, n));
    if (!p) return ENOMEM;
    *out = p;
    return 0;
}
EXPORT void free(void *p)
{
    if (p) __atomic_sub_fetch(&g_outstanding, 1, __ATOMIC_RELAXED);
    __libc_free(p);
}
EXPORT void *realloc(void *p, size_t n)
{
    void *r;
    if (p && n == 0) { /* glibc: frees p, returns NULL */
        free(p);
        return NULL;
    }
    if (should_fail()) return NULL; /* p stays valid, as a real failure leaves it */
    r = __libc_realloc(p, n);
    if (!p) counted(r);
    return r;
}
EXPORT void *reallocarray(void *p, size_t a, size_t b)
{
    size_t n;
    if (__builtin_mul_overflow(a, b, &n)) {
        errno = ENOMEM;
        return NULL;
    }
    return realloc(p, n);
}

static long outstanding(void) { return __atomic_load_n(&g_outstanding, __ATOMIC_RELAXED); }

static void arm(long n)
{
    g_index = 0;
    g_injected = 0;
    g_site_obj = NULL;
    g_site_off = 0;
    __atomic_store_n(&g_fail_at, n, __ATOMIC_SEQ_CST);
}

static void disarm(void) { __atomic_store_n(&g_fail_at, 0, __ATOMIC_SEQ_CST); }

/* ======================================================================================
 * Bookkeeping: failures, sites, the crash report
 * ====================================================================================== */

static int g_verbose;
static long g_failures;
static long g_op_failures;
static const char *g_op = "(start-up)";
static const char *g_mode = ""; /* "" or "exhaustion from " */
static long g_op_n;

/* Each distinct failed check is printed once per operation and mode (with the first N
 * that failed it), then counted: an operation with a systematic flaw prints one line. */
typedef struct seen_failure {
    const char *fmt, *mode;
    long count;
} seen_failure;
#define MAX_SEEN 64
static seen_failure g_seen[MAX_SEEN];
static size_t g_n_seen;

static void report_failure(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void report_failure(const char *fmt, ...)
{
    va_list ap;
    size_t i;
    ++g_failures;
    ++g_op_failures;
    for (i = 0; i < g_n_seen; ++i)
        if (g_seen[i].fmt == fmt && g_seen[i].mode == g_mode) {
            ++g_seen[i].count;
            return;
        }
    if (g_n_seen < MAX_SEEN) {
        g_seen[g_n_seen].fmt = fmt;
        g_seen[g_n_seen].mode = g_mode;
        g_seen[g_n_seen].count = 1;
        ++g_n_seen;
    }
    printf("FAIL  %s, %sallocation %ld failed (site %s+0x%lx): ", g_op, g_mode, g_op_n,
           g_site_obj ? strrchr(g_site_obj, '/') ? strrchr(g_site_obj, '/') + 1 : g_site_obj : "-",
           (unsigned long)g_site_off);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
}

/* At the end of an operation: how often each printed check failed. */
static void report_repeats(void)
{
    size_t i;
    for (i = 0; i < g_n_seen; ++i)
        if (g_seen[i].count > 1)
            printf("      (%sfailed %ld times in all: \"%.60s...\")\n", g_seen[i].mode, g_seen[i].count, g_seen[i].fmt);
    g_n_seen = 0;
}

#define CHECK(cond, ...)                                 \
    do {                                                 \
        if (!(cond)) report_failure(__VA_ARGS__);        \
    } while (0)

/* Test scaffolding that must work (outside the injection window). */
#define REQUIRE_OK(call)                                                                          \
    do {                                                                                          \
        nn_status req_s_ = (call);                                                                \
        if (req_s_ != NN_OK) {                                                                    \
            printf("FATAL %s (N=%ld): %s:%d: %s returned %d: %s\n", g_op, g_op_n, __FILE__,       \
                   __LINE__, #call, (int)req_s_, nn_last_error_message());                        \
            exit(2);                                                                              \
        }                                                                                         \
    } while (0)
#define REQUIRE(cond)                                                                             \
    do {                                                                                          \
        if (!(cond)) {                                                                            \
            printf("FATAL %s (N=%ld): %s:%d: %s\n", g_op, g_op_n, __FILE__, __LINE__, #cond);     \
            exit(2);                                                                              \
        }                                                                                         \
    } while (0)

typedef struct site {
    const char *obj;
    uintptr_t off;
} site;

#define MAX_SITES 4096
static site g_all_sites[MAX_SITES];
static size_t g_n_all_sites;
static site g_op_sites[MAX_SITES];
static size_t g_n_op_sites;

static void add_site(site *set, size_t *n, const char *obj, uintptr_t off)
{
    size_t i;
    for (i = 0; i < *n; ++i)
        if (set[i].obj == obj && set[i].off == off) return;
    if (*n < MAX_SITES) {
        set[*n].obj = obj;
        set[*n].off = off;
        ++*n;
    }
}

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

static void on_crash(int sig)
{
    char buf[256];
    int n = snprintf(buf, sizeof buf, "\nCRASH (signal %d) in %s with allocation %ld failed\n", sig, g_op, g_op_n);
    if (n > 0) (void)!write(2, buf, (size_t)n);
    signal(sig, SIG_DFL);
    raise(sig);
}

/* ======================================================================================
 * Helpers (used outside the injection window only)
 * ====================================================================================== */

static char g_marker[512];

/* Leaves a known message on this thread, to tell a fresh message from a stale one. */
static void mark_error(void)
{
    (void)nn_rng_seed(NULL, 1);
    snprintf(g_marker, sizeof g_marker, "%s", nn_last_error_message());
}

static void check_message(nn_status s)
{
    const char *msg = nn_last_error_message();
    CHECK(msg && msg[0] != '\0', "empty error message");
    CHECK(msg && strcmp(msg, g_marker) != 0, "stale error message \"%s\"", msg ? msg : "(null)");
    if (s == NN_ERR_OUT_OF_MEMORY && msg && msg[0] && strcmp(msg, g_marker) != 0)
        CHECK(strstr(msg, "memory") != NULL, "the message does not say memory ran out: \"%s\"", msg ? msg : "(null)");
}

typedef struct bytes {
    unsigned char *p;
    size_t n;
} bytes;

static char g_why[600];

/* NULL once `*b` holds the model's saved bytes; else why that failed (a model left
 * broken by a failed call shows here rather than stopping the test). */
static const char *try_save_bytes(nn_model *m, const nn_save_options *opts, bytes *b)
{
    nn_status st;
    b->p = NULL;
    b->n = 0;
    if ((st = nn_save_to_buffer(m, NULL, 0, &b->n, opts)) == NN_OK) {
        b->p = malloc(b->n);
        REQUIRE(b->p);
        if ((st = nn_save_to_buffer(m, b->p, b->n, &b->n, opts)) == NN_OK) return NULL;
    }
    snprintf(g_why, sizeof g_why, "the model cannot be saved any more: %d %s", (int)st, nn_last_error_message());
    free(b->p);
    b->p = NULL;
    return g_why;
}

static bytes save_bytes(nn_model *m, const nn_save_options *opts)
{
    bytes b;
    const char *why = try_save_bytes(m, opts, &b);
    if (why) {
        printf("FATAL %s (N=%ld): %s\n", g_op, g_op_n, why);
        exit(2);
    }
    return b;
}

static int bytes_equal(bytes a, bytes b) { return a.n == b.n && memcmp(a.p, b.p, a.n) == 0; }

static nn_model *load_bytes(bytes b)
{
    nn_model *m = NULL;
    REQUIRE_OK(nn_load_from_buffer(&m, b.p, b.n));
    return m;
}

static bytes read_whole_file(const char *path)
{
    bytes b = {NULL, 0};
    FILE *f = fopen(path, "rb");
    long len;
    if (!f) return b;
    REQUIRE(fseek(f, 0, SEEK_END) == 0);
    len = ftell(f);
    REQUIRE(len >= 0 && fseek(f, 0, SEEK_SET) == 0);
    b.n = (size_t)len;
    b.p = malloc(b.n + 1);
    REQUIRE(b.p);
    REQUIRE(fread(b.p, 1, b.n, f) == b.n);
    fclose(f);
    return b;
}

static void write_whole_file(const char *path, bytes b)
{
    FILE *f = fopen(path, "wb");
    REQUIRE(f);
    REQUIRE(fwrite(b.p, 1, b.n, f) == b.n);
    REQUIRE(fclose(f) == 0);
}

/* Entries of `dir` other than . and ..; the first name goes to first (if given). */
static int count_entries(const char *dir, char *first, size_t cap)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    REQUIRE(d);
    if (first && cap) first[0] = '\0';
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        if (n == 0 && first) snprintf(first, cap, "%s", e->d_name);
        ++n;
    }
    closedir(d);
    return n;
}

static void empty_dir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[1024];
    REQUIRE(d);
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        unlink(path);
    }
    closedir(d);
}

/* Everything observable about a model. */
typedef struct snapshot {
    bytes saved; /* with training state: params, stream, histories, optimizer, metadata */
    double *params;
    size_t n_params;
    nn_loss_record *records;
    size_t n_records;
    nn_epoch_record *epochs;
    size_t n_epochs;
    nn_device_kind kind;
    int index;
} snapshot;

static void snap_free(snapshot *s);

#define SNAP_TRY(call)                                                                               \
    do {                                                                                             \
        nn_status snap_s_ = (call);                                                                  \
        if (snap_s_ != NN_OK) {                                                                      \
            snprintf(g_why, sizeof g_why, "%s returned %d: %s", #call, (int)snap_s_, nn_last_error_message()); \
            snap_free(s);                                                                            \
            return g_why;                                                                            \
        }                                                                                            \
    } while (0)

/* NULL, or why the model could not be read. */
static const char *snap_try(nn_model *m, snapshot *s)
{
    nn_device_info info;
    const char *why;
    memset(s, 0, sizeof *s);
    if ((why = try_save_bytes(m, NULL, &s->saved)) != NULL) return why;
    SNAP_TRY(nn_param_count(m, &s->n_params));
    s->params = malloc(s->n_params * sizeof(double) + 1);
    REQUIRE(s->params);
    SNAP_TRY(nn_get_params(m, s->params, s->n_params));
    SNAP_TRY(nn_get_loss_history(m, NULL, 0, &s->n_records));
    s->records = malloc((s->n_records + 1) * sizeof(nn_loss_record));
    REQUIRE(s->records);
    SNAP_TRY(nn_get_loss_history(m, s->records, s->n_records, &s->n_records));
    SNAP_TRY(nn_get_epoch_history(m, NULL, 0, &s->n_epochs));
    s->epochs = malloc((s->n_epochs + 1) * sizeof(nn_epoch_record));
    REQUIRE(s->epochs);
    SNAP_TRY(nn_get_epoch_history(m, s->epochs, s->n_epochs, &s->n_epochs));
    nn_device_info_init(&info);
    SNAP_TRY(nn_get_device(m, &info));
    s->kind = info.kind;
    s->index = info.index;
    return NULL;
}

static void snap_take(nn_model *m, snapshot *s)
{
    const char *why = snap_try(m, s);
    if (why) {
        printf("FATAL %s (N=%ld): %s\n", g_op, g_op_n, why);
        exit(2);
    }
}

static void snap_free(snapshot *s)
{
    free(s->saved.p);
    free(s->params);
    free(s->records);
    free(s->epochs);
    memset(s, 0, sizeof *s);
}

/* NULL when the model is as the snapshot says, else what differs. */
static const char *snap_diff(nn_model *m, const snapshot *s)
{
    snapshot now;
    const char *why = snap_try(m, &now);
    if (why) return why;
    if (!bytes_equal(now.saved, s->saved))
        why = "its saved bytes (parameters, stream, histories, optimizer state or metadata) changed";
    else if (now.n_params != s->n_params || memcmp(now.params, s->params, s->n_params * sizeof(double)) != 0)
        why = "nn_get_params changed";
    else if (now.n_records != s->n_records ||
             memcmp(now.records, s->records, s->n_records * sizeof(nn_loss_record)) != 0)
        why = "nn_get_loss_history changed";
    else if (now.n_epochs != s->n_epochs || memcmp(now.epochs, s->epochs, s->n_epochs * sizeof(nn_epoch_record)) != 0)
        why = "nn_get_epoch_history changed";
    else if (now.kind != s->kind || now.index != s->index)
        why = "the device changed";
    snap_free(&now);
    return why;
}

/* Two streams of one seed give the same next draws (consumes both). */
static int rng_in_step(nn_rng *a, nn_rng *b)
{
    double x[4], y[4];
    REQUIRE_OK(nn_rng_randn(a, x, 4));
    REQUIRE_OK(nn_rng_randn(b, y, 4));
    return memcmp(x, y, sizeof x) == 0;
}

/* ======================================================================================
 * Data and model images (made once, before any injection)
 * ====================================================================================== */

#define PPC 30
#define CLASSES 3
#define ROWS (PPC * CLASSES)
static double g_x[ROWS * 2];
static int32_t g_labels[ROWS];
static double g_onehot[ROWS * CLASSES];
static double g_val_x[12 * 2];
static int32_t g_val_labels[12];
static const double g_class_weights[CLASSES] = {1.0, 2.0, 0.5};

static bytes g_img_small;  /* 2-6-3 sigmoid/softmax float32, untrained */
static bytes g_img_adam;   /* 2-8-3 tanh/softmax float32, one Adam epoch with validation, metadata */
static bytes g_img_mse;    /* 2-5-3 relu/MSE float64, untrained */
static bytes g_img_wide;   /* 2-64-64-3 relu float32: products big enough for OpenBLAS */

static char g_dir[64];

static nn_model *make_model(const size_t *sizes, size_t n, nn_activation act, nn_loss loss, nn_dtype dtype,
                            uint32_t seed)
{
    nn_model_desc d;
    nn_model *m = NULL;
    nn_model_desc_init(&d);
    d.layer_sizes = sizes;
    d.n_layer_sizes = n;
    d.hidden_activation = act;
    d.loss = loss;
    d.dtype = dtype;
    d.init = NN_INIT_XAVIER;
    d.seed = seed;
    REQUIRE_OK(nn_create(&m, &d));
    return m;
}

static nn_fit_options adam_options(void)
{
    nn_fit_options o;
    nn_fit_options_init(&o);
    o.epochs = 3;
    o.batch_size = 10;
    o.learning_rate = 0.01;
    o.report_interval = 2;
    o.optimizer = NN_OPTIMIZER_ADAM;
    o.validation_fraction = 0.2; /* 18 held-out rows: more than a batch, so validation resizes the workspace */
    o.class_weights = g_class_weights;
    o.n_class_weights = CLASSES;
    o.early_stopping = 1;
    o.patience = 5;
    o.restore_best = 1;
    return o;
}

static void make_images(void)
{
    static const size_t small[] = {2, 6, 3}, adam[] = {2, 8, 3}, mse[] = {2, 5, 3}, wide[] = {2, 64, 64, 3};
    nn_model *m;
    nn_fit_options o;
    size_t r;
    REQUIRE_OK(nn_dataset_spiral(g_x, ROWS * 2, g_labels, ROWS, PPC, CLASSES, NULL, 1984));
    for (r = 0; r < ROWS; ++r) g_onehot[r * CLASSES + (size_t)g_labels[r]] = 1.0;
    REQUIRE_OK(nn_dataset_spiral(g_val_x, 24, g_val_labels, 12, 4, CLASSES, NULL, 7));

    m = make_model(small, 3, NN_ACTIVATION_SIGMOID, NN_LOSS_SOFTMAX_CROSS_ENTROPY, NN_DTYPE_FLOAT32, 11);
    g_img_small = save_bytes(m, NULL);
    nn_destroy(m);

    m = make_model(adam, 3, NN_ACTIVATION_TANH, NN_LOSS_SOFTMAX_CROSS_ENTROPY, NN_DTYPE_FLOAT32, 12);
    o = adam_options();
    o.epochs = 1;
    REQUIRE_OK(nn_fit(m, g_x, NN_DTYPE_FLOAT64, ROWS, 2, g_labels, NN_TARGET_CLASS_INDEX, 1, &o, NULL));
    REQUIRE_OK(nn_set_metadata(m, "author", "the allocation-failure injection test of libnn"));
    REQUIRE_OK(nn_set_metadata(m, "k", "v"));
    g_img_adam = save_bytes(m, NULL);
    nn_destroy(m);

    m = make_model(mse, 3, NN_ACTIVATION_RELU, NN_LOSS_MEAN_SQUARED_ERROR, NN_DTYPE_FLOAT64, 13);
    g_img_mse = save_bytes(m, NULL);
    nn_destroy(m);

    m = make_model(wide, 4, NN_ACTIVATION_RELU, NN_LOSS_SOFTMAX_CROSS_ENTROPY, NN_DTYPE_FLOAT32, 14);
    g_img_wide = save_bytes(m, NULL);
    nn_destroy(m);
}

/* A model from an image, on a device (outside the window). */
static nn_model *model_on(bytes img, nn_device_kind kind)
{
    nn_model *m = load_bytes(img);
    REQUIRE_OK(nn_set_device(m, kind, 0));
    return m;
}

/* Everything done once per process, so that it is not counted as an operation's work:
 * plugin discovery (dlopen of the plugins and OpenBLAS, and OpenBLAS's thread pool), a
 * BLAS-sized fit and prediction on the CPU plugin, this thread's message, and the
 * unwinder that backtrace() loads on first use. */
static void warm_up(void)
{
    void *frames[4];
    size_t n = 0;
    nn_model *m;
    nn_fit_options o;
    int32_t classes[ROWS];
    (void)backtrace(frames, 4);
    REQUIRE_OK(nn_device_count(&n));
    mark_error();
    m = model_on(g_img_wide, NN_DEVICE_CPU);
    nn_fit_options_init(&o);
    o.epochs = 2;
    o.batch_size = 64;
    REQUIRE_OK(nn_fit(m, g_x, NN_DTYPE_FLOAT64, ROWS, 2, g_labels, NN_TARGET_CLASS_INDEX, 1, &o, NULL));
    REQUIRE_OK(nn_predict_classes(m, g_x, NN_DTYPE_FLOAT64, ROWS, 2, classes, ROWS));
    nn_destroy(m);
}

/* ======================================================================================
 * The driver
 * ====================================================================================== */

typedef struct ctx {
    nn_model *m;       /* the model the operation works on */
    nn_model *out;     /* what a constructor or loader made */
    nn_rng *rng, *twin;
    snapshot before;
    void *buf;         /* an output buffer, pre-filled with 0xA5 */
    size_t buf_bytes;
    const void *arg;   /* the operation's parameters */
    nn_fit_report report;
} ctx;

typedef struct op {
    const char *name;
    void (*setup)(ctx *, const struct op *);
    nn_status (*run)(ctx *, const struct op *);
    void (*failed)(ctx *, const struct op *, nn_status); /* after an injected failure */
    void (*ok)(ctx *, const struct op *);                /* after the run that completed */
    const void *arg;
    bytes *img;                 /* model image the operation starts from, if any */
    nn_device_kind device;      /* device it runs on */
    bytes expected;             /* filled by prepare: the result without failures */
    nn_fit_report expected_report;
    void (*prepare)(struct op *);
} op;

typedef struct op_result {
    const char *name;
    long allocations; /* of one complete run */
    long injected;          /* single failures */
    long injected_exhaust;  /* exhaustion runs */
    size_t sites;
    long failures;
} op_result;

#define MAX_OPS 64
static op_result g_results[MAX_OPS];
static size_t g_n_results;

static void fill_buf(ctx *c, size_t n)
{
    c->buf = malloc(n);
    REQUIRE(c->buf);
    memset(c->buf, 0xA5, n);
    c->buf_bytes = n;
}

static int buf_untouched(const ctx *c)
{
    const unsigned char *p = c->buf;
    size_t i;
    for (i = 0; i < c->buf_bytes; ++i)
        if (p[i] != 0xA5) return 0;
    return 1;
}

static void ctx_free(ctx *c)
{
    nn_destroy(c->m);
    nn_destroy(c->out);
    nn_rng_destroy(c->rng);
    nn_rng_destroy(c->twin);
    snap_free(&c->before);
    free(c->buf);
    memset(c, 0, sizeof *c);
}

#define MAX_N 20000L

/* The function an operation calls: its name up to the first space. */
static const char *function_of(const char *op_name, char *buf, size_t cap)
{
    size_t n = strcspn(op_name, " ");
    if (n >= cap) n = cap - 1;
    memcpy(buf, op_name, n);
    buf[n] = '\0';
    return buf;
}

/* Whether nn.h documents `status` for the function of `op_name` (1 without the table). */
static int op_documents(const char *op_name, nn_status status)
{
#ifdef NN_HAVE_API_STATUSES
    char fn[64];
    return nn_api_documents(function_of(op_name, fn, sizeof fn), (int)status);
#else
    (void)op_name;
    (void)status;
    return 1;
#endif
}

/* One pass over an operation: N = 1, 2, ... until a run completes without reaching its
 * Nth allocation. Single mode fails only the Nth allocation; exhaustion mode fails it
 * and every later one of the call (memory that stays exhausted). */
static void drive_pass(op *o, int exhaust, long *out_allocations, long *out_injected)
{
    long n;
    ctx c;
    const char *trap = getenv("NN_FAULT_TRAP"); /* "operation substring:N[:exhaust]" */
    g_exhaust = exhaust;
    g_mode = exhaust ? "exhaustion from " : "";
    g_trap = 0;
    if (trap && trap[0]) {
        const char *colon = strrchr(trap, ':');
        char name[128];
        int want_exhaust = 0;
        snprintf(name, sizeof name, "%s", trap);
        if (colon && strcmp(colon, ":exhaust") == 0) {
            want_exhaust = 1;
            name[colon - trap] = '\0';
        }
        colon = strrchr(name, ':');
        if (colon) {
            g_trap_n = atol(colon + 1);
            name[colon - name] = '\0';
            g_trap = strstr(o->name, name) != NULL && want_exhaust == exhaust;
        }
    }
    *out_allocations = -1;
    *out_injected = 0;
    for (n = 1; n <= MAX_N; ++n) {
        long base;
        nn_status s;
        g_op_n = n;
        memset(&c, 0, sizeof c);
        base = outstanding();
        o->setup(&c, o);
        mark_error();
        arm(n);
        s = o->run(&c, o);
        disarm();
        if (!g_injected) {
            *out_allocations = g_index;
            g_site_obj = NULL;
            CHECK(s == NN_OK, "the run without a failure returned %d (%s)", (int)s, nn_last_error_message());
            if (s == NN_OK && o->ok) o->ok(&c, o);
            ctx_free(&c);
            CHECK(outstanding() == base, "the successful run leaks %ld allocations", outstanding() - base);
            break;
        }
        ++*out_injected;
        if (!exhaust) {
            add_site(g_op_sites, &g_n_op_sites, g_site_obj, g_site_off);
            add_site(g_all_sites, &g_n_all_sites, g_site_obj, g_site_off);
        }
        if (g_verbose)
            printf("  %s %sN=%ld: %s+0x%lx -> %d %s\n", o->name, g_mode, n, base_name(g_site_obj),
                   (unsigned long)g_site_off, (int)s, nn_last_error_message());
        CHECK(s == NN_ERR_OUT_OF_MEMORY, "status %d (%s), expected NN_ERR_OUT_OF_MEMORY: %s", (int)s,
              nn_status_string(s), nn_last_error_message());
        CHECK(op_documents(o->name, s), "status %d (%s) is not among those nn.h documents for this function", (int)s,
              nn_status_string(s));
        if (s != NN_OK) check_message(s);
        if (o->failed) o->failed(&c, o, s);
        ctx_free(&c);
        CHECK(outstanding() == base, "%ld allocations leaked", outstanding() - base);
    }
    g_exhaust = 0;
    g_mode = "";
    REQUIRE(n <= MAX_N);
}

static void drive(op *o)
{
    long allocations, injected, allocations2, injected2;
    size_t i;
    g_op = o->name;
    g_op_failures = 0;
    g_n_op_sites = 0;
    g_op_n = 0;
    if (o->prepare) o->prepare(o);
    drive_pass(o, 0, &allocations, &injected);
    drive_pass(o, 1, &allocations2, &injected2);
    CHECK(allocations2 == allocations, "a complete run made %ld allocations, then %ld", allocations, allocations2);
    printf("%-44s %4ld allocations, %4ld + %4ld injected, %3zu sites%s\n", o->name, allocations, injected, injected2,
           g_n_op_sites, g_op_failures ? "  <-- FAILURES" : "");
    report_repeats();
    if (g_verbose)
        for (i = 0; i < g_n_op_sites; ++i)
            printf("    site %s+0x%lx\n", base_name(g_op_sites[i].obj), (unsigned long)g_op_sites[i].off);
    fflush(stdout);
    REQUIRE(g_n_results < MAX_OPS);
    g_results[g_n_results].name = o->name;
    g_results[g_n_results].allocations = allocations;
    g_results[g_n_results].injected = injected;
    g_results[g_n_results].injected_exhaust = injected2;
    g_results[g_n_results].sites = g_n_op_sites;
    g_results[g_n_results].failures = g_op_failures;
    ++g_n_results;
}

/* Common pieces: a model from the image on the op's device, snapshotted. */
static void setup_model(ctx *c, const op *o)
{
    c->m = model_on(*o->img, o->device);
    snap_take(c->m, &c->before);
}

static void failed_unchanged(ctx *c, const op *o, nn_status s)
{
    const char *why = snap_diff(c->m, &c->before);
    (void)o;
    (void)s;
    CHECK(why == NULL, "the model changed: %s", why ? why : "");
}

static void failed_unchanged_buf(ctx *c, const op *o, nn_status s)
{
    failed_unchanged(c, o, s);
    CHECK(buf_untouched(c), "the output buffer was written");
}

/* ---- nn_create ------------------------------------------------------------------------- */

typedef struct create_arg {
    size_t sizes[5];
    size_t n;
    nn_dtype dtype;
    int with_rng;
} create_arg;

static nn_status run_create_with(ctx *c, const create_arg *a)
{
    nn_model_desc d;
    nn_model_desc_init(&d);
    d.layer_sizes = a->sizes;
    d.n_layer_sizes = a->n;
    d.dtype = a->dtype;
    d.hidden_activation = NN_ACTIVATION_RELU;
    d.init = NN_INIT_HE;
    d.seed = 5;
    d.rng = a->with_rng ? c->rng : NULL;
    c->out = (nn_model *)&d; /* a non-NULL value: a failure must write NULL */
    return nn_create(&c->out, &d);
}

static void prepare_create(op *o)
{
    const create_arg *a = o->arg;
    ctx c;
    memset(&c, 0, sizeof c);
    if (a->with_rng) REQUIRE_OK(nn_rng_create(&c.rng, 77));
    REQUIRE_OK(run_create_with(&c, a));
    o->expected = save_bytes(c.out, NULL);
    ctx_free(&c);
}

static void setup_create(ctx *c, const op *o)
{
    const create_arg *a = o->arg;
    if (a->with_rng) {
        REQUIRE_OK(nn_rng_create(&c->rng, 77));
        REQUIRE_OK(nn_rng_create(&c->twin, 77));
    }
}

static nn_status run_create(ctx *c, const op *o) { return run_create_with(c, o->arg); }

static void failed_create(ctx *c, const op *o, nn_status s)
{
    const create_arg *a = o->arg;
    (void)s;
    CHECK(c->out == NULL, "*out is not NULL after a failure");
    if (c->out == NULL && a->with_rng) CHECK(rng_in_step(c->rng, c->twin), "desc->rng was drawn from");
    if (c->out != NULL) c->out = NULL; /* not ours to destroy */
}

static void ok_create(ctx *c, const op *o)
{
    bytes b = save_bytes(c->out, NULL);
    CHECK(bytes_equal(b, o->expected), "the created model differs from one created without failures");
    free(b.p);
}

/* ---- nn_fit ----------------------------------------------------------------------------- */

typedef enum fit_kind { FIT_SGD, FIT_ADAM, FIT_CALLBACK, FIT_MSE, FIT_WIDE } fit_kind;

static long g_progress_calls;
static int on_progress(const nn_progress *p, void *user)
{
    (void)p;
    (void)user;
    ++g_progress_calls;
    return 0;
}

static nn_fit_options fit_options(fit_kind k, nn_rng *rng)
{
    nn_fit_options o;
    nn_fit_options_init(&o);
    switch (k) {
    case FIT_SGD:
        o.epochs = 2;
        o.batch_size = 10;
        o.learning_rate = 0.5;
        o.report_interval = 3;
        break;
    case FIT_ADAM: o = adam_options(); break;
    case FIT_CALLBACK:
        o.epochs = 2;
        o.batch_size = 16;
        o.learning_rate = 0.1;
        o.report_interval = 2;
        o.optimizer = NN_OPTIMIZER_MOMENTUM;
        o.max_grad_norm = 1.0;
        o.weight_decay = 1e-3;
        o.rng = rng;
        o.val_x = g_val_x;
        o.val_x_dtype = NN_DTYPE_FLOAT64;
        o.val_rows = 12;
        o.val_cols = 2;
        o.val_targets = g_val_labels;
        o.val_target_type = NN_TARGET_CLASS_INDEX;
        o.val_target_cols = 1;
        o.progress = on_progress;
        break;
    case FIT_MSE:
        o.epochs = 2;
        o.batch_size = 20;
        o.learning_rate = 0.05;
        o.optimizer = NN_OPTIMIZER_RMSPROP;
        o.validation_fraction = 0.25;
        break;
    case FIT_WIDE:
        o.epochs = 1;
        o.batch_size = 64;
        o.learning_rate = 0.05;
        o.optimizer = NN_OPTIMIZER_NESTEROV;
        break;
    }
    return o;
}

static nn_status do_fit(ctx *c, fit_kind k, nn_fit_report *report)
{
    nn_fit_options o = fit_options(k, c->rng);
    nn_fit_report_init(report);
    if (k == FIT_MSE)
        return nn_fit(c->m, g_x, NN_DTYPE_FLOAT64, ROWS, 2, g_onehot, NN_TARGET_ROWS_FLOAT64, CLASSES, &o, report);
    return nn_fit(c->m, g_x, NN_DTYPE_FLOAT64, ROWS, 2, g_labels, NN_TARGET_CLASS_INDEX, 1, &o, report);
}

static void setup_fit(ctx *c, const op *o)
{
    setup_model(c, o);
    if (*(const fit_kind *)o->arg == FIT_CALLBACK) {
        REQUIRE_OK(nn_rng_create(&c->rng, 99));
        REQUIRE_OK(nn_rng_create(&c->twin, 99));
    }
}

static void prepare_fit(op *o)
{
    ctx c;
    memset(&c, 0, sizeof c);
    setup_fit(&c, o);
    REQUIRE_OK(do_fit(&c, *(const fit_kind *)o->arg, &o->expected_report));
    o->expected = save_bytes(c.m, NULL);
    ctx_free(&c);
}

static nn_status run_fit(ctx *c, const op *o) { return do_fit(c, *(const fit_kind *)o->arg, &c->report); }

static int same_report(const nn_fit_report *a, const nn_fit_report *b)
{
    return a->epochs_run == b->epochs_run && a->steps_run == b->steps_run && a->steps_per_epoch == b->steps_per_epoch &&
           memcmp(&a->final_loss, &b->final_loss, sizeof(double)) == 0 && a->device_kind == b->device_kind &&
           a->stopped_early == b->stopped_early && a->best_epoch == b->best_epoch &&
           memcmp(&a->best_loss, &b->best_loss, sizeof(double)) == 0 &&
           memcmp(&a->final_val_loss, &b->final_val_loss, sizeof(double)) == 0 &&
           memcmp(&a->final_val_accuracy, &b->final_val_accuracy, sizeof(double)) == 0;
}

static void ok_fit(ctx *c, const op *o)
{
    bytes b;
    const char *why = try_save_bytes(c->m, NULL, &b);
    CHECK(!why, "after the fit, %s", why);
    if (why) return;
    CHECK(bytes_equal(b, o->expected), "the trained model differs from the same fit without failures");
    CHECK(same_report(&c->report, &o->expected_report), "the fit report differs from the same fit without failures");
    free(b.p);
}

static void failed_fit(ctx *c, const op *o, nn_status s)
{
    const fit_kind k = *(const fit_kind *)o->arg;
    nn_status again;
    failed_unchanged(c, o, s);
    if (k == FIT_CALLBACK) {
        /* options->rng must not have been advanced: check, then start both over */
        CHECK(rng_in_step(c->rng, c->twin), "options->rng was advanced by the failed fit");
        REQUIRE_OK(nn_rng_seed(c->rng, 99));
        REQUIRE_OK(nn_rng_seed(c->twin, 99));
    }
    /* The same fit, now without a failure, must give what it gives on a fresh model. */
    again = run_fit(c, o);
    CHECK(again == NN_OK, "the fit after the failed one returned %d: %s", (int)again, nn_last_error_message());
    if (again == NN_OK) {
        bytes b;
        const char *why = try_save_bytes(c->m, NULL, &b);
        CHECK(!why, "after the second fit, %s", why);
        if (why) return;
        CHECK(bytes_equal(b, o->expected), "a successful fit after the failed one differs from the same fit on a model that never failed");
        CHECK(same_report(&c->report, &o->expected_report), "the report of the fit after the failed one differs");
        free(b.p);
    }
}

/* ---- inference ----------------------------------------------------------------------- */

typedef enum infer_kind { PREDICT_SCORES, PREDICT_PROBS, PREDICT_CLASSES, EVALUATE } infer_kind;

static void setup_infer(ctx *c, const op *o)
{
    setup_model(c, o);
    fill_buf(c, ROWS * CLASSES * sizeof(double));
}

static nn_status run_infer(ctx *c, const op *o)
{
    switch (*(const infer_kind *)o->arg) {
    case PREDICT_SCORES:
        return nn_predict(c->m, g_x, NN_DTYPE_FLOAT64, ROWS, 2, NN_OUTPUT_SCORES, c->buf, NN_DTYPE_FLOAT32, ROWS * CLASSES);
    case PREDICT_PROBS:
        return nn_predict(c->m, g_x, NN_DTYPE_FLOAT64, ROWS, 2, NN_OUTPUT_PROBABILITIES, c->buf, NN_DTYPE_FLOAT64,
                          ROWS * CLASSES);
    case PREDICT_CLASSES: return nn_predict_classes(c->m, g_x, NN_DTYPE_FLOAT64, ROWS, 2, c->buf, ROWS);
    case EVALUATE: {
        double *out = c->buf;
        if (o->img == &g_img_mse)
            return nn_evaluate(c->m, g_x, NN_DTYPE_FLOAT64, ROWS, 2, g_onehot, NN_TARGET_ROWS_FLOAT64, CLASSES, &out[0],
                               &out[1]);
        return nn_evaluate(c->m, g_x, NN_DTYPE_FLOAT64, ROWS, 2, g_labels, NN_TARGET_CLASS_INDEX, 1, &out[0], &out[1]);
    }
    }
    return NN_ERR_INTERNAL;
}

static void prepare_infer(op *o)
{
    ctx c;
    memset(&c, 0, sizeof c);
    setup_infer(&c, o);
    REQUIRE_OK(run_infer(&c, o));
    o->expected.p = malloc(c.buf_bytes);
    REQUIRE(o->expected.p);
    memcpy(o->expected.p, c.buf, c.buf_bytes);
    o->expected.n = c.buf_bytes;
    ctx_free(&c);
}

static void ok_infer(ctx *c, const op *o)
{
    CHECK(c->buf_bytes == o->expected.n && memcmp(c->buf, o->expected.p, c->buf_bytes) == 0,
          "the results differ from those of a run without failures");
}

/* ---- saving -------------------------------------------------------------------------- */

typedef enum save_kind { SAVE_BUFFER, SAVE_BUFFER_F16, SAVE_REPLACE, SAVE_NEW } save_kind;

static const char *save_path(char *out, size_t cap)
{
    snprintf(out, cap, "%s/model.nnm", g_dir);
    return out;
}

static void setup_save(ctx *c, const op *o)
{
    const save_kind k = *(const save_kind *)o->arg;
    char path[128];
    setup_model(c, o);
    empty_dir(g_dir);
    if (k == SAVE_REPLACE) write_whole_file(save_path(path, sizeof path), g_img_small); /* the previous file */
    if (k == SAVE_BUFFER || k == SAVE_BUFFER_F16) fill_buf(c, 64 * 1024);
}

static nn_status run_save(ctx *c, const op *o)
{
    const save_kind k = *(const save_kind *)o->arg;
    char path[128];
    nn_save_options so;
    size_t n = 12345;
    nn_status s;
    nn_save_options_init(&so);
    switch (k) {
    case SAVE_BUFFER: return nn_save_to_buffer(c->m, c->buf, c->buf_bytes, &n, NULL);
    case SAVE_BUFFER_F16:
        so.storage = NN_DTYPE_FLOAT16;
        s = nn_save_to_buffer(c->m, c->buf, c->buf_bytes, &n, &so);
        if (s != NN_OK && n != 12345) return NN_ERR_INTERNAL; /* *out_size written on failure */
        return s;
    case SAVE_REPLACE:
    case SAVE_NEW: return nn_save(c->m, save_path(path, sizeof path), NULL);
    }
    return NN_ERR_INTERNAL;
}

static void prepare_save(op *o)
{
    const save_kind k = *(const save_kind *)o->arg;
    nn_model *m = model_on(*o->img, o->device);
    nn_save_options so;
    nn_save_options_init(&so);
    if (k == SAVE_BUFFER_F16) so.storage = NN_DTYPE_FLOAT16;
    o->expected = save_bytes(m, &so);
    nn_destroy(m);
}

static void failed_save(ctx *c, const op *o, nn_status s)
{
    const save_kind k = *(const save_kind *)o->arg;
    char path[128], first[256];
    failed_unchanged(c, o, s);
    if (k == SAVE_BUFFER || k == SAVE_BUFFER_F16) {
        CHECK(buf_untouched(c), "the output buffer was written");
    } else {
        const int entries = count_entries(g_dir, first, sizeof first);
        if (k == SAVE_REPLACE) {
            bytes now = read_whole_file(save_path(path, sizeof path));
            CHECK(bytes_equal(now, g_img_small), "the previous file was not left intact");
            CHECK(entries == 1, "%d files in the directory after the failed save (a temporary file left?)", entries);
            free(now.p);
        } else {
            CHECK(entries == 0, "a failed save to a new path left \"%s\" in the directory", first);
        }
    }
}

static void ok_save(ctx *c, const op *o)
{
    const save_kind k = *(const save_kind *)o->arg;
    char path[128];
    if (k == SAVE_BUFFER || k == SAVE_BUFFER_F16) {
        CHECK(memcmp(c->buf, o->expected.p, o->expected.n) == 0, "the saved bytes differ");
    } else {
        bytes now = read_whole_file(save_path(path, sizeof path));
        CHECK(bytes_equal(now, o->expected), "the saved file differs from nn_save_to_buffer's bytes");
        CHECK(count_entries(g_dir, NULL, 0) == 1, "files besides the model in the directory");
        free(now.p);
    }
}

/* ---- loading ------------------------------------------------------------------------- */

typedef enum load_kind { LOAD_FILE, LOAD_BUFFER } load_kind;

static void prepare_load(op *o)
{
    char path[128];
    o->expected = *o->img;
    empty_dir(g_dir);
    write_whole_file(save_path(path, sizeof path), *o->img);
}

static nn_status run_load(ctx *c, const op *o)
{
    char path[128];
    c->out = (nn_model *)o; /* non-NULL: a failure must write NULL */
    if (*(const load_kind *)o->arg == LOAD_FILE) return nn_load(&c->out, save_path(path, sizeof path));
    return nn_load_from_buffer(&c->out, o->img->p, o->img->n);
}

static void setup_none(ctx *c, const op *o)
{
    (void)c;
    (void)o;
}

static void failed_load(ctx *c, const op *o, nn_status s)
{
    (void)o;
    (void)s;
    CHECK(c->out == NULL, "*out is not NULL after a failed load");
    c->out = NULL;
}

static void ok_load(ctx *c, const op *o)
{
    bytes b = save_bytes(c->out, NULL);
    CHECK(bytes_equal(b, o->expected), "the loaded model does not save back to the same bytes");
    free(b.p);
}

/* ---- nn_set_device --------------------------------------------------------------------- */

static nn_status run_set_device(ctx *c, const op *o) { return nn_set_device(c->m, *(const nn_device_kind *)o->arg, 0); }

static void ok_set_device(ctx *c, const op *o)
{
    nn_device_info info;
    bytes b = save_bytes(c->m, NULL);
    nn_device_info_init(&info);
    REQUIRE_OK(nn_get_device(c->m, &info));
    CHECK(info.kind == *(const nn_device_kind *)o->arg, "the model is not on the requested device");
    CHECK(bytes_equal(b, c->before.saved), "the move changed the model's parameters, state or histories");
    free(b.p);
}

/* ---- metadata ----------------------------------------------------------------------------- */

typedef struct meta_arg {
    const char *key, *value;
} meta_arg;

static nn_status run_meta(ctx *c, const op *o)
{
    const meta_arg *a = o->arg;
    return nn_set_metadata(c->m, a->key, a->value);
}

static void ok_meta(ctx *c, const op *o)
{
    const meta_arg *a = o->arg;
    char value[256];
    size_t len = 0;
    nn_status s = nn_get_metadata(c->m, a->key, value, sizeof value, &len);
    if (a->value)
        CHECK(s == NN_OK && strcmp(value, a->value) == 0, "the value was not stored");
    else
        CHECK(s == NN_ERR_INVALID_ARGUMENT, "the key was not removed");
}

/* ---- random streams and the spiral -------------------------------------------------------- */

static nn_status run_rng_create(ctx *c, const op *o)
{
    (void)o;
    c->rng = (nn_rng *)c; /* non-NULL: a failure must write NULL */
    return nn_rng_create(&c->rng, 2024);
}

static void failed_rng_create(ctx *c, const op *o, nn_status s)
{
    (void)o;
    (void)s;
    CHECK(c->rng == NULL, "*out is not NULL after a failure");
    c->rng = NULL;
}

static void ok_rng_create(ctx *c, const op *o)
{
    (void)o;
    REQUIRE_OK(nn_rng_create(&c->twin, 2024));
    CHECK(rng_in_step(c->rng, c->twin), "the stream does not draw as a fresh one of its seed");
}

static void setup_spiral(ctx *c, const op *o)
{
    if (*(const int *)o->arg) {
        REQUIRE_OK(nn_rng_create(&c->rng, 3));
        REQUIRE_OK(nn_rng_create(&c->twin, 3));
    }
    fill_buf(c, ROWS * 2 * sizeof(double) + ROWS * sizeof(int32_t));
}

static nn_status run_spiral(ctx *c, const op *o)
{
    double *x = c->buf;
    (void)o;
    return nn_dataset_spiral(x, ROWS * 2, (int32_t *)(x + ROWS * 2), ROWS, PPC, CLASSES, c->rng, 1984);
}

static void failed_spiral(ctx *c, const op *o, nn_status s)
{
    (void)s;
    CHECK(buf_untouched(c), "the output buffers were written");
    if (*(const int *)o->arg) CHECK(rng_in_step(c->rng, c->twin), "the stream was drawn from");
}

/* ---- the rest of the model API: functions that do not document NN_ERR_OUT_OF_MEMORY ----- */

typedef enum misc_kind { SET_PARAMS, GET_PARAMS, GET_METADATA, RESET_OPTIMIZER, RESET_HISTORY, GET_HISTORIES } misc_kind;

static nn_status run_misc(ctx *c, const op *o)
{
    double params[64];
    size_t n = 0;
    char value[128];
    nn_loss_record rec[64];
    nn_epoch_record ep[8];
    nn_device_info info;
    size_t sizes[4];
    nn_dtype dtype;
    nn_status s;
    switch (*(const misc_kind *)o->arg) {
    case SET_PARAMS:
        s = nn_get_params(c->m, params, 64);
        if (s != NN_OK) return s;
        REQUIRE_OK(nn_param_count(c->m, &n));
        params[0] += 0.25;
        return nn_set_params(c->m, params, n);
    case GET_PARAMS: return nn_get_params(c->m, params, 64);
    case GET_METADATA:
        return nn_get_metadata(c->m, "author-and-a-key-longer-than-fifteen-bytes", value, sizeof value, &n);
    case RESET_OPTIMIZER: return nn_reset_optimizer(c->m);
    case RESET_HISTORY: return nn_reset_history(c->m);
    case GET_HISTORIES:
        nn_device_info_init(&info);
        if ((s = nn_get_loss_history(c->m, rec, 64, &n)) != NN_OK) return s;
        if ((s = nn_get_epoch_history(c->m, ep, 8, &n)) != NN_OK) return s;
        if ((s = nn_get_epoch_losses(c->m, params, 8, &n)) != NN_OK) return s;
        if ((s = nn_model_layer_sizes(c->m, sizes, 4)) != NN_OK) return s;
        if ((s = nn_model_layer_count(c->m, &n)) != NN_OK) return s;
        if ((s = nn_model_dtype(c->m, &dtype)) != NN_OK) return s;
        if ((s = nn_param_count(c->m, &n)) != NN_OK) return s;
        if ((s = nn_get_device(c->m, &info)) != NN_OK) return s;
        if ((s = nn_device_count(&n)) != NN_OK) return s;
        return nn_device_get(0, &info);
    }
    return NN_ERR_INTERNAL;
}

static void setup_misc(ctx *c, const op *o)
{
    setup_model(c, o);
    if (*(const misc_kind *)o->arg == GET_METADATA) {
        REQUIRE_OK(nn_set_metadata(c->m, "author-and-a-key-longer-than-fifteen-bytes", "x"));
        snap_free(&c->before);
        snap_take(c->m, &c->before);
    }
}

/* ======================================================================================
 * The operations
 * ====================================================================================== */

static const create_arg k_create_small = {{2, 6, 3}, 3, NN_DTYPE_FLOAT32, 0};
static const create_arg k_create_rng = {{2, 16, 16, 4}, 4, NN_DTYPE_FLOAT64, 1};
static const fit_kind k_fit_sgd = FIT_SGD, k_fit_adam = FIT_ADAM, k_fit_cb = FIT_CALLBACK, k_fit_mse = FIT_MSE,
                      k_fit_wide = FIT_WIDE;
static const infer_kind k_scores = PREDICT_SCORES, k_probs = PREDICT_PROBS, k_classes = PREDICT_CLASSES,
                        k_evaluate = EVALUATE;
static const save_kind k_save_buf = SAVE_BUFFER, k_save_f16 = SAVE_BUFFER_F16, k_save_replace = SAVE_REPLACE,
                       k_save_new = SAVE_NEW;
static const load_kind k_load_file = LOAD_FILE, k_load_buffer = LOAD_BUFFER;
static const nn_device_kind k_to_cpu = NN_DEVICE_CPU, k_to_ref = NN_DEVICE_REFERENCE;
static const meta_arg k_meta_new = {"a-new-key-longer-than-fifteen-bytes", "a value that is longer than fifteen bytes"};
static const meta_arg k_meta_replace = {"author", "another value that is longer than fifteen bytes"};
static const meta_arg k_meta_remove = {"author", NULL};
static const int k_no_rng = 0, k_with_rng = 1;
static const misc_kind k_set_params = SET_PARAMS, k_get_params = GET_PARAMS, k_get_meta = GET_METADATA,
                       k_reset_opt = RESET_OPTIMIZER, k_reset_hist = RESET_HISTORY, k_histories = GET_HISTORIES;

#define CPU NN_DEVICE_CPU
#define REF NN_DEVICE_REFERENCE

static op g_ops[] = {
    {"nn_create 2-6-3 float32", setup_none, run_create, failed_create, ok_create, &k_create_small, NULL, CPU, {0}, {0}, prepare_create},
    {"nn_create 2-16-16-4 float64, desc->rng", setup_create, run_create, failed_create, ok_create, &k_create_rng, NULL, CPU, {0}, {0}, prepare_create},
    {"nn_fit SGD (cpu)", setup_fit, run_fit, failed_fit, ok_fit, &k_fit_sgd, &g_img_small, CPU, {0}, {0}, prepare_fit},
    {"nn_fit SGD (reference)", setup_fit, run_fit, failed_fit, ok_fit, &k_fit_sgd, &g_img_small, REF, {0}, {0}, prepare_fit},
    {"nn_fit Adam+val fraction+class weights (cpu)", setup_fit, run_fit, failed_fit, ok_fit, &k_fit_adam, &g_img_adam, CPU, {0}, {0}, prepare_fit},
    {"nn_fit Adam+val fraction+class weights (ref)", setup_fit, run_fit, failed_fit, ok_fit, &k_fit_adam, &g_img_adam, REF, {0}, {0}, prepare_fit},
    {"nn_fit momentum+val set+rng+callback (cpu)", setup_fit, run_fit, failed_fit, ok_fit, &k_fit_cb, &g_img_adam, CPU, {0}, {0}, prepare_fit},
    {"nn_fit RMSprop MSE float64 targets (cpu)", setup_fit, run_fit, failed_fit, ok_fit, &k_fit_mse, &g_img_mse, CPU, {0}, {0}, prepare_fit},
    {"nn_fit Nesterov 2-64-64-3, OpenBLAS (cpu)", setup_fit, run_fit, failed_fit, ok_fit, &k_fit_wide, &g_img_wide, CPU, {0}, {0}, prepare_fit},
    {"nn_predict scores (cpu)", setup_infer, run_infer, failed_unchanged_buf, ok_infer, &k_scores, &g_img_adam, CPU, {0}, {0}, prepare_infer},
    {"nn_predict scores (reference)", setup_infer, run_infer, failed_unchanged_buf, ok_infer, &k_scores, &g_img_adam, REF, {0}, {0}, prepare_infer},
    {"nn_predict probabilities (cpu)", setup_infer, run_infer, failed_unchanged_buf, ok_infer, &k_probs, &g_img_small, CPU, {0}, {0}, prepare_infer},
    {"nn_predict scores 2-64-64-3, OpenBLAS (cpu)", setup_infer, run_infer, failed_unchanged_buf, ok_infer, &k_scores, &g_img_wide, CPU, {0}, {0}, prepare_infer},
    {"nn_predict_classes (cpu)", setup_infer, run_infer, failed_unchanged_buf, ok_infer, &k_classes, &g_img_adam, CPU, {0}, {0}, prepare_infer},
    {"nn_predict_classes (reference)", setup_infer, run_infer, failed_unchanged_buf, ok_infer, &k_classes, &g_img_adam, REF, {0}, {0}, prepare_infer},
    {"nn_evaluate (cpu)", setup_infer, run_infer, failed_unchanged_buf, ok_infer, &k_evaluate, &g_img_adam, CPU, {0}, {0}, prepare_infer},
    {"nn_evaluate MSE (reference)", setup_infer, run_infer, failed_unchanged_buf, ok_infer, &k_evaluate, &g_img_mse, REF, {0}, {0}, prepare_infer},
    {"nn_save_to_buffer", setup_save, run_save, failed_save, ok_save, &k_save_buf, &g_img_adam, CPU, {0}, {0}, prepare_save},
    {"nn_save_to_buffer float16", setup_save, run_save, failed_save, ok_save, &k_save_f16, &g_img_adam, CPU, {0}, {0}, prepare_save},
    {"nn_save over a previous file", setup_save, run_save, failed_save, ok_save, &k_save_replace, &g_img_adam, CPU, {0}, {0}, prepare_save},
    {"nn_save to a new path", setup_save, run_save, failed_save, ok_save, &k_save_new, &g_img_adam, CPU, {0}, {0}, prepare_save},
    {"nn_load (Adam state, histories, metadata)", setup_none, run_load, failed_load, ok_load, &k_load_file, &g_img_adam, CPU, {0}, {0}, prepare_load},
    {"nn_load_from_buffer (Adam state, ...)", setup_none, run_load, failed_load, ok_load, &k_load_buffer, &g_img_adam, CPU, {0}, {0}, prepare_load},
    {"nn_load_from_buffer (untrained)", setup_none, run_load, failed_load, ok_load, &k_load_buffer, &g_img_small, CPU, {0}, {0}, prepare_load},
    {"nn_set_device reference -> cpu (Adam state)", setup_model, run_set_device, failed_unchanged, ok_set_device, &k_to_cpu, &g_img_adam, REF, {0}, {0}, NULL},
    {"nn_set_device cpu -> reference (Adam state)", setup_model, run_set_device, failed_unchanged, ok_set_device, &k_to_ref, &g_img_adam, CPU, {0}, {0}, NULL},
    {"nn_set_device reference -> cpu (2-64-64-3)", setup_model, run_set_device, failed_unchanged, ok_set_device, &k_to_cpu, &g_img_wide, REF, {0}, {0}, NULL},
    {"nn_set_metadata new key", setup_model, run_meta, failed_unchanged, ok_meta, &k_meta_new, &g_img_adam, CPU, {0}, {0}, NULL},
    {"nn_set_metadata replace a value", setup_model, run_meta, failed_unchanged, ok_meta, &k_meta_replace, &g_img_adam, CPU, {0}, {0}, NULL},
    {"nn_set_metadata remove a key", setup_model, run_meta, failed_unchanged, ok_meta, &k_meta_remove, &g_img_adam, CPU, {0}, {0}, NULL},
    {"nn_rng_create", setup_none, run_rng_create, failed_rng_create, ok_rng_create, NULL, NULL, CPU, {0}, {0}, NULL},
    {"nn_dataset_spiral (own stream)", setup_spiral, run_spiral, failed_spiral, NULL, &k_no_rng, NULL, CPU, {0}, {0}, NULL},
    {"nn_dataset_spiral (a stream)", setup_spiral, run_spiral, failed_spiral, NULL, &k_with_rng, NULL, CPU, {0}, {0}, NULL},
};

/* The rest of the model API. A function that allocates gets its failures injected and
 * checked like the operations above, and nn.h must then list NN_ERR_OUT_OF_MEMORY among
 * its statuses (the table generated from nn.h says whether it does). */
static op g_census[] = {
    {"nn_set_params", setup_misc, run_misc, failed_unchanged, NULL, &k_set_params, &g_img_adam, CPU, {0}, {0}, NULL},
    {"nn_get_params", setup_misc, run_misc, failed_unchanged, NULL, &k_get_params, &g_img_adam, CPU, {0}, {0}, NULL},
    {"nn_get_metadata (a long key)", setup_misc, run_misc, failed_unchanged, NULL, &k_get_meta, &g_img_adam, CPU, {0}, {0}, NULL},
    {"nn_reset_optimizer (Adam state)", setup_misc, run_misc, failed_unchanged, NULL, &k_reset_opt, &g_img_adam, CPU, {0}, {0}, NULL},
    {"nn_reset_history", setup_misc, run_misc, failed_unchanged, NULL, &k_reset_hist, &g_img_adam, CPU, {0}, {0}, NULL},
    {"nn_get_loss_history and other read-only calls", setup_misc, run_misc, failed_unchanged, NULL, &k_histories, &g_img_adam, CPU, {0}, {0}, NULL},
};

/* ======================================================================================
 * Error paths: calls that fail for a documented reason (a bad argument, a corrupt file)
 * while their own error reporting runs out of memory. Each injection runs in a child
 * process, so that a crash is reported with its N and the test goes on. The status must
 * be the documented one or NN_ERR_OUT_OF_MEMORY (the message could not be built), with
 * a fresh message, the model unchanged and nothing leaked.
 * ====================================================================================== */

typedef enum err_kind {
    ERR_FIT_LR, ERR_PREDICT_COLS, ERR_DEVICE, ERR_LOAD_CORRUPT, ERR_LOAD_MISSING, ERR_LAYER_SIZES, ERR_CREATE_ZERO,
    ERR_SAVE_DIR, ERR_META_MISSING, ERR_SEED_ARRAY
} err_kind;

typedef struct err_op {
    const char *name;
    err_kind kind;
    nn_status expected;
    long allocations, injected, crashes, oom_instead;
} err_op;

static nn_status run_err(ctx *c, err_kind k)
{
    double out[ROWS * CLASSES];
    size_t sizes[1], n = 0;
    char path[128];
    uint32_t key[1] = {1};
    nn_fit_options o;
    nn_model_desc d;
    static const size_t zero[] = {2, 0, 3};
    switch (k) {
    case ERR_FIT_LR:
        nn_fit_options_init(&o);
        o.learning_rate = -1.0;
        return nn_fit(c->m, g_x, NN_DTYPE_FLOAT64, ROWS, 2, g_labels, NN_TARGET_CLASS_INDEX, 1, &o, NULL);
    case ERR_PREDICT_COLS:
        return nn_predict(c->m, g_x, NN_DTYPE_FLOAT64, 10, 3, NN_OUTPUT_SCORES, out, NN_DTYPE_FLOAT64, ROWS * CLASSES);
    case ERR_DEVICE: return nn_set_device(c->m, NN_DEVICE_CUDA, 7);
    case ERR_LOAD_CORRUPT: return nn_load_from_buffer(&c->out, g_img_adam.p, g_img_adam.n / 2);
    case ERR_LOAD_MISSING:
        snprintf(path, sizeof path, "%s/no-such-model-file.nnm", g_dir);
        return nn_load(&c->out, path);
    case ERR_LAYER_SIZES: return nn_model_layer_sizes(c->m, sizes, 1);
    case ERR_CREATE_ZERO:
        nn_model_desc_init(&d);
        d.layer_sizes = zero;
        d.n_layer_sizes = 3;
        return nn_create(&c->out, &d);
    case ERR_SAVE_DIR: return nn_save(c->m, g_dir, NULL);
    case ERR_META_MISSING: return nn_get_metadata(c->m, "no-such-metadata-key", NULL, 0, &n);
    case ERR_SEED_ARRAY: return nn_rng_seed_array(c->rng, key, 0);
    }
    return NN_ERR_INTERNAL;
}

/* Child: one run with allocation n failing. Exit 0: checks passed; 4: passed, with
 * NN_ERR_OUT_OF_MEMORY instead of the documented status; 1: a check failed (printed);
 * 3: the run completed without reaching allocation n; 2: FATAL (REQUIRE, printed). */
static void err_child(err_op *e, long n)
{
    ctx c;
    long base;
    nn_status s;
    memset(&c, 0, sizeof c);
    g_failures = 0; /* this process's own verdict */
    g_op_failures = 0;
    g_n_seen = 0;
    base = outstanding();
    c.m = model_on(g_img_adam, NN_DEVICE_CPU);
    snap_take(c.m, &c.before);
    REQUIRE_OK(nn_rng_create(&c.rng, 1));
    mark_error();
    arm(n);
    s = run_err(&c, e->kind);
    disarm();
    if (!g_injected) {
        CHECK(s == e->expected, "without a failure the call returned %d, not %d: %s", (int)s, (int)e->expected,
              nn_last_error_message());
        ctx_free(&c);
        CHECK(outstanding() == base, "the call leaks %ld allocations", outstanding() - base);
        fflush(stdout);
        _exit(g_failures ? 1 : 3);
    }
    CHECK(s == e->expected || s == NN_ERR_OUT_OF_MEMORY, "status %d (%s), expected %d or NN_ERR_OUT_OF_MEMORY: %s",
          (int)s, nn_status_string(s), (int)e->expected, nn_last_error_message());
    check_message(s);
    {
        const char *why = snap_diff(c.m, &c.before);
        CHECK(why == NULL, "the model changed: %s", why ? why : "");
    }
    CHECK(c.out == NULL, "*out is not NULL after a failure");
    c.out = NULL;
    ctx_free(&c);
    CHECK(outstanding() == base, "%ld allocations leaked", outstanding() - base);
    fflush(stdout);
    _exit(g_failures ? 1 : s == NN_ERR_OUT_OF_MEMORY ? 4 : 0);
}

static void drive_error(err_op *e)
{
    long n;
    g_op = e->name;
    g_op_failures = 0;
    for (n = 1; n <= 2000; ++n) {
        pid_t pid;
        int st = 0;
        g_op_n = n;
        fflush(stdout);
        pid = fork();
        REQUIRE(pid >= 0);
        if (pid == 0) err_child(e, n);
        REQUIRE(waitpid(pid, &st, 0) == pid);
        if (WIFSIGNALED(st)) {
            ++e->crashes;
            ++e->injected;
            g_site_obj = NULL;
            report_failure("the process died of signal %d (%s)", WTERMSIG(st), strsignal(WTERMSIG(st)));
            continue;
        }
        REQUIRE(WIFEXITED(st));
        if (WEXITSTATUS(st) == 3) break;
        ++e->injected;
        if (WEXITSTATUS(st) == 4) ++e->oom_instead;
        if (WEXITSTATUS(st) != 0 && WEXITSTATUS(st) != 4) {
            ++g_failures; /* the child printed what failed */
            ++g_op_failures;
            if (WEXITSTATUS(st) == 2) break; /* FATAL: the scaffolding itself failed */
        }
    }
    e->allocations = n - 1;
    printf("%-44s %4ld allocations, %4ld injected, %ld crashed, %ld gave NN_ERR_OUT_OF_MEMORY%s\n", e->name,
           e->allocations, e->injected, e->crashes, e->oom_instead, g_op_failures ? "  <-- FAILURES" : "");
    report_repeats();
}

static err_op g_errors[] = {
    {"error: nn_fit learning_rate -1", ERR_FIT_LR, NN_ERR_BAD_HYPERPARAMETER, 0, 0, 0, 0},
    {"error: nn_predict with 3 columns", ERR_PREDICT_COLS, NN_ERR_SHAPE_MISMATCH, 0, 0, 0, 0},
    {"error: nn_set_device cuda:7", ERR_DEVICE, NN_ERR_DEVICE_UNAVAILABLE, 0, 0, 0, 0},
    {"error: nn_load_from_buffer, truncated", ERR_LOAD_CORRUPT, NN_ERR_CORRUPT, 0, 0, 0, 0},
    {"error: nn_load, missing file", ERR_LOAD_MISSING, NN_ERR_IO, 0, 0, 0, 0},
    {"error: nn_model_layer_sizes capacity 1", ERR_LAYER_SIZES, NN_ERR_BUFFER_TOO_SMALL, 0, 0, 0, 0},
    {"error: nn_create, a zero layer size", ERR_CREATE_ZERO, NN_ERR_INVALID_ARGUMENT, 0, 0, 0, 0},
    {"error: nn_save onto a directory", ERR_SAVE_DIR, NN_ERR_INVALID_ARGUMENT, 0, 0, 0, 0},
    {"error: nn_get_metadata, no such key", ERR_META_MISSING, NN_ERR_INVALID_ARGUMENT, 0, 0, 0, 0},
    {"error: nn_rng_seed_array, n = 0", ERR_SEED_ARRAY, NN_ERR_INVALID_ARGUMENT, 0, 0, 0, 0},
};

static pid_t g_parent_pid;

/* The scratch directory goes on any exit of this process, a FATAL one included (not a
 * child's: they share it). */
static void remove_scratch_dir(void)
{
    DIR *d;
    struct dirent *e;
    char path[1024];
    if (getpid() != g_parent_pid || g_dir[0] == '\0') return;
    if ((d = opendir(g_dir)) != NULL) { /* no REQUIRE here: this may run inside exit() */
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
            snprintf(path, sizeof path, "%s/%s", g_dir, e->d_name);
            unlink(path);
        }
        closedir(d);
    }
    rmdir(g_dir);
    g_dir[0] = '\0';
}

int main(void)
{
    size_t i, n_ops = sizeof g_ops / sizeof g_ops[0], n_census = sizeof g_census / sizeof g_census[0];
    long single = 0, exhaust = 0, census_allocating = 0, error_injected = 0, crashes = 0;
    const char *v = getenv("NN_FAULT_VERBOSE");
    struct timespec t0, t1;
    g_verbose = v && v[0] && strcmp(v, "0") != 0;
    signal(SIGSEGV, on_crash);
    signal(SIGABRT, on_crash);
    signal(SIGBUS, on_crash);
    signal(SIGFPE, on_crash);
    setvbuf(stdout, NULL, _IOLBF, 0);
    clock_gettime(CLOCK_MONOTONIC, &t0);

    snprintf(g_dir, sizeof g_dir, "/tmp/nn_fault_XXXXXX");
    REQUIRE(mkdtemp(g_dir) != NULL);
    g_parent_pid = getpid();
    atexit(remove_scratch_dir);
    g_main_thread = pthread_self();
    g_main_set = 1;

    make_images();
    warm_up();
    {
        /* The counter and the injector themselves, before relying on them (through a
         * volatile pointer: the compiler may not elide these allocations). */
        void *(*volatile alloc)(size_t) = malloc;
        void (*volatile release)(void *) = free;
        const long before = outstanding();
        void *p = alloc(24);
        REQUIRE(p != NULL && outstanding() == before + 1);
        release(p);
        REQUIRE(outstanding() == before);
        arm(1);
        p = alloc(24);
        disarm();
        REQUIRE(p == NULL && g_injected && errno == ENOMEM && outstanding() == before);
    }

    printf("Allocation-failure injection. Per operation: the allocations of one complete call; the\n"
           "single failures injected (allocation N fails, N = 1, 2, ...) + the exhaustion runs (every\n"
           "allocation from the Nth on fails); the distinct code sites the single failures hit.\n");
    for (i = 0; i < n_ops; ++i) drive(&g_ops[i]);

    printf("Census: the rest of the model API; one that allocates must document NN_ERR_OUT_OF_MEMORY\n");
    for (i = 0; i < n_census; ++i) {
        drive(&g_census[i]);
        if (g_results[n_ops + i].allocations > 0) {
            ++census_allocating;
            g_op = g_census[i].name;
            g_op_n = g_results[n_ops + i].allocations;
            g_site_obj = NULL;
            CHECK(op_documents(g_census[i].name, NN_ERR_OUT_OF_MEMORY),
                  "it allocates, but nn.h does not list NN_ERR_OUT_OF_MEMORY among its statuses");
        }
    }
    printf("Error paths: a documented failure whose own reporting runs out of memory (one process per injection)\n");
    for (i = 0; i < sizeof g_errors / sizeof g_errors[0]; ++i) {
        drive_error(&g_errors[i]);
        error_injected += g_errors[i].injected;
        crashes += g_errors[i].crashes;
    }
    for (i = 0; i < g_n_results; ++i) {
        single += g_results[i].injected;
        exhaust += g_results[i].injected_exhaust;
    }

    remove_scratch_dir();
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("TOTAL: %zu operations (%zu in the census, %ld of which allocate): %ld single allocation failures and "
           "%ld exhaustion runs injected, %zu distinct allocation sites; %zu error paths: %ld failures injected, "
           "%ld crashes; %ld failed checks; %.1f s\n",
           g_n_results, n_census, census_allocating, single, exhaust, g_n_all_sites, sizeof g_errors / sizeof g_errors[0],
           error_injected, crashes, g_failures,
           (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec));
    return g_failures == 0 ? 0 : 1;
}
