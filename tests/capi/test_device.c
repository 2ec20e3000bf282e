/* Device enumeration and placement: nn_device_count/get, nn_set_device/get_device;
 * the precision setting that travels with a model (nn_set/get_precision). */
#include "capi_test_util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define ROWS 120

static double x64[ROWS * 2];
static int32_t labels[ROWS];

static int setup_data(void **state)
{
    (void)state;
    capi_blobs(x64, labels, ROWS, 41);
    return 0;
}

static nn_device_info info_of(size_t i)
{
    nn_device_info info;
    memset(&info, 0xab, sizeof info);
    nn_device_info_init(&info);
    assert_int_equal(info.struct_size, sizeof info);
    CAPI_OK(nn_device_get(i, &info));
    return info;
}

/* Whether some entry of `kind` is available; its info in *out. */
static int find_available(nn_device_kind kind, nn_device_info *out)
{
    size_t n = 0, i;
    CAPI_OK(nn_device_count(&n));
    for (i = 0; i < n; ++i) {
        nn_device_info info = info_of(i);
        if (info.kind == kind && info.available) {
            if (out) *out = info;
            return 1;
        }
    }
    return 0;
}

static nn_device_info device_of(nn_model *m)
{
    nn_device_info info;
    memset(&info, 0, sizeof info);
    info.struct_size = sizeof info;
    CAPI_OK(nn_get_device(m, &info));
    return info;
}

static nn_device_kind auto_choice(void)
{
    if (find_available(NN_DEVICE_CUDA, NULL)) return NN_DEVICE_CUDA;
    if (find_available(NN_DEVICE_CPU, NULL)) return NN_DEVICE_CPU;
    return NN_DEVICE_REFERENCE;
}

static void test_nn_device_count_lists_at_least_the_reference(void **state)
{
    size_t n = 0, i, references = 0;
    (void)state;
    CAPI_OK(nn_device_count(&n));
    assert_true(n >= 1);
    for (i = 0; i < n; ++i) {
        nn_device_info info = info_of(i);
        assert_true(info.kind == NN_DEVICE_CPU || info.kind == NN_DEVICE_CUDA ||
                    info.kind == NN_DEVICE_REFERENCE);
        assert_true(info.index >= 0);
        assert_true(strlen(info.name) > 0 && strlen(info.name) < sizeof info.name);
        assert_true(strlen(info.reason) < sizeof info.reason);
        if (info.available)
            assert_string_equal(info.reason, "");
        else
            assert_true(strlen(info.reason) > 0); /* says why not */
        if (info.kind == NN_DEVICE_REFERENCE) {
            ++references;
            assert_true(info.available);
        }
    }
    assert_int_equal(references, 1);
}

static void test_nn_device_get_rejects_bad_arguments(void **state)
{
    nn_device_info info;
    size_t n = 0;
    (void)state;
    CAPI_OK(nn_device_count(&n));
    memset(&info, 0, sizeof info);
    info.struct_size = sizeof info;
    CAPI_FAIL(NN_ERR_NULL_POINTER, nn_device_count(NULL));
    CAPI_FAIL(NN_ERR_NULL_POINTER, nn_device_get(0, NULL));
    CAPI_FAIL(NN_ERR_INVALID_ARGUMENT, nn_device_get(n, &info));
    CAPI_FAIL(NN_ERR_INVALID_ARGUMENT, nn_device_get(SIZE_MAX, &info));
    info.struct_size = 0;
    CAPI_FAIL(NN_ERR_STRUCT_SIZE, nn_device_get(0, &info));
    info.struct_size = sizeof info + 1000;
    CAPI_FAIL(NN_ERR_STRUCT_SIZE, nn_device_get(0, &info));
}

static void test_nn_create_starts_on_the_auto_choice(void **state)
{
    nn_model *m = capi_small_model(NN_DTYPE_FLOAT64, 1);
    nn_device_info dev = device_of(m);
    (void)state;
    assert_int_equal(dev.kind, auto_choice());
    assert_true(dev.available);
    assert_true(strlen(dev.name) > 0);
    nn_destroy(m);
}

