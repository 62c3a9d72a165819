/* Softmax attention over packed segments, CPU reference, with the probabilities kept for the
 * backward (exact, simple; memory is n_heads * len^2 floats per segment, which is fine for the
 * reference and for tests, and the CUDA twin will recompute instead).
 *
 * Layout: q, out, dq: [T, n_heads, hd]; k, v, dk, dv: [T, n_kv, hd]; a segment is the row range
 * [seg[s], seg[s+1]). probs: segment after segment, head after head, a row-major len*len matrix
 * each, row = query, column = key, masked (future) entries 0.
 *
 * Parallelism: the forward's jobs are (segment, head) pairs and the backward's (segment, kv head)
 * pairs, because the q heads of one GQA group all add into the same dk/dv rows. Each job owns its
 * outputs outright, so results do not depend on the number of threads. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mmupt/err.h"
#include "mmupt/kernels.h"

/* Offset of segment s's block in probs: sum over earlier segments of n_heads * len^2. */
static size_t probs_offset(const int *seg, int s, int n_heads)
{
    size_t off = 0;
    for (int i = 0; i < s; i++) {
        size_t len = (size_t)(seg[i + 1] - seg[i]);
        off += (size_t)n_heads * len * len;
    }
    return off;
}

static void check_args(const int *seg, int n_seg, int n_heads, int n_kv, int hd)
{
    MMUPT_CHECK(n_seg >= 0 && seg[0] == 0);
    for (int s = 0; s < n_seg; s++) MMUPT_CHECK(seg[s + 1] >= seg[s]);
    MMUPT_CHECK(n_heads > 0 && n_kv > 0 && n_heads % n_kv == 0 && hd > 0);
}

size_t attention_probs_size(const int *seg, int n_seg, int n_heads)
{
    return probs_offset(seg, n_seg, n_heads);
}

