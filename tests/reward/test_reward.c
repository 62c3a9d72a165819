/* Votes and rewards: the paper's exact-string vote (first-seen tie-break, "None" is a candidate),
 * the equivalence-class vote (no-answer abstains), the minimum majority share, ground-truth rewards
 * and the per-step metrics. The grader is a parameter; these tests use two simple ones. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../test.h"
#include "mmupt/reward.h"
#include "mmupt/strutil.h"

static int exact(const char *a, const char *b)
{
    return strcmp(a, b) == 0;
}

/* A toy grader: numbers (decimals or a/b) compare by value, anything else exactly. */
static int numeric(const char *a, const char *b)
{
    double x, y;
    char *end;
    const char *s[2] = {a, b};
    double *v[2] = {&x, &y};
    for (int k = 0; k < 2; k++) {
        *v[k] = strtod(s[k], &end);
        if (*end == '/') *v[k] /= strtod(end + 1, &end);
        if (end == s[k] || *end) return strcmp(a, b) == 0;
    }
    return fabs(x - y) < 1e-12;
}

static void expect_rewards(struct test_state *ts, const float *got, const float *want, int G)
{
    for (int i = 0; i < G; i++) CHECK_MSG(ts, got[i] == want[i], "reward %d: %g, expected %g", i, got[i], want[i]);
}

static void test_paper_vote(struct test_state *ts)
{
    struct reward_vote_result v;
    float r[8];
    const char *tie[] = {"5", "3", "5", NULL, "3"};
    reward_majority(tie, 5, REWARD_VOTE_PAPER, 0, exact, r, &v);
    CHECK(ts, v.winner == 0 && strcmp(v.label, "5") == 0 && v.votes == 2); /* 5 and 3 tie; 5 was seen first */
    expect_rewards(ts, r, (const float[]){1, 0, 1, 0, 0}, 5);
    const char *late[] = {"a", "b", "b", "a"};
    reward_vote(late, 4, REWARD_VOTE_PAPER, exact, &v);
    CHECK(ts, strcmp(v.label, "a") == 0);
    const char *none_wins[] = {NULL, NULL, "2", NULL};
    reward_majority(none_wins, 4, REWARD_VOTE_PAPER, 0, exact, r, &v);
    CHECK(ts, strcmp(v.label, "None") == 0 && v.votes == 3 && v.winner == 0);
    expect_rewards(ts, r, (const float[]){1, 1, 0, 1}, 4); /* MathRuler grades "None" == "None" */
    /* Exact strings in the vote, the grader only for rewards: 1/2 and 0.5 split the vote. */
    const char *split[] = {"1/2", "0.5", "3", "0.5", "3", "3", "1/2"};
    reward_majority(split, 7, REWARD_VOTE_PAPER, 0, numeric, r, &v);
    CHECK(ts, strcmp(v.label, "3") == 0 && v.votes == 3);
    expect_rewards(ts, r, (const float[]){0, 0, 1, 0, 1, 1, 0}, 7);
    const char *one[] = {"7"};
    reward_majority(one, 1, REWARD_VOTE_PAPER, 0, exact, r, &v);
    CHECK(ts, r[0] == 1.0f && v.votes == 1);
}

static void test_equivalence_vote(struct test_state *ts)
{
    struct reward_vote_result v;
    float r[8];
    /* Grouped by value, {1/2, 0.5} has 4 votes and beats {3} with 3. */
    const char *split[] = {"1/2", "0.5", "3", "0.5", "3", "3", "1/2"};
    reward_majority(split, 7, REWARD_VOTE_EQUIVALENCE, 0, numeric, r, &v);
    CHECK(ts, v.winner == 0 && v.votes == 4);
    expect_rewards(ts, r, (const float[]){1, 1, 0, 1, 0, 0, 1}, 7);
    /* No-answer abstains instead of winning. */
    const char *mostly_none[] = {NULL, NULL, "2", NULL, "2.0"};
    reward_majority(mostly_none, 5, REWARD_VOTE_EQUIVALENCE, 0, numeric, r, &v);
    CHECK(ts, v.winner == 2 && v.votes == 2);
    expect_rewards(ts, r, (const float[]){0, 0, 1, 0, 1}, 5);
    const char *nobody[] = {NULL, NULL, NULL};
    reward_majority(nobody, 3, REWARD_VOTE_EQUIVALENCE, 0, numeric, r, &v);
    CHECK(ts, v.winner == -1 && v.label == NULL);
    expect_rewards(ts, r, (const float[]){0, 0, 0}, 3);
    /* Ties go to the class seen first. */
    const char *tie[] = {"4", "9", "9.0", "4.0"};
    reward_vote(tie, 4, REWARD_VOTE_EQUIVALENCE, numeric, &v);
    CHECK(ts, v.winner == 0 && v.votes == 2);
}

