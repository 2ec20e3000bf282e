/*
 * nn_save is atomic (nn.h: "the bytes go to a temporary file in the same directory, which
 * is flushed to disk and then renamed over `path`"), even when the saving process dies.
 *
 * A child (this program re-executed with --saver) saves a large model ({512, 512, 512, 10}
 * in float64, about 4 MiB) to one path over and over, alternating two parameter sets A
 * and B. The parent SIGKILLs it at a random moment, 20+ times, with delays from 1 ms up to
 * one and a half times what one save takes in this build, and after every kill the file at
 * the path must be, byte for byte, A's file or B's file, and load as exactly A or B: never
 * a torn mixture, never a truncated file.
 *
 * Stray "path.tmp-XXXXXX" files may remain after a kill: the atomic rename guarantees the
 * target, not the cleanup of a process killed mid-save (it cannot unlink anything after a
 * SIGKILL). A stray is never the target, and it must never pass for a model it is not: a
 * partly written one must fail to load with NN_ERR_CORRUPT, and one killed between its
 * fsync and the rename is a complete copy of A or B. The test checks each stray and
 * removes it.
 *
 * The delays come from a seed printed at the start (NN_KILL_SEED=... repeats a run).
 */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <nn/nn.h>

#include "capi_test_util.h" /* capi_remove_dir */

#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MIN_KILLS 20
#define TIME_BUDGET_S 12.0 /* stop adding kills past this, once MIN_KILLS are done */
#define MAX_KILLS 60

static const char *g_self = NULL;
static const size_t k_sizes[] = {512, 512, 512, 10};

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

static nn_model *make_model(uint32_t seed, const char *name)
{
    nn_model_desc desc;
    nn_model *m = NULL;
    nn_model_desc_init(&desc);
    desc.n_layer_sizes = 4;
    desc.layer_sizes = k_sizes;
    desc.dtype = NN_DTYPE_FLOAT64;
    desc.init = NN_INIT_XAVIER;
    desc.seed = seed;
    if (nn_create(&m, &desc) != NN_OK) return NULL;
    if (nn_set_metadata(m, "set", name) != NN_OK) {
        nn_destroy(m);
        return NULL;
    }
    return m;
}

/* The child: saves A, B, A, B, ... to `path` until it is killed. Writes 'R' to stdout
 * when ready and one byte per completed save. */
