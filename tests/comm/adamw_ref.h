/* A plain double-precision AdamW (torch.optim.AdamW semantics, amsgrad off) on a whole buffer: the
 * reference the ZeRO-1 optimizer is tested against. Moments and parameters stay double here, so
 * comparisons need a tolerance (the optimizer stores fp32). */
#ifndef MMUPT_TEST_ADAMW_REF_H
#define MMUPT_TEST_ADAMW_REF_H

#include <math.h>
#include <stddef.h>

struct adamw_ref {
    size_t n;
    double *p, *m, *v;
    long t;
};

/* g: the averaged gradient. Returns the pre-clip norm; a non-finite norm skips the step. */
static inline double adamw_ref_step(struct adamw_ref *r, double lr, double b1, double b2, double eps, double wd,
                                    double clip, const double *g)
{
    double ss = 0;
    for (size_t i = 0; i < r->n; i++) ss += g[i] * g[i];
    double norm = sqrt(ss);
    if (!isfinite(norm)) return norm;
    double scale = (clip > 0 && norm > clip) ? clip / norm : 1.0;
    r->t++;
    for (size_t i = 0; i < r->n; i++) {
        double gi = g[i] * scale;
        r->m[i] = b1 * r->m[i] + (1 - b1) * gi;
        r->v[i] = b2 * r->v[i] + (1 - b2) * gi * gi;
        double mh = r->m[i] / (1 - pow(b1, (double)r->t)), vh = r->v[i] / (1 - pow(b2, (double)r->t));
        r->p[i] *= 1 - lr * wd;
        r->p[i] -= lr * mh / (sqrt(vh) + eps);
    }
    return norm;
}

#endif
