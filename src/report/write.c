/* report.md: what the quickstart measured, written from the run directory's files alone.
 *
 * The report has, in order: the Run section (run.tsv as given: command, machine, times, model hash);
 * a summary table with one row per seed and a mean row - the warm start's greedy accuracy, pass@1 and
 * maj@G on the test split, the headroom maj@G - greedy, greedy accuracy after MM-UPT and after
 * ground-truth GRPO with their deltas, how the vote's agreement with the hidden labels and the share
 * of unanimous groups moved during MM-UPT training, and the wall time; the verdict against the
 * quickstart's bars (MM-UPT: mean delta >= +5.0 points and no seed below -3.0; ground-truth GRPO:
 * >= +10.0 on every seed), computed from the printed numbers, with a sentence for every seed where
 * MM-UPT lost accuracy; per-kind accuracy per seed; per-run training metrics (steps, selected step,
 * start and end windows); the phase times; the figure; and a legend of the columns.
 *
 * A run with MM-UPT on self-generated questions (every seed's synth.json) adds that run beside MM-UPT
 * on the original questions wherever MM-UPT appears, the synth counts to the Run section and a
 * sentence per seed comparing the two deltas; a run without it reads exactly as before. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mmupt/report.h"

/* "71.3" for a share, "-" for no number. */
static const char *pct(char *buf, double share)
{
    if (!isfinite(share)) return "-";
    snprintf(buf, 16, "%.1f", report_points(share) + 0.0);
    return buf;
}

/* "+6.5" / "-1.7" points, "-" for no number; a rounded zero prints as "+0.0", never "-0.0". */
static const char *delta(char *buf, double share)
{
    if (!isfinite(share)) return "-";
    double p = report_points(share);
    snprintf(buf, 16, "%+.1f", p == 0.0 ? 0.0 : p);
    return buf;
}

/* "77.8 (+6.5)": an accuracy after training and its change from the base. */
static const char *with_delta(char *buf, double after, double d)
{
    char a[16], b[16];
    if (!isfinite(after)) return "-";
    snprintf(buf, 40, "%s (%s)", pct(a, after), delta(b, d));
    return buf;
}

static const char *start_end(char *buf, double a, double b)
{
    char x[16], y[16];
    if (!isfinite(a) && !isfinite(b)) return "-";
    snprintf(buf, 40, "%s -> %s", pct(x, a), pct(y, b));
    return buf;
}

/* Text from the run's files inside a table cell: '|' and markdown's active characters escaped,
 * control characters (a line break would end the row) as spaces. */
static void cell(FILE *f, const char *s)
{
    for (; *s; s++) {
        if (strchr("\\|*_`<>[]", *s)) fputc('\\', f);
        fputc((unsigned char)*s < 0x20 || *s == 0x7f ? ' ' : *s, f);
    }
}

static int same_g(const struct report_data *d)
{
    for (int i = 1; i < d->n_seeds; i++)
        if (d->seeds[i].base.G != d->seeds[0].base.G) return 0;
    return 1;
}

static void run_section(FILE *f, const struct report_data *d, const char *run_dir)
{
    fputs("# MM-UPT quickstart report\n\nWritten by `mmupt report` from the run directory ", f);
    cell(f, run_dir);
    fputs(". Every number below is read from the run's files (evaluations, training metrics, phase times).\n\n"
          "## Run\n\n| key | value |\n|---|---|\n", f);
    for (int i = 0; i < d->n_info; i++) {
        fputs("| ", f);
        cell(f, d->info[i].key);
        fputs(" | ", f);
        cell(f, d->info[i].value);
        fputs(" |\n", f);
    }
    if (d->n_info == 0) fputs("| (run.tsv is empty) | |\n", f);
}

/* Per seed, what `mmupt synth` kept of the questions the warm start wrote (reasons with no rejection
 * left out). */
