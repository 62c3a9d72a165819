/* A cuBLAS handle bound to one stream: what the GEMM twins (matmul_*_cuda) need besides their
 * arguments. One per stream and thread that issues GEMMs; the caller owns it (no hidden global
 * handle). CUDA builds only. */
#ifndef MMUPT_GPU_BLAS_H
#define MMUPT_GPU_BLAS_H

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include "mmupt/err.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A failing cuBLAS call is fatal, reported like CUDA_CHECK (call, file, line, rank). */
#define CUBLAS_CHECK(call)                                                                          \
    do {                                                                                            \
        cublasStatus_t cublas_check_s_ = (call);                                                    \
        if (cublas_check_s_ != CUBLAS_STATUS_SUCCESS)                                               \
            mmupt_die_at(__FILE__, __LINE__, "%s: %s", #call, cublasGetStatusString(cublas_check_s_)); \
    } while (0)

struct gpu_blas {
    cublasHandle_t handle;
    cudaStream_t stream;
};

/* Create the handle on the current device and bind it to `stream` (NULL: the default stream). Pure
 * fp32 math (no TF32), so the fp32 twins can be compared with the CPU reference; -1 and err when
 * cuBLAS cannot start (no device). */
int gpu_blas_init(struct gpu_blas *b, cudaStream_t stream, struct mmupt_err *err);
void gpu_blas_free(struct gpu_blas *b);

#ifdef __cplusplus
}
#endif

#endif
