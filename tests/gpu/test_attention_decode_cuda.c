/* Decode attention over a slot-major KV cache layer: attention_decode_cuda against
 * attention_decode_cpu, and kv_append_cuda against kv_append_cpu. Batches of n = 1, 3, 17 rows whose
 * lengths 1, 7, 513 and 4097 (longer than a block of threads, and than the CPU's stack buffer) are
 * mixed in one call, in slots given in reverse order with slot 0 unused, and every cache row past a
 * slot's length NaN (a kernel reading past pos would return NaN); head layouts n_heads/n_kv 2/1, 2/2,
 * 14/2 (the 0.5B decoder's GQA group of 7), 12/2 and 16/2 (groups of 6 and 8: the kernel serves a
 * whole group per block, DECODE_HEADS = 8 heads at a time); head sizes 64, 80 (vision) and
 * 128 (decoder). Each shape runs twice: q, k, v of ordinary size, and q, k of large magnitude, where
 * the scores pass 88.7 so an exponential without the max subtracted would overflow fp32 (the test
 * checks that premise on the host). Then shapes at the kernel's boundaries: lengths around a warp
 * (32), the interleave of 8 warps and a block of 256 threads; a group of 17 (chunks of 8, 8 and 1
 * heads); hd 33 and 36 (no 16-byte packs: the element-by-element path, and a last lane with one
 * dim) and caches not 16-byte aligned. Also: n = 0 (nothing written), every output written (the
 * buffer starts as garbage), a second call on the default stream equal bit for bit (no float
 * atomics), and the append bit for bit leaving every other cache row alone; the bf16 cache's twins
 * likewise, and attention_decode_bf16_cast_cuda: out the same bits as attention_decode_bf16_cuda's,
 * out16 exactly out rounded to bf16. Skips (exit 77) without a GPU.
 *
 * Tolerance, in gpu_test_err's measure (max |got - want| / (1 + |want|)): out is an average of v
 * rows, so its error is about the largest error of a score difference s_j - max times 2 max |v|
 * (a weight's relative error equals its score's absolute one), plus fp32 rounding of the weighted
 * sum. The kernel's dot products run over d in order 0..hd-1, as the reference's loop is written,
 * but not as it runs: the reference's `omp simd` reduction keeps vector-lane partial sums, and the
 * GPU fuses each multiply-add (the SIMT build compiles with -ffp-contract=off, so there the kernel's
 * dot is the plain sequential sum). So the scores still differ by summation order and by rounding
 * of the products: a few ulp of scale * sum_d |q_d k_d|. The weighted sum over the cache rows is
 * split over 8 warps (rows j = w, w + 8, ...; the warps' partials added in warp order) where the
 * reference adds the rows in order, again with fused multiply-adds on the GPU; the normaliser is
 * summed in double over 32 lanes (the reference: in row order), which changes inv by an ulp at most.
 * So the bound scales with the score magnitude:
 *   TOL_BASE             2e-6 for q in [-2, 2), k, v in [-1, 1) (scores below 4 here): a host
 *                        emulation of the former kernel's order (32-lane partial dot products) gave
 *                        at most 1.5e-7; the in-order dot's worst-case bound is a few times larger
 *                        (hd terms in one chain), and the SIMT interpreter measured at most 2.4e-7;
 *   TOL_PER_SCORE_UNIT   plus 5e-7 per unit of the largest scale * sum_d |q_d k_d| of the call,
 *                        which for the large-magnitude inputs (q, k in [-12, 12), scores up to
 *                        ~250, those sums 400-550) allows ~2.5e-4 against at most 2e-5 emulated
 *                        (former order) and 2.8e-5 measured on the SIMT interpreter (this kernel):
 *                        a few ulp of ~500 (3e-5 each) times the weights and 2 max |v|.
 * The kernel uses expf, not __expf: __expf's error grows with |x| (about 2 + 1.2 |x| ulp per the CUDA guide, and x = s - max
 * reaches -100s here), while expf (2 ulp) stays within rounding of glibc's, so the comparison
 * measures only the summation order. */
#include <cuda_runtime.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gpu_test.h"
#include "mmupt/bf16.h"
#include "mmupt/err.h"
#include "mmupt/kernels.h"

#define TOL_BASE 2e-6
#define TOL_PER_SCORE_UNIT 5e-7

static const int LENS[] = {1, 7, 513, 4097};
#define N_LENS (int)(sizeof LENS / sizeof LENS[0])
static const int NS[] = {1, 3, 17};
static const int HEADS[][2] = {{2, 1}, {2, 2}, {14, 2}, {12, 2}, {16, 2}};
#define N_HEADS (int)(sizeof HEADS / sizeof HEADS[0])
static const int HDS[] = {64, 80, 128};

/* One call's inputs on both sides and the reference output. Row i lives in slot n - i of a cache of
 * n + 1 slots (slot 0 unused) and max_len = the longest row + 1; rows past each length are NaN. */
