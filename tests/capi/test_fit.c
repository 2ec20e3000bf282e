/* nn_fit behaviour: learning, the SGD rule, targets, reports, determinism, streams. */
#include "capi_test_util.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define ROWS 300
#define OUTS 3

static double x64[ROWS * 2];
static float x32[ROWS * 2];
static int32_t labels[ROWS];
static double onehot64[ROWS * OUTS];
static float onehot32[ROWS * OUTS];

static int setup_data(void **state)
{
    size_t r, c;
    (void)state;
    capi_blobs(x64, labels, ROWS, 5);
    for (r = 0; r < ROWS * 2; ++r) {
        x32[r] = (float)x64[r];
        x64[r] = x32[r]; /* representable in both dtypes */
    }
    for (r = 0; r < ROWS; ++r)
        for (c = 0; c < OUTS; ++c)
            onehot32[r * OUTS + c] = (float)(onehot64[r * OUTS + c] = labels[r] == (int32_t)c);
    return 0;
}

static nn_status fit_labels(nn_model *m, size_t rows, const nn_fit_options *o, nn_fit_report *rep)
{
    return nn_fit(m, x64, NN_DTYPE_FLOAT64, rows, 2, labels, NN_TARGET_CLASS_INDEX, 1, o, rep);
}

static void assert_same_training_state(nn_model *a, nn_model *b)
{
    capi_snapshot sa, sb;
    capi_snapshot_take(a, &sa);
    capi_snapshot_take(b, &sb);
    assert_int_equal(sa.n_params, sb.n_params);
    assert_memory_equal(sa.params, sb.params, sa.n_params * sizeof(double));
    assert_int_equal(sa.n_records, sb.n_records);
    assert_memory_equal(sa.records, sb.records, sa.n_records * sizeof(nn_loss_record));
    assert_int_equal(sa.n_epochs, sb.n_epochs);
    assert_memory_equal(sa.epoch_losses, sb.epoch_losses, sa.n_epochs * sizeof(double));
    capi_snapshot_free(&sa);
    capi_snapshot_free(&sb);
}

static void test_nn_fit_options_init_sets_the_book_defaults(void **state)
{
    nn_fit_options o;
    nn_fit_report r;
    (void)state;
    memset(&o, 0xCD, sizeof o);
    nn_fit_options_init(&o);
    assert_int_equal(o.struct_size, sizeof o);
    assert_int_equal(o.epochs, 10);
    assert_int_equal(o.batch_size, 32);
    assert_true(o.learning_rate == 0.01);
    assert_true(o.shuffle != 0);
    assert_int_equal(o.report_interval, 20);
    assert_null(o.rng);
    memset(&r, 0xCD, sizeof r);
    nn_fit_report_init(&r);
    assert_int_equal(r.struct_size, sizeof r);
    nn_fit_options_init(NULL);
    nn_fit_report_init(NULL);
}

static void train_and_check_learning(nn_dtype dtype)
{
    nn_model *model = capi_small_model(dtype, 1);
    nn_fit_options o = capi_fit_options(30, 30, 1.0, 10);
    double loss0, acc0, loss1, acc1, *params;
    size_t n, i;
    CAPI_OK(nn_evaluate(model, x64, NN_DTYPE_FLOAT64, ROWS, 2, labels, NN_TARGET_CLASS_INDEX, 1,
                        &loss0, &acc0));
    CAPI_OK(fit_labels(model, ROWS, &o, NULL));
    CAPI_OK(nn_evaluate(model, x64, NN_DTYPE_FLOAT64, ROWS, 2, labels, NN_TARGET_CLASS_INDEX, 1,
                        &loss1, &acc1));
    assert_true(fabs(loss0 - log(3.0)) < 0.05); /* tiny initial weights: uniform guesses */
    assert_true(loss1 < 0.5 * loss0);
    assert_true(acc1 > acc0);
    assert_true(acc1 >= 0.95);
    CAPI_OK(nn_param_count(model, &n));
    params = malloc(n * sizeof *params);
    assert_non_null(params);
    CAPI_OK(nn_get_params(model, params, n));
    for (i = 0; i < n; ++i) {
        assert_true(isfinite(params[i]));
        if (dtype == NN_DTYPE_FLOAT32) assert_true(params[i] == (double)(float)params[i]);
    }
    free(params);
    nn_destroy(model);
}

