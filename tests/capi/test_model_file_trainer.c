/* The trainer's state in model files (docs/model-format.md, sections EPCH and OPTM): a
 * fit continued after a save and a load is bit for bit the fit continued without them,
 * for Adam and Momentum, with validation figures in the history; without the training
 * state the optimizer starts from zero, as after nn_reset_optimizer; damaged optimizer
 * and epoch sections are NN_ERR_CORRUPT; files without these sections (libnn 0.1.0's)
 * still load, with a fresh optimizer. */
#define _XOPEN_SOURCE 700
#include "capi_test_util.h"
#include "model_file_bytes.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_PARAMS 64
#define MAX_RECORDS 512
#define MAX_EPOCHS 400
#define ROWS 60

/* OPTM payload: kind u32, storage u32, adam step u64, count u64, values. */
#define OPTM_KIND 0u
#define OPTM_STORAGE 4u
#define OPTM_STEP 8u
#define OPTM_COUNT 16u
#define OPTM_VALUES 24u
/* EPCH payload: n u64, then n × (epoch u64, val_loss f64, val_accuracy f64). */
#define EPCH_RECORD(i) (8u + 24u * (i))

static double x64[ROWS * 2];
static int32_t labels[ROWS];

/* ---- bytes ------------------------------------------------------------------------------ */

/* A copy of `buf` whose section `tag` holds only the first `len` bytes of its payload
 * (length field and CRC fixed). */
static unsigned char *with_payload_cut(const unsigned char *buf, size_t size, const char *tag, size_t len,
                                       size_t *out_size)
{
    const size_t at = find_section(buf, size, tag);
    const size_t old_len = (size_t)get_u64(buf + at + 8);
    unsigned char *c;
    assert_true(len <= old_len);
    c = malloc(size - (old_len - len));
    assert_non_null(c);
    memcpy(c, buf, at + SECTION + len);
    memcpy(c + at + SECTION + len, buf + at + SECTION + old_len, size - (at + SECTION + old_len));
    put_u64(c + at + 8, len);
    *out_size = size - (old_len - len);
    fix_crc(c, *out_size);
    return c;
}

/* ---- loading ---------------------------------------------------------------------------- */

static unsigned char *saved(nn_model *m, int training_state, size_t *size)
{
    nn_save_options o;
    unsigned char *buf;
    size_t got = 0;
    nn_save_options_init(&o);
    o.include_training_state = training_state;
    CAPI_OK(nn_save_to_buffer(m, NULL, 0, size, &o));
    buf = malloc(*size);
    assert_non_null(buf);
    CAPI_OK(nn_save_to_buffer(m, buf, *size, &got, &o));
    assert_int_equal(got, *size);
    return buf;
}

/* ---- training and what it leaves --------------------------------------------------------- */

static int setup_data(void **state)
{
    (void)state;
    capi_blobs(x64, labels, ROWS, 21);
    return 0;
}

/* `epochs` epochs of `opt` (lr 0.01, batch 10, a record every 2 steps) with a fifth of the
 * rows held out for validation when `validate`; `rng` NULL: the model's own stream. */
static void train(nn_model *m, nn_optimizer opt, size_t epochs, int validate, nn_rng *rng)
{
    nn_fit_options o = capi_fit_options(epochs, 10, 0.01, 2);
    o.optimizer = opt;
    o.validation_fraction = validate ? 0.2 : 0.0;
    o.rng = rng;
    CAPI_OK(nn_fit(m, x64, NN_DTYPE_FLOAT64, ROWS, 2, labels, NN_TARGET_CLASS_INDEX, 1, &o, NULL));
}

typedef struct trained {
    size_t n_params, n_records, n_epochs;
    double params[MAX_PARAMS];
    nn_loss_record records[MAX_RECORDS];
    nn_epoch_record epochs[MAX_EPOCHS];
} trained;

static trained *take(nn_model *m)
{
    trained *t = calloc(1, sizeof *t);
    assert_non_null(t);
    t->n_params = capi_params_of(m, t->params, MAX_PARAMS);
    CAPI_OK(nn_get_loss_history(m, t->records, MAX_RECORDS, &t->n_records));
    CAPI_OK(nn_get_epoch_history(m, t->epochs, MAX_EPOCHS, &t->n_epochs));
    return t;
}

static void assert_same(const trained *a, const trained *b)
{
    assert_int_equal(a->n_params, b->n_params);
    assert_memory_equal(a->params, b->params, a->n_params * sizeof(double));
    assert_int_equal(a->n_records, b->n_records);
    assert_memory_equal(a->records, b->records, a->n_records * sizeof(nn_loss_record));
    assert_int_equal(a->n_epochs, b->n_epochs);
    assert_memory_equal(a->epochs, b->epochs, a->n_epochs * sizeof(nn_epoch_record));
}

static int same_params(const trained *a, const trained *b)
{
    return a->n_params == b->n_params && memcmp(a->params, b->params, a->n_params * sizeof(double)) == 0;
}

static void set_device(nn_model *m, nn_device_kind dev)
{
    CAPI_OK(nn_set_device(m, dev, 0));
}

static int device_available(nn_device_kind kind)
{
    size_t n = 0, i;
    CAPI_OK(nn_device_count(&n));
    for (i = 0; i < n; ++i) {
        nn_device_info info;
        nn_device_info_init(&info);
        CAPI_OK(nn_device_get(i, &info));
        if (info.kind == kind && info.available) return 1;
    }
    return 0;
}

static const char *optimizer_name(nn_optimizer o)
{
    return o == NN_OPTIMIZER_ADAM ? "Adam" : o == NN_OPTIMIZER_MOMENTUM ? "Momentum" : "another optimizer";
}

/* ---- 1. continued training -------------------------------------------------------------- */

