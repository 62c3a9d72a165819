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
 * and each gradient element by a few 1e-7 |dlogp / tau| (p's relative error). Measured with the
 * kernels emulated on a CPU (glibc's expf, rows 1 and 7): at most 7e-8. 1e-5 leaves a margin
 * of ~10 over the worst-case estimates (the GPU's expf is allowed 2 ulp) and still catches a wrong
 * max, tau or index, which are off by O(1).
 *
 * Calls that differ only in whether the entropy is wanted, or in the stream, must agree bit for
 * bit: the kernels are deterministic (no atomics), so a difference is a bug. */
#include <cuda_runtime.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gpu_test.h"
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
    case_free(&c);
}

/* rows = 0 is a no-op (no zero-block launch). */
static void test_empty(struct test_state *ts, cudaStream_t st)
{
    logprob_forward_cuda(NULL, NULL, NULL, NULL, 0, 10, 1.0f, st);
    logprob_backward_cuda(NULL, NULL, NULL, NULL, 0, 10, 1.0f, st);
    CHECK(ts, cudaStreamSynchronize(st) == cudaSuccess);
}

int main(void)
{
    cudaStream_t st = gpu_test_begin_stream();
    struct test_state ts = {0};
    RUN_WITH(&ts, test_forward, st);
    RUN_WITH(&ts, test_backward, st);
    RUN_WITH(&ts, test_peaked, st);
    RUN_WITH(&ts, test_empty, st);
    CUDA_CHECK(cudaStreamDestroy(st));
    return test_summary(&ts);
}