struct dec_case {
    int n, n_heads, n_kv, hd, large, n_slots, max_len;
    int len[32], slot[32], pos[32];
    float *q, *out;             /* host: [n, n_heads, hd] */
    float *k, *v;               /* host cache layer [n_slots, max_len, n_kv, hd] */
    float *dk, *dv;             /* device copies */
    int *d_idx;                 /* device [slot | pos] */
    double max_abs_score_sum;   /* largest scale * sum_d |q_d k_d| */
    double max_score;           /* largest |scale * q . k| */
};

static size_t cache_floats(const struct dec_case *c) { return (size_t)c->n_slots * c->max_len * c->n_kv * c->hd; }
static size_t q_floats(const struct dec_case *c) { return (size_t)c->n * c->n_heads * c->hd; }
static const float *slot_rows(const struct dec_case *c, const float *cache, int i)
{
    return cache + (size_t)c->slot[i] * c->max_len * c->n_kv * c->hd;
}

/* Score magnitudes of the reference inputs: the error scale, and the overflow premise. */
static void case_score_stats(struct dec_case *c)
{
    int group = c->n_heads / c->n_kv;
    double scale = 1.0 / sqrt((double)c->hd);
    c->max_abs_score_sum = 0.0;
    c->max_score = 0.0;
    for (int i = 0; i < c->n; i++)
        for (int h = 0; h < c->n_heads; h++)
            for (int j = 0; j < c->len[i]; j++) {
                const float *qi = c->q + ((size_t)i * c->n_heads + h) * c->hd;
                const float *kj = slot_rows(c, c->k, i) + ((size_t)j * c->n_kv + h / group) * c->hd;
                double s = 0.0, a = 0.0;
                for (int d = 0; d < c->hd; d++) {
                    s += (double)qi[d] * kj[d];
                    a += fabs((double)qi[d] * kj[d]);
                }
                if (fabs(s) * scale > c->max_score) c->max_score = fabs(s) * scale;
                if (a * scale > c->max_abs_score_sum) c->max_abs_score_sum = a * scale;
            }
}

/* lens: n lengths (>= 1). large: q, k in [-12, 12) instead of q in [-2, 2), k in [-1, 1). */
static void case_init(struct dec_case *c, int n, const int *lens, int n_heads, int n_kv, int hd, int large)
{
    MMUPT_CHECK(n <= 32);
    memset(c, 0, sizeof *c);
    c->n = n;
    c->n_heads = n_heads;
    c->n_kv = n_kv;
    c->hd = hd;
    c->large = large;
    c->n_slots = n + 1;
    for (int i = 0; i < n; i++) {
        MMUPT_CHECK(lens[i] >= 1);
        c->len[i] = lens[i];
        c->slot[i] = n - i;
        c->pos[i] = lens[i] - 1;
        if (lens[i] + 1 > c->max_len) c->max_len = lens[i] + 1;
    }
    unsigned seed = (unsigned)(n * 7919 + n_heads * 131 + n_kv * 17 + hd * 3 + large);
    float qa = large ? 12.0f : 2.0f, ka = large ? 12.0f : 1.0f;
    c->q = mmupt_xmalloc(q_floats(c) * sizeof(float));
    gpu_test_fill(c->q, q_floats(c), seed, -qa, qa);
    size_t m = cache_floats(c), row = (size_t)n_kv * hd;
    c->k = mmupt_xmalloc(m * sizeof(float));
    c->v = mmupt_xmalloc(m * sizeof(float));
    for (size_t e = 0; e < m; e++) c->k[e] = c->v[e] = NAN;
    for (int i = 0; i < n; i++) {
        float *k = (float *)slot_rows(c, c->k, i), *v = (float *)slot_rows(c, c->v, i);
        gpu_test_fill(k, (size_t)lens[i] * row, seed + 100u + (unsigned)i, -ka, ka);
        gpu_test_fill(v, (size_t)lens[i] * row, seed + 200u + (unsigned)i, -1.0f, 1.0f);
    }
    c->dk = gpu_test_upload(c->k, m * sizeof(float));
    c->dv = gpu_test_upload(c->v, m * sizeof(float));
    int idx[64];
    memcpy(idx, c->slot, (size_t)n * sizeof(int));
    memcpy(idx + n, c->pos, (size_t)n * sizeof(int));
    c->d_idx = gpu_test_upload(idx, 2 * (size_t)n * sizeof(int));
    c->out = mmupt_xmalloc(q_floats(c) * sizeof(float));
    attention_decode_cpu(c->out, c->q, c->k, c->v, c->slot, c->pos, n, c->n_slots, c->max_len, n_heads, n_kv, hd);
    case_score_stats(c);
}

static void case_free(struct dec_case *c)
{
    free(c->k);
    free(c->v);
    CUDA_CHECK(cudaFree(c->dk));
    CUDA_CHECK(cudaFree(c->dv));
    CUDA_CHECK(cudaFree(c->d_idx));
    free(c->q);
    free(c->out);
}

