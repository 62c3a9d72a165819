// Softmax attention over packed segments, forward and backward: CUDA twins of
// kernels/cpu/attention.c, in fp32, with the same layouts (q, out, dq: [T, n_heads, hd]; k, v, dk,
// dv: [T, n_kv, hd]; probs: segment after segment, head after head, a row-major len*len matrix
// each, row = query, column = key, masked entries 0).
//
// Deliberately simple (the fused, recomputing flash-style kernel comes with the GPU backend work
// and must keep these names and contracts). One launch per non-empty segment, since seg lives on
// the host and the offsets are cheapest to compute there:
//   forward     one block per (query row, head): scores into probs, block max and sum, normalise,
//               then out = probs row @ V with one thread per output element;
//   backward    the same blocks write dS = P * (dP - sum_j P dP) (dP = dO V^T) into a scratch
//               buffer shaped like the segment's probs and add dq = scale dS K; then one block per
//               (key row, kv head) sums dk and dv over the group's q heads and the query rows, in
//               a fixed order, so the result repeats bit for bit. No float atomics.
#include <cuda_runtime.h>
#include <math.h>

#include "mmupt/cuda_check.h"
#include "mmupt/kernels.h"
#include "reduce.cuh"

// The q (forward) or dout (backward) row of a block is staged in dynamic shared memory; the
// default limit of 48 KiB holds hd up to 12288, far above any head size in use.
enum { ATTN_MAX_HD = 4096 };

// Copies n floats from global src into shared dst; the caller's next barrier publishes them.
static __device__ __forceinline__ void attn_stage_row(float *dst, const float *src, int n)
{
    for (int d = threadIdx.x; d < n; d += blockDim.x) dst[d] = src[d];
}

static __device__ __forceinline__ float attn_dot(const float *a, const float *b, int n)
{
    float s = 0.0f;
    for (int d = 0; d < n; d++) s += a[d] * b[d];
    return s;
}

// What every kernel of one segment needs: where it starts, its length, the head layout.
struct attn_seg {
    int t0, len, n_heads, n_kv, group, hd, causal;
    float scale;
};

// Block (i, h) of a segment: query row i, q head h. P is the segment's probs block.
static __global__ void attention_forward_kernel(float *out, float *P, const float *q, const float *k, const float *v,
                                                struct attn_seg sg)
{
    extern __shared__ float qi[];
    __shared__ float scratch[32];
    int i = blockIdx.x, h = blockIdx.y, kvh = h / sg.group, hd = sg.hd, len = sg.len;
    int nj = sg.causal ? i + 1 : len;
    long qrow = ((long)(sg.t0 + i) * sg.n_heads + h) * hd;
    float *p = P + ((size_t)h * len + i) * len;
    attn_stage_row(qi, q + qrow, hd);
    __syncthreads();

    // Scores: each thread owns the columns j = tid, tid + blockDim, ... for the whole row, so it
    // reads back only what it wrote itself until the barrier before out.
    float mx = -INFINITY;
    for (int j = threadIdx.x; j < nj; j += blockDim.x) {
        float sc = sg.scale * attn_dot(qi, k + ((long)(sg.t0 + j) * sg.n_kv + kvh) * hd, hd);
        p[j] = sc;
        mx = fmaxf(mx, sc);
    }
    mx = reduce_block_max(mx, scratch);
    float sum = 0.0f;
    for (int j = threadIdx.x; j < nj; j += blockDim.x) {
        float e = expf(p[j] - mx);
        p[j] = e;
        sum += e;
    }
    float inv = 1.0f / reduce_block_sum(sum, scratch);
    for (int j = threadIdx.x; j < len; j += blockDim.x) p[j] = j < nj ? p[j] * inv : 0.0f;
    __syncthreads(); // the whole row of p, written by every thread, is read by each below

    float *oi = out + qrow;
    for (int d = threadIdx.x; d < hd; d += blockDim.x) {
        float acc = 0.0f;
        for (int j = 0; j < nj; j++) acc += p[j] * v[((long)(sg.t0 + j) * sg.n_kv + kvh) * hd + d];
        oi[d] = acc;
    }
}

