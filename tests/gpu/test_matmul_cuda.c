/* Linear layers: the cuBLAS twins against the CPU reference (forward with and without bias, every
 * gradient, accumulation into pre-filled gradients). Tolerance: both sides are fp32 with different
 * summation orders; the error of a K-term dot product grows like sqrt(K) * 6e-8 on average, so the
 * largest difference relative to the largest reference value stays below 1e-5 for K <= 5000 - the
 * test asserts 2e-5. The bf16 twins (mixed precision) against their CPU references: the same
 * rounded operands (the cast twin must equal the reference bit for bit, NaN included), products
 * exact in fp32, so again only the summation order differs - the same 2e-5 bound, unless tensor
 * cores accumulate in less than fp32 (then this test is the one that says so). The bf16-dout
 * backward (matmul_backward_bf16_dy) against the fp32-dout one fed the same dout rounded to bf16
 * first: the same operands, so again the 2e-5 bound (and against its CPU reference); with inp's
 * rounding given (inp16; inp itself NULL then, as a bf16 learner that keeps only the rounding calls
 * it, and likewise in the forward with the cast done), and with dinp or dweight assigned (a beta of
 * 0, the buffer NaN beforehand) against accumulated into zeros; the same backward into a bf16 dinp
 * (matmul_backward_bf16_dy16) within one bf16 step of the fp32 one's values; the forward with a
 * residual added in cuBLASLt's epilogue (matmul_forward_bf16_res) against the reference's product +
 * residual, the same 2e-5 bound, the residual's buffer unwritten. The bf16 checks again with GEMM
 * tuning on (cuBLASLt plans, candidates timed), and tuning around a graph capture. Skips (exit 77)
 * without a GPU. */
#include "gpu_test.h"
#include "mmupt/bf16.h"
#include "mmupt/gemm_tune_file.h"
#include "mmupt/gpu_blas.h"
#include "mmupt/kernels.h"

struct bufs {
    float *inp, *w, *b, *dout, *dinp, *dw, *db;
};

static void host_alloc(struct bufs *h, int M, int K, int N, unsigned seed)
{
    h->inp = malloc((size_t)M * K * sizeof(float));
    h->w = malloc((size_t)N * K * sizeof(float));
    h->b = malloc((size_t)N * sizeof(float));
    h->dout = malloc((size_t)M * N * sizeof(float));
    h->dinp = malloc((size_t)M * K * sizeof(float));
    h->dw = malloc((size_t)N * K * sizeof(float));
    h->db = malloc((size_t)N * sizeof(float));
    gpu_test_fill(h->inp, (size_t)M * K, seed, -1, 1);
    gpu_test_fill(h->w, (size_t)N * K, seed + 1, -0.1f, 0.1f);
    gpu_test_fill(h->b, (size_t)N, seed + 2, -1, 1);
    gpu_test_fill(h->dout, (size_t)M * N, seed + 3, -1, 1);
    /* Pre-filled gradients: the twins must add, as the reference does. */
    gpu_test_fill(h->dinp, (size_t)M * K, seed + 4, -1, 1);
    gpu_test_fill(h->dw, (size_t)N * K, seed + 5, -1, 1);
    gpu_test_fill(h->db, (size_t)N, seed + 6, -1, 1);
}

static void host_free(struct bufs *h)
{
    free(h->inp); free(h->w); free(h->b); free(h->dout); free(h->dinp); free(h->dw); free(h->db);
}

static void check(struct test_state *ts, const char *what, const float *dev, const float *want, size_t n, int M,
                  int K, int N)
{
    float *got = malloc(n * sizeof *got);
    gpu_test_download(got, dev, n * sizeof *got);
    double e = test_rel_err(got, want, (int64_t)n);
    CHECK_MSG(ts, e < 2e-5, "%s M=%d K=%d N=%d: error %g relative to the largest value", what, M, K, N, e);
    free(got);
}

/* A bf16 result (device, n values) against the fp32 values it rounds (want): each within one bf16
 * step of its reference value, plus the 2e-5 summation-order bound relative to the largest value (a
 * cancellation). */
static void check_rounded(struct test_state *ts, const char *what, const uint16_t *dev16, const float *want, size_t n,
                          int M, int K, int N)
{
    uint16_t *got16 = malloc((n ? n : 1) * sizeof *got16);
    gpu_test_download(got16, dev16, n * sizeof *got16);
    double big = 0;
    for (size_t i = 0; i < n; i++) big = fabs(want[i]) > big ? fabs(want[i]) : big;
    size_t bad = n;
    for (size_t i = 0; i < n && bad == n; i++) {
        double g = bf16_to_f32(got16[i]), w = want[i];
        if (!(fabs(g - w) <= fabs(w) / 128.0 + 2e-5 * big)) bad = i;
    }
    CHECK_MSG(ts, bad == n, "%s M=%d K=%d N=%d: value %zu is %g, want ~%g", what, M, K, N, bad,
              bad < n ? bf16_to_f32(got16[bad]) : 0.0, bad < n ? want[bad] : 0.0);
    free(got16);
}

