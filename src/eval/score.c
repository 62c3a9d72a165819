/* Grading an item's responses and summing them into rows (see eval.h). Pure: no model, so the
 * metric arithmetic is tested on hand-made responses. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mmupt/eval.h"
#include "mmupt/grade.h"

void eval_result_init(struct eval_result *r, int G, enum reward_vote_mode vote, int n_k, const int *k)
{
    memset(r, 0, sizeof *r);
    r->G = G;
    r->vote = vote;
    MMUPT_CHECK(n_k >= 0 && n_k <= EVAL_MAX_K);
    r->n_k = n_k > 0 ? n_k : 1;
    for (int i = 0; i < r->n_k; i++) r->k[i] = n_k > 0 ? k[i] : 1;
    r->all.n_k = r->n_k;
    memcpy(r->all.k, r->k, sizeof r->k);
}

void eval_result_free(struct eval_result *r)
{
    for (int i = 0; i < r->n_sources; i++) free(r->sources[i].source);
    free(r->sources);
    for (int64_t i = 0; i < r->n_items; i++) free(r->items[i].source);
    free(r->items);
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
    r->sources[lo].n_k = r->n_k;
    memcpy(r->sources[lo].k, r->k, sizeof r->k);
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

double eval_pass_at_k(int n, int c, int k)
{
    if (k < 1 || k > n || c < 0 || c > n) return NAN;
    /* C(n-c, k) / C(n, k) = prod_{i=n-c+1}^{n} (1 - k/i): every factor is in [0, 1), so nothing
     * overflows for any n (the binomials themselves do past n ~ 1000). With fewer than k wrong
     * samples every k-subset holds a right one. */
    if (n - c < k) return 1.0;
    double miss = 1.0;
    for (int i = n - c + 1; i <= n; i++) miss *= 1.0 - (double)k / (double)i;
    return 1.0 - miss;
}

/* How an item's answers are judged: by option letter (multiple choice) or by grade_equal. */
struct judge {
    const char *truth;
    struct grade_choices choices;
    char truth_letter;             /* 0: not graded as multiple choice */
};

static void judge_init(struct judge *j, const char *problem, const char *truth)
{
    j->truth = truth;
    j->truth_letter = 0;
    if (truth && grade_choices_parse(problem, &j->choices)) j->truth_letter = grade_choice_letter(&j->choices, truth);
    /* A choices block whose answer names no option (a free-form answer): graded as text. */
    if (!j->truth_letter) grade_choices_free(&j->choices);
}

static int judge_right(const struct judge *j, const char *answer)
{
    if (!answer || !j->truth) return 0;
    if (j->truth_letter) return grade_choice_letter(&j->choices, answer) == j->truth_letter;
    return grade_equal(answer, j->truth);
}

/* For the vote: a multiple-choice answer becomes its letter, so "B", "(B)" and "B) 15" are one
 * candidate even for the paper vote's exact string comparison. Answers naming no option stay. */
static void to_letters(const struct judge *j, char **answers, int G)
{
    if (!j->truth_letter) return;
    for (int i = 0; i < G; i++) {
        char l = grade_choice_letter(&j->choices, answers[i]);
        if (!l) continue;
        answers[i] = realloc(answers[i], 2);
        if (!answers[i]) MMUPT_DIE("out of memory");
        answers[i][0] = l;
        answers[i][1] = '\0';
    }
}

/* Is the vote over answers[0..n) right? In paper mode unanswered samples vote for the string
 * "None"; a "None" majority is no answer, hence wrong even for an item whose answer is "None". */
static int vote_right(const struct judge *j, char *const *answers, int n, enum reward_vote_mode mode, int *votes)
{
    struct reward_vote_result v = {.winner = -1};
    reward_vote((const char *const *)answers, n, mode, grade_equal, &v);
    if (votes) *votes = v.votes;
    return v.winner >= 0 && answers[v.winner] && judge_right(j, v.label);
}

void eval_grade_item(const struct eval_result *r, const char *problem, const char *truth,
                     const struct eval_response *greedy, const struct eval_response *samples, struct eval_item *out)
{
    int G = r->G;
    memset(out, 0, sizeof *out);
    out->G = G;
    struct judge j;
    judge_init(&j, problem, truth);
    out->mc = j.truth_letter != 0;
    if (greedy) {
        char *g = extract(greedy);
        out->greedy = 1;
        out->greedy_no_answer = g == NULL;
        out->greedy_correct = judge_right(&j, g);
        out->greedy_tokens = greedy->tokens;
        free(g);
    }
    char **answers = mmupt_xcalloc((size_t)G, sizeof *answers);
    for (int i = 0; i < G; i++) {
        answers[i] = extract(&samples[i]);
        out->sample_correct += judge_right(&j, answers[i]);
        out->sample_no_answer += answers[i] == NULL;
        out->sample_tokens += samples[i].tokens;
    }
    /* The trainer's vote, so maj@G grades the very pseudo-label training would reward. maj@k votes
     * over the FIRST k samples: one fixed subset, so the number is deterministic and needs no
     * subset sampling (samples are exchangeable draws, so the first k are as good as any k). */
    to_letters(&j, answers, G);
    out->maj_correct = vote_right(&j, answers, G, r->vote, &out->winner_votes);
    for (int i = 0; i < r->n_k; i++)
        if (r->k[i] <= G && vote_right(&j, answers, r->k[i], r->vote, NULL)) out->maj_k_mask |= 1u << i;
    for (int i = 0; i < G; i++) free(answers[i]);
    free(answers);
    grade_choices_free(&j.choices);
}

