/* cuBLAS's GEMMs for the SIMT interpreter (include/cublas_v2.h here; src/simt/README.md): cuBLAS's
 * argument rules (a wrong leading dimension is CUBLAS_STATUS_INVALID_VALUE, as on the GPU), operand
 * extents checked against their device allocations, and the column-major product
 *     C = alpha * op(A) * op(B) + beta * C     (C not read when beta is 0, as BLAS promises)
 * by a plain loop with fp32 accumulation (C fp32, or - cublasGemmEx with beta 0 - bf16: the sum
 * rounded once). The work goes through the handle's stream, so a graph capture records it like a
 * kernel. */
#include <stdint.h>
#include <string.h>

#include "cublas_v2.h"
#include "mmupt/bf16.h"
#include "simt_internal.h"

struct simt_blas_handle {
    cudaStream_t stream;
    cublasMath_t math;
};

namespace {

struct operand {
    const void *p;
    cudaDataType type;
    int ld;
    bool trans;
    float at(long r, long c) const /* element (r, c) of op(X) */
    {
        long i = trans ? c + r * (long)ld : r + c * (long)ld;
        if (type == CUDA_R_32F) return ((const float *)p)[i];
        return bf16_to_f32(((const uint16_t *)p)[i]);
    }
};

size_t elem_bytes(cudaDataType t) { return t == CUDA_R_32F ? 4 : 2; }

/* Bytes an operand of rows x cols (as op(X)) spans from its pointer. */
size_t extent(long rows, long cols, int ld, bool trans, cudaDataType t)
{
    if (rows == 0 || cols == 0) return 0;
    long outer = trans ? rows : cols, inner = trans ? cols : rows;
    return (size_t)((outer - 1) * (long)ld + inner) * elem_bytes(t);
}

/* cuBLAS's argument rules for one GEMM (what a batch entry shares with the others). */
cublasStatus_t gemm_args(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, int lda,
                         int ldb, int ldc)
{
    if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
    if ((ta != CUBLAS_OP_N && ta != CUBLAS_OP_T) || (tb != CUBLAS_OP_N && tb != CUBLAS_OP_T) || m < 0 || n < 0 ||
        k < 0)
        return CUBLAS_STATUS_INVALID_VALUE;
    int need_a = ta == CUBLAS_OP_T ? k : m, need_b = tb == CUBLAS_OP_T ? n : k;
    if (lda < (need_a > 1 ? need_a : 1) || ldb < (need_b > 1 ? need_b : 1) || ldc < (m > 1 ? m : 1))
        return CUBLAS_STATUS_INVALID_VALUE;
    return CUBLAS_STATUS_SUCCESS;
}

/* Fatal unless every operand of an m x n x k product lies inside a device allocation. */
void gemm_require(const char *who, int m, int n, int k, const operand &a, const operand &b, const void *C, int ldc,
                  cudaDataType ct = CUDA_R_32F)
{
    if (m == 0 || n == 0) return;
    if (k > 0) {
        simt_require_device(who, "A", a.p, extent(m, k, a.ld, a.trans, a.type));
        simt_require_device(who, "B", b.p, extent(k, n, b.ld, b.trans, b.type));
    }
    simt_require_device(who, "C", C, extent(m, n, ldc, false, ct));
}

/* C = alpha op(A) op(B) + beta C, column-major, fp32 accumulation in k order; a bf16 C (beta 0)
 * gets the result rounded to nearest even. */
void gemm_loop(int m, int n, int k, float alpha, const operand &a, const operand &b, float beta, void *C, int ldc,
               cudaDataType ct = CUDA_R_32F)
{
    for (long j = 0; j < n; j++)
        for (long i = 0; i < m; i++) {
            float acc = 0.0f;
            for (long l = 0; l < k; l++) acc += a.at(i, l) * b.at(l, j);
            long at = i + j * (long)ldc;
            if (ct == CUDA_R_16BF) {
                ((uint16_t *)C)[at] = bf16_from_f32(alpha * acc);
                continue;
            }
            float *c = (float *)C + at;
            *c = beta == 0.0f ? alpha * acc : alpha * acc + beta * *c;
        }
}

cublasStatus_t gemm(const char *who, cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                    float alpha, const void *A, cudaDataType at, int lda, const void *B, cudaDataType bt, int ldb,
                    float beta, void *C, int ldc, cudaDataType ct = CUDA_R_32F)
{
    cublasStatus_t s = gemm_args(h, ta, tb, m, n, k, lda, ldb, ldc);
    if (s != CUBLAS_STATUS_SUCCESS || m == 0 || n == 0) return s;
    operand a{A, at, lda, ta == CUBLAS_OP_T}, b{B, bt, ldb, tb == CUBLAS_OP_T};
    gemm_require(who, m, n, k, a, b, C, ldc, ct);
    cudaError_t e = simt_stream_submit(h->stream, [=] { gemm_loop(m, n, k, alpha, a, b, beta, C, ldc, ct); });
    return e == cudaSuccess ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_EXECUTION_FAILED;
}

} // namespace

