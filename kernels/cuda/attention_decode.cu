// Decode attention over the KV cache: the CUDA twin of kernels/cpu/attention_decode.c, in fp32, with
// its layouts (q, out: [n, n_heads, hd]; one cache layer [n_slots, max_len, n_kv, hd]; row i reads slot
// slot[i], positions 0..pos[i]) and its arithmetic where it decides the result: float scores, expf,
// a double normaliser, weights p * inv; the weighted sum over the cache rows is split over warps
// (within the tests' fp32 tolerance of the reference's row order).
//
// slot and pos are device arrays, uploaded once per decode step and read by every layer: a step
// makes no host round trip per layer, and its launches only read device memory (what CUDA graph
// capture needs). The scores live in one stream-ordered scratch of n * n_heads * max_len floats.
// One block per (row, head):
//   1. q row into shared memory;
//   2. one warp per cache row j (rows j = warp, warp + nwarps, ...): lanes split the dot product
//      over d (coalesced reads of k), a butterfly adds the lanes, lane 0 stores the scaled score;
//   3. block max, then each thread exponentiates its strided rows and adds them in double, then
//      a block sum in double (reduce.cuh: fixed order, no atomics);
//   4. weights p * inv in place, a barrier; then warp w sums w_j * v_j[d] over its rows j = w,
//      w + nwarps, ... (lanes over d), and the warps' partial rows are added in warp order. (One
//      thread per d looping over every row in order, as the CPU reference does, left most of the
//      block idle and was 60 us of a 0.5B decode layer on an H200: docs/performance.md.)
// Any length works: every phase loops over the rows. Every addition's order depends only on the
// launch shape, so a call repeats bit for bit. A slot or position outside the cache (a caller's
// bookkeeping bug; the reference dies of it) traps.
#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "mmupt/cuda_check.h"
#include "mmupt/err.h"
#include "mmupt/kernels.h"
#include "bf16.cuh"
#include "launch.cuh"
#include "reduce.cuh"
#include "rope.cuh"

// Dynamic shared memory holds the q row and each warp's partial output row: (1 + 8) * hd floats,
// 36 KiB at this bound (the default limit is 48 KiB), four times the largest head in use.
enum { DECODE_MAX_HD = 1024 };

// A cache element as a float: fp32 caches as they are, bf16 ones widened (exact).
static __device__ __forceinline__ float kv_load(const float *p) { return *p; }
static __device__ __forceinline__ float kv_load(const uint16_t *p) { return bf16_widen(*p); }

// The kernel's view of the call; T is the cache's element type (float, or uint16_t for bf16).
template <typename T>
struct decode_args {
    const T *cache_k, *cache_v;     // one layer: [n_slots, max_len, n_kv, hd]
    const int *slot, *pos;          // [n]
    float *scores;                  // [n * n_heads, max_len]
    long slot_floats;               // max_len * n_kv * hd
    int n_heads, group, n_kv, hd, n_slots, max_len;
    float scale;
};

