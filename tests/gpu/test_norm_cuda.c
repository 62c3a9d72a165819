/* RMSNorm backward and LayerNorm forward and backward: the CUDA twins against the CPU references on
 * random data, for every shape the models use. Gradients are pre-filled with random values on both
 * sides, so accumulation (+=) is checked, not just the fresh value. Skips (exit 77) without a GPU.
 *
 * Tolerances, in gpu_test_err's measure |got - want| / (1 + |want|):
 *   - forward outputs, mean, rstd and dx: 1e-5. Each is fp32 arithmetic on one row whose per-row
 *     sums (over dim <= 3584) run in a different order than the reference's double sums; the
 *     expected error is a few 1e-7, the worst-case bound for these sizes ~3e-6.
 *   - dweight, dbias: 1e-4. Sums over all rows in fp32 (sequential within a chunk of 64 rows, then
 *     over the chunks), so the rounding grows with the row count: the worst-case bound is ~3e-5
 *     for 64 rows and ~1.5e-4 for 1000, but that needs every rounding to go the same way; the
 *     expected error (a random walk) is a few 1e-6 (7e-6 for dbias over 1000 rows, measured with
 *     these kernels' summation order emulated on a CPU).
 * Calls that differ only in which optional outputs they ask for, or in the stream, or in whether
 * out aliases x, or dx assigned from a residual (rmsnorm_backward_res) against accumulated onto it,
 * or dx's bf16 rounding written beside it (rmsnorm_backward_cast, against cast_bf16 of dx),
 * must agree bit for bit: the kernels are deterministic (no float atomics), so any
 * difference is a bug (a race, a wrong NULL path), not rounding. */
#include <cuda_runtime.h>
#include <stdlib.h>
#include <string.h>

#include "gpu_test.h"
#include "mmupt/err.h"
#include "mmupt/kernels.h"

#define TOL_ROW 1e-5f /* forward outputs, mean, rstd, dx */
#define TOL_COL 1e-4f /* dweight, dbias: sums over rows */

static const float EPS = 1e-6f; /* Qwen2.5-VL's RMSNorm and Qwen2-VL's LayerNorm epsilon */

/* Host inputs shared by the tests of one shape: x, weight, bias, dout and the pre-filled
 * gradients dx0, dw0, db0. */
struct norm_case {
    int rows, dim;
    size_t n;
    float *x, *w, *b, *dout, *dx0, *dw0, *db0;
};

static void case_init(struct norm_case *c, int rows, int dim, float xlo, float xhi)
{
    unsigned seed = (unsigned)rows * 7919u + (unsigned)dim;
    c->rows = rows;
    c->dim = dim;
    c->n = (size_t)rows * dim;
    c->x = mmupt_xmalloc(c->n * sizeof *c->x);
    c->dout = mmupt_xmalloc(c->n * sizeof *c->dout);
    c->dx0 = mmupt_xmalloc(c->n * sizeof *c->dx0);
    c->w = mmupt_xmalloc((size_t)dim * sizeof *c->w);
    c->b = mmupt_xmalloc((size_t)dim * sizeof *c->b);
    c->dw0 = mmupt_xmalloc((size_t)dim * sizeof *c->dw0);
    c->db0 = mmupt_xmalloc((size_t)dim * sizeof *c->db0);
    gpu_test_fill(c->x, c->n, seed, xlo, xhi);
    gpu_test_fill(c->dout, c->n, seed + 1, -1.0f, 1.0f);
    gpu_test_fill(c->dx0, c->n, seed + 2, -1.0f, 1.0f);
    gpu_test_fill(c->w, (size_t)dim, seed + 3, 0.5f, 1.5f);
    gpu_test_fill(c->b, (size_t)dim, seed + 4, -0.5f, 0.5f);
    gpu_test_fill(c->dw0, (size_t)dim, seed + 5, -1.0f, 1.0f);
    gpu_test_fill(c->db0, (size_t)dim, seed + 6, -1.0f, 1.0f);
}

static void case_free(struct norm_case *c)
{
    free(c->x);
    free(c->w);
    free(c->b);
    free(c->dout);
    free(c->dx0);
    free(c->dw0);
    free(c->db0);
}

/* rmsnorm_backward_cast, res given (dx NaN before) and not (dx accumulating onto dx0): dx and
 * dweight the bits of the plain backward (want_dx, want_dw: device), dx16 the rounding of that dx
 * as cast_bf16 makes it; and the CPU twin likewise against its parts. */
