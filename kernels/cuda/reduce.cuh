// Reductions shared by the CUDA kernels (rmsnorm.cu, layernorm.cu, logprob.cu; matmul.cu's bias
// gradient).
//
// Both are deterministic: the order of every floating-point addition depends only on the launch
// shape, never on scheduling, so a run repeats bit for bit. No float atomics anywhere.
//
//   reduce_block_sum            a sum over the threads of one block (the per-row statistics);
//   reduce_block_sum_double     the same in double;
//   reduce_col_partial_*        a sum over rows per column (dweight, dbias) in two steps: blocks
//                               write per-chunk partial sums to a scratch buffer, then one thread
//                               per column adds the chunks up in chunk order.
#ifndef MMUPT_KERNELS_CUDA_REDUCE_CUH
#define MMUPT_KERNELS_CUDA_REDUCE_CUH

#include <math.h>

#include <cuda_runtime.h>

#include "mmupt/cuda_check.h"
#include "mmupt/err.h"

// Threads per block of every kernel here. A multiple of 32 (reduce_block_sum needs whole warps)
// and at most 32 * 32 (its scratch holds one value per warp).
enum { REDUCE_THREADS = 256 };

// Rows one block of a column reduction walks: the partial sums then take rows / 64 * dim floats.
enum { REDUCE_ROWS_PER_CHUNK = 64 };

// Sum over a warp with a butterfly: every lane ends with the total, and with the same bits, since
// lanes i and i^off add the same two values (float addition is commutative).
static __device__ __forceinline__ float reduce_warp_sum(float v)
{
    for (int off = 16; off > 0; off /= 2) v += __shfl_xor_sync(0xffffffffu, v, off);
    return v;
}

// Sum of v over the block, returned to every thread. Every thread of the block must call it (it
// has barriers). scratch is a __shared__ float[32] of the caller; it is free again on return (the
// final barrier), so two calls in a row may share it.
static __device__ __forceinline__ float reduce_block_sum(float v, float *scratch)
{
    int lane = threadIdx.x % 32, warp = threadIdx.x / 32, nwarps = blockDim.x / 32;
    v = reduce_warp_sum(v);
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    // Every warp sums the per-warp values itself: the same adds in the same order, so all warps
    // hold the same total without a second trip through shared memory.
    v = reduce_warp_sum(lane < nwarps ? scratch[lane] : 0.0f);
    __syncthreads();
    return v;
}

// The same two sums in double, for row statistics that need it (logprob.cu's sum of exponentials
// over a 152k vocabulary). scratch is a __shared__ double[32] of the caller, free again on return.
static __device__ __forceinline__ double reduce_warp_sum_double(double v)
{
    for (int off = 16; off > 0; off /= 2) v += __shfl_xor_sync(0xffffffffu, v, off);
    return v;
}

static __device__ __forceinline__ double reduce_block_sum_double(double v, double *scratch)
{
    int lane = threadIdx.x % 32, warp = threadIdx.x / 32, nwarps = blockDim.x / 32;
    v = reduce_warp_sum_double(v);
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    v = reduce_warp_sum_double(lane < nwarps ? scratch[lane] : 0.0);
    __syncthreads();
    return v;
}

// Maximum of v over the block, returned to every thread; the same barrier rules and scratch as
// reduce_block_sum. A max is exact, so the order of comparisons does not matter; fmaxf skips NaN
// as the CPU references' `>` comparisons do. (attention.cu, logprob.cu)
static __device__ __forceinline__ float reduce_block_max(float v, float *scratch)
{
    int lane = threadIdx.x % 32, warp = threadIdx.x / 32, nwarps = blockDim.x / 32;
    for (int off = 16; off > 0; off /= 2) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, off));
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    v = lane < nwarps ? scratch[lane] : -INFINITY;
    for (int off = 16; off > 0; off /= 2) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, off));
    __syncthreads();
    return v;
}

// Chunks of REDUCE_ROWS_PER_CHUNK rows covering `rows` (rows > 0).
static inline int reduce_row_chunks(int rows)
{
    return (rows + REDUCE_ROWS_PER_CHUNK - 1) / REDUCE_ROWS_PER_CHUNK;
}

// Launch shape of a per-chunk partial kernel: x = chunk (up to 2^31 - 1 of them), y = a block of
// REDUCE_THREADS columns (y is limited to 65535, which is 16.7M columns).
static inline dim3 reduce_partial_grid(int rows, int dim)
{
    int col_blocks = (dim + REDUCE_THREADS - 1) / REDUCE_THREADS;
    MMUPT_CHECK(col_blocks <= 65535);
    return dim3((unsigned)reduce_row_chunks(rows), (unsigned)col_blocks);
}

// dst[c] += sum over chunks k = 0, 1, ... of partial[k * dim + c], one thread per column. The adds
// run in chunk order, which is what makes the column sums deterministic.
static __global__ void reduce_col_partials_kernel(float *dst, const float *partial, int nchunks, int dim)
{
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= dim) return;
    float acc = 0.0f;
    for (int k = 0; k < nchunks; k++) acc += partial[(long)k * dim + c];
    dst[c] += acc;
}

// Host side of the second step: adds the column sums of partial[nchunks][dim] into dst.
static inline void reduce_col_partials(float *dst, const float *partial, int nchunks, int dim, cudaStream_t stream)
{
    int blocks = (dim + REDUCE_THREADS - 1) / REDUCE_THREADS;
    reduce_col_partials_kernel<<<blocks, REDUCE_THREADS, 0, stream>>>(dst, partial, nchunks, dim);
    CUDA_CHECK(cudaGetLastError());
}

#endif
