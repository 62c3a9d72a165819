/* Evaluation of a model on a dataset split with answers: greedy pass@1, pass@1 at a temperature,
 * pass@k (unbiased estimator) and maj@k for configurable k, maj@G with the trainer's vote, pass@G,
 * and the headroom maj@G - greedy that majority-vote training can exploit. docs/evaluation.md
 * defines every metric.
 *
 * Per item: one greedy answer (temperature 0; optional) and G sampled answers at the temperature.
 * Each response is graded the way the reward sees it: grade_extract(BOXED), then grade_equal(answer,
 * item's answer). Multiple-choice items (a "Choices:" block at the end of the problem, grade.h) are
 * graded by option letter, and their votes are grouped by letter. The majority answer is
 * reward_majority's vote (paper or equivalence mode), so maj@G measures exactly the pseudo-label the
 * trainer would reward. Every metric is kept overall and per `source` (the question kind).
 *
 *   struct eval_config c;
 *   eval_config_default(&c);
 *   struct eval_result r;
 *   if (eval_run(&c, &model, tok, ds, &r, &err)) ...;
 *   struct eval_metrics m;
 *   eval_metrics_of(&r.all, &m);   -> m.greedy_pass1, m.pass1, m.maj, m.pass_g, m.pass_at_k[i], ...
 *   eval_result_free(&r);
 *
 * Deterministic: the sampler's draws are keyed by (seed, item index, sample, token), so a result
 * does not depend on batching or on how items are shared among ranks (eval_gather adds the items in
 * index order); greedy answers do not depend on the seed or on G. */
#ifndef MMUPT_EVAL_H
#define MMUPT_EVAL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "mmupt/dataset.h"
#include "mmupt/err.h"
#include "mmupt/log.h"
#include "mmupt/model.h"
#include "mmupt/model_dev.h"
#include "mmupt/reward.h"
#include "mmupt/tokenizer.h"

#define EVAL_MAX_G 256         /* samples per item at most */
#define EVAL_MAX_K 32          /* k values for pass@k / maj@k at most (a config list's maximum; one bit each in a mask) */
#define EVAL_MAX_SOURCES 256   /* distinct sources kept apart; the rest are counted under "(other)" */
#define EVAL_OTHER_SOURCE "(other)"

/* Sums over the items of one row (overall or one source); metrics derive from them. */
struct eval_counts {
    char *source;                  /* NULL for the overall row */
    int64_t items;                 /* items graded */
    int64_t greedy_items;          /* items whose greedy answer was decoded (eval.greedy) */
    int64_t greedy_correct, greedy_no_answer;
    double greedy_tokens;          /* response tokens, stop token included (as the trainer counts) */
    int64_t samples;               /* items * G */
    int64_t sample_correct, sample_no_answer;
    double sample_tokens;
    int64_t maj_correct;           /* items whose majority answer is right */
    int64_t any_correct;           /* items with at least one right sample (pass@G) */
    double majority_share;         /* sum over items of winner votes / G */
    int64_t mc_items;              /* multiple-choice items among them (graded by letter) */
    int n_k;                       /* the result's k values, copied so a row is self-contained */
    int k[EVAL_MAX_K];
    double pass_k[EVAL_MAX_K];     /* sum over items of the unbiased pass@k estimate */
    int64_t maj_k_correct[EVAL_MAX_K]; /* items whose vote over their FIRST k samples is right */
};

/* The metrics of one row: shares in [0, 1], NaN when the row has no items. */
struct eval_metrics {
    int64_t items, samples;
    double greedy_pass1;           /* greedy answer right (NaN when greedy was not decoded) */
    double pass1;                  /* mean over samples at the temperature */
    double maj;                    /* maj@G */
    double pass_g;                 /* pass@G */
    double headroom;               /* maj - greedy_pass1 */
    double greedy_parse_failure, sample_parse_failure; /* share without a \boxed{} answer */
    double greedy_length, sample_length;               /* mean response tokens */
    double majority_share;         /* mean winner votes / G */
    int64_t mc_items;
    int n_k;
    int k[EVAL_MAX_K];
    double pass_at_k[EVAL_MAX_K];  /* mean over items of 1 - C(n-c, k) / C(n, k) */
    double maj_at_k[EVAL_MAX_K];   /* share of items whose vote over the first k samples is right */
};

/* One graded item: what it adds to its rows. Kept per item (eval_config.keep_items) so ranks can
 * send them to rank 0, which adds them in index order: the same sums, bit for bit, for any rank
 * count. */
struct eval_item {
    int64_t index;                 /* in the split */
    char *source;                  /* owned; NULL when the item has none */
    int greedy;                    /* 1: a greedy answer was decoded */
    int greedy_correct, greedy_no_answer, greedy_tokens;
    int G, sample_correct, sample_no_answer;
    int64_t sample_tokens;
    int maj_correct, winner_votes;
    int mc;                        /* graded by option letter */
    uint32_t maj_k_mask;           /* bit i: the vote over the first k[i] samples is right */
};

