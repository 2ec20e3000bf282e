/* nn_create / nn_destroy, layer queries, initial weights, get/set params. */
#include "capi_test_util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const size_t sizes_2_10_3[] = {2, 10, 3};

static nn_model_desc book_desc(void)
{
    nn_model_desc desc;
    nn_model_desc_init(&desc);
    desc.n_layer_sizes = 3;
    desc.layer_sizes = sizes_2_10_3;
    return desc;
}

/* A pointer value that is not NULL, to see that failures write NULL to *out. */
static nn_model *sentinel_model(void)
{
    static int dummy;
    return (nn_model *)(void *)&dummy;
}

/* nn_create must fail with `want`, set *out to NULL and not draw from desc->rng. */
static void expect_create_fails(nn_status want, nn_model_desc desc)
{
    nn_rng *rng = capi_rng(77), *twin = capi_rng(77);
    nn_model *model = sentinel_model();
    desc.rng = rng;
    CAPI_FAIL(want, nn_create(&model, &desc));
    assert_null(model);
    capi_assert_rng_in_step(rng, twin);
    nn_rng_destroy(rng);
    nn_rng_destroy(twin);
}

static void test_nn_model_desc_init_sets_the_documented_defaults(void **state)
{
    nn_model_desc desc;
    (void)state;
    memset(&desc, 0xAB, sizeof desc);
    nn_model_desc_init(&desc);
    assert_int_equal(desc.struct_size, sizeof desc);
    assert_int_equal(desc.n_layer_sizes, 0);
    assert_null(desc.layer_sizes);
    assert_int_equal(desc.hidden_activation, NN_ACTIVATION_SIGMOID);
    assert_int_equal(desc.loss, NN_LOSS_SOFTMAX_CROSS_ENTROPY);
    assert_int_equal(desc.dtype, NN_DTYPE_FLOAT32);
    assert_int_equal(desc.init, NN_INIT_NORMAL);
    assert_true(desc.init_std == 0.01);
    assert_int_equal(desc.seed, 1984);
    assert_null(desc.rng);
    nn_model_desc_init(NULL); /* no-op */
}

static void test_nn_destroy_null_is_a_noop(void **state)
{
    (void)state;
    nn_destroy(NULL);
}

static void test_nn_create_rejects_null_pointers(void **state)
{
    nn_model_desc desc = book_desc();
    nn_model *model = sentinel_model();
    (void)state;
    CAPI_FAIL(NN_ERR_NULL_POINTER, nn_create(NULL, &desc));
    CAPI_FAIL(NN_ERR_NULL_POINTER, nn_create(&model, NULL));
    assert_null(model);
    desc.layer_sizes = NULL;
    expect_create_fails(NN_ERR_NULL_POINTER, desc);
}

static void test_nn_create_rejects_wrong_struct_size(void **state)
{
    nn_model_desc desc = book_desc();
    (void)state;
    desc.struct_size = 0;
    expect_create_fails(NN_ERR_STRUCT_SIZE, desc);
    desc.struct_size = sizeof desc + 4096;
    expect_create_fails(NN_ERR_STRUCT_SIZE, desc);
    desc.struct_size = (size_t)-1;
    expect_create_fails(NN_ERR_STRUCT_SIZE, desc);
}

static void test_nn_create_rejects_fewer_than_two_sizes_and_zero_sizes(void **state)
{
    static const size_t zero_hidden[] = {2, 0, 3}, zero_out[] = {2, 10, 0}, zero_in[] = {0, 3};
    nn_model_desc desc = book_desc();
    (void)state;
    desc.n_layer_sizes = 0;
    expect_create_fails(NN_ERR_INVALID_ARGUMENT, desc);
    desc.n_layer_sizes = 1;
    expect_create_fails(NN_ERR_INVALID_ARGUMENT, desc);
    desc.n_layer_sizes = 3;
    desc.layer_sizes = zero_hidden;
    expect_create_fails(NN_ERR_INVALID_ARGUMENT, desc);
    desc.layer_sizes = zero_out;
    expect_create_fails(NN_ERR_INVALID_ARGUMENT, desc);
    desc.n_layer_sizes = 2;
    desc.layer_sizes = zero_in;
    expect_create_fails(NN_ERR_INVALID_ARGUMENT, desc);
}