/* Zeroed split counters for n rows of n_kv heads (attention_decode_cuda's count). */
static unsigned *zero_counts(int n, int n_kv)
{
    unsigned *d = NULL;
    CUDA_CHECK(cudaMalloc((void **)&d, (size_t)n * n_kv * sizeof *d));
    CUDA_CHECK(cudaMemset(d, 0, (size_t)n * n_kv * sizeof *d));
    return d;
}

/* Whether every counter is zero again (the kernel's contract for the next call). */
static int counts_zero(const unsigned *d, int n, int n_kv)
{
    size_t m = (size_t)n * n_kv;
    unsigned *h = mmupt_xmalloc(m * sizeof *h);
    gpu_test_download(h, d, m * sizeof *h);
    int ok = 1;
    for (size_t i = 0; i < m; i++) ok &= h[i] == 0;
    free(h);
    return ok;
}

/* Runs the twin on stream st into a fresh garbage-filled buffer, with split counters (split: the
 * long caches' rows over several blocks) or without; returns the host copy of out, NULL when the
 * counters were not left zero. */
static float *run_cuda(const struct dec_case *c, cudaStream_t st, int split, int stage)
{
    size_t nq = q_floats(c);
    float *h = mmupt_xmalloc(nq * sizeof *h);
    for (size_t i = 0; i < nq; i++) h[i] = NAN;
    float *d_q = gpu_test_upload(c->q, nq * sizeof(float)), *d_out = gpu_test_upload(h, nq * sizeof(float));
    float *d_scores = NULL;
    CUDA_CHECK(cudaMalloc((void **)&d_scores, (size_t)c->n * c->n_heads * c->max_len * sizeof(float) + 1));
    unsigned *d_count = split ? zero_counts(c->n, c->n_kv) : NULL;
    attention_decode_cuda(d_out, d_q, c->dk, c->dv, c->d_idx, c->d_idx + c->n, c->n, c->n_slots, c->max_len,
                          c->n_heads, c->n_kv, c->hd, d_scores, d_count, stage ? ATTN_DECODE_STAGE : 0, st);
    gpu_test_download(h, d_out, nq * sizeof(float));
    if (d_count && !counts_zero(d_count, c->n, c->n_kv)) {
        free(h);
        h = NULL;
    }
    CUDA_CHECK(cudaFree(d_count));
    CUDA_CHECK(cudaFree(d_scores));
    CUDA_CHECK(cudaFree(d_q));
    CUDA_CHECK(cudaFree(d_out));
    return h;
}

#define CASE_FMT "n %d, heads %d/%d, hd %d, %s"
#define CASE_ARGS(c) (c)->n, (c)->n_heads, (c)->n_kv, (c)->hd, (c)->large ? "large q/k" : "ordinary q/k"

/* The twin against the reference, unsplit and split, each then again on the default stream: the
 * same bits. */
static void check_case(struct test_state *ts, const struct dec_case *c, cudaStream_t st)
{
    size_t nq = q_floats(c);
    double tol = TOL_BASE + TOL_PER_SCORE_UNIT * c->max_abs_score_sum;
    for (int split = 0; split <= 1; split++) {
        float *got = run_cuda(c, st, split, 0);
        CHECK_MSG(ts, got != NULL, "out, " CASE_FMT ", split: the counters are not zero after the call",
                  CASE_ARGS(c));
        if (!got) continue;
        float e = gpu_test_err(got, c->out, nq);
        CHECK_MSG(ts, e < tol, "out, " CASE_FMT ", split %d: err %g, tol %g", CASE_ARGS(c), split, e, tol);
        float *again = run_cuda(c, NULL, split, 0);
        CHECK_MSG(ts, again && memcmp(got, again, nq * sizeof *got) == 0, "out, " CASE_FMT ", split %d: not repeatable",
                  CASE_ARGS(c), split);
        free(got);
        free(again);
    }
}

/* Every batch size x head layout x head size x magnitude, lengths cycling through LENS so each
 * batch of 3 or 17 mixes short and long caches (and n = 1 sees each length across the head sizes). */
static void test_against_reference(struct test_state *ts, cudaStream_t st)
{
    double top_score = 0.0;
    for (int a = 0; a < 3; a++)
        for (int b = 0; b < N_HEADS; b++)
            for (int d = 0; d < 3; d++)
                for (int large = 0; large <= 1; large++) {
                    if (!gpu_test_keep(a + b + d + large, N_HEADS)) continue;
                    int lens[32];
                    for (int i = 0; i < NS[a]; i++) lens[i] = LENS[(i + b + d + large) % N_LENS];
                    struct dec_case c;
                    case_init(&c, NS[a], lens, HEADS[b][0], HEADS[b][1], HDS[d], large);
                    if (large && c.max_score > top_score) top_score = c.max_score;
                    check_case(ts, &c, st);
                    case_free(&c);
                }
    /* The large-magnitude inputs must really reach scores where expf overflows without the max. */
    CHECK_MSG(ts, top_score > 88.8, "largest score only %g: the stability cases test nothing", top_score);
}

