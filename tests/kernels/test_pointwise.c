/* Elementwise activations (SwiGLU, exact GELU, quick GELU) and the embedding lookup: forward against
 * double-precision definitions, gradients by finite differences, accumulation, NULL gradients; the
 * packed SwiGLU gradient in bf16 against its definition. */
#include <omp.h>

#include "kcheck.h"
#include "mmupt/bf16.h"
#include "mmupt/kernels.h"

enum act { ACT_SWIGLU, ACT_GELU, ACT_QUICK_GELU };

struct pw {
    enum act act;
    long n;
    double *x, *up, *w, *y; /* up: SwiGLU's second input */
};

static double sigmoid(double x)
{
    return 1.0 / (1.0 + exp(-x));
}

static void ref_act(const struct pw *p)
{
    for (long i = 0; i < p->n; i++) {
        double x = p->x[i];
        switch (p->act) {
        case ACT_SWIGLU: p->y[i] = x * sigmoid(x) * p->up[i]; break;
        case ACT_GELU: p->y[i] = 0.5 * x * (1.0 + erf(x / sqrt(2.0))); break;
        case ACT_QUICK_GELU: p->y[i] = x * sigmoid(1.702 * x); break;
        }
    }
}

static double act_loss(void *ctx)
{
    struct pw *p = ctx;
    ref_act(p);
    return kdot(p->w, p->y, p->n);
}

static void kernel_forward(enum act act, float *out, const float *x, const float *up, long n)
{
    if (act == ACT_SWIGLU) swiglu_forward_cpu(out, x, up, n);
    if (act == ACT_GELU) gelu_forward_cpu(out, x, n);
    if (act == ACT_QUICK_GELU) quick_gelu_forward_cpu(out, x, n);
}

static void kernel_backward(enum act act, float *dx, float *dup, const float *dout, const float *x, const float *up,
                            long n)
{
    if (act == ACT_SWIGLU) swiglu_backward_cpu(dx, dup, dout, x, up, n);
    if (act == ACT_GELU) gelu_backward_cpu(dx, dout, x, n);
    if (act == ACT_QUICK_GELU) quick_gelu_backward_cpu(dx, dout, x, n);
}

static const char *act_name[] = {"swiglu", "gelu", "quick_gelu"};

static void test_activations(struct test_state *ts)
{
    enum { N = 1001 };
    for (int a = 0; a < 3; a++) {
        struct krng r = {600 + a};
        float *x = kalloc(N), *up = kalloc(N), *dout = kalloc(N), *out = kalloc(N);
        krng_fill(&r, x, N, 6.0);
        /* Tails: saturated sigmoid and erf, where a careless formula turns into NaN or loses the sign. */
        x[0] = 30.0f, x[1] = -30.0f, x[2] = 100.0f, x[3] = -100.0f, x[4] = 0.0f, x[5] = -1e-3f;
        krng_fill(&r, up, N, 2.0);
        krng_fill(&r, dout, N, 1.0);
        struct pw p = {(enum act)a, N, kto_double(x, N), kto_double(up, N), kto_double(dout, N), kalloc_d(N)};
        ref_act(&p);
        kernel_forward(p.act, out, x, up, N);
        CHECK_MSG(ts, kcheck_close(ts, "forward", out, p.y, N, 1e-5) == 0, "%s", act_name[a]);
        for (long i = 0; i < N; i++) CHECK(ts, isfinite(out[i]));

        float *dx = kalloc(N), *dup = kalloc(N);
        kernel_backward(p.act, dx, dup, dout, x, up, N);
        for (long i = 0; i < N; i++) CHECK(ts, isfinite(dx[i]));
        CHECK_MSG(ts, kcheck_grad(ts, "dx", dx, p.x, N, act_loss, &p, N, 1e-4) == 0, "%s", act_name[a]);
        if (a == ACT_SWIGLU) CHECK(ts, kcheck_grad(ts, "dup", dup, p.up, N, act_loss, &p, N, 1e-4) == 0);

        /* Accumulation: a second call doubles; NULL dup (SwiGLU) leaves dgate's values unchanged. */
        float *dx2 = kcopy(dx, N), *dup2 = kcopy(dup, N), *alone = kalloc(N);
        kernel_backward(p.act, dx2, dup2, dout, x, up, N);
        for (long i = 0; i < N; i++) {
            CHECK(ts, dx2[i] == 2.0f * dx[i]);
            if (a == ACT_SWIGLU) CHECK(ts, dup2[i] == 2.0f * dup[i]);
        }
        if (a == ACT_SWIGLU) {
            kernel_backward(p.act, alone, NULL, dout, x, up, N);
            CHECK(ts, kbitwise_equal(alone, dx, N));
            memset(alone, 0, N * sizeof(float));
            kernel_backward(p.act, NULL, alone, dout, x, up, N);
            CHECK(ts, kbitwise_equal(alone, dup, N));
        }
        free(x), free(up), free(dout), free(out), free(dx), free(dup), free(dx2), free(dup2), free(alone);
        free(p.x), free(p.up), free(p.w), free(p.y);
    }
}

