/* Segment attention forward and backward: the CUDA twins against the CPU reference on random data,
 * causal and not, for segment layouts the models produce (one sequence; several with an empty one
 * between; vision windows of 64 rows; a segment longer than a block of threads; runs of equal-length
 * segments, which the kernels batch as one, beside a lone one and broken by an empty one) and head layouts
 * n_heads/n_kv 2/2 (no GQA), 4/2, 14/2 (group 7, as the 7B decoder's 28/4) with head sizes 8, 64,
 * 80 (vision) and 128 (decoder). Gradients are pre-filled with random values on both
 * sides, so accumulation (+=) is checked, not just the fresh value. Skips (exit 77) without a GPU.
 *
 * Tolerances:
 *   - out, dq, dk, dv: 1e-5 in test_rel_err's measure (max |got - want| / max |want|). fp32 on both
 *     sides, summed in a different order (the reference vectorises its dot products and sums the
 *     softmax denominator and D in double; the kernels use fp32 block sums); the longest sums are
 *     dk/dv's, over group * len <= 7 * 300 terms, whose expected rounding (a random walk) is
 *     ~1e-6 of the largest value.
 *   - probs: 1e-6 absolute (probabilities lie in [0, 1], and a small largest probability would make
 *     a relative measure meaningless): the error of a probability is about p times the error of
 *     its score plus that of expf and of the denominator, a few 1e-7 at most.
 *   - masked probs must be exactly 0 (the device buffer starts as garbage, so a missed write shows).
 * Calls that differ only in which gradients they ask for, or in the stream, must agree bit for
 * bit: the kernels are deterministic (no float atomics), so any difference is a bug.
 *
 * The _tf32 twins (products on TF32 tensor cores) against the same references: TF32 keeps 11
 * significant bits of each GEMM operand (relative rounding 2^-11 ~ 4.9e-4), so a product is off by
 * ~1e-3 relative and a sum of such terms by about that much of its largest terms: TOL_TF32 5e-3 for
 * out and the gradients (relative to the largest value), TOL_PROBS_TF32 2e-3 absolute for probs
 * (a probability moves by p times its score's error, and scores here stay below ~10). After each
 * call the handle must be back in pedantic fp32 math, which every other fp32 twin relies on. (The
 * SIMT interpreter computes these products in fp32: there the bounds are loose; on hardware they
 * are the check.) */
#include <cuda_runtime.h>
#include <stdlib.h>
#include <string.h>

#include "gpu_test.h"
#include "mmupt/err.h"
#include "mmupt/gpu_blas.h"
#include "mmupt/kernels.h"

#define TOL 1e-5      /* out, dq, dk, dv: relative to the largest value */
#define TOL_PROBS 1e-6 /* probs: absolute */
#define TOL_TF32 5e-3
#define TOL_PROBS_TF32 2e-3

/* test_rel_err of a device array against a host reference. */
static double dev_rel_err(const float *dev, const float *want, size_t n)
{
    float *got = gpu_test_download_floats(dev, n);
    double e = test_rel_err(got, want, (int64_t)n);
    free(got);
    return e;
}

/* A segment layout: seg has n_seg + 1 entries. */
struct layout {
    const char *name;
    int seg[8];
    int n_seg;
};

static const struct layout LAYOUTS[] = {
    {"one segment of 37", {0, 37}, 1},
    {"segments 5, 0, 17", {0, 5, 5, 22}, 3},
    {"four vision windows of 64", {0, 64, 128, 192, 256}, 4},
    {"one segment of 300 (> a block of threads)", {0, 300}, 1},
    {"segments 16, 16, 0, 16, 33, 33 (runs of equal length, split by an empty one)", {0, 16, 32, 32, 48, 81, 114}, 6},
};
#define N_LAYOUTS (int)(sizeof LAYOUTS / sizeof LAYOUTS[0])

static const int HEADS[][2] = {{2, 2}, {4, 2}, {14, 2}};
#define N_HEADS (int)(sizeof HEADS / sizeof HEADS[0])
static const int HDS[] = {8, 64, 80, 128};
#define N_HDS (int)(sizeof HDS / sizeof HDS[0])

