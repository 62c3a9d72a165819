// Softmax attention over packed segments, forward and backward: CUDA twins of
// kernels/cpu/attention.c, in fp32, with the same layouts (q, out, dq: [T, n_heads, hd]; k, v, dk,
// dv: [T, n_kv, hd]; probs: segment after segment, head after head, a row-major len*len matrix
// each, row = query, column = key, masked entries 0).
//
// The products are fp32 cuBLAS GEMMs (pedantic math, as the handle is made: no TF32), batched over
// every (segment, head) pair of a run of equal-length segments through pointer arrays (a small kernel
// writes them), so the GQA sharing costs no copy and a micro-batch of equal-length sequences is one
// GEMM per product. The _tf32 twins (the bf16 device model's: mixed precision) let those GEMMs run on
// TF32 tensor cores instead - fp32 operands rounded to 10-bit mantissas inside cuBLAS (finer than the
// bf16 of every projection around them), fp32 accumulation, no casts - at several times the fp32 SIMT
// rate; only the row-wise softmax and its gradient and the group sums are kernels here. The first
// GPU run (docs/performance.md) measured the earlier one-block-per-row kernels at 90% of a 1.5B
// learner step: they read K and V from global memory once per query row; the second found the
// per-segment, per-kv-head GEMMs that replaced them launch-bound (a few microseconds each for far
// less work). The probabilities stay
// materialised (the model keeps them for the backward); the causal mask costs the GEMMs the upper
// triangle, which the softmax zeroes. One round of launches per run, since seg lives on the host.
// Every sum has a fixed order (no float atomics), so results repeat bit for bit on one GPU.
//   forward     S = scale Q K^T into probs; softmax rows in place; out = P V.
//   backward    dP = dO V^T into a scratch shaped like the run's probs; dS = P (dP - rowsum(P dP))
//               in place; dq += scale dS K; dk, dv: per (segment, q head) dS^T Q and P^T dO into a
//               [count, n_heads, len, hd] scratch (one batched GEMM each), then summed over the
//               group's heads in order.
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <math.h>

#include "mmupt/cuda_check.h"
#include "mmupt/gpu_blas.h"
#include "mmupt/kernels.h"
#include "attn_run.cuh"
#include "launch.cuh"
#include "reduce.cuh"

// The (segment, head) blocks a run's batched GEMMs read and write, as pointer arrays: entry b of
// operand X is base + s * seg_stride + (h / head_div) * head_stride. Token-major operands (q, out,
// dq, dout: [T, n_heads, hd]; k, v: [T, n_kv, hd], head_div = group) step by whole rows of the
// segment; block-major ones (probs, dS: [count, n_heads, len, len]; part: [count, n_heads, len, hd])
// by whole blocks.
struct attn_ptr_spec {
    float *base;
    long seg_stride, head_stride;
    int head_div;
};
enum { ATTN_MAX_OPERANDS = 8 };
struct attn_ptr_table {
    struct attn_ptr_spec op[ATTN_MAX_OPERANDS];
    int n_ops, batch, n_heads;
};

// ptrs[i * batch + b] = operand i's block for batch entry b.
static __global__ void attention_ptrs_kernel(float **ptrs, struct attn_ptr_table t)
{
    LAUNCH_LOOP(e, (long)t.n_ops * t.batch)
    {
        int i = (int)(e / t.batch), b = (int)(e % t.batch), s = b / t.n_heads, h = b % t.n_heads;
        const struct attn_ptr_spec *o = &t.op[i];
        ptrs[e] = o->base + s * o->seg_stride + (long)(h / o->head_div) * o->head_stride;
    }
}

// Threads for one row of len entries: whole warps, at most REDUCE_THREADS.
static unsigned attn_row_threads(int len)
{
    int t = (len + 31) / 32 * 32;
    return (unsigned)(t < REDUCE_THREADS ? t : REDUCE_THREADS);
}

// Block (i, b): row i of block b's scores (b = s * n_heads + h), in place, into probabilities; masked
// entries 0. Each thread reads back only the columns it wrote itself.
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

// Block (i, b): dP row i of block b (in dS), in place, into dS = P (dP - D) with D = sum_j P_ij dP_ij;
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

// dst[t0 + s * len + j, g, d] += alpha * sum over the q heads h of kv head g, in order, of
// part[s, h, j, d].
static __global__ void attention_group_sum_kernel(float *dst, const float *part, struct attn_run r, float alpha)
{
    LAUNCH_LOOP(e, (long)r.count * r.len * r.n_kv * r.hd)
    {
        int d = (int)(e % r.hd);
        long q = e / r.hd;
        int g = (int)(q % r.n_kv);
        long row = q / r.n_kv; // s * len + j
        long s = row / r.len, j = row % r.len;
        const float *p = part + ((s * r.n_heads + (long)g * r.group) * r.len + j) * r.hd + d;
        float acc = 0.0f;
        for (int h = 0; h < r.group; h++) acc += p[(long)h * r.len * r.hd];
        dst[((r.t0 + row) * r.n_kv + g) * r.hd + d] += alpha * acc;
    }
}

