/* libnn quickstart: the book's chapter-1 spiral, a 2-10-3 net, 300 epochs of SGD. */
#include <nn/nn.h>
#include <stdio.h>

#define CHECK(call) do { if ((call) != NN_OK) { \
    fprintf(stderr, "%s\n", nn_last_error_message()); return 1; } } while (0)

int main(void)
{
    static double x[300 * 2]; /* (300, 2) points */
    static int32_t t[300];    /* their classes, 0..2 */
    CHECK(nn_dataset_spiral(x, 600, t, 300, 100, 3, NULL, 1984));

    const size_t sizes[] = {2, 10, 3}; /* inputs, hidden units, classes */
    nn_model_desc desc;
    nn_model_desc_init(&desc); /* sigmoid, softmax cross-entropy, float32 */
    desc.n_layer_sizes = 3;
    desc.layer_sizes = sizes;
    nn_model *model = NULL;
    CHECK(nn_create(&model, &desc));

    nn_fit_options fit;
    nn_fit_options_init(&fit);
    fit.epochs = 300;
    fit.batch_size = 30;
    fit.learning_rate = 1.0;
    double accuracy = 0.0;
    CHECK(nn_fit(model, x, NN_DTYPE_FLOAT64, 300, 2, t, NN_TARGET_CLASS_INDEX, 1, &fit, NULL));
    CHECK(nn_evaluate(model, x, NN_DTYPE_FLOAT64, 300, 2, t, NN_TARGET_CLASS_INDEX, 1,
                      NULL, &accuracy));
    printf("accuracy %.2f\n", accuracy);
    nn_destroy(model);
    return 0;
}
