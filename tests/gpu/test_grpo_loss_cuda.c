/* The GRPO per-token loss of a micro-batch: grpo_loss_cuda against grpo_loss_cpu. Skips (exit 77)
 * without a GPU.
 *
 * Cases: n = 1, 37 (one partial block) and 100000 (391 blocks) times every kl_penalty (low_var_kl,
 * k1, none - once with ref_logp NULL), three clip settings (the paper's 0.2/0.3/3, a tight
 * 0.1/0.1/1.5 and a loose 0.28/0.28/10) and gradient scale 1 and 0.25. Inputs are shaped so every
 * branch is taken: ratios inside and outside the clip range, tokens exactly ON a clip bound (the
 * subgradient 0 of torch.clamp), advantage 0 (the max tie), ratios above clip_dual with negative
 * advantages (dual clip), |ref - logp| up to 3 (k3 saturates at kl_clamp 10), and about one token
 * in five masked out. A batch with everything masked out, n = 0, and non-finite inputs (NaN logp,
 * Inf advantage, NaN/Inf mask, in the first and in the last block) -> -1 with nothing written; a
 * NaN in a masked-out token is accepted, as the reference does.
 *
 * Tolerances, and why:
 *   - dlogp: 2.4e-7 * |want| (2 float ulps), and exactly 0 where the mask is 0. The kernel takes
 *     every branch on the same float comparisons as the reference and does the same double
 *     operations in the same order with no fused multiply-adds (__dmul_rn); the one difference is
 *     double exp, CUDA's within 1 ulp (2^-52), glibc's correctly rounded in practice. That moves
 *     the double result by a few 1e-16 relative, so after the fp32 store it is the same float or
 *     its neighbour (1 ulp <= 1.2e-7 relative). Where the policy and KL terms nearly cancel
 *     (dL + kl_coef dkl ~ 0) that double error, ~1e-15 of the terms, is large next to the sum, so
 *     an absolute floor of 1e-12 * scale / n_tokens is added: 1e-12 of a typical dlogp, far below
 *     any real error. The count of elements that are not bitwise equal is printed.
 *   - metrics: |got - want| <= 1e-9 (1 + |want|). They are double sums of w * term over up to
 *     1e5 tokens (w = 1/n_tokens), added in another order (per thread, block tree, blocks) than the
 *     reference's token order: the error is at most ~n * 2^-53 * sum |w term| ~ 1e-11 for terms
 *     of size ~10 (typically 1e-15), while one token lost or counted twice moves a metric by
 *     w * term ~ 1e-5. n_tokens is exact, entropy exactly 0 (the reference leaves it to callers).
 * A second call on the default stream must give the same bits: both reductions have a fixed
 * order. */
#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpu_test.h"
#include "mmupt/err.h"
#include "mmupt/grpo.h"

#define DLOGP_REL 2.4e-7
#define DLOGP_FLOOR 1e-12
#define METRIC_TOL 1e-9

/* One micro-batch on the host. */
struct batch {
    int64_t n;
    float *logp, *old, *ref, *adv, *mask;
};

static float *alloc_f(int64_t n) { return mmupt_xmalloc((size_t)(n ? n : 1) * sizeof(float)); }

static void batch_init(struct batch *b, int64_t n, unsigned seed)
{
    b->n = n;
    b->logp = alloc_f(n);
    b->old = alloc_f(n);
    b->ref = alloc_f(n);
    b->adv = alloc_f(n);
    b->mask = alloc_f(n);
    float *u = alloc_f(n), *w = alloc_f(n);
    gpu_test_fill(b->logp, (size_t)n, seed, -3.0f, 0.0f);
    gpu_test_fill(u, (size_t)n, seed + 1, -0.6f, 0.6f);
    gpu_test_fill(w, (size_t)n, seed + 2, -3.0f, 3.0f);
    gpu_test_fill(b->adv, (size_t)n, seed + 3, -2.0f, 2.0f);
    const float on_hi = (float)log(1.3), on_lo = (float)log(0.8); /* the default clip bounds */
    for (int64_t i = 0; i < n; i++) {
        b->old[i] = b->logp[i] + u[i];
        b->ref[i] = b->logp[i] + w[i];
        b->mask[i] = i % 5 == 2 ? 0.0f : 1.0f;
        switch (i % 23) {
        case 4: b->old[i] = 0.0f, b->logp[i] = on_hi; break; /* x exactly on the upper bound */
        case 9: b->old[i] = 0.0f, b->logp[i] = on_lo; break; /* ... on the lower bound */
        case 11: b->adv[i] = 0.0f; break;                     /* L1 == L2: the tie */
        case 15: b->old[i] = b->logp[i] - 1.5f; break;        /* ratio e^1.5 > 3: dual clip if A < 0 */
        case 17: b->old[i] = b->logp[i] - 2.5f; break;        /* ratio e^2.5 > 10 */
        case 20: b->ref[i] = b->logp[i]; break;               /* kl 0 exactly */
        }
    }
    free(u);
    free(w);
}

