/* Attention through cuDNN's SDPA graphs (src/gpu/sdpa_cudnn.c, MMUPT_ATTENTION=cudnn) against the CPU
 * reference (kernels/cpu/attention_sdpa.c): forward (o16 and stats) and backward (dq16, dk16, dv16),
 * causal and not, on the shapes the models give it - the 1.5B learner's 12/2 heads of 128 over
 * sequences of one length (2 x 384) and of many (a packed micro-batch of 100, 257, 0 and 243 rows: cuDNN
 * calls of two segments padded to 384 and one padded to 256), vision-like runs of 16/16 heads of 80
 * over four 64-row windows and over seven (calls of 4, 2 and 1), the
 * fixtures' 4/2 heads of 16 over mixed lengths with an empty segment, the 0.5B rollout model's 14/2
 * heads of 64 with a sequence starting at an odd row (its stats' start then 8 bytes off 16-byte
 * alignment: whether cuDNN takes that is a question for the GPU). Then a second call gives the
 * same bits (the deterministic backward, where cuDNN planned it). A shape attention_sdpa_supported
 * refuses FAILS here: the test is for the path MMUPT_ATTENTION=cudnn promises; the refusal, with
 * cuDNN's reason, is on stderr. Skips (exit 77) without a GPU; built with cuDNN only (the SIMT
 * interpreter has none).
 *
 * Tolerances, in test_rel_err's measure: both sides start from the same bf16 operands; cuDNN rounds
 * the probabilities and dS to bf16 before their second products (the reference does not) and its
 * outputs to bf16 - relative errors up to 2^-9 a term, sums of such terms with random signs far
 * below their largest values - as the fused kernels (tests/gpu/test_attention_flash_cuda.c: TOL_OUT
 * 4e-3, TOL_GRAD 5e-3) plus one rounding of each output to bf16 (2^-9 of its value): 8e-3 and 1e-2.
 * stats: fp32 scores of bf16 operands on both sides, 1e-5 of the largest. Not yet run on a GPU
 * (written 2026-11-28): the first run's measured errors belong here. */
#include <cuda_runtime.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gpu_test.h"
#include "mmupt/err.h"
#include "mmupt/gpu_blas.h"
#include "mmupt/kernels.h"

#define TOL_OUT 8e-3
#define TOL_GRAD 1e-2
#define TOL_STATS 1e-5

struct sd_case {
    const int *seg;
    int n_seg, heads, kv, hd, causal;
};

static uint16_t *random_bf16(long n, unsigned seed, float lo, float hi)
{
    float *x = malloc((size_t)(n ? n : 1) * sizeof *x);
    uint16_t *h = malloc((size_t)(n ? n : 1) * sizeof *h);
    gpu_test_fill(x, (size_t)n, seed, lo, hi);
    cast_bf16_cpu(h, x, n);
    free(x);
    return h;
}

/* A device bf16 result widened, against the reference's widened. */
static double err16(const uint16_t *dev, const uint16_t *want, long n)
{
    uint16_t *got = malloc((size_t)(n ? n : 1) * sizeof *got);
    gpu_test_download(got, dev, (size_t)n * sizeof *got);
    float *g = bf16_widened(got, n), *w = bf16_widened(want, n);
    double e = test_rel_err(g, w, (size_t)n);
    free(got), free(g), free(w);
    return e;
}