static void test_nn_get_device_rejects_bad_arguments(void **state)
{
    nn_model *m = capi_small_model(NN_DTYPE_FLOAT64, 1);
    nn_device_info info;
    (void)state;
    memset(&info, 0, sizeof info);
    info.struct_size = sizeof info;
    CAPI_FAIL(NN_ERR_NULL_POINTER, nn_get_device(NULL, &info));
    CAPI_FAIL(NN_ERR_NULL_POINTER, nn_get_device(m, NULL));
    info.struct_size = 0;
    CAPI_FAIL(NN_ERR_STRUCT_SIZE, nn_get_device(m, &info));
    info.struct_size = SIZE_MAX;
    CAPI_FAIL(NN_ERR_STRUCT_SIZE, nn_get_device(m, &info));
    nn_destroy(m);
}

static void test_nn_set_device_moves_parameters_and_histories(void **state)
{
    nn_model *m = capi_small_model(NN_DTYPE_FLOAT64, 1);
    nn_fit_options o;
    capi_snapshot before, after;
    nn_device_info dev;
    (void)state;
    nn_fit_options_init(&o);
    o.epochs = 2;
    o.batch_size = 20;
    o.report_interval = 2;
    CAPI_OK(nn_fit(m, x64, NN_DTYPE_FLOAT64, ROWS, 2, labels, NN_TARGET_CLASS_INDEX, 1, &o, NULL));
    capi_snapshot_take(m, &before);
    CAPI_OK(nn_set_device(m, NN_DEVICE_REFERENCE, 0));
    dev = device_of(m);
    assert_int_equal(dev.kind, NN_DEVICE_REFERENCE);
    assert_int_equal(dev.index, 0);
    capi_snapshot_take(m, &after);
    assert_memory_equal(after.params, before.params, before.n_params * sizeof(double));
    assert_int_equal(after.n_records, before.n_records);
    assert_memory_equal(after.records, before.records, before.n_records * sizeof(nn_loss_record));
    assert_int_equal(after.n_epochs, before.n_epochs);
    assert_memory_equal(after.epoch_losses, before.epoch_losses, before.n_epochs * sizeof(double));
    /* Predictions on another device agree closely, not necessarily bit for bit. */
    {
        size_t i;
        for (i = 0; i < CAPI_PROBE_ROWS * before.n_outputs; ++i)
            assert_true(capi_close(after.pred[i], before.pred[i], 1e-12));
    }
    CAPI_OK(nn_set_device(m, NN_DEVICE_AUTO, 0));
    dev = device_of(m);
    assert_int_equal(dev.kind, auto_choice());
    capi_snapshot_free(&before);
    capi_snapshot_free(&after);
    nn_destroy(m);
}

static void test_nn_set_device_cuda_without_a_gpu_fails_and_changes_nothing(void **state)
{
    nn_model *m = capi_small_model(NN_DTYPE_FLOAT64, 1);
    capi_snapshot snap;
    (void)state;
    if (find_available(NN_DEVICE_CUDA, NULL)) {
        nn_destroy(m);
        skip(); /* this machine has a usable GPU */
    }
    capi_snapshot_take(m, &snap);
    CAPI_FAIL(NN_ERR_DEVICE_UNAVAILABLE, nn_set_device(m, NN_DEVICE_CUDA, 0));
    capi_snapshot_assert_same(m, &snap);
    capi_snapshot_free(&snap);
    nn_destroy(m);
}

static void test_nn_set_device_rejects_bad_arguments_and_missing_devices(void **state)
{
    nn_model *m = capi_small_model(NN_DTYPE_FLOAT64, 1);
    capi_snapshot snap;
    (void)state;
    capi_snapshot_take(m, &snap);
    CAPI_FAIL(NN_ERR_NULL_POINTER, nn_set_device(NULL, NN_DEVICE_REFERENCE, 0));
    CAPI_FAIL(NN_ERR_INVALID_ARGUMENT, nn_set_device(m, (nn_device_kind)7, 0));
    CAPI_FAIL(NN_ERR_INVALID_ARGUMENT, nn_set_device(m, (nn_device_kind)-1, 0));
    CAPI_FAIL(NN_ERR_INVALID_ARGUMENT, nn_set_device(m, NN_DEVICE_CPU, -1));
    CAPI_FAIL(NN_ERR_INVALID_ARGUMENT, nn_set_device(m, NN_DEVICE_CUDA, -1));
    CAPI_FAIL(NN_ERR_DEVICE_UNAVAILABLE, nn_set_device(m, NN_DEVICE_CUDA, 1000));
    CAPI_FAIL2(NN_ERR_DEVICE_UNAVAILABLE, NN_ERR_INVALID_ARGUMENT,
               nn_set_device(m, NN_DEVICE_REFERENCE, 1));
    capi_snapshot_assert_same(m, &snap);
    capi_snapshot_free(&snap);
    nn_destroy(m);
}

