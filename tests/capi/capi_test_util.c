#define _XOPEN_SOURCE 700 /* mkdtemp, dirent */
#include "capi_test_util.h"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- statuses and error text ------------------------------------------------ */

static char capi_marker[512];

void capi_mark_error(int which)
{
    /* Two unrelated failures, so that no call under test can legitimately leave the
     * same text as both: an index far past the device list, and a NULL stream. */
    const char *msg;
    if (which == 0) {
        nn_device_info info;
        memset(&info, 0, sizeof info);
        info.struct_size = sizeof info;
        (void)nn_device_get((size_t)-12345, &info);
    } else {
        (void)nn_rng_seed(NULL, 1);
    }
    msg = nn_last_error_message();
    strncpy(capi_marker, msg ? msg : "", sizeof capi_marker - 1);
    capi_marker[sizeof capi_marker - 1] = '\0';
}

int capi_error_is_fresh(void)
{
    const char *msg = nn_last_error_message();
    if (msg == NULL || msg[0] == '\0') return 0;
    return strncmp(msg, capi_marker, sizeof capi_marker - 1) != 0;
}

void capi_report_status(const char *call, nn_status got, nn_status want1, nn_status want2)
{
    print_error("%s returned %d (%s), expected %d (%s)%s%s; message: \"%s\"\n", call, (int)got,
                nn_status_string(got), (int)want1, nn_status_string(want1),
                want2 != want1 ? " or " : "", want2 != want1 ? nn_status_string(want2) : "",
                nn_last_error_message());
}

/* ---- builders ------------------------------------------------------------------ */

nn_model *capi_model(nn_dtype dtype, const size_t *sizes, size_t n_sizes, uint32_t seed)
{
    nn_model_desc desc;
    nn_model *model = NULL;
    nn_model_desc_init(&desc);
    desc.n_layer_sizes = n_sizes;
    desc.layer_sizes = sizes;
    desc.dtype = dtype;
    desc.seed = seed;
    CAPI_OK(nn_create(&model, &desc));
    assert_non_null(model);
    return model;
}

nn_model *capi_small_model(nn_dtype dtype, uint32_t seed)
{
    static const size_t sizes[] = {2, 6, 3};
    return capi_model(dtype, sizes, 3, seed);
}

void capi_blobs(double *x, int32_t *labels, size_t rows, uint32_t seed)
{
    nn_rng *rng = capi_rng(seed);
    size_t r;
    for (r = 0; r < rows; ++r) {
        double noise[2];
        int32_t k = (int32_t)(r % 3);
        double angle = 2.0943951023931957 * (double)k;
        CAPI_OK(nn_rng_randn(rng, noise, 2));
        x[2 * r] = 2.0 * cos(angle) + 0.3 * noise[0];
        x[2 * r + 1] = 2.0 * sin(angle) + 0.3 * noise[1];
        labels[r] = k;
    }
    nn_rng_destroy(rng);
}

void capi_probe_inputs(double *x, size_t rows, size_t cols)
{
    size_t r, c;
    for (r = 0; r < rows; ++r)
        for (c = 0; c < cols; ++c)
            x[r * cols + c] = sin(0.7 * (double)(r * cols + c) + 0.3) * (c % 2 ? -1.0 : 1.0);
}

/* ---- snapshots ---------------------------------------------------------------- */

char *capi_make_temp_dir(void)
{
    char *dir = malloc(64);
    assert_non_null(dir);
    strcpy(dir, "/tmp/nn_test_XXXXXX");
    assert_non_null(mkdtemp(dir));
    return dir;
}

int capi_remove_dir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[512];
    if (d != NULL) {
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            if (unlink(path) != 0) rmdir(path);
        }
        closedir(d);
    }
    return rmdir(dir);
}

void capi_join_path(char *out, size_t cap, const char *dir, const char *name)
{
    int n = snprintf(out, cap, "%s/%s", dir, name);
    assert_true(n > 0 && (size_t)n < cap);
}

nn_model *capi_sentinel_model(void)
{
    static int dummy;
    return (nn_model *)(void *)&dummy;
}

