/* Linear layer: both GEMM paths (OpenBLAS when built, and the blocked kernel always) against a
 * double-precision reference, gradients by finite differences, accumulation, NULL gradients, and
 * the blocked kernel's independence from the thread count. */
#include <omp.h>

#include "kcheck.h"
#include "mmupt/bf16.h"
#include "mmupt/kernels.h"

/* out[M,N] = inp[M,K] @ w[N,K]^T + bias, the definition, in double. */
static void ref_matmul(double *out, const double *inp, const double *w, const double *bias, int M, int K, int N)
{
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double s = bias ? bias[j] : 0.0;
            for (int k = 0; k < K; k++) s += inp[(long)i * K + k] * w[(long)j * K + k];
            out[(long)i * N + j] = s;
        }
}

/* Inputs of one linear layer in float (for the kernel) and double (for the reference). */
struct lin {
    int M, K, N;
    float *inp, *w, *b, *dout;
    double *dinp, *dw, *db, *ddout, *dy; /* double copies; dy: scratch output */
};

static void lin_init(struct lin *l, int M, int K, int N, uint64_t seed)
{
    struct krng r = {seed};
    l->M = M, l->K = K, l->N = N;
    l->inp = kalloc((long)M * K), l->w = kalloc((long)N * K), l->b = kalloc(N), l->dout = kalloc((long)M * N);
    krng_fill(&r, l->inp, (long)M * K, 1.0);
    krng_fill(&r, l->w, (long)N * K, 1.0);
    krng_fill(&r, l->b, N, 1.0);
    krng_fill(&r, l->dout, (long)M * N, 1.0);
    l->dinp = kto_double(l->inp, (long)M * K), l->dw = kto_double(l->w, (long)N * K), l->db = kto_double(l->b, N);
    l->ddout = kto_double(l->dout, (long)M * N), l->dy = kalloc_d((long)M * N);
}

static void lin_free(struct lin *l)
{
    free(l->inp), free(l->w), free(l->b), free(l->dout);
    free(l->dinp), free(l->dw), free(l->db), free(l->ddout), free(l->dy);
}

/* L = sum(dout .* (inp @ w^T + b)): its gradient is exactly what the backward computes. */
static double lin_loss(void *ctx)
{
    struct lin *l = ctx;
    ref_matmul(l->dy, l->dinp, l->dw, l->db, l->M, l->K, l->N);
    return kdot(l->ddout, l->dy, (long)l->M * l->N);
}

static void test_forward(struct test_state *ts)
{
    static const int shapes[][3] = {{5, 37, 19}, {67, 131, 133}, {16, 64, 64}, {1, 1, 1}, {3, 300, 4}, {33, 8, 65}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        struct lin l;
        int M = shapes[s][0], K = shapes[s][1], N = shapes[s][2];
        lin_init(&l, M, K, N, 100 + s);
        float *out = kalloc((long)M * N);
        for (int with_bias = 0; with_bias < 2; with_bias++) {
            ref_matmul(l.dy, l.dinp, l.dw, with_bias ? l.db : NULL, M, K, N);
            for (long i = 0; i < (long)M * N; i++) out[i] = NAN; /* forward must overwrite */
            matmul_forward_cpu(out, l.inp, l.w, with_bias ? l.b : NULL, M, K, N);
            CHECK_MSG(ts, kcheck_close(ts, "matmul_forward_cpu", out, l.dy, (long)M * N, 1e-5) == 0,
                      "shape %dx%dx%d bias %d", M, K, N, with_bias);
            for (long i = 0; i < (long)M * N; i++) out[i] = NAN;
            matmul_forward_blocked_cpu(out, l.inp, l.w, with_bias ? l.b : NULL, M, K, N);
            CHECK_MSG(ts, kcheck_close(ts, "matmul_forward_blocked_cpu", out, l.dy, (long)M * N, 1e-5) == 0,
                      "shape %dx%dx%d bias %d", M, K, N, with_bias);
        }
        free(out);
        lin_free(&l);
    }
}

