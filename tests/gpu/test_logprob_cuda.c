/* Token log-probabilities, entropy and their gradient: the CUDA twins against the CPU reference on
 * random data. Skips (exit 77) without a GPU.
 *
 * Shapes: rows 1, 7, 64 (one block per row: a lone block, an odd count, a fuller grid) times
 * vocab 1 (the degenerate softmax: logp 0, entropy 0, gradient 0), 324 (not a multiple of the
 * 256-thread block, so some threads own one element more than others) and 151936 (Qwen2.5-VL's
 * padded vocabulary, ~600 elements per thread), at tau 1 and 0.7. Every third row has target -1
 * (logp 0, entropy 0, gradient untouched); the others use random targets with the first and last
 * token included. Logits are drawn in [-8, 8] (typical), in [-80, 80] (large magnitude:
 * e^(80/0.7) overflows fp32, so an unshifted kernel fails) and around 1e4 (after a bad update; the
 * reference stays finite there too).
 *
 * Tolerance, in gpu_test_err's measure |got - want| / (1 + |want|): 1e-5 for logp, entropy and
 * dlogits. The kernel shifts in float, y = (z - max z) * (1/tau), which is accurate relative to y
 * itself (~1.2e-7 with the rounded 1/tau), and takes float expf (~2 ulp) summed in double; the
 * reference does all of it in double. So log(sum) is off by a few 1e-7 absolute, logp by that
 * plus ~1e-7 |logp|, the entropy by ~1e-6 at most (E_p[y] is bounded by log(vocab) ~ 12 in size),
 * and each gradient element by a few 1e-7 |dlogp / tau| (p's relative error). The one-pass row
 * statistics (running sums rescaled by e^d as the maximum grows) add the rounding of d, formed
 * like y, and of the double products. Measured under the SIMT interpreter (glibc's expf, all
 * shapes, 2026-11-27): at most 1.1e-7 (dlogits 64x324, tau 0.7). 1e-5 leaves a margin
 * of ~10 over the worst-case estimates (the GPU's expf is allowed 2 ulp) and still catches a wrong
 * max, tau or index, which are off by O(1).
 *
 * The bf16 gradient (logprob_backward_bf16) against its reference, which rounds the fp32 reference
 * gradient to bf16: got and want must be equal or adjacent bf16 values. Both sides round to bf16 a
 * value that differs from the exact one by at most the fp32 errors above, relative to the element
 * itself: p's relative error is |y| * 1.2e-7 + a few ulp (|y| <= 160/0.7 here: < 3e-5), far below
 * half a bf16 ulp (2^-9 = 2e-3 relative). Two values that close round to the same bf16 value or,
 * when a rounding boundary lies between them, to neighbours - never further apart. Below fp32's
 * normal range (p ~ e^-88 and smaller) the argument holds in absolute terms (fp32 subnormals are
 * 2^16 times finer than bf16's), unless a build flushes subnormals to zero; such values (both below
 * FLT_MIN) are accepted as they are. A wrong max, tau or index is off by many ulp. Every element
 * must be written (the buffer starts as NaN), skipped rows as exact zeros.
 *
 * Calls that differ only in whether the entropy is wanted, or in the stream, must agree bit for
 * bit: the kernels are deterministic (no atomics), so a difference is a bug. */
#include <cuda_runtime.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gpu_test.h"
#include "mmupt/bf16.h"
#include "mmupt/err.h"
#include "mmupt/kernels.h"

#define TOL 1e-5f

/* Host inputs of one case: logits [rows, vocab], targets, dlogp and the pre-filled dlogits. */
struct lp_case {
    int rows, vocab;
    float tau;
    size_t n;
    float *logits, *dlogp, *dz0;
    int64_t *targets;
};