nn_model *capi_load_buffer(const unsigned char *buf, size_t size)
{
    nn_model *m = capi_sentinel_model();
    CAPI_OK(nn_load_from_buffer(&m, buf, size));
    assert_non_null(m);
    assert_true(m != capi_sentinel_model());
    return m;
}

nn_model *capi_load_file(const char *path)
{
    nn_model *m = capi_sentinel_model();
    CAPI_OK(nn_load(&m, path));
    assert_non_null(m);
    assert_true(m != capi_sentinel_model());
    return m;
}

size_t capi_params_of(nn_model *m, double *out, size_t capacity)
{
    size_t n = 0;
    CAPI_OK(nn_param_count(m, &n));
    assert_true(n <= capacity);
    CAPI_OK(nn_get_params(m, out, capacity));
    return n;
}

nn_fit_options capi_fit_options(size_t epochs, size_t batch, double lr, size_t interval)
{
    nn_fit_options o;
    nn_fit_options_init(&o);
    o.epochs = epochs;
    o.batch_size = batch;
    o.learning_rate = lr;
    o.report_interval = interval;
    return o;
}

void capi_snapshot_take(nn_model *model, capi_snapshot *snap)
{
    size_t n_sizes = 0, sizes[16];
    double probe[CAPI_PROBE_ROWS * 64];
    memset(snap, 0, sizeof *snap);

    CAPI_OK(nn_model_layer_count(model, &n_sizes));
    assert_true(n_sizes >= 2 && n_sizes <= 16);
    CAPI_OK(nn_model_layer_sizes(model, sizes, 16));
    assert_true(sizes[0] <= 64 && sizes[n_sizes - 1] <= 16);
    snap->n_outputs = sizes[n_sizes - 1];

    CAPI_OK(nn_param_count(model, &snap->n_params));
    snap->params = calloc(snap->n_params, sizeof(double));
    assert_non_null(snap->params);
    CAPI_OK(nn_get_params(model, snap->params, snap->n_params));

    capi_probe_inputs(probe, CAPI_PROBE_ROWS, sizes[0]);
    CAPI_OK(nn_predict(model, probe, NN_DTYPE_FLOAT64, CAPI_PROBE_ROWS, sizes[0],
                       NN_OUTPUT_SCORES, snap->pred, NN_DTYPE_FLOAT64,
                       CAPI_PROBE_ROWS * snap->n_outputs));

    CAPI_OK(nn_get_loss_history(model, NULL, 0, &snap->n_records));
    snap->records = calloc(snap->n_records + 1, sizeof(nn_loss_record));
    assert_non_null(snap->records);
    if (snap->n_records > 0) {
        size_t n = 0;
        CAPI_OK(nn_get_loss_history(model, snap->records, snap->n_records, &n));
        assert_int_equal(n, snap->n_records);
    }

    CAPI_OK(nn_get_epoch_losses(model, NULL, 0, &snap->n_epochs));
    snap->epoch_losses = calloc(snap->n_epochs + 1, sizeof(double));
    assert_non_null(snap->epoch_losses);
    if (snap->n_epochs > 0) {
        size_t n = 0;
        CAPI_OK(nn_get_epoch_losses(model, snap->epoch_losses, snap->n_epochs, &n));
        assert_int_equal(n, snap->n_epochs);
    }

    snap->device.struct_size = sizeof snap->device;
    CAPI_OK(nn_get_device(model, &snap->device));
}

void capi_snapshot_assert_same(nn_model *model, const capi_snapshot *snap)
{
    capi_snapshot now;
    capi_snapshot_take(model, &now);
    assert_int_equal(now.n_params, snap->n_params);
    assert_memory_equal(now.params, snap->params, snap->n_params * sizeof(double));
    assert_memory_equal(now.pred, snap->pred, CAPI_PROBE_ROWS * snap->n_outputs * sizeof(double));
    assert_int_equal(now.n_records, snap->n_records);
    if (snap->n_records > 0)
        assert_memory_equal(now.records, snap->records, snap->n_records * sizeof(nn_loss_record));
    assert_int_equal(now.n_epochs, snap->n_epochs);
    if (snap->n_epochs > 0)
        assert_memory_equal(now.epoch_losses, snap->epoch_losses, snap->n_epochs * sizeof(double));
    assert_int_equal(now.device.kind, snap->device.kind);
    assert_int_equal(now.device.index, snap->device.index);
    capi_snapshot_free(&now);
}