static float dot(const float *a, const float *b, int n)
{
    float s = 0.0f;
#pragma omp simd reduction(+ : s)
    for (int i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

/* One (segment, head): P = softmax(scale * Q K^T) row by row, out = P V. */
static void forward_head(float *out, float *P, const float *q, const float *k, const float *v, int t0, int len,
                         int h, int kvh, int n_heads, int n_kv, int hd, int causal)
{
    float scale = (float)(1.0 / sqrt((double)hd));
    for (int i = 0; i < len; i++) {
        const float *qi = q + ((long)(t0 + i) * n_heads + h) * hd;
        float *p = P + (size_t)i * len;
        int nj = causal ? i + 1 : len;
        float mx = -INFINITY;
        for (int j = 0; j < nj; j++) {
            p[j] = scale * dot(qi, k + ((long)(t0 + j) * n_kv + kvh) * hd, hd);
            if (p[j] > mx) mx = p[j];
        }
        double sum = 0.0;
        for (int j = 0; j < nj; j++) {
            p[j] = expf(p[j] - mx);
            sum += p[j];
        }
        float inv = (float)(1.0 / sum);
        for (int j = 0; j < nj; j++) p[j] *= inv;
        for (int j = nj; j < len; j++) p[j] = 0.0f;
        float *oi = out + ((long)(t0 + i) * n_heads + h) * hd;
        memset(oi, 0, (size_t)hd * sizeof(float));
        for (int j = 0; j < nj; j++) {
            const float *vj = v + ((long)(t0 + j) * n_kv + kvh) * hd;
            for (int d = 0; d < hd; d++) oi[d] += p[j] * vj[d];
        }
    }
}

void attention_forward_cpu(float *out, float *probs, const float *q, const float *k, const float *v, const int *seg,
                           int n_seg, int n_heads, int n_kv, int hd, int causal)
{
    check_args(seg, n_seg, n_heads, n_kv, hd);
    int group = n_heads / n_kv;
#pragma omp parallel for schedule(dynamic, 1)
    for (long job = 0; job < (long)n_seg * n_heads; job++) {
        int s = (int)(job / n_heads), h = (int)(job % n_heads);
        int t0 = seg[s], len = seg[s + 1] - seg[s];
        if (len == 0) continue;
        float *P = probs + probs_offset(seg, s, n_heads) + (size_t)h * len * len;
        forward_head(out, P, q, k, v, t0, len, h, h / group, n_heads, n_kv, hd, causal);
    }
}

/* Scratch of one backward job: dk/dv of the segment's rows for one kv head, summed over the group's
 * q heads before being added to the caller's gradients once; a row of dS; one dq row. */
struct attn_scratch {
    float *dk, *dv, *ds, *dq;
};

/* One q head h of the job's group. With dP = dO V^T and D_i = sum_j P_ij dP_ij:
 *   dS = P * (dP - D),  dQ = scale dS K,  dK += scale dS^T Q,  dV += P^T dO. */
static void backward_head(float *dq, struct attn_scratch *w, const float *dout, const float *P, const float *q,
                          const float *k, const float *v, int t0, int len, int h, int kvh, int n_heads, int n_kv,
                          int hd, int causal)
{
    float scale = (float)(1.0 / sqrt((double)hd));
    for (int i = 0; i < len; i++) {
        long qrow = ((long)(t0 + i) * n_heads + h) * hd;
        const float *p = P + (size_t)i * len, *doi = dout + qrow, *qi = q + qrow;
        int nj = causal ? i + 1 : len;
        double D = 0.0;
        for (int j = 0; j < nj; j++) {
            w->ds[j] = dot(doi, v + ((long)(t0 + j) * n_kv + kvh) * hd, hd);
            D += (double)p[j] * w->ds[j];
        }
        for (int j = 0; j < nj; j++) w->ds[j] = p[j] * (w->ds[j] - (float)D);
        memset(w->dq, 0, (size_t)hd * sizeof(float));
        for (int j = 0; j < nj; j++) {
            const float *kj = k + ((long)(t0 + j) * n_kv + kvh) * hd;
            float *dkj = w->dk + (size_t)j * hd, *dvj = w->dv + (size_t)j * hd;
            float gs = w->ds[j] * scale, pj = p[j];
            for (int d = 0; d < hd; d++) {
                w->dq[d] += gs * kj[d];
                dkj[d] += gs * qi[d];
                dvj[d] += pj * doi[d];
            }
        }
        if (dq)
            for (int d = 0; d < hd; d++) dq[qrow + d] += w->dq[d];
    }
}

/* Adds the segment's scratch rows for kv head kvh into g (dk or dv). */
static void add_kv_rows(float *g, const float *rows, int t0, int len, int kvh, int n_kv, int hd)
{
    if (!g) return;
    for (int j = 0; j < len; j++) {
        float *dst = g + ((long)(t0 + j) * n_kv + kvh) * hd;
        const float *src = rows + (size_t)j * hd;
        for (int d = 0; d < hd; d++) dst[d] += src[d];
    }
}

void attention_backward_cpu(float *dq, float *dk, float *dv, const float *dout, const float *probs, const float *q,
                            const float *k, const float *v, const int *seg, int n_seg, int n_heads, int n_kv, int hd,
                            int causal)
{
    check_args(seg, n_seg, n_heads, n_kv, hd);
    if (!dq && !dk && !dv) return;
    int group = n_heads / n_kv;
#pragma omp parallel for schedule(dynamic, 1)
    for (long job = 0; job < (long)n_seg * n_kv; job++) {
        int s = (int)(job / n_kv), kvh = (int)(job % n_kv);
        int t0 = seg[s], len = seg[s + 1] - seg[s];
        if (len == 0) continue;
        struct attn_scratch w;
        w.dk = mmupt_xcalloc((size_t)len * hd, sizeof(float));
        w.dv = mmupt_xcalloc((size_t)len * hd, sizeof(float));
        w.ds = mmupt_xmalloc((size_t)len * sizeof(float));
        w.dq = mmupt_xmalloc((size_t)hd * sizeof(float));
        const float *Pseg = probs + probs_offset(seg, s, n_heads);
        for (int h = kvh * group; h < (kvh + 1) * group; h++)
            backward_head(dq, &w, dout, Pseg + (size_t)h * len * len, q, k, v, t0, len, h, kvh, n_heads, n_kv, hd,
                          causal);
        add_kv_rows(dk, w.dk, t0, len, kvh, n_kv, hd);
        add_kv_rows(dv, w.dv, t0, len, kvh, n_kv, hd);
        free(w.dk);
        free(w.dv);
        free(w.ds);
        free(w.dq);
    }
}