static void train_on(nn_device_kind kind, capi_snapshot *out, nn_fit_report *rep)
{
    nn_model *m = capi_small_model(NN_DTYPE_FLOAT64, 77);
    nn_fit_options o;
    nn_fit_options_init(&o);
    o.epochs = 20;
    o.batch_size = 12;
    o.learning_rate = 1.0;
    o.report_interval = 3;
    CAPI_OK(nn_set_device(m, kind, 0));
    nn_fit_report_init(rep);
    CAPI_OK(nn_fit(m, x64, NN_DTYPE_FLOAT64, ROWS, 2, labels, NN_TARGET_CLASS_INDEX, 1, &o, rep));
    capi_snapshot_take(m, out);
    nn_destroy(m);
}

static void test_nn_reference_device_trains_like_the_cpu_device(void **state)
{
    capi_snapshot ref, cpu;
    nn_fit_report rep_ref, rep_cpu;
    nn_device_info info;
    size_t i;
    (void)state;
    if (!find_available(NN_DEVICE_CPU, &info)) {
        size_t n = 0, k;
        CAPI_OK(nn_device_count(&n));
        for (k = 0; k < n; ++k) {
            nn_device_info e = info_of(k);
            if (e.kind == NN_DEVICE_CPU) print_error("cpu entry: %s: %s\n", e.name, e.reason);
        }
        fail_msg("the CPU plugin is not available in this build");
    }
    train_on(NN_DEVICE_REFERENCE, &ref, &rep_ref);
    train_on(NN_DEVICE_CPU, &cpu, &rep_cpu);
    assert_int_equal(rep_ref.device_kind, NN_DEVICE_REFERENCE);
    assert_int_equal(rep_cpu.device_kind, NN_DEVICE_CPU);
    for (i = 0; i < ref.n_params; ++i) {
        if (!capi_close(ref.params[i], cpu.params[i], 1e-9))
            print_error("param %u: reference %.17g cpu %.17g\n", (unsigned)i, ref.params[i],
                        cpu.params[i]);
        assert_true(capi_close(ref.params[i], cpu.params[i], 1e-9));
    }
    assert_int_equal(ref.n_records, cpu.n_records);
    for (i = 0; i < ref.n_records; ++i) {
        assert_int_equal(ref.records[i].epoch, cpu.records[i].epoch);
        assert_int_equal(ref.records[i].iteration, cpu.records[i].iteration);
        assert_true(capi_close(ref.records[i].loss, cpu.records[i].loss, 1e-9));
    }
    assert_int_equal(ref.n_epochs, cpu.n_epochs);
    for (i = 0; i < ref.n_epochs; ++i)
        assert_true(capi_close(ref.epoch_losses[i], cpu.epoch_losses[i], 1e-9));
    capi_snapshot_free(&ref);
    capi_snapshot_free(&cpu);
}

/* The model's own shuffle stream and epoch counter travel with it. */
static void test_nn_set_device_mid_training_continues_the_same_run(void **state)
{
    nn_model *a = capi_small_model(NN_DTYPE_FLOAT64, 5), *b = capi_small_model(NN_DTYPE_FLOAT64, 5);
    nn_fit_options o;
    capi_snapshot sa, sb;
    size_t i;
    (void)state;
    nn_fit_options_init(&o);
    o.epochs = 3;
    o.batch_size = 12;
    o.learning_rate = 1.0;
    o.report_interval = 5;
    CAPI_OK(nn_set_device(a, NN_DEVICE_REFERENCE, 0));
    CAPI_OK(nn_set_device(b, NN_DEVICE_REFERENCE, 0));
    CAPI_OK(nn_fit(a, x64, NN_DTYPE_FLOAT64, ROWS, 2, labels, NN_TARGET_CLASS_INDEX, 1, &o, NULL));
    CAPI_OK(nn_fit(b, x64, NN_DTYPE_FLOAT64, ROWS, 2, labels, NN_TARGET_CLASS_INDEX, 1, &o, NULL));
    CAPI_OK(nn_set_device(b, NN_DEVICE_AUTO, 0));
    CAPI_OK(nn_set_device(b, NN_DEVICE_REFERENCE, 0));
    CAPI_OK(nn_fit(a, x64, NN_DTYPE_FLOAT64, ROWS, 2, labels, NN_TARGET_CLASS_INDEX, 1, &o, NULL));
    CAPI_OK(nn_fit(b, x64, NN_DTYPE_FLOAT64, ROWS, 2, labels, NN_TARGET_CLASS_INDEX, 1, &o, NULL));
    capi_snapshot_take(a, &sa);
    capi_snapshot_take(b, &sb);
    /* Both ran every step on the reference device, so they agree bit for bit. */
    assert_memory_equal(sa.params, sb.params, sa.n_params * sizeof(double));
    assert_int_equal(sa.n_epochs, 6);
    assert_int_equal(sb.n_epochs, 6);
    for (i = 0; i < sa.n_records; ++i) assert_int_equal(sa.records[i].epoch, sb.records[i].epoch);
    capi_snapshot_free(&sa);
    capi_snapshot_free(&sb);
    nn_destroy(a);
    nn_destroy(b);
}

