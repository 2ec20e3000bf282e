/* Saving and loading (nn_save, nn_save_to_buffer, nn_load, nn_load_from_buffer) and model
 * metadata: round trips on every dtype × storage × device, training that continues after a
 * load. Argument checks, the atomic write and the checked-in version-1 file are in
 * test_model_file_io.c; damaged files in test_model_file_corrupt.c. */
#define _XOPEN_SOURCE 700
#include "capi_test_util.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#define PROBE_ROWS 7
#define MAX_PARAMS 2048
#define ROWS 60

static double x64[ROWS * 2];
static int32_t labels[ROWS];

static int setup_data(void **state)
{
    (void)state;
    capi_blobs(x64, labels, ROWS, 21);
    return 0;
}

/* ---- helpers ----------------------------------------------------------------------- */

/* Round to the nearest IEEE binary16 value, ties to even (NumPy's astype(float16)), and
 * widen back; values beyond the largest finite half are returned as infinity. */
static double round_f16(double v)
{
    double a = fabs(v), q;
    int e2;
    if (a < ldexp(1.0, -14)) {               /* subnormal range: multiples of 2^-24 */
        q = nearbyint(ldexp(a, 24));
        return copysign(ldexp(q, -24), v);
    }
    frexp(a, &e2);                           /* a = m·2^e2, m in [0.5, 1) */
    q = nearbyint(ldexp(a, 11 - e2));        /* 11 significant bits */
    q = ldexp(q, e2 - 11);
    if (q > 65504.0) return copysign(HUGE_VAL, v);
    return copysign(q, v);
}

/* What a parameter of a `dtype` model becomes after a save with `storage` and a load. */
static double stored_value(double v, nn_dtype dtype, nn_dtype storage)
{
    switch (storage) {
    case NN_DTYPE_FLOAT16: return round_f16(v);
    case NN_DTYPE_FLOAT32: return (double)(float)v;
    default: (void)dtype; return v;
    }
}

static int device_available(nn_device_kind kind)
{
    size_t n = 0, i;
    CAPI_OK(nn_device_count(&n));
    for (i = 0; i < n; ++i) {
        nn_device_info info;
        nn_device_info_init(&info);
        CAPI_OK(nn_device_get(i, &info));
        if (info.kind == kind && info.available) return 1;
    }
    return 0;
}

static void require_cpu_device(void)
{
    if (!device_available(NN_DEVICE_CPU)) fail_msg("the CPU plugin is not available in this build");
}

static nn_device_kind device_kind_of(nn_model *m)
{
    nn_device_info info;
    nn_device_info_init(&info);
    CAPI_OK(nn_get_device(m, &info));
    return info.kind;
}

static nn_device_kind auto_choice(void)
{
    if (device_available(NN_DEVICE_CUDA)) return NN_DEVICE_CUDA;
    if (device_available(NN_DEVICE_CPU)) return NN_DEVICE_CPU;
    return NN_DEVICE_REFERENCE;
}

/* Removes the scratch directory and everything in it, and frees its path. */
static void remove_temp_dir(char *dir)
{
    assert_int_equal(capi_remove_dir(dir), 0);
    free(dir);
}

/* Number of entries of `dir` other than . and .. */
static size_t dir_entries(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    size_t n = 0;
    assert_non_null(d);
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) ++n;
    closedir(d);
    return n;
}

static unsigned char *read_whole_file(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    unsigned char *buf;
    long n;
    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    n = ftell(f);
    assert_true(n >= 0);
    rewind(f);
    buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *size = (size_t)n;
    return buf;
}

/* nn_save_to_buffer: size query, BUFFER_TOO_SMALL one byte short (size still reported),
 * then the bytes. */
static unsigned char *save_to_buffer(nn_model *m, const nn_save_options *o, size_t *size)
{
    size_t need = 0, got = 0;
    unsigned char *buf;
    CAPI_OK(nn_save_to_buffer(m, NULL, 0, &need, o));
    assert_true(need > 20);
    buf = malloc(need);
    assert_non_null(buf);
    got = 0;
    CAPI_FAIL(NN_ERR_BUFFER_TOO_SMALL, nn_save_to_buffer(m, buf, need - 1, &got, o));
    assert_int_equal(got, need);
    got = 0;
    CAPI_OK(nn_save_to_buffer(m, buf, need, &got, o));
    assert_int_equal(got, need);
    *size = need;
    return buf;
}

static void predict_scores(nn_model *m, size_t cols, size_t outs, double *scores)
{
    double probe[PROBE_ROWS * 8];
    assert_true(cols <= 8);
    capi_probe_inputs(probe, PROBE_ROWS, cols);
    CAPI_OK(nn_predict(m, probe, NN_DTYPE_FLOAT64, PROBE_ROWS, cols, NN_OUTPUT_SCORES, scores,
                       NN_DTYPE_FLOAT64, PROBE_ROWS * outs));
}

