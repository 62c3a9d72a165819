/* The ZeRO-1 AdamW on one rank: hand-computed first steps, a double reference over several steps
 * (weight decay, bias correction, clipping), skipped steps on NaN/Inf, and the lr schedule. The
 * multi-rank behaviour is in test_comm.c (suite mpi). */
#include <math.h>
#include <mpi.h>
#include <stdlib.h>
#include <string.h>

#include "../test.h"
#include "adamw_ref.h"
#include "mmupt/comm.h"
#include "mmupt/optim.h"

static const struct optim_config cfg0 = {
    .lr = 0.1, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = 0.1, .clip_grad_norm = 0};

static int near(double a, double b, double tol) { return fabs(a - b) <= tol * (1 + fabs(b)); }

/* Step 1 of Adam: bias correction makes m^ = g and v^ = g^2, so the update is lr * g / (|g| + eps);
 * weight decay multiplies by 1 - lr wd first. */
static void test_first_step_by_hand(struct test_state *ts, const struct comm *c)
{
    float p[3] = {1.0f, -2.0f, 0.5f}, g[3] = {0.5f, -0.25f, 0.0f};
    struct optim o;
    optim_init(&o, 3, 0, 1);
    double norm = 0;
    CHECK(ts, optim_step(&o, c, &cfg0, 0.1, p, g, &norm) == 0);
    CHECK(ts, near(norm, sqrt(0.3125), 1e-15));
    CHECK_MSG(ts, near(p[0], 0.99 - 0.1 * 0.5 / (0.5 + 1e-8), 1e-7), "%.9g", p[0]);
    CHECK_MSG(ts, near(p[1], -1.98 + 0.1 * 0.25 / (0.25 + 1e-8), 1e-7), "%.9g", p[1]);
    CHECK_MSG(ts, p[2] == (float)(0.5 * 0.99), "zero grad: pure decay, %.9g", p[2]);
    CHECK(ts, o.t == 1 && near(o.m[0], 0.05, 1e-7) && near(o.v[1], 0.001 * 0.0625, 1e-7));
    /* Step 2 with the same gradient, computed by hand: m = 0.19 g, v = 0.001999 g^2. */
    CHECK(ts, optim_step(&o, c, &cfg0, 0.1, p, g, &norm) == 0);
    double p0 = 0.99 - 0.1 * 0.5 / (0.5 + 1e-8);
    double mh = 0.19 * 0.5 / (1 - 0.81), vh = 0.001999 * 0.25 / (1 - 0.999 * 0.999);
    p0 = p0 * 0.99 - 0.1 * mh / (sqrt(vh) + 1e-8);
    CHECK_MSG(ts, near(p[0], p0, 1e-7), "%.9g vs %.9g", p[0], p0);
    optim_free(&o);
}

/* Clipping scales the gradient before the moments: g = (3, 4) has norm 5; clip 1 gives (0.6, 0.8). */
static void test_clipping(struct test_state *ts, const struct comm *c)
{
    float p[2] = {0, 0}, g[2] = {3, 4};
    struct optim_config cfg = cfg0;
    cfg.clip_grad_norm = 1.0;
    struct optim o;
    optim_init(&o, 2, 0, 1);
    double norm = 0;
    CHECK(ts, optim_step(&o, c, &cfg, 0.1, p, g, &norm) == 0);
    CHECK_MSG(ts, norm == 5.0, "pre-clip norm %g", norm);
    CHECK(ts, near(o.m[0], 0.06, 1e-7) && near(o.m[1], 0.08, 1e-7));
    CHECK(ts, near(o.v[0], 0.001 * 0.36, 1e-7) && near(o.v[1], 0.001 * 0.64, 1e-7));
    /* Below the threshold nothing is scaled. */
    cfg.clip_grad_norm = 10.0;
    optim_free(&o);
    optim_init(&o, 2, 0, 1);
    CHECK(ts, optim_step(&o, c, &cfg, 0.1, p, g, &norm) == 0);
    CHECK(ts, near(o.m[0], 0.3, 1e-7) && near(o.m[1], 0.4, 1e-7));
    optim_free(&o);
}

/* Several steps with changing gradients and lr, clipping active on some: against the double
 * reference. */
static void test_against_reference(struct test_state *ts, const struct comm *c)
{
    enum { N = 37, STEPS = 8 };
    float p[N], g[N];
    double rp[N], rm[N] = {0}, rv[N] = {0}, rg[N];
    struct adamw_ref ref = {N, rp, rm, rv, 0};
    for (int i = 0; i < N; i++) rp[i] = p[i] = (float)sin(i * 0.7) * 0.5f;
    struct optim_config cfg = cfg0;
    cfg.clip_grad_norm = 2.0;
    struct optim o;
    optim_init(&o, N, 0, 1);
    for (int s = 0; s < STEPS; s++) {
        double amp = (s % 2) ? 0.05 : 1.5; /* norms ~0.2 and ~6: clipping on alternate steps */
        for (int i = 0; i < N; i++) rg[i] = g[i] = (float)(amp * cos(i * 1.3 + s));
        double lr = 1e-2 * (1 + s);
        double norm = 0;
        CHECK(ts, optim_step(&o, c, &cfg, lr, p, g, &norm) == 0);
        double rnorm = adamw_ref_step(&ref, lr, cfg.beta1, cfg.beta2, cfg.eps, cfg.weight_decay, 2.0, rg);
        CHECK_MSG(ts, near(norm, rnorm, 1e-12), "step %d norm %g vs %g", s, norm, rnorm);
    }
    double worst = 0;
    for (int i = 0; i < N; i++) worst = fmax(worst, fabs(p[i] - rp[i]));
    CHECK_MSG(ts, worst < 1e-6, "max |p - ref| = %g", worst);
    CHECK(ts, o.t == STEPS);
    optim_free(&o);
}