static nn_precision precision_of(nn_model *m)
{
    nn_precision p = (nn_precision)-7;
    CAPI_OK(nn_get_precision(m, &p));
    return p;
}

static void test_nn_precision_starts_strict_and_keeps_what_was_set(void **state)
{
    nn_model *m = capi_small_model(NN_DTYPE_FLOAT32, 1);
    const nn_precision all[] = {NN_PRECISION_TF32, NN_PRECISION_FLOAT16, NN_PRECISION_BFLOAT16, NN_PRECISION_STRICT};
    size_t i;
    (void)state;
    assert_int_equal(precision_of(m), NN_PRECISION_STRICT);
    for (i = 0; i < sizeof all / sizeof all[0]; ++i) {
        CAPI_OK(nn_set_precision(m, all[i]));
        assert_int_equal(precision_of(m), all[i]);
    }
    nn_destroy(m);
}

static void test_nn_set_precision_rejects_bad_arguments_and_float64(void **state)
{
    nn_model *m32 = capi_small_model(NN_DTYPE_FLOAT32, 1), *m64 = capi_small_model(NN_DTYPE_FLOAT64, 1);
    nn_precision p;
    capi_snapshot snap;
    (void)state;
    CAPI_OK(nn_set_precision(m32, NN_PRECISION_TF32));
    CAPI_FAIL(NN_ERR_NULL_POINTER, nn_set_precision(NULL, NN_PRECISION_TF32));
    CAPI_FAIL(NN_ERR_NULL_POINTER, nn_get_precision(NULL, &p));
    CAPI_FAIL(NN_ERR_NULL_POINTER, nn_get_precision(m32, NULL));
    CAPI_FAIL(NN_ERR_INVALID_ARGUMENT, nn_set_precision(m32, (nn_precision)4));
    CAPI_FAIL(NN_ERR_INVALID_ARGUMENT, nn_set_precision(m32, (nn_precision)-1));
    assert_int_equal(precision_of(m32), NN_PRECISION_TF32);
    /* float64 models compute strictly, always: asking for less is refused, not ignored. */
    capi_snapshot_take(m64, &snap);
    CAPI_FAIL(NN_ERR_UNSUPPORTED, nn_set_precision(m64, NN_PRECISION_TF32));
    CAPI_FAIL(NN_ERR_UNSUPPORTED, nn_set_precision(m64, NN_PRECISION_BFLOAT16));
    assert_int_equal(precision_of(m64), NN_PRECISION_STRICT);
    CAPI_OK(nn_set_precision(m64, NN_PRECISION_STRICT));
    capi_snapshot_assert_same(m64, &snap);
    capi_snapshot_free(&snap);
    nn_destroy(m32);
    nn_destroy(m64);
}

/* The CPU plugin and the reference have no reduced-precision products: a float32 net
 * whose hidden products are big enough for BLAS trains bit for bit as strictly. */