/* Parameters with some spread: ordinary values, large ones, tiny ones (float16 subnormals). */
static void set_varied_params(nn_model *m, uint32_t seed)
{
    static const double scale[] = {1.0, 3.7, 1e-3, 3e-6, 120.0, 0.25};
    double p[MAX_PARAMS];
    size_t n = 0, i;
    CAPI_OK(nn_param_count(m, &n));
    assert_true(n <= MAX_PARAMS);
    for (i = 0; i < n; ++i)
        p[i] = sin(1.37 * (double)i + 0.1 * (double)seed) * scale[(i + seed) % 6];
    CAPI_OK(nn_set_params(m, p, n));
}

/* ---- 1. round trips ------------------------------------------------------------------ */

static const size_t net1[] = {3, 4}, net2[] = {2, 10, 3}, net3[] = {4, 8, 6, 3},
                    net4[] = {3, 5, 5, 5, 2};
static const size_t *const nets[] = {net1, net2, net3, net4};
static const size_t net_len[] = {2, 3, 4, 5};
static const nn_device_kind devices[] = {NN_DEVICE_REFERENCE, NN_DEVICE_CPU};
static const nn_dtype storages[] = {NN_DTYPE_MODEL, NN_DTYPE_FLOAT16, NN_DTYPE_FLOAT32,
                                    NN_DTYPE_FLOAT64};

/* The loaded model `l` must hold exactly `expected`, have the original's shape and dtype,
 * and predict bit for bit as `ref` (a model given `expected` by nn_set_params) on both
 * devices. */
static void check_loaded(nn_model *l, nn_model *ref, const double *expected, size_t n_params,
                         nn_dtype dtype, const size_t *sizes, size_t n_sizes)
{
    double got[MAX_PARAMS], s_l[PROBE_ROWS * 8], s_r[PROBE_ROWS * 8];
    size_t count = 0, got_sizes[8], d;
    nn_dtype got_dtype = NN_DTYPE_MODEL;
    CAPI_OK(nn_model_dtype(l, &got_dtype));
    assert_int_equal(got_dtype, dtype);
    CAPI_OK(nn_model_layer_count(l, &count));
    assert_int_equal(count, n_sizes);
    CAPI_OK(nn_model_layer_sizes(l, got_sizes, 8));
    assert_memory_equal(got_sizes, sizes, n_sizes * sizeof(size_t));
    assert_int_equal(device_kind_of(l), auto_choice());
    assert_int_equal(capi_params_of(l, got, MAX_PARAMS), n_params);
    assert_memory_equal(got, expected, n_params * sizeof(double));
    for (d = 0; d < 2; ++d) {
        CAPI_OK(nn_set_device(l, devices[d], 0));
        CAPI_OK(nn_set_device(ref, devices[d], 0));
        assert_int_equal(device_kind_of(l), devices[d]);
        predict_scores(l, sizes[0], sizes[n_sizes - 1], s_l);
        predict_scores(ref, sizes[0], sizes[n_sizes - 1], s_r);
        assert_memory_equal(s_l, s_r, PROBE_ROWS * sizes[n_sizes - 1] * sizeof(double));
    }
}

static void round_trip_case(nn_dtype dtype, nn_dtype storage, size_t net, nn_device_kind dev,
                            const char *dir)
{
    const size_t *sizes = nets[net];
    const size_t n_sizes = net_len[net];
    const uint32_t seed = (uint32_t)(100 + net * 10 + (size_t)storage * 3 + (size_t)dev);
    double orig[MAX_PARAMS], expected[MAX_PARAMS];
    nn_save_options o;
    nn_model *m = capi_model(dtype, sizes, n_sizes, seed), *ref, *l;
    capi_snapshot snap;
    unsigned char *buf, *file;
    size_t size = 0, file_size = 0, n, i;
    char path[512];

    set_varied_params(m, seed);
    CAPI_OK(nn_set_device(m, dev, 0));
    n = capi_params_of(m, orig, MAX_PARAMS);
    for (i = 0; i < n; ++i) {
        expected[i] = stored_value(orig[i], dtype, storage);
        /* independent bounds on the rounding, in case the helper errs like the library */
        if (storage == NN_DTYPE_FLOAT16)
            assert_true(fabs(expected[i] - orig[i]) <= fmax(fabs(orig[i]) * ldexp(1.0, -11), ldexp(1.0, -25)));
        else if (storage == NN_DTYPE_FLOAT32)
            assert_true(fabs(expected[i] - orig[i]) <= fabs(orig[i]) * ldexp(1.0, -24));
        else
            assert_true(expected[i] == orig[i]);
        if (storage == NN_DTYPE_FLOAT32 && dtype == NN_DTYPE_FLOAT32) assert_true(expected[i] == orig[i]);
    }
    ref = capi_model(dtype, sizes, n_sizes, seed);
    CAPI_OK(nn_set_params(ref, expected, n));

    nn_save_options_init(&o);
    o.storage = storage;
    capi_snapshot_take(m, &snap);

    buf = save_to_buffer(m, &o, &size);
    capi_join_path(path, sizeof path, dir, "model.nnm");
    CAPI_OK(nn_save(m, path, &o));
    capi_snapshot_assert_same(m, &snap); /* saving never changes the model */
    file = read_whole_file(path, &file_size);
    assert_int_equal(file_size, size);
    assert_memory_equal(file, buf, size);

    l = capi_load_buffer(buf, size);
    check_loaded(l, ref, expected, n, dtype, sizes, n_sizes);
    nn_destroy(l);
    l = capi_load_file(path);
    check_loaded(l, ref, expected, n, dtype, sizes, n_sizes);
    nn_destroy(l);

    assert_int_equal(unlink(path), 0);
    capi_snapshot_free(&snap);
    free(buf);
    free(file);
    nn_destroy(ref);
    nn_destroy(m);
}

