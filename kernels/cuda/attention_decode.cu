// Decode attention over the KV cache: the CUDA twin of kernels/cpu/attention_decode.c, in fp32, with
// its layouts (q, out: [n, n_heads, hd]; sequence i's cache k[i], v[i]: [len[i], n_kv, hd]) and its
// arithmetic order where it decides the result: float scores, expf, a double normaliser, weights
// p * inv, then the weighted sum over the cache rows in row order.
//
// The pointer table k, v and the lengths live on the host (launch metadata, as attention.cu's seg);
// one stream-ordered scratch allocation carries them to the device together with the scores:
//   [ k pointers | v pointers | score offsets | lengths | pad | scores: n_heads * sum(len) floats ]
// One block per (sequence, head):
//   1. q row into shared memory;
//   2. one warp per cache row j (rows j = warp, warp + nwarps, ...): lanes split the dot product
//      over d (coalesced reads of k), a butterfly adds the lanes, lane 0 stores the scaled score;
//   3. block max, then each thread exponentiates its strided rows and adds them in double, then
//      a block sum in double (reduce.cuh: fixed order, no atomics);
//   4. weights p * inv in place, a barrier, and each thread owns output dims d and sums
//      w_j * v_j[d] over j = 0, 1, ... in order, as the CPU reference does.
// Any length works: every phase loops over the rows. Every addition's order depends only on the
// launch shape, so a call repeats bit for bit.
#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "mmupt/cuda_check.h"
#include "mmupt/err.h"
#include "mmupt/kernels.h"
#include "reduce.cuh"

// The q row is staged in dynamic shared memory; far below the 48 KiB default, far above any head.
enum { DECODE_MAX_HD = 4096 };

// The scores start on this boundary in the scratch allocation (the table before them is ragged).
enum { DECODE_SCORE_ALIGN = 256 };

// Device views of the host metadata, and the head layout.
struct decode_args {
    const float *const *k, *const *v; // [n] cache pointers
    const int64_t *soff;              // [n] first score of sequence i (its heads follow each other)
    const int *len;                   // [n]
    float *scores;                    // n_heads * sum(len) floats
    int n_heads, group, n_kv, hd;
    float scale;
};

// Block b = i * n_heads + h: sequence i, q head h.
static __global__ void attention_decode_kernel(float *out, const float *q, struct decode_args a)
{
    extern __shared__ float qi[];
    __shared__ float fscratch[32];
    __shared__ double dscratch[32];
    long row = blockIdx.x;
    int i = (int)(row / a.n_heads), h = (int)(row % a.n_heads), hd = a.hd, L = a.len[i];
    long stride = (long)a.n_kv * hd, kvoff = (long)(h / a.group) * hd;
    const float *k = a.k[i], *v = a.v[i]; // not read when L == 0 (they may then be NULL)
    float *p = a.scores + a.soff[i] + (long)h * L;
    for (int d = threadIdx.x; d < hd; d += blockDim.x) qi[d] = q[row * hd + d];
    __syncthreads();

    int lane = threadIdx.x % 32, warp = threadIdx.x / 32, nwarps = blockDim.x / 32;
    float mx = -INFINITY;
    for (int j = warp; j < L; j += nwarps) {
        const float *kj = k + j * stride + kvoff;
        float s = 0.0f;
        for (int d = lane; d < hd; d += 32) s += qi[d] * kj[d];
        for (int off = 16; off > 0; off /= 2) s += __shfl_xor_sync(0xffffffffu, s, off);
        s = a.scale * s; // every lane holds the same bits after the butterfly
        if (lane == 0) p[j] = s;
        mx = fmaxf(mx, s);
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
    // With L == 0 the sum is 0 and inv infinite, but no weight uses it: out is 0, as on the CPU.
    float inv = (float)(1.0 / reduce_block_sum_double(sum, dscratch));
    for (int j = threadIdx.x; j < L; j += blockDim.x) p[j] *= inv;
    __syncthreads(); // every weight is read by every thread below

    for (int d = threadIdx.x; d < hd; d += blockDim.x) {
        float acc = 0.0f;
        for (int j = 0; j < L; j++) acc += p[j] * v[j * stride + kvoff + d];
        out[row * hd + d] = acc;
    }
}

// Bytes of the metadata part of the scratch for n sequences (pointers and offsets first, so each
// section is aligned for its type), rounded up to where the scores start.
static size_t decode_table_bytes(int n)
{
    size_t b = (size_t)n * (2 * sizeof(const float *) + sizeof(int64_t) + sizeof(int));
    return (b + DECODE_SCORE_ALIGN - 1) / DECODE_SCORE_ALIGN * DECODE_SCORE_ALIGN;
}

// Fills the host image of the table; returns the number of scores (n_heads * sum(len)).
static size_t decode_fill_table(unsigned char *t, const float *const *k, const float *const *v, const int *len, int n,
                                int n_heads)
{
    size_t np = (size_t)n * sizeof(const float *);
    memcpy(t, k, np);
    memcpy(t + np, v, np);
    int64_t *soff = (int64_t *)(t + 2 * np);
    size_t total = 0;
    for (int i = 0; i < n; i++) {
        MMUPT_CHECK(len[i] >= 0);
        soff[i] = (int64_t)total;
        total += (size_t)n_heads * (size_t)len[i];
    }
    memcpy(t + 2 * np + (size_t)n * sizeof(int64_t), len, (size_t)n * sizeof(int));
    return total;
}

extern "C" void attention_decode_cuda(float *out, const float *q, const float *const *k, const float *const *v,
                                      const int *len, int n, int n_heads, int n_kv, int hd, void *stream)
{
    MMUPT_CHECK(n >= 0 && n_heads > 0 && n_kv > 0 && n_heads % n_kv == 0 && hd > 0 && hd <= DECODE_MAX_HD);
    MMUPT_CHECK((long)n * n_heads <= 0x7fffffffL); // grid x
    if (n == 0) return;
    cudaStream_t st = (cudaStream_t)stream;

    size_t tb = decode_table_bytes(n);
    unsigned char *host = (unsigned char *)mmupt_xmalloc(tb);
    size_t nscores = decode_fill_table(host, k, v, len, n, n_heads);
    unsigned char *dev = NULL;
    CUDA_CHECK(cudaMallocAsync((void **)&dev, tb + nscores * sizeof(float), st));
    // From pageable memory the copy has taken the bytes when it returns, so host may go at once.
    CUDA_CHECK(cudaMemcpyAsync(dev, host, tb, cudaMemcpyHostToDevice, st));
    free(host);

    size_t np = (size_t)n * sizeof(const float *);
    struct decode_args a;
    a.k = (const float *const *)dev;
    a.v = (const float *const *)(dev + np);
    a.soff = (const int64_t *)(dev + 2 * np);
    a.len = (const int *)(dev + 2 * np + (size_t)n * sizeof(int64_t));
    a.scores = (float *)(dev + tb);
    a.n_heads = n_heads;
    a.group = n_heads / n_kv;
    a.n_kv = n_kv;
    a.hd = hd;
    a.scale = (float)(1.0 / sqrt((double)hd)); // as the CPU reference computes it
    unsigned blocks = (unsigned)((long)n * n_heads);
    attention_decode_kernel<<<blocks, REDUCE_THREADS, (size_t)hd * sizeof(float), st>>>(out, q, a);
    CUDA_CHECK(cudaGetLastError());
    CUDA_CHECK(cudaFreeAsync(dev, st));
}
