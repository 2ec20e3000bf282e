/* DESIGN.md: no allocation inside the steady-state training loop. Counts every heap
 * allocation of the process (malloc and friends are wrapped here; C++ new goes through
 * malloc) during nn_fit, and asserts that 300 epochs allocate no more than 3: the cost
 * of a fit is fixed, not per step or per epoch. Not built under the sanitizers, which
 * own malloc themselves. */
#include "capi_test_util.h"

#include <stdint.h>
#include <stdlib.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);

static size_t allocations;

/* Exported (the build hides symbols by default) so that they interpose for every
 * shared object in the process. */
#define EXPORT __attribute__((visibility("default")))

EXPORT void *malloc(size_t n) { ++allocations; return __libc_malloc(n); }
EXPORT void *calloc(size_t a, size_t b) { ++allocations; return __libc_calloc(a, b); }
EXPORT void *realloc(void *p, size_t n) { ++allocations; return __libc_realloc(p, n); }
EXPORT void *memalign(size_t a, size_t n) { ++allocations; return __libc_memalign(a, n); }
EXPORT void *aligned_alloc(size_t a, size_t n) { ++allocations; return __libc_memalign(a, n); }
EXPORT int posix_memalign(void **out, size_t a, size_t n)
{
    ++allocations;
    *out = __libc_memalign(a, n);
    return *out ? 0 : 12;
}

#define ROWS 300
static double x64[ROWS * 2];
static int32_t labels[ROWS];

static size_t allocations_of_fit(nn_dtype dtype, nn_device_kind device, size_t epochs, size_t interval)
{
    nn_model *m = capi_small_model(dtype, 1);
    nn_fit_options o;
    size_t before;
    nn_status s;
    nn_fit_options_init(&o);
    o.epochs = epochs;
    o.batch_size = 30;
    o.learning_rate = 1.0;
    o.report_interval = interval;
    CAPI_OK(nn_set_device(m, device, 0));
    CAPI_OK(nn_fit(m, x64, NN_DTYPE_FLOAT64, ROWS, 2, labels, NN_TARGET_CLASS_INDEX, 1, &o, NULL)); /* warm */
    before = allocations;
    s = nn_fit(m, x64, NN_DTYPE_FLOAT64, ROWS, 2, labels, NN_TARGET_CLASS_INDEX, 1, &o, NULL);
    before = allocations - before;
    CAPI_OK(s);
    nn_destroy(m);
    return before;
}

static void test_nn_fit_allocations_do_not_grow_with_epochs(void **state)
{
    int dtype;
    (void)state;
    capi_blobs(x64, labels, ROWS, 3);
    for (dtype = 0; dtype < 2; ++dtype) {
        const nn_device_kind devices[] = {NN_DEVICE_REFERENCE, NN_DEVICE_CPU};
        size_t d;
        for (d = 0; d < 2; ++d) {
            size_t few = allocations_of_fit((nn_dtype)dtype, devices[d], 3, 10);
            size_t many = allocations_of_fit((nn_dtype)dtype, devices[d], 300, 10);
            size_t dense = allocations_of_fit((nn_dtype)dtype, devices[d], 300, 1);
            print_message("dtype %d device %d: %zu allocations for 3 epochs, %zu for 300, %zu with a record per step\n",
                          dtype, (int)devices[d], few, many, dense);
            assert_true(few > 0); /* the counter sees libnn's allocations at all */
            assert_true(many <= few + 3);
            assert_true(dense <= few + 3);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nn_fit_allocations_do_not_grow_with_epochs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
