/*
 * Checks examples/backend-minimal through libnn's public API. The ctests run it against
 * a copy of libnn with no plugin beside it and NN_BACKEND_PATH set to the directory of
 * the example's libnn-backend-cpu.so, so the "cpu" device is the example backend.
 *
 *   check_backend_minimal devices     the CPU entry is available and is the example's
 *   check_backend_minimal set-device  nn_set_device(NN_DEVICE_CPU) puts a model on it
 *   check_backend_minimal spiral      the book's run: 291/300, parameters as the reference's
 *   check_backend_minimal parity      every activation, both losses, both dtypes
 */
#include <nn/nn.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#define EXAMPLE_NAME "backend-minimal"

static int failures = 0;

#define EXPECT(cond, ...)                          \
    do {                                           \
        if (!(cond)) {                             \
            fprintf(stderr, "FAIL: " __VA_ARGS__); \
            fprintf(stderr, "\n");                 \
            ++failures;                            \
        }                                          \
    } while (0)

#define EXPECT_OK(call) EXPECT((call) == NN_OK, "%s: %s", #call, nn_last_error_message())

static int check_devices(void)
{
    size_t n = 0;
    int found = 0;
    EXPECT_OK(nn_device_count(&n));
    for (size_t i = 0; i < n; ++i) {
        nn_device_info info;
        nn_device_info_init(&info);
        EXPECT_OK(nn_device_get(i, &info));
        printf("device %zu: kind %d index %d available %d name '%s' reason '%s'\n", i, (int)info.kind,
               info.index, info.available, info.name, info.reason);
        if (info.kind == NN_DEVICE_CPU && !found) {
            found = 1;
            EXPECT(info.available, "the CPU device is not available: %s", info.reason);
            EXPECT(strstr(info.name, EXAMPLE_NAME) != NULL, "the CPU device is '%s', not the example",
                   info.name);
        }
    }
    EXPECT(found, "no CPU entry in the device list");
    return failures;
}

/* A model of `sizes`, its weights drawn from `rng` (NULL: seed 1984), on `device`. */
static nn_model *make_model(const size_t *sizes, size_t n, nn_activation act, nn_loss loss,
                            nn_dtype dtype, nn_rng *rng, nn_device_kind device)
{
    nn_model_desc desc;
    nn_model_desc_init(&desc);
    desc.n_layer_sizes = n;
    desc.layer_sizes = sizes;
    desc.hidden_activation = act;
    desc.loss = loss;
    desc.dtype = dtype;
    desc.rng = rng;
    nn_model *model = NULL;
    EXPECT_OK(nn_create(&model, &desc));
    if (model && nn_set_device(model, device, 0) != NN_OK) {
        EXPECT(0, "nn_set_device(%d): %s", (int)device, nn_last_error_message());
        nn_destroy(model);
        model = NULL;
    }
    return model;
}

static int check_set_device(void)
{
    const size_t sizes[] = {2, 10, 3};
    nn_model *model = make_model(sizes, 3, NN_ACTIVATION_SIGMOID, NN_LOSS_SOFTMAX_CROSS_ENTROPY,
                                 NN_DTYPE_FLOAT64, NULL, NN_DEVICE_CPU);
    if (!model) return 1;
    nn_device_info where;
    nn_device_info_init(&where);
    EXPECT_OK(nn_get_device(model, &where));
    printf("model on kind %d: '%s'\n", (int)where.kind, where.name);
    EXPECT(where.kind == NN_DEVICE_CPU && strstr(where.name, EXAMPLE_NAME) != NULL,
           "the model is on kind %d '%s'", (int)where.kind, where.name);
    /* Parameters written by the host come back unchanged through the plugin. */
    double p[63], q[63];
    for (int i = 0; i < 63; ++i) p[i] = 0.125 * (i - 31);
    EXPECT_OK(nn_set_params(model, p, 63));
    EXPECT_OK(nn_get_params(model, q, 63));
    EXPECT(memcmp(p, q, sizeof p) == 0, "parameters changed on their way through the plugin");
    nn_destroy(model);
    return failures;
}

/* The largest |a − b| / max(|b|, 1e-3) (the book tests' relative error). */
static double worst_relative(const double *a, const double *b, size_t n)
{
    double worst = 0.0;
    for (size_t i = 0; i < n; ++i) {
        double err = fabs(a[i] - b[i]) / fmax(fabs(b[i]), 1e-3);
        worst = err > worst || err != err ? err : worst;
    }
    return worst;
}

/* The book's train.py on `device`: one stream seeded 1984 for the spiral, the weights
 * and the shuffle; 2-10-3, 300 epochs, batch 30, lr 1.0, a loss record every 10 steps. */