extern "C" {

cublasStatus_t cublasCreate(cublasHandle_t *h)
{
    *h = new simt_blas_handle{nullptr, CUBLAS_DEFAULT_MATH};
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasDestroy(cublasHandle_t h)
{
    if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
    delete h;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetStream(cublasHandle_t h, cudaStream_t st)
{
    if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
    h->stream = st;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetMathMode(cublasHandle_t h, cublasMath_t mode)
{
    if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
    h->math = mode;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasGetMathMode(cublasHandle_t h, cublasMath_t *mode)
{
    if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
    *mode = h->math;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasGetProperty(libraryPropertyType type, int *value)
{
    *value = 0; /* not cuBLAS: `mmupt version` shows 0 */
    (void)type;
    return CUBLAS_STATUS_SUCCESS;
}

const char *cublasGetStatusString(cublasStatus_t s)
{
    switch (s) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    }
    return "CUBLAS_STATUS_UNKNOWN";
}

cublasStatus_t cublasSgemm(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                           const float *alpha, const float *A, int lda, const float *B, int ldb, const float *beta,
                           float *C, int ldc)
{
    return gemm("cublasSgemm", h, ta, tb, m, n, k, *alpha, A, CUDA_R_32F, lda, B, CUDA_R_32F, ldb, *beta, C, ldc);
}

/* One GEMM per batch entry, in order, each checked as cublasSgemm checks one (a stride of 0 shares
 * that operand, as cuBLAS allows). */
cublasStatus_t cublasSgemmStridedBatched(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n,
                                         int k, const float *alpha, const float *A, int lda, long long strideA,
                                         const float *B, int ldb, long long strideB, const float *beta, float *C,
                                         int ldc, long long strideC, int batch)
{
    if (batch < 0) return CUBLAS_STATUS_INVALID_VALUE;
    for (int b = 0; b < batch; b++) {
        cublasStatus_t s = gemm("cublasSgemmStridedBatched", h, ta, tb, m, n, k, *alpha, A + b * strideA, CUDA_R_32F,
                                lda, B + b * strideB, CUDA_R_32F, ldb, *beta, C + b * strideC, ldc);
        if (s != CUBLAS_STATUS_SUCCESS) return s;
    }
    return CUBLAS_STATUS_SUCCESS;
}

/* Pointer-array batches: the arrays live in device memory and may be written by a kernel earlier in
 * the stream, so the entries are read, and their operands checked, when the work runs. */
cublasStatus_t cublasSgemmBatched(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                                  const float *alpha, const float *const Aarray[], int lda,
                                  const float *const Barray[], int ldb, const float *beta, float *const Carray[],
                                  int ldc, int batch)
{
    cublasStatus_t s = gemm_args(h, ta, tb, m, n, k, lda, ldb, ldc);
    if (s != CUBLAS_STATUS_SUCCESS) return s;
    if (batch < 0) return CUBLAS_STATUS_INVALID_VALUE;
    if (batch == 0 || m == 0 || n == 0) return CUBLAS_STATUS_SUCCESS;
    const char *who = "cublasSgemmBatched";
    simt_require_device(who, "Aarray", Aarray, (size_t)batch * sizeof *Aarray);
    simt_require_device(who, "Barray", Barray, (size_t)batch * sizeof *Barray);
    simt_require_device(who, "Carray", Carray, (size_t)batch * sizeof *Carray);
    float al = *alpha, be = *beta;
    bool tra = ta == CUBLAS_OP_T, trb = tb == CUBLAS_OP_T;
    cudaError_t e = simt_stream_submit(h->stream, [=] {
        for (int i = 0; i < batch; i++) {
            operand a{Aarray[i], CUDA_R_32F, lda, tra}, b{Barray[i], CUDA_R_32F, ldb, trb};
            gemm_require(who, m, n, k, a, b, Carray[i], ldc);
            gemm_loop(m, n, k, al, a, b, be, Carray[i], ldc);
        }
    });
    return e == cudaSuccess ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_EXECUTION_FAILED;
}

cublasStatus_t cublasGemmEx(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                            const void *alpha, const void *A, cudaDataType Atype, int lda, const void *B,
                            cudaDataType Btype, int ldb, const void *beta, void *C, cudaDataType Ctype, int ldc,
                            cublasComputeType_t compute, cublasGemmAlgo_t algo)
{
    (void)algo;
    /* the combinations mmupt uses: fp32 or bf16 operands into fp32, or bf16 operands into bf16 with
     * beta 0 (the model's bf16 gate/up), fp32 compute (host scalars are fp32) */
    bool ok_ab = Atype == Btype && (Atype == CUDA_R_32F || Atype == CUDA_R_16BF);
    bool ok_c = Ctype == CUDA_R_32F || (Ctype == CUDA_R_16BF && Atype == CUDA_R_16BF && *(const float *)beta == 0.0f);
    if (!ok_ab || !ok_c || (compute != CUBLAS_COMPUTE_32F && compute != CUBLAS_COMPUTE_32F_PEDANTIC))
        return CUBLAS_STATUS_NOT_SUPPORTED;
    return gemm("cublasGemmEx", h, ta, tb, m, n, k, *(const float *)alpha, A, Atype, lda, B, Btype, ldb,
                *(const float *)beta, C, ldc, Ctype);
}

} // extern "C"
