/* nn_fit argument checks: every bad argument gets its own status and a message, and
 * the model (parameters, predictions, histories, device) and options->rng are left
 * exactly as they were. */
#include "capi_test_util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define ROWS 60
#define OUTS 3

typedef struct fit_args {
    nn_model *model;
    const void *x;
    nn_dtype x_dtype;
    size_t rows, cols;
    const void *targets;
    nn_target_type target_type;
    size_t target_cols;
    nn_fit_options options;
    const nn_fit_options *options_ptr;
    nn_fit_report report;
    nn_fit_report *report_ptr;
} fit_args;

/* Buffers are sized for the largest shape a test claims (3 columns), so the library
 * may read everything the sizes say without leaving them. */
static double x64[ROWS * 3];
static float x32[ROWS * 3];
static int32_t labels[ROWS * OUTS];
static double onehot64[ROWS * (OUTS + 1)];
static float onehot32[ROWS * (OUTS + 1)];

static nn_model *fixture_model(nn_loss loss)
{
    static const size_t sizes[] = {2, 6, OUTS};
    nn_model_desc desc;
    nn_model *model = NULL;
    nn_fit_options opts;
    nn_model_desc_init(&desc);
    desc.n_layer_sizes = 3;
    desc.layer_sizes = sizes;
    desc.dtype = NN_DTYPE_FLOAT64;
    desc.loss = loss;
    CAPI_OK(nn_create(&model, &desc));
    /* Some history, so that "unchanged" means something. */
    nn_fit_options_init(&opts);
    opts.epochs = 2;
    opts.batch_size = 10;
    opts.report_interval = 2;
    CAPI_OK(nn_fit(model, x64, NN_DTYPE_FLOAT64, ROWS, 2, onehot64, NN_TARGET_ROWS_FLOAT64, OUTS,
                   &opts, NULL));
    return model;
}

static int setup(void **state)
{
    fit_args *a = calloc(1, sizeof *a);
    size_t r, c;
    if (a == NULL) return -1;
    capi_blobs(x64, labels, ROWS, 11);
    for (r = 0; r < ROWS * 2; ++r) x32[r] = (float)x64[r];
    for (r = ROWS * 2; r < ROWS * 3; ++r) x64[r] = x32[r] = 0.5f;
    for (r = 0; r < ROWS; ++r)
        for (c = 0; c < OUTS; ++c)
            onehot32[r * OUTS + c] = (float)(onehot64[r * OUTS + c] = labels[r] == (int32_t)c);
    a->model = fixture_model(NN_LOSS_SOFTMAX_CROSS_ENTROPY);
    a->x = x64;
    a->x_dtype = NN_DTYPE_FLOAT64;
    a->rows = ROWS;
    a->cols = 2;
    a->targets = labels;
    a->target_type = NN_TARGET_CLASS_INDEX;
    a->target_cols = 1;
    nn_fit_options_init(&a->options);
    a->options.epochs = 2;
    a->options.batch_size = 10;
    a->options_ptr = &a->options;
    nn_fit_report_init(&a->report);
    a->report_ptr = &a->report;
    *state = a;
    return 0;
}

static int teardown(void **state)
{
    fit_args *a = *state;
    nn_destroy(a->model);
    free(a);
    return 0;
}

static nn_status fit_call(fit_args *a)
{
    return nn_fit(a->model, a->x, a->x_dtype, a->rows, a->cols, a->targets, a->target_type,
                  a->target_cols, a->options_ptr, a->report_ptr);
}