/* Shapes at the kernel's boundaries (one block per (row, kv head), 256 threads = 8 warps, score rows
 * per thread, heads DECODE_HEADS = 8 at a time, dims in pairs per lane and 16-byte packs), each with
 * both magnitudes. */
static void test_boundaries(struct test_state *ts, cudaStream_t st)
{
    static const struct {
        int n, n_heads, n_kv, hd, lens[8];
    } shapes[] = {
        {8, 14, 2, 64, {31, 32, 33, 255, 256, 257, 8, 9}}, /* a warp, the 8-warp interleave, a block */
        {4, 17, 1, 64, {1, 257, 40, 512}},                 /* a group of 17: chunks of 8, 8 and 1 */
        {3, 16, 1, 80, {513, 2, 64}},                      /* 16: two whole chunks; hd 80: a partial dim pass */
        {3, 6, 2, 33, {1, 40, 300}},                       /* odd hd: no packs, a last lane with one dim */
        {2, 16, 2, 64, {511, 5}}, /* a group of 8 over 512 rows: scores filling the 48 KiB default exactly */
    };
    for (size_t t = 0; t < sizeof shapes / sizeof shapes[0]; t++)
        for (int large = 0; large <= 1; large++) {
            struct dec_case c;
            case_init(&c, shapes[t].n, shapes[t].lens, shapes[t].n_heads, shapes[t].n_kv, shapes[t].hd, large);
            check_case(ts, &c, st);
            case_free(&c);
        }
}

/* The append: the new rows land bit for bit where the reference puts them, and nothing else moves. */
static void test_append(struct test_state *ts, cudaStream_t st)
{
    enum { N = 3, SLOTS = 5, LEN = 9, KVD = 256 };
    const int slot[N] = {4, 0, 2}, pos[N] = {8, 0, 3};
    size_t m = (size_t)SLOTS * LEN * KVD;
    float *ck = mmupt_xmalloc(m * sizeof(float)), *cv = mmupt_xmalloc(m * sizeof(float));
    float *k = mmupt_xmalloc(N * KVD * sizeof(float)), *v = mmupt_xmalloc(N * KVD * sizeof(float));
    gpu_test_fill(ck, m, 1, -1, 1);
    gpu_test_fill(cv, m, 2, -1, 1);
    gpu_test_fill(k, N * KVD, 3, -1, 1);
    gpu_test_fill(v, N * KVD, 4, -1, 1);
    float *d_ck = gpu_test_upload(ck, m * 4), *d_cv = gpu_test_upload(cv, m * 4);
    float *d_k = gpu_test_upload(k, N * KVD * 4), *d_v = gpu_test_upload(v, N * KVD * 4);
    int idx[2 * N];
    memcpy(idx, slot, sizeof slot);
    memcpy(idx + N, pos, sizeof pos);
    int *d_idx = gpu_test_upload(idx, sizeof idx);
    kv_append_cpu(ck, cv, k, v, slot, pos, N, SLOTS, LEN, KVD);
    kv_append_cuda(d_ck, d_cv, d_k, d_v, d_idx, d_idx + N, N, SLOTS, LEN, KVD, st);
    float *got_k = mmupt_xmalloc(m * sizeof(float)), *got_v = mmupt_xmalloc(m * sizeof(float));
    gpu_test_download(got_k, d_ck, m * 4);
    gpu_test_download(got_v, d_cv, m * 4);
    CHECK_MSG(ts, memcmp(got_k, ck, m * 4) == 0 && memcmp(got_v, cv, m * 4) == 0, "kv_append_cuda differs");
    float *bufs[] = {d_ck, d_cv, d_k, d_v};
    for (int i = 0; i < 4; i++) CUDA_CHECK(cudaFree(bufs[i]));
    CUDA_CHECK(cudaFree(d_idx));
    free(ck), free(cv), free(k), free(v), free(got_k), free(got_v);
}

/* 1 when every out16[i] is out[i] rounded to bf16 (nearest even, as cast_bf16). */
static int rounds_of(const uint16_t *out16, const float *out, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (out16[i] != bf16_from_f32(out[i])) return 0;
    return 1;
}

/* m cache floats rounded to bf16 after off leading elements (off = 1: the element before a
 * misaligned cache, zero, uploaded and never read). */
static uint16_t *bf16_cache(const float *x, size_t m, size_t off)
{
    uint16_t *h = mmupt_xmalloc((m + off) * sizeof *h);
    if (off) h[0] = 0;
    cast_bf16_cpu(h + off, x, (long)m);
    return h;
}

