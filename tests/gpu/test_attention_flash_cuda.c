/* Fused ("flash") attention on bf16 tensor cores: the CUDA twins against the CPU reference
 * (kernels/cpu/attention_flash.c), forward (out, lse) and backward (dq, dk, dv accumulating onto random
 * values), causal and not, for segment layouts of the models (one sequence; runs of equal-length
 * segments - one launch's grid z - beside lone ones and an empty one; lengths around the kernels'
 * tiles of 64 rows, 32 keys and 16 rows) and head layouts 2/2, 4/2 and 12/2 (the 1.5B decoder's group
 * of 6) with head sizes 16 (the fixtures), 64, 80 (vision) and 128 (decoder). Then: each gradient
 * alone equals the three together bit for bit, a second call the first (no atomics), operands off
 * 16-byte alignment (the kernels' scalar loads) the aligned call's bits, and every head
 * size the kernels do not take is refused by attention_flash_supported. Skips (exit 77) without a GPU.
 *
 * Tolerances, in test_rel_err's measure (max |got - want| / max |want|): both sides round q, k, v (and
 * dout, where it multiplies) to bf16, so the remaining differences are the kernels' own roundings -
 * each probability (forward: P V; backward: P^T dO) and each dS rounded to bf16 as a tensor-core
 * operand, relative error up to 2^-9 per term - and the order of the fp32 sums. A sum of n such terms
 * with random signs drifts by about 2^-9 sqrt(n) of a typical term, which is far below its largest
 * value; TOL_OUT 4e-3 and TOL_GRAD 5e-3 are about three times the worst the SIMT interpreter measured
 * (out 1.3e-3, gradients 1.5e-3; it rounds the same operands, its mma emulation adds the same
 * products in another order). lse comes from fp32 scores of bf16 operands on both sides: TOL_LSE 1e-6
 * of the largest |lse| (measured: 8e-8). On the interpreter (minutes for what a GPU does in
 * milliseconds) each shape runs once, causal or not in turn, and the largest only on a GPU. */
#include <cuda_runtime.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gpu_test.h"
#include "mmupt/err.h"
#include "mmupt/gpu_blas.h"
#include "mmupt/kernels.h"

#define TOL_OUT 4e-3
#define TOL_GRAD 5e-3
#define TOL_LSE 1e-6

struct fl_case {
    const int *seg;
    int n_seg, heads, kv, hd, causal;
};

/* x[0..n) on the device one float past an allocation's start (so not 16-byte aligned). */
static float *off_by_one(const float *x, long n)
{
    float *d = NULL;
    CUDA_CHECK(cudaMalloc((void **)&d, (size_t)(n + 1) * sizeof *d));
    CUDA_CHECK(cudaMemcpy(d + 1, x, (size_t)n * sizeof *x, cudaMemcpyHostToDevice));
    return d;
}

