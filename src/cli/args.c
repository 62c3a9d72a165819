/* Command-line helpers shared by the subcommands. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "mmupt/err.h"

void cli_error(const char *cmd, const char *fmt, ...)
{
    /* One write for the whole line, so lines from several MPI ranks never interleave. */
    char line[4096];
    int n = snprintf(line, sizeof line, "mmupt %s: error: ", cmd);
    va_list ap;
    va_start(ap, fmt);
    if (n >= 0 && (size_t)n < sizeof line) n += vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n >= sizeof line - 1) n = (int)sizeof line - 2;
    line[n++] = '\n';
    fwrite(line, 1, (size_t)n, stderr);
}

int cli_wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) return 1;
    return 0;
}

int cli_split_args(const char *cmd, int argc, char **argv, struct cli_config_args *out, const char **flags,
                   int max_flags, int *n_flags)
{
    memset(out, 0, sizeof *out);
    *n_flags = 0;
    /* Overrides are gathered in place at the front of argv's tail: argv is ours to reorder. */
    char **over = argv + 1;
    for (int i = 1; i < argc; i++) {
        char *a = argv[i];
        if (a[0] == '-' && a[1] != '\0') {
            if (*n_flags == max_flags) {
                cli_error(cmd, "too many options at '%s' (see mmupt %s --help)", a, cmd);
                return -1;
            }
            flags[(*n_flags)++] = a;
        } else if (strchr(a, '=')) {
            over[out->n_overrides++] = a;
        } else if (!out->path) {
            out->path = a;
        } else {
            cli_error(cmd, "unexpected argument '%s': one config file, then section.key=value overrides", a);
            return -1;
        }
    }
    out->overrides = over;
    return 0;
}

int cli_parse_shard_mb(const char *cmd, const char *text, double *out)
{
    char *end;
    *out = strtod(text, &end);
    if (*end || !(*out >= 0.01 && *out <= 1048576)) {
        cli_error(cmd, "--shard-mb must be a number in [0.01, 1048576]");
        return -1;
    }
    return 0;
}

int cli_parse_long(const char *cmd, const char *opt, const char *v, long lo, long hi, long *out)
{
    char *end = NULL;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (end == v || *end || errno) {
        cli_error(cmd, "%s: '%s' is not a whole number", opt, v);
        return -1;
    }
    if (x < lo || x > hi) {
        cli_error(cmd, "%s: %ld is out of range: must be in [%ld, %ld]", opt, x, lo, hi);
        return -1;
    }
    *out = x;
    return 0;
}

int cli_parse_int(const char *cmd, const char *opt, const char *v, int lo, int hi, int *out)
{
    long x = 0;
    if (cli_parse_long(cmd, opt, v, lo, hi, &x)) return -1;
    *out = (int)x;
    return 0;
}

int cli_parse_double(const char *cmd, const char *opt, const char *v, double *out)
{
    char *end = NULL;
    double x = strtod(v, &end);
    if (end == v || *end || !isfinite(x)) {
        cli_error(cmd, "%s: '%s' is not a finite number", opt, v);
        return -1;
    }
    *out = x;
    return 0;
}

int cli_parse_float(const char *cmd, const char *opt, const char *v, float *out)
{
    char *end = NULL;
    float x = strtof(v, &end);
    if (end == v || *end || !isfinite(x)) {
        cli_error(cmd, "%s: '%s' is not a finite number", opt, v);
        return -1;
    }
    *out = x;
    return 0;
}

int cli_parse_seed(const char *cmd, const char *v, uint64_t *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long long x = strtoull(v, &end, 10);
    /* strtoull takes "-1" as 2^64 - 1: only plain digits are a seed. */
    if (v[0] < '0' || v[0] > '9' || *end || errno) {
        cli_error(cmd, "--seed: '%s' is not a whole number in [0, 2^64)", v);
        return -1;
    }
    *out = x;
    return 0;
}

int cli_parse_yes_no(const char *cmd, const char *opt, const char *v, int *out)
{
    if (strcmp(v, "yes") == 0 || strcmp(v, "true") == 0) *out = 1;
    else if (strcmp(v, "no") == 0 || strcmp(v, "false") == 0) *out = 0;
    else {
        cli_error(cmd, "%s: '%s' is not yes or no", opt, v);
        return -1;
    }
    return 0;
}