/* 5 epochs, a save with the training state, a load, 5 more: bit for bit the 5 + 5 without
 * the save and load (parameters, loss records, epoch history with validation figures). */
static void continue_case(nn_dtype dtype, nn_optimizer opt, nn_device_kind dev)
{
    nn_model *a = capi_small_model(dtype, 31), *b;
    unsigned char *buf;
    size_t size = 0, k;
    trained *ta, *tb;
    print_message("continued training: %s, %s model, device %d\n", optimizer_name(opt),
                  dtype == NN_DTYPE_FLOAT32 ? "float32" : "float64", (int)dev);
    set_device(a, dev);
    train(a, opt, 5, 1, NULL);
    buf = saved(a, 1, &size);
    (void)payload_of(buf, size, "OPTM");
    (void)payload_of(buf, size, "EPCH");
    b = capi_load_buffer(buf, size);
    set_device(b, dev);

    /* the history, validation figures included, round-trips bit for bit */
    ta = take(a);
    tb = take(b);
    assert_same(ta, tb);
    assert_int_equal(ta->n_epochs, 5);
    for (k = 0; k < 5; ++k) {
        assert_int_equal(ta->epochs[k].epoch, k + 1);
        assert_false(isnan(ta->epochs[k].val_loss));
        assert_true(ta->epochs[k].val_accuracy >= 0.0 && ta->epochs[k].val_accuracy <= 1.0);
    }
    free(ta);
    free(tb);

    train(a, opt, 5, 1, NULL);
    train(b, opt, 5, 1, NULL);
    ta = take(a);
    tb = take(b);
    assert_int_equal(ta->n_epochs, 10);
    assert_int_equal(ta->epochs[9].epoch, 10);
    assert_same(ta, tb);
    free(ta);
    free(tb);
    free(buf);
    nn_destroy(a);
    nn_destroy(b);
}

static void test_adam_and_momentum_continue_after_a_load_exactly_as_without_it(void **state)
{
    static const nn_optimizer opts[] = {NN_OPTIMIZER_ADAM, NN_OPTIMIZER_MOMENTUM};
    size_t k;
    (void)state;
    for (k = 0; k < 2; ++k) {
        continue_case(NN_DTYPE_FLOAT64, opts[k], NN_DEVICE_REFERENCE);
        if (device_available(NN_DEVICE_CPU))
            continue_case(NN_DTYPE_FLOAT64, opts[k], NN_DEVICE_CPU);
        else
            print_message("no CPU plugin in this build: the reference device only\n");
    }
}

/* A float32 model's state is stored as float32 (its own dtype): still exact. And every
 * other optimizer with state. */
static void test_float32_models_and_every_stateful_optimizer_continue_exactly(void **state)
{
    static const nn_optimizer opts[] = {NN_OPTIMIZER_ADAM, NN_OPTIMIZER_MOMENTUM, NN_OPTIMIZER_NESTEROV,
                                        NN_OPTIMIZER_ADAGRAD, NN_OPTIMIZER_RMSPROP};
    size_t k;
    (void)state;
    for (k = 0; k < 2; ++k) continue_case(NN_DTYPE_FLOAT32, opts[k], NN_DEVICE_REFERENCE);
    for (k = 2; k < 5; ++k) continue_case(NN_DTYPE_FLOAT64, opts[k], NN_DEVICE_REFERENCE);
}

/* Without the training state the optimizer restarts: the continuation differs from the
 * one with it, and equals a model given nn_reset_optimizer and nn_reset_history. The fits
 * after the load use equal caller streams, so only the optimizer (and the epoch counter)
 * can tell them apart. */
static void restart_case(nn_optimizer opt)
{
    nn_model *a = capi_small_model(NN_DTYPE_FLOAT64, 32), *with, *without, *reset;
    unsigned char *full, *bare;
    size_t full_size = 0, bare_size = 0;
    nn_rng *r1 = capi_rng(77), *r2 = capi_rng(77), *r3 = capi_rng(77);
    trained *tw, *to, *tr;
    size_t n = 99;
    set_device(a, NN_DEVICE_REFERENCE);
    train(a, opt, 5, 1, NULL);
    full = saved(a, 1, &full_size);
    bare = saved(a, 0, &bare_size);
    assert_true(bare_size < full_size);
    assert_true(section_or_none(bare, bare_size, "OPTM") == (size_t)-1);
    assert_true(section_or_none(bare, bare_size, "EPCH") == (size_t)-1);
    assert_true(section_or_none(bare, bare_size, "TRNG") == (size_t)-1);

    with = capi_load_buffer(full, full_size);
    without = capi_load_buffer(bare, bare_size);
    reset = capi_load_buffer(full, full_size);
    CAPI_OK(nn_get_epoch_history(without, NULL, 0, &n));
    assert_int_equal(n, 0);
    CAPI_OK(nn_reset_optimizer(reset));
    CAPI_OK(nn_reset_history(reset));
    set_device(with, NN_DEVICE_REFERENCE);
    set_device(without, NN_DEVICE_REFERENCE);
    set_device(reset, NN_DEVICE_REFERENCE);
    train(with, opt, 5, 1, r1);
    train(without, opt, 5, 1, r2);
    train(reset, opt, 5, 1, r3);
    tw = take(with);
    to = take(without);
    tr = take(reset);
    assert_false(same_params(tw, to)); /* the optimizer restarted */
    assert_same(to, tr);
    assert_int_equal(to->n_epochs, 5);
    assert_int_equal(to->epochs[0].epoch, 1);
    assert_int_equal(tw->epochs[9].epoch, 10);
    free(tw);
    free(to);
    free(tr);
    nn_rng_destroy(r1);
    nn_rng_destroy(r2);
    nn_rng_destroy(r3);
    free(full);
    free(bare);
    nn_destroy(a);
    nn_destroy(with);
    nn_destroy(without);
    nn_destroy(reset);
}

