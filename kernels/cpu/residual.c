/* The residual stream's addition, CPU reference: out = a + b elementwise. One rounding per element,
 * so the CUDA twin is bitwise equal. out may alias a or b. */
#include "mmupt/kernels.h"

void residual_forward_cpu(float *out, const float *a, const float *b, long n)
{
#pragma omp parallel for schedule(static)
    for (long i = 0; i < n; i++) out[i] = a[i] + b[i];
}
