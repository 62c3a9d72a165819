// RMSNorm forward, CUDA twin of kernels/cpu/rmsnorm.c: one block per row, a block-wide reduction
// of the sum of squares in fp32. Deliberately simple; the bf16 fused version comes with the GPU
// backend work and must keep this name and contract.
#include <cuda_runtime.h>

#include "mmupt/cuda_check.h"
#include "mmupt/kernels.h"

static __global__ void rmsnorm_forward_kernel(float *out, float *rstd, const float *x, const float *weight, int dim,
                                              float eps)
{
    __shared__ float partial[32];
    const float *xr = x + (long)blockIdx.x * dim;
    float *outr = out + (long)blockIdx.x * dim;
    float ss = 0.0f;
    for (int i = threadIdx.x; i < dim; i += blockDim.x) ss += xr[i] * xr[i];
    for (int off = 16; off > 0; off /= 2) ss += __shfl_down_sync(0xffffffffu, ss, off);
    int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    if (lane == 0) partial[warp] = ss;
    __syncthreads();
    if (warp == 0) {
        ss = lane < (int)(blockDim.x / 32) ? partial[lane] : 0.0f;
        for (int off = 16; off > 0; off /= 2) ss += __shfl_down_sync(0xffffffffu, ss, off);
        if (lane == 0) partial[0] = rsqrtf(ss / dim + eps);
    }
    __syncthreads();
    float s = partial[0];
    for (int i = threadIdx.x; i < dim; i += blockDim.x) outr[i] = xr[i] * s * weight[i];
    if (rstd && threadIdx.x == 0) rstd[blockIdx.x] = s;
}

extern "C" void rmsnorm_forward_cuda(float *out, float *rstd, const float *x, const float *weight, int rows, int dim,
                                     float eps, void *stream)
{
    if (rows <= 0) return;
    rmsnorm_forward_kernel<<<rows, 256, 0, (cudaStream_t)stream>>>(out, rstd, x, weight, dim, eps);
    CUDA_CHECK(cudaGetLastError());
}