struct eval_result {
    int G;
    enum reward_vote_mode vote;
    int n_k;
    int k[EVAL_MAX_K];
    float temperature;             /* of the samples (for the table's header; 0 when unknown) */
    struct eval_counts all;
    struct eval_counts *sources;   /* sorted by name */
    int n_sources, cap_sources;
    int64_t visited;               /* items looked at (the first `limit` of the split) */
    int64_t skipped_no_answer;     /* items without an answer: nothing to grade against */
    int64_t skipped_bad;           /* unreadable items or prompts that could not be built */
    double seconds;
    int keep_items;                /* keep every graded item in items[] (for eval_gather) */
    struct eval_item *items;
    int64_t n_items, cap_items;
};

/* One response as the scorer sees it. */
struct eval_response {
    const char *text;
    size_t len;
    int tokens;
};

/* Progress: called after every batch of items (done of total visited so far). */
typedef void (*eval_progress_fn)(void *ctx, int64_t done, int64_t total, const struct eval_result *r);
/* Every graded item's responses, for dumps and tests: greedy (NULL when not decoded), then samples[G]. */
typedef void (*eval_item_fn)(void *ctx, const struct ds_item *item, const struct eval_response *greedy,
                             const struct eval_response *samples, int G);

struct eval_config {
    int G;                         /* samples per item at the temperature, [1, EVAL_MAX_G] */
    float temperature;             /* > 0 */
    float top_p;                   /* (0, 1] */
    int top_k;                     /* 0: off */
    int max_new;                   /* tokens per response at most */
    int n_k;                       /* k values for pass@k and maj@k, each in [1, G] */
    int k[EVAL_MAX_K];
    int greedy;                    /* 1: also decode the greedy answer (greedy pass@1, headroom) */
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
    int shard_rank, shard_count;   /* evaluate items with index % shard_count == shard_rank (1 rank: 0, 1) */
    int keep_items;                /* keep per-item records in the result (for eval_gather) */
    const struct log_ctx *lg;      /* warnings for skipped items; NULL: silent */
    eval_progress_fn progress;
    eval_item_fn on_item;
    void *ctx;                     /* passed to progress and on_item */
    struct model_dev *dev;         /* decode on this device copy of the model (its weights current); NULL: CPU */
};

/* The paper's decoding settings, as the config section `eval` defaults them: G 1, temperature 0.2,
 * top_p 1, max_new 1024, k {1}, greedy on; seed 1, paper vote, batch 16, image_pad_bias -100, one
 * shard. */
void eval_config_default(struct eval_config *c);
/* Check the ranges above; -1 with a message naming the setting. */
int eval_config_check(const struct eval_config *c, struct mmupt_err *err);

/* Evaluate m on the split (this rank's shard of it). The split must have answers (ds_has_answers);
 * items without one are skipped and counted, as are items whose prompt cannot be built. *out is
 * initialised here and belongs to the caller (eval_result_free) on success; on failure it is freed.
 * With one shard a run that grades nothing is an error; with several, eval_check_graded on the
 * gathered result says so. */
int eval_run(const struct eval_config *c, struct model *m, struct tok *tok, struct ds_reader *ds,
             struct eval_result *out, struct mmupt_err *err);
/* -1 with a message counting the skipped items when r graded nothing. */
int eval_check_graded(const struct eval_result *r, struct mmupt_err *err);

/* Scoring without a model: what eval_run does with each item's responses. k[n_k] as in the config
 * (n_k 0: just {1}). */
void eval_result_init(struct eval_result *r, int G, enum reward_vote_mode vote, int n_k, const int *k);
void eval_result_free(struct eval_result *r);
/* Grade one item's responses (greedy NULL: not decoded; samples[r->G]) against truth: a
 * multiple-choice problem by letter, anything else by grade_equal. Fills *out (source NULL). */
void eval_grade_item(const struct eval_result *r, const char *problem, const char *truth,
                     const struct eval_response *greedy, const struct eval_response *samples, struct eval_item *out);
/* Add a graded item to the overall row and to source's row (NULL or "" counts as "(none)"), and
 * keep a copy when r->keep_items. */
void eval_add_item(struct eval_result *r, const char *source, const struct eval_item *it);
/* eval_grade_item then eval_add_item. */
void eval_score_item(struct eval_result *r, const char *source, const char *problem, const char *truth,
                     const struct eval_response *greedy, const struct eval_response *samples);
void eval_metrics_of(const struct eval_counts *c, struct eval_metrics *m);
/* The unbiased pass@k estimate of an item with c right answers among n samples:
 * 1 - C(n-c, k) / C(n, k), computed as a product (no large binomials). NaN unless 1 <= k <= n and
 * 0 <= c <= n. */
double eval_pass_at_k(int n, int c, int k);
/* Parse "1,4,8" (or "[1, 4, 8]") into k[]; -1 with a message on a bad or empty list. */
int eval_parse_k(const char *text, int *k, int *n_k, struct mmupt_err *err);

