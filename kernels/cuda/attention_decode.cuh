// What decode attention's two CUDA implementations share (attention_decode.cu: fp32 arithmetic, any
// shape; attention_decode_mma.cu: bf16 tensor cores, the common shapes of a bf16 cache): the view of
// one call, the fused step's new row and q rows (qkv_rope_append_bf16's arithmetic, so either
// implementation leaves the same cache bits), and the tensor-core form's entry points.
#ifndef MMUPT_KERNELS_CUDA_ATTENTION_DECODE_CUH
#define MMUPT_KERNELS_CUDA_ATTENTION_DECODE_CUH

#include <cuda_runtime.h>
#include <stdint.h>

#include "bf16.cuh"
#include "rope.cuh"
#include "vec.cuh"

typedef vec_pack<float, 4> decode_f4; // the dynamic shared memory's type: 16-byte aligned

// The kernel's view of the call; T is the cache's element type (float, or uint16_t for bf16).
template <typename T>
struct decode_args {
    const T *cache_k, *cache_v;     // one layer: [n_slots, max_len, n_kv, hd]
    const int *slot, *pos;          // [n]
    float *scores;                  // [n * n_heads, max_len]; unused when scores_at > 0
    long scores_at;                 // > 0: the scores live in shared memory from this float on
    long slot_floats;               // max_len * n_kv * hd
    unsigned *count;                // [n * n_kv] arrival counters (splits > 1)
    int n_heads, group, n_kv, hd, n_slots, max_len, splits, rows_cap; // rows_cap: a score row's length
    int n;
    float scale;
    // attention_decode_qkv_bf16_cast (qkv NULL otherwise): the step's packed q/k/v projections
    // [n, (n_heads + 2 n_kv) hd] without their biases bq, bk, bv (each may be NULL), RoPE's tables
    // [n, hd], and the cache as written (the new row's k and v land at position pos[i]).
    const float *qkv, *bq, *bk, *bv, *cos, *sin;
    T *wk, *wv;
    // Staged (STAGE): the block's k and v rows in shared memory from element stage_at (counted in
    // floats from the start of it), rows_cap rows of kst elements each, k's then v's.
    long stage_at;
    int kst;
};

// The fused step's new row: block (i, g) rotates and appends kv head g's k and v of row i at cache
// element `to`, with qkv_rope_append_bf16's arithmetic (so the cache bits are that op's). Only bf16
// caches have the fused step (attention_decode.cu's fp32 kernel has a stub overload that traps).

// sk, sv (may be NULL): the row's staged copies in shared memory (STAGE), written with the same bits.
static __device__ void decode_append_new(const struct decode_args<uint16_t> &a, int i, int g, long to, uint16_t *sk,
                                         uint16_t *sv)
{
    int hd = a.hd, half = hd / 2, qd = a.n_heads * hd, kvd = a.n_kv * hd;
    const float *kx = a.qkv + (long)i * (qd + 2 * kvd) + qd + (long)g * hd, *vx = kx + kvd;
    const float *c = a.cos + (long)i * hd, *s = a.sin + (long)i * hd;
    for (int e = threadIdx.x; e < half; e += blockDim.x) {
        float u1, u2, y1, y2, v1, v2;
        qkv_pair_biased(kx, a.bk ? a.bk + g * hd : NULL, e, half, &u1, &u2);
        rope_rotate(u1, u2, c, s, e, half, &y1, &y2);
        qkv_pair_biased(vx, a.bv ? a.bv + g * hd : NULL, e, half, &v1, &v2);
        uint16_t k1 = bf16_round(y1), k2 = bf16_round(y2), w1 = bf16_round(v1), w2 = bf16_round(v2);
        a.wk[to + e] = k1;
        a.wk[to + e + half] = k2;
        a.wv[to + e] = w1;
        a.wv[to + e + half] = w2;
        if (sk) {
            sk[e] = k1;
            sk[e + half] = k2;
            sv[e] = w1;
            sv[e + half] = w2;
        }
    }
}

// The fused step's q rows of heads hq0 .. hq0 + hc - 1 of row i, biased and rotated as
// qkv_rope_append_bf16 writes them, into sh [hc][hd] (the unfused kernel reads them from q).
template <typename T>
static __device__ void decode_q_rope(float *sh, const struct decode_args<T> &a, int i, int hq0, int hc)
{
    int hd = a.hd, half = hd / 2;
    const float *x = a.qkv + (long)i * (a.n_heads + 2 * a.n_kv) * hd;
    const float *c = a.cos + (long)i * hd, *s = a.sin + (long)i * hd;
    for (int t = threadIdx.x; t < hc * half; t += blockDim.x) {
        int h = t / half, e = t % half, hq = hq0 + h;
        float u1, u2;
        qkv_pair_biased(x + (long)hq * hd, a.bq ? a.bq + hq * hd : NULL, e, half, &u1, &u2);
        rope_rotate(u1, u2, c, s, e, half, &sh[h * hd + e], &sh[h * hd + e + half]);
    }
}

// The tensor-core form (attention_decode_mma.cu) for a bf16 cache: whether it takes a call of this
// shape (a group of at most 16 q heads, hd 16, 32, 64 or 128, 16-byte aligned caches), and the launch -
// a.scores, a.count and the split and staging fields unused; pdl: launched programmatically.
int decode_mma_fits(int group, int hd, const void *cache_k, const void *cache_v);
void decode_mma_run(float *out, uint16_t *out16, const float *q, const struct decode_args<uint16_t> &a, int pdl,
                    cudaStream_t st);

#endif
