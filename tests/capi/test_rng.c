/* nn_rng_*: NumPy's legacy RandomState, bit for bit, and its argument checks. */
#include "capi_test_util.h"

#include <string.h>

#include "rng_expected.inc"

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static void test_nn_rng_create_rejects_null_out(void **state)
{
    (void)state;
    CAPI_FAIL(NN_ERR_NULL_POINTER, nn_rng_create(NULL, 1984));
}

static void test_nn_rng_destroy_null_is_a_noop(void **state)
{
    (void)state;
    nn_rng_destroy(NULL);
}

static void test_nn_rng_randn_matches_numpy_seed_1984(void **state)
{
    nn_rng *rng = capi_rng(1984);
    double got[COUNT(randn_1984)];
    (void)state;
    CAPI_OK(nn_rng_randn(rng, got, COUNT(got)));
    assert_memory_equal(got, randn_1984, sizeof got);
    nn_rng_destroy(rng);
}

static void test_nn_rng_randn_one_at_a_time_matches_a_block(void **state)
{
    nn_rng *rng = capi_rng(1984);
    size_t i;
    (void)state;
    for (i = 0; i < COUNT(randn_1984); ++i) {
        double v;
        CAPI_OK(nn_rng_randn(rng, &v, 1));
        assert_memory_equal(&v, &randn_1984[i], sizeof v);
    }
    nn_rng_destroy(rng);
}

static void test_nn_rng_rand_matches_numpy_seed_1984(void **state)
{
    nn_rng *rng = capi_rng(1984);
    double got[COUNT(rand_1984)];
    (void)state;
    CAPI_OK(nn_rng_rand(rng, got, COUNT(got)));
    assert_memory_equal(got, rand_1984, sizeof got);
    nn_rng_destroy(rng);
}

static void test_nn_rng_permutation_matches_numpy_seed_1984(void **state)
{
    nn_rng *rng = capi_rng(1984);
    int64_t got[300];
    (void)state;
    CAPI_OK(nn_rng_permutation(rng, got, 300));
    assert_memory_equal(got, perm300_1984, sizeof got);
    nn_rng_destroy(rng);
}

/* randn(3), rand(5), randn(), permutation(300), randn(2): the cached second gaussian
 * survives the rand and permutation calls in between. */
static void test_nn_rng_mixed_stream_keeps_the_cached_gaussian(void **state)
{
    nn_rng *rng = capi_rng(1984);
    double g3[3], u5[5], g1[1], g2[2];
    int64_t p[300];
    (void)state;
    CAPI_OK(nn_rng_randn(rng, g3, 3));
    CAPI_OK(nn_rng_rand(rng, u5, 5));
    CAPI_OK(nn_rng_randn(rng, g1, 1));
    CAPI_OK(nn_rng_permutation(rng, p, 300));
    CAPI_OK(nn_rng_randn(rng, g2, 2));
    assert_memory_equal(g3, mixed_randn3, sizeof g3);
    assert_memory_equal(u5, mixed_rand5, sizeof u5);
    assert_memory_equal(g1, mixed_randn1, sizeof g1);
    assert_memory_equal(p, mixed_perm300, sizeof p);
    assert_memory_equal(g2, mixed_randn2, sizeof g2);
    nn_rng_destroy(rng);
}

static void test_nn_rng_seed_restarts_the_stream_and_clears_the_cache(void **state)
{
    nn_rng *rng = capi_rng(5);
    double g;
    (void)state;
    CAPI_OK(nn_rng_randn(rng, &g, 1)); /* leaves a cached gaussian */
    CAPI_OK(nn_rng_seed(rng, 1984));
    CAPI_OK(nn_rng_randn(rng, &g, 1));
    assert_memory_equal(&g, &randn_1984[0], sizeof g);
    nn_rng_destroy(rng);
}

static void test_nn_rng_seed_array_matches_numpy(void **state)
{
    static const uint32_t key[2] = {1984, 7};
    nn_rng *rng = capi_rng(1);
    double g[COUNT(array_seed_randn)];
    int64_t p[COUNT(array_seed_perm10)];
    (void)state;
    CAPI_OK(nn_rng_randn(rng, g, 1)); /* cache must be cleared by the reseed */
    CAPI_OK(nn_rng_seed_array(rng, key, 2));
    CAPI_OK(nn_rng_randn(rng, g, COUNT(g)));
    CAPI_OK(nn_rng_permutation(rng, p, COUNT(p)));
    assert_memory_equal(g, array_seed_randn, sizeof g);
    assert_memory_equal(p, array_seed_perm10, sizeof p);
    nn_rng_destroy(rng);
}

static void test_nn_rng_seed_extremes_match_numpy(void **state)
{
    nn_rng *zero = capi_rng(0), *max = capi_rng(UINT32_MAX);
    double a[2], b[2];
    (void)state;
    CAPI_OK(nn_rng_rand(zero, a, 2));
    CAPI_OK(nn_rng_rand(max, b, 2));
    assert_memory_equal(a, seed0_rand, sizeof a);
    assert_memory_equal(b, seedmax_rand, sizeof b);
    nn_rng_destroy(zero);
    nn_rng_destroy(max);
}

static void test_nn_rng_rand_is_in_unit_interval(void **state)
{
    static double u[10000];
    nn_rng *rng = capi_rng(42);
    size_t i;
    (void)state;
    CAPI_OK(nn_rng_rand(rng, u, COUNT(u)));
    for (i = 0; i < COUNT(u); ++i) assert_true(u[i] >= 0.0 && u[i] < 1.0);
    nn_rng_destroy(rng);
}