/* One shape: the layout, heads, head size, mask, and the host inputs and reference outputs. */
struct attn_case {
    const struct layout *L;
    int n_heads, n_kv, hd, causal;
    size_t nq, nk, np; /* floats in q (and out, dq, dout), in k (v, dk, dv), in probs */
    float *q, *k, *v, *dout, *dq0, *dk0, *dv0;
    float *out, *probs, *dq, *dk, *dv; /* the CPU reference's results */
};

static void case_init(struct attn_case *c, const struct layout *L, int n_heads, int n_kv, int hd, int causal)
{
    int T = L->seg[L->n_seg];
    unsigned seed = (unsigned)(T * 131 + n_heads * 17 + hd * 3 + causal);
    c->L = L;
    c->n_heads = n_heads;
    c->n_kv = n_kv;
    c->hd = hd;
    c->causal = causal;
    c->nq = (size_t)T * n_heads * hd;
    c->nk = (size_t)T * n_kv * hd;
    c->np = attention_probs_size(L->seg, L->n_seg, n_heads);
    float **in[] = {&c->q, &c->dout, &c->dq0, &c->k, &c->v, &c->dk0, &c->dv0};
    for (int i = 0; i < 7; i++) {
        size_t n = i < 3 ? c->nq : c->nk;
        *in[i] = mmupt_xmalloc(n * sizeof(float));
        /* q spans a wider range than k so some rows' softmax is far from uniform. */
        gpu_test_fill(*in[i], n, seed + (unsigned)i, i == 0 ? -2.0f : -1.0f, i == 0 ? 2.0f : 1.0f);
    }
    c->out = mmupt_xmalloc(c->nq * sizeof *c->out);
    c->probs = mmupt_xmalloc(c->np * sizeof *c->probs);
    attention_forward_cpu(c->out, c->probs, c->q, c->k, c->v, L->seg, L->n_seg, n_heads, n_kv, hd, causal);
    c->dq = gpu_test_host_copy(c->dq0, c->nq);
    c->dk = gpu_test_host_copy(c->dk0, c->nk);
    c->dv = gpu_test_host_copy(c->dv0, c->nk);
    attention_backward_cpu(c->dq, c->dk, c->dv, c->dout, c->probs, c->q, c->k, c->v, L->seg, L->n_seg, n_heads, n_kv,
                           hd, causal);
}

static void case_free(struct attn_case *c)
{
    float *h[] = {c->q, c->k, c->v, c->dout, c->dq0, c->dk0, c->dv0, c->out, c->probs, c->dq, c->dk, c->dv};
    for (size_t i = 0; i < sizeof h / sizeof h[0]; i++) free(h[i]);
}

/* Largest |got - want| over probs, and the number of masked entries (key after query, causal
 * only) that are not exactly 0. */
static double probs_check(const struct attn_case *c, const float *got, long *masked_bad)
{
    double worst = 0.0;
    for (size_t i = 0; i < c->np; i++) {
        double d = fabs((double)got[i] - (double)c->probs[i]);
        if (!(d <= worst)) worst = d; /* NaN propagates as a failure */
    }
    *masked_bad = 0;
    if (!c->causal) return worst;
    size_t off = 0;
    for (int s = 0; s < c->L->n_seg; s++) {
        size_t len = (size_t)(c->L->seg[s + 1] - c->L->seg[s]);
        for (size_t h = 0; h < (size_t)c->n_heads; h++)
            for (size_t i = 0; i < len; i++)
                for (size_t j = i + 1; j < len; j++)
                    if (got[off + (h * len + i) * len + j] != 0.0f) (*masked_bad)++;
        off += (size_t)c->n_heads * len * len;
    }
    return worst;
}

#define CASE_FMT "%s, heads %d/%d, hd %d, causal %d"
#define CASE_ARGS(c) (c)->L->name, (c)->n_heads, (c)->n_kv, (c)->hd, (c)->causal

/* cuBLAS handles: on the test's own stream, and on the default stream for the repeats. */
struct blas_pair {
    struct gpu_blas st, def;
};