static void fl_case_run(struct test_state *ts, const struct fl_case *c, const struct gpu_blas *blas)
{
    long T = c->seg[c->n_seg], nq = T * c->heads * c->hd, nk = T * c->kv * c->hd, nl = T * c->heads;
    unsigned seed = (unsigned)(T * 131 + c->heads * 17 + c->kv * 5 + c->hd + c->causal);
    float *q = malloc(nq * sizeof *q), *k = malloc(nk * sizeof *k), *v = malloc(nk * sizeof *v);
    float *dout = malloc(nq * sizeof *dout), *g0q = malloc(nq * sizeof *g0q), *g0k = malloc(nk * sizeof *g0k);
    float *g0v = malloc(nk * sizeof *g0v);
    gpu_test_fill(q, nq, seed, -2.0f, 2.0f);
    gpu_test_fill(k, nk, seed + 1, -2.0f, 2.0f);
    gpu_test_fill(v, nk, seed + 2, -1.0f, 1.0f);
    gpu_test_fill(dout, nq, seed + 3, -1.0f, 1.0f);
    gpu_test_fill(g0q, nq, seed + 4, -1.0f, 1.0f);
    gpu_test_fill(g0k, nk, seed + 5, -1.0f, 1.0f);
    gpu_test_fill(g0v, nk, seed + 6, -1.0f, 1.0f);

    /* The reference: forward, then the backward from its own out and lse onto the starting values. */
    float *out = calloc(nq, sizeof *out), *lse = calloc(nl > 0 ? nl : 1, sizeof *lse);
    float *rq = gpu_test_host_copy(g0q, nq), *rk = gpu_test_host_copy(g0k, nk), *rv = gpu_test_host_copy(g0v, nk);
    attention_flash_forward_cpu(out, lse, q, k, v, c->seg, c->n_seg, c->heads, c->kv, c->hd, c->causal);
    attention_flash_backward_cpu(rq, rk, rv, dout, out, lse, q, k, v, c->seg, c->n_seg, c->heads, c->kv, c->hd,
                                 c->causal);

    float *d_q = gpu_test_upload_floats(q, nq), *d_k = gpu_test_upload_floats(k, nk);
    float *d_v = gpu_test_upload_floats(v, nk), *d_do = gpu_test_upload_floats(dout, nq);
    float *d_out = NULL, *d_lse = NULL; /* NaN: every entry must be written */
    CUDA_CHECK(cudaMalloc((void **)&d_out, (size_t)nq * sizeof *d_out));
    CUDA_CHECK(cudaMemset(d_out, 0xff, (size_t)nq * sizeof *d_out));
    CUDA_CHECK(cudaMalloc((void **)&d_lse, (size_t)(nl > 0 ? nl : 1) * sizeof *d_lse));
    CUDA_CHECK(cudaMemset(d_lse, 0xff, (size_t)(nl > 0 ? nl : 1) * sizeof *d_lse));
    attention_flash_forward_cuda(d_out, d_lse, d_q, d_k, d_v, c->seg, c->n_seg, c->heads, c->kv, c->hd, c->causal,
                                 blas);
    float *got = gpu_test_download_floats(d_out, nq), *got_l = gpu_test_download_floats(d_lse, nl);
    double e_out = test_rel_err(got, out, nq), e_lse = test_rel_err(got_l, lse, nl);
    CHECK_MSG(ts, e_out < TOL_OUT && e_lse < TOL_LSE, "T %ld heads %d/%d hd %d causal %d: out err %g, lse err %g", T,
              c->heads, c->kv, c->hd, c->causal, e_out, e_lse);

    /* The backward from the device's own out and lse (the reference's are within the bounds above). */
    float *d_gq = gpu_test_upload_floats(g0q, nq), *d_gk = gpu_test_upload_floats(g0k, nk);
    float *d_gv = gpu_test_upload_floats(g0v, nk);
    attention_flash_backward_cuda(d_gq, d_gk, d_gv, d_do, d_out, d_lse, d_q, d_k, d_v, c->seg, c->n_seg, c->heads,
                                  c->kv, c->hd, c->causal, blas);
    float *gq = gpu_test_download_floats(d_gq, nq), *gk = gpu_test_download_floats(d_gk, nk);
    float *gv = gpu_test_download_floats(d_gv, nk);
    double eq = test_rel_err(gq, rq, nq), ek = test_rel_err(gk, rk, nk), ev = test_rel_err(gv, rv, nk);
    CHECK_MSG(ts, eq < TOL_GRAD && ek < TOL_GRAD && ev < TOL_GRAD,
              "T %ld heads %d/%d hd %d causal %d: dq err %g, dk err %g, dv err %g", T, c->heads, c->kv, c->hd,
              c->causal, eq, ek, ev);

    /* Each gradient alone, again from the starting values: bitwise the joint call's. */
    float *d_a = gpu_test_upload_floats(g0q, nq), *d_b = gpu_test_upload_floats(g0k, nk);
    float *d_c = gpu_test_upload_floats(g0v, nk);
    attention_flash_backward_cuda(d_a, NULL, NULL, d_do, d_out, d_lse, d_q, d_k, d_v, c->seg, c->n_seg, c->heads,
                                  c->kv, c->hd, c->causal, blas);
    attention_flash_backward_cuda(NULL, d_b, NULL, d_do, d_out, d_lse, d_q, d_k, d_v, c->seg, c->n_seg, c->heads,
                                  c->kv, c->hd, c->causal, blas);
    attention_flash_backward_cuda(NULL, NULL, d_c, d_do, d_out, d_lse, d_q, d_k, d_v, c->seg, c->n_seg, c->heads,
                                  c->kv, c->hd, c->causal, blas);
    CHECK_MSG(ts,
              gpu_test_dev_same_host(d_a, gq, nq) && gpu_test_dev_same_host(d_b, gk, nk) &&
                  gpu_test_dev_same_host(d_c, gv, nk),
              "T %ld heads %d/%d hd %d causal %d: a gradient alone differs from the joint call", T, c->heads, c->kv,
              c->hd, c->causal);
    /* The forward again: the same bits. */
    attention_flash_forward_cuda(d_a, d_b, d_q, d_k, d_v, c->seg, c->n_seg, c->heads, c->kv, c->hd, c->causal, blas);
    CHECK_MSG(ts, gpu_test_dev_same_host(d_a, got, nq) && gpu_test_dev_same_host(d_b, got_l, nl),
              "T %ld heads %d/%d hd %d causal %d: a second forward differs", T, c->heads, c->kv, c->hd, c->causal);

    /* Operands one float past 16-byte alignment take the kernels' scalar loads: the same bits. */
    float *m_q = off_by_one(q, nq), *m_k = off_by_one(k, nk), *m_v = off_by_one(v, nk), *m_do = off_by_one(dout, nq);
    CUDA_CHECK(cudaMemcpy(d_a, g0q, (size_t)nq * sizeof *d_a, cudaMemcpyHostToDevice));
    CUDA_CHECK(cudaMemcpy(d_b, g0k, (size_t)nk * sizeof *d_b, cudaMemcpyHostToDevice));
    CUDA_CHECK(cudaMemcpy(d_c, g0v, (size_t)nk * sizeof *d_c, cudaMemcpyHostToDevice));
    attention_flash_forward_cuda(d_out, d_lse, m_q + 1, m_k + 1, m_v + 1, c->seg, c->n_seg, c->heads, c->kv, c->hd,
                                 c->causal, blas);
    attention_flash_backward_cuda(d_a, d_b, d_c, m_do + 1, d_out, d_lse, m_q + 1, m_k + 1, m_v + 1, c->seg, c->n_seg,
                                  c->heads, c->kv, c->hd, c->causal, blas);
    CHECK_MSG(ts,
              gpu_test_dev_same_host(d_out, got, nq) && gpu_test_dev_same_host(d_lse, got_l, nl) &&
                  gpu_test_dev_same_host(d_a, gq, nq) && gpu_test_dev_same_host(d_b, gk, nk) &&
                  gpu_test_dev_same_host(d_c, gv, nk),
              "T %ld heads %d/%d hd %d causal %d: unaligned operands give other bits", T, c->heads, c->kv, c->hd,
              c->causal);

    float *dev[] = {d_q, d_k, d_v, d_do, d_out, d_lse, d_gq, d_gk, d_gv, d_a, d_b, d_c, m_q, m_k, m_v, m_do};
    for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++) CUDA_CHECK(cudaFree(dev[i]));
    float *host[] = {q, k, v, dout, g0q, g0k, g0v, out, lse, rq, rk, rv, got, got_l, gq, gk, gv};
    for (size_t i = 0; i < sizeof host / sizeof host[0]; i++) free(host[i]);
}

