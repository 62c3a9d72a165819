// Linear layers, CUDA twins of kernels/cpu/matmul.c through cuBLAS (fp32, pedantic math: no TF32).
// Row-major out[M,N] = inp[M,K] @ weight[N,K]^T is, read column-major, out^T = weight^T' * inp^T:
// every call below is that identity with the operands' row-major buffers passed as their
// column-major transposes, so no data is moved.
#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <stdint.h>

#include "mmupt/cuda_check.h"
#include "mmupt/err.h"
#include "mmupt/gpu_blas.h"
#include "mmupt/kernels.h"
#include "launch.cuh"
#include "reduce.cuh"

// out[r, :] += bias: one thread per element.
static __global__ void add_bias_kernel(float *out, const float *bias, long rows, int n)
{
    LAUNCH_LOOP(i, rows * n) out[i] += bias[i % n];
}

extern "C" void matmul_forward_cuda(float *out, const float *inp, const float *weight, const float *bias, int M,
                                    int K, int N, const struct gpu_blas *blas)
{
    if (M <= 0 || N <= 0) return;
    const float one = 1.0f, zero = 0.0f;
    int ldk = K > 0 ? K : 1; // cuBLAS wants leading dimensions >= 1 even for an empty inner dimension
    // out^T [N,M] = (weight as col-major K x N)^T [N,K] * (inp as col-major K x M) [K,M]
    CUBLAS_CHECK(cublasSgemm(blas->handle, CUBLAS_OP_T, CUBLAS_OP_N, N, M, K, &one, weight, ldk, inp, ldk, &zero, out, N));
    if (bias) {
        add_bias_kernel<<<launch_blocks((long)M * N), LAUNCH_THREADS, 0, blas->stream>>>(out, bias, M, N);
        CUDA_CHECK(cudaGetLastError());
    }
}

extern "C" void matmul_backward_cuda(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                                     const float *weight, int M, int K, int N, const struct gpu_blas *blas)
{
    if (M <= 0 || N <= 0) return;
    const float one = 1.0f;
    // dinp [M,K] += dout [M,N] @ weight [N,K]: dinp^T [K,M] += (weight as col-major K x N) * (dout^T as N x M)
    if (dinp && K > 0) // K = 0: dinp and dweight are empty
        CUBLAS_CHECK(cublasSgemm(blas->handle, CUBLAS_OP_N, CUBLAS_OP_N, K, M, N, &one, weight, K, dout, N, &one, dinp, K));
    // dweight [N,K] += dout^T [N,M] @ inp [M,K]: dweight^T [K,N] += (inp^T as K x M) * (dout^T as N x M)^T
    if (dweight && K > 0)
        CUBLAS_CHECK(cublasSgemm(blas->handle, CUBLAS_OP_N, CUBLAS_OP_T, K, N, M, &one, inp, K, dout, N, &one, dweight, K));
    // dbias [N] += column sums of dout (reduce.cuh: chunked, then in chunk order)
    if (dbias) reduce_cols(dbias, dout, M, N, blas->stream);
}

// ---- Mixed precision: bf16 operands on tensor cores, fp32 accumulation, fp32 results ----
// The operands are rounded into the caller's scratch by the cast twin, then cublasGemmEx multiplies
// bf16 x bf16 into the fp32 output with CUBLAS_COMPUTE_32F. The handle stays in pedantic mode for the
// fp32 twins above; these calls switch it to the default (tensor-core) math with reduced-precision
// reductions disallowed, so split-K partial sums stay fp32, and switch it back. (cuBLASLt's plans
// keep the same rule through their reduction-scheme preference.)

