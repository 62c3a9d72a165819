/* The skinny bf16 GEMM (kernels/cuda/matmul_skinny.cu) against the CPU reference of the bf16
 * forward (matmul_forward_bf16_cpu): the same rounded operands, products exact in fp32, only the
 * summation order differs - the 2e-5 bound of test_matmul_cuda.c (relative to the largest value).
 * Each shape runs under several plans (the plan depends on the SM count: 1, 8 and 132 give one
 * split, a few and many, and 1, 2 and 4 warps across), with and without bias; a second call must
 * repeat the first bit for bit (the split-K arrival counters reset themselves). Through
 * matmul_forward_bf16_cuda with the skinny GEMM on (plainly and launched programmatically right
 * after the kernel that writes its operand), the bias is added once and the result matches cuBLAS's. The plan: the decode step's shapes are taken with a bounded split-K reduction, and
 * shapes outside the kernel (65 rows, K not a multiple of 32, misaligned operands) are refused, so
 * the caller falls back to cuBLAS. Skips (exit 77) without a GPU. */
#include "gpu_test.h"
#include "mmupt/gpu_blas.h"
#include "mmupt/kernels.h"

struct operands {
    float *inp, *w, *b, *ref, *ref_nb;
    uint16_t *x16, *w16;
    float *d_b, *d_out, *d_inp;
    uint16_t *d_x16, *d_w16;
};

static void operands_make(struct operands *o, int M, int K, int N, unsigned seed)
{
    size_t mk = (size_t)M * K, nk = (size_t)N * K, mn = (size_t)M * N;
    o->inp = malloc(mk * sizeof(float));
    o->w = malloc(nk * sizeof(float));
    o->b = malloc((size_t)N * sizeof(float));
    o->x16 = malloc(mk * sizeof(uint16_t));
    o->w16 = malloc(nk * sizeof(uint16_t));
    o->ref = malloc(mn * sizeof(float));
    o->ref_nb = malloc(mn * sizeof(float));
    gpu_test_fill(o->inp, mk, seed, -1, 1);
    gpu_test_fill(o->w, nk, seed + 1, -0.1f, 0.1f);
    gpu_test_fill(o->b, (size_t)N, seed + 2, -1, 1);
    cast_bf16_cpu(o->x16, o->inp, (long)mk);
    cast_bf16_cpu(o->w16, o->w, (long)nk);
    matmul_forward_bf16_cpu(o->ref, o->inp, o->w16, o->b, M, K, N);
    matmul_forward_bf16_cpu(o->ref_nb, o->inp, o->w16, NULL, M, K, N);
    o->d_inp = gpu_test_upload(o->inp, mk * 4);
    o->d_x16 = gpu_test_upload(o->x16, mk * 2);
    o->d_w16 = gpu_test_upload(o->w16, nk * 2);
    o->d_b = gpu_test_upload(o->b, (size_t)N * 4);
    CUDA_CHECK(cudaMalloc((void **)&o->d_out, mn * 4));
}

static void operands_free(struct operands *o)
{
    free(o->inp), free(o->w), free(o->b), free(o->x16), free(o->w16), free(o->ref), free(o->ref_nb);
    cudaFree(o->d_inp), cudaFree(o->d_x16), cudaFree(o->d_w16), cudaFree(o->d_b), cudaFree(o->d_out);
}

static void check_near(struct test_state *ts, const char *what, const float *got, const float *want, size_t n,
                       int M, int K, int N, int sms)
{
    double e = test_rel_err(got, want, (int64_t)n);
    CHECK_MSG(ts, e < 2e-5, "%s M=%d K=%d N=%d sms=%d: error %g relative to the largest value", what, M, K, N, sms,
              e);
}

/* One shape under the plan for `sms`: against the reference with and without bias, and repeatable.
 * seen[wn][split] marks the kinds of plan covered. */
