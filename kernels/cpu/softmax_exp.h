/* The softmax arithmetic attention.c (training, prefill) and attention_decode.c (one new query over
 * the KV cache) share, so that a cached decode matches the full forward at its position to
 * rounding: float scores, expf of the max-subtracted score, the normaliser accumulated in double. */
#ifndef MMUPT_KERNELS_CPU_SOFTMAX_EXP_H
#define MMUPT_KERNELS_CPU_SOFTMAX_EXP_H

#include <math.h>

/* p[0, n) holds scores: each becomes exp(p - max) in place; returns 1 / their sum (n >= 1). */
static inline float softmax_exp(float *p, int n)
{
    float mx = -INFINITY;
    for (int j = 0; j < n; j++)
        if (p[j] > mx) mx = p[j];
    double sum = 0.0;
    for (int j = 0; j < n; j++) {
        p[j] = expf(p[j] - mx);
        sum += p[j];
    }
    return (float)(1.0 / sum);
}

#endif
