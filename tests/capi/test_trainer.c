/* The complete trainer (issue #3) through the public API: the new fit options' bad values,
 * the progress callback and cancellation, validation and early stopping, class weights,
 * continued training and the optimizer state, divergence, and the epoch history.
 *
 * Oracles are independent of the library's numbers: the plain MLP of capi_test_util for
 * single steps, twins trained another way that must agree (cancel at step k equals k steps
 * and no more; weights 3/1/0 equal tripled/kept/dropped rows), or properties the header
 * states (best_loss is the minimum of the history; the restored weights evaluate to it). */
#define _POSIX_C_SOURCE 199309L /* clock_gettime */
#include "capi_test_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SP_ROWS 300  /* the book's spiral, seed 1984 */
#define VAL_ROWS 60  /* another spiral (seed 7), 20 points per arm */
#define SUB_ROWS 60  /* 20 rows of each class of the book's spiral */
#define OUTS 3
#define N_PARAMS 63  /* the book's 2-10-3 net: W1 20, b1 10, W2 30, b2 3 */

static const size_t book_sizes[] = {2, 10, OUTS};

static double sp_x[SP_ROWS * 2];
static int32_t sp_y[SP_ROWS];
static double sp_onehot[SP_ROWS * OUTS];
static double val_x[VAL_ROWS * 2];
static int32_t val_y[VAL_ROWS];
static int32_t val_shifted[VAL_ROWS]; /* (class + 1) mod 3: learning the spiral hurts these */
static double val_onehot[VAL_ROWS * OUTS];
static double sub_x[SUB_ROWS * 2];
static int32_t sub_y[SUB_ROWS];

static int setup_data(void **state)
{
    size_t r, c;
    (void)state;
    CAPI_OK(nn_dataset_spiral(sp_x, SP_ROWS * 2, sp_y, SP_ROWS, SP_ROWS / OUTS, OUTS, NULL, 1984));
    CAPI_OK(nn_dataset_spiral(val_x, VAL_ROWS * 2, val_y, VAL_ROWS, VAL_ROWS / OUTS, OUTS, NULL, 7));
    for (r = 0; r < SP_ROWS; ++r)
        for (c = 0; c < OUTS; ++c) sp_onehot[r * OUTS + c] = sp_y[r] == (int32_t)c;
    for (r = 0; r < VAL_ROWS; ++r) {
        val_shifted[r] = (val_y[r] + 1) % OUTS;
        for (c = 0; c < OUTS; ++c) val_onehot[r * OUTS + c] = val_y[r] == (int32_t)c;
    }
    /* The spiral is class-major (100 rows per arm): take every 5th row of each arm,
     * interleaved by class. */
    for (r = 0; r < SUB_ROWS; ++r) {
        size_t src = (r % OUTS) * 100 + 5 * (r / OUTS);
        sub_x[2 * r] = sp_x[2 * src];
        sub_x[2 * r + 1] = sp_x[2 * src + 1];
        sub_y[r] = sp_y[src];
        assert_int_equal(sub_y[r], (int32_t)(r % OUTS));
    }
    return 0;
}

/* ---- builders and state comparison ------------------------------------------------- */

static nn_model *net(nn_activation act, nn_loss loss, nn_init init, uint32_t seed)
{
    nn_model_desc desc;
    nn_model *m = NULL;
    nn_model_desc_init(&desc);
    desc.n_layer_sizes = 3;
    desc.layer_sizes = book_sizes;
    desc.dtype = NN_DTYPE_FLOAT64;
    desc.hidden_activation = act;
    desc.loss = loss;
    desc.init = init;
    desc.seed = seed;
    CAPI_OK(nn_create(&m, &desc));
    assert_non_null(m);
    return m;
}

/* The book's TwoLayerNet(2, 10, 3) in float64. */
static nn_model *book_model(uint32_t seed)
{
    return capi_model(NN_DTYPE_FLOAT64, book_sizes, 3, seed);
}

static nn_status fit_spiral(nn_model *m, const nn_fit_options *o, nn_fit_report *rep)
{
    return nn_fit(m, sp_x, NN_DTYPE_FLOAT64, SP_ROWS, 2, sp_y, NN_TARGET_CLASS_INDEX, 1, o, rep);
}

static nn_fit_options opts(nn_optimizer opt, size_t epochs, double lr, size_t interval)
{
    nn_fit_options o = capi_fit_options(epochs, 30, lr, interval);
    o.optimizer = opt;
    return o;
}

static void set_validation(nn_fit_options *o, const double *x, size_t rows, const int32_t *labels)
{
    o->val_x = x;
    o->val_x_dtype = NN_DTYPE_FLOAT64;
    o->val_rows = rows;
    o->val_cols = 2;
    o->val_targets = labels;
    o->val_target_type = NN_TARGET_CLASS_INDEX;
    o->val_target_cols = 1;
}

/* The epoch history, malloc'ed (never NULL); its length in *count. */
static nn_epoch_record *history_of(nn_model *m, size_t *count)
{
    size_t n = 0, got = 0;
    nn_epoch_record *h;
    CAPI_OK(nn_get_epoch_history(m, NULL, 0, &n));
    h = calloc(n + 1, sizeof *h);
    assert_non_null(h);
    if (n > 0) {
        CAPI_OK(nn_get_epoch_history(m, h, n, &got));
        assert_int_equal(got, n);
    }
    *count = n;
    return h;
}

static size_t loss_record_count(nn_model *m)
{
    size_t n = 0;
    CAPI_OK(nn_get_loss_history(m, NULL, 0, &n));
    return n;
}

/* Everything a failed call must leave alone: capi_snapshot plus the epoch history. */
typedef struct tr_state {
    capi_snapshot s;
    size_t n_hist;
    nn_epoch_record *hist;
} tr_state;

static void tr_take(nn_model *m, tr_state *t)
{
    capi_snapshot_take(m, &t->s);
    t->hist = history_of(m, &t->n_hist);
}

static void tr_free(tr_state *t)
{
    capi_snapshot_free(&t->s);
    free(t->hist);
    t->hist = NULL;
}

static void tr_assert_same(nn_model *m, const tr_state *t)
{
    size_t n = 0;
    nn_epoch_record *h;
    capi_snapshot_assert_same(m, &t->s);
    h = history_of(m, &n);
    assert_int_equal(n, t->n_hist);
    if (n > 0) assert_memory_equal(h, t->hist, n * sizeof *h);
    free(h);
}

/* Both models hold bit-identical parameters and histories. */
static void assert_models_same(nn_model *a, nn_model *b)
{
    tr_state sa, sb;
    tr_take(a, &sa);
    tr_take(b, &sb);
    assert_int_equal(sa.s.n_params, sb.s.n_params);
    assert_memory_equal(sa.s.params, sb.s.params, sa.s.n_params * sizeof(double));
    assert_int_equal(sa.s.n_records, sb.s.n_records);
    if (sa.s.n_records > 0)
        assert_memory_equal(sa.s.records, sb.s.records, sa.s.n_records * sizeof(nn_loss_record));
    assert_int_equal(sa.n_hist, sb.n_hist);
    if (sa.n_hist > 0) assert_memory_equal(sa.hist, sb.hist, sa.n_hist * sizeof(nn_epoch_record));
    tr_free(&sa);
    tr_free(&sb);
}

static int params_equal(nn_model *a, nn_model *b)
{
    double pa[N_PARAMS], pb[N_PARAMS];
    assert_int_equal(capi_params_of(a, pa, N_PARAMS), N_PARAMS);
    assert_int_equal(capi_params_of(b, pb, N_PARAMS), N_PARAMS);
    return memcmp(pa, pb, sizeof pa) == 0;
}

