/* Packed-segment attention: forward and probabilities against a double-precision reference
 * (segments of lengths 1, 7, 64 and 0; head_dim 16 and 80; GQA 4:2, 4:1 and none; causal and not),
 * gradients by finite differences, accumulation, NULL gradients, and bitwise independence from the
 * thread count. The fused ("flash") reference: on inputs already bf16 (so its rounding of q, k, v and
 * dout is exact) the same op - out and each row's log-sum-exp against the double reference, its
 * backward against attention_backward_cpu's gradients, accumulating. cuDNN's op (attention_sdpa): the
 * flash reference's results rounded to bf16, stats in its runs' order, and add_bf16. */
#include <omp.h>

#include "mmupt/bf16.h"

#include "kcheck.h"
#include "mmupt/kernels.h"

struct attn {
    int T, n_seg, heads, kv, hd, causal;
    const int *seg;
    float *q, *k, *v, *dout;
    double *dq, *dk, *dv, *ddout, *y, *p; /* double copies; y: output, p: probabilities */
};

static void attn_init(struct attn *a, const int *seg, int n_seg, int heads, int kv, int hd, int causal, uint64_t seed)
{
    struct krng r = {seed};
    a->seg = seg, a->n_seg = n_seg, a->T = seg[n_seg], a->heads = heads, a->kv = kv, a->hd = hd, a->causal = causal;
    long nq = (long)a->T * heads * hd, nk = (long)a->T * kv * hd;
    a->q = kalloc(nq), a->k = kalloc(nk), a->v = kalloc(nk), a->dout = kalloc(nq);
    /* Scores of order 1-3: softmax rows neither uniform nor one-hot. */
    krng_fill(&r, a->q, nq, 1.5);
    krng_fill(&r, a->k, nk, 1.5);
    krng_fill(&r, a->v, nk, 1.0);
    krng_fill(&r, a->dout, nq, 1.0);
    a->dq = kto_double(a->q, nq), a->dk = kto_double(a->k, nk), a->dv = kto_double(a->v, nk);
    a->ddout = kto_double(a->dout, nq), a->y = kalloc_d(nq);
    a->p = kalloc_d((long)attention_probs_size(seg, n_seg, heads));
}

static void attn_free(struct attn *a)
{
    free(a->q), free(a->k), free(a->v), free(a->dout);
    free(a->dq), free(a->dk), free(a->dv), free(a->ddout), free(a->y), free(a->p);
}

/* The definition, in double: per segment and head, softmax(q k^T / sqrt(hd)) over the allowed keys
 * (own segment; j <= i when causal), times v. Fills y and p (same layout as the kernel's probs). */
static void ref_attention(struct attn *a)
{
    int hd = a->hd, group = a->heads / a->kv;
    long off = 0;
    double scale = 1.0 / sqrt((double)hd);
    for (int s = 0; s < a->n_seg; s++) {
        int t0 = a->seg[s], len = a->seg[s + 1] - t0;
        for (int h = 0; h < a->heads; h++) {
            int kvh = h / group;
            for (int i = 0; i < len; i++) {
                const double *q = a->dq + ((long)(t0 + i) * a->heads + h) * hd;
                double *p = a->p + off + (long)i * len, mx = -INFINITY, sum = 0.0;
                for (int j = 0; j < len; j++) {
                    p[j] = 0.0;
                    if (a->causal && j > i) continue;
                    const double *k = a->dk + ((long)(t0 + j) * a->kv + kvh) * hd;
                    for (int d = 0; d < hd; d++) p[j] += q[d] * k[d];
                    p[j] *= scale;
                    if (p[j] > mx) mx = p[j];
                }
                for (int j = 0; j < len; j++)
                    if (!(a->causal && j > i)) sum += (p[j] = exp(p[j] - mx));
                for (int j = 0; j < len; j++) p[j] /= sum;
                double *y = a->y + ((long)(t0 + i) * a->heads + h) * hd;
                for (int d = 0; d < hd; d++) {
                    y[d] = 0.0;
                    for (int j = 0; j < len; j++) y[d] += p[j] * a->dv[((long)(t0 + j) * a->kv + kvh) * hd + d];
                }
            }
            off += (long)len * len;
        }
    }
}

