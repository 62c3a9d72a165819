/* The AdamW shard update: the CUDA twin against the CPU reference. Skips (exit 77) without a GPU.
 *
 * Cases: n = 1 (a lone thread), 1000 (a partial block) and 2^20 + 3 (4097 blocks, the last one
 * ragged), times step t = 1 (bias corrections 1 - b: the largest first update) and 1000, weight
 * decay 0 and 0.1, and a gradient scale of 1 and 0.3 (what optim_step passes: 1/learners times the
 * clip factor). Moments start from non-zero values (v >= 0) as they are mid-training; gradients
 * span several magnitudes, zeros included (a pure decay step).
 *
 * Tolerance: none, the results must be BITWISE equal. Both sides compute each element with the
 * same double expression and store fp32: the per-step constants (1 - b^t, 1 - lr wd) are computed
 * on the host by the same code, double +, -, *, / and sqrt are correctly rounded on the GPU as on
 * the CPU, and the one thing nvcc would change - contracting a multiply and an add into an FMA
 * (-fmad=true is its default and the build keeps it) - is ruled out in the kernel by writing every
 * multiply as __dmul_rn. A difference of even one bit therefore means a bug, and the test reports
 * the first differing element. (A wrong index or constant shows at once; a stray FMA or another
 * association moves the double result by an ulp, which survives the fp32 store only rarely, so
 * this test guards against it weakly: the __dmul_rn in the kernel is what rules it out.)
 *
 * Three steps in a row on the same state also stay bitwise equal, and the default stream gives the
 * same bits as a created one. */
#include <cuda_runtime.h>
#include <float.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gpu_test.h"
#include "mmupt/err.h"
#include "mmupt/kernels.h"

/* One shard's state on the host: params, the summed gradient, the moments. */
struct shard {
    long n;
    float *p, *g, *m, *v;
};

static void shard_init(struct shard *s, long n, unsigned seed)
{
    size_t bytes = (size_t)n * sizeof(float);
    s->n = n;
    s->p = mmupt_xmalloc(bytes);
    s->g = mmupt_xmalloc(bytes);
    s->m = mmupt_xmalloc(bytes);
    s->v = mmupt_xmalloc(bytes);
    gpu_test_fill(s->p, (size_t)n, seed, -1.0f, 1.0f);
    gpu_test_fill(s->g, (size_t)n, seed + 1, -1.0f, 1.0f);
    gpu_test_fill(s->m, (size_t)n, seed + 2, -0.01f, 0.01f);
    gpu_test_fill(s->v, (size_t)n, seed + 3, 0.0f, 1e-4f);
    for (long i = 0; i < n; i++) {
        if (i % 7 == 3) s->g[i] *= 1e-6f; /* tiny gradients: eps matters */
        if (i % 11 == 5) s->g[i] *= 1e3f; /* large ones */
        if (i % 13 == 0) s->g[i] = 0.0f;  /* none at all */
    }
}

static void shard_free(struct shard *s)
{
    free(s->p);
    free(s->g);
    free(s->m);
    free(s->v);
}

/* Index of the first element where a device array differs in bits from a host one, -1 if none. */
static long first_diff(const float *dev, const float *host, long n)
{
    float *got = mmupt_xmalloc((size_t)n * sizeof *got);
    gpu_test_download(got, dev, (size_t)n * sizeof *got);
    long at = -1;
    for (long i = 0; i < n && at < 0; i++)
        if (memcmp(&got[i], &host[i], sizeof *got) != 0) at = i;
    free(got);
    return at;
}

struct hyper {
    double lr, wd, gscale;
    int64_t t;
};

/* `steps` updates from the same state on both sides (t, t+1, ...), then every array compared. */
static void check_case(struct test_state *ts, long n, const struct hyper *h, int steps, cudaStream_t st)
{
    const double b1 = 0.9, b2 = 0.999, eps = 1e-8;
    struct shard s;
    shard_init(&s, n, (unsigned)n + (unsigned)h->t);
    size_t bytes = (size_t)n * sizeof(float);
    float *dp = gpu_test_upload(s.p, bytes), *dg = gpu_test_upload(s.g, bytes);
    float *dm = gpu_test_upload(s.m, bytes), *dv = gpu_test_upload(s.v, bytes);
    for (int k = 0; k < steps; k++) {
        adamw_update_cpu(s.p, s.g, s.m, s.v, n, h->lr, b1, b2, eps, h->wd, h->gscale, h->t + k);
        adamw_update_cuda(dp, dg, dm, dv, n, h->lr, b1, b2, eps, h->wd, h->gscale, h->t + k, st);
    }
    long ep = first_diff(dp, s.p, n), em = first_diff(dm, s.m, n), ev = first_diff(dv, s.v, n);
    CHECK_MSG(ts, ep < 0 && em < 0 && ev < 0,
              "n %ld t %lld wd %g scale %g steps %d: first differing element params %ld m %ld v %ld", n,
              (long long)h->t, h->wd, h->gscale, steps, ep, em, ev);
    CHECK_MSG(ts, first_diff(dg, s.g, n) < 0, "n %ld: the gradient was modified", n);
    void *dev[] = {dp, dg, dm, dv};
    for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++) CUDA_CHECK(cudaFree(dev[i]));
    shard_free(&s);
}

