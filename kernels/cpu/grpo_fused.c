/* The GRPO loss fused with the lm_head, CPU reference: logits are made one [chunk_t, chunk_v] block
 * at a time and never exist as a [T, V] tensor (for a 0.5B model and 4096 tokens that tensor is
 * 2.5 GB, and its gradient another 2.5 GB).
 *
 * Per chunk of scored tokens (their hidden rows gathered, so unscored tokens cost nothing):
 *   1. over vocabulary chunks: logits = h @ W_chunk^T, folded into running per-row statistics
 *      (max, sum of exp, sum of exp * y for the entropy): the online log-sum-exp;
 *   2. logp and entropy per row, then the loss terms through grpo_loss_cpu: a token's gradient
 *      depends only on that token once the token count of the micro-batch is known;
 *   3. over vocabulary chunks again: dz = g/tau * (onehot - softmax) in place of the logits, then
 *      dh += dz @ W_chunk and dW_chunk += dz^T @ h. When the whole vocabulary is one chunk (the
 *      default), the logits of step 1 are still in the buffer and are not recomputed, so the fused
 *      path does the same three GEMMs as the unfused one.
 * Gradients of early chunks are written before later chunks are seen, so every input is checked
 * first (see grpo.h): nothing non-finite can appear half-way. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mmupt/err.h"
#include "mmupt/grpo.h"
#include "mmupt/kernels.h"

/* |logit| <= |h| * |w| (Cauchy-Schwarz, also for every partial sum of the dot product); below this
 * bound no logit can overflow float, with a margin for rounding. */
#define GRPO_LOGIT_BOUND 1e37

/* Working memory of one token chunk; every array is sized for ct rows. */
struct fused_work {
    float *logits;        /* [ct, cv]; becomes dz in place */
    float *h, *dh;        /* [ct, H] gathered hidden rows and their gradient */
    double *mx, *sum, *sy; /* running max of y = z/tau, sum e^(y-mx), sum e^(y-mx) * y */
    double *yt, *lse;     /* target's y; log-sum-exp */
    int64_t *tgt;         /* the rows' targets */
    float *logp, *old, *ref, *adv, *one, *g; /* the chunk's per-token loss inputs and dlogp */
};

/* The largest row norm of a [rows, cols] matrix, over the rows listed (all when idx is NULL);
 * INFINITY if any value is NaN/Inf (its sum of squares then is not finite). */
static double max_row_norm(const float *a, const int64_t *idx, int64_t rows, int cols)
{
    double best = 0.0;
    int bad = 0;
#pragma omp parallel for schedule(static) reduction(max : best) reduction(| : bad)
    for (int64_t i = 0; i < rows; i++) {
        const float *r = a + (idx ? idx[i] : i) * (int64_t)cols;
        double ss = 0.0;
        for (int k = 0; k < cols; k++) ss += (double)r[k] * r[k];
        if (!isfinite(ss)) bad = 1;
        else if (ss > best) best = ss;
    }
    return bad ? INFINITY : sqrt(best);
}

/* Fold the logits block [nt, nv] (vocabulary entries v0 ..) into the running row statistics. */
static void stats_update(struct fused_work *w, const int64_t *tgt, int nt, int nv, int v0, double inv_tau)
{
#pragma omp parallel for schedule(static)
    for (int r = 0; r < nt; r++) {
        const float *z = w->logits + (int64_t)r * nv;
        double cm = -INFINITY;
        for (int j = 0; j < nv; j++)
            if (z[j] * inv_tau > cm) cm = z[j] * inv_tau;
        double m = w->mx[r] > cm ? w->mx[r] : cm;
        double f = exp(w->mx[r] - m); /* rescales the old sums to the new max (0 at the start) */
        double s = w->sum[r] * f, sy = w->sy[r] * f;
        for (int j = 0; j < nv; j++) {
            double y = z[j] * inv_tau, e = exp(y - m);
            s += e;
            sy += e * y;
        }
        w->mx[r] = m, w->sum[r] = s, w->sy[r] = sy;
        int64_t t = tgt[r] - v0;
        if (t >= 0 && t < nv) w->yt[r] = z[t] * inv_tau;
    }
}

/* Logits block -> its gradient in place: dz = g/tau * (onehot(target) - softmax(z/tau)). */
static void logits_to_grad(struct fused_work *w, const int64_t *tgt, int nt, int nv, int v0, double inv_tau)
{
#pragma omp parallel for schedule(static)
    for (int r = 0; r < nt; r++) {
        float *z = w->logits + (int64_t)r * nv;
        double gr = w->g[r] * inv_tau, lse = w->lse[r];
        for (int j = 0; j < nv; j++) z[j] = (float)(-gr * exp(z[j] * inv_tau - lse));
        int64_t t = tgt[r] - v0;
        if (t >= 0 && t < nv) z[t] += (float)gr;
    }
}

