/* synth_run: walk this rank's share of the split in batches of items; per batch one rollout with n
 * samples per item, then every response through the filter chain (filter.c) in sample order. Items
 * are judged independently of each other, and the sampler's draws are keyed by the item index, so
 * the kept questions do not depend on the batch size or on how many ranks share the split. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mmupt/eval.h"
#include "mmupt/prompt.h"
#include "mmupt/rollout.h"
#include "mmupt/synth.h"

static const char direct_prompt[] = SYNTH_PROMPT_DIRECT;
static const char in_context_prompt[] = SYNTH_PROMPT_IN_CONTEXT;
static const char marker[] = "<image>";

const char *synth_mode_name(enum synth_mode m)
{
    return m == SYNTH_IN_CONTEXT ? "in-context" : "direct";
}

int synth_parse_mode(const char *s, enum synth_mode *out)
{
    if (strcmp(s, "direct") == 0) *out = SYNTH_DIRECT;
    else if (strcmp(s, "in-context") == 0) *out = SYNTH_IN_CONTEXT;
    else return -1;
    return 0;
}

const char *synth_default_prompt(enum synth_mode m)
{
    return m == SYNTH_IN_CONTEXT ? in_context_prompt : direct_prompt;
}

void synth_config_default(struct synth_config *c)
{
    memset(c, 0, sizeof *c);
    c->mode = SYNTH_DIRECT;
    c->n = 4;
    c->filter = (struct synth_filter){.min_chars = 10, .max_chars = 400, .require_question = 1, .max_overlap = 0.7,
                                      .keep = 1};
    c->temperature = 1.0f;
    c->top_p = 1.0f;
    c->max_new = 128;
    c->seed = 1;
    c->batch = 8;
    c->image_pad_bias = -100.0f;
    c->shard_count = 1;
}

int synth_config_check(const struct synth_config *c, struct mmupt_err *err)
{
    const struct synth_filter *f = &c->filter;
    if (c->mode != SYNTH_DIRECT && c->mode != SYNTH_IN_CONTEXT) return mmupt_fail(err, "unknown mode %d", (int)c->mode);
    if (c->n < 1 || c->n > SYNTH_MAX_N)
        return mmupt_fail(err, "candidates per item (n) must be in [1, %d], got %d", SYNTH_MAX_N, c->n);
    if (f->keep < 1 || f->keep > c->n)
        return mmupt_fail(err, "questions kept per item (keep) must be in [1, n = %d], got %d", c->n, f->keep);
    if (f->min_chars < 0 || f->max_chars < 1 || f->max_chars > SYNTH_MAX_CHARS || f->min_chars > f->max_chars)
        return mmupt_fail(err, "length bounds must satisfy 0 <= min_chars <= max_chars <= %d, got %d and %d",
                          SYNTH_MAX_CHARS, f->min_chars, f->max_chars);
    if (!(f->max_overlap >= 0.0) || !isfinite(f->max_overlap))
        return mmupt_fail(err, "max_overlap must be a finite number >= 0 (above 1 turns the check off), got %g",
                          f->max_overlap);
    if (!(c->temperature >= 0.0f) || !isfinite(c->temperature))
        return mmupt_fail(err, "the temperature must be >= 0 and finite, got %g", (double)c->temperature);
    if (!(c->top_p > 0.0f && c->top_p <= 1.0f)) return mmupt_fail(err, "top_p must be in (0, 1], got %g", (double)c->top_p);
    if (c->max_new < 1 || c->max_new > 65536)
        return mmupt_fail(err, "max new tokens must be in [1, 65536], got %d", c->max_new);
    if (c->limit < 0) return mmupt_fail(err, "the item limit must be >= 0 (0: all)");
    if (c->batch < 1 || c->batch > 4096) return mmupt_fail(err, "the batch must be in [1, 4096] items, got %d", c->batch);
    if (c->shard_count < 1 || c->shard_rank < 0 || c->shard_rank >= c->shard_count)
        return mmupt_fail(err, "shard %d of %d does not exist", c->shard_rank, c->shard_count);
    if (c->n_stop < 0 || (c->n_stop > 0 && !c->stop_ids)) return mmupt_fail(err, "bad stop token list");
    if (c->prompt) {
        if (strlen(c->prompt) > SYNTH_MAX_PROMPT)
            return mmupt_fail(err, "the prompt is longer than %d bytes", SYNTH_MAX_PROMPT);
        if (!c->prompt[strspn(c->prompt, " \t\r\n")]) return mmupt_fail(err, "the prompt is empty");
        if (strstr(c->prompt, marker))
            return mmupt_fail(err, "the prompt holds an <image> marker; the item's images are placed before it");
    }
    return 0;
}

/* ---- text ---- */