// c's type: fp32, or bf16 (ctype CUDA_R_16BF: the fp32 accumulators rounded once on the way out).
// With GEMM tuning on (MMUPT_GEMM_TUNE=1), through cuBLASLt's plans (src/gpu/gemm_lt.c), which time
// the shape's candidate algorithms once; cublasGemmEx when tuning is off or cuBLASLt declines.
static void gemm_bf16_to(const struct gpu_blas *blas, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                         const uint16_t *a, int lda, const uint16_t *b, int ldb, float beta, void *c, cudaDataType ctype,
                         int ldc)
{
    if (blas->tune) {
        struct gemm_lt_call call = {ta, tb, m, n, k, lda, ldb, ldc, a, b, c, ctype, beta, (const float *)NULL, NULL};
        if (gemm_lt_bf16(blas, &call) == 0) return;
    }
    const float one = 1.0f;
    CUBLAS_CHECK(cublasSetMathMode(blas->handle,
                                   (cublasMath_t)(CUBLAS_DEFAULT_MATH | CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION)));
    CUBLAS_CHECK(cublasGemmEx(blas->handle, ta, tb, m, n, k, &one, a, CUDA_R_16BF, lda, b, CUDA_R_16BF, ldb, &beta, c,
                              ctype, ldc, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    CUBLAS_CHECK(cublasSetMathMode(blas->handle, CUBLAS_PEDANTIC_MATH));
}

static void gemm_bf16(const struct gpu_blas *blas, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                      const uint16_t *a, int lda, const uint16_t *b, int ldb, float beta, float *c, int ldc)
{
    gemm_bf16_to(blas, ta, tb, m, n, k, a, lda, b, ldb, beta, c, CUDA_R_32F, ldc);
}

// out = x W^T + bias in one launch through cuBLASLt's bias epilogue (D = A B + bias in fp32, the sum
// add_bias_kernel would make after the GEMM): the fp32 twin's identity out^T [N,M] = W^T' x^T, W and
// x bf16, through the shape's plan (src/gpu/gemm_lt.c). 0, or -1 (nothing launched) when cuBLASLt
// offers no algorithm for the shape and the operands' alignment: the caller then takes cublasGemmEx
// and add_bias_kernel.
static int gemm_bf16_bias_lt(const struct gpu_blas *blas, int M, int K, int N, const uint16_t *w, const uint16_t *x,
                             const float *bias, float *out)
{
    struct gemm_lt_call call = {CUBLAS_OP_T, CUBLAS_OP_N, N, M, K, K, K, N, w, x, out, CUDA_R_32F, 0.0f, bias, NULL};
    return gemm_lt_bf16(blas, &call);
}

extern "C" void matmul_forward_bf16_cuda(float *out, const float *inp, const uint16_t *weight, const float *bias,
                                         int M, int K, int N, uint16_t *scratch, int cast_done,
                                         const struct gpu_blas *blas)
{
    MMUPT_CHECK(inp || cast_done); // a caller may keep only the rounding
    if (M <= 0 || N <= 0) return;
    if (K <= 0) { // an empty sum: GemmEx with k = 0 is legal, but zeroing says what happens
        CUDA_CHECK(cudaMemsetAsync(out, 0, (size_t)M * N * sizeof *out, blas->stream));
    } else {
        if (!cast_done) cast_bf16_cuda(scratch, inp, (long)M * K, blas->stream);
        // a few rows (a decode step): the skinny kernel, when on and it takes the shape (bias included)
        if (blas->skinny && matmul_skinny_bf16_cuda(out, scratch, weight, bias, M, K, N, blas) == 0) return;
        // a bias: cuBLASLt's epilogue adds it in the GEMM's own pass
        if (bias && gemm_bf16_bias_lt(blas, M, K, N, weight, scratch, bias, out) == 0) return;
        // the fp32 twin's identity: out^T [N,M] = weight^T' [N,K] * inp^T [K,M]
        gemm_bf16(blas, CUBLAS_OP_T, CUBLAS_OP_N, N, M, K, weight, K, scratch, K, 0.0f, out, N);
    }
    if (bias) {
        add_bias_kernel<<<launch_blocks((long)M * N), LAUNCH_THREADS, 0, blas->stream>>>(out, bias, M, N);
        CUDA_CHECK(cudaGetLastError());
    }
}

// out = x W^T + res in one launch: cuBLASLt reads res as C and writes out as D (beta 1, out of
// place), the epilogue's fp32 sum of the accumulators and res what residual_forward_cuda would make
// of them - the launch and the fp32 round trip of the product it saves. Where cuBLASLt declines the
// call (nothing launched then), the product and residual_forward_cuda.
extern "C" void matmul_forward_bf16_res_cuda(float *out, const float *res, const float *inp, const uint16_t *weight,
                                             int M, int K, int N, uint16_t *scratch, int cast_done,
                                             const struct gpu_blas *blas)
{
    MMUPT_CHECK((inp || cast_done) && out != res);
    if (M <= 0 || N <= 0) return;
    if (K > 0) {
        if (!cast_done) cast_bf16_cuda(scratch, inp, (long)M * K, blas->stream);
        struct gemm_lt_call call = {CUBLAS_OP_T, CUBLAS_OP_N, N, M, K, K, K, N, weight, scratch, out, CUDA_R_32F, 1.0f,
                                    (const float *)NULL, res};
        if (gemm_lt_bf16(blas, &call) == 0) return;
    }
    matmul_forward_bf16_cuda(out, inp, weight, NULL, M, K, N, scratch, 1, blas); // the cast is done by now
    residual_forward_cuda(out, out, res, (long)M * N, blas->stream);
}

extern "C" void matmul_forward_bf16_out16_cuda(uint16_t *out16, const float *inp, const uint16_t *weight, int M, int K,
                                               int N, uint16_t *scratch, int cast_done, const struct gpu_blas *blas)
{
    MMUPT_CHECK(inp || cast_done);
    if (M <= 0 || N <= 0) return;
    if (K <= 0) { // an empty sum: zeros (bf16 +0 is all-zero bits too)
        CUDA_CHECK(cudaMemsetAsync(out16, 0, (size_t)M * N * sizeof *out16, blas->stream));
        return;
    }
    if (!cast_done) cast_bf16_cuda(scratch, inp, (long)M * K, blas->stream);
    gemm_bf16_to(blas, CUBLAS_OP_T, CUBLAS_OP_N, N, M, K, weight, K, scratch, K, 0.0f, out16, CUDA_R_16BF, N);
}

// The two GEMMs of the bf16 backward from dy, dout already rounded ([M, N]); x16 is inp rounded,
// or NULL: then inp is rounded into x (M*K values) on the way (only for dweight). K > 0.
static void backward_bf16_gemms(float *dinp, float dinp_beta, float *dweight, float dweight_beta, const uint16_t *dy,
                                const float *inp, const uint16_t *x16, const uint16_t *weight, int M, int K, int N,
                                uint16_t *x, const struct gpu_blas *blas)
{
    // the fp32 twin's identities: dinp^T [K,M] += weight' [K,N] * dy^T [N,M]; dweight^T [K,N] += x^T dy
    if (dinp) gemm_bf16(blas, CUBLAS_OP_N, CUBLAS_OP_N, K, M, N, weight, K, dy, N, dinp_beta, dinp, K);
    if (dweight) {
        if (!x16) {
            cast_bf16_cuda(x, inp, (long)M * K, blas->stream);
            x16 = x;
        }
        gemm_bf16(blas, CUBLAS_OP_N, CUBLAS_OP_T, K, N, M, x16, K, dy, N, dweight_beta, dweight, K);
    }
}

// A beta of 0 with nothing to multiply (an empty sum): the product is zero, so the gradients
// assigned are zeroed (dinp [M, K], dweight [N, K]).
static void assign_empty(float *dinp, float dinp_beta, float *dweight, float dweight_beta, int M, int K, int N,
                         const struct gpu_blas *blas)
{
    if (dinp && dinp_beta == 0.0f && M > 0 && K > 0)
        CUDA_CHECK(cudaMemsetAsync(dinp, 0, (size_t)M * K * sizeof *dinp, blas->stream));
    if (dweight && dweight_beta == 0.0f && N > 0 && K > 0)
        CUDA_CHECK(cudaMemsetAsync(dweight, 0, (size_t)N * K * sizeof *dweight, blas->stream));
}

// The two bf16 backwards' argument rules: each beta 0 (assign) or 1 (add), and dweight needs inp or
// its kept rounding inp16.
static void check_backward_args(float dinp_beta, const float *dweight, float dweight_beta, const float *inp,
                                const uint16_t *inp16)
{
    MMUPT_CHECK((dinp_beta == 0.0f || dinp_beta == 1.0f) && (dweight_beta == 0.0f || dweight_beta == 1.0f));
    MMUPT_CHECK(!dweight || inp || inp16); // inp may be NULL where its rounding is kept
}

extern "C" void matmul_backward_bf16_cuda(float *dinp, float dinp_beta, float *dweight, float dweight_beta,
                                          float *dbias, const float *dout, const float *inp, const uint16_t *inp16,
                                          const uint16_t *weight, int M, int K, int N, uint16_t *scratch,
                                          const struct gpu_blas *blas)
{
    check_backward_args(dinp_beta, dweight, dweight_beta, inp, inp16);
    if (M <= 0 || N <= 0 || K <= 0) {
        assign_empty(dinp, dinp_beta, dweight, dweight_beta, M, K, N, blas);
        if (dbias && M > 0 && N > 0) reduce_cols(dbias, dout, M, N, blas->stream);
        return;
    }
    if (dinp || dweight) {
        cast_bf16_cuda(scratch, dout, (long)M * N, blas->stream);
        backward_bf16_gemms(dinp, dinp_beta, dweight, dweight_beta, scratch, inp, inp16, weight, M, K, N,
                            scratch + matmul_bf16_backward_x_offset(M, N), blas);
    }
    if (dbias) reduce_cols(dbias, dout, M, N, blas->stream); // from the fp32 gradient
}

extern "C" void matmul_backward_bf16_dy_cuda(float *dinp, float dinp_beta, float *dweight, float dweight_beta,
                                             const uint16_t *dout16, const float *inp, const uint16_t *inp16,
                                             const uint16_t *weight, int M, int K, int N, uint16_t *scratch,
                                             const struct gpu_blas *blas)
{
    check_backward_args(dinp_beta, dweight, dweight_beta, inp, inp16);
    if (M <= 0 || N <= 0 || K <= 0) {
        assign_empty(dinp, dinp_beta, dweight, dweight_beta, M, K, N, blas);
        return;
    }
    backward_bf16_gemms(dinp, dinp_beta, dweight, dweight_beta, dout16, inp, inp16, weight, M, K, N, scratch, blas);
}

extern "C" void matmul_backward_bf16_dy16_cuda(uint16_t *dinp16, float *dweight, float dweight_beta,
                                               const uint16_t *dout16, const uint16_t *inp16, const uint16_t *weight,
                                               int M, int K, int N, const struct gpu_blas *blas)
{
    check_backward_args(0.0f, dweight, dweight_beta, NULL, inp16);
    if (M <= 0 || N <= 0 || K <= 0) { // an empty sum: zeros assigned (bf16 +0 is all-zero bits too)
        assign_empty(NULL, 0.0f, dweight, dweight_beta, M, K, N, blas);
        if (dinp16 && M > 0 && K > 0) CUDA_CHECK(cudaMemsetAsync(dinp16, 0, (size_t)M * K * sizeof *dinp16, blas->stream));
        return;
    }
    // dinp^T [K,M] = weight' [K,N] * dy^T [N,M], rounded to bf16 on the way out (as the gate/up forward)
    if (dinp16)
        gemm_bf16_to(blas, CUBLAS_OP_N, CUBLAS_OP_N, K, M, N, weight, K, dout16, N, 0.0f, dinp16, CUDA_R_16BF, K);
    if (dweight) backward_bf16_gemms(NULL, 0.0f, dweight, dweight_beta, dout16, NULL, inp16, weight, M, K, N, NULL, blas);
}