static void test_nn_fit_lowers_the_loss_and_raises_accuracy_float64(void **state)
{
    (void)state;
    train_and_check_learning(NN_DTYPE_FLOAT64);
}

static void test_nn_fit_lowers_the_loss_and_raises_accuracy_float32(void **state)
{
    (void)state;
    train_and_check_learning(NN_DTYPE_FLOAT32);
}

/* One full-batch step without shuffling is p -= lr·∇loss, for every activation and
 * both losses; the single loss record is that batch's loss. */
static void check_one_sgd_step(nn_activation act, nn_loss loss)
{
    static const size_t sizes[] = {2, 5, 4, 3};
    enum { R = 12 };
    nn_model_desc desc;
    nn_model *model = NULL;
    nn_fit_options o = capi_fit_options(1, R, 0.5, 1);
    double expect[64], got[64], targets[R * 3], manual_loss;
    nn_loss_record rec;
    size_t n = capi_mlp_param_count(sizes, 4), count = 0, i;
    nn_model_desc_init(&desc);
    desc.n_layer_sizes = 4;
    desc.layer_sizes = sizes;
    desc.dtype = NN_DTYPE_FLOAT64;
    desc.hidden_activation = act;
    desc.loss = loss;
    desc.init = NN_INIT_XAVIER; /* big enough weights that every layer matters */
    CAPI_OK(nn_create(&model, &desc));
    o.shuffle = 0;
    for (i = 0; i < R * 3; ++i) targets[i] = sin((double)i);
    assert_true(n <= 64);
    CAPI_OK(nn_get_params(model, expect, n));
    manual_loss = capi_mlp_sgd_step(expect, sizes, 4, act, loss, x64, R, labels, targets, 0.5);
    if (loss == NN_LOSS_SOFTMAX_CROSS_ENTROPY)
        CAPI_OK(fit_labels(model, R, &o, NULL));
    else
        CAPI_OK(nn_fit(model, x64, NN_DTYPE_FLOAT64, R, 2, targets, NN_TARGET_ROWS_FLOAT64, 3, &o,
                       NULL));
    CAPI_OK(nn_get_params(model, got, n));
    for (i = 0; i < n; ++i) {
        if (!capi_close(got[i], expect[i], 1e-12))
            print_error("act %d loss %d param %u: got %.17g expected %.17g\n", (int)act, (int)loss,
                        (unsigned)i, got[i], expect[i]);
        assert_true(capi_close(got[i], expect[i], 1e-12));
    }
    CAPI_OK(nn_get_loss_history(model, &rec, 1, &count));
    assert_int_equal(count, 1);
    assert_true(capi_close(rec.loss, manual_loss, 1e-12));
    nn_destroy(model);
}

static void test_nn_fit_one_step_matches_manual_sgd(void **state)
{
    (void)state;
    check_one_sgd_step(NN_ACTIVATION_SIGMOID, NN_LOSS_SOFTMAX_CROSS_ENTROPY);
    check_one_sgd_step(NN_ACTIVATION_RELU, NN_LOSS_SOFTMAX_CROSS_ENTROPY);
    check_one_sgd_step(NN_ACTIVATION_TANH, NN_LOSS_SOFTMAX_CROSS_ENTROPY);
    check_one_sgd_step(NN_ACTIVATION_IDENTITY, NN_LOSS_SOFTMAX_CROSS_ENTROPY);
    check_one_sgd_step(NN_ACTIVATION_SIGMOID, NN_LOSS_MEAN_SQUARED_ERROR);
    check_one_sgd_step(NN_ACTIVATION_TANH, NN_LOSS_MEAN_SQUARED_ERROR);
}

