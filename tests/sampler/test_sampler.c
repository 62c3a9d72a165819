/* The sampler: the counter-based RNG's statistics, and the sampler's distributions (chi-square
 * against the exact truncated, renormalised distribution computed here independently), log-probs
 * and edge cases. Seeds are fixed, so every statistical test is deterministic; significance 1e-4
 * keeps them far from flaky should the construction change. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../test.h"
#include "mmupt/sampler.h"

#define IMAGE_PAD 151655 /* <|image_pad|> in Qwen2.5-VL's vocabulary */
#define QWEN_V 151936

/* Upper 1e-4 critical value of chi-square with df degrees of freedom (Wilson-Hilferty: a few
 * percent from the exact value for df >= 3, e.g. 24.2 against 23.5 for df = 4). */
static double chi2_crit(int df)
{
    const double z = 3.7190; /* standard normal upper 1e-4 quantile */
    double a = 2.0 / (9.0 * df);
    double c = 1.0 - a + z * sqrt(a);
    return df * c * c * c;
}

/* Chi-square of counts against probabilities, pooling bins with expected count < 5 into one.
 * Returns the statistic and sets *df; a bin with probability 0 and a nonzero count makes it
 * infinite (a token the distribution forbids was drawn). */
static double chi2_stat(const long *count, const double *prob, int n, long total, int *df)
{
    double stat = 0.0, pool_e = 0.0;
    long pool_c = 0;
    int bins = 0;
    for (int i = 0; i < n; i++) {
        double e = prob[i] * (double)total;
        if (prob[i] == 0.0) {
            if (count[i]) return INFINITY;
            continue;
        }
        if (e < 5.0) {
            pool_e += e;
            pool_c += count[i];
            continue;
        }
        stat += (count[i] - e) * (count[i] - e) / e;
        bins++;
    }
    if (pool_e > 0.0) {
        stat += (pool_c - pool_e) * (pool_c - pool_e) / pool_e;
        bins++;
    }
    *df = bins - 1;
    return stat;
}

/* ---- the RNG ---- */

static void test_rng_pinned_values(struct test_state *ts)
{
    /* Computed by an independent Python transcription of the construction in rng.c: a CUDA twin
     * must give these same bits. */
    CHECK(ts, sample_rng_bits(0, 0, 0, 0) == 0xa093752749b96149ULL);
    CHECK(ts, sample_rng_bits(42, 7, 3, 100) == 0x33c242d5682c10e7ULL);
    CHECK(ts, sample_rng_bits(UINT64_MAX, UINT64_MAX, UINT64_MAX, UINT64_MAX) == 0x70e9b14bb70952c6ULL);
    CHECK(ts, sample_rng_uniform(42, 7, 3, 100) == 0.20218293867235126);
    for (uint64_t t = 0; t < 1000; t++) /* determinism: a pure function */
        CHECK(ts, sample_rng_bits(9, t * 3, 5, t) == sample_rng_bits(9, t * 3, 5, t));
}

static int popcount64(uint64_t x)
{
    int n = 0;
    for (; x; x &= x - 1) n++;
    return n;
}

/* Flipping any one bit of any argument changes about half of the output bits (avalanche), and
 * never leaves the output unchanged: different keys give unrelated streams. */
