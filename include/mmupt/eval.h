/* Evaluation of a model on a dataset split with answers: greedy pass@1, pass@1 at a temperature,
 * maj@G with the trainer's vote, pass@G, and the headroom maj@G - greedy that majority-vote training
 * can exploit.
 *
 * Per item: one greedy answer (temperature 0) and G sampled answers at the temperature. Each
 * response is graded the way the reward sees it: grade_extract(BOXED), then grade_equal(answer,
 * item's answer). The majority answer is reward_majority's vote (paper or equivalence mode), so maj@G
 * measures exactly the pseudo-label the trainer would reward. Every metric is kept overall and per
 * `source` (the question kind).
 *
 *   struct eval_config c;
 *   eval_config_default(&c);
 *   struct eval_result r;
 *   if (eval_run(&c, &model, tok, ds, &r, &err)) ...;
 *   struct eval_metrics m;
 *   eval_metrics_of(&r.all, &m);   -> m.greedy_pass1, m.pass1, m.maj, m.pass_g, m.headroom
 *   eval_result_free(&r);
 *
 * Deterministic: the sampler's draws are keyed by (seed, item index, sample, token), so a result
 * does not depend on batching; greedy answers do not depend on the seed or on G. */
#ifndef MMUPT_EVAL_H
#define MMUPT_EVAL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "mmupt/dataset.h"
#include "mmupt/err.h"
#include "mmupt/log.h"
#include "mmupt/model.h"
#include "mmupt/reward.h"
#include "mmupt/tokenizer.h"

#define EVAL_MAX_G 256         /* samples per item at most */
#define EVAL_MAX_SOURCES 256   /* distinct sources kept apart; the rest are counted under "(other)" */
#define EVAL_OTHER_SOURCE "(other)"

/* Sums over the items of one row (overall or one source); metrics derive from them. */
struct eval_counts {
    char *source;                  /* NULL for the overall row */
    int64_t items;                 /* items graded */
    int64_t greedy_correct, greedy_no_answer;
    double greedy_tokens;          /* response tokens, stop token included (as the trainer counts) */
    int64_t samples;               /* items * G */
    int64_t sample_correct, sample_no_answer;
    double sample_tokens;
    int64_t maj_correct;           /* items whose majority answer is right */
    int64_t any_correct;           /* items with at least one right sample (pass@G) */
    double majority_share;         /* sum over items of winner votes / G */
};

/* The metrics of one row: shares in [0, 1], NaN when the row has no items. */
struct eval_metrics {
    int64_t items, samples;
    double greedy_pass1;           /* greedy answer right */
    double pass1;                  /* mean over samples at the temperature */
    double maj;                    /* maj@G */
    double pass_g;                 /* pass@G */
    double headroom;               /* maj - greedy_pass1 */
    double greedy_parse_failure, sample_parse_failure; /* share without a \boxed{} answer */
    double greedy_length, sample_length;               /* mean response tokens */
    double majority_share;         /* mean winner votes / G */
};

struct eval_result {
    int G;
    enum reward_vote_mode vote;
    float temperature;             /* of the samples (for the table's header; 0 when unknown) */
    struct eval_counts all;
    struct eval_counts *sources;   /* sorted by name */
    int n_sources, cap_sources;
    int64_t visited;               /* items looked at (the first `limit` of the split) */
    int64_t skipped_no_answer;     /* items without an answer: nothing to grade against */
    int64_t skipped_bad;           /* unreadable items or prompts that could not be built */
    double seconds;
};

/* One response as the scorer sees it. */
struct eval_response {
    const char *text;
    size_t len;
    int tokens;
};

/* Progress: called after every batch of items (done of total visited so far). */
typedef void (*eval_progress_fn)(void *ctx, int64_t done, int64_t total, const struct eval_result *r);
/* Every graded item's responses, for dumps and tests: greedy, then samples[G]. */
typedef void (*eval_item_fn)(void *ctx, const struct ds_item *item, const struct eval_response *greedy,
                             const struct eval_response *samples, int G);

struct eval_config {
    int G;                         /* samples per item at the temperature, [1, EVAL_MAX_G] */
    float temperature;             /* > 0 */
    float top_p;                   /* (0, 1] */
    int top_k;                     /* 0: off */
    int max_new;                   /* tokens per response at most */
    int64_t limit;                 /* the first `limit` items of the split (file order); 0: all */
    uint64_t seed;
    enum reward_vote_mode vote;
    int batch;                     /* items generated together */
    const char *format_prompt;     /* appended to each problem after a space (NULL: nothing) */
    int64_t max_prompt_tokens;     /* longer prompts are skipped as bad items; 0: no limit */
    int64_t min_pixels, max_pixels; /* image resize bounds as training used them; 0: the processor's */
    float image_pad_bias;          /* logit bias of <|image_pad|> (MM-UPT: -100) */
    const int32_t *stop_ids;       /* stop tokens (rollout_default_stop_ids) */
    int n_stop;
    const struct log_ctx *lg;      /* warnings for skipped items; NULL: silent */
    eval_progress_fn progress;
    eval_item_fn on_item;
    void *ctx;                     /* passed to progress and on_item */
};

/* G 8, temperature 1, top_p 1, max_new 256, seed 1, paper vote, batch 16, image_pad_bias -100. */
void eval_config_default(struct eval_config *c);
/* Check the ranges above; -1 with a message naming the setting. */
int eval_config_check(const struct eval_config *c, struct mmupt_err *err);

/* Evaluate m on the split. The split must have answers (ds_has_answers); items without one are
 * skipped and counted, as are items whose prompt cannot be built. *out is initialised here and
 * belongs to the caller (eval_result_free) on success; on failure it is freed. */
int eval_run(const struct eval_config *c, struct model *m, struct tok *tok, struct ds_reader *ds,
             struct eval_result *out, struct mmupt_err *err);

/* Scoring without a model: what eval_run does with each item's responses. */
void eval_result_init(struct eval_result *r, int G, enum reward_vote_mode vote);
void eval_result_free(struct eval_result *r);
/* Grade one item's greedy response and G samples against truth and add them to the overall row and
 * to source's row (NULL or "" counts as "(none)"). */
void eval_score_item(struct eval_result *r, const char *source, const char *truth, const struct eval_response *greedy,
                     const struct eval_response *samples);
void eval_metrics_of(const struct eval_counts *c, struct eval_metrics *m);

/* Output: a markdown table (overall, then one row per source) and one JSON object with every metric,
 * the counts and the settings. model_dir and data_path are recorded as given (may be NULL). */
void eval_write_table(FILE *f, const struct eval_result *r);
int eval_write_json(const char *path, const struct eval_config *c, const struct eval_result *r, const char *model_dir,
                    const char *data_path, struct mmupt_err *err);

#endif
