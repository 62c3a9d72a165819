// Elementwise activations and their gradients, CUDA twin of kernels/cpu/activations.c: SwiGLU,
// exact GELU and quick GELU with the same formulas (expf, erff), so the two differ only by the
// last-bit differences of CUDA's and glibc's transcendental functions.
//
// Every kernel is a grid-stride loop with long indices: n counts all elements of an MLP activation
// ([tokens, intermediate]), which passes 2^31 for long batches. Backward kernels accumulate into
// each gradient they are given (but the bf16 one, which assigns); a NULL gradient is skipped.
#include <math.h>

#include <cuda_runtime.h>
#include <stdint.h>

#include "mmupt/cuda_check.h"
#include "mmupt/kernels.h"
#include "bf16.cuh"
#include "launch.cuh"
#include "pdl.cuh"
#include "vec.cuh"

#define QUICK_GELU_A 1.702f

// 1 / (1 + e^-x): for x -> -inf, expf overflows to inf and the result is 0, not NaN (the division
// is IEEE: the build does not use fast math).
static __device__ __forceinline__ float act_sigmoid(float x)
{
    return 1.0f / (1.0f + expf(-x));
}

static __global__ void swiglu_forward_kernel(float *out, const float *gate, const float *up, long n)
{
    LAUNCH_LOOP(i, n) out[i] = gate[i] * act_sigmoid(gate[i]) * up[i];
}

// An input value as fp32: fp32 as it is, bf16 (gate/up in bf16, swiglu_packed16_*) widened - exact.
static __device__ __forceinline__ float act_in(float x) { return x; }
static __device__ __forceinline__ float act_in(uint16_t h) { return bf16_widen(h); }

// The same, and out rounded to bf16 into out16 (the next GEMM's operand, without a cast launch).
// Element (r, c) of out ([rows, inner]) reads gate and up at r * stride + c: stride inner for
// separate arrays (one row), 2 inner for one gate/up GEMM's rows (up = gate + inner):
// swiglu_packed_forward_cast. T: the input's type (float, or bf16 as uint16_t).
//
// Rows on grid y, a row's elements V at a time on x: no 64-bit division per element (the flat
// index's / and % were most of the kernel's instructions), and with V = 8 every access moves 16
// bytes (V = 1 where the widths or pointers do not allow packs; act_vec8 decides). The grid:
// launch_row_grid, a row's packs on x (LAUNCH_LOOP).
template <typename T, int V>
static __global__ void swiglu_forward_cast_kernel(float *out, uint16_t *out16, const T *gate, const T *up, long rows,
                                                  long inner, long stride)
{
    pdl_trigger(); // the down projection's skinny GEMM may start its weight prefetch (pdl.cuh)
    pdl_wait();    // launched programmatically (pdl): the kernel before has finished writing gate/up
    for (long r = blockIdx.y; r < rows; r += gridDim.y)
        LAUNCH_LOOP(c, inner / V)
        {
            long at = r * stride + c * V, o = r * inner + c * V;
            T gv[V], uv[V];
            vec_load<T, V>(gv, gate + at);
            vec_load<T, V>(uv, up + at);
            float y[V];
            uint16_t y16[V];
            UNROLL
            for (int e = 0; e < V; e++) {
                float g = act_in(gv[e]);
                y[e] = g * act_sigmoid(g) * act_in(uv[e]);
                y16[e] = bf16_round(y[e]);
            }
            if (out) vec_store<float, V>(out + o, y); // NULL: the rounding alone
            vec_store<uint16_t, V>(out16 + o, y16);
        }
}

// One element's gradient terms, shared by the accumulating kernel and its bf16 twin so the two make
// the same float operations: silu'(g) = s + g s (1 - s) with s = sigmoid(g).
static __device__ __forceinline__ void swiglu_grad(float *dg, float *du, float dout, float g, float u)
{
    float s = act_sigmoid(g);
    *dg = dout * u * (s + g * s * (1.0f - s));
    *du = dout * g * s;
}

// Element i = (r, c) of dout ([n / inner, inner]) reads gate and up, and adds into dgate and dup, at
// r * stride + c (as swiglu_forward_cast_kernel).
static __global__ void swiglu_backward_kernel(float *dgate, float *dup, const float *dout, const float *gate,
                                              const float *up, long n, long inner, long stride)
{
    LAUNCH_LOOP(i, n)
    {
        long at = i / inner * stride + i % inner;
        float dg, du;
        swiglu_grad(&dg, &du, dout[i], gate[at], up[at]);
        if (dgate) dgate[at] += dg;
        if (dup) dup[at] += du;
    }
}