static void test_nn_create_rejects_unknown_enums(void **state)
{
    nn_model_desc desc = book_desc();
    (void)state;
    desc.hidden_activation = (nn_activation)7;
    expect_create_fails(NN_ERR_INVALID_ARGUMENT, desc);
    desc = book_desc();
    desc.loss = (nn_loss)7;
    expect_create_fails(NN_ERR_INVALID_ARGUMENT, desc);
    desc = book_desc();
    desc.dtype = (nn_dtype)7;
    expect_create_fails(NN_ERR_INVALID_ARGUMENT, desc);
    desc = book_desc();
    desc.init = (nn_init)7;
    expect_create_fails(NN_ERR_INVALID_ARGUMENT, desc);
    desc = book_desc();
    desc.dtype = (nn_dtype)-1;
    expect_create_fails(NN_ERR_INVALID_ARGUMENT, desc);
}

static void test_nn_create_rejects_bad_init_std(void **state)
{
    nn_model_desc desc = book_desc();
    (void)state;
    desc.init_std = -0.01;
    expect_create_fails(NN_ERR_BAD_HYPERPARAMETER, desc);
    desc.init_std = NAN;
    expect_create_fails(NN_ERR_BAD_HYPERPARAMETER, desc);
    desc.init_std = INFINITY;
    expect_create_fails(NN_ERR_BAD_HYPERPARAMETER, desc);
}

static void test_nn_create_rejects_overflowing_layer_sizes(void **state)
{
    static const size_t wraps[] = {SIZE_MAX / 2, 4, 3};
    static const size_t wraps_to_zero[] = {(size_t)1 << 32, (size_t)1 << 32, 3};
    nn_model_desc desc = book_desc();
    (void)state;
    desc.layer_sizes = wraps;
    expect_create_fails(NN_ERR_SIZE_OVERFLOW, desc);
    desc.layer_sizes = wraps_to_zero;
    expect_create_fails(NN_ERR_SIZE_OVERFLOW, desc);
}

/* 2^48 parameters: the count fits in size_t but the memory does not exist. libnn
 * refuses it before allocating, so this holds under the sanitizers too. */
static void test_nn_create_reports_out_of_memory_for_impossible_models(void **state)
{
    static const size_t huge[] = {(size_t)1 << 24, (size_t)1 << 24, 2};
    nn_model_desc desc = book_desc();
    (void)state;
    desc.layer_sizes = huge;
    {
        nn_rng *rng = capi_rng(77), *twin = capi_rng(77);
        nn_model *model = sentinel_model();
        desc.rng = rng;
        CAPI_FAIL2(NN_ERR_OUT_OF_MEMORY, NN_ERR_SIZE_OVERFLOW, nn_create(&model, &desc));
        assert_null(model);
        capi_assert_rng_in_step(rng, twin);
        nn_rng_destroy(rng);
        nn_rng_destroy(twin);
    }
}

static void test_nn_model_queries_describe_the_model(void **state)
{
    static const size_t sizes[] = {4, 7, 5, 3};
    nn_model *model = capi_model(NN_DTYPE_FLOAT64, sizes, 4, 1);
    size_t count = 0, got[5] = {0, 0, 0, 0, 99};
    nn_dtype dtype = NN_DTYPE_FLOAT32;
    (void)state;
    CAPI_OK(nn_model_layer_count(model, &count));
    assert_int_equal(count, 4);
    CAPI_OK(nn_model_layer_sizes(model, got, 5));
    assert_memory_equal(got, sizes, sizeof sizes);
    assert_int_equal(got[4], 99);
    CAPI_OK(nn_model_dtype(model, &dtype));
    assert_int_equal(dtype, NN_DTYPE_FLOAT64);
    CAPI_OK(nn_param_count(model, &count));
    assert_int_equal(count, 4 * 7 + 7 + 7 * 5 + 5 + 5 * 3 + 3);
    nn_destroy(model);
}

static void test_nn_create_copies_the_layer_sizes(void **state)
{
    size_t sizes[3] = {2, 10, 3}, got[3];
    nn_model *model = capi_model(NN_DTYPE_FLOAT32, sizes, 3, 1);
    nn_dtype dtype = NN_DTYPE_FLOAT64;
    (void)state;
    sizes[1] = 1000;
    CAPI_OK(nn_model_layer_sizes(model, got, 3));
    assert_memory_equal(got, sizes_2_10_3, sizeof got);
    CAPI_OK(nn_model_dtype(model, &dtype));
    assert_int_equal(dtype, NN_DTYPE_FLOAT32);
    nn_destroy(model);
}