static double attn_loss(void *ctx)
{
    struct attn *a = ctx;
    ref_attention(a);
    return kdot(a->ddout, a->y, (long)a->T * a->heads * a->hd);
}

static const int seg_mixed[] = {0, 1, 8, 72, 72}; /* lengths 1, 7, 64, 0 */

static void test_forward(struct test_state *ts)
{
    static const int hds[] = {16, 80}, kvs[] = {4, 2, 1};
    for (int d = 0; d < 2; d++)
        for (int g = 0; g < 3; g++)
            for (int causal = 0; causal < 2; causal++) {
                struct attn a;
                attn_init(&a, seg_mixed, 4, 4, kvs[g], hds[d], causal, 1000 + d * 10 + g * 2 + causal);
                long nq = (long)a.T * a.heads * a.hd, np = (long)attention_probs_size(a.seg, 4, 4);
                CHECK(ts, np == 4L * (1 + 49 + 64 * 64));
                float *out = kalloc(nq), *probs = kalloc(np);
                for (long i = 0; i < np; i++) probs[i] = NAN; /* every entry must be written */
                ref_attention(&a);
                attention_forward_cpu(out, probs, a.q, a.k, a.v, a.seg, 4, 4, kvs[g], hds[d], causal);
                CHECK_MSG(ts, kcheck_close(ts, "attention out", out, a.y, nq, 1e-5) == 0, "hd %d kv %d causal %d",
                          hds[d], kvs[g], causal);
                CHECK_MSG(ts, kcheck_close(ts, "attention probs", probs, a.p, np, 1e-5) == 0,
                          "hd %d kv %d causal %d", hds[d], kvs[g], causal);
                /* Masked entries are exactly zero (not merely small). */
                for (long i = 0; i < np; i++)
                    if (a.p[i] == 0.0) CHECK(ts, probs[i] == 0.0f);
                free(out), free(probs);
                attn_free(&a);
            }
}

/* Runs the kernel forward and then its backward into the given gradients. */
static void run_kernels(const struct attn *a, float *out, float *probs, float *gq, float *gk, float *gv)
{
    attention_forward_cpu(out, probs, a->q, a->k, a->v, a->seg, a->n_seg, a->heads, a->kv, a->hd, a->causal);
    attention_backward_cpu(gq, gk, gv, a->dout, probs, a->q, a->k, a->v, a->seg, a->n_seg, a->heads, a->kv, a->hd,
                           a->causal);
}

static void fd_case(struct test_state *ts, const int *seg, int n_seg, int heads, int kv, int hd, int causal,
                    long max_points)
{
    struct attn a;
    attn_init(&a, seg, n_seg, heads, kv, hd, causal, 2000 + kv * 7 + hd + causal);
    long nq = (long)a.T * heads * hd, nk = (long)a.T * kv * hd;
    float *out = kalloc(nq), *probs = kalloc((long)attention_probs_size(seg, n_seg, heads));
    float *gq = kalloc(nq), *gk = kalloc(nk), *gv = kalloc(nk);
    run_kernels(&a, out, probs, gq, gk, gv);
    CHECK_MSG(ts, kcheck_grad(ts, "dq", gq, a.dq, nq, attn_loss, &a, max_points, 1e-4) == 0, "kv %d hd %d causal %d",
              kv, hd, causal);
    CHECK_MSG(ts, kcheck_grad(ts, "dk", gk, a.dk, nk, attn_loss, &a, max_points, 1e-4) == 0, "kv %d hd %d causal %d",
              kv, hd, causal);
    CHECK_MSG(ts, kcheck_grad(ts, "dv", gv, a.dv, nk, attn_loss, &a, max_points, 1e-4) == 0, "kv %d hd %d causal %d",
              kv, hd, causal);
    free(out), free(probs), free(gq), free(gk), free(gv);
    attn_free(&a);
}