static void work_alloc(struct fused_work *w, int ct, int cv, int H)
{
    w->logits = mmupt_xmalloc((size_t)ct * cv * sizeof(float));
    w->h = mmupt_xmalloc((size_t)ct * H * sizeof(float));
    w->dh = mmupt_xmalloc((size_t)ct * H * sizeof(float));
    double **d[] = {&w->mx, &w->sum, &w->sy, &w->yt, &w->lse};
    for (size_t i = 0; i < sizeof d / sizeof d[0]; i++) *d[i] = mmupt_xmalloc((size_t)ct * sizeof(double));
    w->tgt = mmupt_xmalloc((size_t)ct * sizeof(int64_t));
    float **f[] = {&w->logp, &w->old, &w->ref, &w->adv, &w->one, &w->g};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) *f[i] = mmupt_xmalloc((size_t)ct * sizeof(float));
}

static void work_free(struct fused_work *w)
{
    void *all[] = {w->logits, w->h, w->dh, w->mx, w->sum, w->sy, w->yt, w->lse, w->tgt,
                   w->logp, w->old, w->ref, w->adv, w->one, w->g};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) free(all[i]);
}

/* Running sums of the metrics over chunks (grpo_loss_cpu gives means over one chunk). */
static void metrics_add(struct grpo_metrics *acc, const struct grpo_metrics *c, double entropy_sum)
{
    double k = (double)c->n_tokens;
    acc->loss += c->loss * k, acc->pg_loss += c->pg_loss * k, acc->kl += c->kl * k;
    acc->clip_frac += c->clip_frac * k, acc->dual_clip_frac += c->dual_clip_frac * k;
    acc->ratio_mean += c->ratio_mean * k, acc->entropy += entropy_sum;
    if (c->ratio_min < acc->ratio_min) acc->ratio_min = c->ratio_min;
    if (c->ratio_max > acc->ratio_max) acc->ratio_max = c->ratio_max;
    acc->n_tokens += c->n_tokens;
}

/* One chunk of nt scored tokens (indices rows[0..nt)): statistics, loss, gradients. */
static void fused_chunk(struct fused_work *w, const int64_t *rows, int nt, const float *hidden, const float *W,
                        const int64_t *targets, const float *old_logp, const float *ref_logp, const float *adv,
                        int H, int V, int cv, int64_t n_scored, const struct grpo_params *p, float *dhidden,
                        float *dW, struct grpo_metrics *acc)
{
    double inv_tau = 1.0 / p->tau;
    int64_t *tgt = w->tgt;
    for (int r = 0; r < nt; r++) {
        int64_t t = rows[r];
        memcpy(w->h + (int64_t)r * H, hidden + t * H, (size_t)H * sizeof(float));
        tgt[r] = targets[t];
        w->mx[r] = -INFINITY, w->sum[r] = 0.0, w->sy[r] = 0.0;
        w->old[r] = old_logp[t], w->ref[r] = ref_logp ? ref_logp[t] : 0.0f, w->adv[r] = adv[t], w->one[r] = 1.0f;
    }
    for (int v0 = 0; v0 < V; v0 += cv) {
        int nv = V - v0 < cv ? V - v0 : cv;
        matmul_forward_cpu(w->logits, w->h, W + (int64_t)v0 * H, NULL, nt, H, nv);
        stats_update(w, tgt, nt, nv, v0, inv_tau);
    }
    double ent = 0.0;
    for (int r = 0; r < nt; r++) {
        w->lse[r] = w->mx[r] + log(w->sum[r]);
        w->logp[r] = (float)(w->yt[r] - w->lse[r]);
        ent += w->lse[r] - w->sy[r] / w->sum[r]; /* H = lse - E_p[y] */
    }
    /* The chunk's token-mean scaled to the micro-batch's: scale * nt / n_scored. */
    struct grpo_params pc = *p;
    pc.scale = (float)((double)p->scale * nt / (double)n_scored);
    struct grpo_metrics cm;
    MMUPT_CHECK(grpo_loss_cpu(w->logp, w->old, ref_logp ? w->ref : NULL, w->adv, w->one, nt, &pc, w->g, &cm) == 0);
    metrics_add(acc, &cm, ent);
    if (!dhidden && !dW) return;
    memset(w->dh, 0, (size_t)nt * H * sizeof(float));
    for (int v0 = 0; v0 < V; v0 += cv) {
        int nv = V - v0 < cv ? V - v0 : cv;
        if (cv < V) matmul_forward_cpu(w->logits, w->h, W + (int64_t)v0 * H, NULL, nt, H, nv);
        logits_to_grad(w, tgt, nt, nv, v0, inv_tau);
        matmul_backward_cpu(dhidden ? w->dh : NULL, dW ? dW + (int64_t)v0 * H : NULL, NULL, w->logits, w->h,
                            W + (int64_t)v0 * H, nt, H, nv);
    }
    if (dhidden)
        for (int r = 0; r < nt; r++) {
            float *dst = dhidden + rows[r] * H;
            const float *src = w->dh + (int64_t)r * H;
            for (int k = 0; k < H; k++) dst[k] += src[k];
        }
}

