/* Shared helpers of the kernel tests: a seeded generator, comparisons with a scale-aware tolerance,
 * and the finite-difference gradient check.
 *
 * Gradient check: the test writes a loss L = sum(w .* f(x)) with random weights w, evaluated by its
 * own double-precision reference forward over double copies of the inputs. kcheck_grad perturbs one
 * coordinate of such a copy at a time, takes the central difference (h = 1e-6, so truncation
 * error ~h^2 and rounding error ~1e-16 |L| / h stay far below the tolerance), and compares it with
 * the float analytic gradient from the kernel under test. */
#ifndef MMUPT_TESTS_KCHECK_H
#define MMUPT_TESTS_KCHECK_H

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../test.h"

/* xorshift64*: reproducible across platforms, good enough for test data. */
struct krng {
    uint64_t s;
};

static inline double krng_uniform(struct krng *r) /* in [-1, 1) */
{
    r->s ^= r->s >> 12;
    r->s ^= r->s << 25;
    r->s ^= r->s >> 27;
    uint64_t x = r->s * 2685821657736338717ull;
    return (double)(x >> 11) * (2.0 / 9007199254740992.0) - 1.0;
}

static inline void krng_fill(struct krng *r, float *x, long n, double scale)
{
    for (long i = 0; i < n; i++) x[i] = (float)(scale * krng_uniform(r));
}

static inline float *kalloc(long n) /* zeroed; tests own small sizes, so no overflow concerns */
{
    float *p = calloc((size_t)(n > 0 ? n : 1), sizeof(float));
    if (!p) abort();
    return p;
}

static inline double *kalloc_d(long n)
{
    double *p = calloc((size_t)(n > 0 ? n : 1), sizeof(double));
    if (!p) abort();
    return p;
}

static inline double *kto_double(const float *x, long n)
{
    double *d = kalloc_d(n);
    for (long i = 0; i < n; i++) d[i] = x[i];
    return d;
}

static inline float *kcopy(const float *x, long n)
{
    float *c = kalloc(n);
    memcpy(c, x, (size_t)n * sizeof(float));
    return c;
}

static inline double krms(const double *x, long n)
{
    double s = 0.0;
    for (long i = 0; i < n; i++) s += x[i] * x[i];
    return n > 0 ? sqrt(s / n) : 0.0;
}

/* |got - want| <= rtol * (|want| + rms(want)): relative for typical values, and for values that
 * cancel to near zero relative to the tensor's scale (where float rounding lives). Reports the first
 * few offenders; returns the number of mismatches. */
static inline int kcheck_close(struct test_state *ts, const char *what, const float *got, const double *want, long n,
                               double rtol)
{
    double scale = krms(want, n);
    int bad = 0;
    for (long i = 0; i < n; i++) {
        double tol = rtol * (fabs(want[i]) + scale);
        if (!(fabs(got[i] - want[i]) <= tol)) {
            if (bad < 5) CHECK_MSG(ts, 0, "%s[%ld]: got %.9g want %.9g (tol %.3g)", what, i, got[i], want[i], tol);
            bad++;
        }
    }
    if (bad >= 5) CHECK_MSG(ts, bad == 0, "%s: %d mismatches of %ld", what, bad, n);
    return bad;
}

/* Same with a float reference, for comparing two float results (two paths, two calls). */
static inline int kcheck_close_f(struct test_state *ts, const char *what, const float *got, const float *want, long n,
                                 double rtol)
{
    double *w = kto_double(want, n);
    int bad = kcheck_close(ts, what, got, w, n, rtol);
    free(w);
    return bad;
}

static inline int kbitwise_equal(const float *a, const float *b, long n)
{
    return memcmp(a, b, (size_t)n * sizeof(float)) == 0;
}

/* Central-difference check of analytic[n] against d loss / d x[i], x being a double input the loss
 * reads through ctx. All coordinates when n <= max_points, else max_points of them spread over the
 * whole tensor (one per stride, at a random offset), so every region is visited. Tolerance:
 * rtol * (|fd| + rms of the sampled fd values). */
static inline int kcheck_grad(struct test_state *ts, const char *what, const float *analytic, double *x, long n,
                              double (*loss)(void *ctx), void *ctx, long max_points, double rtol)
{
    const double h = 1e-6;
    long npts = n <= max_points ? n : max_points;
    long *idx = malloc((size_t)(npts > 0 ? npts : 1) * sizeof(long));
    double *fd = kalloc_d(npts);
    struct krng r = {0x9E3779B97F4A7C15ull ^ (uint64_t)n};
    for (long p = 0; p < npts; p++) {
        long i = p;
        if (npts < n) {
            long lo = p * n / npts, hi = (p + 1) * n / npts;
            i = lo + (long)((krng_uniform(&r) + 1.0) * 0.5 * (hi - lo));
            if (i >= hi) i = hi - 1;
        }
        idx[p] = i;
        double x0 = x[i];
        x[i] = x0 + h;
        double lp = loss(ctx);
        x[i] = x0 - h;
        double lm = loss(ctx);
        x[i] = x0;
        fd[p] = (lp - lm) / (2.0 * h);
    }
    double scale = krms(fd, npts);
    int bad = 0;
    for (long p = 0; p < npts; p++) {
        double a = analytic[idx[p]], tol = rtol * (fabs(fd[p]) + scale);
        if (!(fabs(a - fd[p]) <= tol)) {
            if (bad < 5) CHECK_MSG(ts, 0, "%s: d/dx[%ld]: analytic %.9g, finite difference %.9g", what, idx[p], a, fd[p]);
            bad++;
        }
    }
    if (bad >= 5) CHECK_MSG(ts, bad == 0, "%s: %d of %ld gradient entries wrong", what, bad, npts);
    /* A gradient that is zero everywhere would pass trivially; every test's loss depends on every input. */
    CHECK_MSG(ts, scale > 0.0, "%s: finite differences are all zero", what);
    free(idx);
    free(fd);
    return bad;
}

/* sum(w .* y) in double. */
static inline double kdot(const double *w, const double *y, long n)
{
    double s = 0.0;
    for (long i = 0; i < n; i++) s += w[i] * y[i];
    return s;
}

#endif
