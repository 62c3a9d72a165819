/* eval_run: walk the split in batches of items; per batch one greedy rollout and one sampled rollout
 * with the rollout engine, then grade (score.c). Items are read in file order, so `limit` means the
 * first K items and a run visits each item once. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mmupt/eval.h"
#include "mmupt/prompt.h"
#include "mmupt/rollout.h"

void eval_config_default(struct eval_config *c)
{
    memset(c, 0, sizeof *c);
    c->G = 1;
    c->temperature = 0.2f;
    c->top_p = 1.0f;
    c->max_new = 1024;
    c->n_k = 1;
    c->k[0] = 1;
    c->greedy = 1;
    c->seed = 1;
    c->shard_count = 1;
    c->vote = REWARD_VOTE_PAPER;
    c->batch = 16;
    c->image_pad_bias = -100.0f;
}

int eval_config_check(const struct eval_config *c, struct mmupt_err *err)
{
    if (c->G < 1 || c->G > EVAL_MAX_G) return mmupt_fail(err, "samples per item (G) must be in [1, %d], got %d", EVAL_MAX_G, c->G);
    if (!(c->temperature > 0.0f) || !isfinite(c->temperature))
        return mmupt_fail(err, "the sampling temperature must be > 0 and finite (greedy runs anyway), got %g",
                          (double)c->temperature);
    if (!(c->top_p > 0.0f && c->top_p <= 1.0f)) return mmupt_fail(err, "top_p must be in (0, 1], got %g", (double)c->top_p);
    if (c->top_k < 0) return mmupt_fail(err, "top_k must be >= 0, got %d", c->top_k);
    if (c->max_new < 1 || c->max_new > 65536)
        return mmupt_fail(err, "max new tokens must be in [1, 65536], got %d", c->max_new);
    if (c->n_k < 1 || c->n_k > EVAL_MAX_K)
        return mmupt_fail(err, "give 1 to %d values of k for pass@k / maj@k, got %d", EVAL_MAX_K, c->n_k);
    for (int i = 0; i < c->n_k; i++) {
        if (c->k[i] < 1) return mmupt_fail(err, "k = %d: each k of pass@k / maj@k must be >= 1", c->k[i]);
        if (c->k[i] > c->G)
            return mmupt_fail(err, "k = %d exceeds n = %d samples per item: each k of pass@k / maj@k must be <= n",
                              c->k[i], c->G);
    }
    if (c->shard_count < 1 || c->shard_rank < 0 || c->shard_rank >= c->shard_count)
        return mmupt_fail(err, "shard %d of %d does not exist", c->shard_rank, c->shard_count);
    if (c->limit < 0) return mmupt_fail(err, "the item limit must be >= 0 (0: all), got %lld", (long long)c->limit);
    if (c->batch < 1 || c->batch > 4096) return mmupt_fail(err, "the batch must be in [1, 4096] items, got %d", c->batch);
    if (c->vote != REWARD_VOTE_PAPER && c->vote != REWARD_VOTE_EQUIVALENCE)
        return mmupt_fail(err, "unknown vote mode %d", (int)c->vote);
    if (c->max_prompt_tokens < 0) return mmupt_fail(err, "the prompt token limit must be >= 0");
    if (c->n_stop < 0 || (c->n_stop > 0 && !c->stop_ids)) return mmupt_fail(err, "bad stop token list");
    if (!isfinite(c->image_pad_bias) && c->image_pad_bias != -INFINITY)
        return mmupt_fail(err, "the <|image_pad|> logit bias must be finite or -inf");
    return 0;
}

/* Read item `index` into the batch if it can be graded; count and report it otherwise. */
static void load_item(const struct eval_config *c, struct prompt_builder *pb, struct ds_reader *ds, int64_t index,
                      struct eval_batch *b, struct eval_result *r)
{
    struct ds_item *it = &b->item[b->n];
    r->visited++;
    if (eval_batch_read(b, ds, index, c->lg)) {
        r->skipped_bad++;
        return;
    }
    if (!it->answer) {
        r->skipped_no_answer++;
        if (c->lg) log_debug(c->lg, "skipping item %lld (id '%.100s'): it has no answer", (long long)index, it->id);
        ds_item_free(it);
        return;
    }
    if (eval_batch_add(b, pb, it->problem, c->lg)) r->skipped_bad++;
}

/* Generate `G` responses per item of the batch at `temperature` (0: greedy) into dst. */
static int generate(const struct eval_config *c, struct model *m, const struct eval_batch *b, int G, float temperature,
                    struct rollout_sample *dst, struct mmupt_err *err)
{
    struct eval_decode d = {.G = G, .temperature = temperature, .top_p = c->top_p, .top_k = c->top_k,
                            .max_new = c->max_new, .seed = c->seed, .image_pad_bias = c->image_pad_bias,
                            .stop_ids = c->stop_ids, .n_stop = c->n_stop, .dev = c->dev};
    return eval_batch_generate(m, b, &d, dst, err);
}