/* K = 0: the product is empty, out is the bias (or zero); M = 0 or N = 0 touch nothing. */
static void test_degenerate_shapes(struct test_state *ts)
{
    float bias[3] = {1.5f, -2.0f, 0.25f}, out[6], dummy = 7.0f;
    matmul_forward_cpu(out, &dummy, &dummy, bias, 2, 0, 3);
    for (int i = 0; i < 6; i++) CHECK(ts, out[i] == bias[i % 3]);
    matmul_forward_blocked_cpu(out, &dummy, &dummy, NULL, 2, 0, 3);
    for (int i = 0; i < 6; i++) CHECK(ts, out[i] == 0.0f);
    float db[3] = {0};
    matmul_backward_cpu(NULL, NULL, db, &dummy, &dummy, &dummy, 0, 4, 3);
    matmul_backward_blocked_cpu(NULL, NULL, db, &dummy, &dummy, &dummy, 0, 4, 3);
    CHECK(ts, db[0] == 0.0f && db[1] == 0.0f && db[2] == 0.0f && dummy == 7.0f);
}

/* The backward of `which` path: 0 = matmul_backward_cpu, 1 = blocked. */
static void backward(int which, float *dinp, float *dw, float *db, const struct lin *l)
{
    if (which == 0)
        matmul_backward_cpu(dinp, dw, db, l->dout, l->inp, l->w, l->M, l->K, l->N);
    else
        matmul_backward_blocked_cpu(dinp, dw, db, l->dout, l->inp, l->w, l->M, l->K, l->N);
}

static void test_backward_fd(struct test_state *ts)
{
    static const int shapes[][3] = {{5, 37, 19}, {9, 5, 70}};
    for (size_t s = 0; s < 2; s++)
        for (int which = 0; which < 2; which++) {
            struct lin l;
            int M = shapes[s][0], K = shapes[s][1], N = shapes[s][2];
            lin_init(&l, M, K, N, 200 + s);
            float *gi = kalloc((long)M * K), *gw = kalloc((long)N * K), *gb = kalloc(N);
            backward(which, gi, gw, gb, &l);
            const char *name = which ? "blocked" : "matmul_backward_cpu";
            CHECK_MSG(ts, kcheck_grad(ts, "dinp", gi, l.dinp, (long)M * K, lin_loss, &l, 4000, 1e-4) == 0, "%s", name);
            CHECK_MSG(ts, kcheck_grad(ts, "dweight", gw, l.dw, (long)N * K, lin_loss, &l, 4000, 1e-4) == 0, "%s", name);
            CHECK_MSG(ts, kcheck_grad(ts, "dbias", gb, l.db, N, lin_loss, &l, 4000, 1e-4) == 0, "%s", name);
            free(gi), free(gw), free(gb);
            lin_free(&l);
        }
}

/* Larger shapes with tile tails everywhere, against the gradient formulas in double (finite
 * differences would be slow here and are covered above). */
static void test_backward_large(struct test_state *ts)
{
    int M = 70, K = 131, N = 67;
    struct lin l;
    lin_init(&l, M, K, N, 300);
    double *ri = kalloc_d((long)M * K), *rw = kalloc_d((long)N * K), *rb = kalloc_d(N);
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double g = l.ddout[(long)i * N + j];
            rb[j] += g;
            for (int k = 0; k < K; k++) {
                ri[(long)i * K + k] += g * l.dw[(long)j * K + k];
                rw[(long)j * K + k] += g * l.dinp[(long)i * K + k];
            }
        }
    for (int which = 0; which < 2; which++) {
        float *gi = kalloc((long)M * K), *gw = kalloc((long)N * K), *gb = kalloc(N);
        backward(which, gi, gw, gb, &l);
        CHECK_MSG(ts, kcheck_close(ts, "dinp", gi, ri, (long)M * K, 1e-5) == 0, "path %d", which);
        CHECK_MSG(ts, kcheck_close(ts, "dweight", gw, rw, (long)N * K, 1e-5) == 0, "path %d", which);
        CHECK_MSG(ts, kcheck_close(ts, "dbias", gb, rb, N, 1e-5) == 0, "path %d", which);
        free(gi), free(gw), free(gb);
    }
    free(ri), free(rw), free(rb);
    lin_free(&l);
}

/* Backward adds: two calls give twice one call; a NULL gradient is skipped and the others are the
 * same as with all three requested. */