/* Scored tokens, checked: their indices into rows (n returned), or -1 on a non-finite input. */
static int64_t scored_rows(const int64_t *targets, const float *old_logp, const float *ref_logp, const float *adv,
                           const float *mask, int T, int V, int64_t *rows)
{
    int64_t n = 0;
    for (int t = 0; t < T; t++) {
        if (!isfinite(mask[t])) return -1;
        if (targets[t] < 0 || mask[t] == 0.0f) continue;
        MMUPT_CHECK(targets[t] < V);
        if (!isfinite(old_logp[t]) || !isfinite(adv[t]) || (ref_logp && !isfinite(ref_logp[t]))) return -1;
        rows[n++] = t;
    }
    return n;
}

int grpo_fused_loss_cpu(const float *hidden, const float *W, const int64_t *targets, const float *old_logp,
                        const float *ref_logp, const float *adv, const float *mask, int T, int H, int V,
                        const struct grpo_params *p, float *dhidden, float *dW, struct grpo_metrics *m)
{
    MMUPT_CHECK(T >= 0 && H > 0 && V > 0 && p->tau > 0.0f && p->chunk_t >= 0 && p->chunk_v >= 0);
    MMUPT_CHECK(ref_logp || p->kl_penalty == GRPO_KL_NONE);
    int64_t *rows = mmupt_xmalloc((size_t)(T > 0 ? T : 1) * sizeof(int64_t));
    int64_t n = scored_rows(targets, old_logp, ref_logp, adv, mask, T, V, rows);
    double hn = n < 0 ? INFINITY : max_row_norm(hidden, rows, n, H), wn = max_row_norm(W, NULL, V, H);
    if (!isfinite(hn) || !isfinite(wn) || hn * wn > GRPO_LOGIT_BOUND) {
        free(rows);
        return -1;
    }
    int cv = p->chunk_v > 0 && p->chunk_v < V ? p->chunk_v : V;
    int ct = p->chunk_t > 0 ? p->chunk_t : GRPO_FUSED_CHUNK_FLOATS / cv;
    if (ct < 1) ct = 1;
    if (ct > 1024 && p->chunk_t == 0) ct = 1024;
    if (ct > n) ct = n > 0 ? (int)n : 1;
    struct grpo_metrics acc;
    memset(&acc, 0, sizeof acc);
    acc.ratio_min = INFINITY, acc.ratio_max = -INFINITY;
    struct fused_work w;
    work_alloc(&w, ct, cv, H);
    for (int64_t c0 = 0; c0 < n; c0 += ct) {
        int nt = n - c0 < ct ? (int)(n - c0) : ct;
        fused_chunk(&w, rows + c0, nt, hidden, W, targets, old_logp, ref_logp, adv, H, V, cv, n, p, dhidden, dW,
                    &acc);
    }
    work_free(&w);
    free(rows);
    if (n > 0) {
        double k = 1.0 / (double)n;
        acc.loss *= k, acc.pg_loss *= k, acc.kl *= k, acc.entropy *= k;
        acc.clip_frac *= k, acc.dual_clip_frac *= k, acc.ratio_mean *= k;
    } else {
        acc.ratio_min = acc.ratio_max = 0.0;
    }
    if (m) *m = acc;
    return 0;
}

int grpo_unfused_loss_cpu(const float *hidden, const float *W, const int64_t *targets, const float *old_logp,
                          const float *ref_logp, const float *adv, const float *mask, int T, int H, int V,
                          const struct grpo_params *p, float *dhidden, float *dW, struct grpo_metrics *m)
{
    MMUPT_CHECK(T >= 0 && H > 0 && V > 0);
    size_t tv = (size_t)T * V;
    float *logits = mmupt_xmalloc((tv ? tv : 1) * sizeof(float));
    float *buf = mmupt_xmalloc((size_t)(T > 0 ? T : 1) * 4 * sizeof(float));
    float *logp = buf, *ent = buf + T, *scored = buf + 2 * T, *dlogp = buf + 3 * T;
    for (int t = 0; t < T; t++) scored[t] = (targets[t] >= 0 && mask[t] != 0.0f) ? 1.0f : 0.0f;
    for (int t = 0; t < T; t++)
        if (!isfinite(mask[t])) scored[t] = mask[t]; /* let grpo_loss_cpu refuse it */
    matmul_forward_cpu(logits, hidden, W, NULL, T, H, V);
    logprob_forward_cpu(logp, ent, logits, targets, T, V, p->tau);
    struct grpo_metrics mm;
    int rc = grpo_loss_cpu(logp, old_logp, ref_logp, adv, scored, T, p, dlogp, &mm);
    if (rc == 0 && (dhidden || dW)) {
        float *dlogits = mmupt_xcalloc(tv ? tv : 1, sizeof(float));
        logprob_backward_cpu(dlogits, dlogp, logits, targets, T, V, p->tau);
        matmul_backward_cpu(dhidden, dW, NULL, dlogits, hidden, W, T, H, V);
        free(dlogits);
    }
    if (rc == 0) {
        mm.entropy = grpo_masked_mean(ent, scored, T);
        if (m) *m = mm;
    }
    free(logits);
    free(buf);
    return rc;
}