/* Decode a sample to text (NULL when it holds an id the tokenizer does not know: no answer). */
static void to_response(const struct tok *tok, const struct rollout_sample *s, struct eval_response *out, char **text)
{
    struct mmupt_err err;
    size_t len = 0;
    *text = NULL;
    if (tok_decode(tok, s->ids, (size_t)s->n, 1, text, &len, &err)) *text = NULL;
    *out = (struct eval_response){.text = *text, .len = *text ? len : 0, .tokens = s->n};
}

static void score_batch(const struct eval_config *c, const struct tok *tok, const struct eval_batch *b,
                        struct eval_result *r)
{
    int G = b->G;
    struct eval_response greedy, *samples = mmupt_xcalloc((size_t)G, sizeof *samples);
    char *gtext, **stext = mmupt_xcalloc((size_t)G, sizeof *stext);
    for (int i = 0; i < b->n; i++) {
        gtext = NULL;
        if (c->greedy) to_response(tok, &b->greedy[i], &greedy, &gtext);
        for (int g = 0; g < G; g++) to_response(tok, &b->samples[(size_t)i * G + g], &samples[g], &stext[g]);
        const struct eval_response *gp = c->greedy ? &greedy : NULL;
        struct eval_item it;
        eval_grade_item(r, b->item[i].problem, b->item[i].answer, gp, samples, &it);
        it.index = b->item[i].index;
        eval_add_item(r, b->item[i].source, &it);
        if (c->on_item) c->on_item(c->ctx, &b->item[i], gp, samples, G);
        free(gtext);
        for (int g = 0; g < G; g++) free(stext[g]);
    }
    free(samples);
    free(stext);
}

static int open_builder(const struct eval_config *c, const struct model *m, struct tok *tok, struct prompt_builder *pb,
                        struct mmupt_err *err)
{
    struct img_proc_config ic;
    prompt_image_config(&ic, &m->cfg, c->min_pixels, c->max_pixels);
    return prompt_builder_init(pb, tok, c->format_prompt ? c->format_prompt : "", &ic, c->max_prompt_tokens, err);
}

static int run_batches(const struct eval_config *c, struct model *m, struct tok *tok, struct prompt_builder *pb,
                       struct ds_reader *ds, int64_t total, struct eval_result *r, struct mmupt_err *err)
{
    double t0 = mmupt_now();
    struct eval_batch b;
    eval_batch_alloc(&b, c->batch, c->G, c->greedy);
    int rc = 0;
    int64_t P = c->shard_count, shard_total = total > c->shard_rank ? (total - c->shard_rank + P - 1) / P : 0;
    /* Strided shards: item i belongs to rank i % P, so each rank gets a similar mix of sources
     * when a split is ordered by source. */
    for (int64_t next = c->shard_rank; next < total && rc == 0;) {
        while (b.n < c->batch && next < total) {
            load_item(c, pb, ds, next, &b, r);
            next += c->shard_count;
        }
        if (b.n > 0) {
            if (c->greedy) rc = generate(c, m, &b, 1, 0.0f, b.greedy, err);
            if (rc == 0) rc = generate(c, m, &b, c->G, c->temperature, b.samples, err);
            if (rc == 0) score_batch(c, tok, &b, r);
        }
        eval_batch_clear(&b);
        r->seconds = mmupt_now() - t0;
        if (rc == 0 && c->progress) c->progress(c->ctx, r->visited, shard_total, r);
    }
    eval_batch_free(&b);
    return rc;
}

int eval_run(const struct eval_config *c, struct model *m, struct tok *tok, struct ds_reader *ds,
             struct eval_result *out, struct mmupt_err *err)
{
    if (eval_config_check(c, err)) {
        eval_result_init(out, 1, c->vote, 0, NULL);
        return -1;
    }
    eval_result_init(out, c->G, c->vote, c->n_k, c->k);
    out->temperature = c->temperature;
    out->keep_items = c->keep_items;
    if (!ds_has_answers(ds))
        return mmupt_fail(err, "the split has no answers (no `answer` dataset): eval needs them to grade against");
    int64_t n = ds_count(ds);
    if (n < 1) return mmupt_fail(err, "the split has no items");
    int64_t total = c->limit > 0 && c->limit < n ? c->limit : n;
    struct prompt_builder pb;
    if (open_builder(c, m, tok, &pb, err)) return -1;
    if (run_batches(c, m, tok, &pb, ds, total, out, err)) {
        eval_result_free(out);
        return -1;
    }
    if (c->shard_count == 1 && eval_check_graded(out, err)) {
        eval_result_free(out);
        return -1;
    }
    return 0;
}

int eval_check_graded(const struct eval_result *r, struct mmupt_err *err)
{
    if (r->all.items > 0) return 0;
    return mmupt_fail(err, "none of the %lld item(s) could be graded: %lld without an answer (eval needs answers), "
                           "%lld unreadable or with a prompt that could not be built",
                      (long long)r->visited, (long long)r->skipped_no_answer, (long long)r->skipped_bad);
}
