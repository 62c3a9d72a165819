/* The rollout engine (see rollout.h): the next few questions' prompts are prefilled together, in one
 * forward pass, into prefix slots; samples copy their question's prefix into free decode slots,
 * decode together, and leave as soon as they finish. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mmupt/json.h"
#include "mmupt/kernels.h"

#include "mmupt/rollout.h"

struct slot {
    int used;
    int64_t q;
    int sample, step;
    int64_t next;     /* the last sampled token, fed to the next decode step */
    int32_t *ids;
    float *logp;
};

struct engine {
    struct model *m;
    const struct rollout_config *rc;
    const struct rollout_question *q;
    struct model_kv kv;
    struct slot *slots;
    int n_prefix;      /* prefix slots: KV slots n_slots .. n_slots + n_prefix - 1 */
    int64_t pf_q0;     /* questions pf_q0 .. pf_q0 + pf_n - 1 are prefilled, q in slot n_slots + q - pf_q0 */
    int pf_n;
    float *prompt_logits; /* [n_prefix, vocab]: their last positions' logits (host; device: NULL) */
    char *scratch;     /* one sampler workspace per slot, so slots draw in parallel (host; device: NULL) */
    size_t scratch_size;
    int64_t next_q;    /* the next (question, sample) to start */
    int next_s;
    rollout_emit_fn emit;
    void *ctx;
    struct model_dev *dev; /* NULL: the CPU model */
    float *dev_logits;     /* the device's [n_slots, vocab] of a decode step */
    int32_t *dev_draws;    /* ... and its draws: n tokens, then their n log-probs (one download) */
    float *dev_prompt_logits; /* the device's [n_prefix, vocab] prompt logits (prompt_logits' twin) */
};

/* The model calls of the engine, on the CPU model or its device copy (rc->dev). */
static void eng_kv_init(struct engine *e, int n_slots, int max_len)
{
    if (e->dev) model_dev_kv_init(&e->kv, e->dev, n_slots, max_len);
    else model_kv_init(&e->kv, e->m, n_slots, max_len);
}

static void eng_kv_free(struct engine *e)
{
    if (e->dev) model_dev_kv_free(&e->kv, e->dev);
    else model_kv_free(&e->kv);
}

static void eng_kv_copy(struct engine *e, int from, int to)
{
    if (e->dev) model_dev_kv_copy(&e->kv, e->dev, from, to);
    else model_kv_copy(&e->kv, from, to);
}

/* Prefill the packed prompts into slots; their last positions' logits land in e->prompt_logits (on
 * the device: e->dev_prompt_logits, drawn from there). */
static int eng_prefill(struct engine *e, const int *slots, const struct model_batch *prompts, struct mmupt_err *err)
{
    const float *last;
    size_t bytes = (size_t)prompts->n_seq * (size_t)e->m->cfg.text.vocab * sizeof(float);
    if (e->dev) {
        if (model_dev_prefill_many(e->dev, &e->kv, slots, prompts, &last, err)) return -1;
        gpu_copy(e->dev->g, e->dev_prompt_logits, last, bytes);
        return 0;
    }
    if (model_prefill_many(e->m, &e->kv, slots, prompts, &last, err)) return -1;
    memcpy(e->prompt_logits, last, bytes);
    return 0;
}

/* One decode step: the logits land in `logits` (host, [n, vocab]) on the CPU model, in
 * e->dev_logits on the device (sampled there, eng_sample_dev). */
static int eng_decode(struct engine *e, const int *ids, const int64_t *toks, int n, float *logits,
                      struct mmupt_err *err)
{
    if (!e->dev) return model_decode(e->m, &e->kv, ids, toks, n, logits, err);
    return model_dev_decode(e->dev, &e->kv, ids, toks, n, e->dev_logits, err);
}

/* The device's draws for the n decoded slots: the same keyed uniforms as pick(), the sampler twin on
 * the device logits, and only tokens and log-probs come back. */
