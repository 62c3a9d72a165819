// RMSNorm forward and backward, CUDA twins of kernels/cpu/rmsnorm.c, in fp32.
//
// Per-row work (the forward, dx) runs one block per row with a block-wide sum. dweight is a sum
// over rows, done deterministically in two steps (reduce.cuh): per-chunk partial sums into a
// scratch buffer, then the chunks added up in order. Deliberately simple; the bf16 fused version
// comes with the GPU backend work and must keep these names and contracts.
#include <cuda_runtime.h>
#include <stdint.h>

#include "mmupt/cuda_check.h"
#include "mmupt/err.h"
#include "mmupt/kernels.h"
#include "bf16.cuh"
#include "pdl.cuh"
#include "reduce.cuh"
#include "unroll.cuh"

// out may alias x: each thread writes only the elements it reads last, and every read of the
// row for the statistics ends at reduce_block_sum's barrier, before the first write. out16 (may be
// NULL) gets out rounded to bf16: rmsnorm_forward_cast, which spares the next GEMM its cast launch.
// res (may be NULL) is a residual added first: the normalised row is x + res, stored into sum (which
// may alias x or res: each thread writes sum[i] after its own reads of x[i] and res[i], and reads it
// back itself) - residual_rmsnorm_forward_cast, the residual add and the next norm in one launch.
struct rmsnorm_fwd {
    float *out, *sum, *rstd;
    uint16_t *out16;
    const float *x, *res, *weight;
    int dim;
    float eps;
};

// Elements a thread keeps in registers (with their weights) between the two passes: rows up to
// RMS_REGS * REDUCE_THREADS wide (2048: the 0.5B to 3B decoders) are read once, and the weights' loads
// are issued before the block sum instead of after it - in a decode step (64 rows, one block each)
// the kernel is a chain of memory waits, and this takes one out. Wider rows reread the rest.
enum { RMS_REGS = 8 };

// Element i of the row to normalise: x, plus the residual (stored into sum) when there is one.
static __device__ __forceinline__ float rms_in(const struct rmsnorm_fwd &a, long row, int i)
{
    float v = a.x[row + i];
    if (a.res) {
        v += a.res[row + i];
        a.sum[row + i] = v;
    }
    return v;
}

// Element i of the output, and its bf16 rounding when wanted.
static __device__ __forceinline__ void rms_out(const struct rmsnorm_fwd &a, long row, int i, float y)
{
    if (a.out) a.out[row + i] = y; // NULL: the rounding alone
    if (a.out16) a.out16[row + i] = bf16_round(y);
}

static __global__ void rmsnorm_forward_kernel(struct rmsnorm_fwd a)
{
    pdl_trigger(); // a skinny GEMM that follows may start its weight prefetch (pdl.cuh)
    pdl_wait();    // launched programmatically (pdl): the kernel before has finished writing x
    __shared__ float scratch[32];
    long row = (long)blockIdx.x * a.dim;
    float ss = 0.0f, xv[RMS_REGS], wv[RMS_REGS];
    int kept = RMS_REGS * blockDim.x; // elements below this index stay in registers
    UNROLL
    for (int r = 0; r < RMS_REGS; r++) {
        int i = threadIdx.x + r * blockDim.x;
        if (i < a.dim) {
            xv[r] = rms_in(a, row, i);
            wv[r] = a.weight[i];
            ss += xv[r] * xv[r];
        }
    }
    for (int i = kept + threadIdx.x; i < a.dim; i += blockDim.x) {
        float v = rms_in(a, row, i);
        ss += v * v;
    }
    const float *xr = (a.res ? a.sum : a.x) + row; // the tail's values, read again
    float s = rsqrtf(reduce_block_sum(ss, scratch) / a.dim + a.eps);
    UNROLL
    for (int r = 0; r < RMS_REGS; r++) {
        int i = threadIdx.x + r * blockDim.x;
        if (i < a.dim) rms_out(a, row, i, xv[r] * s * wv[r]);
    }
    for (int i = kept + threadIdx.x; i < a.dim; i += blockDim.x) rms_out(a, row, i, xr[i] * s * a.weight[i]);
    if (a.rstd && threadIdx.x == 0) a.rstd[blockIdx.x] = s;
}

// pdl: launched programmatically (pdl.cuh), its launch overlapping the end of the kernel before.
static void rmsnorm_forward_launch(const struct rmsnorm_fwd *a, int rows, int pdl, void *stream)
{
    if (rows <= 0) return;
    pdl_launch(pdl != 0, rmsnorm_forward_kernel, dim3((unsigned)rows), dim3(REDUCE_THREADS), 0, (cudaStream_t)stream,
               *a);
}

extern "C" void rmsnorm_forward_cuda(float *out, float *rstd, const float *x, const float *weight, int rows, int dim,
                                     float eps, void *stream)
{
    struct rmsnorm_fwd a = {out, (float *)NULL, rstd, (uint16_t *)NULL, x, (const float *)NULL, weight, dim, eps};
    rmsnorm_forward_launch(&a, rows, 0, stream);
}

extern "C" void rmsnorm_forward_cast_cuda(float *out, uint16_t *out16, float *rstd, const float *x, const float *weight,
                                          int rows, int dim, float eps, int pdl, void *stream)
{
    struct rmsnorm_fwd a = {out, (float *)NULL, rstd, out16, x, (const float *)NULL, weight, dim, eps};
    rmsnorm_forward_launch(&a, rows, pdl, stream);
}

