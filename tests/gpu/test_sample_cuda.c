/* Token sampling on the device: sample_tokens_cuda against sample_tokens_cpu (the batch of
 * sample_token) on random rows. Skips (exit 77) without a GPU.
 *
 * Cases, each at V = 1, 7, 1000 and 151936 (Qwen2.5-VL's padded vocabulary): greedy with the
 * maximum repeated (ties -> lowest id); temperatures 0.7, 1, 1.3; top_k 1, 2, 50 on logits rounded
 * to a coarse grid so the k-th value is tied (HF keeps every tie); top_p 0.5, 0.9, 0.999 on a flat
 * row and on a grid of tied values (at V = 151936 the tokens within `gap` of the best are far more
 * than the kernel's 4096-entry shared sort: its slow exact path) and on a peaked one (~1000
 * candidates at V = 151936: the shared sort), with and without top_k;
 * a logit bias with -inf bans (the argmax among them), -100, and one id biased twice; invalid rows
 * (a NaN, a +inf, all -inf, u = 1) and invalid parameters (every row -1, logp 0). u comes from
 * sample_rng_uniform.
 *
 * The kernel splits each row into chunks (256 ids for V <= 4096, 512 at V = 5000, 4096 at
 * V = 151936: sample_chunk_len in kernels/cuda/sample.cu) whose partial results a per-row kernel
 * combines, so the chunk cases put the answer on the seams, with exact expected tokens where the
 * arithmetic is exact: draws landing on either side of a chunk boundary (equal weights, u * total
 * an integer; also through the top-k path with every value tied); all the mass in one chunk, the
 * last short chunk included, on every path; a NaN or +inf in a later chunk (that row -1, the rest
 * sampled) and a +inf bias on a later chunk's id (every row -1); greedy ties across chunks and
 * across a chunk boundary (lowest id), a tie made by biases on ids of different chunks, and
 * sampling with biases in four chunks; V = 200 (a row shorter than one chunk, long enough for
 * the draw's descent) and V = 5000 (ten chunks of 512, the last 392). V = 1000 and 151936 end
 * in a short chunk too.
 *
 * Tokens must equal the CPU's exactly, with one allowance: where the CPU's u * total, or its
 * nucleus target top_p * total, lies within 1e-9 relative of one of its cumulative sums, the GPU's
 * differently ordered sums (and a weight rounded differently by exp: see kernels/cuda/sample.cu) may
 * fall on the other side. The test recomputes the CPU's sums, counts such rows, prints them, and
 * allows at most 2 in the whole run (random data lands there with probability ~1e-4 per row);
 * a mismatch anywhere else fails. Greedy tokens, the -1 rows and everything without a draw near a
 * boundary are exact.
 *
 * logp tolerance, in gpu_test_err's measure |got - want| / (1 + |want|): 1e-5. Both sides compute
 * the same float weights (to one ulp on rare arguments) and a double normaliser in another order,
 * then log: the error is a few 1e-7 of |logp|; a wrong temperature, maximum or token is O(1) off.
 *
 * Determinism: a second call (logp NULL, default stream) must give the same tokens bit for bit. */
#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gpu_test.h"
#include "mmupt/err.h"
#include "mmupt/kernels.h"
#include "mmupt/sampler.h"

#define TOL 1e-5f
#define NEAR_REL 1e-9
#define MAX_NEAR 2

static const int VOCABS[] = {1, 7, 1000, 151936};
#define COUNT(a) (int)(sizeof a / sizeof a[0])

/* Rows per case: more for small vocabularies, where a row is cheap. */
static int rows_for(int V) { return V >= 100000 ? 6 : V >= 1000 ? 24 : 16; }

/* The stream, and the rows near a boundary seen so far (the allowance is for the whole run). */
struct sc_ctx {
    cudaStream_t st;
    int n_near;
    int cases; /* run_case calls so far: on the interpreter every other one skips V = 151936 */
};

/* ---- the CPU's sums, recomputed to tell a boundary case from a bug ---- */

struct hcand {
    float v;
    int32_t id;
};

static int hcand_cmp(const void *pa, const void *pb)
{
    const struct hcand *a = pa, *b = pb;
    if (a->v != b->v) return a->v > b->v ? -1 : 1;
    return (a->id > b->id) - (a->id < b->id);
}

static int float_desc(const void *pa, const void *pb)
{
    float a = *(const float *)pa, b = *(const float *)pb;
    return (a < b) - (a > b);
}