// Host-side argument checks, the same as the CPU reference's.
static void attn_check_args(const int *seg, int n_seg, int n_heads, int n_kv, int hd)
{
    MMUPT_CHECK(n_seg >= 0 && seg[0] == 0);
    for (int s = 0; s < n_seg; s++) MMUPT_CHECK(seg[s + 1] >= seg[s]);
    MMUPT_CHECK(n_heads > 0 && n_kv > 0 && n_heads % n_kv == 0 && hd > 0 && hd <= ATTN_MAX_HD);
    MMUPT_CHECK(n_heads <= 65535 && n_kv <= 65535); // grid y
}

static struct attn_seg attn_seg_of(const int *seg, int s, int n_heads, int n_kv, int hd, int causal)
{
    struct attn_seg sg;
    sg.t0 = seg[s];
    sg.len = seg[s + 1] - seg[s];
    sg.n_heads = n_heads;
    sg.n_kv = n_kv;
    sg.group = n_heads / n_kv;
    sg.hd = hd;
    sg.causal = causal != 0;
    sg.scale = (float)(1.0 / sqrt((double)hd)); // as the CPU reference computes it
    return sg;
}

extern "C" void attention_forward_cuda(float *out, float *probs, const float *q, const float *k, const float *v,
                                       const int *seg, int n_seg, int n_heads, int n_kv, int hd, int causal,
                                       void *stream)
{
    attn_check_args(seg, n_seg, n_heads, n_kv, hd);
    cudaStream_t st = (cudaStream_t)stream;
    size_t off = 0; // the segment's offset in probs
    for (int s = 0; s < n_seg; s++) {
        struct attn_seg sg = attn_seg_of(seg, s, n_heads, n_kv, hd, causal);
        if (sg.len == 0) continue;
        dim3 grid((unsigned)sg.len, (unsigned)n_heads);
        attention_forward_kernel<<<grid, REDUCE_THREADS, (size_t)hd * sizeof(float), st>>>(out, probs + off, q, k, v,
                                                                                           sg);
        CUDA_CHECK(cudaGetLastError());
        off += (size_t)n_heads * sg.len * sg.len;
    }
}

// Block (i, h): dS row i of head h into dS (shaped like P), and dq row += scale * dS row @ K when
// dq is wanted. With dP_j = dO_i . V_j and D = sum_j P_ij dP_j, dS_ij = P_ij (dP_j - D); masked
// entries are written 0.
static __global__ void attention_ds_kernel(float *dq, float *dS, const float *dout, const float *P, const float *k,
                                           const float *v, struct attn_seg sg)
{
    extern __shared__ float doi[];
    __shared__ float scratch[32];
    int i = blockIdx.x, h = blockIdx.y, kvh = h / sg.group, hd = sg.hd, len = sg.len;
    int nj = sg.causal ? i + 1 : len;
    long qrow = ((long)(sg.t0 + i) * sg.n_heads + h) * hd;
    size_t prow = ((size_t)h * len + i) * len;
    const float *p = P + prow;
    float *ds = dS + prow;
    attn_stage_row(doi, dout + qrow, hd);
    __syncthreads();

    // As in the forward, each thread reads back only its own columns until the barrier below.
    float dsum = 0.0f;
    for (int j = threadIdx.x; j < nj; j += blockDim.x) {
        float dp = attn_dot(doi, v + ((long)(sg.t0 + j) * sg.n_kv + kvh) * hd, hd);
        ds[j] = dp;
        dsum += p[j] * dp;
    }
    float D = reduce_block_sum(dsum, scratch);
    for (int j = threadIdx.x; j < len; j += blockDim.x) ds[j] = j < nj ? p[j] * (ds[j] - D) : 0.0f;
    if (!dq) return;
    __syncthreads(); // the whole dS row is read by each thread below

    for (int d = threadIdx.x; d < hd; d += blockDim.x) {
        float acc = 0.0f;
        for (int j = 0; j < nj; j++) acc += ds[j] * k[((long)(sg.t0 + j) * sg.n_kv + kvh) * hd + d];
        dq[qrow + d] += sg.scale * acc;
    }
}

