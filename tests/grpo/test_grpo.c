/* GRPO: advantages and every branch of the loss against values worked out by hand, non-finite inputs
 * refused with outputs untouched, and the fused lm_head path against the unfused composition on odd
 * shapes and chunk tails, with scale, accumulation, NULL gradients and the entropy metric. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../test.h"
#include "mmupt/grpo.h"

#define NEAR(a, b, tol) (fabs((double)(a) - (double)(b)) <= (tol) * (1.0 + fabs((double)(b))))

static float urand(uint64_t *s)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((*s >> 40) * (1.0 / 16777216.0)) - 0.5f;
}

static void test_advantages(struct test_state *ts)
{
    /* Group [1,0,0,0]: mean 0.25, unbiased var (0.5625 + 3 * 0.0625) / 3 = 0.25, std 0.5. */
    float r[12] = {1, 0, 0, 0, 1, 1, 1, 1, 0.5f, 0, 1, 0.5f}, a[12];
    grpo_advantages(r, 3, 4, 0.0f, 0, a);
    CHECK(ts, NEAR(a[0], 1.5, 1e-6) && NEAR(a[1], -0.5, 1e-6) && NEAR(a[3], -0.5, 1e-6));
    for (int i = 4; i < 8; i++) CHECK_MSG(ts, a[i] == 0.0f, "all-equal group: a[%d] = %g", i, a[i]);
    /* [0.5,0,1,0.5]: mean 0.5, var 0.5 / 3 -> the biased std (0.3536) would give 1.4142. */
    CHECK_MSG(ts, NEAR(a[10], 0.5 / sqrt(0.5 / 3.0), 1e-6), "unbiased std: %g", a[10]);
    grpo_advantages(r, 3, 4, 0.5f, 0, a);
    CHECK_MSG(ts, NEAR(a[0], 0.75 / (0.5 + 0.5), 1e-6), "eps is added to the std: %g", a[0]);
    grpo_advantages(r, 3, 4, 1e-6f, 1, a);
    CHECK(ts, NEAR(a[0], 0.75, 1e-6) && NEAR(a[1], -0.25, 1e-6) && a[5] == 0.0f && NEAR(a[9], -0.5, 1e-6));
    float one[3] = {1, 0, 7}, ao[3] = {9, 9, 9};
    grpo_advantages(one, 3, 1, 1e-6f, 0, ao);
    CHECK(ts, ao[0] == 0.0f && ao[1] == 0.0f && ao[2] == 0.0f);
    grpo_advantages(one, 3, 1, 1e-6f, 1, ao);
    CHECK(ts, ao[0] == 0.0f && ao[2] == 0.0f);
}

/* One token, no KL: returns L (the metric) and writes dL/dlogp. */
static double one_token(float x, float A, const struct grpo_params *p0, float *dl, struct grpo_metrics *m)
{
    struct grpo_params p = *p0;
    p.kl_penalty = GRPO_KL_NONE;
    float logp = -1.0f, old = logp - x, mask = 1.0f;
    if (grpo_loss_cpu(&logp, &old, NULL, &A, &mask, 1, &p, dl, m)) return NAN;
    return m->pg_loss;
}