static void case_init(struct lp_case *c, int rows, int vocab, float tau, float lo, float hi)
{
    unsigned seed = (unsigned)rows * 7919u + (unsigned)vocab * 31u + (unsigned)(tau * 10.0f) + (unsigned)hi;
    c->rows = rows;
    c->vocab = vocab;
    c->tau = tau;
    c->n = (size_t)rows * vocab;
    c->logits = mmupt_xmalloc(c->n * sizeof *c->logits);
    c->dz0 = mmupt_xmalloc(c->n * sizeof *c->dz0);
    c->dlogp = mmupt_xmalloc((size_t)rows * sizeof *c->dlogp);
    c->targets = mmupt_xmalloc((size_t)rows * sizeof *c->targets);
    gpu_test_fill(c->logits, c->n, seed, lo, hi);
    gpu_test_fill(c->dz0, c->n, seed + 1, -1.0f, 1.0f);
    gpu_test_fill(c->dlogp, (size_t)rows, seed + 2, -1.0f, 1.0f);
    float *u = mmupt_xmalloc((size_t)rows * sizeof *u);
    gpu_test_fill(u, (size_t)rows, seed + 3, 0.0f, 1.0f);
    for (int r = 0; r < rows; r++) {
        int64_t t = (int64_t)(u[r] * (float)vocab);
        if (t >= vocab) t = vocab - 1;
        if (r % 3 == 1) t = -1;               /* a skipped row (prompt, padding) */
        else if (r == 2) t = 0;               /* the first token */
        else if (r == 3) t = vocab - 1;       /* the last token */
        c->targets[r] = t;
    }
    free(u);
}

static void case_free(struct lp_case *c)
{
    free(c->logits);
    free(c->dz0);
    free(c->dlogp);
    free(c->targets);
}

static void forward_case(struct test_state *ts, const struct lp_case *c, cudaStream_t st)
{
    int rows = c->rows, vocab = c->vocab;
    size_t nr = (size_t)rows;
    float *logp = mmupt_xmalloc(nr * sizeof *logp), *ent = mmupt_xmalloc(nr * sizeof *ent);
    logprob_forward_cpu(logp, ent, c->logits, c->targets, rows, vocab, c->tau);

    float *d_z = gpu_test_upload_floats(c->logits, c->n);
    int64_t *d_t = gpu_test_upload(c->targets, nr * sizeof *c->targets);
    float *d_logp = gpu_test_upload_floats(c->dlogp, nr), *d_ent = gpu_test_upload_floats(c->dlogp, nr); /* garbage to be overwritten */
    logprob_forward_cuda(d_logp, d_ent, d_z, d_t, rows, vocab, c->tau, st);
    float el = gpu_test_dev_err(d_logp, logp, nr), ee = gpu_test_dev_err(d_ent, ent, nr);
    CHECK_MSG(ts, el < TOL, "logp %dx%d tau %g: err %g", rows, vocab, c->tau, el);
    CHECK_MSG(ts, ee < TOL, "entropy %dx%d tau %g: err %g", rows, vocab, c->tau, ee);

    /* Skipped rows are exactly 0 in both outputs. */
    float *hl = mmupt_xmalloc(nr * sizeof *hl), *he = mmupt_xmalloc(nr * sizeof *he);
    gpu_test_download(hl, d_logp, nr * sizeof *hl);
    gpu_test_download(he, d_ent, nr * sizeof *he);
    for (int r = 0; r < rows; r++)
        if (c->targets[r] < 0)
            CHECK_MSG(ts, hl[r] == 0.0f && he[r] == 0.0f, "%dx%d row %d (target -1): logp %g entropy %g", rows,
                      vocab, r, hl[r], he[r]);

    /* Entropy not wanted, on the default stream: the same logp bits. */
    float *d_logp1 = gpu_test_upload_floats(c->dlogp, nr);
    logprob_forward_cuda(d_logp1, NULL, d_z, d_t, rows, vocab, c->tau, NULL);
    CHECK_MSG(ts, gpu_test_dev_same(d_logp1, d_logp, nr), "logp %dx%d tau %g: entropy=NULL changed logp", rows, vocab, c->tau);

    void *dev[] = {d_z, d_t, d_logp, d_ent, d_logp1};
    for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++) CUDA_CHECK(cudaFree(dev[i]));
    free(logp);
    free(ent);
    free(hl);
    free(he);
}

