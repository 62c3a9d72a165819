/* Evaluation scoring without a model: the metric arithmetic on hand-made responses (pass@1, maj@G
 * with the paper and equivalence votes and their tie-breaks, pass@G, pass@k and maj@k against
 * hand-computed values, multiple choice by letter, no greedy answer, parse failures, per-source rows
 * and the table), the settings' checks, the k list parser and the config section `eval`. */
#include <stdlib.h>
#include <string.h>

#include "../test.h"
#include "mmupt/config.h"
#include "mmupt/eval.h"

static struct eval_response resp(const char *text)
{
    return (struct eval_response){.text = text, .len = text ? strlen(text) : 0, .tokens = text ? (int)strlen(text) : 3};
}

/* Score one item with G sampled texts and the greedy text. */
static void score(struct eval_result *r, const char *source, const char *truth, const char *greedy,
                  const char *const *samples)
{
    struct eval_response g = resp(greedy), s[16];
    for (int i = 0; i < r->G; i++) s[i] = resp(samples[i]);
    eval_score_item(r, source, "What is it?", truth, &g, s);
}

static void test_one_item(struct test_state *ts)
{
    struct eval_result r;
    eval_result_init(&r, 4, REWARD_VOTE_PAPER, 0, NULL);
    const char *s[] = {"so \\boxed{7}", "\\boxed{6}", "red 3 \\boxed{6}", "I do not know"};
    score(&r, "total", "7", "\\boxed{7}", s);
    struct eval_metrics m;
    eval_metrics_of(&r.all, &m);
    CHECK(ts, m.items == 1 && m.samples == 4);
    CHECK(ts, m.greedy_pass1 == 1.0);
    CHECK(ts, m.pass1 == 0.25);
    CHECK(ts, m.maj == 0.0);     /* "6" has two votes */
    CHECK(ts, m.pass_g == 1.0);  /* one sample is right */
    CHECK(ts, m.headroom == -1.0);
    CHECK(ts, m.greedy_parse_failure == 0.0);
    CHECK(ts, m.sample_parse_failure == 0.25);
    CHECK(ts, m.majority_share == 0.5);
    CHECK(ts, m.greedy_length == 9.0);
    CHECK_MSG(ts, fabs(m.sample_length - (12 + 9 + 15 + 13) / 4.0) < 1e-12, "%g", m.sample_length);
    eval_result_free(&r);
}

/* The paper vote counts exact strings and gives ties to the candidate seen first. */
static void test_paper_ties(struct test_state *ts)
{
    struct eval_result r;
    eval_result_init(&r, 4, REWARD_VOTE_PAPER, 0, NULL);
    const char *a[] = {"\\boxed{3}", "\\boxed{5}", "\\boxed{5}", "\\boxed{3}"};
    const char *b[] = {"\\boxed{5}", "\\boxed{3}", "\\boxed{3}", "\\boxed{5}"};
    score(&r, "red", "3", "\\boxed{3}", a); /* tie 2-2, "3" first: right */
    score(&r, "red", "3", "\\boxed{3}", b); /* tie 2-2, "5" first: wrong */
    CHECK(ts, r.all.maj_correct == 1);
    CHECK(ts, r.all.any_correct == 2);
    CHECK(ts, r.all.sample_correct == 4);
    struct eval_metrics m;
    eval_metrics_of(&r.all, &m);
    CHECK(ts, m.maj == 0.5 && m.pass1 == 0.5 && m.greedy_pass1 == 1.0 && m.headroom == -0.5);
    eval_result_free(&r);
}

/* Paper and equivalence votes differ where equal answers are written differently, and where most
 * samples have no answer (paper: "None" wins and is graded wrong; equivalence: they abstain). */
