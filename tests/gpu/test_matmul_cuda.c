/* Linear layers: the cuBLAS twins against the CPU reference (forward with and without bias, every
 * gradient, accumulation into pre-filled gradients). Tolerance: both sides are fp32 with different
 * summation orders; the error of a K-term dot product grows like sqrt(K) * 6e-8 on average, so the
 * largest difference relative to the largest reference value stays below 1e-5 for K <= 5000 - the
 * test asserts 2e-5. Skips (exit 77) without a GPU. */
#include "gpu_test.h"
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
    return test_summary(&ts);
}