static void forward_case(struct test_state *ts, const struct attn_case *c, const struct blas_pair *bp)
{
    const struct layout *L = c->L;
    float *d_q = gpu_test_upload_floats(c->q, c->nq), *d_k = gpu_test_upload_floats(c->k, c->nk), *d_v = gpu_test_upload_floats(c->v, c->nk);
    /* Garbage in the outputs: every entry must be written. */
    float *d_out = gpu_test_upload_floats(c->dq0, c->nq);
    float *garbage = mmupt_xmalloc(c->np * sizeof *garbage);
    for (size_t i = 0; i < c->np; i++) garbage[i] = 7.0f;
    float *d_probs = gpu_test_upload_floats(garbage, c->np);
    attention_forward_cuda(d_out, d_probs, d_q, d_k, d_v, L->seg, L->n_seg, c->n_heads, c->n_kv, c->hd, c->causal,
                           &bp->st);
    double eo = dev_rel_err(d_out, c->out, c->nq);
    CHECK_MSG(ts, eo < TOL, "forward out, " CASE_FMT ": err %g", CASE_ARGS(c), eo);
    float *probs = gpu_test_download_floats(d_probs, c->np);
    long masked_bad;
    double ep = probs_check(c, probs, &masked_bad);
    CHECK_MSG(ts, ep < TOL_PROBS, "forward probs, " CASE_FMT ": err %g", CASE_ARGS(c), ep);
    CHECK_MSG(ts, masked_bad == 0, "forward probs, " CASE_FMT ": %ld masked entries not 0", CASE_ARGS(c), masked_bad);

    /* Again on the default stream, over the first call's results: the same bits. */
    float *d_out2 = gpu_test_upload_floats(c->dq0, c->nq), *d_probs2 = gpu_test_upload_floats(garbage, c->np);
    attention_forward_cuda(d_out2, d_probs2, d_q, d_k, d_v, L->seg, L->n_seg, c->n_heads, c->n_kv, c->hd, c->causal,
                           &bp->def);
    CHECK_MSG(ts, gpu_test_dev_same(d_out2, d_out, c->nq), "forward out, " CASE_FMT ": not repeatable", CASE_ARGS(c));
    CHECK_MSG(ts, gpu_test_dev_same(d_probs2, d_probs, c->np), "forward probs, " CASE_FMT ": not repeatable", CASE_ARGS(c));

    float *dev[] = {d_q, d_k, d_v, d_out, d_probs, d_out2, d_probs2};
    for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++) CUDA_CHECK(cudaFree(dev[i]));
    free(garbage);
    free(probs);
}