// Block b = i * n_heads + h: row i, q head h.
template <typename T>
static __global__ void attention_decode_kernel(float *out, const float *q, struct decode_args<T> a)
{
    extern __shared__ float qi[];
    __shared__ float fscratch[32];
    __shared__ double dscratch[32];
    long row = blockIdx.x;
    int i = (int)(row / a.n_heads), h = (int)(row % a.n_heads), hd = a.hd, s = a.slot[i], L = a.pos[i] + 1;
    if (s < 0 || s >= a.n_slots || L < 1 || L > a.max_len) __trap();
    long stride = (long)a.n_kv * hd, kvoff = (long)(h / a.group) * hd;
    const T *k = a.cache_k + s * a.slot_floats, *v = a.cache_v + s * a.slot_floats;
    float *p = a.scores + row * a.max_len;
    for (int d = threadIdx.x; d < hd; d += blockDim.x) qi[d] = q[row * hd + d];
    __syncthreads();

    int lane = threadIdx.x % 32, warp = threadIdx.x / 32, nwarps = blockDim.x / 32;
    float mx = -INFINITY;
    for (int j = warp; j < L; j += nwarps) {
        const T *kj = k + j * stride + kvoff;
        float sc = 0.0f;
        for (int d = lane; d < hd; d += 32) sc += qi[d] * kv_load(kj + d);
        for (int off = 16; off > 0; off /= 2) sc += __shfl_xor_sync(0xffffffffu, sc, off);
        sc = a.scale * sc; // every lane holds the same bits after the butterfly
        if (lane == 0) p[j] = sc;
        mx = fmaxf(mx, sc);
    }
    // The reductions' barriers also publish the scores written above to the whole block, since
    // from here on each thread works on the rows j = tid, tid + blockDim, ...
    mx = reduce_block_max(mx, fscratch);
    double sum = 0.0;
    for (int j = threadIdx.x; j < L; j += blockDim.x) {
        float e = expf(p[j] - mx); // expf, not __expf: see tests/gpu/test_attention_decode_cuda.c
        p[j] = e;
        sum += e;
    }
    float inv = (float)(1.0 / reduce_block_sum_double(sum, dscratch));
    for (int j = threadIdx.x; j < L; j += blockDim.x) p[j] *= inv;
    __syncthreads(); // every weight is read by every warp below

    // Warp w sums w_j * v_j[d] over its rows j = w, w + nwarps, ... for the dims d of its lanes
    // (coalesced rows of v, every warp busy); the warps' partial sums are then added in warp order.
    float *part = qi + hd; // [nwarps][hd]
    for (int d0 = 0; d0 < hd; d0 += 32) {
        int d = d0 + lane;
        if (d >= hd) break;
        float acc = 0.0f;
        for (int j = warp; j < L; j += nwarps) acc += p[j] * kv_load(v + j * stride + kvoff + d);
        part[warp * hd + d] = acc;
    }
    __syncthreads();
    for (int d = threadIdx.x; d < hd; d += blockDim.x) {
        float acc = 0.0f;
        for (int w = 0; w < nwarps; w++) acc += part[w * hd + d];
        out[row * hd + d] = acc;
    }
}

template <typename T>
static void decode_launch(float *out, const float *q, const T *cache_k, const T *cache_v, const int *slot,
                          const int *pos, int n, int n_slots, int max_len, int n_heads, int n_kv, int hd,
                          float *scores, void *stream)
{
    MMUPT_CHECK(n >= 0 && n_heads > 0 && n_kv > 0 && n_heads % n_kv == 0 && hd > 0 && hd <= DECODE_MAX_HD);
    MMUPT_CHECK(n_slots > 0 && max_len > 0);
    MMUPT_CHECK((long)n * n_heads <= 0x7fffffffL); // grid x
    if (n == 0) return;
    cudaStream_t st = (cudaStream_t)stream;
    struct decode_args<T> a;
    a.scores = scores; // the caller's: no allocation inside a graph capture
    a.cache_k = cache_k;
    a.cache_v = cache_v;
    a.slot = slot;
    a.pos = pos;
    a.slot_floats = (long)max_len * n_kv * hd;
    a.n_heads = n_heads;
    a.group = n_heads / n_kv;
    a.n_kv = n_kv;
    a.hd = hd;
    a.n_slots = n_slots;
    a.max_len = max_len;
    a.scale = (float)(1.0 / sqrt((double)hd)); // as the CPU reference computes it
    unsigned blocks = (unsigned)((long)n * n_heads);
    size_t smem = (size_t)(1 + REDUCE_THREADS / 32) * hd * sizeof(float);
    attention_decode_kernel<T><<<blocks, REDUCE_THREADS, smem, st>>>(out, q, a);
    CUDA_CHECK(cudaGetLastError());
}

extern "C" void attention_decode_cuda(float *out, const float *q, const float *cache_k, const float *cache_v,
                                      const int *slot, const int *pos, int n, int n_slots, int max_len, int n_heads,
                                      int n_kv, int hd, float *scores, void *stream)
{
    decode_launch<float>(out, q, cache_k, cache_v, slot, pos, n, n_slots, max_len, n_heads, n_kv, hd, scores,
                         stream);
}