static void test_without_the_training_state_the_optimizer_restarts(void **state)
{
    (void)state;
    restart_case(NN_OPTIMIZER_ADAM);
    restart_case(NN_OPTIMIZER_MOMENTUM);
}

/* ---- 2. what the file holds ---------------------------------------------------------------- */

static void test_the_sections_hold_what_the_format_says(void **state)
{
    nn_model *m = capi_small_model(NN_DTYPE_FLOAT64, 33), *f = capi_small_model(NN_DTYPE_FLOAT32, 33);
    unsigned char *buf;
    size_t size = 0, p, e, t, k, n_params = 0;
    trained *tm;
    (void)state;
    CAPI_OK(nn_param_count(m, &n_params));

    /* untrained: no epochs, no optimizer */
    buf = saved(m, 1, &size);
    assert_true(section_or_none(buf, size, "OPTM") == (size_t)-1);
    assert_true(section_or_none(buf, size, "EPCH") == (size_t)-1);
    free(buf);

    /* plain SGD keeps no state: epochs but no optimizer section */
    train(m, NN_OPTIMIZER_SGD, 2, 0, NULL);
    buf = saved(m, 1, &size);
    assert_true(section_or_none(buf, size, "OPTM") == (size_t)-1);
    e = payload_of(buf, size, "EPCH");
    assert_int_equal(get_u64(buf + e - 8), 8 + 2 * 24);
    assert_int_equal(get_u64(buf + e), 2);
    for (k = 0; k < 2; ++k) {
        assert_int_equal(get_u64(buf + e + EPCH_RECORD(k)), k + 1);
        assert_true(isnan(get_f64(buf + e + EPCH_RECORD(k) + 8)));  /* no validation */
        assert_true(isnan(get_f64(buf + e + EPCH_RECORD(k) + 16)));
    }
    free(buf);

    /* then Adam, with validation: 3 more epochs */
    train(m, NN_OPTIMIZER_ADAM, 3, 1, NULL);
    tm = take(m);
    buf = saved(m, 1, &size);
    p = payload_of(buf, size, "OPTM");
    e = payload_of(buf, size, "EPCH");
    t = payload_of(buf, size, "TRNG");
    assert_int_equal(get_u32(buf + p + OPTM_KIND), NN_OPTIMIZER_ADAM);
    assert_int_equal(get_u32(buf + p + OPTM_STORAGE), 1); /* float64, the model's dtype */
    /* Adam's t: every step of the Adam fit (48 training rows, batch 10: 4 per epoch) */
    assert_int_equal(tm->records[tm->n_records - 1].steps_per_epoch, 4);
    assert_int_equal(get_u64(buf + p + OPTM_STEP), 3 * 4);
    assert_int_equal(get_u64(buf + p + OPTM_COUNT), 2 * n_params);
    assert_int_equal(get_u64(buf + p - 8), OPTM_VALUES + 2 * n_params * 8);
    for (k = 0; k < n_params; ++k) assert_true(get_f64(buf + p + OPTM_VALUES + 8 * (n_params + k)) >= 0.0);
    /* EPCH: 5 epochs, the same as the history; TRNG's epoch losses are the losses */
    assert_int_equal(get_u64(buf + e), 5);
    assert_int_equal(get_u64(buf + t + 2520), tm->n_records);
    assert_int_equal(get_u64(buf + t + 2528 + 32 * tm->n_records), 5);
    for (k = 0; k < 5; ++k) {
        const double loss = get_f64(buf + t + 2536 + 32 * tm->n_records + 8 * k);
        double vl = get_f64(buf + e + EPCH_RECORD(k) + 8), va = get_f64(buf + e + EPCH_RECORD(k) + 16);
        assert_int_equal(get_u64(buf + e + EPCH_RECORD(k)), tm->epochs[k].epoch);
        assert_memory_equal(&loss, &tm->epochs[k].loss, 8);
        assert_memory_equal(&vl, &tm->epochs[k].val_loss, 8);
        assert_memory_equal(&va, &tm->epochs[k].val_accuracy, 8);
        assert_true(k < 2 ? isnan(vl) : !isnan(vl));
    }
    free(buf);
    free(tm);

    /* a float32 model's state is stored as float32 */
    train(f, NN_OPTIMIZER_RMSPROP, 1, 0, NULL);
    buf = saved(f, 1, &size);
    p = payload_of(buf, size, "OPTM");
    assert_int_equal(get_u32(buf + p + OPTM_KIND), NN_OPTIMIZER_RMSPROP);
    assert_int_equal(get_u32(buf + p + OPTM_STORAGE), 0);
    assert_int_equal(get_u64(buf + p + OPTM_STEP), 0);
    assert_int_equal(get_u64(buf + p + OPTM_COUNT), n_params);
    assert_int_equal(get_u64(buf + p - 8), OPTM_VALUES + n_params * 4);
    free(buf);

    /* after nn_reset_optimizer there is no state to save */
    CAPI_OK(nn_reset_optimizer(m));
    buf = saved(m, 1, &size);
    assert_true(section_or_none(buf, size, "OPTM") == (size_t)-1);
    free(buf);
    nn_destroy(m);
    nn_destroy(f);
}

/* A regression model has NaN accuracies, a mixed history NaN and real figures: the bits
 * come back as they were, and save ∘ load ∘ save is the identity. */
