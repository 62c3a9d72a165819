/* The evaluation's outputs: a markdown table for people, one JSON object for scripts (see eval.h). */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mmupt/eval.h"
#include "mmupt/strutil.h"

static const char *vote_name(enum reward_vote_mode v)
{
    return v == REWARD_VOTE_PAPER ? "paper" : "equivalence";
}

/* A share as "0.830", a difference as "+0.100"; "-" where the row has nothing to measure. */
static void fmt(char *out, size_t n, double v, int sign)
{
    if (!isfinite(v)) snprintf(out, n, "-");
    else snprintf(out, n, sign ? "%+.3f" : "%.3f", v);
}

/* The table skips columns that repeat another: pass@1 is the pass@1-at-T column, maj@G the maj@G
 * column (the JSON keeps every k). */
static int show_pass_k(const struct eval_result *r, int i) { return r->k[i] != 1; }
static int show_maj_k(const struct eval_result *r, int i) { return r->k[i] != r->G; }

static void table_row(FILE *f, const struct eval_result *r, const char *name, const struct eval_counts *c)
{
    struct eval_metrics m;
    eval_metrics_of(c, &m);
    char g[16], p[16], mj[16], pg[16], h[16], gpf[16], spf[16], gl[16], sl[16], v[16];
    fmt(g, sizeof g, m.greedy_pass1, 0);
    fmt(p, sizeof p, m.pass1, 0);
    fmt(mj, sizeof mj, m.maj, 0);
    fmt(pg, sizeof pg, m.pass_g, 0);
    fmt(h, sizeof h, m.headroom, 1);
    fmt(gpf, sizeof gpf, m.greedy_parse_failure, 0);
    fmt(spf, sizeof spf, m.sample_parse_failure, 0);
    snprintf(gl, sizeof gl, isfinite(m.greedy_length) ? "%.1f" : "-", m.greedy_length);
    snprintf(sl, sizeof sl, isfinite(m.sample_length) ? "%.1f" : "-", m.sample_length);
    fprintf(f, "| %s | %lld | %s | %s |", name, (long long)m.items, g, p);
    for (int i = 0; i < r->n_k; i++)
        if (show_pass_k(r, i)) fmt(v, sizeof v, m.pass_at_k[i], 0), fprintf(f, " %s |", v);
    for (int i = 0; i < r->n_k; i++)
        if (show_maj_k(r, i)) fmt(v, sizeof v, m.maj_at_k[i], 0), fprintf(f, " %s |", v);
    fprintf(f, " %s | %s | %s | %s / %s | %s / %s |\n", mj, pg, h, gpf, spf, gl, sl);
}

void eval_write_table(FILE *f, const struct eval_result *r)
{
    char t[32] = "sampled";
    if (r->temperature > 0) snprintf(t, sizeof t, "T=%g", (double)r->temperature);
    fprintf(f, "| source | items | greedy pass@1 | pass@1 (%s) |", t);
    int cols = 0;
    for (int i = 0; i < r->n_k; i++)
        if (show_pass_k(r, i)) fprintf(f, " pass@%d |", r->k[i]), cols++;
    for (int i = 0; i < r->n_k; i++)
        if (show_maj_k(r, i)) fprintf(f, " maj@%d |", r->k[i]), cols++;
    fprintf(f, " maj@%d (%s vote) | pass@%d | maj - greedy | parse failures (greedy / sampled) | tokens (greedy / "
               "sampled) |\n", r->G, vote_name(r->vote), r->G);
    fprintf(f, "|---|--:|--:|--:|");
    for (int i = 0; i < cols; i++) fprintf(f, "--:|");
    fprintf(f, "--:|--:|--:|--:|--:|\n");
    table_row(f, r, "**all**", &r->all);
    /* A source name is data: a '|' or a line break in it would break the table's rows. */
    for (int i = 0; i < r->n_sources; i++) {
        char name[80];
        size_t k = 0;
        for (const char *s = r->sources[i].source; *s && k + 4 < sizeof name; s++)
            name[k++] = *s == '|' || *s == '\n' || *s == '\r' ? ' ' : *s;
        if (strlen(r->sources[i].source) > k) memcpy(name + k, "...", 3), k += 3;
        name[k] = '\0';
        table_row(f, r, name, &r->sources[i]);
    }
}

