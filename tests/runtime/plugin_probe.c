/* Runs against a copy of libnn that has no plugin beside it, with NN_BACKEND_PATH set
 * by the test, and checks what the CPU device entry says and that the library still
 * trains on the reference path.
 *   plugin_probe available
 *   plugin_probe unavailable "substring of the reason" */
#include <stdio.h>
#include <string.h>

#include "nn/nn.h"

static int failures = 0;
#define CHECK(cond, ...)                       \
    do {                                       \
        if (!(cond)) {                         \
            fprintf(stderr, "FAIL: " __VA_ARGS__); \
            fprintf(stderr, "\n");             \
            ++failures;                        \
        }                                      \
    } while (0)

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    const int want_available = strcmp(argv[1], "available") == 0;
    const char *want_reason = argc > 2 ? argv[2] : "";

    size_t n = 0;
    CHECK(nn_device_count(&n) == NN_OK && n >= 2, "device count %zu", n);
    nn_device_info cpu;
    int found = 0;
    for (size_t i = 0; i < n; ++i) {
        nn_device_info info;
        nn_device_info_init(&info);
        CHECK(nn_device_get(i, &info) == NN_OK, "nn_device_get(%zu)", i);
        printf("device %zu: kind %d index %d available %d name '%s' reason '%s'\n", i, (int)info.kind, info.index,
               info.available, info.name, info.reason);
        if (info.kind == NN_DEVICE_CPU && !found) {
            cpu = info;
            found = 1;
        }
    }
    CHECK(found, "no CPU entry in the device list");
    if (!found) return 1;
    CHECK(cpu.available == want_available, "CPU available=%d, expected %d", cpu.available, want_available);
    if (!want_available) CHECK(strstr(cpu.reason, want_reason) != NULL, "reason '%s' lacks '%s'", cpu.reason, want_reason);

    const size_t sizes[] = {2, 4, 3};
    nn_model_desc desc;
    nn_model_desc_init(&desc);
    desc.n_layer_sizes = 3;
    desc.layer_sizes = sizes;
    nn_model *m = NULL;
    CHECK(nn_create(&m, &desc) == NN_OK, "nn_create: %s", nn_last_error_message());
    if (!m) return 1;
    nn_device_info where;
    nn_device_info_init(&where);
    CHECK(nn_get_device(m, &where) == NN_OK, "nn_get_device");
    CHECK(where.kind == (want_available ? NN_DEVICE_CPU : NN_DEVICE_REFERENCE), "auto placed the model on kind %d",
          (int)where.kind);
    nn_status s = nn_set_device(m, NN_DEVICE_CPU, 0);
    if (want_available) {
        CHECK(s == NN_OK, "nn_set_device(CPU): %s", nn_last_error_message());
    } else {
        CHECK(s == NN_ERR_DEVICE_UNAVAILABLE, "nn_set_device(CPU) returned %d", (int)s);
        CHECK(strstr(nn_last_error_message(), want_reason) != NULL, "message '%s' lacks '%s'", nn_last_error_message(),
              want_reason);
        CHECK(nn_get_device(m, &where) == NN_OK && where.kind == NN_DEVICE_REFERENCE, "model moved after a failed request");
    }
    double x[60];
    int32_t t[30];
    CHECK(nn_dataset_spiral(x, 60, t, 30, 10, 3, NULL, 1984) == NN_OK, "spiral");
    nn_fit_options o;
    nn_fit_options_init(&o);
    o.epochs = 2;
    o.batch_size = 10;
    CHECK(nn_fit(m, x, NN_DTYPE_FLOAT64, 30, 2, t, NN_TARGET_CLASS_INDEX, 1, &o, NULL) == NN_OK, "fit: %s",
          nn_last_error_message());
    nn_destroy(m);
    printf("%d failures\n", failures);
    return failures ? 1 : 0;
}
