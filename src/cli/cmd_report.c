/* mmupt report: the quickstart's report (src/report) from a run directory - report.md with the
 * tables and the verdict, report.png with the training curves. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "mmupt/report.h"

static const char usage[] =
    "usage: mmupt report RUN_DIR [--out FILE.md] [--png FILE.png]\n"
    "\n"
    "Write the quickstart's report from a run directory made by launch/quickstart.sh: accuracy on the\n"
    "test split before and after MM-UPT and ground-truth GRPO per seed with a mean row, the verdict\n"
    "against the quickstart's bars, per-kind accuracy, the training metrics' start and end, the phase\n"
    "times, and a figure of the training curves. Every number comes from the run's files.\n"
    "\n"
    "RUN_DIR holds run.tsv (key<TAB>value lines) and one seed-N/ per seed with base.json,\n"
    "majority.json, ground_truth.json (`mmupt eval --json` of the warm start and of the two trained\n"
    "models), majority/ and ground_truth/ (the trainers' metrics.jsonl, optionally selected_step) and\n"
    "times.tsv (phase<TAB>seconds lines). ground_truth.json and ground_truth/ may both be absent.\n"
    "\n"
    "options:\n"
    "  --out FILE.md     the report (default RUN_DIR/report.md)\n"
    "  --png FILE.png    the figure (default RUN_DIR/report.png)\n"
    "Both files are replaced only when both are complete; bad input leaves an earlier report as it\n"
    "was. See docs/quickstart.md.\n";

struct report_opts {
    const char *run_dir, *out, *png;
};

static int parse(int argc, char **argv, struct report_opts *o)
{
    memset(o, 0, sizeof *o);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--out") == 0 || strcmp(a, "--png") == 0) {
            if (i + 1 >= argc) {
                cli_error("report", "'%s' needs a value (see mmupt report --help)", a);
                return -1;
            }
            *(a[2] == 'o' ? &o->out : &o->png) = argv[++i];
        } else if (a[0] == '-' && a[1]) {
            cli_error("report", "unknown option '%s' (see mmupt report --help)", a);
            return -1;
        } else if (o->run_dir) {
            cli_error("report", "one run directory expected, got '%s' and '%s'", o->run_dir, a);
            return -1;
        } else {
            o->run_dir = a;
        }
    }
    if (!o->run_dir) {
        cli_error("report", "RUN_DIR is required\n\n%s", usage);
        return -1;
    }
    return 0;
}

int cmd_report(int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        fputs(usage, stdout);
        return MMUPT_EXIT_OK;
    }
    struct report_opts o;
    if (parse(argc, argv, &o)) return MMUPT_EXIT_USAGE;
    char md[4200], png[4200];
    if (snprintf(md, sizeof md, "%s/report.md", o.run_dir) >= (int)sizeof md ||
        snprintf(png, sizeof png, "%s/report.png", o.run_dir) >= (int)sizeof png) {
        cli_error("report", "%s: path too long", o.run_dir);
        return MMUPT_EXIT_USAGE;
    }
    struct mmupt_err err;
    struct report_data d;
    if (report_load(o.run_dir, &d, &err)) {
        cli_error("report", "%s", err.msg);
        return MMUPT_EXIT_ERROR;
    }
    int rc = report_write(&d, o.run_dir, o.out ? o.out : md, o.png ? o.png : png, &err);
    if (rc) cli_error("report", "%s", err.msg);
    else printf("report: wrote %s and %s (%d seed%s)\n", o.out ? o.out : md, o.png ? o.png : png, d.n_seeds,
                d.n_seeds == 1 ? "" : "s");
    report_free(&d);
    return rc ? MMUPT_EXIT_ERROR : MMUPT_EXIT_OK;
}