static double hweight(float v, float m, double inv_t) { return (double)expf((float)(((double)v - m) * inv_t)); }

static int near_val(double a, double b, double scale) { return fabs(a - b) <= NEAR_REL * scale; }

/* 1 when the CPU's draw for this row (valid, temperature > 0) has u * total, or the nucleus target,
 * within NEAR_REL of one of its running sums. */
static int row_near_boundary(const float *logits, int V, const struct sample_params *p, double u)
{
    float *b = mmupt_xmalloc((size_t)V * sizeof *b), *f = mmupt_xmalloc((size_t)V * sizeof *f);
    struct hcand *c = mmupt_xmalloc((size_t)V * sizeof *c);
    memcpy(b, logits, (size_t)V * sizeof *b);
    for (int i = 0; i < p->n_bias; i++) b[p->bias_ids[i]] += p->bias[i];
    float m = -INFINITY;
    int nf = 0;
    for (int i = 0; i < V; i++) {
        if (b[i] > m) m = b[i];
        if (b[i] != -INFINITY) f[nf++] = b[i];
    }
    double inv_t = 1.0 / (double)p->temperature;
    float thr = -INFINITY;
    if (p->top_k > 0 && p->top_k < V && nf >= p->top_k) {
        qsort(f, (size_t)nf, sizeof *f, float_desc);
        thr = f[p->top_k - 1];
    }
    int n = 0;
    for (int i = 0; i < V; i++)
        if (b[i] != -INFINITY && b[i] >= thr) c[n++] = (struct hcand){b[i], i};
    int near = 0;
    if (p->top_p < 1.0f) {
        double total = 0.0;
        for (int i = 0; i < n; i++) total += hweight(c[i].v, m, inv_t);
        double target = (double)p->top_p * total, cum = 0.0;
        qsort(c, (size_t)n, sizeof *c, hcand_cmp);
        int cut = n;
        for (int i = 0; i < n; i++) {
            cum += hweight(c[i].v, m, inv_t);
            near |= near_val(cum, target, total);
            if (cum >= target && cut == n) cut = i + 1;
        }
        n = cut;
    }
    double total = 0.0, cum = 0.0;
    for (int i = 0; i < n; i++) total += hweight(c[i].v, m, inv_t);
    for (int i = 0; i < n; i++) {
        cum += hweight(c[i].v, m, inv_t);
        near |= near_val(cum, u * total, total);
    }
    free(b);
    free(f);
    free(c);
    return near;
}

/* ---- one call, compared ---- */

/* Both sides against the CPU (see the top) and, when want is not NULL, both equal to want: the
 * chunk edges below are built so that the answer is exact (weights of 1, sums of small integers). */