static void add_counts(struct eval_counts *c, const struct eval_item *s)
{
    c->items++;
    c->greedy_items += s->greedy;
    c->greedy_correct += s->greedy_correct;
    c->greedy_no_answer += s->greedy_no_answer;
    c->greedy_tokens += s->greedy_tokens;
    c->samples += s->G;
    c->sample_correct += s->sample_correct;
    c->sample_no_answer += s->sample_no_answer;
    c->sample_tokens += (double)s->sample_tokens;
    c->maj_correct += s->maj_correct;
    c->any_correct += s->sample_correct > 0;
    c->majority_share += (double)s->winner_votes / s->G;
    c->mc_items += s->mc;
    for (int i = 0; i < c->n_k; i++) {
        double p = eval_pass_at_k(s->G, s->sample_correct, c->k[i]);
        if (!isnan(p)) c->pass_k[i] += p;
        c->maj_k_correct[i] += (s->maj_k_mask >> i) & 1u;
    }
}

void eval_add_item(struct eval_result *r, const char *source, const struct eval_item *it)
{
    add_counts(&r->all, it);
    add_counts(source_row(r, source && *source ? source : "(none)"), it);
    if (!r->keep_items) return;
    if (r->n_items == r->cap_items) {
        r->cap_items = r->cap_items ? 2 * r->cap_items : 64;
        struct eval_item *p = realloc(r->items, (size_t)r->cap_items * sizeof *p);
        if (!p) MMUPT_DIE("out of memory for %lld eval items", (long long)r->cap_items);
        r->items = p;
    }
    struct eval_item *k = &r->items[r->n_items++];
    *k = *it;
    k->source = source ? xstrdup(source) : NULL;
}

void eval_score_item(struct eval_result *r, const char *source, const char *problem, const char *truth,
                     const struct eval_response *greedy, const struct eval_response *samples)
{
    struct eval_item it;
    eval_grade_item(r, problem, truth, greedy, samples, &it);
    eval_add_item(r, source, &it);
}

static double share(double num, int64_t den)
{
    return den > 0 ? num / (double)den : NAN;
}

void eval_metrics_of(const struct eval_counts *c, struct eval_metrics *m)
{
    m->items = c->items;
    m->samples = c->samples;
    m->greedy_pass1 = share((double)c->greedy_correct, c->greedy_items);
    m->pass1 = share((double)c->sample_correct, c->samples);
    m->maj = share((double)c->maj_correct, c->items);
    m->pass_g = share((double)c->any_correct, c->items);
    m->headroom = m->maj - m->greedy_pass1;
    m->greedy_parse_failure = share((double)c->greedy_no_answer, c->greedy_items);
    m->sample_parse_failure = share((double)c->sample_no_answer, c->samples);
    m->greedy_length = share(c->greedy_tokens, c->greedy_items);
    m->sample_length = share(c->sample_tokens, c->samples);
    m->majority_share = share(c->majority_share, c->items);
    m->mc_items = c->mc_items;
    m->n_k = c->n_k;
    for (int i = 0; i < c->n_k; i++) {
        m->k[i] = c->k[i];
        m->pass_at_k[i] = share(c->pass_k[i], c->items);
        m->maj_at_k[i] = share((double)c->maj_k_correct[i], c->items);
    }
}

int eval_parse_k(const char *text, int *k, int *n_k, struct mmupt_err *err)
{
    const char *s = text;
    int n = 0, bracket = 0;
    while (*s == ' ') s++;
    if (*s == '[') bracket = 1, s++;
    for (;;) {
        while (*s == ' ') s++;
        if (n == 0 && (bracket ? *s == ']' : *s == '\0')) break; /* empty: refused below */
        char *end = NULL;
        long v = strtol(s, &end, 10);
        if (end == s) return mmupt_fail(err, "k list '%s': '%.20s' is not a whole number", text, s);
        if (v < 1 || v > EVAL_MAX_G) return mmupt_fail(err, "k list '%s': k = %ld must be in [1, %d]", text, v, EVAL_MAX_G);
        if (n == EVAL_MAX_K) return mmupt_fail(err, "k list '%s': at most %d values", text, EVAL_MAX_K);
        k[n++] = (int)v;
        s = end;
        while (*s == ' ') s++;
        if (*s != ',') break;
        s++;
    }
    if (bracket && *s++ != ']') return mmupt_fail(err, "k list '%s' has no closing ']'", text);
    while (*s == ' ') s++;
    if (*s) return mmupt_fail(err, "k list '%s': unexpected '%.20s'", text, s);
    if (n == 0) return mmupt_fail(err, "k list '%s' is empty: give at least one k, e.g. 1", text);
    *n_k = n;
    return 0;
}