void capi_snapshot_free(capi_snapshot *snap)
{
    free(snap->params);
    free(snap->records);
    free(snap->epoch_losses);
    snap->params = NULL;
    snap->records = NULL;
    snap->epoch_losses = NULL;
}

/* ---- random streams -------------------------------------------------------------- */

nn_rng *capi_rng(uint32_t seed)
{
    nn_rng *rng = NULL;
    CAPI_OK(nn_rng_create(&rng, seed));
    assert_non_null(rng);
    return rng;
}

void capi_assert_rng_in_step(nn_rng *a, nn_rng *b)
{
    double da[3], db[3], ua[3], ub[3];
    CAPI_OK(nn_rng_randn(a, da, 3));
    CAPI_OK(nn_rng_randn(b, db, 3));
    assert_memory_equal(da, db, sizeof da);
    CAPI_OK(nn_rng_rand(a, ua, 3));
    CAPI_OK(nn_rng_rand(b, ub, 3));
    assert_memory_equal(ua, ub, sizeof ua);
}

/* ---- a plain MLP oracle ---------------------------------------------------------- */

size_t capi_mlp_param_count(const size_t *sizes, size_t n_sizes)
{
    size_t l, n = 0;
    for (l = 0; l + 1 < n_sizes; ++l) n += sizes[l] * sizes[l + 1] + sizes[l + 1];
    return n;
}

static double act_f(nn_activation act, double z)
{
    switch (act) {
    case NN_ACTIVATION_SIGMOID: return 1.0 / (1.0 + exp(-z));
    case NN_ACTIVATION_RELU: return z > 0.0 ? z : 0.0;
    case NN_ACTIVATION_TANH: return tanh(z);
    default: return z;
    }
}

/* Derivative expressed through the activation's output y, as the book's layers do. */
static double act_d(nn_activation act, double y)
{
    switch (act) {
    case NN_ACTIVATION_SIGMOID: return (1.0 - y) * y;
    case NN_ACTIVATION_RELU: return y > 0.0 ? 1.0 : 0.0;
    case NN_ACTIVATION_TANH: return 1.0 - y * y;
    default: return 1.0;
    }
}

/* acts[l] holds rows × sizes[l] values: acts[0] = x, acts[L] = scores. */
static double **mlp_forward_all(const double *params, const size_t *sizes, size_t n_sizes,
                                nn_activation act, const double *x, size_t rows)
{
    size_t l, r, i, o, off = 0;
    double **acts = calloc(n_sizes, sizeof(double *));
    assert_non_null(acts);
    acts[0] = malloc(rows * sizes[0] * sizeof(double));
    assert_non_null(acts[0]);
    memcpy(acts[0], x, rows * sizes[0] * sizeof(double));
    for (l = 0; l + 1 < n_sizes; ++l) {
        size_t in = sizes[l], out = sizes[l + 1];
        const double *w = params + off, *b = params + off + in * out;
        acts[l + 1] = malloc(rows * out * sizeof(double));
        assert_non_null(acts[l + 1]);
        for (r = 0; r < rows; ++r)
            for (o = 0; o < out; ++o) {
                double z = 0.0;
                for (i = 0; i < in; ++i) z += acts[l][r * in + i] * w[i * out + o];
                z += b[o];
                acts[l + 1][r * out + o] = (l + 2 < n_sizes) ? act_f(act, z) : z;
            }
        off += in * out + out;
    }
    return acts;
}

static void free_acts(double **acts, size_t n_sizes)
{
    size_t l;
    for (l = 0; l < n_sizes; ++l) free(acts[l]);
    free(acts);
}

