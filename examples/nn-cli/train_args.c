/* nn-cli train: its options, their defaults and --help. */
#include <nn/nn.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "csv.h"
#include "train.h"

void train_usage(FILE *to)
{
    fputs("usage: nn-cli train DATA.csv --label NAME|INDEX --out MODEL.nnm [options]\n"
          "\n"
          "Trains a multilayer perceptron on a CSV file with a header row. The label column is\n"
          "named, or given by its 0-based index; every other column is a numeric feature.\n"
          "Features are standardised with the training rows' mean and standard deviation, which\n"
          "are saved with the model (as are the column names and the class labels).\n"
          "\n"
          "  --label NAME|INDEX     the label column (required)\n"
          "  --out MODEL.nnm        where to save the model (required)\n"
          "  --task classify|regress  classify: labels are any strings (default);\n"
          "                         regress: labels are numbers, loss is mean squared error\n"
          "  --hidden 32,16         hidden layer sizes; \"\" for none (default 32,16)\n"
          "  --activation relu|sigmoid|tanh|identity  hidden activation (default relu;\n"
          "                         He initial weights for relu, Xavier for the others)\n"
          "  --epochs N             passes over the training rows (default 50)\n"
          "  --batch N              rows per SGD step (default 32)\n"
          "  --lr X                 learning rate (default 0.05)\n"
          "  --optimizer sgd        the only optimizer of this libnn version\n"
          "  --device auto|cpu|cuda|reference  where to train (default auto)\n"
          "  --seed N               seeds the split, the initial weights and the shuffle (default 1984)\n"
          "  --dtype float32|float64  compute type (default float32)\n"
          "  --holdout FRACTION     hold out this fraction of rows (shuffled) and report their\n"
          "                         accuracy or MSE (default 0: train on all rows)\n"
          "  --save-holdout FILE    also write the held-out rows, as CSV, to FILE\n"
          "\n"
          "Progress: a bar on a terminal, \"epoch N/M loss X\" lines otherwise.\n"
          "Exit status: 0 ok; 1 usage, I/O or libnn error; 2 a CSV that cannot be used.\n",
          to);
}

static int usage_error(const char *fmt, const char *value)
{
    fputs("nn-cli train: ", stderr);
    fprintf(stderr, fmt, value);
    fputs("\n(nn-cli train --help lists the options)\n", stderr);
    return CLI_EXIT_FAILURE;
}

/* A positive integer no larger than `max`; returns 0 on success. */
static int parse_count(const char *text, size_t max, size_t *out)
{
    char *end = NULL;
    if (text[0] < '0' || text[0] > '9')
        return 1;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno || *end != '\0' || v == 0 || v > max)
        return 1;
    *out = (size_t)v;
    return 0;
}

static int parse_hidden(const char *text, train_options *opt)
{
    opt->n_hidden = 0;
    while (*text) {
        char item[32];
        size_t len = strcspn(text, ",");
        if (len == 0 || len >= sizeof item || opt->n_hidden == MAX_HIDDEN)
            return 1;
        memcpy(item, text, len);
        item[len] = '\0';
        if (parse_count(item, 1u << 20, &opt->hidden[opt->n_hidden++]))
            return 1;
        text += len;
        if (*text == ',' && *++text == '\0')
            return 1; /* a trailing comma */
    }
    return 0;
}

