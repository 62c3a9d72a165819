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
    c->G = 8;
    c->temperature = 1.0f;
    c->top_p = 1.0f;
    c->max_new = 256;
    c->seed = 1;
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

/* One batch of items and their responses: greedy[i], samples[i * G + g]. */
struct batch {
    int n, G;
    struct ds_item *item;
    struct prompt_item *prompt;
    int64_t **ids64;
    int *len;
    struct rollout_sample *greedy, *samples;
};

static void batch_alloc(struct batch *b, int cap, int G)
{
    memset(b, 0, sizeof *b);
    b->G = G;
    b->item = mmupt_xcalloc((size_t)cap, sizeof *b->item);
    b->prompt = mmupt_xcalloc((size_t)cap, sizeof *b->prompt);
    b->ids64 = mmupt_xcalloc((size_t)cap, sizeof *b->ids64);
    b->len = mmupt_xcalloc((size_t)cap, sizeof *b->len);
    b->greedy = mmupt_xcalloc((size_t)cap, sizeof *b->greedy);
    b->samples = mmupt_xcalloc((size_t)cap * (size_t)G, sizeof *b->samples);
}

/* Free the batch's items and responses, keeping the arrays for the next batch. */
static void batch_clear(struct batch *b)
{
    for (int i = 0; i < b->n; i++) {
        ds_item_free(&b->item[i]);
        prompt_item_free(&b->prompt[i]);
        free(b->ids64[i]);
        b->ids64[i] = NULL;
        free(b->greedy[i].ids);
        for (int g = 0; g < b->G; g++) free(b->samples[(size_t)i * b->G + g].ids);
    }
    memset(b->greedy, 0, (size_t)b->n * sizeof *b->greedy);
    memset(b->samples, 0, (size_t)b->n * (size_t)b->G * sizeof *b->samples);
    b->n = 0;
}

static void batch_free(struct batch *b)
{
    batch_clear(b);
    free(b->item);
    free(b->prompt);
    free(b->ids64);
    free(b->len);
    free(b->greedy);
    free(b->samples);
}

/* Read item `index` into the batch if it can be graded; count and report it otherwise. */
static void load_item(const struct eval_config *c, struct prompt_builder *pb, struct ds_reader *ds, int64_t index,
                      struct batch *b, struct eval_result *r)
{
    struct ds_item *it = &b->item[b->n];
    struct prompt_item *p = &b->prompt[b->n];
    struct mmupt_err err;
    r->visited++;
    if (ds_read(ds, index, it, &err)) {
        r->skipped_bad++;
        if (c->lg) log_warn(c->lg, "skipping item %lld: %s", (long long)index, err.msg);
        return;
    }
    if (!it->answer) {
        r->skipped_no_answer++;
        if (c->lg) log_debug(c->lg, "skipping item %lld (id '%.100s'): it has no answer", (long long)index, it->id);
        ds_item_free(it);
        return;
    }
    if (prompt_build(pb, it->problem, (const uint8_t *const *)it->image, it->image_len, it->n_images, p, &err)) {
        r->skipped_bad++;
        if (c->lg) log_warn(c->lg, "skipping item %lld (id '%.100s'): %s", (long long)index, it->id, err.msg);
        ds_item_free(it);
        return;
    }
    b->len[b->n] = (int)p->n_ids;
    b->ids64[b->n] = mmupt_xmalloc(p->n_ids * sizeof **b->ids64);
    for (size_t k = 0; k < p->n_ids; k++) b->ids64[b->n][k] = p->ids[k];
    b->n++;
}

struct collect {
    struct rollout_sample *dst;
    int G;
};

static void collect_sample(void *ctx, struct rollout_sample *s)
{
    struct collect *col = ctx;
    free(s->logp); /* eval needs the tokens only */
    s->logp = NULL;
    col->dst[s->question * col->G + s->sample] = *s;
}