/* json_real refuses NaN and infinities: those become null, as in the metrics files. */
static json_t *num(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

static json_t *row_json(const struct eval_counts *c)
{
    struct eval_metrics m;
    eval_metrics_of(c, &m);
    json_t *o = json_object();
    json_object_set_new(o, "items", json_integer(m.items));
    json_object_set_new(o, "samples", json_integer(m.samples));
    json_object_set_new(o, "greedy_pass1", num(m.greedy_pass1));
    json_object_set_new(o, "pass1", num(m.pass1));
    json_object_set_new(o, "maj", num(m.maj));
    json_object_set_new(o, "pass_g", num(m.pass_g));
    json_object_set_new(o, "headroom", num(m.headroom));
    json_object_set_new(o, "greedy_parse_failure", num(m.greedy_parse_failure));
    json_object_set_new(o, "sample_parse_failure", num(m.sample_parse_failure));
    json_object_set_new(o, "greedy_length", num(m.greedy_length));
    json_object_set_new(o, "sample_length", num(m.sample_length));
    json_object_set_new(o, "majority_share", num(m.majority_share));
    json_object_set_new(o, "greedy_correct", json_integer(c->greedy_correct));
    json_object_set_new(o, "sample_correct", json_integer(c->sample_correct));
    json_object_set_new(o, "maj_correct", json_integer(c->maj_correct));
    json_object_set_new(o, "pass_g_correct", json_integer(c->any_correct));
    json_object_set_new(o, "greedy_no_answer", json_integer(c->greedy_no_answer));
    json_object_set_new(o, "sample_no_answer", json_integer(c->sample_no_answer));
    json_object_set_new(o, "greedy_items", json_integer(c->greedy_items));
    json_object_set_new(o, "mc_items", json_integer(m.mc_items));
    /* Keyed by k as text: {"1": 0.5, "4": 0.8}. */
    json_t *pk = json_object(), *mk = json_object();
    for (int i = 0; i < m.n_k; i++) {
        char key[16];
        snprintf(key, sizeof key, "%d", m.k[i]);
        json_object_set_new(pk, key, num(m.pass_at_k[i]));
        json_object_set_new(mk, key, num(m.maj_at_k[i]));
    }
    json_object_set_new(o, "pass_at_k", pk);
    json_object_set_new(o, "maj_at_k", mk);
    return o;
}

/* A string from the outside (a path, a source name) as JSON: jansson refuses invalid UTF-8. */
static json_t *str_or_null(const char *s)
{
    json_t *j = s ? json_string(s) : NULL;
    return j ? j : json_null();
}

static json_t *settings_json(const struct eval_config *c)
{
    json_t *o = json_object();
    json_object_set_new(o, "G", json_integer(c->G));
    json_object_set_new(o, "n", json_integer(c->G));
    json_t *k = json_array();
    for (int i = 0; i < c->n_k; i++) json_array_append_new(k, json_integer(c->k[i]));
    json_object_set_new(o, "k", k);
    json_object_set_new(o, "greedy", json_boolean(c->greedy));
    json_object_set_new(o, "temperature", json_real(c->temperature));
    json_object_set_new(o, "top_p", json_real(c->top_p));
    json_object_set_new(o, "top_k", json_integer(c->top_k));
    json_object_set_new(o, "max_new_tokens", json_integer(c->max_new));
    json_object_set_new(o, "limit", json_integer(c->limit));
    /* As a string: a 64-bit seed does not fit a JSON number that every reader takes exactly. */
    char seed[32];
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)c->seed);
    json_object_set_new(o, "seed", json_string(seed));
    json_object_set_new(o, "vote", json_string(vote_name(c->vote)));
    json_object_set_new(o, "format_prompt", str_or_null(c->format_prompt ? c->format_prompt : ""));
    json_object_set_new(o, "min_pixels", json_integer(c->min_pixels));
    json_object_set_new(o, "max_pixels", json_integer(c->max_pixels));
    return o;
}

