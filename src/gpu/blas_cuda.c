/* The cuBLAS handle the GEMM twins use (include/mmupt/gpu_blas.h). */
#include "mmupt/gpu_blas.h"

int gpu_blas_init(struct gpu_blas *b, cudaStream_t stream, struct mmupt_err *err)
{
    b->handle = NULL;
    b->stream = stream;
    cublasStatus_t s = cublasCreate(&b->handle);
    if (s != CUBLAS_STATUS_SUCCESS) {
        b->handle = NULL;
        return mmupt_fail(err, "cuBLAS: cannot create a handle (status %d: %s)", (int)s, cublasGetStatusString(s));
    }
    /* Pure fp32: the reference comparisons need it, and the bf16 path chooses its math explicitly. */
    if (cublasSetMathMode(b->handle, CUBLAS_PEDANTIC_MATH) != CUBLAS_STATUS_SUCCESS ||
        cublasSetStream(b->handle, stream) != CUBLAS_STATUS_SUCCESS) {
        cublasDestroy(b->handle);
        b->handle = NULL;
        return mmupt_fail(err, "cuBLAS: cannot set the math mode or the stream");
    }
    return 0;
}

void gpu_blas_free(struct gpu_blas *b)
{
    if (b->handle) cublasDestroy(b->handle);
    b->handle = NULL;
}