static void check_call_want(struct test_state *ts, struct sc_ctx *cx, const char *name, const float *logits, int rows,
                            int V, const struct sample_params *p, const double *u, const int32_t *want)
{
    size_t n = (size_t)rows * (size_t)(V > 0 ? V : 0), nr = (size_t)rows;
    int32_t *tc = mmupt_xmalloc(nr * sizeof *tc), *tg = mmupt_xmalloc(nr * sizeof *tg),
            *tg2 = mmupt_xmalloc(nr * sizeof *tg2);
    float *lc = mmupt_xmalloc(nr * sizeof *lc), *lg = mmupt_xmalloc(nr * sizeof *lg);
    sample_tokens_cpu(tc, lc, logits, rows, V, p, u);

    float *d_z = gpu_test_upload_floats(logits, n);
    int32_t *d_t = gpu_test_upload(tc, nr * sizeof *tc); /* overwritten */
    float *d_l = gpu_test_upload_floats(lc, nr);
    CUDA_CHECK(cudaMemset(d_t, 0x5a, nr * sizeof *tc)); /* garbage the kernel must overwrite */
    CUDA_CHECK(cudaMemset(d_l, 0x5a, nr * sizeof *lc));
    sample_tokens_cuda(d_t, d_l, d_z, rows, V, p, u, cx->st);
    gpu_test_download(tg, d_t, nr * sizeof *tg);
    gpu_test_download(lg, d_l, nr * sizeof *lg);
    sample_tokens_cuda(d_t, NULL, d_z, rows, V, p, u, NULL);
    gpu_test_download(tg2, d_t, nr * sizeof *tg2);
    CHECK_MSG(ts, memcmp(tg, tg2, nr * sizeof *tg) == 0, "%s V=%d: a second call gave other tokens", name, V);

    for (int r = 0; r < rows; r++) {
        const float *row = logits + (size_t)r * (size_t)(V > 0 ? V : 0);
        if (tc[r] < 0 || tg[r] < 0) {
            CHECK_MSG(ts, tg[r] == tc[r] && lg[r] == 0.0f, "%s V=%d row %d: gpu %d (logp %g), cpu %d", name, V, r, tg[r],
                      lg[r], tc[r]);
            continue;
        }
        if (tg[r] != tc[r]) {
            int near = p->temperature > 0.0f && row_near_boundary(row, V, p, u[r]);
            printf("%s V=%d row %d: gpu %d, cpu %d, u %.17g: %s\n", name, V, r, tg[r], tc[r], u[r],
                   near ? "within 1e-9 of a boundary (allowed)" : "NOT near a boundary");
            CHECK_MSG(ts, near, "%s V=%d row %d: gpu token %d, cpu %d", name, V, r, tg[r], tc[r]);
            cx->n_near += near;
            continue;
        }
        float e = gpu_test_err(&lg[r], &lc[r], 1);
        CHECK_MSG(ts, e < TOL, "%s V=%d row %d: logp gpu %.9g cpu %.9g (err %g)", name, V, r, lg[r], lc[r], e);
    }
    for (int r = 0; want && r < rows; r++)
        CHECK_MSG(ts, tg[r] == want[r] && tc[r] == want[r], "%s V=%d row %d: gpu %d, cpu %d, want %d", name, V, r,
                  tg[r], tc[r], want[r]);
    CUDA_CHECK(cudaFree(d_z));
    CUDA_CHECK(cudaFree(d_t));
    CUDA_CHECK(cudaFree(d_l));
    free(tc);
    free(tg);
    free(tg2);
    free(lc);
    free(lg);
}

static void check_call(struct test_state *ts, struct sc_ctx *cx, const char *name, const float *logits, int rows, int V,
                       const struct sample_params *p, const double *u)
{
    check_call_want(ts, cx, name, logits, rows, V, p, u, NULL);
}

/* ---- inputs ---- */

enum shape { FLAT, NORMALISH, PEAKED, GRID, TIED_MAX };

/* rows x V logits of a shape; seed picks the draw. */
static float *make_logits(int rows, int V, enum shape sh, unsigned seed)
{
    size_t n = (size_t)rows * (size_t)V;
    float *z = mmupt_xmalloc((n ? n : 1) * sizeof *z);
    gpu_test_fill(z, n, seed, -1.0f, 1.0f);
    for (size_t i = 0; i < n; i++) {
        switch (sh) {
        case FLAT: z[i] *= 0.5f; break;                              /* within 1 nat: a wide nucleus */
        case NORMALISH: z[i] = 4.0f * z[i] * fabsf(z[i]); break;     /* spread over 8 nats */
        case PEAKED: /* a far background, a shoulder of every 151st token, and peaks (below) */
            z[i] = i % 151 == 0 ? 2.0f * z[i] : 3.0f * z[i] - 30.0f;
            break;
        case GRID: z[i] = roundf(z[i] * 4.0f) * 0.5f; break;         /* 9 distinct values: ties everywhere */
        case TIED_MAX: z[i] = roundf(z[i] * 8.0f); break;            /* the maximum repeated */
        }
    }
    if (sh == PEAKED)
        for (int r = 0; r < rows; r++) /* a handful of strong tokens per row */
            for (int j = 0; j < 5 && j < V; j++) {
                size_t at = (size_t)r * V + (size_t)(((unsigned)(r * 7919 + j * 104729 + 13)) % (unsigned)V);
                z[at] = 8.0f - (float)j;
            }
    return z;
}

static double *make_u(int rows, uint64_t step)
{
    double *u = mmupt_xmalloc((size_t)rows * sizeof *u);
    for (int r = 0; r < rows; r++) u[r] = sample_rng_uniform(1234, 7, (uint64_t)r, step);
    return u;
}

static struct sample_params params(float t, float top_p, int top_k)
{
    struct sample_params p = {t, top_p, top_k, NULL, NULL, 0};
    return p;
}

/* One case: every vocabulary, fresh logits of the shape, fresh u. On the SIMT interpreter the full
 * vocabulary (most of this test's minutes there) runs in every other case, alternating, so each
 * kind of case still meets it (gpu_test_keep). */
