/* One token's GRPO terms, shared by the CPU reference (kernels/cpu/grpo_loss.c) and its CUDA twin
 * (kernels/cuda/grpo_loss.cu), so the two cannot drift apart: the policy loss L and the KL value
 * with their derivatives w.r.t. logp, the ratio, and whether the clip-higher (clipped) or the dual
 * clip branch is the one taken. Same float/double steps and branches as EasyR1's loss, so the same
 * subgradients.
 *
 * GRPO_MUL marks the products that meet an add: on the device they are __dmul_rn, because nvcc
 * would otherwise fuse them into FMAs, which round differently from the host's separate multiply
 * and add (the host build does not contract: no -march, no -ffp-contract=fast). */
#ifndef MMUPT_KERNELS_GRPO_TOKEN_H
#define MMUPT_KERNELS_GRPO_TOKEN_H

#include <math.h>

#include "mmupt/grpo.h"

#ifdef __CUDACC__
#define GRPO_HD __host__ __device__
#else
#define GRPO_HD
#endif
#ifdef __CUDA_ARCH__
#define GRPO_MUL(a, b) __dmul_rn((a), (b))
#else
#define GRPO_MUL(a, b) ((a) * (b))
#endif

struct grpo_token {
    double L, dL, kl, dkl, ratio;
    int clipped, dual;
};

/* The clip bounds on log(ratio), in float as EasyR1 has them (np.log of the python float, cast to
 * the float32 tensor's type by torch.clamp), so a value on a bound is on it here too. */
static inline void grpo_clip_bounds(const struct grpo_params *p, float *lo, float *hi)
{
    *lo = (float)log(1.0 - (double)p->clip_low);
    *hi = (float)log(1.0 + (double)p->clip_high);
}

/* Gradient of torch.clamp: 1 strictly inside the bounds, 0 on or beyond them (what torch does). */
GRPO_HD static inline double grpo_clamp_grad(double x, double lo, double hi)
{
    return (x > lo && x < hi) ? 1.0 : 0.0;
}

GRPO_HD static inline void grpo_token_terms(float logp, float old, float ref, float A, const struct grpo_params *p,
                                            float lo, float hi, struct grpo_token *o)
{
    float x = logp - old;
    double ratio = exp((double)x);
    double xc = x < lo ? lo : (x > hi ? hi : x);
    double clipped = exp(xc);
    double L1 = -(double)A * ratio, L2 = -(double)A * clipped;
    double d1 = GRPO_MUL(-(double)A, ratio), d2 = GRPO_MUL(GRPO_MUL(-(double)A, clipped), grpo_clamp_grad(x, lo, hi));
    double L, dL;
    if (L1 > L2) L = L1, dL = d1;
    else if (L1 < L2) L = L2, dL = d2;
    else L = L1, dL = 0.5 * (d1 + d2); /* torch.maximum splits a tie */
    o->clipped = L1 < L2;
    o->dual = 0;
    if (A < 0.0f) {
        double L3 = -(double)A * p->clip_dual; /* constant: no gradient */
        o->dual = L > L3;
        if (L > L3) L = L3, dL = 0.0;
        else if (L == L3) dL *= 0.5;
    }
    o->L = L;
    o->dL = dL;
    o->ratio = ratio;
    if (p->kl_penalty == GRPO_KL_LOW_VAR) {
        /* k3: d = ref - logp, kl = e^d - d - 1 >= 0, d kl / d logp = 1 - e^d. */
        float d = ref - logp;
        double kl = exp((double)d) - d - 1.0;
        o->dkl = (1.0 - exp((double)d)) * grpo_clamp_grad(kl, -p->kl_clamp, p->kl_clamp);
        o->kl = kl > p->kl_clamp ? p->kl_clamp : (kl < -p->kl_clamp ? -p->kl_clamp : kl);
    } else if (p->kl_penalty == GRPO_KL_K1) {
        o->kl = (double)(logp - ref);
        o->dkl = 1.0;
    } else {
        o->kl = 0.0;
        o->dkl = 0.0;
    }
}

#endif