static void test_epoch_history_round_trips_bit_for_bit(void **state)
{
    static const size_t sizes[] = {2, 4, 1};
    double y[ROWS];
    nn_model_desc desc;
    nn_model *m = NULL, *l;
    nn_fit_options o = capi_fit_options(2, 10, 0.01, 3);
    unsigned char *a, *b;
    size_t sa = 0, sb = 0, k;
    trained *tm, *tl;
    (void)state;
    nn_model_desc_init(&desc);
    desc.n_layer_sizes = 3;
    desc.layer_sizes = sizes;
    desc.dtype = NN_DTYPE_FLOAT64;
    desc.loss = NN_LOSS_MEAN_SQUARED_ERROR;
    desc.seed = 34;
    CAPI_OK(nn_create(&m, &desc));
    for (k = 0; k < ROWS; ++k) y[k] = x64[2 * k] - 0.5 * x64[2 * k + 1];
    CAPI_OK(nn_fit(m, x64, NN_DTYPE_FLOAT64, ROWS, 2, y, NN_TARGET_ROWS_FLOAT64, 1, &o, NULL));
    o.optimizer = NN_OPTIMIZER_ADAM;
    o.validation_fraction = 0.25;
    CAPI_OK(nn_fit(m, x64, NN_DTYPE_FLOAT64, ROWS, 2, y, NN_TARGET_ROWS_FLOAT64, 1, &o, NULL));
    tm = take(m);
    assert_int_equal(tm->n_epochs, 4);
    assert_true(isnan(tm->epochs[0].val_loss) && isnan(tm->epochs[3].val_accuracy));
    assert_false(isnan(tm->epochs[3].val_loss));
    a = saved(m, 1, &sa);
    l = capi_load_buffer(a, sa);
    tl = take(l);
    assert_same(tm, tl);
    b = saved(l, 1, &sb);
    assert_int_equal(sa, sb);
    assert_memory_equal(a, b, sa);
    free(a);
    free(b);
    free(tm);
    free(tl);
    nn_destroy(m);
    nn_destroy(l);
}

/* Early stopping that restores the best weights, and a fit cancelled within an epoch:
 * what they leave saves, loads and continues exactly. */
static int cancel_at_second(const nn_progress *p, void *user)
{
    int *calls = user;
    (void)p;
    return ++*calls >= 2; /* the record at step 3 of the first epoch */
}

static void test_early_stopped_and_cancelled_fits_save_and_continue(void **state)
{
    nn_model *a = capi_small_model(NN_DTYPE_FLOAT64, 35), *b;
    nn_fit_options o = capi_fit_options(40, 10, 0.05, 2);
    unsigned char *buf;
    size_t size = 0;
    int calls = 0;
    trained *ta, *tb;
    (void)state;
    set_device(a, NN_DEVICE_REFERENCE);
    o.optimizer = NN_OPTIMIZER_ADAM;
    o.validation_fraction = 0.2;
    o.early_stopping = 1;
    o.patience = 2;
    o.min_delta = 1e-3;
    CAPI_OK(nn_fit(a, x64, NN_DTYPE_FLOAT64, ROWS, 2, labels, NN_TARGET_CLASS_INDEX, 1, &o, NULL));
    o.early_stopping = 0;
    o.epochs = 3;
    o.progress = cancel_at_second;
    o.progress_user = &calls;
    CAPI_FAIL(NN_ERR_CANCELLED, nn_fit(a, x64, NN_DTYPE_FLOAT64, ROWS, 2, labels, NN_TARGET_CLASS_INDEX, 1, &o, NULL));
    buf = saved(a, 1, &size);
    b = capi_load_buffer(buf, size);
    set_device(b, NN_DEVICE_REFERENCE);
    ta = take(a);
    tb = take(b);
    assert_same(ta, tb);
    free(ta);
    free(tb);
    train(a, NN_OPTIMIZER_ADAM, 2, 1, NULL);
    train(b, NN_OPTIMIZER_ADAM, 2, 1, NULL);
    ta = take(a);
    tb = take(b);
    assert_same(ta, tb);
    free(ta);
    free(tb);
    free(buf);
    nn_destroy(a);
    nn_destroy(b);
}

/* ---- 3. damaged sections ------------------------------------------------------------------- */

/* The {2,3,2} float64 model after 2 epochs of Adam with validation (20 rows, batch 5) and
 * the same with Momentum: every section a file can have. */
static unsigned char *adam_file, *momentum_file;
static size_t adam_size, momentum_size, small_params;

static unsigned char *small_trained_file(nn_optimizer opt, size_t *size)
{
    static const size_t sizes[] = {2, 3, 2};
    double x[40];
    int32_t t[20];
    size_t i;
    nn_fit_options o = capi_fit_options(2, 5, 0.1, 2);
    nn_model *m = capi_model(NN_DTYPE_FLOAT64, sizes, 3, 7);
    unsigned char *buf;
    capi_blobs(x, t, 20, 3);
    for (i = 0; i < 20; ++i) t[i] %= 2;
    o.optimizer = opt;
    o.validation_fraction = 0.25;
    CAPI_OK(nn_fit(m, x, NN_DTYPE_FLOAT64, 20, 2, t, NN_TARGET_CLASS_INDEX, 1, &o, NULL));
    CAPI_OK(nn_set_metadata(m, "book", "ch01"));
    CAPI_OK(nn_param_count(m, &small_params));
    buf = saved(m, 1, size);
    nn_destroy(m);
    return buf;
}

static int setup_files(void **state)
{
    setup_data(state);
    adam_file = small_trained_file(NN_OPTIMIZER_ADAM, &adam_size);
    momentum_file = small_trained_file(NN_OPTIMIZER_MOMENTUM, &momentum_size);
    return 0;
}

static int teardown_files(void **state)
{
    (void)state;
    free(adam_file);
    free(momentum_file);
    return 0;
}

typedef struct field_patch {
    const char *what;
    int momentum;     /* patch the Momentum file, else Adam's */
    const char *tag;  /* section */
    size_t off;       /* from its payload */
    int width;        /* 4 or 8 */
    uint64_t value;
    int loads;        /* the patched file is still valid */
} field_patch;

