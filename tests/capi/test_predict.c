/* nn_predict and nn_predict_classes. */
#include "capi_test_util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define ROWS 40
#define OUTS 3

static double x64[ROWS * 3];
static float x32[ROWS * 3];
static int32_t labels[ROWS];

static int setup_data(void **state)
{
    size_t r;
    (void)state;
    capi_blobs(x64, labels, ROWS, 21);
    for (r = 0; r < ROWS * 2; ++r) {
        x32[r] = (float)x64[r];
        x64[r] = x32[r];
    }
    for (r = ROWS * 2; r < ROWS * 3; ++r) x64[r] = x32[r] = 0.25f;
    return 0;
}

static nn_model *model_with(nn_dtype dtype, nn_activation act, nn_loss loss, const size_t *sizes,
                            size_t n)
{
    nn_model_desc desc;
    nn_model *model = NULL;
    nn_model_desc_init(&desc);
    desc.n_layer_sizes = n;
    desc.layer_sizes = sizes;
    desc.dtype = dtype;
    desc.hidden_activation = act;
    desc.loss = loss;
    desc.init = NN_INIT_XAVIER; /* scores far from zero, so the checks see them */
    CAPI_OK(nn_create(&model, &desc));
    return model;
}

static const size_t small_sizes[] = {2, 6, OUTS};

static nn_model *small(nn_dtype dtype)
{
    return model_with(dtype, NN_ACTIVATION_SIGMOID, NN_LOSS_SOFTMAX_CROSS_ENTROPY, small_sizes, 3);
}

static nn_status predict64(nn_model *m, nn_output what, double *out, size_t cap)
{
    return nn_predict(m, x64, NN_DTYPE_FLOAT64, ROWS, 2, what, out, NN_DTYPE_FLOAT64, cap);
}

static void check_scores_match_forward(nn_activation act)
{
    static const size_t sizes[] = {2, 7, 5, OUTS};
    nn_model *m = model_with(NN_DTYPE_FLOAT64, act, NN_LOSS_SOFTMAX_CROSS_ENTROPY, sizes, 4);
    double params[128], expect[ROWS * OUTS], got[ROWS * OUTS];
    size_t n = capi_mlp_param_count(sizes, 4), i;
    assert_true(n <= 128);
    CAPI_OK(nn_get_params(m, params, n));
    capi_mlp_forward(params, sizes, 4, act, x64, ROWS, expect);
    CAPI_OK(predict64(m, NN_OUTPUT_SCORES, got, ROWS * OUTS));
    for (i = 0; i < ROWS * OUTS; ++i) assert_true(capi_close(got[i], expect[i], 1e-12));
    nn_destroy(m);
}

static void test_nn_predict_scores_match_a_plain_forward_pass(void **state)
{
    (void)state;
    check_scores_match_forward(NN_ACTIVATION_SIGMOID);
    check_scores_match_forward(NN_ACTIVATION_RELU);
    check_scores_match_forward(NN_ACTIVATION_TANH);
    check_scores_match_forward(NN_ACTIVATION_IDENTITY);
}

static void test_nn_predict_probabilities_are_the_softmax_of_scores(void **state)
{
    nn_model *m = small(NN_DTYPE_FLOAT64);
    double s[ROWS * OUTS], p[ROWS * OUTS];
    size_t r, c;
    (void)state;
    CAPI_OK(predict64(m, NN_OUTPUT_SCORES, s, ROWS * OUTS));
    CAPI_OK(predict64(m, NN_OUTPUT_PROBABILITIES, p, ROWS * OUTS));
    for (r = 0; r < ROWS; ++r) {
        double sum = 0.0, mx = s[r * OUTS], z = 0.0;
        for (c = 0; c < OUTS; ++c) mx = s[r * OUTS + c] > mx ? s[r * OUTS + c] : mx;
        for (c = 0; c < OUTS; ++c) z += exp(s[r * OUTS + c] - mx);
        for (c = 0; c < OUTS; ++c) {
            double v = p[r * OUTS + c];
            assert_true(v >= 0.0 && v <= 1.0);
            assert_true(capi_close(v, exp(s[r * OUTS + c] - mx) / z, 1e-12));
            sum += v;
        }
        assert_true(fabs(sum - 1.0) < 1e-12);
    }
    nn_destroy(m);
}

