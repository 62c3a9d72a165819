/* RMSNorm backward and LayerNorm forward/backward against double-precision references; gradients by
 * finite differences; accumulation, NULL gradients, thread-count independence. */
#include <omp.h>

#include "kcheck.h"
#include "mmupt/kernels.h"

struct norm {
    int rows, dim, layer; /* layer: LayerNorm, else RMSNorm */
    float eps;
    float *x, *w, *b, *dout;
    double *dx, *dw, *db, *ddout, *y;
};

static void norm_init(struct norm *n, int rows, int dim, int layer, double offset, uint64_t seed)
{
    struct krng r = {seed};
    long nx = (long)rows * dim;
    n->rows = rows, n->dim = dim, n->layer = layer, n->eps = 1e-6f;
    n->x = kalloc(nx), n->w = kalloc(dim), n->b = kalloc(dim), n->dout = kalloc(nx);
    krng_fill(&r, n->x, nx, 2.0);
    for (long i = 0; i < nx; i++) n->x[i] += (float)offset;
    for (int i = 0; i < dim; i++) n->w[i] = (float)(1.0 + 0.5 * krng_uniform(&r));
    krng_fill(&r, n->b, dim, 1.0);
    krng_fill(&r, n->dout, nx, 1.0);
    n->dx = kto_double(n->x, nx), n->dw = kto_double(n->w, dim), n->db = kto_double(n->b, dim);
    n->ddout = kto_double(n->dout, nx), n->y = kalloc_d(nx);
}

static void norm_free(struct norm *n)
{
    free(n->x), free(n->w), free(n->b), free(n->dout);
    free(n->dx), free(n->dw), free(n->db), free(n->ddout), free(n->y);
}

/* The definitions, in double; mean/rstd out if non-NULL. */
static void ref_norm(const struct norm *n, double *mean, double *rstd)
{
    for (int r = 0; r < n->rows; r++) {
        const double *x = n->dx + (long)r * n->dim;
        double mu = 0.0, var = 0.0;
        if (n->layer) {
            for (int i = 0; i < n->dim; i++) mu += x[i];
            mu /= n->dim;
        }
        for (int i = 0; i < n->dim; i++) var += (x[i] - mu) * (x[i] - mu);
        double s = 1.0 / sqrt(var / n->dim + n->eps);
        for (int i = 0; i < n->dim; i++)
            n->y[(long)r * n->dim + i] = (x[i] - mu) * s * n->dw[i] + (n->layer ? n->db[i] : 0.0);
        if (mean) mean[r] = mu;
        if (rstd) rstd[r] = s;
    }
}

static double norm_loss(void *ctx)
{
    struct norm *n = ctx;
    ref_norm(n, NULL, NULL);
    return kdot(n->ddout, n->y, (long)n->rows * n->dim);
}

/* Forward (filling mean/rstd) then backward with the kernels under test. */
static void run_kernels(const struct norm *n, float *out, float *mean, float *rstd, float *gx, float *gw, float *gb)
{
    if (n->layer) {
        layernorm_forward_cpu(out, mean, rstd, n->x, n->w, n->b, n->rows, n->dim, n->eps);
        layernorm_backward_cpu(gx, gw, gb, n->dout, n->x, n->w, mean, rstd, n->rows, n->dim);
    } else {
        rmsnorm_forward_cpu(out, rstd, n->x, n->w, n->rows, n->dim, n->eps);
        rmsnorm_backward_cpu(gx, gw, n->dout, n->x, n->w, rstd, n->rows, n->dim);
    }
}

static void test_layernorm_forward(struct test_state *ts)
{
    /* offset 300: a mean far larger than the spread, where E[x^2] - mean^2 would lose the variance. */
    static const int dims[] = {37, 64, 80, 1280};
    static const double offsets[] = {0.0, 300.0};
    for (int d = 0; d < 4; d++)
        for (int o = 0; o < 2; o++) {
            struct norm n;
            norm_init(&n, 5, dims[d], 1, offsets[o], 10 + d);
            long nx = 5L * dims[d];
            double mean[5], rstd[5];
            ref_norm(&n, mean, rstd);
            float *out = kalloc(nx), fm[5], fr[5];
            layernorm_forward_cpu(out, fm, fr, n.x, n.w, n.b, 5, dims[d], n.eps);
            CHECK_MSG(ts, kcheck_close(ts, "layernorm out", out, n.y, nx, 1e-5) == 0, "dim %d offset %g", dims[d],
                      offsets[o]);
            for (int r = 0; r < 5; r++) {
                CHECK(ts, fabs(fm[r] - mean[r]) <= 1e-6 * (fabs(mean[r]) + 1));
                CHECK(ts, fabs(fr[r] - rstd[r]) <= 1e-6 * rstd[r]);
            }
            /* out may alias x; mean and rstd may be NULL. */
            float *x = kcopy(n.x, nx);
            layernorm_forward_cpu(x, NULL, NULL, x, n.w, n.b, 5, dims[d], n.eps);
            CHECK(ts, kbitwise_equal(x, out, nx));
            free(x), free(out);
            norm_free(&n);
        }
}

/* A constant row has zero variance: eps alone keeps rstd finite (1/sqrt(eps)), and the output is the
 * bias. */
static void test_layernorm_constant_row(struct test_state *ts)
{
    enum { D = 40 };
    float x[D], w[D], b[D], out[D], mean, rstd;
    for (int i = 0; i < D; i++) x[i] = 2.5f, w[i] = 1.0f + 0.01f * i, b[i] = 0.1f * i - 1.0f;
    layernorm_forward_cpu(out, &mean, &rstd, x, w, b, 1, D, 1e-6f);
    CHECK(ts, mean == 2.5f && fabsf(rstd - 1000.0f) < 1e-2f);
    for (int i = 0; i < D; i++) CHECK(ts, out[i] == b[i]);
}