static void run_shape(struct test_state *ts, const struct gpu_blas *blas, int M, int K, int N, int with_bias)
{
    struct bufs h;
    host_alloc(&h, M, K, N, (unsigned)(M * 7 + K * 3 + N));
    size_t mk = (size_t)M * K, nk = (size_t)N * K, mn = (size_t)M * N;
    float *d_inp = gpu_test_upload(h.inp, mk * 4), *d_w = gpu_test_upload(h.w, nk * 4);
    float *d_b = gpu_test_upload(h.b, (size_t)N * 4), *d_dout = gpu_test_upload(h.dout, mn * 4);
    float *d_dinp = gpu_test_upload(h.dinp, mk * 4), *d_dw = gpu_test_upload(h.dw, nk * 4);
    float *d_db = gpu_test_upload(h.db, (size_t)N * 4), *d_out = NULL;
    CUDA_CHECK(cudaMalloc((void **)&d_out, mn * 4));

    float *ref = malloc(mn * sizeof *ref);
    matmul_forward_blocked_cpu(ref, h.inp, h.w, with_bias ? h.b : NULL, M, K, N);
    matmul_forward_cuda(d_out, d_inp, d_w, with_bias ? d_b : NULL, M, K, N, blas);
    check(ts, with_bias ? "forward + bias" : "forward", d_out, ref, mn, M, K, N);

    matmul_backward_blocked_cpu(h.dinp, h.dw, with_bias ? h.db : NULL, h.dout, h.inp, h.w, M, K, N);
    matmul_backward_cuda(d_dinp, d_dw, with_bias ? d_db : NULL, d_dout, d_inp, d_w, M, K, N, blas);
    check(ts, "dinp (accumulated)", d_dinp, h.dinp, mk, M, K, N);
    check(ts, "dweight (accumulated)", d_dw, h.dw, nk, M, K, N);
    if (with_bias) check(ts, "dbias (accumulated)", d_db, h.db, (size_t)N, M, K, N);

    cudaFree(d_inp); cudaFree(d_w); cudaFree(d_b); cudaFree(d_dout); cudaFree(d_dinp); cudaFree(d_dw);
    cudaFree(d_db); cudaFree(d_out);
    free(ref);
    host_free(&h);
}