/* Generate `G` responses per item of the batch at `temperature` (0: greedy) into dst. */
static int generate(const struct eval_config *c, struct model *m, struct batch *b, int G, float temperature,
                    struct rollout_sample *dst, struct mmupt_err *err)
{
    struct rollout_question *q = mmupt_xcalloc((size_t)b->n, sizeof *q);
    int max_prompt = 1;
    for (int i = 0; i < b->n; i++) {
        /* The item index keys the sampler, so a sample's draws do not depend on the batching. */
        q[i] = (struct rollout_question){.id = b->item[i].index,
                                         .prompt = {.n_seq = 1, .seq_len = &b->len[i], .tokens = b->ids64[i],
                                                    .n_images = b->prompt[i].n_images, .grid_thw = b->prompt[i].grid,
                                                    .pixels = b->prompt[i].pixels}};
        if (b->len[i] > max_prompt) max_prompt = b->len[i];
    }
    /* As in training: <|image_pad|> gets MM-UPT's bias, and the video token (no video input here)
     * is banned, so a response never contains a token the prompt builder would refuse. */
    int32_t bias_id[2] = {(int32_t)m->cfg.image_token_id, (int32_t)m->cfg.video_token_id};
    float bias[2] = {c->image_pad_bias, -INFINITY};
    int total = b->n * G;
    struct rollout_config rc = {
        .G = G, .max_new = c->max_new, .n_slots = total < 64 ? total : 64, .max_prompt = max_prompt, .seed = c->seed,
        .sampling = {.temperature = temperature, .top_p = temperature > 0 ? c->top_p : 1.0f,
                     .top_k = temperature > 0 ? c->top_k : 0, .bias_ids = bias_id, .bias = bias,
                     .n_bias = m->cfg.has_vision ? 2 : 0},
        .stop_ids = c->stop_ids, .n_stop = c->n_stop,
    };
    struct collect col = {.dst = dst, .G = G};
    int rc_out = rollout_run(m, &rc, q, b->n, collect_sample, &col, err);
    free(q);
    return rc_out;
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

static void score_batch(const struct eval_config *c, const struct tok *tok, const struct batch *b, struct eval_result *r)
{
    int G = b->G;
    struct eval_response greedy, *samples = mmupt_xcalloc((size_t)G, sizeof *samples);
    char *gtext, **stext = mmupt_xcalloc((size_t)G, sizeof *stext);
    for (int i = 0; i < b->n; i++) {
        to_response(tok, &b->greedy[i], &greedy, &gtext);
        for (int g = 0; g < G; g++) to_response(tok, &b->samples[(size_t)i * G + g], &samples[g], &stext[g]);
        eval_score_item(r, b->item[i].source, b->item[i].answer, &greedy, samples);
        if (c->on_item) c->on_item(c->ctx, &b->item[i], &greedy, samples, G);
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
    struct batch b;
    batch_alloc(&b, c->batch, c->G);
    int rc = 0;
    for (int64_t next = 0; next < total && rc == 0;) {
        while (b.n < c->batch && next < total) load_item(c, pb, ds, next++, &b, r);
        if (b.n > 0) {
            rc = generate(c, m, &b, 1, 0.0f, b.greedy, err);
            if (rc == 0) rc = generate(c, m, &b, c->G, c->temperature, b.samples, err);
            if (rc == 0) score_batch(c, tok, &b, r);
        }
        batch_clear(&b);
        r->seconds = mmupt_now() - t0;
        if (rc == 0 && c->progress) c->progress(c->ctx, r->visited, total, r);
    }
    batch_free(&b);
    return rc;
}

int eval_run(const struct eval_config *c, struct model *m, struct tok *tok, struct ds_reader *ds,
             struct eval_result *out, struct mmupt_err *err)
{
    eval_result_init(out, c->G, c->vote);
    out->temperature = c->temperature;
    if (eval_config_check(c, err)) return -1;
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
    if (out->all.items == 0) {
        long long visited = out->visited, no_answer = out->skipped_no_answer, bad = out->skipped_bad;
        eval_result_free(out);
        return mmupt_fail(err, "none of the %lld item(s) could be graded: %lld without an answer (eval needs answers), "
                               "%lld unreadable or with a prompt that could not be built", visited, no_answer, bad);
    }
    return 0;
}