static void test_vote_modes(struct test_state *ts)
{
    const char *split[] = {"\\boxed{2}", "\\boxed{0.5}", "\\boxed{\\frac{1}{2}}"};
    const char *none[] = {"no answer", "\\boxed{4}", "still none"};
    const char *all_none[] = {"a", "b", "c"};
    int want_paper[] = {0, 0, 0}, want_equiv[] = {1, 1, 0};
    const char *const *items[] = {split, none, all_none};
    const char *truth[] = {"\\frac12", "4", "None"};
    for (int mode = 0; mode < 2; mode++) {
        for (int k = 0; k < 3; k++) {
            struct eval_result r;
            eval_result_init(&r, 3, mode ? REWARD_VOTE_EQUIVALENCE : REWARD_VOTE_PAPER, 0, NULL);
            score(&r, "x", truth[k], "\\boxed{4}", items[k]);
            int want = mode ? want_equiv[k] : want_paper[k];
            CHECK_MSG(ts, r.all.maj_correct == want, "mode %d item %d: maj %lld, expected %d", mode, k,
                      (long long)r.all.maj_correct, want);
            eval_result_free(&r);
        }
    }
    /* pass@1 does not depend on the vote: the two forms of 1/2 are both right. */
    struct eval_result r;
    eval_result_init(&r, 3, REWARD_VOTE_PAPER, 0, NULL);
    score(&r, "x", "\\frac12", NULL, split);
    CHECK(ts, r.all.sample_correct == 2 && r.all.any_correct == 1 && r.all.greedy_no_answer == 1);
    eval_result_free(&r);
}

static void test_sources(struct test_state *ts)
{
    struct eval_result r;
    eval_result_init(&r, 2, REWARD_VOTE_PAPER, 0, NULL);
    const char *right[] = {"\\boxed{yes}", "\\boxed{yes}"}, *wrong[] = {"\\boxed{no}", "nothing"};
    score(&r, "red", "yes", "\\boxed{yes}", right);
    score(&r, "blue", "yes", "nothing", wrong);
    score(&r, "red", "yes", "\\boxed{no}", wrong);
    score(&r, NULL, "yes", "\\boxed{yes}", right);
    CHECK(ts, r.n_sources == 3);
    /* Sorted by name. */
    CHECK(ts, r.n_sources == 3 && strcmp(r.sources[0].source, "(none)") == 0 && strcmp(r.sources[1].source, "blue") == 0 &&
                  strcmp(r.sources[2].source, "red") == 0);
    struct eval_metrics all, red, blue;
    eval_metrics_of(&r.all, &all);
    eval_metrics_of(&r.sources[2], &red);
    eval_metrics_of(&r.sources[1], &blue);
    CHECK(ts, all.items == 4 && all.greedy_pass1 == 0.5 && all.pass1 == 0.5 && all.maj == 0.5);
    CHECK(ts, all.greedy_parse_failure == 0.25 && all.sample_parse_failure == 0.25);
    CHECK(ts, red.items == 2 && red.greedy_pass1 == 0.5 && red.maj == 0.5 && red.pass_g == 0.5 && red.headroom == 0.0);
    CHECK(ts, blue.items == 1 && blue.greedy_pass1 == 0.0 && blue.greedy_parse_failure == 1.0 && blue.maj == 0.0);
    /* The table has the overall row and one row per source. */
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    eval_write_table(f, &r);
    fclose(f);
    /* greedy, pass@1 at T, maj@1 (k = 1), maj@2, pass@2, headroom, parse failures; pass@1 for
     * k = 1 would repeat the pass@1-at-T column, so the table leaves it out. */
    CHECK_CONTAINS(ts, buf, "| **all** | 4 | 0.500 | 0.500 | 0.500 | 0.500 | 0.500 | +0.000 | 0.250 / 0.250 |");
    CHECK_CONTAINS(ts, buf, "| maj@1 | maj@2 (paper vote) |");
    CHECK(ts, strstr(buf, "| pass@1 |") == NULL);
    CHECK_CONTAINS(ts, buf, "| blue | 1 | 0.000 |");
    CHECK_CONTAINS(ts, buf, "maj@2 (paper vote)");
    free(buf);
    eval_result_free(&r);
}