static void test_nn_model_queries_reject_null_and_small_buffers(void **state)
{
    nn_model *model = capi_small_model(NN_DTYPE_FLOAT64, 1);
    size_t count, got[3] = {7, 7, 7}, n_params;
    nn_dtype dtype;
    double params[64];
    capi_snapshot snap;
    (void)state;
    capi_snapshot_take(model, &snap);
    CAPI_FAIL(NN_ERR_NULL_POINTER, nn_model_layer_count(NULL, &count));
    CAPI_FAIL(NN_ERR_NULL_POINTER, nn_model_layer_count(model, NULL));
    CAPI_FAIL(NN_ERR_NULL_POINTER, nn_model_layer_sizes(NULL, got, 3));
    CAPI_FAIL(NN_ERR_NULL_POINTER, nn_model_layer_sizes(model, NULL, 3));
    CAPI_FAIL(NN_ERR_BUFFER_TOO_SMALL, nn_model_layer_sizes(model, got, 2));
    CAPI_FAIL(NN_ERR_NULL_POINTER, nn_model_dtype(NULL, &dtype));
    CAPI_FAIL(NN_ERR_NULL_POINTER, nn_model_dtype(model, NULL));
    CAPI_FAIL(NN_ERR_NULL_POINTER, nn_param_count(NULL, &count));
    CAPI_FAIL(NN_ERR_NULL_POINTER, nn_param_count(model, NULL));
    CAPI_OK(nn_param_count(model, &n_params));
    assert_true(n_params <= 64);
    CAPI_FAIL(NN_ERR_NULL_POINTER, nn_get_params(NULL, params, n_params));
    CAPI_FAIL(NN_ERR_NULL_POINTER, nn_get_params(model, NULL, n_params));
    CAPI_FAIL(NN_ERR_BUFFER_TOO_SMALL, nn_get_params(model, params, n_params - 1));
    CAPI_FAIL(NN_ERR_BUFFER_TOO_SMALL, nn_get_params(model, params, 0));
    capi_snapshot_assert_same(model, &snap);
    capi_snapshot_free(&snap);
    nn_destroy(model);
}

/* The book: W1 = 0.01·randn(2, 10), b1 = 0, W2 = 0.01·randn(10, 3), b2 = 0, seed 1984
 * stream continued after the spiral's 300 gaussians. */
static void test_nn_create_draws_the_book_initial_weights_from_a_shared_stream(void **state)
{
    nn_model_desc desc = book_desc();
    nn_rng *rng = capi_rng(1984), *twin = capi_rng(1984);
    nn_model *model = NULL;
    double skip[300], g[50], params[63];
    size_t i;
    (void)state;
    CAPI_OK(nn_rng_randn(rng, skip, 300));
    CAPI_OK(nn_rng_randn(twin, skip, 300));
    desc.dtype = NN_DTYPE_FLOAT64;
    desc.seed = 12345; /* ignored when a stream is given */
    desc.rng = rng;
    CAPI_OK(nn_create(&model, &desc));
    CAPI_OK(nn_rng_randn(twin, g, 50));
    capi_assert_rng_in_step(rng, twin); /* exactly 50 gaussians drawn */
    CAPI_OK(nn_get_params(model, params, 63));
    for (i = 0; i < 20; ++i) assert_true(params[i] == 0.01 * g[i]);
    for (i = 20; i < 30; ++i) assert_true(params[i] == 0.0);
    for (i = 0; i < 30; ++i) assert_true(params[30 + i] == 0.01 * g[20 + i]);
    for (i = 60; i < 63; ++i) assert_true(params[i] == 0.0);
    nn_rng_destroy(rng);
    nn_rng_destroy(twin);
    nn_destroy(model);
}

static void test_nn_create_without_stream_uses_its_seed(void **state)
{
    nn_model_desc desc = book_desc();
    nn_model *model = NULL;
    nn_rng *twin = capi_rng(321);
    double g[50], params[63];
    size_t i;
    (void)state;
    desc.dtype = NN_DTYPE_FLOAT64;
    desc.seed = 321;
    desc.init_std = 0.5;
    CAPI_OK(nn_create(&model, &desc));
    CAPI_OK(nn_rng_randn(twin, g, 50));
    CAPI_OK(nn_get_params(model, params, 63));
    for (i = 0; i < 20; ++i) assert_true(params[i] == 0.5 * g[i]);
    for (i = 0; i < 30; ++i) assert_true(params[30 + i] == 0.5 * g[20 + i]);
    nn_rng_destroy(twin);
    nn_destroy(model);
}

static void test_nn_create_float32_rounds_the_float64_draws_once(void **state)
{
    nn_model_desc desc = book_desc();
    nn_model *model = NULL;
    nn_rng *twin = capi_rng(1984);
    double g[50], params[63];
    size_t i;
    (void)state;
    desc.dtype = NN_DTYPE_FLOAT32;
    CAPI_OK(nn_create(&model, &desc));
    CAPI_OK(nn_rng_randn(twin, g, 50));
    CAPI_OK(nn_get_params(model, params, 63));
    for (i = 0; i < 20; ++i) assert_true(params[i] == (double)(float)(0.01 * g[i]));
    for (i = 0; i < 30; ++i) assert_true(params[30 + i] == (double)(float)(0.01 * g[20 + i]));
    nn_rng_destroy(twin);
    nn_destroy(model);
}