static void test_clip_branches(struct test_state *ts)
{
    struct grpo_params p;
    grpo_params_default(&p);
    struct grpo_metrics m;
    float d;
    /* x = logp - old; the range is (log 0.8, log 1.3) = (-0.223, 0.262); the dual clip at 3. */
    double L = one_token(0.1f, 1.0f, &p, &d, &m); /* inside: unclipped */
    CHECK(ts, NEAR(L, -exp(0.1), 1e-5) && NEAR(d, -exp(0.1), 1e-5) && m.clip_frac == 0.0);
    CHECK(ts, NEAR(m.ratio_mean, exp(0.1), 1e-5) && m.n_tokens == 1);
    L = one_token(0.5f, 1.0f, &p, &d, &m); /* A > 0, above: clipped to 1.3, no gradient */
    CHECK(ts, NEAR(L, -1.3, 1e-5) && d == 0.0f && m.clip_frac == 1.0 && m.dual_clip_frac == 0.0);
    L = one_token(-0.5f, 1.0f, &p, &d, &m); /* A > 0, below: the unclipped term is the max */
    CHECK(ts, NEAR(L, -exp(-0.5), 1e-5) && NEAR(d, -exp(-0.5), 1e-5) && m.clip_frac == 0.0);
    L = one_token(-0.5f, -1.0f, &p, &d, &m); /* A < 0, below: clipped to 0.8 */
    CHECK(ts, NEAR(L, 0.8, 1e-5) && d == 0.0f && m.clip_frac == 1.0);
    L = one_token(0.5f, -1.0f, &p, &d, &m); /* A < 0, above, under the dual clip: unclipped */
    CHECK(ts, NEAR(L, exp(0.5), 1e-5) && NEAR(d, exp(0.5), 1e-5) && m.clip_frac == 0.0 && m.dual_clip_frac == 0.0);
    L = one_token(1.5f, -1.0f, &p, &d, &m); /* A < 0, ratio 4.48 > 3: dual clip, constant */
    CHECK(ts, NEAR(L, 3.0, 1e-6) && d == 0.0f && m.dual_clip_frac == 1.0);
    L = one_token(1.5f, 2.0f, &p, &d, &m); /* A > 0: no dual clip whatever the ratio */
    CHECK(ts, NEAR(L, -2.6, 1e-5) && d == 0.0f && m.dual_clip_frac == 0.0);
    L = one_token(0.1f, -2.0f, &p, &d, &m);
    CHECK(ts, NEAR(L, 2.0 * exp(0.1), 1e-5) && NEAR(d, 2.0 * exp(0.1), 1e-5));
    L = one_token(0.3f, 0.0f, &p, &d, &m);
    CHECK(ts, L == 0.0 && d == 0.0f);
    /* Exactly on the upper bound: clamp passes no gradient there and the max is a tie, so torch gives
     * half of the unclipped gradient (checked in PyTorch 2.15). */
    float hi = (float)log(1.3);
    L = one_token(hi, 1.0f, &p, &d, &m);
    CHECK_MSG(ts, NEAR(d, -0.5 * 1.3, 1e-5), "tie on the bound: %g", d);
    /* Exactly on the dual clip: ratio 1 (x = 0) and clip_dual 1 make -A * ratio == -A * dual; the
     * max inside is a tie of equal gradients (1), the min a tie: half of it. */
    struct grpo_params q = p;
    q.clip_dual = 1.0f;
    L = one_token(0.0f, -1.0f, &q, &d, &m);
    CHECK_MSG(ts, NEAR(L, 1.0, 1e-9) && NEAR(d, 0.5, 1e-6), "tie on the dual clip: %g", d);
    /* Asymmetric bounds come from the parameters. */
    q = p;
    q.clip_high = 0.6f;
    L = one_token(0.4f, 1.0f, &q, &d, &m);
    CHECK(ts, NEAR(L, -exp(0.4), 1e-5) && m.clip_frac == 0.0);
}

static void test_kl(struct test_state *ts)
{
    struct grpo_params p;
    grpo_params_default(&p);
    p.kl_coef = 1.0f;
    float logp[3] = {-1.0f, -2.0f, -0.5f}, old[3], adv[3] = {0, 0, 0}, mask[3] = {1, 1, 1}, d[3];
    float ref[3] = {-0.5f, 1.0f, -0.7f}; /* d = ref - logp = 0.5, 3 (k3 = 16: clamped), -0.2 */
    memcpy(old, logp, sizeof old);
    struct grpo_metrics m;
    CHECK(ts, grpo_loss_cpu(logp, old, ref, adv, mask, 3, &p, d, &m) == 0);
    double k0 = exp(0.5) - 1.5, k2 = exp(-0.2) + 0.2 - 1.0;
    CHECK_MSG(ts, NEAR(m.kl, (k0 + 10.0 + k2) / 3.0, 1e-5), "k3 mean %g", m.kl);
    CHECK(ts, NEAR(d[0], (1.0 - exp(0.5)) / 3.0, 1e-5) && d[1] == 0.0f && NEAR(d[2], (1.0 - exp(-0.2)) / 3.0, 1e-5));
    CHECK(ts, NEAR(m.loss, m.pg_loss + m.kl, 1e-12) && m.pg_loss == 0.0);
    p.kl_clamp = 20.0f; /* a wider clamp lets the 16 through, with its gradient */
    CHECK(ts, grpo_loss_cpu(logp, old, ref, adv, mask, 3, &p, d, &m) == 0);
    CHECK(ts, NEAR(d[1], (1.0 - exp(3.0)) / 3.0, 1e-5));
    p.kl_penalty = GRPO_KL_K1;
    p.kl_coef = 0.5f;
    CHECK(ts, grpo_loss_cpu(logp, old, ref, adv, mask, 3, &p, d, &m) == 0);
    CHECK(ts, NEAR(m.kl, (-0.5 - 3.0 + 0.2) / 3.0, 1e-5) && NEAR(m.loss, 0.5 * m.kl, 1e-6));
    CHECK(ts, NEAR(d[0], 0.5 / 3.0, 1e-6) && NEAR(d[1], 0.5 / 3.0, 1e-6));
    p.kl_penalty = GRPO_KL_NONE;
    CHECK(ts, grpo_loss_cpu(logp, old, NULL, adv, mask, 3, &p, d, &m) == 0 && m.kl == 0.0 && d[0] == 0.0f);
}