static void test_nn_predict_float32_probabilities_sum_to_one(void **state)
{
    nn_model *m = small(NN_DTYPE_FLOAT32);
    float p[ROWS * OUTS];
    size_t r;
    (void)state;
    CAPI_OK(nn_predict(m, x32, NN_DTYPE_FLOAT32, ROWS, 2, NN_OUTPUT_PROBABILITIES, p,
                       NN_DTYPE_FLOAT32, ROWS * OUTS));
    for (r = 0; r < ROWS; ++r) assert_true(fabs(p[3 * r] + p[3 * r + 1] + p[3 * r + 2] - 1.0) < 1e-5);
    nn_destroy(m);
}

static void test_nn_predict_output_dtype_is_one_rounding(void **state)
{
    nn_model *m64 = small(NN_DTYPE_FLOAT64), *m32 = small(NN_DTYPE_FLOAT32);
    double d[ROWS * OUTS];
    float f[ROWS * OUTS];
    size_t i;
    (void)state;
    CAPI_OK(predict64(m64, NN_OUTPUT_SCORES, d, ROWS * OUTS));
    CAPI_OK(nn_predict(m64, x64, NN_DTYPE_FLOAT64, ROWS, 2, NN_OUTPUT_SCORES, f, NN_DTYPE_FLOAT32,
                       ROWS * OUTS));
    for (i = 0; i < ROWS * OUTS; ++i) assert_true(f[i] == (float)d[i]);
    /* A float32 model computes in float32: its float64 output is exactly its float32 one. */
    CAPI_OK(predict64(m32, NN_OUTPUT_SCORES, d, ROWS * OUTS));
    CAPI_OK(nn_predict(m32, x64, NN_DTYPE_FLOAT64, ROWS, 2, NN_OUTPUT_SCORES, f, NN_DTYPE_FLOAT32,
                       ROWS * OUTS));
    for (i = 0; i < ROWS * OUTS; ++i) assert_true(d[i] == (double)f[i]);
    nn_destroy(m64);
    nn_destroy(m32);
}

static void test_nn_predict_float32_inputs_equal_float64_inputs(void **state)
{
    nn_model *m = small(NN_DTYPE_FLOAT64);
    double a[ROWS * OUTS], b[ROWS * OUTS];
    (void)state;
    CAPI_OK(predict64(m, NN_OUTPUT_SCORES, a, ROWS * OUTS));
    CAPI_OK(nn_predict(m, x32, NN_DTYPE_FLOAT32, ROWS, 2, NN_OUTPUT_SCORES, b, NN_DTYPE_FLOAT64,
                       ROWS * OUTS));
    assert_memory_equal(a, b, sizeof a);
    nn_destroy(m);
}

static void test_nn_predict_classes_equal_argmax_of_scores(void **state)
{
    nn_model *m = small(NN_DTYPE_FLOAT64);
    double s[ROWS * OUTS];
    int32_t cls[ROWS + 1];
    size_t r;
    (void)state;
    cls[ROWS] = -99;
    CAPI_OK(predict64(m, NN_OUTPUT_SCORES, s, ROWS * OUTS));
    CAPI_OK(nn_predict_classes(m, x64, NN_DTYPE_FLOAT64, ROWS, 2, cls, ROWS + 1));
    for (r = 0; r < ROWS; ++r) {
        int32_t best = 0, c;
        for (c = 1; c < OUTS; ++c)
            if (s[r * OUTS + (size_t)c] > s[r * OUTS + (size_t)best]) best = c;
        assert_int_equal(cls[r], best);
    }
    assert_int_equal(cls[ROWS], -99);
    nn_destroy(m);
}

