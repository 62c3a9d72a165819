/* Majority-vote and ground-truth rewards, and the per-step reward metrics (see reward.h). */
#include <stdlib.h>
#include <string.h>

#include "mmupt/reward.h"

/* What a sample votes for in paper mode: its exact string, or MathRuler's "None". */
static const char *paper_candidate(const char *a)
{
    return a ? a : "None";
}

/* Paper mode: count exact strings; the first-seen candidate wins ties (Counter.most_common). */
static void vote_paper(const char *const *answers, int G, struct reward_vote_result *out)
{
    for (int i = 0; i < G; i++) {
        const char *c = paper_candidate(answers[i]);
        int first = 1, votes = 0;
        for (int j = 0; j < G; j++) {
            if (strcmp(paper_candidate(answers[j]), c) != 0) continue;
            if (j < i) first = 0;
            votes++;
        }
        /* Strictly more votes replaces the leader, so among ties the earliest first occurrence stays. */
        if (first && votes > out->votes) {
            out->winner = i;
            out->label = c;
            out->votes = votes;
        }
    }
}

/* Equivalence mode: classes under the grader, no-answer abstains, first-seen class wins ties.
 * A sample joins the class of the first earlier answer it is equivalent to, checked against that
 * class's first member, so the classes do not depend on the grader being transitive. */
static void vote_equivalence(const char *const *answers, int G, reward_equal_fn equal, struct reward_vote_result *out)
{
    int *cls = malloc((size_t)(G > 0 ? G : 1) * sizeof *cls), *count = calloc((size_t)(G > 0 ? G : 1), sizeof *count);
    if (!cls || !count) MMUPT_DIE("out of memory");
    for (int i = 0; i < G; i++) {
        cls[i] = -1;
        if (!answers[i]) continue;
        for (int j = 0; j < i && cls[i] < 0; j++)
            if (answers[j] && cls[j] == j && (equal(answers[i], answers[j]) || equal(answers[j], answers[i]))) cls[i] = j;
        if (cls[i] < 0) cls[i] = i;
        count[cls[i]]++;
    }
    for (int i = 0; i < G; i++) {
        if (count[i] > out->votes) {
            out->winner = i;
            out->label = answers[i];
            out->votes = count[i];
        }
    }
    free(cls);
    free(count);
}

void reward_vote(const char *const *answers, int G, enum reward_vote_mode mode, reward_equal_fn equal,
                 struct reward_vote_result *out)
{
    out->winner = -1;
    out->label = NULL;
    out->votes = 0;
    if (mode == REWARD_VOTE_PAPER) vote_paper(answers, G, out);
    else vote_equivalence(answers, G, equal, out);
}

void reward_majority(const char *const *answers, int G, enum reward_vote_mode mode, double min_share,
                     reward_equal_fn equal, float *rewards, struct reward_vote_result *vote)
{
    reward_vote(answers, G, mode, equal, vote);
    int off = vote->winner < 0 || (G > 0 && (double)vote->votes / G < min_share);
    for (int i = 0; i < G; i++) {
        if (off) {
            rewards[i] = 0.0f;
        } else if (mode == REWARD_VOTE_PAPER) {
            /* grade_answer(sample, majority), with a missing answer graded as the string "None". */
            rewards[i] = equal(paper_candidate(answers[i]), vote->label) ? 1.0f : 0.0f;
        } else {
            rewards[i] = answers[i] && equal(answers[i], vote->label) ? 1.0f : 0.0f;
        }
    }
}

void reward_ground_truth(const char *const *answers, int G, const char *truth, reward_equal_fn equal, float *rewards)
{
    for (int i = 0; i < G; i++) rewards[i] = answers[i] && truth && equal(answers[i], truth) ? 1.0f : 0.0f;
}

void reward_stats_add(struct reward_stats *s, const char *const *answers, int G, const struct reward_vote_result *vote,
                      const float *rewards, const char *truth, const int *lengths, reward_equal_fn equal)
{
    s->groups++;
    s->samples += G;
    int uniform = 1;
    for (int i = 0; i < G; i++) {
        s->no_answer += answers[i] == NULL;
        s->reward_sum += rewards[i];
        s->length_sum += lengths ? lengths[i] : 0;
        if (rewards[i] != rewards[0]) uniform = 0;
    }
    s->uniform_groups += uniform;
    s->majority_share += G > 0 && vote ? (double)vote->votes / G : 0.0;
    if (!truth) return;
    s->truth_groups++;
    s->label_correct += vote && vote->label && equal(vote->label, truth);
    for (int i = 0; i < G; i++) {
        int right = answers[i] && equal(answers[i], truth);
        s->truth_samples++;
        s->reward_agree += (rewards[i] > 0.5f) == right;
    }
}

void reward_stats_write(const struct reward_stats *s, struct metrics_writer *w)
{
    double g = s->groups ? (double)s->groups : 1.0, n = s->samples ? (double)s->samples : 1.0;
    metrics_f64(w, "reward/mean", s->reward_sum / n);
    metrics_f64(w, "reward/majority_ratio", s->majority_share / g);
    metrics_f64(w, "reward/uniform_groups", (double)s->uniform_groups / g);
    metrics_f64(w, "reward/parse_failure", (double)s->no_answer / n);
    metrics_f64(w, "response/length_mean", s->length_sum / n);
    if (s->truth_groups) {
        metrics_f64(w, "reward/label_accuracy", (double)s->label_correct / (double)s->truth_groups);
        metrics_f64(w, "reward/reward_accuracy", (double)s->reward_agree / (double)s->truth_samples);
    }
}