static json_t *result_json(const struct eval_config *c, const struct eval_result *r, const char *model_dir,
                           const char *data_path)
{
    json_t *o = json_object();
    json_object_set_new(o, "model", str_or_null(model_dir));
    json_object_set_new(o, "data", str_or_null(data_path));
    json_object_set_new(o, "settings", settings_json(c));
    json_t *counts = json_object();
    json_object_set_new(counts, "visited", json_integer(r->visited));
    json_object_set_new(counts, "graded", json_integer(r->all.items));
    json_object_set_new(counts, "skipped_no_answer", json_integer(r->skipped_no_answer));
    json_object_set_new(counts, "skipped_bad", json_integer(r->skipped_bad));
    json_object_set_new(o, "counts", counts);
    json_object_set_new(o, "overall", row_json(&r->all));
    json_t *by = json_object();
    for (int i = 0; i < r->n_sources; i++) json_object_set_new(by, r->sources[i].source, row_json(&r->sources[i]));
    json_object_set_new(o, "by_source", by);
    json_object_set_new(o, "seconds", num(r->seconds));
    return o;
}

int eval_write_json(const char *path, const struct eval_config *c, const struct eval_result *r, const char *model_dir,
                    const char *data_path, struct mmupt_err *err)
{
    json_t *o = result_json(c, r, model_dir, data_path);
    size_t flags = JSON_INDENT(2) | JSON_REAL_PRECISION(17);
    int rc = 0;
    if (strcmp(path, "-") == 0) {
        if (json_dumpf(o, stdout, flags) || fputc('\n', stdout) == EOF || fflush(stdout))
            rc = mmupt_fail(err, "cannot write the JSON result to standard output");
    } else {
        /* Written beside the target and renamed, so a reader never sees half a file. */
        char *text = json_dumps(o, flags);
        if (!text) {
            rc = mmupt_fail(err, "%s: cannot format the JSON result", path);
        } else {
            size_t n = strlen(text);
            char *line = mmupt_xmalloc(n + 1); /* with the final newline, as on standard output */
            memcpy(line, text, n);
            line[n] = '\n';
            rc = file_write_atomic(path, line, n + 1, err);
            free(line);
        }
        free(text);
    }
    json_decref(o);
    return rc;
}

/* The settings in one line, above the markdown table: enough to reproduce the numbers. */
static void settings_line(FILE *f, const struct eval_config *c, const struct eval_result *r, const char *model_dir,
                          const char *data_path)
{
    fprintf(f, "Model `%s` on `%s`: n=%d samples per item at T=%g, top_p=%g, max_new_tokens=%d, k=", model_dir ? model_dir : "?",
            data_path ? data_path : "?", c->G, (double)c->temperature, (double)c->top_p, c->max_new);
    for (int i = 0; i < c->n_k; i++) fprintf(f, "%s%d", i ? "," : "", c->k[i]);
    fprintf(f, ", greedy %s, %s vote, seed %llu. %lld items graded (%lld multiple choice), %lld skipped (%lld without "
               "an answer).\n",
            c->greedy ? "on" : "off", vote_name(c->vote), (unsigned long long)c->seed, (long long)r->all.items,
            (long long)r->all.mc_items, (long long)(r->skipped_no_answer + r->skipped_bad),
            (long long)r->skipped_no_answer);
}

int eval_write_markdown(const char *path, const struct eval_config *c, const struct eval_result *r,
                        const char *model_dir, const char *data_path, struct mmupt_err *err)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f) MMUPT_DIE("out of memory for the markdown table");
    settings_line(f, c, r, model_dir, data_path);
    fputc('\n', f);
    eval_write_table(f, r);
    fclose(f);
    int rc = 0;
    if (strcmp(path, "-") == 0) {
        if (fwrite(text, 1, len, stdout) != len || fflush(stdout))
            rc = mmupt_fail(err, "cannot write the markdown table to standard output");
    } else {
        rc = file_write_atomic(path, text, len, err);
    }
    free(text);
    return rc;
}
