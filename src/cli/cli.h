/* The subcommands of the mmupt binary and the helpers they share. */
#ifndef MMUPT_CLI_H
#define MMUPT_CLI_H

#include <stdio.h>

#include "mmupt/model.h"

struct cli_command {
    const char *name;
    int (*run)(int argc, char **argv); /* argv[0] is the subcommand name; NULL: not built yet */
    const char *summary;
    const char *planned; /* for run == NULL: what will provide it */
};

/* One config file and its overrides, split from the rest of a command line. */
struct cli_config_args {
    const char *path; /* NULL when no file was given */
    int n_overrides;
    char **overrides; /* points into argv */
};

/* Split argv[1..] into the config file, key=value overrides and flags. Flags are returned in
 * `flags` (pointers into argv, at most max_flags). Returns 0, or -1 after printing a usage error. */
int cli_split_args(const char *cmd, int argc, char **argv, struct cli_config_args *out, const char **flags,
                   int max_flags, int *n_flags);

/* Does argv contain -h or --help? */
int cli_wants_help(int argc, char **argv);

/* Print "mmupt CMD: error: MSG" on stderr. */
void cli_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* --shard-mb's value; -1 after printing a usage error. */
int cli_parse_shard_mb(const char *cmd, const char *text, double *out);

int cmd_train(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_data(int argc, char **argv);
int cmd_sft(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_config(int argc, char **argv);
int cmd_version(int argc, char **argv);
int cmd_forward(int argc, char **argv);
int cmd_convert(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_grade(int argc, char **argv);
int cmd_generate(int argc, char **argv);

#endif
