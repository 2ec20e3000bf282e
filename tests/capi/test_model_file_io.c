/* Model files, the caller's side: metadata strings, argument checks of nn_save / nn_load
 * and their buffer forms, the atomic write (a failed save keeps the previous file), and
 * the checked-in version-1 file that every later libnn must still load. */
#define _XOPEN_SOURCE 700
#include "capi_test_util.h"

#include <dirent.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef NN_TEST_DATA_DIR
#error "NN_TEST_DATA_DIR must name tests/data of the source tree"
#endif

#define MAX_PARAMS 2048

/* ---- helpers ----------------------------------------------------------------------- */

/* Removes the scratch directory and everything in it, and frees its path. */
static void remove_temp_dir(char *dir)
{
    assert_int_equal(capi_remove_dir(dir), 0);
    free(dir);
}

/* Entries of `dir` other than . and .. whose name starts with `prefix` ("" for all). */
static size_t entries_with_prefix(const char *dir, const char *prefix)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    size_t n = 0;
    assert_non_null(d);
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        if (strncmp(e->d_name, prefix, strlen(prefix)) == 0) ++n;
    }
    closedir(d);
    return n;
}

static int path_exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

static unsigned char *save_to_buffer(nn_model *m, const nn_save_options *o, size_t *size)
{
    size_t need = 0, got = 0;
    unsigned char *buf;
    CAPI_OK(nn_save_to_buffer(m, NULL, 0, &need, o));
    buf = malloc(need);
    assert_non_null(buf);
    CAPI_OK(nn_save_to_buffer(m, buf, need, &got, o));
    assert_int_equal(got, need);
    *size = need;
    return buf;
}

/* nn_load must fail with `want` and leave *out NULL (as the header says). */
#define EXPECT_LOAD_FAILS(want, path)                                                   \
    do {                                                                                 \
        nn_model *out_ = capi_sentinel_model();                                               \
        CAPI_FAIL((want), nn_load(&out_, (path)));                                       \
        assert_null(out_);                                                               \
    } while (0)

/* ---- 3. metadata ------------------------------------------------------------------------ */

static void expect_meta(nn_model *m, const char *key, const char *want)
{
    size_t len = 12345, cap = strlen(want) + 1;
    char *out = malloc(cap + 1);
    assert_non_null(out);
    CAPI_OK(nn_get_metadata(m, key, NULL, 0, &len));
    assert_int_equal(len, strlen(want));
    len = 0;
    memset(out, 'Z', cap + 1);
    CAPI_OK(nn_get_metadata(m, key, out, cap, &len));
    assert_int_equal(len, strlen(want));
    assert_string_equal(out, want);
    free(out);
}

static void expect_no_meta(nn_model *m, const char *key)
{
    char out[8];
    size_t len = 777;
    CAPI_FAIL(NN_ERR_INVALID_ARGUMENT, nn_get_metadata(m, key, out, sizeof out, &len));
    assert_int_equal(len, 777);
    CAPI_FAIL(NN_ERR_INVALID_ARGUMENT, nn_get_metadata(m, key, NULL, 0, &len));
    assert_int_equal(len, 777);
}

static void test_metadata_set_get_overwrite_remove(void **state)
{
    nn_model *m = capi_small_model(NN_DTYPE_FLOAT32, 13);
    char out[16];
    size_t len = 0;
    (void)state;
    expect_no_meta(m, "author");
    CAPI_OK(nn_set_metadata(m, "author", "Saito"));
    expect_meta(m, "author", "Saito");
    len = 0;
    CAPI_FAIL(NN_ERR_BUFFER_TOO_SMALL, nn_get_metadata(m, "author", out, 5, &len));
    assert_int_equal(len, 5); /* still set: the length without the NUL */
    len = 0;
    CAPI_FAIL(NN_ERR_BUFFER_TOO_SMALL, nn_get_metadata(m, "author", out, 0, &len));
    assert_int_equal(len, 5);
    CAPI_OK(nn_set_metadata(m, "author", "Koki Saito"));
    expect_meta(m, "author", "Koki Saito");
    CAPI_OK(nn_set_metadata(m, "empty", ""));
    expect_meta(m, "empty", "");
    CAPI_OK(nn_set_metadata(m, "author", NULL));
    expect_no_meta(m, "author");
    expect_meta(m, "empty", "");
    expect_no_meta(m, "Empty"); /* keys are exact bytes */
    CAPI_FAIL(NN_ERR_NULL_POINTER, nn_set_metadata(NULL, "k", "v"));
    CAPI_FAIL(NN_ERR_NULL_POINTER, nn_set_metadata(m, NULL, "v"));
    CAPI_FAIL(NN_ERR_NULL_POINTER, nn_get_metadata(NULL, "empty", out, sizeof out, &len));
    CAPI_FAIL(NN_ERR_NULL_POINTER, nn_get_metadata(m, NULL, out, sizeof out, &len));
    CAPI_FAIL(NN_ERR_NULL_POINTER, nn_get_metadata(m, "empty", out, sizeof out, NULL));
    nn_destroy(m);
}