static void test_rng_keys_independent(struct test_state *ts)
{
    for (int arg = 0; arg < 4; arg++) {
        double sum = 0.0;
        long n = 0, same = 0;
        for (uint64_t base = 0; base < 400; base++) {
            uint64_t k[4] = {base * 0x1234567ULL + 1, base ^ 0xabcdefULL, base % 10, base * 31};
            uint64_t ref = sample_rng_bits(k[0], k[1], k[2], k[3]);
            for (int bit = 0; bit < 64; bit++) {
                uint64_t f[4] = {k[0], k[1], k[2], k[3]};
                f[arg] ^= 1ULL << bit;
                int d = popcount64(ref ^ sample_rng_bits(f[0], f[1], f[2], f[3]));
                same += d == 0;
                sum += d;
                n++;
            }
        }
        /* 25600 flips: the mean of Binomial(64, 1/2) has standard error 4/160 = 0.025. */
        CHECK_MSG(ts, fabs(sum / n - 32.0) < 0.15, "argument %d: mean flipped bits %.3f", arg, sum / n);
        CHECK_MSG(ts, same == 0, "argument %d: %ld unchanged outputs", arg, same);
    }
    /* Streams of neighbouring samples / questions / seeds are uncorrelated step by step. */
    const int n = 200000;
    for (int which = 0; which < 3; which++) {
        double sx = 0, sy = 0, sxx = 0, syy = 0, sxy = 0;
        for (int t = 0; t < n; t++) {
            double x = sample_rng_uniform(1, 2, 3, (uint64_t)t);
            double y = which == 0   ? sample_rng_uniform(1, 2, 4, (uint64_t)t)
                       : which == 1 ? sample_rng_uniform(1, 3, 3, (uint64_t)t)
                                    : sample_rng_uniform(2, 2, 3, (uint64_t)t);
            sx += x, sy += y, sxx += x * x, syy += y * y, sxy += x * y;
        }
        double r = (sxy - sx * sy / n) / sqrt((sxx - sx * sx / n) * (syy - sy * sy / n));
        CHECK_MSG(ts, fabs(r) < 5.0 / sqrt(n), "stream pair %d correlation %g", which, r);
    }
}

static void test_rng_uniform(struct test_state *ts)
{
    enum { BINS = 100 };
    const long n = 1000000;
    long count[BINS] = {0};
    double prob[BINS];
    int in_range = 1;
    for (long t = 0; t < n; t++) {
        double u = sample_rng_uniform(12345, 17, 2, (uint64_t)t);
        in_range &= u >= 0.0 && u < 1.0;
        count[(int)(u * BINS)]++;
    }
    for (int i = 0; i < BINS; i++) prob[i] = 1.0 / BINS;
    int df;
    double x2 = chi2_stat(count, prob, BINS, n, &df);
    CHECK(ts, in_range);
    CHECK_MSG(ts, df == BINS - 1 && x2 < chi2_crit(df), "chi2 %.1f df %d crit %.1f", x2, df, chi2_crit(df));
    /* And the low bits: the parity of the raw output. */
    long odd = 0;
    for (long t = 0; t < n; t++) odd += sample_rng_bits(12345, 17, 2, (uint64_t)t) & 1;
    CHECK_MSG(ts, labs(odd - n / 2) < 5 * 500, "odd outputs %ld of %ld", odd, n);
}

/* Neighbouring steps: no linear correlation, and pairs (u_t, u_t+1) fill a 16x16 grid evenly. */
static void test_rng_serial(struct test_state *ts)
{
    enum { G = 16 };
    const long n = 1000000;
    static long count[G * G];
    double prob[G * G];
    double sx = 0, sxx = 0, sxy = 0, prev = sample_rng_uniform(7, 1, 0, 0);
    for (long t = 1; t <= n; t++) {
        double u = sample_rng_uniform(7, 1, 0, (uint64_t)t);
        sx += prev, sxx += prev * prev, sxy += prev * u;
        count[(int)(prev * G) * G + (int)(u * G)]++;
        prev = u;
    }
    double mean = sx / n, var = sxx / n - mean * mean;
    double r = (sxy / n - mean * mean) / var; /* lag-1 autocorrelation */
    CHECK_MSG(ts, fabs(r) < 5.0 / sqrt((double)n), "lag-1 correlation %g", r);
    for (int i = 0; i < G * G; i++) prob[i] = 1.0 / (G * G);
    int df;
    double x2 = chi2_stat(count, prob, G * G, n, &df);
    CHECK_MSG(ts, x2 < chi2_crit(df), "serial chi2 %.1f df %d crit %.1f", x2, df, chi2_crit(df));
}

/* ---- the exact distribution, computed independently of the sampler ---- */

/* Probability of each token after bias, temperature, top-k (keep >= k-th largest) and top-p
 * (smallest most-probable prefix reaching top_p, ties by lower id), renormalised. O(V^2). */