struct buf {
    char *p;
    size_t n, cap;
};

static void put(struct buf *b, const char *s, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        b->cap = 2 * (b->n + n + 1) + 64;
        b->p = realloc(b->p, b->cap);
        if (!b->p) MMUPT_DIE("out of memory building a prompt (%zu bytes)", b->cap);
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

/* s without its <image> markers and surrounding white space (the question as text). */
static void put_without_markers(struct buf *b, const char *s)
{
    size_t start = b->n;
    for (const char *p = s;;) {
        const char *m = strstr(p, marker);
        size_t n = m ? (size_t)(m - p) : strlen(p);
        put(b, p, n);
        if (!m) break;
        p = m + sizeof marker - 1;
    }
    size_t lead = strspn(b->p + start, " \t\r\n");
    memmove(b->p + start, b->p + start + lead, b->n - start - lead + 1);
    b->n -= lead;
    while (b->n > start && strchr(" \t\r\n", b->p[b->n - 1])) b->p[--b->n] = '\0';
}

static void put_markers(struct buf *b, int n_images)
{
    put(b, "", 0);
    for (int i = 0; i < n_images; i++) put(b, marker, sizeof marker - 1);
}

char *synth_build_request(const char *tmpl, const char *question, const char *answer, int n_images)
{
    struct buf b = {0};
    put_markers(&b, n_images);
    for (const char *p = tmpl; *p;) {
        if (strncmp(p, "{question}", 10) == 0) {
            put_without_markers(&b, question ? question : "");
            p += 10;
        } else if (strncmp(p, "{answer}", 8) == 0) {
            put_without_markers(&b, answer ? answer : "");
            p += 8;
        } else {
            put(&b, p++, 1);
        }
    }
    return b.p;
}

char *synth_new_problem(const char *question, int n_images)
{
    struct buf b = {0};
    put_markers(&b, n_images);
    put(&b, question, strlen(question));
    return b.p;
}

static char *without_markers(const char *s)
{
    struct buf b = {0};
    put(&b, "", 0);
    put_without_markers(&b, s);
    return b.p;
}

/* ---- results ---- */

void synth_result_free(struct synth_result *r)
{
    for (int64_t i = 0; i < r->n; i++) free(r->q[i].text);
    free(r->q);
    memset(r, 0, sizeof *r);
}

static void add_question(struct synth_result *r, int64_t item, int k, int sample, const char *text)
{
    if (r->n == r->cap) {
        r->cap = r->cap ? 2 * r->cap : 64;
        r->q = realloc(r->q, (size_t)r->cap * sizeof *r->q);
        if (!r->q) MMUPT_DIE("out of memory keeping %lld questions", (long long)r->cap);
    }
    size_t n = strlen(text) + 1;
    char *t = mmupt_xmalloc(n);
    memcpy(t, text, n);
    r->q[r->n++] = (struct synth_question){.item = item, .k = k, .sample = sample, .text = t};
}

/* ---- one batch ---- */

/* Read item `index` and build its request into the batch, or count why it is skipped. */
static void load_item(const struct synth_config *c, const char *tmpl, struct prompt_builder *pb, struct ds_reader *ds,
                      int64_t index, struct eval_batch *b, struct synth_counts *k)
{
    struct ds_item *it = &b->item[b->n];
    k->items++;
    if (eval_batch_read(b, ds, index, c->lg)) {
        k->skipped_bad++;
        return;
    }
    const char *why = NULL;
    if (it->n_images == 0) {
        k->skipped_no_image++;
        why = "it has no image to ask about";
    } else if (c->mode == SYNTH_IN_CONTEXT && strstr(tmpl, "{answer}") && !it->answer) {
        k->skipped_no_answer++;
        why = "it has no answer for the prompt's {answer}";
    }
    if (why) {
        if (c->lg) log_debug(c->lg, "skipping item %lld (id '%.100s'): %s", (long long)index, it->id, why);
        ds_item_free(it);
        return;
    }
    char *request = synth_build_request(tmpl, it->problem, it->answer, it->n_images);
    if (eval_batch_add(b, pb, request, c->lg)) k->skipped_bad++;
    free(request);
}

static int generate(const struct synth_config *c, struct model *m, const struct eval_batch *b, struct mmupt_err *err)
{
    /* Temperature 0 decodes greedily (the n candidates are then equal); top_k is not offered. */
    struct eval_decode d = {.G = c->n, .temperature = c->temperature, .top_p = c->top_p, .max_new = c->max_new,
                            .seed = c->seed, .image_pad_bias = c->image_pad_bias, .stop_ids = c->stop_ids,
                            .n_stop = c->n_stop, .dev = c->dev};
    return eval_batch_generate(m, b, &d, b->samples, err);
}

/* Every candidate of every item through the filters, in sample order. */
static void judge_batch(const struct synth_config *c, const struct tok *tok, const struct eval_batch *b,
                        struct synth_result *r)
{
    for (int i = 0; i < b->n; i++) {
        const struct ds_item *it = &b->item[i];
        char *original = c->mode == SYNTH_IN_CONTEXT ? without_markers(it->problem) : NULL;
        struct synth_item_state st = {.original = original, .answer = c->mode == SYNTH_IN_CONTEXT ? it->answer : NULL};
        r->counts.used++;
        for (int g = 0; g < b->G; g++) {
            const struct rollout_sample *s = &b->samples[(size_t)i * b->G + g];
            struct mmupt_err err;
            char *text = NULL;
            size_t len = 0;
            if (tok_decode(tok, s->ids, (size_t)s->n, 1, &text, &len, &err)) text = NULL;
            enum synth_verdict v = synth_judge(&c->filter, &st, text);
            r->counts.candidates++;
            r->counts.verdicts[v]++;
            r->counts.tokens += s->n;
            if (v == SYNTH_KEEP) add_question(r, it->index, st.n_kept - 1, g, st.kept[st.n_kept - 1]);
            free(text);
        }
        synth_item_state_free(&st);
        free(original);
    }
}

static int run_batches(const struct synth_config *c, const char *tmpl, struct model *m, struct tok *tok,
                       struct prompt_builder *pb, struct ds_reader *ds, int64_t total, struct synth_result *r,
                       struct mmupt_err *err)
{
    double t0 = mmupt_now();
    struct eval_batch b;
    eval_batch_alloc(&b, c->batch, c->n, 0);
    int rc = 0;
    int64_t P = c->shard_count, mine = total > c->shard_rank ? (total - c->shard_rank + P - 1) / P : 0;
    /* Strided shards, as eval: item i belongs to rank i % P. */
    for (int64_t next = c->shard_rank; next < total && rc == 0;) {
        while (b.n < c->batch && next < total) {
            load_item(c, tmpl, pb, ds, next, &b, &r->counts);
            next += P;
        }
        if (b.n > 0) {
            rc = generate(c, m, &b, err);
            if (rc == 0) judge_batch(c, tok, &b, r);
        }
        eval_batch_clear(&b);
        r->seconds = mmupt_now() - t0;
        if (rc == 0 && c->progress) c->progress(c->ctx, r->counts.items, mine, r);
    }
    eval_batch_free(&b);
    return rc;
}

int synth_run(const struct synth_config *c, struct model *m, struct tok *tok, struct ds_reader *ds,
              struct synth_result *out, struct mmupt_err *err)
{
    memset(out, 0, sizeof *out);
    if (synth_config_check(c, err)) return -1;
    int64_t n = ds_count(ds);
    if (n < 1) return mmupt_fail(err, "the split has no items");
    int64_t total = c->limit > 0 && c->limit < n ? c->limit : n;
    const char *tmpl = c->prompt ? c->prompt : synth_default_prompt(c->mode);
    struct img_proc_config ic;
    prompt_image_config(&ic, &m->cfg, c->min_pixels, c->max_pixels);
    struct prompt_builder pb;
    /* No format prompt: MM-UPT's asks for a \boxed{} answer, and here the model writes a question. */
    if (prompt_builder_init(&pb, tok, "", &ic, 0, err)) return -1;
    if (run_batches(c, tmpl, m, tok, &pb, ds, total, out, err)) {
        synth_result_free(out);
        return -1;
    }
    return 0;
}
