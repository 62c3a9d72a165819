/* Token log-probabilities and entropy at temperature tau: values against a double reference,
 * skipped rows (target < 0), huge logits, the gradient by finite differences, accumulation, and
 * the bf16 gradient against its definition, from the forward's row statistics too. */
#include <omp.h>

#include "kcheck.h"
#include "mmupt/bf16.h"
#include "mmupt/kernels.h"

struct lp {
    int rows, vocab;
    double tau;
    const int64_t *targets;
    double *z, *w, *logp, *ent; /* logits (double copy), loss weights, reference outputs */
};

/* The definition, in long double for headroom: log_softmax(z / tau)[t], and -sum p log p. */
static void ref_logprob(const struct lp *p)
{
    for (int r = 0; r < p->rows; r++) {
        const double *z = p->z + (long)r * p->vocab;
        long double mx = -INFINITY, sum = 0.0L, ey = 0.0L;
        for (int j = 0; j < p->vocab; j++)
            if (z[j] / p->tau > mx) mx = z[j] / p->tau;
        for (int j = 0; j < p->vocab; j++) sum += expl(z[j] / p->tau - mx);
        long double lse = mx + logl(sum);
        for (int j = 0; j < p->vocab; j++) {
            long double lpj = z[j] / p->tau - lse;
            ey -= expl(lpj) * lpj;
        }
        int64_t t = p->targets[r];
        p->logp[r] = t < 0 ? 0.0 : (double)(z[t] / p->tau - lse);
        p->ent[r] = t < 0 ? 0.0 : (double)ey;
    }
}

static double lp_loss(void *ctx)
{
    struct lp *p = ctx;
    ref_logprob(p);
    return kdot(p->w, p->logp, p->rows);
}

static void test_values(struct test_state *ts)
{
    static const int64_t targets[] = {5, -1, 0, 999, 17, -100};
    enum { R = 6, V = 1000 };
    static const float taus[] = {1.0f, 0.7f};
    for (int k = 0; k < 2; k++) {
        struct krng r = {800 + k};
        float *z = kalloc((long)R * V), logp[R], ent[R], logp2[R];
        krng_fill(&r, z, (long)R * V, 4.0);
        struct lp p = {R, V, taus[k], targets, kto_double(z, (long)R * V), NULL, kalloc_d(R), kalloc_d(R)};
        ref_logprob(&p);
        for (int i = 0; i < R; i++) logp[i] = ent[i] = NAN; /* outputs must be written, skipped rows too */
        logprob_forward_cpu(logp, ent, z, targets, R, V, taus[k]);
        CHECK_MSG(ts, kcheck_close(ts, "logp", logp, p.logp, R, 1e-6) == 0, "tau %g", taus[k]);
        CHECK_MSG(ts, kcheck_close(ts, "entropy", ent, p.ent, R, 1e-6) == 0, "tau %g", taus[k]);
        CHECK(ts, logp[1] == 0.0f && logp[5] == 0.0f && ent[1] == 0.0f && ent[5] == 0.0f);
        for (int i = 0; i < R; i++)
            if (targets[i] >= 0) CHECK(ts, logp[i] < 0.0f && ent[i] > 0.0f && ent[i] < logf(V));
        /* entropy may be NULL. */
        logprob_forward_cpu(logp2, NULL, z, targets, R, V, taus[k]);
        CHECK(ts, kbitwise_equal(logp, logp2, R));
        free(z), free(p.z), free(p.logp), free(p.ent);
    }
    /* Uniform logits: logp = -log V and entropy = log V at any temperature. */
    float z[64] = {0}, lp1, e1;
    int64_t t = 63;
    logprob_forward_cpu(&lp1, &e1, z, &t, 1, 64, 0.7f);
    CHECK(ts, fabs(lp1 + log(64.0)) < 1e-6 && fabs(e1 - log(64.0)) < 1e-6);
}

/* Logits of 1e4 (seen after a diverging update): everything finite, and the values still right. */
static void test_large_logits(struct test_state *ts)
{
    enum { V = 50 };
    float z[2 * V], logp[2], ent[2], dz[2 * V] = {0}, dlogp[2] = {1.0f, -0.5f};
    for (int j = 0; j < V; j++) z[j] = (float)(j % 7) * 1e3f, z[V + j] = -1e4f;
    z[V + 3] = 1e4f;
    int64_t targets[2] = {6, 4}; /* row 0: a logit of 6e3 tied with 7 others; row 1: 2e4 below the max */
    logprob_forward_cpu(logp, ent, z, targets, 2, V, 0.7f);
    logprob_backward_cpu(dz, dlogp, z, targets, 2, V, 0.7f);
    for (int i = 0; i < 2; i++) CHECK(ts, isfinite(logp[i]) && isfinite(ent[i]));
    for (int j = 0; j < 2 * V; j++) CHECK(ts, isfinite(dz[j]));
    int ties = 0;
    for (int j = 0; j < V; j++) ties += j % 7 == 6;
    CHECK(ts, fabs(logp[0] + log((double)ties)) < 1e-5 && fabs(ent[0] - log((double)ties)) < 1e-5);
    CHECK(ts, fabs(logp[1] + 2e4 / 0.7) <= 1e-6 * 2e4 / 0.7);
    CHECK(ts, fabs(ent[1]) < 1e-6);
}

