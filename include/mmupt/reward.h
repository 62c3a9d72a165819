/* Rewards for a group of G sampled answers to one question.
 *
 * reward.mode = majority (MM-UPT, no labels): the group votes; the winning answer is the
 * pseudo-label and each sample gets 1 if its answer is equivalent to it, else 0. Two vote modes:
 *   paper        what the official code does: candidates are the exact extracted strings, a sample
 *                without an answer votes for the string "None" (so a "None" majority rewards every
 *                unanswered sample), ties go to the candidate seen first.
 *   equivalence  candidates are equivalence classes of the grader (\frac{1}{2}, 0.5 and \dfrac12 are
 *                one candidate), samples without an answer abstain and get 0, ties go to the class
 *                seen first.
 * An optional minimum majority share (reward.min_majority_share, beyond the paper) gives the whole
 * group zero reward when the winner's share of the G samples is below it.
 * reward.mode = ground_truth (supervised GRPO baseline): 1 if the answer is equivalent to the
 * dataset's answer. reward.mode = none: all zero.
 *
 * The grader is passed in as a function, so the vote logic is independent of it (tests use simple
 * comparators; the trainer passes grade_equal). */
#ifndef MMUPT_REWARD_H
#define MMUPT_REWARD_H

#include <stdint.h>

#include "mmupt/metrics.h"

/* 1 when `given` is equivalent to `reference` (mathruler's argument order). */
typedef int (*reward_equal_fn)(const char *given, const char *reference);

enum reward_vote_mode { REWARD_VOTE_PAPER = 0, REWARD_VOTE_EQUIVALENCE }; /* order of config reward.vote */

struct reward_vote_result {
    int winner;          /* index of a sample holding the winning answer; -1: no winner (nobody answered) */
    const char *label;   /* the pseudo-label string ("None" in paper mode when no-answer wins); NULL if none */
    int votes;           /* samples in the winning candidate */
};

/* answers[G]: extracted answers, NULL where the sample has none. */
void reward_vote(const char *const *answers, int G, enum reward_vote_mode mode, reward_equal_fn equal,
                 struct reward_vote_result *out);

/* Majority-vote rewards for one group; min_share in [0, 1] (0: off). */
void reward_majority(const char *const *answers, int G, enum reward_vote_mode mode, double min_share,
                     reward_equal_fn equal, float *rewards, struct reward_vote_result *vote);

/* Ground-truth rewards (supervised baseline). */
void reward_ground_truth(const char *const *answers, int G, const char *truth, reward_equal_fn equal, float *rewards);

/* The TTRL metric set, accumulated over the groups of a step. */
struct reward_stats {
    int64_t groups, samples;
    int64_t no_answer;          /* samples whose extraction found nothing (parse failures) */
    int64_t uniform_groups;     /* groups whose rewards are all equal: zero advantage */
    double majority_share;      /* sum over groups of winner votes / G */
    double reward_sum;
    double length_sum;          /* response tokens */
    int64_t truth_groups;       /* groups whose question has a hidden answer */
    int64_t label_correct;      /* ... whose majority label equals it (logged, never trained on) */
    int64_t truth_samples, reward_agree; /* samples whose reward equals the ground-truth reward */
};

/* Add one group. truth may be NULL (no hidden answer); lengths[G] are response lengths in tokens. */
void reward_stats_add(struct reward_stats *s, const char *const *answers, int G, const struct reward_vote_result *vote,
                      const float *rewards, const char *truth, const int *lengths, reward_equal_fn equal);
/* Append the metrics to an open metrics record: reward/mean, reward/majority_ratio,
 * reward/label_accuracy and reward/reward_accuracy (only with hidden answers), reward/uniform_groups,
 * reward/parse_failure, response/length_mean. */
void reward_stats_write(const struct reward_stats *s, struct metrics_writer *w);

#endif