// The largest run's probability floats (n_heads len^2 a segment) and (segment, head) entries.
static void attn_run_max(const int *seg, int n_seg, int n_heads, int n_kv, int hd, size_t *probs, size_t *rows,
                         int *batch)
{
    *probs = *rows = 0;
    *batch = 0;
    int s = 0;
    for (struct attn_run r; (r = attn_next_run(seg, n_seg, &s, n_heads, n_kv, hd, 0)).count > 0;) {
        size_t p = (size_t)r.count * n_heads * r.len * r.len, t = (size_t)r.count * r.len;
        if (p > *probs) *probs = p;
        if (t > *rows) *rows = t;
        if (r.count * n_heads > *batch) *batch = r.count * n_heads;
    }
}

// Pointer-array specs of the run's operands.
static struct attn_ptr_spec attn_tokens(const float *x, const struct attn_run *r, int heads)
{
    struct attn_ptr_spec o;
    o.base = (float *)x + (long)r->t0 * heads * r->hd;
    o.seg_stride = (long)r->len * heads * r->hd;
    o.head_stride = r->hd;
    o.head_div = heads == r->n_heads ? 1 : r->group;
    return o;
}

static struct attn_ptr_spec attn_blocks(float *x, const struct attn_run *r, long block)
{
    struct attn_ptr_spec o;
    o.base = x;
    o.seg_stride = (long)r->n_heads * block;
    o.head_stride = block;
    o.head_div = 1;
    return o;
}

// Fills ptrs with the n operands' arrays (each r->count * n_heads entries, in the order given).
static void attn_fill_ptrs(float **ptrs, const struct attn_run *r, const struct attn_ptr_spec *ops, int n,
                           cudaStream_t st)
{
    struct attn_ptr_table t;
    MMUPT_CHECK(n <= ATTN_MAX_OPERANDS);
    for (int i = 0; i < n; i++) t.op[i] = ops[i];
    t.n_ops = n;
    t.batch = r->count * r->n_heads;
    t.n_heads = r->n_heads;
    attention_ptrs_kernel<<<launch_blocks((long)n * t.batch), LAUNCH_THREADS, 0, st>>>(ptrs, t);
    CUDA_CHECK(cudaGetLastError());
}

// Row-major X_b [len, len] (a block of P or dS) = alpha * A_b B_b^T: A is q or dout, B (k or v) the
// entry's kv head. Read column-major, X^T = B^T' A: cuBLAS's operands are the row-major buffers as
// they lie.
static void attn_rows_by_keys(const struct gpu_blas *blas, const struct attn_run *r, float alpha, float *const *A,
                              float *const *B, float *const *X)
{
    const float zero = 0.0f;
    int L = r->len;
    CUBLAS_CHECK(cublasSgemmBatched(blas->handle, CUBLAS_OP_T, CUBLAS_OP_N, L, L, r->hd, &alpha, B, r->n_kv * r->hd,
                                    A, r->n_heads * r->hd, &zero, X, L, r->count * r->n_heads));
}

// Row-major Y_b [len, hd] (rows of out or dq) = alpha * X_b B_b + beta * Y_b, X_b a block of P or dS,
// B v or k.
static void attn_rows_by_values(const struct gpu_blas *blas, const struct attn_run *r, float alpha, float *const *X,
                                float *const *B, float beta, float *const *Y)
{
    int L = r->len;
    CUBLAS_CHECK(cublasSgemmBatched(blas->handle, CUBLAS_OP_N, CUBLAS_OP_N, r->hd, L, L, &alpha, B, r->n_kv * r->hd,
                                    X, L, &beta, Y, r->n_heads * r->hd, r->count * r->n_heads));
}

// part_b [len, hd] = X_b^T A_b (X_b a block of dS or P, A q or dout), then dst (dk or dv) += alpha *
// the sum over each kv head's group.
static void attn_keys_grad(const struct gpu_blas *blas, const struct attn_run *r, float alpha, float *const *X,
                           float *const *A, float *const *part_ptrs, const float *part, float *dst)
{
    const float one = 1.0f, zero = 0.0f;
    int L = r->len;
    // part_b^T [hd, L] = A_b^T' [hd, L_i] * (X_b as col-major L_j x L_i)^T
    CUBLAS_CHECK(cublasSgemmBatched(blas->handle, CUBLAS_OP_N, CUBLAS_OP_T, r->hd, L, L, &one, A, r->n_heads * r->hd,
                                    X, L, &zero, part_ptrs, r->hd, r->count * r->n_heads));
    long n = (long)r->count * L * r->n_kv * r->hd;
    attention_group_sum_kernel<<<launch_blocks(n), LAUNCH_THREADS, 0, blas->stream>>>(dst, part, *r, alpha);
    CUDA_CHECK(cudaGetLastError());
}