/* ---- a batch of items and their responses (src/eval/batch.c; mmupt synth shares it) ----
 * eval_batch_read reads an item into the next slot, b->item[b->n]; the caller decides whether to
 * use it (else ds_item_free), and eval_batch_add builds its prompt from whatever text the caller
 * chose and takes it in. eval_batch_generate samples every item's responses with the rollout
 * engine, keyed by item index; eval_batch_clear frees the items and responses and keeps the arrays
 * for the next batch. */
struct prompt_builder;
struct prompt_item;
struct rollout_sample;
struct eval_batch {
    int n, cap, G;                    /* items held, room, responses per item in samples */
    struct ds_item *item;             /* [cap] */
    struct prompt_item *prompt;       /* [cap]: the built prompts */
    int64_t **ids64;                  /* [cap]: their token ids as the rollout engine takes them */
    int *len;                         /* [cap]: their lengths */
    struct rollout_sample *greedy;    /* [cap]: one greedy response per item; NULL when not wanted */
    struct rollout_sample *samples;   /* [cap * G]: samples[item * G + g] */
};
/* Decoding settings of one eval_batch_generate. Temperature 0 decodes greedily (top_p and top_k
 * are then ignored). */
struct eval_decode {
    int G;                            /* responses per item */
    float temperature, top_p;
    int top_k;                        /* 0: off */
    int max_new;
    uint64_t seed;
    float image_pad_bias;             /* <|image_pad|>'s logit bias; the video token is banned */
    const int32_t *stop_ids;
    int n_stop;
    struct model_dev *dev;            /* NULL: the CPU model */
};
/* Room for cap items with G samples each, and a greedy slot per item when with_greedy. */
void eval_batch_alloc(struct eval_batch *b, int cap, int G, int with_greedy);
void eval_batch_clear(struct eval_batch *b);
void eval_batch_free(struct eval_batch *b);
/* Read item `index` of ds into b->item[b->n]. -1 when the reader refuses it, with a warning
 * "skipping item N: why" on lg (NULL: silent). */
int eval_batch_read(struct eval_batch *b, struct ds_reader *ds, int64_t index, const struct log_ctx *lg);
/* Build b->item[b->n]'s prompt from `text` and the item's images and take the item in (b->n grows).
 * -1 when the prompt cannot be built: the item is freed, with a warning on lg (NULL: silent). */
int eval_batch_add(struct eval_batch *b, struct prompt_builder *pb, const char *text, const struct log_ctx *lg);
/* d->G responses for each of the batch's items into dst[item * d->G + g] (b->greedy with G 1 and
 * temperature 0, or b->samples with G b->G). -1 with the rollout engine's message on failure. */
int eval_batch_generate(struct model *m, const struct eval_batch *b, const struct eval_decode *d,
                        struct rollout_sample *dst, struct mmupt_err *err);

/* ---- data parallel (src/eval/parallel.c) ----
 * Collective over comm (MPI, every rank): each rank's kept items and counts go to rank 0, which
 * rebuilds *r from all of them, items in index order, so the result equals a one-rank run exactly.
 * Other ranks' *r is left as it was. seconds becomes the slowest rank's. */
struct comm;
int eval_gather(const struct comm *comm, struct eval_result *r, struct mmupt_err *err);

/* ---- loading what to evaluate (src/eval/load.c; mmupt export shares the checkpoint part) ---- */
struct eval_model_source {
    int is_checkpoint;
    char ckpt[4096];               /* the step directory read (checkpoints) */
    char dir[4096];                /* where config.json, tokenizer.json and generation_config.json are */
    int64_t step, policy_version;  /* the checkpoint's; -1 for a model directory */
};
/* `path` is a Hugging Face model directory (config.json), a checkpoint step directory (model.h5) or
 * a checkpoint directory (its `latest`). For a checkpoint the architecture and tokenizer come from
 * the model the run started from (recorded in the checkpoint) or from base_dir when not NULL.
 * Fills *m (model_free) and *src; -1 with a message naming the path otherwise. */
int eval_load_model(const char *path, const char *base_dir, struct model *m, struct eval_model_source *src,
                    struct mmupt_err *err);
/* The checkpoint step directory `arg` names: itself when it holds model.h5, else its `latest`. */
int eval_resolve_checkpoint(const char *arg, char *out, size_t n, struct mmupt_err *err);
/* The weights of checkpoint step directory ckpt into a model built from base_dir's config.json (NULL:
 * the model directory the checkpoint records); the step and the directory used in *src. */
int eval_load_checkpoint(const char *ckpt, const char *base_dir, struct model *m, struct eval_model_source *src,
                         struct mmupt_err *err);

/* Output: a markdown table (overall, then one row per source) and one JSON object with every metric,
 * the counts and the settings. model_dir and data_path are recorded as given (may be NULL). */
void eval_write_table(FILE *f, const struct eval_result *r);
/* The table with a header line of the settings and, for a file, an atomic write. */
int eval_write_markdown(const char *path, const struct eval_config *c, const struct eval_result *r,
                        const char *model_dir, const char *data_path, struct mmupt_err *err);
int eval_write_json(const char *path, const struct eval_config *c, const struct eval_result *r, const char *model_dir,
                    const char *data_path, struct mmupt_err *err);

#endif
