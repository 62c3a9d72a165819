// Sum of squares in double, CUDA twin of kernels/cpu/sumsq.c: sum_i (x[i] * scale)^2. Blocks take
// contiguous chunks and reduce them in a fixed tree order; one block then adds the block sums in
// block order. Deterministic (the same bits on every run), not bitwise the CPU's sequential sum:
// double rounding of a different order, ~1e-15 relative for gradients. Returns when the value is
// on the host (the optimizer branches on it).
#include <cuda_runtime.h>

#include "mmupt/cuda_check.h"
#include "mmupt/kernels.h"
#include "reduce.cuh"

enum { SUMSQ_BLOCKS = 1024 };

static __global__ void sumsq_partial_kernel(double *part, const float *x, long n, double scale)
{
    __shared__ double scratch[32];
    long chunk = (n + gridDim.x - 1) / gridDim.x, lo = blockIdx.x * chunk, hi = lo + chunk < n ? lo + chunk : n;
    double s = 0.0;
    for (long i = lo + threadIdx.x; i < hi; i += blockDim.x) {
        double g = (double)x[i] * scale;
        s += g * g;
    }
    s = reduce_block_sum_double(s, scratch);
    if (threadIdx.x == 0) part[blockIdx.x] = s;
}

static __global__ void sumsq_final_kernel(double *out, const double *part, int n_part)
{
    __shared__ double scratch[32];
    double s = 0.0;
    for (int i = threadIdx.x; i < n_part; i += blockDim.x) s += part[i];
    s = reduce_block_sum_double(s, scratch);
    if (threadIdx.x == 0) *out = s;
}

extern "C" double sumsq_cuda(const float *x, long n, double scale, void *stream)
{
    if (n <= 0) return 0.0;
    cudaStream_t st = (cudaStream_t)stream;
    int blocks = n < (long)SUMSQ_BLOCKS * REDUCE_THREADS ? (int)((n + REDUCE_THREADS - 1) / REDUCE_THREADS) : SUMSQ_BLOCKS;
    double *dev = NULL, out = 0.0;
    CUDA_CHECK(cudaMallocAsync((void **)&dev, (size_t)(blocks + 1) * sizeof *dev, st));
    sumsq_partial_kernel<<<blocks, REDUCE_THREADS, 0, st>>>(dev + 1, x, n, scale);
    CUDA_CHECK(cudaGetLastError());
    sumsq_final_kernel<<<1, REDUCE_THREADS, 0, st>>>(dev, dev + 1, blocks);
    CUDA_CHECK(cudaGetLastError());
    CUDA_CHECK(cudaMemcpyAsync(&out, dev, sizeof out, cudaMemcpyDeviceToHost, st));
    CUDA_CHECK(cudaFreeAsync(dev, st));
    CUDA_CHECK(cudaStreamSynchronize(st));
    return out;
}