static void test_min_share_and_truth(struct test_state *ts)
{
    struct reward_vote_result v;
    float r[8];
    const char *weak[] = {"1", "2", "3", "1", "4", "5"}; /* winner "1" with 2 of 6 */
    reward_majority(weak, 6, REWARD_VOTE_PAPER, 0.5, exact, r, &v);
    expect_rewards(ts, r, (const float[]){0, 0, 0, 0, 0, 0}, 6);
    reward_majority(weak, 6, REWARD_VOTE_PAPER, 1.0 / 3.0, exact, r, &v); /* exactly at the bound: kept */
    expect_rewards(ts, r, (const float[]){1, 0, 0, 1, 0, 0}, 6);
    const char *ans[] = {"0.5", NULL, "2", "1/2"};
    reward_ground_truth(ans, 4, "1/2", numeric, r);
    expect_rewards(ts, r, (const float[]){1, 0, 0, 1}, 4);
    reward_ground_truth(ans, 4, NULL, numeric, r);
    expect_rewards(ts, r, (const float[]){0, 0, 0, 0}, 4);
}

static void test_stats(struct test_state *ts)
{
    struct reward_stats s;
    memset(&s, 0, sizeof s);
    struct reward_vote_result v;
    float r[4];
    /* Group 1: majority "3" is wrong (truth 4); group 2: unanimous, no hidden answer. */
    const char *g1[] = {"3", "3", "4", NULL};
    const int len1[] = {10, 20, 30, 40};
    reward_majority(g1, 4, REWARD_VOTE_PAPER, 0, exact, r, &v);
    reward_stats_add(&s, g1, 4, &v, r, "4", len1, exact);
    const char *g2[] = {"x", "x", "x", "x"};
    reward_majority(g2, 4, REWARD_VOTE_PAPER, 0, exact, r, &v);
    reward_stats_add(&s, g2, 4, &v, r, NULL, len1, exact);
    char path[] = "/tmp/mmupt_reward_XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    struct metrics_writer w;
    struct mmupt_err err;
    CHECK(ts, metrics_open(&w, path, &err) == 0);
    metrics_begin(&w);
    reward_stats_write(&s, &w);
    CHECK(ts, metrics_end(&w, &err) == 0);
    metrics_close(&w);
    char *text;
    size_t n;
    CHECK(ts, file_read_all(path, 1 << 16, &text, &n, &err) == 0);
    /* rewards: group 1 {1,1,0,0}, group 2 {1,1,1,1}: mean 6/8; majority shares 2/4 and 4/4. */
    CHECK_CONTAINS(ts, text, "\"reward/mean\": 0.75");
    CHECK_CONTAINS(ts, text, "\"reward/majority_ratio\": 0.75");
    CHECK_CONTAINS(ts, text, "\"reward/uniform_groups\": 0.5");
    CHECK_CONTAINS(ts, text, "\"reward/parse_failure\": 0.125");
    CHECK_CONTAINS(ts, text, "\"response/length_mean\": 25");
    CHECK_CONTAINS(ts, text, "\"reward/label_accuracy\": 0,");
    /* group 1 ground-truth rewards {0,0,1,0} vs given {1,1,0,0}: only sample 3 agrees */
    CHECK_CONTAINS(ts, text, "\"reward/reward_accuracy\": 0.25");
    free(text);
    unlink(path);
}

int main(void)
{
    struct test_state ts = {0};
    RUN(&ts, test_paper_vote);
    RUN(&ts, test_equivalence_vote);
    RUN(&ts, test_min_share_and_truth);
    RUN(&ts, test_stats);
    return test_summary(&ts);
}
