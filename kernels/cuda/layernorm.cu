// LayerNorm with weight and bias, forward and backward: CUDA twins of kernels/cpu/layernorm.c, in
// fp32, with the same scheme as rmsnorm.cu: one block per row for per-row work, and dweight/dbias
// summed over rows deterministically in two steps (reduce.cuh), no float atomics.
#include <cuda_runtime.h>

#include "mmupt/cuda_check.h"
#include "mmupt/kernels.h"
#include "reduce.cuh"

// Two passes over the row, as in the CPU reference: the variance of centred values does not cancel
// when the mean is large against the spread, as E[x^2] - mean^2 would (worse in fp32 than in the
// reference's double). out may alias x: the statistics' reads end at reduce_block_sum's barrier,
// and afterwards each thread writes only the elements it reads.
static __global__ void layernorm_forward_kernel(float *out, float *mean, float *rstd, const float *x,
                                                const float *weight, const float *bias, int dim, float eps)
{
    __shared__ float scratch[32];
    const float *xr = x + (long)blockIdx.x * dim;
    float *outr = out + (long)blockIdx.x * dim;
    float sum = 0.0f;
    for (int i = threadIdx.x; i < dim; i += blockDim.x) sum += xr[i];
    float mu = reduce_block_sum(sum, scratch) / dim;
    float ss = 0.0f;
    for (int i = threadIdx.x; i < dim; i += blockDim.x) ss += (xr[i] - mu) * (xr[i] - mu);
    float s = rsqrtf(reduce_block_sum(ss, scratch) / dim + eps);
    for (int i = threadIdx.x; i < dim; i += blockDim.x) outr[i] = (xr[i] - mu) * s * weight[i] + bias[i];
    if (threadIdx.x == 0) {
        if (mean) mean[blockIdx.x] = mu;
        if (rstd) rstd[blockIdx.x] = s;
    }
}

extern "C" void layernorm_forward_cuda(float *out, float *mean, float *rstd, const float *x, const float *weight,
                                       const float *bias, int rows, int dim, float eps, void *stream)
{
    if (rows <= 0) return;
    layernorm_forward_kernel<<<rows, REDUCE_THREADS, 0, (cudaStream_t)stream>>>(out, mean, rstd, x, weight, bias,
                                                                                dim, eps);
    CUDA_CHECK(cudaGetLastError());
}

// dx[r, i] += s * (g_i - mean(g) - xhat_i * mean(g * xhat)) with g = dout * w,
// xhat = (x - mean[r]) * s, s = rstd[r].
static __global__ void layernorm_backward_dx_kernel(float *dx, const float *dout, const float *x, const float *weight,
                                                    const float *mean, const float *rstd, int dim)
{
    __shared__ float scratch[32];
    long row = (long)blockIdx.x * dim;
    const float *xr = x + row, *dr = dout + row;
    float *dxr = dx + row;
    float mu = mean[blockIdx.x], s = rstd[blockIdx.x];
    float gsum = 0.0f, gxsum = 0.0f;
    for (int i = threadIdx.x; i < dim; i += blockDim.x) {
        float g = dr[i] * weight[i];
        gsum += g;
        gxsum += g * ((xr[i] - mu) * s);
    }
    float gm = reduce_block_sum(gsum, scratch) / dim;
    float gxm = reduce_block_sum(gxsum, scratch) / dim;
    for (int i = threadIdx.x; i < dim; i += blockDim.x)
        dxr[i] += s * (dr[i] * weight[i] - gm - ((xr[i] - mu) * s) * gxm);
}

// pw[k, c] = sum over the rows of chunk k of dout[r, c] * xhat[r, c]; pb[k, c] = the same of
// dout[r, c]. Either may be NULL (not wanted). Grid: x = chunk, y = block of columns; one thread
// per column walks its chunk's rows in order.
static __global__ void layernorm_param_partial_kernel(float *pw, float *pb, const float *dout, const float *x,
                                                      const float *mean, const float *rstd, int rows, int dim)
{
    int c = blockIdx.y * blockDim.x + threadIdx.x;
    if (c >= dim) return;
    long r0 = (long)blockIdx.x * REDUCE_ROWS_PER_CHUNK;
    long r1 = r0 + REDUCE_ROWS_PER_CHUNK < rows ? r0 + REDUCE_ROWS_PER_CHUNK : rows;
    float aw = 0.0f, ab = 0.0f;
    for (long r = r0; r < r1; r++) {
        float d = dout[r * dim + c];
        aw += d * ((x[r * dim + c] - mean[r]) * rstd[r]);
        ab += d;
    }
    long k = (long)blockIdx.x * dim + c;
    if (pw) pw[k] = aw;
    if (pb) pb[k] = ab;
}

// dweight and/or dbias: partial sums per chunk of rows into one scratch buffer (dweight's chunks,
// then dbias's), then each column's chunks added into the gradient.
static void layernorm_param_grads(float *dweight, float *dbias, const float *dout, const float *x, const float *mean,
                                  const float *rstd, int rows, int dim, cudaStream_t st)
{
    int nchunks = reduce_row_chunks(rows);
    size_t per = (size_t)nchunks * dim;
    float *partial = NULL;
    CUDA_CHECK(cudaMallocAsync((void **)&partial, (dweight && dbias ? 2 : 1) * per * sizeof *partial, st));
    float *pw = dweight ? partial : NULL;
    float *pb = dbias ? (dweight ? partial + per : partial) : NULL;
    layernorm_param_partial_kernel<<<reduce_partial_grid(rows, dim), REDUCE_THREADS, 0, st>>>(pw, pb, dout, x, mean,
                                                                                              rstd, rows, dim);
    CUDA_CHECK(cudaGetLastError());
    if (dweight) reduce_col_partials(dweight, pw, nchunks, dim, st);
    if (dbias) reduce_col_partials(dbias, pb, nchunks, dim, st);
    CUDA_CHECK(cudaFreeAsync(partial, st));
}

extern "C" void layernorm_backward_cuda(float *dx, float *dweight, float *dbias, const float *dout, const float *x,
                                        const float *weight, const float *mean, const float *rstd, int rows, int dim,
                                        void *stream)
{
    if (rows <= 0 || dim <= 0) return;
    cudaStream_t st = (cudaStream_t)stream;
    if (dx) {
        layernorm_backward_dx_kernel<<<rows, REDUCE_THREADS, 0, st>>>(dx, dout, x, weight, mean, rstd, dim);
        CUDA_CHECK(cudaGetLastError());
    }
    if (dweight || dbias) layernorm_param_grads(dweight, dbias, dout, x, mean, rstd, rows, dim, st);
}