static void synth_facts(FILE *f, const struct report_data *d)
{
    fputs("\nSelf-generated questions per seed (`mmupt synth`, seed-N/synth\\_data.json; a rejected candidate counts "
          "under the first filter it failed):\n\n", f);
    for (int i = 0; i < d->n_seeds; i++) {
        const struct report_synth_data *s = &d->seeds[i].synth_data;
        fprintf(f, "- seed %lld: self-generated questions: %lld kept of %lld candidates (rejected: ",
                (long long)d->seeds[i].seed, (long long)s->kept, (long long)s->candidates);
        const char *sep = "";
        for (int r = 0; r < s->n_reasons; r++) {
            if (s->reasons[r].n == 0) continue;
            fputs(sep, f);
            cell(f, s->reasons[r].name);
            fprintf(f, " %lld", (long long)s->reasons[r].n);
            sep = ", ";
        }
        fprintf(f, "%s), from %lld items.\n", *sep ? "" : "none", (long long)s->items_used);
    }
}

/* "MM-UPT, self-generated questions (direct)": the mode every seed's synth used. */
static void synth_title(FILE *f, const struct report_data *d)
{
    const char *mode = d->seeds[0].synth_data.mode;
    for (int i = 1; i < d->n_seeds; i++)
        if (strcmp(d->seeds[i].synth_data.mode, mode) != 0) mode = "modes differ per seed";
    fputs("MM-UPT, self-generated questions (", f);
    cell(f, mode);
    fputc(')', f);
}

/* gt_ran: whether ground-truth GRPO ran (for the mean row: on any seed); "-" then means a null.
 * synth: the run has MM-UPT on self-generated questions (its maj@G, and MM-UPT's, get columns). */
static void summary_row(FILE *f, const char *name, const struct report_row *r, int gt_ran, const char *g_note,
                        int synth)
{
    char a[16], b[16], c[16], h[16], mm[40], p[16], gt[40], l[40], u[40];
    fprintf(f, "| %s | %s | %s | %s%s | %s | %s | %s |", name, pct(a, r->base_greedy), pct(b, r->base_pass1),
            pct(c, r->base_maj), g_note, delta(h, r->headroom), with_delta(mm, r->mm_greedy, r->mm_delta),
            pct(p, r->mm_pass1));
    if (synth)
        fprintf(f, " %s | %s | %s | %s |", pct(a, r->mm_maj), with_delta(mm, r->sy_greedy, r->sy_delta),
                pct(b, r->sy_pass1), pct(c, r->sy_maj));
    fprintf(f, " %s | %s | %s | %.0f |\n", gt_ran ? with_delta(gt, r->gt_greedy, r->gt_delta) : "not run",
            start_end(l, r->label_start, r->label_end), start_end(u, r->uniform_start, r->uniform_end), r->wall_s);
}

static void summary(FILE *f, const struct report_data *d)
{
    int uniform_g = same_g(d), gt_any = 0;
    for (int i = 0; i < d->n_seeds; i++) gt_any |= d->seeds[i].ground_truth.present;
    char maj[32] = "maj@G";
    if (uniform_g) snprintf(maj, sizeof maj, "maj@%d", d->seeds[0].base.G);
    fprintf(f, "\n## Accuracy on the test split\n\nPercent; deltas and headroom in points; see the legend at the "
               "end.\n\n| seed | base greedy | base pass@1 | base %s | headroom | ", maj);
    if (d->synth) {
        fprintf(f, "MM-UPT, original questions: greedy (delta) | original: pass@1 | original: %s | ", maj);
        synth_title(f, d);
        fprintf(f, ": greedy (delta) | self-generated: pass@1 | self-generated: %s | ", maj);
    } else {
        fputs("MM-UPT greedy (delta) | MM-UPT pass@1 | ", f);
    }
    fputs("GT-GRPO greedy (delta) | vote label accuracy start -> end | unanimous groups start -> end | wall s |\n"
          "|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|", f);
    fputs(d->synth ? "--:|--:|--:|--:|\n" : "\n", f);
    struct report_row *rows = mmupt_xcalloc((size_t)d->n_seeds, sizeof *rows), mean;
    for (int i = 0; i < d->n_seeds; i++) {
        char name[32], note[32] = "";
        report_row_of(&d->seeds[i], &rows[i]);
        snprintf(name, sizeof name, "%lld", (long long)d->seeds[i].seed);
        if (!uniform_g) snprintf(note, sizeof note, " (G=%d)", d->seeds[i].base.G);
        summary_row(f, name, &rows[i], d->seeds[i].ground_truth.present, note, d->synth);
    }
    report_row_mean(rows, d->n_seeds, &mean);
    summary_row(f, "**mean**", &mean, gt_any, "", d->synth);
    free(rows);
}