static void round_trips(nn_dtype dtype)
{
    char *dir = capi_make_temp_dir();
    size_t s, net, d;
    require_cpu_device();
    for (s = 0; s < 4; ++s)
        for (net = 0; net < 4; ++net)
            for (d = 0; d < 2; ++d) round_trip_case(dtype, storages[s], net, devices[d], dir);
    assert_int_equal(dir_entries(dir), 0);
    remove_temp_dir(dir);
}

static void test_round_trip_float32_models_every_storage_depth_and_device(void **state)
{
    (void)state;
    round_trips(NN_DTYPE_FLOAT32);
}

static void test_round_trip_float64_models_every_storage_depth_and_device(void **state)
{
    (void)state;
    round_trips(NN_DTYPE_FLOAT64);
}

/* float16 rounds to nearest even, once, from the model's dtype; values just below the
 * overflow threshold round to 65504 and subnormals survive. */
static void test_float16_storage_rounds_to_nearest_even(void **state)
{
    static const size_t sizes[] = {1, 2};
    const double p[] = {65519.0, 1.0 + ldexp(1.0, -11), 1.0 + 3 * ldexp(1.0, -11), ldexp(1.0, -24) * 1.5};
    const double want[] = {65504.0, 1.0, 1.0 + ldexp(1.0, -9), ldexp(1.0, -23)};
    double got[4];
    nn_save_options o;
    unsigned char *buf;
    size_t size = 0, i;
    nn_model *m = capi_model(NN_DTYPE_FLOAT64, sizes, 2, 3), *l;
    (void)state;
    /* the 1-2 net is softmax with 2 outputs: 1×2 W + 2 b = 4 parameters */
    CAPI_OK(nn_set_params(m, p, 4));
    nn_save_options_init(&o);
    o.storage = NN_DTYPE_FLOAT16;
    buf = save_to_buffer(m, &o, &size);
    l = capi_load_buffer(buf, size);
    assert_int_equal(capi_params_of(l, got, MAX_PARAMS), 4);
    for (i = 0; i < 4; ++i) {
        if (got[i] != want[i]) print_error("param %u: got %.17g want %.17g\n", (unsigned)i, got[i], want[i]);
        assert_true(got[i] == want[i]);
        assert_true(round_f16(p[i]) == want[i]); /* the helper agrees */
    }
    free(buf);
    nn_destroy(l);
    nn_destroy(m);
}

/* ---- 2. training continues after a load ------------------------------------------------ */

static nn_status fit(nn_model *m, size_t epochs, nn_fit_report *rep)
{
    nn_fit_options o = capi_fit_options(epochs, 10, 0.5, 2);
    return nn_fit(m, x64, NN_DTYPE_FLOAT64, ROWS, 2, labels, NN_TARGET_CLASS_INDEX, 1, &o, rep);
}

static void assert_same_training(const capi_snapshot *a, const capi_snapshot *b)
{
    assert_int_equal(a->n_params, b->n_params);
    assert_memory_equal(a->params, b->params, a->n_params * sizeof(double));
    assert_int_equal(a->n_records, b->n_records);
    assert_memory_equal(a->records, b->records, a->n_records * sizeof(nn_loss_record));
    assert_int_equal(a->n_epochs, b->n_epochs);
    assert_memory_equal(a->epoch_losses, b->epoch_losses, a->n_epochs * sizeof(double));
    assert_memory_equal(a->pred, b->pred, CAPI_PROBE_ROWS * a->n_outputs * sizeof(double));
}

