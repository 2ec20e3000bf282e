/* Loss records and epoch losses: the report_interval rule, appending, reset, copying. */
#include "capi_test_util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define ROWS 300
#define OUTS 3

static double x64[ROWS * 2];
static int32_t labels[ROWS];

static int setup_data(void **state)
{
    (void)state;
    capi_blobs(x64, labels, ROWS, 5);
    return 0;
}

static nn_status fit_labels(nn_model *m, size_t rows, const nn_fit_options *o, nn_fit_report *rep)
{
    return nn_fit(m, x64, NN_DTYPE_FLOAT64, rows, 2, labels, NN_TARGET_CLASS_INDEX, 1, o, rep);
}

static void check_records(size_t interval, size_t n_expected, const uint64_t *iters_per_epoch,
                          size_t n_iters)
{
    nn_model *model = capi_small_model(NN_DTYPE_FLOAT64, 1);
    nn_fit_options o = capi_fit_options(3, 30, 1.0, interval);
    nn_loss_record rec[40];
    size_t count = 99, i;
    CAPI_OK(fit_labels(model, ROWS, &o, NULL));
    CAPI_OK(nn_get_loss_history(model, NULL, 0, &count));
    assert_int_equal(count, n_expected);
    CAPI_OK(nn_get_loss_history(model, rec, 40, &count));
    assert_int_equal(count, n_expected);
    for (i = 0; i < count; ++i) {
        assert_int_equal(rec[i].epoch, 1 + i / n_iters);
        assert_int_equal(rec[i].iteration, iters_per_epoch[i % n_iters]);
        assert_int_equal(rec[i].steps_per_epoch, 10);
        assert_true(isfinite(rec[i].loss) && rec[i].loss > 0.0);
    }
    nn_destroy(model);
}

