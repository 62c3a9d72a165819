/* report.png: four panels of training curves, one line per (seed, run), drawn with src/plot. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mmupt/plot.h"
#include "mmupt/report.h"

/* MM-UPT in blues and greens, ground-truth GRPO in oranges and reds, MM-UPT on self-generated
 * questions in purples and pinks: the run reads from the hue, the seed from the shade. */
static const uint8_t mmupt_colours[][3] = {{31, 119, 180}, {44, 160, 44}, {20, 40, 140},
                                           {0, 150, 130}, {110, 190, 80}, {90, 150, 220}};
static const uint8_t gt_colours[][3] = {{255, 127, 14}, {214, 39, 40}, {170, 85, 0},
                                        {140, 20, 40}, {250, 175, 60}, {240, 90, 110}};
static const uint8_t synth_colours[][3] = {{148, 103, 189}, {227, 119, 194}, {90, 30, 130},
                                           {190, 40, 150}, {200, 160, 230}, {120, 60, 200}};
#define N_COLOURS 6
#define N_RUNS 3 /* majority, ground truth, synth */

static const char *const run_tags[N_RUNS] = {"mmupt", "gt", "self"};

static const enum report_key panel_keys[4] = {REPORT_MAJORITY_RATIO, REPORT_LABEL_ACCURACY, REPORT_REWARD_MEAN,
                                              REPORT_VAL_GREEDY};
static const char *const panel_titles[4] = {"majority ratio", "vote label accuracy", "reward (mean)",
                                            "validation greedy pass@1"};

/* One run's lines for every panel: the steps with a finite value, so sparse metrics (validation
 * every few steps, nulls) join up instead of breaking into dots. */
struct curve {
    char name[32];
    double *x[4], *y[4];
    int n[4];
};

static void curve_of(struct curve *c, const struct report_metrics *m)
{
    for (int p = 0; p < 4; p++) {
        c->x[p] = mmupt_xcalloc((size_t)m->n + 1, sizeof(double));
        c->y[p] = mmupt_xcalloc((size_t)m->n + 1, sizeof(double));
        c->n[p] = 0;
        for (int i = 0; i < m->n; i++) {
            double v = m->pts[i].v[panel_keys[p]];
            if (!isfinite(v)) continue;
            c->x[p][c->n[p]] = (double)m->pts[i].step;
            c->y[p][c->n[p]++] = v;
        }
    }
}

int report_figure(const struct report_data *d, struct img_rgb *out, struct mmupt_err *err)
{
    int n = 0;
    struct curve *curves = mmupt_xcalloc((size_t)d->n_seeds * N_RUNS, sizeof *curves);
    struct plot_series *series[4];
    for (int p = 0; p < 4; p++) series[p] = mmupt_xcalloc((size_t)d->n_seeds * N_RUNS, sizeof **series);
    /* MM-UPT, then its self-generated-question run beside it, then ground truth: per seed, as before
     * when there is no self-generated run. */
    static const int order[N_RUNS] = {0, 2, 1};
    for (int i = 0; i < d->n_seeds; i++)
        for (int o = 0; o < N_RUNS; o++) {
            int r = order[o];
            const struct report_seed *s = &d->seeds[i];
            const struct report_run *run = r == 0 ? &s->majority : r == 1 ? &s->ground_truth : &s->synth;
            if (!run->present) continue;
            struct curve *c = &curves[n];
            snprintf(c->name, sizeof c->name, "%s s%lld", run_tags[r], (long long)s->seed);
            curve_of(c, &run->metrics);
            const uint8_t *rgb = r == 0 ? mmupt_colours[i % N_COLOURS] : r == 1 ? gt_colours[i % N_COLOURS]
                                                                                 : synth_colours[i % N_COLOURS];
            for (int p = 0; p < 4; p++)
                series[p][n] = (struct plot_series){c->name, c->x[p], c->y[p], c->n[p], {rgb[0], rgb[1], rgb[2]}};
            n++;
        }
    struct plot_panel panels[4];
    for (int p = 0; p < 4; p++) panels[p] = (struct plot_panel){panel_titles[p], series[p], n, 0.0, 1.0};
    /* The legend is one row under each panel: widen the panels so every entry has ~76 px. */
    int w = 60 + 76 * n;
    w = w < 480 ? 480 : w > 2400 ? 2400 : w;
    int rc = plot_render(panels, 4, 2, w, 300, out, err);
    for (int i = 0; i < n; i++)
        for (int p = 0; p < 4; p++) free(curves[i].x[p]), free(curves[i].y[p]);
    for (int p = 0; p < 4; p++) free(series[p]);
    free(curves);
    return rc;
}
