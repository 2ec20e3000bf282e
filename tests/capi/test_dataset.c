/* nn_dataset_spiral: the book's spiral and its argument checks. */
#include "capi_test_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PPC 100
#define CLASSES 3
#define ROWS (PPC * CLASSES)

static double x_buf[ROWS * 2];
static int32_t labels_buf[ROWS];

/* The spiral NumPy computes with glibc's sin/cos (BOOK-CH01.md §13). */
static void test_nn_dataset_spiral_matches_the_book_seed_1984(void **state)
{
    char path[1024], line[256];
    FILE *f;
    size_t r = 0;
    (void)state;
    CAPI_OK(nn_dataset_spiral(x_buf, ROWS * 2, labels_buf, ROWS, PPC, CLASSES, NULL, 1984));
    snprintf(path, sizeof path, "%s/book-ch01/libm-variant/spiral.csv", NN_REFERENCE_DIR);
    f = fopen(path, "r");
    if (f == NULL) print_error("cannot open %s\n", path);
    assert_non_null(f);
    assert_non_null(fgets(line, sizeof line, f)); /* header */
    while (fgets(line, sizeof line, f) != NULL && r < ROWS) {
        char *end;
        double x0 = strtod(line, &end);
        double x1 = strtod(end + 1, &end);
        long label = strtol(end + 1, NULL, 10);
        if (!(fabs(x_buf[2 * r] - x0) <= 1e-15 && fabs(x_buf[2 * r + 1] - x1) <= 1e-15))
            print_error("row %u: got (%.17g, %.17g), book (%.17g, %.17g)\n", (unsigned)r,
                        x_buf[2 * r], x_buf[2 * r + 1], x0, x1);
        assert_true(fabs(x_buf[2 * r] - x0) <= 1e-15);
        assert_true(fabs(x_buf[2 * r + 1] - x1) <= 1e-15);
        assert_int_equal(labels_buf[r], label);
        ++r;
    }
    fclose(f);
    assert_int_equal(r, ROWS);
}

static void test_nn_dataset_spiral_is_class_major_with_radius_below_one(void **state)
{
    size_t r;
    (void)state;
    CAPI_OK(nn_dataset_spiral(x_buf, ROWS * 2, labels_buf, ROWS, PPC, CLASSES, NULL, 7));
    for (r = 0; r < ROWS; ++r) {
        double radius = sqrt(x_buf[2 * r] * x_buf[2 * r] + x_buf[2 * r + 1] * x_buf[2 * r + 1]);
        double expected = (double)(r % PPC) / PPC;
        assert_int_equal(labels_buf[r], (int32_t)(r / PPC));
        assert_true(fabs(radius - expected) < 1e-12);
    }
}

static void test_nn_dataset_spiral_continues_a_given_stream(void **state)
{
    static double x2[ROWS * 2];
    static int32_t l2[ROWS];
    nn_rng *rng = capi_rng(1984), *twin = capi_rng(1984);
    double skip[ROWS];
    (void)state;
    /* A NULL stream with seed s equals a stream reseeded with s. */
    CAPI_OK(nn_dataset_spiral(x_buf, ROWS * 2, labels_buf, ROWS, PPC, CLASSES, NULL, 1984));
    CAPI_OK(nn_dataset_spiral(x2, ROWS * 2, l2, ROWS, PPC, CLASSES, rng, 555));
    assert_memory_equal(x_buf, x2, sizeof x2);
    assert_memory_equal(labels_buf, l2, sizeof l2);
    /* It drew exactly one gaussian per point. */
    CAPI_OK(nn_rng_randn(twin, skip, ROWS));
    capi_assert_rng_in_step(rng, twin);
    /* A second call continues the stream, so it differs from the first. */
    CAPI_OK(nn_dataset_spiral(x2, ROWS * 2, l2, ROWS, PPC, CLASSES, rng, 1984));
    assert_memory_not_equal(x_buf, x2, sizeof x2);
    nn_rng_destroy(rng);
    nn_rng_destroy(twin);
}

static void test_nn_dataset_spiral_seed_is_used_only_without_a_stream(void **state)
{
    static double x2[ROWS * 2];
    (void)state;
    CAPI_OK(nn_dataset_spiral(x_buf, ROWS * 2, labels_buf, ROWS, PPC, CLASSES, NULL, 1984));
    CAPI_OK(nn_dataset_spiral(x2, ROWS * 2, labels_buf, ROWS, PPC, CLASSES, NULL, 1985));
    assert_memory_not_equal(x_buf, x2, sizeof x2);
}

static void test_nn_dataset_spiral_accepts_larger_buffers_and_leaves_the_rest(void **state)
{
    double x[2 * 2 * 2 + 2];
    int32_t l[2 * 2 + 1];
    (void)state;
    x[8] = 123.0;
    x[9] = 456.0;
    l[4] = 99;
    CAPI_OK(nn_dataset_spiral(x, 10, l, 5, 2, 2, NULL, 3));
    assert_true(x[8] == 123.0 && x[9] == 456.0);
    assert_int_equal(l[4], 99);
}

