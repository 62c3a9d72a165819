// AdamW update of one parameter shard: CUDA twin of kernels/cpu/adamw.c, one thread per element.
//
// Bitwise equal to the reference, by construction:
//   - the per-step constants (bias corrections 1 - b^t, the decay 1 - lr wd) are computed on the
//     host with the same expressions as the CPU reference, so the kernel never calls pow (CUDA's
//     double pow may differ from glibc's in the last bit);
//   - what remains per element is double +, -, *, / and sqrt, which CUDA rounds as IEEE 754 does,
//     as long as no multiply is fused with an add: nvcc contracts a*b + c into an FMA by default
//     (-fmad=true), also across statements, and the build sets no flag against it (-fmad=false would
//     slow every other kernel), so every multiply here is written __dmul_rn, which is never fused;
//   - the x86-64 reference is built without -march, so gcc has no FMA instruction to contract to.
// Each element is independent: no reduction, no ordering question.
#include <cuda_runtime.h>
#include <math.h>

#include "launch.cuh"
#include "mmupt/cuda_check.h"
#include "mmupt/err.h"
#include "mmupt/kernels.h"

// The per-step scalars, as the reference names them.
struct adamw_consts {
    double lr, b1, b2, eps, gscale, bc1, bc2, decay;
};

// Same expression order as adamw_update_cpu, term by term.
static __global__ void adamw_update_kernel(float *params, const float *grad, float *m, float *v, long n,
                                           struct adamw_consts k)
{
    LAUNCH_LOOP(i, n) {
        double g = __dmul_rn((double)grad[i], k.gscale);
        double mi = __dmul_rn(k.b1, (double)m[i]) + __dmul_rn(1.0 - k.b1, g);
        double vi = __dmul_rn(k.b2, (double)v[i]) + __dmul_rn(__dmul_rn(1.0 - k.b2, g), g);
        double w = __dmul_rn((double)params[i], k.decay); // else fused with the -= below
        w -= __dmul_rn(k.lr, mi / k.bc1) / (sqrt(vi / k.bc2) + k.eps);
        m[i] = (float)mi;
        v[i] = (float)vi;
        params[i] = (float)w;
    }
}

extern "C" void adamw_update_cuda(float *params, const float *grad, float *m, float *v, long n, double lr,
                                  double beta1, double beta2, double eps, double weight_decay, double grad_scale,
                                  int64_t t, void *stream)
{
    MMUPT_CHECK(n >= 0 && t >= 1);
    if (n == 0) return;
    struct adamw_consts k;
    k.lr = lr;
    k.b1 = beta1;
    k.b2 = beta2;
    k.eps = eps;
    k.gscale = grad_scale;
    k.bc1 = 1.0 - pow(beta1, (double)t);
    k.bc2 = 1.0 - pow(beta2, (double)t);
    k.decay = 1.0 - lr * weight_decay;
    adamw_update_kernel<<<launch_blocks(n), LAUNCH_THREADS, 0, (cudaStream_t)stream>>>(params, grad, m, v, n, k);
    CUDA_CHECK(cudaGetLastError());
}