static void test_backward_fd(struct test_state *ts)
{
    static const int dims[] = {37, 64, 80};
    for (int layer = 0; layer < 2; layer++)
        for (int d = 0; d < 3; d++) {
            struct norm n;
            int rows = 5, dim = dims[d];
            norm_init(&n, rows, dim, layer, layer ? 3.0 : 0.0, 20 + d);
            long nx = (long)rows * dim;
            float *out = kalloc(nx), mean[5], rstd[5], *gx = kalloc(nx), *gw = kalloc(dim), *gb = kalloc(dim);
            run_kernels(&n, out, mean, rstd, gx, gw, gb);
            const char *name = layer ? "layernorm" : "rmsnorm";
            CHECK_MSG(ts, kcheck_grad(ts, "dx", gx, n.dx, nx, norm_loss, &n, 4000, 1e-4) == 0, "%s dim %d", name, dim);
            CHECK_MSG(ts, kcheck_grad(ts, "dweight", gw, n.dw, dim, norm_loss, &n, 4000, 1e-4) == 0, "%s dim %d", name,
                      dim);
            if (layer)
                CHECK_MSG(ts, kcheck_grad(ts, "dbias", gb, n.db, dim, norm_loss, &n, 4000, 1e-4) == 0, "dim %d", dim);
            free(out), free(gx), free(gw), free(gb);
            norm_free(&n);
        }
}

static void test_accumulate_and_null(struct test_state *ts)
{
    for (int layer = 0; layer < 2; layer++) {
        struct norm n;
        int rows = 4, dim = 70;
        norm_init(&n, rows, dim, layer, 0.5, 30);
        long nx = (long)rows * dim;
        float *out = kalloc(nx), mean[4], rstd[4];
        float *gx = kalloc(nx), *gw = kalloc(dim), *gb = kalloc(dim);
        float *gx2 = kalloc(nx), *gw2 = kalloc(dim), *gb2 = kalloc(dim);
        run_kernels(&n, out, mean, rstd, gx, gw, gb);
        run_kernels(&n, out, mean, rstd, gx2, gw2, gb2);
        run_kernels(&n, out, mean, rstd, gx2, gw2, gb2);
        for (long i = 0; i < nx; i++) gx[i] *= 2.0f;
        for (int i = 0; i < dim; i++) gw[i] *= 2.0f, gb[i] *= 2.0f;
        CHECK(ts, kcheck_close_f(ts, "2 x dx", gx2, gx, nx, 1e-6) == 0);
        CHECK(ts, kcheck_close_f(ts, "2 x dweight", gw2, gw, dim, 1e-6) == 0);
        if (layer) CHECK(ts, kcheck_close_f(ts, "2 x dbias", gb2, gb, dim, 1e-6) == 0);
        /* Each gradient alone, the others NULL: the same values as when all are requested. */
        float *one = kalloc(nx);
        run_kernels(&n, out, mean, rstd, one, NULL, NULL);
        for (long i = 0; i < nx; i++) CHECK(ts, one[i] * 2.0f == gx[i]);
        memset(one, 0, (size_t)nx * sizeof(float));
        run_kernels(&n, out, mean, rstd, NULL, one, NULL);
        for (int i = 0; i < dim; i++) CHECK(ts, one[i] * 2.0f == gw[i]);
        if (layer) {
            memset(one, 0, (size_t)nx * sizeof(float));
            run_kernels(&n, out, mean, rstd, NULL, NULL, one);
            for (int i = 0; i < dim; i++) CHECK(ts, one[i] * 2.0f == gb[i]);
        }
        run_kernels(&n, out, mean, rstd, NULL, NULL, NULL);
        free(one), free(out), free(gx), free(gw), free(gb), free(gx2), free(gw2), free(gb2);
        norm_free(&n);
    }
}

static void test_thread_count_independence(struct test_state *ts)
{
    int rows = 33, dim = 200;
    long nx = (long)rows * dim;
    int saved = omp_get_max_threads();
    for (int layer = 0; layer < 2; layer++) {
        struct norm n;
        norm_init(&n, rows, dim, layer, 0.0, 40);
        float *out[3], *gx[3], *gw[3], *gb[3], mean[33], rstd[33];
        for (int t = 0; t < 3; t++) {
            omp_set_num_threads(t + 1);
            out[t] = kalloc(nx), gx[t] = kalloc(nx), gw[t] = kalloc(dim), gb[t] = kalloc(dim);
            run_kernels(&n, out[t], mean, rstd, gx[t], gw[t], gb[t]);
        }
        omp_set_num_threads(saved);
        for (int t = 1; t < 3; t++) {
            CHECK(ts, kbitwise_equal(out[0], out[t], nx));
            CHECK(ts, kbitwise_equal(gx[0], gx[t], nx));
            CHECK(ts, kbitwise_equal(gw[0], gw[t], dim));
            CHECK(ts, kbitwise_equal(gb[0], gb[t], dim));
        }
        for (int t = 0; t < 3; t++) free(out[t]), free(gx[t]), free(gw[t]), free(gb[t]);
        norm_free(&n);
    }
}

int main(void)
{
    struct test_state ts = {0};
    RUN(&ts, test_layernorm_forward);
    RUN(&ts, test_layernorm_constant_row);
    RUN(&ts, test_backward_fd);
    RUN(&ts, test_accumulate_and_null);
    RUN(&ts, test_thread_count_independence);
    return test_summary(&ts);
}