/* Calls nn_fit once after setting an error marker; asserts the status and a fresh message. */
#define FIT_EXPECT(want, call)                                                    \
    do {                                                                          \
        nn_status fe_s_;                                                          \
        capi_mark_error(0);                                                       \
        fe_s_ = (call);                                                           \
        if (fe_s_ != (want)) capi_report_status(#call, fe_s_, (want), (want));    \
        assert_int_equal(fe_s_, (want));                                          \
        if (!capi_error_is_fresh()) print_error("%s: no new message\n", #call);  \
        assert_true(capi_error_is_fresh());                                       \
    } while (0)

/* ---- a progress log ----------------------------------------------------------------- */

#define MAX_EVENTS 512

typedef struct prog_log {
    size_t n;                 /* calls seen (events beyond MAX_EVENTS are counted, not kept) */
    nn_progress ev[MAX_EVENTS];
    size_t wrong_user;        /* calls whose user pointer was not this log */
    size_t n_reports;
    size_t cancel_at_call;    /* non-zero: return non-zero at this 1-based call */
    size_t cancel_at_report;  /* non-zero: return non-zero at this 1-based REPORT */
    uint64_t cancel_at_epoch_end; /* non-zero: return non-zero at this epoch's EPOCH_END */
    int cancel_value;         /* what to return when cancelling */
} prog_log;

/* The callback finds the log without trusting `user`, so that a wrong pointer is counted
 * rather than dereferenced; it never asserts (no longjmp through the library). */
static prog_log *g_log;

static int log_progress(const nn_progress *p, void *user)
{
    prog_log *log = g_log;
    if (user != (void *)log) log->wrong_user++;
    if (log->n < MAX_EVENTS) memcpy(&log->ev[log->n], p, sizeof *p);
    log->n++;
    if (p->event == NN_PROGRESS_REPORT) log->n_reports++;
    if (log->cancel_at_call != 0 && log->n == log->cancel_at_call) return log->cancel_value;
    if (log->cancel_at_report != 0 && p->event == NN_PROGRESS_REPORT &&
        log->n_reports == log->cancel_at_report)
        return log->cancel_value;
    if (log->cancel_at_epoch_end != 0 && p->event == NN_PROGRESS_EPOCH_END &&
        p->epoch == log->cancel_at_epoch_end)
        return log->cancel_value;
    return 0;
}

static prog_log *new_log(nn_fit_options *o)
{
    prog_log *log = calloc(1, sizeof *log);
    assert_non_null(log);
    log->cancel_value = 1;
    g_log = log;
    o->progress = log_progress;
    o->progress_user = log;
    return log;
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ====================================================================================== */
/* Defaults and the report                                                                 */
/* ====================================================================================== */

static void test_nn_fit_options_init_sets_the_trainer_defaults(void **state)
{
    nn_fit_options o;
    (void)state;
    memset(&o, 0xCD, sizeof o);
    nn_fit_options_init(&o);
    assert_int_equal(o.struct_size, sizeof o);
    assert_int_equal(o.optimizer, NN_OPTIMIZER_SGD);
    assert_true(o.momentum == 0.9);
    assert_true(o.decay_rate == 0.99);
    assert_true(o.beta1 == 0.9);
    assert_true(o.beta2 == 0.999);
    assert_true(o.epsilon == 1e-7);
    assert_true(o.max_grad_norm == 0.0);
    assert_true(o.weight_decay == 0.0);
    assert_null(o.class_weights);
    assert_int_equal(o.n_class_weights, 0);
    assert_null(o.val_x);
    assert_int_equal(o.val_rows, 0);
    assert_null(o.val_targets);
    assert_true(o.validation_fraction == 0.0);
    assert_int_equal(o.early_stopping, 0);
    assert_int_equal(o.patience, 10);
    assert_true(o.min_delta == 0.0);
    assert_true(o.restore_best != 0);
    assert_true(o.progress == NULL);
    assert_null(o.progress_user);
}

/* Without validation or early stopping the new report fields say "none". */
static void test_nn_fit_report_without_validation_has_no_validation_figures(void **state)
{
    nn_model *m = book_model(1984);
    nn_fit_options o = opts(NN_OPTIMIZER_SGD, 2, 1.0, 10);
    nn_fit_report rep;
    nn_epoch_record *h;
    size_t n = 0, i;
    (void)state;
    memset(&rep, 0x5A, sizeof rep);
    nn_fit_report_init(&rep);
    CAPI_OK(fit_spiral(m, &o, &rep));
    assert_int_equal(rep.epochs_run, 2);
    assert_int_equal(rep.stopped_early, 0);
    assert_int_equal(rep.best_epoch, 0);
    assert_true(isnan(rep.best_loss));
    assert_true(isnan(rep.final_val_loss));
    assert_true(isnan(rep.final_val_accuracy));
    h = history_of(m, &n);
    assert_int_equal(n, 2);
    for (i = 0; i < n; ++i) {
        assert_true(isnan(h[i].val_loss));
        assert_true(isnan(h[i].val_accuracy));
    }
    assert_true(rep.final_loss == h[1].loss);
    free(h);
    nn_destroy(m);
}

/* ====================================================================================== */
/* Bad option values: rejected before any change                                           */
/* ====================================================================================== */

typedef struct bad_fx {
    nn_model *model, *twin; /* twins trained alike (Adam, 2 epochs, with validation) */
    const void *x;
    size_t rows;
    const void *targets;
    nn_target_type target_type;
    size_t target_cols;
    nn_fit_options o; /* a valid Adam call; each test breaks one thing */
} bad_fx;

static void bad_fx_reset_call(bad_fx *f)
{
    f->x = sp_x;
    f->rows = SP_ROWS;
    f->targets = sp_y;
    f->target_type = NN_TARGET_CLASS_INDEX;
    f->target_cols = 1;
    f->o = opts(NN_OPTIMIZER_ADAM, 2, 0.01, 5);
}

static int bad_setup(void **state)
{
    bad_fx *f = calloc(1, sizeof *f);
    nn_fit_options o = opts(NN_OPTIMIZER_ADAM, 2, 0.01, 5);
    if (f == NULL) return -1;
    set_validation(&o, val_x, VAL_ROWS, val_y);
    f->model = book_model(3);
    f->twin = book_model(3);
    CAPI_OK(fit_spiral(f->model, &o, NULL));
    CAPI_OK(fit_spiral(f->twin, &o, NULL));
    bad_fx_reset_call(f);
    *state = f;
    return 0;
}

static int bad_teardown(void **state)
{
    bad_fx *f = *state;
    nn_destroy(f->model);
    nn_destroy(f->twin);
    free(f);
    return 0;
}

static nn_status bad_fit(bad_fx *f)
{
    return nn_fit(f->model, f->x, NN_DTYPE_FLOAT64, f->rows, 2, f->targets, f->target_type,
                  f->target_cols, &f->o, NULL);
}

/* nn_fit must fail with want1/want2 and a fresh message, leaving the model (parameters,
 * predictions, both histories, device) and options.rng exactly as they were. */
static void expect_fails(bad_fx *f, nn_status want1, nn_status want2, int line)
{
    tr_state before;
    nn_rng *rng = capi_rng(2024), *twin = capi_rng(2024);
    nn_fit_options saved = f->o;
    nn_status st;
    tr_take(f->model, &before);
    f->o.rng = rng;
    capi_mark_error(0);
    st = bad_fit(f);
    if (!capi_error_is_fresh()) {
        capi_mark_error(1);
        st = bad_fit(f);
    }
    if (st != want1 && st != want2) {
        print_error("line %d: ", line);
        capi_report_status("nn_fit", st, want1, want2);
    }
    assert_true(st == want1 || st == want2);
    if (!capi_error_is_fresh()) print_error("line %d: no new error message\n", line);
    assert_true(capi_error_is_fresh());
    tr_assert_same(f->model, &before);
    capi_assert_rng_in_step(rng, twin);
    tr_free(&before);
    nn_rng_destroy(rng);
    nn_rng_destroy(twin);
    f->o = saved;
}

#define EXPECT_FAILS(f, want) expect_fails((f), (want), (want), __LINE__)

/* The optimizer state (Adam's moments and step count) was not touched either: one more
 * Adam epoch on the model and on its untouched twin gives bit-identical results. */
static void assert_optimizer_state_kept(bad_fx *f)
{
    nn_fit_options o = opts(NN_OPTIMIZER_ADAM, 1, 0.01, 5);
    CAPI_OK(fit_spiral(f->model, &o, NULL));
    CAPI_OK(fit_spiral(f->twin, &o, NULL));
    assert_models_same(f->model, f->twin);
}

/* The boundary values just inside each range are accepted, so every rejection below is
 * the value's own. */
static void test_nn_fit_accepts_the_edges_of_each_range(void **state)
{
    bad_fx *f = *state;
    static const double some_zero[OUTS] = {0.0, 1.0, 2.5};
    tr_state before;
    tr_take(f->model, &before);
    CAPI_OK(bad_fit(f));
    f->o.optimizer = NN_OPTIMIZER_MOMENTUM;
    f->o.momentum = 0.0;
    CAPI_OK(bad_fit(f));
    f->o.optimizer = NN_OPTIMIZER_NESTEROV;
    f->o.momentum = 0.999;
    CAPI_OK(bad_fit(f));
    f->o.optimizer = NN_OPTIMIZER_RMSPROP;
    f->o.decay_rate = 0.5;
    f->o.epsilon = 1e-300;
    CAPI_OK(bad_fit(f));
    bad_fx_reset_call(f);
    f->o.beta1 = 1e-9;
    f->o.beta2 = 0.999999;
    f->o.max_grad_norm = 0.0;
    f->o.weight_decay = 0.0;
    CAPI_OK(bad_fit(f));
    f->o.class_weights = some_zero;
    f->o.n_class_weights = OUTS;
    CAPI_OK(bad_fit(f));
    bad_fx_reset_call(f);
    f->o.validation_fraction = 0.5;
    CAPI_OK(bad_fit(f));
    f->o.validation_fraction = 0.0;
    f->o.early_stopping = 1;
    f->o.patience = 0;
    f->o.min_delta = 0.0;
    CAPI_OK(bad_fit(f));
    bad_fx_reset_call(f);
    set_validation(&f->o, val_x, VAL_ROWS, val_y);
    CAPI_OK(bad_fit(f));
    f->o.val_targets = val_onehot;
    f->o.val_target_type = NN_TARGET_ROWS_FLOAT64;
    f->o.val_target_cols = OUTS;
    CAPI_OK(bad_fit(f));
    /* Two rows, half held out: one on each side. */
    bad_fx_reset_call(f);
    f->rows = 2;
    f->o.validation_fraction = 0.5;
    CAPI_OK(bad_fit(f));
    {
        size_t n = 0;
        nn_epoch_record *h = history_of(f->model, &n);
        assert_true(n > before.n_hist);
        free(h);
    }
    tr_free(&before);
}

static void test_nn_fit_rejects_bad_momentum(void **state)
{
    bad_fx *f = *state;
    const double bad[] = {-0.1, -1e-300, 1.0, 1.5, NAN, INFINITY, -INFINITY};
    size_t i;
    for (i = 0; i < sizeof bad / sizeof bad[0]; ++i) {
        f->o.optimizer = NN_OPTIMIZER_MOMENTUM;
        f->o.momentum = bad[i];
        EXPECT_FAILS(f, NN_ERR_BAD_HYPERPARAMETER);
        f->o.optimizer = NN_OPTIMIZER_NESTEROV;
        f->o.momentum = bad[i];
        EXPECT_FAILS(f, NN_ERR_BAD_HYPERPARAMETER);
    }
    assert_optimizer_state_kept(f);
}

static void test_nn_fit_rejects_bad_decay_rate_and_betas(void **state)
{
    bad_fx *f = *state;
    const double bad[] = {0.0, -0.0, -0.5, 1.0, 2.0, NAN, INFINITY};
    size_t i;
    for (i = 0; i < sizeof bad / sizeof bad[0]; ++i) {
        f->o.optimizer = NN_OPTIMIZER_RMSPROP;
        f->o.decay_rate = bad[i];
        EXPECT_FAILS(f, NN_ERR_BAD_HYPERPARAMETER);
        f->o.optimizer = NN_OPTIMIZER_ADAM;
        f->o.beta1 = bad[i];
        EXPECT_FAILS(f, NN_ERR_BAD_HYPERPARAMETER);
        f->o.beta2 = bad[i];
        EXPECT_FAILS(f, NN_ERR_BAD_HYPERPARAMETER);
    }
    assert_optimizer_state_kept(f);
}

static void test_nn_fit_rejects_bad_epsilon(void **state)
{
    bad_fx *f = *state;
    const double bad[] = {0.0, -0.0, -1e-7, NAN, -INFINITY, INFINITY};
    const nn_optimizer users[] = {NN_OPTIMIZER_ADAGRAD, NN_OPTIMIZER_RMSPROP, NN_OPTIMIZER_ADAM};
    size_t i, k;
    for (k = 0; k < 3; ++k)
        for (i = 0; i < sizeof bad / sizeof bad[0]; ++i) {
            f->o.optimizer = users[k];
            f->o.epsilon = bad[i];
            EXPECT_FAILS(f, NN_ERR_BAD_HYPERPARAMETER);
        }
    assert_optimizer_state_kept(f);
}

static void test_nn_fit_rejects_bad_clipping_and_weight_decay(void **state)
{
    bad_fx *f = *state;
    const double bad[] = {-1.0, -1e-300, NAN, INFINITY, -INFINITY};
    size_t i;
    for (i = 0; i < sizeof bad / sizeof bad[0]; ++i) {
        f->o.max_grad_norm = bad[i];
        EXPECT_FAILS(f, NN_ERR_BAD_HYPERPARAMETER);
        f->o.weight_decay = bad[i];
        EXPECT_FAILS(f, NN_ERR_BAD_HYPERPARAMETER);
        f->o.optimizer = NN_OPTIMIZER_SGD;
        f->o.weight_decay = bad[i];
        EXPECT_FAILS(f, NN_ERR_BAD_HYPERPARAMETER);
    }
    assert_optimizer_state_kept(f);
}

static void test_nn_fit_rejects_unknown_optimizer(void **state)
{
    bad_fx *f = *state;
    const int bad[] = {6, 7, -1, 1000, INT32_MIN};
    size_t i;
    for (i = 0; i < sizeof bad / sizeof bad[0]; ++i) {
        f->o.optimizer = (nn_optimizer)bad[i];
        EXPECT_FAILS(f, NN_ERR_INVALID_ARGUMENT);
    }
    assert_optimizer_state_kept(f);
}

static void test_nn_fit_rejects_bad_validation_fraction(void **state)
{
    bad_fx *f = *state;
    const double bad[] = {-0.1, -1e-300, 1.0, 1.5, NAN, INFINITY, -INFINITY};
    size_t i;
    for (i = 0; i < sizeof bad / sizeof bad[0]; ++i) {
        f->o.validation_fraction = bad[i];
        EXPECT_FAILS(f, NN_ERR_BAD_HYPERPARAMETER);
    }
    /* ceil(0.999 · 300) = 300 rows held out: none left to train on. */
    f->o.validation_fraction = 0.999;
    EXPECT_FAILS(f, NN_ERR_BAD_HYPERPARAMETER);
    /* One row: any fraction holds it out. */
    f->rows = 1;
    f->o.validation_fraction = 0.5;
    EXPECT_FAILS(f, NN_ERR_BAD_HYPERPARAMETER);
    f->o.validation_fraction = 1e-9;
    EXPECT_FAILS(f, NN_ERR_BAD_HYPERPARAMETER);
    bad_fx_reset_call(f);
    assert_optimizer_state_kept(f);
}

static void test_nn_fit_rejects_bad_early_stopping_values(void **state)
{
    bad_fx *f = *state;
    const double bad_delta[] = {-1e-3, -1e-300, NAN, INFINITY, -INFINITY};
    size_t i;
    f->o.early_stopping = 1;
    f->o.patience = -1;
    EXPECT_FAILS(f, NN_ERR_BAD_HYPERPARAMETER);
    f->o.patience = INT32_MIN;
    EXPECT_FAILS(f, NN_ERR_BAD_HYPERPARAMETER);
    f->o.patience = 3;
    for (i = 0; i < sizeof bad_delta / sizeof bad_delta[0]; ++i) {
        f->o.min_delta = bad_delta[i];
        EXPECT_FAILS(f, NN_ERR_BAD_HYPERPARAMETER);
    }
    assert_optimizer_state_kept(f);
}

/* A validation set of the wrong width: its inputs (val_cols) or its targets. */
static void test_nn_fit_rejects_wrong_width_validation_targets(void **state)
{
    bad_fx *f = *state;
    set_validation(&f->o, val_x, VAL_ROWS, val_y);
    f->o.val_cols = 3;
    EXPECT_FAILS(f, NN_ERR_SHAPE_MISMATCH);
    f->o.val_cols = 0;
    EXPECT_FAILS(f, NN_ERR_SHAPE_MISMATCH);
    f->o.val_cols = 2;
    f->o.val_target_cols = OUTS; /* class indices need 1 */
    EXPECT_FAILS(f, NN_ERR_SHAPE_MISMATCH);
    f->o.val_target_cols = 0;
    EXPECT_FAILS(f, NN_ERR_SHAPE_MISMATCH);
    f->o.val_targets = val_onehot;
    f->o.val_target_type = NN_TARGET_ROWS_FLOAT64;
    f->o.val_target_cols = OUTS - 1;
    EXPECT_FAILS(f, NN_ERR_SHAPE_MISMATCH);
    f->o.val_target_cols = OUTS + 1;
    EXPECT_FAILS(f, NN_ERR_SHAPE_MISMATCH);
    f->o.val_target_cols = 1;
    EXPECT_FAILS(f, NN_ERR_SHAPE_MISMATCH);
    assert_optimizer_state_kept(f);
}

static void test_nn_fit_rejects_bad_validation_sets(void **state)
{
    bad_fx *f = *state;
    /* val_rows is a count that may not be 0 once val_x is set: nn.h's INVALID_ARGUMENT. */
    set_validation(&f->o, val_x, 0, val_y);
    EXPECT_FAILS(f, NN_ERR_INVALID_ARGUMENT);
    set_validation(&f->o, val_x, VAL_ROWS, NULL);
    EXPECT_FAILS(f, NN_ERR_NULL_POINTER);
    set_validation(&f->o, val_x, VAL_ROWS, val_y);
    f->o.val_x_dtype = (nn_dtype)7;
    EXPECT_FAILS(f, NN_ERR_INVALID_ARGUMENT);
    f->o.val_x_dtype = (nn_dtype)-1;
    EXPECT_FAILS(f, NN_ERR_INVALID_ARGUMENT);
    f->o.val_x_dtype = NN_DTYPE_FLOAT64;
    f->o.val_target_type = (nn_target_type)9;
    EXPECT_FAILS(f, NN_ERR_INVALID_ARGUMENT);
    assert_optimizer_state_kept(f);
}

static void test_nn_fit_rejects_non_finite_validation_data(void **state)
{
    bad_fx *f = *state;
    const double bad[] = {NAN, INFINITY, -INFINITY};
    size_t i;
    for (i = 0; i < 3; ++i) {
        double saved = val_x[VAL_ROWS * 2 - 1];
        set_validation(&f->o, val_x, VAL_ROWS, val_y);
        val_x[VAL_ROWS * 2 - 1] = bad[i]; /* the last element: nothing before it is enough */
        EXPECT_FAILS(f, NN_ERR_NON_FINITE);
        val_x[VAL_ROWS * 2 - 1] = saved;
        f->o.val_targets = val_onehot;
        f->o.val_target_type = NN_TARGET_ROWS_FLOAT64;
        f->o.val_target_cols = OUTS;
        saved = val_onehot[VAL_ROWS * OUTS - 1];
        val_onehot[VAL_ROWS * OUTS - 1] = bad[i];
        EXPECT_FAILS(f, NN_ERR_NON_FINITE);
        val_onehot[VAL_ROWS * OUTS - 1] = saved;
    }
    assert_optimizer_state_kept(f);
}

static void test_nn_fit_rejects_validation_labels_out_of_range(void **state)
{
    bad_fx *f = *state;
    const int32_t bad[] = {-1, OUTS, INT32_MIN, INT32_MAX};
    int32_t saved = val_y[VAL_ROWS - 1];
    size_t i;
    set_validation(&f->o, val_x, VAL_ROWS, val_y);
    for (i = 0; i < sizeof bad / sizeof bad[0]; ++i) {
        val_y[VAL_ROWS - 1] = bad[i];
        EXPECT_FAILS(f, NN_ERR_LABEL_OUT_OF_RANGE);
    }
    val_y[VAL_ROWS - 1] = saved;
    assert_optimizer_state_kept(f);
}

static void test_nn_fit_rejects_class_weight_count_mismatch(void **state)
{
    bad_fx *f = *state;
    static const double w[OUTS + 1] = {1.0, 2.0, 3.0, 4.0};
    f->o.class_weights = w;
    f->o.n_class_weights = OUTS - 1;
    EXPECT_FAILS(f, NN_ERR_SHAPE_MISMATCH);
    f->o.n_class_weights = OUTS + 1;
    EXPECT_FAILS(f, NN_ERR_SHAPE_MISMATCH);
    /* Weights given with a count of 0: the count is not the number of outputs. */
    f->o.n_class_weights = 0;
    EXPECT_FAILS(f, NN_ERR_SHAPE_MISMATCH);
    /* A count without weights: nn.h's convention for "NULL with n > 0" (nn_rng_randn,
     * nn_get_loss_history) is NULL_POINTER; the field's own text is silent. */
    f->o.class_weights = NULL;
    f->o.n_class_weights = OUTS;
    EXPECT_FAILS(f, NN_ERR_NULL_POINTER);
    assert_optimizer_state_kept(f);
}

static void test_nn_fit_rejects_bad_class_weight_values(void **state)
{
    bad_fx *f = *state;
    static const double bad[][OUTS] = {
        {-1.0, 1.0, 1.0}, {1.0, 1.0, -1e-300}, {NAN, 1.0, 1.0}, {1.0, INFINITY, 1.0},
        {1.0, 1.0, -INFINITY}, {0.0, 0.0, 0.0}, {-0.0, 0.0, -0.0},
    };
    size_t i;
    for (i = 0; i < sizeof bad / sizeof bad[0]; ++i) {
        f->o.class_weights = bad[i];
        f->o.n_class_weights = OUTS;
        EXPECT_FAILS(f, NN_ERR_BAD_HYPERPARAMETER);
    }
    assert_optimizer_state_kept(f);
}

static void test_nn_fit_rejects_class_weights_on_a_regression_model(void **state)
{
    bad_fx *f = *state;
    static const double ones[OUTS] = {1.0, 1.0, 1.0};
    nn_model *softmax = f->model;
    f->model = net(NN_ACTIVATION_SIGMOID, NN_LOSS_MEAN_SQUARED_ERROR, NN_INIT_NORMAL, 3);
    f->targets = sp_onehot;
    f->target_type = NN_TARGET_ROWS_FLOAT64;
    f->target_cols = OUTS;
    f->o.class_weights = ones;
    f->o.n_class_weights = OUTS;
    EXPECT_FAILS(f, NN_ERR_BAD_HYPERPARAMETER);
    f->o.class_weights = NULL;
    f->o.n_class_weights = 0;
    CAPI_OK(bad_fit(f)); /* the same call without weights is fine */
    nn_destroy(f->model);
    f->model = softmax;
    bad_fx_reset_call(f);
    assert_optimizer_state_kept(f);
}

/* ====================================================================================== */
/* Progress and cancellation                                                               */
/* ====================================================================================== */

/* 300 rows, batch 30: 10 steps per epoch; interval 3 records iterations 1, 4, 7 and 10,
 * each followed in the event stream by nothing but the next; EPOCH_END closes each epoch. */
static void test_nn_fit_progress_follows_the_records_and_epochs(void **state)
{
    nn_model *m = book_model(1984);
    nn_fit_options o = opts(NN_OPTIMIZER_SGD, 3, 1.0, 3);
    prog_log *log = new_log(&o);
    nn_fit_report rep;
    nn_loss_record rec[32];
    nn_epoch_record *h;
    size_t n_rec = 0, n_hist = 0, k = 0, epoch_ends = 0;
    double t0, t1, prev = 0.0;
    uint64_t e, it;
    (void)state;
    nn_fit_report_init(&rep);
    t0 = now_seconds();
    CAPI_OK(fit_spiral(m, &o, &rep));
    t1 = now_seconds();
    assert_int_equal(log->wrong_user, 0);
    assert_int_equal(log->n, 3 * (4 + 1));
    CAPI_OK(nn_get_loss_history(m, rec, 32, &n_rec));
    assert_int_equal(n_rec, 12);
    h = history_of(m, &n_hist);
    assert_int_equal(n_hist, 3);
    for (e = 1; e <= 3; ++e) {
        for (it = 1; it <= 10; it += 3) {
            const nn_progress *p = &log->ev[k++];
            const nn_loss_record *r = &rec[(e - 1) * 4 + (it - 1) / 3];
            assert_int_equal(p->struct_size, sizeof(nn_progress));
            assert_int_equal(p->event, NN_PROGRESS_REPORT);
            assert_int_equal(p->epoch, e);
            assert_int_equal(p->iteration, it);
            assert_int_equal(p->steps_per_epoch, 10);
            assert_int_equal(r->epoch, e);
            assert_int_equal(r->iteration, it);
            assert_true(p->loss == r->loss); /* the record itself, not a recomputation */
            assert_true(isnan(p->val_loss) && isnan(p->val_accuracy));
            assert_true(p->elapsed_seconds >= prev);
            prev = p->elapsed_seconds;
        }
        {
            const nn_progress *p = &log->ev[k++];
            assert_int_equal(p->struct_size, sizeof(nn_progress));
            assert_int_equal(p->event, NN_PROGRESS_EPOCH_END);
            assert_int_equal(p->epoch, e);
            assert_int_equal(p->iteration, 10);
            assert_int_equal(p->steps_per_epoch, 10);
            assert_true(p->loss == h[e - 1].loss);
            assert_true(isnan(p->val_loss) && isnan(p->val_accuracy));
            assert_true(p->elapsed_seconds >= prev);
            prev = p->elapsed_seconds;
            ++epoch_ends;
        }
    }
    assert_true(log->ev[0].elapsed_seconds >= 0.0);
    assert_true(prev <= (t1 - t0) + 1e-3);
    assert_int_equal(epoch_ends, rep.epochs_run);

    /* A second call counts epochs over the model's life. */
    memset(log, 0, sizeof *log);
    log->cancel_value = 1;
    o.epochs = 1;
    CAPI_OK(fit_spiral(m, &o, NULL));
    assert_int_equal(log->n, 5);
    assert_int_equal(log->ev[0].epoch, 4);
    assert_int_equal(log->ev[0].iteration, 1);
    assert_int_equal(log->ev[4].event, NN_PROGRESS_EPOCH_END);
    assert_int_equal(log->ev[4].epoch, 4);
    free(h);
    free(log);
    nn_destroy(m);
}

/* report_interval 0 keeps no records, so only the epoch ends are reported. */
static void test_nn_fit_progress_without_records_reports_epoch_ends(void **state)
{
    nn_model *m = book_model(1984);
    nn_fit_options o = opts(NN_OPTIMIZER_MOMENTUM, 2, 0.1, 0);
    prog_log *log = new_log(&o);
    (void)state;
    CAPI_OK(fit_spiral(m, &o, NULL));
    assert_int_equal(log->n, 2);
    assert_int_equal(log->ev[0].event, NN_PROGRESS_EPOCH_END);
    assert_int_equal(log->ev[0].epoch, 1);
    assert_int_equal(log->ev[1].event, NN_PROGRESS_EPOCH_END);
    assert_int_equal(log->ev[1].epoch, 2);
    assert_int_equal(log->wrong_user, 0);
    assert_int_equal(loss_record_count(m), 0);
    free(log);
    nn_destroy(m);
}

/* With a validation set: EPOCH_END carries that epoch's figures, and a REPORT carries the
 * latest validated epoch's (none during the first). The last figures equal nn_evaluate. */
static void test_nn_fit_progress_carries_validation_figures(void **state)
{
    nn_model *m = book_model(1984);
    nn_fit_options o = opts(NN_OPTIMIZER_SGD, 4, 1.0, 5);
    prog_log *log = new_log(&o);
    nn_fit_report rep;
    nn_epoch_record *h;
    size_t n = 0, i;
    double loss, acc;
    (void)state;
    set_validation(&o, val_x, VAL_ROWS, val_y);
    nn_fit_report_init(&rep);
    CAPI_OK(fit_spiral(m, &o, &rep));
    h = history_of(m, &n);
    assert_int_equal(n, 4);
    assert_int_equal(log->n, 4 * 3);
    for (i = 0; i < log->n; ++i) {
        const nn_progress *p = &log->ev[i];
        if (p->event == NN_PROGRESS_EPOCH_END) {
            assert_true(p->val_loss == h[p->epoch - 1].val_loss);
            assert_true(p->val_accuracy == h[p->epoch - 1].val_accuracy);
        } else if (p->epoch == 1) {
            assert_true(isnan(p->val_loss) && isnan(p->val_accuracy));
        } else {
            assert_true(p->val_loss == h[p->epoch - 2].val_loss);
            assert_true(p->val_accuracy == h[p->epoch - 2].val_accuracy);
        }
    }
    for (i = 0; i < n; ++i) {
        assert_true(isfinite(h[i].val_loss) && h[i].val_loss > 0.0);
        assert_true(h[i].val_accuracy >= 0.0 && h[i].val_accuracy <= 1.0);
    }
    CAPI_OK(nn_evaluate(m, val_x, NN_DTYPE_FLOAT64, VAL_ROWS, 2, val_y, NN_TARGET_CLASS_INDEX, 1,
                        &loss, &acc));
    assert_true(capi_close(h[3].val_loss, loss, 1e-12));
    assert_true(capi_close(h[3].val_accuracy, acc, 1e-12));
    assert_true(rep.final_val_loss == h[3].val_loss);
    assert_true(rep.final_val_accuracy == h[3].val_accuracy);
    free(h);
    free(log);
    nn_destroy(m);
}

/* A regression model's validation has a loss and no accuracy. */
static void test_nn_fit_regression_validation_has_loss_without_accuracy(void **state)
{
    nn_model *m = net(NN_ACTIVATION_TANH, NN_LOSS_MEAN_SQUARED_ERROR, NN_INIT_XAVIER, 5);
    nn_fit_options o = opts(NN_OPTIMIZER_RMSPROP, 3, 0.01, 5);
    nn_fit_report rep;
    nn_epoch_record *h;
    size_t n = 0, i;
    double loss;
    (void)state;
    o.val_x = val_x;
    o.val_x_dtype = NN_DTYPE_FLOAT64;
    o.val_rows = VAL_ROWS;
    o.val_cols = 2;
    o.val_targets = val_onehot;
    o.val_target_type = NN_TARGET_ROWS_FLOAT64;
    o.val_target_cols = OUTS;
    nn_fit_report_init(&rep);
    CAPI_OK(nn_fit(m, sp_x, NN_DTYPE_FLOAT64, SP_ROWS, 2, sp_onehot, NN_TARGET_ROWS_FLOAT64, OUTS,
                   &o, &rep));
    h = history_of(m, &n);
    assert_int_equal(n, 3);
    for (i = 0; i < n; ++i) {
        assert_true(isfinite(h[i].val_loss));
        assert_true(isnan(h[i].val_accuracy));
    }
    CAPI_OK(nn_evaluate(m, val_x, NN_DTYPE_FLOAT64, VAL_ROWS, 2, val_onehot, NN_TARGET_ROWS_FLOAT64,
                        OUTS, &loss, NULL));
    assert_true(capi_close(h[2].val_loss, loss, 1e-12));
    assert_true(isnan(rep.final_val_accuracy));
    free(h);
    nn_destroy(m);
}

/* Cancelling at the first report keeps exactly one step: the first 30 rows of the first
 * permutation of options.rng, one SGD step, as the plain MLP oracle computes it. */
static void test_nn_fit_cancel_at_the_first_report_keeps_one_step(void **state)
{
    nn_model *m = book_model(1984), *again = book_model(1984);
    nn_fit_options o = opts(NN_OPTIMIZER_SGD, 5, 1.0, 1);
    prog_log *log = new_log(&o);
    nn_rng *rng = capi_rng(99), *rng2 = capi_rng(99), *twin = capi_rng(99);
    nn_fit_report rep;
    nn_loss_record rec[16];
    int64_t perm[SP_ROWS];
    double p0[N_PARAMS], expect[N_PARAMS], got[N_PARAMS], bx[30 * 2], manual_loss;
    int32_t by[30];
    size_t i, n = 0;
    nn_epoch_record *h;
    (void)state;
    capi_params_of(m, p0, N_PARAMS);
    o.rng = rng;
    log->cancel_at_call = 1;
    log->cancel_value = -7; /* any non-zero value */
    memset(&rep, 0, sizeof rep);
    nn_fit_report_init(&rep);
    FIT_EXPECT(NN_ERR_CANCELLED, fit_spiral(m, &o, &rep));
    assert_int_equal(log->n, 1);
    assert_int_equal(log->ev[0].event, NN_PROGRESS_REPORT);
    assert_int_equal(log->ev[0].epoch, 1);
    assert_int_equal(log->ev[0].iteration, 1);
    assert_int_equal(rep.struct_size, sizeof rep);
    assert_int_equal(rep.steps_run, 1);
    assert_int_equal(rep.epochs_run, 0);
    assert_int_equal(rep.steps_per_epoch, 10);
    assert_true(isnan(rep.final_loss)); /* no completed epoch */
    assert_int_equal(rep.stopped_early, 0);

    /* The loss history holds exactly the one record; no epoch was completed. */
    CAPI_OK(nn_get_loss_history(m, rec, 16, &n));
    assert_int_equal(n, 1);
    assert_int_equal(rec[0].epoch, 1);
    assert_int_equal(rec[0].iteration, 1);
    assert_true(rec[0].loss == log->ev[0].loss);
    h = history_of(m, &n);
    assert_int_equal(n, 0);
    free(h);

    /* The oracle: one SGD step on the first batch of the permuted rows. */
    CAPI_OK(nn_rng_permutation(twin, perm, SP_ROWS));
    for (i = 0; i < 30; ++i) {
        bx[2 * i] = sp_x[2 * perm[i]];
        bx[2 * i + 1] = sp_x[2 * perm[i] + 1];
        by[i] = sp_y[perm[i]];
    }
    memcpy(expect, p0, sizeof p0);
    manual_loss = capi_mlp_sgd_step(expect, book_sizes, 3, NN_ACTIVATION_SIGMOID,
                                    NN_LOSS_SOFTMAX_CROSS_ENTROPY, bx, 30, by, NULL, 1.0);
    capi_params_of(m, got, N_PARAMS);
    assert_memory_not_equal(got, p0, sizeof p0);
    for (i = 0; i < N_PARAMS; ++i) {
        if (!capi_close(got[i], expect[i], 1e-12))
            print_error("param %u: got %.17g expected %.17g\n", (unsigned)i, got[i], expect[i]);
        assert_true(capi_close(got[i], expect[i], 1e-12));
    }
    assert_true(capi_close(rec[0].loss, manual_loss, 1e-12));

    /* The same cancelled run again is bit-identical. */
    o.rng = rng2;
    memset(log, 0, sizeof *log);
    log->cancel_at_call = 1;
    log->cancel_value = 1;
    FIT_EXPECT(NN_ERR_CANCELLED, fit_spiral(again, &o, NULL));
    assert_models_same(m, again);

    /* The interrupted epoch was not counted: the next fit's first epoch is epoch 1. */
    o.progress = NULL;
    o.rng = NULL;
    o.epochs = 1;
    o.report_interval = 10;
    CAPI_OK(fit_spiral(m, &o, NULL));
    h = history_of(m, &n);
    assert_int_equal(n, 1);
    assert_int_equal(h[0].epoch, 1);
    assert_int_equal(loss_record_count(m), 2);
    free(h);
    nn_rng_destroy(rng);
    nn_rng_destroy(rng2);
    nn_rng_destroy(twin);
    free(log);
    nn_destroy(m);
    nn_destroy(again);
}

/* Cancelling at epoch 3's end of 10 equals a 3-epoch fit in every respect, including the
 * optimizer state: both continue identically, and the epoch numbers continue from 4. */
static void test_nn_fit_cancel_late_keeps_the_completed_epochs(void **state)
{
    nn_model *a = book_model(5), *b = book_model(5);
    nn_fit_options o = opts(NN_OPTIMIZER_MOMENTUM, 10, 0.1, 4);
    prog_log *log = new_log(&o);
    nn_rng *ra = capi_rng(11), *rb = capi_rng(11), *ra2 = capi_rng(12), *rb2 = capi_rng(12);
    nn_fit_report rep;
    nn_loss_record rec[64];
    nn_epoch_record *h;
    size_t n = 0, i;
    (void)state;
    o.rng = ra;
    log->cancel_at_epoch_end = 3;
    nn_fit_report_init(&rep);
    FIT_EXPECT(NN_ERR_CANCELLED, fit_spiral(a, &o, &rep));
    assert_int_equal(rep.epochs_run, 3);
    assert_int_equal(rep.steps_run, 30);
    assert_int_equal(rep.steps_per_epoch, 10);
    assert_int_equal(log->ev[log->n - 1].event, NN_PROGRESS_EPOCH_END);
    assert_int_equal(log->ev[log->n - 1].epoch, 3);
    assert_int_equal(log->n, 3 * (3 + 1)); /* nothing was reported after the cancel */
    h = history_of(a, &n);
    assert_int_equal(n, 3);
    for (i = 0; i < 3; ++i) assert_int_equal(h[i].epoch, i + 1);
    assert_true(rep.final_loss == h[2].loss);
    free(h);
    CAPI_OK(nn_get_loss_history(a, rec, 64, &n));
    assert_int_equal(n, 9);
    for (i = 0; i < n; ++i) assert_true(rec[i].epoch <= 3);

    o.progress = NULL;
    o.epochs = 3;
    o.rng = rb;
    CAPI_OK(fit_spiral(b, &o, NULL));
    assert_models_same(a, b);

    o.epochs = 2;
    o.rng = ra2;
    CAPI_OK(fit_spiral(a, &o, NULL));
    o.rng = rb2;
    CAPI_OK(fit_spiral(b, &o, NULL));
    assert_models_same(a, b);
    h = history_of(a, &n);
    assert_int_equal(n, 5);
    for (i = 0; i < 5; ++i) assert_int_equal(h[i].epoch, i + 1);
    free(h);
    CAPI_OK(nn_get_loss_history(a, rec, 64, &n));
    assert_int_equal(n, 15);
    assert_int_equal(rec[9].epoch, 4);
    assert_int_equal(rec[14].epoch, 5);
    nn_rng_destroy(ra);
    nn_rng_destroy(rb);
    nn_rng_destroy(ra2);
    nn_rng_destroy(rb2);
    free(log);
    nn_destroy(a);
    nn_destroy(b);
}

/* nn_progress_fn: "any other value stops the fit at this step boundary with
 * NN_ERR_CANCELLED" — also at the very last callback, the final epoch's end, where
 * nothing is left to skip: the caller asked to stop and must be told it did. The training
 * itself is complete and equals an uncancelled run. */
static void test_nn_fit_cancel_at_the_last_epoch_end_reports_cancelled(void **state)
{
    nn_model *a = book_model(5), *b = book_model(5);
    nn_fit_options o = opts(NN_OPTIMIZER_SGD, 2, 1.0, 5);
    prog_log *log = new_log(&o);
    nn_fit_report rep;
    (void)state;
    log->cancel_at_epoch_end = 2;
    nn_fit_report_init(&rep);
    FIT_EXPECT(NN_ERR_CANCELLED, fit_spiral(a, &o, &rep));
    assert_int_equal(rep.epochs_run, 2);
    assert_int_equal(rep.steps_run, 20);
    o.progress = NULL;
    CAPI_OK(fit_spiral(b, &o, NULL));
    assert_models_same(a, b);
    free(log);
    nn_destroy(a);
    nn_destroy(b);
}

/* ====================================================================================== */
/* Early stopping and validation                                                           */
/* ====================================================================================== */

/* Index (from `from`) of the first minimal val_loss. */
static size_t argmin_val(const nn_epoch_record *h, size_t from, size_t n)
{
    size_t i, best = from;
    for (i = from; i < n; ++i)
        if (h[i].val_loss < h[best].val_loss) best = i;
    return best;
}

/* Trains model `m` (2 plain epochs first, so epochs are life-long) with early stopping on
 * the shifted-label validation set, whose loss rises as the spiral is learnt. */
static void fit_with_early_stopping(nn_model *m, int restore_best, size_t epochs, int32_t patience,
                                    nn_fit_report *rep)
{
    nn_fit_options o = opts(NN_OPTIMIZER_SGD, 2, 1.0, 10);
    CAPI_OK(fit_spiral(m, &o, NULL));
    o.epochs = epochs;
    set_validation(&o, val_x, VAL_ROWS, val_shifted);
    o.early_stopping = 1;
    o.patience = patience;
    o.min_delta = 0.0;
    o.restore_best = restore_best;
    nn_fit_report_init(rep);
    CAPI_OK(fit_spiral(m, &o, rep));
}

static double val_shifted_loss(nn_model *m)
{
    double loss = 0.0;
    CAPI_OK(nn_evaluate(m, val_x, NN_DTYPE_FLOAT64, VAL_ROWS, 2, val_shifted, NN_TARGET_CLASS_INDEX,
                        1, &loss, NULL));
    return loss;
}

static void test_nn_fit_early_stopping_restores_the_best_weights(void **state)
{
    nn_model *a = book_model(1984), *b = book_model(1984);
    nn_fit_report ra, rb;
    nn_epoch_record *ha, *hb;
    size_t na = 0, nb = 0, best, i;
    double la, lb;
    (void)state;
    fit_with_early_stopping(a, 1, 100, 3, &ra);
    fit_with_early_stopping(b, 0, 100, 3, &rb);
    ha = history_of(a, &na);
    hb = history_of(b, &nb);
    print_message("early stopping: %u epochs, best epoch %u\n", (unsigned)ra.epochs_run,
                  (unsigned)ra.best_epoch);

    /* Restoring changes only the final weights: the runs are otherwise the same. */
    assert_int_equal(na, nb);
    assert_memory_equal(ha, hb, na * sizeof *ha);
    assert_int_equal(ra.epochs_run, rb.epochs_run);
    assert_true(ra.best_loss == rb.best_loss);

    assert_true(ra.stopped_early != 0);
    assert_true(ra.epochs_run < 100);
    assert_int_equal(na, 2 + ra.epochs_run);
    for (i = 0; i < 2; ++i) assert_true(isnan(ha[i].val_loss));
    for (i = 2; i < na; ++i) {
        assert_int_equal(ha[i].epoch, i + 1);
        assert_true(isfinite(ha[i].val_loss));
    }
    best = argmin_val(ha, 2, na);
    assert_int_equal(ra.best_epoch, ha[best].epoch);        /* life-long numbering */
    assert_true(ra.best_loss == ha[best].val_loss);
    assert_int_equal(na, best + 1 + 3);                        /* patience epochs after it */
    assert_true(ra.final_val_loss == ha[na - 1].val_loss);
    assert_true(ra.final_val_accuracy == ha[na - 1].val_accuracy);

    /* The restored weights are the best epoch's: they evaluate to best_loss. */
    la = val_shifted_loss(a);
    lb = val_shifted_loss(b);
    if (!capi_close(la, ra.best_loss, 1e-12))
        print_error("restored weights give %.17g, best_loss %.17g\n", la, ra.best_loss);
    assert_true(capi_close(la, ra.best_loss, 1e-12));
    /* Without restoring, the weights are the last epoch's. */
    assert_true(capi_close(lb, hb[nb - 1].val_loss, 1e-12));
    assert_true(hb[nb - 1].val_loss > rb.best_loss);
    assert_false(params_equal(a, b));
    free(ha);
    free(hb);
    nn_destroy(a);
    nn_destroy(b);
}

/* restore_best also applies when all epochs ran. */
static void test_nn_fit_restore_best_applies_without_stopping_early(void **state)
{
    nn_model *m = book_model(77);
    nn_fit_report rep;
    nn_epoch_record *h;
    size_t n = 0, best;
    (void)state;
    fit_with_early_stopping(m, 1, 6, 1000, &rep);
    h = history_of(m, &n);
    assert_int_equal(rep.stopped_early, 0);
    assert_int_equal(rep.epochs_run, 6);
    assert_int_equal(n, 8);
    best = argmin_val(h, 2, n);
    assert_int_equal(rep.best_epoch, h[best].epoch);
    assert_true(rep.best_loss == h[best].val_loss);
    assert_true(capi_close(val_shifted_loss(m), rep.best_loss, 1e-12));
    free(h);
    nn_destroy(m);
}

/* Without a validation set the monitored loss is the epoch's training loss. No epoch
 * after the first can improve by 1e6, so the call stops after 1 + patience epochs. */
static void test_nn_fit_early_stopping_on_training_loss_with_large_min_delta(void **state)
{
    nn_model *m = book_model(1984);
    nn_fit_options o = opts(NN_OPTIMIZER_ADAM, 20, 0.01, 10);
    nn_fit_report rep;
    nn_epoch_record *h;
    size_t n = 0;
    (void)state;
    o.early_stopping = 1;
    o.patience = 2;
    o.min_delta = 1e6;
    nn_fit_report_init(&rep);
    CAPI_OK(fit_spiral(m, &o, &rep));
    h = history_of(m, &n);
    assert_true(rep.stopped_early != 0);
    assert_int_equal(rep.epochs_run, 3);
    assert_int_equal(n, 3);
    assert_true(rep.best_epoch >= 1 && rep.best_epoch <= 3);
    assert_true(rep.best_loss == h[rep.best_epoch - 1].loss);
    assert_true(isnan(h[2].val_loss));
    assert_true(isnan(rep.final_val_loss));
    free(h);
    nn_destroy(m);
}

static void fit_with_fraction(nn_model *m, uint32_t seed, nn_fit_report *rep)
{
    nn_fit_options o = opts(NN_OPTIMIZER_SGD, 3, 1.0, 10);
    nn_rng *rng = capi_rng(seed), *twin = capi_rng(seed);
    int64_t perm[SP_ROWS];
    o.shuffle = 0; /* so the stream serves the split alone */
    o.validation_fraction = 0.1;
    o.rng = rng;
    nn_fit_report_init(rep);
    CAPI_OK(fit_spiral(m, &o, rep));
    /* "One permutation drawn from the fit's stream", and nothing else without shuffling. */
    CAPI_OK(nn_rng_permutation(twin, perm, SP_ROWS));
    capi_assert_rng_in_step(rng, twin);
    nn_rng_destroy(rng);
    nn_rng_destroy(twin);
}

/* Loss and accuracy on the rows perm[from .. from + count). */
static void evaluate_rows(nn_model *m, const int64_t *perm, size_t from, size_t count,
                          double *loss, double *acc)
{
    double *x = malloc(count * 2 * sizeof *x);
    int32_t *y = malloc(count * sizeof *y);
    size_t i;
    assert_non_null(x);
    assert_non_null(y);
    for (i = 0; i < count; ++i) {
        x[2 * i] = sp_x[2 * perm[from + i]];
        x[2 * i + 1] = sp_x[2 * perm[from + i] + 1];
        y[i] = sp_y[perm[from + i]];
    }
    CAPI_OK(nn_evaluate(m, x, NN_DTYPE_FLOAT64, count, 2, y, NN_TARGET_CLASS_INDEX, 1, loss, acc));
    free(x);
    free(y);
}

static void test_nn_fit_validation_fraction_holds_out_a_seeded_split(void **state)
{
    nn_model *a = book_model(1984), *b = book_model(1984), *c = book_model(1984);
    nn_fit_report ra, rb, rc;
    nn_epoch_record *ha, *hb, *hc;
    nn_rng *twin = capi_rng(21);
    int64_t perm[SP_ROWS];
    size_t na = 0, nb = 0, nc = 0, i;
    size_t held = (size_t)ceil(0.1 * (double)SP_ROWS);
    double head_loss, head_acc, tail_loss, tail_acc;
    int head, tail;
    (void)state;
    fit_with_fraction(a, 21, &ra);
    fit_with_fraction(b, 21, &rb);
    fit_with_fraction(c, 22, &rc);
    assert_int_equal(ra.steps_per_epoch, (SP_ROWS - held) / 30);
    ha = history_of(a, &na);
    hb = history_of(b, &nb);
    hc = history_of(c, &nc);
    assert_int_equal(na, 3);
    for (i = 0; i < na; ++i) {
        double correct = ha[i].val_accuracy * (double)held;
        assert_true(isfinite(ha[i].val_loss) && ha[i].val_loss > 0.0);
        assert_true(ha[i].val_accuracy >= 0.0 && ha[i].val_accuracy <= 1.0);
        assert_true(fabs(correct - floor(correct + 0.5)) < 1e-9); /* k of `held` rows */
    }
    assert_true(ra.final_val_loss == ha[2].val_loss);

    /* Deterministic for a seed, different for another. */
    assert_int_equal(nb, na);
    assert_memory_equal(ha, hb, na * sizeof *ha);
    assert_true(params_equal(a, b));
    assert_int_equal(nc, na);
    assert_true(ha[0].val_loss != hc[0].val_loss);

    /* The held-out rows are `held` rows of that one permutation: its head or its tail
     * (nn.h does not say which), and the last figures are the model's on them. */
    CAPI_OK(nn_rng_permutation(twin, perm, SP_ROWS));
    evaluate_rows(a, perm, 0, held, &head_loss, &head_acc);
    evaluate_rows(a, perm, SP_ROWS - held, held, &tail_loss, &tail_acc);
    head = capi_close(head_loss, ha[2].val_loss, 1e-12) && capi_close(head_acc, ha[2].val_accuracy, 1e-12);
    tail = capi_close(tail_loss, ha[2].val_loss, 1e-12) && capi_close(tail_acc, ha[2].val_accuracy, 1e-12);
    print_message("validation split: the %s of the permutation\n", head ? "head" : "tail");
    if (!head && !tail)
        print_error("val_loss %.17g: head of the permutation %.17g, tail %.17g\n", ha[2].val_loss,
                    head_loss, tail_loss);
    assert_true(head || tail);
    free(ha);
    free(hb);
    free(hc);
    nn_rng_destroy(twin);
    nn_destroy(a);
    nn_destroy(b);
    nn_destroy(c);
}

/* ====================================================================================== */
/* Class weights                                                                           */
/* ====================================================================================== */

static void test_nn_fit_unit_class_weights_change_nothing(void **state)
{
    static const double ones[OUTS] = {1.0, 1.0, 1.0}, skewed[OUTS] = {1.0, 2.0, 0.5};
    nn_model *a = book_model(8), *b = book_model(8), *c = book_model(8);
    nn_fit_options o = opts(NN_OPTIMIZER_SGD, 3, 1.0, 5);
    (void)state;
    CAPI_OK(fit_spiral(a, &o, NULL));
    o.class_weights = ones;
    o.n_class_weights = OUTS;
    CAPI_OK(fit_spiral(b, &o, NULL));
    assert_models_same(a, b);
    o.class_weights = skewed;
    CAPI_OK(fit_spiral(c, &o, NULL));
    assert_false(params_equal(a, c));
    nn_destroy(a);
    nn_destroy(b);
    nn_destroy(c);
}

/* Weights 3, 1, 0 on a full batch of B rows are the unweighted loss on the B' = Σw rows
 * where class 0 appears three times, class 1 once and class 2 not at all, times B'/B (the
 * weighted mean divides by B, not by Σw): so full-batch steps with lr equal steps on those
 * rows with lr·B'/B. The validation figures stay unweighted (nn_evaluate). */
static void test_nn_fit_class_weights_equal_duplicated_rows(void **state)
{
    static const double w[OUTS] = {3.0, 1.0, 0.0};
    enum { B = SUB_ROWS, B2 = 3 * (SUB_ROWS / 3) + SUB_ROWS / 3 };
    nn_model *a = net(NN_ACTIVATION_TANH, NN_LOSS_SOFTMAX_CROSS_ENTROPY, NN_INIT_XAVIER, 12);
    nn_model *b = net(NN_ACTIVATION_TANH, NN_LOSS_SOFTMAX_CROSS_ENTROPY, NN_INIT_XAVIER, 12);
    nn_fit_options o = capi_fit_options(3, B, 0.5, 1);
    double dx[B2 * 2], pa[N_PARAMS], pb[N_PARAMS], lv, av;
    int32_t dy[B2];
    nn_loss_record reca[3], recb[3];
    nn_epoch_record *h;
    size_t r, k = 0, n = 0, i, copies;
    (void)state;
    for (r = 0; r < B; ++r)
        for (copies = (size_t)w[sub_y[r]]; copies > 0; --copies, ++k) {
            dx[2 * k] = sub_x[2 * r];
            dx[2 * k + 1] = sub_x[2 * r + 1];
            dy[k] = sub_y[r];
        }
    assert_int_equal(k, B2);
    o.shuffle = 0;
    o.class_weights = w;
    o.n_class_weights = OUTS;
    set_validation(&o, val_x, VAL_ROWS, val_y);
    CAPI_OK(nn_fit(a, sub_x, NN_DTYPE_FLOAT64, B, 2, sub_y, NN_TARGET_CLASS_INDEX, 1, &o, NULL));
    o.class_weights = NULL;
    o.n_class_weights = 0;
    o.batch_size = B2;
    o.learning_rate = 0.5 * (double)B2 / (double)B;
    CAPI_OK(nn_fit(b, dx, NN_DTYPE_FLOAT64, B2, 2, dy, NN_TARGET_CLASS_INDEX, 1, &o, NULL));
    capi_params_of(a, pa, N_PARAMS);
    capi_params_of(b, pb, N_PARAMS);
    for (i = 0; i < N_PARAMS; ++i) {
        if (!capi_close(pa[i], pb[i], 1e-12))
            print_error("param %u: weighted %.17g duplicated %.17g\n", (unsigned)i, pa[i], pb[i]);
        assert_true(capi_close(pa[i], pb[i], 1e-12));
    }
    CAPI_OK(nn_get_loss_history(a, reca, 3, &n));
    assert_int_equal(n, 3);
    CAPI_OK(nn_get_loss_history(b, recb, 3, &n));
    assert_int_equal(n, 3);
    for (i = 0; i < 3; ++i)
        assert_true(capi_close(reca[i].loss, recb[i].loss * (double)B2 / (double)B, 1e-12));
    h = history_of(a, &n);
    CAPI_OK(nn_evaluate(a, val_x, NN_DTYPE_FLOAT64, VAL_ROWS, 2, val_y, NN_TARGET_CLASS_INDEX, 1,
                        &lv, &av));
    assert_true(capi_close(h[n - 1].val_loss, lv, 1e-12));
    assert_true(capi_close(h[n - 1].val_accuracy, av, 1e-12));
    free(h);
    nn_destroy(a);
    nn_destroy(b);
}

static double recall_of(nn_model *m, int32_t cls)
{
    int32_t pred[SP_ROWS];
    size_t r, hit = 0, total = 0;
    CAPI_OK(nn_predict_classes(m, sp_x, NN_DTYPE_FLOAT64, SP_ROWS, 2, pred, SP_ROWS));
    for (r = 0; r < SP_ROWS; ++r)
        if (sp_y[r] == cls) {
            ++total;
            hit += pred[r] == cls;
        }
    return (double)hit / (double)total;
}

/* A heavy weight on one class makes the net favour it: its training recall rises. */
static void test_nn_fit_heavy_class_weight_raises_that_class_recall(void **state)
{
    static const double w[OUTS] = {1.0, 20.0, 1.0};
    nn_model *plain = book_model(1984), *weighted = book_model(1984);
    nn_fit_options o = opts(NN_OPTIMIZER_SGD, 30, 1.0, 10);
    double r_plain, r_weighted;
    (void)state;
    CAPI_OK(fit_spiral(plain, &o, NULL));
    o.class_weights = w;
    o.n_class_weights = OUTS;
    CAPI_OK(fit_spiral(weighted, &o, NULL));
    r_plain = recall_of(plain, 1);
    r_weighted = recall_of(weighted, 1);
    print_message("class 1 recall: unweighted %.3f, weight 20 %.3f\n", r_plain, r_weighted);
    assert_true(r_weighted > r_plain);
    assert_true(r_weighted >= 0.9);
    nn_destroy(plain);
    nn_destroy(weighted);
}

/* ====================================================================================== */
/* Weight decay and clipping: one full-batch step against the plain MLP                    */
/* ====================================================================================== */

/* Expected parameters after one full-batch SGD step on the subset with weight decay λ
 * (on W1 and W2 only) and clipping to max_norm (0: none). */
static void expected_step(const double *p0, double lr, double lambda, double max_norm,
                          double *out, double *out_loss)
{
    double g[N_PARAMS], after[N_PARAMS], total = 0.0, rate = 1.0;
    size_t i;
    memcpy(after, p0, sizeof after);
    *out_loss = capi_mlp_sgd_step(after, book_sizes, 3, NN_ACTIVATION_TANH,
                                  NN_LOSS_SOFTMAX_CROSS_ENTROPY, sub_x, SUB_ROWS, sub_y, NULL, 1.0);
    for (i = 0; i < N_PARAMS; ++i) {
        int is_weight = i < 20 || (i >= 30 && i < 60);
        g[i] = (p0[i] - after[i]) + (is_weight ? lambda * p0[i] : 0.0);
        total += g[i] * g[i];
    }
    total = sqrt(total);
    if (max_norm > 0.0 && max_norm / (total + 1e-6) < 1.0) rate = max_norm / (total + 1e-6);
    for (i = 0; i < N_PARAMS; ++i) out[i] = p0[i] - lr * rate * g[i];
}

static double grad_norm(const double *p0)
{
    double after[N_PARAMS], total = 0.0;
    size_t i;
    memcpy(after, p0, sizeof after);
    (void)capi_mlp_sgd_step(after, book_sizes, 3, NN_ACTIVATION_TANH, NN_LOSS_SOFTMAX_CROSS_ENTROPY,
                            sub_x, SUB_ROWS, sub_y, NULL, 1.0);
    for (i = 0; i < N_PARAMS; ++i) total += (p0[i] - after[i]) * (p0[i] - after[i]);
    return sqrt(total);
}

static void check_regularised_step(double lambda, double max_norm)
{
    nn_model *m = net(NN_ACTIVATION_TANH, NN_LOSS_SOFTMAX_CROSS_ENTROPY, NN_INIT_XAVIER, 31);
    nn_fit_options o = capi_fit_options(1, SUB_ROWS, 0.5, 1);
    double p0[N_PARAMS], expect[N_PARAMS], got[N_PARAMS], loss;
    nn_loss_record rec;
    size_t i, n = 0;
    o.shuffle = 0;
    o.weight_decay = lambda;
    o.max_grad_norm = max_norm;
    capi_params_of(m, p0, N_PARAMS);
    expected_step(p0, 0.5, lambda, max_norm, expect, &loss);
    CAPI_OK(nn_fit(m, sub_x, NN_DTYPE_FLOAT64, SUB_ROWS, 2, sub_y, NN_TARGET_CLASS_INDEX, 1, &o, NULL));
    capi_params_of(m, got, N_PARAMS);
    for (i = 0; i < N_PARAMS; ++i) {
        if (!capi_close(got[i], expect[i], 1e-12))
            print_error("λ %g max_norm %g param %u: got %.17g expected %.17g\n", lambda, max_norm,
                        (unsigned)i, got[i], expect[i]);
        assert_true(capi_close(got[i], expect[i], 1e-12));
    }
    CAPI_OK(nn_get_loss_history(m, &rec, 1, &n));
    assert_int_equal(n, 1);
    assert_true(capi_close(rec.loss, loss, 1e-12)); /* the data loss, without ½λΣW² */
    nn_destroy(m);
}

static void test_nn_fit_weight_decay_and_clipping_follow_the_book(void **state)
{
    nn_model *probe = net(NN_ACTIVATION_TANH, NN_LOSS_SOFTMAX_CROSS_ENTROPY, NN_INIT_XAVIER, 31);
    double p0[N_PARAMS], norm;
    (void)state;
    capi_params_of(probe, p0, N_PARAMS);
    nn_destroy(probe);
    norm = grad_norm(p0);
    assert_true(norm > 1e-3);
    check_regularised_step(0.1, 0.0);         /* decay alone */
    check_regularised_step(0.0, 0.25 * norm); /* clipping alone: rate about 1/4 */
    check_regularised_step(0.1, 0.25 * norm); /* decay first, then the clip of the sum */
    check_regularised_step(0.0, 10.0 * norm); /* a rate above 1: no clipping */
}

/* A norm above the gradient's leaves the step bit-identical to no clipping. */
static void test_nn_fit_clipping_above_the_norm_changes_nothing(void **state)
{
    nn_model *a = book_model(2), *b = book_model(2);
    nn_fit_options o = opts(NN_OPTIMIZER_SGD, 2, 1.0, 5);
    (void)state;
    CAPI_OK(fit_spiral(a, &o, NULL));
    o.max_grad_norm = 1e6;
    CAPI_OK(fit_spiral(b, &o, NULL));
    assert_models_same(a, b);
    nn_destroy(a);
    nn_destroy(b);
}

/* ====================================================================================== */
/* Continued training and the optimizer state                                              */
/* ====================================================================================== */

static void train(nn_model *m, nn_optimizer opt, size_t epochs)
{
    nn_fit_options o = opts(opt, epochs, opt == NN_OPTIMIZER_ADAM ? 0.01 : 0.1, 10);
    CAPI_OK(fit_spiral(m, &o, NULL));
}

static void test_nn_fit_second_call_continues_the_optimizer_and_epochs(void **state)
{
    nn_model *a = book_model(4), *b = book_model(4), *c = book_model(4);
    nn_epoch_record *h;
    nn_loss_record rec[16];
    size_t n = 0, i;
    (void)state;
    train(a, NN_OPTIMIZER_ADAM, 5);
    train(b, NN_OPTIMIZER_ADAM, 5);
    train(c, NN_OPTIMIZER_ADAM, 5);
    assert_models_same(a, b);

    train(a, NN_OPTIMIZER_ADAM, 5);                 /* Adam state and step count persist */
    CAPI_OK(nn_reset_optimizer(b));
    train(b, NN_OPTIMIZER_ADAM, 5);                 /* a fresh Adam */
    assert_false(params_equal(a, b));
    CAPI_OK(nn_reset_history(c));
    train(c, NN_OPTIMIZER_ADAM, 5);                 /* reset_history keeps the optimizer */
    assert_true(params_equal(a, c));

    h = history_of(a, &n);
    assert_int_equal(n, 10);
    for (i = 0; i < 10; ++i) assert_int_equal(h[i].epoch, i + 1);
    free(h);
    CAPI_OK(nn_get_loss_history(a, rec, 16, &n));
    assert_int_equal(n, 10);
    for (i = 0; i < 10; ++i) assert_int_equal(rec[i].epoch, i + 1);
    h = history_of(c, &n);
    assert_int_equal(n, 5);
    assert_int_equal(h[0].epoch, 1);
    free(h);
    nn_destroy(a);
    nn_destroy(b);
    nn_destroy(c);
}

/* With one full batch and no shuffle the row order is moot, so "a second nn_fit continues
 * where the first stopped" can be taken literally: 3 + 3 epochs in two calls equal 6 in
 * one, for every optimizer (Adam's t counts over the model's life), while dropping the
 * state in between does not. */
static void test_nn_fit_two_calls_equal_one_for_every_optimizer(void **state)
{
    const nn_optimizer all[] = {NN_OPTIMIZER_SGD, NN_OPTIMIZER_MOMENTUM, NN_OPTIMIZER_NESTEROV,
                                NN_OPTIMIZER_ADAGRAD, NN_OPTIMIZER_RMSPROP, NN_OPTIMIZER_ADAM};
    size_t k;
    (void)state;
    for (k = 0; k < 6; ++k) {
        nn_model *one = book_model(14), *two = book_model(14), *reset = book_model(14);
        nn_fit_options o = capi_fit_options(6, SP_ROWS, all[k] == NN_OPTIMIZER_SGD ? 1.0 : 0.05, 1);
        o.optimizer = all[k];
        o.shuffle = 0;
        CAPI_OK(fit_spiral(one, &o, NULL));
        o.epochs = 3;
        CAPI_OK(fit_spiral(two, &o, NULL));
        CAPI_OK(fit_spiral(two, &o, NULL));
        CAPI_OK(fit_spiral(reset, &o, NULL));
        CAPI_OK(nn_reset_optimizer(reset));
        CAPI_OK(fit_spiral(reset, &o, NULL));
        if (!params_equal(one, two)) print_error("optimizer %d: two calls differ from one\n", (int)all[k]);
        assert_models_same(one, two);
        if (all[k] == NN_OPTIMIZER_SGD)
            assert_true(params_equal(one, reset)); /* SGD has no state to drop */
        else
            assert_false(params_equal(one, reset));
        nn_destroy(one);
        nn_destroy(two);
        nn_destroy(reset);
    }
}

/* Watching must not perturb: a progress callback that never cancels (which makes the
 * library stop at every report point) leaves the trajectory bit-identical. */
static void test_nn_fit_progress_callback_does_not_change_the_trajectory(void **state)
{
    const nn_optimizer some[] = {NN_OPTIMIZER_ADAM, NN_OPTIMIZER_NESTEROV, NN_OPTIMIZER_RMSPROP};
    size_t k;
    (void)state;
    for (k = 0; k < 3; ++k) {
        nn_model *quiet = book_model(15), *watched = book_model(15);
        nn_fit_options o = opts(some[k], 3, 0.01, 3);
        prog_log *log;
        o.max_grad_norm = 0.5;
        o.weight_decay = 1e-3;
        CAPI_OK(fit_spiral(quiet, &o, NULL));
        log = new_log(&o);
        CAPI_OK(fit_spiral(watched, &o, NULL));
        assert_int_equal(log->n, 3 * (4 + 1));
        assert_models_same(quiet, watched);
        free(log);
        nn_destroy(quiet);
        nn_destroy(watched);
    }
}

/* Another optimizer starts from zero, exactly as after nn_reset_optimizer; coming back to
 * an earlier optimizer does not revive its old state (or Adam's step count). */
static void test_nn_fit_switching_optimizer_starts_from_zero_state(void **state)
{
    nn_model *m[8];
    size_t i;
    (void)state;
    for (i = 0; i < 8; ++i) m[i] = book_model(6);

    train(m[0], NN_OPTIMIZER_ADAM, 3);
    train(m[0], NN_OPTIMIZER_MOMENTUM, 3);
    train(m[1], NN_OPTIMIZER_ADAM, 3);
    CAPI_OK(nn_reset_optimizer(m[1]));
    train(m[1], NN_OPTIMIZER_MOMENTUM, 3);
    assert_models_same(m[0], m[1]);

    train(m[2], NN_OPTIMIZER_MOMENTUM, 3);
    train(m[2], NN_OPTIMIZER_ADAM, 2);
    train(m[2], NN_OPTIMIZER_MOMENTUM, 3);
    train(m[3], NN_OPTIMIZER_MOMENTUM, 3);
    train(m[3], NN_OPTIMIZER_ADAM, 2);
    CAPI_OK(nn_reset_optimizer(m[3]));
    train(m[3], NN_OPTIMIZER_MOMENTUM, 3);
    assert_models_same(m[2], m[3]);

    train(m[4], NN_OPTIMIZER_ADAM, 2);
    train(m[4], NN_OPTIMIZER_SGD, 1);
    train(m[4], NN_OPTIMIZER_ADAM, 2);
    train(m[5], NN_OPTIMIZER_ADAM, 2);
    train(m[5], NN_OPTIMIZER_SGD, 1);
    CAPI_OK(nn_reset_optimizer(m[5]));
    train(m[5], NN_OPTIMIZER_ADAM, 2);
    assert_models_same(m[4], m[5]);

    /* The state is observable, so the equalities above mean something. */
    train(m[6], NN_OPTIMIZER_MOMENTUM, 3);
    train(m[6], NN_OPTIMIZER_MOMENTUM, 3);
    train(m[7], NN_OPTIMIZER_MOMENTUM, 3);
    CAPI_OK(nn_reset_optimizer(m[7]));
    train(m[7], NN_OPTIMIZER_MOMENTUM, 3);
    assert_false(params_equal(m[6], m[7]));
    for (i = 0; i < 8; ++i) nn_destroy(m[i]);
}

static int cpu_available(void)
{
    size_t n = 0, i;
    CAPI_OK(nn_device_count(&n));
    for (i = 0; i < n; ++i) {
        nn_device_info info;
        nn_device_info_init(&info);
        CAPI_OK(nn_device_get(i, &info));
        if (info.kind == NN_DEVICE_CPU && info.available) return 1;
    }
    return 0;
}

static double max_rel_diff(nn_model *a, nn_model *b)
{
    double pa[N_PARAMS], pb[N_PARAMS], worst = 0.0;
    size_t i;
    capi_params_of(a, pa, N_PARAMS);
    capi_params_of(b, pb, N_PARAMS);
    for (i = 0; i < N_PARAMS; ++i) {
        double scale = fabs(pa[i]) > 1.0 ? fabs(pa[i]) : 1.0, d = fabs(pa[i] - pb[i]) / scale;
        if (d > worst) worst = d;
    }
    return worst;
}

/* The Adam state moves with the model: hopping reference → CPU between calls trains like
 * staying on either device. */
static void test_nn_set_device_between_calls_carries_the_optimizer_state(void **state)
{
    nn_model *hop = book_model(9), *on_cpu = book_model(9), *on_ref = book_model(9);
    nn_epoch_record *h;
    size_t n = 0, i;
    double d_cpu, d_ref;
    (void)state;
    if (!cpu_available()) {
        nn_destroy(hop);
        nn_destroy(on_cpu);
        nn_destroy(on_ref);
        skip();
    }
    CAPI_OK(nn_set_device(hop, NN_DEVICE_CPU, 0));
    CAPI_OK(nn_set_device(on_cpu, NN_DEVICE_CPU, 0));
    CAPI_OK(nn_set_device(on_ref, NN_DEVICE_REFERENCE, 0));
    for (i = 0; i < 3; ++i) {
        train(hop, NN_OPTIMIZER_ADAM, 3);
        train(on_cpu, NN_OPTIMIZER_ADAM, 3);
        train(on_ref, NN_OPTIMIZER_ADAM, 3);
        CAPI_OK(nn_set_device(hop, i % 2 == 0 ? NN_DEVICE_REFERENCE : NN_DEVICE_CPU, 0));
    }
    d_cpu = max_rel_diff(hop, on_cpu);
    d_ref = max_rel_diff(hop, on_ref);
    print_message("device hops: max relative difference %.3g to staying on cpu, %.3g to staying "
                  "on reference (%s, %s)\n", d_cpu, d_ref,
                  params_equal(hop, on_cpu) ? "bit-identical" : "not bit-identical",
                  params_equal(hop, on_ref) ? "bit-identical" : "not bit-identical");
    assert_true(d_cpu <= 1e-12);
    assert_true(d_ref <= 1e-12);
    h = history_of(hop, &n);
    assert_int_equal(n, 9);
    for (i = 0; i < 9; ++i) assert_int_equal(h[i].epoch, i + 1);
    free(h);
    nn_destroy(hop);
    nn_destroy(on_cpu);
    nn_destroy(on_ref);
}

/* ====================================================================================== */
/* Divergence                                                                              */
/* ====================================================================================== */

static nn_status fit_for(nn_model *m, nn_loss loss, const nn_fit_options *o, nn_fit_report *rep)
{
    if (loss == NN_LOSS_SOFTMAX_CROSS_ENTROPY) return fit_spiral(m, o, rep);
    return nn_fit(m, sp_x, NN_DTYPE_FLOAT64, SP_ROWS, 2, sp_onehot, NN_TARGET_ROWS_FLOAT64, OUTS, o,
                  rep);
}

/* The next draws of two streams are the same. */
static void assert_streams_agree(nn_rng *a, nn_rng *b)
{
    double da[4], db[4];
    CAPI_OK(nn_rng_rand(a, da, 4));
    CAPI_OK(nn_rng_rand(b, db, 4));
    assert_memory_equal(da, db, sizeof da);
}

/* A run that diverges stops before the step whose loss is not finite: it keeps exactly the
 * steps before it, as a twin cancelled after that many steps shows. */
static void check_divergence(nn_activation act, nn_loss loss, double lr, size_t batch)
{
    enum { EPOCHS = 50 };
    const size_t spe = SP_ROWS / batch, requested = EPOCHS * spe;
    nn_model *m = net(act, loss, NN_INIT_NORMAL, 1984), *twin = net(act, loss, NN_INIT_NORMAL, 1984);
    nn_fit_options o = capi_fit_options(EPOCHS, batch, lr, 1);
    nn_rng *rng = capi_rng(5), *rng2 = capi_rng(5);
    nn_fit_report rep;
    nn_loss_record *rec = calloc(requested + 1, sizeof *rec);
    nn_epoch_record *h;
    double p0[N_PARAMS], p[N_PARAMS];
    size_t n = 0, i;
    assert_non_null(rec);
    capi_params_of(m, p0, N_PARAMS);
    o.rng = rng;
    nn_fit_report_init(&rep);
    FIT_EXPECT(NN_ERR_DIVERGED, fit_for(m, loss, &o, &rep));
    print_message("act %d loss %d lr %g batch %u: diverged after %u steps\n", (int)act, (int)loss, lr,
                  (unsigned)batch, (unsigned)rep.steps_run);
    assert_int_equal(rep.steps_per_epoch, spe);
    assert_true(rep.steps_run < requested);
    assert_int_equal(rep.epochs_run, rep.steps_run / spe);
    capi_params_of(m, p, N_PARAMS);
    for (i = 0; i < N_PARAMS; ++i) assert_true(isfinite(p[i]));
    CAPI_OK(nn_get_loss_history(m, rec, requested + 1, &n));
    assert_int_equal(n, rep.steps_run); /* one record per completed step */
    for (i = 0; i < n; ++i) assert_true(isfinite(rec[i].loss));
    h = history_of(m, &n);
    assert_int_equal(n, rep.epochs_run);
    for (i = 0; i < n; ++i) assert_true(isfinite(h[i].loss));
    if (n == 0)
        assert_true(isnan(rep.final_loss));
    else
        assert_true(rep.final_loss == h[n - 1].loss);
    free(h);

    if (rep.steps_run == 0) {
        assert_memory_equal(p, p0, sizeof p);
    } else {
        prog_log *log = new_log(&o);
        /* After the last step of an epoch, cancel at its end, so that the twin completes
         * that epoch too. */
        if (rep.steps_run % spe == 0)
            log->cancel_at_epoch_end = rep.steps_run / spe;
        else
            log->cancel_at_report = rep.steps_run;
        o.rng = rng2;
        FIT_EXPECT(NN_ERR_CANCELLED, fit_for(twin, loss, &o, NULL));
        assert_models_same(m, twin);
        free(log);
    }
    {
        /* Without a callback the epochs went to the backend in groups, their shuffles drawn
         * ahead; with one that never cancels, one call per report. Both diverge at the same
         * step and leave the same model and the same stream (the shuffles of the epochs that
         * began, the diverging one included). */
        nn_model *per_report = net(act, loss, NN_INIT_NORMAL, 1984);
        nn_rng *rng3 = capi_rng(5);
        prog_log *log = new_log(&o);
        o.rng = rng3;
        FIT_EXPECT(NN_ERR_DIVERGED, fit_for(per_report, loss, &o, NULL));
        assert_true(log->n > 0);
        assert_models_same(m, per_report);
        assert_streams_agree(rng, rng3);
        free(log);
        nn_rng_destroy(rng3);
        nn_destroy(per_report);
    }
    free(rec);
    nn_rng_destroy(rng);
    nn_rng_destroy(rng2);
    nn_destroy(m);
    nn_destroy(twin);
}

/* Without a progress callback, validation or early stopping the epochs go to the backend
 * in groups (up to 2^17 row indices a call), their shuffles drawn ahead. A twin with a
 * callback that never cancels runs one call per report: the two end bit-identical (weights,
 * loss records, epoch history), leave their streams at the same place, and a second fit of
 * each continues identically. One group (the book: 300 epochs of 10 steps) and several
 * (1,000 one-step epochs of 300 rows: groups of 436, 436 and 128, with Adam's step count
 * carried across them), on the reference path and the CPU plugin. */
static void test_nn_fit_grouped_epochs_equal_one_call_per_epoch(void **state)
{
    const struct {
        size_t epochs, batch;
        nn_optimizer opt;
        double lr;
    } cases[] = {{300, 30, NN_OPTIMIZER_SGD, 1.0}, {1000, SP_ROWS, NN_OPTIMIZER_ADAM, 0.01}};
    const nn_device_kind devices[] = {NN_DEVICE_REFERENCE, NN_DEVICE_CPU};
    size_t c, d;
    (void)state;
    for (c = 0; c < 2; ++c)
        for (d = 0; d < 2; ++d) {
            nn_model *grouped = book_model(3), *per_report = book_model(3);
            nn_rng *r1 = capi_rng(11), *r2 = capi_rng(11);
            nn_fit_options o = opts(cases[c].opt, cases[c].epochs, cases[c].lr, 10);
            prog_log *log;
            CAPI_OK(nn_set_device(grouped, devices[d], 0));
            CAPI_OK(nn_set_device(per_report, devices[d], 0));
            o.batch_size = cases[c].batch;
            o.rng = r1;
            CAPI_OK(fit_spiral(grouped, &o, NULL));
            log = new_log(&o);
            o.rng = r2;
            CAPI_OK(fit_spiral(per_report, &o, NULL));
            assert_true(log->n >= cases[c].epochs); /* the callback ran: one call per report */
            assert_models_same(grouped, per_report);
            assert_streams_agree(r1, r2);
            /* And both continue alike, grouped again. */
            o.progress = NULL;
            o.epochs = 7;
            o.rng = r1;
            CAPI_OK(fit_spiral(grouped, &o, NULL));
            o.rng = r2;
            CAPI_OK(fit_spiral(per_report, &o, NULL));
            assert_models_same(grouped, per_report);
            assert_streams_agree(r1, r2);
            free(log);
            nn_rng_destroy(r1);
            nn_rng_destroy(r2);
            nn_destroy(grouped);
            nn_destroy(per_report);
        }
}

static void test_nn_fit_divergence_stops_before_the_non_finite_step(void **state)
{
    (void)state;
    /* The book's net: sigmoid outputs are bounded and the loss is at most -log(1e-7) while
     * the scores are finite, so only a step near DBL_MAX overflows its scores (a NaN loss
     * within a few steps). With MSE the squared error overflows long before the outputs do
     * (an infinite loss after a few epochs at lr 1e6, so completed epochs are kept). */
    check_divergence(NN_ACTIVATION_SIGMOID, NN_LOSS_SOFTMAX_CROSS_ENTROPY, 1e308, 30);
    check_divergence(NN_ACTIVATION_SIGMOID, NN_LOSS_MEAN_SQUARED_ERROR, 1e6, 30);
    check_divergence(NN_ACTIVATION_IDENTITY, NN_LOSS_MEAN_SQUARED_ERROR, 1e10, 30);
    /* One step per epoch: the first non-finite loss is an epoch's first step, so every
     * completed epoch is kept, and the twin must complete its last one too. */
    check_divergence(NN_ACTIVATION_SIGMOID, NN_LOSS_MEAN_SQUARED_ERROR, 1e6, SP_ROWS);
}

/* nn_fit: "Should parameters overflow while the loss stays finite, the call ends with
 * NN_ERR_DIVERGED and the parameters it started from." Every applied update is checked by
 * the next step's loss except the call's last one, so make the only step overflow: one
 * full batch whose gradient class weights of 1e6 scale past DBL_MAX / 1e306. */
static void test_nn_fit_parameter_overflow_keeps_the_starting_weights(void **state)
{
    static const double w[OUTS] = {1e6, 1e6, 1e6};
    nn_model *m = book_model(1984);
    nn_fit_options o = opts(NN_OPTIMIZER_SGD, 2, 1.0, 5);
    nn_fit_report rep;
    tr_state before;
    double p[N_PARAMS];
    size_t i;
    (void)state;
    CAPI_OK(fit_spiral(m, &o, NULL)); /* some history, so that "kept" means something */
    tr_take(m, &before);
    o = capi_fit_options(1, SP_ROWS, 1e306, 1);
    o.class_weights = w;
    o.n_class_weights = OUTS;
    nn_fit_report_init(&rep);
    FIT_EXPECT(NN_ERR_DIVERGED, fit_spiral(m, &o, &rep));
    capi_params_of(m, p, N_PARAMS);
    for (i = 0; i < N_PARAMS; ++i) assert_true(isfinite(p[i]));
    /* Nothing of the overflowing step is kept: the weights, and the histories with them. */
    tr_assert_same(m, &before);
    assert_int_equal(rep.steps_run, 0);
    assert_int_equal(rep.epochs_run, 0);
    assert_true(isnan(rep.final_loss));
    tr_free(&before);
    nn_destroy(m);
}

/* ====================================================================================== */
/* History access                                                                          */
/* ====================================================================================== */

static void test_nn_get_epoch_history_copies_partially_and_checks_pointers(void **state)
{
    nn_model *m = book_model(1984);
    nn_fit_options o = opts(NN_OPTIMIZER_SGD, 3, 1.0, 10);
    nn_epoch_record all[3], part[3];
    double losses[3];
    size_t count = 99, i;
    tr_state before;
    (void)state;
    CAPI_OK(nn_get_epoch_history(m, NULL, 0, &count));
    assert_int_equal(count, 0);
    CAPI_OK(fit_spiral(m, &o, NULL));
    count = 99;
    CAPI_OK(nn_get_epoch_history(m, NULL, 0, &count)); /* a size query */
    assert_int_equal(count, 3);
    CAPI_OK(nn_get_epoch_history(m, all, 3, &count));
    assert_int_equal(count, 3);
    CAPI_OK(nn_get_epoch_losses(m, losses, 3, &count));
    for (i = 0; i < 3; ++i) {
        assert_int_equal(all[i].epoch, i + 1);
        assert_true(all[i].loss == losses[i]);
        assert_true(isnan(all[i].val_loss) && isnan(all[i].val_accuracy));
    }
    memset(part, 0x77, sizeof part);
    CAPI_OK(nn_get_epoch_history(m, part, 2, &count));
    assert_int_equal(count, 3);
    assert_memory_equal(part, all, 2 * sizeof *part);
    {
        unsigned char untouched[sizeof part[2]];
        memset(untouched, 0x77, sizeof untouched);
        assert_memory_equal(&part[2], untouched, sizeof untouched);
    }

    tr_take(m, &before);
    CAPI_FAIL(NN_ERR_NULL_POINTER, nn_get_epoch_history(m, all, 3, NULL));
    CAPI_FAIL(NN_ERR_NULL_POINTER, nn_get_epoch_history(m, NULL, 0, NULL));
    CAPI_FAIL(NN_ERR_NULL_POINTER, nn_get_epoch_history(NULL, all, 3, &count));
    CAPI_FAIL(NN_ERR_NULL_POINTER, nn_get_epoch_history(m, NULL, 3, &count));
    CAPI_FAIL(NN_ERR_NULL_POINTER, nn_reset_optimizer(NULL));
    tr_assert_same(m, &before);
    /* Dropping the optimizer state changes neither the weights nor the histories. */
    CAPI_OK(nn_reset_optimizer(m));
    tr_assert_same(m, &before);
    tr_free(&before);

    CAPI_OK(nn_reset_history(m));
    CAPI_OK(nn_get_epoch_history(m, NULL, 0, &count));
    assert_int_equal(count, 0);
    nn_destroy(m);
}

/* Found in review: a cancel at the record of an epoch's last step, in an epoch where
 * early stopping also runs out of patience, must stay a cancel: NN_ERR_CANCELLED, no
 * "stopped early", and the weights of the last completed step (not the best epoch's). */
static int cancel_at_epoch_2(const nn_progress *p, void *user)
{
    (void)user;
    return p->event == NN_PROGRESS_REPORT && p->epoch == 2;
}

static void test_nn_fit_cancel_wins_over_early_stopping_in_the_same_epoch(void **state)
{
    nn_model *m = book_model(1984), *twin = book_model(1984);
    nn_fit_options o;
    nn_fit_report rep;
    double got[N_PARAMS], want[N_PARAMS];
    (void)state;
    nn_fit_options_init(&o);
    o.epochs = 5;
    o.batch_size = SP_ROWS; /* one step per epoch: its record is the epoch's last step */
    o.learning_rate = 1.0;
    o.report_interval = 1;
    o.early_stopping = 1;
    o.patience = 1;
    o.min_delta = 1e9; /* no epoch improves: patience runs out at epoch 2 */
    o.progress = cancel_at_epoch_2;
    nn_fit_report_init(&rep);
    CAPI_FAIL(NN_ERR_CANCELLED,
              nn_fit(m, sp_x, NN_DTYPE_FLOAT64, SP_ROWS, 2, sp_y, NN_TARGET_CLASS_INDEX, 1, &o, &rep));
    assert_int_equal(rep.stopped_early, 0);
    assert_int_equal(rep.steps_run, 2);
    /* The twin: the same two epochs, no callback, no early stopping. */
    o.epochs = 2;
    o.early_stopping = 0;
    o.progress = NULL;
    CAPI_OK(nn_fit(twin, sp_x, NN_DTYPE_FLOAT64, SP_ROWS, 2, sp_y, NN_TARGET_CLASS_INDEX, 1, &o, NULL));
    CAPI_OK(nn_get_params(m, got, N_PARAMS));
    CAPI_OK(nn_get_params(twin, want, N_PARAMS));
    assert_memory_equal(got, want, sizeof got);
    nn_destroy(m);
    nn_destroy(twin);
}

int main(void)
{
#define B(name) cmocka_unit_test_setup_teardown(name, bad_setup, bad_teardown)
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nn_fit_options_init_sets_the_trainer_defaults),
        cmocka_unit_test(test_nn_fit_report_without_validation_has_no_validation_figures),
        B(test_nn_fit_accepts_the_edges_of_each_range),
        B(test_nn_fit_rejects_bad_momentum),
        B(test_nn_fit_rejects_bad_decay_rate_and_betas),
        B(test_nn_fit_rejects_bad_epsilon),
        B(test_nn_fit_rejects_bad_clipping_and_weight_decay),
        B(test_nn_fit_rejects_unknown_optimizer),
        B(test_nn_fit_rejects_bad_validation_fraction),
        B(test_nn_fit_rejects_bad_early_stopping_values),
        B(test_nn_fit_rejects_wrong_width_validation_targets),
        B(test_nn_fit_rejects_bad_validation_sets),
        B(test_nn_fit_rejects_non_finite_validation_data),
        B(test_nn_fit_rejects_validation_labels_out_of_range),
        B(test_nn_fit_rejects_class_weight_count_mismatch),
        B(test_nn_fit_rejects_bad_class_weight_values),
        B(test_nn_fit_rejects_class_weights_on_a_regression_model),
        cmocka_unit_test(test_nn_fit_progress_follows_the_records_and_epochs),
        cmocka_unit_test(test_nn_fit_progress_without_records_reports_epoch_ends),
        cmocka_unit_test(test_nn_fit_progress_carries_validation_figures),
        cmocka_unit_test(test_nn_fit_regression_validation_has_loss_without_accuracy),
        cmocka_unit_test(test_nn_fit_cancel_at_the_first_report_keeps_one_step),
        cmocka_unit_test(test_nn_fit_cancel_late_keeps_the_completed_epochs),
        cmocka_unit_test(test_nn_fit_cancel_at_the_last_epoch_end_reports_cancelled),
        cmocka_unit_test(test_nn_fit_early_stopping_restores_the_best_weights),
        cmocka_unit_test(test_nn_fit_restore_best_applies_without_stopping_early),
        cmocka_unit_test(test_nn_fit_early_stopping_on_training_loss_with_large_min_delta),
        cmocka_unit_test(test_nn_fit_validation_fraction_holds_out_a_seeded_split),
        cmocka_unit_test(test_nn_fit_unit_class_weights_change_nothing),
        cmocka_unit_test(test_nn_fit_class_weights_equal_duplicated_rows),
        cmocka_unit_test(test_nn_fit_heavy_class_weight_raises_that_class_recall),
        cmocka_unit_test(test_nn_fit_weight_decay_and_clipping_follow_the_book),
        cmocka_unit_test(test_nn_fit_clipping_above_the_norm_changes_nothing),
        cmocka_unit_test(test_nn_fit_second_call_continues_the_optimizer_and_epochs),
        cmocka_unit_test(test_nn_fit_two_calls_equal_one_for_every_optimizer),
        cmocka_unit_test(test_nn_fit_progress_callback_does_not_change_the_trajectory),
        cmocka_unit_test(test_nn_fit_switching_optimizer_starts_from_zero_state),
        cmocka_unit_test(test_nn_set_device_between_calls_carries_the_optimizer_state),
        cmocka_unit_test(test_nn_fit_divergence_stops_before_the_non_finite_step),
        cmocka_unit_test(test_nn_fit_grouped_epochs_equal_one_call_per_epoch),
        cmocka_unit_test(test_nn_fit_parameter_overflow_keeps_the_starting_weights),
        cmocka_unit_test(test_nn_get_epoch_history_copies_partially_and_checks_pointers),
        cmocka_unit_test(test_nn_fit_cancel_wins_over_early_stopping_in_the_same_epoch),
    };
#undef B
    return cmocka_run_group_tests(tests, setup_data, NULL);
}