/* The bf16 twins on one shape: forward (+ bias), every gradient accumulated. */
static void run_shape_bf16(struct test_state *ts, const struct gpu_blas *blas, int M, int K, int N)
{
    struct bufs h;
    host_alloc(&h, M, K, N, (unsigned)(M * 5 + K * 11 + N));
    size_t mk = (size_t)M * K, nk = (size_t)N * K, mn = (size_t)M * N;
    uint16_t *w16 = malloc(nk * sizeof *w16), *w16_dev = malloc(nk * sizeof *w16_dev);
    cast_bf16_cpu(w16, h.w, (long)nk);
    float *d_inp = gpu_test_upload(h.inp, mk * 4), *d_wf = gpu_test_upload(h.w, nk * 4);
    float *d_b = gpu_test_upload(h.b, (size_t)N * 4), *d_dout = gpu_test_upload(h.dout, mn * 4);
    float *d_dinp = gpu_test_upload(h.dinp, mk * 4), *d_dw = gpu_test_upload(h.dw, nk * 4);
    float *d_db = gpu_test_upload(h.db, (size_t)N * 4), *d_out = NULL;
    uint16_t *d_w16 = NULL, *d_scratch = NULL;
    CUDA_CHECK(cudaMalloc((void **)&d_out, mn * 4));
    CUDA_CHECK(cudaMalloc((void **)&d_w16, nk * 2));
    CUDA_CHECK(cudaMalloc((void **)&d_scratch, (size_t)matmul_bf16_backward_scratch(M, K, N) * 2));
    cast_bf16_cuda(d_w16, d_wf, (long)nk, blas->stream);
    gpu_test_download(w16_dev, d_w16, nk * sizeof *w16_dev);
    CHECK_MSG(ts, memcmp(w16, w16_dev, nk * sizeof *w16) == 0, "cast_bf16_cuda differs from cast_bf16_cpu");

    float *ref = malloc(mn * sizeof *ref);
    matmul_forward_bf16_cpu(ref, h.inp, w16, h.b, M, K, N);
    matmul_forward_bf16_cuda(d_out, d_inp, d_w16, d_b, M, K, N, d_scratch, 0, blas);
    check(ts, "bf16 forward + bias", d_out, ref, mn, M, K, N);
    CUDA_CHECK(cudaMemset(d_out, 0xff, mn * 4));
    matmul_forward_bf16_cuda(d_out, d_inp, d_w16, d_b, M, K, N, d_scratch, 1, blas); /* the cast reused */
    check(ts, "bf16 forward, cast reused", d_out, ref, mn, M, K, N);
    CUDA_CHECK(cudaMemset(d_out, 0xff, mn * 4));
    matmul_forward_bf16_cuda(d_out, NULL, d_w16, d_b, M, K, N, d_scratch, 1, blas); /* only the rounding kept */
    check(ts, "bf16 forward, inp NULL", d_out, ref, mn, M, K, N);
    /* a residual added in the epilogue (matmul_forward_bf16_res: cuBLASLt's C read from res, D the
     * output): the reference's product + res, the same bound; res itself untouched */
    float *res = malloc(mn * sizeof *res), *ref_res = malloc(mn * sizeof *ref_res), *res_back = malloc(mn * sizeof *res);
    for (size_t i = 0; i < mn; i++) res[i] = h.dout[(i * 7) % mn] * 3.0f; /* values of the products' size */
    float *d_res = gpu_test_upload(res, mn * 4);
    matmul_forward_bf16_res_cpu(ref_res, res, h.inp, w16, M, K, N);
    CUDA_CHECK(cudaMemset(d_out, 0xff, mn * 4));
    matmul_forward_bf16_res_cuda(d_out, d_res, NULL, d_w16, M, K, N, d_scratch, 1, blas);
    check(ts, "bf16 forward + residual", d_out, ref_res, mn, M, K, N);
    gpu_test_download(res_back, d_res, mn * sizeof *res_back);
    CHECK_MSG(ts, memcmp(res, res_back, mn * sizeof *res) == 0, "matmul_forward_bf16_res M=%d K=%d N=%d wrote res", M,
              K, N);
    CUDA_CHECK(cudaMemset(d_out, 0xff, mn * 4));
    matmul_forward_bf16_res_cuda(d_out, d_res, d_inp, d_w16, M, K, N, d_scratch, 0, blas); /* rounding inp itself */
    check(ts, "bf16 forward + residual, cast here", d_out, ref_res, mn, M, K, N);
    cudaFree(d_res);
    free(res), free(ref_res), free(res_back);
    /* bf16 out, no bias: each value the rounding of the fp32 product, up to the summation order -
     * within one bf16 step of the reference's value (plus the 2e-5 order bound at cancellations) */
    float *ref_nb = malloc(mn * sizeof *ref_nb);
    uint16_t *d_out16 = NULL;
    matmul_forward_bf16_cpu(ref_nb, h.inp, w16, NULL, M, K, N);
    CUDA_CHECK(cudaMalloc((void **)&d_out16, mn * 2));
    CUDA_CHECK(cudaMemset(d_out16, 0xff, mn * 2));
    matmul_forward_bf16_out16_cuda(d_out16, NULL, d_w16, M, K, N, d_scratch, 1, blas);
    check_rounded(ts, "bf16 forward into bf16", d_out16, ref_nb, mn, M, K, N);
    uint16_t *ref16 = malloc(mn * sizeof *ref16);
    matmul_forward_bf16_out16_cpu(ref16, h.inp, w16, M, K, N);
    size_t same = 0;
    for (size_t i = 0; i < mn; i++) same += ref16[i] == bf16_from_f32(ref_nb[i]);
    CHECK_MSG(ts, same == mn, "matmul_forward_bf16_out16_cpu M=%d K=%d N=%d: not the reference rounded", M, K, N);
    cudaFree(d_out16);
    free(ref_nb), free(ref16);
    matmul_backward_bf16_cpu(h.dinp, h.dw, h.db, h.dout, h.inp, w16, M, K, N);
    matmul_backward_bf16_cuda(d_dinp, 1.0f, d_dw, 1.0f, d_db, d_dout, d_inp, NULL, d_w16, M, K, N, d_scratch, blas);
    check(ts, "bf16 dinp (accumulated)", d_dinp, h.dinp, mk, M, K, N);
    check(ts, "bf16 dweight (accumulated)", d_dw, h.dw, nk, M, K, N);
    check(ts, "bf16 dbias (accumulated)", d_db, h.db, (size_t)N, M, K, N);

    cudaFree(d_inp); cudaFree(d_wf); cudaFree(d_b); cudaFree(d_dout); cudaFree(d_dinp); cudaFree(d_dw);
    cudaFree(d_db); cudaFree(d_out); cudaFree(d_w16); cudaFree(d_scratch);
    free(ref); free(w16); free(w16_dev);
    host_free(&h);
}

/* check() against another device result (the same GEMMs on the same operands: equal up to the
 * summation order cuBLAS picks, which may depend on the operands' alignment). */
static void check_dev(struct test_state *ts, const char *what, const float *d_got, const float *d_want, size_t n,
                      int M, int K, int N)
{
    float *want = gpu_test_download_floats(d_want, n);
    check(ts, what, d_got, want, n, M, K, N);
    free(want);
}

/* The bf16-dout backward into bf16 (matmul_backward_bf16_dy16, inp's rounding given): dinp16 within a
 * bf16 step of the fp32 dinp (matmul_backward_bf16_dy's, assigned; its old contents NaN beforehand),
 * dweight the same GEMM as there, assigned (NaN beforehand) and added; the CPU twin's dinp16 exactly
 * the CPU fp32 product rounded. inp/w16/dy16: the host operands; d_*: their device copies. */