static void test_accumulate_and_null(struct test_state *ts)
{
    int M = 6, K = 21, N = 13;
    struct lin l;
    lin_init(&l, M, K, N, 400);
    long ni = (long)M * K, nw = (long)N * K;
    for (int which = 0; which < 2; which++) {
        float *gi = kalloc(ni), *gw = kalloc(nw), *gb = kalloc(N);
        float *gi2 = kalloc(ni), *gw2 = kalloc(nw), *gb2 = kalloc(N);
        backward(which, gi, gw, gb, &l);
        backward(which, gi2, gw2, gb2, &l);
        backward(which, gi2, gw2, gb2, &l);
        for (long i = 0; i < ni; i++) gi[i] *= 2.0f;
        for (long i = 0; i < nw; i++) gw[i] *= 2.0f;
        for (int i = 0; i < N; i++) gb[i] *= 2.0f;
        CHECK(ts, kcheck_close_f(ts, "2 x dinp", gi2, gi, ni, 1e-6) == 0);
        CHECK(ts, kcheck_close_f(ts, "2 x dweight", gw2, gw, nw, 1e-6) == 0);
        CHECK(ts, kcheck_close_f(ts, "2 x dbias", gb2, gb, N, 1e-6) == 0);
        /* One gradient at a time, from zero: equal to half of the doubled values. */
        float *one = kalloc(nw > ni ? nw : ni);
        backward(which, one, NULL, NULL, &l);
        for (long i = 0; i < ni; i++) CHECK(ts, one[i] * 2.0f == gi[i]);
        memset(one, 0, (size_t)(nw > ni ? nw : ni) * sizeof(float));
        backward(which, NULL, one, NULL, &l);
        for (long i = 0; i < nw; i++) CHECK(ts, one[i] * 2.0f == gw[i]);
        memset(one, 0, (size_t)(nw > ni ? nw : ni) * sizeof(float));
        backward(which, NULL, NULL, one, &l);
        for (int i = 0; i < N; i++) CHECK(ts, one[i] * 2.0f == gb[i]);
        backward(which, NULL, NULL, NULL, &l);
        free(one);
        free(gi), free(gw), free(gb), free(gi2), free(gw2), free(gb2);
    }
    lin_free(&l);
}

/* The blocked kernel's tiles each have one owner and a fixed inner order: bitwise the same results
 * with 1, 2 and 3 threads. (OpenBLAS's own threading is not under omp_set_num_threads' control, so
 * the BLAS path makes no such claim.) */
static void test_thread_count_independence(struct test_state *ts)
{
    int M = 45, K = 77, N = 70;
    struct lin l;
    lin_init(&l, M, K, N, 500);
    long no = (long)M * N, ni = (long)M * K, nw = (long)N * K;
    float *out[3], *gi[3], *gw[3], *gb[3];
    int saved = omp_get_max_threads();
    for (int t = 0; t < 3; t++) {
        omp_set_num_threads(t + 1);
        out[t] = kalloc(no), gi[t] = kalloc(ni), gw[t] = kalloc(nw), gb[t] = kalloc(N);
        matmul_forward_blocked_cpu(out[t], l.inp, l.w, l.b, M, K, N);
        matmul_backward_blocked_cpu(gi[t], gw[t], gb[t], l.dout, l.inp, l.w, M, K, N);
    }
    omp_set_num_threads(saved);
    for (int t = 1; t < 3; t++) {
        CHECK_MSG(ts, kbitwise_equal(out[0], out[t], no), "forward, %d threads", t + 1);
        CHECK_MSG(ts, kbitwise_equal(gi[0], gi[t], ni), "dinp, %d threads", t + 1);
        CHECK_MSG(ts, kbitwise_equal(gw[0], gw[t], nw), "dweight, %d threads", t + 1);
        CHECK_MSG(ts, kbitwise_equal(gb[0], gb[t], N), "dbias, %d threads", t + 1);
    }
    for (int t = 0; t < 3; t++) free(out[t]), free(gi[t]), free(gw[t]), free(gb[t]);
    lin_free(&l);
}

/* ---- Mixed precision ---- */

static double *rounded_double(const float *x, long n)
{
    double *d = kalloc_d(n);
    for (long i = 0; i < n; i++) d[i] = bf16_to_f32(bf16_from_f32(x[i]));
    return d;
}

static uint16_t *to_bf16(const float *x, long n)
{
    uint16_t *h = malloc((size_t)(n > 0 ? n : 1) * sizeof *h);
    cast_bf16_cpu(h, x, n);
    return h;
}