static void backward_case(struct test_state *ts, const struct lp_case *c, cudaStream_t st)
{
    int rows = c->rows, vocab = c->vocab;
    size_t nr = (size_t)rows, n = c->n;
    float *dz_ref = mmupt_xmalloc(n * sizeof *dz_ref);
    memcpy(dz_ref, c->dz0, n * sizeof *dz_ref);
    logprob_backward_cpu(dz_ref, c->dlogp, c->logits, c->targets, rows, vocab, c->tau);

    float *d_z = gpu_test_upload_floats(c->logits, n), *d_dlogp = gpu_test_upload_floats(c->dlogp, nr);
    int64_t *d_t = gpu_test_upload(c->targets, nr * sizeof *c->targets);
    float *d_dz = gpu_test_upload_floats(c->dz0, n);
    logprob_backward_cuda(d_dz, d_dlogp, d_z, d_t, rows, vocab, c->tau, st);
    float e = gpu_test_dev_err(d_dz, dz_ref, n);
    CHECK_MSG(ts, e < TOL, "dlogits %dx%d tau %g: err %g", rows, vocab, c->tau, e);

    /* Skipped rows keep their pre-filled gradient bit for bit. */
    float *got = mmupt_xmalloc(n * sizeof *got);
    gpu_test_download(got, d_dz, n * sizeof *got);
    for (int r = 0; r < rows; r++) {
        size_t off = (size_t)r * vocab;
        if (c->targets[r] < 0)
            CHECK_MSG(ts, memcmp(got + off, c->dz0 + off, (size_t)vocab * sizeof *got) == 0,
                      "%dx%d row %d (target -1): gradient changed", rows, vocab, r);
    }

    /* The default stream: the same bits. */
    float *d_dz1 = gpu_test_upload_floats(c->dz0, n);
    logprob_backward_cuda(d_dz1, d_dlogp, d_z, d_t, rows, vocab, c->tau, NULL);
    CHECK_MSG(ts, gpu_test_dev_same(d_dz1, d_dz, n), "dlogits %dx%d tau %g: differs on the default stream", rows, vocab, c->tau);

    void *dev[] = {d_z, d_dlogp, d_t, d_dz, d_dz1};
    for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++) CUDA_CHECK(cudaFree(dev[i]));
    free(dz_ref);
    free(got);
}

/* A bf16 value's place on the number line (+0 and -0 both 0): neighbours differ by 1. */
static int bf16_order(uint16_t h) { return h & 0x8000u ? -(int)(h & 0x7fffu) : (int)h; }

/* The *_stats pair: the forward's log-probs are the plain forward's bit for bit, its row maxima the
 * CPU's exactly (a maximum rounds nothing) and its sums the CPU's to rounding; the backward from
 * those statistics writes the bits got (the backward that computes its own) does. */
static void stats_case(struct test_state *ts, const struct lp_case *c, const float *d_z, const float *d_dlogp,
                       const int64_t *d_t, const uint16_t *got, cudaStream_t st)
{
    int rows = c->rows, vocab = c->vocab;
    size_t nr = (size_t)rows, n = c->n;
    float *lp_cpu = mmupt_xmalloc(nr * sizeof *lp_cpu), *max_cpu = mmupt_xmalloc(nr * sizeof *max_cpu);
    double *sum_cpu = mmupt_xmalloc(nr * sizeof *sum_cpu);
    logprob_forward_stats_cpu(lp_cpu, NULL, max_cpu, sum_cpu, c->logits, c->targets, rows, vocab, c->tau);
    float *d_lp = NULL, *d_lp1 = NULL, *d_max = NULL;
    double *d_sum = NULL;
    uint16_t *d_dz = NULL;
    CUDA_CHECK(cudaMalloc((void **)&d_lp, nr * sizeof *d_lp));
    CUDA_CHECK(cudaMalloc((void **)&d_lp1, nr * sizeof *d_lp1));
    CUDA_CHECK(cudaMalloc((void **)&d_max, nr * sizeof *d_max));
    CUDA_CHECK(cudaMalloc((void **)&d_sum, nr * sizeof *d_sum));
    CUDA_CHECK(cudaMalloc((void **)&d_dz, n * sizeof *d_dz));
    logprob_forward_stats_cuda(d_lp, NULL, d_max, d_sum, d_z, d_t, rows, vocab, c->tau, st);
    logprob_forward_cuda(d_lp1, NULL, d_z, d_t, rows, vocab, c->tau, st);
    CHECK_MSG(ts, gpu_test_dev_same(d_lp, d_lp1, nr), "stats forward %dx%d: other log-probs", rows, vocab);
    float *mx = gpu_test_download_floats(d_max, nr);
    double *sum = mmupt_xmalloc(nr * sizeof *sum);
    gpu_test_download(sum, d_sum, nr * sizeof *sum);
    for (int r = 0; r < rows; r++) {
        int skipped = c->targets[r] < 0;
        CHECK_MSG(ts, skipped ? sum[r] == 0.0 : mx[r] == max_cpu[r] && fabs(sum[r] / sum_cpu[r] - 1.0) < 1e-5,
                  "stats %dx%d row %d: max %g sum %.9g, CPU %g %.9g", rows, vocab, r, mx[r], sum[r], max_cpu[r],
                  sum_cpu[r]);
    }
    CUDA_CHECK(cudaMemset(d_dz, 0xff, n * sizeof *d_dz));
    logprob_backward_bf16_stats_cuda(d_dz, d_dlogp, d_z, d_t, d_max, d_sum, rows, vocab, c->tau, st);
    uint16_t *got2 = mmupt_xmalloc(n * sizeof *got2);
    gpu_test_download(got2, d_dz, n * sizeof *got2);
    CHECK_MSG(ts, memcmp(got, got2, n * sizeof *got) == 0, "bf16 dlogits %dx%d tau %g: other bits from the statistics",
              rows, vocab, c->tau);
    void *dev[] = {d_lp, d_lp1, d_max, d_sum, d_dz};
    for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++) CUDA_CHECK(cudaFree(dev[i]));
    free(lp_cpu), free(max_cpu), free(sum_cpu), free(mx), free(sum), free(got2);
}

