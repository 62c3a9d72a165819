/* The GPU query of a CUDA build: library versions are host-only calls and work without a GPU;
 * device discovery reports why it found none (no driver, no device), which is how GPU tests decide
 * to skip. */
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>
#include <nccl.h>
#include <stdio.h>
#include <string.h>

#include "mmupt/err.h"
#include "mmupt/gpu.h"

void gpu_query(struct gpu_info *info)
{
    memset(info, 0, sizeof *info);
    info->built = 1;
    cudaRuntimeGetVersion(&info->runtime_version);
    cudaDriverGetVersion(&info->driver_version);
    int major = 0, minor = 0, patch = 0;
    cublasGetProperty(MAJOR_VERSION, &major);
    cublasGetProperty(MINOR_VERSION, &minor);
    cublasGetProperty(PATCH_LEVEL, &patch);
    info->cublas_version = major * 10000 + minor * 100 + patch;
    info->cudnn_version = (int)cudnnGetVersion();
    ncclGetVersion(&info->nccl_version);
    cudaError_t e = cudaGetDeviceCount(&info->device_count);
    if (e != cudaSuccess) {
        info->device_count = 0;
        snprintf(info->reason, sizeof info->reason, "no usable CUDA device: %s", cudaGetErrorString(e));
        cudaGetLastError(); /* clear the sticky error so later calls start clean */
        return;
    }
    if (info->device_count == 0) {
        snprintf(info->reason, sizeof info->reason, "the CUDA driver reports no device");
        return;
    }
    struct cudaDeviceProp prop;
    int current = 0; /* the calling thread's device (gpu_use_device), so a rank names its own GPU */
    if (cudaGetDevice(&current) != cudaSuccess) current = 0;
    if (cudaGetDeviceProperties(&prop, current) == cudaSuccess) {
        snprintf(info->device_name, sizeof info->device_name, "%s", prop.name);
        info->cc_major = prop.major;
        info->cc_minor = prop.minor;
    }
}

int gpu_use_device(int device, struct mmupt_err *err)
{
    cudaError_t e = cudaSetDevice(device);
    if (e != cudaSuccess) {
        cudaGetLastError();
        return mmupt_fail(err, "cannot use CUDA device %d: %s", device, cudaGetErrorString(e));
    }
    return 0;
}
