/* Versions, status strings and the thread-local last-error message. */
#define _POSIX_C_SOURCE 200809L
#include "capi_test_util.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

static void test_nn_version_matches_header_macros(void **state)
{
    int major = -1, minor = -1, patch = -1;
    (void)state;
    nn_version(&major, &minor, &patch);
    assert_int_equal(major, NN_VERSION_MAJOR);
    assert_int_equal(minor, NN_VERSION_MINOR);
    assert_int_equal(patch, NN_VERSION_PATCH);
    assert_int_equal(major * 10000 + minor * 100 + patch, NN_VERSION_NUMBER);
}

static void test_nn_version_accepts_null_out_pointers(void **state)
{
    int minor = -1;
    (void)state;
    nn_version(NULL, NULL, NULL);
    nn_version(NULL, &minor, NULL);
    assert_int_equal(minor, NN_VERSION_MINOR);
}

static void test_nn_version_string_matches_header_macros(void **state)
{
    char expected[64];
    const char *s = nn_version_string();
    (void)state;
    assert_non_null(s);
    snprintf(expected, sizeof expected, "%d.%d.%d", NN_VERSION_MAJOR, NN_VERSION_MINOR,
             NN_VERSION_PATCH);
    assert_string_equal(s, expected);
    assert_ptr_equal(s, nn_version_string()); /* static storage */
}

#define N_CODES 22
static const char *const code_names[N_CODES] = {
    "NN_OK", "NN_ERR_NULL_POINTER", "NN_ERR_INVALID_ARGUMENT", "NN_ERR_STRUCT_SIZE",
    "NN_ERR_SIZE_OVERFLOW", "NN_ERR_SHAPE_MISMATCH", "NN_ERR_LABEL_OUT_OF_RANGE",
    "NN_ERR_NON_FINITE", "NN_ERR_BAD_HYPERPARAMETER", "NN_ERR_BUFFER_TOO_SMALL",
    "NN_ERR_OUT_OF_MEMORY", "NN_ERR_DEVICE_UNAVAILABLE", "NN_ERR_BACKEND",
    "NN_ERR_UNSUPPORTED", "NN_ERR_INTERNAL", "NN_ERR_IO", "NN_ERR_CORRUPT", "NN_ERR_VERSION",
    "NN_ERR_CANCELLED", "NN_ERR_DIVERGED", "NN_ERR_BUSY", "NN_ERR_COMM"};

static void test_nn_status_codes_have_their_documented_values(void **state)
{
    (void)state;
    assert_int_equal(NN_OK, 0);
    assert_int_equal(NN_ERR_NULL_POINTER, 1);
    assert_int_equal(NN_ERR_SIZE_OVERFLOW, 4);
    assert_int_equal(NN_ERR_BAD_HYPERPARAMETER, 8);
    assert_int_equal(NN_ERR_INTERNAL, 14);
    assert_int_equal(NN_ERR_IO, 15);
    assert_int_equal(NN_ERR_CORRUPT, 16);
    assert_int_equal(NN_ERR_VERSION, 17);
    assert_int_equal(NN_ERR_CANCELLED, 18);
    assert_int_equal(NN_ERR_DIVERGED, 19);
    assert_int_equal(NN_ERR_BUSY, 20);
    assert_int_equal(NN_ERR_COMM, 21);
}

static void test_nn_status_string_is_nonempty_and_distinct_for_every_code(void **state)
{
    const char *s[N_CODES];
    int i, j;
    (void)state;
    for (i = 0; i < N_CODES; ++i) {
        s[i] = nn_status_string((nn_status)i);
        assert_non_null(s[i]);
        assert_true(strlen(s[i]) > 0);
        assert_string_not_equal(s[i], "unknown status");
    }
    for (i = 0; i < N_CODES; ++i)
        for (j = i + 1; j < N_CODES; ++j) assert_string_not_equal(s[i], s[j]);
}

/* The header's example ("NN_ERR_SHAPE_MISMATCH: shape mismatch") names the code. */
static void test_nn_status_string_names_the_code(void **state)
{
    int i;
    (void)state;
    for (i = 0; i < N_CODES; ++i) {
        const char *s = nn_status_string((nn_status)i);
        if (strstr(s, code_names[i]) == NULL)
            print_error("nn_status_string(%d) = \"%s\" does not contain %s\n", i, s, code_names[i]);
        assert_non_null(strstr(s, code_names[i]));
    }
}

