/* GRPO advantages and the per-token clipped policy loss with KL, CPU reference (EasyR1 semantics,
 * include/mmupt/grpo.h). Token counts of a micro-batch are small next to the lm_head GEMMs, so the
 * loss runs serially: sums in one fixed order, the same result whatever the thread count. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mmupt/err.h"
#include "mmupt/grpo.h"
#include "../grpo_token.h"

void grpo_params_default(struct grpo_params *p)
{
    memset(p, 0, sizeof *p);
    p->clip_low = 0.2f;
    p->clip_high = 0.3f;
    p->clip_dual = 3.0f;
    p->kl_penalty = GRPO_KL_LOW_VAR;
    p->kl_coef = 0.01f;
    p->kl_clamp = 10.0f;
    p->tau = 0.7f;
    p->scale = 1.0f;
}

void grpo_advantages(const float *rewards, int n_groups, int G, float eps, int dr_grpo, float *adv)
{
    MMUPT_CHECK(n_groups >= 0 && G >= 1);
    for (int g = 0; g < n_groups; g++) {
        const float *r = rewards + (long)g * G;
        float *a = adv + (long)g * G;
        double mean = 0.0, ss = 0.0;
        for (int i = 0; i < G; i++) mean += r[i];
        mean /= G;
        for (int i = 0; i < G; i++) ss += (r[i] - mean) * (r[i] - mean);
        /* torch.std of one element is NaN; a lone sample has no group to be better than: 0. */
        double std = G > 1 ? sqrt(ss / (G - 1)) : 0.0;
        /* All-equal rewards: every d is 0 and so is the advantage, even with eps = 0 (not 0/0). */
        double den = std + eps;
        for (int i = 0; i < G; i++) {
            double d = G > 1 ? r[i] - mean : 0.0;
            a[i] = (float)(dr_grpo || d == 0.0 ? d : d / den);
        }
    }
}

static int finite_token(const float *logp, const float *old, const float *ref, const float *adv, int64_t t)
{
    return isfinite(logp[t]) && isfinite(old[t]) && (!ref || isfinite(ref[t])) && isfinite(adv[t]);
}

/* Both aggregations: each of n_seq sequences gets a token-mean, sequences are averaged (token-mean
 * over a micro-batch is the case of one sequence). Validates everything before writing anything. */
static int loss_agg(const float *logp, const float *old, const float *ref, const float *adv, const float *mask,
                    const int64_t *seq_start, int n_seq, const struct grpo_params *p, float *dlogp,
                    struct grpo_metrics *m)
{
    MMUPT_CHECK(n_seq >= 0 && seq_start[0] == 0);
    MMUPT_CHECK(p->kl_penalty >= GRPO_KL_LOW_VAR && p->kl_penalty <= GRPO_KL_NONE);
    MMUPT_CHECK(ref || p->kl_penalty == GRPO_KL_NONE);
    int64_t n_tok = 0;
    int n_nonempty = 0;
    for (int s = 0; s < n_seq; s++) {
        MMUPT_CHECK(seq_start[s + 1] >= seq_start[s]);
        int64_t c = 0;
        for (int64_t t = seq_start[s]; t < seq_start[s + 1]; t++) {
            if (!isfinite(mask[t])) return -1;
            if (mask[t] == 0.0f) continue;
            if (!finite_token(logp, old, ref, adv, t)) return -1;
            c++;
        }
        n_tok += c;
        n_nonempty += c > 0;
    }
    struct grpo_metrics r;
    memset(&r, 0, sizeof r);
    r.ratio_min = n_tok ? INFINITY : 0.0;
    r.ratio_max = n_tok ? -INFINITY : 0.0;
    r.n_tokens = n_tok;
    float lo, hi;
    grpo_clip_bounds(p, &lo, &hi);
    for (int s = 0; s < n_seq; s++) {
        int64_t c = 0;
        for (int64_t t = seq_start[s]; t < seq_start[s + 1]; t++) c += mask[t] != 0.0f;
        double w = c ? 1.0 / ((double)c * n_nonempty) : 0.0; /* this sequence's weight per token */
        for (int64_t t = seq_start[s]; t < seq_start[s + 1]; t++) {
            if (mask[t] == 0.0f) {
                dlogp[t] = 0.0f;
                continue;
            }
            struct grpo_token o;
            grpo_token_terms(logp[t], old[t], ref ? ref[t] : 0.0f, adv[t], p, lo, hi, &o);
            dlogp[t] = (float)(p->scale * w * (o.dL + p->kl_coef * o.dkl));
            r.pg_loss += w * o.L;
            r.kl += w * o.kl;
            r.clip_frac += w * o.clipped;
            r.dual_clip_frac += w * o.dual;
            r.ratio_mean += w * o.ratio;
            if (o.ratio < r.ratio_min) r.ratio_min = o.ratio;
            if (o.ratio > r.ratio_max) r.ratio_max = o.ratio;
        }
    }
    r.loss = r.pg_loss + p->kl_coef * r.kl;
    if (m) *m = r;
    return 0;
}

int grpo_loss_cpu(const float *logp, const float *old_logp, const float *ref_logp, const float *adv,
                  const float *mask, int64_t n, const struct grpo_params *p, float *dlogp, struct grpo_metrics *m)
{
    MMUPT_CHECK(n >= 0);
    int64_t seq[2] = {0, n};
    return loss_agg(logp, old_logp, ref_logp, adv, mask, seq, 1, p, dlogp, m);
}

int grpo_loss_seq_mean_cpu(const float *logp, const float *old_logp, const float *ref_logp, const float *adv,
                           const float *mask, const int64_t *seq_start, int n_seq, const struct grpo_params *p,
                           float *dlogp, struct grpo_metrics *m)
{
    return loss_agg(logp, old_logp, ref_logp, adv, mask, seq_start, n_seq, p, dlogp, m);
}

int grpo_loss_packed_cpu(int seq_mean, const float *logp, const float *old_logp, const float *ref_logp,
                         const float *adv, const float *mask, const int *seq_len, int n_seq,
                         const struct grpo_params *p, float *dlogp, struct grpo_metrics *m)
{
    MMUPT_CHECK(n_seq >= 0);
    int64_t *start = mmupt_xmalloc((size_t)(n_seq + 1) * sizeof *start);
    start[0] = 0;
    for (int k = 0; k < n_seq; k++) {
        MMUPT_CHECK(seq_len[k] >= 0);
        start[k + 1] = start[k] + seq_len[k];
    }
    int rc = seq_mean ? grpo_loss_seq_mean_cpu(logp, old_logp, ref_logp, adv, mask, start, n_seq, p, dlogp, m)
                      : grpo_loss_cpu(logp, old_logp, ref_logp, adv, mask, start[n_seq], p, dlogp, m);
    free(start);
    return rc;
}

double grpo_masked_mean(const float *x, const float *mask, int64_t n)
{
    double s = 0.0;
    int64_t c = 0;
    for (int64_t t = 0; t < n; t++)
        if (mask[t] != 0.0f) s += x[t], c++;
    return c ? s / c : 0.0;
}