static void exact_dist(const float *logits, int V, const struct sample_params *p, double *prob)
{
    double *b = malloc(sizeof(double) * (size_t)V);
    int *order = malloc(sizeof(int) * (size_t)V);
    for (int i = 0; i < V; i++) b[i] = logits[i];
    for (int i = 0; i < p->n_bias; i++) b[p->bias_ids[i]] += p->bias[i];
    for (int i = 0; i < V; i++) order[i] = i;
    for (int i = 0; i < V; i++) /* selection sort: logit desc, id asc */
        for (int j = i + 1; j < V; j++)
            if (b[order[j]] > b[order[i]] || (b[order[j]] == b[order[i]] && order[j] < order[i])) {
                int t = order[i];
                order[i] = order[j];
                order[j] = t;
            }
    double m = b[order[0]], total = 0.0;
    for (int i = 0; i < V; i++) {
        int keep = b[i] > -INFINITY;
        if (p->top_k > 0 && p->top_k < V) keep &= b[i] >= b[order[p->top_k - 1]];
        prob[i] = keep ? exp((b[i] - m) / p->temperature) : 0.0;
        total += prob[i];
    }
    if (p->top_p < 1.0f) {
        double cum = 0.0;
        int i = 0;
        for (; i < V && cum < p->top_p * total; i++) cum += prob[order[i]];
        for (; i < V; i++) prob[order[i]] = 0.0;
    }
    total = 0.0;
    for (int i = 0; i < V; i++) total += prob[i];
    for (int i = 0; i < V; i++) prob[i] /= total;
    free(b);
    free(order);
}

/* log softmax(biased logits / T)[tok] in double over the whole vocabulary. */
static double exact_logp(const float *logits, int V, const struct sample_params *p, int tok)
{
    double T = p->temperature == 0.0f ? 1.0 : p->temperature, m = -INFINITY, s = 0.0, bt = 0.0;
    for (int i = 0; i < V; i++) {
        double b = logits[i];
        for (int j = 0; j < p->n_bias; j++)
            if (p->bias_ids[j] == i) b += p->bias[j];
        if (b > m) m = b;
        if (i == tok) bt = b;
    }
    for (int i = 0; i < V; i++) {
        double b = logits[i];
        for (int j = 0; j < p->n_bias; j++)
            if (p->bias_ids[j] == i) b += p->bias[j];
        s += exp((b - m) / T);
    }
    return (bt - m) / T - log(s);
}

/* Draw n tokens with consecutive steps; counts per token; checks logp on every draw. */
static int draw_many(const float *logits, int V, const struct sample_params *p, long n, uint64_t seed,
                     long *count, double *max_logp_err)
{
    void *scratch = malloc(sample_scratch_size(V));
    memset(count, 0, sizeof(long) * (size_t)V);
    *max_logp_err = 0.0;
    int ok = 1;
    for (long t = 0; t < n; t++) {
        float lp;
        int32_t tok = sample_token(logits, V, p, sample_rng_uniform(seed, 0, 0, (uint64_t)t), scratch, &lp);
        if (tok < 0 || tok >= V) {
            ok = 0;
            break;
        }
        count[tok]++;
        if (t < 2000) { /* the exact log-prob is O(V * n_bias); a sample of draws is enough */
            double e = fabs(lp - exact_logp(logits, V, p, tok));
            if (e > *max_logp_err) *max_logp_err = e;
        }
    }
    free(scratch);
    return ok;
}

static const float small_logits[20] = {2.0f, 1.5f, 1.4f, 1.4f, 0.9f,  3.1f, -0.5f, 0.3f, 2.2f, 1.0f,
                                       -1.2f, 0.0f, 2.9f, 1.7f, 0.8f, -2.0f, 1.1f, 0.6f, 2.5f, -0.3f};