static void test_nn_status_string_unknown_codes_give_unknown_status(void **state)
{
    (void)state;
    assert_string_equal(nn_status_string((nn_status)N_CODES), "unknown status");
    assert_string_equal(nn_status_string((nn_status)1000), "unknown status");
    assert_string_equal(nn_status_string((nn_status)-1), "unknown status");
}

static void test_nn_status_string_is_static(void **state)
{
    (void)state;
    assert_ptr_equal(nn_status_string(NN_ERR_SHAPE_MISMATCH),
                     nn_status_string(NN_ERR_SHAPE_MISMATCH));
}

/* ---- last error -------------------------------------------------------------- */

typedef struct thread_result {
    char before[256];
    char after[256];
    nn_status status;
} thread_result;

static void *fail_once_in_thread(void *arg)
{
    thread_result *res = arg;
    const char *m = nn_last_error_message();
    strncpy(res->before, m ? m : "(null)", sizeof res->before - 1);
    res->status = nn_rng_seed(NULL, 1);
    m = nn_last_error_message();
    strncpy(res->after, m ? m : "(null)", sizeof res->after - 1);
    return NULL;
}

static void test_nn_last_error_message_is_empty_on_a_fresh_thread(void **state)
{
    pthread_t t;
    thread_result res;
    (void)state;
    memset(&res, 0, sizeof res);
    /* Fail on this thread first, so a process-wide message would show up there. */
    CAPI_FAIL(NN_ERR_NULL_POINTER, nn_rng_create(NULL, 1));
    assert_int_equal(pthread_create(&t, NULL, fail_once_in_thread, &res), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_string_equal(res.before, "");
    assert_int_equal(res.status, NN_ERR_NULL_POINTER);
    assert_true(strlen(res.after) > 0);
}

static void test_nn_last_error_message_is_thread_local(void **state)
{
    pthread_t t;
    thread_result res;
    char mine[256];
    (void)state;
    memset(&res, 0, sizeof res);
    capi_mark_error(0);
    strncpy(mine, nn_last_error_message(), sizeof mine - 1);
    mine[sizeof mine - 1] = '\0';
    assert_int_equal(pthread_create(&t, NULL, fail_once_in_thread, &res), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_string_equal(nn_last_error_message(), mine);
    assert_string_not_equal(res.after, mine);
}

static void test_nn_last_error_message_survives_successful_calls(void **state)
{
    char msg[512];
    size_t count = 0;
    nn_rng *rng = capi_rng(3);
    double d[2];
    const uint32_t key[1] = {7};
    (void)state;
    CAPI_FAIL(NN_ERR_INVALID_ARGUMENT, nn_rng_seed_array(rng, key, 0));
    strncpy(msg, nn_last_error_message(), sizeof msg - 1);
    msg[sizeof msg - 1] = '\0';
    CAPI_OK(nn_rng_randn(rng, d, 2));
    CAPI_OK(nn_device_count(&count));
    assert_string_equal(nn_last_error_message(), msg);
    nn_rng_destroy(rng);
}

static void test_nn_last_error_message_describes_a_shape_mismatch(void **state)
{
    nn_model *model = capi_small_model(NN_DTYPE_FLOAT64, 1);
    double x[3] = {0.1, 0.2, 0.3}, out[3];
    (void)state;
    CAPI_FAIL(NN_ERR_SHAPE_MISMATCH, nn_predict(model, x, NN_DTYPE_FLOAT64, 1, 3,
                                                NN_OUTPUT_SCORES, out, NN_DTYPE_FLOAT64, 3));
    /* DESIGN.md: "x has 3 columns, the model expects 2" — the numbers are the point. */
    assert_non_null(strchr(nn_last_error_message(), '3'));
    assert_non_null(strchr(nn_last_error_message(), '2'));
    nn_destroy(model);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nn_version_matches_header_macros),
        cmocka_unit_test(test_nn_version_accepts_null_out_pointers),
        cmocka_unit_test(test_nn_version_string_matches_header_macros),
        cmocka_unit_test(test_nn_status_codes_have_their_documented_values),
        cmocka_unit_test(test_nn_status_string_is_nonempty_and_distinct_for_every_code),
        cmocka_unit_test(test_nn_status_string_names_the_code),
        cmocka_unit_test(test_nn_status_string_unknown_codes_give_unknown_status),
        cmocka_unit_test(test_nn_status_string_is_static),
        cmocka_unit_test(test_nn_last_error_message_is_empty_on_a_fresh_thread),
        cmocka_unit_test(test_nn_last_error_message_is_thread_local),
        cmocka_unit_test(test_nn_last_error_message_survives_successful_calls),
        cmocka_unit_test(test_nn_last_error_message_describes_a_shape_mismatch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
