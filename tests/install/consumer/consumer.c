/* Built against an installed libnn: checks the header/library versions agree, trains the
 * book's spiral and names the device, which must be the installed CPU plugin. */
#include <nn/nn.h>
#include <stdio.h>

int main(void)
{
    int major = -1, minor = -1, patch = -1;
    static double x[600];
    static int32_t t[300];
    const size_t sizes[] = {2, 10, 3};
    nn_model_desc desc;
    nn_fit_options fit;
    nn_device_info where;
    nn_model *model = NULL;
    double accuracy = 0.0;
    nn_version(&major, &minor, &patch);
    if (major != NN_VERSION_MAJOR || minor != NN_VERSION_MINOR) {
        fprintf(stderr, "header %d.%d, library %d.%d\n", NN_VERSION_MAJOR, NN_VERSION_MINOR, major, minor);
        return 1;
    }
    nn_model_desc_init(&desc);
    desc.n_layer_sizes = 3;
    desc.layer_sizes = sizes;
    nn_fit_options_init(&fit);
    fit.epochs = 300;
    fit.batch_size = 30;
    fit.learning_rate = 1.0;
    nn_device_info_init(&where);
    if (nn_dataset_spiral(x, 600, t, 300, 100, 3, NULL, 1984) != NN_OK || nn_create(&model, &desc) != NN_OK ||
        nn_fit(model, x, NN_DTYPE_FLOAT64, 300, 2, t, NN_TARGET_CLASS_INDEX, 1, &fit, NULL) != NN_OK ||
        nn_evaluate(model, x, NN_DTYPE_FLOAT64, 300, 2, t, NN_TARGET_CLASS_INDEX, 1, NULL, &accuracy) != NN_OK ||
        nn_get_device(model, &where) != NN_OK) {
        fprintf(stderr, "%s\n", nn_last_error_message());
        return 1;
    }
    printf("libnn %s on %s: accuracy %.2f\n", nn_version_string(), where.name, accuracy);
    nn_destroy(model);
    return where.kind == NN_DEVICE_CPU && accuracy >= 0.96 ? 0 : 1;
}
