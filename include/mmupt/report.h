/* The quickstart's report (`mmupt report RUN_DIR`): reads a run directory written by
 * launch/quickstart.sh - per seed the evaluations before and after training, the trainers' metrics
 * and the phase times - and turns it into report.md (tables, verdict) and report.png (curves).
 * Every number in the report comes from those files.
 *
 *   RUN_DIR/run.tsv                       key<TAB>value lines, printed in order
 *   RUN_DIR/seed-N/base.json              `mmupt eval --json` of the warm start (test split)
 *   RUN_DIR/seed-N/majority.json          ... after MM-UPT (majority-vote reward)
 *   RUN_DIR/seed-N/ground_truth.json      ... after ground-truth GRPO (optional with its directory)
 *   RUN_DIR/seed-N/{majority,ground_truth}/metrics.jsonl    the trainer's metrics
 *   RUN_DIR/seed-N/{majority,ground_truth}/selected_step    optional: the step evaluated
 *   RUN_DIR/seed-N/times.tsv              phase<TAB>seconds lines
 *   RUN_DIR/seed-N/synth.json             optional, on every seed or none: the evaluation after MM-UPT
 *                                         trained on questions the warm start wrote itself
 *   RUN_DIR/seed-N/synth/                 ... its training run (as majority/)
 *   RUN_DIR/seed-N/synth_data.json        ... `mmupt synth`'s summary (the counts are printed)
 *
 * Loading reads everything and checks it before anything is written, so bad input never leaves a
 * half-written report behind. Accuracies are shares in [0, 1] here; NaN stands for "no number"
 * (a JSON null, an absent key, a run that was not made). */
#ifndef MMUPT_REPORT_H
#define MMUPT_REPORT_H

#include <stddef.h>
#include <stdint.h>

#include "mmupt/err.h"
#include "mmupt/image.h"

#define REPORT_MAX_SEEDS 64
#define REPORT_MAX_SOURCES 300          /* kinds per evaluation (eval keeps at most 256 + "(other)") */
#define REPORT_MAX_NAME 128             /* bytes of a source, phase or run.tsv key, NUL included */
#define REPORT_MAX_VALUE 1024           /* bytes of a run.tsv value, NUL included */
#define REPORT_MAX_INFO 64              /* run.tsv lines */
#define REPORT_MAX_PHASES 32            /* times.tsv lines */
#define REPORT_MAX_REASONS 32           /* synth_data.json's rejection reasons */
#define REPORT_MAX_METRIC_LINES (1 << 20)
#define REPORT_MAX_METRICS_BYTES ((size_t)1 << 28)
#define REPORT_MAX_JSON_BYTES ((size_t)1 << 24)

/* Bars of the verdict, in percentage points of greedy accuracy on the test split. */
#define REPORT_MMUPT_MEAN_BAR 5.0       /* MM-UPT: mean delta over seeds at least this */
#define REPORT_MMUPT_WORST_BAR (-3.0)   /* ... and no seed below this */
#define REPORT_GT_BAR 10.0              /* ground-truth GRPO: every seed at least this */

/* One kind of question (eval's by_source). */
struct report_source {
    char name[REPORT_MAX_NAME];
    int64_t items;
    double greedy, maj;
};

/* The numbers the report takes from one `mmupt eval --json`. */
struct report_eval {
    int G;                              /* settings.G */
    int64_t items;                      /* overall.items */
    double greedy, pass1, maj;          /* overall.greedy_pass1, pass1, maj */
    int n_sources;
    struct report_source *sources;      /* by_source, in the file's order */
};

/* The metrics the report reads from a trainer's metrics.jsonl; other keys are ignored. */
enum report_key {
    REPORT_REWARD_MEAN,                 /* "reward/mean" */
    REPORT_MAJORITY_RATIO,              /* "reward/majority_ratio" */
    REPORT_UNIFORM_GROUPS,              /* "reward/uniform_groups" */
    REPORT_LABEL_ACCURACY,              /* "reward/label_accuracy" */
    REPORT_VAL_GREEDY,                  /* "val/greedy_pass1" */
    REPORT_N_KEYS
};
extern const char *const report_key_names[REPORT_N_KEYS];

struct report_point {
    int64_t step;
    double v[REPORT_N_KEYS];            /* NaN where the line has no finite value */
};

/* A metrics history: steps strictly increasing. A line whose step is not above the previous one
 * means the run resumed from a checkpoint and rewrote history from there: the lines it replaces
 * are dropped, as the appended file's reader should. */
struct report_metrics {
    struct report_point *pts;
    int n, cap;
};

/* One training run of a seed: "majority" (MM-UPT), "ground_truth" or "synth" (MM-UPT on
 * self-generated questions). */
struct report_run {
    int present;                        /* 0: not run (ground_truth and synth only) */
    struct report_eval eval;            /* the evaluation after training */
    struct report_metrics metrics;
    int64_t selected_step;              /* -1 without a selected_step file */
};

/* What `mmupt synth` made of the warm start's questions (seed-N/synth_data.json; docs/synth.md). */
struct report_synth_reason {
    char name[REPORT_MAX_NAME];
    int64_t n;
};

struct report_synth_data {
    char mode[REPORT_MAX_NAME];         /* settings.mode ("direct") */
    int64_t items_used, candidates, kept;
    int n_reasons;
    struct report_synth_reason reasons[REPORT_MAX_REASONS]; /* counts.rejected_by_reason, in the file's order */
};