static void test_nn_predict_classes_ties_go_to_the_first_maximum(void **state)
{
    nn_model *m = small(NN_DTYPE_FLOAT32);
    double zeros[39] = {0};
    int32_t cls[ROWS];
    size_t r;
    (void)state;
    zeros[37] = 0.5; /* b2 = (0, 0.5, 0.5): classes 1 and 2 tie everywhere */
    zeros[38] = 0.5;
    CAPI_OK(nn_set_params(m, zeros, 39));
    CAPI_OK(nn_predict_classes(m, x32, NN_DTYPE_FLOAT32, ROWS, 2, cls, ROWS));
    for (r = 0; r < ROWS; ++r) assert_int_equal(cls[r], 1);
    nn_destroy(m);
}

static void test_nn_predict_leaves_the_model_and_extra_capacity_alone(void **state)
{
    nn_model *m = small(NN_DTYPE_FLOAT64);
    double out[ROWS * OUTS + 2];
    capi_snapshot snap;
    (void)state;
    capi_snapshot_take(m, &snap);
    out[ROWS * OUTS] = 7.0;
    out[ROWS * OUTS + 1] = 8.0;
    CAPI_OK(predict64(m, NN_OUTPUT_PROBABILITIES, out, ROWS * OUTS + 2));
    assert_true(out[ROWS * OUTS] == 7.0 && out[ROWS * OUTS + 1] == 8.0);
    capi_snapshot_assert_same(m, &snap);
    capi_snapshot_free(&snap);
    nn_destroy(m);
}

static void test_nn_predict_rejects_bad_arguments_and_changes_nothing(void **state)
{
    nn_model *m = small(NN_DTYPE_FLOAT64);
    double out[ROWS * OUTS];
    capi_snapshot snap;
    (void)state;
    capi_snapshot_take(m, &snap);
    CAPI_FAIL(NN_ERR_NULL_POINTER, nn_predict(NULL, x64, NN_DTYPE_FLOAT64, ROWS, 2,
                                              NN_OUTPUT_SCORES, out, NN_DTYPE_FLOAT64, ROWS * OUTS));
    CAPI_FAIL(NN_ERR_NULL_POINTER, nn_predict(m, NULL, NN_DTYPE_FLOAT64, ROWS, 2,
                                              NN_OUTPUT_SCORES, out, NN_DTYPE_FLOAT64, ROWS * OUTS));
    CAPI_FAIL(NN_ERR_NULL_POINTER, nn_predict(m, x64, NN_DTYPE_FLOAT64, ROWS, 2,
                                              NN_OUTPUT_SCORES, NULL, NN_DTYPE_FLOAT64, ROWS * OUTS));
    CAPI_FAIL(NN_ERR_INVALID_ARGUMENT, nn_predict(m, x64, NN_DTYPE_FLOAT64, 0, 2,
                                                  NN_OUTPUT_SCORES, out, NN_DTYPE_FLOAT64, ROWS * OUTS));
    CAPI_FAIL(NN_ERR_SHAPE_MISMATCH, nn_predict(m, x64, NN_DTYPE_FLOAT64, ROWS, 3,
                                                NN_OUTPUT_SCORES, out, NN_DTYPE_FLOAT64, ROWS * OUTS));
    CAPI_FAIL(NN_ERR_SHAPE_MISMATCH, nn_predict(m, x64, NN_DTYPE_FLOAT64, ROWS, 1,
                                                NN_OUTPUT_SCORES, out, NN_DTYPE_FLOAT64, ROWS * OUTS));
    CAPI_FAIL(NN_ERR_INVALID_ARGUMENT, nn_predict(m, x64, (nn_dtype)7, ROWS, 2,
                                                  NN_OUTPUT_SCORES, out, NN_DTYPE_FLOAT64, ROWS * OUTS));
    CAPI_FAIL(NN_ERR_INVALID_ARGUMENT, nn_predict(m, x64, NN_DTYPE_FLOAT64, ROWS, 2,
                                                  (nn_output)7, out, NN_DTYPE_FLOAT64, ROWS * OUTS));
    CAPI_FAIL(NN_ERR_INVALID_ARGUMENT, nn_predict(m, x64, NN_DTYPE_FLOAT64, ROWS, 2,
                                                  NN_OUTPUT_SCORES, out, (nn_dtype)7, ROWS * OUTS));
    CAPI_FAIL(NN_ERR_BUFFER_TOO_SMALL, predict64(m, NN_OUTPUT_SCORES, out, ROWS * OUTS - 1));
    CAPI_FAIL(NN_ERR_BUFFER_TOO_SMALL, predict64(m, NN_OUTPUT_PROBABILITIES, out, 0));
    capi_snapshot_assert_same(m, &snap);
    capi_snapshot_free(&snap);
    nn_destroy(m);
}

