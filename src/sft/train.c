/* The supervised training loop: draw a batch of examples with the dataset cursor, one forward and
 * backward over the packed batch, one AdamW step (see sft.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mmupt/loader.h"
#include "mmupt/optim.h"
#include "mmupt/sft.h"

void sft_config_default(struct sft_config *c)
{
    *c = (struct sft_config){.steps = 800, .batch = 16, .lr = 2e-3, .warmup_ratio = 0.05, .weight_decay = 0.01,
                             .clip_grad_norm = 1.0, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .seed = 1,
                             .max_prompt = 0, .max_target = 512, .log_every = 10};
    struct img_proc_config ic;
    img_proc_config_default(&ic);
    c->min_pixels = ic.min_pixels;
    c->max_pixels = ic.max_pixels;
}

int sft_config_check(const struct sft_config *c, struct mmupt_err *err)
{
    if (c->steps < 1 || c->steps > 100000000) return mmupt_fail(err, "--steps must be in [1, 1e8], not %lld", (long long)c->steps);
    if (c->batch < 1 || c->batch > 65536) return mmupt_fail(err, "--batch must be in [1, 65536], not %d", c->batch);
    if (!(c->lr > 0 && c->lr <= 1)) return mmupt_fail(err, "--lr must be in (0, 1], not %g", c->lr);
    if (!(c->warmup_ratio >= 0 && c->warmup_ratio <= 1))
        return mmupt_fail(err, "--warmup-ratio must be in [0, 1], not %g", c->warmup_ratio);
    if (!(c->weight_decay >= 0 && c->weight_decay <= 1))
        return mmupt_fail(err, "--weight-decay must be in [0, 1], not %g", c->weight_decay);
    if (!(c->clip_grad_norm >= 0 && c->clip_grad_norm < INFINITY))
        return mmupt_fail(err, "the gradient clip must be >= 0, not %g", c->clip_grad_norm);
    if (!(c->beta1 >= 0 && c->beta1 < 1 && c->beta2 >= 0 && c->beta2 < 1 && c->eps > 0))
        return mmupt_fail(err, "Adam's betas must be in [0, 1) and eps > 0");
    if (c->max_prompt < 0 || c->max_prompt > (1 << 24))
        return mmupt_fail(err, "--max-prompt must be in [0, 16777216], not %lld", (long long)c->max_prompt);
    if (c->max_target < 2 || c->max_target > (1 << 24))
        return mmupt_fail(err, "the target limit must be in [2, 16777216], not %lld", (long long)c->max_target);
    if (c->min_pixels < 1 || c->max_pixels < c->min_pixels || c->max_pixels > 1000000000)
        return mmupt_fail(err, "--min-pixels/--max-pixels must satisfy 1 <= min <= max <= 1e9");
    if (c->log_every < 0) return mmupt_fail(err, "--log-every must be >= 0, not %d", c->log_every);
    return 0;
}

/* Where examples come from: the prompt stream (cursor, prompt building, bad-item skipping) plus the
 * target of each item. */
struct sft_source {
    struct prompt_builder pb;
    struct prompt_loader loader;
    struct tok *tok;
    int32_t stop_id;
    int64_t max_target;
    const struct log_ctx *lg;
    int64_t skipped; /* items whose answer could not be a target */
};

static int source_init(struct sft_source *s, struct model *m, struct tok *tok, struct ds_reader *ds,
                       const struct sft_config *c, const struct log_ctx *lg, struct mmupt_err *err)
{
    memset(s, 0, sizeof *s);
    s->tok = tok;
    s->max_target = c->max_target;
    s->lg = lg;
    s->stop_id = tok_id(tok, "<|im_end|>");
    if (s->stop_id < 0) return mmupt_fail(err, "the tokenizer has no <|im_end|> token to end the targets with");
    if (s->stop_id >= m->cfg.text.vocab)
        return mmupt_fail(err, "<|im_end|> is token %d, outside the model's vocabulary of %lld", s->stop_id,
                          (long long)m->cfg.text.vocab);
    struct img_proc_config ic;
    prompt_image_config(&ic, &m->cfg, c->min_pixels, c->max_pixels);
    if (prompt_builder_init(&s->pb, tok, "", &ic, c->max_prompt, err)) return -1;
    struct ds_cursor cur;
    ds_cursor_init(&cur, c->seed, 1, 0, 1);
    prompt_loader_init(&s->loader, ds, &s->pb, lg, &cur, 1);
    return 0;
}

/* The next usable item as an example. Items with a bad prompt are skipped by the loader; items
 * whose answer is missing, empty or too long are skipped here, both with a warning. */
static int source_next(struct sft_source *s, struct sft_example *ex, struct mmupt_err *err)
{
    int64_t n = ds_count(s->loader.ds);
    memset(ex, 0, sizeof *ex);
    for (int64_t tries = 0; tries <= n; tries++) {
        struct ds_item item = {0};
        if (prompt_loader_next(&s->loader, &ex->prompt, &item, err)) return -1;
        int rc = sft_target(s->tok, item.answer, s->stop_id, s->max_target, &ex->target, &ex->n_target, err);
        if (rc) {
            mmupt_err_prefix(err, "item %lld (id '%.100s')", (long long)item.index, item.id);
            s->skipped++;
            if (s->lg) log_warn(s->lg, "skipping %s (%lld skipped so far)", err->msg, (long long)s->skipped);
            prompt_item_free(&ex->prompt);
        }
        ds_item_free(&item);
        if (rc == 0) return 0;
    }
    char last[MMUPT_ERR_MSG_MAX];
    memcpy(last, err->msg, sizeof last);
    return mmupt_fail(err, "%lld consecutive dataset items were unusable; the last: %.700s", (long long)(n + 1), last);
}

