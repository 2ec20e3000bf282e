/* Edge cases found in review: divergence and NaN propagation, learning rates the model's
 * dtype cannot hold, extreme report intervals and epoch counts, negative device index. */
#include "capi_test_util.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define ROWS 60

static double x64[ROWS * 2];
static int32_t labels[ROWS];

static int setup_data(void **state)
{
    (void)state;
    capi_blobs(x64, labels, ROWS, 9);
    return 0;
}

static nn_status fit(nn_model *m, const nn_fit_options *o, nn_fit_report *rep)
{
    return nn_fit(m, x64, NN_DTYPE_FLOAT64, ROWS, 2, labels, NN_TARGET_CLASS_INDEX, 1, o, rep);
}

/* Training from parameters whose scores overflow stops at the first step with
 * NN_ERR_DIVERGED: no update is applied, no made-up finite loss is recorded, and the
 * report says no step ran. */
static void test_nn_fit_non_finite_forward_stops_as_diverged(void **state)
{
    static const size_t sizes[] = {2, 2, 3};
    double params[15], after[15];
    size_t i, n_records = 99, n_epochs = 99;
    nn_model *m = capi_model(NN_DTYPE_FLOAT32, sizes, 3, 1);
    nn_fit_options o = capi_fit_options(1, 10, 0.1, 1);
    nn_fit_report rep;
    (void)state;
    for (i = 0; i < 15; ++i) params[i] = 3e38;
    CAPI_OK(nn_set_params(m, params, 15));
    nn_fit_report_init(&rep);
    CAPI_FAIL(NN_ERR_DIVERGED, fit(m, &o, &rep));
    assert_int_equal(rep.steps_run, 0);
    assert_int_equal(rep.epochs_run, 0);
    assert_false(isfinite(rep.final_loss));
    CAPI_OK(nn_get_params(m, after, 15));
    for (i = 0; i < 15; ++i) assert_true(after[i] == (double)(float)3e38);
    CAPI_OK(nn_get_loss_history(m, NULL, 0, &n_records));
    CAPI_OK(nn_get_epoch_losses(m, NULL, 0, &n_epochs));
    assert_int_equal(n_records, 0);
    assert_int_equal(n_epochs, 0);
    nn_destroy(m);
}

/* Parameters that overflow in the forward pass: probabilities and the loss are NaN or
 * infinite, never a made-up finite number, and nothing crashes. */
static void test_overflowing_scores_give_non_finite_results(void **state)
{
    static const size_t sizes[] = {2, 2, 3};
    double params[15], probs[ROWS * 3], loss = 0.0;
    size_t i;
    int any_nan = 0;
    nn_model *m = capi_model(NN_DTYPE_FLOAT32, sizes, 3, 1);
    (void)state;
    for (i = 0; i < 15; ++i) params[i] = 3e38;
    CAPI_OK(nn_set_params(m, params, 15));
    CAPI_OK(nn_predict(m, x64, NN_DTYPE_FLOAT64, ROWS, 2, NN_OUTPUT_PROBABILITIES, probs, NN_DTYPE_FLOAT64, ROWS * 3));
    for (i = 0; i < ROWS * 3; ++i) any_nan |= isnan(probs[i]);
    assert_true(any_nan);
    CAPI_OK(nn_evaluate(m, x64, NN_DTYPE_FLOAT64, ROWS, 2, labels, NN_TARGET_CLASS_INDEX, 1, &loss, NULL));
    assert_false(isfinite(loss));
    nn_destroy(m);
}

static void test_nn_fit_rejects_learning_rates_float32_cannot_hold(void **state)
{
    const double bad[] = {1e-50, 1e39, 3.5e38};
    size_t i;
    (void)state;
    for (i = 0; i < sizeof bad / sizeof bad[0]; ++i) {
        nn_model *m = capi_small_model(NN_DTYPE_FLOAT32, 2);
        nn_fit_options o = capi_fit_options(1, 10, bad[i], 1);
        capi_snapshot snap;
        capi_snapshot_take(m, &snap);
        CAPI_FAIL(NN_ERR_BAD_HYPERPARAMETER, fit(m, &o, NULL));
        capi_snapshot_assert_same(m, &snap);
        capi_snapshot_free(&snap);
        nn_destroy(m);
    }
    {   /* the same tiny rate is fine in float64 */
        nn_model *m = capi_small_model(NN_DTYPE_FLOAT64, 2);
        nn_fit_options o = capi_fit_options(1, 10, 1e-50, 1);
        CAPI_OK(fit(m, &o, NULL));
        nn_destroy(m);
    }
}

static void test_nn_fit_huge_report_interval_keeps_one_record_per_epoch(void **state)
{
    nn_model *m = capi_small_model(NN_DTYPE_FLOAT64, 4);
    nn_fit_options o = capi_fit_options(7, 10, 0.1, SIZE_MAX);
    nn_loss_record rec[8];
    size_t n = 0, i;
    (void)state;
    CAPI_OK(fit(m, &o, NULL));
    CAPI_OK(nn_get_loss_history(m, rec, 8, &n));
    assert_int_equal(n, 7);
    for (i = 0; i < n; ++i) {
        assert_int_equal(rec[i].epoch, i + 1);
        assert_int_equal(rec[i].iteration, 1);
    }
    nn_destroy(m);
}

static void test_nn_fit_rejects_epochs_whose_history_cannot_fit(void **state)
{
    const size_t bad[] = {(size_t)1e15, (size_t)1e18, SIZE_MAX};
    size_t i;
    (void)state;
    for (i = 0; i < sizeof bad / sizeof bad[0]; ++i) {
        nn_model *m = capi_small_model(NN_DTYPE_FLOAT64, 5);
        nn_fit_options o = capi_fit_options(bad[i], 10, 0.1, 1);
        capi_snapshot snap;
        capi_snapshot_take(m, &snap);
        CAPI_FAIL(NN_ERR_BAD_HYPERPARAMETER, fit(m, &o, NULL));
        capi_snapshot_assert_same(m, &snap);
        capi_snapshot_free(&snap);
        nn_destroy(m);
    }
}

static void test_nn_set_device_rejects_negative_index_even_for_auto(void **state)
{
    nn_model *m = capi_small_model(NN_DTYPE_FLOAT32, 6);
    capi_snapshot snap;
    (void)state;
    capi_snapshot_take(m, &snap);
    CAPI_FAIL(NN_ERR_INVALID_ARGUMENT, nn_set_device(m, NN_DEVICE_AUTO, -5));
    CAPI_FAIL(NN_ERR_INVALID_ARGUMENT, nn_set_device(m, NN_DEVICE_REFERENCE, -1));
    capi_snapshot_assert_same(m, &snap);
    capi_snapshot_free(&snap);
    nn_destroy(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nn_fit_non_finite_forward_stops_as_diverged),
        cmocka_unit_test(test_overflowing_scores_give_non_finite_results),
        cmocka_unit_test(test_nn_fit_rejects_learning_rates_float32_cannot_hold),
        cmocka_unit_test(test_nn_fit_huge_report_interval_keeps_one_record_per_epoch),
        cmocka_unit_test(test_nn_fit_rejects_epochs_whose_history_cannot_fit),
        cmocka_unit_test(test_nn_set_device_rejects_negative_index_even_for_auto),
    };
    return cmocka_run_group_tests(tests, setup_data, NULL);
}