/* A non-finite gradient anywhere skips the step: nothing changes, not even the step count. */
static void test_skip_non_finite(struct test_state *ts, const struct comm *c)
{
    const float bad[2] = {NAN, INFINITY};
    for (int b = 0; b < 2; b++) {
        float p[4] = {1, 2, 3, 4}, g[4] = {0.1f, 0.2f, 0.3f, 0.4f};
        struct optim o;
        optim_init(&o, 4, 0, 1);
        double norm;
        CHECK(ts, optim_step(&o, c, &cfg0, 0.1, p, g, &norm) == 0);
        float p_before[4], m_before[4], v_before[4];
        memcpy(p_before, p, sizeof p);
        memcpy(m_before, o.m, sizeof m_before);
        memcpy(v_before, o.v, sizeof v_before);
        g[2] = bad[b];
        CHECK(ts, optim_step(&o, c, &cfg0, 0.1, p, g, &norm) == 1);
        CHECK(ts, !isfinite(norm));
        CHECK(ts, memcmp(p, p_before, sizeof p) == 0);
        CHECK(ts, memcmp(o.m, m_before, sizeof m_before) == 0 && memcmp(o.v, v_before, sizeof v_before) == 0);
        CHECK(ts, o.t == 1);
        g[2] = 0.3f; /* the next finite step is step 2 */
        CHECK(ts, optim_step(&o, c, &cfg0, 0.1, p, g, &norm) == 0 && o.t == 2);
        CHECK(ts, memcmp(p, p_before, sizeof p) != 0);
        optim_free(&o);
    }
}

static void test_schedule(struct test_state *ts)
{
    CHECK(ts, optim_lr(1e-6, 0, 0.0, 0, 100) == 1e-6 && optim_lr(1e-6, 0, 0.0, 99, 100) == 1e-6);
    /* warmup 10 of 100 steps: 0 at step 0, half at step 5, peak at 10 */
    CHECK(ts, optim_lr(2.0, 1, 0.1, 0, 100) == 0.0);
    CHECK(ts, near(optim_lr(2.0, 1, 0.1, 5, 100), 1.0, 1e-15));
    CHECK(ts, near(optim_lr(2.0, 1, 0.1, 10, 100), 2.0, 1e-15));
    CHECK(ts, near(optim_lr(2.0, 0, 0.1, 5, 100), 1.0, 1e-15) && optim_lr(2.0, 0, 0.1, 50, 100) == 2.0);
    /* cosine over the remaining 90: half way (step 55) is peak/2, a quarter (32.5) is peak(1+cos(pi/4))/2 */
    CHECK(ts, near(optim_lr(2.0, 1, 0.1, 55, 100), 1.0, 1e-12));
    CHECK(ts, near(optim_lr(2.0, 1, 0.0, 25, 100), 1.0 + cos(M_PI / 4), 1e-12));
    CHECK(ts, fabs(optim_lr(2.0, 1, 0.1, 100, 100)) < 1e-15);
    CHECK(ts, fabs(optim_lr(2.0, 1, 0.1, 150, 100)) < 1e-15); /* past the end stays at 0 */
    double prev = 3.0; /* monotone after warmup */
    int mono = 1;
    for (int s = 10; s <= 100; s++) {
        double lr = optim_lr(2.0, 1, 0.1, s, 100);
        mono &= lr <= prev;
        prev = lr;
    }
    CHECK(ts, mono);
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    struct test_state ts = {0};
    struct comm world, self;
    struct mmupt_err err;
    int world_rank = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &world_rank);
    if (comm_world(&world, &err) != 0 || comm_split(&world, world_rank, &self, &err) != 0) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
#define RUN_C(fn)                                                                            \
    do {                                                                                     \
        ts.current_failed = 0;                                                               \
        fn(&ts, &self);                                                                      \
        if (ts.current_failed) { ts.failed++; fprintf(stderr, "not ok - %s\n", #fn); }       \
        else { ts.passed++; printf("ok - %s\n", #fn); }                                      \
    } while (0)
    RUN_C(test_first_step_by_hand);
    RUN_C(test_clipping);
    RUN_C(test_against_reference);
    RUN_C(test_skip_non_finite);
    RUN(&ts, test_schedule);
    comm_free(&self);
    comm_free(&world);
    MPI_Finalize();
    return test_summary(&ts);
}
