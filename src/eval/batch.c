/* A batch of items, their prompts and their responses, shared by eval_run and synth_run: both read
 * items, build one prompt each, and sample several responses per prompt with the rollout engine.
 * What differs between them (which items to skip, the prompt's text, what to do with the
 * responses) stays with the caller. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mmupt/eval.h"
#include "mmupt/prompt.h"
#include "mmupt/rollout.h"

void eval_batch_alloc(struct eval_batch *b, int cap, int G, int with_greedy)
{
    memset(b, 0, sizeof *b);
    b->cap = cap;
    b->G = G;
    b->item = mmupt_xcalloc((size_t)cap, sizeof *b->item);
    b->prompt = mmupt_xcalloc((size_t)cap, sizeof *b->prompt);
    b->ids64 = mmupt_xcalloc((size_t)cap, sizeof *b->ids64);
    b->len = mmupt_xcalloc((size_t)cap, sizeof *b->len);
    if (with_greedy) b->greedy = mmupt_xcalloc((size_t)cap, sizeof *b->greedy);
    b->samples = mmupt_xcalloc((size_t)cap * (size_t)G, sizeof *b->samples);
}

void eval_batch_clear(struct eval_batch *b)
{
    for (int i = 0; i < b->n; i++) {
        ds_item_free(&b->item[i]);
        prompt_item_free(&b->prompt[i]);
        free(b->ids64[i]);
        b->ids64[i] = NULL;
        if (b->greedy) free(b->greedy[i].ids);
        for (int g = 0; g < b->G; g++) free(b->samples[(size_t)i * b->G + g].ids);
    }
    if (b->greedy) memset(b->greedy, 0, (size_t)b->n * sizeof *b->greedy);
    memset(b->samples, 0, (size_t)b->n * (size_t)b->G * sizeof *b->samples);
    b->n = 0;
}

void eval_batch_free(struct eval_batch *b)
{
    eval_batch_clear(b);
    free(b->item);
    free(b->prompt);
    free(b->ids64);
    free(b->len);
    free(b->greedy);
    free(b->samples);
    memset(b, 0, sizeof *b);
}

int eval_batch_read(struct eval_batch *b, struct ds_reader *ds, int64_t index, const struct log_ctx *lg)
{
    MMUPT_CHECK(b->n < b->cap);
    struct mmupt_err err;
    if (ds_read(ds, index, &b->item[b->n], &err) == 0) return 0;
    if (lg) log_warn(lg, "skipping item %lld: %s", (long long)index, err.msg);
    return -1;
}

int eval_batch_add(struct eval_batch *b, struct prompt_builder *pb, const char *text, const struct log_ctx *lg)
{
    MMUPT_CHECK(b->n < b->cap);
    struct ds_item *it = &b->item[b->n];
    struct prompt_item *p = &b->prompt[b->n];
    struct mmupt_err err;
    if (prompt_build(pb, text, (const uint8_t *const *)it->image, it->image_len, it->n_images, p, &err)) {
        if (lg) log_warn(lg, "skipping item %lld (id '%.100s'): %s", (long long)it->index, it->id, err.msg);
        ds_item_free(it);
        return -1;
    }
    /* The rollout engine takes 64-bit token ids. */
    b->len[b->n] = (int)p->n_ids;
    b->ids64[b->n] = mmupt_xmalloc(p->n_ids * sizeof **b->ids64);
    for (size_t k = 0; k < p->n_ids; k++) b->ids64[b->n][k] = p->ids[k];
    b->n++;
    return 0;
}

struct collect {
    struct rollout_sample *dst;
    int G;
};

static void collect_sample(void *ctx, struct rollout_sample *s)
{
    struct collect *col = ctx;
    free(s->logp); /* eval and synth need the tokens only */
    s->logp = NULL;
    col->dst[s->question * col->G + s->sample] = *s;
}

int eval_batch_generate(struct model *m, const struct eval_batch *b, const struct eval_decode *d,
                        struct rollout_sample *dst, struct mmupt_err *err)
{
    struct rollout_question *q = mmupt_xcalloc((size_t)b->n, sizeof *q);
    int max_prompt = 1;
    for (int i = 0; i < b->n; i++) {
        /* The item index keys the sampler, so a sample's draws do not depend on the batching (or,
         * with strided shards, on the rank count). */
        q[i] = (struct rollout_question){.id = b->item[i].index,
                                         .prompt = {.n_seq = 1, .seq_len = &b->len[i], .tokens = b->ids64[i],
                                                    .n_images = b->prompt[i].n_images, .grid_thw = b->prompt[i].grid,
                                                    .pixels = b->prompt[i].pixels}};
        if (b->len[i] > max_prompt) max_prompt = b->len[i];
    }
    /* As in training: <|image_pad|> gets MM-UPT's bias, and the video token (no video input here)
     * is banned, so a response never contains a token the prompt builder would refuse. */
    int32_t bias_id[2] = {(int32_t)m->cfg.image_token_id, (int32_t)m->cfg.video_token_id};
    float bias[2] = {d->image_pad_bias, -INFINITY};
    int total = b->n * d->G;
    int sampled = d->temperature > 0;
    struct rollout_config rc = {
        .G = d->G, .max_new = d->max_new, .n_slots = total < 64 ? total : 64, .max_prompt = max_prompt,
        .seed = d->seed,
        .sampling = {.temperature = d->temperature, .top_p = sampled ? d->top_p : 1.0f,
                     .top_k = sampled ? d->top_k : 0, .bias_ids = bias_id, .bias = bias,
                     .n_bias = m->cfg.has_vision ? 2 : 0},
        .stop_ids = d->stop_ids, .n_stop = d->n_stop, .dev = d->dev,
    };
    struct collect col = {.dst = dst, .G = d->G};
    int rc_out = rollout_run(m, &rc, q, b->n, collect_sample, &col, err);
    free(q);
    return rc_out;
}
