/* Elementwise activations and their gradients, CPU reference: SwiGLU (decoder MLP), exact GELU
 * (patch merger) and quick GELU (Qwen2-VL vision MLP). Each element is independent, so a plain
 * parallel loop is thread-count independent. */
#include <math.h>

#include "mmupt/kernels.h"

/* 1 / (1 + e^-x): for x -> -inf, expf overflows to inf and the result is 0, not NaN. */
static inline float sigmoidf(float x)
{
    return 1.0f / (1.0f + expf(-x));
}

void swiglu_forward_cpu(float *out, const float *gate, const float *up, long n)
{
#pragma omp parallel for schedule(static)
    for (long i = 0; i < n; i++) out[i] = gate[i] * sigmoidf(gate[i]) * up[i];
}

/* silu'(g) = s + g s (1 - s) with s = sigmoid(g). */
void swiglu_backward_cpu(float *dgate, float *dup, const float *dout, const float *gate, const float *up, long n)
{
#pragma omp parallel for schedule(static)
    for (long i = 0; i < n; i++) {
        float g = gate[i], s = sigmoidf(g);
        if (dgate) dgate[i] += dout[i] * up[i] * (s + g * s * (1.0f - s));
        if (dup) dup[i] += dout[i] * g * s;
    }
}

void gelu_forward_cpu(float *out, const float *x, long n)
{
#pragma omp parallel for schedule(static)
    for (long i = 0; i < n; i++) out[i] = 0.5f * x[i] * (1.0f + erff(x[i] * (float)M_SQRT1_2));
}

/* d/dx x Phi(x) = Phi(x) + x phi(x), phi the standard normal density. */
void gelu_backward_cpu(float *dx, const float *dout, const float *x, long n)
{
    const float inv_sqrt_2pi = (float)(0.5 * M_2_SQRTPI * M_SQRT1_2);
#pragma omp parallel for schedule(static)
    for (long i = 0; i < n; i++) {
        float xi = x[i];
        float cdf = 0.5f * (1.0f + erff(xi * (float)M_SQRT1_2));
        float pdf = inv_sqrt_2pi * expf(-0.5f * xi * xi);
        dx[i] += dout[i] * (cdf + xi * pdf);
    }
}

#define QUICK_GELU_A 1.702f

void quick_gelu_forward_cpu(float *out, const float *x, long n)
{
#pragma omp parallel for schedule(static)
    for (long i = 0; i < n; i++) out[i] = x[i] * sigmoidf(QUICK_GELU_A * x[i]);
}

/* d/dx x s(a x) = s + a x s (1 - s). */
void quick_gelu_backward_cpu(float *dx, const float *dout, const float *x, long n)
{
#pragma omp parallel for schedule(static)
    for (long i = 0; i < n; i++) {
        float s = sigmoidf(QUICK_GELU_A * x[i]);
        dx[i] += dout[i] * (s + QUICK_GELU_A * x[i] * s * (1.0f - s));
    }
}

void swiglu_forward_cast_cpu(float *out, uint16_t *out16, const float *gate, const float *up, long n)
{
    swiglu_forward_cpu(out, gate, up, n);
    cast_bf16_cpu(out16, out, n);
}

void swiglu_packed_forward_cast_cpu(float *out, uint16_t *out16, const float *gu, long rows, long inner)
{
    for (long r = 0; r < rows; r++)
        swiglu_forward_cpu(out + r * inner, gu + r * 2 * inner, gu + r * 2 * inner + inner, inner);
    cast_bf16_cpu(out16, out, rows * inner);
}

void swiglu_packed_backward_cpu(float *dgu, const float *dout, const float *gu, long rows, long inner)
{
    for (long r = 0; r < rows; r++) {
        float *dg = dgu + r * 2 * inner;
        const float *g = gu + r * 2 * inner;
        swiglu_backward_cpu(dg, dg + inner, dout + r * inner, g, g + inner, inner);
    }
}