static void run_dy16(struct test_state *ts, const struct gpu_blas *blas, int M, int K, int N, const float *inp,
                     const uint16_t *w16, const uint16_t *dy16, const uint16_t *d_dy16, const uint16_t *d_w16)
{
    size_t mk = (size_t)M * K, nk = (size_t)N * K;
    uint16_t *x16 = malloc(mk * sizeof *x16), *ref16 = malloc(mk * sizeof *ref16), *d_dinp16 = NULL;
    cast_bf16_cpu(x16, inp, (long)mk);
    uint16_t *d_x16 = gpu_test_upload(x16, mk * 2);
    float *d_dinp = NULL, *d_dw = NULL, *d_dw16 = NULL;
    CUDA_CHECK(cudaMalloc((void **)&d_dinp16, mk * 2));
    CUDA_CHECK(cudaMalloc((void **)&d_dinp, mk * 4));
    CUDA_CHECK(cudaMalloc((void **)&d_dw, nk * 4));
    CUDA_CHECK(cudaMalloc((void **)&d_dw16, nk * 4));
    CUDA_CHECK(cudaMemset(d_dinp16, 0xff, mk * 2));
    CUDA_CHECK(cudaMemset(d_dinp, 0xff, mk * 4));
    CUDA_CHECK(cudaMemset(d_dw, 0xff, nk * 4));
    CUDA_CHECK(cudaMemset(d_dw16, 0xff, nk * 4));
    matmul_backward_bf16_dy_cuda(d_dinp, 0.0f, d_dw, 0.0f, d_dy16, NULL, d_x16, d_w16, M, K, N, NULL, blas);
    matmul_backward_bf16_dy16_cuda(d_dinp16, d_dw16, 0.0f, d_dy16, d_x16, d_w16, M, K, N, blas);
    float *want = gpu_test_download_floats(d_dinp, mk);
    check_rounded(ts, "bf16-dy16 dinp16", d_dinp16, want, mk, M, K, N);
    check_dev(ts, "bf16-dy16 dweight assigned", d_dw16, d_dw, nk, M, K, N);
    matmul_backward_bf16_dy16_cuda(NULL, d_dw16, 1.0f, d_dy16, d_x16, d_w16, M, K, N, blas); /* dweight alone, added */
    matmul_backward_bf16_dy_cuda(NULL, 0.0f, d_dw, 1.0f, d_dy16, NULL, d_x16, d_w16, M, K, N, NULL, blas);
    check_dev(ts, "bf16-dy16 dweight added", d_dw16, d_dw, nk, M, K, N);

    float *dinp_ref = calloc(mk ? mk : 1, sizeof *dinp_ref);
    matmul_backward_bf16_dy_cpu(dinp_ref, NULL, dy16, inp, w16, M, K, N);
    matmul_backward_bf16_dy16_cpu(ref16, NULL, dy16, x16, w16, M, K, N);
    size_t same = 0;
    for (size_t i = 0; i < mk; i++) same += ref16[i] == bf16_from_f32(dinp_ref[i]);
    CHECK_MSG(ts, same == mk, "matmul_backward_bf16_dy16_cpu M=%d K=%d N=%d: not the reference rounded", M, K, N);
    check_rounded(ts, "bf16-dy16 dinp16 vs CPU", d_dinp16, dinp_ref, mk, M, K, N);
    cudaFree(d_x16); cudaFree(d_dinp16); cudaFree(d_dinp); cudaFree(d_dw); cudaFree(d_dw16);
    free(x16), free(ref16), free(want), free(dinp_ref);
}

/* The bf16-dout backward on one shape: against matmul_backward_bf16 given the same dout rounded to
 * bf16 (widened back to fp32), and against its CPU reference; gradients accumulated. dweight NULL:
 * dinp only, the scratch (exactly M*K values, so an overrun faults under the SIMT interpreter)
 * untouched. */
