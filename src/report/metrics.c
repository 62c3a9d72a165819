/* A trainer's metrics.jsonl as the report needs it: the step and five keys per line, and the
 * start/end window means of the summary table. */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mmupt/report.h"

const char *const report_key_names[REPORT_N_KEYS] = {
    "reward/mean", "reward/majority_ratio", "reward/uniform_groups", "reward/label_accuracy", "val/greedy_pass1",
};

void report_metrics_free(struct report_metrics *m)
{
    free(m->pts);
    memset(m, 0, sizeof *m);
}

/* Room for one more point; -1 at the line limit (the file is refused, never cut). */
static int grow(struct report_metrics *m)
{
    if (m->n < m->cap) return 0;
    if (m->cap >= REPORT_MAX_METRIC_LINES) return -1;
    int cap = m->cap ? 2 * m->cap : 64;
    if (cap > REPORT_MAX_METRIC_LINES) cap = REPORT_MAX_METRIC_LINES;
    struct report_point *p = mmupt_xmalloc((size_t)cap * sizeof *p);
    if (m->n) memcpy(p, m->pts, (size_t)m->n * sizeof *p);
    free(m->pts);
    m->pts = p;
    m->cap = cap;
    return 0;
}

/* One parsed line's fields into *pt; -1 with err naming file, line and key. */
static int read_point(const char *name, int line, const json_t *o, struct report_point *pt, struct mmupt_err *err)
{
    if (!json_is_object(o)) return mmupt_fail(err, "%s:%d: not a JSON object", name, line);
    const json_t *s = json_object_get(o, "step");
    if (!s) return mmupt_fail(err, "%s:%d: \"step\": missing", name, line);
    if (!json_is_integer(s)) return mmupt_fail(err, "%s:%d: \"step\": not an integer", name, line);
    pt->step = (int64_t)json_integer_value(s);
    if (pt->step < 0) return mmupt_fail(err, "%s:%d: \"step\": %lld is negative", name, line, (long long)pt->step);
    for (int k = 0; k < REPORT_N_KEYS; k++) {
        const json_t *v = json_object_get(o, report_key_names[k]);
        pt->v[k] = NAN;
        if (!v || json_is_null(v)) continue; /* the writer's null is a non-finite value */
        if (!json_is_number(v))
            return mmupt_fail(err, "%s:%d: \"%s\": not a number or null", name, line, report_key_names[k]);
        pt->v[k] = json_number_value(v);
    }
    return 0;
}

static int blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r') return 0;
    return 1;
}

/* One non-blank line; appends its point (after dropping history a resume replaced). */
static int parse_line(const char *name, int line, const char *s, size_t n, struct report_metrics *m,
                      struct mmupt_err *err)
{
    /* jansson lets a NUL byte pass in places; a metrics line never holds one. */
    const char *nul = memchr(s, '\0', n);
    if (nul) return mmupt_fail(err, "%s:%d:%d: invalid JSON: NUL byte", name, line, (int)(nul - s) + 1);
    json_error_t je;
    json_t *o = json_loadb(s, n, JSON_REJECT_DUPLICATES, &je);
    if (!o) return mmupt_fail(err, "%s:%d:%d: invalid JSON: %s", name, line, je.column, je.text);
    struct report_point pt;
    int rc = read_point(name, line, o, &pt, err);
    json_decref(o);
    if (rc) return -1;
    while (m->n > 0 && m->pts[m->n - 1].step >= pt.step) m->n--;
    if (grow(m)) return mmupt_fail(err, "%s:%d: more than %d metric lines", name, line, REPORT_MAX_METRIC_LINES);
    m->pts[m->n++] = pt;
    return 0;
}

int report_parse_metrics(const char *name, const char *text, size_t len, struct report_metrics *out,
                         struct mmupt_err *err)
{
    struct report_metrics m = {0};
    size_t pos = 0;
    int line = 0;
    while (pos < len) {
        const char *s = text + pos, *nl = memchr(s, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - s) : len - pos;
        pos += n + (nl != NULL);
        line++;
        if (blank(s, n)) continue;
        if (parse_line(name, line, s, n, &m, err)) {
            report_metrics_free(&m);
            memset(out, 0, sizeof *out);
            return -1;
        }
    }
    *out = m;
    return 0;
}

double report_window_mean(const struct report_metrics *m, enum report_key key, int at_end)
{
    int n = 0;
    for (int i = 0; i < m->n; i++) n += isfinite(m->pts[i].v[key]) != 0;
    if (n == 0) return NAN;
    int k = n / 4 < 5 ? n / 4 : 5;
    if (k < 1) k = 1;
    double sum = 0.0;
    int taken = 0;
    for (int j = 0; j < m->n && taken < k; j++) {
        int i = at_end ? m->n - 1 - j : j;
        if (!isfinite(m->pts[i].v[key])) continue;
        sum += m->pts[i].v[key];
        taken++;
    }
    return sum / k;
}