static void test_backward_fd_small(struct test_state *ts)
{
    /* Every coordinate checked: lengths 1, 7, 0 and 12. */
    static const int seg[] = {0, 1, 8, 8, 20};
    static const int kvs[] = {4, 2, 1};
    for (int g = 0; g < 3; g++)
        for (int causal = 0; causal < 2; causal++) fd_case(ts, seg, 4, 4, kvs[g], 16, causal, 100000);
}

static void test_backward_fd_long_segment(struct test_state *ts)
{
    /* The 64-long segment and head_dim 80, on a sample of coordinates spread over every tensor (each
     * finite difference reruns the whole reference, so all coordinates would take minutes). */
    fd_case(ts, seg_mixed, 4, 2, 1, 80, 1, 120);
    fd_case(ts, seg_mixed, 4, 4, 2, 16, 0, 150);
}

static void test_accumulate_and_null(struct test_state *ts)
{
    static const int seg[] = {0, 5, 5, 14};
    struct attn a;
    attn_init(&a, seg, 3, 4, 2, 16, 1, 3000);
    long nq = (long)a.T * 4 * 16, nk = (long)a.T * 2 * 16;
    float *out = kalloc(nq), *probs = kalloc((long)attention_probs_size(seg, 3, 4));
    float *g1[3] = {kalloc(nq), kalloc(nk), kalloc(nk)}, *g2[3] = {kalloc(nq), kalloc(nk), kalloc(nk)};
    long n[3] = {nq, nk, nk};
    run_kernels(&a, out, probs, g1[0], g1[1], g1[2]);
    run_kernels(&a, out, probs, g2[0], g2[1], g2[2]);
    run_kernels(&a, out, probs, g2[0], g2[1], g2[2]);
    for (int t = 0; t < 3; t++) {
        for (long i = 0; i < n[t]; i++) g1[t][i] *= 2.0f;
        CHECK_MSG(ts, kcheck_close_f(ts, "2 x grad", g2[t], g1[t], n[t], 1e-6) == 0, "gradient %d", t);
    }
    /* One gradient at a time: each equals its share of the full call. */
    for (int t = 0; t < 3; t++) {
        float *one = kalloc(n[t]);
        run_kernels(&a, out, probs, t == 0 ? one : NULL, t == 1 ? one : NULL, t == 2 ? one : NULL);
        for (long i = 0; i < n[t]; i++) one[i] *= 2.0f;
        CHECK_MSG(ts, kbitwise_equal(one, g1[t], n[t]), "gradient %d alone", t);
        free(one);
    }
    run_kernels(&a, out, probs, NULL, NULL, NULL);
    for (int t = 0; t < 3; t++) free(g1[t]), free(g2[t]);
    free(out), free(probs);
    attn_free(&a);
}

static void test_thread_count_independence(struct test_state *ts)
{
    static const int seg[] = {0, 3, 40, 41, 41, 90};
    for (int causal = 0; causal < 2; causal++) {
        struct attn a;
        attn_init(&a, seg, 5, 4, 2, 16, causal, 4000);
        long nq = (long)a.T * 4 * 16, nk = (long)a.T * 2 * 16, np = (long)attention_probs_size(seg, 5, 4);
        float *out[3], *probs[3], *g[3][3];
        int saved = omp_get_max_threads();
        for (int t = 0; t < 3; t++) {
            omp_set_num_threads(t + 1);
            out[t] = kalloc(nq), probs[t] = kalloc(np), g[t][0] = kalloc(nq), g[t][1] = kalloc(nk), g[t][2] = kalloc(nk);
            run_kernels(&a, out[t], probs[t], g[t][0], g[t][1], g[t][2]);
        }
        omp_set_num_threads(saved);
        for (int t = 1; t < 3; t++) {
            CHECK_MSG(ts, kbitwise_equal(out[0], out[t], nq), "out, %d threads", t + 1);
            CHECK_MSG(ts, kbitwise_equal(probs[0], probs[t], np), "probs, %d threads", t + 1);
            CHECK_MSG(ts, kbitwise_equal(g[0][0], g[t][0], nq), "dq, %d threads", t + 1);
            CHECK_MSG(ts, kbitwise_equal(g[0][1], g[t][1], nk), "dk, %d threads", t + 1);
            CHECK_MSG(ts, kbitwise_equal(g[0][2], g[t][2], nk), "dv, %d threads", t + 1);
        }
        for (int t = 0; t < 3; t++) free(out[t]), free(probs[t]), free(g[t][0]), free(g[t][1]), free(g[t][2]);
        attn_free(&a);
    }
}