static void run_shape_bf16_dy(struct test_state *ts, const struct gpu_blas *blas, int M, int K, int N)
{
    struct bufs h;
    host_alloc(&h, M, K, N, (unsigned)(M * 3 + K * 13 + N));
    size_t mk = (size_t)M * K, nk = (size_t)N * K, mn = (size_t)M * N;
    uint16_t *w16 = malloc(nk * sizeof *w16), *dy16 = malloc(mn * sizeof *dy16);
    float *dyr = malloc(mn * sizeof *dyr), *dinp_ref = malloc(mk * sizeof *dinp_ref);
    float *dw_ref = malloc(nk * sizeof *dw_ref);
    cast_bf16_cpu(w16, h.w, (long)nk);
    cast_bf16_cpu(dy16, h.dout, (long)mn);
    for (size_t i = 0; i < mn; i++) dyr[i] = bf16_to_f32(dy16[i]);
    memcpy(dinp_ref, h.dinp, mk * sizeof *dinp_ref);
    memcpy(dw_ref, h.dw, nk * sizeof *dw_ref);
    float *d_inp = gpu_test_upload(h.inp, mk * 4), *d_dyr = gpu_test_upload(dyr, mn * 4);
    float *d_dinp = gpu_test_upload(h.dinp, mk * 4), *d_dw = gpu_test_upload(h.dw, nk * 4);
    float *d_dinp1 = gpu_test_upload(h.dinp, mk * 4), *d_dw1 = gpu_test_upload(h.dw, nk * 4);
    uint16_t *d_w16 = gpu_test_upload(w16, nk * 2), *d_dy16 = gpu_test_upload(dy16, mn * 2);
    uint16_t *d_scratch = NULL, *d_scratch_f = NULL;
    CUDA_CHECK(cudaMalloc((void **)&d_scratch, mk * 2));
    CUDA_CHECK(cudaMalloc((void **)&d_scratch_f, (size_t)matmul_bf16_backward_scratch(M, K, N) * 2));

    matmul_backward_bf16_cuda(d_dinp, 1.0f, d_dw, 1.0f, NULL, d_dyr, d_inp, NULL, d_w16, M, K, N, d_scratch_f, blas);
    matmul_backward_bf16_dy_cuda(d_dinp1, 1.0f, d_dw1, 1.0f, d_dy16, d_inp, NULL, d_w16, M, K, N, d_scratch, blas);
    float *want = gpu_test_download_floats(d_dinp, mk);
    check(ts, "bf16-dy dinp vs fp32 dout", d_dinp1, want, mk, M, K, N);
    free(want);
    want = gpu_test_download_floats(d_dw, nk);
    check(ts, "bf16-dy dweight vs fp32 dout", d_dw1, want, nk, M, K, N);
    free(want);
    matmul_backward_bf16_dy_cpu(dinp_ref, dw_ref, dy16, h.inp, w16, M, K, N);
    check(ts, "bf16-dy dinp vs CPU", d_dinp1, dinp_ref, mk, M, K, N);
    check(ts, "bf16-dy dweight vs CPU", d_dw1, dw_ref, nk, M, K, N);

    /* inp's rounding kept by the caller (inp16): the same GEMMs on the same operands; no scratch for
     * the bf16 dy, and only dout's rounding (exactly M*N values) for the fp32 one */
    uint16_t *x16 = malloc(mk * sizeof *x16), *d_scratch_dy = NULL;
    cast_bf16_cpu(x16, h.inp, (long)mk);
    uint16_t *d_x16 = gpu_test_upload(x16, mk * 2);
    float *d_dinp2 = gpu_test_upload(h.dinp, mk * 4), *d_dw2 = gpu_test_upload(h.dw, nk * 4);
    float *d_dinp3 = gpu_test_upload(h.dinp, mk * 4), *d_dw3 = gpu_test_upload(h.dw, nk * 4);
    CUDA_CHECK(cudaMalloc((void **)&d_scratch_dy, mn * 2));
    /* (inp NULL here: given inp16, the caller may keep no fp32 input at all) */
    matmul_backward_bf16_dy_cuda(d_dinp2, 1.0f, d_dw2, 1.0f, d_dy16, NULL, d_x16, d_w16, M, K, N, NULL, blas);
    check_dev(ts, "bf16-dy with inp16, inp NULL: dinp", d_dinp2, d_dinp1, mk, M, K, N);
    check_dev(ts, "bf16-dy with inp16, inp NULL: dweight", d_dw2, d_dw1, nk, M, K, N);
    matmul_backward_bf16_cuda(d_dinp3, 1.0f, d_dw3, 1.0f, NULL, d_dyr, d_inp, d_x16, d_w16, M, K, N, d_scratch_dy, blas);
    check_dev(ts, "bf16 backward with inp16: dinp", d_dinp3, d_dinp, mk, M, K, N);
    check_dev(ts, "bf16 backward with inp16: dweight", d_dw3, d_dw, nk, M, K, N);
    cudaFree(d_x16); cudaFree(d_dinp2); cudaFree(d_dw2); cudaFree(d_dinp3); cudaFree(d_dw3); cudaFree(d_scratch_dy);
    free(x16);

    /* dinp_beta 0: dinp assigned, its old contents (NaN here) unread - the product alone, as
     * accumulating into zeros gives it */
    float *zeros = calloc(mk, sizeof *zeros), *d_dinp4 = NULL, *d_dinp5 = gpu_test_upload(zeros, mk * 4);
    CUDA_CHECK(cudaMalloc((void **)&d_dinp4, mk * 4));
    CUDA_CHECK(cudaMemset(d_dinp4, 0xff, mk * 4));
    matmul_backward_bf16_dy_cuda(d_dinp4, 0.0f, NULL, 1.0f, d_dy16, d_inp, NULL, d_w16, M, K, N, NULL, blas);
    matmul_backward_bf16_dy_cuda(d_dinp5, 1.0f, NULL, 1.0f, d_dy16, d_inp, NULL, d_w16, M, K, N, NULL, blas);
    check_dev(ts, "bf16-dy dinp assigned", d_dinp4, d_dinp5, mk, M, K, N);
    CUDA_CHECK(cudaMemset(d_dinp4, 0xff, mk * 4));
    matmul_backward_bf16_cuda(d_dinp4, 0.0f, NULL, 1.0f, NULL, d_dyr, d_inp, NULL, d_w16, M, K, N, d_scratch_f, blas);
    check_dev(ts, "bf16 dinp assigned", d_dinp4, d_dinp5, mk, M, K, N);
    cudaFree(d_dinp4); cudaFree(d_dinp5);
    free(zeros);

    /* dweight_beta 0 likewise: dweight assigned (NaN beforehand) equals accumulated into zeros */
    float *wzeros = calloc(nk, sizeof *wzeros), *d_dw4 = NULL, *d_dw5 = gpu_test_upload(wzeros, nk * 4);
    CUDA_CHECK(cudaMalloc((void **)&d_dw4, nk * 4));
    CUDA_CHECK(cudaMemset(d_dw4, 0xff, nk * 4));
    matmul_backward_bf16_dy_cuda(NULL, 1.0f, d_dw4, 0.0f, d_dy16, d_inp, NULL, d_w16, M, K, N, d_scratch, blas);
    matmul_backward_bf16_dy_cuda(NULL, 1.0f, d_dw5, 1.0f, d_dy16, d_inp, NULL, d_w16, M, K, N, d_scratch, blas);
    check_dev(ts, "bf16-dy dweight assigned", d_dw4, d_dw5, nk, M, K, N);
    CUDA_CHECK(cudaMemset(d_dw4, 0xff, nk * 4));
    CUDA_CHECK(cudaMemset(d_dw5, 0, nk * 4));
    matmul_backward_bf16_cuda(NULL, 1.0f, d_dw4, 0.0f, NULL, d_dyr, d_inp, NULL, d_w16, M, K, N, d_scratch_f, blas);
    matmul_backward_bf16_cuda(NULL, 1.0f, d_dw5, 1.0f, NULL, d_dyr, d_inp, NULL, d_w16, M, K, N, d_scratch_f, blas);
    check_dev(ts, "bf16 dweight assigned", d_dw4, d_dw5, nk, M, K, N);
    cudaFree(d_dw4); cudaFree(d_dw5);
    free(wzeros);

    /* dinp only: no scratch needed */
    matmul_backward_bf16_dy_cpu(dinp_ref, NULL, dy16, h.inp, w16, M, K, N);
    matmul_backward_bf16_dy_cuda(d_dinp1, 1.0f, NULL, 1.0f, d_dy16, d_inp, NULL, d_w16, M, K, N, NULL, blas);
    check(ts, "bf16-dy dinp only", d_dinp1, dinp_ref, mk, M, K, N);

    run_dy16(ts, blas, M, K, N, h.inp, w16, dy16, d_dy16, d_w16);

    cudaFree(d_inp); cudaFree(d_dyr); cudaFree(d_dinp); cudaFree(d_dw); cudaFree(d_dinp1); cudaFree(d_dw1);
    cudaFree(d_w16); cudaFree(d_dy16); cudaFree(d_scratch); cudaFree(d_scratch_f);
    free(w16); free(dy16); free(dyr); free(dinp_ref); free(dw_ref);
    host_free(&h);
}