static void test_metadata_rejects_bad_keys_and_values(void **state)
{
    nn_model *m = capi_small_model(NN_DTYPE_FLOAT32, 14);
    char *key = malloc(258), *value = malloc(65538);
    (void)state;
    assert_non_null(key);
    assert_non_null(value);
    CAPI_OK(nn_set_metadata(m, "k", "old"));
    CAPI_FAIL(NN_ERR_INVALID_ARGUMENT, nn_set_metadata(m, "", "v"));
    CAPI_FAIL(NN_ERR_INVALID_ARGUMENT, nn_set_metadata(m, "", NULL));
    memset(key, 'k', 257);
    key[257] = '\0';
    CAPI_FAIL(NN_ERR_INVALID_ARGUMENT, nn_set_metadata(m, key, "v"));
    key[256] = '\0'; /* 256 bytes: the longest key */
    CAPI_OK(nn_set_metadata(m, key, "v"));
    expect_meta(m, key, "v");
    memset(value, 'v', 65537);
    value[65537] = '\0';
    CAPI_FAIL(NN_ERR_INVALID_ARGUMENT, nn_set_metadata(m, "k", value));
    expect_meta(m, "k", "old"); /* a failed set leaves the old value */
    value[65536] = '\0';        /* 65536 bytes: the longest value */
    CAPI_OK(nn_set_metadata(m, "k", value));
    expect_meta(m, "k", value);
    free(key);
    free(value);
    nn_destroy(m);
}

static void test_metadata_survives_save_and_load(void **state)
{
    nn_model *m = capi_small_model(NN_DTYPE_FLOAT64, 15), *l;
    char *key = malloc(257), *value = malloc(65537), *dir = capi_make_temp_dir();
    char path[512];
    unsigned char *buf;
    size_t size = 0, pass;
    nn_save_options o;
    (void)state;
    assert_non_null(key);
    assert_non_null(value);
    memset(key, 'K', 256);
    key[256] = '\0';
    memset(value, 'V', 65536);
    value[65536] = '\0';
    CAPI_OK(nn_set_metadata(m, "book", "ch01"));
    CAPI_OK(nn_set_metadata(m, "utf8", "\xe3\x82\xbc\xe3\x83\xad\xe3\x81\x8b\xe3\x82\x89 \xe2\x80\x94 \x01\x7f\xff"));
    CAPI_OK(nn_set_metadata(m, "empty", ""));
    CAPI_OK(nn_set_metadata(m, key, value));
    CAPI_OK(nn_set_metadata(m, "gone", "x"));
    CAPI_OK(nn_set_metadata(m, "gone", NULL));
    capi_join_path(path, sizeof path, dir, "meta.nnm");
    for (pass = 0; pass < 3; ++pass) {
        nn_save_options_init(&o);
        o.storage = pass == 2 ? NN_DTYPE_FLOAT16 : NN_DTYPE_MODEL;
        o.include_training_state = pass != 1;
        buf = save_to_buffer(m, &o, &size);
        CAPI_OK(nn_save(m, path, &o));
        l = pass == 0 ? capi_load_buffer(buf, size) : capi_load_file(path);
        expect_meta(l, "book", "ch01");
        expect_meta(l, "utf8", "\xe3\x82\xbc\xe3\x83\xad\xe3\x81\x8b\xe3\x82\x89 \xe2\x80\x94 \x01\x7f\xff");
        expect_meta(l, "empty", "");
        expect_meta(l, key, value);
        expect_no_meta(l, "gone");
        nn_destroy(l);
        free(buf);
    }
    {   /* a model without metadata loads without any */
        nn_model *plain = capi_small_model(NN_DTYPE_FLOAT32, 16);
        buf = save_to_buffer(plain, NULL, &size);
        l = capi_load_buffer(buf, size);
        expect_no_meta(l, "book");
        nn_destroy(l);
        nn_destroy(plain);
        free(buf);
    }
    remove_temp_dir(dir);
    free(key);
    free(value);
    nn_destroy(m);
}

