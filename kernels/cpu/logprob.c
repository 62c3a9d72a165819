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

/* Row statistics of y_j = z_j/tau - max: the largest logit zmax (max z/tau is zmax/tau: scaling by
 * 1/tau > 0 and rounding keep the order), sum e^y (so log p_j = y_j - log sum) and, when ey is
 * non-NULL, E_p[y] (for the entropy), in one pass after the max. */
static void row_stats(const float *z, int vocab, double inv_tau, float *zmax, double *sum_out, double *ey)
{
    float zm = -INFINITY;
    for (int j = 0; j < vocab; j++)
        if (z[j] > zm) zm = z[j];
    double m = zm * inv_tau, sum = 0.0, sey = 0.0;
    for (int j = 0; j < vocab; j++) {
        double y = z[j] * inv_tau - m, e = exp(y);
        sum += e;
        sey += e * y;
    }
    *zmax = zm;
    *sum_out = sum;
    if (ey) *ey = sey / sum; /* E_p[y] */
}

void logprob_forward_stats_cpu(float *logp, float *entropy, float *row_max, double *row_sum, const float *logits,
                               const int64_t *targets, int rows, int vocab, float tau)
{
    MMUPT_CHECK(tau > 0.0f && vocab > 0);
    double inv_tau = 1.0 / tau;
#pragma omp parallel for schedule(static)
    for (int r = 0; r < rows; r++) {
        int64_t t = targets[r];
        if (t < 0) {
            logp[r] = 0.0f;
            if (entropy) entropy[r] = 0.0f;
            if (row_max) row_max[r] = 0.0f, row_sum[r] = 0.0; /* not computed: a backward computes its own */
            continue;
        }
        MMUPT_CHECK(t < vocab);
        const float *z = logits + (long)r * vocab;
        float zm;
        double sum, ey;
        row_stats(z, vocab, inv_tau, &zm, &sum, &ey);
        double ls = log(sum);
        logp[r] = (float)(z[t] * inv_tau - zm * inv_tau - ls);
        /* H = -E_p[log p] = -E_p[y - ls] = ls - E_p[y]. */
        if (entropy) entropy[r] = (float)(ls - ey);
        if (row_max) row_max[r] = zm, row_sum[r] = sum;
    }
}

void logprob_forward_cpu(float *logp, float *entropy, const float *logits, const int64_t *targets, int rows, int vocab,
                         float tau)
{
    logprob_forward_stats_cpu(logp, entropy, NULL, NULL, logits, targets, rows, vocab, tau);
}

/* Row r's gradient added into dz: dz[j] += dlogp / tau * (onehot_t(j) - p_j). t >= 0. zm, sum: the
 * forward's row statistics (logprob_forward_stats), or sum 0 to compute them here. */
static void backward_row(float *dz, const float *z, float dlogp, int64_t t, int vocab, double inv_tau, float zm,
                         double sum)
{
    MMUPT_CHECK(t < vocab);
    if (sum == 0.0) row_stats(z, vocab, inv_tau, &zm, &sum, NULL);
    double m = zm * inv_tau, ls = log(sum);
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
            backward_row(dlogits + (long)r * vocab, logits + (long)r * vocab, dlogp[r], targets[r], vocab, inv_tau, 0.0f,
                         0.0);
}

/* By definition the fp32 op on a zeroed buffer, then rounded: one fp32 row at a time, so the math
 * is backward_row's own. */
void logprob_backward_bf16_stats_cpu(uint16_t *dlogits, const float *dlogp, const float *logits,
                                     const int64_t *targets, const float *row_max, const double *row_sum, int rows,
                                     int vocab, float tau)
{
    MMUPT_CHECK(tau > 0.0f && vocab > 0);
    double inv_tau = 1.0 / tau;
#pragma omp parallel
    {
        float *dz = mmupt_xmalloc((size_t)vocab * sizeof *dz);
#pragma omp for schedule(static)
        for (int r = 0; r < rows; r++) {
            memset(dz, 0, (size_t)vocab * sizeof *dz);
            if (targets[r] >= 0)
                backward_row(dz, logits + (long)r * vocab, dlogp[r], targets[r], vocab, inv_tau,
                             row_max ? row_max[r] : 0.0f, row_max ? row_sum[r] : 0.0);
            for (int j = 0; j < vocab; j++) dlogits[(long)r * vocab + j] = bf16_from_f32(dz[j]);
        }
        free(dz);
    }
}

void logprob_backward_bf16_cpu(uint16_t *dlogits, const float *dlogp, const float *logits, const int64_t *targets,
                               int rows, int vocab, float tau)
{
    logprob_backward_bf16_stats_cpu(dlogits, dlogp, logits, targets, NULL, NULL, rows, vocab, tau);
}