/* The cast of special values: bit for bit, NaN payloads included. */
static void test_cast_specials(struct test_state *ts)
{
    const uint32_t bits[] = {0x3f808000u, 0x3f818000u, 0x7f800000u, 0xff800000u, 0x7fc00001u, 0x7f800001u,
                             0xffffffffu, 0x7f7fffffu, 0x00000001u, 0x80000000u, 0x3f807fffu, 0x3f808001u};
    enum { N = sizeof bits / sizeof bits[0] };
    float x[N];
    uint16_t want[N], got[N];
    memcpy(x, bits, sizeof x);
    cast_bf16_cpu(want, x, N);
    float *d_x = gpu_test_upload(x, sizeof x);
    uint16_t *d_y = NULL;
    CUDA_CHECK(cudaMalloc((void **)&d_y, sizeof got));
    cast_bf16_cuda(d_y, d_x, N, NULL);
    gpu_test_download(got, d_y, sizeof got);
    for (int i = 0; i < N; i++) CHECK_MSG(ts, got[i] == want[i], "cast(%#x): %#x, want %#x", bits[i], got[i], want[i]);
    cudaFree(d_x);
    cudaFree(d_y);
}

/* The stochastic twin: bitwise the reference (one integer rule, include/mmupt/bf16_sr.h) for specials
 * and 100003 values across the range, with the grid-stride loop's tail. */
static void test_cast_sr(struct test_state *ts)
{
    enum { N = 100003 };
    float *x = mmupt_xmalloc(N * sizeof *x);
    uint16_t *want = mmupt_xmalloc(N * sizeof *want), *got = mmupt_xmalloc(N * sizeof *got);
    gpu_test_fill(x, N, 77, -3.0f, 3.0f);
    const uint32_t sp[] = {0x7f800000u, 0xff800000u, 0x7fc00001u, 0x7f7fffffu, 0x00000001u, 0x80000000u};
    memcpy(x, sp, sizeof sp);
    cast_bf16_sr_cpu(want, x, N, 12345);
    float *d_x = gpu_test_upload(x, N * sizeof *x);
    uint16_t *d_y = NULL;
    CUDA_CHECK(cudaMalloc((void **)&d_y, N * sizeof *d_y));
    cast_bf16_sr_cuda(d_y, d_x, N, 12345, NULL);
    gpu_test_download(got, d_y, N * sizeof *got);
    long diff = 0;
    for (int i = 0; i < N; i++) diff += got[i] != want[i];
    CHECK_MSG(ts, diff == 0, "cast_bf16_sr_cuda: %ld of %d differ from cast_bf16_sr_cpu", diff, N);
    cudaFree(d_x);
    cudaFree(d_y);
    free(x), free(want), free(got);
}