static void check_distribution(struct test_state *ts, const struct sample_params *p, const char *name,
                               int expect_kept)
{
    enum { V = 20 };
    const long n = 200000;
    long count[V];
    double prob[V], lp_err;
    exact_dist(small_logits, V, p, prob);
    int kept = 0;
    for (int i = 0; i < V; i++) kept += prob[i] > 0.0;
    CHECK_MSG(ts, kept == expect_kept, "%s: exact distribution keeps %d tokens, expected %d", name, kept,
              expect_kept);
    CHECK_MSG(ts, draw_many(small_logits, V, p, n, 2024, count, &lp_err), "%s: sample_token failed", name);
    int df;
    double x2 = chi2_stat(count, prob, V, n, &df);
    CHECK_MSG(ts, x2 < chi2_crit(df), "%s: chi2 %.1f df %d crit %.1f", name, x2, df, chi2_crit(df));
    CHECK_MSG(ts, lp_err < 2e-6, "%s: logp error %g", name, lp_err);
}

static void test_distributions(struct test_state *ts)
{
    struct sample_params p = {.temperature = 0.7f, .top_p = 1.0f, .top_k = 5};
    check_distribution(ts, &p, "T0.7 top_k 5", 5);
    p = (struct sample_params){.temperature = 1.0f, .top_p = 0.9f, .top_k = 0};
    check_distribution(ts, &p, "top_p 0.9", 12);
    p = (struct sample_params){.temperature = 1.0f, .top_p = 0.8f, .top_k = 8};
    check_distribution(ts, &p, "top_k 8 top_p 0.8", 6);
    /* Untruncated, with a bias lifting a weak token and one pushing the best down. */
    int32_t ids[2] = {15, 5};
    float bias[2] = {3.5f, -1.0f};
    p = (struct sample_params){.temperature = 1.3f, .top_p = 1.0f, .top_k = 0, .bias_ids = ids, .bias = bias,
                               .n_bias = 2};
    check_distribution(ts, &p, "T1.3 bias", 20);
    /* MM-UPT's rollout setting. */
    p = (struct sample_params){.temperature = 0.7f, .top_p = 0.99f, .top_k = 0};
    check_distribution(ts, &p, "T0.7 top_p 0.99", 15);
}

/* HF's top-k keeps every token tied with the k-th largest logit. */
static void test_topk_ties(struct test_state *ts)
{
    const float logits[6] = {5.0f, 4.0f, 3.0f, 3.0f, 3.0f, 1.0f};
    struct sample_params p = {.temperature = 1.0f, .top_p = 1.0f, .top_k = 3};
    long count[6];
    double prob[6], lp_err;
    exact_dist(logits, 6, &p, prob);
    CHECK(ts, prob[4] > 0.0 && prob[5] == 0.0);
    CHECK(ts, draw_many(logits, 6, &p, 100000, 5, count, &lp_err));
    int df;
    double x2 = chi2_stat(count, prob, 6, 100000, &df);
    CHECK_MSG(ts, df == 4 && x2 < chi2_crit(df), "chi2 %.1f df %d", x2, df);
    CHECK(ts, count[2] > 0 && count[3] > 0 && count[4] > 0 && count[5] == 0);
}

/* ---- greedy, bias, log-probs ---- */

static void test_greedy(struct test_state *ts)
{
    const float logits[7] = {0.5f, 2.0f, -1.0f, 3.0f, 3.0f, -INFINITY, 3.0f};
    void *scratch = malloc(sample_scratch_size(7));
    struct sample_params p = {.temperature = 0.0f, .top_p = 0.5f, .top_k = 2};
    float lp = 1.0f;
    for (int t = 0; t < 50; t++) /* u does not matter */
        CHECK(ts, sample_token(logits, 7, &p, sample_rng_uniform(1, 1, 1, (uint64_t)t), scratch, NULL) == 3);
    CHECK(ts, sample_token(logits, 7, &p, 0.999, scratch, &lp) == 3);
    CHECK_MSG(ts, fabs(lp - exact_logp(logits, 7, &p, 3)) < 1e-6, "greedy logp %g", lp);
    CHECK(ts, fabs(lp - log(exp(3.0) / (exp(0.5) + exp(2.0) + exp(-1.0) + 3 * exp(3.0)))) < 1e-6);
    /* A bias changes the argmax. */
    int32_t id = 1;
    float b = 1.5f;
    p.bias_ids = &id, p.bias = &b, p.n_bias = 1;
    CHECK(ts, sample_token(logits, 7, &p, 0.3, scratch, &lp) == 1);
    CHECK(ts, fabs(lp - exact_logp(logits, 7, &p, 1)) < 1e-6);
    free(scratch);
}