#define F64(v) (field_bits(v))
static uint64_t field_bits(double v)
{
    uint64_t b;
    memcpy(&b, &v, 8);
    return b;
}

static unsigned char *apply(const field_patch *p, size_t *size)
{
    const unsigned char *src = p->momentum ? momentum_file : adam_file;
    unsigned char *c;
    *size = p->momentum ? momentum_size : adam_size;
    c = copy_of(src, *size);
    /* off (size_t)-8 is the section's length field, just before the payload */
    const size_t at = payload_of(src, *size, p->tag) + p->off;
    if (p->width == 4)
        put_u32(c + at, (uint32_t)p->value);
    else
        put_u64(c + at, p->value);
    fix_crc(c, *size);
    return c;
}

static size_t field_patches(field_patch *out, size_t cap)
{
    const uint64_t np = small_params, v0 = OPTM_VALUES, v1 = OPTM_VALUES + 8 * small_params;
    const field_patch all[] = {
        {"optimizer 6", 0, "OPTM", OPTM_KIND, 4, 6, 0},
        {"optimizer 2^32-1", 0, "OPTM", OPTM_KIND, 4, 0xffffffffu, 0},
        {"optimizer 2^31", 0, "OPTM", OPTM_KIND, 4, 0x80000000u, 0},
        {"Adam's values under Momentum", 0, "OPTM", OPTM_KIND, 4, NN_OPTIMIZER_MOMENTUM, 0},
        {"Adam's values under SGD", 0, "OPTM", OPTM_KIND, 4, NN_OPTIMIZER_SGD, 0},
        {"Momentum's values under Adam", 1, "OPTM", OPTM_KIND, 4, NN_OPTIMIZER_ADAM, 0},
        {"Momentum's values under Nesterov", 1, "OPTM", OPTM_KIND, 4, NN_OPTIMIZER_NESTEROV, 1},
        {"storage 2 (float16)", 0, "OPTM", OPTM_STORAGE, 4, 2, 0},
        {"storage 3", 0, "OPTM", OPTM_STORAGE, 4, 3, 0},
        {"storage 2^32-1", 0, "OPTM", OPTM_STORAGE, 4, 0xffffffffu, 0},
        {"float64 values read as float32", 0, "OPTM", OPTM_STORAGE, 4, 0, 0},
        {"a step count for Momentum", 1, "OPTM", OPTM_STEP, 8, 1, 0},
        {"a huge step count for Momentum", 1, "OPTM", OPTM_STEP, 8, UINT64_MAX, 0},
        {"Adam at step 2^64-1", 0, "OPTM", OPTM_STEP, 8, UINT64_MAX, 1},
        {"value count - 1", 0, "OPTM", OPTM_COUNT, 8, 2 * np - 1, 0},
        {"value count + 1", 0, "OPTM", OPTM_COUNT, 8, 2 * np + 1, 0},
        {"value count of one slot", 0, "OPTM", OPTM_COUNT, 8, np, 0},
        {"value count 0", 0, "OPTM", OPTM_COUNT, 8, 0, 0},
        {"value count 2^62", 0, "OPTM", OPTM_COUNT, 8, (uint64_t)1 << 62, 0},
        {"value count 2^64-1", 0, "OPTM", OPTM_COUNT, 8, UINT64_MAX, 0},
        {"Momentum value count 2^61", 1, "OPTM", OPTM_COUNT, 8, (uint64_t)1 << 61, 0},
        {"m NaN", 0, "OPTM", v0, 8, 0x7ff8000000000000ull, 0},
        {"m +inf", 0, "OPTM", v0, 8, 0x7ff0000000000000ull, 0},
        {"m -inf", 0, "OPTM", v0 + 8, 8, 0xfff0000000000000ull, 0},
        {"m signalling NaN", 0, "OPTM", v0 + 8 * (np - 1), 8, 0x7ff0000000000001ull, 0},
        {"v NaN", 0, "OPTM", v1 + 8 * (np - 1), 8, 0x7ff8000000000000ull, 0},
        {"v +inf", 0, "OPTM", v1, 8, 0x7ff0000000000000ull, 0},
        {"v negative", 0, "OPTM", v1, 8, F64(-1e-3), 0},
        {"v -0", 0, "OPTM", v1, 8, F64(-0.0), 1},
        {"m negative", 0, "OPTM", v0, 8, F64(-1e-3), 1},
        {"Momentum's v negative", 1, "OPTM", v0, 8, F64(-2.5), 1},
        {"Momentum's v 1e300", 1, "OPTM", v0, 8, F64(1e300), 1},
        {"Momentum's v NaN", 1, "OPTM", v0, 8, 0x7ff8000000000000ull, 0},
        {"OPTM length + 1", 0, "OPTM", (size_t)-8, 8, OPTM_VALUES + 16 * np + 1, 0},
        {"OPTM length - 1", 0, "OPTM", (size_t)-8, 8, OPTM_VALUES + 16 * np - 1, 0},
        {"OPTM length 2^64-1", 0, "OPTM", (size_t)-8, 8, UINT64_MAX, 0},
        {"2 epoch losses for 1 epoch trained", 0, "TRNG", 0, 8, 1, 0},
        {"epoch records 1 of 2", 0, "EPCH", 0, 8, 1, 0},
        {"epoch records 3 of 2", 0, "EPCH", 0, 8, 3, 0},
        {"epoch records 2^59", 0, "EPCH", 0, 8, (uint64_t)1 << 59, 0},
        {"epoch records 2^64-1", 0, "EPCH", 0, 8, UINT64_MAX, 0},
        {"epoch 0", 0, "EPCH", EPCH_RECORD(0), 8, 0, 0},
        {"epochs 1, 1", 0, "EPCH", EPCH_RECORD(1), 8, 1, 0},
        {"epochs 2, 2", 0, "EPCH", EPCH_RECORD(0), 8, 2, 0},
        {"epoch 3 of 2 trained", 0, "EPCH", EPCH_RECORD(1), 8, 3, 0},
        {"epoch 2^64-1", 0, "EPCH", EPCH_RECORD(1), 8, UINT64_MAX, 0},
        {"validation accuracy 1.5", 0, "EPCH", EPCH_RECORD(0) + 16, 8, F64(1.5), 0},
        {"validation accuracy -0.25", 0, "EPCH", EPCH_RECORD(1) + 16, 8, F64(-0.25), 0},
        {"validation accuracy +inf", 0, "EPCH", EPCH_RECORD(1) + 16, 8, 0x7ff0000000000000ull, 0},
        {"validation accuracy 1", 0, "EPCH", EPCH_RECORD(1) + 16, 8, F64(1.0), 1},
        {"validation accuracy NaN", 0, "EPCH", EPCH_RECORD(1) + 16, 8, 0x7ff8000000000000ull, 1},
        {"validation loss +inf (a diverging run)", 0, "EPCH", EPCH_RECORD(0) + 8, 8, 0x7ff0000000000000ull, 1},
        {"EPCH length + 1", 0, "EPCH", (size_t)-8, 8, 8 + 2 * 24 + 1, 0},
        {"EPCH length - 1", 0, "EPCH", (size_t)-8, 8, 8 + 2 * 24 - 1, 0},
    };
    const size_t n = sizeof all / sizeof all[0];
    assert_true(n <= cap);
    memcpy(out, all, sizeof all);
    return n;
}