static void test_mask_scale_seq_mean(struct test_state *ts)
{
    struct grpo_params p;
    grpo_params_default(&p);
    p.kl_penalty = GRPO_KL_NONE;
    float logp[4] = {-1, -1, -1, -1}, old[4] = {-1, -1, -1, -1}, adv[4] = {1, 2, 3, 4}, mask[4] = {1, 0, 1, 1};
    float d[4] = {9, 9, 9, 9};
    struct grpo_metrics m;
    p.scale = 0.25f;
    CHECK(ts, grpo_loss_cpu(logp, old, NULL, adv, mask, 4, &p, d, &m) == 0);
    /* ratio 1: L = -A, token-mean over the 3 scored tokens; d = scale * -A / 3, 0 where unscored. */
    CHECK(ts, NEAR(m.loss, -(1 + 3 + 4) / 3.0, 1e-6) && m.n_tokens == 3 && d[1] == 0.0f);
    CHECK(ts, NEAR(d[0], -0.25 / 3.0, 1e-6) && NEAR(d[3], -0.25 * 4 / 3.0, 1e-6));
    /* seq-mean-token-mean over [0,1) [1,2) [2,4): the second is empty and does not count. */
    int64_t seq[4] = {0, 1, 2, 4};
    p.scale = 1.0f;
    CHECK(ts, grpo_loss_seq_mean_cpu(logp, old, NULL, adv, mask, seq, 3, &p, d, &m) == 0);
    CHECK_MSG(ts, NEAR(m.loss, (-1.0 + -3.5) / 2.0, 1e-6), "seq-mean loss %g", m.loss);
    CHECK(ts, NEAR(d[0], -0.5, 1e-6) && NEAR(d[2], -3.0 / 4.0, 1e-6) && NEAR(d[3], -1.0, 1e-6));
    /* The packed form (the trainer's, algorithm.loss_agg): sequence lengths 1, 1, 2 - the same calls. */
    int len[3] = {1, 1, 2};
    float d2[4];
    struct grpo_metrics m2;
    CHECK(ts, grpo_loss_packed_cpu(1, logp, old, NULL, adv, mask, len, 3, &p, d2, &m2) == 0);
    CHECK(ts, m2.loss == m.loss && memcmp(d2, d, sizeof d) == 0);
    CHECK(ts, grpo_loss_cpu(logp, old, NULL, adv, mask, 4, &p, d, &m) == 0);
    CHECK(ts, grpo_loss_packed_cpu(0, logp, old, NULL, adv, mask, len, 3, &p, d2, &m2) == 0);
    CHECK(ts, m2.loss == m.loss && memcmp(d2, d, sizeof d) == 0 && NEAR(m.loss, -(1 + 3 + 4) / 3.0, 1e-6));
    /* Nothing scored: loss 0, gradient 0. */
    float none[4] = {0, 0, 0, 0};
    CHECK(ts, grpo_loss_cpu(logp, old, NULL, adv, none, 4, &p, d, &m) == 0 && m.loss == 0.0 && m.n_tokens == 0);
    CHECK(ts, d[0] == 0.0f && d[3] == 0.0f);
}

