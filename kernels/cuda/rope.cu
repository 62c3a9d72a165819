// Rotary position embedding, CUDA twin of kernels/cpu/rope.c (rotate-half, per-row cos/sin tables).
//
// One thread per rotated pair (row r, head h, dim i < half): it reads x[i] and x[i + half] and
// writes both, so every element has exactly one writer and the op runs in place without races.
// The index is a long because rows * n_heads * half can exceed 2^31 for long packed batches.
#include <cuda_runtime.h>

#include "mmupt/cuda_check.h"
#include "mmupt/err.h"
#include "mmupt/kernels.h"
#include "launch.cuh"
#include "rope.cuh"

// Splits a flat pair index into (row, head, i) and returns the offsets of the head's vector in x
// and of the row's tables in cos/sin.
static __device__ void rope_locate(long p, int n_heads, int half, long *xoff, long *toff, int *i)
{
    *i = (int)(p % half);
    long rh = p / half;  // r * n_heads + h: heads of a row lie back to back in x
    long r = rh / n_heads;
    *xoff = rh * (2L * half);
    *toff = r * (2L * half);
}

static __global__ void rope_forward_kernel(float *x, const float *cos, const float *sin, long pairs, int n_heads,
                                           int half)
{
    for (long p = blockIdx.x * (long)blockDim.x + threadIdx.x; p < pairs; p += (long)gridDim.x * blockDim.x) {
        long xoff, toff;
        int i;
        rope_locate(p, n_heads, half, &xoff, &toff, &i);
        float *xh = x + xoff;
        const float *c = cos + toff, *s = sin + toff;
        rope_rotate(xh[i], xh[i + half], c, s, i, half, &xh[i], &xh[i + half]);
    }
}

// The transpose of the forward's 2x2 map, as in the CPU reference.
static __global__ void rope_backward_kernel(float *dx, const float *cos, const float *sin, long pairs, int n_heads,
                                            int half)
{
    for (long p = blockIdx.x * (long)blockDim.x + threadIdx.x; p < pairs; p += (long)gridDim.x * blockDim.x) {
        long xoff, toff;
        int i;
        rope_locate(p, n_heads, half, &xoff, &toff, &i);
        float *g = dx + xoff;
        const float *c = cos + toff, *s = sin + toff;
        float g1 = g[i], g2 = g[i + half];
        g[i] = g1 * c[i] + g2 * s[i + half];
        g[i + half] = g2 * c[i + half] - g1 * s[i];
    }
}

extern "C" void rope_forward_cuda(float *x, const float *cos, const float *sin, int rows, int n_heads, int head_dim,
                                  void *stream)
{
    MMUPT_CHECK(head_dim % 2 == 0);
    int half = head_dim / 2;
    long pairs = (long)rows * n_heads * half;
    if (pairs <= 0) return;  // a zero-block launch is an error, and there is nothing to do
    rope_forward_kernel<<<launch_blocks(pairs), LAUNCH_THREADS, 0, (cudaStream_t)stream>>>(x, cos, sin, pairs, n_heads,
                                                                                       half);
    CUDA_CHECK(cudaGetLastError());
}

extern "C" void rope_backward_cuda(float *dx, const float *cos, const float *sin, int rows, int n_heads, int head_dim,
                                   void *stream)
{
    MMUPT_CHECK(head_dim % 2 == 0);
    int half = head_dim / 2;
    long pairs = (long)rows * n_heads * half;
    if (pairs <= 0) return;
    rope_backward_kernel<<<launch_blocks(pairs), LAUNCH_THREADS, 0, (cudaStream_t)stream>>>(dx, cos, sin, pairs, n_heads,
                                                                                        half);
    CUDA_CHECK(cudaGetLastError());
}