/* Runs nn_fit with a twin-checked options.rng and asserts the failure left no trace. */
static void expect_fit_fails(fit_args *a, nn_status want1, nn_status want2, int line)
{
    capi_snapshot snap;
    nn_rng *rng = capi_rng(2024), *twin = capi_rng(2024);
    nn_fit_options saved = a->options;
    nn_status st;
    capi_snapshot_take(a->model, &snap);
    a->options.rng = rng;
    capi_mark_error(0);
    st = fit_call(a);
    if (!capi_error_is_fresh()) {
        capi_mark_error(1);
        st = fit_call(a);
    }
    if (st != want1 && st != want2) {
        print_error("line %d: ", line);
        capi_report_status("nn_fit", st, want1, want2);
    }
    assert_true(st == want1 || st == want2);
    if (!capi_error_is_fresh()) print_error("line %d: no new error message\n", line);
    assert_true(capi_error_is_fresh());
    capi_snapshot_assert_same(a->model, &snap);
    capi_assert_rng_in_step(rng, twin);
    capi_snapshot_free(&snap);
    nn_rng_destroy(rng);
    nn_rng_destroy(twin);
    a->options = saved;
}

#define EXPECT_FIT_FAILS(a, want) expect_fit_fails((a), (want), (want), __LINE__)

static void test_nn_fit_args_fixture_is_valid(void **state)
{
    fit_args *a = *state;
    capi_snapshot before, after;
    capi_snapshot_take(a->model, &before);
    CAPI_OK(fit_call(a)); /* the unmodified call succeeds, so each failure below is its own */
    capi_snapshot_take(a->model, &after);
    assert_memory_not_equal(before.params, after.params, before.n_params * sizeof(double));
    assert_int_equal(after.n_epochs, before.n_epochs + 2);
    capi_snapshot_free(&before);
    capi_snapshot_free(&after);
}

static void test_nn_fit_rejects_null_pointers(void **state)
{
    fit_args *a = *state;
    CAPI_FAIL(NN_ERR_NULL_POINTER, nn_fit(NULL, x64, NN_DTYPE_FLOAT64, ROWS, 2, labels,
                                          NN_TARGET_CLASS_INDEX, 1, NULL, NULL));
    a->x = NULL;
    EXPECT_FIT_FAILS(a, NN_ERR_NULL_POINTER);
    a->x = x64;
    a->targets = NULL;
    EXPECT_FIT_FAILS(a, NN_ERR_NULL_POINTER);
}

static void test_nn_fit_rejects_zero_rows(void **state)
{
    fit_args *a = *state;
    a->rows = 0;
    EXPECT_FIT_FAILS(a, NN_ERR_INVALID_ARGUMENT);
}

static void test_nn_fit_rejects_column_mismatch(void **state)
{
    fit_args *a = *state;
    a->cols = 3;
    EXPECT_FIT_FAILS(a, NN_ERR_SHAPE_MISMATCH);
    a->cols = 1;
    EXPECT_FIT_FAILS(a, NN_ERR_SHAPE_MISMATCH);
    a->cols = 0;
    EXPECT_FIT_FAILS(a, NN_ERR_SHAPE_MISMATCH);
}

static void test_nn_fit_rejects_wrong_target_cols(void **state)
{
    fit_args *a = *state;
    a->target_cols = OUTS; /* class indices need 1 */
    EXPECT_FIT_FAILS(a, NN_ERR_SHAPE_MISMATCH);
    a->target_cols = 0;
    EXPECT_FIT_FAILS(a, NN_ERR_SHAPE_MISMATCH);
    a->targets = onehot64;
    a->target_type = NN_TARGET_ROWS_FLOAT64;
    a->target_cols = OUTS - 1;
    EXPECT_FIT_FAILS(a, NN_ERR_SHAPE_MISMATCH);
    a->target_cols = OUTS + 1;
    EXPECT_FIT_FAILS(a, NN_ERR_SHAPE_MISMATCH);
    a->target_cols = 1;
    EXPECT_FIT_FAILS(a, NN_ERR_SHAPE_MISMATCH);
    a->targets = onehot32;
    a->target_type = NN_TARGET_ROWS_FLOAT32;
    a->target_cols = OUTS - 1;
    EXPECT_FIT_FAILS(a, NN_ERR_SHAPE_MISMATCH);
}