static void backward_bf16_case(struct test_state *ts, const struct lp_case *c, cudaStream_t st)
{
    int rows = c->rows, vocab = c->vocab;
    size_t nr = (size_t)rows, n = c->n;
    uint16_t *want = mmupt_xmalloc(n * sizeof *want), *got = mmupt_xmalloc(n * sizeof *got);
    logprob_backward_bf16_cpu(want, c->dlogp, c->logits, c->targets, rows, vocab, c->tau);

    float *d_z = gpu_test_upload_floats(c->logits, n), *d_dlogp = gpu_test_upload_floats(c->dlogp, nr);
    int64_t *d_t = gpu_test_upload(c->targets, nr * sizeof *c->targets);
    uint16_t *d_dz = NULL, *d_dz1 = NULL;
    CUDA_CHECK(cudaMalloc((void **)&d_dz, n * sizeof *d_dz));
    CUDA_CHECK(cudaMalloc((void **)&d_dz1, n * sizeof *d_dz1));
    CUDA_CHECK(cudaMemset(d_dz, 0xff, n * sizeof *d_dz)); /* NaN: every element must be written */
    CUDA_CHECK(cudaMemset(d_dz1, 0xff, n * sizeof *d_dz1));
    logprob_backward_bf16_cuda(d_dz, d_dlogp, d_z, d_t, rows, vocab, c->tau, st);
    gpu_test_download(got, d_dz, n * sizeof *got);
    int worst = 0;
    size_t bad = n;
    for (size_t i = 0; i < n; i++) {
        float g = bf16_to_f32(got[i]), w = bf16_to_f32(want[i]);
        int d = abs(bf16_order(got[i]) - bf16_order(want[i]));
        if (fabsf(g) < FLT_MIN && fabsf(w) < FLT_MIN) d = 0; /* see the header: flush to zero */
        if (!(g == g) || (d > 1 && bad == n)) bad = i; /* NaN: not written */
        if (d > worst) worst = d;
    }
    CHECK_MSG(ts, bad == n, "bf16 dlogits %dx%d tau %g: element %zu is %#x, want %#x (%d ulp at worst)", rows, vocab,
              c->tau, bad, bad < n ? got[bad] : 0, bad < n ? want[bad] : 0, worst);
    size_t nonzero = n; /* the first element of a skipped row that is not +0 */
    for (size_t i = 0; i < n && nonzero == n; i++)
        if (c->targets[i / (size_t)vocab] < 0 && got[i] != 0) nonzero = i;
    CHECK_MSG(ts, nonzero == n, "bf16 %dx%d: element %zu of a skipped row is %#x", rows, vocab, nonzero,
              nonzero < n ? got[nonzero] : 0);

    /* The default stream: the same bits. */
    logprob_backward_bf16_cuda(d_dz1, d_dlogp, d_z, d_t, rows, vocab, c->tau, NULL);
    uint16_t *got1 = mmupt_xmalloc(n * sizeof *got1);
    gpu_test_download(got1, d_dz1, n * sizeof *got1);
    CHECK_MSG(ts, memcmp(got, got1, n * sizeof *got) == 0, "bf16 dlogits %dx%d tau %g: differs on the default stream",
              rows, vocab, c->tau);
    stats_case(ts, c, d_z, d_dlogp, d_t, got, st);

    void *dev[] = {d_z, d_dlogp, d_t, d_dz, d_dz1};
    for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++) CUDA_CHECK(cudaFree(dev[i]));
    free(want);
    free(got);
    free(got1);
}

