/* Decode attention, CPU reference: each sequence's single new query against its own rows of the
 * slot-major KV cache (the append of the new rows is kv_append.c), with
 * the same arithmetic as attention_forward_cpu's rows (float scores, expf, a double-accumulated
 * normaliser), so a cached decode matches the full causal forward at that position to rounding. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mmupt/bf16.h"
#include "mmupt/err.h"
#include "mmupt/kernels.h"
#include "kv_rows.h"
#include "softmax_exp.h"

/* Rows up to this long keep their scores on the stack; longer ones allocate. */
enum { DECODE_STACK_ROWS = 2048 };

static float dot(const float *a, const float *b, int n)
{
    float s = 0.0f;
#pragma omp simd reduction(+ : s)
    for (int i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

static void decode_row(float *oi, const float *qi, const float *k, const float *v, int L, int n_kv, int kvh, int hd,
                       float scale, float *p)
{
    for (int j = 0; j < L; j++) p[j] = scale * dot(qi, k + ((long)j * n_kv + kvh) * hd, hd);
    float inv = softmax_exp(p, L);
    for (int d = 0; d < hd; d++) oi[d] = 0.0f;
    for (int j = 0; j < L; j++) {
        const float *vj = v + ((long)j * n_kv + kvh) * hd;
        float w = p[j] * inv;
#pragma omp simd
        for (int d = 0; d < hd; d++) oi[d] += w * vj[d];
    }
}

void attention_decode_cpu(float *out, const float *q, const float *cache_k, const float *cache_v, const int *slot,
                          const int *pos, int n, int n_slots, int max_len, int n_heads, int n_kv, int hd)
{
    MMUPT_CHECK(n_kv > 0 && n_heads % n_kv == 0);
    kv_check_rows(slot, pos, n, n_slots, max_len);
    int group = n_heads / n_kv;
    long slot_floats = (long)max_len * n_kv * hd;
    float scale = (float)(1.0 / sqrt((double)hd));
#pragma omp parallel for schedule(dynamic, 1)
    for (long job = 0; job < (long)n * n_heads; job++) {
        int i = (int)(job / n_heads), h = (int)(job % n_heads), L = pos[i] + 1;
        float stack[DECODE_STACK_ROWS];
        float *p = L <= DECODE_STACK_ROWS ? stack : malloc((size_t)L * sizeof *p);
        if (!p) MMUPT_DIE("out of memory");
        decode_row(out + ((long)i * n_heads + h) * hd, q + ((long)i * n_heads + h) * hd, cache_k + slot[i] * slot_floats,
                   cache_v + slot[i] * slot_floats, L, n_kv, h / group, hd, scale, p);
        if (p != stack) free(p);
    }
}

/* ---- A bf16 cache (the device model's in model.dtype=bf16): keys and values rounded to bf16 when
 * appended, widened when read; the arithmetic is the fp32 reference's. ---- */

void attention_decode_bf16_cpu(float *out, const float *q, const uint16_t *cache_k, const uint16_t *cache_v,
                               const int *slot, const int *pos, int n, int n_slots, int max_len, int n_heads, int n_kv,
                               int hd)
{
    kv_check_rows(slot, pos, n, n_slots, max_len);
    /* Widen the rows the call reads (each row's slot up to its position) into an fp32 cache of the
     * same layout, and run the fp32 reference on it: slow, and only the emulator runs it. */
    long slot_floats = (long)max_len * n_kv * hd;
    float *k = mmupt_xmalloc((size_t)(n_slots * slot_floats) * sizeof *k);
    float *v = mmupt_xmalloc((size_t)(n_slots * slot_floats) * sizeof *v);
    for (int i = 0; i < n; i++) {
        long base = slot[i] * slot_floats, m = (long)(pos[i] + 1) * n_kv * hd;
        for (long e = 0; e < m; e++) {
            k[base + e] = bf16_to_f32(cache_k[base + e]);
            v[base + e] = bf16_to_f32(cache_v[base + e]);
        }
    }
    attention_decode_cpu(out, q, k, v, slot, pos, n, n_slots, max_len, n_heads, n_kv, hd);
    free(k);
    free(v);
}

/* attention_decode_bf16, and out rounded to bf16 into out16 (the o-projection's operand), as the
 * fused twin writes it. */
void attention_decode_bf16_cast_cpu(float *out, uint16_t *out16, const float *q, const uint16_t *cache_k,
                                    const uint16_t *cache_v, const int *slot, const int *pos, int n, int n_slots,
                                    int max_len, int n_heads, int n_kv, int hd)
{
    attention_decode_bf16_cpu(out, q, cache_k, cache_v, slot, pos, n, n_slots, max_len, n_heads, n_kv, hd);
    cast_bf16_cpu(out16, out, (long)n * n_heads * hd);
}

void attention_decode_qkv_bf16_cast_cpu(float *out, uint16_t *out16, const float *qkv, const float *bq, const float *bk,
                                        const float *bv, const float *cos, const float *sin, uint16_t *cache_k,
                                        uint16_t *cache_v, const int *slot, const int *pos, int n, int n_slots,
                                        int max_len, int n_heads, int n_kv, int hd)
{
    if (n <= 0) return;
    float *q = mmupt_xmalloc((size_t)n * n_heads * hd * sizeof *q);
    qkv_rope_append_bf16_cpu(q, qkv, bq, bk, bv, cos, sin, cache_k, cache_v, slot, pos, n, n_heads, n_kv, hd, n_slots,
                             max_len);
    attention_decode_bf16_cast_cpu(out, out16, q, cache_k, cache_v, slot, pos, n, n_slots, max_len, n_heads, n_kv, hd);
    free(q);
}