/* One call over a bf16 cache: the case's cache rounded to bf16 (NaN past every length stays NaN), the
 * bf16 twin against the bf16 reference (the widening is exact, so the fp32 tolerance holds); then
 * attention_decode_bf16_cast_cuda on the same inputs into fresh NaN buffers: out the plain twin's bits,
 * out16 exactly out rounded (and the CPU reference of the cast likewise). misalign: both caches start
 * one element past a 16-byte boundary (no packed loads). */
static void bf16_case(struct test_state *ts, cudaStream_t st, int n, const int *lens, int n_heads, int n_kv, int hd,
                      int large, int misalign, int stage)
{
    struct dec_case c;
    case_init(&c, n, lens, n_heads, n_kv, hd, large);
    size_t m = cache_floats(&c), nq = q_floats(&c), off = misalign ? 1 : 0;
    uint16_t *k16 = bf16_cache(c.k, m, off), *v16 = bf16_cache(c.v, m, off);
    float *want = mmupt_xmalloc(nq * sizeof *want), *got = mmupt_xmalloc(nq * sizeof *got);
    float *want_c = mmupt_xmalloc(nq * sizeof *want_c), *got_c = mmupt_xmalloc(nq * sizeof *got_c);
    uint16_t *want16 = mmupt_xmalloc(nq * sizeof *want16), *got16 = mmupt_xmalloc(nq * sizeof *got16);
    attention_decode_bf16_cpu(want, c.q, k16 + off, v16 + off, c.slot, c.pos, c.n, c.n_slots, c.max_len, c.n_heads,
                              c.n_kv, c.hd);
    attention_decode_bf16_cast_cpu(want_c, want16, c.q, k16 + off, v16 + off, c.slot, c.pos, c.n, c.n_slots,
                                   c.max_len, c.n_heads, c.n_kv, c.hd);
    CHECK_MSG(ts, memcmp(want_c, want, nq * sizeof *want) == 0 && rounds_of(want16, want_c, nq),
              "attention_decode_bf16_cast_cpu is not attention_decode_bf16_cpu then the cast");

    uint16_t *dk = gpu_test_upload(k16, (m + off) * 2), *dv = gpu_test_upload(v16, (m + off) * 2);
    for (size_t e = 0; e < nq; e++) got[e] = NAN;
    float *d_q = gpu_test_upload(c.q, nq * 4), *d_out = gpu_test_upload(got, nq * 4);
    float *d_out_c = gpu_test_upload(got, nq * 4), *d_scores = NULL;
    memset(got16, 0xff, nq * sizeof *got16);
    uint16_t *d_out16 = gpu_test_upload(got16, nq * 2);
    CUDA_CHECK(cudaMalloc((void **)&d_scores, (size_t)c.n * c.n_heads * c.max_len * sizeof(float) + 1));
    /* the split's way where the cache is long - but not staged: a staged call runs unsplit */
    unsigned *d_count = stage ? NULL : zero_counts(c.n, c.n_kv);
    attention_decode_bf16_cuda(d_out, d_q, dk + off, dv + off, c.d_idx, c.d_idx + c.n, c.n, c.n_slots, c.max_len,
                               c.n_heads, c.n_kv, c.hd, d_scores, d_count, 0, st);
    attention_decode_bf16_cast_cuda(d_out_c, d_out16, d_q, dk + off, dv + off, c.d_idx, c.d_idx + c.n, c.n, c.n_slots,
                                    c.max_len, c.n_heads, c.n_kv, c.hd, d_scores, d_count,
                                    stage ? ATTN_DECODE_STAGE : 0, st);
    CHECK_MSG(ts, !d_count || counts_zero(d_count, c.n, c.n_kv),
              "bf16 twins: the split counters are not zero after the calls");
    CUDA_CHECK(cudaFree(d_count));
    gpu_test_download(got, d_out, nq * 4);
    gpu_test_download(got_c, d_out_c, nq * 4);
    gpu_test_download(got16, d_out16, nq * 2);
    double tol = TOL_BASE + TOL_PER_SCORE_UNIT * c.max_abs_score_sum;
    float e = gpu_test_err(got, want, nq);
    CHECK_MSG(ts, e < tol, "bf16 cache, " CASE_FMT "%s: err %g, tol %g", CASE_ARGS(&c),
              misalign ? ", misaligned" : "", e, tol);
    CHECK_MSG(ts, memcmp(got_c, got, nq * sizeof *got) == 0, "bf16 cast, " CASE_FMT ": out differs from "
              "attention_decode_bf16_cuda's", CASE_ARGS(&c));
    CHECK_MSG(ts, rounds_of(got16, got_c, nq), "bf16 cast, " CASE_FMT ": out16 is not out rounded", CASE_ARGS(&c));
    void *dev[] = {dk, dv, d_q, d_out, d_out_c, d_out16, d_scores};
    for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++) CUDA_CHECK(cudaFree(dev[i]));
    free(k16), free(v16), free(want), free(got), free(want_c), free(got_c), free(want16), free(got16);
    case_free(&c);
}

