/*
 * nn-cli: train, apply and evaluate libnn models on CSV files from the command line.
 *
 *   nn-cli train DATA.csv --label NAME|INDEX --out MODEL.nnm [options]
 *   nn-cli predict MODEL.nnm DATA.csv [--out PRED.csv]
 *   nn-cli evaluate MODEL.nnm DATA.csv
 *
 * The files, in the order a run uses them: csv.c (reading), standardize.c (feature
 * scaling and its text form), model_meta.c (what is stored beside the model, and the
 * scores train and evaluate share), train_args.c and train.c, predict.c (predict and
 * evaluate), output.c (progress and predictions).
 */
#include <nn/nn.h>

#include <stdio.h>
#include <string.h>

#include "commands.h"

static void usage(FILE *to)
{
    fputs("usage: nn-cli COMMAND [ARGS]\n"
          "\n"
          "  train DATA.csv --label NAME|INDEX --out MODEL.nnm [options]\n"
          "                       train a classifier or regressor on a CSV file\n"
          "  predict MODEL.nnm DATA.csv [--out PRED.csv]\n"
          "                       write the model's predictions for each row\n"
          "  evaluate MODEL.nnm DATA.csv\n"
          "                       print accuracy (classifier) or MSE (regressor)\n"
          "  --version            print nn-cli's libnn version\n"
          "\n"
          "nn-cli COMMAND --help describes a command's options.\n",
          to);
}

int is_help(const char *arg)
{
    return strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0;
}

int take_option(int argc, char **argv, int *i, const char *name, const char **value)
{
    const char *arg = argv[*i];
    size_t len = strlen(name);
    if (strncmp(arg, name, len) != 0)
        return 0;
    if (arg[len] == '=') {
        *value = arg + len + 1;
        return 1;
    }
    if (arg[len] != '\0')
        return 0;
    if (*i + 1 >= argc) {
        fprintf(stderr, "nn-cli %s: %s needs a value\n", argv[0], name);
        return -1;
    }
    *value = argv[++*i];
    return 1;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return CLI_EXIT_FAILURE;
    }
    const char *command = argv[1];
    if (is_help(command)) {
        usage(stdout);
        return CLI_EXIT_OK;
    }
    if (strcmp(command, "--version") == 0) {
        printf("nn-cli (libnn %s)\n", nn_version_string());
        return CLI_EXIT_OK;
    }
    /* Commands see their own name as argv[0]. */
    if (strcmp(command, "train") == 0)
        return cmd_train(argc - 1, argv + 1);
    if (strcmp(command, "predict") == 0)
        return cmd_predict(argc - 1, argv + 1);
    if (strcmp(command, "evaluate") == 0)
        return cmd_evaluate(argc - 1, argv + 1);
    fprintf(stderr, "nn-cli: unknown command '%s'\n", command);
    usage(stderr);
    return CLI_EXIT_FAILURE;
}