static void sd_case_run(struct test_state *ts, const struct sd_case *c, const struct gpu_blas *blas)
{
    long T = c->seg[c->n_seg], nq = T * c->heads * c->hd, nk = T * c->kv * c->hd, nl = T * c->heads;
    unsigned seed = (unsigned)(T * 131 + c->heads * 17 + c->kv * 5 + c->hd + c->causal);
    const char *tag = c->causal ? "causal" : "not causal";
    if (!attention_sdpa_supported(c->seg, c->n_seg, c->heads, c->kv, c->hd, c->causal, blas)) {
        CHECK_MSG(ts, 0, "T %ld heads %d/%d hd %d %s: cuDNN did not plan the shape (its reason above)", T, c->heads,
                  c->kv, c->hd, tag);
        return;
    }
    uint16_t *q = random_bf16(nq, seed, -2.0f, 2.0f), *k = random_bf16(nk, seed + 1, -2.0f, 2.0f);
    uint16_t *v = random_bf16(nk, seed + 2, -1.0f, 1.0f), *dout = random_bf16(nq, seed + 3, -1.0f, 1.0f);
    uint16_t *o = malloc((size_t)nq * sizeof *o), *gq = malloc((size_t)nq * sizeof *gq);
    uint16_t *gk = malloc((size_t)nk * sizeof *gk), *gv = malloc((size_t)nk * sizeof *gv);
    float *stats = malloc((size_t)(nl ? nl : 1) * sizeof *stats);
    attention_sdpa_forward_cpu(o, stats, q, k, v, c->seg, c->n_seg, c->heads, c->kv, c->hd, c->causal);
    attention_sdpa_backward_cpu(gq, gk, gv, dout, o, stats, q, k, v, c->seg, c->n_seg, c->heads, c->kv, c->hd,
                                c->causal);

    uint16_t *d_q = gpu_test_upload(q, (size_t)nq * 2), *d_k = gpu_test_upload(k, (size_t)nk * 2);
    uint16_t *d_v = gpu_test_upload(v, (size_t)nk * 2), *d_do = gpu_test_upload(dout, (size_t)nq * 2);
    uint16_t *d_o = gpu_test_nan16((size_t)nq), *d_gq = gpu_test_nan16((size_t)nq), *d_gk = gpu_test_nan16((size_t)nk);
    uint16_t *d_gv = gpu_test_nan16((size_t)nk);
    float *d_st = NULL;
    CUDA_CHECK(cudaMalloc((void **)&d_st, (size_t)(nl ? nl : 1) * sizeof *d_st));
    CUDA_CHECK(cudaMemset(d_st, 0xff, (size_t)(nl ? nl : 1) * sizeof *d_st));
    attention_sdpa_forward_cuda(d_o, d_st, d_q, d_k, d_v, c->seg, c->n_seg, c->heads, c->kv, c->hd, c->causal, blas);
    /* the backward from the reference's o and stats, so that its errors are its own */
    uint16_t *r_o = gpu_test_upload(o, (size_t)nq * 2);
    float *r_st = gpu_test_upload_floats(stats, (size_t)nl);
    attention_sdpa_backward_cuda(d_gq, d_gk, d_gv, d_do, r_o, r_st, d_q, d_k, d_v, c->seg, c->n_seg, c->heads, c->kv,
                                 c->hd, c->causal, blas);
    CUDA_CHECK(cudaStreamSynchronize(blas->stream));
    double eo = err16(d_o, o, nq), es = gpu_test_dev_err(d_st, stats, (size_t)nl);
    double eq = err16(d_gq, gq, nq), ek = err16(d_gk, gk, nk), ev = err16(d_gv, gv, nk);
    printf("  T %ld heads %d/%d hd %d %s: out %.2e stats %.2e dq %.2e dk %.2e dv %.2e\n", T, c->heads, c->kv, c->hd,
           tag, eo, es, eq, ek, ev);
    CHECK_MSG(ts, eo <= TOL_OUT && es <= TOL_STATS, "forward: out %.3g, stats %.3g", eo, es);
    CHECK_MSG(ts, eq <= TOL_GRAD && ek <= TOL_GRAD && ev <= TOL_GRAD, "backward: dq %.3g dk %.3g dv %.3g", eq, ek, ev);

    /* Again: the same bits. */
    uint16_t *a_q = gpu_test_nan16((size_t)nq), *a_k = gpu_test_nan16((size_t)nk), *a_v = gpu_test_nan16((size_t)nk);
    uint16_t *a_o = gpu_test_nan16((size_t)nq);
    attention_sdpa_forward_cuda(a_o, d_st, d_q, d_k, d_v, c->seg, c->n_seg, c->heads, c->kv, c->hd, c->causal, blas);
    attention_sdpa_backward_cuda(a_q, a_k, a_v, d_do, r_o, r_st, d_q, d_k, d_v, c->seg, c->n_seg, c->heads, c->kv,
                                 c->hd, c->causal, blas);
    CUDA_CHECK(cudaStreamSynchronize(blas->stream));
    CHECK_MSG(ts, gpu_test_dev_same16(a_o, d_o, (size_t)nq), "%s: a second forward gives other bits", tag);
    CHECK_MSG(ts,
              gpu_test_dev_same16(a_q, d_gq, (size_t)nq) && gpu_test_dev_same16(a_k, d_gk, (size_t)nk) &&
                  gpu_test_dev_same16(a_v, d_gv, (size_t)nk),
              "%s: a second backward gives other bits (cuDNN's accumulating dQ? see stderr)", tag);

    void *dev[] = {d_q, d_k, d_v, d_do, d_o, d_gq, d_gk, d_gv, d_st, r_o, r_st, a_q, a_k, a_v, a_o};
    for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++) CUDA_CHECK(cudaFree(dev[i]));
    void *host[] = {q, k, v, dout, o, gq, gk, gv, stats};
    for (size_t i = 0; i < sizeof host / sizeof host[0]; i++) free(host[i]);
}

