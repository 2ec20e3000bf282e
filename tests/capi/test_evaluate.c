/* nn_evaluate: loss and accuracy, and its argument checks. */
#include "capi_test_util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define ROWS 50
#define OUTS 3

static double x64[ROWS * 3];
static int32_t labels[ROWS * OUTS];
static double onehot[ROWS * OUTS];
static float onehot32[ROWS * OUTS];
static double real_targets[ROWS * OUTS];

static int setup_data(void **state)
{
    size_t r, c;
    (void)state;
    capi_blobs(x64, labels, ROWS, 31);
    for (r = ROWS * 2; r < ROWS * 3; ++r) x64[r] = 0.5;
    for (r = 0; r < ROWS; ++r)
        for (c = 0; c < OUTS; ++c) {
            onehot[r * OUTS + c] = labels[r] == (int32_t)c;
            onehot32[r * OUTS + c] = (float)onehot[r * OUTS + c];
            real_targets[r * OUTS + c] = cos((double)(r + 3 * c));
        }
    return 0;
}

static nn_model *model_with(nn_loss loss)
{
    static const size_t sizes[] = {2, 6, OUTS};
    nn_model_desc desc;
    nn_model *model = NULL;
    nn_model_desc_init(&desc);
    desc.n_layer_sizes = 3;
    desc.layer_sizes = sizes;
    desc.dtype = NN_DTYPE_FLOAT64;
    desc.loss = loss;
    desc.init = NN_INIT_XAVIER;
    CAPI_OK(nn_create(&model, &desc));
    return model;
}

static nn_status eval_labels(nn_model *m, double *loss, double *acc)
{
    return nn_evaluate(m, x64, NN_DTYPE_FLOAT64, ROWS, 2, labels, NN_TARGET_CLASS_INDEX, 1, loss, acc);
}

static void test_nn_evaluate_matches_cross_entropy_and_accuracy_by_hand(void **state)
{
    nn_model *m = model_with(NN_LOSS_SOFTMAX_CROSS_ENTROPY);
    double p[ROWS * OUTS], loss = -1.0, acc = -1.0, want_loss = 0.0;
    int32_t cls[ROWS];
    size_t r, hits = 0;
    (void)state;
    CAPI_OK(nn_predict(m, x64, NN_DTYPE_FLOAT64, ROWS, 2, NN_OUTPUT_PROBABILITIES, p,
                       NN_DTYPE_FLOAT64, ROWS * OUTS));
    CAPI_OK(nn_predict_classes(m, x64, NN_DTYPE_FLOAT64, ROWS, 2, cls, ROWS));
    for (r = 0; r < ROWS; ++r) {
        want_loss -= log(p[r * OUTS + (size_t)labels[r]] + 1e-7);
        hits += cls[r] == labels[r];
    }
    want_loss /= ROWS;
    CAPI_OK(eval_labels(m, &loss, &acc));
    assert_true(capi_close(loss, want_loss, 1e-12));
    assert_true(acc == (double)hits / ROWS);
    nn_destroy(m);
}

static void test_nn_evaluate_one_hot_targets_equal_class_indices(void **state)
{
    nn_model *m = model_with(NN_LOSS_SOFTMAX_CROSS_ENTROPY);
    double l1, a1, l2, a2, l3, a3;
    (void)state;
    CAPI_OK(eval_labels(m, &l1, &a1));
    CAPI_OK(nn_evaluate(m, x64, NN_DTYPE_FLOAT64, ROWS, 2, onehot, NN_TARGET_ROWS_FLOAT64, OUTS, &l2, &a2));
    CAPI_OK(nn_evaluate(m, x64, NN_DTYPE_FLOAT64, ROWS, 2, onehot32, NN_TARGET_ROWS_FLOAT32, OUTS, &l3, &a3));
    assert_true(l1 == l2 && l1 == l3);
    assert_true(a1 == a2 && a1 == a3);
    nn_destroy(m);
}

static void test_nn_evaluate_regression_gives_mse_and_nan_accuracy(void **state)
{
    static const size_t sizes[] = {2, 6, OUTS};
    nn_model *m = model_with(NN_LOSS_MEAN_SQUARED_ERROR);
    double params[39], y[ROWS * OUTS], loss = -1.0, acc = 0.0, want = 0.0;
    size_t i;
    (void)state;
    CAPI_OK(nn_get_params(m, params, 39));
    capi_mlp_forward(params, sizes, 3, NN_ACTIVATION_SIGMOID, x64, ROWS, y);
    for (i = 0; i < ROWS * OUTS; ++i) want += 0.5 * (y[i] - real_targets[i]) * (y[i] - real_targets[i]);
    want /= ROWS;
    CAPI_OK(nn_evaluate(m, x64, NN_DTYPE_FLOAT64, ROWS, 2, real_targets, NN_TARGET_ROWS_FLOAT64,
                        OUTS, &loss, &acc));
    assert_true(capi_close(loss, want, 1e-12));
    assert_true(isnan(acc));
    nn_destroy(m);
}