static void batch_free(struct batch *b)
{
    free(b->logp);
    free(b->old);
    free(b->ref);
    free(b->adv);
    free(b->mask);
}

/* The batch on the device (ref NULL when not wanted). */
struct dev_batch {
    float *logp, *old, *ref, *adv, *mask, *dlogp;
};

static const float SENTINEL = 7.0f; /* dlogp before the call: shows what was (not) written */

static void dev_upload(struct dev_batch *d, const struct batch *b, int with_ref)
{
    size_t bytes = (size_t)b->n * sizeof(float);
    d->logp = gpu_test_upload(b->logp, bytes);
    d->old = gpu_test_upload(b->old, bytes);
    d->ref = with_ref ? gpu_test_upload(b->ref, bytes) : NULL;
    d->adv = gpu_test_upload(b->adv, bytes);
    d->mask = gpu_test_upload(b->mask, bytes);
    float *s = alloc_f(b->n);
    for (int64_t i = 0; i < b->n; i++) s[i] = SENTINEL;
    d->dlogp = gpu_test_upload(s, bytes);
    free(s);
}

static void dev_free(struct dev_batch *d)
{
    void *p[] = {d->logp, d->old, d->ref, d->adv, d->mask, d->dlogp};
    for (size_t i = 0; i < sizeof p / sizeof p[0]; i++) CUDA_CHECK(cudaFree(p[i])); /* cudaFree(NULL) is a no-op */
}

static int metric_near(double got, double want) { return fabs(got - want) <= METRIC_TOL * (1.0 + fabs(want)); }

static void check_metrics(struct test_state *ts, const struct grpo_metrics *g, const struct grpo_metrics *w,
                          const char *what)
{
    CHECK_MSG(ts, g->n_tokens == w->n_tokens, "%s: n_tokens %lld vs %lld", what, (long long)g->n_tokens,
              (long long)w->n_tokens);
    CHECK_MSG(ts, g->entropy == 0.0, "%s: entropy %g", what, g->entropy);
    const double gv[] = {g->loss, g->pg_loss, g->kl, g->clip_frac, g->dual_clip_frac, g->ratio_mean, g->ratio_min,
                         g->ratio_max};
    const double wv[] = {w->loss, w->pg_loss, w->kl, w->clip_frac, w->dual_clip_frac, w->ratio_mean, w->ratio_min,
                         w->ratio_max};
    static const char *names[] = {"loss", "pg_loss", "kl", "clip_frac", "dual_clip_frac", "ratio_mean", "ratio_min",
                                  "ratio_max"};
    for (size_t k = 0; k < sizeof gv / sizeof gv[0]; k++)
        CHECK_MSG(ts, metric_near(gv[k], wv[k]), "%s: %s %.17g vs %.17g", what, names[k], gv[k], wv[k]);
}