struct report_phase {
    char name[REPORT_MAX_NAME];
    double seconds;
};

struct report_seed {
    int64_t seed;
    struct report_eval base;
    struct report_run majority, ground_truth, synth;
    struct report_synth_data synth_data; /* when synth.present */
    int n_phases;
    struct report_phase phases[REPORT_MAX_PHASES];
};

struct report_info {
    char key[REPORT_MAX_NAME];
    char value[REPORT_MAX_VALUE];
};

struct report_data {
    int n_info;
    struct report_info *info;           /* run.tsv, in order */
    int n_seeds;
    struct report_seed *seeds;          /* sorted by seed number */
    int synth;                          /* 1: every seed has the self-generated-question run */
};

/* Read and check a whole run directory. On failure *out is left empty (nothing to free). The
 * self-generated-question run (synth.json, synth/, synth_data.json) is on every seed or on none:
 * a seed with some of its files, or without them where another seed has them, is an error naming
 * the missing file. */
int report_load(const char *run_dir, struct report_data *out, struct mmupt_err *err);
void report_free(struct report_data *d);

/* Parsers of the single files, exposed for the tests and the fuzz target. `name` is the file's name
 * in messages ("RUN/seed-2/majority/metrics.jsonl:14: \"step\": not an integer"). On failure the
 * output is left empty. */
int report_parse_metrics(const char *name, const char *text, size_t len, struct report_metrics *out,
                         struct mmupt_err *err);
void report_metrics_free(struct report_metrics *m);
int report_parse_eval(const char *name, const char *text, size_t len, struct report_eval *out, struct mmupt_err *err);
void report_eval_free(struct report_eval *e);
/* key<TAB>value lines (run.tsv); blank lines are skipped. *out is malloc'd. */
int report_parse_info(const char *name, const char *text, size_t len, struct report_info **out, int *n,
                      struct mmupt_err *err);
/* `mmupt synth`'s summary: settings.mode and counts.{items_used, candidates, kept,
 * rejected_by_reason}; kept plus the rejections must add up to the candidates. */
int report_parse_synth(const char *name, const char *text, size_t len, struct report_synth_data *out,
                       struct mmupt_err *err);
/* phase<TAB>seconds lines (times.tsv), at least one, seconds finite and >= 0, no phase twice. */
int report_parse_times(const char *name, const char *text, size_t len, struct report_phase *out, int *n,
                       struct mmupt_err *err);

/* Mean of `key` over the first (at_end = 0) or last (at_end = 1) k points that have a finite value,
 * k = max(1, min(5, n / 4)) with n such points; NaN when there are none. */
double report_window_mean(const struct report_metrics *m, enum report_key key, int at_end);

/* A seed's row of the summary table. Accuracies are shares; deltas and headroom are shares too
 * (the writer prints them in points). NaN: no number (ground truth not run, a null in the file). */
struct report_row {
    double base_greedy, base_pass1, base_maj, headroom;
    double mm_greedy, mm_delta, mm_pass1;
    double gt_greedy, gt_delta;
    double label_start, label_end;      /* MM-UPT's reward/label_accuracy, first and last window */
    double uniform_start, uniform_end;  /* MM-UPT's reward/uniform_groups */
    double wall_s;                      /* sum of times.tsv */
    double mm_maj;                      /* MM-UPT's maj@G */
    double sy_greedy, sy_delta, sy_pass1, sy_maj; /* MM-UPT on self-generated questions (NaN: not run) */
    double sy_vs_mm;                    /* sy_delta - mm_delta: self-generated against original questions */
};
void report_row_of(const struct report_seed *s, struct report_row *out);
/* The mean row: each column averaged over the seeds where it is a number (NaN where none is). */
void report_row_mean(const struct report_row *rows, int n, struct report_row *out);

/* Points rounded to one decimal, as printed: the bars are checked on the printed numbers, so a
 * verdict never contradicts the table. */
double report_points(double share);

enum report_status { REPORT_MET, REPORT_NOT_MET, REPORT_NOT_RUN };

struct report_verdict {
    enum report_status mmupt, gt;
    double mm_mean;                     /* points: mean over seeds of MM-UPT's greedy delta (NaN if one is missing) */
    double mm_worst;                    /* points: the lowest seed's delta */
    int64_t mm_worst_seed;
    double gt_worst;                    /* points: the lowest ground-truth delta over the seeds that ran it */
    int64_t gt_worst_seed;
    int gt_missing;                     /* seeds without a ground-truth run (some ran it) */
};
void report_verdict_of(const struct report_data *d, struct report_verdict *v);

/* report.md's text (malloc'd, *len bytes); `png_ref` is the figure's path as the markdown should
 * link it (relative to the markdown file). */
char *report_markdown(const struct report_data *d, const char *run_dir, const char *png_ref, size_t *len);
/* The 2x2 figure: majority ratio, vote label accuracy, reward mean, validation greedy pass@1 per
 * step, one line per (seed, run). out->data is malloc'd. */
int report_figure(const struct report_data *d, struct img_rgb *out, struct mmupt_err *err);

/* Write report.md and report.png: both are made in memory, written beside their targets and renamed
 * only when both are complete, so a failure leaves any earlier report as it was. */
int report_write(const struct report_data *d, const char *run_dir, const char *md_path, const char *png_path,
                 struct mmupt_err *err);

#endif
