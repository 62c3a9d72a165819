/* RMSNorm: the CUDA twin against the CPU reference on random data. Skips (exit 77) without a GPU,
 * saying why. */
#include <cuda_runtime.h>
#include <math.h>
#include <stdlib.h>

#include "../test.h"
#include "mmupt/cuda_check.h"
#include "mmupt/gpu.h"
#include "mmupt/kernels.h"

static void run_shape(struct test_state *ts, int rows, int dim)
{
    size_t n = (size_t)rows * dim;
    float *x = malloc(n * sizeof *x), *w = malloc((size_t)dim * sizeof *w);
    float *ref = malloc(n * sizeof *ref), *got = malloc(n * sizeof *got);
    float *rref = malloc((size_t)rows * sizeof *rref), *rgot = malloc((size_t)rows * sizeof *rgot);
    unsigned s = (unsigned)(rows * 31 + dim);
    for (size_t i = 0; i < n; i++) { s = s * 1664525u + 1013904223u; x[i] = (float)((s >> 8) / 16777216.0 * 4 - 2); }
    for (int i = 0; i < dim; i++) w[i] = 0.5f + (float)i / dim;
    rmsnorm_forward_cpu(ref, rref, x, w, rows, dim, 1e-6f);
    float *dx, *dw, *dout, *drstd;
    CUDA_CHECK(cudaMalloc((void **)&dx, n * sizeof *dx));
    CUDA_CHECK(cudaMalloc((void **)&dw, (size_t)dim * sizeof *dw));
    CUDA_CHECK(cudaMalloc((void **)&dout, n * sizeof *dout));
    CUDA_CHECK(cudaMalloc((void **)&drstd, (size_t)rows * sizeof *drstd));
    CUDA_CHECK(cudaMemcpy(dx, x, n * sizeof *x, cudaMemcpyHostToDevice));
    CUDA_CHECK(cudaMemcpy(dw, w, (size_t)dim * sizeof *w, cudaMemcpyHostToDevice));
    rmsnorm_forward_cuda(dout, drstd, dx, dw, rows, dim, 1e-6f, NULL);
    CUDA_CHECK(cudaMemcpy(got, dout, n * sizeof *got, cudaMemcpyDeviceToHost));
    CUDA_CHECK(cudaMemcpy(rgot, drstd, (size_t)rows * sizeof *rgot, cudaMemcpyDeviceToHost));
    float worst = 0;
    for (size_t i = 0; i < n; i++) worst = fmaxf(worst, fabsf(got[i] - ref[i]) / (1 + fabsf(ref[i])));
    for (int r = 0; r < rows; r++) worst = fmaxf(worst, fabsf(rgot[r] - rref[r]) / rref[r]);
    CHECK_MSG(ts, worst < 1e-5f, "rows %d dim %d: max rel err %g", rows, dim, worst);
    cudaFree(dx); cudaFree(dw); cudaFree(dout); cudaFree(drstd);
    free(x); free(w); free(ref); free(got); free(rref); free(rgot);
}

static void test_shapes(struct test_state *ts)
{
    run_shape(ts, 1, 1);
    run_shape(ts, 3, 80);     /* vision head-dim sized */
    run_shape(ts, 17, 896);   /* 0.5B hidden */
    run_shape(ts, 64, 3584);  /* 7B hidden */
}

int main(void)
{
    struct gpu_info g;
    gpu_query(&g);
    if (g.device_count == 0) {
        printf("SKIP: %s\n", g.reason);
        return TEST_SKIP;
    }
    printf("device: %s\n", g.device_name);
    struct test_state ts = {0};
    RUN(&ts, test_shapes);
    return test_summary(&ts);
}