static void test_nonfinite(struct test_state *ts)
{
    struct grpo_params p;
    grpo_params_default(&p);
    const float bad[2] = {NAN, INFINITY};
    for (int which = 0; which < 5; which++)
        for (int b = 0; b < 2; b++) {
            float logp[3] = {-1, -2, -3}, old[3] = {-1, -2, -3}, ref[3] = {-1, -2, -3}, adv[3] = {1, -1, 1};
            float mask[3] = {1, 1, 0}, d[3] = {7, 7, 7};
            float *arr[5] = {logp, old, ref, adv, mask};
            arr[which][1] = bad[b];
            struct grpo_metrics m;
            m.loss = 42.0;
            CHECK_MSG(ts, grpo_loss_cpu(logp, old, ref, adv, mask, 3, &p, d, &m) == -1, "input %d", which);
            CHECK(ts, d[0] == 7.0f && d[1] == 7.0f && d[2] == 7.0f && m.loss == 42.0);
            /* The same value on the unscored token is ignored (except in the mask itself). */
            arr[which][1] = -2.0f;
            if (which == 4) continue;
            arr[which][2] = bad[b];
            CHECK_MSG(ts, grpo_loss_cpu(logp, old, ref, adv, mask, 3, &p, d, &m) == 0, "unscored input %d", which);
        }
}

/* A random micro-batch for the lm_head paths. */
struct batch {
    int T, H, V;
    float *hidden, *W, *old, *ref, *adv, *mask;
    int64_t *targets;
};

static void batch_make(struct batch *b, int T, int H, int V, uint64_t seed)
{
    b->T = T, b->H = H, b->V = V;
    b->hidden = malloc((size_t)T * H * sizeof(float));
    b->W = malloc((size_t)V * H * sizeof(float));
    b->old = malloc((size_t)T * 4 * sizeof(float));
    b->ref = b->old + T, b->adv = b->old + 2 * T, b->mask = b->old + 3 * T;
    b->targets = malloc((size_t)T * sizeof(int64_t));
    for (int i = 0; i < T * H; i++) b->hidden[i] = 4.0f * urand(&seed);
    for (int i = 0; i < V * H; i++) b->W[i] = 2.0f * urand(&seed);
    for (int t = 0; t < T; t++) {
        b->targets[t] = (int64_t)((urand(&seed) + 0.5f) * V) % V;
        b->mask[t] = 1.0f;
        if (T > 1 && t % 5 == 2) b->targets[t] = -1;
        if (T > 1 && t % 7 == 3) b->mask[t] = 0.0f;
        /* old/ref near the truth is not needed: any values exercise every branch. */
        b->old[t] = -3.0f + 2.0f * urand(&seed);
        b->ref[t] = -3.0f + 2.0f * urand(&seed);
        b->adv[t] = 2.0f * urand(&seed);
    }
}

static void batch_free(struct batch *b)
{
    free(b->hidden);
    free(b->W);
    free(b->old);
    free(b->targets);
}

static int metrics_near(const struct grpo_metrics *a, const struct grpo_metrics *b)
{
    return NEAR(a->loss, b->loss, 1e-5) && NEAR(a->pg_loss, b->pg_loss, 1e-5) && NEAR(a->kl, b->kl, 1e-5) &&
           NEAR(a->entropy, b->entropy, 1e-5) && NEAR(a->clip_frac, b->clip_frac, 1e-9) &&
           NEAR(a->dual_clip_frac, b->dual_clip_frac, 1e-9) && NEAR(a->ratio_mean, b->ratio_mean, 1e-5) &&
           NEAR(a->ratio_min, b->ratio_min, 1e-5) && NEAR(a->ratio_max, b->ratio_max, 1e-5) &&
           a->n_tokens == b->n_tokens;
}

