// Row moves between row-major [*, cols] arrays, CUDA twin of kernels/cpu/rows.c: gather
// (dst[i] = src[index[i]]) and scatter (dst[index[i]] = src[i]). The index is a HOST array (launch
// metadata, as attention's seg): it is copied to a stream-ordered scratch, then one thread per
// element copies - neighbouring threads take neighbouring columns of a row, so accesses coalesce.
// Pure copies: bitwise equal to the reference. Scatter indices must be distinct (one writer per row).
#include <cuda_runtime.h>

#include "mmupt/cuda_check.h"
#include "mmupt/kernels.h"
#include "launch.cuh"

static __global__ void rows_kernel(float *dst, const float *src, const int64_t *index, long total, long cols,
                                   int scatter)
{
    LAUNCH_LOOP(e, total)
    {
        long i = e / cols, c = e % cols;
        if (scatter) dst[index[i] * cols + c] = src[e];
        else dst[e] = src[index[i] * cols + c];
    }
}

static void rows_launch(float *dst, const float *src, const int64_t *index, int n, long cols, int scatter,
                        void *stream)
{
    long total = (long)n * cols;
    if (total <= 0) return;
    cudaStream_t st = (cudaStream_t)stream;
    int64_t *dev = NULL;
    CUDA_CHECK(cudaMallocAsync((void **)&dev, (size_t)n * sizeof *dev, st));
    CUDA_CHECK(cudaMemcpyAsync(dev, index, (size_t)n * sizeof *dev, cudaMemcpyHostToDevice, st));
    rows_kernel<<<launch_blocks(total), LAUNCH_THREADS, 0, st>>>(dst, src, dev, total, cols, scatter);
    CUDA_CHECK(cudaGetLastError());
    CUDA_CHECK(cudaFreeAsync(dev, st));
}

extern "C" void gather_rows_cuda(float *dst, const float *src, const int64_t *index, int n, long cols, void *stream)
{
    rows_launch(dst, src, index, n, cols, 0, stream);
}

extern "C" void scatter_rows_cuda(float *dst, const float *src, const int64_t *index, int n, long cols, void *stream)
{
    rows_launch(dst, src, index, n, cols, 1, stream);
}