static void rmsnorm_backward_cast_check(struct test_state *ts, const struct norm_case *c, const float *rstd,
                                        const float *d_dout, const float *d_x, const float *d_w, const float *d_rstd,
                                        const float *d_res, const float *want_dx, const float *want_dw,
                                        cudaStream_t st)
{
    int rows = c->rows, dim = c->dim;
    size_t n = c->n;
    uint16_t *want16 = gpu_test_nan16(n), *d16 = gpu_test_nan16(n);
    cast_bf16_cuda(want16, want_dx, (long)n, st);
    for (int with_res = 0; with_res < 2; with_res++) {
        float *d_dx = gpu_test_upload_floats(c->dx0, n), *d_dw = gpu_test_upload_floats(c->dw0, (size_t)dim);
        if (with_res) CUDA_CHECK(cudaMemset(d_dx, 0xff, n * sizeof *d_dx));
        CUDA_CHECK(cudaMemset(d16, 0xff, n * sizeof *d16));
        rmsnorm_backward_cast_cuda(d_dx, d16, d_dw, d_dout, d_x, d_w, d_rstd, with_res ? d_res : NULL, rows, dim, st);
        CHECK_MSG(ts, gpu_test_dev_same(d_dx, want_dx, n) && gpu_test_dev_same(d_dw, want_dw, (size_t)dim),
                  "rmsnorm_backward_cast %dx%d res %d: dx or dweight differ from rmsnorm_backward's", rows, dim,
                  with_res);
        CHECK_MSG(ts, gpu_test_dev_same16(d16, want16, n),
                  "rmsnorm_backward_cast %dx%d res %d: dx16 is not dx rounded", rows, dim, with_res);
        CUDA_CHECK(cudaFree(d_dx));
        CUDA_CHECK(cudaFree(d_dw));
    }
    /* the CPU twin: rmsnorm_backward_res_cpu, then cast_bf16_cpu */
    float *dx = mmupt_xmalloc(n * sizeof *dx), *dx_parts = mmupt_xmalloc(n * sizeof *dx_parts);
    float *dw = gpu_test_host_copy(c->dw0, (size_t)dim), *dw_parts = gpu_test_host_copy(c->dw0, (size_t)dim);
    uint16_t *h16 = mmupt_xmalloc(n * sizeof *h16), *h16_parts = mmupt_xmalloc(n * sizeof *h16_parts);
    rmsnorm_backward_cast_cpu(dx, h16, dw, c->dout, c->x, c->w, rstd, c->dx0, rows, dim);
    rmsnorm_backward_res_cpu(dx_parts, dw_parts, c->dout, c->x, c->w, rstd, c->dx0, rows, dim);
    cast_bf16_cpu(h16_parts, dx_parts, (long)n);
    CHECK_MSG(ts, memcmp(dx, dx_parts, n * sizeof *dx) == 0 && memcmp(h16, h16_parts, n * sizeof *h16) == 0 &&
                  memcmp(dw, dw_parts, (size_t)dim * sizeof *dw) == 0,
              "rmsnorm_backward_cast_cpu %dx%d: not rmsnorm_backward_res_cpu + cast_bf16_cpu", rows, dim);
    free(dx), free(dx_parts), free(dw), free(dw_parts), free(h16), free(h16_parts);
    CUDA_CHECK(cudaFree(want16));
    CUDA_CHECK(cudaFree(d16));
}

