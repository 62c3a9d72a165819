/* mmupt config: print the fully resolved configuration, or the key reference. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "mmupt/config.h"

static const char usage[] =
    "usage: mmupt config [FILE.yaml] [section.key=value ...] [--comments]\n"
    "       mmupt config --list | --doc\n"
    "\n"
    "Print the fully resolved configuration as YAML: table defaults, then FILE, then the overrides\n"
    "in order, all checked. The output is itself a valid config that resolves to the same values.\n"
    "\n"
    "options:\n"
    "  --comments   add each key's one-line description as a YAML comment\n"
    "  --list       list every key with its default, allowed values and description\n"
    "  --doc        print the markdown reference (docs/configuration.md is this output)\n"
    "  -h, --help   this text\n"
    "\n"
    "exit status: 0 ok, 1 invalid configuration (the message names file:line:column and key),\n"
    "2 bad command line.\n";

int cmd_config(int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        fputs(usage, stdout);
        return MMUPT_EXIT_OK;
    }
    struct cli_config_args a;
    const char *flags[4];
    int n_flags;
    if (cli_split_args("config", argc, argv, &a, flags, 4, &n_flags)) return MMUPT_EXIT_USAGE;
    bool comments = false;
    for (int i = 0; i < n_flags; i++) {
        bool alone = n_flags == 1 && !a.path && a.n_overrides == 0;
        if (strcmp(flags[i], "--comments") == 0) comments = true;
        else if (strcmp(flags[i], "--list") == 0 && alone) return cfg_write_key_list(stdout) ? 1 : 0;
        else if (strcmp(flags[i], "--doc") == 0 && alone) return cfg_write_markdown(stdout) ? 1 : 0;
        else {
            cli_error("config", "unknown or misplaced option '%s'\n\n%s", flags[i], usage);
            return MMUPT_EXIT_USAGE;
        }
    }
    struct cfg *c = mmupt_xmalloc(sizeof *c);
    struct mmupt_err err;
    int rc = MMUPT_EXIT_OK;
    if (cfg_resolve(c, a.path, a.n_overrides, a.overrides, &err)) {
        cli_error("config", "%s", err.msg);
        rc = MMUPT_EXIT_ERROR;
    } else if (cfg_write_yaml(c, stdout, comments) || fflush(stdout)) {
        cli_error("config", "cannot write to standard output");
        rc = MMUPT_EXIT_ERROR;
    }
    free(c);
    return rc;
}