static void eng_sample_dev(struct engine *e, const int *ids, int n, int32_t *tok, float *lp)
{
    const struct rollout_config *rc = e->rc;
    const struct gpu_ctx *g = e->dev->g;
    double *u = mmupt_xmalloc((size_t)n * sizeof *u);
    for (int k = 0; k < n; k++) {
        const struct slot *s = &e->slots[ids[k]];
        u[k] = sample_rng_uniform(rc->seed, (uint64_t)e->q[s->q].id, (uint64_t)s->sample, (uint64_t)s->step);
    }
    float *dev_lp = (float *)(e->dev_draws + n);
    sample_tokens_cuda(e->dev_draws, dev_lp, e->dev_logits, n, (int)e->m->cfg.text.vocab, &rc->sampling, u,
                       g->stream);
    uint32_t *both = mmupt_xmalloc(2 * (size_t)n * sizeof *both);
    gpu_download(g, both, e->dev_draws, 2 * (size_t)n * sizeof *both);
    memcpy(tok, both, (size_t)n * sizeof *tok);
    memcpy(lp, both + n, (size_t)n * sizeof *lp);
    free(both);
    free(u);
}

static int is_stop(const struct rollout_config *rc, int32_t tok)
{
    for (int i = 0; i < rc->n_stop; i++)
        if (rc->stop_ids[i] == tok) return 1;
    return 0;
}

/* Draw the next token of slot s (its index k) from logits; -1 for logits the sampler refuses. */
static int32_t pick(struct engine *e, int k, const struct slot *s, const float *logits, float *lp)
{
    const struct rollout_config *rc = e->rc;
    double u = sample_rng_uniform(rc->seed, (uint64_t)e->q[s->q].id, (uint64_t)s->sample, (uint64_t)s->step);
    return sample_token(logits, (int)e->m->cfg.text.vocab, &rc->sampling, u, e->scratch + (size_t)k * e->scratch_size, lp);
}

/* Record a drawn token; returns 1 when the sample is finished, -1 (err set) for a refused draw. */
static int record(struct engine *e, struct slot *s, int32_t tok, float lp, struct mmupt_err *err)
{
    const struct rollout_config *rc = e->rc;
    if (tok < 0) return mmupt_fail(err, "question %lld sample %d: the logits are not finite", (long long)e->q[s->q].id,
                                   s->sample);
    s->ids[s->step] = tok;
    s->logp[s->step] = lp;
    s->next = tok;
    s->step++;
    if (rc->on_token) rc->on_token(e->ctx, s->q, s->sample, tok);
    return is_stop(rc, tok) || s->step >= rc->max_new;
}

static void finish(struct engine *e, struct slot *s)
{
    struct rollout_sample out = {
        .question = s->q, .sample = s->sample, .ids = s->ids, .logp = s->logp, .n = s->step,
        .finish = is_stop(e->rc, s->ids[s->step - 1]) ? ROLLOUT_STOP : ROLLOUT_LENGTH,
        .policy_version = e->rc->policy_version,
    };
    s->used = 0;
    s->ids = NULL;
    s->logp = NULL;
    e->emit(e->ctx, &out);
}

/* Rollout prompts are prefilled several at a time: one forward pass (and, on a GPU, one set of
 * launches, and GEMMs tall enough to fill the device) for several questions, which costs a prefix slot
 * each in the KV cache. At least ENG_PREFILL_BATCH of them; more where the prompts are short - as many
 * as start every decode slot at once (n_slots / G questions), as long as one forward holds at most
 * ENG_PREFILL_TOKENS tokens (or ENG_PREFILL_BATCH prompts, when those are longer). The 0.5B rollout
 * benchmark's 64 prompts of 128 tokens are one prefill of 8192 tokens, not four of 2048. */
enum { ENG_PREFILL_BATCH = 16, ENG_PREFILL_TOKENS = 8192 };

int rollout_prefill_prompts(const struct rollout_config *rc, int n_questions)
{
    int G = rc->G > 0 ? rc->G : 1, fill = (rc->n_slots + G - 1) / G;
    int fit = rc->max_prompt > 0 ? ENG_PREFILL_TOKENS / rc->max_prompt : ENG_PREFILL_BATCH;
    int n = fill < fit ? fill : fit;
    if (n < ENG_PREFILL_BATCH) n = ENG_PREFILL_BATCH;
    if (rc->prefill_prompts > 0) n = rc->prefill_prompts;
    if (n > n_questions) n = n_questions;
    return n > 0 ? n : 1;
}

/* One packed batch of several single-sequence prompts (their tokens, lengths and images end to end). */
struct packed {
    struct model_batch b;
    int *seq_len;
    int64_t *tokens, *grid;
    float *pixels;
};