static void rmsnorm_backward_case(struct test_state *ts, const struct norm_case *c, cudaStream_t st)
{
    int rows = c->rows, dim = c->dim;
    size_t n = c->n;
    float *out = mmupt_xmalloc(n * sizeof *out), *rstd = mmupt_xmalloc((size_t)rows * sizeof *rstd);
    rmsnorm_forward_cpu(out, rstd, c->x, c->w, rows, dim, EPS);
    float *dx_ref = gpu_test_host_copy(c->dx0, n), *dw_ref = gpu_test_host_copy(c->dw0, (size_t)dim);
    rmsnorm_backward_cpu(dx_ref, dw_ref, c->dout, c->x, c->w, rstd, rows, dim);

    /* The forward's rstd from the CPU, so the backward is compared alone. */
    float *d_x = gpu_test_upload_floats(c->x, n), *d_w = gpu_test_upload_floats(c->w, (size_t)dim), *d_dout = gpu_test_upload_floats(c->dout, n);
    float *d_rstd = gpu_test_upload_floats(rstd, (size_t)rows);
    float *d_dx = gpu_test_upload_floats(c->dx0, n), *d_dw = gpu_test_upload_floats(c->dw0, (size_t)dim);
    rmsnorm_backward_cuda(d_dx, d_dw, d_dout, d_x, d_w, d_rstd, rows, dim, st);
    float edx = gpu_test_dev_err(d_dx, dx_ref, n), edw = gpu_test_dev_err(d_dw, dw_ref, (size_t)dim);
    CHECK_MSG(ts, edx < TOL_ROW, "rmsnorm dx %dx%d: err %g", rows, dim, edx);
    CHECK_MSG(ts, edw < TOL_COL, "rmsnorm dweight %dx%d: err %g", rows, dim, edw);

    /* One gradient at a time (the other NULL), on the default stream: the same bits. */
    float *d_dx1 = gpu_test_upload_floats(c->dx0, n), *d_dw1 = gpu_test_upload_floats(c->dw0, (size_t)dim);
    rmsnorm_backward_cuda(d_dx1, NULL, d_dout, d_x, d_w, d_rstd, rows, dim, NULL);
    rmsnorm_backward_cuda(NULL, d_dw1, d_dout, d_x, d_w, d_rstd, rows, dim, NULL);
    CHECK_MSG(ts, gpu_test_dev_same(d_dx1, d_dx, n), "rmsnorm dx %dx%d: dweight=NULL changed dx", rows, dim);
    CHECK_MSG(ts, gpu_test_dev_same(d_dw1, d_dw, (size_t)dim), "rmsnorm dweight %dx%d: dx=NULL changed dweight", rows, dim);

    /* dx assigned from a residual (rmsnorm_backward_res: res = the pre-filled dx0, dx NaN before):
     * the accumulating call's bits, and its CPU reference's */
    float *d_res = gpu_test_upload_floats(c->dx0, n), *d_dx2 = gpu_test_upload_floats(c->dx0, n);
    float *d_dw2 = gpu_test_upload_floats(c->dw0, (size_t)dim), *dx2_ref = mmupt_xmalloc(n * sizeof *dx2_ref);
    float *dw2_ref = gpu_test_host_copy(c->dw0, (size_t)dim);
    CUDA_CHECK(cudaMemset(d_dx2, 0xff, n * sizeof *d_dx2));
    rmsnorm_backward_res_cuda(d_dx2, d_dw2, d_dout, d_x, d_w, d_rstd, d_res, rows, dim, st);
    CHECK_MSG(ts, gpu_test_dev_same(d_dx2, d_dx, n), "rmsnorm_backward_res dx %dx%d: not res + the gradient", rows,
              dim);
    CHECK_MSG(ts, gpu_test_dev_same(d_dw2, d_dw, (size_t)dim), "rmsnorm_backward_res dweight %dx%d differs", rows,
              dim);
    rmsnorm_backward_res_cpu(dx2_ref, dw2_ref, c->dout, c->x, c->w, rstd, c->dx0, rows, dim);
    CHECK_MSG(ts, memcmp(dx2_ref, dx_ref, n * sizeof *dx_ref) == 0 && memcmp(dw2_ref, dw_ref, (size_t)dim * 4) == 0,
              "rmsnorm_backward_res_cpu %dx%d: not copy + rmsnorm_backward_cpu", rows, dim);
    free(dx2_ref);
    free(dw2_ref);
    rmsnorm_backward_cast_check(ts, c, rstd, d_dout, d_x, d_w, d_rstd, d_res, d_dx, d_dw, st);

    float *dev[] = {d_x, d_w, d_dout, d_rstd, d_dx, d_dw, d_dx1, d_dw1, d_res, d_dx2, d_dw2};
    for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++) CUDA_CHECK(cudaFree(dev[i]));
    free(out);
    free(rstd);
    free(dx_ref);
    free(dw_ref);
}