static void test_nn_fit_one_hot_and_class_index_targets_train_identically(void **state)
{
    nn_model *a = capi_small_model(NN_DTYPE_FLOAT64, 3), *b = capi_small_model(NN_DTYPE_FLOAT64, 3);
    nn_model *c = capi_small_model(NN_DTYPE_FLOAT64, 3);
    nn_fit_options o = capi_fit_options(3, 30, 1.0, 4);
    (void)state;
    CAPI_OK(fit_labels(a, ROWS, &o, NULL));
    CAPI_OK(nn_fit(b, x64, NN_DTYPE_FLOAT64, ROWS, 2, onehot64, NN_TARGET_ROWS_FLOAT64, OUTS, &o, NULL));
    CAPI_OK(nn_fit(c, x64, NN_DTYPE_FLOAT64, ROWS, 2, onehot32, NN_TARGET_ROWS_FLOAT32, OUTS, &o, NULL));
    assert_same_training_state(a, b);
    assert_same_training_state(a, c);
    nn_destroy(a);
    nn_destroy(b);
    nn_destroy(c);
}

/* Softmax models reduce target rows to their first maximal column, as the book does. */
static void test_nn_fit_soft_target_rows_reduce_to_their_first_maximum(void **state)
{
    static double soft[ROWS * OUTS];
    nn_model *a = capi_small_model(NN_DTYPE_FLOAT64, 3), *b = capi_small_model(NN_DTYPE_FLOAT64, 3);
    nn_fit_options o = capi_fit_options(2, 30, 1.0, 5);
    size_t r, c;
    (void)state;
    for (r = 0; r < ROWS; ++r) {
        for (c = 0; c < OUTS; ++c) soft[r * OUTS + c] = 0.1 * (double)c;
        soft[r * OUTS + (size_t)labels[r]] = 0.7;
        if (labels[r] == 0) soft[r * OUTS + 2] = 0.7; /* a tie: column 0 wins */
    }
    CAPI_OK(fit_labels(a, ROWS, &o, NULL));
    CAPI_OK(nn_fit(b, x64, NN_DTYPE_FLOAT64, ROWS, 2, soft, NN_TARGET_ROWS_FLOAT64, OUTS, &o, NULL));
    assert_same_training_state(a, b);
    nn_destroy(a);
    nn_destroy(b);
}

static void test_nn_fit_float32_inputs_equal_float64_inputs(void **state)
{
    nn_model *a = capi_small_model(NN_DTYPE_FLOAT64, 4), *b = capi_small_model(NN_DTYPE_FLOAT64, 4);
    nn_fit_options o = capi_fit_options(2, 30, 1.0, 5);
    (void)state;
    CAPI_OK(fit_labels(a, ROWS, &o, NULL));
    CAPI_OK(nn_fit(b, x32, NN_DTYPE_FLOAT32, ROWS, 2, labels, NN_TARGET_CLASS_INDEX, 1, &o, NULL));
    assert_same_training_state(a, b);
    nn_destroy(a);
    nn_destroy(b);
}

static void test_nn_fit_report_and_epoch_losses_describe_the_call(void **state)
{
    nn_model *model = capi_small_model(NN_DTYPE_FLOAT64, 1);
    nn_fit_options o = capi_fit_options(4, 20, 1.0, 10);
    nn_fit_report rep;
    nn_device_info dev;
    double losses[8];
    size_t count = 0;
    (void)state;
    nn_fit_report_init(&rep);
    CAPI_OK(fit_labels(model, 65, &o, &rep)); /* 65 rows: the 5-row tail is dropped */
    assert_int_equal(rep.struct_size, sizeof rep);
    assert_int_equal(rep.epochs_run, 4);
    assert_int_equal(rep.steps_per_epoch, 3);
    assert_int_equal(rep.steps_run, 12);
    assert_true(rep.seconds >= 0.0);
    CAPI_OK(nn_get_epoch_losses(model, losses, 8, &count));
    assert_int_equal(count, 4);
    assert_true(capi_close(rep.final_loss, losses[3], 1e-12));
    dev.struct_size = sizeof dev;
    CAPI_OK(nn_get_device(model, &dev));
    assert_int_equal(rep.device_kind, dev.kind);
    assert_int_equal(rep.device_index, dev.index);
    nn_destroy(model);
}

