/* libFuzzer target: report_parse_metrics on arbitrary bytes. A result is either -1 with a message
 * and nothing kept, or a history with strictly increasing steps >= 0 whose window means lie within
 * the range of the values they average. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "mmupt/report.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_key(const struct report_metrics *m, enum report_key k)
{
    double lo = INFINITY, hi = -INFINITY;
    for (int i = 0; i < m->n; i++) {
        double v = m->pts[i].v[k];
        if (isinf(v)) abort(); /* the parser keeps finite numbers or NaN, nothing else */
        if (!isnan(v)) lo = fmin(lo, v), hi = fmax(hi, v);
    }
    for (int end = 0; end < 2; end++) {
        double w = report_window_mean(m, k, end);
        if (lo > hi ? !isnan(w) : !(w >= lo - 1e-9 * fabs(lo) && w <= hi + 1e-9 * fabs(hi))) abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct report_metrics m;
    struct mmupt_err err;
    err.msg[0] = '\0';
    if (report_parse_metrics("fuzz.jsonl", (const char *)data, size, &m, &err)) {
        if (!err.msg[0] || m.n != 0 || m.pts != NULL) abort();
        return 0;
    }
    for (int i = 0; i < m.n; i++)
        if (m.pts[i].step < 0 || (i > 0 && m.pts[i].step <= m.pts[i - 1].step)) abort();
    for (int k = 0; k < REPORT_N_KEYS; k++) check_key(&m, (enum report_key)k);
    report_metrics_free(&m);
    return 0;
}
