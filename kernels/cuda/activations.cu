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
// Element i = (r, c) of out ([n / inner, inner]) reads gate and up at r * stride + c: stride inner
// for separate arrays, 2 inner for one gate/up GEMM's rows (up = gate + inner):
// swiglu_packed_forward_cast. T: the input's type (float, or bf16 as uint16_t).
template <typename T>
static __global__ void swiglu_forward_cast_kernel(float *out, uint16_t *out16, const T *gate, const T *up, long n,
                                                  long inner, long stride)
{
    pdl_trigger(); // the down projection's skinny GEMM may start its weight prefetch (pdl.cuh)
    LAUNCH_LOOP(i, n)
    {
        long at = i / inner * stride + i % inner;
        float g = act_in(gate[at]);
        float y = g * act_sigmoid(g) * act_in(up[at]);
        if (out) out[i] = y; // NULL: the rounding alone
        out16[i] = bf16_round(y);
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
// accumulating kernel's result on a zeroed buffer (0 + x: a -0 term becomes +0, as there). T: gu's
// type (float, or bf16 as uint16_t).
template <typename T>
static __global__ void swiglu_packed_backward_bf16_kernel(uint16_t *dgu, const float *dout, const T *gu, long n,
                                                          long inner)
{
    LAUNCH_LOOP(i, n)
    {
        long at = i / inner * 2 * inner + i % inner;
        float dg, du;
        swiglu_grad(&dg, &du, dout[i], act_in(gu[at]), act_in(gu[at + inner]));
        dgu[at] = bf16_round(0.0f + dg);
        dgu[at + inner] = bf16_round(0.0f + du);
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
    ACT_LAUNCH(swiglu_forward_cast_kernel<float>, n, stream, out, out16, gate, up, n, n, n);
}

extern "C" void swiglu_packed_forward_cast_cuda(float *out, uint16_t *out16, const float *gu, long rows, long inner,
                                                void *stream)
{
    ACT_LAUNCH(swiglu_forward_cast_kernel<float>, rows * inner, stream, out, out16, gu, gu + inner, rows * inner, inner,
               2 * inner);
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
    ACT_LAUNCH(swiglu_packed_backward_bf16_kernel<float>, rows * inner, stream, dgu, dout, gu, rows * inner, inner);
}

extern "C" void swiglu_packed16_forward_cast_cuda(uint16_t *out16, const uint16_t *gu16, long rows, long inner,
                                                  void *stream)
{
    ACT_LAUNCH(swiglu_forward_cast_kernel<uint16_t>, rows * inner, stream, (float *)NULL, out16, gu16, gu16 + inner,
               rows * inner, inner, 2 * inner);
}

extern "C" void swiglu_packed16_backward_bf16_cuda(uint16_t *dgu, const float *dout, const uint16_t *gu16, long rows,
                                                   long inner, void *stream)
{
    ACT_LAUNCH(swiglu_packed_backward_bf16_kernel<uint16_t>, rows * inner, stream, dgu, dout, gu16, rows * inner,
               inner);
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
