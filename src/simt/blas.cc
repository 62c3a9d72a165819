/* cuBLAS's GEMMs for the SIMT interpreter (include/cublas_v2.h here; src/simt/README.md): cuBLAS's
 * argument rules (a wrong leading dimension is CUBLAS_STATUS_INVALID_VALUE, as on the GPU), operand
 * extents checked against their device allocations, and the column-major product
 *     C = alpha * op(A) * op(B) + beta * C     (C not read when beta is 0, as BLAS promises)
 * by a plain loop with fp32 accumulation. The work goes through the handle's stream, so a graph
 * capture records it like a kernel. */
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

cublasStatus_t gemm(const char *who, cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                    float alpha, const void *A, cudaDataType at, int lda, const void *B, cudaDataType bt, int ldb,
                    float beta, float *C, int ldc)
{
    if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
    if ((ta != CUBLAS_OP_N && ta != CUBLAS_OP_T) || (tb != CUBLAS_OP_N && tb != CUBLAS_OP_T) || m < 0 || n < 0 ||
        k < 0)
        return CUBLAS_STATUS_INVALID_VALUE;
    bool tra = ta == CUBLAS_OP_T, trb = tb == CUBLAS_OP_T;
    int need_a = tra ? k : m, need_b = trb ? n : k;
    if (lda < (need_a > 1 ? need_a : 1) || ldb < (need_b > 1 ? need_b : 1) || ldc < (m > 1 ? m : 1))
        return CUBLAS_STATUS_INVALID_VALUE;
    if (m == 0 || n == 0) return CUBLAS_STATUS_SUCCESS;
    if (k > 0) {
        simt_require_device(who, "A", A, extent(m, k, lda, tra, at));
        simt_require_device(who, "B", B, extent(k, n, ldb, trb, bt));
    }
    simt_require_device(who, "C", C, extent(m, n, ldc, false, CUDA_R_32F));
    operand a{A, at, lda, tra}, b{B, bt, ldb, trb};
    cudaError_t e = simt_stream_submit(h->stream, [=] {
        for (long j = 0; j < n; j++)
            for (long i = 0; i < m; i++) {
                float acc = 0.0f;
                for (long l = 0; l < k; l++) acc += a.at(i, l) * b.at(l, j);
                float *c = C + i + j * (long)ldc;
                *c = beta == 0.0f ? alpha * acc : alpha * acc + beta * *c;
            }
    });
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

cublasStatus_t cublasGemmEx(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                            const void *alpha, const void *A, cudaDataType Atype, int lda, const void *B,
                            cudaDataType Btype, int ldb, const void *beta, void *C, cudaDataType Ctype, int ldc,
                            cublasComputeType_t compute, cublasGemmAlgo_t algo)
{
    (void)algo;
    /* the combinations mmupt uses: fp32 or bf16 operands into fp32, fp32 compute (host scalars are fp32) */
    bool ok_ab = Atype == Btype && (Atype == CUDA_R_32F || Atype == CUDA_R_16BF);
    if (!ok_ab || Ctype != CUDA_R_32F || (compute != CUBLAS_COMPUTE_32F && compute != CUBLAS_COMPUTE_32F_PEDANTIC))
        return CUBLAS_STATUS_NOT_SUPPORTED;
    return gemm("cublasGemmEx", h, ta, tb, m, n, k, *(const float *)alpha, A, Atype, lda, B, Btype, ldb,
                *(const float *)beta, (float *)C, ldc);
}

} // extern "C"
