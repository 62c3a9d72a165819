/* The numbers derived from a run: a seed's summary row, the mean row, and the verdict against the
 * quickstart's bars. */
#include <math.h>
#include <string.h>

#include "mmupt/report.h"

void report_row_of(const struct report_seed *s, struct report_row *r)
{
    const struct report_eval *b = &s->base, *mm = &s->majority.eval, *gt = &s->ground_truth.eval;
    const struct report_metrics *m = &s->majority.metrics;
    r->base_greedy = b->greedy;
    r->base_pass1 = b->pass1;
    r->base_maj = b->maj;
    r->headroom = b->maj - b->greedy;
    r->mm_greedy = mm->greedy;
    r->mm_delta = mm->greedy - b->greedy;
    r->mm_pass1 = mm->pass1;
    r->gt_greedy = s->ground_truth.present ? gt->greedy : NAN;
    r->gt_delta = r->gt_greedy - b->greedy;
    r->label_start = report_window_mean(m, REPORT_LABEL_ACCURACY, 0);
    r->label_end = report_window_mean(m, REPORT_LABEL_ACCURACY, 1);
    r->uniform_start = report_window_mean(m, REPORT_UNIFORM_GROUPS, 0);
    r->uniform_end = report_window_mean(m, REPORT_UNIFORM_GROUPS, 1);
    r->wall_s = 0.0;
    for (int i = 0; i < s->n_phases; i++) r->wall_s += s->phases[i].seconds;
    r->mm_maj = mm->maj;
    const struct report_eval *sy = &s->synth.eval;
    r->sy_greedy = s->synth.present ? sy->greedy : NAN;
    r->sy_delta = r->sy_greedy - b->greedy;
    r->sy_pass1 = s->synth.present ? sy->pass1 : NAN;
    r->sy_maj = s->synth.present ? sy->maj : NAN;
    r->sy_vs_mm = r->sy_delta - r->mm_delta;
}

/* struct report_row holds only doubles: its columns are walked as an array, so the mean is one loop. */
#define ROW_FIELDS (sizeof(struct report_row) / sizeof(double))

void report_row_mean(const struct report_row *rows, int n, struct report_row *out)
{
    double col[ROW_FIELDS];
    for (size_t c = 0; c < ROW_FIELDS; c++) {
        double sum = 0.0;
        int k = 0;
        for (int i = 0; i < n; i++) {
            double v;
            memcpy(&v, (const char *)&rows[i] + c * sizeof(double), sizeof v);
            if (isfinite(v)) sum += v, k++;
        }
        col[c] = k ? sum / k : NAN;
    }
    memcpy(out, col, sizeof *out);
}

double report_points(double share)
{
    return round(share * 1000.0) / 10.0;
}

/* Comparisons on one-decimal numbers: a tolerance well below 0.05 absorbs the binary error. */
static int at_least(double points, double bar)
{
    return points >= bar - 1e-6;
}

void report_verdict_of(const struct report_data *d, struct report_verdict *v)
{
    memset(v, 0, sizeof *v);
    v->mm_worst = v->gt_worst = INFINITY;
    double sum = 0.0;
    int mm_numbers = 1, gt_ran = 0;
    for (int i = 0; i < d->n_seeds; i++) {
        struct report_row r;
        report_row_of(&d->seeds[i], &r);
        /* Sums of unrounded shares; the mean is rounded once, as the table's mean row prints it. */
        if (!isfinite(r.mm_delta)) mm_numbers = 0;
        else {
            sum += r.mm_delta;
            double pts = report_points(r.mm_delta);
            if (pts < v->mm_worst) v->mm_worst = pts, v->mm_worst_seed = d->seeds[i].seed;
        }
        if (!d->seeds[i].ground_truth.present) {
            v->gt_missing++;
            continue;
        }
        gt_ran++;
        double gt = isfinite(r.gt_delta) ? report_points(r.gt_delta) : -INFINITY;
        if (gt < v->gt_worst) v->gt_worst = gt, v->gt_worst_seed = d->seeds[i].seed;
    }
    v->mm_mean = mm_numbers && d->n_seeds ? report_points(sum / d->n_seeds) : NAN;
    if (!isfinite(v->mm_worst)) v->mm_worst = NAN;
    v->mmupt = isfinite(v->mm_mean) && at_least(v->mm_mean, REPORT_MMUPT_MEAN_BAR) &&
                       at_least(v->mm_worst, REPORT_MMUPT_WORST_BAR)
                   ? REPORT_MET
                   : REPORT_NOT_MET;
    if (gt_ran == 0) {
        v->gt = REPORT_NOT_RUN;
        v->gt_worst = NAN;
        v->gt_missing = 0;
    } else {
        if (!isfinite(v->gt_worst)) v->gt_worst = NAN;
        v->gt = v->gt_missing == 0 && isfinite(v->gt_worst) && at_least(v->gt_worst, REPORT_GT_BAR) ? REPORT_MET
                                                                                                 : REPORT_NOT_MET;
    }
}
