/* Different handles on different threads at the same time (nn.h: "Threads"). */
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nn_models_train_concurrently_as_they_do_alone),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
