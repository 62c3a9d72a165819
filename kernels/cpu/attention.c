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
 * outputs outright, so results do not depend on the number of threads. Inside a job the products
 * (Q K^T, P V and the backward's four) are single-threaded GEMMs (sgemm.h): OpenBLAS when present,
 * which is also outside the sanitizer's instrumentation, so the sanitizer test pass runs the model
 * several times faster than with the scalar loops this file used to have. */
#include <math.h>
#include <stdlib.h>

#include "mmupt/err.h"
#include "mmupt/kernels.h"
#include "sgemm.h"
#include "softmax_exp.h"

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

/* Rows are processed in blocks of ATTN_BLOCK queries: a causal block needs only the keys up to its
 * last row, which skips the masked half of every product, and the backward's dS scratch is one
 * block's rows rather than len^2 floats. */
enum { ATTN_BLOCK = 64 };

/* One (segment, head)'s row strides and bases: the q/out rows of head h, the k/v rows of kv head kvh. */
struct attn_view {
    const float *q, *k, *v;
    int ldq, ldk, len;
    float scale;
};

static struct attn_view view_of(const float *q, const float *k, const float *v, int t0, int len, int h, int kvh,
                                int n_heads, int n_kv, int hd)
{
    struct attn_view a = {q + ((long)t0 * n_heads + h) * hd, k + ((long)t0 * n_kv + kvh) * hd,
                          v + ((long)t0 * n_kv + kvh) * hd, n_heads * hd, n_kv * hd, len,
                          (float)(1.0 / sqrt((double)hd))};
    return a;
}

/* Keys a block ending (exclusively) at row i1 sees. */
static int block_keys(int i1, int len, int causal)
{
    return causal ? i1 : len;
}

/* p[0, nj) holds scores; softmax them in place (softmax_exp.h: decoding's arithmetic too) and zero
 * the masked rest p[nj, len). */
static void softmax_row(float *p, int nj, int len)
{
    float inv = softmax_exp(p, nj);
    for (int j = 0; j < nj; j++) p[j] *= inv;
    for (int j = nj; j < len; j++) p[j] = 0.0f;
}

/* One (segment, head): P = softmax(scale * Q K^T) row by row, out = P V (out's rows at stride ldq). */
static void forward_head(float *out, float *P, struct attn_view a, int hd, int causal)
{
    for (int i0 = 0; i0 < a.len; i0 += ATTN_BLOCK) {
        int rows = a.len - i0 < ATTN_BLOCK ? a.len - i0 : ATTN_BLOCK, nk = block_keys(i0 + rows, a.len, causal);
        float *Pb = P + (size_t)i0 * a.len;
        cpu_sgemm(0, 1, rows, nk, hd, a.scale, a.q + (long)i0 * a.ldq, a.ldq, a.k, a.ldk, 0.0f, Pb, a.len);
        for (int i = 0; i < rows; i++) softmax_row(Pb + (size_t)i * a.len, causal ? i0 + i + 1 : a.len, a.len);
        cpu_sgemm(0, 0, rows, hd, nk, 1.0f, Pb, a.len, a.v, a.ldk, 0.0f, out + (long)i0 * a.ldq, a.ldq);
    }
}

void attention_forward_cpu(float *out, float *probs, const float *q, const float *k, const float *v, const int *seg,
                           int n_seg, int n_heads, int n_kv, int hd, int causal)
{
    check_args(seg, n_seg, n_heads, n_kv, hd);
    int group = n_heads / n_kv;
    cpu_sgemm_prepare();
#pragma omp parallel for schedule(dynamic, 1)
    for (long job = 0; job < (long)n_seg * n_heads; job++) {
        int s = (int)(job / n_heads), h = (int)(job % n_heads);
        int t0 = seg[s], len = seg[s + 1] - seg[s];
        if (len == 0) continue;
        float *P = probs + probs_offset(seg, s, n_heads) + (size_t)h * len * len;
        forward_head(out + ((long)t0 * n_heads + h) * hd, P, view_of(q, k, v, t0, len, h, h / group, n_heads, n_kv, hd),
                     hd, causal);
    }
}

/* One q head of a backward job, with dP = dO V^T and D_i = sum_j P_ij dP_ij:
 *   dS = P * (dP - D),  dQ += scale dS K,  dK += scale dS^T Q,  dV += P^T dO.
 * dq, dk, dv are this head's (and its kv head's) rows, at strides ldq and ldk, or NULL; ds is a
 * scratch of ATTN_BLOCK * len floats. */
static void backward_head(float *dq, float *dk, float *dv, float *ds, const float *dout, const float *P,
                          struct attn_view a, int hd, int causal)
{
    for (int i0 = 0; i0 < a.len; i0 += ATTN_BLOCK) {
        int rows = a.len - i0 < ATTN_BLOCK ? a.len - i0 : ATTN_BLOCK, nk = block_keys(i0 + rows, a.len, causal);
        const float *Pb = P + (size_t)i0 * a.len, *dob = dout + (long)i0 * a.ldq;
        cpu_sgemm(0, 1, rows, nk, hd, 1.0f, dob, a.ldq, a.v, a.ldk, 0.0f, ds, a.len);
        for (int i = 0; i < rows; i++) {
            const float *p = Pb + (size_t)i * a.len;
            float *d = ds + (size_t)i * a.len;
            int nj = causal ? i0 + i + 1 : a.len;
            double D = 0.0;
            for (int j = 0; j < nj; j++) D += (double)p[j] * d[j];
            for (int j = 0; j < nj; j++) d[j] = p[j] * (d[j] - (float)D);
            for (int j = nj; j < nk; j++) d[j] = 0.0f;
        }
        if (dq) cpu_sgemm(0, 0, rows, hd, nk, a.scale, ds, a.len, a.k, a.ldk, 1.0f, dq + (long)i0 * a.ldq, a.ldq);
        if (dk) cpu_sgemm(1, 0, nk, hd, rows, a.scale, ds, a.len, a.q + (long)i0 * a.ldq, a.ldq, 1.0f, dk, a.ldk);
        if (dv) cpu_sgemm(1, 0, nk, hd, rows, 1.0f, Pb, a.len, dob, a.ldq, 1.0f, dv, a.ldk);
    }
}

void attention_backward_cpu(float *dq, float *dk, float *dv, const float *dout, const float *probs, const float *q,
                            const float *k, const float *v, const int *seg, int n_seg, int n_heads, int n_kv, int hd,
                            int causal)
{
    check_args(seg, n_seg, n_heads, n_kv, hd);
    if (!dq && !dk && !dv) return;
    int group = n_heads / n_kv;
    cpu_sgemm_prepare();
#pragma omp parallel for schedule(dynamic, 1)
    for (long job = 0; job < (long)n_seg * n_kv; job++) {
        int s = (int)(job / n_kv), kvh = (int)(job % n_kv);
        int t0 = seg[s], len = seg[s + 1] - seg[s];
        if (len == 0) continue;
        long kv_off = ((long)t0 * n_kv + kvh) * hd;
        float *ds = mmupt_xmalloc((size_t)(len < ATTN_BLOCK ? len : ATTN_BLOCK) * len * sizeof *ds);
        const float *Pseg = probs + probs_offset(seg, s, n_heads);
        for (int h = kvh * group; h < (kvh + 1) * group; h++) {
            long q_off = ((long)t0 * n_heads + h) * hd;
            backward_head(dq ? dq + q_off : NULL, dk ? dk + kv_off : NULL, dv ? dv + kv_off : NULL, ds, dout + q_off,
                          Pseg + (size_t)h * len * len, view_of(q, k, v, t0, len, h, kvh, n_heads, n_kv, hd), hd,
                          causal);
        }
        free(ds);
    }
}