static void test_impossible_optimizer_and_epoch_fields_are_corrupt(void **state)
{
    field_patch cases[80];
    const size_t n = field_patches(cases, 80);
    struct rusage ru;
    size_t i, size = 0;
    (void)state;
    assert_int_equal(get_u64(adam_file + payload_of(adam_file, adam_size, "EPCH")), 2);
    assert_int_equal(get_u32(adam_file + payload_of(adam_file, adam_size, "OPTM")), NN_OPTIMIZER_ADAM);
    assert_int_equal(get_u32(momentum_file + payload_of(momentum_file, momentum_size, "OPTM")),
                     NN_OPTIMIZER_MOMENTUM);
    for (i = 0; i < n; ++i) {
        unsigned char *c = apply(&cases[i], &size);
        if (cases[i].loads) {
            nn_model *m = capi_sentinel_model();
            const nn_status s = load_copy(c, size, &m);
            if (s != NN_OK) print_error("%s: %s\n", cases[i].what, nn_last_error_message());
            assert_int_equal(s, NN_OK);
            nn_destroy(m);
        } else {
            expect_corrupt(c, size, cases[i].what);
        }
        free(c);
    }
    assert_int_equal(getrusage(RUSAGE_SELF, &ru), 0);
    assert_true(ru.ru_maxrss <= 1024L * 1024L);
}

/* As above in a child whose address space may grow by only 256 MiB: nothing is allocated
 * from an unchecked count. Skipped under the sanitizers (they reserve terabytes). */