/* ---- 4. bad inputs ----------------------------------------------------------------------- */

static void test_save_and_load_reject_null_and_empty_arguments(void **state)
{
    nn_model *m = capi_small_model(NN_DTYPE_FLOAT32, 20), *out = capi_sentinel_model();
    unsigned char buf[4096];
    size_t size = 0;
    capi_snapshot snap;
    (void)state;
    capi_snapshot_take(m, &snap);
    CAPI_FAIL(NN_ERR_NULL_POINTER, nn_save(NULL, "/tmp/nn_never_written.nnm", NULL));
    CAPI_FAIL(NN_ERR_NULL_POINTER, nn_save(m, NULL, NULL));
    CAPI_FAIL(NN_ERR_INVALID_ARGUMENT, nn_save(m, "", NULL));
    CAPI_FAIL(NN_ERR_NULL_POINTER, nn_save_to_buffer(NULL, buf, sizeof buf, &size, NULL));
    CAPI_FAIL(NN_ERR_NULL_POINTER, nn_save_to_buffer(m, buf, sizeof buf, NULL, NULL));
    CAPI_FAIL(NN_ERR_NULL_POINTER, nn_save_to_buffer(m, NULL, 0, NULL, NULL));
    capi_snapshot_assert_same(m, &snap);
    assert_false(path_exists("/tmp/nn_never_written.nnm"));

    CAPI_OK(nn_save_to_buffer(m, buf, sizeof buf, &size, NULL));
    CAPI_FAIL(NN_ERR_NULL_POINTER, nn_load(NULL, "/tmp/whatever.nnm"));
    CAPI_FAIL(NN_ERR_NULL_POINTER, nn_load(&out, NULL));
    assert_null(out);
    out = capi_sentinel_model();
    CAPI_FAIL(NN_ERR_INVALID_ARGUMENT, nn_load(&out, ""));
    assert_null(out);
    CAPI_FAIL(NN_ERR_NULL_POINTER, nn_load_from_buffer(NULL, buf, size));
    out = capi_sentinel_model();
    CAPI_FAIL(NN_ERR_NULL_POINTER, nn_load_from_buffer(&out, NULL, size));
    assert_null(out);
    out = capi_sentinel_model();
    CAPI_FAIL(NN_ERR_CORRUPT, nn_load_from_buffer(&out, buf, 0));
    assert_null(out);
    capi_snapshot_free(&snap);
    nn_destroy(m);
}

static void test_load_of_missing_file_directory_or_device(void **state)
{
    char *dir = capi_make_temp_dir();
    char path[512];
    (void)state;
    capi_join_path(path, sizeof path, dir, "missing.nnm");
    EXPECT_LOAD_FAILS(NN_ERR_IO, path);
    capi_join_path(path, sizeof path, dir, "no/such/dir/model.nnm");
    EXPECT_LOAD_FAILS(NN_ERR_IO, path);
    EXPECT_LOAD_FAILS(NN_ERR_INVALID_ARGUMENT, dir);
    EXPECT_LOAD_FAILS(NN_ERR_INVALID_ARGUMENT, "/dev/null");
    EXPECT_LOAD_FAILS(NN_ERR_INVALID_ARGUMENT, "/dev/zero");
    assert_int_equal(entries_with_prefix(dir, ""), 0);
    remove_temp_dir(dir);
}

/* A FIFO is not a regular file: nn_load must refuse it, not block waiting for a writer.
 * Run in a child with an alarm so that a hang fails the test instead of stalling it. */