static const long NS[] = {1, 1000, (1L << 20) + 3};
static const int64_t TS[] = {1, 1000};
static const double WDS[] = {0.0, 0.1};
static const double SCALES[] = {1.0, 0.3};

#define COUNT(a) (int)(sizeof a / sizeof a[0])

static void test_against_cpu(struct test_state *ts, cudaStream_t st)
{
    for (int a = 0; a < COUNT(NS); a++)
        for (int b = 0; b < COUNT(TS); b++)
            for (int c = 0; c < COUNT(WDS); c++)
                for (int d = 0; d < COUNT(SCALES); d++) {
                    struct hyper h = {1e-3, WDS[c], SCALES[d], TS[b]};
                    check_case(ts, NS[a], &h, 1, st);
                }
}

/* State carried over three steps, on a created stream and on the default one. */
static void test_several_steps(struct test_state *ts, cudaStream_t st)
{
    struct hyper h = {3e-4, 0.1, 0.5 * 0.3, 1}; /* two learners, clipped */
    check_case(ts, 1000, &h, 3, st);
    check_case(ts, 1000, &h, 3, NULL);
}

/* n = 0 is a no-op (no zero-block launch). */
static void test_empty(struct test_state *ts, cudaStream_t st)
{
    adamw_update_cuda(NULL, NULL, NULL, NULL, 0, 1e-3, 0.9, 0.999, 1e-8, 0.1, 1.0, 1, st);
    CHECK(ts, cudaStreamSynchronize(st) == cudaSuccess);
}

/* The global norm's sum of squares (optim_step_device): the same value as the CPU's sequential
 * double sum up to double rounding in another order, the same bits on a second run, NaN propagated,
 * and 0 for n = 0. The tolerance is the sequential sum's own error bound, n units of double
 * rounding: the tree sum is the more accurate of the two (for n = 2^22 + 7 it equals the exactly
 * rounded sum, math.fsum, while the CPU's is 1.6e-12 off, which an earlier 1e-12 tolerance missed). */
static void test_sumsq(struct test_state *ts, cudaStream_t st)
{
    long sizes[] = {1, 1000, (1L << 22) + 7};
    for (int k = 0; k < 3; k++) {
        long n = sizes[k];
        float *x = mmupt_xmalloc((size_t)n * sizeof *x);
        gpu_test_fill(x, (size_t)n, (unsigned)(k + 5), -3.0f, 3.0f);
        double want = sumsq_cpu(x, n, 0.5);
        float *d = gpu_test_upload_floats(x, (size_t)n);
        double got = sumsq_cuda(d, n, 0.5, st), again = sumsq_cuda(d, n, 0.5, st);
        CHECK_MSG(ts, fabs(got - want) <= (double)n * DBL_EPSILON * want, "n %ld: %.17g vs %.17g", n, got, want);
        CHECK_MSG(ts, memcmp(&got, &again, sizeof got) == 0, "n %ld: a second run differs", n);
        x[n / 2] = NAN;
        CUDA_CHECK(cudaMemcpy(d, x, (size_t)n * sizeof *x, cudaMemcpyHostToDevice));
        CHECK_MSG(ts, isnan(sumsq_cuda(d, n, 0.5, st)), "n %ld: NaN not propagated", n);
        CUDA_CHECK(cudaFree(d));
        free(x);
    }
    CHECK(ts, sumsq_cuda(NULL, 0, 1.0, st) == 0.0);
}

int main(void)
{
    cudaStream_t st = gpu_test_begin_stream();
    struct test_state ts = {0};
    RUN_WITH(&ts, test_against_cpu, st);
    RUN_WITH(&ts, test_several_steps, st);
    RUN_WITH(&ts, test_empty, st);
    RUN_WITH(&ts, test_sumsq, st);
    CUDA_CHECK(cudaStreamDestroy(st));
    return test_summary(&ts);
}