static void backward_case(struct test_state *ts, const struct attn_case *c, const struct blas_pair *bp)
{
    const struct layout *L = c->L;
    size_t nq = c->nq, nk = c->nk;
    /* The reference's probs, so the backward is compared alone. */
    float *d_q = gpu_test_upload_floats(c->q, nq), *d_k = gpu_test_upload_floats(c->k, nk), *d_v = gpu_test_upload_floats(c->v, nk);
    float *d_dout = gpu_test_upload_floats(c->dout, nq), *d_probs = gpu_test_upload_floats(c->probs, c->np);
    float *d_dq = gpu_test_upload_floats(c->dq0, nq), *d_dk = gpu_test_upload_floats(c->dk0, nk), *d_dv = gpu_test_upload_floats(c->dv0, nk);
    attention_backward_cuda(d_dq, d_dk, d_dv, d_dout, d_probs, d_q, d_k, d_v, L->seg, L->n_seg, c->n_heads, c->n_kv,
                            c->hd, c->causal, &bp->st);
    double eq = dev_rel_err(d_dq, c->dq, nq), ek = dev_rel_err(d_dk, c->dk, nk), ev = dev_rel_err(d_dv, c->dv, nk);
    CHECK_MSG(ts, eq < TOL, "backward dq, " CASE_FMT ": err %g", CASE_ARGS(c), eq);
    CHECK_MSG(ts, ek < TOL, "backward dk, " CASE_FMT ": err %g", CASE_ARGS(c), ek);
    CHECK_MSG(ts, ev < TOL, "backward dv, " CASE_FMT ": err %g", CASE_ARGS(c), ev);

    /* One gradient at a time (the others NULL), on the default stream: the same bits. */
    float *d_dq1 = gpu_test_upload_floats(c->dq0, nq), *d_dk1 = gpu_test_upload_floats(c->dk0, nk), *d_dv1 = gpu_test_upload_floats(c->dv0, nk);
    attention_backward_cuda(d_dq1, NULL, NULL, d_dout, d_probs, d_q, d_k, d_v, L->seg, L->n_seg, c->n_heads, c->n_kv,
                            c->hd, c->causal, &bp->def);
    attention_backward_cuda(NULL, d_dk1, NULL, d_dout, d_probs, d_q, d_k, d_v, L->seg, L->n_seg, c->n_heads, c->n_kv,
                            c->hd, c->causal, &bp->def);
    attention_backward_cuda(NULL, NULL, d_dv1, d_dout, d_probs, d_q, d_k, d_v, L->seg, L->n_seg, c->n_heads, c->n_kv,
                            c->hd, c->causal, &bp->def);
    CHECK_MSG(ts, gpu_test_dev_same(d_dq1, d_dq, nq), "backward dq, " CASE_FMT ": differs when computed alone", CASE_ARGS(c));
    CHECK_MSG(ts, gpu_test_dev_same(d_dk1, d_dk, nk), "backward dk, " CASE_FMT ": differs when computed alone", CASE_ARGS(c));
    CHECK_MSG(ts, gpu_test_dev_same(d_dv1, d_dv, nk), "backward dv, " CASE_FMT ": differs when computed alone", CASE_ARGS(c));

    float *dev[] = {d_q, d_k, d_v, d_dout, d_probs, d_dq, d_dk, d_dv, d_dq1, d_dk1, d_dv1};
    for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++) CUDA_CHECK(cudaFree(dev[i]));
}

/* Every layout x head layout x head size x mask; each case's main calls on a stream of its own,
 * its variants on the default stream. */
static void test_against_reference(struct test_state *ts, const struct blas_pair *bp)
{
    for (int l = 0; l < N_LAYOUTS; l++)
        for (int h = 0; h < N_HEADS; h++)
            for (int d = 0; d < N_HDS; d++)
                for (int causal = 0; causal <= 1; causal++) {
                    if (!gpu_test_keep(l + h + d + causal, N_HDS)) continue;
                    struct attn_case c;
                    case_init(&c, &LAYOUTS[l], HEADS[h][0], HEADS[h][1], HDS[d], causal);
                    forward_case(ts, &c, bp);
                    backward_case(ts, &c, bp);
                    case_free(&c);
                }
}

/* 1 when the handle is back in pedantic fp32 math. */
static int pedantic(const struct gpu_blas *b)
{
    cublasMath_t m;
    return cublasGetMathMode(b->handle, &m) == CUBLAS_STATUS_SUCCESS && m == CUBLAS_PEDANTIC_MATH;
}

