/* RMSNorm forward: the CUDA twin against the CPU reference on random data. Skips (exit 77) without
 * a GPU, saying why. (The backward is in test_norm_cuda.c.)
 *
 * Tolerance 1e-5 in gpu_test_err's measure, for out and rstd: fp32 on one row whose sum of squares
 * runs in another order than the reference's double sum (expected error a few 1e-7). Running in
 * place (out == x) with rstd not wanted must give the same bits: the kernel is deterministic, so a
 * difference would be a race between reading x and writing out. */
#include <cuda_runtime.h>
#include <stdlib.h>
#include <string.h>

#include "gpu_test.h"
#include "mmupt/err.h"
#include "mmupt/kernels.h"

static void run_shape(struct test_state *ts, int rows, int dim)
{
    size_t n = (size_t)rows * dim, xb = n * sizeof(float), wb = (size_t)dim * sizeof(float);
    size_t rb = (size_t)rows * sizeof(float);
    float *x = mmupt_xmalloc(xb), *w = mmupt_xmalloc(wb), *ref = mmupt_xmalloc(xb), *got = mmupt_xmalloc(xb);
    float *rref = mmupt_xmalloc(rb), *rgot = mmupt_xmalloc(rb), *alias = mmupt_xmalloc(xb);
    gpu_test_fill(x, n, (unsigned)(rows * 31 + dim), -2.0f, 2.0f);
    gpu_test_fill(w, (size_t)dim, (unsigned)(rows * 31 + dim + 1), 0.5f, 1.5f);
    rmsnorm_forward_cpu(ref, rref, x, w, rows, dim, 1e-6f);

    float *d_x = gpu_test_upload(x, xb), *d_w = gpu_test_upload(w, wb), *d_out = NULL, *d_rstd = NULL;
    CUDA_CHECK(cudaMalloc((void **)&d_out, xb));
    CUDA_CHECK(cudaMalloc((void **)&d_rstd, rb));
    rmsnorm_forward_cuda(d_out, d_rstd, d_x, d_w, rows, dim, 1e-6f, NULL);
    gpu_test_download(got, d_out, xb);
    gpu_test_download(rgot, d_rstd, rb);
    float eo = gpu_test_err(got, ref, n), er = gpu_test_err(rgot, rref, (size_t)rows);
    CHECK_MSG(ts, eo < 1e-5f, "rows %d dim %d: out err %g", rows, dim, eo);
    CHECK_MSG(ts, er < 1e-5f, "rows %d dim %d: rstd err %g", rows, dim, er);

    rmsnorm_forward_cuda(d_x, NULL, d_x, d_w, rows, dim, 1e-6f, NULL);
    gpu_test_download(alias, d_x, xb);
    CHECK_MSG(ts, memcmp(alias, got, xb) == 0, "rows %d dim %d: out aliasing x changed the result", rows, dim);

    CUDA_CHECK(cudaFree(d_x));
    CUDA_CHECK(cudaFree(d_w));
    CUDA_CHECK(cudaFree(d_out));
    CUDA_CHECK(cudaFree(d_rstd));
    free(x);
    free(w);
    free(ref);
    free(got);
    free(rref);
    free(rgot);
    free(alias);
}

static void test_shapes(struct test_state *ts)
{
    run_shape(ts, 1, 1);
    run_shape(ts, 3, 80);     /* vision head-dim sized */
    run_shape(ts, 17, 896);   /* 0.5B hidden */
    run_shape(ts, 64, 3584);  /* 7B hidden */
    run_shape(ts, 5, 1280);   /* vision tower width */
}

int main(void)
{
    gpu_test_require_device();
    struct test_state ts = {0};
    RUN(&ts, test_shapes);
    return test_summary(&ts);
}