static void test_load_of_a_fifo_is_refused_without_blocking(void **state)
{
    char *dir = capi_make_temp_dir();
    char path[512];
    pid_t pid;
    int status = 0;
    (void)state;
    capi_join_path(path, sizeof path, dir, "fifo.nnm");
    assert_int_equal(mkfifo(path, 0600), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        nn_model *out = capi_sentinel_model();
        nn_status s;
        alarm(10);
        s = nn_load(&out, path);
        _exit(out == NULL ? (int)s : 100);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (WIFSIGNALED(status))
        print_error("nn_load of a FIFO did not return (child killed by signal %d)\n", WTERMSIG(status));
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), NN_ERR_INVALID_ARGUMENT);
    remove_temp_dir(dir);
}

static void test_save_refuses_a_directory_and_a_device_file(void **state)
{
    nn_model *m = capi_small_model(NN_DTYPE_FLOAT32, 21);
    char *dir = capi_make_temp_dir();
    char sub[512];
    struct stat st;
    capi_snapshot snap;
    (void)state;
    capi_snapshot_take(m, &snap);
    capi_join_path(sub, sizeof sub, dir, "sub");
    assert_int_equal(mkdir(sub, 0700), 0);
    CAPI_FAIL(NN_ERR_INVALID_ARGUMENT, nn_save(m, sub, NULL));
    assert_int_equal(stat(sub, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(entries_with_prefix(sub, ""), 0);
    assert_int_equal(entries_with_prefix(dir, ""), 1); /* only sub: no temporary left */

    CAPI_FAIL(NN_ERR_INVALID_ARGUMENT, nn_save(m, "/dev/null", NULL));
    assert_int_equal(stat("/dev/null", &st), 0);
    assert_true(S_ISCHR(st.st_mode)); /* still the device, not a model file */
    assert_int_equal(entries_with_prefix("/dev", "null.tmp-"), 0);
    capi_snapshot_assert_same(m, &snap);
    capi_snapshot_free(&snap);
    remove_temp_dir(dir);
    nn_destroy(m);
}

static void test_save_rejects_bad_options(void **state)
{
    nn_model *m = capi_small_model(NN_DTYPE_FLOAT64, 22);
    char *dir = capi_make_temp_dir();
    char path[512];
    unsigned char buf[8192];
    size_t size = 0;
    nn_save_options o;
    capi_snapshot snap;
    (void)state;
    capi_snapshot_take(m, &snap);
    capi_join_path(path, sizeof path, dir, "model.nnm");

    nn_save_options_init(&o);
    o.struct_size = 0;
    CAPI_FAIL(NN_ERR_STRUCT_SIZE, nn_save(m, path, &o));
    CAPI_FAIL(NN_ERR_STRUCT_SIZE, nn_save_to_buffer(m, buf, sizeof buf, &size, &o));
    o.struct_size = sizeof o + 1;
    CAPI_FAIL(NN_ERR_STRUCT_SIZE, nn_save(m, path, &o));
    CAPI_FAIL(NN_ERR_STRUCT_SIZE, nn_save_to_buffer(m, NULL, 0, &size, &o));

    nn_save_options_init(&o);
    o.storage = (nn_dtype)9;
    CAPI_FAIL(NN_ERR_INVALID_ARGUMENT, nn_save(m, path, &o));
    CAPI_FAIL(NN_ERR_INVALID_ARGUMENT, nn_save_to_buffer(m, buf, sizeof buf, &size, &o));
    CAPI_FAIL(NN_ERR_INVALID_ARGUMENT, nn_save_to_buffer(m, NULL, 0, &size, &o));
    o.storage = (nn_dtype)-1;
    CAPI_FAIL(NN_ERR_INVALID_ARGUMENT, nn_save(m, path, &o));
    assert_int_equal(entries_with_prefix(dir, ""), 0);
    capi_snapshot_assert_same(m, &snap);

    nn_save_options_init(&o); /* the defaults */
    assert_int_equal(o.struct_size, sizeof o);
    assert_int_equal(o.storage, NN_DTYPE_MODEL);
    assert_int_equal(o.include_training_state, 1);
    nn_save_options_init(NULL); /* no-op */
    capi_snapshot_free(&snap);
    remove_temp_dir(dir);
    nn_destroy(m);
}

/* A parameter float16 cannot hold: NN_ERR_NON_FINITE, nothing written, model unchanged. */
static void test_save_float16_overflow_is_non_finite_and_writes_nothing(void **state)
{
    const double bad[] = {1e5, -1e5, 65520.0};
    char *dir = capi_make_temp_dir();
    char path[512];
    size_t i, n = 0, size = 0;
    nn_save_options o;
    (void)state;
    capi_join_path(path, sizeof path, dir, "model.nnm");
    nn_save_options_init(&o);
    o.storage = NN_DTYPE_FLOAT16;
    for (i = 0; i < 2 * 3; ++i) {
        double p[MAX_PARAMS];
        capi_snapshot snap;
        nn_model *m = capi_small_model(i < 3 ? NN_DTYPE_FLOAT32 : NN_DTYPE_FLOAT64, 23);
        CAPI_OK(nn_param_count(m, &n));
        CAPI_OK(nn_get_params(m, p, MAX_PARAMS));
        p[n / 2] = bad[i % 3];
        CAPI_OK(nn_set_params(m, p, n));
        capi_snapshot_take(m, &snap);
        CAPI_FAIL(NN_ERR_NON_FINITE, nn_save(m, path, &o));
        assert_false(path_exists(path));
        assert_int_equal(entries_with_prefix(dir, ""), 0);
        CAPI_FAIL(NN_ERR_NON_FINITE, nn_save_to_buffer(m, NULL, 0, &size, &o));
        capi_snapshot_assert_same(m, &snap);
        /* the largest value that still rounds to a finite half is fine */
        p[n / 2] = 65519.0;
        CAPI_OK(nn_set_params(m, p, n));
        CAPI_OK(nn_save(m, path, &o));
        assert_int_equal(unlink(path), 0);
        capi_snapshot_free(&snap);
        nn_destroy(m);
    }
    remove_temp_dir(dir);
}

static void test_save_float32_storage_of_a_huge_float64_value_is_non_finite(void **state)
{
    nn_model *m = capi_small_model(NN_DTYPE_FLOAT64, 24);
    char *dir = capi_make_temp_dir();
    char path[512];
    double p[MAX_PARAMS];
    size_t n = 0, size = 0;
    nn_save_options o;
    capi_snapshot snap;
    (void)state;
    capi_join_path(path, sizeof path, dir, "model.nnm");
    CAPI_OK(nn_param_count(m, &n));
    CAPI_OK(nn_get_params(m, p, MAX_PARAMS));
    p[0] = 1e300;
    CAPI_OK(nn_set_params(m, p, n));
    capi_snapshot_take(m, &snap);
    nn_save_options_init(&o);
    o.storage = NN_DTYPE_FLOAT32;
    CAPI_FAIL(NN_ERR_NON_FINITE, nn_save(m, path, &o));
    CAPI_FAIL(NN_ERR_NON_FINITE, nn_save_to_buffer(m, NULL, 0, &size, &o));
    assert_int_equal(entries_with_prefix(dir, ""), 0);
    capi_snapshot_assert_same(m, &snap);
    /* lossless storage keeps it */
    o.storage = NN_DTYPE_MODEL;
    CAPI_OK(nn_save(m, path, &o));
    {
        nn_model *l = capi_load_file(path);
        double q[MAX_PARAMS];
        assert_int_equal(capi_params_of(l, q, MAX_PARAMS), n);
        assert_true(q[0] == 1e300);
        nn_destroy(l);
    }
    capi_snapshot_free(&snap);
    remove_temp_dir(dir);
    nn_destroy(m);
}

/* ---- 6. the atomic write ------------------------------------------------------------------- */

/* Model A is saved; then a child process whose file size limit is a few hundred bytes
 * (SIGXFSZ ignored, so write() fails with EFBIG) saves the bigger model B over it. The
 * save must report NN_ERR_IO and leave A's file whole and no temporary behind. */
static void test_a_failed_save_keeps_the_previous_file(void **state)
{
    static const size_t sizes[] = {20, 50, 10};
    nn_model *a = capi_model(NN_DTYPE_FLOAT64, sizes, 3, 30);
    nn_model *b = capi_model(NN_DTYPE_FLOAT64, sizes, 3, 31);
    char *dir = capi_make_temp_dir();
    char path[512];
    double pa[MAX_PARAMS], pl[MAX_PARAMS];
    size_t n, size_b = 0;
    pid_t pid;
    int status = 0;
    (void)state;
    capi_join_path(path, sizeof path, dir, "model.nnm");
    CAPI_OK(nn_save(a, path, NULL));
    CAPI_OK(nn_save_to_buffer(b, NULL, 0, &size_b, NULL));
    assert_true(size_b > 4 * 300);

    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct rlimit rl;
        rl.rlim_cur = 300;
        rl.rlim_max = 300;
        signal(SIGXFSZ, SIG_IGN);
        if (setrlimit(RLIMIT_FSIZE, &rl) != 0) _exit(101);
        _exit((int)nn_save(b, path, NULL));
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (WIFSIGNALED(status)) print_error("the saving child died of signal %d\n", WTERMSIG(status));
    assert_true(WIFEXITED(status));
    if (WEXITSTATUS(status) != NN_ERR_IO)
        print_error("the failing save returned %d, expected NN_ERR_IO (%d)\n", WEXITSTATUS(status), NN_ERR_IO);
    assert_int_equal(WEXITSTATUS(status), NN_ERR_IO);

    assert_int_equal(entries_with_prefix(dir, "model.nnm.tmp-"), 0);
    assert_int_equal(entries_with_prefix(dir, ""), 1);
    {
        nn_model *l = capi_load_file(path);
        n = capi_params_of(a, pa, MAX_PARAMS);
        assert_int_equal(capi_params_of(l, pl, MAX_PARAMS), n);
        assert_memory_equal(pa, pl, n * sizeof(double));
        nn_destroy(l);
    }
    /* a save that succeeds replaces it, again without leftovers */
    CAPI_OK(nn_save(b, path, NULL));
    assert_int_equal(entries_with_prefix(dir, ""), 1);
    {
        nn_model *l = capi_load_file(path);
        n = capi_params_of(b, pa, MAX_PARAMS);
        assert_int_equal(capi_params_of(l, pl, MAX_PARAMS), n);
        assert_memory_equal(pa, pl, n * sizeof(double));
        nn_destroy(l);
    }
    remove_temp_dir(dir);
    nn_destroy(a);
    nn_destroy(b);
}

static void test_save_into_a_missing_directory_is_an_io_error(void **state)
{
    nn_model *m = capi_small_model(NN_DTYPE_FLOAT32, 32);
    char *dir = capi_make_temp_dir();
    char path[512];
    capi_snapshot snap;
    (void)state;
    capi_snapshot_take(m, &snap);
    capi_join_path(path, sizeof path, dir, "absent/model.nnm");
    CAPI_FAIL(NN_ERR_IO, nn_save(m, path, NULL));
    assert_int_equal(entries_with_prefix(dir, ""), 0);
    capi_snapshot_assert_same(m, &snap);
    capi_snapshot_free(&snap);
    remove_temp_dir(dir);
    nn_destroy(m);
}

/* ---- 7. the version-1 file stays loadable ---------------------------------------------------- */

/* tests/data/spiral_float16_v1.nnm was written by libnn 0.1.0: the book's chapter-1 run
 * (one stream seeded 1984 for the spiral, the 2-10-3 float64 weights and the shuffle; 300
 * epochs, batch 30, lr 1.0, a record every 10 steps; trained on the reference device)
 * saved with float16 storage and metadata libnn_version=0.1.0, book=ch01. */
static void test_spiral_float16_v1_file_still_loads_and_predicts(void **state)
{
    static const size_t sizes[] = {2, 10, 3};
    static double x[600];
    static int32_t t[300], cls[300];
    double sf[900], sr[900], pf[MAX_PARAMS], pr[MAX_PARAMS];
    nn_loss_record rec[301];
    size_t n = 0, i, correct = 0, got_sizes[4], d;
    nn_dtype dtype = NN_DTYPE_MODEL;
    nn_model *f, *fresh, *rounded;
    nn_rng *rng;
    (void)state;

    f = capi_load_file(NN_TEST_DATA_DIR "/spiral_float16_v1.nnm");
    CAPI_OK(nn_model_dtype(f, &dtype));
    assert_int_equal(dtype, NN_DTYPE_FLOAT64);
    CAPI_OK(nn_model_layer_count(f, &n));
    assert_int_equal(n, 3);
    CAPI_OK(nn_model_layer_sizes(f, got_sizes, 4));
    assert_memory_equal(got_sizes, sizes, sizeof sizes);
    expect_meta(f, "libnn_version", "0.1.0");
    expect_meta(f, "book", "ch01");
    CAPI_OK(nn_get_loss_history(f, rec, 301, &n));
    assert_int_equal(n, 300);
    assert_int_equal(rec[0].epoch, 1);
    assert_int_equal(rec[299].epoch, 300);
    assert_int_equal(rec[299].iteration, 1);
    assert_int_equal(rec[299].steps_per_epoch, 10);
    CAPI_OK(nn_get_epoch_losses(f, NULL, 0, &n));
    assert_int_equal(n, 300);

    CAPI_OK(nn_dataset_spiral(x, 600, t, 300, 100, 3, NULL, 1984));
    CAPI_OK(nn_predict_classes(f, x, NN_DTYPE_FLOAT64, 300, 2, cls, 300));
    for (i = 0; i < 300; ++i) correct += cls[i] == t[i];
    if (correct != 291) print_error("the file's model classifies %u of 300, expected 291\n", (unsigned)correct);
    assert_int_equal(correct, 291);

    /* the same run today, rounded through a float16 save, is the same model */
    rng = capi_rng(1984);
    CAPI_OK(nn_dataset_spiral(x, 600, t, 300, 100, 3, rng, 0));
    {
        nn_model_desc desc;
        nn_fit_options o = capi_fit_options(300, 30, 1.0, 10);
        nn_save_options so;
        unsigned char *buf;
        size_t size = 0;
        nn_model_desc_init(&desc);
        desc.n_layer_sizes = 3;
        desc.layer_sizes = sizes;
        desc.dtype = NN_DTYPE_FLOAT64;
        desc.rng = rng;
        fresh = capi_sentinel_model();
        CAPI_OK(nn_create(&fresh, &desc));
        CAPI_OK(nn_set_device(fresh, NN_DEVICE_REFERENCE, 0));
        o.rng = rng;
        CAPI_OK(nn_fit(fresh, x, NN_DTYPE_FLOAT64, 300, 2, t, NN_TARGET_CLASS_INDEX, 1, &o, NULL));
        nn_save_options_init(&so);
        so.storage = NN_DTYPE_FLOAT16;
        buf = save_to_buffer(fresh, &so, &size);
        rounded = capi_load_buffer(buf, size);
        free(buf);
    }
    n = capi_params_of(f, pf, MAX_PARAMS);
    assert_int_equal(capi_params_of(rounded, pr, MAX_PARAMS), n);
    assert_memory_equal(pf, pr, n * sizeof(double));
    for (d = 0; d < 2; ++d) {
        const nn_device_kind dev = d == 0 ? NN_DEVICE_REFERENCE : NN_DEVICE_AUTO;
        CAPI_OK(nn_set_device(f, dev, 0));
        CAPI_OK(nn_set_device(rounded, dev, 0));
        CAPI_OK(nn_predict(f, x, NN_DTYPE_FLOAT64, 300, 2, NN_OUTPUT_SCORES, sf, NN_DTYPE_FLOAT64, 900));
        CAPI_OK(nn_predict(rounded, x, NN_DTYPE_FLOAT64, 300, 2, NN_OUTPUT_SCORES, sr, NN_DTYPE_FLOAT64, 900));
        assert_memory_equal(sf, sr, sizeof sf);
    }
    nn_rng_destroy(rng);
    nn_destroy(rounded);
    nn_destroy(fresh);
    nn_destroy(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_metadata_set_get_overwrite_remove),
        cmocka_unit_test(test_metadata_rejects_bad_keys_and_values),
        cmocka_unit_test(test_metadata_survives_save_and_load),
        cmocka_unit_test(test_save_and_load_reject_null_and_empty_arguments),
        cmocka_unit_test(test_load_of_missing_file_directory_or_device),
        cmocka_unit_test(test_load_of_a_fifo_is_refused_without_blocking),
        cmocka_unit_test(test_save_refuses_a_directory_and_a_device_file),
        cmocka_unit_test(test_save_rejects_bad_options),
        cmocka_unit_test(test_save_float16_overflow_is_non_finite_and_writes_nothing),
        cmocka_unit_test(test_save_float32_storage_of_a_huge_float64_value_is_non_finite),
        cmocka_unit_test(test_a_failed_save_keeps_the_previous_file),
        cmocka_unit_test(test_save_into_a_missing_directory_is_an_io_error),
        cmocka_unit_test(test_spiral_float16_v1_file_still_loads_and_predicts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
