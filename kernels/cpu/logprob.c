/* Log-probabilities of target tokens at temperature tau, and their gradient, CPU reference: the
 * quantity GRPO's ratio, the KL term and the entropy metric are built from.
 *
 * All row statistics are accumulated in double with the maximum subtracted first, so logits of any
 * size (1e4 is seen after a bad update) give finite values. Rows are independent: parallel over
 * rows, thread-count independent. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mmupt/bf16.h"
#include "mmupt/err.h"
#include "mmupt/kernels.h"

/* Row statistics of y_j = z_j/tau - max: the max, log sum e^y (so log p_j = y_j - lse_shift) and,
 * when ey is non-NULL, sum e^y * y (for the entropy), all in one pass after the max. */
static void row_stats(const float *z, int vocab, double inv_tau, double *mx, double *lse_shift, double *ey)
{
    double m = -INFINITY;
    for (int j = 0; j < vocab; j++)
        if (z[j] * inv_tau > m) m = z[j] * inv_tau;
    double sum = 0.0, sey = 0.0;
    for (int j = 0; j < vocab; j++) {
        double y = z[j] * inv_tau - m, e = exp(y);
        sum += e;
        sey += e * y;
    }
    *mx = m;
    *lse_shift = log(sum);
    if (ey) *ey = sey / sum; /* E_p[y] */
}

void logprob_forward_cpu(float *logp, float *entropy, const float *logits, const int64_t *targets, int rows, int vocab,
                         float tau)
{
    MMUPT_CHECK(tau > 0.0f && vocab > 0);
    double inv_tau = 1.0 / tau;
#pragma omp parallel for schedule(static)
    for (int r = 0; r < rows; r++) {
        int64_t t = targets[r];
        if (t < 0) {
            logp[r] = 0.0f;
            if (entropy) entropy[r] = 0.0f;
            continue;
        }
        MMUPT_CHECK(t < vocab);
        const float *z = logits + (long)r * vocab;
        double m, ls, ey;
        row_stats(z, vocab, inv_tau, &m, &ls, &ey);
        logp[r] = (float)(z[t] * inv_tau - m - ls);
        /* H = -E_p[log p] = -E_p[y - ls] = ls - E_p[y]. */
        if (entropy) entropy[r] = (float)(ls - ey);
    }
}

/* Row r's gradient added into dz: dz[j] += dlogp / tau * (onehot_t(j) - p_j). t >= 0. */
static void backward_row(float *dz, const float *z, float dlogp, int64_t t, int vocab, double inv_tau)
{
    MMUPT_CHECK(t < vocab);
    double m, ls;
    row_stats(z, vocab, inv_tau, &m, &ls, NULL);
    double g = dlogp * inv_tau;
    for (int j = 0; j < vocab; j++) {
        double p = exp(z[j] * inv_tau - m - ls);
        dz[j] += (float)(g * ((j == t ? 1.0 : 0.0) - p));
    }
}

void logprob_backward_cpu(float *dlogits, const float *dlogp, const float *logits, const int64_t *targets, int rows,
                          int vocab, float tau)
{
    MMUPT_CHECK(tau > 0.0f && vocab > 0);
    double inv_tau = 1.0 / tau;
#pragma omp parallel for schedule(static)
    for (int r = 0; r < rows; r++)
        if (targets[r] >= 0)
            backward_row(dlogits + (long)r * vocab, logits + (long)r * vocab, dlogp[r], targets[r], vocab, inv_tau);
}

/* By definition the fp32 op on a zeroed buffer, then rounded: one fp32 row at a time, so the math
 * is backward_row's own. */
void logprob_backward_bf16_cpu(uint16_t *dlogits, const float *dlogp, const float *logits, const int64_t *targets,
                               int rows, int vocab, float tau)
{
    MMUPT_CHECK(tau > 0.0f && vocab > 0);
    double inv_tau = 1.0 / tau;
#pragma omp parallel
    {
        float *dz = mmupt_xmalloc((size_t)vocab * sizeof *dz);
#pragma omp for schedule(static)
        for (int r = 0; r < rows; r++) {
            memset(dz, 0, (size_t)vocab * sizeof *dz);
            if (targets[r] >= 0) backward_row(dz, logits + (long)r * vocab, dlogp[r], targets[r], vocab, inv_tau);
            for (int j = 0; j < vocab; j++) dlogits[(long)r * vocab + j] = bf16_from_f32(dz[j]);
        }
        free(dz);
    }
}