/* One call on each side; dlogp and the metrics compared, then a repeat on the default stream. */
static void check_case(struct test_state *ts, const struct batch *b, const struct grpo_params *p, int with_ref,
                       cudaStream_t st)
{
    char what[160];
    snprintf(what, sizeof what, "n %lld kl %d clip %g/%g/%g scale %g%s", (long long)b->n, p->kl_penalty,
             p->clip_low, p->clip_high, p->clip_dual, p->scale, with_ref ? "" : " ref NULL");
    float *want = alloc_f(b->n);
    struct grpo_metrics mw, mg, mg2;
    int rw = grpo_loss_cpu(b->logp, b->old, with_ref ? b->ref : NULL, b->adv, b->mask, b->n, p, want, &mw);
    struct dev_batch d;
    dev_upload(&d, b, with_ref);
    int rg = grpo_loss_cuda(d.logp, d.old, d.ref, d.adv, d.mask, b->n, p, d.dlogp, &mg, st);
    CHECK_MSG(ts, rw == 0 && rg == 0, "%s: returned %d (cpu %d)", what, rg, rw);
    float *got = gpu_test_download_floats(d.dlogp, b->n);
    /* The absolute floor: see the tolerance note at the top. */
    double floor = mw.n_tokens ? DLOGP_FLOOR * p->scale / (double)mw.n_tokens : 0.0;
    int64_t bad = 0, inexact = 0, first = -1;
    for (int64_t i = 0; i < b->n; i++) {
        int ok = b->mask[i] == 0.0f ? got[i] == 0.0f && want[i] == 0.0f
                                    : fabs((double)got[i] - want[i]) <= DLOGP_REL * fabs(want[i]) + floor;
        if (!ok && first < 0) first = i;
        bad += !ok;
        inexact += memcmp(&got[i], &want[i], sizeof got[i]) != 0;
    }
    CHECK_MSG(ts, bad == 0, "%s: %lld dlogp off, first [%lld] %.9g vs %.9g", what, (long long)bad, (long long)first,
              first >= 0 ? got[first] : 0.0f, first >= 0 ? want[first] : 0.0f);
    if (inexact) printf("  %s: %lld of %lld dlogp not bitwise equal (within tolerance)\n", what, (long long)inexact,
                        (long long)b->n);
    check_metrics(ts, &mg, &mw, what);

    /* The same call again, default stream: the same bits. */
    rg = grpo_loss_cuda(d.logp, d.old, d.ref, d.adv, d.mask, b->n, p, d.dlogp, &mg2, NULL);
    float *again = gpu_test_download_floats(d.dlogp, b->n);
    CHECK_MSG(ts, rg == 0 && memcmp(again, got, (size_t)b->n * sizeof *got) == 0 && memcmp(&mg, &mg2, sizeof mg) == 0,
              "%s: a second call differs", what);
    free(want);
    free(got);
    free(again);
    dev_free(&d);
}

static const int64_t NS[] = {1, 37, 100000};
static const float CLIPS[][3] = {{0.2f, 0.3f, 3.0f}, {0.1f, 0.1f, 1.5f}, {0.28f, 0.28f, 10.0f}};
static const float SCALES[] = {1.0f, 0.25f};

#define COUNT(a) (int)(sizeof a / sizeof a[0])

static void test_against_cpu(struct test_state *ts, cudaStream_t st)
{
    for (int a = 0; a < COUNT(NS); a++) {
        struct batch b;
        batch_init(&b, NS[a], (unsigned)NS[a]);
        for (int kl = GRPO_KL_LOW_VAR; kl <= GRPO_KL_NONE; kl++)
            for (int c = 0; c < COUNT(CLIPS); c++)
                for (int s = 0; s < COUNT(SCALES); s++) {
                    struct grpo_params p;
                    grpo_params_default(&p);
                    p.kl_penalty = kl;
                    p.clip_low = CLIPS[c][0];
                    p.clip_high = CLIPS[c][1];
                    p.clip_dual = CLIPS[c][2];
                    p.scale = SCALES[s];
                    check_case(ts, &b, &p, 1, st);
                    if (kl == GRPO_KL_NONE && c == 0 && s == 0) check_case(ts, &b, &p, 0, st);
                }
        batch_free(&b);
    }
}

/* The inputs reach every branch: with the paper's settings on the large batch the reference sees
 * clipped tokens, dual-clipped tokens and a saturated k3 (kl_clamp), so the comparison above
 * covers them. */
static void test_branches_covered(struct test_state *ts, cudaStream_t st)
{
    (void)st;
    struct batch b;
    batch_init(&b, 100000, 100000u);
    struct grpo_params p;
    grpo_params_default(&p);
    float *dl = alloc_f(b.n);
    struct grpo_metrics m;
    CHECK(ts, grpo_loss_cpu(b.logp, b.old, b.ref, b.adv, b.mask, b.n, &p, dl, &m) == 0);
    CHECK_MSG(ts, m.clip_frac > 0.05 && m.dual_clip_frac > 0.01, "clip %g dual %g", m.clip_frac, m.dual_clip_frac);
    int64_t saturated = 0;
    for (int64_t i = 0; i < b.n; i++) {
        double d = (double)(b.ref[i] - b.logp[i]);
        saturated += b.mask[i] != 0.0f && exp(d) - d - 1.0 > p.kl_clamp;
    }
    CHECK_MSG(ts, saturated > 100, "%lld tokens with k3 beyond the clamp", (long long)saturated);
    free(dl);
    batch_free(&b);
}