/* An empty row has no metrics (NaN, a "-" in the table, null in JSON); many sources share "(other)". */
static void test_edges(struct test_state *ts)
{
    struct eval_counts empty = {0};
    struct eval_metrics m;
    eval_metrics_of(&empty, &m);
    CHECK(ts, isnan(m.greedy_pass1) && isnan(m.maj) && isnan(m.headroom) && m.items == 0);
    struct eval_result r;
    eval_result_init(&r, 1, REWARD_VOTE_EQUIVALENCE, 0, NULL);
    const char *one[] = {"\\boxed{1}"};
    for (int i = 0; i < EVAL_MAX_SOURCES + 40; i++) {
        char name[32];
        snprintf(name, sizeof name, "s%04d", i);
        score(&r, name, "1", "\\boxed{1}", one);
    }
    CHECK_MSG(ts, r.n_sources == EVAL_MAX_SOURCES + 1, "%d sources", r.n_sources);
    int other = -1;
    for (int i = 0; i < r.n_sources; i++)
        if (strcmp(r.sources[i].source, EVAL_OTHER_SOURCE) == 0) other = i;
    CHECK(ts, other >= 0 && r.sources[other].items == 40);
    CHECK(ts, r.all.items == EVAL_MAX_SOURCES + 40 && r.all.maj_correct == r.all.items);
    eval_result_free(&r);
    /* A response that could not be decoded (NULL text) is a parse failure. */
    eval_result_init(&r, 1, REWARD_VOTE_PAPER, 0, NULL);
    struct eval_response g = {.text = NULL, .tokens = 5}, s = g;
    eval_score_item(&r, "x", NULL, "1", &g, &s);
    CHECK(ts, r.all.greedy_no_answer == 1 && r.all.sample_no_answer == 1 && r.all.greedy_tokens == 5);
    eval_result_free(&r);
}

static void test_config_check(struct test_state *ts)
{
    struct eval_config c;
    struct mmupt_err err;
    eval_config_default(&c);
    CHECK(ts, eval_config_check(&c, &err) == 0);
    /* The paper's settings, as the config section `eval` defaults them. */
    CHECK(ts, c.G == 1 && c.temperature == 0.2f && c.top_p == 1.0f && c.max_new == 1024 && c.vote == REWARD_VOTE_PAPER);
    CHECK(ts, c.n_k == 1 && c.k[0] == 1 && c.greedy == 1 && c.shard_count == 1 && c.shard_rank == 0);
    c.G = 0;
    CHECK(ts, eval_config_check(&c, &err) == -1);
    CHECK_CONTAINS(ts, err.msg, "G");
    eval_config_default(&c);
    c.temperature = 0.0f;
    CHECK(ts, eval_config_check(&c, &err) == -1);
    CHECK_CONTAINS(ts, err.msg, "temperature");
    eval_config_default(&c);
    c.top_p = 1.5f;
    CHECK(ts, eval_config_check(&c, &err) == -1);
    eval_config_default(&c);
    c.max_new = 0;
    CHECK(ts, eval_config_check(&c, &err) == -1);
    eval_config_default(&c);
    c.limit = -1;
    CHECK(ts, eval_config_check(&c, &err) == -1);
    /* k: each in [1, n], 1 to EVAL_MAX_K of them. */
    eval_config_default(&c);
    c.G = 4;
    c.n_k = 2;
    c.k[0] = 1;
    c.k[1] = 4;
    CHECK(ts, eval_config_check(&c, &err) == 0);
    c.k[1] = 5;
    CHECK(ts, eval_config_check(&c, &err) == -1);
    CHECK_CONTAINS(ts, err.msg, "k = 5 exceeds n = 4");
    c.k[1] = 0;
    CHECK(ts, eval_config_check(&c, &err) == -1);
    CHECK_CONTAINS(ts, err.msg, "k = 0");
    c.n_k = 0;
    CHECK(ts, eval_config_check(&c, &err) == -1);
    eval_config_default(&c);
    c.shard_count = 2;
    c.shard_rank = 2;
    CHECK(ts, eval_config_check(&c, &err) == -1);
    CHECK_CONTAINS(ts, err.msg, "shard 2 of 2");
}

