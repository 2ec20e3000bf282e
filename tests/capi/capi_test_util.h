/*
 * Shared helpers for the C API tests: status assertions that also check the
 * thread-local error text, model/data builders, a snapshot of everything a
 * failing call must leave untouched, and a plain double-precision MLP used as
 * an oracle for forward passes and single SGD steps.
 */
#ifndef CAPI_TEST_UTIL_H
#define CAPI_TEST_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <nn/nn.h>

/* ---- statuses and error text ------------------------------------------------ */

/* Sets a known "marker" failure (0 or 1: two different ones) on this thread so that
 * capi_error_is_fresh() can tell a message written by the next call from a stale one.
 * A failing call whose text happens to equal marker 0 is re-run after marker 1. */
void capi_mark_error(int which);

/* Non-zero if nn_last_error_message() is non-empty and differs from the marker. */
int capi_error_is_fresh(void);

void capi_report_status(const char *call, nn_status got, nn_status want1, nn_status want2);

/* Asserts that `call` succeeds, printing the library's message if it does not. */
#define CAPI_OK(call)                                                            \
    do {                                                                         \
        nn_status capi_s_ = (call);                                              \
        if (capi_s_ != NN_OK) capi_report_status(#call, capi_s_, NN_OK, NN_OK);  \
        assert_int_equal(capi_s_, NN_OK);                                        \
    } while (0)

/* Asserts that `call` fails with exactly `want` and leaves a fresh message. */
#define CAPI_FAIL(want, call) CAPI_FAIL2((want), (want), call)

/* Asserts that `call` fails with `want1` or `want2` (where the header allows
 * either) and leaves a fresh message. */
#define CAPI_FAIL2(want1, want2, call)                                           \
    do {                                                                         \
        nn_status capi_s_;                                                       \
        capi_mark_error(0);                                                      \
        capi_s_ = (call);                                                        \
        if (!capi_error_is_fresh()) {                                            \
            capi_mark_error(1);                                                  \
            capi_s_ = (call);                                                    \
        }                                                                        \
        if (capi_s_ != (want1) && capi_s_ != (want2))                            \
            capi_report_status(#call, capi_s_, (want1), (want2));               \
        assert_true(capi_s_ == (want1) || capi_s_ == (want2));                   \
        if (!capi_error_is_fresh())                                              \
            print_error("%s: no new error message (got \"%s\")\n", #call,        \
                        nn_last_error_message());                                \
        assert_true(capi_error_is_fresh());                                      \
    } while (0)

/* ---- builders ------------------------------------------------------------------ */

/* nn_create with defaults except the given sizes, dtype and seed; asserts success. */
nn_model *capi_model(nn_dtype dtype, const size_t *sizes, size_t n_sizes, uint32_t seed);

/* The 2-6-3 sigmoid/softmax net used by most tests. */
nn_model *capi_small_model(nn_dtype dtype, uint32_t seed);

/* Three well separated Gaussian blobs in 2-D (class k centred at angle 2πk/3,
 * radius 2, noise 0.3), rows in a fixed interleaved class order. */
void capi_blobs(double *x, int32_t *labels, size_t rows, uint32_t seed);

/* Deterministic probe inputs: rows × cols doubles in about [-1, 1]. */
void capi_probe_inputs(double *x, size_t rows, size_t cols);

/* nn_fit_options with the defaults except these four. */
nn_fit_options capi_fit_options(size_t epochs, size_t batch, double lr, size_t interval);

/* ---- scratch directories ------------------------------------------------------- */

/* A new directory /tmp/nn_test_XXXXXX (malloc'ed path; free with capi_remove_dir). */
char *capi_make_temp_dir(void);

/* Lets this process's address space grow by at most `extra` bytes beyond its present
 * size (RLIMIT_AS), so that an allocation sized from an unchecked field fails. For a
 * forked child; returns 0, or -1 when the limit could not be set. */
int capi_limit_address_space(size_t extra);
/* Removes the entries of `dir` (files, FIFOs, empty directories) and `dir` itself; returns
 * 0 when the directory is gone. Best effort, so teardowns can call it after a failure. */
int capi_remove_dir(const char *dir);
/* out = dir + "/" + name, asserting it fits. */
void capi_join_path(char *out, size_t cap, const char *dir, const char *name);

/* ---- loading -------------------------------------------------------------------- */

/* A pointer value that is not NULL, to see that failed loads write NULL to *out. */
nn_model *capi_sentinel_model(void);
/* nn_load_from_buffer / nn_load that must succeed; returns the new model. */
nn_model *capi_load_buffer(const unsigned char *buf, size_t size);
nn_model *capi_load_file(const char *path);
/* Copies the parameters into out (capacity entries); returns how many there are. */
size_t capi_params_of(nn_model *m, double *out, size_t capacity);

/* ---- snapshots ---------------------------------------------------------------- */

#define CAPI_PROBE_ROWS 5

typedef struct capi_snapshot {
    size_t n_params;
    double *params;
    size_t n_outputs;
    double pred[CAPI_PROBE_ROWS * 16]; /* scores of the probe rows, float64 */
    size_t n_records;
    nn_loss_record *records;
    size_t n_epochs;
    double *epoch_losses;
    nn_device_info device;
} capi_snapshot;

void capi_snapshot_take(nn_model *model, capi_snapshot *snap);
/* Takes a new snapshot and asserts it is byte-identical to `snap`. */
void capi_snapshot_assert_same(nn_model *model, const capi_snapshot *snap);
void capi_snapshot_free(capi_snapshot *snap);

/* ---- random streams -------------------------------------------------------------- */

nn_rng *capi_rng(uint32_t seed);
/* Asserts that both streams give the same next randn and rand draws (and so were
 * advanced identically); advances both. */
void capi_assert_rng_in_step(nn_rng *a, nn_rng *b);

/* ---- a plain MLP oracle (double precision) ---------------------------------------- */

/* Forward pass with the library's flat parameter layout; writes rows × last scores. */
void capi_mlp_forward(const double *params, const size_t *sizes, size_t n_sizes,
                      nn_activation act, const double *x, size_t rows, double *scores);

/* One SGD step on all rows as one batch (softmax cross-entropy with class labels, or
 * MSE with real targets), updating params in place. Returns the batch loss. */
double capi_mlp_sgd_step(double *params, const size_t *sizes, size_t n_sizes,
                         nn_activation act, nn_loss loss, const double *x, size_t rows,
                         const int32_t *labels, const double *targets, double lr);

size_t capi_mlp_param_count(const size_t *sizes, size_t n_sizes);

/* Relative-or-absolute closeness: |a-b| <= tol * max(1, |a|, |b|). */
int capi_close(double a, double b, double tol);

#endif /* CAPI_TEST_UTIL_H */
