/* Different handles on different threads at the same time, and one handle used twice
 * at once (nn.h: "Threads"). */
#define _POSIX_C_SOURCE 200809L
#include "capi_test_util.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#define ROWS 150
#define THREADS 4

static double x64[ROWS * 2];
static int32_t labels[ROWS];

typedef struct job {
    uint32_t seed;
    double params[39];
    double epoch_losses[8];
    nn_status status;
    int message_ok;
} job;

static void run_job(job *j)
{
    static const size_t sizes[] = {2, 6, 3};
    nn_model_desc desc;
    nn_model *model = NULL;
    nn_fit_options o;
    size_t count = 0;
    char want[64];
    double bad[3] = {0.0, 0.0, 0.0};
    nn_model_desc_init(&desc);
    desc.n_layer_sizes = 3;
    desc.layer_sizes = sizes;
    desc.dtype = NN_DTYPE_FLOAT64;
    desc.seed = j->seed;
    j->status = nn_create(&model, &desc);
    if (j->status != NN_OK) return;
    nn_fit_options_init(&o);
    o.epochs = 8;
    o.batch_size = 15;
    o.learning_rate = 1.0;
    j->status = nn_fit(model, x64, NN_DTYPE_FLOAT64, ROWS, 2, labels, NN_TARGET_CLASS_INDEX, 1, &o, NULL);
    if (j->status == NN_OK) j->status = nn_get_params(model, j->params, 39);
    if (j->status == NN_OK) j->status = nn_get_epoch_losses(model, j->epoch_losses, 8, &count);
    /* Each thread's failure message names its own column count. */
    snprintf(want, sizeof want, "%u", (unsigned)(j->seed + 10));
    (void)nn_predict(model, x64, NN_DTYPE_FLOAT64, 1, j->seed + 10, NN_OUTPUT_SCORES, bad,
                     NN_DTYPE_FLOAT64, 3);
    j->message_ok = strstr(nn_last_error_message(), want) != NULL;
    nn_destroy(model);
}

static void *thread_main(void *arg)
{
    run_job(arg);
    return NULL;
}

static void test_nn_models_train_concurrently_as_they_do_alone(void **state)
{
    static job alone[THREADS], together[THREADS];
    pthread_t t[THREADS];
    int i;
    (void)state;
    capi_blobs(x64, labels, ROWS, 61);
    for (i = 0; i < THREADS; ++i) {
        alone[i].seed = together[i].seed = (uint32_t)(100 + i);
        run_job(&alone[i]);
        assert_int_equal(alone[i].status, NN_OK);
    }
    for (i = 0; i < THREADS; ++i)
        assert_int_equal(pthread_create(&t[i], NULL, thread_main, &together[i]), 0);
    for (i = 0; i < THREADS; ++i) assert_int_equal(pthread_join(t[i], NULL), 0);
    for (i = 0; i < THREADS; ++i) {
        assert_int_equal(together[i].status, NN_OK);
        assert_memory_equal(together[i].params, alone[i].params, sizeof alone[i].params);
        assert_memory_equal(together[i].epoch_losses, alone[i].epoch_losses,
                            sizeof alone[i].epoch_losses);
        assert_true(together[i].message_ok);
    }
}

/* ---- one handle used twice at once gets NN_ERR_BUSY, never a race ---------------- */

typedef struct busy_probe {
    nn_model *model;
    nn_rng *rng;
    int calls;
    nn_status predict, get_params, set_device, history, rng_draw;
    /* For the two-thread case: the trainer waits in its callback until the other
     * thread has tried its calls. */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int inside, tried;
} busy_probe;

/* From inside the model's own progress callback: every call on the model and on the
 * fit's stream is refused, and the fit itself goes on. */
static int call_back_into_the_model(const nn_progress *p, void *user)
{
    busy_probe *b = user;
    double out[3], params[64];
    nn_loss_record rec;
    size_t n = 0;
    (void)p;
    if (b->calls++ > 0) return 0;
    b->predict = nn_predict(b->model, x64, NN_DTYPE_FLOAT64, 1, 2, NN_OUTPUT_SCORES, out, NN_DTYPE_FLOAT64, 3);
    b->get_params = nn_get_params(b->model, params, 64);
    b->set_device = nn_set_device(b->model, NN_DEVICE_REFERENCE, 0);
    b->history = nn_get_loss_history(b->model, &rec, 1, &n);
    b->rng_draw = nn_rng_randn(b->rng, out, 1);
    return 0;
}

static nn_model *busy_model(void)
{
    static const size_t sizes[] = {2, 6, 3};
    nn_model_desc desc;
    nn_model *model = NULL;
    nn_model_desc_init(&desc);
    desc.n_layer_sizes = 3;
    desc.layer_sizes = sizes;
    desc.dtype = NN_DTYPE_FLOAT64;
    CAPI_OK(nn_create(&model, &desc));
    return model;
}