/* "1,4,8", "[1, 2]"; refused: empty, zero, too big, junk, a missing value. */
static void test_parse_k(struct test_state *ts)
{
    int k[EVAL_MAX_K], n = 0;
    struct mmupt_err err;
    CHECK(ts, eval_parse_k("1,4,8", k, &n, &err) == 0 && n == 3 && k[0] == 1 && k[1] == 4 && k[2] == 8);
    CHECK(ts, eval_parse_k("[1, 2]", k, &n, &err) == 0 && n == 2 && k[1] == 2);
    CHECK(ts, eval_parse_k("16", k, &n, &err) == 0 && n == 1 && k[0] == 16);
    static const char *const bad[] = {"", "[]", "0", "1,0", "257", "a", "1,,2", "1 2", "1,", "-1", "[1,2"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        n = -7;
        CHECK_MSG(ts, eval_parse_k(bad[i], k, &n, &err) == -1 && n == -7, "'%s' accepted", bad[i]);
        CHECK_CONTAINS(ts, err.msg, "k list");
    }
}

/* pass@k = 1 - C(n-c, k) / C(n, k), by hand. */
static void test_pass_at_k(struct test_state *ts)
{
    struct {
        int n, c, k;
        double want;
    } cases[] = {
        {4, 1, 2, 0.5},           /* 1 - C(3,2)/C(4,2) = 1 - 3/6 */
        {5, 2, 3, 0.9},           /* 1 - C(3,3)/C(5,3) = 1 - 1/10 */
        {8, 2, 2, 13.0 / 28.0},   /* 1 - C(6,2)/C(8,2) = 1 - 15/28 */
        {4, 2, 1, 0.5},           /* k = 1: c / n */
        {10, 0, 5, 0.0},          /* nothing right */
        {3, 3, 1, 1.0},           /* everything right */
        {4, 1, 4, 1.0},           /* n - c < k: every k-subset holds the right one */
        {1000, 1, 500, 0.5},      /* C(999,500)/C(1000,500) = 500/1000, binomials far past double range */
        {256, 3, 256, 1.0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        double got = eval_pass_at_k(cases[i].n, cases[i].c, cases[i].k);
        CHECK_MSG(ts, fabs(got - cases[i].want) < 1e-12, "n %d c %d k %d: %.17g, want %.17g", cases[i].n, cases[i].c,
                  cases[i].k, got, cases[i].want);
    }
    CHECK(ts, isnan(eval_pass_at_k(4, 1, 0)) && isnan(eval_pass_at_k(4, 1, 5)) && isnan(eval_pass_at_k(4, 5, 2)) &&
                  isnan(eval_pass_at_k(4, -1, 2)));
    /* A row averages the items' estimates: items with c = 1 and c = 3 of n = 4, k = 2: (0.5 + 1) / 2. */
    int k[2] = {1, 2};
    struct eval_result r;
    eval_result_init(&r, 4, REWARD_VOTE_PAPER, 2, k);
    const char *one[] = {"\\boxed{1}", "\\boxed{2}", "\\boxed{2}", "x"}, *three[] = {"\\boxed{1}", "\\boxed{1}", "x", "\\boxed{1}"};
    score(&r, "a", "1", "\\boxed{1}", one);
    score(&r, "b", "1", "\\boxed{1}", three);
    struct eval_metrics m;
    eval_metrics_of(&r.all, &m);
    CHECK(ts, m.n_k == 2 && m.k[0] == 1 && m.k[1] == 2);
    CHECK_MSG(ts, fabs(m.pass_at_k[1] - 0.75) < 1e-12, "%g", m.pass_at_k[1]);
    CHECK_MSG(ts, fabs(m.pass_at_k[0] - m.pass1) < 1e-12 && m.pass1 == 0.5, "pass@1 %g, pass1 %g", m.pass_at_k[0], m.pass1);
    eval_metrics_of(&r.sources[0], &m);
    CHECK(ts, strcmp(r.sources[0].source, "a") == 0 && fabs(m.pass_at_k[1] - 0.5) < 1e-12);
    eval_result_free(&r);
}

/* maj@k votes over the FIRST k samples, with the configured vote and its tie-break. */
static void test_maj_at_k(struct test_state *ts)
{
    int k[4] = {1, 2, 3, 4};
    struct eval_result r;
    eval_result_init(&r, 4, REWARD_VOTE_PAPER, 4, k);
    const char *s[] = {"\\boxed{5}", "\\boxed{7}", "\\boxed{7}", "\\boxed{3}"};
    score(&r, "x", "7", "\\boxed{7}", s);
    /* k=1: "5" wrong; k=2: 5-7 tie, first seen "5" wrong; k=3: "7" 2-1 right; k=4: "7" right. */
    CHECK(ts, r.all.maj_k_correct[0] == 0 && r.all.maj_k_correct[1] == 0 && r.all.maj_k_correct[2] == 1 &&
                  r.all.maj_k_correct[3] == 1);
    CHECK(ts, r.all.maj_correct == 1); /* maj@G is maj@4 */
    const char *t[] = {"\\boxed{7}", "\\boxed{5}", "\\boxed{5}", "\\boxed{5}"};
    score(&r, "x", "7", "\\boxed{7}", t);
    struct eval_metrics m;
    eval_metrics_of(&r.all, &m);
    CHECK(ts, m.maj_at_k[0] == 0.5 && m.maj_at_k[1] == 0.5 && m.maj_at_k[2] == 0.5 && m.maj_at_k[3] == 0.5);
    eval_result_free(&r);
    /* Equivalence mode: "0.5" and "\frac12" are one candidate in the first 2. */
    eval_result_init(&r, 3, REWARD_VOTE_EQUIVALENCE, 2, k + 1);
    const char *u[] = {"\\boxed{0.5}", "\\boxed{\\frac12}", "\\boxed{3}"};
    score(&r, "x", "1/2", NULL, u);
    CHECK(ts, r.all.maj_k_correct[0] == 1 && r.all.maj_k_correct[1] == 1);
    eval_result_free(&r);
}

/* Multiple choice: graded by letter, and the vote groups answers by letter. */
static void test_multiple_choice(struct test_state *ts)
{
    static const char *mc = "<image>How long is AB?\nChoices:\n(A) 12\n(B) 15\n(C) 20\n";
    struct eval_result r;
    eval_result_init(&r, 5, REWARD_VOTE_PAPER, 0, NULL);
    /* Raw strings: "A" has two votes, the rest one each; by letter B has three. */
    const char *s[] = {"\\boxed{A}", "\\boxed{A}", "\\boxed{B}", "\\boxed{(B)}", "\\boxed{15}"};
    struct eval_response g = resp("so \\boxed{B.}"), sr[5];
    for (int i = 0; i < 5; i++) sr[i] = resp(s[i]);
    eval_score_item(&r, "mc", mc, "B", &g, sr);
    CHECK(ts, r.all.mc_items == 1);
    CHECK(ts, r.all.greedy_correct == 1);
    CHECK_MSG(ts, r.all.sample_correct == 3, "%lld", (long long)r.all.sample_correct);
    CHECK(ts, r.all.maj_correct == 1 && r.all.majority_share == 0.6);
    /* The same responses to a free-form problem: graded as text, "A" wins the vote and is wrong. */
    eval_score_item(&r, "free", "How long is AB?", "B", &g, sr);
    CHECK_MSG(ts, r.all.mc_items == 1 && r.all.maj_correct == 1 && r.all.sample_correct > 3, "mc %lld maj %lld right %lld",
              (long long)r.all.mc_items, (long long)r.all.maj_correct, (long long)r.all.sample_correct);
    /* An answer naming no option is wrong; a truth that is no option's letter is graded as text. */
    const char *t[] = {"\\boxed{D}", "\\boxed{20}", "nothing", "\\boxed{(C) 20}", "\\boxed{c}"};
    for (int i = 0; i < 5; i++) sr[i] = resp(t[i]);
    eval_result_free(&r);
    eval_result_init(&r, 5, REWARD_VOTE_PAPER, 0, NULL);
    eval_score_item(&r, "mc", mc, "C", &g, sr);
    CHECK(ts, r.all.mc_items == 1 && r.all.greedy_correct == 0 && r.all.sample_correct == 3 && r.all.maj_correct == 1);
    eval_score_item(&r, "mc", mc, "25", &g, sr);
    CHECK(ts, r.all.mc_items == 1 && r.all.items == 2); /* not graded as multiple choice */
    /* A truth written as the option's text ("20 cm" equals option C's "20" by the grader) is C. */
    eval_score_item(&r, "mc", mc, "20 cm", &g, sr);
    CHECK(ts, r.all.mc_items == 2 && r.all.maj_correct == 2);
    eval_result_free(&r);
}

/* eval.greedy off: no greedy metrics (NaN, "-" in the table), the rest unchanged. */
static void test_no_greedy(struct test_state *ts)
{
    struct eval_result r;
    eval_result_init(&r, 2, REWARD_VOTE_PAPER, 0, NULL);
    const char *s[] = {"\\boxed{1}", "\\boxed{2}"};
    struct eval_response sr[2] = {resp(s[0]), resp(s[1])};
    eval_score_item(&r, "x", "Q", "1", NULL, sr);
    struct eval_metrics m;
    eval_metrics_of(&r.all, &m);
    CHECK(ts, m.items == 1 && r.all.greedy_items == 0 && isnan(m.greedy_pass1) && isnan(m.headroom) &&
                  isnan(m.greedy_length) && m.pass1 == 0.5 && m.maj == 1.0);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    eval_write_table(f, &r);
    fclose(f);
    CHECK_CONTAINS(ts, buf, "| **all** | 1 | - | 0.500 |");
    free(buf);
    eval_result_free(&r);
}

/* The config section `eval`: the paper's defaults, YAML and overrides, ranges. */
static void test_config_section(struct test_state *ts)
{
    struct cfg *c = calloc(1, sizeof *c);
    struct mmupt_err err;
    cfg_defaults(c);
    CHECK(ts, c->eval.temperature == 0.2 && c->eval.n == 1 && c->eval.top_p == 1.0 && c->eval.max_new_tokens == 1024);
    CHECK(ts, c->eval.k.n == 1 && c->eval.k.v[0] == 1 && c->eval.greedy);
    static const char yaml[] = "eval:\n  n: 8\n  k: [1, 4, 8]\n  temperature: 0.6\n  greedy: false\n";
    CHECK_MSG(ts, cfg_load_buffer(c, "t.yaml", yaml, sizeof yaml - 1, &err) == 0, "%s", err.msg);
    CHECK(ts, c->eval.n == 8 && c->eval.k.n == 3 && c->eval.k.v[2] == 8 && c->eval.temperature == 0.6 && !c->eval.greedy);
    CHECK(ts, cfg_apply_override(c, "eval.k=2,3", &err) == 0 && c->eval.k.n == 2 && c->eval.k.v[1] == 3);
    CHECK(ts, cfg_apply_override(c, "eval.max_new_tokens=64", &err) == 0 && c->eval.max_new_tokens == 64);
    static const char *const bad[] = {"eval.n=0", "eval.n=257", "eval.temperature=0", "eval.top_p=1.5", "eval.top_p=0",
                                      "eval.k=0", "eval.k=1,x", "eval.max_new_tokens=0", "eval.greedy=maybe"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_MSG(ts, cfg_apply_override(c, bad[i], &err) == -1, "%s accepted", bad[i]);
        char key[32];
        snprintf(key, sizeof key, "%.*s", (int)(strchr(bad[i], '=') - bad[i]), bad[i]);
        CHECK_CONTAINS(ts, err.msg, key);
    }
    /* A rejected value leaves the field as it was. */
    CHECK(ts, c->eval.k.n == 2 && c->eval.n == 8);
    /* The resolved config writes the section and reads it back equal. */
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    CHECK(ts, cfg_write_yaml(c, f, false) == 0);
    fclose(f);
    struct cfg *d = calloc(1, sizeof *d);
    cfg_defaults(d);
    CHECK(ts, strstr(text, "eval:") != NULL && cfg_load_buffer(d, "rt", text, len, &err) == 0 && cfg_equal(c, d));
    free(text);
    free(d);
    free(c);
}

int main(void)
{
    struct test_state ts = {0};
    RUN(&ts, test_one_item);
    RUN(&ts, test_paper_ties);
    RUN(&ts, test_vote_modes);
    RUN(&ts, test_sources);
    RUN(&ts, test_edges);
    RUN(&ts, test_config_check);
    RUN(&ts, test_parse_k);
    RUN(&ts, test_config_section);
    RUN(&ts, test_pass_at_k);
    RUN(&ts, test_maj_at_k);
    RUN(&ts, test_multiple_choice);
    RUN(&ts, test_no_greedy);
    return test_summary(&ts);
}