static void test_nn_rng_permutation_of_0_and_1(void **state)
{
    nn_rng *rng = capi_rng(1984), *twin = capi_rng(1984);
    int64_t p[1] = {-7};
    (void)state;
    CAPI_OK(nn_rng_permutation(rng, p, 0));
    assert_int_equal(p[0], -7);
    CAPI_OK(nn_rng_permutation(rng, p, 1));
    assert_int_equal(p[0], 0);
    /* NumPy's shuffle makes n-1 interval draws: none for n <= 1. */
    capi_assert_rng_in_step(rng, twin);
    nn_rng_destroy(rng);
    nn_rng_destroy(twin);
}

static void test_nn_rng_zero_draws_accept_null_out_and_draw_nothing(void **state)
{
    nn_rng *rng = capi_rng(1984), *twin = capi_rng(1984);
    (void)state;
    CAPI_OK(nn_rng_randn(rng, NULL, 0));
    CAPI_OK(nn_rng_rand(rng, NULL, 0));
    CAPI_OK(nn_rng_permutation(rng, NULL, 0));
    capi_assert_rng_in_step(rng, twin);
    nn_rng_destroy(rng);
    nn_rng_destroy(twin);
}

static void test_nn_rng_functions_reject_null_rng(void **state)
{
    static const uint32_t key[1] = {1};
    double d[2];
    int64_t p[2];
    (void)state;
    CAPI_FAIL(NN_ERR_NULL_POINTER, nn_rng_seed(NULL, 1));
    CAPI_FAIL(NN_ERR_NULL_POINTER, nn_rng_seed_array(NULL, key, 1));
    CAPI_FAIL(NN_ERR_NULL_POINTER, nn_rng_randn(NULL, d, 2));
    CAPI_FAIL(NN_ERR_NULL_POINTER, nn_rng_rand(NULL, d, 2));
    CAPI_FAIL(NN_ERR_NULL_POINTER, nn_rng_permutation(NULL, p, 2));
    CAPI_FAIL(NN_ERR_NULL_POINTER, nn_rng_randn(NULL, NULL, 0));
}

static void test_nn_rng_draws_reject_null_out_and_leave_the_stream(void **state)
{
    nn_rng *rng = capi_rng(1984), *twin = capi_rng(1984);
    double g;
    (void)state;
    CAPI_OK(nn_rng_randn(rng, &g, 1)); /* fill the gaussian cache in both */
    CAPI_OK(nn_rng_randn(twin, &g, 1));
    CAPI_FAIL(NN_ERR_NULL_POINTER, nn_rng_randn(rng, NULL, 5));
    CAPI_FAIL(NN_ERR_NULL_POINTER, nn_rng_rand(rng, NULL, 5));
    CAPI_FAIL(NN_ERR_NULL_POINTER, nn_rng_permutation(rng, NULL, 5));
    capi_assert_rng_in_step(rng, twin);
    nn_rng_destroy(rng);
    nn_rng_destroy(twin);
}

static void test_nn_rng_seed_array_rejects_null_key_and_zero_length(void **state)
{
    static const uint32_t key[2] = {1984, 7};
    nn_rng *rng = capi_rng(1984), *twin = capi_rng(1984);
    (void)state;
    CAPI_FAIL(NN_ERR_NULL_POINTER, nn_rng_seed_array(rng, NULL, 2));
    CAPI_FAIL(NN_ERR_INVALID_ARGUMENT, nn_rng_seed_array(rng, key, 0));
    /* A failed reseed leaves the stream as it was. */
    capi_assert_rng_in_step(rng, twin);
    nn_rng_destroy(rng);
    nn_rng_destroy(twin);
}

static void test_nn_rng_streams_are_independent(void **state)
{
    nn_rng *a = capi_rng(1984), *b = capi_rng(1984);
    double ga[4], gb[4];
    (void)state;
    CAPI_OK(nn_rng_randn(a, ga, 2));
    CAPI_OK(nn_rng_randn(b, gb, 4));
    CAPI_OK(nn_rng_randn(a, ga + 2, 2));
    assert_memory_equal(ga, gb, sizeof ga);
    nn_rng_destroy(a);
    nn_rng_destroy(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nn_rng_create_rejects_null_out),
        cmocka_unit_test(test_nn_rng_destroy_null_is_a_noop),
        cmocka_unit_test(test_nn_rng_randn_matches_numpy_seed_1984),
        cmocka_unit_test(test_nn_rng_randn_one_at_a_time_matches_a_block),
        cmocka_unit_test(test_nn_rng_rand_matches_numpy_seed_1984),
        cmocka_unit_test(test_nn_rng_permutation_matches_numpy_seed_1984),
        cmocka_unit_test(test_nn_rng_mixed_stream_keeps_the_cached_gaussian),
        cmocka_unit_test(test_nn_rng_seed_restarts_the_stream_and_clears_the_cache),
        cmocka_unit_test(test_nn_rng_seed_array_matches_numpy),
        cmocka_unit_test(test_nn_rng_seed_extremes_match_numpy),
        cmocka_unit_test(test_nn_rng_rand_is_in_unit_interval),
        cmocka_unit_test(test_nn_rng_permutation_of_0_and_1),
        cmocka_unit_test(test_nn_rng_zero_draws_accept_null_out_and_draw_nothing),
        cmocka_unit_test(test_nn_rng_functions_reject_null_rng),
        cmocka_unit_test(test_nn_rng_draws_reject_null_out_and_leave_the_stream),
        cmocka_unit_test(test_nn_rng_seed_array_rejects_null_key_and_zero_length),
        cmocka_unit_test(test_nn_rng_streams_are_independent),
    };
    return cmocka_run_group_tests(tests, load_rng_expected, NULL);
}