static void test_nn_fit_rejects_bad_enums(void **state)
{
    fit_args *a = *state;
    a->x_dtype = (nn_dtype)7;
    EXPECT_FIT_FAILS(a, NN_ERR_INVALID_ARGUMENT);
    a->x_dtype = (nn_dtype)-1;
    EXPECT_FIT_FAILS(a, NN_ERR_INVALID_ARGUMENT);
    a->x_dtype = NN_DTYPE_FLOAT64;
    a->target_type = (nn_target_type)7;
    EXPECT_FIT_FAILS(a, NN_ERR_INVALID_ARGUMENT);
}

static void test_nn_fit_rejects_labels_out_of_range(void **state)
{
    fit_args *a = *state;
    int32_t saved = labels[ROWS - 1];
    labels[ROWS - 1] = -1; /* the last row: nothing may have been trained on before */
    EXPECT_FIT_FAILS(a, NN_ERR_LABEL_OUT_OF_RANGE);
    labels[ROWS - 1] = OUTS;
    EXPECT_FIT_FAILS(a, NN_ERR_LABEL_OUT_OF_RANGE);
    labels[ROWS - 1] = INT32_MIN;
    EXPECT_FIT_FAILS(a, NN_ERR_LABEL_OUT_OF_RANGE);
    labels[ROWS - 1] = saved;
    labels[0] = OUTS + 100;
    EXPECT_FIT_FAILS(a, NN_ERR_LABEL_OUT_OF_RANGE);
    labels[0] = 0;
}

static void test_nn_fit_rejects_nan_inputs(void **state)
{
    fit_args *a = *state;
    const double bad[3] = {NAN, INFINITY, -INFINITY};
    int i;
    for (i = 0; i < 3; ++i) {
        double saved = x64[ROWS * 2 - 1];
        x64[ROWS * 2 - 1] = bad[i];
        a->x = x64;
        a->x_dtype = NN_DTYPE_FLOAT64;
        EXPECT_FIT_FAILS(a, NN_ERR_NON_FINITE);
        x64[ROWS * 2 - 1] = saved;
    }
}

static void test_nn_fit_rejects_nan_float32_inputs(void **state)
{
    fit_args *a = *state;
    const float bad[3] = {NAN, INFINITY, -INFINITY};
    int i;
    a->x = x32;
    a->x_dtype = NN_DTYPE_FLOAT32;
    for (i = 0; i < 3; ++i) {
        float saved = x32[7];
        x32[7] = bad[i];
        EXPECT_FIT_FAILS(a, NN_ERR_NON_FINITE);
        x32[7] = saved;
    }
}

static void test_nn_fit_rejects_non_finite_float_targets(void **state)
{
    fit_args *a = *state;
    const double bad[3] = {NAN, INFINITY, -INFINITY};
    int i;
    for (i = 0; i < 3; ++i) {
        a->targets = onehot64;
        a->target_type = NN_TARGET_ROWS_FLOAT64;
        a->target_cols = OUTS;
        onehot64[ROWS * OUTS - 1] = bad[i];
        EXPECT_FIT_FAILS(a, NN_ERR_NON_FINITE);
        onehot64[ROWS * OUTS - 1] = labels[ROWS - 1] == OUTS - 1;
        a->targets = onehot32;
        a->target_type = NN_TARGET_ROWS_FLOAT32;
        onehot32[5] = (float)bad[i];
        EXPECT_FIT_FAILS(a, NN_ERR_NON_FINITE);
        onehot32[5] = (float)(labels[1] == 2);
    }
}