static int next_batch(struct sft_source *s, int n, int64_t patch_dim, struct sft_batch *b, struct mmupt_err *err)
{
    struct sft_example *ex = mmupt_xcalloc((size_t)n, sizeof *ex);
    int got = 0, rc = 0;
    while (got < n && (rc = source_next(s, &ex[got], err)) == 0) got++;
    if (rc == 0) sft_batch_pack(b, ex, n, patch_dim);
    for (int k = 0; k < got; k++) sft_example_free(&ex[k]);
    free(ex);
    return rc;
}

/* Progress since the last line: steps and their summed loss, packed tokens, wall time. */
struct sft_window {
    int64_t steps, tokens;
    double loss, t0;
};

static void progress(const struct log_ctx *lg, const struct sft_config *c, int64_t step, struct sft_window *w,
                     double t_start, double lr, double norm)
{
    double now = mmupt_now(), dt = now - w->t0;
    double eta = (now - t_start) / (double)step * (double)(c->steps - step);
    log_info(lg, "sft step %lld/%lld  loss %.4f  lr %.3g  grad-norm %.3g  %.0f tok/s  %.3f s/step  eta %.0f s",
             (long long)step, (long long)c->steps, w->loss / (double)w->steps, lr, norm,
             dt > 0 ? (double)w->tokens / dt : 0.0, dt / (double)w->steps, eta);
    *w = (struct sft_window){.t0 = now};
}

static int check_inputs(const struct model *m, struct ds_reader *ds, const struct sft_config *c,
                        const struct comm *comm, struct mmupt_err *err)
{
    if (sft_config_check(c, err)) return -1;
    if (comm->size != 1)
        return mmupt_fail(err, "sft runs on one process for now, not %d: start it without mpirun (or -np 1)",
                          comm->size);
    if (!ds_has_answers(ds))
        return mmupt_fail(err, "the dataset has no `answer` field: sft needs the target responses there");
    if (ds_count(ds) < 1) return mmupt_fail(err, "the dataset has no items");
    if (!m->params || !m->grads) return mmupt_fail(err, "the model has no parameters");
    return 0;
}

int sft_train(struct model *m, struct tok *tok, struct ds_reader *ds, const struct sft_config *c,
              const struct comm *comm, const struct log_ctx *lg, struct sft_stats *st, struct mmupt_err *err)
{
    double *losses = st->losses;
    memset(st, 0, sizeof *st);
    st->losses = losses;
    struct sft_source src;
    if (check_inputs(m, ds, c, comm, err) || source_init(&src, m, tok, ds, c, lg, err)) return -1;
    struct optim opt;
    optim_init(&opt, (size_t)m->spec.total, comm->rank, comm->size);
    struct optim_config oc = {.lr = c->lr, .beta1 = c->beta1, .beta2 = c->beta2, .eps = c->eps,
                              .weight_decay = c->weight_decay, .clip_grad_norm = c->clip_grad_norm};
    int64_t tail_from = c->steps - (c->steps / 10 > 1 ? c->steps / 10 : 1), patch_dim = model_patch_dim(&m->cfg);
    double t_start = mmupt_now(), tail = 0.0;
    struct sft_window w = {.t0 = t_start};
    int rc = 0;
    for (int64_t step = 0; step < c->steps && rc == 0; step++) {
        struct sft_batch b;
        double loss = 0.0, norm = 0.0;
        if ((rc = next_batch(&src, c->batch, patch_dim, &b, err)) != 0) break;
        model_zero_grad(m);
        rc = sft_batch_loss(m, &b, 1, &loss, err);
        double lr = optim_lr(c->lr, 1, c->warmup_ratio, step, c->steps);
        if (rc == 0) {
            int res = optim_step(&opt, comm, &oc, lr, m->params, m->grads, &norm);
            if (res < 0) rc = mmupt_fail(err, "step %lld: optimizer collective failed", (long long)step + 1);
            st->skipped_updates += res == 1;
            if (res == 1 && lg) log_warn(lg, "sft step %lld: non-finite gradient, update skipped", (long long)step + 1);
        }
        if (rc == 0) {
            st->steps++;
            st->tokens += b.n_tokens;
            if (step == 0) st->first_loss = loss;
            if (step >= tail_from) tail += loss;
            if (st->losses) st->losses[step] = loss;
            w.steps++, w.tokens += b.n_tokens, w.loss += loss;
            if (lg && c->log_every && ((step + 1) % c->log_every == 0 || step + 1 == c->steps))
                progress(lg, c, step + 1, &w, t_start, lr, norm);
        }
        sft_batch_free(&b);
    }
    st->wall_s = mmupt_now() - t_start;
    st->tail_loss = tail / (double)(c->steps - tail_from);
    st->skipped_items = src.loader.skipped + src.skipped;
    if (rc == 0 && lg)
        log_info(lg, "sft done: %lld steps in %.1f s (%.3f s/step); loss %.4f at step 1, %.4f over the last %lld "
                     "steps; %lld item(s) skipped",
                 (long long)st->steps, st->wall_s, st->wall_s / (double)st->steps, st->first_loss, st->tail_loss,
                 (long long)(c->steps - tail_from), (long long)st->skipped_items);
    optim_free(&opt);
    return rc;
}
