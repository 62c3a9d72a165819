/* RMSNorm CPU reference: checked against values computed here independently in long double and
 * against the defining properties (unit RMS with unit weights, scale invariance). Parity with
 * transformers comes with the model fixtures. */
#include <math.h>
#include <stdlib.h>

#include "../test.h"
#include "mmupt/kernels.h"

static float frand(unsigned *s)
{
    *s = *s * 1664525u + 1013904223u;
    return (float)((*s >> 8) * (1.0 / 16777216.0) * 2.0 - 1.0);
}

static void test_against_long_double(struct test_state *ts)
{
    enum { R = 5, D = 37 };
    float x[R * D], w[D], out[R * D], rstd[R];
    unsigned s = 7;
    for (int i = 0; i < R * D; i++) x[i] = 3.0f * frand(&s);
    for (int i = 0; i < D; i++) w[i] = 1.0f + 0.5f * frand(&s);
    rmsnorm_forward_cpu(out, rstd, x, w, R, D, 1e-6f);
    for (int r = 0; r < R; r++) {
        long double ss = 0;
        for (int i = 0; i < D; i++) ss += (long double)x[r * D + i] * x[r * D + i];
        long double inv = 1.0L / sqrtl(ss / D + 1e-6L);
        CHECK(ts, fabsl(rstd[r] - inv) <= 1e-6L * inv);
        for (int i = 0; i < D; i++) {
            long double want = x[r * D + i] * inv * w[i];
            CHECK_MSG(ts, fabsl(out[r * D + i] - want) <= 1e-5L * (1 + fabsl(want)), "r%d i%d", r, i);
        }
    }
}

static void test_properties(struct test_state *ts)
{
    enum { D = 64 };
    float x[D], y[D], w[D], out1[D], out2[D];
    unsigned s = 11;
    for (int i = 0; i < D; i++) { x[i] = frand(&s); y[i] = 1000.0f * x[i]; w[i] = 1.0f; }
    rmsnorm_forward_cpu(out1, NULL, x, w, 1, D, 0.0f);
    rmsnorm_forward_cpu(out2, NULL, y, w, 1, D, 0.0f);
    double ms = 0;
    for (int i = 0; i < D; i++) ms += (double)out1[i] * out1[i];
    CHECK(ts, fabs(ms / D - 1.0) < 1e-5);
    for (int i = 0; i < D; i++) CHECK(ts, fabsf(out1[i] - out2[i]) < 1e-5f);
    /* out may alias x. */
    rmsnorm_forward_cpu(x, NULL, x, w, 1, D, 0.0f);
    for (int i = 0; i < D; i++) CHECK(ts, x[i] == out1[i]);
}

int main(void)
{
    struct test_state ts = {0};
    RUN(&ts, test_against_long_double);
    RUN(&ts, test_properties);
    return test_summary(&ts);
}