static void test_nn_predict_rejects_non_finite_inputs(void **state)
{
    nn_model *m = small(NN_DTYPE_FLOAT32);
    double out[ROWS * OUTS], saved = x64[ROWS * 2 - 1];
    float saved32 = x32[3];
    capi_snapshot snap;
    (void)state;
    capi_snapshot_take(m, &snap);
    x64[ROWS * 2 - 1] = NAN;
    CAPI_FAIL(NN_ERR_NON_FINITE, predict64(m, NN_OUTPUT_SCORES, out, ROWS * OUTS));
    x64[ROWS * 2 - 1] = INFINITY;
    CAPI_FAIL(NN_ERR_NON_FINITE, predict64(m, NN_OUTPUT_SCORES, out, ROWS * OUTS));
    x64[ROWS * 2 - 1] = -INFINITY;
    CAPI_FAIL(NN_ERR_NON_FINITE, predict64(m, NN_OUTPUT_SCORES, out, ROWS * OUTS));
    x64[ROWS * 2 - 1] = saved;
    x32[3] = NAN;
    CAPI_FAIL(NN_ERR_NON_FINITE, nn_predict(m, x32, NN_DTYPE_FLOAT32, ROWS, 2, NN_OUTPUT_SCORES,
                                            out, NN_DTYPE_FLOAT64, ROWS * OUTS));
    CAPI_FAIL(NN_ERR_NON_FINITE, nn_predict_classes(m, x32, NN_DTYPE_FLOAT32, ROWS, 2,
                                                    (int32_t *)(void *)out, ROWS));
    x32[3] = saved32;
    capi_snapshot_assert_same(m, &snap);
    capi_snapshot_free(&snap);
    nn_destroy(m);
}

/* 1e300 is finite as given but infinite once converted to the float32 model's dtype;
 * the header does not say which status that is, NON_FINITE is the natural one. */
static void test_nn_predict_float32_model_rejects_inputs_that_overflow_float32(void **state)
{
    nn_model *m = small(NN_DTYPE_FLOAT32);
    double out[ROWS * OUTS], saved = x64[0];
    capi_snapshot snap;
    (void)state;
    capi_snapshot_take(m, &snap);
    x64[0] = 1e300;
    CAPI_FAIL(NN_ERR_NON_FINITE, predict64(m, NN_OUTPUT_SCORES, out, ROWS * OUTS));
    x64[0] = saved;
    capi_snapshot_assert_same(m, &snap);
    capi_snapshot_free(&snap);
    nn_destroy(m);
}

static void test_nn_predict_probabilities_of_a_regression_model_are_unsupported(void **state)
{
    nn_model *m = model_with(NN_DTYPE_FLOAT64, NN_ACTIVATION_TANH, NN_LOSS_MEAN_SQUARED_ERROR,
                             small_sizes, 3);
    double out[ROWS * OUTS];
    (void)state;
    CAPI_FAIL(NN_ERR_UNSUPPORTED, predict64(m, NN_OUTPUT_PROBABILITIES, out, ROWS * OUTS));
    CAPI_OK(predict64(m, NN_OUTPUT_SCORES, out, ROWS * OUTS));
    nn_destroy(m);
}