static void test_nn_fit_same_seed_trains_bit_identically(void **state)
{
    nn_model *a = capi_small_model(NN_DTYPE_FLOAT32, 8), *b = capi_small_model(NN_DTYPE_FLOAT32, 8);
    nn_fit_options o = capi_fit_options(5, 32, 0.5, 3);
    (void)state;
    CAPI_OK(fit_labels(a, ROWS, &o, NULL));
    CAPI_OK(fit_labels(b, ROWS, &o, NULL));
    CAPI_OK(fit_labels(a, ROWS, &o, NULL)); /* the model's own stream continues */
    CAPI_OK(fit_labels(b, ROWS, &o, NULL));
    assert_same_training_state(a, b);
    nn_destroy(a);
    nn_destroy(b);
}

static void test_nn_fit_null_options_means_the_defaults(void **state)
{
    nn_model *a = capi_small_model(NN_DTYPE_FLOAT64, 8), *b = capi_small_model(NN_DTYPE_FLOAT64, 8);
    nn_fit_options o;
    nn_fit_report rep;
    (void)state;
    nn_fit_options_init(&o);
    nn_fit_report_init(&rep);
    CAPI_OK(fit_labels(a, ROWS, NULL, &rep));
    CAPI_OK(fit_labels(b, ROWS, &o, NULL));
    assert_same_training_state(a, b);
    assert_int_equal(rep.epochs_run, 10);
    assert_int_equal(rep.steps_per_epoch, ROWS / 32);
    nn_destroy(a);
    nn_destroy(b);
}

/* Models with different own seeds but equal parameters shuffle alike only when
 * the shuffle comes from options.rng; that stream advances by one permutation per epoch. */
static void test_nn_fit_shuffle_uses_options_rng_not_model_stream(void **state)
{
    nn_model *a = capi_small_model(NN_DTYPE_FLOAT64, 1), *b = capi_small_model(NN_DTYPE_FLOAT64, 2);
    nn_model *c = capi_small_model(NN_DTYPE_FLOAT64, 3);
    nn_rng *ra = capi_rng(50), *rb = capi_rng(50), *twin = capi_rng(50);
    nn_fit_options o = capi_fit_options(3, 30, 1.0, 10);
    double params[39];
    int64_t perm[ROWS];
    capi_snapshot sa, sc;
    int e;
    (void)state;
    CAPI_OK(nn_get_params(a, params, 39));
    CAPI_OK(nn_set_params(b, params, 39));
    CAPI_OK(nn_set_params(c, params, 39));
    o.rng = ra;
    CAPI_OK(fit_labels(a, ROWS, &o, NULL));
    o.rng = rb;
    CAPI_OK(fit_labels(b, ROWS, &o, NULL));
    assert_same_training_state(a, b);
    for (e = 0; e < 3; ++e) CAPI_OK(nn_rng_permutation(twin, perm, ROWS));
    capi_assert_rng_in_step(ra, twin);
    o.rng = NULL;
    CAPI_OK(fit_labels(c, ROWS, &o, NULL)); /* c's own stream (seed 3) */
    capi_snapshot_take(a, &sa);
    capi_snapshot_take(c, &sc);
    assert_memory_not_equal(sa.params, sc.params, 39 * sizeof(double));
    capi_snapshot_free(&sa);
    capi_snapshot_free(&sc);
    nn_rng_destroy(ra);
    nn_rng_destroy(rb);
    nn_rng_destroy(twin);
    nn_destroy(a);
    nn_destroy(b);
    nn_destroy(c);
}

