/* sample_tokens_cpu, the batch reference the CUDA sampler is tested against: row r must be exactly
 * sample_token on row r with u[r] (token and logp bits), -1 rows must get logp 0, a NULL logp must
 * not change the tokens, and rows = 0 must do nothing. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../test.h"
#include "mmupt/err.h"
#include "mmupt/kernels.h"
#include "mmupt/sampler.h"

enum { ROWS = 9, V = 300 };

static float frand(unsigned *s)
{
    *s = *s * 1664525u + 1013904223u;
    return (float)((*s >> 8) * (1.0 / 16777216.0) * 2.0 - 1.0);
}

/* Random rows with ties (values on a grid), and invalid rows: 2 has a NaN, 5 is all -inf, 7 gets u = 1. */
static void make_batch(float *z, double *u)
{
    unsigned s = 42;
    for (int i = 0; i < ROWS * V; i++) z[i] = roundf(frand(&s) * 12.0f) * 0.5f;
    z[2 * V + 17] = NAN;
    for (int i = 0; i < V; i++) z[5 * V + i] = -INFINITY;
    for (int r = 0; r < ROWS; r++) u[r] = sample_rng_uniform(3, 1, (uint64_t)r, 0);
    u[7] = 1.0;
}

static void check_rows(struct test_state *ts, const struct sample_params *p, const char *what)
{
    static float z[ROWS * V];
    double u[ROWS];
    make_batch(z, u);
    int32_t tok[ROWS], tok2[ROWS];
    float lp[ROWS];
    for (int r = 0; r < ROWS; r++) lp[r] = 123.0f; /* must be overwritten, -1 rows included */
    sample_tokens_cpu(tok, lp, z, ROWS, V, p, u);
    sample_tokens_cpu(tok2, NULL, z, ROWS, V, p, u);
    CHECK_MSG(ts, memcmp(tok, tok2, sizeof tok) == 0, "%s: logp NULL changed the tokens", what);

    void *scratch = mmupt_xmalloc(sample_scratch_size(V));
    int valid = 0;
    for (int r = 0; r < ROWS; r++) {
        float want_lp = 0.0f;
        int32_t want = sample_token(z + r * V, V, p, u[r], scratch, &want_lp);
        CHECK_MSG(ts, tok[r] == want, "%s row %d: batch %d, sample_token %d", what, r, tok[r], want);
        if (want < 0) {
            CHECK_MSG(ts, lp[r] == 0.0f, "%s row %d (-1): logp %g, want 0", what, r, lp[r]);
        } else {
            valid++;
            CHECK_MSG(ts, memcmp(&lp[r], &want_lp, sizeof want_lp) == 0, "%s row %d: logp %.9g vs %.9g", what, r,
                      lp[r], want_lp);
        }
    }
    free(scratch);
    CHECK_MSG(ts, tok[2] == -1 && tok[5] == -1 && tok[7] == -1, "%s: invalid rows %d %d %d", what, tok[2], tok[5], tok[7]);
    CHECK_MSG(ts, valid == ROWS - 3, "%s: %d valid rows", what, valid);
}

static void test_matches_sample_token(struct test_state *ts)
{
    int32_t ids[3] = {4, 4, 299};
    float bias[3] = {1.0f, 0.5f, -INFINITY};
    struct sample_params ps[] = {
        {0.0f, 1.0f, 0, NULL, NULL, 0},   /* greedy */
        {1.0f, 1.0f, 0, NULL, NULL, 0},   /* plain */
        {0.7f, 1.0f, 3, NULL, NULL, 0},   /* top-k with ties */
        {1.3f, 0.9f, 0, NULL, NULL, 0},   /* top-p */
        {1.0f, 0.5f, 20, ids, bias, 3},   /* everything, a doubly biased id and a ban */
    };
    const char *names[] = {"greedy", "plain", "top_k", "top_p", "biased"};
    for (int i = 0; i < (int)(sizeof ps / sizeof ps[0]); i++) check_rows(ts, &ps[i], names[i]);
}

/* Bad parameters: every row -1 with logp 0; rows = 0 touches nothing. */
static void test_invalid_params(struct test_state *ts)
{
    static float z[ROWS * V];
    double u[ROWS];
    make_batch(z, u);
    int32_t tok[ROWS];
    float lp[ROWS];
    struct sample_params p = {-1.0f, 1.0f, 0, NULL, NULL, 0};
    for (int r = 0; r < ROWS; r++) lp[r] = 5.0f;
    sample_tokens_cpu(tok, lp, z, ROWS, V, &p, u);
    for (int r = 0; r < ROWS; r++) CHECK_MSG(ts, tok[r] == -1 && lp[r] == 0.0f, "row %d: %d %g", r, tok[r], lp[r]);

    p.temperature = 1.0f;
    tok[0] = 77;
    sample_tokens_cpu(tok, lp, z, 0, V, &p, u);
    CHECK(ts, tok[0] == 77);
    sample_tokens_cpu(tok, lp, z, 2, 0, &p, u); /* V = 0: nothing to sample */
    CHECK(ts, tok[0] == -1 && tok[1] == -1 && lp[0] == 0.0f);
}

int main(void)
{
    struct test_state ts = {0};
    RUN(&ts, test_matches_sample_token);
    RUN(&ts, test_invalid_params);
    return test_summary(&ts);
}
