// The residual stream's addition, CUDA twin of kernels/cpu/residual.c: out = a + b, one rounding
// per element (no contraction is possible), so bitwise equal to the reference. out may alias a or b.
#include <cuda_runtime.h>

#include "mmupt/cuda_check.h"
#include "mmupt/kernels.h"
#include "launch.cuh"

static __global__ void residual_forward_kernel(float *out, const float *a, const float *b, long n)
{
    LAUNCH_LOOP(i, n) out[i] = a[i] + b[i];
}

extern "C" void residual_forward_cuda(float *out, const float *a, const float *b, long n, void *stream)
{
    if (n <= 0) return;
    residual_forward_kernel<<<launch_blocks(n), LAUNCH_THREADS, 0, (cudaStream_t)stream>>>(out, a, b, n);
    CUDA_CHECK(cudaGetLastError());
}
