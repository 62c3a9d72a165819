// Reductions shared by the CUDA kernels (rmsnorm.cu, layernorm.cu, logprob.cu; matmul.cu's bias
// gradient).
//
// All are deterministic: the order of every floating-point addition depends only on the launch
// shape, never on scheduling, so a run repeats bit for bit. No float atomics anywhere.
//
//   reduce_block_sum            a sum over the threads of one block (the per-row statistics);
//   reduce_block_sum_double     the same in double; reduce_block_max the maximum;
//   reduce_col_partial_*        a sum over rows per column (dweight, dbias) in two steps: blocks
//                               write per-chunk partial sums to a scratch buffer, then one thread
//                               per column adds the chunks up in chunk order; reduce_cols does
//                               both for a plain [rows, dim] matrix.
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

// One combine for every block reduction here: `op` in a butterfly within each warp (lanes i and
// i^off combine the same two values, so every lane ends with the same bits), then every warp
// combines the per-warp values the same way, so all threads hold the result without a second trip
// through shared memory. The order of operations depends only on the launch shape: a run repeats
// bit for bit. Every thread of the block must call it (it has barriers); scratch is a __shared__
// T[32] of the caller, free again on return (the final barrier), so two calls in a row may share it.
template <typename T, typename Op>
static __device__ __forceinline__ T reduce_block(T v, T *scratch, T identity, Op op)
{
    int lane = threadIdx.x % 32, warp = threadIdx.x / 32, nwarps = blockDim.x / 32;
    for (int off = 16; off > 0; off /= 2) v = op(v, __shfl_xor_sync(0xffffffffu, v, off));
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    v = lane < nwarps ? scratch[lane] : identity;
    for (int off = 16; off > 0; off /= 2) v = op(v, __shfl_xor_sync(0xffffffffu, v, off));
    __syncthreads();
    return v;
}

struct reduce_add {
    template <typename T> __device__ __forceinline__ T operator()(T a, T b) const { return a + b; }
};
// fmaxf skips NaN as the CPU references' `>` comparisons do; a max is exact, so order is moot.
struct reduce_max {
    __device__ __forceinline__ float operator()(float a, float b) const { return fmaxf(a, b); }
};

// Sum of v over the block, returned to every thread (the per-row statistics).
static __device__ __forceinline__ float reduce_block_sum(float v, float *scratch)
{
    return reduce_block(v, scratch, 0.0f, reduce_add());
}

// The same in double, for row statistics that need it (logprob.cu's sum of exponentials over a
// 152k vocabulary). scratch is a __shared__ double[32].
static __device__ __forceinline__ double reduce_block_sum_double(double v, double *scratch)
{
    return reduce_block(v, scratch, 0.0, reduce_add());
}

// Maximum of v over the block, returned to every thread (attention.cu, logprob.cu).
static __device__ __forceinline__ float reduce_block_max(float v, float *scratch)
{
    return reduce_block(v, scratch, -INFINITY, reduce_max());
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

// partial[k * dim + c] = the sum of x[r * dim + c] over the rows r of chunk k, in row order.
static __global__ void reduce_col_chunks_kernel(float *partial, const float *x, int rows, int dim)
{
    int c = blockIdx.y * blockDim.x + threadIdx.x, k = blockIdx.x;
    if (c >= dim) return;
    int r1 = (k + 1) * REDUCE_ROWS_PER_CHUNK < rows ? (k + 1) * REDUCE_ROWS_PER_CHUNK : rows;
    float acc = 0.0f;
    for (int r = k * REDUCE_ROWS_PER_CHUNK; r < r1; r++) acc += x[(long)r * dim + c];
    partial[(long)k * dim + c] = acc;
}

// dst[c] += the column sums of x[rows][dim] (matmul.cu's bias gradient): chunks of rows summed in
// parallel into stream-ordered scratch, then the chunks in order. One thread per column walking
// every row kept a few blocks busy for a 3072-row batch: 60 us per bias on an H200.
static inline void reduce_cols(float *dst, const float *x, int rows, int dim, cudaStream_t stream)
{
    if (rows <= REDUCE_ROWS_PER_CHUNK) {
        reduce_col_partials(dst, x, rows, dim, stream); // each row its own chunk
        return;
    }
    int nchunks = reduce_row_chunks(rows);
    float *partial = NULL;
    CUDA_CHECK(cudaMallocAsync((void **)&partial, (size_t)nchunks * dim * sizeof *partial, stream));
    reduce_col_chunks_kernel<<<reduce_partial_grid(rows, dim), REDUCE_THREADS, 0, stream>>>(partial, x, rows, dim);
    CUDA_CHECK(cudaGetLastError());
    reduce_col_partials(dst, partial, nchunks, dim, stream);
    CUDA_CHECK(cudaFreeAsync(partial, stream));
}

#endif