static void test_nn_create_xavier_and_he_scale_by_fan_in(void **state)
{
    nn_model_desc desc = book_desc();
    nn_model *xavier = NULL, *he = NULL;
    nn_rng *twin = capi_rng(1984);
    double g[50], px[63], ph[63];
    size_t i;
    (void)state;
    desc.dtype = NN_DTYPE_FLOAT64;
    desc.init = NN_INIT_XAVIER;
    CAPI_OK(nn_create(&xavier, &desc));
    desc.init = NN_INIT_HE;
    CAPI_OK(nn_create(&he, &desc));
    CAPI_OK(nn_rng_randn(twin, g, 50));
    CAPI_OK(nn_get_params(xavier, px, 63));
    CAPI_OK(nn_get_params(he, ph, 63));
    for (i = 0; i < 20; ++i) {
        assert_true(capi_close(px[i], g[i] / sqrt(2.0), 1e-15));
        assert_true(capi_close(ph[i], g[i] * sqrt(2.0 / 2.0), 1e-15));
    }
    for (i = 0; i < 30; ++i) {
        assert_true(capi_close(px[30 + i], g[20 + i] / sqrt(10.0), 1e-15));
        assert_true(capi_close(ph[30 + i], g[20 + i] * sqrt(2.0 / 10.0), 1e-15));
    }
    nn_rng_destroy(twin);
    nn_destroy(xavier);
    nn_destroy(he);
}

static void test_nn_create_same_seed_gives_identical_models(void **state)
{
    nn_model *a = capi_small_model(NN_DTYPE_FLOAT32, 99), *b = capi_small_model(NN_DTYPE_FLOAT32, 99);
    nn_model *c = capi_small_model(NN_DTYPE_FLOAT32, 100);
    double pa[39], pb[39], pc[39];
    (void)state;
    CAPI_OK(nn_get_params(a, pa, 39));
    CAPI_OK(nn_get_params(b, pb, 39));
    CAPI_OK(nn_get_params(c, pc, 39));
    assert_memory_equal(pa, pb, sizeof pa);
    assert_memory_not_equal(pa, pc, sizeof pa);
    nn_destroy(a);
    nn_destroy(b);
    nn_destroy(c);
}

static void test_nn_set_params_round_trips_exactly_in_float64(void **state)
{
    nn_model *model = capi_small_model(NN_DTYPE_FLOAT64, 1);
    double in[39], out[40];
    size_t i;
    (void)state;
    for (i = 0; i < 39; ++i) in[i] = 0.1 * (double)i - 1.0 / 3.0 + 1e-17 * (double)i;
    in[5] = 5e-324; /* a subnormal survives too */
    out[39] = 42.0;
    CAPI_OK(nn_set_params(model, in, 39));
    CAPI_OK(nn_get_params(model, out, 40));
    assert_memory_equal(in, out, sizeof in);
    assert_true(out[39] == 42.0);
    nn_destroy(model);
}

static void test_nn_set_params_rounds_to_float32(void **state)
{
    nn_model *model = capi_small_model(NN_DTYPE_FLOAT32, 1);
    double in[39], out[39];
    size_t i;
    (void)state;
    for (i = 0; i < 39; ++i) in[i] = 0.1 * (double)i - 1.0 / 3.0;
    CAPI_OK(nn_set_params(model, in, 39));
    CAPI_OK(nn_get_params(model, out, 39));
    for (i = 0; i < 39; ++i) assert_true(out[i] == (double)(float)in[i]);
    nn_destroy(model);
}