static void layernorm_forward_case(struct test_state *ts, const struct norm_case *c, cudaStream_t st)
{
    int rows = c->rows, dim = c->dim;
    size_t n = c->n;
    float *out = mmupt_xmalloc(n * sizeof *out);
    float *mean = mmupt_xmalloc((size_t)rows * sizeof *mean), *rstd = mmupt_xmalloc((size_t)rows * sizeof *rstd);
    layernorm_forward_cpu(out, mean, rstd, c->x, c->w, c->b, rows, dim, EPS);

    float *d_x = gpu_test_upload_floats(c->x, n), *d_w = gpu_test_upload_floats(c->w, (size_t)dim), *d_b = gpu_test_upload_floats(c->b, (size_t)dim);
    float *d_out = gpu_test_upload_floats(c->dx0, n); /* garbage to be overwritten */
    float *d_mean = NULL, *d_rstd = NULL;
    CUDA_CHECK(cudaMalloc((void **)&d_mean, (size_t)rows * sizeof *d_mean));
    CUDA_CHECK(cudaMalloc((void **)&d_rstd, (size_t)rows * sizeof *d_rstd));
    layernorm_forward_cuda(d_out, d_mean, d_rstd, d_x, d_w, d_b, rows, dim, EPS, st);
    float eo = gpu_test_dev_err(d_out, out, n), em = gpu_test_dev_err(d_mean, mean, (size_t)rows), er = gpu_test_dev_err(d_rstd, rstd, (size_t)rows);
    CHECK_MSG(ts, eo < TOL_ROW, "layernorm out %dx%d: err %g", rows, dim, eo);
    CHECK_MSG(ts, em < TOL_ROW, "layernorm mean %dx%d: err %g", rows, dim, em);
    CHECK_MSG(ts, er < TOL_ROW, "layernorm rstd %dx%d: err %g", rows, dim, er);

    /* In place (out == x) with mean and rstd not wanted, on the default stream: the same bits. */
    float *d_xa = gpu_test_upload_floats(c->x, n);
    layernorm_forward_cuda(d_xa, NULL, NULL, d_xa, d_w, d_b, rows, dim, EPS, NULL);
    CHECK_MSG(ts, gpu_test_dev_same(d_xa, d_out, n), "layernorm %dx%d: out aliasing x, or NULL mean/rstd, changed out", rows,
              dim);

    float *dev[] = {d_x, d_w, d_b, d_out, d_mean, d_rstd, d_xa};
    for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++) CUDA_CHECK(cudaFree(dev[i]));
    free(out);
    free(mean);
    free(rstd);
}

static void layernorm_backward_case(struct test_state *ts, const struct norm_case *c, cudaStream_t st)
{
    int rows = c->rows, dim = c->dim;
    size_t n = c->n, nd = (size_t)dim;
    float *out = mmupt_xmalloc(n * sizeof *out);
    float *mean = mmupt_xmalloc((size_t)rows * sizeof *mean), *rstd = mmupt_xmalloc((size_t)rows * sizeof *rstd);
    layernorm_forward_cpu(out, mean, rstd, c->x, c->w, c->b, rows, dim, EPS);
    float *dx_ref = gpu_test_host_copy(c->dx0, n), *dw_ref = gpu_test_host_copy(c->dw0, nd), *db_ref = gpu_test_host_copy(c->db0, nd);
    layernorm_backward_cpu(dx_ref, dw_ref, db_ref, c->dout, c->x, c->w, mean, rstd, rows, dim);

    /* The forward's mean and rstd from the CPU, so the backward is compared alone. */
    float *d_x = gpu_test_upload_floats(c->x, n), *d_w = gpu_test_upload_floats(c->w, nd), *d_dout = gpu_test_upload_floats(c->dout, n);
    float *d_mean = gpu_test_upload_floats(mean, (size_t)rows), *d_rstd = gpu_test_upload_floats(rstd, (size_t)rows);
    float *d_dx = gpu_test_upload_floats(c->dx0, n), *d_dw = gpu_test_upload_floats(c->dw0, nd), *d_db = gpu_test_upload_floats(c->db0, nd);
    layernorm_backward_cuda(d_dx, d_dw, d_db, d_dout, d_x, d_w, d_mean, d_rstd, rows, dim, st);
    float edx = gpu_test_dev_err(d_dx, dx_ref, n), edw = gpu_test_dev_err(d_dw, dw_ref, nd), edb = gpu_test_dev_err(d_db, db_ref, nd);
    CHECK_MSG(ts, edx < TOL_ROW, "layernorm dx %dx%d: err %g", rows, dim, edx);
    CHECK_MSG(ts, edw < TOL_COL, "layernorm dweight %dx%d: err %g", rows, dim, edw);
    CHECK_MSG(ts, edb < TOL_COL, "layernorm dbias %dx%d: err %g", rows, dim, edb);

    /* Every other choice of wanted gradients, on the default stream: the same bits. (dweight and
     * dbias share one scratch buffer when both are wanted, at other offsets than when alone.) */
    float *d_dx1 = gpu_test_upload_floats(c->dx0, n), *d_dw1 = gpu_test_upload_floats(c->dw0, nd), *d_db1 = gpu_test_upload_floats(c->db0, nd);
    float *d_dw2 = gpu_test_upload_floats(c->dw0, nd), *d_db2 = gpu_test_upload_floats(c->db0, nd);
    layernorm_backward_cuda(d_dx1, NULL, NULL, d_dout, d_x, d_w, d_mean, d_rstd, rows, dim, NULL);
    layernorm_backward_cuda(NULL, d_dw1, NULL, d_dout, d_x, d_w, d_mean, d_rstd, rows, dim, NULL);
    layernorm_backward_cuda(NULL, NULL, d_db1, d_dout, d_x, d_w, d_mean, d_rstd, rows, dim, NULL);
    layernorm_backward_cuda(NULL, d_dw2, d_db2, d_dout, d_x, d_w, d_mean, d_rstd, rows, dim, NULL);
    CHECK_MSG(ts, gpu_test_dev_same(d_dx1, d_dx, n), "layernorm dx %dx%d: differs when computed alone", rows, dim);
    CHECK_MSG(ts, gpu_test_dev_same(d_dw1, d_dw, nd), "layernorm dweight %dx%d: differs when computed alone", rows, dim);
    CHECK_MSG(ts, gpu_test_dev_same(d_db1, d_db, nd), "layernorm dbias %dx%d: differs when computed alone", rows, dim);
    CHECK_MSG(ts, gpu_test_dev_same(d_dw2, d_dw, nd), "layernorm dweight %dx%d: differs without dx", rows, dim);
    CHECK_MSG(ts, gpu_test_dev_same(d_db2, d_db, nd), "layernorm dbias %dx%d: differs without dx", rows, dim);

    float *dev[] = {d_x, d_w, d_dout, d_mean, d_rstd, d_dx, d_dw, d_db, d_dx1, d_dw1, d_db1, d_dw2, d_db2};
    for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++) CUDA_CHECK(cudaFree(dev[i]));
    free(out);
    free(mean);
    free(rstd);
    free(dx_ref);
    free(dw_ref);
    free(db_ref);
}