static void test_fused_vs_unfused(struct test_state *ts)
{
    /* T, H, V, chunk_t, chunk_v: tails in both directions, T = 1, a chunk bigger than everything. */
    int cases[][5] = {{1, 5, 7, 0, 0}, {1, 5, 7, 1, 3}, {19, 8, 97, 4, 10}, {13, 16, 64, 5, 64},
                      {23, 12, 50, 0, 0}, {9, 6, 31, 100, 1000}, {17, 9, 41, 3, 40}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        int T = cases[c][0], H = cases[c][1], V = cases[c][2];
        struct batch b;
        batch_make(&b, T, H, V, 100 + c);
        struct grpo_params p;
        grpo_params_default(&p);
        p.kl_coef = 0.3f, p.scale = 0.5f, p.chunk_t = cases[c][3], p.chunk_v = cases[c][4];
        size_t nh = (size_t)T * H, nw = (size_t)V * H;
        float *dh0 = calloc(nh, sizeof(float)), *dw0 = calloc(nw, sizeof(float));
        float *dh1 = calloc(nh, sizeof(float)), *dw1 = calloc(nw, sizeof(float));
        struct grpo_metrics m0, m1;
        CHECK(ts, grpo_unfused_loss_cpu(b.hidden, b.W, b.targets, b.old, b.ref, b.adv, b.mask, T, H, V, &p, dh0, dw0,
                                        &m0) == 0);
        CHECK(ts, grpo_fused_loss_cpu(b.hidden, b.W, b.targets, b.old, b.ref, b.adv, b.mask, T, H, V, &p, dh1, dw1,
                                      &m1) == 0);
        double eh = test_rel_err(dh1, dh0, nh), ew = test_rel_err(dw1, dw0, nw);
        CHECK_MSG(ts, eh <= 1e-5 && ew <= 1e-5, "case %zu: dhidden %.3g dW %.3g", c, eh, ew);
        CHECK_MSG(ts, metrics_near(&m1, &m0), "case %zu: loss %.9g vs %.9g, entropy %.9g vs %.9g", c, m1.loss,
                  m0.loss, m1.entropy, m0.entropy);
        double mag = 0.0;
        for (size_t i = 0; i < nw; i++) mag += fabs(dw0[i]);
        CHECK_MSG(ts, m0.n_tokens > 0 && mag > 0.0, "case %zu: no scored token or zero gradient", c);
        /* Accumulation: a second call adds the same again. */
        CHECK(ts, grpo_fused_loss_cpu(b.hidden, b.W, b.targets, b.old, b.ref, b.adv, b.mask, T, H, V, &p, dh1, dw1,
                                      &m1) == 0);
        for (size_t i = 0; i < nh; i++) dh0[i] *= 2.0f;
        for (size_t i = 0; i < nw; i++) dw0[i] *= 2.0f;
        CHECK_MSG(ts, test_rel_err(dh1, dh0, nh) <= 1e-5 && test_rel_err(dw1, dw0, nw) <= 1e-5, "case %zu: accumulation", c);
        free(dh0), free(dw0), free(dh1), free(dw1);
        batch_free(&b);
    }
}

static void test_fused_scale_null(struct test_state *ts)
{
    int T = 11, H = 7, V = 29;
    struct batch b;
    batch_make(&b, T, H, V, 7);
    struct grpo_params p;
    grpo_params_default(&p);
    p.chunk_t = 3, p.chunk_v = 8;
    size_t nh = (size_t)T * H, nw = (size_t)V * H;
    float *dh = calloc(nh, sizeof(float)), *dw = calloc(nw, sizeof(float));
    float *dh2 = calloc(nh, sizeof(float)), *dw2 = calloc(nw, sizeof(float));
    struct grpo_metrics m, m2;
    CHECK(ts, grpo_fused_loss_cpu(b.hidden, b.W, b.targets, b.old, b.ref, b.adv, b.mask, T, H, V, &p, dh, dw, &m) == 0);
    p.scale = 0.125f;
    CHECK(ts, grpo_fused_loss_cpu(b.hidden, b.W, b.targets, b.old, b.ref, b.adv, b.mask, T, H, V, &p, dh2, NULL,
                                  &m2) == 0);
    CHECK(ts, grpo_fused_loss_cpu(b.hidden, b.W, b.targets, b.old, b.ref, b.adv, b.mask, T, H, V, &p, NULL, dw2,
                                  &m2) == 0);
    for (size_t i = 0; i < nh; i++) dh[i] *= 0.125f;
    for (size_t i = 0; i < nw; i++) dw[i] *= 0.125f;
    CHECK_MSG(ts, test_rel_err(dh2, dh, nh) <= 1e-6 && test_rel_err(dw2, dw, nw) <= 1e-6, "scale / NULL gradients");
    CHECK(ts, m2.loss == m.loss && m2.entropy == m.entropy); /* metrics are not scaled */
    CHECK(ts, grpo_fused_loss_cpu(b.hidden, b.W, b.targets, b.old, b.ref, b.adv, b.mask, T, H, V, &p, NULL, NULL,
                                  &m2) == 0 && m2.loss == m.loss);

    /* Entropy metric against a direct double computation over the scored tokens. */
    double ent = 0.0;
    int n = 0;
    for (int t = 0; t < T; t++) {
        if (b.targets[t] < 0 || b.mask[t] == 0.0f) continue;
        double z[64], mx = -INFINITY, s = 0.0, h = 0.0;
        for (int v = 0; v < V; v++) {
            z[v] = 0.0;
            for (int k = 0; k < H; k++) z[v] += (double)b.hidden[t * H + k] * b.W[v * H + k];
            z[v] /= (double)p.tau;
            if (z[v] > mx) mx = z[v];
        }
        for (int v = 0; v < V; v++) s += exp(z[v] - mx);
        for (int v = 0; v < V; v++) {
            double lp = z[v] - mx - log(s);
            h -= exp(lp) * lp;
        }
        ent += h, n++;
    }
    CHECK_MSG(ts, n == m.n_tokens && NEAR(m.entropy, ent / n, 1e-5), "entropy %.9g vs %.9g", m.entropy, ent / n);
    free(dh), free(dw), free(dh2), free(dw2);
    batch_free(&b);
}