static void test_nn_precision_changes_nothing_on_the_cpu_and_reference(void **state)
{
    const size_t sizes[] = {2, 64, 64, 3};
    const nn_device_kind kinds[] = {NN_DEVICE_CPU, NN_DEVICE_REFERENCE};
    const nn_precision reduced[] = {NN_PRECISION_TF32, NN_PRECISION_FLOAT16, NN_PRECISION_BFLOAT16};
    nn_fit_options o = capi_fit_options(2, 30, 0.5, 1);
    size_t k, i;
    (void)state;
    for (k = 0; k < 2; ++k) {
        capi_snapshot strict;
        nn_model *m = capi_model(NN_DTYPE_FLOAT32, sizes, 4, 9);
        if (kinds[k] == NN_DEVICE_CPU && !find_available(NN_DEVICE_CPU, NULL)) fail_msg("no CPU plugin");
        CAPI_OK(nn_set_device(m, kinds[k], 0));
        CAPI_OK(nn_fit(m, x64, NN_DTYPE_FLOAT64, ROWS, 2, labels, NN_TARGET_CLASS_INDEX, 1, &o, NULL));
        capi_snapshot_take(m, &strict);
        nn_destroy(m);
        for (i = 0; i < 3; ++i) {
            capi_snapshot got;
            m = capi_model(NN_DTYPE_FLOAT32, sizes, 4, 9);
            CAPI_OK(nn_set_device(m, kinds[k], 0));
            CAPI_OK(nn_set_precision(m, reduced[i]));
            CAPI_OK(nn_fit(m, x64, NN_DTYPE_FLOAT64, ROWS, 2, labels, NN_TARGET_CLASS_INDEX, 1, &o, NULL));
            capi_snapshot_take(m, &got);
            assert_memory_equal(got.params, strict.params, strict.n_params * sizeof(double));
            assert_memory_equal(got.pred, strict.pred, CAPI_PROBE_ROWS * strict.n_outputs * sizeof(double));
            capi_snapshot_free(&got);
            nn_destroy(m);
        }
        capi_snapshot_free(&strict);
    }
}

/* The setting belongs to the model: it survives moves, and is not saved. */
static void test_nn_precision_moves_with_the_model_and_is_not_saved(void **state)
{
    nn_model *m = capi_small_model(NN_DTYPE_FLOAT32, 3), *loaded = NULL;
    unsigned char *bytes;
    size_t size = 0;
    (void)state;
    CAPI_OK(nn_set_precision(m, NN_PRECISION_FLOAT16));
    CAPI_OK(nn_set_device(m, NN_DEVICE_REFERENCE, 0));
    assert_int_equal(precision_of(m), NN_PRECISION_FLOAT16);
    CAPI_OK(nn_set_device(m, NN_DEVICE_AUTO, 0));
    assert_int_equal(precision_of(m), NN_PRECISION_FLOAT16);
    CAPI_OK(nn_save_to_buffer(m, NULL, 0, &size, NULL));
    bytes = malloc(size);
    assert_non_null(bytes);
    CAPI_OK(nn_save_to_buffer(m, bytes, size, &size, NULL));
    CAPI_OK(nn_load_from_buffer(&loaded, bytes, size));
    assert_int_equal(precision_of(loaded), NN_PRECISION_STRICT);
    assert_int_equal(precision_of(m), NN_PRECISION_FLOAT16);
    free(bytes);
    nn_destroy(loaded);
    nn_destroy(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nn_device_count_lists_at_least_the_reference),
        cmocka_unit_test(test_nn_device_get_rejects_bad_arguments),
        cmocka_unit_test(test_nn_create_starts_on_the_auto_choice),
        cmocka_unit_test(test_nn_get_device_rejects_bad_arguments),
        cmocka_unit_test(test_nn_set_device_moves_parameters_and_histories),
        cmocka_unit_test(test_nn_set_device_cuda_without_a_gpu_fails_and_changes_nothing),
        cmocka_unit_test(test_nn_set_device_rejects_bad_arguments_and_missing_devices),
        cmocka_unit_test(test_nn_reference_device_trains_like_the_cpu_device),
        cmocka_unit_test(test_nn_set_device_mid_training_continues_the_same_run),
        cmocka_unit_test(test_nn_precision_starts_strict_and_keeps_what_was_set),
        cmocka_unit_test(test_nn_set_precision_rejects_bad_arguments_and_float64),
        cmocka_unit_test(test_nn_precision_changes_nothing_on_the_cpu_and_reference),
        cmocka_unit_test(test_nn_precision_moves_with_the_model_and_is_not_saved),
    };
    return cmocka_run_group_tests(tests, setup_data, NULL);
}