static void run_case(struct test_state *ts, struct sc_ctx *cx, const char *name, enum shape sh,
                     struct sample_params p)
{
    int keep_full = gpu_test_keep(cx->cases++, 2);
    for (int a = 0; a < COUNT(VOCABS); a++) {
        int V = VOCABS[a], rows = rows_for(V);
        if (V == 151936 && !keep_full) continue;
        unsigned seed = (unsigned)V * 31u + (unsigned)sh * 7u + (unsigned)(p.temperature * 100.0f) +
                        (unsigned)(p.top_p * 1000.0f) + (unsigned)p.top_k * 13u;
        float *z = make_logits(rows, V, sh, seed);
        double *u = make_u(rows, seed);
        check_call(ts, cx, name, z, rows, V, &p, u);
        free(z);
        free(u);
    }
}

static void test_greedy(struct test_state *ts, struct sc_ctx *cx)
{
    run_case(ts, cx, "greedy tied max", TIED_MAX, params(0.0f, 1.0f, 0));
    run_case(ts, cx, "greedy", NORMALISH, params(0.0f, 0.9f, 5)); /* top-p/k ignored at T = 0 */
}

static void test_temperature(struct test_state *ts, struct sc_ctx *cx)
{
    static const float T[] = {0.7f, 1.0f, 1.3f};
    for (int i = 0; i < COUNT(T); i++) {
        run_case(ts, cx, "plain normal", NORMALISH, params(T[i], 1.0f, 0));
        run_case(ts, cx, "plain flat", FLAT, params(T[i], 1.0f, 0));
    }
}

static void test_top_k(struct test_state *ts, struct sc_ctx *cx)
{
    static const int K[] = {1, 2, 50};
    for (int i = 0; i < COUNT(K); i++) {
        run_case(ts, cx, "top_k grid", GRID, params(1.0f, 1.0f, K[i]));
        run_case(ts, cx, "top_k normal", NORMALISH, params(0.7f, 1.0f, K[i]));
    }
}

static void test_top_p(struct test_state *ts, struct sc_ctx *cx)
{
    static const float P[] = {0.5f, 0.9f, 0.999f};
    for (int i = 0; i < COUNT(P); i++) {
        run_case(ts, cx, "top_p flat", FLAT, params(1.0f, P[i], 0));
        run_case(ts, cx, "top_p peaked", PEAKED, params(1.0f, P[i], 0));
        run_case(ts, cx, "top_p grid ties", GRID, params(1.3f, P[i], 0));
        run_case(ts, cx, "top_p+top_k", NORMALISH, params(0.7f, P[i], 50));
    }
}

/* Bans (-inf), a strong penalty and a doubly biased id, on one call's rows; the argmax of row 0 is
 * among the banned ids. */
static void test_bias(struct test_state *ts, struct sc_ctx *cx)
{
    static const float T[] = {0.0f, 1.0f};
    for (int a = 1; a < COUNT(VOCABS); a++) {
        int V = VOCABS[a], rows = rows_for(V);
        float *z = make_logits(rows, V, NORMALISH, (unsigned)V + 5u);
        int best = 0;
        for (int i = 1; i < V; i++)
            if (z[i] > z[best]) best = i;
        int32_t ids[5] = {best, V - 1, 0, V / 2, V / 2};
        float bias[5] = {-INFINITY, -INFINITY, -100.0f, 0.75f, 1.5f};
        for (int k = 0; k < COUNT(T); k++) {
            struct sample_params p = params(T[k], k ? 0.9f : 1.0f, 0);
            p.bias_ids = ids;
            p.bias = bias;
            p.n_bias = 5;
            double *u = make_u(rows, (uint64_t)V + (uint64_t)k);
            check_call(ts, cx, "bias", z, rows, V, &p, u);
            free(u);
        }
        free(z);
    }
}

/* NaN, +inf, all -inf and u = 1 rows give -1 (logp 0) among valid rows; bad parameters make
 * every row -1; rows = 0 does nothing. */