/* The bf16 cache's twins: attention (and its bf16-rounding variant) on the decoders' shape with both
 * magnitudes, misaligned caches, hd 36 (a multiple of 4 but not of 8: no bf16 packs) with a group of
 * 17, and hd 80 with a group of 8; the bf16 append bit for bit. */
static void test_bf16_cache(struct test_state *ts, cudaStream_t st)
{
    static const int lens[] = {7, 513, 1, 4097}, lens_b[] = {257, 33, 9}, lens_c[] = {40, 300, 1},
                     lens_d[] = {256, 100};
    for (int large = 0; large <= 1; large++) bf16_case(ts, st, 4, lens, 14, 2, 64, large, 0, 0);
    bf16_case(ts, st, 3, lens_b, 14, 2, 64, 0, 1, 0);
    bf16_case(ts, st, 3, lens_c, 17, 1, 36, 0, 0, 0);
    bf16_case(ts, st, 2, lens_d, 16, 2, 80, 1, 0, 0);
    enum { N = 3, SLOTS = 4, LEN = 5, KVD = 128 };
    const int slot[N] = {3, 0, 1}, pos[N] = {4, 0, 2}, idx[2 * N] = {3, 0, 1, 4, 0, 2};
    size_t m = (size_t)SLOTS * LEN * KVD;
    uint16_t *ck = mmupt_xmalloc(m * 2), *cv = mmupt_xmalloc(m * 2), *gk = mmupt_xmalloc(m * 2), *gv = mmupt_xmalloc(m * 2);
    float *k = mmupt_xmalloc(N * KVD * 4), *v = mmupt_xmalloc(N * KVD * 4);
    memset(ck, 0x11, m * 2), memset(cv, 0x22, m * 2);
    gpu_test_fill(k, N * KVD, 7, -3, 3), gpu_test_fill(v, N * KVD, 8, -3, 3);
    uint16_t *d_ck = gpu_test_upload(ck, m * 2), *d_cv = gpu_test_upload(cv, m * 2);
    float *d_k = gpu_test_upload(k, N * KVD * 4), *d_v = gpu_test_upload(v, N * KVD * 4);
    int *d_idx = gpu_test_upload(idx, sizeof idx);
    kv_append_bf16_cpu(ck, cv, k, v, slot, pos, N, SLOTS, LEN, KVD);
    kv_append_bf16_cuda(d_ck, d_cv, d_k, d_v, d_idx, d_idx + N, N, SLOTS, LEN, KVD, st);
    gpu_test_download(gk, d_ck, m * 2);
    gpu_test_download(gv, d_cv, m * 2);
    CHECK_MSG(ts, memcmp(gk, ck, m * 2) == 0 && memcmp(gv, cv, m * 2) == 0, "kv_append_bf16_cuda differs");
    void *dev[] = {d_ck, d_cv, d_k, d_v, d_idx};
    for (int i = 0; i < 5; i++) CUDA_CHECK(cudaFree(dev[i]));
    free(ck), free(cv), free(gk), free(gv), free(k), free(v);
}

/* Staged calls (stage 1: each block's rows copied into shared memory first): the same bits as the
 * unstaged kernel - steps 2-4 are the same arithmetic in the same order on the same values - and so
 * within the reference's tolerance. Caches that fit the interpreter's 48 KiB (up to ~60 rows at hd 64
 * in bf16), the fp32 and bf16 caches, groups of 1, 7 and 8, hd 64 and 80, both magnitudes, rows of one
 * up to the whole cache; on a GPU also a 321-row cache (more shared memory than the default, asked
 * for per launch; test_decode_fused_cuda has the rollout's 385 rows in bf16). Every case must really stage (attention_decode_stage_fits), and the
 * bf16 twins' cast variant is checked staged too (bf16_case). */
