/* RMSNorm forward, CPU reference. Sums in double: this is the yardstick the CUDA twin and later
 * optimised paths are measured against, so it should be the most accurate, not the fastest. */
#include <math.h>

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