static void test_nn_dataset_spiral_rejects_null_buffers(void **state)
{
    nn_rng *rng = capi_rng(9), *twin = capi_rng(9);
    (void)state;
    CAPI_FAIL(NN_ERR_NULL_POINTER,
              nn_dataset_spiral(NULL, ROWS * 2, labels_buf, ROWS, PPC, CLASSES, rng, 0));
    CAPI_FAIL(NN_ERR_NULL_POINTER,
              nn_dataset_spiral(x_buf, ROWS * 2, NULL, ROWS, PPC, CLASSES, rng, 0));
    capi_assert_rng_in_step(rng, twin);
    nn_rng_destroy(rng);
    nn_rng_destroy(twin);
}

static void test_nn_dataset_spiral_rejects_zero_counts(void **state)
{
    nn_rng *rng = capi_rng(9), *twin = capi_rng(9);
    (void)state;
    CAPI_FAIL(NN_ERR_INVALID_ARGUMENT,
              nn_dataset_spiral(x_buf, ROWS * 2, labels_buf, ROWS, 0, CLASSES, rng, 0));
    CAPI_FAIL(NN_ERR_INVALID_ARGUMENT,
              nn_dataset_spiral(x_buf, ROWS * 2, labels_buf, ROWS, PPC, 0, rng, 0));
    capi_assert_rng_in_step(rng, twin);
    nn_rng_destroy(rng);
    nn_rng_destroy(twin);
}

static void test_nn_dataset_spiral_rejects_small_buffers_and_draws_nothing(void **state)
{
    nn_rng *rng = capi_rng(9), *twin = capi_rng(9);
    (void)state;
    CAPI_FAIL(NN_ERR_BUFFER_TOO_SMALL,
              nn_dataset_spiral(x_buf, ROWS * 2 - 1, labels_buf, ROWS, PPC, CLASSES, rng, 0));
    CAPI_FAIL(NN_ERR_BUFFER_TOO_SMALL,
              nn_dataset_spiral(x_buf, ROWS * 2, labels_buf, ROWS - 1, PPC, CLASSES, rng, 0));
    CAPI_FAIL(NN_ERR_BUFFER_TOO_SMALL,
              nn_dataset_spiral(x_buf, 0, labels_buf, 0, PPC, CLASSES, rng, 0));
    capi_assert_rng_in_step(rng, twin);
    nn_rng_destroy(rng);
    nn_rng_destroy(twin);
}

/* points × classes (or × 2 coordinates) does not fit in size_t: an overflow, never a
 * wrapped-around small size that the real buffers would "fit". */
static void test_nn_dataset_spiral_rejects_overflowing_counts(void **state)
{
    nn_rng *rng = capi_rng(9), *twin = capi_rng(9);
    (void)state;
    /* rows = 2^63 + 2^63 wraps to 0 (or small) in size_t arithmetic. */
    CAPI_FAIL2(NN_ERR_SIZE_OVERFLOW, NN_ERR_BUFFER_TOO_SMALL,
               nn_dataset_spiral(x_buf, ROWS * 2, labels_buf, ROWS, SIZE_MAX / 2 + 1, 2, rng, 0));
    CAPI_FAIL2(NN_ERR_SIZE_OVERFLOW, NN_ERR_BUFFER_TOO_SMALL,
               nn_dataset_spiral(x_buf, ROWS * 2, labels_buf, ROWS, SIZE_MAX / 2, 4, rng, 0));
    /* rows fits, rows × 2 wraps to a small number. */
    CAPI_FAIL2(NN_ERR_SIZE_OVERFLOW, NN_ERR_BUFFER_TOO_SMALL,
               nn_dataset_spiral(x_buf, ROWS * 2, labels_buf, ROWS, SIZE_MAX / 4 + 1, 2, rng, 0));
    capi_assert_rng_in_step(rng, twin);
    nn_rng_destroy(rng);
    nn_rng_destroy(twin);
}

/* With a huge, exactly wrapping count the only correct answer is an overflow: rows =
 * 2^63 × 2 wraps to 0, which a library would otherwise call "a count is 0" or accept. */
static void test_nn_dataset_spiral_wrapping_product_is_size_overflow(void **state)
{
    (void)state;
    CAPI_FAIL(NN_ERR_SIZE_OVERFLOW,
              nn_dataset_spiral(x_buf, ROWS * 2, labels_buf, ROWS, SIZE_MAX / 2 + 1, 2, NULL, 0));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nn_dataset_spiral_matches_the_book_seed_1984),
        cmocka_unit_test(test_nn_dataset_spiral_is_class_major_with_radius_below_one),
        cmocka_unit_test(test_nn_dataset_spiral_continues_a_given_stream),
        cmocka_unit_test(test_nn_dataset_spiral_seed_is_used_only_without_a_stream),
        cmocka_unit_test(test_nn_dataset_spiral_accepts_larger_buffers_and_leaves_the_rest),
        cmocka_unit_test(test_nn_dataset_spiral_rejects_null_buffers),
        cmocka_unit_test(test_nn_dataset_spiral_rejects_zero_counts),
        cmocka_unit_test(test_nn_dataset_spiral_rejects_small_buffers_and_draws_nothing),
        cmocka_unit_test(test_nn_dataset_spiral_rejects_overflowing_counts),
        cmocka_unit_test(test_nn_dataset_spiral_wrapping_product_is_size_overflow),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
