/* KV-cache appends, CPU reference: a decode step's new keys and values into their rows of the
 * slot-major cache (fp32, or rounded to bf16), and the bf16 step's fused bias + RoPE + append. */
#include <stdlib.h>
#include <string.h>

#include "mmupt/bf16.h"
#include "mmupt/err.h"
#include "mmupt/kernels.h"
#include "kv_rows.h"

void kv_append_cpu(float *cache_k, float *cache_v, const float *k, const float *v, const int *slot, const int *pos, int n,
                   int n_slots, int max_len, int kvd)
{
    kv_check_rows(slot, pos, n, n_slots, max_len);
    for (int i = 0; i < n; i++) {
        long at = ((long)slot[i] * max_len + pos[i]) * kvd;
        memcpy(cache_k + at, k + (long)i * kvd, (size_t)kvd * sizeof(float));
        memcpy(cache_v + at, v + (long)i * kvd, (size_t)kvd * sizeof(float));
    }
}

void kv_append_bf16_cpu(uint16_t *cache_k, uint16_t *cache_v, const float *k, const float *v, const int *slot,
                        const int *pos, int n, int n_slots, int max_len, int kvd)
{
    kv_check_rows(slot, pos, n, n_slots, max_len);
    for (int i = 0; i < n; i++) {
        long at = ((long)slot[i] * max_len + pos[i]) * kvd;
        cast_bf16_cpu(cache_k + at, k + (long)i * kvd, kvd);
        cast_bf16_cpu(cache_v + at, v + (long)i * kvd, kvd);
    }
}

/* x[r, off .. off + w) += b for the n rows of stride `stride` (b NULL: nothing). */
static void add_bias(float *x, const float *b, int n, long stride, int off, int w)
{
    for (long r = 0; b && r < n; r++)
        for (int c = 0; c < w; c++) x[r * stride + off + c] += b[c];
}

/* The biases added to a copy of the packed rows, then rope_qkv_forward and the bf16 append. */
void qkv_rope_append_bf16_cpu(float *q, const float *qkv, const float *bq, const float *bk, const float *bv,
                              const float *cos, const float *sin, uint16_t *cache_k, uint16_t *cache_v, const int *slot,
                              const int *pos, int n, int n_heads, int n_kv, int hd, int n_slots, int max_len)
{
    if (n <= 0) return;
    int qd = n_heads * hd, kvd = n_kv * hd;
    long w = qd + 2L * kvd;
    size_t bytes = (size_t)n * w * sizeof *qkv, nkv = (size_t)n * kvd;
    float *biased = memcpy(mmupt_xmalloc(bytes), qkv, bytes); /* qkv itself is not written */
    add_bias(biased, bq, n, w, 0, qd);
    add_bias(biased, bk, n, w, qd, kvd);
    add_bias(biased, bv, n, w, qd + kvd, kvd);
    float *kv = mmupt_xmalloc(2 * nkv * sizeof *kv); /* [k | v], [n, kvd] each */
    rope_qkv_forward_cpu(q, kv, kv + nkv, biased, cos, sin, n, n_heads, n_kv, hd);
    kv_append_bf16_cpu(cache_k, cache_v, kv, kv + nkv, slot, pos, n, n_slots, max_len, kvd);
    free(biased);
    free(kv);
}