// The packed gradient (gu's rows: [gate | up], inner each) rounded to bf16 and assigned: the
// accumulating kernel's result on a zeroed buffer (0 + x: a -0 term becomes +0, as there). D, T:
// dout's and gu's types (float, or bf16 as uint16_t, widened). Laid out over rows and packs as
// swiglu_forward_cast_kernel.
template <typename D, typename T, int V>
static __global__ void swiglu_packed_backward_bf16_kernel(uint16_t *dgu, const D *dout, const T *gu, long rows,
                                                          long inner)
{
    for (long r = blockIdx.y; r < rows; r += gridDim.y)
        LAUNCH_LOOP(c, inner / V)
        {
            long at = r * 2 * inner + c * V;
            D dv[V];
            T gv[V], uv[V];
            vec_load<D, V>(dv, dout + r * inner + c * V);
            vec_load<T, V>(gv, gu + at);
            vec_load<T, V>(uv, gu + at + inner);
            uint16_t dg16[V], du16[V];
            UNROLL
            for (int e = 0; e < V; e++) {
                float dg, du;
                swiglu_grad(&dg, &du, act_in(dv[e]), act_in(gv[e]), act_in(uv[e]));
                dg16[e] = bf16_round(0.0f + dg);
                du16[e] = bf16_round(0.0f + du);
            }
            vec_store<uint16_t, V>(dgu + at, dg16);
            vec_store<uint16_t, V>(dgu + at + inner, du16);
        }
}

static __global__ void gelu_forward_kernel(float *out, const float *x, long n)
{
    LAUNCH_LOOP(i, n) out[i] = 0.5f * x[i] * (1.0f + erff(x[i] * (float)M_SQRT1_2));
}

// d/dx x Phi(x) = Phi(x) + x phi(x), phi the standard normal density.
static __global__ void gelu_backward_kernel(float *dx, const float *dout, const float *x, long n)
{
    const float inv_sqrt_2pi = (float)(0.5 * M_2_SQRTPI * M_SQRT1_2);
    LAUNCH_LOOP(i, n)
    {
        float xi = x[i];
        float cdf = 0.5f * (1.0f + erff(xi * (float)M_SQRT1_2));
        float pdf = inv_sqrt_2pi * expf(-0.5f * xi * xi);
        dx[i] += dout[i] * (cdf + xi * pdf);
    }
}

static __global__ void quick_gelu_forward_kernel(float *out, const float *x, long n)
{
    LAUNCH_LOOP(i, n) out[i] = x[i] * act_sigmoid(QUICK_GELU_A * x[i]);
}

// d/dx x s(a x) = s + a x s (1 - s).
static __global__ void quick_gelu_backward_kernel(float *dx, const float *dout, const float *x, long n)
{
    LAUNCH_LOOP(i, n)
    {
        float s = act_sigmoid(QUICK_GELU_A * x[i]);
        dx[i] += dout[i] * (s + QUICK_GELU_A * x[i] * s * (1.0f - s));
    }
}

// Packs of 8 when every row start and pointer allows 16-byte accesses, else one element at a time.
static bool act_vec8(long inner, long stride, const void *a, const void *b, const void *c, const void *d)
{
    return inner % 8 == 0 && stride % 8 == 0 && vec_aligned(16, a, b, c, d);
}

template <typename T>
static void swiglu_forward_cast_launch(float *out, uint16_t *out16, const T *gate, const T *up, long rows, long inner,
                                       long stride, int pdl, void *stream)
{
    if (rows <= 0 || inner <= 0) return;
    cudaStream_t st = (cudaStream_t)stream;
    // pdl: launched programmatically (pdl.cuh), its launch overlapping the end of the kernel before
    if (act_vec8(inner, stride, out, out16, gate, up))
        pdl_launch(pdl != 0, swiglu_forward_cast_kernel<T, 8>, launch_row_grid(rows, inner / 8), dim3(LAUNCH_THREADS), 0,
                   st, out, out16, gate, up, rows, inner, stride);
    else
        pdl_launch(pdl != 0, swiglu_forward_cast_kernel<T, 1>, launch_row_grid(rows, inner), dim3(LAUNCH_THREADS), 0, st,
                   out, out16, gate, up, rows, inner, stride);
}