/* Nothing scored: loss 0, metrics 0, dlogp 0 everywhere (and written); n = 0: metrics 0. */
static void test_nothing_scored(struct test_state *ts, cudaStream_t st)
{
    struct batch b;
    batch_init(&b, 37, 5u);
    for (int64_t i = 0; i < b.n; i++) b.mask[i] = 0.0f;
    struct grpo_params p;
    grpo_params_default(&p);
    struct dev_batch d;
    dev_upload(&d, &b, 1);
    struct grpo_metrics m, zero;
    memset(&m, 0xff, sizeof m);
    memset(&zero, 0, sizeof zero);
    CHECK(ts, grpo_loss_cuda(d.logp, d.old, d.ref, d.adv, d.mask, b.n, &p, d.dlogp, &m, st) == 0);
    CHECK(ts, memcmp(&m, &zero, sizeof m) == 0);
    float *got = gpu_test_download_floats(d.dlogp, b.n);
    int64_t nonzero = 0;
    for (int64_t i = 0; i < b.n; i++) nonzero += got[i] != 0.0f;
    CHECK_MSG(ts, nonzero == 0, "%lld dlogp not 0", (long long)nonzero);
    free(got);
    memset(&m, 0xff, sizeof m);
    p.kl_penalty = GRPO_KL_NONE; /* no ref_logp needed */
    CHECK(ts, grpo_loss_cuda(NULL, NULL, NULL, NULL, NULL, 0, &p, NULL, &m, st) == 0);
    CHECK(ts, memcmp(&m, &zero, sizeof m) == 0);
    dev_free(&d);
    batch_free(&b);
}

/* A non-finite value at index `at` of one input: -1 from both sides, nothing written on the GPU. */
enum which { W_LOGP, W_ADV, W_MASK, W_REF };

static void check_bad(struct test_state *ts, int64_t n, enum which which, int64_t at, float value, int want_rc,
                      cudaStream_t st)
{
    struct batch b;
    batch_init(&b, n, 9u);
    b.mask[at] = 1.0f;
    float *arr[] = {b.logp, b.adv, b.mask, b.ref};
    arr[which][at] = value;
    if (want_rc == 0) b.mask[at] = 0.0f; /* the same value in a token that is not scored */
    struct grpo_params p;
    grpo_params_default(&p);
    float *dl = alloc_f(n);
    CHECK_MSG(ts, grpo_loss_cpu(b.logp, b.old, b.ref, b.adv, b.mask, n, &p, dl, NULL) == want_rc,
              "cpu: input %d [%lld] = %g", (int)which, (long long)at, value);
    struct dev_batch d;
    dev_upload(&d, &b, 1);
    struct grpo_metrics m, before;
    memset(&m, 0x5a, sizeof m);
    before = m;
    int rc = grpo_loss_cuda(d.logp, d.old, d.ref, d.adv, d.mask, n, &p, d.dlogp, &m, st);
    CHECK_MSG(ts, rc == want_rc, "input %d [%lld] = %g: returned %d", (int)which, (long long)at, value, rc);
    float *got = gpu_test_download_floats(d.dlogp, n);
    if (want_rc != 0) {
        int64_t written = 0;
        for (int64_t i = 0; i < n; i++) written += got[i] != SENTINEL;
        CHECK_MSG(ts, written == 0 && memcmp(&m, &before, sizeof m) == 0,
                  "input %d [%lld] = %g: %lld dlogp written, metrics %s", (int)which, (long long)at, value,
                  (long long)written, memcmp(&m, &before, sizeof m) ? "written" : "untouched");
    } else {
        CHECK_MSG(ts, got[at] == 0.0f && m.n_tokens > 0, "a masked-out NaN: dlogp %g", got[at]);
    }
    free(got);
    free(dl);
    dev_free(&d);
    batch_free(&b);
}

static void test_non_finite(struct test_state *ts, cudaStream_t st)
{
    const int64_t N = 100000;
    check_bad(ts, 37, W_LOGP, 3, NAN, -1, st);
    check_bad(ts, 37, W_ADV, 36, INFINITY, -1, st);
    check_bad(ts, 37, W_REF, 0, -INFINITY, -1, st);
    check_bad(ts, 37, W_MASK, 10, NAN, -1, st);
    check_bad(ts, N, W_MASK, N - 1, INFINITY, -1, st); /* the last token of the last block */
    check_bad(ts, N, W_LOGP, N - 1, NAN, -1, st);
    check_bad(ts, N, W_LOGP, 0, NAN, -1, st);
    check_bad(ts, 1, W_LOGP, 0, NAN, -1, st);
    check_bad(ts, 37, W_LOGP, 3, NAN, 0, st); /* not scored: ignored */
}

int main(void)
{
    cudaStream_t st = gpu_test_begin_stream();
    struct test_state ts = {0};
    RUN_WITH(&ts, test_against_cpu, st);
    RUN_WITH(&ts, test_branches_covered, st);
    RUN_WITH(&ts, test_nothing_scored, st);
    RUN_WITH(&ts, test_non_finite, st);
    CUDA_CHECK(cudaStreamDestroy(st));
    return test_summary(&ts);
}
