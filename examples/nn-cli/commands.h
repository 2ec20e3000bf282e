/*
 * The nn-cli commands. Each takes the arguments after the command's name and returns
 * the process exit status: 0 success; 1 a usage error, a file that cannot be read or
 * written, or a libnn failure (its message printed); 2 a CSV that cannot be used (the
 * message names the line).
 */
#ifndef NN_CLI_COMMANDS_H
#define NN_CLI_COMMANDS_H

enum { CLI_EXIT_OK = 0, CLI_EXIT_FAILURE = 1, CLI_EXIT_BAD_CSV = 2 };

int cmd_train(int argc, char **argv);
int cmd_predict(int argc, char **argv);
int cmd_evaluate(int argc, char **argv);

/* If argv[*i] is option `name`, as "--name VALUE" or "--name=VALUE": stores the value,
 * moves *i past it and returns 1. Returns 0 if argv[*i] is another argument, and -1
 * after a message if the value is missing. */
int take_option(int argc, char **argv, int *i, const char *name, const char **value);

/* True for "--help" and "-h". */
int is_help(const char *arg);

#endif /* NN_CLI_COMMANDS_H */
