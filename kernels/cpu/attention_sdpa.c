/* Attention as cuDNN's fused SDPA graphs compute it (MMUPT_ATTENTION=cudnn: src/gpu/sdpa_cudnn.c),
 * CPU reference. The same attention as attention_flash.c - causal or not within each segment, GQA,
 * scores scale q . k in fp32, one log-sum-exp a row kept instead of the probabilities - but with
 * cuDNN's operand types: q, k, v, out and every gradient are bf16 (uint16_t), stats fp32.
 *
 * Layouts: q16, o16, dq16 [T, n_heads, hd]; k16, v16, dk16, dv16 [T, n_kv, hd] (token-major, as the
 * model's activations). Segments are taken in runs of equal length (attention_sdpa_next_run): cuDNN
 * runs one graph per run, its segments as the batch dimension. stats holds, for the run starting at
 * row t0 with `count` segments of `len` rows, count x n_heads x len values at stats + t0 * n_heads,
 * segment-major then head then row - the [b, h, s, 1] tensor cuDNN writes. So stats has T * n_heads
 * floats in all, as attention_flash's lse, in another order.
 *
 * The backward ASSIGNS dq16, dk16, dv16 (cuDNN writes its outputs; the caller adds them where it
 * accumulates). It is attention_flash_backward_cpu's gradient of the widened operands, rounded to
 * bf16 once: cuDNN's own roundings inside the fused kernels (p and dS to bf16 before their second
 * products) are within the tests' bf16 tolerances, not reproduced. */
#include <stdlib.h>
#include <string.h>

#include "mmupt/bf16.h"
#include "mmupt/err.h"
#include "mmupt/kernels.h"

int attention_sdpa_next_run(const int *seg, int n_seg, int *s, struct sdpa_run *r)
{
    while (*s < n_seg && seg[*s + 1] == seg[*s]) (*s)++;
    if (*s == n_seg) return 0;
    r->t0 = seg[*s];
    r->len = seg[*s + 1] - seg[*s];
    r->count = 0;
    while (*s < n_seg && seg[*s + 1] - seg[*s] == r->len) {
        r->count++;
        (*s)++;
    }
    return 1;
}

int attention_sdpa_shape_ok(const int *seg, int n_seg, int n_heads, int n_kv, int hd)
{
    if (n_heads <= 0 || n_kv <= 0 || n_heads % n_kv || hd % 8 || hd < 8 || hd > 128) return 0;
    struct sdpa_run r;
    for (int s = 0; attention_sdpa_next_run(seg, n_seg, &s, &r);)
        if (r.len < 2) return 0; /* cuDNN's SDPA refuses a 1 x 1 score matrix */
    return 1;
}

static float *widen(const uint16_t *x, long n)
{
    float *y = mmupt_xmalloc((size_t)(n ? n : 1) * sizeof *y);
    for (long i = 0; i < n; i++) y[i] = bf16_to_f32(x[i]);
    return y;
}

static void narrow(uint16_t *y, const float *x, long n)
{
    for (long i = 0; i < n; i++) y[i] = bf16_from_f32(x[i]);
}

/* Between attention_flash's lse [T, n_heads] and the runs' [count, n_heads, len] blocks (to_runs:
 * lse into stats; else stats into lse). */
static void stats_order(float *stats, float *lse, const int *seg, int n_seg, int n_heads, int to_runs)
{
    struct sdpa_run r;
    for (int s = 0; attention_sdpa_next_run(seg, n_seg, &s, &r);)
        for (int b = 0; b < r.count; b++)
            for (int h = 0; h < n_heads; h++)
                for (int i = 0; i < r.len; i++) {
                    long row = (long)r.t0 + (long)b * r.len + i;
                    float *st = stats + (long)r.t0 * n_heads + ((long)b * n_heads + h) * r.len + i;
                    float *l = lse + row * n_heads + h;
                    if (to_runs) *st = *l;
                    else *l = *st;
                }
}

void attention_sdpa_forward_cpu(uint16_t *o16, float *stats, const uint16_t *q16, const uint16_t *k16,
                                const uint16_t *v16, const int *seg, int n_seg, int n_heads, int n_kv, int hd,
                                int causal)
{
    MMUPT_CHECK(attention_sdpa_shape_ok(seg, n_seg, n_heads, n_kv, hd));
    long T = seg[n_seg], nq = T * n_heads * hd, nk = T * n_kv * hd;
    float *q = widen(q16, nq), *k = widen(k16, nk), *v = widen(v16, nk);
    float *out = mmupt_xmalloc((size_t)(nq ? nq : 1) * sizeof *out);
    float *lse = mmupt_xmalloc((size_t)(T ? T * n_heads : 1) * sizeof *lse);
    attention_flash_forward_cpu(out, lse, q, k, v, seg, n_seg, n_heads, n_kv, hd, causal);
    narrow(o16, out, nq);
    stats_order(stats, lse, seg, n_seg, n_heads, 1);
    free(q), free(k), free(v), free(out), free(lse);
}

void attention_sdpa_backward_cpu(uint16_t *dq16, uint16_t *dk16, uint16_t *dv16, const uint16_t *dout16,
                                 const uint16_t *o16, const float *stats, const uint16_t *q16, const uint16_t *k16,
                                 const uint16_t *v16, const int *seg, int n_seg, int n_heads, int n_kv, int hd,
                                 int causal)
{
    MMUPT_CHECK(attention_sdpa_shape_ok(seg, n_seg, n_heads, n_kv, hd));
    long T = seg[n_seg], nq = T * n_heads * hd, nk = T * n_kv * hd;
    float *q = widen(q16, nq), *k = widen(k16, nk), *v = widen(v16, nk);
    float *out = widen(o16, nq), *dout = widen(dout16, nq);
    float *lse = mmupt_xmalloc((size_t)(T ? T * n_heads : 1) * sizeof *lse);
    stats_order((float *)stats, lse, seg, n_seg, n_heads, 0); /* reads stats only */
    float *dq = mmupt_xcalloc((size_t)(nq ? nq : 1), sizeof *dq);
    float *dk = mmupt_xcalloc((size_t)(nk ? nk : 1), sizeof *dk);
    float *dv = mmupt_xcalloc((size_t)(nk ? nk : 1), sizeof *dv);
    attention_flash_backward_cpu(dq, dk, dv, dout, out, lse, q, k, v, seg, n_seg, n_heads, n_kv, hd, causal);
    narrow(dq16, dq, nq);
    narrow(dk16, dk, nk);
    narrow(dv16, dv, nk);
    free(q), free(k), free(v), free(out), free(dout), free(lse), free(dq), free(dk), free(dv);
}