static void test_impossible_counts_allocate_nothing_big(void **state)
{
    field_patch cases[80];
    const size_t n = field_patches(cases, 80);
    pid_t pid;
    int status = 0;
    (void)state;
    if (UNDER_SANITIZER) {
        print_message("skipped under a sanitizer (RLIMIT_AS)\n");
        skip();
    }
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        size_t i, size = 0;
        if (capi_limit_address_space((size_t)256 << 20) != 0) _exit(3);
        for (i = 0; i < n; ++i) {
            unsigned char *c = apply(&cases[i], &size);
            nn_model *out = NULL;
            nn_status s = load_copy(c, size, &out);
            free(c);
            if (cases[i].loads ? s != NN_OK : (s != NN_ERR_CORRUPT || out != NULL)) {
                fprintf(stderr, "%s: status %d (%s): %s\n", cases[i].what, (int)s, nn_status_string(s),
                        nn_last_error_message());
                _exit(10);
            }
            nn_destroy(out);
        }
        _exit(0);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

/* Every shorter payload of OPTM and EPCH (length and CRC fixed), and every truncation and
 * flipped byte of those sections in the file. */
static void test_truncated_and_flipped_sections_are_corrupt(void **state)
{
    static const char *const tags[] = {"OPTM", "EPCH"};
    static const unsigned char masks[] = {0xff, 0x01, 0x80};
    char what[64];
    size_t t, len, size = 0, k, at;
    (void)state;
    for (t = 0; t < 2; ++t) {
        const size_t s = find_section(adam_file, adam_size, tags[t]);
        const size_t full = (size_t)get_u64(adam_file + s + 8);
        for (len = 0; len < full; ++len) {
            unsigned char *c = with_payload_cut(adam_file, adam_size, tags[t], len, &size);
            snprintf(what, sizeof what, "%s cut to %u bytes", tags[t], (unsigned)len);
            expect_corrupt(c, size, what);
            free(c);
        }
        for (len = s; len < s + SECTION + full; ++len) {
            snprintf(what, sizeof what, "file cut in %s at %u", tags[t], (unsigned)len);
            expect_corrupt(adam_file, len, what);
        }
        for (k = 0; k < sizeof masks; ++k) {
            unsigned char *c = copy_of(adam_file, adam_size);
            for (at = s; at < s + SECTION + full; ++at) {
                c[at] ^= masks[k];
                snprintf(what, sizeof what, "%s byte %u ^ 0x%02x", tags[t], (unsigned)(at - s), masks[k]);
                expect_corrupt(c, adam_size, what);
                c[at] ^= masks[k];
            }
            free(c);
        }
    }
}

static void test_repeated_optimizer_and_epoch_sections_are_corrupt(void **state)
{
    static const char *const tags[] = {"OPTM", "EPCH"};
    size_t t, size = 0;
    (void)state;
    for (t = 0; t < 2; ++t) {
        const size_t at = find_section(adam_file, adam_size, tags[t]);
        const size_t len = SECTION + (size_t)get_u64(adam_file + at + 8);
        unsigned char *c = with_inserted(adam_file, adam_size, at + len, adam_file + at, len, &size);
        char what[32];
        fix_crc(c, size);
        snprintf(what, sizeof what, "%s twice", tags[t]);
        expect_corrupt(c, size, what);
        free(c);
    }
}

/* ---- 4. readers and files of other versions ------------------------------------------------ */

/* What a reader that predates EPCH and OPTM sees (they are unknown tags to it): the model
 * with its histories (epochs 1, 2, … with NaN validation figures) and a fresh optimizer.
 * OPTM and EPCH without TRNG are ignored likewise. */
static void test_files_without_the_new_sections_load_with_a_fresh_optimizer(void **state)
{
    nn_model *full, *old, *no_trng, *reset;
    unsigned char *c, *d;
    nn_rng *r1 = capi_rng(5), *r2 = capi_rng(5), *r3 = capi_rng(5);
    trained *tf, *to, *tn, *tr;
    size_t k, n = 99;
    (void)state;
    c = copy_of(adam_file, adam_size);
    put_u32(c + find_section(c, adam_size, "OPTM"), tag_of("XPTM"));
    put_u32(c + find_section(c, adam_size, "EPCH"), tag_of("XPCH"));
    fix_crc(c, adam_size);
    d = copy_of(adam_file, adam_size);
    put_u32(d + find_section(d, adam_size, "TRNG"), tag_of("XRNG"));
    fix_crc(d, adam_size);

    full = capi_load_buffer(adam_file, adam_size);
    old = capi_load_buffer(c, adam_size);
    no_trng = capi_load_buffer(d, adam_size);
    reset = capi_load_buffer(adam_file, adam_size);
    CAPI_OK(nn_reset_optimizer(reset));
    tf = take(full);
    to = take(old);
    assert_int_equal(to->n_epochs, 2);
    assert_int_equal(to->n_records, tf->n_records);
    assert_memory_equal(to->records, tf->records, tf->n_records * sizeof(nn_loss_record));
    for (k = 0; k < 2; ++k) {
        assert_int_equal(to->epochs[k].epoch, k + 1);
        assert_memory_equal(&to->epochs[k].loss, &tf->epochs[k].loss, sizeof(double));
        assert_true(isnan(to->epochs[k].val_loss) && isnan(to->epochs[k].val_accuracy));
        assert_false(isnan(tf->epochs[k].val_loss));
    }
    CAPI_OK(nn_get_epoch_history(no_trng, NULL, 0, &n));
    assert_int_equal(n, 0);
    free(tf);
    free(to);

    /* the optimizer: fresh in both, as after nn_reset_optimizer */
    {
        nn_fit_options o = capi_fit_options(2, 5, 0.1, 2);
        double x[40];
        int32_t t[20];
        nn_model *ms[3];
        nn_rng *rs[3];
        size_t i;
        ms[0] = old, ms[1] = no_trng, ms[2] = reset;
        rs[0] = r1, rs[1] = r2, rs[2] = r3;
        capi_blobs(x, t, 20, 3);
        for (i = 0; i < 20; ++i) t[i] %= 2;
        o.optimizer = NN_OPTIMIZER_ADAM;
        for (i = 0; i < 3; ++i) {
            o.rng = rs[i];
            set_device(ms[i], NN_DEVICE_REFERENCE);
            CAPI_OK(nn_fit(ms[i], x, NN_DTYPE_FLOAT64, 20, 2, t, NN_TARGET_CLASS_INDEX, 1, &o, NULL));
        }
    }
    to = take(old);
    tn = take(no_trng);
    tr = take(reset);
    assert_true(same_params(to, tr));
    assert_true(same_params(tn, tr));
    free(to);
    free(tn);
    free(tr);
    nn_rng_destroy(r1);
    nn_rng_destroy(r2);
    nn_rng_destroy(r3);
    nn_destroy(full);
    nn_destroy(old);
    nn_destroy(no_trng);
    nn_destroy(reset);
    free(c);
    free(d);
}

/* libnn 0.1.0's file: the epoch history is its epoch losses, numbered from 1, without
 * validation; no optimizer state; saved again it gains an EPCH section and no OPTM. */
static void test_the_version_1_file_of_libnn_0_1_0_still_loads(void **state)
{
    nn_model *f = capi_load_file(NN_TEST_DATA_DIR "/spiral_float16_v1.nnm"), *g, *h;
    static nn_epoch_record ep[301];
    static double losses[301];
    nn_rng *r1 = capi_rng(9), *r2 = capi_rng(9);
    unsigned char *buf;
    size_t n = 0, m = 0, k, size = 0;
    trained *tf, *th;
    (void)state;
    CAPI_OK(nn_get_epoch_history(f, ep, 301, &n));
    CAPI_OK(nn_get_epoch_losses(f, losses, 301, &m));
    assert_int_equal(n, 300);
    assert_int_equal(m, 300);
    for (k = 0; k < n; ++k) {
        assert_int_equal(ep[k].epoch, k + 1);
        assert_memory_equal(&ep[k].loss, &losses[k], sizeof(double));
        assert_true(isnan(ep[k].val_loss) && isnan(ep[k].val_accuracy));
    }
    buf = saved(f, 1, &size);
    assert_true(section_or_none(buf, size, "OPTM") == (size_t)-1);
    (void)payload_of(buf, size, "EPCH");
    h = capi_load_buffer(buf, size);
    tf = take(f);
    th = take(h);
    assert_same(tf, th);
    free(tf);
    free(th);

    /* its next Adam fit starts from zero */
    g = capi_load_file(NN_TEST_DATA_DIR "/spiral_float16_v1.nnm");
    CAPI_OK(nn_reset_optimizer(g));
    {
        static double x[600];
        static int32_t t[300];
        nn_fit_options o = capi_fit_options(2, 30, 0.01, 10);
        CAPI_OK(nn_dataset_spiral(x, 600, t, 300, 100, 3, NULL, 1984));
        o.optimizer = NN_OPTIMIZER_ADAM;
        o.rng = r1;
        CAPI_OK(nn_fit(f, x, NN_DTYPE_FLOAT64, 300, 2, t, NN_TARGET_CLASS_INDEX, 1, &o, NULL));
        o.rng = r2;
        CAPI_OK(nn_fit(g, x, NN_DTYPE_FLOAT64, 300, 2, t, NN_TARGET_CLASS_INDEX, 1, &o, NULL));
    }
    tf = take(f);
    th = take(g);
    assert_same(tf, th);
    assert_int_equal(tf->epochs[301].epoch, 302);
    free(tf);
    free(th);
    nn_rng_destroy(r1);
    nn_rng_destroy(r2);
    free(buf);
    nn_destroy(f);
    nn_destroy(g);
    nn_destroy(h);
}

/* ---- 5. a plugin that predates optimizers ---------------------------------------------------- */

static nn_device_kind device_of(nn_model *m)
{
    nn_device_info info;
    nn_device_info_init(&info);
    CAPI_OK(nn_get_device(m, &info));
    return info.kind;
}

/* Run as `capi_test_model_file_trainer old-plugin` with NN_BACKEND_PATH naming
 * examples/backend-minimal's plugin (a CPU plugin without the optimizer-state members)
 * and a libnn with no other CPU plugin beside it: a file with optimizer state loads on the
 * reference device, which can hold it, and continues exactly; one without, on AUTO's. */
static void test_a_plugin_without_optimizers_gets_no_optimizer_state(void **state)
{
    nn_model *probe = capi_small_model(NN_DTYPE_FLOAT64, 36), *a, *b, *sgd, *l;
    nn_fit_options o = capi_fit_options(1, 10, 0.01, 2);
    unsigned char *buf;
    size_t size = 0;
    trained *ta, *tb;
    (void)state;
    /* the AUTO device is a CPU plugin that trains SGD only */
    assert_int_equal(device_of(probe), NN_DEVICE_CPU);
    o.optimizer = NN_OPTIMIZER_ADAM;
    CAPI_FAIL(NN_ERR_UNSUPPORTED, nn_fit(probe, x64, NN_DTYPE_FLOAT64, ROWS, 2, labels, NN_TARGET_CLASS_INDEX, 1, &o, NULL));
    nn_destroy(probe);

    a = capi_small_model(NN_DTYPE_FLOAT64, 36);
    set_device(a, NN_DEVICE_REFERENCE);
    train(a, NN_OPTIMIZER_ADAM, 3, 1, NULL);
    buf = saved(a, 1, &size);
    b = capi_load_buffer(buf, size);
    free(buf);
    assert_int_equal(device_of(b), NN_DEVICE_REFERENCE);
    CAPI_FAIL(NN_ERR_UNSUPPORTED, nn_set_device(b, NN_DEVICE_CPU, 0));
    train(a, NN_OPTIMIZER_ADAM, 2, 1, NULL);
    train(b, NN_OPTIMIZER_ADAM, 2, 1, NULL);
    ta = take(a);
    tb = take(b);
    assert_same(ta, tb);
    free(ta);
    free(tb);

    sgd = capi_small_model(NN_DTYPE_FLOAT64, 36);
    train(sgd, NN_OPTIMIZER_SGD, 2, 0, NULL);
    buf = saved(sgd, 1, &size);
    l = capi_load_buffer(buf, size);
    free(buf);
    assert_int_equal(device_of(l), NN_DEVICE_CPU);
    nn_destroy(a);
    nn_destroy(b);
    nn_destroy(sgd);
    nn_destroy(l);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest old_plugin[] = {
        cmocka_unit_test(test_a_plugin_without_optimizers_gets_no_optimizer_state),
    };
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_adam_and_momentum_continue_after_a_load_exactly_as_without_it),
        cmocka_unit_test(test_float32_models_and_every_stateful_optimizer_continue_exactly),
        cmocka_unit_test(test_without_the_training_state_the_optimizer_restarts),
        cmocka_unit_test(test_the_sections_hold_what_the_format_says),
        cmocka_unit_test(test_epoch_history_round_trips_bit_for_bit),
        cmocka_unit_test(test_early_stopped_and_cancelled_fits_save_and_continue),
        cmocka_unit_test(test_impossible_optimizer_and_epoch_fields_are_corrupt),
        cmocka_unit_test(test_impossible_counts_allocate_nothing_big),
        cmocka_unit_test(test_truncated_and_flipped_sections_are_corrupt),
        cmocka_unit_test(test_repeated_optimizer_and_epoch_sections_are_corrupt),
        cmocka_unit_test(test_files_without_the_new_sections_load_with_a_fresh_optimizer),
        cmocka_unit_test(test_the_version_1_file_of_libnn_0_1_0_still_loads),
    };
    if (argc > 1 && strcmp(argv[1], "old-plugin") == 0)
        return cmocka_run_group_tests(old_plugin, setup_data, NULL);
    return cmocka_run_group_tests(tests, setup_files, teardown_files);
}