static void verdict_mmupt(FILE *f, const struct report_data *d, const struct report_verdict *v)
{
    fprintf(f, "- **MM-UPT** (majority-vote reward, no labels): **%s**. ", v->mmupt == REPORT_MET ? "met" : "NOT met");
    if (!isfinite(v->mm_mean)) {
        fputs("A seed has no greedy accuracy before or after training (a null in its evaluation), so the "
              "mean delta cannot be computed", f);
    } else {
        fprintf(f, "Mean greedy delta %+.1f points over %d seed%s (bar: at least %+.1f%s)", v->mm_mean + 0.0,
                d->n_seeds, d->n_seeds == 1 ? "" : "s", REPORT_MMUPT_MEAN_BAR,
                v->mm_mean >= REPORT_MMUPT_MEAN_BAR - 1e-6 ? "" : ", missed");
    }
    if (isfinite(v->mm_worst))
        fprintf(f, "; lowest seed %lld at %+.1f points (bar: none below %+.1f%s)", (long long)v->mm_worst_seed,
                v->mm_worst + 0.0, REPORT_MMUPT_WORST_BAR,
                v->mm_worst >= REPORT_MMUPT_WORST_BAR - 1e-6 ? "" : ", missed");
    fputs(".\n", f);
}

static void verdict_gt(FILE *f, const struct report_data *d, const struct report_verdict *v)
{
    if (v->gt == REPORT_NOT_RUN) {
        fputs("- **Ground-truth GRPO** (true answers as reward, the supervised reference): **not run** (no "
              "ground_truth.json in any seed directory).\n", f);
        return;
    }
    fprintf(f, "- **Ground-truth GRPO** (true answers as reward, the supervised reference): **%s**. Greedy delta per "
               "seed (bar: at least %+.1f on every seed):",
            v->gt == REPORT_MET ? "met" : "NOT met", REPORT_GT_BAR);
    const char *sep = " ";
    for (int i = 0; i < d->n_seeds; i++, sep = ", ") {
        const struct report_seed *s = &d->seeds[i];
        char b[16];
        struct report_row r;
        report_row_of(s, &r);
        fprintf(f, "%sseed %lld %s", sep, (long long)s->seed,
                !s->ground_truth.present ? "not run" : isfinite(r.gt_delta) ? delta(b, r.gt_delta) : "no number");
    }
    if (v->gt == REPORT_NOT_MET && isfinite(v->gt_worst) && v->gt_worst < REPORT_GT_BAR - 1e-6)
        fprintf(f, "; lowest: seed %lld at %+.1f", (long long)v->gt_worst_seed, v->gt_worst + 0.0);
    if (v->gt_missing) fprintf(f, "; not run on %d seed%s", v->gt_missing, v->gt_missing == 1 ? "" : "s");
    fputs(".\n", f);
}

static void verdict(FILE *f, const struct report_data *d)
{
    struct report_verdict v;
    report_verdict_of(d, &v);
    fputs("\n## Verdict\n\nThe bars are checked on the numbers as printed above (one decimal).\n\n", f);
    verdict_mmupt(f, d, &v);
    verdict_gt(f, d, &v);
    int lost = 0;
    for (int i = 0; i < d->n_seeds; i++) {
        struct report_row r;
        report_row_of(&d->seeds[i], &r);
        if (!isfinite(r.mm_delta) || report_points(r.mm_delta) >= 0.0) continue;
        char a[16], b[16], c[16];
        fprintf(f, "%sMM-UPT lost accuracy on seed %lld: greedy %s -> %s (%s points).\n", lost ? "" : "\n",
                (long long)d->seeds[i].seed, pct(a, r.base_greedy), pct(b, r.mm_greedy), delta(c, r.mm_delta));
        lost++;
    }
    if (!lost) fputs("\nMM-UPT lost no greedy accuracy on any seed.\n", f);
}

