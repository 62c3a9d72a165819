/* Log-probabilities of target tokens at temperature tau, and their gradient, CPU reference: the
 * quantity GRPO's ratio, the KL term and the entropy metric are built from.
 *
 * All row statistics are accumulated in double with the maximum subtracted first, so logits of any
 * size (1e4 is seen after a bad update) give finite values. Rows are independent: parallel over
 * rows, thread-count independent. */
#include <math.h>

#include "mmupt/err.h"
#include "mmupt/kernels.h"

/* Maximum of z/tau over the row and log sum exp(z/tau - max). */
static void row_stats(const float *z, int vocab, double inv_tau, double *mx, double *lse_shift)
{
    double m = -INFINITY;
    for (int j = 0; j < vocab; j++)
        if (z[j] * inv_tau > m) m = z[j] * inv_tau;
    double sum = 0.0;
    for (int j = 0; j < vocab; j++) sum += exp(z[j] * inv_tau - m);
    *mx = m;
    *lse_shift = log(sum);
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
        double m, ls;
        row_stats(z, vocab, inv_tau, &m, &ls);
        logp[r] = (float)(z[t] * inv_tau - m - ls);
        if (entropy) {
            /* H = -sum p log p with log p_j = y_j - ls, y_j = z_j/tau - m, p_j = e^y_j / e^ls. */
            double ey = 0.0;
            for (int j = 0; j < vocab; j++) {
                double y = z[j] * inv_tau - m;
                ey += exp(y) * y;
            }
            entropy[r] = (float)(ls - ey / exp(ls));
        }
    }
}

void logprob_backward_cpu(float *dlogits, const float *dlogp, const float *logits, const int64_t *targets, int rows,
                          int vocab, float tau)
{
    MMUPT_CHECK(tau > 0.0f && vocab > 0);
    double inv_tau = 1.0 / tau;
#pragma omp parallel for schedule(static)
    for (int r = 0; r < rows; r++) {
        int64_t t = targets[r];
        if (t < 0) continue;
        MMUPT_CHECK(t < vocab);
        const float *z = logits + (long)r * vocab;
        float *dz = dlogits + (long)r * vocab;
        double m, ls;
        row_stats(z, vocab, inv_tau, &m, &ls);
        double g = dlogp[r] * inv_tau;
        for (int j = 0; j < vocab; j++) {
            double p = exp(z[j] * inv_tau - m - ls);
            dz[j] += (float)(g * ((j == t ? 1.0 : 0.0) - p));
        }
    }
}