/* The rounding is round-to-nearest-even on bits, NaN stays NaN, overflow goes to infinity. */
static void test_cast_bf16(struct test_state *ts)
{
    const float in[] = {1.0f, -0.0f, INFINITY, -INFINITY, NAN, 0x1.02p0f /* exact */,
                        0x1.01p0f /* tie, even below: down */, 0x1.03p0f /* tie, odd below: up */,
                        0x1.0101p0f /* above the tie */, 0x1.fffffep127f /* overflows to inf */,
                        0x1p-130f /* a bf16 subnormal */, 0x1p-140f /* below half the least one: 0 */};
    const uint16_t want[] = {0x3f80, 0x8000, 0x7f80, 0xff80, 0, 0x3f81, 0x3f80, 0x3f82, 0x3f81, 0x7f80, 0x0008, 0};
    enum { N_CAST = sizeof in / sizeof in[0] };
    uint16_t out[N_CAST];
    cast_bf16_cpu(out, in, N_CAST);
    for (int i = 0; i < N_CAST; i++) {
        if (isnan(in[i])) CHECK_MSG(ts, isnan(bf16_to_f32(out[i])), "NaN became %#x", out[i]);
        else CHECK_MSG(ts, out[i] == want[i], "cast(%a) = %#x, want %#x", in[i], out[i], want[i]);
    }
}

/* Stochastic rounding: each result is one of the two bf16 neighbours of its input (the input itself
 * when exact), specials as the nearest rule keeps them; the fraction rounded up matches the dropped
 * bits' share (unbiased: 20000 draws, 0.3 expected, the binomial's sd 0.0032: +-0.02 is > 6 sd);
 * a seed repeats bit for bit and another seed draws differently. */
static void test_cast_bf16_sr(struct test_state *ts)
{
    const float sp[] = {1.0f, -0.0f, INFINITY, -INFINITY, 0x1.02p0f, 0x1p-130f};
    uint16_t out[6], near[6];
    cast_bf16_sr_cpu(out, sp, 6, 42);
    cast_bf16_cpu(near, sp, 6);
    for (int i = 0; i < 6; i++)
        CHECK_MSG(ts, out[i] == near[i], "sr(%a) = %#x, want %#x (exact)", sp[i], out[i], near[i]);
    const float nan = NAN;
    cast_bf16_sr_cpu(out, &nan, 1, 42);
    CHECK(ts, isnan(bf16_to_f32(out[0])));
    enum { N = 20000 };
    float *x = kalloc(N);
    uint16_t *a = malloc(N * sizeof *a), *b = malloc(N * sizeof *b);
    const float v = 1.0f + 0.3f * 0x1p-7f; /* bf16 neighbours 0x3f80 (1) and 0x3f81: 0.3 of the way up */
    for (int i = 0; i < N; i++) x[i] = i % 2 ? v : -v;
    cast_bf16_sr_cpu(a, x, N, 7);
    int up = 0, bad = 0;
    for (int i = 0; i < N; i++) {
        uint16_t mag = a[i] & 0x7fff;
        bad += (mag != 0x3f80 && mag != 0x3f81) || (a[i] >> 15) != (uint16_t)(i % 2 == 0);
        up += mag == 0x3f81;
    }
    uint32_t vb;
    memcpy(&vb, &v, sizeof vb);
    double frac = (double)up / N, want = (double)(vb & 0xffff) / 65536.0;
    CHECK_MSG(ts, bad == 0, "%d results are not a neighbour of the same sign", bad);
    CHECK_MSG(ts, fabs(frac - want) < 0.02, "rounded up %.4f of the time, want %.4f", frac, want);
    cast_bf16_sr_cpu(b, x, N, 7);
    CHECK(ts, memcmp(a, b, N * sizeof *a) == 0);
    cast_bf16_sr_cpu(b, x, N, 8);
    CHECK_MSG(ts, memcmp(a, b, N * sizeof *a) != 0, "seeds 7 and 8 drew the same");
    free(x), free(a), free(b);
}

/* The bf16 GEMMs equal the definition on the bf16-rounded operands (to fp32 summation error), and
 * differ from the unrounded product by at most the bf16 rounding bound - but do differ (a path that
 * silently ran in fp32 would fail the first check by exactly that much). */