/* Causality and segment isolation, checked directly: changing the last key/value of a segment moves
 * only that segment's outputs, and under causal masking only its last row. */
static void test_masking(struct test_state *ts)
{
    static const int seg[] = {0, 6, 13};
    for (int causal = 0; causal < 2; causal++) {
        struct attn a;
        attn_init(&a, seg, 2, 2, 1, 16, causal, 5000);
        long nq = (long)a.T * 2 * 16;
        float *o1 = kalloc(nq), *o2 = kalloc(nq), *probs = kalloc((long)attention_probs_size(seg, 2, 2));
        attention_forward_cpu(o1, probs, a.q, a.k, a.v, seg, 2, 2, 1, 16, causal);
        for (int d = 0; d < 16; d++) a.k[5 * 16 + d] += 1.0f, a.v[5 * 16 + d] -= 2.0f; /* row 5: end of segment 0 */
        attention_forward_cpu(o2, probs, a.q, a.k, a.v, seg, 2, 2, 1, 16, causal);
        for (int t = 0; t < 13; t++) {
            int same = kbitwise_equal(o1 + (long)t * 32, o2 + (long)t * 32, 32);
            int expect_same = t >= 6 || (causal && t < 5);
            CHECK_MSG(ts, same == expect_same, "row %d causal %d", t, causal);
        }
        free(o1), free(o2), free(probs);
        attn_free(&a);
    }
}

/* x rounded to bf16 in place (and its double copy made to match). */
static void round_bf16(float *x, double *dx, long n)
{
    for (long i = 0; i < n; i++) dx[i] = x[i] = bf16_to_f32(bf16_from_f32(x[i]));
}