static void tf32_case(struct test_state *ts, const struct attn_case *c, const struct blas_pair *bp)
{
    const struct layout *L = c->L;
    size_t nq = c->nq, nk = c->nk;
    float *d_q = gpu_test_upload_floats(c->q, nq), *d_k = gpu_test_upload_floats(c->k, nk);
    float *d_v = gpu_test_upload_floats(c->v, nk), *d_out = gpu_test_upload_floats(c->dq0, nq);
    float *d_probs = gpu_test_upload_floats(c->probs, c->np), *d_dout = gpu_test_upload_floats(c->dout, nq);
    attention_forward_tf32_cuda(d_out, d_probs, d_q, d_k, d_v, L->seg, L->n_seg, c->n_heads, c->n_kv, c->hd, c->causal,
                                &bp->st);
    CHECK_MSG(ts, pedantic(&bp->st), "forward tf32, " CASE_FMT ": the handle is left in another math mode",
              CASE_ARGS(c));
    double eo = dev_rel_err(d_out, c->out, nq);
    CHECK_MSG(ts, eo < TOL_TF32, "forward tf32 out, " CASE_FMT ": err %g", CASE_ARGS(c), eo);
    float *probs = gpu_test_download_floats(d_probs, c->np);
    long masked_bad;
    double ep = probs_check(c, probs, &masked_bad);
    CHECK_MSG(ts, ep < TOL_PROBS_TF32, "forward tf32 probs, " CASE_FMT ": err %g", CASE_ARGS(c), ep);
    CHECK_MSG(ts, masked_bad == 0, "forward tf32 probs, " CASE_FMT ": %ld masked entries not 0", CASE_ARGS(c),
              masked_bad);
    /* The backward from the reference's probs, so it is compared alone. */
    CUDA_CHECK(cudaMemcpy(d_probs, c->probs, c->np * sizeof *c->probs, cudaMemcpyHostToDevice));
    float *d_dq = gpu_test_upload_floats(c->dq0, nq), *d_dk = gpu_test_upload_floats(c->dk0, nk);
    float *d_dv = gpu_test_upload_floats(c->dv0, nk);
    attention_backward_tf32_cuda(d_dq, d_dk, d_dv, d_dout, d_probs, d_q, d_k, d_v, L->seg, L->n_seg, c->n_heads,
                                 c->n_kv, c->hd, c->causal, &bp->st);
    CHECK_MSG(ts, pedantic(&bp->st), "backward tf32, " CASE_FMT ": the handle is left in another math mode",
              CASE_ARGS(c));
    double eq = dev_rel_err(d_dq, c->dq, nq), ek = dev_rel_err(d_dk, c->dk, nk), ev = dev_rel_err(d_dv, c->dv, nk);
    CHECK_MSG(ts, eq < TOL_TF32 && ek < TOL_TF32 && ev < TOL_TF32, "backward tf32, " CASE_FMT ": err dq %g dk %g dv %g",
              CASE_ARGS(c), eq, ek, ev);
    float *dev[] = {d_q, d_k, d_v, d_out, d_probs, d_dout, d_dq, d_dk, d_dv};
    for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++) CUDA_CHECK(cudaFree(dev[i]));
    free(probs);
}

/* The TF32 twins on the decoder's head layouts (every layout, causal, head size 64 and 128). */
static void test_tf32(struct test_state *ts, const struct blas_pair *bp)
{
    for (int l = 0; l < N_LAYOUTS; l++)
        for (int d = 1; d < N_HDS; d += 2) {
            if (!gpu_test_keep(l + d / 2, 2)) continue; /* the interpreter: each layout at one head size */
            struct attn_case c;
            case_init(&c, &LAYOUTS[l], HEADS[N_HEADS - 1][0], HEADS[N_HEADS - 1][1], HDS[d], 1);
            tf32_case(ts, &c, bp);
            case_free(&c);
        }
}

/* Only empty segments: nothing to compute, and nothing written (the gradients keep their values). */
static void test_empty_segments(struct test_state *ts, const struct blas_pair *bp)
{
    static const int seg[] = {0, 0, 0};
    float sentinel = 5.0f;
    float *d = gpu_test_upload_floats(&sentinel, 1);
    attention_forward_cuda(d, d, d, d, d, seg, 2, 2, 1, 8, 1, &bp->st);
    attention_backward_cuda(d, d, d, d, d, d, d, d, seg, 2, 2, 1, 8, 1, &bp->st);
    float got = 0.0f;
    gpu_test_download(&got, d, sizeof got);
    CHECK_MSG(ts, got == 5.0f, "empty segments: a buffer changed to %g", got);
    CUDA_CHECK(cudaFree(d));
}

int main(void)
{
    cudaStream_t st = gpu_test_begin_stream();
    struct test_state ts = {0};
    struct blas_pair bp;
    struct mmupt_err err = {0};
    if (gpu_blas_init(&bp.st, st, &err) || gpu_blas_init(&bp.def, NULL, &err)) {
        fprintf(stderr, "gpu_blas_init: %s\n", err.msg);
        return 1;
    }
    RUN_WITH(&ts, test_against_reference, &bp);
    RUN_WITH(&ts, test_tf32, &bp);
    RUN_WITH(&ts, test_empty_segments, &bp);
    gpu_blas_free(&bp.st);
    gpu_blas_free(&bp.def);
    CUDA_CHECK(cudaStreamDestroy(st));
    return test_summary(&ts);
}