/* MM-UPT forbids <|image_pad|> in answers: bias -100 must keep it out even as the top logit. */
static void test_bias_bans_image_pad(struct test_state *ts)
{
    float *logits = malloc(sizeof(float) * QWEN_V);
    void *scratch = malloc(sample_scratch_size(QWEN_V));
    for (int i = 0; i < QWEN_V; i++) /* a peaked, LLM-like spread of logits */
        logits[i] = (float)(8.0 * sample_rng_uniform(3, 0, 0, (uint64_t)i) - 12.0 * (i % 97 != 0));
    logits[IMAGE_PAD] = 30.0f;
    int32_t id = IMAGE_PAD;
    float bias = -100.0f;
    struct sample_params cfgs[4] = {
        {.temperature = 0.7f, .top_p = 1.0f, .top_k = 0, .bias_ids = &id, .bias = &bias, .n_bias = 1},
        {.temperature = 0.7f, .top_p = 0.99f, .top_k = 0, .bias_ids = &id, .bias = &bias, .n_bias = 1},
        {.temperature = 1.0f, .top_p = 1.0f, .top_k = 50, .bias_ids = &id, .bias = &bias, .n_bias = 1},
        {.temperature = 0.0f, .top_p = 1.0f, .top_k = 0, .bias_ids = &id, .bias = &bias, .n_bias = 1},
    };
    for (int c = 0; c < 4; c++) {
        long pads = 0, bad = 0;
        for (int t = 0; t < 150; t++) {
            /* the extremes of u too: the last candidate in id order is the pad's neighbourhood */
            double u = t == 0 ? 0.0 : t == 1 ? 1.0 - 0x1.0p-53 : sample_rng_uniform(11, 0, (uint64_t)c, (uint64_t)t);
            int32_t tok = sample_token(logits, QWEN_V, &cfgs[c], u, scratch, NULL);
            pads += tok == IMAGE_PAD;
            bad += tok < 0;
        }
        CHECK_MSG(ts, pads == 0 && bad == 0, "config %d: %ld pads, %ld failures", c, pads, bad);
    }
    /* Without the bias the pad dominates: the test above is not vacuous. */
    struct sample_params nob = {.temperature = 0.7f, .top_p = 1.0f, .top_k = 0};
    CHECK(ts, sample_token(logits, QWEN_V, &nob, 0.5, scratch, NULL) == IMAGE_PAD);
    /* On a small vocabulary, many draws: never the pad, even at the top of u's range. */
    float small[8] = {1.0f, 0.5f, 0.2f, 0.1f, 0.0f, -0.2f, -0.4f, 30.0f};
    int32_t sid = 7;
    struct sample_params sp = {.temperature = 0.7f, .top_p = 1.0f, .top_k = 0, .bias_ids = &sid, .bias = &bias,
                               .n_bias = 1};
    long count[8];
    double lp_err;
    CHECK(ts, draw_many(small, 8, &sp, 100000, 77, count, &lp_err) && count[7] == 0);
    CHECK(ts, sample_token(small, 8, &sp, 1.0 - 0x1.0p-53, scratch, NULL) != 7);
    free(logits);
    free(scratch);
}