static void test_staged(struct test_state *ts, cudaStream_t st)
{
    static const struct {
        int n, n_heads, n_kv, hd, lens[4];
    } shapes[] = {
        {3, 14, 2, 64, {1, 20, 28}},
        {4, 16, 2, 64, {9, 1, 2, 20}},
        {2, 2, 2, 80, {13, 24}},
#ifndef MMUPT_SIMT
        {3, 14, 2, 64, {320, 129, 1}}, /* GPU: over 48 KiB of shared memory (fp32: 212 KiB, near the most) */
#endif
    };
    for (size_t t = 0; t < sizeof shapes / sizeof shapes[0]; t++)
        for (int large = 0; large <= 1; large++) {
            struct dec_case c;
            case_init(&c, shapes[t].n, shapes[t].lens, shapes[t].n_heads, shapes[t].n_kv, shapes[t].hd, large);
            CHECK_MSG(ts, attention_decode_stage_fits(c.n_heads, c.n_kv, c.hd, c.max_len, 0),
                      "fp32, " CASE_FMT ": does not stage (max_len %d)", CASE_ARGS(&c), c.max_len);
            size_t nq = q_floats(&c);
            float *plain = run_cuda(&c, st, 0, 0), *staged = run_cuda(&c, st, 0, 1);
            CHECK_MSG(ts, memcmp(plain, staged, nq * sizeof *plain) == 0, "fp32, " CASE_FMT ": staged differs",
                      CASE_ARGS(&c));
            double tol = TOL_BASE + TOL_PER_SCORE_UNIT * c.max_abs_score_sum;
            float e = gpu_test_err(staged, c.out, nq);
            CHECK_MSG(ts, e < tol, "fp32 staged, " CASE_FMT ": err %g, tol %g", CASE_ARGS(&c), e, tol);
            free(plain);
            free(staged);
            CHECK_MSG(ts, attention_decode_stage_fits(c.n_heads, c.n_kv, c.hd, c.max_len, 1),
                      "bf16, " CASE_FMT ": does not stage (max_len %d)", CASE_ARGS(&c), c.max_len);
            case_free(&c);
            bf16_case(ts, st, shapes[t].n, shapes[t].lens, shapes[t].n_heads, shapes[t].n_kv, shapes[t].hd, large, 0,
                      1);
        }
    /* A cache far too long for shared memory does not stage (and runs as before: the cases above). */
    CHECK(ts, !attention_decode_stage_fits(14, 2, 64, 4098, 1));
}

/* The tensor-core form (ATTN_DECODE_MMA: kernels/cuda/attention_decode_mma.cu) over bf16 caches. It
 * rounds q and the weights to bf16 on their way into the products; here q is made of bf16 values
 * (rounded on the host first, and the reference computed with that q), so the scores are exact
 * products summed in fp32 and the one rounding the reference lacks is the weights': each within 2^-9
 * relative, so out = sum_j p_j v_j / sum_j p_j moves by at most 2^-9 max |v| = 1.95e-3 (v in [-1, 1)),
 * plus the fp32 summation order the bound above covers: MMA_TOL + TOL_BASE + TOL_PER_SCORE_UNIT x the
 * score scale. A dropped or doubled key is off by about 1/len of O(1) at the short lengths mixed into
 * every call, and by O(1) with the large-magnitude scores (a few keys carry the weight). Shapes: hd
 * 16, 32, 64 and 128; groups 1, 6, 7, 8 and 16 (the A operand's 16 rows); lengths 1 to 513 across the
 * warps' tiles (32 keys a step, 16 at hd 128; 8 warps, 4 at hd 128); NaN past every length (masked,
 * and V's elements there loaded as zeros). Each call: a second one on the default stream equal bit
 * for bit; the cast twin's out16 exactly out rounded; and out NOT the fp32 kernel's bits (the
 * tensor-core form really ran) - where the form does not take the shape (a group of 17, hd 80, a
 * misaligned cache) exactly the fp32 kernel's bits instead. */
#define MMA_TOL 2.5e-3

static void mma_case(struct test_state *ts, cudaStream_t st, int n, const int *lens, int n_heads, int n_kv, int hd,
                     int large, int misalign, int takes)
{
    struct dec_case c;
    case_init(&c, n, lens, n_heads, n_kv, hd, large);
    size_t m = cache_floats(&c), nq = q_floats(&c), off = misalign ? 1 : 0;
    for (size_t e = 0; e < nq; e++) c.q[e] = bf16_to_f32(bf16_from_f32(c.q[e]));
    case_score_stats(&c);
    uint16_t *k16 = bf16_cache(c.k, m, off), *v16 = bf16_cache(c.v, m, off);
    float *want = mmupt_xmalloc(nq * sizeof *want), *got[3];
    attention_decode_bf16_cpu(want, c.q, k16 + off, v16 + off, c.slot, c.pos, c.n, c.n_slots, c.max_len, c.n_heads,
                              c.n_kv, c.hd);
    uint16_t *dk = gpu_test_upload(k16, (m + off) * 2), *dv = gpu_test_upload(v16, (m + off) * 2);
    uint16_t *got16 = mmupt_xmalloc(nq * sizeof *got16), *d_out16 = gpu_test_nan16(nq);
    float *d_q = gpu_test_upload(c.q, nq * 4), *d_scores = NULL;
    CUDA_CHECK(cudaMalloc((void **)&d_scores, (size_t)c.n * c.n_heads * c.max_len * sizeof(float) + 1));
    for (int r = 0; r < 3; r++) { /* 0, 1: tensor cores (stream st, then the default); 2: the fp32 kernel */
        got[r] = mmupt_xmalloc(nq * sizeof *got[r]);
        for (size_t e = 0; e < nq; e++) got[r][e] = NAN;
        float *d_out = gpu_test_upload(got[r], nq * 4);
        attention_decode_bf16_cast_cuda(d_out, r == 0 ? d_out16 : NULL, d_q, dk + off, dv + off, c.d_idx,
                                        c.d_idx + c.n, c.n, c.n_slots, c.max_len, c.n_heads, c.n_kv, c.hd, d_scores,
                                        NULL, r < 2 ? ATTN_DECODE_MMA : 0, r == 1 ? NULL : st);
        gpu_test_download(got[r], d_out, nq * 4);
        CUDA_CHECK(cudaFree(d_out));
    }
    gpu_test_download(got16, d_out16, nq * 2);
    double tol = TOL_BASE + TOL_PER_SCORE_UNIT * c.max_abs_score_sum + (takes ? MMA_TOL : 0.0);
    float e = gpu_test_err(got[0], want, nq);
    const char *form = takes ? "tensor cores" : "tensor cores asked, fp32 kernel";
    CHECK_MSG(ts, e < tol, "%s, " CASE_FMT "%s: err %g, tol %g", form, CASE_ARGS(&c), misalign ? ", misaligned" : "",
              e, tol);
    CHECK_MSG(ts, memcmp(got[1], got[0], nq * sizeof *got[0]) == 0, "%s, " CASE_FMT ": not repeatable", form,
              CASE_ARGS(&c));
    CHECK_MSG(ts, rounds_of(got16, got[0], nq), "%s, " CASE_FMT ": out16 is not out rounded", form, CASE_ARGS(&c));
    int same = memcmp(got[2], got[0], nq * sizeof *got[0]) == 0;
    CHECK_MSG(ts, takes ? !same : same, "%s, " CASE_FMT ": %s", form, CASE_ARGS(&c),
              takes ? "the fp32 kernel's bits (did the tensor-core form run?)" : "not the fp32 kernel's bits");
    void *dev[] = {dk, dv, d_q, d_out16, d_scores};
    for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++) CUDA_CHECK(cudaFree(dev[i]));
    for (int r = 0; r < 3; r++) free(got[r]);
    free(k16), free(v16), free(want), free(got16);
    case_free(&c);
}