/* (1,1): the degenerate row; (3,80): a vision head; (17,896): 0.5B hidden, rows not a multiple of
 * anything; (64,3584): 7B hidden, a full chunk of rows for the column sums; (5,1280): the vision
 * tower's width. */
static const int SHAPES[][2] = {{1, 1}, {3, 80}, {17, 896}, {64, 3584}, {5, 1280}};
#define N_SHAPES (int)(sizeof SHAPES / sizeof SHAPES[0])

/* Each case makes its main call on a stream of its own (the work and the scratch allocation go on
 * it) and its variants on the default stream; both must agree. */
static void test_rmsnorm_backward(struct test_state *ts, cudaStream_t st)
{
    for (int i = 0; i < N_SHAPES; i++) {
        struct norm_case c;
        case_init(&c, SHAPES[i][0], SHAPES[i][1], -2.0f, 2.0f);
        rmsnorm_backward_case(ts, &c, st);
        case_free(&c);
    }
}

/* LayerNorm's inputs sit around 1, not 0, so a wrong (or missing) centring shows. */
static void test_layernorm_forward(struct test_state *ts, cudaStream_t st)
{
    for (int i = 0; i < N_SHAPES; i++) {
        struct norm_case c;
        case_init(&c, SHAPES[i][0], SHAPES[i][1], -1.0f, 3.0f);
        layernorm_forward_case(ts, &c, st);
        case_free(&c);
    }
}

static void test_layernorm_backward(struct test_state *ts, cudaStream_t st)
{
    for (int i = 0; i < N_SHAPES; i++) {
        struct norm_case c;
        case_init(&c, SHAPES[i][0], SHAPES[i][1], -1.0f, 3.0f);
        layernorm_backward_case(ts, &c, st);
        case_free(&c);
    }
}

/* More rows than one chunk of the column reduction holds, and not a multiple of it: several
 * partial sums, the last one short. */
static void test_many_rows(struct test_state *ts, cudaStream_t st)
{
    struct norm_case c;
    case_init(&c, 1000, 96, -2.0f, 2.0f);
    rmsnorm_backward_case(ts, &c, st);
    case_free(&c);
    case_init(&c, 1000, 96, -1.0f, 3.0f);
    layernorm_backward_case(ts, &c, st);
    case_free(&c);
}

int main(void)
{
    cudaStream_t st = gpu_test_begin_stream();
    struct test_state ts = {0};
    RUN_WITH(&ts, test_rmsnorm_backward, st);
    RUN_WITH(&ts, test_layernorm_forward, st);
    RUN_WITH(&ts, test_layernorm_backward, st);
    RUN_WITH(&ts, test_many_rows, st);
    CUDA_CHECK(cudaStreamDestroy(st));
    return test_summary(&ts);
}
