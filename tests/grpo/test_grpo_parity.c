/* GRPO loss against the EasyR1 objective in PyTorch (tools/make_grpo_fixtures.py): advantages,
 * grpo_loss_cpu on torch's log-probs, the unfused lm_head composition and the fused path (default
 * and small odd chunks), and seq-mean-token-mean. Every tensor within 1e-5 of its max magnitude.
 *
 *   test_grpo_parity FIXTURE.safetensors ... */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../test.h"
#include "mmupt/grpo.h"
#include "mmupt/kernels.h"
#include "mmupt/safetensors.h"

#define TOL 1e-5

struct fixture {
    int T, H, V;
    float *hidden, *W, *old, *ref, *adv, *mask, *rewards, *adv_groups, *adv_dr, *logp, *dlogp, *dhidden, *dW;
    float *seq_dlogp;
    int64_t *targets, *seq_start;
    double params[7], metrics[10], seq_loss;
    int n_seq;
};

static const struct st_tensor *need(const struct st_set *s, const char *name)
{
    const struct st_tensor *t = st_find(s, name);
    if (!t) {
        fprintf(stderr, "fixture: no tensor %s\n", name);
        exit(1);
    }
    return t;
}

static float *load_f32(const struct st_set *s, const char *name)
{
    const struct st_tensor *t = need(s, name);
    float *out = malloc((size_t)t->numel * sizeof(float));
    struct mmupt_err err;
    if (st_copy_f32(t, out, t->numel, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        exit(1);
    }
    return out;
}

static void load_f64(const struct st_set *s, const char *name, double *out, int64_t n)
{
    const struct st_tensor *t = need(s, name);
    if (t->dtype != ST_F64 || t->numel != n) {
        fprintf(stderr, "fixture: %s: expected F64[%ld]\n", name, (long)n);
        exit(1);
    }
    memcpy(out, t->data, (size_t)n * sizeof(double));
}

static int64_t *load_i64(const struct st_set *s, const char *name, int64_t *n)
{
    const struct st_tensor *t = need(s, name);
    int64_t *out = malloc((size_t)t->numel * sizeof(int64_t));
    struct mmupt_err err;
    if (st_copy_i64(t, out, t->numel, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        exit(1);
    }
    *n = t->numel;
    return out;
}

static void fixture_load(struct fixture *f, const char *path)
{
    struct st_set s;
    struct mmupt_err err;
    if (st_open(&s, path, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        exit(1);
    }
    const struct st_tensor *w = need(&s, "W"), *h = need(&s, "hidden");
    f->V = (int)w->shape[0], f->H = (int)w->shape[1], f->T = (int)h->shape[0];
    f->hidden = load_f32(&s, "hidden"), f->W = load_f32(&s, "W"), f->old = load_f32(&s, "old_logp");
    f->ref = load_f32(&s, "ref_logp"), f->adv = load_f32(&s, "adv"), f->mask = load_f32(&s, "mask");
    f->rewards = load_f32(&s, "rewards"), f->adv_groups = load_f32(&s, "adv_groups");
    f->adv_dr = load_f32(&s, "adv_dr"), f->logp = load_f32(&s, "logp"), f->dlogp = load_f32(&s, "dlogp");
    f->dhidden = load_f32(&s, "dhidden"), f->dW = load_f32(&s, "dW"), f->seq_dlogp = load_f32(&s, "seqmean_dlogp");
    int64_t n;
    f->targets = load_i64(&s, "targets", &n);
    f->seq_start = load_i64(&s, "seq_start", &n);
    f->n_seq = (int)n - 1;
    load_f64(&s, "params", f->params, 7);
    load_f64(&s, "metrics", f->metrics, 10);
    load_f64(&s, "seqmean_loss", &f->seq_loss, 1);
    st_close(&s);
}

static void fixture_free(struct fixture *f)
{
    float *fl[] = {f->hidden, f->W, f->old, f->ref, f->adv, f->mask, f->rewards, f->adv_groups, f->adv_dr,
                   f->logp, f->dlogp, f->dhidden, f->dW, f->seq_dlogp};
    for (size_t i = 0; i < sizeof fl / sizeof fl[0]; i++) free(fl[i]);
    free(f->targets);
    free(f->seq_start);
}

static void fixture_params(const struct fixture *f, struct grpo_params *p)
{
    grpo_params_default(p);
    p->clip_low = (float)f->params[0], p->clip_high = (float)f->params[1], p->clip_dual = (float)f->params[2];
    p->kl_penalty = (int)f->params[3], p->kl_coef = (float)f->params[4], p->kl_clamp = (float)f->params[5];
    p->tau = (float)f->params[6];
}

#define CHECK_TENSOR(ts, what, a, b, n)                                                                  \
    do {                                                                                                 \
        double e_ = test_rel_err((a), (b), (n));                                                              \
        CHECK_MSG(ts, e_ <= TOL, "%s: %s relative error %.3g", path, what, e_);                          \
    } while (0)

/* Metrics against torch's; entropy only where logits were seen. */
static void check_metrics(struct test_state *ts, const char *path, const char *what, const struct grpo_metrics *m,
                          const double *ref, int with_entropy)
{
    double got[10] = {m->loss, m->pg_loss, m->kl, m->entropy, m->clip_frac, m->dual_clip_frac, m->ratio_mean,
                      m->ratio_min, m->ratio_max, (double)m->n_tokens};
    const char *names[10] = {"loss", "pg_loss", "kl", "entropy", "clip_frac", "dual_clip_frac", "ratio_mean",
                             "ratio_min", "ratio_max", "n_tokens"};
    for (int i = 0; i < 10; i++) {
        if (i == 3 && !with_entropy) continue;
        double tol = TOL * (fabs(ref[i]) > 1.0 ? fabs(ref[i]) : 1.0);
        CHECK_MSG(ts, fabs(got[i] - ref[i]) <= tol, "%s: %s %s: %.9g vs torch %.9g", path, what, names[i], got[i],
                  ref[i]);
    }
}

static void check_fixture(struct test_state *ts, const char *path)
{
    struct fixture f;
    fixture_load(&f, path);
    struct grpo_params p;
    fixture_params(&f, &p);
    int T = f.T, H = f.H, V = f.V;
    size_t nh = (size_t)T * H, nw = (size_t)V * H;

    float adv[64];
    CHECK(ts, f.n_seq == 3);
    grpo_advantages(f.rewards, 3, 4, 1e-6f, 0, adv);
    CHECK_TENSOR(ts, "advantages", adv, f.adv_groups, 12);
    grpo_advantages(f.rewards, 3, 4, 1e-6f, 1, adv);
    CHECK_TENSOR(ts, "Dr.GRPO advantages", adv, f.adv_dr, 12);

    /* The kernels' log-probs are torch's. */
    float *logits = malloc((size_t)T * V * sizeof(float)), *logp = malloc((size_t)T * sizeof(float));
    matmul_forward_cpu(logits, f.hidden, f.W, NULL, T, H, V);
    logprob_forward_cpu(logp, NULL, logits, f.targets, T, V, p.tau);
    for (int t = 0; t < T; t++)
        if (f.targets[t] < 0) logp[t] = f.logp[t]; /* torch gathered a clamped index there: unused */
    CHECK_TENSOR(ts, "logp", logp, f.logp, T);

    /* The loss alone, on torch's log-probs. */
    float *dlogp = malloc((size_t)T * sizeof(float));
    struct grpo_metrics m;
    CHECK(ts, grpo_loss_cpu(f.logp, f.old, f.ref, f.adv, f.mask, T, &p, dlogp, &m) == 0);
    CHECK_TENSOR(ts, "dlogp", dlogp, f.dlogp, T);
    check_metrics(ts, path, "grpo_loss_cpu", &m, f.metrics, 0);

    CHECK(ts, grpo_loss_seq_mean_cpu(f.logp, f.old, f.ref, f.adv, f.mask, f.seq_start, f.n_seq, &p, dlogp, &m) == 0);
    CHECK_TENSOR(ts, "seq-mean dlogp", dlogp, f.seq_dlogp, T);
    CHECK_MSG(ts, fabs(m.loss - f.seq_loss) <= TOL, "%s: seq-mean loss %.9g vs %.9g", path, m.loss, f.seq_loss);

    /* Through the lm_head: unfused, fused with default chunks, fused with odd small chunks. */
    int chunks[3][2] = {{-1, -1}, {0, 0}, {5, 7}};
    const char *names[3] = {"unfused", "fused", "fused 5x7"};
    float *dh = malloc(nh * sizeof(float)), *dw = malloc(nw * sizeof(float));
    for (int c = 0; c < 3; c++) {
        memset(dh, 0, nh * sizeof(float));
        memset(dw, 0, nw * sizeof(float));
        int rc;
        if (c == 0) {
            rc = grpo_unfused_loss_cpu(f.hidden, f.W, f.targets, f.old, f.ref, f.adv, f.mask, T, H, V, &p, dh, dw, &m);
        } else {
            p.chunk_t = chunks[c][0], p.chunk_v = chunks[c][1];
            rc = grpo_fused_loss_cpu(f.hidden, f.W, f.targets, f.old, f.ref, f.adv, f.mask, T, H, V, &p, dh, dw, &m);
        }
        CHECK_MSG(ts, rc == 0, "%s: %s failed", path, names[c]);
        check_metrics(ts, path, names[c], &m, f.metrics, 1);
        double eh = test_rel_err(dh, f.dhidden, (int64_t)nh), ew = test_rel_err(dw, f.dW, (int64_t)nw);
        CHECK_MSG(ts, eh <= TOL && ew <= TOL, "%s: %s: dhidden %.3g, dW %.3g", path, names[c], eh, ew);
        printf("  %s %s: dhidden %.2g, dW %.2g relative error\n", path, names[c], eh, ew);
    }
    free(dh);
    free(dw);
    free(dlogp);
    free(logp);
    free(logits);
    fixture_free(&f);
}

int main(int argc, char **argv)
{
    struct test_state ts = {0};
    for (int i = 1; i < argc; i++) RUN_ON(&ts, check_fixture, argv[i]);
    if (argc < 2) ts.failed++;
    return test_summary(&ts);
}