/* logp on a large vocabulary, through every path (plain, top-k, top-p prefilter, both). */
static void test_logp_large_vocab(struct test_state *ts)
{
    enum { V = 5000 };
    float *logits = malloc(sizeof(float) * V);
    void *scratch = malloc(sample_scratch_size(V));
    for (int i = 0; i < V; i++) logits[i] = (float)(10.0 * sample_rng_uniform(4, 0, 0, (uint64_t)i) - 5.0);
    struct sample_params cfgs[4] = {{.temperature = 0.7f, .top_p = 1.0f, .top_k = 0},
                                    {.temperature = 1.0f, .top_p = 1.0f, .top_k = 40},
                                    {.temperature = 0.5f, .top_p = 0.6f, .top_k = 0},
                                    {.temperature = 1.2f, .top_p = 0.95f, .top_k = 300}};
    double *prob = malloc(sizeof(double) * V);
    for (int c = 0; c < 4; c++) {
        exact_dist(logits, V, &cfgs[c], prob);
        double err = 0.0;
        long outside = 0;
        for (int t = 0; t < 200; t++) {
            float lp;
            int32_t tok = sample_token(logits, V, &cfgs[c], sample_rng_uniform(5, 1, (uint64_t)c, (uint64_t)t), scratch,
                                       &lp);
            if (tok < 0) {
                outside++;
                continue;
            }
            outside += prob[tok] == 0.0;
            double e = fabs(lp - exact_logp(logits, V, &cfgs[c], tok));
            if (e > err) err = e;
        }
        CHECK_MSG(ts, outside == 0, "config %d: %ld draws outside the truncated set", c, outside);
        CHECK_MSG(ts, err < 1e-5, "config %d: logp error %g", c, err);
    }
    free(prob);
    free(logits);
    free(scratch);
}

/* ---- edge cases ---- */