// Block (j, kvh): key row j of kv head kvh. One thread per element d sums, over the group's q
// heads in order and the query rows that see key j in order,
//   dk[j, d] += scale * sum dS_ij q_i[d],   dv[j, d] += sum P_ij dout_i[d].
// dk or dv may be NULL (not wanted); dS is only read when dk is wanted.
static __global__ void attention_dkv_kernel(float *dk, float *dv, const float *dS, const float *P, const float *q,
                                            const float *dout, struct attn_seg sg)
{
    int j = blockIdx.x, kvh = blockIdx.y, hd = sg.hd, len = sg.len;
    int i0 = sg.causal ? j : 0; // rows before j do not see key j under the causal mask
    long krow = ((long)(sg.t0 + j) * sg.n_kv + kvh) * hd;
    for (int d = threadIdx.x; d < hd; d += blockDim.x) {
        float ak = 0.0f, av = 0.0f;
        for (int h = kvh * sg.group; h < (kvh + 1) * sg.group; h++) {
            for (int i = i0; i < len; i++) {
                size_t e = ((size_t)h * len + i) * len + j;
                long qrow = ((long)(sg.t0 + i) * sg.n_heads + h) * hd;
                if (dk) ak += dS[e] * q[qrow + d];
                if (dv) av += P[e] * dout[qrow + d];
            }
        }
        if (dk) dk[krow + d] += sg.scale * ak;
        if (dv) dv[krow + d] += av;
    }
}

extern "C" void attention_backward_cuda(float *dq, float *dk, float *dv, const float *dout, const float *probs,
                                        const float *q, const float *k, const float *v, const int *seg, int n_seg,
                                        int n_heads, int n_kv, int hd, int causal, void *stream)
{
    attn_check_args(seg, n_seg, n_heads, n_kv, hd);
    if (!dq && !dk && !dv) return;
    cudaStream_t st = (cudaStream_t)stream;

    // dS scratch for the largest segment, reused by every segment in stream order.
    size_t ds_max = 0;
    for (int s = 0; s < n_seg; s++) {
        size_t len = (size_t)(seg[s + 1] - seg[s]), n = (size_t)n_heads * len * len;
        if (n > ds_max) ds_max = n;
    }
    if (ds_max == 0) return;
    float *dS = NULL;
    int need_ds = dq || dk;
    if (need_ds) CUDA_CHECK(cudaMallocAsync((void **)&dS, ds_max * sizeof *dS, st));

    // Threads of the dkv kernel: one per element of a row, whole warps, at most REDUCE_THREADS.
    int kv_threads = (hd + 31) / 32 * 32;
    if (kv_threads > REDUCE_THREADS) kv_threads = REDUCE_THREADS;

    size_t off = 0;
    for (int s = 0; s < n_seg; s++) {
        struct attn_seg sg = attn_seg_of(seg, s, n_heads, n_kv, hd, causal);
        if (sg.len == 0) continue;
        const float *P = probs + off;
        if (need_ds) {
            dim3 grid((unsigned)sg.len, (unsigned)n_heads);
            attention_ds_kernel<<<grid, REDUCE_THREADS, (size_t)hd * sizeof(float), st>>>(dq, dS, dout, P, k, v, sg);
            CUDA_CHECK(cudaGetLastError());
        }
        if (dk || dv) {
            dim3 grid((unsigned)sg.len, (unsigned)n_kv);
            attention_dkv_kernel<<<grid, kv_threads, 0, st>>>(dk, dv, dS, P, q, dout, sg);
            CUDA_CHECK(cudaGetLastError());
        }
        off += (size_t)n_heads * sg.len * sg.len;
    }
    if (need_ds) CUDA_CHECK(cudaFreeAsync(dS, st));
}
