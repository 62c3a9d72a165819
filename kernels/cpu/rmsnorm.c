/* RMSNorm forward, CPU reference. Sums in double: this is the yardstick the CUDA twin and later
 * optimised paths are measured against, so it should be the most accurate, not the fastest. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mmupt/err.h"
#include "mmupt/kernels.h"

void rmsnorm_forward_cpu(float *out, float *rstd, const float *x, const float *weight, int rows, int dim, float eps)
{
#pragma omp parallel for schedule(static)
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (long)r * dim;
        float *outr = out + (long)r * dim;
        double ss = 0.0;
        for (int i = 0; i < dim; i++) ss += (double)xr[i] * xr[i];
        float s = (float)(1.0 / sqrt(ss / dim + (double)eps));
        for (int i = 0; i < dim; i++) outr[i] = xr[i] * s * weight[i];
        if (rstd) rstd[r] = s;
    }
}

/* y = x * rstd * w with rstd = (mean(x^2) + eps)^-1/2. With g = dout * w and xhat = x * rstd:
 *   dx = rstd * (g - xhat * mean(g * xhat)),   dweight += sum over rows of dout * xhat.
 * The rstd from the forward is reused, not recomputed, so both passes see the same value. */
void rmsnorm_backward_cpu(float *dx, float *dweight, const float *dout, const float *x, const float *weight,
                          const float *rstd, int rows, int dim)
{
    if (dx) {
#pragma omp parallel for schedule(static)
        for (int r = 0; r < rows; r++) {
            const float *xr = x + (long)r * dim, *dr = dout + (long)r * dim;
            float *dxr = dx + (long)r * dim;
            double s = rstd[r], dot = 0.0;
            for (int i = 0; i < dim; i++) dot += (double)dr[i] * weight[i] * (xr[i] * s);
            double m = dot / dim;
            for (int i = 0; i < dim; i++) {
                double xhat = xr[i] * s;
                dxr[i] += (float)(s * ((double)dr[i] * weight[i] - xhat * m));
            }
        }
    }
    if (dweight) {
        /* Threads own blocks of columns and walk all rows in order: a fixed summation order. */
        enum { CB = 64 };
        int nb = (dim + CB - 1) / CB;
#pragma omp parallel for schedule(static)
        for (int b = 0; b < nb; b++) {
            int i0 = b * CB, i1 = i0 + CB < dim ? i0 + CB : dim;
            double acc[CB] = {0};
            for (int r = 0; r < rows; r++) {
                const float *xr = x + (long)r * dim, *dr = dout + (long)r * dim;
                double s = rstd[r];
                for (int i = i0; i < i1; i++) acc[i - i0] += (double)dr[i] * (xr[i] * s);
            }
            for (int i = i0; i < i1; i++) dweight[i] += (float)acc[i - i0];
        }
    }
}

void rmsnorm_backward_res_cpu(float *dx, float *dweight, const float *dout, const float *x, const float *weight,
                              const float *rstd, const float *res, int rows, int dim)
{
    memcpy(dx, res, (size_t)rows * dim * sizeof *dx);
    rmsnorm_backward_cpu(dx, dweight, dout, x, weight, rstd, rows, dim);
}

void rmsnorm_backward_cast_cpu(float *dx, uint16_t *dx16, float *dweight, const float *dout, const float *x,
                               const float *weight, const float *rstd, const float *res, int rows, int dim)
{
    if (res) rmsnorm_backward_res_cpu(dx, dweight, dout, x, weight, rstd, res, rows, dim);
    else rmsnorm_backward_cpu(dx, dweight, dout, x, weight, rstd, rows, dim);
    cast_bf16_cpu(dx16, dx, (long)rows * dim);
}

/* out NULL: the rounding alone (the fp32 values are made in a temporary, then dropped). */
void rmsnorm_forward_cast_cpu(float *out, uint16_t *out16, float *rstd, const float *x, const float *weight, int rows,
                              int dim, float eps)
{
    long n = (long)rows * dim;
    float *y = out ? out : mmupt_xmalloc((size_t)(n > 0 ? n : 1) * sizeof *y);
    rmsnorm_forward_cpu(y, rstd, x, weight, rows, dim, eps);
    cast_bf16_cpu(out16, y, n);
    if (!out) free(y);
}

void residual_rmsnorm_forward_cast_cpu(float *sum, float *out, uint16_t *out16, float *rstd, const float *a,
                                       const float *b, const float *weight, int rows, int dim, float eps)
{
    residual_forward_cpu(sum, a, b, (long)rows * dim);
    rmsnorm_forward_cast_cpu(out, out16, rstd, sum, weight, rows, dim, eps);
}