static void test_fused_nonfinite(struct test_state *ts)
{
    int T = 6, H = 4, V = 9;
    struct grpo_params p;
    grpo_params_default(&p);
    p.chunk_t = 2;
    for (int which = 0; which < 8; which++) {
        struct batch b;
        batch_make(&b, T, H, V, 3);
        b.targets[4] = 2, b.mask[4] = 1.0f; /* token 4 is scored */
        switch (which) {
        case 0: b.hidden[4 * H + 1] = NAN; break;
        case 1: b.W[5 * H] = INFINITY; break;
        case 2: b.old[4] = NAN; break;
        case 3: b.ref[4] = -INFINITY; break;
        case 4: b.adv[4] = NAN; break;
        case 5: b.mask[0] = NAN; break;
        case 6: b.hidden[4 * H] = 3e19f, b.W[0] = 3e19f; break; /* finite, but logits could overflow */
        default: b.hidden[2 * H] = NAN; break;                   /* token 2 has no target: ignored */
        }
        float *dh = malloc((size_t)T * H * sizeof(float)), *dw = malloc((size_t)V * H * sizeof(float));
        for (int i = 0; i < T * H; i++) dh[i] = 5.0f;
        for (int i = 0; i < V * H; i++) dw[i] = 5.0f;
        struct grpo_metrics m;
        m.loss = 42.0;
        int rc = grpo_fused_loss_cpu(b.hidden, b.W, b.targets, b.old, b.ref, b.adv, b.mask, T, H, V, &p, dh, dw, &m);
        int rcu = grpo_unfused_loss_cpu(b.hidden, b.W, b.targets, b.old, b.ref, b.adv, b.mask, T, H, V, &p, NULL,
                                        NULL, NULL);
        if (which == 7) {
            CHECK_MSG(ts, rc == 0 && rcu == 0, "NaN hidden of an unscored token must be ignored");
        } else {
            CHECK_MSG(ts, rc == -1, "case %d: rc %d", which, rc);
            if (which != 6) CHECK_MSG(ts, rcu == -1, "unfused case %d: rc %d", which, rcu);
            int untouched = m.loss == 42.0;
            for (int i = 0; i < T * H; i++) untouched &= dh[i] == 5.0f;
            for (int i = 0; i < V * H; i++) untouched &= dw[i] == 5.0f;
            CHECK_MSG(ts, untouched, "case %d: outputs written", which);
        }
        free(dh), free(dw);
        batch_free(&b);
    }
}

int main(void)
{
    struct test_state ts = {0};
    RUN(&ts, test_advantages);
    RUN(&ts, test_clip_branches);
    RUN(&ts, test_kl);
    RUN(&ts, test_mask_scale_seq_mean);
    RUN(&ts, test_nonfinite);
    RUN(&ts, test_fused_vs_unfused);
    RUN(&ts, test_fused_scale_null);
    RUN(&ts, test_fused_nonfinite);
    return test_summary(&ts);
}