static void test_invalid(struct test_state *ts, struct sc_ctx *cx)
{
    for (int a = 0; a < COUNT(VOCABS); a++) {
        int V = VOCABS[a], rows = 6;
        float *z = make_logits(rows, V, NORMALISH, (unsigned)V + 9u);
        double *u = make_u(rows, 99);
        z[(size_t)1 * V + (size_t)(V - 1)] = NAN;
        z[(size_t)2 * V] = INFINITY;
        for (int i = 0; i < V; i++) z[(size_t)3 * V + i] = -INFINITY;
        u[4] = 1.0;
        struct sample_params ok[] = {params(1.0f, 1.0f, 0), params(0.0f, 1.0f, 0), params(0.7f, 0.9f, 2)};
        for (int k = 0; k < COUNT(ok); k++) check_call(ts, cx, "invalid rows", z, rows, V, &ok[k], u);
        struct sample_params bad[] = {params(-1.0f, 1.0f, 0), params(1.0f, 0.0f, 0), params(NAN, 1.0f, 0),
                                      params(1.0f, 1.5f, 0)};
        for (int k = 0; k < COUNT(bad); k++) check_call(ts, cx, "bad params", z, rows, V, &bad[k], u);
        int32_t id = V; /* out of range */
        float b = 1.0f;
        struct sample_params p = params(1.0f, 1.0f, 0);
        p.bias_ids = &id;
        p.bias = &b;
        p.n_bias = 1;
        check_call(ts, cx, "bias id out of range", z, rows, V, &p, u);
        free(z);
        free(u);
    }
    sample_tokens_cuda(NULL, NULL, NULL, 0, 10, NULL, NULL, cx->st);
    CHECK(ts, cudaStreamSynchronize(cx->st) == cudaSuccess);
}

/* ---- chunk edges: the kernel splits a row into chunks of 256 ids for V <= 4096, 512 at V = 5000 and
 * 4096 at V = 151936 (sample_chunk_len in kernels/cuda/sample.cu) and combines their partial results
 * per row; these cases put the answers on and around those seams ---- */

/* rows x V logits, all equal to v. */
static float *fill_rows(int rows, int V, float v)
{
    size_t n = (size_t)rows * (size_t)V;
    float *z = mmupt_xmalloc(n * sizeof *z);
    for (size_t i = 0; i < n; i++) z[i] = v;
    return z;
}

/* Equal weights (logits 0) on ids [0, n) of every row, so the kept mass is exactly n and u * n is
 * exact for u a multiple of 1/n: the draw lands exactly on the seams between chunks. */
static void test_chunk_seam_draws(struct test_state *ts, struct sc_ctx *cx)
{
    /* V = 1024: four chunks of 256, every id weighs 1; x = u * 1024 */
    static const double U[] = {0.0, 0.25 - 0x1p-20, 0.25, 0.5, 0.75 - 0x1p-20, 0.75, 1.0 - 0x1p-53};
    static const int32_t WANT[] = {0, 255, 256, 512, 767, 768, 1023};
    int rows = COUNT(U), V = 1024;
    float *z = fill_rows(rows, V, 0.0f);
    struct sample_params p = params(1.0f, 1.0f, 0);
    check_call_want(ts, cx, "seam draw", z, rows, V, &p, U, WANT);
    p = params(1.0f, 1.0f, 700); /* top-k with every value tied: HF keeps them all */
    check_call_want(ts, cx, "seam draw top_k ties", z, rows, V, &p, U, WANT);
    free(z);

    /* V = 151936: ids [0, 8192) weigh 1 (chunks 0 and 1 of 4096), the rest are -inf */
    static const double U2[] = {0.5 - 0x1p-20, 0.5, 1.0 - 0x1p-53};
    static const int32_t WANT2[] = {4095, 4096, 8191};
    rows = COUNT(U2);
    V = 151936;
    z = fill_rows(rows, V, -INFINITY);
    for (int r = 0; r < rows; r++)
        for (int i = 0; i < 8192; i++) z[(size_t)r * V + i] = 0.0f;
    p = params(1.0f, 1.0f, 0);
    check_call_want(ts, cx, "seam draw", z, rows, V, &p, U2, WANT2);
    free(z);
}

/* Every finite value in one chunk (the others -inf: zero mass), for each path; and a row whose only
 * finite value is the last id of a short last chunk. */