extern "C" void attention_decode_bf16_cuda(float *out, const float *q, const uint16_t *cache_k,
                                           const uint16_t *cache_v, const int *slot, const int *pos, int n,
                                           int n_slots, int max_len, int n_heads, int n_kv, int hd, float *scores,
                                           void *stream)
{
    decode_launch<uint16_t>(out, q, cache_k, cache_v, slot, pos, n, n_slots, max_len, n_heads, n_kv, hd, scores,
                            stream);
}

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

// One thread per rotated pair of a row: pairs p < n * n_heads * half are q's (bias, RoPE, in place);
// the rest are k's, whose thread also carries v's two elements at the same places (bias only), and
// both land in the bf16 cache at (slot[i], pos[i]). The arithmetic is add_bias's, then
// rope_forward's, then kv_append_bf16's rounding.
struct qkv_args {
    float *q;
    const float *k, *v, *bq, *bk, *bv, *cos, *sin;
    uint16_t *cache_k, *cache_v;
    const int *slot, *pos;
    int n, n_heads, n_kv, half, n_slots, max_len;
};

static __global__ void qkv_rope_append_bf16_kernel(struct qkv_args a)
{
    int hd = 2 * a.half, kvd = a.n_kv * hd;
    long q_pairs = (long)a.n * a.n_heads * a.half, pairs = q_pairs + (long)a.n * a.n_kv * a.half;
    LAUNCH_LOOP(p, pairs)
    {
        int is_q = p < q_pairs, heads = is_q ? a.n_heads : a.n_kv;
        long e = is_q ? p : p - q_pairs;
        int i = (int)(e % a.half);
        long rh = e / a.half; // row * heads + head
        int r = (int)(rh / heads), h = (int)(rh % heads);
        long x0 = rh * hd + i, x1 = x0 + a.half; // in q, or in k and v ([n, kvd])
        const float *c = a.cos + (long)r * hd, *s = a.sin + (long)r * hd, *b = is_q ? a.bq : a.bk;
        const float *src = is_q ? a.q : a.k;
        float u1 = src[x0], u2 = src[x1];
        if (b) {
            u1 += b[h * hd + i];
            u2 += b[h * hd + i + a.half];
        }
        float y1, y2;
        rope_rotate(u1, u2, c, s, i, a.half, &y1, &y2);
        if (is_q) {
            a.q[x0] = y1;
            a.q[x1] = y2;
            continue;
        }
        long to = kv_row_at(a.slot, a.pos, r, a.n_slots, a.max_len, kvd) + h * hd + i;
        float v1 = a.v[x0], v2 = a.v[x1];
        if (a.bv) {
            v1 += a.bv[h * hd + i];
            v2 += a.bv[h * hd + i + a.half];
        }
        a.cache_k[to] = bf16_round(y1);
        a.cache_k[to + a.half] = bf16_round(y2);
        a.cache_v[to] = bf16_round(v1);
        a.cache_v[to + a.half] = bf16_round(v2);
    }
}

extern "C" void qkv_rope_append_bf16_cuda(float *q, const float *k, const float *v, const float *bq, const float *bk,
                                          const float *bv, const float *cos, const float *sin, uint16_t *cache_k,
                                          uint16_t *cache_v, const int *slot, const int *pos, int n, int n_heads,
                                          int n_kv, int hd, int n_slots, int max_len, void *stream)
{
    MMUPT_CHECK(hd % 2 == 0 && n_heads > 0 && n_kv > 0 && n_slots > 0 && max_len > 0);
    if (n <= 0) return;
    struct qkv_args a = {q, k, v, bq, bk, bv, cos, sin, cache_k, cache_v, slot, pos, n, n_heads, n_kv, hd / 2,
                         n_slots, max_len};
    long pairs = (long)n * (n_heads + n_kv) * (hd / 2);
    qkv_rope_append_bf16_kernel<<<launch_blocks(pairs), LAUNCH_THREADS, 0, (cudaStream_t)stream>>>(a);
    CUDA_CHECK(cudaGetLastError());
}