/* The patch rows (pixel rows) of a prompt's images: t * h * w each. */
static int64_t image_rows(const struct model_batch *b)
{
    int64_t rows = 0;
    for (int j = 0; j < b->n_images; j++) rows += b->grid_thw[3 * j] * b->grid_thw[3 * j + 1] * b->grid_thw[3 * j + 2];
    return rows;
}

static void pack_prompts(struct packed *p, const struct rollout_question *q, int k, int64_t patch_dim)
{
    int64_t T = 0, n_img = 0, rows = 0;
    for (int i = 0; i < k; i++) {
        T += q[i].prompt.seq_len[0];
        n_img += q[i].prompt.n_images;
        rows += image_rows(&q[i].prompt);
    }
    p->seq_len = mmupt_xmalloc((size_t)k * sizeof *p->seq_len);
    p->tokens = mmupt_xmalloc((size_t)(T > 0 ? T : 1) * sizeof *p->tokens);
    p->grid = mmupt_xmalloc((size_t)(3 * n_img + 1) * sizeof *p->grid);
    p->pixels = mmupt_xmalloc((size_t)(rows * patch_dim + 1) * sizeof *p->pixels);
    int64_t t = 0, g = 0, r = 0;
    for (int i = 0; i < k; i++) {
        const struct model_batch *b = &q[i].prompt;
        int64_t img_rows = image_rows(b);
        p->seq_len[i] = b->seq_len[0];
        memcpy(p->tokens + t, b->tokens, (size_t)b->seq_len[0] * sizeof *p->tokens);
        t += b->seq_len[0];
        if (b->n_images) {
            memcpy(p->grid + g, b->grid_thw, (size_t)(3 * b->n_images) * sizeof *p->grid);
            memcpy(p->pixels + r * patch_dim, b->pixels, (size_t)(img_rows * patch_dim) * sizeof *p->pixels);
        }
        g += 3 * b->n_images;
        r += img_rows;
    }
    p->b = (struct model_batch){.n_seq = k, .seq_len = p->seq_len, .tokens = p->tokens, .n_images = (int)n_img,
                                .grid_thw = p->grid, .pixels = p->pixels};
}

static void packed_free(struct packed *p)
{
    free(p->seq_len);
    free(p->tokens);
    free(p->grid);
    free(p->pixels);
}

/* Prefill the questions from q0 on (up to n_prefix of them) into the prefix slots, keeping their last
 * logits for the samples' first draws. */
static int prefill(struct engine *e, int64_t q0, int n_questions, struct mmupt_err *err)
{
    int k = (int)(n_questions - q0 < e->n_prefix ? n_questions - q0 : e->n_prefix);
    for (int i = 0; i < k; i++) {
        const struct rollout_question *q = &e->q[q0 + i];
        if (q->prompt.n_seq != 1 || q->prompt.seq_len[0] > e->rc->max_prompt)
            return mmupt_fail(err, "question %lld: the prompt must be one sequence of at most %d tokens",
                              (long long)q->id, e->rc->max_prompt);
    }
    int *slots = mmupt_xmalloc((size_t)k * sizeof *slots);
    for (int i = 0; i < k; i++) slots[i] = e->rc->n_slots + i;
    struct packed p;
    pack_prompts(&p, e->q + q0, k, model_patch_dim(&e->m->cfg));
    int rc = eng_prefill(e, slots, &p.b, err);
    packed_free(&p);
    free(slots);
    if (rc) {
        if (k == 1) mmupt_err_prefix(err, "question %lld", (long long)e->q[q0].id);
        else mmupt_err_prefix(err, "questions %lld..%lld", (long long)e->q[q0].id, (long long)e->q[q0 + k - 1].id);
        return -1;
    }
    e->pf_q0 = q0;
    e->pf_n = k;
    return 0;
}

/* Free slots take the next waiting samples from the prefilled block of questions (prefilling the next
 * block when one is used up); returns how many were started, their slots in fresh[], or -1. Stops
 * before a prefill that would replace logits the started samples have not drawn from yet. */