static int saver(const char *path)
{
    nn_model *a = make_model(1, "A"), *b = make_model(2, "B");
    unsigned long n;
    if (!a || !b) {
        fprintf(stderr, "saver: cannot create the models: %s\n", nn_last_error_message());
        return 1;
    }
    if (write(STDOUT_FILENO, "R", 1) != 1) return 1;
    for (n = 0;; ++n) {
        nn_model *m = n % 2 ? b : a;
        nn_status s = nn_save(m, path, NULL);
        if (s != NN_OK) {
            fprintf(stderr, "saver: nn_save %lu: %s: %s\n", n, nn_status_string(s), nn_last_error_message());
            return 1;
        }
        if (write(STDOUT_FILENO, n % 2 ? "B" : "A", 1) != 1) return 1;
    }
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void sleep_us(long us)
{
    struct timespec ts;
    ts.tv_sec = us / 1000000;
    ts.tv_nsec = (us % 1000000) * 1000;
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static uint64_t g_rand_state;

static uint32_t next_rand(void)
{
    /* splitmix64 */
    uint64_t z = (g_rand_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return (uint32_t)((z ^ (z >> 31)) >> 32);
}

static unsigned char *read_file(const char *path, size_t *out_len)
{
    FILE *f = fopen(path, "rb");
    unsigned char *buf = NULL;
    size_t len = 0, cap = 0;
    if (!f) return NULL;
    for (;;) {
        size_t got;
        if (len == cap) {
            unsigned char *p;
            cap = cap ? 2 * cap : 1u << 20;
            p = realloc(buf, cap);
            if (!p) break;
            buf = p;
        }
        got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0) break;
    }
    fclose(f);
    *out_len = len;
    if (!buf) buf = malloc(1); /* an empty file is a file */
    return buf;
}

typedef struct expected {
    unsigned char *bytes[2];
    size_t size[2];
    double *params[2];
    size_t n_params;
} expected;

/* Which of A (0) and B (1) these bytes are, or -1. */
static int which_bytes(const expected *e, const unsigned char *bytes, size_t len)
{
    int i;
    for (i = 0; i < 2; ++i)
        if (len == e->size[i] && memcmp(bytes, e->bytes[i], len) == 0) return i;
    return -1;
}

/* Which of A and B the loaded model is (parameters and metadata), or -1. */
static int which_model(const expected *e, nn_model *m, double *scratch)
{
    char set[8];
    size_t n = 0, len = 0;
    int i;
    if (nn_param_count(m, &n) != NN_OK || n != e->n_params) return -1;
    if (nn_get_params(m, scratch, n) != NN_OK) return -1;
    if (nn_get_metadata(m, "set", set, sizeof set, &len) != NN_OK || len != 1) return -1;
    for (i = 0; i < 2; ++i)
        if (memcmp(scratch, e->params[i], n * sizeof *scratch) == 0 && set[0] == "AB"[i]) return i;
    return -1;
}

static void test_killed_saver_never_tears_the_file(void **state)
{
    const char *dir = g_dir;
    char path[4096];
    const char *seed_env = getenv("NN_KILL_SEED");
    unsigned long seed;
    expected e;
    nn_model *a, *b;
    double *scratch;
    double start, save_s, t0, startup_s = 0.0, check_s = 0.0;
    int kill_no, kills = 0;
    unsigned long saves_seen = 0, strays = 0, partial_strays = 0, complete_strays = 0, mid_save_kills = 0;
    int seen[2] = {0, 0};
    (void)state;

    seed = seed_env ? strtoul(seed_env, NULL, 10) : (unsigned long)time(NULL) ^ (unsigned long)getpid();
    g_rand_state = seed;
    print_message("NN_KILL_SEED=%lu\n", seed);

    snprintf(g_dir, sizeof g_dir, "/tmp/nn-kill-save-XXXXXX");
    assert_non_null(mkdtemp(g_dir));
    snprintf(path, sizeof path, "%s/model.nn", dir);

    a = make_model(1, "A");
    b = make_model(2, "B");
    assert_non_null(a);
    assert_non_null(b);
    memset(&e, 0, sizeof e);
    assert_int_equal(nn_param_count(a, &e.n_params), NN_OK);
    {
        nn_model *ab[2];
        int i;
        ab[0] = a;
        ab[1] = b;
        for (i = 0; i < 2; ++i) {
            size_t got = 0;
            assert_int_equal(nn_save_to_buffer(ab[i], NULL, 0, &e.size[i], NULL), NN_OK);
            e.bytes[i] = malloc(e.size[i]);
            e.params[i] = malloc(e.n_params * sizeof(double));
            assert_non_null(e.bytes[i]);
            assert_non_null(e.params[i]);
            assert_int_equal(nn_save_to_buffer(ab[i], e.bytes[i], e.size[i], &got, NULL), NN_OK);
            assert_int_equal(got, e.size[i]);
            assert_int_equal(nn_get_params(ab[i], e.params[i], e.n_params), NN_OK);
        }
        assert_true(e.size[0] > 4u * 1000u * 1000u); /* several MB: a save takes a while */
        assert_true(memcmp(e.params[0], e.params[1], e.n_params * sizeof(double)) != 0);
    }
    scratch = malloc(e.n_params * sizeof(double));
    assert_non_null(scratch);
    /* The target exists before the first kill: it must never be lost or torn after. The
     * time a save takes in this build (sanitizers slow it down a lot) scales the delays. */
    save_s = now_s();
    assert_int_equal(nn_save(b, path, NULL), NN_OK);
    assert_int_equal(nn_save(a, path, NULL), NN_OK);
    save_s = (now_s() - save_s) / 2.0;

    start = now_s();
    for (kill_no = 0; kill_no < MAX_KILLS; ++kill_no) {
        int fds[2], status = 0, which;
        pid_t pid;
        long delay_us;
        unsigned long saves_now = 0;
        char buf[4096];
        struct pollfd pfd;
        unsigned char *bytes;
        size_t len = 0;
        nn_model *loaded = NULL;
        nn_status s;
        DIR *d;
        struct dirent *ent;

        if (kill_no >= MIN_KILLS && now_s() - start > TIME_BUDGET_S) break;
        /* Every third kill within 1 to 10 ms of the child being ready (its first save is
         * under way), the others anywhere in its first one and a half saves. */
        if (kill_no % 3 == 0)
            delay_us = 1000L + (long)(next_rand() % 9000u);
        else
            delay_us = 1000L + (long)(next_rand() % (uint32_t)(1.5e6 * save_s + 2000.0));

        assert_int_equal(pipe(fds), 0);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            char *const args[] = {(char *)g_self, (char *)"--saver", path, NULL};
            close(fds[0]);
            if (dup2(fds[1], STDOUT_FILENO) < 0) _exit(126);
            close(fds[1]);
            /* argv[0] first: under valgrind, /proc/self/exe is valgrind's own tool. */
            if (strchr(g_self, '/') != NULL) execv(g_self, args);
            execv("/proc/self/exe", args);
            _exit(127);
        }
        close(fds[1]);
        t0 = now_s();
        /* Wait until the child has built its models, then give it `delay_us` of saving. */
        pfd.fd = fds[0];
        pfd.events = POLLIN;
        {
            ssize_t k = poll(&pfd, 1, 60000) == 1 ? read(fds[0], buf, 1) : -1;
            if (k != 1 || buf[0] != 'R') {
                kill(pid, SIGKILL);
                waitpid(pid, &status, 0);
                print_error("saver did not start (read %d, status %d)\n", (int)k, status);
                fail();
            }
        }
        startup_s += now_s() - t0;
        sleep_us(delay_us);
        assert_int_equal(kill(pid, SIGKILL), 0);
        while (waitpid(pid, &status, 0) < 0) assert_int_equal(errno, EINTR);
        for (;;) {
            ssize_t k = read(fds[0], buf, sizeof buf);
            if (k < 0 && errno == EINTR) continue;
            if (k <= 0) break;
            saves_now += (unsigned long)k;
        }
        close(fds[0]);
        if (!(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL))
            print_error("kill %d: the saver ended by itself (status %d; its stderr is above)\n", kill_no, status);
        assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
        saves_seen += saves_now;
        ++kills;

        /* The target: exactly A's or B's bytes, and it loads as that model. */
        t0 = now_s();
        bytes = read_file(path, &len);
        if (!bytes) print_error("kill %d after %ld us: %s is gone: %s\n", kill_no, delay_us, path, strerror(errno));
        assert_non_null(bytes);
        which = which_bytes(&e, bytes, len);
        if (which < 0)
            print_error("kill %d after %ld us (%lu saves done): %s is torn: %zu bytes, neither A (%zu) nor B (%zu)\n",
                        kill_no, delay_us, saves_now, path, len, e.size[0], e.size[1]);
        free(bytes);
        assert_true(which >= 0);
        /* Loading is deterministic in the bytes: a file identical to A's loads as A's did.
         * So in slow (sanitized) builds, where a 4 MiB load takes most of a second, only
         * each content's first appearance is loaded; in the others, every one. */
        if (save_s < 0.1 || seen[which] == 0) {
            s = nn_load(&loaded, path);
            if (s != NN_OK)
                print_error("kill %d: nn_load: %s: %s\n", kill_no, nn_status_string(s), nn_last_error_message());
            assert_int_equal(s, NN_OK);
            assert_int_equal(which_model(&e, loaded, scratch), which);
            nn_destroy(loaded);
            loaded = NULL;
        }
        ++seen[which];

        /* Strays: never the target, never loadable as anything but a complete A or B. */
        d = opendir(dir);
        assert_non_null(d);
        while ((ent = readdir(d)) != NULL) {
            char stray[4096 + 256];
            if (strcmp(ent->d_name, ".") == 0 || strcmp(ent->d_name, "..") == 0 ||
                strcmp(ent->d_name, "model.nn") == 0)
                continue;
            snprintf(stray, sizeof stray, "%s/%s", dir, ent->d_name);
            if (strncmp(ent->d_name, "model.nn.tmp-", 13) != 0) {
                print_error("kill %d: unexpected file %s\n", kill_no, stray);
                fail();
            }
            ++strays;
            bytes = read_file(stray, &len);
            assert_non_null(bytes);
            which = which_bytes(&e, bytes, len);
            free(bytes);
            s = nn_load(&loaded, stray);
            if (which >= 0) {
                /* Killed after the temporary file was complete, before the rename. */
                ++complete_strays;
                if (s != NN_OK) print_error("complete stray %s: %s\n", stray, nn_last_error_message());
                assert_int_equal(s, NN_OK);
                assert_int_equal(which_model(&e, loaded, scratch), which);
            } else {
                ++partial_strays;
                if (s != NN_ERR_CORRUPT)
                    print_error("partial stray %s (%zu bytes) loaded with %s: %s\n", stray, len, nn_status_string(s),
                                s == NN_OK ? "a model from a torn file" : nn_last_error_message());
                assert_int_equal(s, NN_ERR_CORRUPT);
                assert_null(loaded);
            }
            nn_destroy(loaded);
            loaded = NULL;
            if (which < 0) ++mid_save_kills;
            assert_int_equal(unlink(stray), 0);
        }
        closedir(d);
        check_s += now_s() - t0;
    }

    print_message("one save takes %.0f ms here; %d kills in %.1f s: %lu saves completed in all; the target was A %d times, B %d times; "
                  "%lu strays (%lu partial, %lu complete); %.1f s starting savers, %.1f s checking files\n",
                  1e3 * save_s, kills, now_s() - start, saves_seen, seen[0], seen[1], strays, partial_strays, complete_strays, startup_s, check_s);
    assert_true(kills >= MIN_KILLS);
    /* Evidence that kills landed while saves were going on, not only between them. */
    if (saves_seen == 0 || mid_save_kills == 0)
        print_message("warning: no kill landed in the middle of a save; the run proved less than it should\n");

    assert_int_equal(unlink(path), 0);
    assert_int_equal(rmdir(dir), 0);
    g_dir[0] = '\0';
    nn_destroy(a);
    nn_destroy(b);
    free(scratch);
    free(e.bytes[0]);
    free(e.bytes[1]);
    free(e.params[0]);
    free(e.params[1]);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_killed_saver_never_tears_the_file, remove_temp_dir),
    };
    g_self = argv[0];
    if (argc == 3 && strcmp(argv[1], "--saver") == 0) return saver(argv[2]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