/* 300 rows, batch 30: 10 steps per epoch; a record whenever iters % interval == 0. */
static void test_nn_fit_loss_history_follows_report_interval(void **state)
{
    static const uint64_t every10[] = {1}, every4[] = {1, 5, 9}, every3[] = {1, 4, 7, 10};
    static const uint64_t every1[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, every20[] = {1};
    (void)state;
    check_records(10, 3, every10, 1);
    check_records(4, 9, every4, 3);
    check_records(3, 12, every3, 4);
    check_records(1, 30, every1, 10);
    check_records(20, 3, every20, 1);
    check_records(0, 0, every1, 1);
}

/* With interval 1 every step is a record; the epoch loss is the mean of its steps, and a
 * record every 10 steps (the book's Trainer) averages steps 1-9 of the previous epoch
 * with step 0 of its own. The interval never changes the trajectory. */
static void test_nn_fit_records_average_the_steps_since_the_previous_record(void **state)
{
    nn_model *fine = capi_small_model(NN_DTYPE_FLOAT64, 6), *book = capi_small_model(NN_DTYPE_FLOAT64, 6);
    nn_fit_options o = capi_fit_options(3, 30, 1.0, 1);
    nn_loss_record steps[30], recs[3];
    double epochs[3];
    size_t count = 0, e, i;
    (void)state;
    CAPI_OK(fit_labels(fine, ROWS, &o, NULL));
    o.report_interval = 10;
    CAPI_OK(fit_labels(book, ROWS, &o, NULL));
    CAPI_OK(nn_get_loss_history(fine, steps, 30, &count));
    assert_int_equal(count, 30);
    CAPI_OK(nn_get_epoch_losses(fine, epochs, 3, &count));
    assert_int_equal(count, 3);
    CAPI_OK(nn_get_loss_history(book, recs, 3, &count));
    assert_int_equal(count, 3);
    for (e = 0; e < 3; ++e) {
        double sum = 0.0;
        for (i = 0; i < 10; ++i) sum += steps[10 * e + i].loss;
        assert_true(capi_close(epochs[e], sum / 10.0, 1e-12));
    }
    assert_true(recs[0].loss == steps[0].loss); /* a single batch */
    for (e = 1; e < 3; ++e) {
        double sum = steps[10 * e].loss;
        for (i = 1; i < 10; ++i) sum += steps[10 * (e - 1) + i].loss;
        assert_true(capi_close(recs[e].loss, sum / 10.0, 1e-12));
    }
    {
        double pf[39], pb[39];
        CAPI_OK(nn_get_params(fine, pf, 39));
        CAPI_OK(nn_get_params(book, pb, 39));
        assert_memory_equal(pf, pb, sizeof pf);
    }
    nn_destroy(fine);
    nn_destroy(book);
}

static void test_nn_fit_appends_histories_and_reset_clears_them(void **state)
{
    nn_model *model = capi_small_model(NN_DTYPE_FLOAT64, 1);
    nn_fit_options o = capi_fit_options(3, 30, 1.0, 10);
    nn_loss_record rec[8];
    double losses[8];
    size_t count = 0, i;
    (void)state;
    CAPI_OK(fit_labels(model, ROWS, &o, NULL));
    o.epochs = 2;
    CAPI_OK(fit_labels(model, ROWS, &o, NULL));
    CAPI_OK(nn_get_loss_history(model, rec, 8, &count));
    assert_int_equal(count, 5);
    for (i = 0; i < 5; ++i) assert_int_equal(rec[i].epoch, i + 1);
    CAPI_OK(nn_get_epoch_losses(model, losses, 8, &count));
    assert_int_equal(count, 5);

    CAPI_OK(nn_reset_history(model));
    CAPI_OK(nn_get_loss_history(model, NULL, 0, &count));
    assert_int_equal(count, 0);
    CAPI_OK(nn_get_epoch_losses(model, NULL, 0, &count));
    assert_int_equal(count, 0);
    o.epochs = 1;
    CAPI_OK(fit_labels(model, ROWS, &o, NULL));
    CAPI_OK(nn_get_loss_history(model, rec, 8, &count));
    assert_int_equal(count, 1);
    assert_int_equal(rec[0].epoch, 1);
    nn_destroy(model);
}

static void test_nn_history_getters_copy_partially_and_check_pointers(void **state)
{
    nn_model *model = capi_small_model(NN_DTYPE_FLOAT64, 1);
    nn_fit_options o = capi_fit_options(3, 30, 1.0, 4);
    nn_loss_record all[9], part[3];
    double losses[3] = {0, 0, -5.0};
    size_t count = 0;
    capi_snapshot snap;
    (void)state;
    CAPI_OK(fit_labels(model, ROWS, &o, NULL));
    CAPI_OK(nn_get_loss_history(model, all, 9, &count));
    memset(part, 0, sizeof part);
    part[2].loss = -5.0;
    CAPI_OK(nn_get_loss_history(model, part, 2, &count));
    assert_int_equal(count, 9);
    assert_memory_equal(part, all, 2 * sizeof *part);
    assert_true(part[2].loss == -5.0);
    CAPI_OK(nn_get_epoch_losses(model, losses, 2, &count));
    assert_int_equal(count, 3);
    assert_true(losses[2] == -5.0);

    capi_snapshot_take(model, &snap);
    CAPI_FAIL(NN_ERR_NULL_POINTER, nn_get_loss_history(NULL, all, 9, &count));
    CAPI_FAIL(NN_ERR_NULL_POINTER, nn_get_loss_history(model, all, 9, NULL));
    CAPI_FAIL(NN_ERR_NULL_POINTER, nn_get_loss_history(model, NULL, 9, &count));
    CAPI_FAIL(NN_ERR_NULL_POINTER, nn_get_epoch_losses(NULL, losses, 3, &count));
    CAPI_FAIL(NN_ERR_NULL_POINTER, nn_get_epoch_losses(model, losses, 3, NULL));
    CAPI_FAIL(NN_ERR_NULL_POINTER, nn_get_epoch_losses(model, NULL, 3, &count));
    CAPI_FAIL(NN_ERR_NULL_POINTER, nn_reset_history(NULL));
    capi_snapshot_assert_same(model, &snap);
    capi_snapshot_free(&snap);
    nn_destroy(model);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nn_fit_loss_history_follows_report_interval),
        cmocka_unit_test(test_nn_fit_records_average_the_steps_since_the_previous_record),
        cmocka_unit_test(test_nn_fit_appends_histories_and_reset_clears_them),
        cmocka_unit_test(test_nn_history_getters_copy_partially_and_check_pointers),
    };
    return cmocka_run_group_tests(tests, setup_data, NULL);
}