static void test_nn_fit_without_shuffle_draws_nothing(void **state)
{
    nn_model *a = capi_small_model(NN_DTYPE_FLOAT64, 1), *b = capi_small_model(NN_DTYPE_FLOAT64, 2);
    nn_rng *rng = capi_rng(50), *twin = capi_rng(50);
    nn_fit_options o = capi_fit_options(3, 30, 1.0, 10);
    double params[39];
    (void)state;
    CAPI_OK(nn_get_params(a, params, 39));
    CAPI_OK(nn_set_params(b, params, 39));
    o.shuffle = 0;
    o.rng = rng;
    CAPI_OK(fit_labels(a, ROWS, &o, NULL));
    capi_assert_rng_in_step(rng, twin);
    o.rng = NULL;
    CAPI_OK(fit_labels(b, ROWS, &o, NULL));
    assert_same_training_state(a, b);
    nn_rng_destroy(rng);
    nn_rng_destroy(twin);
    nn_destroy(a);
    nn_destroy(b);
}

static void test_nn_fit_accepts_batch_size_equal_to_rows(void **state)
{
    nn_model *model = capi_small_model(NN_DTYPE_FLOAT32, 1);
    nn_fit_options o = capi_fit_options(2, ROWS, 0.1, 1);
    nn_fit_report rep;
    (void)state;
    nn_fit_report_init(&rep);
    CAPI_OK(fit_labels(model, ROWS, &o, &rep));
    assert_int_equal(rep.steps_per_epoch, 1);
    assert_int_equal(rep.steps_run, 2);
    nn_destroy(model);
}

static void test_nn_fit_batch_larger_than_rows_trains_one_full_batch(void **state)
{
    nn_model *a = capi_small_model(NN_DTYPE_FLOAT64, 1), *b = capi_small_model(NN_DTYPE_FLOAT64, 1);
    nn_model *c = capi_small_model(NN_DTYPE_FLOAT64, 1);
    nn_fit_options full = capi_fit_options(2, ROWS, 0.1, 1), over = capi_fit_options(2, ROWS + 1, 0.1, 1);
    nn_fit_options huge = capi_fit_options(2, SIZE_MAX, 0.1, 1);
    nn_fit_report rep;
    (void)state;
    nn_fit_report_init(&rep);
    CAPI_OK(fit_labels(a, ROWS, &full, NULL));
    CAPI_OK(fit_labels(b, ROWS, &over, &rep));
    assert_int_equal(rep.steps_per_epoch, 1);
    assert_int_equal(rep.steps_run, 2);
    assert_same_training_state(a, b);
    CAPI_OK(fit_labels(c, ROWS, &huge, NULL));
    assert_same_training_state(a, c);
    nn_destroy(a);
    nn_destroy(b);
    nn_destroy(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nn_fit_options_init_sets_the_book_defaults),
        cmocka_unit_test(test_nn_fit_batch_larger_than_rows_trains_one_full_batch),
        cmocka_unit_test(test_nn_fit_lowers_the_loss_and_raises_accuracy_float64),
        cmocka_unit_test(test_nn_fit_lowers_the_loss_and_raises_accuracy_float32),
        cmocka_unit_test(test_nn_fit_one_step_matches_manual_sgd),
        cmocka_unit_test(test_nn_fit_one_hot_and_class_index_targets_train_identically),
        cmocka_unit_test(test_nn_fit_soft_target_rows_reduce_to_their_first_maximum),
        cmocka_unit_test(test_nn_fit_float32_inputs_equal_float64_inputs),
        cmocka_unit_test(test_nn_fit_report_and_epoch_losses_describe_the_call),
        cmocka_unit_test(test_nn_fit_same_seed_trains_bit_identically),
        cmocka_unit_test(test_nn_fit_null_options_means_the_defaults),
        cmocka_unit_test(test_nn_fit_shuffle_uses_options_rng_not_model_stream),
        cmocka_unit_test(test_nn_fit_without_shuffle_draws_nothing),
        cmocka_unit_test(test_nn_fit_accepts_batch_size_equal_to_rows),
    };
    return cmocka_run_group_tests(tests, setup_data, NULL);
}
