/* Fused ("flash") attention over packed segments, CPU reference: the op kernels/cuda/attention_flash.cu
 * computes for the bf16 learner, defined here in plain loops. Same layouts and masking as
 * attention.c (q, out, dq: [T, n_heads, hd]; k, v, dk, dv: [T, n_kv, hd]; segment s is rows
 * [seg[s], seg[s+1]); causal within a segment), but mixed precision as a fused bf16 kernel computes it
 * and no probabilities kept:
 *   - q, k and v enter rounded to bf16 (the tensor cores' operands); scores s_ij = scale q_i . k_j in fp32;
 *   - lse [T, n_heads] keeps each row's log-sum-exp, m_i + log(sum_j exp(s_ij - m_i)), for the backward,
 *     which recomputes p_ij = exp(s_ij - lse_i) instead of reading a stored len x len matrix;
 *   - out_i = sum_j p_ij v_j.
 * Backward, with dout rounded to bf16 where it multiplies (dP = dO V^T, dV = P^T dO) and
 * D_i = dout_i . out_i in fp32:
 *   dS_ij = p_ij (dO_i . v_j - D_i),  dq_i += scale sum_j dS_ij k_j,  dk_j += scale sum_i dS_ij q_i,
 *   dv_j += sum_i p_ij dO_i      (accumulating into dq, dk, dv, as attention_backward_cpu does).
 * The kernels also round p and dS to bf16 before their second products; this reference does not
 * (the tests' tolerances cover that rounding, see tests/gpu/test_attention_flash_cuda.c). Jobs are
 * (segment, head) pairs forward and (segment, kv head) pairs backward - a kv head's dk, dv rows get
 * every head of its group - so results do not depend on the thread count. */
#include <math.h>
#include <stdlib.h>

#include "mmupt/bf16.h"
#include "mmupt/err.h"
#include "mmupt/kernels.h"

static void check_args(const int *seg, int n_seg, int n_heads, int n_kv, int hd)
{
    MMUPT_CHECK(n_seg >= 0 && seg[0] == 0);
    for (int s = 0; s < n_seg; s++) MMUPT_CHECK(seg[s + 1] >= seg[s]);
    MMUPT_CHECK(n_heads > 0 && n_kv > 0 && n_heads % n_kv == 0 && hd > 0);
}

static float rb(float x) { return bf16_to_f32(bf16_from_f32(x)); }

/* scale * (bf16 a) . (bf16 b) over n values, in order. */
static float dot_rb(const float *a, const float *b, int n, float scale)
{
    float s = 0.0f;
    for (int d = 0; d < n; d++) s += rb(a[d]) * rb(b[d]);
    return scale * s;
}

/* Keys row i of a segment of len rows sees. */
static int keys_of(int i, int len, int causal)
{
    return causal ? i + 1 : len;
}

void attention_flash_forward_cpu(float *out, float *lse, const float *q, const float *k, const float *v, const int *seg,
                                 int n_seg, int n_heads, int n_kv, int hd, int causal)
{
    check_args(seg, n_seg, n_heads, n_kv, hd);
    int group = n_heads / n_kv;
    float scale = (float)(1.0 / sqrt((double)hd));
#pragma omp parallel for schedule(dynamic, 1)
    for (long job = 0; job < (long)n_seg * n_heads; job++) {
        int s = (int)(job / n_heads), h = (int)(job % n_heads), kvh = h / group;
        int t0 = seg[s], len = seg[s + 1] - seg[s];
        float *sc = mmupt_xmalloc((size_t)(len > 0 ? len : 1) * sizeof *sc);
        for (int i = 0; i < len; i++) {
            const float *qi = q + ((long)(t0 + i) * n_heads + h) * hd;
            int nj = keys_of(i, len, causal);
            float m = -INFINITY;
            for (int j = 0; j < nj; j++) {
                sc[j] = dot_rb(qi, k + ((long)(t0 + j) * n_kv + kvh) * hd, hd, scale);
                m = fmaxf(m, sc[j]);
            }
            double l = 0.0;
            for (int j = 0; j < nj; j++) l += exp((double)(sc[j] - m));
            float L = m + (float)log(l);
            float *oi = out + ((long)(t0 + i) * n_heads + h) * hd;
            for (int d = 0; d < hd; d++) oi[d] = 0.0f;
            for (int j = 0; j < nj; j++) {
                float p = expf(sc[j] - L);
                const float *vj = v + ((long)(t0 + j) * n_kv + kvh) * hd;
                for (int d = 0; d < hd; d++) oi[d] += p * rb(vj[d]);
            }
            lse[(long)(t0 + i) * n_heads + h] = L;
        }
        free(sc);
    }
}

void attention_flash_backward_cpu(float *dq, float *dk, float *dv, const float *dout, const float *out, const float *lse,
                                  const float *q, const float *k, const float *v, const int *seg, int n_seg,
                                  int n_heads, int n_kv, int hd, int causal)
{
    check_args(seg, n_seg, n_heads, n_kv, hd);
    int group = n_heads / n_kv;
    float scale = (float)(1.0 / sqrt((double)hd));
#pragma omp parallel for schedule(dynamic, 1)
    for (long job = 0; job < (long)n_seg * n_kv; job++) {
        int s = (int)(job / n_kv), kvh = (int)(job % n_kv);
        int t0 = seg[s], len = seg[s + 1] - seg[s];
        for (int h = kvh * group; h < (kvh + 1) * group; h++)
            for (int i = 0; i < len; i++) {
                long qi = ((long)(t0 + i) * n_heads + h) * hd;
                const float *doi = dout + qi;
                float D = 0.0f;
                for (int d = 0; d < hd; d++) D += doi[d] * out[qi + d];
                float L = lse[(long)(t0 + i) * n_heads + h];
                for (int j = 0; j < keys_of(i, len, causal); j++) {
                    long kj = ((long)(t0 + j) * n_kv + kvh) * hd;
                    float p = expf(dot_rb(q + qi, k + kj, hd, scale) - L);
                    float dp = dot_rb(doi, v + kj, hd, 1.0f);
                    float ds = p * (dp - D);
                    for (int d = 0; d < hd; d++) {
                        if (dq) dq[qi + d] += scale * ds * rb(k[kj + d]);
                        if (dk) dk[kj + d] += scale * ds * rb(q[qi + d]);
                        if (dv) dv[kj + d] += p * rb(doi[d]);
                    }
                }
            }
    }
}

int attention_flash_supported(int hd)
{
    return hd == 16 || hd == 32 || hd == 64 || hd == 80 || hd == 128;
}