static void test_shapes_bf16(struct test_state *ts)
{
    struct gpu_blas blas;
    struct mmupt_err err;
    CHECK_MSG(ts, gpu_blas_init(&blas, NULL, &err) == 0, "gpu_blas_init: %s", err.msg);
    run_shape_bf16(ts, &blas, 1, 1, 1);
    run_shape_bf16(ts, &blas, 7, 33, 65);
    run_shape_bf16(ts, &blas, 64, 896, 4864);
    run_shape_bf16(ts, &blas, 200, 1536, 256); /* a k/v projection of the 1.5B shape */
    run_shape_bf16_dy(ts, &blas, 1, 1, 1);
    run_shape_bf16_dy(ts, &blas, 7, 33, 65);
    run_shape_bf16_dy(ts, &blas, 20, 64, 1000); /* lm_head-like: a wide N */
    gpu_blas_free(&blas);
}

/* GEMM tuning (MMUPT_GEMM_TUNE=1): every bf16 GEMM through cuBLASLt's plans, each new shape's
 * candidate algorithms timed once. The same checks as untuned - in particular the accumulating calls
 * (beta 1) add their product exactly once: the timing runs must never touch the real accumulator. */
static void test_shapes_bf16_tuned(struct test_state *ts)
{
    struct gpu_blas blas;
    struct mmupt_err err;
    CHECK_MSG(ts, gpu_blas_init(&blas, NULL, &err) == 0, "gpu_blas_init: %s", err.msg);
    gpu_blas_set_tune(&blas, 1);
    run_shape_bf16(ts, &blas, 7, 33, 65);
    run_shape_bf16_dy(ts, &blas, 7, 33, 65);
    run_shape_bf16_dy(ts, &blas, 20, 64, 1000);
#ifndef MMUPT_SIMT /* the interpreter's GEMM loop makes this shape minutes of timing runs */
    run_shape_bf16(ts, &blas, 64, 896, 4864);
#endif
    struct gemm_lt_stats st;
    gemm_lt_stats(&blas, &st);
    /* a GPU may offer one algorithm for a shape (nothing to time); the interpreter offers two */
    CHECK_MSG(ts, st.plans >= 6 && st.tuned >= 1 && st.tuned <= st.plans, "tuning: %d plans, %d tuned", st.plans,
              st.tuned);
#ifdef MMUPT_SIMT
    CHECK_MSG(ts, st.tuned == st.plans, "tuning on the interpreter: %d plans, %d tuned", st.plans, st.tuned);
#endif
    gpu_blas_free(&blas);
}

/* Tuning and graph capture: a shape first seen inside a capture is recorded with cuBLASLt's first
 * choice and not timed (timing synchronises, which a capture may not), the graph computes the right
 * product, and the shape is tuned on its first call outside a capture. */
