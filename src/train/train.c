/* The MM-UPT training loop, colocated mode (cluster.rollout_ranks = 0): every rank rolls out its share
 * of each step's questions, rewards them by majority vote, and then all ranks learn together with
 * data-parallel GRPO (gradients reduce-scattered, AdamW on ZeRO-1 shards, weights all-gathered).
 * The split mode with dedicated rollout ranks and the ring buffer is not implemented yet. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mmupt/comm.h"
#include "mmupt/grade.h"
#include "mmupt/grpo.h"
#include "mmupt/loader.h"
#include "mmupt/optim.h"
#include "mmupt/reward.h"
#include "mmupt/rollout.h"
#include "mmupt/tensorboard.h"
#include "mmupt/train.h"
#include "train_internal.h"

static void collect_sample(void *ctx, struct rollout_sample *s)
{
    struct step_data *d = ctx;
    struct train_sample *t = &d->samples[s->question * d->G + s->sample];
    t->ids = s->ids;
    t->n = s->n;
    free(s->logp);
}

/* Rollout for this rank's questions, then answers, rewards and advantages. */
static int rollout_and_reward(struct trainer *tr, struct step_data *d, struct mmupt_err *err)
{
    const struct cfg *c = tr->cfg;
    struct rollout_question *q = mmupt_xcalloc((size_t)d->n_q, sizeof *q);
    for (int i = 0; i < d->n_q; i++) {
        struct train_question *tq = &d->q[i];
        tq->len = (int)tq->prompt.n_ids;
        tq->ids64 = mmupt_xmalloc((size_t)tq->len * sizeof *tq->ids64);
        for (int k = 0; k < tq->len; k++) tq->ids64[k] = tq->prompt.ids[k];
        q[i] = (struct rollout_question){.id = tq->item.index, .prompt = {.n_seq = 1, .seq_len = &tq->len,
                                         .tokens = tq->ids64, .n_images = tq->prompt.n_images,
                                         .grid_thw = tq->prompt.grid, .pixels = tq->prompt.pixels}};
    }
    /* <|image_pad|> gets rollout.image_pad_bias (MM-UPT: -100); the video token is banned outright:
     * this trainer has no video input, and a generated one would not be a valid prompt to learn on. */
    int32_t bias_id[2] = {(int32_t)tr->model.cfg.image_token_id, (int32_t)tr->model.cfg.video_token_id};
    float bias[2] = {(float)c->rollout.image_pad_bias, -INFINITY};
    struct rollout_config rc = {
        .G = d->G, .max_new = (int)c->rollout.max_new_tokens, .n_slots = d->n_q * d->G < 64 ? d->n_q * d->G : 64,
        .max_prompt = (int)c->data.max_prompt_length, .seed = (uint64_t)c->rollout.seed,
        .sampling = {.temperature = (float)c->rollout.temperature, .top_p = (float)c->rollout.top_p,
                     .top_k = (int)c->rollout.top_k, .bias_ids = bias_id, .bias = bias,
                     .n_bias = tr->model.cfg.has_vision ? 2 : 0},
        .stop_ids = tr->stop_ids, .n_stop = tr->n_stop, .policy_version = tr->step,
    };
    int rc_out = rollout_run(&tr->model, &rc, q, d->n_q, collect_sample, d, err);
    free(q);
    if (rc_out) return -1;
    train_rewards(tr, d);
    return 0;
}

static void log_step(struct trainer *tr, const struct step_data *d, const struct train_losses *l, double lr, double norm,
                     int skipped, double seconds)
{
    double reward_mean = d->stats.samples ? d->stats.reward_sum / (double)d->stats.samples : 0;
    double majority = d->stats.groups ? d->stats.majority_share / (double)d->stats.groups : 0;
    log_info(&tr->lg, "step %lld/%lld  loss %.4f  kl %.4f  reward %.3f  majority %.3f  tokens/s %.0f%s",
             (long long)tr->step + 1, (long long)tr->total_steps, l->loss, l->kl, reward_mean, majority,
             (double)d->tokens / seconds, skipped ? "  (update skipped: non-finite gradient)" : "");
    if (tr->comm.rank != 0) return;
    struct mmupt_err err;
    metrics_begin(&tr->metrics);
    metrics_i64(&tr->metrics, "step", tr->step + 1);
    metrics_f64(&tr->metrics, "loss", l->loss);
    metrics_f64(&tr->metrics, "pg_loss", l->pg_loss);
    metrics_f64(&tr->metrics, "kl", l->kl);
    metrics_f64(&tr->metrics, "entropy", l->entropy);
    metrics_f64(&tr->metrics, "clip_frac", l->clip_frac);
    metrics_f64(&tr->metrics, "grad_norm", norm);
    metrics_f64(&tr->metrics, "lr", lr);
    metrics_i64(&tr->metrics, "update_skipped", skipped);
    reward_stats_write(&d->stats, &tr->metrics);
    metrics_f64(&tr->metrics, "time/step_s", seconds);
    if (metrics_end(&tr->metrics, &err)) log_warn(&tr->lg, "%s", err.msg);
    if (tr->tb) {
        tb_scalar(tr->tb, "loss", tr->step + 1, l->loss, &err);
        tb_scalar(tr->tb, "kl", tr->step + 1, l->kl, &err);
        tb_scalar(tr->tb, "reward/mean", tr->step + 1, reward_mean, &err);
        tb_scalar(tr->tb, "reward/majority_ratio", tr->step + 1, majority, &err);
        if (tb_flush(tr->tb, &err)) log_warn(&tr->lg, "%s", err.msg);
    }
}

static int one_step(struct trainer *tr, struct mmupt_err *err)
{
    double t0 = mmupt_now();
    struct step_data d;
    if (train_collect_questions(tr, &d, err)) {
        train_step_free(&d);
        return -1;
    }
    int rc = rollout_and_reward(tr, &d, err);
    struct train_losses l = {0};
    double norm = 0, lr = 0;
    int skipped = 0;
    if (rc == 0) rc = train_update(tr, &d, &l, &lr, &norm, &skipped, err);
    if (rc == 0) log_step(tr, &d, &l, lr, norm, skipped, mmupt_now() - t0);
    train_step_free(&d);
    return rc;
}

int train_run(const struct cfg *c, struct mmupt_err *err)
{
    struct trainer tr;
    if (train_open(&tr, c, err)) return -1;
    int rc = 0;
    for (tr.step = 0; tr.step < tr.total_steps && rc == 0; tr.step++) rc = one_step(&tr, err);
    if (rc == 0) {
        uint64_t h = 1469598103934665603ull; /* FNV-1a of the final weights: equal on every rank */
        const unsigned char *b = (const unsigned char *)tr.model.params;
        for (size_t i = 0; i < (size_t)tr.model.spec.total * sizeof(float); i++) h = (h ^ b[i]) * 1099511628211ull;
        tr.lg.only_rank0 = 0; /* every rank reports its checksum: replicas must agree */
        log_info(&tr.lg, "done: %lld steps, final weights checksum %016llx", (long long)tr.total_steps,
                (unsigned long long)h);
    }
    train_close(&tr);
    return rc;
}
