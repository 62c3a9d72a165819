/* Supervised fine-tuning (the quickstart's warm-up): teach a model to answer a split's questions with
 * the split's `answer` texts before MM-UPT takes over.
 *
 * Each dataset item becomes one example: the prompt exactly as the trainer builds it (prompt.h, chat
 * template, images) followed by the target tokens, tokenize(answer) + <|im_end|>. Examples are packed
 * into one batch without padding; position t of a sequence predicts token t + 1 and only target tokens
 * are scored, so the loss is the mean next-token cross-entropy over the batch's target tokens (the
 * token-mean of the GRPO trainer's micro-batch). AdamW with warmup + cosine (optim.h), gradient
 * clipping, batches from the shuffled dataset cursor, everything keyed by one seed.
 *
 *   struct sft_config c;
 *   sft_config_default(&c);
 *   c.steps = 800;
 *   struct sft_paths p = {.model_dir = "configs/quickstart_model", .init_random = 1,
 *                         .data = "sft.h5", .out_dir = "runs/warmup"};
 *   if (sft_run(&p, &c, &world, &lg, &stats, &err)) ...
 */
#ifndef MMUPT_SFT_H
#define MMUPT_SFT_H

#include <stdint.h>

#include "mmupt/comm.h"
#include "mmupt/dataset.h"
#include "mmupt/image.h"
#include "mmupt/log.h"
#include "mmupt/model.h"
#include "mmupt/prompt.h"
#include "mmupt/tokenizer.h"

struct sft_config {
    int64_t steps;              /* optimizer steps */
    int batch;                  /* examples per step */
    double lr, warmup_ratio;    /* peak learning rate; warmup share of the steps, then cosine to 0 */
    double weight_decay, clip_grad_norm, beta1, beta2, eps;
    uint64_t seed;              /* data order (and, with sft_paths.init_random, the initial weights) */
    int64_t max_prompt;         /* prompt tokens at most, longer items are skipped (0: no limit) */
    int64_t max_target;         /* target tokens at most, longer items are skipped */
    int64_t min_pixels, max_pixels; /* smart_resize bounds: must match what rollouts use later */
    int log_every;              /* a progress line every K steps (0: none) */
};

/* Defaults: 800 steps, batch 16, lr 2e-3, warmup 0.05, weight decay 0.01, clip 1.0, betas 0.9/0.999,
 * eps 1e-8, seed 1, no prompt limit, 512 target tokens, the HF processor's pixel bounds (56*56 and
 * 28*28*16384; MM-UPT's trainer config defaults to more), a line every 10 steps. */
void sft_config_default(struct sft_config *c);
/* Check ranges; the message names the field as the CLI spells it (--lr). */
int sft_config_check(const struct sft_config *c, struct mmupt_err *err);

/* ---- the pieces (exposed for tests and other supervised objectives) ---- */

/* One example: a prompt and its target tokens (response + stop token). */
struct sft_example {
    struct prompt_item prompt;
    int32_t *target;
    int n_target;
};
void sft_example_free(struct sft_example *ex);

/* The target of a response text: its tokens followed by stop_id. Refuses an empty response and one
 * longer than max_tokens - 1 tokens. *ids is malloc'd. */
int sft_target(struct tok *tok, const char *response, int32_t stop_id, int64_t max_tokens, int32_t **ids, int *n,
               struct mmupt_err *err);

/* Examples packed back to back: sequence k is prompt_k + target_k; targets[t] is the next token where
 * position t is scored (the next token belongs to the target) and -1 elsewhere. */
struct sft_batch {
    int n_seq, n_images;
    int *seq_len;
    int64_t n_tokens, n_scored, n_patches;
    int64_t *tokens, *targets, *grid;
    float *pixels;
};
void sft_batch_pack(struct sft_batch *b, const struct sft_example *ex, int n, int64_t patch_dim);
void sft_batch_free(struct sft_batch *b);
/* The batch as the model takes it (pointers into b). */
struct model_batch sft_batch_view(const struct sft_batch *b);

/* Forward over the batch; *loss = -(1 / n_scored) sum_t log p(targets[t]) over scored positions.
 * With backward set, the gradient of *loss is accumulated into m->grads (zero them first). A
 * non-finite loss is returned as is (the optimizer then skips the step). */
int sft_batch_loss(struct model *m, const struct sft_batch *b, int backward, double *loss, struct mmupt_err *err);

/* ---- the training loop ---- */

struct sft_stats {
    int64_t steps;              /* optimizer steps run */
    int64_t skipped_updates;    /* steps the optimizer skipped (non-finite gradient) */
    int64_t skipped_items;      /* dataset items that could not be used */
    int64_t tokens;             /* packed tokens processed */
    double first_loss;          /* loss of step 1 */
    double tail_loss;           /* mean loss over the last 10% of the steps (at least one) */
    double wall_s;              /* the loop's wall time */
    double *losses;             /* optional, set by the caller: receives each step's loss (steps entries) */
};

/* Train m in place on the items of ds (which must have answers). tok tokenizes the responses and
 * builds the prompts. Progress lines go to lg at info level. comm carries the optimizer's
 * collectives; for now it must have one rank. */
int sft_train(struct model *m, struct tok *tok, struct ds_reader *ds, const struct sft_config *c,
              const struct comm *comm, const struct log_ctx *lg, struct sft_stats *st, struct mmupt_err *err);

/* ---- the whole job ---- */

struct sft_paths {
    const char *model_dir;      /* config.json + tokenizer.json (+ weights unless init_random) */
    int init_random;            /* start from model_init_random(seed) instead of the weights */
    const char *data;           /* the split, e.g. sft.h5 */
    const char *out_dir;        /* must not exist or be empty */
};

/* Open everything, train, and write out_dir as a Hugging Face model directory (F32 safetensors,
 * config and tokenizer copied from model_dir) that `mmupt generate`, the trainer and transformers
 * load. Nothing is written when an input is refused. */
int sft_run(const struct sft_paths *p, const struct sft_config *c, const struct comm *comm, const struct log_ctx *lg,
            struct sft_stats *st, struct mmupt_err *err);

#endif