static void continue_case(nn_device_kind dev, int via_file, const char *dir)
{
    nn_model *a = capi_small_model(NN_DTYPE_FLOAT64, 11), *b;
    nn_fit_report ra, rb;
    capi_snapshot sa, sb;
    char path[512];
    CAPI_OK(nn_set_device(a, dev, 0));
    CAPI_OK(fit(a, 3, NULL));
    if (via_file) {
        nn_save_options o;
        nn_save_options_init(&o); /* include_training_state defaults to 1 */
        assert_int_equal(o.include_training_state, 1);
        capi_join_path(path, sizeof path, dir, "a.nnm");
        CAPI_OK(nn_save(a, path, &o));
        b = capi_load_file(path);
        assert_int_equal(unlink(path), 0);
    } else {
        size_t size = 0;
        unsigned char *buf = save_to_buffer(a, NULL, &size);
        b = capi_load_buffer(buf, size);
        free(buf);
    }
    CAPI_OK(nn_set_device(b, dev, 0));
    capi_snapshot_take(a, &sa);
    capi_snapshot_take(b, &sb);
    assert_int_equal(sa.n_epochs, 3);
    assert_same_training(&sa, &sb);
    capi_snapshot_free(&sa);
    capi_snapshot_free(&sb);

    nn_fit_report_init(&ra);
    nn_fit_report_init(&rb);
    CAPI_OK(fit(a, 3, &ra));
    CAPI_OK(fit(b, 3, &rb));
    assert_memory_equal(&ra.final_loss, &rb.final_loss, sizeof(double));
    capi_snapshot_take(a, &sa);
    capi_snapshot_take(b, &sb);
    assert_int_equal(sa.n_epochs, 6);
    assert_int_equal(sb.records[sb.n_records - 1].epoch, 6);
    assert_same_training(&sa, &sb);
    capi_snapshot_free(&sa);
    capi_snapshot_free(&sb);
    nn_destroy(a);
    nn_destroy(b);
}

static void test_training_continues_after_a_load_exactly_as_without_it(void **state)
{
    char *dir = capi_make_temp_dir();
    (void)state;
    require_cpu_device();
    continue_case(NN_DEVICE_REFERENCE, 0, dir);
    continue_case(NN_DEVICE_REFERENCE, 1, dir);
    continue_case(NN_DEVICE_CPU, 0, dir);
    continue_case(NN_DEVICE_CPU, 1, dir);
    remove_temp_dir(dir);
}

static void test_without_training_state_the_loaded_history_is_empty(void **state)
{
    nn_model *a = capi_small_model(NN_DTYPE_FLOAT64, 12), *b;
    nn_save_options o;
    nn_loss_record rec[4];
    double pa[MAX_PARAMS], pb[MAX_PARAMS];
    size_t size = 0, n = 99, with = 0, without = 0;
    unsigned char *buf;
    (void)state;
    CAPI_OK(fit(a, 3, NULL));
    CAPI_OK(nn_save_to_buffer(a, NULL, 0, &with, NULL));
    nn_save_options_init(&o);
    o.include_training_state = 0;
    buf = save_to_buffer(a, &o, &size);
    without = size;
    assert_true(without < with);
    b = capi_load_buffer(buf, size);
    CAPI_OK(nn_get_loss_history(b, NULL, 0, &n));
    assert_int_equal(n, 0);
    n = 99;
    CAPI_OK(nn_get_epoch_losses(b, NULL, 0, &n));
    assert_int_equal(n, 0);
    assert_int_equal(capi_params_of(b, pb, MAX_PARAMS), capi_params_of(a, pa, MAX_PARAMS));
    assert_memory_equal(pa, pb, capi_params_of(a, pa, MAX_PARAMS) * sizeof(double));
    /* a fresh Trainer: the epoch counter starts again at 1 */
    CAPI_OK(fit(b, 1, NULL));
    CAPI_OK(nn_get_loss_history(b, rec, 4, &n));
    assert_true(n >= 1);
    assert_int_equal(rec[0].epoch, 1);
    free(buf);
    nn_destroy(a);
    nn_destroy(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_float32_models_every_storage_depth_and_device),
        cmocka_unit_test(test_round_trip_float64_models_every_storage_depth_and_device),
        cmocka_unit_test(test_float16_storage_rounds_to_nearest_even),
        cmocka_unit_test(test_training_continues_after_a_load_exactly_as_without_it),
        cmocka_unit_test(test_without_training_state_the_loaded_history_is_empty),
    };
    return cmocka_run_group_tests(tests, setup_data, NULL);
}