static void test_calls_on_the_model_from_its_own_callback_are_busy(void **state)
{
    busy_probe b;
    nn_fit_options o;
    double before[39], after[39], x_once[39];
    nn_model *twin = busy_model();
    nn_rng *twin_rng = capi_rng(5);
    (void)state;
    memset(&b, 0, sizeof b);
    capi_blobs(x64, labels, ROWS, 61);
    b.model = busy_model();
    b.rng = capi_rng(5);
    CAPI_OK(nn_get_params(b.model, before, 39));
    nn_fit_options_init(&o);
    o.epochs = 2;
    o.batch_size = 15;
    o.learning_rate = 0.5;
    o.rng = b.rng;
    o.progress = call_back_into_the_model;
    o.progress_user = &b;
    CAPI_OK(nn_fit(b.model, x64, NN_DTYPE_FLOAT64, ROWS, 2, labels, NN_TARGET_CLASS_INDEX, 1, &o, NULL));
    assert_true(b.calls > 1);
    assert_int_equal(b.predict, NN_ERR_BUSY);
    assert_int_equal(b.get_params, NN_ERR_BUSY);
    assert_int_equal(b.set_device, NN_ERR_BUSY);
    assert_int_equal(b.history, NN_ERR_BUSY);
    assert_int_equal(b.rng_draw, NN_ERR_BUSY);
    /* The fit was not disturbed: it equals the same fit without the callback. */
    o.rng = twin_rng;
    o.progress = NULL;
    CAPI_OK(nn_fit(twin, x64, NN_DTYPE_FLOAT64, ROWS, 2, labels, NN_TARGET_CLASS_INDEX, 1, &o, NULL));
    CAPI_OK(nn_get_params(b.model, after, 39));
    CAPI_OK(nn_get_params(twin, x_once, 39));
    assert_memory_equal(after, x_once, sizeof after);
    assert_memory_not_equal(after, before, sizeof after);
    /* And the handles are free again afterwards. */
    CAPI_OK(nn_get_params(b.model, after, 39));
    CAPI_OK(nn_rng_randn(b.rng, after, 1));
    nn_destroy(b.model);
    nn_destroy(twin);
    nn_rng_destroy(b.rng);
    nn_rng_destroy(twin_rng);
}

static int wait_for_the_other_thread(const nn_progress *p, void *user)
{
    busy_probe *b = user;
    (void)p;
    pthread_mutex_lock(&b->lock);
    b->inside = 1;
    pthread_cond_broadcast(&b->cond);
    while (!b->tried) pthread_cond_wait(&b->cond, &b->lock);
    pthread_mutex_unlock(&b->lock);
    return 0;
}

static void *train_and_wait(void *arg)
{
    busy_probe *b = arg;
    nn_fit_options o;
    nn_fit_options_init(&o);
    o.epochs = 1;
    o.batch_size = 15;
    o.progress = wait_for_the_other_thread;
    o.progress_user = b;
    b->calls = nn_fit(b->model, x64, NN_DTYPE_FLOAT64, ROWS, 2, labels, NN_TARGET_CLASS_INDEX, 1, &o, NULL);
    return NULL;
}

/* A second thread using a model that is training gets NN_ERR_BUSY at once; two readers
 * of an idle model do not conflict. */
static void test_a_model_in_a_fit_on_another_thread_is_busy(void **state)
{
    busy_probe b;
    pthread_t t;
    double out[3], params[39];
    nn_loss_record rec;
    size_t n = 0;
    (void)state;
    memset(&b, 0, sizeof b);
    capi_blobs(x64, labels, ROWS, 61);
    b.model = busy_model();
    pthread_mutex_init(&b.lock, NULL);
    pthread_cond_init(&b.cond, NULL);
    assert_int_equal(pthread_create(&t, NULL, train_and_wait, &b), 0);
    pthread_mutex_lock(&b.lock);
    while (!b.inside) pthread_cond_wait(&b.cond, &b.lock);
    pthread_mutex_unlock(&b.lock);
    CAPI_FAIL(NN_ERR_BUSY, nn_predict(b.model, x64, NN_DTYPE_FLOAT64, 1, 2, NN_OUTPUT_SCORES, out, NN_DTYPE_FLOAT64, 3));
    CAPI_FAIL(NN_ERR_BUSY, nn_get_params(b.model, params, 39));
    CAPI_FAIL(NN_ERR_BUSY, nn_get_loss_history(b.model, &rec, 1, &n));
    pthread_mutex_lock(&b.lock);
    b.tried = 1;
    pthread_cond_broadcast(&b.cond);
    pthread_mutex_unlock(&b.lock);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(b.calls, NN_OK);
    CAPI_OK(nn_predict(b.model, x64, NN_DTYPE_FLOAT64, 1, 2, NN_OUTPUT_SCORES, out, NN_DTYPE_FLOAT64, 3));
    pthread_mutex_destroy(&b.lock);
    pthread_cond_destroy(&b.cond);
    nn_destroy(b.model);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nn_models_train_concurrently_as_they_do_alone),
        cmocka_unit_test(test_calls_on_the_model_from_its_own_callback_are_busy),
        cmocka_unit_test(test_a_model_in_a_fit_on_another_thread_is_busy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
