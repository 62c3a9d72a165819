// Softmax attention over packed segments, forward and backward: CUDA twins of
// kernels/cpu/attention.c, in fp32, with the same layouts (q, out, dq: [T, n_heads, hd]; k, v, dk,
// dv: [T, n_kv, hd]; probs: segment after segment, head after head, a row-major len*len matrix
// each, row = query, column = key, masked entries 0).
//
// The products are fp32 cuBLAS GEMMs (pedantic math, as the handle is made: no TF32), strided-batched
// over the q heads of one kv head, so the GQA sharing costs no copy. The _tf32 twins (the bf16 device
// model's: mixed precision) let those GEMMs run on TF32 tensor cores instead - fp32 operands
// rounded to 10-bit mantissas inside cuBLAS (finer than the bf16 of every projection around them),
// fp32 accumulation, no casts - at several times the fp32 SIMT rate; only the row-wise softmax and its
// gradient and the group sums are kernels here. The first GPU run (docs/performance.md) measured the
// earlier one-block-per-row kernels at 90% of a 1.5B learner step: they read K and V from global
// memory once per query row. The probabilities stay materialised (the model keeps them for the
// backward); the causal mask costs the GEMMs the upper triangle, which the softmax zeroes. One round
// of launches per non-empty segment, since seg lives on the host. Every sum has a fixed order (no
// float atomics), so results repeat bit for bit on one GPU.
//   forward     S = scale Q K^T (per kv head, batched over its q heads) into probs; softmax rows in
//               place; out = P V.
//   backward    dP = dO V^T into a scratch shaped like the segment's probs; dS = P (dP - rowsum(P dP))
//               in place; dq += scale dS K; dk, dv: per q head dS^T Q and P^T dO into a [n_heads,
//               len, hd] scratch (one batched GEMM each), then summed over the group's heads in order.
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <math.h>

#include "mmupt/cuda_check.h"
#include "mmupt/gpu_blas.h"
#include "mmupt/kernels.h"
#include "launch.cuh"
#include "reduce.cuh"

// What every launch of one segment needs: where it starts, its length, the head layout.
struct attn_seg {
    int t0, len, n_heads, n_kv, group, hd, causal;
    float scale;
};

// Threads for one row of len entries: whole warps, at most REDUCE_THREADS.
static unsigned attn_row_threads(int len)
{
    int t = (len + 31) / 32 * 32;
    return (unsigned)(t < REDUCE_THREADS ? t : REDUCE_THREADS);
}

// Block (i, h): row i of head h's scores, in place, into probabilities; masked entries 0. Each
// thread reads back only the columns it wrote itself.
static __global__ void attention_softmax_kernel(float *P, int len, int causal)
{
    __shared__ float scratch[32];
    int i = blockIdx.x, h = blockIdx.y, nj = causal ? i + 1 : len;
    float *p = P + ((size_t)h * len + i) * len;
    float mx = -INFINITY;
    for (int j = threadIdx.x; j < nj; j += blockDim.x) mx = fmaxf(mx, p[j]);
    mx = reduce_block_max(mx, scratch);
    float sum = 0.0f;
    for (int j = threadIdx.x; j < nj; j += blockDim.x) {
        float e = expf(p[j] - mx);
        p[j] = e;
        sum += e;
    }
    float inv = 1.0f / reduce_block_sum(sum, scratch);
    for (int j = threadIdx.x; j < len; j += blockDim.x) p[j] = j < nj ? p[j] * inv : 0.0f;
}

// Block (i, h): dP row i of head h (in dS), in place, into dS = P (dP - D) with D = sum_j P_ij dP_ij;
// masked entries 0.
static __global__ void attention_ds_kernel(float *dS, const float *P, int len, int causal)
{
    __shared__ float scratch[32];
    int i = blockIdx.x, h = blockIdx.y, nj = causal ? i + 1 : len;
    size_t row = ((size_t)h * len + i) * len;
    const float *p = P + row;
    float *ds = dS + row;
    float dsum = 0.0f;
    for (int j = threadIdx.x; j < nj; j += blockDim.x) dsum += p[j] * ds[j];
    float D = reduce_block_sum(dsum, scratch);
    for (int j = threadIdx.x; j < len; j += blockDim.x) ds[j] = j < nj ? p[j] * (ds[j] - D) : 0.0f;
}

// dst[t0 + j, g, d] += alpha * sum over the q heads h of kv head g, in order, of part[h, j, d].
static __global__ void attention_group_sum_kernel(float *dst, const float *part, struct attn_seg sg, float alpha)
{
    LAUNCH_LOOP(e, (long)sg.len * sg.n_kv * sg.hd)
    {
        int d = (int)(e % sg.hd);
        long r = e / sg.hd;
        int g = (int)(r % sg.n_kv), j = (int)(r / sg.n_kv);
        float acc = 0.0f;
        for (int h = g * sg.group; h < (g + 1) * sg.group; h++) acc += part[((size_t)h * sg.len + j) * sg.hd + d];
        dst[((long)(sg.t0 + j) * sg.n_kv + g) * sg.hd + d] += alpha * acc;
    }
}