static void test_nn_fit_regression_rejects_non_finite_targets(void **state)
{
    fit_args *a = *state;
    nn_model *softmax = a->model;
    static double targets[ROWS * OUTS];
    size_t i;
    a->model = fixture_model(NN_LOSS_MEAN_SQUARED_ERROR);
    for (i = 0; i < ROWS * OUTS; ++i) targets[i] = 0.1 * (double)(i % 7);
    a->targets = targets;
    a->target_type = NN_TARGET_ROWS_FLOAT64;
    a->target_cols = OUTS;
    targets[ROWS * OUTS - 2] = NAN;
    EXPECT_FIT_FAILS(a, NN_ERR_NON_FINITE);
    targets[ROWS * OUTS - 2] = -INFINITY;
    EXPECT_FIT_FAILS(a, NN_ERR_NON_FINITE);
    targets[ROWS * OUTS - 2] = 1e308 * 10.0;
    EXPECT_FIT_FAILS(a, NN_ERR_NON_FINITE);
    nn_destroy(a->model);
    a->model = softmax;
}

/* A batch above the row count is clamped (nn.h), so only 0 is a bad batch size; a
 * caller's -1 arrives as SIZE_MAX and is clamped too (test_fit.c covers that). */
static void test_nn_fit_rejects_zero_batch_size(void **state)
{
    fit_args *a = *state;
    a->options.batch_size = 0;
    EXPECT_FIT_FAILS(a, NN_ERR_BAD_HYPERPARAMETER);
}

static void test_nn_fit_rejects_bad_learning_rate(void **state)
{
    fit_args *a = *state;
    const double bad[] = {0.0, -0.0, -0.01, -INFINITY, INFINITY, NAN, -NAN};
    size_t i;
    for (i = 0; i < sizeof bad / sizeof bad[0]; ++i) {
        a->options.learning_rate = bad[i];
        EXPECT_FIT_FAILS(a, NN_ERR_BAD_HYPERPARAMETER);
    }
}

static void test_nn_fit_rejects_zero_epochs(void **state)
{
    fit_args *a = *state;
    a->options.epochs = 0;
    EXPECT_FIT_FAILS(a, NN_ERR_BAD_HYPERPARAMETER);
}

static void test_nn_fit_rejects_wrong_options_struct_size(void **state)
{
    fit_args *a = *state;
    a->options.struct_size = 0;
    EXPECT_FIT_FAILS(a, NN_ERR_STRUCT_SIZE);
    a->options.struct_size = sizeof(nn_fit_options) + 64;
    EXPECT_FIT_FAILS(a, NN_ERR_STRUCT_SIZE);
    a->options.struct_size = SIZE_MAX;
    EXPECT_FIT_FAILS(a, NN_ERR_STRUCT_SIZE);
}

static void test_nn_fit_rejects_zero_report_struct_size(void **state)
{
    fit_args *a = *state;
    a->report.struct_size = 0;
    EXPECT_FIT_FAILS(a, NN_ERR_STRUCT_SIZE);
    a->report.struct_size = SIZE_MAX;
    EXPECT_FIT_FAILS(a, NN_ERR_STRUCT_SIZE);
}

/* rows × cols wraps to 0 in size_t: must be an overflow, never a read. */
static void test_nn_fit_rejects_overflowing_rows(void **state)
{
    fit_args *a = *state;
    a->rows = SIZE_MAX / 2 + 1;
    EXPECT_FIT_FAILS(a, NN_ERR_SIZE_OVERFLOW);
    /* rows × cols fits; rows × cols × sizeof(double) does not. */
    a->rows = SIZE_MAX / 8;
    EXPECT_FIT_FAILS(a, NN_ERR_SIZE_OVERFLOW);
    /* One-hot targets: rows × target_cols × sizeof(float) overflows as well. */
    a->rows = SIZE_MAX / 4;
    a->targets = onehot32;
    a->target_type = NN_TARGET_ROWS_FLOAT32;
    a->target_cols = OUTS;
    EXPECT_FIT_FAILS(a, NN_ERR_SIZE_OVERFLOW);
}

/* An option struct from an older caller is shorter; the library may accept it (and
 * then must not write the report past its struct_size) or refuse it. */
