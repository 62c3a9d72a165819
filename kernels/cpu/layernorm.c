/* LayerNorm with weight and bias, CPU reference (Qwen2-VL's vision blocks and patch merger).
 * Statistics in double, as in rmsnorm.c: this is the yardstick, so accuracy comes before speed. */
#include <math.h>

#include "mmupt/kernels.h"

void layernorm_forward_cpu(float *out, float *mean, float *rstd, const float *x, const float *weight,
                           const float *bias, int rows, int dim, float eps)
{
#pragma omp parallel for schedule(static)
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (long)r * dim;
        float *outr = out + (long)r * dim;
        double sum = 0.0;
        for (int i = 0; i < dim; i++) sum += xr[i];
        double mu = sum / dim;
        /* Two passes: the variance of centred values does not cancel catastrophically when the mean
         * is large against the spread, as E[x^2] - mu^2 would. */
        double ss = 0.0;
        for (int i = 0; i < dim; i++) ss += ((double)xr[i] - mu) * ((double)xr[i] - mu);
        double s = 1.0 / sqrt(ss / dim + (double)eps);
        /* Centred in double: a float mean carries an error of |mean| * 6e-8, large against the
         * spread when the mean is large. */
        for (int i = 0; i < dim; i++) outr[i] = (float)(((double)xr[i] - mu) * s * weight[i] + bias[i]);
        if (mean) mean[r] = (float)mu;
        if (rstd) rstd[r] = (float)s;
    }
}

/* With xhat = (x - mean) * rstd and g = dout * w:
 *   dx = rstd * (g - mean(g) - xhat * mean(g * xhat)),
 *   dweight += sum over rows of dout * xhat,   dbias += sum over rows of dout. */
void layernorm_backward_cpu(float *dx, float *dweight, float *dbias, const float *dout, const float *x,
                            const float *weight, const float *mean, const float *rstd, int rows, int dim)
{
    if (dx) {
#pragma omp parallel for schedule(static)
        for (int r = 0; r < rows; r++) {
            const float *xr = x + (long)r * dim, *dr = dout + (long)r * dim;
            float *dxr = dx + (long)r * dim;
            double mu = mean[r], s = rstd[r], gsum = 0.0, gxsum = 0.0;
            for (int i = 0; i < dim; i++) {
                double g = (double)dr[i] * weight[i];
                gsum += g;
                gxsum += g * ((xr[i] - mu) * s);
            }
            double gm = gsum / dim, gxm = gxsum / dim;
            for (int i = 0; i < dim; i++) {
                double xhat = (xr[i] - mu) * s;
                dxr[i] += (float)(s * ((double)dr[i] * weight[i] - gm - xhat * gxm));
            }
        }
    }
    if (dweight || dbias) {
        /* Threads own blocks of columns and walk all rows in order: a fixed summation order. */
        enum { CB = 64 };
        int nb = (dim + CB - 1) / CB;
#pragma omp parallel for schedule(static)
        for (int b = 0; b < nb; b++) {
            int i0 = b * CB, i1 = i0 + CB < dim ? i0 + CB : dim;
            double aw[CB] = {0}, ab[CB] = {0};
            for (int r = 0; r < rows; r++) {
                const float *xr = x + (long)r * dim, *dr = dout + (long)r * dim;
                double mu = mean[r], s = rstd[r];
                for (int i = i0; i < i1; i++) {
                    aw[i - i0] += (double)dr[i] * ((xr[i] - mu) * s);
                    ab[i - i0] += dr[i];
                }
            }
            for (int i = i0; i < i1; i++) {
                if (dweight) dweight[i] += (float)aw[i - i0];
                if (dbias) dbias[i] += (float)ab[i - i0];
            }
        }
    }
}