static void test_chunk_one_holds_all(struct test_state *ts, struct sc_ctx *cx)
{
    static const int VS[] = {1000, 5000};
    for (int a = 0; a < COUNT(VS); a++) {
        int V = VS[a], rows = 6, chunk = V == 1000 ? 256 : 512;
        float *src = make_logits(rows, V, NORMALISH, (unsigned)V + 17u), *z = fill_rows(rows, V, -INFINITY);
        int last = (V - 1) / chunk; /* the short last chunk */
        for (int r = 0; r < rows; r++) {
            int c = r == 5 ? -1 : r % (last + 1); /* row 5: only id V - 1 */
            for (int i = 0; i < V; i++)
                if (i / chunk == c) z[(size_t)r * V + i] = src[(size_t)r * V + i];
            if (r == 5) z[(size_t)r * V + V - 1] = 1.0f;
        }
        double *u = make_u(rows, (uint64_t)V + 3u);
        struct sample_params ps[] = {params(0.0f, 1.0f, 0), params(1.0f, 1.0f, 0), params(0.7f, 1.0f, 5),
                                     params(1.0f, 0.9f, 0), params(1.3f, 0.5f, 40)};
        for (int k = 0; k < COUNT(ps); k++) check_call(ts, cx, "one chunk holds all", z, rows, V, &ps[k], u);
        free(src);
        free(z);
        free(u);
    }
}

/* A NaN or +inf in a later chunk makes its row -1 while the others still sample; a +inf bias on an
 * id of a later chunk makes every row -1. */
static void test_chunk_invalid_later(struct test_state *ts, struct sc_ctx *cx)
{
    static const int VS[] = {1000, 151936};
    for (int a = 0; a < COUNT(VS); a++) {
        int V = VS[a], rows = 5, chunk = V == 1000 ? 256 : 4096;
        float *z = make_logits(rows, V, NORMALISH, (unsigned)V + 23u);
        z[(size_t)0 * V + 2 * chunk + 5] = NAN;     /* a middle chunk */
        z[(size_t)2 * V + chunk - 1] = INFINITY;    /* the last id of chunk 0 */
        z[(size_t)3 * V + (V - 1) / chunk * chunk] = NAN; /* the first id of the short last chunk */
        double *u = make_u(rows, 41);
        struct sample_params ps[] = {params(1.0f, 1.0f, 0), params(0.0f, 1.0f, 0), params(0.7f, 0.9f, 3)};
        for (int k = 0; k < COUNT(ps); k++) {
            int32_t want_bad[5] = {-1, -1, -1, -1, -1};
            check_call(ts, cx, "NaN/inf in a later chunk", z, rows, V, &ps[k], u);
            int32_t id = 3 * chunk + 1 < V ? 3 * chunk + 1 : V - 1;
            float inf = INFINITY;
            struct sample_params pb = ps[k];
            pb.bias_ids = &id;
            pb.bias = &inf;
            pb.n_bias = 1;
            check_call_want(ts, cx, "+inf bias in a later chunk", z, rows, V, &pb, u, want_bad);
        }
        free(z);
        free(u);
    }
}

/* Greedy: the maximum tied across chunks gives the lowest id, a tie made by biases in different
 * chunks too; sampling on the same rows against the CPU. */
static void test_chunk_ties_and_bias(struct test_state *ts, struct sc_ctx *cx)
{
    /* V = 1000 (chunks of 256): ties at {256, 900}, {255, 256}, {768, 999}, {999} */
    int rows = 4, V = 1000;
    float *z = make_logits(rows, V, NORMALISH, 77u); /* |z| <= 4 */
    static const int TIE[4][2] = {{900, 256}, {256, 255}, {999, 768}, {999, 999}};
    int32_t want[4];
    for (int r = 0; r < rows; r++) {
        for (int j = 0; j < 2; j++) z[(size_t)r * V + TIE[r][j]] = 5.0f;
        want[r] = TIE[r][0] < TIE[r][1] ? TIE[r][0] : TIE[r][1];
    }
    struct sample_params p = params(0.0f, 1.0f, 0);
    double *u = make_u(rows, 5);
    check_call_want(ts, cx, "greedy tie across chunks", z, rows, V, &p, u, want);

    /* biases on ids of four chunks: 300 twice (+10, +10) and 600 once (+20) over logits set to 0
     * tie at 20 above everything (the lower id, 300, wins); 10 gets +1.5, 999 is banned */
    for (int r = 0; r < rows; r++) z[(size_t)r * V + 300] = z[(size_t)r * V + 600] = 0.0f;
    int32_t ids[5] = {600, 300, 999, 10, 300};
    float bias[5] = {20.0f, 10.0f, -INFINITY, 1.5f, 10.0f};
    int32_t want_b[4] = {300, 300, 300, 300};
    p.bias_ids = ids;
    p.bias = bias;
    p.n_bias = 5;
    check_call_want(ts, cx, "greedy tie of biased ids", z, rows, V, &p, u, want_b);
    static const float T[] = {1.0f, 8.0f}; /* 8: the biased ids no longer take all the mass */
    for (int k = 0; k < COUNT(T); k++) {
        struct sample_params q = p;
        q.temperature = T[k];
        check_call(ts, cx, "bias in several chunks", z, rows, V, &q, u);
        q.top_k = 3;
        check_call(ts, cx, "bias in several chunks top_k", z, rows, V, &q, u);
        q.top_k = 0;
        q.top_p = 0.9f;
        check_call(ts, cx, "bias in several chunks top_p", z, rows, V, &q, u);
    }
    free(z);

    /* V = 151936 (chunks of 4096): the maximum at 4095, 4096 and 151935 -> 4095; a bias lifting
     * id 8000 to the maximum at 100000 -> 8000 */
    rows = 2;
    V = 151936;
    z = make_logits(rows, V, NORMALISH, 78u);
    z[4095] = z[4096] = z[151935] = 6.0f;
    z[(size_t)V + 100000] = 6.0f;
    z[(size_t)V + 8000] = 5.0f;
    int32_t id = 8000;
    float one = 1.0f;
    struct sample_params pb = params(0.0f, 1.0f, 0);
    pb.bias_ids = &id;
    pb.bias = &one;
    pb.n_bias = 1;
    int32_t want2[2] = {4095, 8000};
    check_call_want(ts, cx, "greedy tie across chunks", z, rows, V, &pb, u, want2);
    free(z);
    free(u);
}

