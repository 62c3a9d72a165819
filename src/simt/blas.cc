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
#include "cublasLt.h"
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

struct simt_lt_handle {
    int unused;
};
enum { SIMT_LT_ALGOS = 2 };
struct simt_lt_desc {
    cublasOperation_t ta = CUBLAS_OP_N, tb = CUBLAS_OP_N;
    int epilogue = CUBLASLT_EPILOGUE_DEFAULT;
    const void *bias = nullptr;
};
struct simt_lt_layout {
    cudaDataType type;
    uint64_t rows, cols;
    int64_t ld;
};
struct simt_lt_pref {
    size_t workspace;
};

namespace {

/* The shapes agree: op(A) is m x k, op(B) k x n, C and D m x n (column-major layouts); A and B one
 * type, C and D one type: fp32, or bf16 with bf16 operands (the combinations mmupt uses). */
cublasStatus_t lt_check(const simt_lt_desc *op, const simt_lt_layout *a, const simt_lt_layout *b,
                        const simt_lt_layout *c, const simt_lt_layout *d)
{
    if (!op || !a || !b || !c || !d) return CUBLAS_STATUS_INVALID_VALUE;
    uint64_t m = d->rows, n = d->cols;
    uint64_t am = op->ta == CUBLAS_OP_N ? a->rows : a->cols, k = op->ta == CUBLAS_OP_N ? a->cols : a->rows;
    uint64_t bk = op->tb == CUBLAS_OP_N ? b->rows : b->cols, bn = op->tb == CUBLAS_OP_N ? b->cols : b->rows;
    if (am != m || bk != k || bn != n || c->rows != m || c->cols != n) return CUBLAS_STATUS_INVALID_VALUE;
    /* C and D fp32, or (bf16 operands) bf16 */
    bool ok_d = d->type == CUDA_R_32F || (d->type == CUDA_R_16BF && a->type == CUDA_R_16BF);
    if (a->type != b->type || c->type != d->type || !ok_d) return CUBLAS_STATUS_NOT_SUPPORTED;
    return CUBLAS_STATUS_SUCCESS;
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

/* ---- cuBLASLt (include/cublasLt.h here): one matmul with an optional fp32 bias epilogue ---- */

size_t cublasLtGetVersion(void) { return 1; }

cublasStatus_t cublasLtCreate(cublasLtHandle_t *h)
{
    *h = new simt_lt_handle{0};
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtDestroy(cublasLtHandle_t h)
{
    if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
    delete h;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulDescCreate(cublasLtMatmulDesc_t *d, cublasComputeType_t compute, cudaDataType_t scale)
{
    if (compute != CUBLAS_COMPUTE_32F || scale != CUDA_R_32F) return CUBLAS_STATUS_NOT_SUPPORTED;
    *d = new simt_lt_desc{};
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulDescDestroy(cublasLtMatmulDesc_t d)
{
    delete d;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulDescSetAttribute(cublasLtMatmulDesc_t d, cublasLtMatmulDescAttributes_t attr,
                                              const void *buf, size_t size)
{
    if (!d || !buf) return CUBLAS_STATUS_INVALID_VALUE;
    switch (attr) {
    case CUBLASLT_MATMUL_DESC_TRANSA:
    case CUBLASLT_MATMUL_DESC_TRANSB: {
        int32_t v;
        if (size != sizeof v) return CUBLAS_STATUS_INVALID_VALUE;
        memcpy(&v, buf, sizeof v);
        if (v != CUBLAS_OP_N && v != CUBLAS_OP_T) return CUBLAS_STATUS_INVALID_VALUE;
        (attr == CUBLASLT_MATMUL_DESC_TRANSA ? d->ta : d->tb) = (cublasOperation_t)v;
        return CUBLAS_STATUS_SUCCESS;
    }
    case CUBLASLT_MATMUL_DESC_EPILOGUE: {
        uint32_t v;
        if (size != sizeof v) return CUBLAS_STATUS_INVALID_VALUE;
        memcpy(&v, buf, sizeof v);
        if (v != CUBLASLT_EPILOGUE_DEFAULT && v != CUBLASLT_EPILOGUE_BIAS) return CUBLAS_STATUS_NOT_SUPPORTED;
        d->epilogue = (int)v;
        return CUBLAS_STATUS_SUCCESS;
    }
    case CUBLASLT_MATMUL_DESC_BIAS_POINTER:
        if (size != sizeof d->bias) return CUBLAS_STATUS_INVALID_VALUE;
        memcpy(&d->bias, buf, sizeof d->bias);
        return CUBLAS_STATUS_SUCCESS;
    case CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE: {
        int32_t v;
        if (size != sizeof v) return CUBLAS_STATUS_INVALID_VALUE;
        memcpy(&v, buf, sizeof v);
        if (v != CUDA_R_32F) return CUBLAS_STATUS_NOT_SUPPORTED; /* the only bias type mmupt uses */
        return CUBLAS_STATUS_SUCCESS;
    }
    }
    return CUBLAS_STATUS_NOT_SUPPORTED;
}

cublasStatus_t cublasLtMatrixLayoutCreate(cublasLtMatrixLayout_t *l, cudaDataType_t type, uint64_t rows, uint64_t cols,
                                          int64_t ld)
{
    if (type != CUDA_R_32F && type != CUDA_R_16BF) return CUBLAS_STATUS_NOT_SUPPORTED;
    if (ld < (int64_t)(rows > 1 ? rows : 1)) return CUBLAS_STATUS_INVALID_VALUE; /* column-major */
    *l = new simt_lt_layout{type, rows, cols, ld};
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatrixLayoutDestroy(cublasLtMatrixLayout_t l)
{
    delete l;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulPreferenceCreate(cublasLtMatmulPreference_t *p)
{
    *p = new simt_lt_pref{0};
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulPreferenceDestroy(cublasLtMatmulPreference_t p)
{
    delete p;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulPreferenceSetAttribute(cublasLtMatmulPreference_t p,
                                                    cublasLtMatmulPreferenceAttributes_t attr, const void *buf,
                                                    size_t size)
{
    if (!p || !buf) return CUBLAS_STATUS_INVALID_VALUE;
    if (attr == CUBLASLT_MATMUL_PREF_REDUCTION_SCHEME_MASK) {
        uint32_t v;
        if (size != sizeof v) return CUBLAS_STATUS_INVALID_VALUE;
        memcpy(&v, buf, sizeof v);
        return v <= CUBLASLT_REDUCTION_SCHEME_MASK ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_INVALID_VALUE;
    }
    if (attr == CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES) {
        uint64_t v;
        if (size != sizeof v) return CUBLAS_STATUS_INVALID_VALUE;
        memcpy(&v, buf, sizeof v);
        p->workspace = (size_t)v;
        return CUBLAS_STATUS_SUCCESS;
    }
    uint32_t align; /* the MIN_ALIGNMENT attributes: a power of two (the interpreter needs none) */
    if (size != sizeof align) return CUBLAS_STATUS_INVALID_VALUE;
    memcpy(&align, buf, sizeof align);
    if (align == 0 || (align & (align - 1)) != 0) return CUBLAS_STATUS_INVALID_VALUE;
    return attr >= CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES && attr <= CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES
               ? CUBLAS_STATUS_SUCCESS
               : CUBLAS_STATUS_NOT_SUPPORTED;
}

cublasStatus_t cublasLtMatmulAlgoGetHeuristic(cublasLtHandle_t h, cublasLtMatmulDesc_t op,
                                              cublasLtMatrixLayout_t a, cublasLtMatrixLayout_t b,
                                              cublasLtMatrixLayout_t c, cublasLtMatrixLayout_t d,
                                              cublasLtMatmulPreference_t pref, int requested,
                                              cublasLtMatmulHeuristicResult_t results[], int *returned)
{
    if (!h || !op || !pref || requested < 1 || !results || !returned) return CUBLAS_STATUS_INVALID_VALUE;
    cublasStatus_t s = lt_check(op, a, b, c, d);
    *returned = 0;
    if (s != CUBLAS_STATUS_SUCCESS) return s;
    /* Two "algorithms" (the same loop): enough for a caller that times the candidates to choose. */
    *returned = requested < SIMT_LT_ALGOS ? requested : SIMT_LT_ALGOS;
    for (int i = 0; i < *returned; i++) {
        memset(&results[i], 0, sizeof results[i]);
        results[i].algo.data[0] = (uint64_t)i;
        results[i].state = CUBLAS_STATUS_SUCCESS;
        results[i].wavesCount = 1.0f;
    }
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmul(cublasLtHandle_t h, cublasLtMatmulDesc_t op, const void *alpha, const void *A,
                              cublasLtMatrixLayout_t Adesc, const void *B, cublasLtMatrixLayout_t Bdesc,
                              const void *beta, const void *C, cublasLtMatrixLayout_t Cdesc, void *D,
                              cublasLtMatrixLayout_t Ddesc, const cublasLtMatmulAlgo_t *algo, void *workspace,
                              size_t workspaceSize, cudaStream_t stream)
{
    (void)workspace, (void)workspaceSize;
    if (!h || !algo || algo->data[0] >= SIMT_LT_ALGOS) return CUBLAS_STATUS_INVALID_VALUE;
    cublasStatus_t s = lt_check(op, Adesc, Bdesc, Cdesc, Ddesc);
    if (s != CUBLAS_STATUS_SUCCESS) return s;
    int m = (int)Ddesc->rows, n = (int)Ddesc->cols, k = (int)(op->ta == CUBLAS_OP_N ? Adesc->cols : Adesc->rows);
    if (m == 0 || n == 0) return CUBLAS_STATUS_SUCCESS;
    operand a{A, Adesc->type, (int)Adesc->ld, op->ta == CUBLAS_OP_T}, b{B, Bdesc->type, (int)Bdesc->ld,
                                                                      op->tb == CUBLAS_OP_T};
    const char *who = "cublasLtMatmul";
    float al = *(const float *)alpha, be = *(const float *)beta;
    const float *bias = op->epilogue == CUBLASLT_EPILOGUE_BIAS ? (const float *)op->bias : nullptr;
    if (op->epilogue == CUBLASLT_EPILOGUE_BIAS && !bias) return CUBLAS_STATUS_INVALID_VALUE;
    cudaDataType dt = Ddesc->type;
    gemm_require(who, m, n, k, a, b, D, (int)Ddesc->ld, dt);
    if (be != 0.0f) simt_require_device(who, "C", C, extent(m, n, (int)Cdesc->ld, false, Cdesc->type));
    if (bias) simt_require_device(who, "bias", bias, (size_t)m * sizeof *bias);
    int ldc = (int)Cdesc->ld, ldd = (int)Ddesc->ld;
    cudaError_t e = simt_stream_submit(stream, [=] {
        for (long j = 0; j < n; j++)
            for (long i = 0; i < m; i++) {
                float acc = 0.0f;
                for (long l = 0; l < k; l++) acc += a.at(i, l) * b.at(l, j);
                float v = al * acc;
                long c = i + j * (long)ldc, d = i + j * (long)ldd;
                if (be != 0.0f) v += be * (dt == CUDA_R_16BF ? bf16_to_f32(((const uint16_t *)C)[c]) : ((const float *)C)[c]);
                if (bias) v += bias[i];
                if (dt == CUDA_R_16BF) ((uint16_t *)D)[d] = bf16_from_f32(v); /* rounded once */
                else ((float *)D)[d] = v;
            }
    });
    return e == cudaSuccess ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_EXECUTION_FAILED;
}

} // extern "C"
