/* RoPE: forward against a double-precision reference on real 1-D and M-RoPE tables (head_dim 16 and
 * 80), backward by finite differences on arbitrary tables (the transpose must hold for any table),
 * and backward(forward(x)) = x for real tables, whose map is a rotation. */
#include <omp.h>

#include "kcheck.h"
#include "mmupt/kernels.h"

/* cos/sin tables [rows, hd] the way the model builds them: inv_freq_i = theta^(-2i/hd), each half
 * repeating the same angles. mrope: the frequencies are split into three sections, each taking its
 * angle from a different position axis (here: pos, 2*pos + 1, pos / 2), as M-RoPE does. */
static void make_tables(float *c, float *s, int rows, int hd, int mrope)
{
    int half = hd / 2;
    for (int r = 0; r < rows; r++)
        for (int i = 0; i < half; i++) {
            int axis = mrope ? (i * 3) / half : 0;
            double pos = axis == 0 ? r : axis == 1 ? 2.0 * r + 1.0 : r / 2;
            double ang = pos * pow(1e6, -2.0 * i / hd);
            c[(long)r * hd + i] = c[(long)r * hd + i + half] = (float)cos(ang);
            s[(long)r * hd + i] = s[(long)r * hd + i + half] = (float)sin(ang);
        }
}

struct rope {
    int rows, heads, hd;
    float *c, *s;
    double *x, *w, *y;
};

/* The definition x' = x*cos + rotate_half(x)*sin, in double. */
static void ref_rope(const struct rope *p)
{
    int half = p->hd / 2;
    for (int r = 0; r < p->rows; r++)
        for (int h = 0; h < p->heads; h++) {
            const double *x = p->x + ((long)r * p->heads + h) * p->hd;
            double *y = p->y + ((long)r * p->heads + h) * p->hd;
            const float *c = p->c + (long)r * p->hd, *s = p->s + (long)r * p->hd;
            for (int i = 0; i < p->hd; i++) {
                double rot = i < half ? -x[i + half] : x[i - half];
                y[i] = x[i] * c[i] + rot * s[i];
            }
        }
}

static double rope_loss(void *ctx)
{
    struct rope *p = ctx;
    ref_rope(p);
    return kdot(p->w, p->y, (long)p->rows * p->heads * p->hd);
}

static void test_forward(struct test_state *ts)
{
    static const int hds[] = {16, 80, 128};
    for (int k = 0; k < 3; k++)
        for (int mrope = 0; mrope < 2; mrope++) {
            int rows = 37, heads = 3, hd = hds[k];
            long n = (long)rows * heads * hd;
            struct krng r = {50 + k};
            struct rope p = {rows, heads, hd, kalloc((long)rows * hd), kalloc((long)rows * hd), NULL, NULL,
                             kalloc_d(n)};
            make_tables(p.c, p.s, rows, hd, mrope);
            float *x = kalloc(n);
            krng_fill(&r, x, n, 1.0);
            p.x = kto_double(x, n);
            ref_rope(&p);
            rope_forward_cpu(x, p.c, p.s, rows, heads, hd);
            CHECK_MSG(ts, kcheck_close(ts, "rope", x, p.y, n, 1e-6) == 0, "hd %d mrope %d", hd, mrope);
            /* A rotation: the backward of the forward gives the input back. */
            rope_backward_cpu(x, p.c, p.s, rows, heads, hd);
            CHECK_MSG(ts, kcheck_close(ts, "rope^T rope x", x, p.x, n, 1e-6) == 0, "hd %d mrope %d", hd, mrope);
            free(x), free(p.c), free(p.s), free(p.x), free(p.y);
        }
}

/* Arbitrary tables (halves differ): the forward must use each dim's own cos/sin entry. */
static void test_forward_any_table(struct test_state *ts)
{
    int rows = 5, heads = 2, hd = 16;
    long n = (long)rows * heads * hd;
    struct krng r = {55};
    struct rope p = {rows, heads, hd, kalloc((long)rows * hd), kalloc((long)rows * hd), NULL, NULL, kalloc_d(n)};
    krng_fill(&r, p.c, (long)rows * hd, 1.0);
    krng_fill(&r, p.s, (long)rows * hd, 1.0);
    float *x = kalloc(n);
    krng_fill(&r, x, n, 1.0);
    p.x = kto_double(x, n);
    ref_rope(&p);
    rope_forward_cpu(x, p.c, p.s, rows, heads, hd);
    CHECK(ts, kcheck_close(ts, "rope", x, p.y, n, 1e-6) == 0);
    free(x), free(p.c), free(p.s), free(p.x), free(p.y);
}

static void test_backward_fd(struct test_state *ts)
{
    static const int hds[] = {16, 80};
    for (int k = 0; k < 2; k++) {
        int rows = 7, heads = 2, hd = hds[k];
        long n = (long)rows * heads * hd;
        struct krng r = {60 + k};
        struct rope p = {rows, heads, hd, kalloc((long)rows * hd), kalloc((long)rows * hd), NULL, NULL, kalloc_d(n)};
        /* Arbitrary tables (halves differ, cos^2 + sin^2 != 1): the backward is the transpose of the
         * forward's Jacobian for any table, not only for rotations. */
        krng_fill(&r, p.c, (long)rows * hd, 1.0);
        krng_fill(&r, p.s, (long)rows * hd, 1.0);
        float *x = kalloc(n), *g = kalloc(n);
        krng_fill(&r, x, n, 1.0);
        krng_fill(&r, g, n, 1.0);
        p.x = kto_double(x, n);
        p.w = kto_double(g, n);
        rope_backward_cpu(g, p.c, p.s, rows, heads, hd); /* g = J^T w = dL/dx */
        CHECK_MSG(ts, kcheck_grad(ts, "rope dx", g, p.x, n, rope_loss, &p, 4000, 1e-4) == 0, "hd %d", hd);
        free(x), free(g), free(p.c), free(p.s), free(p.x), free(p.w), free(p.y);
    }
}

static void test_thread_count_independence(struct test_state *ts)
{
    int rows = 29, heads = 4, hd = 80;
    long n = (long)rows * heads * hd;
    float *c = kalloc((long)rows * hd), *s = kalloc((long)rows * hd), *x[3];
    make_tables(c, s, rows, hd, 1);
    int saved = omp_get_max_threads();
    for (int t = 0; t < 3; t++) {
        struct krng r = {70};
        x[t] = kalloc(n);
        krng_fill(&r, x[t], n, 1.0);
        omp_set_num_threads(t + 1);
        rope_forward_cpu(x[t], c, s, rows, heads, hd);
        rope_backward_cpu(x[t], c, s, rows, heads, hd);
        rope_forward_cpu(x[t], c, s, rows, heads, hd);
    }
    omp_set_num_threads(saved);
    CHECK(ts, kbitwise_equal(x[0], x[1], n) && kbitwise_equal(x[0], x[2], n));
    for (int t = 0; t < 3; t++) free(x[t]);
    free(c), free(s);
}

int main(void)
{
    struct test_state ts = {0};
    RUN(&ts, test_forward);
    RUN(&ts, test_forward_any_table);
    RUN(&ts, test_backward_fd);
    RUN(&ts, test_thread_count_independence);
    return test_summary(&ts);
}