// The row kernels over every block of the run: grid (len, count * n_heads).
static dim3 attn_row_grid(const struct attn_run *r)
{
    return dim3((unsigned)r->len, (unsigned)(r->count * r->n_heads));
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
    size_t max_probs, max_rows;
    int max_batch;
    attn_run_max(seg, n_seg, n_heads, n_kv, hd, &max_probs, &max_rows, &max_batch);
    if (max_batch == 0) return;
    cudaStream_t st = blas->stream;
    enum { Q, K, V, OUT, P, N_OPS };
    float **ptrs = NULL;
    CUDA_CHECK(cudaMallocAsync((void **)&ptrs, (size_t)N_OPS * max_batch * sizeof *ptrs, st));
    size_t off = 0; // the run's offset in probs
    int s = 0;
    for (struct attn_run r; (r = attn_next_run(seg, n_seg, &s, n_heads, n_kv, hd, causal)).count > 0;) {
        int nb = r.count * n_heads;
        float *Pr = probs + off;
        struct attn_ptr_spec ops[N_OPS] = {attn_tokens(q, &r, n_heads), attn_tokens(k, &r, n_kv),
                                           attn_tokens(v, &r, n_kv), attn_tokens(out, &r, n_heads),
                                           attn_blocks(Pr, &r, (long)r.len * r.len)};
        attn_fill_ptrs(ptrs, &r, ops, N_OPS, st);
        attn_rows_by_keys(blas, &r, r.scale, ptrs + Q * nb, ptrs + K * nb, ptrs + P * nb);
        attention_softmax_kernel<<<attn_row_grid(&r), attn_row_threads(r.len), 0, st>>>(Pr, r.len, r.causal);
        CUDA_CHECK(cudaGetLastError());
        attn_rows_by_values(blas, &r, 1.0f, ptrs + P * nb, ptrs + V * nb, 0.0f, ptrs + OUT * nb);
        off += (size_t)nb * r.len * r.len;
    }
    CUDA_CHECK(cudaFreeAsync(ptrs, st));
}

static void attn_backward(float *dq, float *dk, float *dv, const float *dout, const float *probs, const float *q,
                          const float *k, const float *v, const int *seg, int n_seg, int n_heads, int n_kv, int hd,
                          int causal, const struct gpu_blas *blas)
{
    attn_check_args(seg, n_seg, n_heads, n_kv, hd);
    if (!dq && !dk && !dv) return;
    cudaStream_t st = blas->stream;

    // Scratch for the largest run, reused by every run in stream order: dS (when dq or dk is wanted),
    // the per-head dk/dv terms (when either is) and the pointer arrays.
    size_t max_probs, max_rows;
    int max_batch;
    attn_run_max(seg, n_seg, n_heads, n_kv, hd, &max_probs, &max_rows, &max_batch);
    if (max_batch == 0) return;
    int need_ds = dq || dk, need_part = dk || dv;
    size_t n_ds = need_ds ? max_probs : 0;
    size_t n_part = need_part ? max_rows * n_heads * hd : 0;
    enum { DOUT, Q, K, V, DQ, PR, DS, PART, N_OPS };
    size_t n_floats = (n_ds + n_part + 3) / 4 * 4; // the pointers after them stay 16-byte aligned
    float *scratch = NULL;
    size_t bytes = n_floats * sizeof *scratch + (size_t)N_OPS * max_batch * sizeof(float *);
    CUDA_CHECK(cudaMallocAsync((void **)&scratch, bytes, st));
    float *dS = scratch, *part = scratch + n_ds;
    float **ptrs = (float **)(scratch + n_floats);
    size_t off = 0;
    int s = 0;
    for (struct attn_run r; (r = attn_next_run(seg, n_seg, &s, n_heads, n_kv, hd, causal)).count > 0;) {
        int nb = r.count * n_heads;
        const float *Pr = probs + off;
        long block = (long)r.len * r.len;
        struct attn_ptr_spec ops[N_OPS] = {attn_tokens(dout, &r, n_heads), attn_tokens(q, &r, n_heads),
                                           attn_tokens(k, &r, n_kv), attn_tokens(v, &r, n_kv),
                                           attn_tokens(dq ? dq : dout, &r, n_heads), // dout's: unused without dq
                                           attn_blocks((float *)Pr, &r, block),
                                           attn_blocks(dS, &r, block), attn_blocks(part, &r, (long)r.len * hd)};
        attn_fill_ptrs(ptrs, &r, ops, N_OPS, st);
        float *const *p_dout = ptrs + DOUT * nb, *const *p_q = ptrs + Q * nb, *const *p_k = ptrs + K * nb;
        float *const *p_v = ptrs + V * nb, *const *p_pr = ptrs + PR * nb, *const *p_ds = ptrs + DS * nb;
        if (need_ds) {
            attn_rows_by_keys(blas, &r, 1.0f, p_dout, p_v, p_ds);
            attention_ds_kernel<<<attn_row_grid(&r), attn_row_threads(r.len), 0, st>>>(dS, Pr, r.len, r.causal);
            CUDA_CHECK(cudaGetLastError());
        }
        if (dq) attn_rows_by_values(blas, &r, r.scale, p_ds, p_k, 1.0f, ptrs + DQ * nb);
        if (dk) attn_keys_grad(blas, &r, r.scale, p_ds, p_q, ptrs + PART * nb, part, dk);
        if (dv) attn_keys_grad(blas, &r, 1.0f, p_pr, p_dout, ptrs + PART * nb, part, dv);
        off += (size_t)nb * block;
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
