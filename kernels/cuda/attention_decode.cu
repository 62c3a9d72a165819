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