static void test_bf16_forward(struct test_state *ts)
{
    int M = 23, K = 97, N = 41;
    struct lin l;
    lin_init(&l, M, K, N, 300);
    uint16_t *w16 = to_bf16(l.w, (long)N * K);
    double *ri = rounded_double(l.inp, (long)M * K), *rw = rounded_double(l.w, (long)N * K);
    double *want = kalloc_d((long)M * N);
    float *out = kalloc((long)M * N);
    for (long i = 0; i < (long)M * N; i++) out[i] = NAN;
    matmul_forward_bf16_cpu(out, l.inp, w16, l.b, M, K, N);
    ref_matmul(want, ri, rw, l.db, M, K, N);
    CHECK(ts, kcheck_close(ts, "matmul_forward_bf16_cpu", out, want, (long)M * N, 1e-5) == 0);
    /* |rounded product - exact| <= (2 u + u^2) sum |a||w| per element, u = 2^-9 */
    ref_matmul(l.dy, l.dinp, l.dw, l.db, M, K, N);
    double max_dev = 0;
    int within = 1;
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double absum = 0;
            for (int k = 0; k < K; k++) absum += fabs(l.dinp[(long)i * K + k] * l.dw[(long)j * K + k]);
            double dev = fabs(out[(long)i * N + j] - l.dy[(long)i * N + j]);
            within &= dev <= 0x1p-8 * 1.01 * absum + 1e-5;
            if (dev > max_dev) max_dev = dev;
        }
    CHECK_MSG(ts, within, "bf16 forward outside the rounding bound");
    CHECK_MSG(ts, max_dev > 1e-4, "bf16 forward equals fp32 (max deviation %g): no rounding happened", max_dev);
    free(w16), free(ri), free(rw), free(want), free(out);
    lin_free(&l);
}

/* Backward: dinp and dweight from the rounded dout/inp/weight, dbias from the fp32 dout; all
 * accumulate; NULL gradients are skipped. */
static void test_bf16_backward(struct test_state *ts)
{
    int M = 19, K = 45, N = 33;
    struct lin l;
    lin_init(&l, M, K, N, 400);
    uint16_t *w16 = to_bf16(l.w, (long)N * K);
    double *ri = rounded_double(l.inp, (long)M * K), *rw = rounded_double(l.w, (long)N * K);
    double *rdy = rounded_double(l.dout, (long)M * N);
    double *wi = kalloc_d((long)M * K), *ww = kalloc_d((long)N * K), *wb = kalloc_d(N);
    float *gi = kalloc((long)M * K), *gw = kalloc((long)N * K), *gb = kalloc(N);
    for (long i = 0; i < (long)M * K; i++) gi[i] = 0.5f, wi[i] = 0.5;
    for (long i = 0; i < (long)N * K; i++) gw[i] = -0.25f, ww[i] = -0.25;
    for (int j = 0; j < N; j++) gb[j] = 1.0f, wb[j] = 1.0;
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double g = rdy[(long)i * N + j];
            for (int k = 0; k < K; k++) {
                wi[(long)i * K + k] += g * rw[(long)j * K + k];
                ww[(long)j * K + k] += g * ri[(long)i * K + k];
            }
            wb[j] += l.dout[(long)i * N + j];
        }
    matmul_backward_bf16_cpu(gi, gw, gb, l.dout, l.inp, w16, M, K, N);
    CHECK(ts, kcheck_close(ts, "bf16 dinp", gi, wi, (long)M * K, 1e-5) == 0);
    CHECK(ts, kcheck_close(ts, "bf16 dweight", gw, ww, (long)N * K, 1e-5) == 0);
    CHECK(ts, kcheck_close(ts, "bf16 dbias", gb, wb, N, 1e-5) == 0);
    float *gw2 = kcopy(gw, (long)N * K);
    matmul_backward_bf16_cpu(NULL, gw2, NULL, l.dout, l.inp, NULL, M, K, N); /* weight unused without dinp */
    for (long i = 0; i < (long)N * K; i++) ww[i] = 2 * ww[i] + 0.25;
    CHECK(ts, kcheck_close(ts, "bf16 dweight twice", gw2, ww, (long)N * K, 1e-5) == 0);
    free(w16), free(ri), free(rw), free(rdy), free(wi), free(ww), free(wb), free(gi), free(gw), free(gb), free(gw2);
    lin_free(&l);
}

int main(void)
{
    struct test_state ts = {0};
    RUN(&ts, test_forward);
    RUN(&ts, test_degenerate_shapes);
    RUN(&ts, test_backward_fd);
    RUN(&ts, test_backward_large);
    RUN(&ts, test_accumulate_and_null);
    RUN(&ts, test_thread_count_independence);
    RUN(&ts, test_cast_bf16);
    RUN(&ts, test_cast_bf16_sr);
    RUN(&ts, test_bf16_forward);
    RUN(&ts, test_bf16_backward);
    return test_summary(&ts);
}