static void test_flash_reference(struct test_state *ts)
{
    static const int hds[] = {16, 80}, kvs[] = {4, 2, 1};
    for (int d = 0; d < 2; d++)
        for (int g = 0; g < 3; g++)
            for (int causal = 0; causal < 2; causal++) {
                struct attn a;
                attn_init(&a, seg_mixed, 4, 4, kvs[g], hds[d], causal, 3000 + d * 10 + g * 2 + causal);
                long nq = (long)a.T * a.heads * a.hd, nk = (long)a.T * a.kv * a.hd, nl = (long)a.T * a.heads;
                round_bf16(a.q, a.dq, nq), round_bf16(a.k, a.dk, nk), round_bf16(a.v, a.dv, nk);
                round_bf16(a.dout, a.ddout, nq);
                ref_attention(&a);
                float *out = kalloc(nq), *lse = kalloc(nl);
                attention_flash_forward_cpu(out, lse, a.q, a.k, a.v, a.seg, 4, 4, a.kv, a.hd, causal);
                CHECK_MSG(ts, kcheck_close(ts, "flash out", out, a.y, nq, 1e-5) == 0, "hd %d kv %d causal %d",
                          a.hd, a.kv, causal);
                /* lse: the log of each row's normaliser, from the double reference's scores. */
                double *want = kalloc_d(nl);
                for (int s = 0; s < 4; s++)
                    for (int h = 0; h < a.heads; h++)
                        for (int i = a.seg[s]; i < a.seg[s + 1]; i++) {
                            double mx = -INFINITY, sum = 0.0, sc[64];
                            int nj = causal ? i - a.seg[s] + 1 : a.seg[s + 1] - a.seg[s];
                            for (int j = 0; j < nj; j++) {
                                const double *q = a.dq + ((long)i * a.heads + h) * a.hd;
                                const double *k = a.dk + ((long)(a.seg[s] + j) * a.kv + h / (a.heads / a.kv)) * a.hd;
                                sc[j] = 0.0;
                                for (int e = 0; e < a.hd; e++) sc[j] += q[e] * k[e];
                                sc[j] /= sqrt((double)a.hd);
                                mx = fmax(mx, sc[j]);
                            }
                            for (int j = 0; j < nj; j++) sum += exp(sc[j] - mx);
                            want[(long)i * a.heads + h] = mx + log(sum);
                        }
                CHECK_MSG(ts, kcheck_close(ts, "flash lse", lse, want, nl, 1e-5) == 0, "hd %d kv %d causal %d", a.hd,
                          a.kv, causal);
                /* The backward, accumulating onto 1s, against the exact backward's gradients plus 1. */
                float *probs = kalloc((long)attention_probs_size(a.seg, 4, 4)), *eo = kalloc(nq);
                float *gq = kalloc(nq), *gk = kalloc(nk), *gv = kalloc(nk);
                float *fq = kalloc(nq), *fk = kalloc(nk), *fv = kalloc(nk);
                for (long i = 0; i < nq; i++) gq[i] = fq[i] = 1.0f;
                for (long i = 0; i < nk; i++) gk[i] = fk[i] = gv[i] = fv[i] = 1.0f;
                attention_forward_cpu(eo, probs, a.q, a.k, a.v, a.seg, 4, 4, a.kv, a.hd, causal);
                attention_backward_cpu(gq, gk, gv, a.dout, probs, a.q, a.k, a.v, a.seg, 4, 4, a.kv, a.hd, causal);
                attention_flash_backward_cpu(fq, fk, fv, a.dout, out, lse, a.q, a.k, a.v, a.seg, 4, 4, a.kv, a.hd,
                                             causal);
                double *wq = kto_double(gq, nq), *wk = kto_double(gk, nk), *wv = kto_double(gv, nk);
                CHECK_MSG(ts, kcheck_close(ts, "flash dq", fq, wq, nq, 1e-4) == 0, "hd %d kv %d causal %d", a.hd, a.kv,
                          causal);
                CHECK_MSG(ts, kcheck_close(ts, "flash dk", fk, wk, nk, 1e-4) == 0, "hd %d kv %d causal %d", a.hd, a.kv,
                          causal);
                CHECK_MSG(ts, kcheck_close(ts, "flash dv", fv, wv, nk, 1e-4) == 0, "hd %d kv %d causal %d", a.hd, a.kv,
                          causal);
                free(out), free(lse), free(want), free(probs), free(eo), free(gq), free(gk), free(gv);
                free(fq), free(fk), free(fv), free(wq), free(wk), free(wv);
                attn_free(&a);
            }
    CHECK(ts, attention_flash_supported(128) && attention_flash_supported(80) && !attention_flash_supported(72));
}

/* cuDNN's op (attention_sdpa, bf16 in and out): the flash reference on the widened operands, each
 * output rounded to bf16 once, stats its lse, gradients assigned; segments 2, 2, 0, 3, 3, 3, 5. */