static void test_mma(struct test_state *ts, cudaStream_t st)
{
    static const struct {
        int n, n_heads, n_kv, hd, takes, lens[8];
    } shapes[] = {
        {6, 14, 2, 64, 1, {1, 7, 33, 300, 257, 31}}, /* the 0.5B decoder: a group of 7 */
        {4, 12, 2, 128, 1, {513, 1, 17, 64}},        /* the 1.5B decoder: hd 128, 16-key steps, 4 warps */
        {3, 16, 1, 32, 1, {2, 255, 40}},             /* a group of 16: every A row; hd 32 */
        {3, 4, 2, 16, 1, {100, 1, 12}},              /* hd 16: one k step (the test models' head size) */
        {3, 8, 8, 64, 1, {256, 9, 1}},               /* groups of 1 */
        {2, 16, 2, 64, 1, {511, 5}},                 /* 8: rows 8-15 all padding */
        {2, 17, 1, 64, 0, {40, 3}},                  /* a group of 17: not taken */
        {2, 16, 2, 80, 0, {40, 3}},                  /* hd 80: not taken */
    };
    for (size_t t = 0; t < sizeof shapes / sizeof shapes[0]; t++)
        for (int large = 0; large <= 1; large++)
            mma_case(ts, st, shapes[t].n, shapes[t].lens, shapes[t].n_heads, shapes[t].n_kv, shapes[t].hd, large, 0,
                     shapes[t].takes);
    static const int lens[] = {30, 3};
    mma_case(ts, st, 2, lens, 14, 2, 64, 0, 1, 0); /* misaligned caches: not taken */
}

/* n = 0: nothing to compute, nothing written, no index read (NULL everywhere). */
static void test_no_sequences(struct test_state *ts, cudaStream_t st)
{
    float sentinel = 5.0f;
    float *d = gpu_test_upload(&sentinel, sizeof sentinel);
    attention_decode_cuda(d, d, NULL, NULL, NULL, NULL, 0, 1, 1, 2, 1, 64, NULL, NULL, 1, st);
    attention_decode_bf16_cast_cuda(d, NULL, d, NULL, NULL, NULL, NULL, 0, 1, 1, 2, 1, 64, NULL, NULL, 1, st);
    kv_append_cuda(d, d, NULL, NULL, NULL, NULL, 0, 1, 1, 64, st);
    float got = 0.0f;
    gpu_test_download(&got, d, sizeof got);
    CHECK_MSG(ts, got == 5.0f, "n = 0: the output changed to %g", got);
    CUDA_CHECK(cudaFree(d));
}

int main(void)
{
    cudaStream_t st = gpu_test_begin_stream();
    struct test_state ts = {0};
    RUN_WITH(&ts, test_against_reference, st);
    RUN_WITH(&ts, test_boundaries, st);
    RUN_WITH(&ts, test_append, st);
    RUN_WITH(&ts, test_bf16_cache, st);
    RUN_WITH(&ts, test_staged, st);
    RUN_WITH(&ts, test_mma, st);
    RUN_WITH(&ts, test_no_sequences, st);
    CUDA_CHECK(cudaStreamDestroy(st));
    return test_summary(&ts);
}