int parse_train_args(int argc, char **argv, train_options *opt)
{
    *opt = (train_options){.task = CLI_CLASSIFY, .hidden = {32, 16}, .n_hidden = 2,
                           .activation = NN_ACTIVATION_RELU, .epochs = 50, .batch = 32,
                           .lr = 0.05, .device = NN_DEVICE_AUTO, .seed = 1984,
                           .dtype = NN_DTYPE_FLOAT32};
    for (int i = 1; i < argc; ++i) {
        const char *v = NULL;
        int took;
        if (is_help(argv[i])) {
            train_usage(stdout);
            return CLI_EXIT_OK;
        }
#define OPTION(name) ((took = take_option(argc, argv, &i, name, &v)) != 0)
        if (OPTION("--label")) {
            opt->label = v;
        } else if (OPTION("--out")) {
            opt->out = v;
        } else if (OPTION("--save-holdout")) {
            opt->save_holdout = v;
        } else if (OPTION("--task")) {
            if (v && strcmp(v, "classify") == 0)
                opt->task = CLI_CLASSIFY;
            else if (v && strcmp(v, "regress") == 0)
                opt->task = CLI_REGRESS;
            else if (v)
                return usage_error("--task must be classify or regress, not '%s'", v);
        } else if (OPTION("--hidden")) {
            if (v && parse_hidden(v, opt))
                return usage_error("--hidden takes positive sizes separated by commas, not '%s'", v);
        } else if (OPTION("--activation")) {
            static const char *names[] = {"sigmoid", "relu", "tanh", "identity"};
            int found = -1;
            for (int k = 0; v && k < 4; ++k)
                found = strcmp(v, names[k]) == 0 ? k : found;
            if (v && found < 0)
                return usage_error("--activation must be relu, sigmoid, tanh or identity, not '%s'", v);
            opt->activation = (nn_activation)found; /* names[] is in enum order */
        } else if (OPTION("--epochs")) {
            if (v && parse_count(v, 1000000000, &opt->epochs))
                return usage_error("--epochs must be a positive integer, not '%s'", v);
        } else if (OPTION("--batch")) {
            if (v && parse_count(v, (size_t)1 << 40, &opt->batch))
                return usage_error("--batch must be a positive integer, not '%s'", v);
        } else if (OPTION("--lr")) {
            if (v && (csv_parse_double(v, &opt->lr) || !(opt->lr > 0.0)))
                return usage_error("--lr must be a positive number, not '%s'", v);
        } else if (OPTION("--holdout")) {
            if (v && (csv_parse_double(v, &opt->holdout) || opt->holdout < 0.0 || opt->holdout >= 1.0))
                return usage_error("--holdout must be a fraction in [0, 1), not '%s'", v);
        } else if (OPTION("--seed")) {
            size_t seed = 0;
            if (v && strcmp(v, "0") != 0 && parse_count(v, 0xFFFFFFFFu, &seed))
                return usage_error("--seed must be an integer from 0 to 4294967295, not '%s'", v);
            opt->seed = (uint32_t)seed;
        } else if (OPTION("--optimizer")) {
            if (v && strcmp(v, "sgd") != 0)
                return usage_error("--optimizer '%s' is not available: this version of libnn's C API "
                                   "trains with SGD only (--optimizer sgd)", v);
        } else if (OPTION("--device")) {
            if (v && strcmp(v, "auto") == 0)
                opt->device = NN_DEVICE_AUTO;
            else if (v && strcmp(v, "cpu") == 0)
                opt->device = NN_DEVICE_CPU;
            else if (v && strcmp(v, "cuda") == 0)
                opt->device = NN_DEVICE_CUDA;
            else if (v && strcmp(v, "reference") == 0)
                opt->device = NN_DEVICE_REFERENCE;
            else if (v)
                return usage_error("--device must be auto, cpu, cuda or reference, not '%s'", v);
        } else if (OPTION("--dtype")) {
            if (v && strcmp(v, "float32") == 0)
                opt->dtype = NN_DTYPE_FLOAT32;
            else if (v && strcmp(v, "float64") == 0)
                opt->dtype = NN_DTYPE_FLOAT64;
            else if (v)
                return usage_error("--dtype must be float32 or float64, not '%s'", v);
        } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            return usage_error("unknown option '%s'", argv[i]);
        } else if (!opt->data) {
            opt->data = argv[i];
        } else {
            return usage_error("one DATA.csv only; '%s' is one too many", argv[i]);
        }
        if (took < 0)
            return CLI_EXIT_FAILURE;
#undef OPTION
    }
    if (!opt->data)
        return usage_error("%s", "a DATA.csv file is required");
    if (!opt->label)
        return usage_error("%s", "--label NAME|INDEX is required");
    if (!opt->out)
        return usage_error("%s", "--out MODEL.nnm is required");
    return -1;
}