/* Vocabularies besides the main cases': 200 (one chunk shorter than a chunk, but long enough for
 * the draw's descent) and 5000 (ten chunks of 512, the last 392). */
static void test_chunk_vocabs(struct test_state *ts, struct sc_ctx *cx)
{
    static const int VS[] = {200, 5000};
    for (int a = 0; a < COUNT(VS); a++) {
        int V = VS[a], rows = 12;
        float *zn = make_logits(rows, V, NORMALISH, (unsigned)V + 31u), *zg = make_logits(rows, V, GRID, (unsigned)V);
        float *zt = make_logits(rows, V, TIED_MAX, (unsigned)V + 1u);
        float *zf = make_logits(rows, V, FLAT, (unsigned)V + 2u);
        double *u = make_u(rows, (uint64_t)V + 11u);
        struct sample_params p = params(0.0f, 1.0f, 0);
        check_call(ts, cx, "vocab greedy tied max", zt, rows, V, &p, u);
        p = params(1.0f, 1.0f, 0);
        check_call(ts, cx, "vocab plain", zn, rows, V, &p, u);
        p = params(1.0f, 1.0f, 50);
        check_call(ts, cx, "vocab top_k grid", zg, rows, V, &p, u);
        p = params(1.0f, 0.9f, 0);
        check_call(ts, cx, "vocab top_p flat", zf, rows, V, &p, u);
        p = params(0.7f, 0.5f, 20);
        check_call(ts, cx, "vocab top_p+top_k", zn, rows, V, &p, u);
        free(zn);
        free(zg);
        free(zt);
        free(zf);
        free(u);
    }
}

int main(void)
{
    struct sc_ctx cx = {gpu_test_begin_stream(), 0, 0};
    struct test_state ts = {0};
    RUN_WITH(&ts, test_greedy, &cx);
    RUN_WITH(&ts, test_temperature, &cx);
    RUN_WITH(&ts, test_top_k, &cx);
    RUN_WITH(&ts, test_top_p, &cx);
    RUN_WITH(&ts, test_bias, &cx);
    RUN_WITH(&ts, test_invalid, &cx);
    RUN_WITH(&ts, test_chunk_seam_draws, &cx);
    RUN_WITH(&ts, test_chunk_one_holds_all, &cx);
    RUN_WITH(&ts, test_chunk_invalid_later, &cx);
    RUN_WITH(&ts, test_chunk_ties_and_bias, &cx);
    RUN_WITH(&ts, test_chunk_vocabs, &cx);
    printf("rows within 1e-9 of a boundary where the tokens differ: %d (allowed %d)\n", cx.n_near, MAX_NEAR);
    CHECK(&ts, cx.n_near <= MAX_NEAR);
    CUDA_CHECK(cudaStreamDestroy(cx.st));
    return test_summary(&ts);
}
