/* AdamW update of one parameter shard, CPU reference (the math of include/mmupt/optim.h; the
 * ZeRO-1 plumbing around it lives in src/optim/adamw.c). Every element is independent and computed
 * in double, so the OpenMP split cannot change a bit of the result. */
#include <math.h>

#include "mmupt/err.h"
#include "mmupt/kernels.h"

void adamw_update_cpu(float *params, const float *grad, float *m, float *v, long n, double lr, double beta1,
                      double beta2, double eps, double weight_decay, double grad_scale, int64_t t)
{
    MMUPT_CHECK(n >= 0 && t >= 1);
    /* Per-step constants, computed once: the CUDA twin computes them on the host the same way, so
     * both sides start every element from the same bits. */
    const double bc1 = 1.0 - pow(beta1, (double)t), bc2 = 1.0 - pow(beta2, (double)t);
    const double decay = 1.0 - lr * weight_decay;
#pragma omp parallel for schedule(static)
    for (long i = 0; i < n; i++) {
        double g = (double)grad[i] * grad_scale;
        double mi = beta1 * (double)m[i] + (1.0 - beta1) * g;
        double vi = beta2 * (double)v[i] + (1.0 - beta2) * g * g;
        double w = (double)params[i] * decay; /* decoupled weight decay, before the Adam step as torch */
        w -= lr * (mi / bc1) / (sqrt(vi / bc2) + eps);
        m[i] = (float)mi;
        v[i] = (float)vi;
        params[i] = (float)w;
    }
}