// Host-side argument checks, the same as the CPU reference's.
static void attn_check_args(const int *seg, int n_seg, int n_heads, int n_kv, int hd)
{
    MMUPT_CHECK(n_seg >= 0 && seg[0] == 0);
    for (int s = 0; s < n_seg; s++) MMUPT_CHECK(seg[s + 1] >= seg[s]);
    MMUPT_CHECK(n_heads > 0 && n_kv > 0 && n_heads % n_kv == 0 && hd > 0);
    MMUPT_CHECK(n_heads <= 65535); // grid y of the row kernels
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

// Row-major X [len, len] (head h's block of P or dS) = alpha * A_h B_g^T, for the q heads h of kv
// head g: A is q or dout ([T, n_heads, hd]), B is k or v ([T, n_kv, hd]). Read column-major, X^T =
// B_g^T' A_h: cuBLAS's operands are the row-major buffers as they lie, B_g shared by the batch.
static void attn_rows_by_keys(const struct gpu_blas *blas, const struct attn_seg *sg, float alpha, const float *A,
                              const float *B, float *X, int g)
{
    const float zero = 0.0f;
    int L = sg->len, h0 = g * sg->group;
    CUBLAS_CHECK(cublasSgemmStridedBatched(blas->handle, CUBLAS_OP_T, CUBLAS_OP_N, L, L, sg->hd, &alpha,
                                           B + ((long)sg->t0 * sg->n_kv + g) * sg->hd, sg->n_kv * sg->hd, 0,
                                           A + ((long)sg->t0 * sg->n_heads + h0) * sg->hd, sg->n_heads * sg->hd,
                                           sg->hd, &zero, X + (size_t)h0 * L * L, L, (long long)L * L, sg->group));
}

// Row-major Y_h [len, hd] (out or dq, rows of [T, n_heads, hd]) = alpha * X_h B_g + beta * Y_h for the q
// heads h of kv head g, X_h head h's [len, len] block of P or dS, B v or k.
static void attn_rows_by_values(const struct gpu_blas *blas, const struct attn_seg *sg, float alpha, const float *X,
                                const float *B, float beta, float *Y, int g)
{
    int L = sg->len, h0 = g * sg->group;
    CUBLAS_CHECK(cublasSgemmStridedBatched(blas->handle, CUBLAS_OP_N, CUBLAS_OP_N, sg->hd, L, L, &alpha,
                                           B + ((long)sg->t0 * sg->n_kv + g) * sg->hd, sg->n_kv * sg->hd, 0,
                                           X + (size_t)h0 * L * L, L, (long long)L * L, &beta,
                                           Y + ((long)sg->t0 * sg->n_heads + h0) * sg->hd, sg->n_heads * sg->hd,
                                           sg->hd, sg->group));
}

// part [n_heads, len, hd] = per q head h, X_h^T A_h (X_h head h's block of dS or P, A q or dout),
// then dst (dk or dv) += alpha * the sum over each kv head's group.
static void attn_keys_grad(const struct gpu_blas *blas, const struct attn_seg *sg, float alpha, const float *X,
                           const float *A, float *part, float *dst)
{
    const float one = 1.0f, zero = 0.0f;
    int L = sg->len;
    // part_h^T [hd, L] = A_h^T' [hd, L_i] * (X_h as col-major L_j x L_i)^T
    CUBLAS_CHECK(cublasSgemmStridedBatched(blas->handle, CUBLAS_OP_N, CUBLAS_OP_T, sg->hd, L, L, &one,
                                           A + (long)sg->t0 * sg->n_heads * sg->hd, sg->n_heads * sg->hd, sg->hd, X,
                                           L, (long long)L * L, &zero, part, sg->hd, (long long)L * sg->hd,
                                           sg->n_heads));
    long n = (long)L * sg->n_kv * sg->hd;
    attention_group_sum_kernel<<<launch_blocks(n), LAUNCH_THREADS, 0, blas->stream>>>(dst, part, *sg, alpha);
    CUDA_CHECK(cudaGetLastError());
}

// The handle's math for a call's GEMMs: TF32 tensor cores, or back to the pedantic fp32 it is made
// with (and that every other fp32 twin expects).
static void attn_math(const struct gpu_blas *blas, int tf32)
{
    CUBLAS_CHECK(cublasSetMathMode(blas->handle, tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_PEDANTIC_MATH));
}

static void attn_forward(float *out, float *probs, const float *q, const float *k, const float *v, const int *seg,
                         int n_seg, int n_heads, int n_kv, int hd, int causal, const struct gpu_blas *blas)
{
    attn_check_args(seg, n_seg, n_heads, n_kv, hd);
    size_t off = 0; // the segment's offset in probs
    for (int s = 0; s < n_seg; s++) {
        struct attn_seg sg = attn_seg_of(seg, s, n_heads, n_kv, hd, causal);
        if (sg.len == 0) continue;
        float *P = probs + off;
        for (int g = 0; g < n_kv; g++) attn_rows_by_keys(blas, &sg, sg.scale, q, k, P, g);
        dim3 grid((unsigned)sg.len, (unsigned)n_heads);
        attention_softmax_kernel<<<grid, attn_row_threads(sg.len), 0, blas->stream>>>(P, sg.len, sg.causal);
        CUDA_CHECK(cudaGetLastError());
        for (int g = 0; g < n_kv; g++) attn_rows_by_values(blas, &sg, 1.0f, P, v, 0.0f, out, g);
        off += (size_t)n_heads * sg.len * sg.len;
    }
}

static void attn_backward(float *dq, float *dk, float *dv, const float *dout, const float *probs, const float *q,
                          const float *k, const float *v, const int *seg, int n_seg, int n_heads, int n_kv, int hd,
                          int causal, const struct gpu_blas *blas)
{
    attn_check_args(seg, n_seg, n_heads, n_kv, hd);
    if (!dq && !dk && !dv) return;
    cudaStream_t st = blas->stream;

    // Scratch for the largest segment, reused by every segment in stream order: dS (when dq or dk is
    // wanted) and the per-head dk/dv terms (when either is).
    size_t len_max = 0;
    for (int s = 0; s < n_seg; s++)
        if ((size_t)(seg[s + 1] - seg[s]) > len_max) len_max = (size_t)(seg[s + 1] - seg[s]);
    if (len_max == 0) return;
    int need_ds = dq || dk, need_part = dk || dv;
    size_t n_ds = need_ds ? (size_t)n_heads * len_max * len_max : 0;
    size_t n_part = need_part ? (size_t)n_heads * len_max * hd : 0;
    float *scratch = NULL;
    CUDA_CHECK(cudaMallocAsync((void **)&scratch, (n_ds + n_part) * sizeof *scratch, st));
    float *dS = scratch, *part = scratch + n_ds;

    size_t off = 0;
    for (int s = 0; s < n_seg; s++) {
        struct attn_seg sg = attn_seg_of(seg, s, n_heads, n_kv, hd, causal);
        if (sg.len == 0) continue;
        const float *P = probs + off;
        if (need_ds) {
            for (int g = 0; g < n_kv; g++) attn_rows_by_keys(blas, &sg, 1.0f, dout, v, dS, g);
            dim3 grid((unsigned)sg.len, (unsigned)n_heads);
            attention_ds_kernel<<<grid, attn_row_threads(sg.len), 0, st>>>(dS, P, sg.len, sg.causal);
            CUDA_CHECK(cudaGetLastError());
        }
        if (dq)
            for (int g = 0; g < n_kv; g++) attn_rows_by_values(blas, &sg, sg.scale, dS, k, 1.0f, dq, g);
        if (dk) attn_keys_grad(blas, &sg, sg.scale, dS, q, part, dk);
        if (dv) attn_keys_grad(blas, &sg, 1.0f, P, dout, part, dv);
        off += (size_t)n_heads * sg.len * sg.len;
    }
    CUDA_CHECK(cudaFreeAsync(scratch, st));
}

extern "C" void attention_forward_cuda(float *out, float *probs, const float *q, const float *k, const float *v,
                                       const int *seg, int n_seg, int n_heads, int n_kv, int hd, int causal,
                                       const struct gpu_blas *blas)
{
    attn_forward(out, probs, q, k, v, seg, n_seg, n_heads, n_kv, hd, causal, blas);
}

extern "C" void attention_forward_tf32_cuda(float *out, float *probs, const float *q, const float *k, const float *v,
                                            const int *seg, int n_seg, int n_heads, int n_kv, int hd, int causal,
                                            const struct gpu_blas *blas)
{
    attn_math(blas, 1);
    attn_forward(out, probs, q, k, v, seg, n_seg, n_heads, n_kv, hd, causal, blas);
    attn_math(blas, 0);
}

extern "C" void attention_backward_cuda(float *dq, float *dk, float *dv, const float *dout, const float *probs,
                                        const float *q, const float *k, const float *v, const int *seg, int n_seg,
                                        int n_heads, int n_kv, int hd, int causal, const struct gpu_blas *blas)
{
    attn_backward(dq, dk, dv, dout, probs, q, k, v, seg, n_seg, n_heads, n_kv, hd, causal, blas);
}

extern "C" void attention_backward_tf32_cuda(float *dq, float *dk, float *dv, const float *dout, const float *probs,
                                             const float *q, const float *k, const float *v, const int *seg,
                                             int n_seg, int n_heads, int n_kv, int hd, int causal,
                                             const struct gpu_blas *blas)
{
    attn_math(blas, 1);
    attn_backward(dq, dk, dv, dout, probs, q, k, v, seg, n_seg, n_heads, n_kv, hd, causal, blas);
    attn_math(blas, 0);
}