static void test_against_reference(struct test_state *ts, void *ctx)
{
    const struct gpu_blas *blas = ctx;
#ifdef MMUPT_SIMT
    static const int one[] = {0, 70};                   /* past a q tile, three dq key steps */
#else
    static const int one[] = {0, 130};                  /* past two q tiles, five dq key steps */
#endif
    static const int runs[] = {0, 65, 130, 195, 195, 201}; /* a run of three 65s, an empty one, a lone 6 */
    static const int mixed[] = {0, 1, 17, 81};          /* 1, 16 (a dk/dv step), 64 (a tile) */
    static const struct {
        const int *seg;
        int n_seg, heads, kv, hd;
    } shapes[] = {
        {mixed, 3, 4, 2, 16},   /* the fixtures' head size */
        {runs, 5, 2, 2, 64},    /* no GQA; grid z */
#ifdef MMUPT_SIMT
        {one, 1, 6, 1, 128},    /* one kv head's group of the 1.5B decoder */
#else
        {one, 1, 12, 2, 128},   /* the 1.5B decoder's heads */
#endif
        {mixed, 3, 2, 1, 80},   /* vision's head size */
        {runs, 5, 4, 2, 128},
    };
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int causal = 0; causal <= 1; causal++) {
#ifdef MMUPT_SIMT
            if (s == sizeof shapes / sizeof shapes[0] - 1) continue;
#endif
            if (!gpu_test_keep((int)s + causal, 2)) continue;
            struct fl_case c = {shapes[s].seg, shapes[s].n_seg, shapes[s].heads, shapes[s].kv, shapes[s].hd, causal};
            fl_case_run(ts, &c, blas);
        }
}

static void test_supported(struct test_state *ts, void *ctx)
{
    (void)ctx;
    static const int yes[] = {16, 32, 64, 80, 128}, no[] = {8, 48, 72, 96, 100, 256};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) CHECK(ts, attention_flash_supported(yes[i]));
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++) CHECK(ts, !attention_flash_supported(no[i]));
}

int main(void)
{
    struct test_state ts = {0};
    struct gpu_blas blas;
    cudaStream_t st;
    if (gpu_test_blas_open(&blas, &st)) return 1;
    RUN_WITH(&ts, test_against_reference, &blas);
    RUN_WITH(&ts, test_supported, &blas);
    gpu_test_blas_close(&blas, st);
    return test_summary(&ts);
}