static void test_sdpa_reference(struct test_state *ts)
{
    static const int seg[] = {0, 2, 4, 4, 7, 10, 13, 18}, bad[] = {0, 3, 2};
    const int n_seg = 7, T = 18, heads = 4, kv = 2, hd = 16;
    CHECK(ts, attention_sdpa_shape_ok(seg, n_seg, heads, kv, hd) && !attention_sdpa_shape_ok(seg, n_seg, heads, kv, 12));
    CHECK(ts, !attention_sdpa_shape_ok(seg, n_seg, heads, 3, hd) && !attention_sdpa_shape_ok(seg, n_seg, heads, kv, 136));
    CHECK(ts, !attention_sdpa_shape_ok(bad, 2, heads, kv, hd));
    for (int causal = 0; causal < 2; causal++) {
        long nq = (long)T * heads * hd, nk = (long)T * kv * hd, nl = (long)T * heads;
        struct krng rng = {4000 + causal};
        float *q = kalloc(nq), *k = kalloc(nk), *v = kalloc(nk), *dout = kalloc(nq);
        krng_fill(&rng, q, nq, 1.5), krng_fill(&rng, k, nk, 1.5), krng_fill(&rng, v, nk, 1.0), krng_fill(&rng, dout, nq, 1.0);
        uint16_t *q16 = malloc(nq * 2), *k16 = malloc(nk * 2), *v16 = malloc(nk * 2), *do16 = malloc(nq * 2);
        cast_bf16_cpu(q16, q, nq), cast_bf16_cpu(k16, k, nk), cast_bf16_cpu(v16, v, nk), cast_bf16_cpu(do16, dout, nq);
        for (long i = 0; i < nq; i++) q[i] = bf16_to_f32(q16[i]), dout[i] = bf16_to_f32(do16[i]);
        for (long i = 0; i < nk; i++) k[i] = bf16_to_f32(k16[i]), v[i] = bf16_to_f32(v16[i]);
        float *out = kalloc(nq), *lse = kalloc(nl), *stats = kalloc(nl);
        uint16_t *o16 = malloc(nq * 2), *want16 = malloc(nq * 2);
        attention_flash_forward_cpu(out, lse, q, k, v, seg, n_seg, heads, kv, hd, causal);
        attention_sdpa_forward_cpu(o16, stats, q16, k16, v16, seg, n_seg, heads, kv, hd, causal);
        cast_bf16_cpu(want16, out, nq);
        CHECK_MSG(ts, memcmp(o16, want16, nq * 2) == 0, "causal %d: o16 is not the flash output rounded", causal);
        CHECK_MSG(ts, memcmp(stats, lse, nl * sizeof *lse) == 0, "causal %d: stats are not the flash lse", causal);
        /* backward: assigned (NaN-filled outputs), the flash gradients from zero rounded once */
        uint16_t *gq = malloc(nq * 2), *gk = malloc(nk * 2), *gv = malloc(nk * 2), *wq = malloc(nq * 2);
        uint16_t *wk = malloc(nk * 2), *wv = malloc(nk * 2);
        memset(gq, 0xff, nq * 2), memset(gk, 0xff, nk * 2), memset(gv, 0xff, nk * 2);
        float *fq = calloc(nq, 4), *fk = calloc(nk, 4), *fv = calloc(nk, 4), *ow = kalloc(nq);
        for (long i = 0; i < nq; i++) ow[i] = bf16_to_f32(o16[i]);
        attention_flash_backward_cpu(fq, fk, fv, dout, ow, lse, q, k, v, seg, n_seg, heads, kv, hd, causal);
        attention_sdpa_backward_cpu(gq, gk, gv, do16, o16, stats, q16, k16, v16, seg, n_seg, heads, kv, hd, causal);
        cast_bf16_cpu(wq, fq, nq), cast_bf16_cpu(wk, fk, nk), cast_bf16_cpu(wv, fv, nk);
        CHECK_MSG(ts, memcmp(gq, wq, nq * 2) == 0 && memcmp(gk, wk, nk * 2) == 0 && memcmp(gv, wv, nk * 2) == 0,
                  "causal %d: gradients are not the flash ones rounded", causal);
        /* add_bf16: exact widening added */
        float y[3] = {1.0f, -2.0f, 0.5f};
        uint16_t x[3] = {bf16_from_f32(0.25f), bf16_from_f32(3.0f), bf16_from_f32(-0.5f)};
        add_bf16_cpu(y, x, 3);
        CHECK(ts, y[0] == 1.25f && y[1] == 1.0f && y[2] == 0.0f);
        free(q), free(k), free(v), free(dout), free(q16), free(k16), free(v16), free(do16), free(out), free(lse);
        free(stats), free(o16), free(want16), free(gq), free(gk), free(gv), free(wq), free(wk), free(wv);
        free(fq), free(fk), free(fv), free(ow);
    }
}

int main(void)
{
    struct test_state ts = {0};
    RUN(&ts, test_flash_reference);
    RUN(&ts, test_sdpa_reference);
    RUN(&ts, test_forward);
    RUN(&ts, test_masking);
    RUN(&ts, test_backward_fd_small);
    RUN(&ts, test_backward_fd_long_segment);
    RUN(&ts, test_accumulate_and_null);
    RUN(&ts, test_thread_count_independence);
    return test_summary(&ts);
}