/* One comparison: the two greedy deltas as printed and their difference, said in words. */
static void compare_line(FILE *f, const char *who, double sy_delta, double mm_delta)
{
    char a[16], b[16];
    fprintf(f, "- %s: greedy delta %s points on self-generated questions against %s on the original questions", who,
            delta(a, sy_delta), delta(b, mm_delta));
    if (!isfinite(sy_delta) || !isfinite(mm_delta)) {
        fputs(": no difference to give (a null in an evaluation).\n", f);
        return;
    }
    /* the difference of the printed numbers, so the sentence agrees with the table */
    double diff = round((report_points(sy_delta) - report_points(mm_delta)) * 10.0) / 10.0;
    if (diff == 0.0) fputs(": the same.\n", f);
    else fprintf(f, ": %.1f points %s.\n", fabs(diff), diff > 0 ? "higher" : "lower");
}

static void synth_compare(FILE *f, const struct report_data *d)
{
    fputs("\n## MM-UPT on self-generated questions\n\nThe same MM-UPT training on questions the warm start wrote "
          "itself (`mmupt synth`) instead of the dataset's questions, evaluated on the same test split; the difference "
          "is self-generated minus original, in points of greedy accuracy. No bar applies to it.\n\n", f);
    struct report_row *rows = mmupt_xcalloc((size_t)d->n_seeds, sizeof *rows), mean;
    for (int i = 0; i < d->n_seeds; i++) {
        char who[32];
        report_row_of(&d->seeds[i], &rows[i]);
        snprintf(who, sizeof who, "seed %lld", (long long)d->seeds[i].seed);
        compare_line(f, who, rows[i].sy_delta, rows[i].mm_delta);
    }
    report_row_mean(rows, d->n_seeds, &mean);
    if (d->n_seeds > 1) compare_line(f, "mean over the seeds", mean.sy_delta, mean.mm_delta);
    free(rows);
}

static const struct report_source *find_source(const struct report_eval *e, const char *name)
{
    for (int i = 0; i < e->n_sources; i++)
        if (strcmp(e->sources[i].name, name) == 0) return &e->sources[i];
    return NULL;
}

static void kind_row(FILE *f, const char *name, const struct report_seed *s)
{
    const struct report_source *b = find_source(&s->base, name), *mm = find_source(&s->majority.eval, name);
    const struct report_source *gt = s->ground_truth.present ? find_source(&s->ground_truth.eval, name) : NULL;
    const struct report_source *sy = s->synth.present ? find_source(&s->synth.eval, name) : NULL;
    double bg = b ? b->greedy : NAN;
    char items[24] = "-", x[16], y[16], m[40], g[40];
    if (b) snprintf(items, sizeof items, "%lld", (long long)b->items);
    fputs("| ", f);
    cell(f, name);
    fprintf(f, " | %s | %s | %s | %s |", items, pct(x, bg), pct(y, b ? b->maj : NAN),
            mm ? with_delta(m, mm->greedy, mm->greedy - bg) : "-");
    if (s->synth.present) fprintf(f, " %s |", sy ? with_delta(m, sy->greedy, sy->greedy - bg) : "-");
    fprintf(f, " %s |\n", !s->ground_truth.present ? "not run" : gt ? with_delta(g, gt->greedy, gt->greedy - bg) : "-");
}

/* Per seed, the kinds of the base evaluation, then any only the trained models' evaluations have. */
static void per_kind(FILE *f, const struct report_data *d)
{
    fputs("\n## Greedy accuracy per kind of question\n", f);
    for (int i = 0; i < d->n_seeds; i++) {
        const struct report_seed *s = &d->seeds[i];
        fprintf(f, "\n### seed %lld\n\n| kind | items | base greedy | base maj@%d | MM-UPT greedy (delta) | %s"
                   "GT-GRPO greedy (delta) |\n|---|--:|--:|--:|--:|--:|%s\n",
                (long long)s->seed, s->base.G, s->synth.present ? "MM-UPT self-generated greedy (delta) | " : "",
                s->synth.present ? "--:|" : "");
        for (int k = 0; k < s->base.n_sources; k++) kind_row(f, s->base.sources[k].name, s);
        /* then kinds only a trained model's evaluation has, each once */
        const struct report_eval *others[3] = {&s->majority.eval,
                                               s->ground_truth.present ? &s->ground_truth.eval : NULL,
                                               s->synth.present ? &s->synth.eval : NULL};
        for (int o = 0; o < 3; o++)
            for (int k = 0; others[o] && k < others[o]->n_sources; k++) {
                const char *name = others[o]->sources[k].name;
                int shown = find_source(&s->base, name) != NULL;
                for (int e = 0; e < o; e++) shown |= others[e] && find_source(others[e], name);
                if (!shown) kind_row(f, name, s);
            }
    }
}

