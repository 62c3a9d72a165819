// KV-cache appends: the CUDA twins of kernels/cpu/kv_append.c - a decode step's new keys and values
// into their rows of the slot-major cache (fp32, or rounded to bf16), and the bf16 step's fused
// bias + RoPE + append. slot and pos are device arrays (see attention_decode.cu).
#include <cuda_runtime.h>
#include <stdint.h>

#include "mmupt/cuda_check.h"
#include "mmupt/err.h"
#include "mmupt/kernels.h"
#include "bf16.cuh"
#include "launch.cuh"
#include "rope.cuh"

// A cache element from an fp32 value: as it is, or rounded to bf16.
static __device__ __forceinline__ void kv_store(float *p, float x) { *p = x; }
static __device__ __forceinline__ void kv_store(uint16_t *p, float x) { *p = bf16_round(x); }

// Where row i's new key (or value) starts in a cache layer of kvd-wide rows: at (slot[i], pos[i]).
// A slot or position outside the cache (a caller's bookkeeping bug; the reference dies of it) traps.
static __device__ __forceinline__ long kv_row_at(const int *slot, const int *pos, int i, int n_slots, int max_len,
                                                 int kvd)
{
    int s = slot[i], at = pos[i];
    if (s < 0 || s >= n_slots || at < 0 || at >= max_len) __trap();
    return ((long)s * max_len + at) * kvd;
}

// One thread per element of the new rows: cache[slot[i], pos[i], c] = k[i, c] (and v).
template <typename T>
static __global__ void kv_append_kernel(T *cache_k, T *cache_v, const float *k, const float *v, const int *slot,
                                        const int *pos, int n, int n_slots, int max_len, int kvd)
{
    LAUNCH_LOOP(e, (long)n * kvd)
    {
        int i = (int)(e / kvd), c = (int)(e % kvd);
        long to = kv_row_at(slot, pos, i, n_slots, max_len, kvd) + c;
        kv_store(cache_k + to, k[e]);
        kv_store(cache_v + to, v[e]);
    }
}

template <typename T>
static void append_launch(T *cache_k, T *cache_v, const float *k, const float *v, const int *slot, const int *pos,
                          int n, int n_slots, int max_len, int kvd, void *stream)
{
    if (n <= 0 || kvd <= 0) return;
    long total = (long)n * kvd;
    kv_append_kernel<T><<<launch_blocks(total), LAUNCH_THREADS, 0, (cudaStream_t)stream>>>(cache_k, cache_v, k, v, slot,
                                                                                          pos, n, n_slots, max_len, kvd);
    CUDA_CHECK(cudaGetLastError());
}

extern "C" void kv_append_cuda(float *cache_k, float *cache_v, const float *k, const float *v, const int *slot,
                               const int *pos, int n, int n_slots, int max_len, int kvd, void *stream)
{
    append_launch<float>(cache_k, cache_v, k, v, slot, pos, n, n_slots, max_len, kvd, stream);
}

extern "C" void kv_append_bf16_cuda(uint16_t *cache_k, uint16_t *cache_v, const float *k, const float *v,
                                    const int *slot, const int *pos, int n, int n_slots, int max_len, int kvd,
                                    void *stream)
{
    append_launch<uint16_t>(cache_k, cache_v, k, v, slot, pos, n, n_slots, max_len, kvd, stream);
}

// One thread per rotated pair of a row of the packed projections qkv ([n, w], w = qd + 2 kvd: q, k,
// v): pairs p < n * n_heads * half are q's (bias, RoPE, into q [n, qd]); the rest are k's, whose
// thread also carries v's two elements at the same places (bias only), and both land in the bf16
// cache at (slot[i], pos[i]). The arithmetic is add_bias's, then rope_forward's, then
// kv_append_bf16's rounding.
struct qkv_args {
    float *q;
    const float *qkv, *bq, *bk, *bv, *cos, *sin;
    uint16_t *cache_k, *cache_v;
    const int *slot, *pos;
    int n, n_heads, n_kv, half, n_slots, max_len;
};

static __global__ void qkv_rope_append_bf16_kernel(struct qkv_args a)
{
    int hd = 2 * a.half, kvd = a.n_kv * hd;
    long pq = (long)a.n * a.n_heads * a.half, pk = (long)a.n * a.n_kv * a.half;
    LAUNCH_LOOP(p, pq + pk)
    {
        struct qkv_pair at = qkv_pair_at(p, pq, pk, a.n_heads, a.n_kv, a.half);
        int i = at.i, is_q = at.part == 0;
        const float *c = a.cos + at.r * hd, *s = a.sin + at.r * hd, *b = is_q ? a.bq : a.bk;
        float u1, u2, y1, y2;
        qkv_pair_biased(a.qkv + at.packed, b ? b + at.h * hd : NULL, i, a.half, &u1, &u2);
        rope_rotate(u1, u2, c, s, i, a.half, &y1, &y2);
        if (is_q) {
            a.q[at.rh * hd + i] = y1;
            a.q[at.rh * hd + i + a.half] = y2;
            continue;
        }
        long to = kv_row_at(a.slot, a.pos, (int)at.r, a.n_slots, a.max_len, kvd) + at.h * hd + i;
        float v1, v2; // v sits kvd after k in the packed row
        qkv_pair_biased(a.qkv + at.packed + kvd, a.bv ? a.bv + at.h * hd : NULL, i, a.half, &v1, &v2);
        a.cache_k[to] = bf16_round(y1);
        a.cache_k[to + a.half] = bf16_round(y2);
        a.cache_v[to] = bf16_round(v1);
        a.cache_v[to + a.half] = bf16_round(v2);
    }
}

extern "C" void qkv_rope_append_bf16_cuda(float *q, const float *qkv, const float *bq, const float *bk, const float *bv,
                                          const float *cos, const float *sin, uint16_t *cache_k, uint16_t *cache_v,
                                          const int *slot, const int *pos, int n, int n_heads, int n_kv, int hd,
                                          int n_slots, int max_len, void *stream)
{
    MMUPT_CHECK(hd % 2 == 0 && n_heads > 0 && n_kv > 0 && n_slots > 0 && max_len > 0);
    if (n <= 0) return;
    struct qkv_args a = {q, qkv, bq, bk, bv, cos, sin, cache_k, cache_v, slot, pos, n, n_heads, n_kv, hd / 2,
                         n_slots, max_len};
    long pairs = (long)n * (n_heads + n_kv) * (hd / 2);
    qkv_rope_append_bf16_kernel<<<launch_blocks(pairs), LAUNCH_THREADS, 0, (cudaStream_t)stream>>>(a);
    CUDA_CHECK(cudaGetLastError());
}
