/* Decode attention, CPU reference: each sequence's single new query against its own KV cache. The
 * softmax is computed in double over one row, so the result matches the full causal attention of
 * attention_forward_cpu at that position to rounding. */
#include <math.h>
#include <stdlib.h>

#include "mmupt/err.h"
#include "mmupt/kernels.h"

void attention_decode_cpu(float *out, const float *q, const float *const *k, const float *const *v, const int *len, int n,
                          int n_heads, int n_kv, int hd)
{
    MMUPT_CHECK(n_kv > 0 && n_heads % n_kv == 0);
    int group = n_heads / n_kv;
    float scale = (float)(1.0 / sqrt((double)hd));
#pragma omp parallel for schedule(dynamic, 1)
    for (long job = 0; job < (long)n * n_heads; job++) {
        int i = (int)(job / n_heads), h = (int)(job % n_heads), kvh = h / group, L = len[i];
        const float *qi = q + ((long)i * n_heads + h) * hd;
        float *oi = out + ((long)i * n_heads + h) * hd;
        double *p = malloc((size_t)(L > 0 ? L : 1) * sizeof *p);
        if (!p) MMUPT_DIE("out of memory");
        double mx = -INFINITY, sum = 0.0;
        for (int j = 0; j < L; j++) {
            const float *kj = k[i] + ((long)j * n_kv + kvh) * hd;
            float s = 0.0f;
            for (int d = 0; d < hd; d++) s += qi[d] * kj[d];
            p[j] = (double)(s * scale);
            if (p[j] > mx) mx = p[j];
        }
        for (int j = 0; j < L; j++) sum += p[j] = exp(p[j] - mx);
        for (int d = 0; d < hd; d++) oi[d] = 0.0f;
        for (int j = 0; j < L; j++) {
            const float *vj = v[i] + ((long)j * n_kv + kvh) * hd;
            float w = (float)(p[j] / sum);
            for (int d = 0; d < hd; d++) oi[d] += w * vj[d];
        }
        free(p);
    }
}