static void run_plan(struct test_state *ts, struct gpu_blas *blas, struct operands *o, int M, int K, int N, int sms,
                     int seen[5][2])
{
    size_t mn = (size_t)M * N;
    struct matmul_skinny_plan p;
    if (matmul_skinny_plan(M, K, N, sms, &p) == 0) seen[p.wn][p.splits > 1] = 1;
    float *got = malloc(mn * sizeof *got), *again = malloc(mn * sizeof *again);
    blas->sms = sms;
    for (int bias = 0; bias < 2; bias++) {
        CUDA_CHECK(cudaMemset(o->d_out, 0xff, mn * 4)); /* every output must be written */
        int rc = matmul_skinny_bf16_cuda(o->d_out, o->d_x16, o->d_w16, bias ? o->d_b : NULL, M, K, N, blas);
        CHECK_MSG(ts, rc == 0, "skinny GEMM refused M=%d K=%d N=%d sms=%d", M, K, N, sms);
        if (rc) break;
        gpu_test_download(got, o->d_out, mn * 4);
        check_near(ts, bias ? "skinny + bias" : "skinny", got, bias ? o->ref : o->ref_nb, mn, M, K, N, sms);
        CUDA_CHECK(cudaMemset(o->d_out, 0xff, mn * 4));
        (void)matmul_skinny_bf16_cuda(o->d_out, o->d_x16, o->d_w16, bias ? o->d_b : NULL, M, K, N, blas);
        gpu_test_download(again, o->d_out, mn * 4);
        CHECK_MSG(ts, memcmp(got, again, mn * 4) == 0, "skinny M=%d K=%d N=%d sms=%d: a second call differs", M, K,
                  N, sms);
    }
    free(got), free(again);
}

static void test_shapes(struct test_state *ts)
{
    struct gpu_blas blas;
    struct mmupt_err err;
    CHECK_MSG(ts, gpu_blas_init(&blas, NULL, &err) == 0, "gpu_blas_init: %s", err.msg);
    CHECK_MSG(ts, gpu_blas_set_skinny(&blas, 1, &err) == 0, "gpu_blas_set_skinny: %s", err.msg);
    /* rows 1..64 (1 to 4 mma row tiles, ragged), columns not a multiple of the tile, long K */
    const int shapes[][3] = {{1, 32, 8},     {5, 32, 40},    {5, 64, 40},    {16, 32, 100},  {16, 64, 100},
                             {16, 96, 100},  {33, 128, 72},  {64, 256, 136}, {48, 1024, 24}};
    const int sms[] = {1, 2, 8, 132};
    int seen[5][2] = {{0}};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        int M = shapes[i][0], K = shapes[i][1], N = shapes[i][2];
        struct operands o;
        operands_make(&o, M, K, N, (unsigned)(17 * i + 3));
        for (size_t s = 0; s < sizeof sms / sizeof sms[0]; s++) run_plan(ts, &blas, &o, M, K, N, sms[s], seen);
        operands_free(&o);
    }
    for (int wn = 1; wn <= 4; wn *= 2)
        for (int split = 0; split < 2; split++)
            CHECK_MSG(ts, seen[wn][split], "no shape ran with %d warp(s) across and %s", wn,
                      split ? "a split K" : "one split");
    gpu_blas_free(&blas);
}

/* matmul_forward_bf16_cuda with the skinny GEMM on: bias once, the cast (or its reuse) as before,
 * and the same result as cuBLAS's within the summation-order bound. */
static void test_dispatch(struct test_state *ts)
{
    struct gpu_blas blas;
    struct mmupt_err err;
    CHECK_MSG(ts, gpu_blas_init(&blas, NULL, &err) == 0, "gpu_blas_init: %s", err.msg);
    blas.sms = 8;
    const int M = 20, K = 160, N = 96;
    size_t mn = (size_t)M * N;
    struct operands o;
    operands_make(&o, M, K, N, 99);
    uint16_t *d_scratch = NULL;
    CUDA_CHECK(cudaMalloc((void **)&d_scratch, (size_t)M * K * 2));
    float *cublas = malloc(mn * 4), *skinny = malloc(mn * 4);
    matmul_forward_bf16_cuda(o.d_out, o.d_inp, o.d_w16, o.d_b, M, K, N, d_scratch, 0, &blas);
    gpu_test_download(cublas, o.d_out, mn * 4);
    /* SKINNY_PDL: launched programmatically right after the cast kernel that writes its operand
     * (on a GPU, a missing wait would read the scratch before the cast lands) */
    for (int mode = SKINNY_ON; mode <= SKINNY_PDL; mode++) {
        CHECK_MSG(ts, gpu_blas_set_skinny(&blas, mode, &err) == 0, "gpu_blas_set_skinny: %s", err.msg);
        for (int again = 0; again < 2; again++) {
            CUDA_CHECK(cudaMemset(o.d_out, 0xff, mn * 4));
            CUDA_CHECK(cudaMemset(d_scratch, 0xff, (size_t)M * K * 2));
            if (again) cast_bf16_cuda(d_scratch, o.d_inp, (long)M * K, blas.stream);
            matmul_forward_bf16_cuda(o.d_out, o.d_inp, o.d_w16, o.d_b, M, K, N, d_scratch, again, &blas);
            gpu_test_download(skinny, o.d_out, mn * 4);
            check_near(ts, again ? "dispatch, cast reused" : "dispatch", skinny, o.ref, mn, M, K, N, blas.sms);
            check_near(ts, "dispatch against cuBLAS", skinny, cublas, mn, M, K, N, blas.sms);
        }
    }
    CHECK(ts, gpu_blas_set_skinny(&blas, 0, &err) == 0 && blas.skinny_part == NULL && !blas.skinny);
    free(cublas), free(skinny);
    cudaFree(d_scratch);
    operands_free(&o);
    gpu_blas_free(&blas);
}

