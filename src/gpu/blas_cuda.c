/* The cuBLAS handle the GEMM twins use (include/mmupt/gpu_blas.h). */
#include <stdlib.h>
#include <string.h>

#include "mmupt/gpu_blas.h"

/* MMUPT_GEMM_SKINNY: 0 (or unset), 1 or pdl; anything else is an error, not a silent default. */
static int skinny_from_env(int *mode, struct mmupt_err *err)
{
    const char *v = getenv("MMUPT_GEMM_SKINNY");
    *mode = SKINNY_OFF;
    if (!v || !*v || strcmp(v, "0") == 0) return 0;
    if (strcmp(v, "1") == 0) *mode = SKINNY_ON;
    else if (strcmp(v, "pdl") == 0) *mode = SKINNY_PDL;
    else return mmupt_fail(err, "MMUPT_GEMM_SKINNY must be 0, 1 or pdl, not '%s'", v);
    return 0;
}

int gpu_blas_init(struct gpu_blas *b, cudaStream_t stream, struct mmupt_err *err)
{
    memset(b, 0, sizeof *b);
    b->stream = stream;
    int skinny = 0, dev = 0;
    struct cudaDeviceProp prop;
    if (skinny_from_env(&skinny, err)) return -1;
    if (cudaGetDevice(&dev) != cudaSuccess || cudaGetDeviceProperties(&prop, dev) != cudaSuccess) {
        cudaGetLastError();
        return mmupt_fail(err, "CUDA: cannot read the device's properties");
    }
    b->sms = prop.multiProcessorCount;
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
    if (cublasLtCreate(&b->lt) != CUBLAS_STATUS_SUCCESS ||
        cudaMalloc(&b->lt_ws, GPU_BLAS_LT_WORKSPACE) != cudaSuccess) {
        cudaGetLastError();
        gpu_blas_free(b);
        return mmupt_fail(err, "cuBLASLt: cannot create a handle and its %d MiB workspace", GPU_BLAS_LT_WORKSPACE >> 20);
    }
    b->plans = gemm_lt_plans_new();
    b->sdpa = sdpa_plans_new();
    if (skinny && gpu_blas_set_skinny(b, skinny, err)) {
        gpu_blas_free(b);
        return -1;
    }
    return 0;
}

int gpu_blas_set_skinny(struct gpu_blas *b, int mode, struct mmupt_err *err)
{
    MMUPT_CHECK(mode == SKINNY_OFF || mode == SKINNY_ON || mode == SKINNY_PDL);
    int on = mode != SKINNY_OFF;
    if (on && !b->skinny_part) {
        size_t part = (size_t)SKINNY_PART_FLOATS * sizeof(float), cnt = (size_t)SKINNY_COUNTERS * sizeof(unsigned);
        if (cudaMalloc((void **)&b->skinny_part, part) != cudaSuccess ||
            cudaMalloc((void **)&b->skinny_count, cnt) != cudaSuccess ||
            cudaMemset(b->skinny_count, 0, cnt) != cudaSuccess) {
            cudaGetLastError();
            cudaFree(b->skinny_part);
            cudaFree(b->skinny_count);
            b->skinny_part = NULL;
            b->skinny_count = NULL;
            return mmupt_fail(err, "skinny GEMM: cannot allocate its %zu MiB of split-K scratch", (part + cnt) >> 20);
        }
    } else if (!on && b->skinny_part) {
        cudaFree(b->skinny_part);
        cudaFree(b->skinny_count);
        b->skinny_part = NULL;
        b->skinny_count = NULL;
    }
    b->skinny = mode;
    return 0;
}

void gpu_blas_set_tune(struct gpu_blas *b, int on)
{
    gemm_lt_plans_free(b->plans);
    b->plans = gemm_lt_plans_new();
    b->tune = on != 0;
}

int gpu_blas_set_tune_file(struct gpu_blas *b, const char *path, struct mmupt_err *err)
{
    gpu_blas_set_tune(b, 1);
    return gemm_lt_plans_load(b->plans, path, err);
}

void gpu_blas_free(struct gpu_blas *b)
{
    (void)gpu_blas_set_skinny(b, 0, NULL);
    gemm_lt_plans_free(b->plans);
    b->plans = NULL;
    sdpa_plans_free(b->sdpa);
    b->sdpa = NULL;
    if (b->lt) cublasLtDestroy(b->lt);
    cudaFree(b->lt_ws);
    if (b->handle) cublasDestroy(b->handle);
    b->handle = NULL;
    b->lt = NULL;
    b->lt_ws = NULL;
}