/* The packed gradient rounded to bf16 is by definition swiglu_packed_backward on a zeroed buffer,
 * then rounded: the same bits, whatever the thread count, every element assigned (the buffer
 * starts as garbage). Gates 0 and -100 make -0 terms, which the zeroed buffer turns into +0. */
static void test_swiglu_packed_bf16(struct test_state *ts)
{
    enum { R = 5, C = 37, N = R * C };
    struct krng r = {650};
    float *gu = kalloc(2 * N), *dout = kalloc(N), *dgu = kalloc(2 * N); /* dgu: zeroed */
    krng_fill(&r, gu, 2 * N, 8.0);
    krng_fill(&r, dout, N, 1.0);
    gu[0] = 0.0f, dout[0] = -0.5f;                      /* dup -0 */
    gu[1] = -100.0f, gu[C + 1] = -1.0f, dout[1] = 0.5f; /* sigmoid 0: dgate and dup -0 */
    swiglu_packed_backward_cpu(dgu, dout, gu, R, C);
    uint16_t want[2 * N], got[2 * N];
    for (int i = 0; i < 2 * N; i++) want[i] = bf16_from_f32(dgu[i]);
    CHECK(ts, want[C] == 0 && want[1] == 0 && want[C + 1] == 0);
    int saved = omp_get_max_threads();
    for (int t = 1; t <= 3; t++) {
        omp_set_num_threads(t);
        memset(got, 0xa5, sizeof got);
        swiglu_packed_backward_bf16_cpu(got, dout, gu, R, C);
        CHECK_MSG(ts, memcmp(got, want, sizeof got) == 0, "%d threads: not round(0 + fp32 gradient)", t);
    }
    omp_set_num_threads(saved);
    free(gu), free(dout), free(dgu);
}

struct emb {
    int n, dim;
    const int64_t *ids;
    double *table, *w, *y;
};

static double emb_loss(void *ctx)
{
    struct emb *e = ctx;
    for (int i = 0; i < e->n; i++)
        for (int c = 0; c < e->dim; c++) e->y[(long)i * e->dim + c] = e->table[e->ids[i] * e->dim + c];
    return kdot(e->w, e->y, (long)e->n * e->dim);
}

static void test_embedding(struct test_state *ts)
{
    /* Repeated ids (3 three times, 0 twice) must add up; row 5 is never used and stays untouched. */
    static const int64_t ids[] = {3, 0, 3, 1, 4, 0, 3, 2};
    enum { V = 6, N = 8, D = 70 };
    struct krng r = {700};
    float *table = kalloc((long)V * D), *out = kalloc((long)N * D), *dout = kalloc((long)N * D);
    krng_fill(&r, table, (long)V * D, 1.0);
    krng_fill(&r, dout, (long)N * D, 1.0);
    embedding_forward_cpu(out, ids, table, N, D);
    for (int i = 0; i < N; i++) CHECK(ts, kbitwise_equal(out + (long)i * D, table + ids[i] * D, D));

    float *dt = kalloc((long)V * D);
    embedding_backward_cpu(dt, dout, ids, N, D);
    struct emb e = {N, D, ids, kto_double(table, (long)V * D), kto_double(dout, (long)N * D), kalloc_d((long)N * D)};
    CHECK(ts, kcheck_grad(ts, "dtable", dt, e.table, (long)V * D, emb_loss, &e, 10000, 1e-5) == 0);
    for (int c = 0; c < D; c++) CHECK(ts, dt[5 * D + c] == 0.0f);

    /* Accumulation, and the same bits with 1, 2 and 3 threads. */
    float *dt2 = kcopy(dt, (long)V * D);
    embedding_backward_cpu(dt2, dout, ids, N, D);
    for (long i = 0; i < (long)V * D; i++) CHECK(ts, fabsf(dt2[i] - 2.0f * dt[i]) <= 1e-6f * (1 + fabsf(dt[i])));
    int saved = omp_get_max_threads();
    for (int t = 1; t <= 3; t++) {
        omp_set_num_threads(t);
        float *d = kalloc((long)V * D);
        embedding_backward_cpu(d, dout, ids, N, D);
        CHECK_MSG(ts, kbitwise_equal(d, dt, (long)V * D), "%d threads", t);
        free(d);
    }
    omp_set_num_threads(saved);
    free(table), free(out), free(dout), free(dt), free(dt2), free(e.table), free(e.w), free(e.y);
}

int main(void)
{
    struct test_state ts = {0};
    RUN(&ts, test_activations);
    RUN(&ts, test_swiglu_packed_bf16);
    RUN(&ts, test_embedding);
    return test_summary(&ts);
}
