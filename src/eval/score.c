/* Grading an item's responses and summing them into rows (see eval.h). Pure: no model, so the
 * metric arithmetic is tested on hand-made responses. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mmupt/eval.h"
#include "mmupt/grade.h"

void eval_result_init(struct eval_result *r, int G, enum reward_vote_mode vote)
{
    memset(r, 0, sizeof *r);
    r->G = G;
    r->vote = vote;
}

void eval_result_free(struct eval_result *r)
{
    for (int i = 0; i < r->n_sources; i++) free(r->sources[i].source);
    free(r->sources);
    memset(r, 0, sizeof *r);
}

static char *xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = mmupt_xmalloc(n);
    memcpy(d, s, n);
    return d;
}

/* The row of `name`, inserted in sorted position when new. Past EVAL_MAX_SOURCES distinct names
 * (a split whose source is a per-item id, say) new names share one "(other)" row, so memory and
 * the table stay bounded. */
static struct eval_counts *source_row(struct eval_result *r, const char *name)
{
    int lo = 0, hi = r->n_sources;
    while (lo < hi) {
        int mid = (lo + hi) / 2, c = strcmp(r->sources[mid].source, name);
        if (c == 0) return &r->sources[mid];
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    if (r->n_sources >= EVAL_MAX_SOURCES && strcmp(name, EVAL_OTHER_SOURCE) != 0)
        return source_row(r, EVAL_OTHER_SOURCE);
    if (r->n_sources == r->cap_sources) {
        r->cap_sources = r->cap_sources ? 2 * r->cap_sources : 8;
        struct eval_counts *s = realloc(r->sources, (size_t)r->cap_sources * sizeof *s);
        if (!s) MMUPT_DIE("out of memory for %d eval sources", r->cap_sources);
        r->sources = s;
    }
    memmove(r->sources + lo + 1, r->sources + lo, (size_t)(r->n_sources - lo) * sizeof *r->sources);
    memset(&r->sources[lo], 0, sizeof r->sources[lo]);
    r->sources[lo].source = xstrdup(name);
    r->n_sources++;
    return &r->sources[lo];
}

/* The \boxed{} answer of a response (malloc'd), NULL when there is none. */
static char *extract(const struct eval_response *resp)
{
    char *a = NULL;
    struct mmupt_err err;
    if (!resp->text || grade_extract(resp->text, resp->len, GRADE_BOXED, &a, &err) != 1) return NULL;
    return a;
}

/* What one item adds to a row. */
struct item_score {
    int greedy_correct, greedy_no_answer, greedy_tokens;
    int sample_correct, sample_no_answer, maj_correct, any_correct;
    double sample_tokens, majority_share;
};

static void add_score(struct eval_counts *c, const struct item_score *s, int G)
{
    c->items++;
    c->greedy_correct += s->greedy_correct;
    c->greedy_no_answer += s->greedy_no_answer;
    c->greedy_tokens += s->greedy_tokens;
    c->samples += G;
    c->sample_correct += s->sample_correct;
    c->sample_no_answer += s->sample_no_answer;
    c->sample_tokens += s->sample_tokens;
    c->maj_correct += s->maj_correct;
    c->any_correct += s->any_correct;
    c->majority_share += s->majority_share;
}

void eval_score_item(struct eval_result *r, const char *source, const char *truth, const struct eval_response *greedy,
                     const struct eval_response *samples)
{
    int G = r->G;
    struct item_score s = {0};
    char *g = extract(greedy);
    s.greedy_no_answer = g == NULL;
    s.greedy_correct = g && truth && grade_equal(g, truth);
    s.greedy_tokens = greedy->tokens;
    free(g);

    char **answers = mmupt_xcalloc((size_t)G, sizeof *answers);
    float *rewards = mmupt_xmalloc((size_t)G * sizeof *rewards);
    for (int i = 0; i < G; i++) {
        answers[i] = extract(&samples[i]);
        int right = answers[i] && truth && grade_equal(answers[i], truth);
        s.sample_correct += right;
        s.any_correct |= right;
        s.sample_no_answer += answers[i] == NULL;
        s.sample_tokens += samples[i].tokens;
    }
    /* The trainer's vote, so maj@G grades the very pseudo-label training would reward. In paper
     * mode unanswered samples vote for the string "None"; a "None" majority is no answer, hence
     * wrong even for an item whose answer happens to be "None". */
    struct reward_vote_result vote = {.winner = -1};
    reward_majority((const char *const *)answers, G, r->vote, 0.0, grade_equal, rewards, &vote);
    s.maj_correct = vote.winner >= 0 && answers[vote.winner] && truth && grade_equal(vote.label, truth);
    s.majority_share = (double)vote.votes / G;
    for (int i = 0; i < G; i++) free(answers[i]);
    free(answers);
    free(rewards);

    add_score(&r->all, &s, G);
    add_score(source_row(r, source && *source ? source : "(none)"), &s, G);
}

static double share(double num, int64_t den)
{
    return den > 0 ? num / (double)den : NAN;
}

void eval_metrics_of(const struct eval_counts *c, struct eval_metrics *m)
{
    m->items = c->items;
    m->samples = c->samples;
    m->greedy_pass1 = share((double)c->greedy_correct, c->items);
    m->pass1 = share((double)c->sample_correct, c->samples);
    m->maj = share((double)c->maj_correct, c->items);
    m->pass_g = share((double)c->any_correct, c->items);
    m->headroom = m->maj - m->greedy_pass1;
    m->greedy_parse_failure = share((double)c->greedy_no_answer, c->items);
    m->sample_parse_failure = share((double)c->sample_no_answer, c->samples);
    m->greedy_length = share(c->greedy_tokens, c->items);
    m->sample_length = share(c->sample_tokens, c->samples);
    m->majority_share = share(c->majority_share, c->items);
}