static void test_nn_fit_report_is_written_only_up_to_its_struct_size(void **state)
{
    fit_args *a = *state;
    nn_fit_report *report = malloc(sizeof *report);
    size_t prefix = offsetof(nn_fit_report, final_loss);
    const unsigned char *bytes = (const unsigned char *)report;
    nn_status st;
    size_t i;
    assert_non_null(report);
    memset(report, 0xAB, sizeof *report);
    report->struct_size = prefix;
    a->report_ptr = report;
    st = fit_call(a);
    assert_true(st == NN_OK || st == NN_ERR_STRUCT_SIZE);
    for (i = prefix; i < sizeof *report; ++i) assert_int_equal(bytes[i], 0xAB);
    if (st == NN_OK) assert_int_equal(report->epochs_run, 2);
    free(report);
}

/* 0.1's structs end before the trainer's fields. Its options train exactly as the same
 * fields in a full struct with the defaults for the rest, and its report is written
 * only as far as it goes. */
static void test_nn_fit_accepts_the_0_1_struct_sizes(void **state)
{
    fit_args *a = *state;
    const size_t opt_v01 = offsetof(nn_fit_options, optimizer), rep_v01 = offsetof(nn_fit_report, stopped_early);
    nn_fit_options *old_opts = malloc(sizeof *old_opts);
    nn_fit_report *old_rep = malloc(sizeof *old_rep);
    const unsigned char *rep_bytes = (const unsigned char *)old_rep;
    nn_model *twin = fixture_model(NN_LOSS_SOFTMAX_CROSS_ENTROPY);
    double p_old[64], p_new[64];
    size_t n = 0, i;
    assert_non_null(old_opts);
    assert_non_null(old_rep);
    /* The 0.1 prefix of the fixture's options; garbage where 0.2's fields would be. */
    memset(old_opts, 0x5A, sizeof *old_opts);
    memcpy(old_opts, &a->options, opt_v01);
    old_opts->struct_size = opt_v01;
    memset(old_rep, 0xAB, sizeof *old_rep);
    old_rep->struct_size = rep_v01;
    a->options_ptr = old_opts;
    a->report_ptr = old_rep;
    CAPI_OK(fit_call(a));
    for (i = rep_v01; i < sizeof *old_rep; ++i) assert_int_equal(rep_bytes[i], 0xAB);
    assert_int_equal(old_rep->epochs_run, a->options.epochs);
    /* The same fit with a full struct. */
    CAPI_OK(nn_fit(twin, a->x, a->x_dtype, a->rows, a->cols, a->targets, a->target_type, a->target_cols,
                   &a->options, NULL));
    CAPI_OK(nn_param_count(a->model, &n));
    assert_true(n <= 64);
    CAPI_OK(nn_get_params(a->model, p_old, 64));
    CAPI_OK(nn_get_params(twin, p_new, 64));
    assert_memory_equal(p_old, p_new, n * sizeof(double));
    nn_destroy(twin);
    free(old_opts);
    free(old_rep);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_nn_fit_args_fixture_is_valid),
        T(test_nn_fit_rejects_null_pointers),
        T(test_nn_fit_rejects_zero_rows),
        T(test_nn_fit_rejects_column_mismatch),
        T(test_nn_fit_rejects_wrong_target_cols),
        T(test_nn_fit_rejects_bad_enums),
        T(test_nn_fit_rejects_labels_out_of_range),
        T(test_nn_fit_rejects_nan_inputs),
        T(test_nn_fit_rejects_nan_float32_inputs),
        T(test_nn_fit_rejects_non_finite_float_targets),
        T(test_nn_fit_regression_rejects_non_finite_targets),
        T(test_nn_fit_rejects_zero_batch_size),
        T(test_nn_fit_rejects_bad_learning_rate),
        T(test_nn_fit_rejects_zero_epochs),
        T(test_nn_fit_rejects_wrong_options_struct_size),
        T(test_nn_fit_rejects_zero_report_struct_size),
        T(test_nn_fit_rejects_overflowing_rows),
        T(test_nn_fit_accepts_the_0_1_struct_sizes),
        T(test_nn_fit_report_is_written_only_up_to_its_struct_size),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