void capi_mlp_forward(const double *params, const size_t *sizes, size_t n_sizes,
                      nn_activation act, const double *x, size_t rows, double *scores)
{
    double **acts = mlp_forward_all(params, sizes, n_sizes, act, x, rows);
    memcpy(scores, acts[n_sizes - 1], rows * sizes[n_sizes - 1] * sizeof(double));
    free_acts(acts, n_sizes);
}

double capi_mlp_sgd_step(double *params, const size_t *sizes, size_t n_sizes,
                         nn_activation act, nn_loss loss, const double *x, size_t rows,
                         const int32_t *labels, const double *targets, double lr)
{
    size_t n_params = capi_mlp_param_count(sizes, n_sizes);
    size_t outs = sizes[n_sizes - 1], r, o, i, l;
    double **acts = mlp_forward_all(params, sizes, n_sizes, act, x, rows);
    double *grad = calloc(n_params, sizeof(double));
    double *d = malloc(rows * outs * sizeof(double));
    double total = 0.0;
    size_t off;
    assert_non_null(grad);
    assert_non_null(d);

    for (r = 0; r < rows; ++r) {
        const double *s = acts[n_sizes - 1] + r * outs;
        if (loss == NN_LOSS_SOFTMAX_CROSS_ENTROPY) {
            double mx = s[0], sum = 0.0;
            for (o = 1; o < outs; ++o) mx = s[o] > mx ? s[o] : mx;
            for (o = 0; o < outs; ++o) sum += exp(s[o] - mx);
            for (o = 0; o < outs; ++o) {
                double p = exp(s[o] - mx) / sum;
                if ((int32_t)o == labels[r]) total -= log(p + 1e-7);
                d[r * outs + o] = (p - ((int32_t)o == labels[r] ? 1.0 : 0.0)) / (double)rows;
            }
        } else {
            for (o = 0; o < outs; ++o) {
                double e = s[o] - targets[r * outs + o];
                total += 0.5 * e * e;
                d[r * outs + o] = e / (double)rows;
            }
        }
    }

    off = n_params;
    for (l = n_sizes - 1; l-- > 0;) {
        size_t in = sizes[l], out = sizes[l + 1];
        double *gw, *gb, *dprev = NULL;
        off -= in * out + out;
        gw = grad + off;
        gb = gw + in * out;
        for (r = 0; r < rows; ++r)
            for (o = 0; o < out; ++o) {
                for (i = 0; i < in; ++i) gw[i * out + o] += acts[l][r * in + i] * d[r * out + o];
                gb[o] += d[r * out + o];
            }
        if (l > 0) {
            const double *w = params + off;
            dprev = calloc(rows * in, sizeof(double));
            assert_non_null(dprev);
            for (r = 0; r < rows; ++r)
                for (i = 0; i < in; ++i) {
                    double s = 0.0;
                    for (o = 0; o < out; ++o) s += d[r * out + o] * w[i * out + o];
                    dprev[r * in + i] = s * act_d(act, acts[l][r * in + i]);
                }
            free(d);
            d = dprev;
        }
    }
    for (i = 0; i < n_params; ++i) params[i] -= lr * grad[i];
    free(d);
    free(grad);
    free_acts(acts, n_sizes);
    return total / (double)rows;
}

int capi_close(double a, double b, double tol)
{
    double scale = 1.0;
    if (fabs(a) > scale) scale = fabs(a);
    if (fabs(b) > scale) scale = fabs(b);
    return fabs(a - b) <= tol * scale;
}

int capi_limit_address_space(size_t extra)
{
    struct rlimit rl;
    unsigned long pages = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f == NULL || fscanf(f, "%lu", &pages) != 1) {
        if (f) fclose(f);
        return -1;
    }
    fclose(f);
    rl.rlim_cur = rl.rlim_max = (rlim_t)pages * (rlim_t)sysconf(_SC_PAGESIZE) + (rlim_t)extra;
    return setrlimit(RLIMIT_AS, &rl) == 0 ? 0 : -1;
}
