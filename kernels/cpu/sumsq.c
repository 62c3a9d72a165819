/* Sum of squares in double, CPU reference: sum_i (x[i] * scale)^2, added in index order (the
 * optimizer's global gradient norm, whose every rank must take the same clip and skip decision:
 * a sequential sum is thread-count independent). */
#include "mmupt/kernels.h"

double sumsq_cpu(const float *x, long n, double scale)
{
    double ss = 0.0;
    for (long i = 0; i < n; i++) {
        double g = (double)x[i] * scale;
        ss += g * g;
    }
    return ss;
}