template <typename D, typename T>
static void swiglu_packed_backward_bf16_launch(uint16_t *dgu, const D *dout, const T *gu, long rows, long inner,
                                               void *stream)
{
    if (rows <= 0 || inner <= 0) return;
    cudaStream_t st = (cudaStream_t)stream;
    if (act_vec8(inner, 2 * inner, dgu, dout, gu, NULL))
        swiglu_packed_backward_bf16_kernel<D, T, 8><<<launch_row_grid(rows, inner / 8), LAUNCH_THREADS, 0, st>>>(
            dgu, dout, gu, rows, inner);
    else
        swiglu_packed_backward_bf16_kernel<D, T, 1><<<launch_row_grid(rows, inner), LAUNCH_THREADS, 0, st>>>(
            dgu, dout, gu, rows, inner);
    CUDA_CHECK(cudaGetLastError());
}

// Launch configuration shared by every op; n <= 0 returns before launching (a zero-block launch
// is an error).
#define ACT_LAUNCH(kernel, n, stream, ...)                                                         \
    do {                                                                                           \
        if ((n) <= 0) return;                                                                      \
        kernel<<<launch_blocks(n), LAUNCH_THREADS, 0, (cudaStream_t)(stream)>>>(__VA_ARGS__);             \
        CUDA_CHECK(cudaGetLastError());                                                            \
    } while (0)

extern "C" void swiglu_forward_cuda(float *out, const float *gate, const float *up, long n, void *stream)
{
    ACT_LAUNCH(swiglu_forward_kernel, n, stream, out, gate, up, n);
}

extern "C" void swiglu_forward_cast_cuda(float *out, uint16_t *out16, const float *gate, const float *up, long n,
                                         void *stream)
{
    swiglu_forward_cast_launch<float>(out, out16, gate, up, 1, n, n, 0, stream);
}

extern "C" void swiglu_packed_forward_cast_cuda(float *out, uint16_t *out16, const float *gu, long rows, long inner,
                                                int pdl, void *stream)
{
    swiglu_forward_cast_launch<float>(out, out16, gu, gu + inner, rows, inner, 2 * inner, pdl, stream);
}

extern "C" void swiglu_backward_cuda(float *dgate, float *dup, const float *dout, const float *gate, const float *up,
                                     long n, void *stream)
{
    if (!dgate && !dup) return;
    ACT_LAUNCH(swiglu_backward_kernel, n, stream, dgate, dup, dout, gate, up, n, n, n);
}

extern "C" void swiglu_packed_backward_cuda(float *dgu, const float *dout, const float *gu, long rows, long inner,
                                            void *stream)
{
    ACT_LAUNCH(swiglu_backward_kernel, rows * inner, stream, dgu, dgu + inner, dout, gu, gu + inner, rows * inner,
               inner, 2 * inner);
}

extern "C" void swiglu_packed_backward_bf16_cuda(uint16_t *dgu, const float *dout, const float *gu, long rows,
                                                 long inner, void *stream)
{
    swiglu_packed_backward_bf16_launch<float, float>(dgu, dout, gu, rows, inner, stream);
}

extern "C" void swiglu_packed16_forward_cast_cuda(uint16_t *out16, const uint16_t *gu16, long rows, long inner,
                                                  void *stream)
{
    swiglu_forward_cast_launch<uint16_t>((float *)NULL, out16, gu16, gu16 + inner, rows, inner, 2 * inner, 0, stream);
}

extern "C" void swiglu_packed16_backward16_cuda(uint16_t *dgu, const uint16_t *dout16, const uint16_t *gu16, long rows,
                                                long inner, void *stream)
{
    swiglu_packed_backward_bf16_launch<uint16_t, uint16_t>(dgu, dout16, gu16, rows, inner, stream);
}

extern "C" void gelu_forward_cuda(float *out, const float *x, long n, void *stream)
{
    ACT_LAUNCH(gelu_forward_kernel, n, stream, out, x, n);
}

extern "C" void gelu_backward_cuda(float *dx, const float *dout, const float *x, long n, void *stream)
{
    if (!dx) return;
    ACT_LAUNCH(gelu_backward_kernel, n, stream, dx, dout, x, n);
}

extern "C" void quick_gelu_forward_cuda(float *out, const float *x, long n, void *stream)
{
    ACT_LAUNCH(quick_gelu_forward_kernel, n, stream, out, x, n);
}

extern "C" void quick_gelu_backward_cuda(float *dx, const float *dout, const float *x, long n, void *stream)
{
    if (!dx) return;
    ACT_LAUNCH(quick_gelu_backward_kernel, n, stream, dx, dout, x, n);
}