static void test_nn_evaluate_accepts_one_null_out_pointer(void **state)
{
    nn_model *m = model_with(NN_LOSS_SOFTMAX_CROSS_ENTROPY);
    double loss, acc, loss_only = -1.0, acc_only = -1.0;
    (void)state;
    CAPI_OK(eval_labels(m, &loss, &acc));
    CAPI_OK(eval_labels(m, &loss_only, NULL));
    CAPI_OK(eval_labels(m, NULL, &acc_only));
    assert_true(loss == loss_only);
    assert_true(acc == acc_only);
    nn_destroy(m);
}

static void test_nn_evaluate_leaves_the_model_alone(void **state)
{
    nn_model *m = model_with(NN_LOSS_SOFTMAX_CROSS_ENTROPY);
    nn_fit_options o;
    double loss, acc;
    capi_snapshot snap;
    (void)state;
    nn_fit_options_init(&o);
    o.epochs = 2;
    o.batch_size = 10;
    o.report_interval = 1;
    CAPI_OK(nn_fit(m, x64, NN_DTYPE_FLOAT64, ROWS, 2, labels, NN_TARGET_CLASS_INDEX, 1, &o, NULL));
    capi_snapshot_take(m, &snap);
    CAPI_OK(eval_labels(m, &loss, &acc));
    capi_snapshot_assert_same(m, &snap);
    capi_snapshot_free(&snap);
    nn_destroy(m);
}

static void test_nn_evaluate_rejects_bad_arguments_and_changes_nothing(void **state)
{
    nn_model *m = model_with(NN_LOSS_SOFTMAX_CROSS_ENTROPY);
    double loss, acc;
    capi_snapshot snap;
    (void)state;
    capi_snapshot_take(m, &snap);
    CAPI_FAIL(NN_ERR_NULL_POINTER, nn_evaluate(NULL, x64, NN_DTYPE_FLOAT64, ROWS, 2, labels,
                                               NN_TARGET_CLASS_INDEX, 1, &loss, &acc));
    CAPI_FAIL(NN_ERR_NULL_POINTER, nn_evaluate(m, NULL, NN_DTYPE_FLOAT64, ROWS, 2, labels,
                                               NN_TARGET_CLASS_INDEX, 1, &loss, &acc));
    CAPI_FAIL(NN_ERR_NULL_POINTER, nn_evaluate(m, x64, NN_DTYPE_FLOAT64, ROWS, 2, NULL,
                                               NN_TARGET_CLASS_INDEX, 1, &loss, &acc));
    CAPI_FAIL(NN_ERR_NULL_POINTER, eval_labels(m, NULL, NULL));
    CAPI_FAIL(NN_ERR_INVALID_ARGUMENT, nn_evaluate(m, x64, NN_DTYPE_FLOAT64, 0, 2, labels,
                                                   NN_TARGET_CLASS_INDEX, 1, &loss, &acc));
    CAPI_FAIL(NN_ERR_SHAPE_MISMATCH, nn_evaluate(m, x64, NN_DTYPE_FLOAT64, ROWS, 3, labels,
                                                 NN_TARGET_CLASS_INDEX, 1, &loss, &acc));
    CAPI_FAIL(NN_ERR_SHAPE_MISMATCH, nn_evaluate(m, x64, NN_DTYPE_FLOAT64, ROWS, 2, labels,
                                                 NN_TARGET_CLASS_INDEX, OUTS, &loss, &acc));
    CAPI_FAIL(NN_ERR_SHAPE_MISMATCH, nn_evaluate(m, x64, NN_DTYPE_FLOAT64, ROWS, 2, onehot,
                                                 NN_TARGET_ROWS_FLOAT64, OUTS - 1, &loss, &acc));
    CAPI_FAIL(NN_ERR_INVALID_ARGUMENT, nn_evaluate(m, x64, (nn_dtype)7, ROWS, 2, labels,
                                                   NN_TARGET_CLASS_INDEX, 1, &loss, &acc));
    CAPI_FAIL(NN_ERR_INVALID_ARGUMENT, nn_evaluate(m, x64, NN_DTYPE_FLOAT64, ROWS, 2, labels,
                                                   (nn_target_type)7, 1, &loss, &acc));
    capi_snapshot_assert_same(m, &snap);
    capi_snapshot_free(&snap);
    nn_destroy(m);
}