/* Validation greedy pass@1 during training: "first -> last (best B at step S)". */
static const char *val_cell(char *buf, const struct report_metrics *m)
{
    double first = NAN, last = NAN, best = NAN;
    int64_t best_step = -1;
    for (int i = 0; i < m->n; i++) {
        double v = m->pts[i].v[REPORT_VAL_GREEDY];
        if (!isfinite(v)) continue;
        if (!isfinite(first)) first = v;
        last = v;
        if (!(v <= best)) best = v, best_step = m->pts[i].step;
    }
    if (!isfinite(first)) return "-";
    char a[16], b[16], c[16];
    snprintf(buf, 96, "%s -> %s (best %s at step %lld)", pct(a, first), pct(b, last), pct(c, best),
             (long long)best_step);
    return buf;
}

static void run_row(FILE *f, const struct report_seed *s, const char *name, const struct report_run *r)
{
    const struct report_metrics *m = &r->metrics;
    char last[24] = "-", sel[24] = "-", a[40], b[40], c[40], u[40], v[96];
    if (m->n) snprintf(last, sizeof last, "%lld", (long long)m->pts[m->n - 1].step);
    if (r->selected_step >= 0) snprintf(sel, sizeof sel, "%lld", (long long)r->selected_step);
    double w[REPORT_N_KEYS][2];
    for (int k = 0; k < REPORT_N_KEYS; k++)
        for (int e = 0; e < 2; e++) w[k][e] = report_window_mean(m, (enum report_key)k, e);
    fprintf(f, "| %lld | %s | %d | %s | %s | %s | %s | %s | %s | %s |\n", (long long)s->seed, name, m->n, last, sel,
            start_end(a, w[REPORT_REWARD_MEAN][0], w[REPORT_REWARD_MEAN][1]),
            start_end(b, w[REPORT_MAJORITY_RATIO][0], w[REPORT_MAJORITY_RATIO][1]),
            start_end(c, w[REPORT_LABEL_ACCURACY][0], w[REPORT_LABEL_ACCURACY][1]),
            start_end(u, w[REPORT_UNIFORM_GROUPS][0], w[REPORT_UNIFORM_GROUPS][1]), val_cell(v, m));
}

static void training(FILE *f, const struct report_data *d)
{
    fputs("\n## Training runs\n\n| seed | run | steps logged | last step | selected step | reward mean start -> end "
          "| majority ratio start -> end | vote label accuracy start -> end | unanimous groups start -> end | "
          "validation greedy pass@1 |\n|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|\n", f);
    for (int i = 0; i < d->n_seeds; i++) {
        run_row(f, &d->seeds[i], "MM-UPT", &d->seeds[i].majority);
        if (d->seeds[i].synth.present) run_row(f, &d->seeds[i], "MM-UPT self-generated", &d->seeds[i].synth);
        if (d->seeds[i].ground_truth.present) run_row(f, &d->seeds[i], "GT-GRPO", &d->seeds[i].ground_truth);
    }
}

/* Phase times: one column per phase name, in the order the seeds first list them. */
static void times(FILE *f, const struct report_data *d)
{
    const char **names = mmupt_xcalloc((size_t)d->n_seeds * REPORT_MAX_PHASES, sizeof *names);
    int n = 0;
    for (int i = 0; i < d->n_seeds; i++)
        for (int p = 0; p < d->seeds[i].n_phases; p++) {
            int k = 0;
            while (k < n && strcmp(names[k], d->seeds[i].phases[p].name) != 0) k++;
            if (k == n) names[n++] = d->seeds[i].phases[p].name;
        }
    fputs("\n## Time per phase (seconds)\n\n| seed |", f);
    for (int k = 0; k < n; k++) {
        fputc(' ', f);
        cell(f, names[k]);
        fputs(" |", f);
    }
    fputs(" total |\n|--:|", f);
    for (int k = 0; k <= n; k++) fputs("--:|", f);
    fputc('\n', f);
    for (int i = 0; i < d->n_seeds; i++) {
        const struct report_seed *s = &d->seeds[i];
        double total = 0.0;
        fprintf(f, "| %lld |", (long long)s->seed);
        for (int k = 0; k < n; k++) {
            int p = 0;
            while (p < s->n_phases && strcmp(s->phases[p].name, names[k]) != 0) p++;
            if (p == s->n_phases) fputs(" - |", f);
            else fprintf(f, " %.1f |", s->phases[p].seconds), total += s->phases[p].seconds;
        }
        fprintf(f, " %.1f |\n", total);
    }
    free(names);
}