static const int ROWS[] = {1, 7, 64};
static const int VOCABS[] = {1, 324, 151936};
static const float TAUS[] = {1.0f, 0.7f};
/* Logit ranges: typical, large magnitude (+-80), and far from 0 (1e4 +- 8). */
static const float RANGES[][2] = {{-8.0f, 8.0f}, {-80.0f, 80.0f}, {9992.0f, 10008.0f}};

#define COUNT(a) (int)(sizeof a / sizeof a[0])

/* Every shape and tau at the typical and the +-80 range; the 1e4 range at the two larger vocabularies. */
static void for_each_case(struct test_state *ts, cudaStream_t st,
                          void (*fn)(struct test_state *, const struct lp_case *, cudaStream_t))
{
    for (int a = 0; a < COUNT(ROWS); a++)
        for (int b = 0; b < COUNT(VOCABS); b++)
            for (int k = 0; k < COUNT(TAUS); k++)
                for (int g = 0; g < COUNT(RANGES); g++) {
                    if (g == 2 && VOCABS[b] == 1) continue;
                    struct lp_case c;
                    case_init(&c, ROWS[a], VOCABS[b], TAUS[k], RANGES[g][0], RANGES[g][1]);
                    fn(ts, &c, st);
                    case_free(&c);
                }
}

static void test_forward(struct test_state *ts, cudaStream_t st) { for_each_case(ts, st, forward_case); }

static void test_backward(struct test_state *ts, cudaStream_t st) { for_each_case(ts, st, backward_case); }

static void test_backward_bf16(struct test_state *ts, cudaStream_t st) { for_each_case(ts, st, backward_bf16_case); }

/* A row whose softmax is nearly one-hot at its target (+80 against -80): logp ~ 0 and entropy ~ 0
 * must come out as small finite numbers, and the gradient near 0 everywhere. And a row where the
 * target is far below the maximum: logp ~ -160/tau, still finite. */
static void test_peaked(struct test_state *ts, cudaStream_t st)
{
    struct lp_case c;
    case_init(&c, 7, 324, 0.7f, -80.0f, -79.0f);
    c.logits[0 * 324 + 5] = 80.0f; /* row 0: target forced to the maximum */
    c.targets[0] = 5;
    c.logits[2 * 324 + 100] = 80.0f; /* row 2: target 0 sits ~160 below the maximum */
    forward_case(ts, &c, st);
    backward_case(ts, &c, st);
    backward_bf16_case(ts, &c, st);
    case_free(&c);
}

/* rows = 0 is a no-op (no zero-block launch). */
static void test_empty(struct test_state *ts, cudaStream_t st)
{
    logprob_forward_cuda(NULL, NULL, NULL, NULL, 0, 10, 1.0f, st);
    logprob_backward_cuda(NULL, NULL, NULL, NULL, 0, 10, 1.0f, st);
    logprob_backward_bf16_cuda(NULL, NULL, NULL, NULL, 0, 10, 1.0f, st);
    CHECK(ts, cudaStreamSynchronize(st) == cudaSuccess);
}

int main(void)
{
    cudaStream_t st = gpu_test_begin_stream();
    struct test_state ts = {0};
    RUN_WITH(&ts, test_forward, st);
    RUN_WITH(&ts, test_backward, st);
    RUN_WITH(&ts, test_backward_bf16, st);
    RUN_WITH(&ts, test_peaked, st);
    RUN_WITH(&ts, test_empty, st);
    CUDA_CHECK(cudaStreamDestroy(st));
    return test_summary(&ts);
}