static void test_nn_evaluate_rejects_labels_out_of_range(void **state)
{
    nn_model *m = model_with(NN_LOSS_SOFTMAX_CROSS_ENTROPY);
    int32_t saved = labels[ROWS - 1];
    double loss;
    (void)state;
    labels[ROWS - 1] = -1;
    CAPI_FAIL(NN_ERR_LABEL_OUT_OF_RANGE, eval_labels(m, &loss, NULL));
    labels[ROWS - 1] = OUTS;
    CAPI_FAIL(NN_ERR_LABEL_OUT_OF_RANGE, eval_labels(m, &loss, NULL));
    labels[ROWS - 1] = saved;
    nn_destroy(m);
}

static void test_nn_evaluate_rejects_non_finite_inputs_and_targets(void **state)
{
    nn_model *m = model_with(NN_LOSS_SOFTMAX_CROSS_ENTROPY);
    nn_model *reg = model_with(NN_LOSS_MEAN_SQUARED_ERROR);
    double loss, saved = x64[ROWS * 2 - 1];
    (void)state;
    x64[ROWS * 2 - 1] = NAN;
    CAPI_FAIL(NN_ERR_NON_FINITE, eval_labels(m, &loss, NULL));
    x64[ROWS * 2 - 1] = -INFINITY;
    CAPI_FAIL(NN_ERR_NON_FINITE, eval_labels(m, &loss, NULL));
    x64[ROWS * 2 - 1] = saved;
    onehot[4] = NAN;
    CAPI_FAIL(NN_ERR_NON_FINITE, nn_evaluate(m, x64, NN_DTYPE_FLOAT64, ROWS, 2, onehot,
                                             NN_TARGET_ROWS_FLOAT64, OUTS, &loss, NULL));
    onehot[4] = labels[1] == 1;
    onehot32[ROWS * OUTS - 1] = INFINITY;
    CAPI_FAIL(NN_ERR_NON_FINITE, nn_evaluate(m, x64, NN_DTYPE_FLOAT64, ROWS, 2, onehot32,
                                             NN_TARGET_ROWS_FLOAT32, OUTS, &loss, NULL));
    onehot32[ROWS * OUTS - 1] = (float)(labels[ROWS - 1] == OUTS - 1);
    saved = real_targets[ROWS * OUTS - 1];
    real_targets[ROWS * OUTS - 1] = NAN;
    CAPI_FAIL(NN_ERR_NON_FINITE, nn_evaluate(reg, x64, NN_DTYPE_FLOAT64, ROWS, 2, real_targets,
                                             NN_TARGET_ROWS_FLOAT64, OUTS, &loss, NULL));
    real_targets[ROWS * OUTS - 1] = saved;
    nn_destroy(m);
    nn_destroy(reg);
}

static void test_nn_evaluate_rejects_overflowing_rows(void **state)
{
    nn_model *m = model_with(NN_LOSS_SOFTMAX_CROSS_ENTROPY);
    double loss;
    (void)state;
    CAPI_FAIL(NN_ERR_SIZE_OVERFLOW, nn_evaluate(m, x64, NN_DTYPE_FLOAT64, SIZE_MAX / 2 + 1, 2,
                                                labels, NN_TARGET_CLASS_INDEX, 1, &loss, NULL));
    CAPI_FAIL(NN_ERR_SIZE_OVERFLOW, nn_evaluate(m, x64, NN_DTYPE_FLOAT64, SIZE_MAX / 8, 2,
                                                labels, NN_TARGET_CLASS_INDEX, 1, &loss, NULL));
    nn_destroy(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nn_evaluate_matches_cross_entropy_and_accuracy_by_hand),
        cmocka_unit_test(test_nn_evaluate_one_hot_targets_equal_class_indices),
        cmocka_unit_test(test_nn_evaluate_regression_gives_mse_and_nan_accuracy),
        cmocka_unit_test(test_nn_evaluate_accepts_one_null_out_pointer),
        cmocka_unit_test(test_nn_evaluate_leaves_the_model_alone),
        cmocka_unit_test(test_nn_evaluate_rejects_bad_arguments_and_changes_nothing),
        cmocka_unit_test(test_nn_evaluate_rejects_labels_out_of_range),
        cmocka_unit_test(test_nn_evaluate_rejects_non_finite_inputs_and_targets),
        cmocka_unit_test(test_nn_evaluate_rejects_overflowing_rows),
    };
    return cmocka_run_group_tests(tests, setup_data, NULL);
}