/* The plan on a 132-SM card for the 0.5B decode step's projections (64 rows): taken, at least one
 * block per SM, the last block's partial sums bounded; and the refusals. */
static void test_plan(struct test_state *ts)
{
    const int shapes[][3] = {{64, 896, 1152}, {64, 896, 896}, {64, 896, 9728}, {64, 4864, 896}, {64, 896, 151936},
                             {8, 1536, 256}};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        int M = shapes[i][0], K = shapes[i][1], N = shapes[i][2];
        struct matmul_skinny_plan p;
        int rc = matmul_skinny_plan(M, K, N, 132, &p);
        CHECK_MSG(ts, rc == 0, "plan refused M=%d K=%d N=%d", M, K, N);
        if (rc) continue;
        printf("plan M=%d K=%d N=%d: %d column tile(s) of %d, %d split(s) of k %d: %d blocks\n", M, K, N, p.tiles,
               32 * p.wn, p.splits, p.kc, p.tiles * p.splits);
        CHECK_MSG(ts, (long)p.tiles * p.splits >= 132, "M=%d K=%d N=%d: %d blocks", M, K, N, p.tiles * p.splits);
        CHECK(ts, p.splits == 1 || (long)p.splits * M * 32 * p.wn <= SKINNY_LAST_FLOATS);
        CHECK(ts, p.kc % 32 == 0 && (long)p.kc * p.splits >= K && (long)p.kc * (p.splits - 1) < K);
        CHECK(ts, (long)p.tiles * 32 * p.wn >= N && (long)(p.tiles - 1) * 32 * p.wn < N);
    }
    struct matmul_skinny_plan p;
    CHECK(ts, matmul_skinny_plan(65, 896, 896, 132, &p) == -1);
    CHECK(ts, matmul_skinny_plan(64, 48, 896, 132, &p) == -1);
    CHECK(ts, matmul_skinny_plan(64, 0, 896, 132, &p) == -1);
    CHECK(ts, matmul_skinny_plan(0, 64, 896, 132, &p) == -1);

    struct gpu_blas blas;
    struct mmupt_err err;
    CHECK_MSG(ts, gpu_blas_init(&blas, NULL, &err) == 0, "gpu_blas_init: %s", err.msg);
    struct operands o;
    operands_make(&o, 4, 64, 16, 5);
    CHECK(ts, matmul_skinny_bf16_cuda(o.d_out, o.d_x16, o.d_w16, NULL, 4, 64, 16, &blas) == -1); /* off */
    CHECK_MSG(ts, gpu_blas_set_skinny(&blas, 1, &err) == 0, "gpu_blas_set_skinny: %s", err.msg);
    CHECK(ts, matmul_skinny_bf16_cuda(o.d_out, o.d_x16 + 1, o.d_w16, NULL, 3, 64, 16, &blas) == -1); /* misaligned */
    CHECK(ts, matmul_skinny_bf16_cuda(o.d_out, o.d_x16, o.d_w16, NULL, 4, 64, 16, &blas) == 0);
    operands_free(&o);
    gpu_blas_free(&blas);
}

int main(void)
{
    gpu_test_require_device();
    struct test_state ts = {0};
    RUN(&ts, test_plan);
    RUN(&ts, test_shapes);
    RUN(&ts, test_dispatch);
    return test_summary(&ts);
}
