/* The pure data movers of the device model against their CPU references, BITWISE (they copy or
 * add once, so nothing may differ): gather_rows / scatter_rows (KV-cache appends, the vision window
 * permutation, image rows) and residual_forward (the residual stream's add, in place included).
 * Skips (exit 77) without a GPU. */
#include <cuda_runtime.h>
#include <stdlib.h>
#include <string.h>

#include "gpu_test.h"
#include "mmupt/err.h"
#include "mmupt/kernels.h"

/* 0..R-1 shuffled by a fixed LCG: any prefix is a set of distinct row indices. */
static int64_t *distinct_rows(int R, unsigned seed)
{
    int64_t *all = mmupt_xmalloc((size_t)(R ? R : 1) * sizeof *all);
    for (int i = 0; i < R; i++) all[i] = i;
    unsigned s = seed;
    for (int i = R - 1; i > 0; i--) {
        s = s * 1664525u + 1013904223u;
        int j = (int)((s >> 8) % (unsigned)(i + 1));
        int64_t t = all[i];
        all[i] = all[j];
        all[j] = t;
    }
    return all;
}

static void run_rows(struct test_state *ts, cudaStream_t st, int n, int R, long cols)
{
    size_t big = (size_t)R * cols, small = (size_t)n * cols;
    float *src = mmupt_xmalloc((big ? big : 1) * sizeof *src), *dst = mmupt_xmalloc((big ? big : 1) * sizeof *dst);
    float *rows = mmupt_xmalloc((small ? small : 1) * sizeof *rows), *want_g = mmupt_xmalloc((small ? small : 1) * sizeof *want_g);
    gpu_test_fill(src, big, (unsigned)(n * 7 + R), -3.0f, 3.0f);
    gpu_test_fill(dst, big, (unsigned)(n * 7 + R + 1), -3.0f, 3.0f);
    gpu_test_fill(rows, small, (unsigned)(n * 7 + R + 2), -3.0f, 3.0f);
    int64_t *idx = distinct_rows(R, (unsigned)(R + n));
    float *want_s = gpu_test_host_copy(dst, big);
    gather_rows_cpu(want_g, src, idx, n, cols);
    scatter_rows_cpu(want_s, rows, idx, n, cols);

    float *d_src = gpu_test_upload_floats(src, big), *d_dst = gpu_test_upload_floats(dst, big);
    float *d_rows = gpu_test_upload_floats(rows, small), *d_out = gpu_test_upload_floats(rows, small);
    gather_rows_cuda(d_out, d_src, idx, n, cols, st);
    scatter_rows_cuda(d_dst, d_rows, idx, n, cols, st);
    CHECK_MSG(ts, gpu_test_dev_same_host(d_out, want_g, small), "gather n %d R %d cols %ld differs", n, R, cols);
    CHECK_MSG(ts, gpu_test_dev_same_host(d_dst, want_s, big), "scatter n %d R %d cols %ld differs", n, R, cols);
    float *bufs[] = {d_src, d_dst, d_rows, d_out};
    for (int i = 0; i < 4; i++) CUDA_CHECK(cudaFree(bufs[i]));
    free(src), free(dst), free(rows), free(want_g), free(want_s), free(idx);
}

static void test_rows(struct test_state *ts)
{
    cudaStream_t st = gpu_test_begin_stream();
    int shapes[][3] = {{0, 4, 8}, {1, 1, 1}, {7, 50, 128}, {1000, 3000, 64}, {24, 96, 4 * 1280}};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) run_rows(ts, st, shapes[i][0], shapes[i][1], shapes[i][2]);
    CUDA_CHECK(cudaStreamDestroy(st));
}

static void test_residual(struct test_state *ts)
{
    cudaStream_t st = gpu_test_begin_stream();
    long n = (1 << 20) + 3;
    float *a = mmupt_xmalloc((size_t)n * sizeof *a), *b = mmupt_xmalloc((size_t)n * sizeof *b);
    float *want = mmupt_xmalloc((size_t)n * sizeof *want);
    gpu_test_fill(a, (size_t)n, 11, -1e3f, 1e3f);
    gpu_test_fill(b, (size_t)n, 12, -1e-3f, 1e-3f);
    residual_forward_cpu(want, a, b, n);
    float *d_a = gpu_test_upload_floats(a, (size_t)n), *d_b = gpu_test_upload_floats(b, (size_t)n);
    float *d_out = gpu_test_upload_floats(b, (size_t)n);
    residual_forward_cuda(d_out, d_a, d_b, n, st);
    CHECK(ts, gpu_test_dev_same_host(d_out, want, (size_t)n));
    residual_forward_cuda(d_a, d_a, d_b, n, st); /* in place, as the block does */
    CHECK(ts, gpu_test_dev_same_host(d_a, want, (size_t)n));
    CUDA_CHECK(cudaFree(d_a));
    CUDA_CHECK(cudaFree(d_b));
    CUDA_CHECK(cudaFree(d_out));
    free(a), free(b), free(want);
    CUDA_CHECK(cudaStreamDestroy(st));
}

int main(void)
{
    struct test_state ts = {0};
    RUN(&ts, test_rows);
    RUN(&ts, test_residual);
    return test_summary(&ts);
}
