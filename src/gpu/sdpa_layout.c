/* A packed batch as cuDNN SDPA calls of power-of-two entry counts (include/mmupt/sdpa_layout.h). */
#include <stdlib.h>
#include <string.h>

#include "mmupt/err.h"
#include "mmupt/sdpa_layout.h"

/* n rounded up to a multiple of 4 (16 bytes of int32). */
static int64_t pad4(int64_t n)
{
    return (n + 3) / 4 * 4;
}

/* Lay out the calls' array positions; the ints they take in all. */
static int64_t place_calls(struct sdpa_layout_plan *p)
{
    int64_t at = 0;
    for (int c = 0; c < p->n_calls; c++) {
        struct sdpa_call_layout *k = &p->call[c];
        k->len = at;
        k->off_q = k->len + pad4(k->b);
        k->off_k = k->off_q + pad4(k->b + 1);
        k->off_s = k->off_k + pad4(k->b + 1);
        at = k->off_s + pad4(k->b + 1);
    }
    return at;
}

/* One call's arrays: entries first .. first + b - 1 of the non-empty segments' starts and lengths. */
static void fill_call(struct sdpa_layout_plan *p, const struct sdpa_call_layout *k, const int *start,
                      const int *len, int hq, int hk, int hd)
{
    int32_t *L = p->ints + k->len, *q = p->ints + k->off_q, *kv = p->ints + k->off_k, *st = p->ints + k->off_s;
    for (int i = 0; i <= k->b; i++) {
        int e = k->first + i;
        /* the end: where the call's last entry ends (the next entry's start: segments are back to back) */
        int64_t row = i < k->b ? start[e] : (int64_t)start[e - 1] + len[e - 1];
        if (i < k->b) L[i] = len[e];
        q[i] = (int32_t)(row * hq * hd), kv[i] = (int32_t)(row * hk * hd), st[i] = (int32_t)(row * hq);
    }
}

int sdpa_layout_make(struct sdpa_layout_plan *p, const int *seg, int n_seg, int hq, int hk, int hd)
{
    memset(p, 0, sizeof *p);
    if (n_seg < 1 || (int64_t)seg[n_seg] * hq * hd > INT32_MAX || (int64_t)seg[n_seg] * hk * hd > INT32_MAX)
        return n_seg < 1 ? 0 : -1;
    int *start = mmupt_xmalloc((size_t)n_seg * sizeof *start), *len = mmupt_xmalloc((size_t)n_seg * sizeof *len);
    int b = 0;
    for (int i = 0; i < n_seg; i++)
        if (seg[i + 1] > seg[i]) start[b] = seg[i], len[b] = seg[i + 1] - seg[i], b++;
    for (int first = 0, left = b; left > 0; p->n_calls++) { /* the largest power of two that fits, in order */
        struct sdpa_call_layout *k = &p->call[p->n_calls];
        int n = 1;
        while (n <= left / 2) n *= 2;
        int longest = 0;
        for (int e = first; e < first + n; e++) longest = len[e] > longest ? len[e] : longest;
        k->first = first, k->b = n, k->s = (longest + SDPA_LEN_STEP - 1) / SDPA_LEN_STEP * SDPA_LEN_STEP;
        first += n, left -= n;
    }
    p->n_ints = place_calls(p);
    p->ints = p->n_calls ? mmupt_xcalloc((size_t)p->n_ints, sizeof *p->ints) : NULL;
    for (int c = 0; c < p->n_calls; c++) fill_call(p, &p->call[c], start, len, hq, hk, hd);
    free(start);
    free(len);
    return 0;
}

void sdpa_layout_free(struct sdpa_layout_plan *p)
{
    free(p->ints);
    memset(p, 0, sizeof *p);
}
