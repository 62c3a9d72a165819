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

/* x[r, :] += b for the n rows of width w (b NULL: nothing). */
static void add_rows(float *x, const float *b, int n, int w)
{
    for (long i = 0; b && i < (long)n * w; i++) x[i] += b[i % w];
}

void qkv_rope_append_bf16_cpu(float *q, const float *qkv, const float *bq, const float *bk, const float *bv,
                              const float *cos, const float *sin, uint16_t *cache_k, uint16_t *cache_v, const int *slot,
                              const int *pos, int n, int n_heads, int n_kv, int hd, int n_slots, int max_len)
{
    if (n <= 0) return;
    int qd = n_heads * hd, kvd = n_kv * hd, w = qd + 2 * kvd;
    float *kb = mmupt_xmalloc((size_t)n * kvd * sizeof *kb), *vb = mmupt_xmalloc((size_t)n * kvd * sizeof *vb);
    for (long i = 0; i < n; i++) { /* the packed rows apart, as three projections would have left them */
        memcpy(q + i * qd, qkv + i * w, (size_t)qd * sizeof *q);
        memcpy(kb + i * kvd, qkv + i * w + qd, (size_t)kvd * sizeof *kb);
        memcpy(vb + i * kvd, qkv + i * w + qd + kvd, (size_t)kvd * sizeof *vb);
    }
    add_rows(q, bq, n, qd);
    add_rows(kb, bk, n, kvd);
    add_rows(vb, bv, n, kvd);
    rope_forward_cpu(q, cos, sin, n, n_heads, hd);
    rope_forward_cpu(kb, cos, sin, n, n_kv, hd);
    kv_append_bf16_cpu(cache_k, cache_v, kb, vb, slot, pos, n, n_slots, max_len, kvd);
    free(kb);
    free(vb);
}