static void test_nn_set_params_rejects_bad_arguments_and_changes_nothing(void **state)
{
    nn_model *model = capi_small_model(NN_DTYPE_FLOAT64, 1);
    double in[40];
    size_t i;
    capi_snapshot snap;
    (void)state;
    for (i = 0; i < 40; ++i) in[i] = 0.25;
    capi_snapshot_take(model, &snap);
    CAPI_FAIL(NN_ERR_NULL_POINTER, nn_set_params(NULL, in, 39));
    CAPI_FAIL(NN_ERR_NULL_POINTER, nn_set_params(model, NULL, 39));
    CAPI_FAIL(NN_ERR_SHAPE_MISMATCH, nn_set_params(model, in, 38));
    CAPI_FAIL(NN_ERR_SHAPE_MISMATCH, nn_set_params(model, in, 40));
    CAPI_FAIL(NN_ERR_SHAPE_MISMATCH, nn_set_params(model, in, 0));
    in[38] = NAN; /* the last one: nothing before it may have been applied */
    CAPI_FAIL(NN_ERR_NON_FINITE, nn_set_params(model, in, 39));
    in[38] = INFINITY;
    CAPI_FAIL(NN_ERR_NON_FINITE, nn_set_params(model, in, 39));
    in[38] = -INFINITY;
    CAPI_FAIL(NN_ERR_NON_FINITE, nn_set_params(model, in, 39));
    capi_snapshot_assert_same(model, &snap);
    capi_snapshot_free(&snap);
    nn_destroy(model);
}

/* 1e39 is finite in float64 but overflows float32: storing it would make the model
 * non-finite, so it must be rejected (or, at least, not stored as inf). */
static void test_nn_set_params_float32_rejects_values_that_overflow_float32(void **state)
{
    nn_model *model = capi_small_model(NN_DTYPE_FLOAT32, 1);
    double in[39], out[39];
    size_t i;
    capi_snapshot snap;
    (void)state;
    for (i = 0; i < 39; ++i) in[i] = 0.5;
    in[0] = 1e39;
    capi_snapshot_take(model, &snap);
    CAPI_FAIL(NN_ERR_NON_FINITE, nn_set_params(model, in, 39));
    capi_snapshot_assert_same(model, &snap);
    CAPI_OK(nn_get_params(model, out, 39));
    for (i = 0; i < 39; ++i) assert_true(isfinite(out[i]));
    capi_snapshot_free(&snap);
    nn_destroy(model);
}

static void test_nn_create_accepts_zero_init_std_and_rejects_single_output_softmax(void **state)
{
    static const size_t one_out[] = {3, 1};
    nn_model_desc desc = book_desc();
    nn_model *model = NULL;
    double params[63];
    size_t i;
    (void)state;
    desc.init_std = 0.0;
    CAPI_OK(nn_create(&model, &desc));
    CAPI_OK(nn_get_params(model, params, 63));
    for (i = 0; i < 63; ++i) assert_true(params[i] == 0.0);
    nn_destroy(model);
    desc = book_desc();
    desc.n_layer_sizes = 2;
    desc.layer_sizes = one_out;
    CAPI_FAIL(NN_ERR_INVALID_ARGUMENT, nn_create(&model, &desc));
    assert_null(model);
    desc.loss = NN_LOSS_MEAN_SQUARED_ERROR; /* one output is fine for regression */
    CAPI_OK(nn_create(&model, &desc));
    nn_destroy(model);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nn_model_desc_init_sets_the_documented_defaults),
        cmocka_unit_test(test_nn_destroy_null_is_a_noop),
        cmocka_unit_test(test_nn_create_rejects_null_pointers),
        cmocka_unit_test(test_nn_create_rejects_wrong_struct_size),
        cmocka_unit_test(test_nn_create_rejects_fewer_than_two_sizes_and_zero_sizes),
        cmocka_unit_test(test_nn_create_rejects_unknown_enums),
        cmocka_unit_test(test_nn_create_rejects_bad_init_std),
        cmocka_unit_test(test_nn_create_rejects_overflowing_layer_sizes),
        cmocka_unit_test(test_nn_create_reports_out_of_memory_for_impossible_models),
        cmocka_unit_test(test_nn_model_queries_describe_the_model),
        cmocka_unit_test(test_nn_create_copies_the_layer_sizes),
        cmocka_unit_test(test_nn_model_queries_reject_null_and_small_buffers),
        cmocka_unit_test(test_nn_create_draws_the_book_initial_weights_from_a_shared_stream),
        cmocka_unit_test(test_nn_create_without_stream_uses_its_seed),
        cmocka_unit_test(test_nn_create_float32_rounds_the_float64_draws_once),
        cmocka_unit_test(test_nn_create_xavier_and_he_scale_by_fan_in),
        cmocka_unit_test(test_nn_create_same_seed_gives_identical_models),
        cmocka_unit_test(test_nn_set_params_round_trips_exactly_in_float64),
        cmocka_unit_test(test_nn_set_params_rounds_to_float32),
        cmocka_unit_test(test_nn_set_params_rejects_bad_arguments_and_changes_nothing),
        cmocka_unit_test(test_nn_set_params_float32_rejects_values_that_overflow_float32),
        cmocka_unit_test(test_nn_create_accepts_zero_init_std_and_rejects_single_output_softmax),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
