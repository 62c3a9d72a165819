/* Elementwise activations and their gradients, CPU reference: SwiGLU (decoder MLP), exact GELU
 * (patch merger) and quick GELU (Qwen2-VL vision MLP). Each element is independent, so a plain
 * parallel loop is thread-count independent. */
#include <math.h>
#include <stdlib.h>

#include "mmupt/bf16.h"
#include "mmupt/err.h"
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

/* One element's SwiGLU gradient terms, shared by the accumulating op and its bf16 twin so the two
 * make the same float operations: silu'(g) = s + g s (1 - s) with s = sigmoid(g). */
static inline void swiglu_grad(float *dg, float *du, float dout, float g, float u)
{
    float s = sigmoidf(g);
    *dg = dout * u * (s + g * s * (1.0f - s));
    *du = dout * g * s;
}

void swiglu_backward_cpu(float *dgate, float *dup, const float *dout, const float *gate, const float *up, long n)
{
#pragma omp parallel for schedule(static)
    for (long i = 0; i < n; i++) {
        float dg, du;
        swiglu_grad(&dg, &du, dout[i], gate[i], up[i]);
        if (dgate) dgate[i] += dg;
        if (dup) dup[i] += du;
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

/* out NULL: the rounding alone (the fp32 values are made in a temporary, then dropped). */
void swiglu_forward_cast_cpu(float *out, uint16_t *out16, const float *gate, const float *up, long n)
{
    float *y = out ? out : mmupt_xmalloc((size_t)(n > 0 ? n : 1) * sizeof *y);
    swiglu_forward_cpu(y, gate, up, n);
    cast_bf16_cpu(out16, y, n);
    if (!out) free(y);
}

/* out NULL: the rounding alone (the fp32 values are made in a temporary, then dropped). */
void swiglu_packed_forward_cast_cpu(float *out, uint16_t *out16, const float *gu, long rows, long inner)
{
    long n = rows * inner;
    float *y = out ? out : mmupt_xmalloc((size_t)(n > 0 ? n : 1) * sizeof *y);
    for (long r = 0; r < rows; r++)
        swiglu_forward_cpu(y + r * inner, gu + r * 2 * inner, gu + r * 2 * inner + inner, inner);
    cast_bf16_cpu(out16, y, n);
    if (!out) free(y);
}

void swiglu_packed16_forward_cast_cpu(uint16_t *out16, const uint16_t *gu16, long rows, long inner)
{
    float *gu = bf16_widened(gu16, 2 * rows * inner); /* the fp32 ops on the same values */
    swiglu_packed_forward_cast_cpu(NULL, out16, gu, rows, inner);
    free(gu);
}

void swiglu_packed16_backward16_cpu(uint16_t *dgu, const uint16_t *dout16, const uint16_t *gu16, long rows, long inner)
{
    /* the fp32 ops on the same values */
    float *dout = bf16_widened(dout16, rows * inner), *gu = bf16_widened(gu16, 2 * rows * inner);
    swiglu_packed_backward_bf16_cpu(dgu, dout, gu, rows, inner);
    free(dout);
    free(gu);
}

void swiglu_packed_backward_cpu(float *dgu, const float *dout, const float *gu, long rows, long inner)
{
    for (long r = 0; r < rows; r++) {
        float *dg = dgu + r * 2 * inner;
        const float *g = gu + r * 2 * inner;
        swiglu_backward_cpu(dg, dg + inner, dout + r * inner, g, g + inner, inner);
    }
}

/* By definition swiglu_packed_backward on a zeroed buffer, then rounded: 0 + x is x except that a
 * -0 term becomes +0, as it would there. */
void swiglu_packed_backward_bf16_cpu(uint16_t *dgu, const float *dout, const float *gu, long rows, long inner)
{
#pragma omp parallel for schedule(static)
    for (long r = 0; r < rows; r++)
        for (long c = 0; c < inner; c++) {
            long at = r * 2 * inner + c;
            float dg, du;
            swiglu_grad(&dg, &du, dout[r * inner + c], gu[at], gu[at + inner]);
            dgu[at] = bf16_from_f32(0.0f + dg);
            dgu[at + inner] = bf16_from_f32(0.0f + du);
        }
}