static void legend(FILE *f, const char *png_ref, int synth)
{
    fputs("\n## Curves\n\n![training curves: majority ratio, vote label accuracy, reward, validation greedy pass@1](",
          f);
    for (const char *s = png_ref; *s; s++) fprintf(f, *s == ' ' || *s == '(' || *s == ')' ? "%%%02X" : "%c", *s);
    fputs(")\n\nThe figure (", f);
    cell(f, png_ref);
    fputs(") plots, per training step, the majority ratio, the vote label accuracy, the mean reward and the validation "
          "greedy pass@1; MM-UPT runs in blues and greens, ground-truth GRPO runs in oranges and reds, ", f);
    if (synth)
        fputs("MM-UPT runs on self-generated questions in purples and pinks (\"self\" in the figure's legend), ", f);
    fputs("one line per seed.\n\n## Legend\n\n"
          "- **base**: the warm-start model (supervised warm-up), before any GRPO. **MM-UPT**: GRPO whose reward is "
          "agreement with the majority vote over the model's own G samples; it never sees a label. **GT-GRPO**: the "
          "same training with the true answer as reward (needs labels; the upper reference).\n", f);
    if (synth)
        fputs("- **MM-UPT, self-generated questions** (the synth mode in parentheses): the same MM-UPT training, but "
              "on questions the warm start wrote itself for the training images (`mmupt synth`, docs/synth.md), "
              "filtered and never labelled; **original questions**: MM-UPT on the dataset's own questions. "
              "**self-generated minus original**: the difference of the two greedy deltas, in points.\n", f);
    fputs("- **greedy**: accuracy of the greedy answer on the test split. **pass@1**: mean accuracy of the G samples "
          "at the evaluation's temperature. **maj@G**: accuracy of the majority vote over G samples.\n"
          "- **headroom**: base maj@G minus base greedy, in points: how much better the model's own vote is than its "
          "greedy answer, the gain majority-vote training can hope to move into greedy decoding.\n"
          "- **delta**: greedy accuracy after training minus base greedy accuracy, in percentage points.\n"
          "- **vote label accuracy**: share of the training groups whose majority answer equals the hidden true "
          "answer (metric reward/label_accuracy; the labels are read only for this metric, never for the reward). "
          "Falling during MM-UPT means the vote has started to reinforce wrong answers.\n"
          "- **unanimous groups**: share of training groups in which every sample got the same reward "
          "(reward/uniform_groups): such groups carry no learning signal; rising means the samples agree more.\n"
          "- **start -> end**: mean over the first and the last k logged steps that have the metric, "
          "k = max(1, min(5, n/4)) for n such steps.\n"
          "- **majority ratio**: mean share of a group's samples that agree with its majority answer.\n"
          "- **selected step**: the step whose weights were evaluated (chosen on the validation split), where the "
          "run recorded one. **wall s**: the sum of the seed's phase times. **-**: no number in the run's files.\n",
          f);
}

char *report_markdown(const struct report_data *d, const char *run_dir, const char *png_ref, size_t *len)
{
    char *buf = NULL;
    FILE *f = open_memstream(&buf, len);
    if (!f) MMUPT_DIE("open_memstream failed");
    run_section(f, d, run_dir);
    if (d->synth) synth_facts(f, d);
    summary(f, d);
    verdict(f, d);
    if (d->synth) synth_compare(f, d);
    per_kind(f, d);
    training(f, d);
    times(f, d);
    legend(f, png_ref, d->synth);
    if (fclose(f) != 0) MMUPT_DIE("writing the report into memory failed");
    return buf;
}