static void test_edges(struct test_state *ts)
{
    void *scratch = malloc(sample_scratch_size(64));
    struct sample_params p = {.temperature = 0.7f, .top_p = 0.9f, .top_k = 3};
    float lp = 7.0f;

    /* V = 1: always token 0, probability 1. */
    const float one = -3.0f;
    CHECK(ts, sample_token(&one, 1, &p, 0.7, scratch, &lp) == 0 && lp == 0.0f);

    /* All logits equal: uniform over V (top-k keeps every tie); top-p takes the lowest ids. */
    float flat[64];
    for (int i = 0; i < 64; i++) flat[i] = 1.25f;
    struct sample_params pk = {.temperature = 1.0f, .top_p = 1.0f, .top_k = 5};
    long count[64];
    double prob[64], lp_err;
    for (int i = 0; i < 64; i++) prob[i] = 1.0 / 64;
    CHECK(ts, draw_many(flat, 64, &pk, 64000, 8, count, &lp_err) && lp_err < 1e-6);
    int df;
    double x2 = chi2_stat(count, prob, 64, 64000, &df);
    CHECK_MSG(ts, x2 < chi2_crit(df), "flat chi2 %.1f df %d", x2, df);
    struct sample_params pp = {.temperature = 1.0f, .top_p = 0.25f, .top_k = 0};
    CHECK(ts, draw_many(flat, 64, &pp, 20000, 9, count, &lp_err));
    long low = 0;
    for (int i = 0; i < 16; i++) low += count[i] > 0;
    long high = 0;
    for (int i = 16; i < 64; i++) high += count[i];
    CHECK_MSG(ts, low == 16 && high == 0, "top_p 0.25 of 64 equal: %ld low ids drawn, %ld high draws", low, high);

    /* -inf logits are never drawn; all -inf is an error. */
    float some[5] = {-INFINITY, 0.0f, -INFINITY, 0.5f, -INFINITY};
    struct sample_params pl = {.temperature = 2.0f, .top_p = 1.0f, .top_k = 0};
    CHECK(ts, draw_many(some, 5, &pl, 20000, 10, count, &lp_err));
    CHECK(ts, count[0] == 0 && count[2] == 0 && count[4] == 0 && count[1] > 0 && count[3] > 0);
    struct sample_params pk4 = {.temperature = 1.0f, .top_p = 1.0f, .top_k = 4}; /* k > finite count */
    CHECK(ts, draw_many(some, 5, &pk4, 2000, 10, count, &lp_err) && count[0] + count[2] + count[4] == 0);
    float none[3] = {-INFINITY, -INFINITY, -INFINITY};
    lp = 7.0f;
    CHECK(ts, sample_token(none, 3, &pl, 0.5, scratch, &lp) == -1 && lp == 7.0f);
    p.temperature = 0.0f;
    CHECK(ts, sample_token(none, 3, &p, 0.5, scratch, &lp) == -1);

    /* top_p tiny keeps exactly the best token, the lowest id among equals. */
    float tie[6] = {0.1f, 2.0f, 1.9f, 2.0f, -1.0f, 0.0f};
    struct sample_params pt = {.temperature = 1.0f, .top_p = 1e-6f, .top_k = 0};
    int all_best = 1;
    for (int t = 0; t < 1000; t++)
        all_best &= sample_token(tie, 6, &pt, sample_rng_uniform(1, 2, 3, (uint64_t)t), scratch, NULL) == 1;
    CHECK(ts, all_best);
    CHECK(ts, sample_token(tie, 6, &pt, 1.0 - 0x1.0p-53, scratch, NULL) == 1);

    /* Invalid input: -1, logp untouched. */
    float bad[4] = {0.0f, NAN, 1.0f, 2.0f};
    struct sample_params ok = {.temperature = 1.0f, .top_p = 1.0f, .top_k = 0};
    lp = 7.0f;
    CHECK(ts, sample_token(bad, 4, &ok, 0.5, scratch, &lp) == -1 && lp == 7.0f);
    bad[1] = INFINITY;
    CHECK(ts, sample_token(bad, 4, &ok, 0.5, scratch, &lp) == -1);
    bad[1] = 0.0f;
    CHECK(ts, sample_token(bad, 4, &ok, 0.5, scratch, &lp) == 3); /* weights 1, 1, e, e^2: r = 0.5 * total lands in the last */
    CHECK(ts, sample_token(bad, 0, &ok, 0.5, scratch, &lp) == -1);
    CHECK(ts, sample_token(bad, 4, &ok, 1.0, scratch, &lp) == -1);
    CHECK(ts, sample_token(bad, 4, &ok, -0.1, scratch, &lp) == -1);
    struct sample_params q = ok;
    q.temperature = -1.0f;
    CHECK(ts, sample_token(bad, 4, &q, 0.5, scratch, &lp) == -1);
    q = ok, q.temperature = INFINITY;
    CHECK(ts, sample_token(bad, 4, &q, 0.5, scratch, &lp) == -1);
    q = ok, q.top_p = 0.0f;
    CHECK(ts, sample_token(bad, 4, &q, 0.5, scratch, &lp) == -1);
    q = ok, q.top_p = 1.5f;
    CHECK(ts, sample_token(bad, 4, &q, 0.5, scratch, &lp) == -1);
    int32_t far = 4;
    float fb = 1.0f;
    q = ok, q.bias_ids = &far, q.bias = &fb, q.n_bias = 1;
    CHECK(ts, sample_token(bad, 4, &q, 0.5, scratch, &lp) == -1);
    far = 2, fb = NAN;
    CHECK(ts, sample_token(bad, 4, &q, 0.5, scratch, &lp) == -1);
    /* A -inf bias bans a token outright (and +inf logit minus inf bias is NaN: an error). */
    fb = -INFINITY;
    CHECK(ts, sample_token(bad, 4, &q, 0.5, scratch, &lp) >= 0);
    CHECK(ts, draw_many(bad, 4, &q, 5000, 12, count, &lp_err) && count[2] == 0);
    bad[2] = INFINITY;
    CHECK(ts, sample_token(bad, 4, &q, 0.5, scratch, &lp) == -1);
    CHECK(ts, sample_scratch_size(0) == 0 && sample_scratch_size(10) >= 10 * (4 + 4 + 8));
    free(scratch);
}

int main(void)
{
    struct test_state ts = {0};
    RUN(&ts, test_rng_pinned_values);
    RUN(&ts, test_rng_keys_independent);
    RUN(&ts, test_rng_uniform);
    RUN(&ts, test_rng_serial);
    RUN(&ts, test_distributions);
    RUN(&ts, test_topk_ties);
    RUN(&ts, test_greedy);
    RUN(&ts, test_bias_bans_image_pad);
    RUN(&ts, test_logp_large_vocab);
    RUN(&ts, test_edges);
    return test_summary(&ts);
}