static void test_against_reference(struct test_state *ts, void *ctx)
{
    const struct gpu_blas *blas = ctx;
    static const int learner[] = {0, 384, 768};          /* two 384s: the 1.5B benchmark's length */
    static const int packed[] = {0, 100, 357, 357, 600};  /* 100, 257, an empty one, 243: calls of 2 and 1 */
    static const int windows[] = {0, 64, 128, 192, 256};  /* a vision run of four windows */
    static const int mixed[] = {0, 10, 20, 20, 33};       /* the fixtures: two 10s, an empty one, a 13 */
    static const int odd[] = {0, 7, 20};                  /* starts at an odd row: stats rows 56 bytes apart */
    static const int seven[] = {0, 64, 128, 192, 256, 320, 384, 400}; /* 7 windows: calls of 4, 2 and 1 */
    static const struct sd_case cases[] = {
        {learner, 2, 12, 2, 128, 1}, {packed, 4, 12, 2, 128, 1}, {windows, 4, 16, 16, 80, 0},
        {mixed, 4, 4, 2, 16, 1},     {mixed, 4, 4, 2, 16, 0},     {odd, 2, 14, 2, 64, 1}, /* the 0.5B's heads */
        {seven, 7, 16, 16, 80, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) sd_case_run(ts, &cases[i], blas);
}

/* Shapes the op refuses before asking cuDNN: head sizes off the multiples of 8 up to 128, ungrouped
 * heads, segments out of order. */
static void test_shapes(struct test_state *ts, void *ctx)
{
    (void)ctx;
    static const int two[] = {0, 2, 4}, back[] = {0, 3, 1};
    CHECK(ts, attention_sdpa_shape_ok(two, 2, 4, 2, 16));
    CHECK(ts, !attention_sdpa_shape_ok(two, 2, 4, 2, 20));
    CHECK(ts, !attention_sdpa_shape_ok(two, 2, 4, 2, 136));
    CHECK(ts, !attention_sdpa_shape_ok(two, 2, 4, 3, 16));
    CHECK(ts, !attention_sdpa_shape_ok(back, 2, 4, 2, 16));
}

int main(void)
{
    struct test_state ts = {0};
    struct gpu_blas blas;
    cudaStream_t st;
    if (gpu_test_blas_open(&blas, &st)) return 1;
    RUN_WITH(&ts, test_against_reference, &blas);
    RUN_WITH(&ts, test_shapes, &blas);
    gpu_test_blas_close(&blas, st);
    return test_summary(&ts);
}