static void test_tune_in_capture(struct test_state *ts)
{
    enum { M = 5, K = 24, N = 40 };
    struct bufs h;
    host_alloc(&h, M, K, N, 9);
    uint16_t w16[N * K], x16[M * K];
    cast_bf16_cpu(w16, h.w, N * K);
    cast_bf16_cpu(x16, h.inp, M * K);
    float ref[M * N];
    matmul_forward_bf16_cpu(ref, h.inp, w16, NULL, M, K, N);
    uint16_t *d_w16 = gpu_test_upload(w16, sizeof w16), *d_x16 = gpu_test_upload(x16, sizeof x16);
    float *d_out = NULL;
    CUDA_CHECK(cudaMalloc((void **)&d_out, sizeof ref));
    cudaStream_t st;
    CUDA_CHECK(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
    struct gpu_blas blas;
    struct mmupt_err err;
    CHECK_MSG(ts, gpu_blas_init(&blas, st, &err) == 0, "gpu_blas_init: %s", err.msg);
    gpu_blas_set_tune(&blas, 1);
    cudaGraph_t graph = NULL;
    cudaGraphExec_t exec = NULL;
    CUDA_CHECK(cudaStreamBeginCapture(st, cudaStreamCaptureModeGlobal));
    matmul_forward_bf16_cuda(d_out, NULL, d_w16, NULL, M, K, N, d_x16, 1, &blas);
    CUDA_CHECK(cudaStreamEndCapture(st, &graph));
    struct gemm_lt_stats s0, s1;
    gemm_lt_stats(&blas, &s0);
    CHECK_MSG(ts, s0.plans == 1 && s0.tuned == 0, "inside the capture: %d plans, %d tuned", s0.plans, s0.tuned);
    CUDA_CHECK(cudaGraphInstantiate(&exec, graph, 0));
    CUDA_CHECK(cudaMemsetAsync(d_out, 0xff, sizeof ref, st));
    CUDA_CHECK(cudaGraphLaunch(exec, st));
    CUDA_CHECK(cudaStreamSynchronize(st));
    check(ts, "tuned GEMM recorded in a graph", d_out, ref, M * N, M, K, N);
    CUDA_CHECK(cudaMemsetAsync(d_out, 0xff, sizeof ref, st));
    matmul_forward_bf16_cuda(d_out, NULL, d_w16, NULL, M, K, N, d_x16, 1, &blas);
    CUDA_CHECK(cudaStreamSynchronize(st));
    check(ts, "tuned GEMM after the capture", d_out, ref, M * N, M, K, N);
    gemm_lt_stats(&blas, &s1);
    CHECK_MSG(ts, s1.plans == 1, "after the capture: %d plans (want the captured shape's one)", s1.plans);
#ifdef MMUPT_SIMT
    CHECK_MSG(ts, s1.tuned == 1, "after the capture: the shape not tuned (%d)", s1.tuned);
#endif
    cudaGraphExecDestroy(exec);
    cudaGraphDestroy(graph);
    gpu_blas_free(&blas);
    cudaStreamDestroy(st);
    cudaFree(d_w16); cudaFree(d_x16); cudaFree(d_out);
    host_free(&h);
}

/* A tuning file (MMUPT_GEMM_TUNE_FILE): the first run times every shape and writes its choices;
 * a second run with the file times nothing and takes them; another choice written into the file is
 * taken (and computes the same product); a file for another device is set aside and rewritten; a
 * malformed file is refused with its line and field, and left as it was. */
static int tune_run(struct test_state *ts, const char *path, struct gemm_lt_stats *st, struct mmupt_err *err)
{
    struct gpu_blas blas;
    CHECK_MSG(ts, gpu_blas_init(&blas, NULL, err) == 0, "gpu_blas_init: %s", err->msg);
    int rc = gpu_blas_set_tune_file(&blas, path, err);
    if (rc == 0) {
        run_shape_bf16(ts, &blas, 7, 33, 65);
        run_shape_bf16_dy(ts, &blas, 7, 33, 65);
        gemm_lt_stats(&blas, st);
    }
    gpu_blas_free(&blas);
    return rc;
}

static void test_tune_file(struct test_state *ts)
{
    char dir[] = "/tmp/mmupt_tune_XXXXXX", path[256];
    CHECK(ts, mkdtemp(dir) != NULL);
    snprintf(path, sizeof path, "%s/gemm.txt", dir);
    struct mmupt_err err;
    struct gemm_lt_stats st;
    struct gemm_tune_file f;
    CHECK_MSG(ts, tune_run(ts, path, &st, &err) == 0, "first run: %s", err.msg);
    CHECK_MSG(ts, st.tuned >= 1 && st.from_file == 0, "first run: %d tuned, %d from the file", st.tuned, st.from_file);
    CHECK_MSG(ts, gemm_tune_read(path, &f, &err) == 0 && f.n == st.tuned && f.device[0], "written: %d entries (%s)",
              f.n, err.msg);
    int tuned = st.tuned;
    CHECK_MSG(ts, tune_run(ts, path, &st, &err) == 0, "second run: %s", err.msg);
    CHECK_MSG(ts, st.tuned == 0 && st.from_file == tuned, "second run: %d tuned, %d from the file (want 0, %d)",
              st.tuned, st.from_file, tuned);
    for (int i = 0; i < f.n; i++) f.e[i].pick = (f.e[i].pick + 1) % f.e[i].found; /* the other answers */
    CHECK(ts, gemm_tune_write(&f, path, &err) == 0);
    CHECK_MSG(ts, tune_run(ts, path, &st, &err) == 0 && st.from_file == tuned, "edited file: %s", err.msg);
    gemm_tune_reset(&f, "another GPU", 1);
    CHECK(ts, gemm_tune_write(&f, path, &err) == 0);
    CHECK_MSG(ts, tune_run(ts, path, &st, &err) == 0 && st.tuned == tuned && st.from_file == 0, "other device: %s",
              err.msg);
    gemm_tune_free(&f);
    CHECK(ts, gemm_tune_read(path, &f, &err) == 0 && f.n == tuned && strcmp(f.device, "another GPU") != 0);
    gemm_tune_free(&f);
    static const char bad[] = "mmupt-gemm-tune 1\ndevice X\ncublaslt 1\n1 0 7\n";
    CHECK(ts, file_write_all(path, bad, sizeof bad - 1, &err) == 0);
    CHECK_MSG(ts, tune_run(ts, path, &st, &err) == -1 && strstr(err.msg, "gemm.txt:4: field n: missing"), "bad file: %s",
              err.msg);
    char *text = NULL;
    size_t len = 0;
    CHECK(ts, file_read_all(path, 1 << 20, &text, &len, &err) == 0 && len == sizeof bad - 1 &&
                  memcmp(text, bad, len) == 0); /* left as it was */
    free(text);
    remove(path);
    rmdir(dir);
}

static void test_shapes(struct test_state *ts)
{
    struct gpu_blas blas;
    struct mmupt_err err;
    CHECK_MSG(ts, gpu_blas_init(&blas, NULL, &err) == 0, "gpu_blas_init: %s", err.msg);
    run_shape(ts, &blas, 1, 1, 1, 1);
    run_shape(ts, &blas, 7, 33, 65, 1);     /* odd sizes: no tile happens to fit */
    run_shape(ts, &blas, 37, 80, 240, 0);   /* vision head-dim sized, no bias */
    run_shape(ts, &blas, 64, 896, 4864, 1); /* 0.5B MLP up-projection */
    gpu_blas_free(&blas);
}

int main(void)
{
    gpu_test_require_device();
    struct test_state ts = {0};
    RUN(&ts, test_shapes);
    RUN(&ts, test_cast_specials);
    RUN(&ts, test_cast_sr);
    RUN(&ts, test_shapes_bf16);
    RUN(&ts, test_shapes_bf16_tuned);
    RUN(&ts, test_tune_in_capture);
    RUN(&ts, test_tune_file);
    return test_summary(&ts);
}