/* rows × cols (or rows × outputs) wraps in size_t: an overflow, never a read. */
static void test_nn_predict_rejects_overflowing_rows(void **state)
{
    nn_model *m = small(NN_DTYPE_FLOAT64);
    double out[ROWS * OUTS];
    int32_t cls[ROWS];
    capi_snapshot snap;
    (void)state;
    capi_snapshot_take(m, &snap);
    CAPI_FAIL2(NN_ERR_SIZE_OVERFLOW, NN_ERR_BUFFER_TOO_SMALL,
               nn_predict(m, x64, NN_DTYPE_FLOAT64, SIZE_MAX / 2 + 1, 2, NN_OUTPUT_SCORES, out,
                          NN_DTYPE_FLOAT64, ROWS * OUTS));
    CAPI_FAIL2(NN_ERR_SIZE_OVERFLOW, NN_ERR_BUFFER_TOO_SMALL,
               nn_predict(m, x64, NN_DTYPE_FLOAT64, SIZE_MAX / 8, 2, NN_OUTPUT_SCORES, out,
                          NN_DTYPE_FLOAT64, ROWS * OUTS));
    CAPI_FAIL2(NN_ERR_SIZE_OVERFLOW, NN_ERR_BUFFER_TOO_SMALL,
               nn_predict_classes(m, x64, NN_DTYPE_FLOAT64, SIZE_MAX / 2 + 1, 2, cls, ROWS));
    capi_snapshot_assert_same(m, &snap);
    capi_snapshot_free(&snap);
    nn_destroy(m);
}

static void test_nn_predict_classes_rejects_bad_arguments(void **state)
{
    nn_model *m = small(NN_DTYPE_FLOAT64);
    int32_t cls[ROWS];
    capi_snapshot snap;
    (void)state;
    capi_snapshot_take(m, &snap);
    CAPI_FAIL(NN_ERR_NULL_POINTER, nn_predict_classes(NULL, x64, NN_DTYPE_FLOAT64, ROWS, 2, cls, ROWS));
    CAPI_FAIL(NN_ERR_NULL_POINTER, nn_predict_classes(m, NULL, NN_DTYPE_FLOAT64, ROWS, 2, cls, ROWS));
    CAPI_FAIL(NN_ERR_NULL_POINTER, nn_predict_classes(m, x64, NN_DTYPE_FLOAT64, ROWS, 2, NULL, ROWS));
    CAPI_FAIL(NN_ERR_INVALID_ARGUMENT, nn_predict_classes(m, x64, NN_DTYPE_FLOAT64, 0, 2, cls, ROWS));
    CAPI_FAIL(NN_ERR_SHAPE_MISMATCH, nn_predict_classes(m, x64, NN_DTYPE_FLOAT64, ROWS, 3, cls, ROWS));
    CAPI_FAIL(NN_ERR_INVALID_ARGUMENT, nn_predict_classes(m, x64, (nn_dtype)7, ROWS, 2, cls, ROWS));
    CAPI_FAIL(NN_ERR_BUFFER_TOO_SMALL, nn_predict_classes(m, x64, NN_DTYPE_FLOAT64, ROWS, 2, cls, ROWS - 1));
    capi_snapshot_assert_same(m, &snap);
    capi_snapshot_free(&snap);
    nn_destroy(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nn_predict_scores_match_a_plain_forward_pass),
        cmocka_unit_test(test_nn_predict_probabilities_are_the_softmax_of_scores),
        cmocka_unit_test(test_nn_predict_float32_probabilities_sum_to_one),
        cmocka_unit_test(test_nn_predict_output_dtype_is_one_rounding),
        cmocka_unit_test(test_nn_predict_float32_inputs_equal_float64_inputs),
        cmocka_unit_test(test_nn_predict_classes_equal_argmax_of_scores),
        cmocka_unit_test(test_nn_predict_classes_ties_go_to_the_first_maximum),
        cmocka_unit_test(test_nn_predict_leaves_the_model_and_extra_capacity_alone),
        cmocka_unit_test(test_nn_predict_rejects_bad_arguments_and_changes_nothing),
        cmocka_unit_test(test_nn_predict_rejects_non_finite_inputs),
        cmocka_unit_test(test_nn_predict_float32_model_rejects_inputs_that_overflow_float32),
        cmocka_unit_test(test_nn_predict_probabilities_of_a_regression_model_are_unsupported),
        cmocka_unit_test(test_nn_predict_rejects_overflowing_rows),
        cmocka_unit_test(test_nn_predict_classes_rejects_bad_arguments),
    };
    return cmocka_run_group_tests(tests, setup_data, NULL);
}