static int assign_slots(struct engine *e, int n_questions, int *fresh, struct mmupt_err *err)
{
    int n = 0;
    for (int i = 0; i < e->rc->n_slots && e->next_q < n_questions; i++) {
        struct slot *s = &e->slots[i];
        if (s->used) continue;
        if (e->next_q >= e->pf_q0 + e->pf_n) {
            if (n > 0) break; /* draw from this block first */
            if (prefill(e, e->next_q, n_questions, err)) return -1;
        }
        eng_kv_copy(e, e->rc->n_slots + (int)(e->next_q - e->pf_q0), i); /* its prefix slot */
        *s = (struct slot){.used = 1, .q = e->next_q, .sample = e->next_s};
        s->ids = mmupt_xmalloc((size_t)e->rc->max_new * sizeof *s->ids);
        s->logp = mmupt_xmalloc((size_t)e->rc->max_new * sizeof *s->logp);
        if (++e->next_s == e->rc->G) {
            e->next_s = 0;
            e->next_q++;
        }
        fresh[n++] = i;
    }
    return n;
}

/* The device's first draws of the n fresh slots: each one's prompt row into the step logits' row k,
 * then the device sampler as a decode step's draws (the same keyed uniforms as pick). On the host this
 * was a 39 MB download of 64 prompts' logits and ~2 ms of exact sampling per sample. */
static void first_draws_dev(struct engine *e, const int *fresh, int n, int32_t *tok, float *lp)
{
    int64_t V = e->m->cfg.text.vocab;
    for (int k = 0; k < n; k++) {
        const struct slot *s = &e->slots[fresh[k]];
        gpu_copy(e->dev->g, e->dev_logits + k * V, e->dev_prompt_logits + (s->q - e->pf_q0) * V,
                 (size_t)V * sizeof(float));
    }
    eng_sample_dev(e, fresh, n, tok, lp);
}

/* Start waiting samples in free slots (continuous batching: called before every step), in rounds:
 * assign free slots, draw the new samples' first tokens from their prompts' logits (on the device,
 * or on the host in parallel: keyed RNG, a workspace per slot; one at a time this was ~2 ms per
 * sample for a 152k vocabulary), record them in slot order; a sample finished by its first token
 * frees its slot for the next round. */
static int fill_slots(struct engine *e, int n_questions, struct mmupt_err *err)
{
    int64_t V = e->m->cfg.text.vocab;
    int n_slots = e->rc->n_slots, rc = 0;
    int *fresh = mmupt_xmalloc((size_t)n_slots * sizeof *fresh);
    int32_t *tok = mmupt_xmalloc((size_t)n_slots * sizeof *tok);
    float *lp = mmupt_xmalloc((size_t)n_slots * sizeof *lp);
    for (;;) {
        int n = assign_slots(e, n_questions, fresh, err);
        if (n <= 0) {
            rc = n;
            break;
        }
        if (e->dev) {
            first_draws_dev(e, fresh, n, tok, lp);
        } else {
#pragma omp parallel for schedule(static) if (n > 1)
            for (int k = 0; k < n; k++) {
                const struct slot *s = &e->slots[fresh[k]];
                tok[k] = pick(e, fresh[k], s, e->prompt_logits + (size_t)(s->q - e->pf_q0) * V, &lp[k]);
            }
        }
        for (int k = 0; k < n && rc == 0; k++) {
            struct slot *s = &e->slots[fresh[k]];
            int done = record(e, s, tok[k], lp[k], err);
            if (done < 0) rc = -1;
            else if (done) finish(e, s);
        }
        if (rc) break;
    }
    free(fresh);
    free(tok);
    free(lp);
    return rc;
}

/* One decode step over every active slot. Returns the number of active slots, or -1. */
static int step(struct engine *e, int *ids, int64_t *toks, float *logits, struct mmupt_err *err)
{
    int n = 0;
    for (int i = 0; i < e->rc->n_slots; i++)
        if (e->slots[i].used) {
            ids[n] = i;
            toks[n++] = e->slots[i].next;
        }
    if (n == 0) return 0;
    if (eng_decode(e, ids, toks, n, logits, err)) return -1;
    int64_t V = e->m->cfg.text.vocab;
    /* Draws are independent per slot (keyed RNG, own workspace): sample them in parallel, then
     * record and emit in slot order so the output does not depend on the thread count. */
    int32_t *tok = mmupt_xmalloc((size_t)n * sizeof *tok);
    float *lp = mmupt_xmalloc((size_t)n * sizeof *lp);
    if (e->dev) {
        eng_sample_dev(e, ids, n, tok, lp);
    } else {
#pragma omp parallel for schedule(static) if (n > 1)
        for (int k = 0; k < n; k++) tok[k] = pick(e, ids[k], &e->slots[ids[k]], logits + k * V, &lp[k]);
    }
    int rc = n;
    for (int k = 0; k < n && rc >= 0; k++) {
        struct slot *s = &e->slots[ids[k]];
        int done = record(e, s, tok[k], lp[k], err);
        if (done < 0) rc = -1;
        else if (done) finish(e, s);
    }
    free(tok);
    free(lp);
    return rc;
}