extern "C" void residual_rmsnorm_forward_cast_cuda(float *sum, float *out, uint16_t *out16, float *rstd, const float *a,
                                                   const float *b, const float *weight, int rows, int dim, float eps,
                                                   int pdl, void *stream)
{
    struct rmsnorm_fwd f = {out, sum, rstd, out16, a, b, weight, dim, eps};
    rmsnorm_forward_launch(&f, rows, pdl, stream);
}

// dx[r, i] += s * (g_i - xhat_i * mean(g * xhat)) with g = dout * w, xhat = x * s, s = rstd[r]; with
// res (rmsnorm_backward_res), dx[r, i] = res[r, i] + that instead: the same addition, nothing read
// from dx. dx16 (may be NULL): the new dx rounded to bf16 too (rmsnorm_backward_cast).
static __global__ void rmsnorm_backward_dx_kernel(float *dx, uint16_t *dx16, const float *dout, const float *x,
                                                  const float *weight, const float *rstd, const float *res, int dim)
{
    __shared__ float scratch[32];
    long row = (long)blockIdx.x * dim;
    const float *xr = x + row, *dr = dout + row;
    float *dxr = dx + row;
    float s = rstd[blockIdx.x];
    float dot = 0.0f;
    for (int i = threadIdx.x; i < dim; i += blockDim.x) dot += dr[i] * weight[i] * (xr[i] * s);
    float m = reduce_block_sum(dot, scratch) / dim;
    for (int i = threadIdx.x; i < dim; i += blockDim.x) {
        float v = s * (dr[i] * weight[i] - (xr[i] * s) * m);
        float y = (res ? res[row + i] : dxr[i]) + v;
        dxr[i] = y;
        if (dx16) dx16[row + i] = bf16_round(y);
    }
}

// partial[k, c] = sum over the rows of chunk k of dout[r, c] * x[r, c] * rstd[r]. Grid: x = chunk,
// y = block of columns; one thread per column walks its chunk's rows in order.
static __global__ void rmsnorm_dweight_partial_kernel(float *partial, const float *dout, const float *x,
                                                      const float *rstd, int rows, int dim)
{
    int c = blockIdx.y * blockDim.x + threadIdx.x;
    if (c >= dim) return;
    long r0 = (long)blockIdx.x * REDUCE_ROWS_PER_CHUNK;
    long r1 = r0 + REDUCE_ROWS_PER_CHUNK < rows ? r0 + REDUCE_ROWS_PER_CHUNK : rows;
    float acc = 0.0f;
    for (long r = r0; r < r1; r++) acc += dout[r * dim + c] * (x[r * dim + c] * rstd[r]);
    partial[(long)blockIdx.x * dim + c] = acc;
}

static void rmsnorm_backward_launch(float *dx, uint16_t *dx16, float *dweight, const float *dout, const float *x,
                                    const float *weight, const float *rstd, const float *res, int rows, int dim,
                                    void *stream)
{
    if (rows <= 0 || dim <= 0) return;
    cudaStream_t st = (cudaStream_t)stream;
    if (dx) {
        rmsnorm_backward_dx_kernel<<<rows, REDUCE_THREADS, 0, st>>>(dx, dx16, dout, x, weight, rstd, res, dim);
        CUDA_CHECK(cudaGetLastError());
    }
    if (dweight) {
        int nchunks = reduce_row_chunks(rows);
        float *partial = NULL;
        // Stream-ordered scratch: no device-wide synchronisation, and freed once the sum has run.
        CUDA_CHECK(cudaMallocAsync((void **)&partial, (size_t)nchunks * dim * sizeof *partial, st));
        rmsnorm_dweight_partial_kernel<<<reduce_partial_grid(rows, dim), REDUCE_THREADS, 0, st>>>(partial, dout, x,
                                                                                              rstd, rows, dim);
        CUDA_CHECK(cudaGetLastError());
        reduce_col_partials(dweight, partial, nchunks, dim, st);
        CUDA_CHECK(cudaFreeAsync(partial, st));
    }
}

extern "C" void rmsnorm_backward_cuda(float *dx, float *dweight, const float *dout, const float *x,
                                      const float *weight, const float *rstd, int rows, int dim, void *stream)
{
    rmsnorm_backward_launch(dx, (uint16_t *)NULL, dweight, dout, x, weight, rstd, (const float *)NULL, rows, dim,
                            stream);
}

extern "C" void rmsnorm_backward_res_cuda(float *dx, float *dweight, const float *dout, const float *x,
                                          const float *weight, const float *rstd, const float *res, int rows, int dim,
                                          void *stream)
{
    MMUPT_CHECK(dx != NULL && res != NULL && dx != res);
    rmsnorm_backward_launch(dx, (uint16_t *)NULL, dweight, dout, x, weight, rstd, res, rows, dim, stream);
}

extern "C" void rmsnorm_backward_cast_cuda(float *dx, uint16_t *dx16, float *dweight, const float *dout,
                                           const float *x, const float *weight, const float *rstd, const float *res,
                                           int rows, int dim, void *stream)
{
    MMUPT_CHECK(dx != NULL && dx16 != NULL && dx != res);
    rmsnorm_backward_launch(dx, dx16, dweight, dout, x, weight, rstd, res, rows, dim, stream);
}