static double book_run(nn_device_kind device, nn_dtype dtype, double *out_params)
{
    static double x[600];
    static int32_t t[300];
    double accuracy = -1.0;
    nn_rng *rng = NULL;
    EXPECT_OK(nn_rng_create(&rng, 1984));
    EXPECT_OK(nn_dataset_spiral(x, 600, t, 300, 100, 3, rng, 0));
    const size_t sizes[] = {2, 10, 3};
    nn_model *model = make_model(sizes, 3, NN_ACTIVATION_SIGMOID, NN_LOSS_SOFTMAX_CROSS_ENTROPY,
                                 dtype, rng, device);
    if (model) {
        nn_fit_options fit;
        nn_fit_options_init(&fit);
        fit.epochs = 300;
        fit.batch_size = 30;
        fit.learning_rate = 1.0;
        fit.report_interval = 10;
        fit.rng = rng;
        EXPECT_OK(nn_fit(model, x, NN_DTYPE_FLOAT64, 300, 2, t, NN_TARGET_CLASS_INDEX, 1, &fit, NULL));
        EXPECT_OK(nn_get_params(model, out_params, 63));
        EXPECT_OK(nn_evaluate(model, x, NN_DTYPE_FLOAT64, 300, 2, t, NN_TARGET_CLASS_INDEX, 1, NULL,
                              &accuracy));
    }
    nn_destroy(model);
    nn_rng_destroy(rng);
    return accuracy;
}

static int check_spiral(void)
{
    double ref[63], ours[63];
    const double ref_accuracy = book_run(NN_DEVICE_REFERENCE, NN_DTYPE_FLOAT64, ref);
    const double accuracy = book_run(NN_DEVICE_CPU, NN_DTYPE_FLOAT64, ours);
    const long correct = lround(accuracy * 300);
    const double worst = worst_relative(ours, ref, 63);
    printf("spiral on " EXAMPLE_NAME ": %ld/300 (reference %ld/300), parameters within %.3g relative\n",
           correct, lround(ref_accuracy * 300), worst);
    EXPECT(correct == 291, "accuracy %ld/300, the book's is 291/300", correct);
    EXPECT(worst <= 1e-9, "final parameters differ from the reference's by %.3g relative", worst);
    return failures;
}

/* A few epochs of a 2-8-3 net with each activation and loss on both devices; the
 * example computes what the reference does, so the parameters agree closely. */
static int check_parity(void)
{
    static double x[120], onehot[180];
    static int32_t t[60];
    EXPECT_OK(nn_dataset_spiral(x, 120, t, 60, 20, 3, NULL, 7));
    for (int r = 0; r < 60; ++r)
        for (int j = 0; j < 3; ++j) onehot[r * 3 + j] = t[r] == j;
    const nn_activation acts[] = {NN_ACTIVATION_SIGMOID, NN_ACTIVATION_RELU, NN_ACTIVATION_TANH,
                                  NN_ACTIVATION_IDENTITY};
    const size_t sizes[] = {2, 8, 3};
    for (int dt = 0; dt < 2; ++dt)
        for (int loss = 0; loss < 2; ++loss)
            for (int a = 0; a < 4; ++a) {
                const nn_dtype dtype = dt ? NN_DTYPE_FLOAT64 : NN_DTYPE_FLOAT32;
                double params[2][64];
                size_t count[2] = {0, 0};
                for (int d = 0; d < 2; ++d) {
                    nn_model *model = make_model(sizes, 3, acts[a], (nn_loss)loss, dtype, NULL,
                                                 d ? NN_DEVICE_CPU : NN_DEVICE_REFERENCE);
                    if (!model) return 1;
                    nn_fit_options fit;
                    nn_fit_options_init(&fit);
                    fit.epochs = 20;
                    fit.batch_size = 8; /* 60 rows: 7 steps, the 4-row tail dropped */
                    fit.learning_rate = 0.5;
                    if (loss == NN_LOSS_SOFTMAX_CROSS_ENTROPY)
                        EXPECT_OK(nn_fit(model, x, NN_DTYPE_FLOAT64, 60, 2, t, NN_TARGET_CLASS_INDEX, 1,
                                         &fit, NULL));
                    else
                        EXPECT_OK(nn_fit(model, x, NN_DTYPE_FLOAT64, 60, 2, onehot,
                                         NN_TARGET_ROWS_FLOAT64, 3, &fit, NULL));
                    EXPECT_OK(nn_param_count(model, &count[d]));
                    EXPECT(count[d] == 51, "a 2-8-3 net has 51 parameters, not %zu", count[d]);
                    EXPECT_OK(nn_get_params(model, params[d], 64));
                    nn_destroy(model);
                }
                if (count[0] != 51 || count[1] != 51) return 1;
                const double worst = worst_relative(params[1], params[0], 51);
                const double limit = dt ? 1e-9 : 1e-4;
                printf("%s, %s, activation %d: within %.3g relative\n", dt ? "float64" : "float32",
                       loss ? "mse" : "softmax", (int)acts[a], worst);
                EXPECT(worst <= limit, "%s loss %d activation %d: parameters differ by %.3g relative",
                       dt ? "float64" : "float32", loss, (int)acts[a], worst);
            }
    return failures;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: check_backend_minimal devices|set-device|spiral|parity\n");
        return 2;
    }
    int failed;
    if (strcmp(argv[1], "devices") == 0)
        failed = check_devices();
    else if (strcmp(argv[1], "set-device") == 0)
        failed = check_set_device();
    else if (strcmp(argv[1], "spiral") == 0)
        failed = check_spiral();
    else if (strcmp(argv[1], "parity") == 0)
        failed = check_parity();
    else {
        fprintf(stderr, "check_backend_minimal: unknown check '%s'\n", argv[1]);
        return 2;
    }
    printf("%s: %d failures\n", argv[1], failures);
    return failed ? 1 : 0;
}
