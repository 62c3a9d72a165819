/* The rollout engine: G sampled answers per question with a KV cache and continuous batching.
 *
 * Each question is prefilled once (vision tower included) into a prefix slot; each of its G samples
 * starts from a copy of that cache. Every step decodes all active samples together; a sample that
 * stops (a stop token or max_new tokens) leaves its slot at once and the next waiting sample takes it,
 * so one long answer does not idle the batch. Draws come from the counter-based RNG keyed by
 * (seed, question id, sample index, step): a sample's tokens do not depend on which other questions
 * share the batch, in what order, or on how many ranks there are. */
#ifndef MMUPT_ROLLOUT_H
#define MMUPT_ROLLOUT_H

#include <stdint.h>

#include "mmupt/model.h"
#include "mmupt/model_dev.h"
#include "mmupt/sampler.h"
#include "mmupt/tokenizer.h"

enum rollout_finish { ROLLOUT_STOP = 0, ROLLOUT_LENGTH };

struct rollout_question {
    int64_t id;                   /* keys the RNG together with the sample index */
    struct model_batch prompt;    /* one sequence with its images */
};

struct rollout_sample {
    int64_t question;             /* index into the request array */
    int sample;                   /* 0 .. G-1 */
    int32_t *ids;                 /* generated tokens (the stop token included when it stopped) */
    float *logp;                  /* the sampler's log-prob of each token (at the temperature) */
    int n;
    enum rollout_finish finish;
    int64_t policy_version;
};

struct rollout_config {
    int G;                        /* samples per question */
    int max_new;                  /* tokens per sample at most */
    int n_slots;                  /* samples decoded together (the batch) */
    int max_prompt;               /* longest prompt, for the KV cache size */
    int prefill_prompts;          /* prompts one prefill packs at most; 0: the engine's choice
                                   * (rollout_prefill_prompts) - each costs a KV slot */
    uint64_t seed;
    struct sample_params sampling;
    const int32_t *stop_ids;
    int n_stop;
    int64_t policy_version;       /* stamped on every sample */
    /* Optional: called with every token as it is drawn (streaming); NULL for none. */
    void (*on_token)(void *ctx, int64_t question, int sample, int32_t token);
    /* Optional: the device copy of the model (include/mmupt/model_dev.h, its weights current): prefill
     * and decode run there, the KV cache lives there, and each step's logits come back to the host
     * sampler. NULL: the CPU model. */
    struct model_dev *dev;
};

/* The stop tokens a model directory asks for: generation_config.json's eos_token_id (an int or a
 * list), else <|im_end|> and <|endoftext|> from the tokenizer (tok may be NULL). Returns the count. */
int rollout_default_stop_ids(const char *model_dir, const struct tok *tok, int32_t *out, int max);

/* The most prompts one prefill (a forward pass) packs - and the prefix KV slots the engine adds to
 * n_slots: rc->prefill_prompts if set, else at least 16, and with short prompts as many as start every
 * decode slot at once (n_slots / G questions) while one forward holds at most 8192 tokens; never more
 * than n_questions. */
int rollout_prefill_prompts(const struct rollout_config *rc, int n_questions);

/* Called for each finished sample (in finishing order); the sample's buffers belong to the callee. */
typedef void (*rollout_emit_fn)(void *ctx, struct rollout_sample *s);

/* Generate G samples for each question. Returns -1 with err set on bad input (a prompt that does not
 * fit, a model error); samples emitted before the error stay emitted. */
int rollout_run(struct model *m, const struct rollout_config *rc, const struct rollout_question *q, int n_questions,
                rollout_emit_fn emit, void *ctx, struct mmupt_err *err);

#endif