int rollout_run(struct model *m, const struct rollout_config *rc, const struct rollout_question *q, int n_questions,
                rollout_emit_fn emit, void *ctx, struct mmupt_err *err)
{
    if (rc->G < 1 || rc->max_new < 1 || rc->n_slots < 1 || rc->max_prompt < 1 || rc->prefill_prompts < 0)
        return mmupt_fail(err, "rollout: G, max_new, n_slots and max_prompt must be positive, prefill_prompts not negative");
    struct engine e = {.m = m, .rc = rc, .q = q, .emit = emit, .ctx = ctx, .dev = rc->dev,
                       .n_prefix = rollout_prefill_prompts(rc, n_questions)};
    int64_t V = m->cfg.text.vocab;
    eng_kv_init(&e, rc->n_slots + e.n_prefix, rc->max_prompt + rc->max_new + 1);
    if (e.dev) {
        e.dev_logits = gpu_alloc_floats(e.dev->g, rc->n_slots * V);
        e.dev_draws = gpu_alloc(e.dev->g, 2 * (size_t)rc->n_slots * sizeof *e.dev_draws);
    }
    e.slots = mmupt_xcalloc((size_t)rc->n_slots, sizeof *e.slots);
    if (e.dev) e.dev_prompt_logits = gpu_alloc_floats(e.dev->g, e.n_prefix * V);
    else e.prompt_logits = mmupt_xmalloc((size_t)(e.n_prefix * V) * sizeof(float));
    if (!e.dev) { /* the device engine draws with the device sampler */
        e.scratch_size = sample_scratch_size((int)V);
        e.scratch = mmupt_xmalloc((size_t)rc->n_slots * e.scratch_size);
    }
    int *ids = mmupt_xmalloc((size_t)rc->n_slots * sizeof *ids);
    int64_t *toks = mmupt_xmalloc((size_t)rc->n_slots * sizeof *toks);
    float *logits = e.dev ? NULL : mmupt_xmalloc((size_t)(rc->n_slots * V) * sizeof(float)); /* CPU logits */
    int rc_out = 0;
    for (;;) {
        if (fill_slots(&e, n_questions, err)) {
            rc_out = -1;
            break;
        }
        int active = step(&e, ids, toks, logits, err);
        if (active < 0) {
            rc_out = -1;
            break;
        }
        if (active == 0 && e.next_q >= n_questions) break;
    }
    for (int i = 0; i < rc->n_slots; i++) {
        free(e.slots[i].ids);
        free(e.slots[i].logp);
    }
    free(e.slots);
    free(e.prompt_logits);
    free(e.scratch);
    free(ids);
    free(toks);
    free(logits);
    if (e.dev) {
        gpu_free(e.dev->g, e.dev_logits);
        gpu_free(e.dev->g, e.dev_draws);
        gpu_free(e.dev->g, e.dev_prompt_logits);
    }
    eng_kv_free(&e);
    return rc_out;
}

int rollout_default_stop_ids(const char *model_dir, const struct tok *tok, int32_t *out, int max)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/generation_config.json", model_dir);
    json_t *g;
    struct mmupt_err err;
    int n = 0;
    if (json_parse_file(path, 1 << 20, &g, &err) == 0) {
        const json_t *e = json_object_get(g, "eos_token_id");
        if (json_is_integer(e) && n < max) out[n++] = (int32_t)json_integer_value(e);
        for (size_t i = 0; json_is_array(e) && i < json_array_size(e) && n < max; i++)
            if (json_is_integer(json_array_get(e, i))) out[n++] = (int32_t)json_integer_value(json_array_get(e, i));
        json_decref(g);
    }
    if (n > 0 || !tok) return n;
    static const char *const names[] = {"<|im_end|>", "<|endoftext|>"};
    for (int i = 0; i < 2 && n < max; i++)
        if (tok_id(tok, names[i]) >= 0) out[n++] = tok_id(tok, names[i]);
    return n;
}