static void test_backward(struct test_state *ts)
{
    static const int64_t targets[] = {2, -1, 40, 0, 63};
    enum { R = 5, V = 64 };
    struct krng r = {900};
    float *z = kalloc((long)R * V), dlogp[R], *dz = kalloc((long)R * V);
    krng_fill(&r, z, (long)R * V, 3.0);
    for (int i = 0; i < R; i++) dlogp[i] = (float)krng_uniform(&r);
    struct lp p = {R, V, 0.7, targets, kto_double(z, (long)R * V), kto_double(dlogp, R), kalloc_d(R), kalloc_d(R)};
    logprob_backward_cpu(dz, dlogp, z, targets, R, V, 0.7f);
    CHECK(ts, kcheck_grad(ts, "dlogits", dz, p.z, (long)R * V, lp_loss, &p, 100000, 1e-4) == 0);
    for (int j = 0; j < V; j++) CHECK(ts, dz[V + j] == 0.0f); /* target < 0: no gradient */
    /* Each row's gradient sums to zero (softmax Jacobian rows do). */
    for (int i = 0; i < R; i++) {
        double s = 0.0;
        for (int j = 0; j < V; j++) s += dz[(long)i * V + j];
        CHECK(ts, fabs(s) < 1e-6);
    }
    /* Accumulation: a second call doubles; same bits with 1, 2 and 3 threads. */
    float *dz2 = kcopy(dz, (long)R * V);
    logprob_backward_cpu(dz2, dlogp, z, targets, R, V, 0.7f);
    for (long i = 0; i < (long)R * V; i++) CHECK(ts, dz2[i] == 2.0f * dz[i]);
    int saved = omp_get_max_threads();
    for (int t = 1; t <= 3; t++) {
        omp_set_num_threads(t);
        float *d = kalloc((long)R * V);
        logprob_backward_cpu(d, dlogp, z, targets, R, V, 0.7f);
        CHECK_MSG(ts, kbitwise_equal(d, dz, (long)R * V), "%d threads", t);
        free(d);
    }
    omp_set_num_threads(saved);
    free(z), free(dz), free(dz2), free(p.z), free(p.w), free(p.logp), free(p.ent);
}

/* The bf16 gradient is by definition the fp32 one on a zeroed buffer, rounded: bit for bit, with every
 * element written (the buffer starts as garbage; skipped rows come out zero), on 1 to 3 threads, at
 * ordinary logits and at 1e4 ones. */
static void test_backward_bf16(struct test_state *ts)
{
    static const int64_t targets[] = {2, -1, 40, 0, 63, -7};
    enum { R = 6, V = 64 };
    struct krng r = {901};
    float *z = kalloc((long)R * V), dlogp[R];
    for (int k = 0; k < 2; k++) {
        krng_fill(&r, z, (long)R * V, k ? 8.0 : 3.0);
        if (k)
            for (long i = 0; i < (long)R * V; i++) z[i] += 1e4f;
        for (int i = 0; i < R; i++) dlogp[i] = (float)krng_uniform(&r);
        float *dz = kalloc((long)R * V);
        logprob_backward_cpu(dz, dlogp, z, targets, R, V, 0.7f);
        uint16_t want[R * V], got[R * V];
        for (int i = 0; i < R * V; i++) want[i] = bf16_from_f32(dz[i]);
        int saved = omp_get_max_threads();
        for (int t = 1; t <= 3; t++) {
            omp_set_num_threads(t);
            memset(got, 0xa5, sizeof got);
            logprob_backward_bf16_cpu(got, dlogp, z, targets, R, V, 0.7f);
            CHECK_MSG(ts, memcmp(got, want, sizeof got) == 0, "logits %s, %d threads: not round(fp32 gradient)",
                      k ? "1e4" : "+-3", t);
        }
        omp_set_num_threads(saved);
        for (int j = 0; j < V; j++) CHECK(ts, got[V + j] == 0 && got[5 * V + j] == 0);
        /* From the forward's row statistics: the same bits; skipped rows' statistics say "not
         * computed" (sum 0), and such a row computes its own. */
        float logp[R], logp1[R], mx[R];
        double sum[R];
        logprob_forward_stats_cpu(logp, NULL, mx, sum, z, targets, R, V, 0.7f);
        logprob_forward_cpu(logp1, NULL, z, targets, R, V, 0.7f);
        CHECK(ts, kbitwise_equal(logp, logp1, R));
        for (int i = 0; i < R; i++) {
            float zm = -INFINITY;
            for (int j = 0; j < V; j++) zm = fmaxf(zm, z[i * V + j]);
            CHECK_MSG(ts, targets[i] < 0 ? sum[i] == 0.0 : mx[i] == zm && sum[i] >= 1.0 && sum[i] <= V,
                      "row %d: max %g (want %g), sum %g", i, mx[i], zm, sum[i]);
        }
        sum[2] = 0.0; /* this row's own statistics */
        memset(got, 0xa5, sizeof got);
        logprob_backward_bf16_stats_cpu(got, dlogp, z, targets, mx, sum, R, V, 0.7f);
        CHECK_MSG(ts, memcmp(got, want, sizeof got) == 0, "logits %s: other bits from the statistics", k ? "1e4" : "+-3");
        free(dz);
    }
    free(z);
}

int main(void)
{
    struct test_state ts = {0};
    RUN(&ts, test_values);
    RUN(&ts, test_large_logits);
    RUN(&ts, test_backward);
    RUN(&ts, test_backward_bf16);
    return test_summary(&ts);
}
