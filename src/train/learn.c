/* Rewards and the GRPO update of one rollout step. Sequences are prompt + response, packed into
 * micro-batches; a response token t is scored by the logits at t - 1. Old log-probs (the policy
 * before this step's updates) and reference log-probs (the frozen initial weights) are computed
 * for every micro-batch first, then each optimizer step accumulates its micro-batches' gradients
 * (each micro-batch a token mean, scaled by 1 / micro-batches: EasyR1's semantics) and applies
 * ZeRO-1 AdamW across ranks. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mmupt/grade.h"
#include "mmupt/grpo.h"
#include "mmupt/sft.h"
#include "train_internal.h"

void train_rewards(struct trainer *tr, struct step_data *d)
{
    double t0 = mmupt_now();
    const struct cfg *c = tr->cfg;
    int G = d->G;
    char **answers = mmupt_xcalloc((size_t)G, sizeof *answers);
    float *r = mmupt_xmalloc((size_t)G * sizeof *r), *adv = mmupt_xmalloc((size_t)G * sizeof *adv);
    int *lens = mmupt_xmalloc((size_t)G * sizeof *lens);
    for (int i = 0; i < d->n_q; i++) {
        struct train_sample *s = d->samples + (size_t)i * G;
        for (int g = 0; g < G; g++) {
            char *text = NULL;
            size_t len = 0;
            struct mmupt_err err;
            answers[g] = NULL;
            lens[g] = s[g].n;
            d->tokens += s[g].n;
            if (tok_decode(tr->tok, s[g].ids, (size_t)s[g].n, 1, &text, &len, &err) == 0 &&
                grade_extract(text, len, (enum grade_extractor)c->reward.extractor, &answers[g], &err) != 1)
                answers[g] = NULL;
            free(text);
        }
        struct reward_vote_result vote = {.winner = -1};
        const char *truth = d->q[i].item.answer;
        if (c->reward.mode == REWARD_MAJORITY)
            reward_majority((const char *const *)answers, G, (enum reward_vote_mode)c->reward.vote,
                            c->reward.min_majority_share, grade_equal, r, &vote);
        else if (c->reward.mode == REWARD_GROUND_TRUTH)
            reward_ground_truth((const char *const *)answers, G, truth, grade_equal, r);
        else
            memset(r, 0, (size_t)G * sizeof *r);
        /* Without the vote as reward it is still counted, so every run logs how its vote would have
         * done (majority ratio, label accuracy): a supervised run is then comparable to MM-UPT. */
        if (c->reward.mode != REWARD_MAJORITY)
            reward_vote((const char *const *)answers, G, (enum reward_vote_mode)c->reward.vote, grade_equal, &vote);
        reward_stats_add(&d->stats, (const char *const *)answers, G, &vote, r, truth, lens, grade_equal);
        grpo_advantages(r, 1, G, (float)c->algorithm.adv_std_eps, c->algorithm.adv_estimator == ADV_DR_GRPO, adv);
        for (int g = 0; g < G; g++) {
            s[g].reward = r[g];
            s[g].adv = adv[g];
            free(answers[g]);
        }
    }
    free(answers);
    free(r);
    free(adv);
    free(lens);
    tr->phase[PH_REWARD] += mmupt_now() - t0;
}

/* A packed micro-batch of prompt + response sequences with everything the loss needs. The packing
 * (tokens, next-token targets scoring only response tokens, images) is the warm start's
 * sft_batch_pack: the same layout for supervised and GRPO training. */
struct micro {
    struct sft_batch b;
    float *mask, *adv, *old, *ref; /* per token of b */
};

static void micro_build(const struct step_data *d, int first, int count, int64_t patch_dim, struct micro *mb)
{
    memset(mb, 0, sizeof *mb);
    /* Shallow views of the step's prompts and responses: sft_batch_pack copies what it needs. */
    struct sft_example *ex = mmupt_xcalloc((size_t)(count > 0 ? count : 1), sizeof *ex);
    for (int k = 0; k < count; k++) {
        const struct train_sample *s = &d->samples[first + k];
        ex[k] = (struct sft_example){.prompt = d->q[(first + k) / d->G].prompt, .target = s->ids, .n_target = s->n};
    }
    sft_batch_pack(&mb->b, ex, count, patch_dim);
    free(ex);
    int64_t T = mb->b.n_tokens, t = 0;
    mb->mask = mmupt_xmalloc((size_t)(T ? T : 1) * sizeof *mb->mask);
    mb->adv = mmupt_xmalloc((size_t)(T ? T : 1) * sizeof *mb->adv);
    for (int k = 0; k < count; k++)
        for (int j = 0; j < mb->b.seq_len[k]; j++, t++) {
            mb->mask[t] = mb->b.targets[t] >= 0 ? 1.0f : 0.0f;
            mb->adv[t] = d->samples[first + k].adv;
        }
}

static void micro_free(struct micro *mb)
{
    sft_batch_free(&mb->b);
    void *p[] = {mb->mask, mb->adv, mb->old, mb->ref};
    for (size_t i = 0; i < sizeof p / sizeof p[0]; i++) free(p[i]);
}

/* Log-probs of the micro-batch's targets under params (temporarily installed). */
static int logprobs_with(struct trainer *tr, struct micro *mb, const float *params, float **out, struct mmupt_err *err)
{
    struct model_batch b = sft_batch_view(&mb->b);
    float tau = (float)tr->cfg->rollout.temperature;
    if (tr->on_device) {
        train_device_use(tr, params);
        int rc = model_dev_forward(&tr->dev, &b, err);
        if (rc == 0) { /* before the switch back: with logit chunks, lm_head runs in here */
            *out = mmupt_xmalloc((size_t)mb->b.n_tokens * sizeof **out);
            model_dev_logprobs(&tr->dev, mb->b.targets, tau, *out, NULL);
        }
        train_device_use(tr, tr->model.params); /* the backward pass reads the current weights */
        return rc ? -1 : 0;
    }
    float *saved = tr->model.params;
    tr->model.params = (float *)params; /* only read: the forward pass does not write weights */
    int rc = model_forward(&tr->model, &b, err);
    tr->model.params = saved;
    if (rc) return -1;
    *out = mmupt_xmalloc((size_t)mb->b.n_tokens * sizeof **out);
    model_logprobs(&tr->model, mb->b.targets, tau, *out, NULL);
    return 0;
}

static void grpo_params_from(const struct cfg *c, int n_micro, struct grpo_params *p)
{
    grpo_params_default(p);
    p->clip_low = (float)c->algorithm.clip_ratio_low;
    p->clip_high = (float)c->algorithm.clip_ratio_high;
    p->clip_dual = (float)c->algorithm.clip_ratio_dual;
    p->kl_penalty = c->algorithm.kl_penalty;
    p->kl_coef = (float)c->algorithm.kl_coef;
    p->kl_clamp = (float)c->algorithm.kl_clamp;
    p->tau = (float)c->rollout.temperature;
    p->scale = 1.0f / (float)n_micro;
}

/* Forward, loss and backward of one micro-batch into the model's gradients. Non-finite log-probs or
 * advantages poison the gradient with a NaN instead of stopping the run: the global norm turns NaN
 * on every rank, so the optimizer skips this update everywhere and the step is logged as skipped. */
static int micro_step(struct trainer *tr, struct micro *mb, const struct grpo_params *gp, struct train_losses *acc,
                      int fault, int *poisoned, struct mmupt_err *err)
{
    float *logp;
    if (logprobs_with(tr, mb, tr->model.params, &logp, err)) return -1;
    for (int64_t t = 0; fault && t < mb->b.n_tokens; t++) /* the test hook (tr->fault_step): a scored token */
        if (mb->mask[t] != 0.0f) {
            logp[t] = NAN;
            break;
        }
    if (!mb->old) { /* behaviour = these weights, not yet updated: see train_update */
        mb->old = mmupt_xmalloc((size_t)mb->b.n_tokens * sizeof *mb->old);
        memcpy(mb->old, logp, (size_t)mb->b.n_tokens * sizeof *mb->old);
    }
    float *dlogp = mmupt_xcalloc((size_t)mb->b.n_tokens, sizeof *dlogp);
    struct grpo_metrics m;
    int rc = grpo_loss_packed_cpu(tr->cfg->algorithm.loss_agg == LOSS_AGG_SEQ_MEAN_TOKEN_MEAN, logp, mb->old,
                                  mb->ref ? mb->ref : mb->old, mb->adv, mb->mask, mb->b.seq_len, mb->b.n_seq, gp,
                                  dlogp, &m);
    if (rc == 0) {
        if (tr->on_device) model_dev_backward_logprobs(&tr->dev, mb->b.targets, gp->tau, dlogp);
        else model_backward_logprobs(&tr->model, mb->b.targets, gp->tau, dlogp);
        acc->loss += m.loss;
        acc->pg_loss += m.pg_loss;
        acc->kl += m.kl;
        acc->clip_frac += m.clip_frac;
        acc->entropy -= grpo_masked_mean(logp, mb->mask, mb->b.n_tokens); /* -mean log p, as EasyR1 logs it */
    } else {
        log_warn(&tr->lg, "step %lld: non-finite log-probs or advantages in a micro-batch: this update is skipped",
                 (long long)tr->step + 1);
        *poisoned = 1;
    }
    free(logp);
    free(dlogp);
    return 0;
}

static void zero_grads(struct trainer *tr)
{
    if (tr->on_device) model_dev_zero_grad(&tr->dev);
    else model_zero_grad(&tr->model);
}

int train_update(struct trainer *tr, struct step_data *d, struct train_losses *l, double *lr, double *norm, int *skipped,
                 struct mmupt_err *err)
{
    const struct cfg *c = tr->cfg;
    int n_seq = d->n_q * d->G, per_opt = (int)(c->algorithm.global_batch_size / tr->learn.size) * d->G;
    int mbs = (int)c->algorithm.micro_batch_size, n_mb = 0, rc = 0;
    struct micro *mb = mmupt_xcalloc((size_t)(n_seq / (mbs < 1 ? 1 : mbs) + n_seq + 1), sizeof *mb);
    int *mb_first = mmupt_xcalloc((size_t)(n_seq + 1), sizeof *mb_first);
    /* Micro-batches never straddle an optimizer step. */
    for (int s0 = 0; s0 < n_seq; s0 += per_opt)
        for (int k = s0; k < s0 + per_opt && k < n_seq; k += mbs) {
            int cnt = mbs < s0 + per_opt - k ? mbs : s0 + per_opt - k;
            micro_build(d, k, cnt, model_patch_dim(&tr->model.cfg), &mb[n_mb]);
            mb_first[n_mb++] = k;
        }
    /* Old log-probs are the behaviour policy's: the weights the trajectories were sampled with. When
     * those are the current weights, the first optimizer step's micro-batches get theirs from their
     * own training forward pass (micro_step), which computes the very same numbers before any update:
     * one forward pass fewer per such micro-batch, bit for bit the same result. */
    double t0 = mmupt_now();
    const float *behaviour = train_behaviour_params(tr, tr->step);
    for (int i = 0; i < n_mb && rc == 0; i++) {
        int from_training_pass = behaviour == tr->model.params && mb_first[i] < per_opt;
        if (!from_training_pass) rc = logprobs_with(tr, &mb[i], behaviour, &mb[i].old, err);
        if (rc == 0 && tr->ref_params) rc = logprobs_with(tr, &mb[i], tr->ref_params, &mb[i].ref, err);
        train_wbcast_poll(tr);
    }
    tr->phase[PH_LOGPROB] += mmupt_now() - t0;
    t0 = mmupt_now();
    struct optim_config oc = {.lr = c->optim.lr, .beta1 = c->optim.beta1, .beta2 = c->optim.beta2, .eps = c->optim.eps,
                              .weight_decay = c->optim.weight_decay, .clip_grad_norm = c->optim.clip_grad_norm};
    for (int i = 0; i < n_mb && rc == 0;) {
        int j = i;
        while (j < n_mb && mb_first[j] / per_opt == mb_first[i] / per_opt) j++;
        struct grpo_params gp;
        grpo_params_from(c, j - i, &gp);
        int poisoned = 0;
        zero_grads(tr);
        for (int k = i; k < j && rc == 0; k++) {
            if (k == j - 1) train_buckets_arm(tr); /* the last backward before the step: reduce as it goes */
            int fault = k == j - 1 && i == 0 && tr->fault_step == tr->step + 1 && tr->fault_learner == tr->learner;
            train_wbcast_poll(tr); /* learner 0: a rollout rank that asked for weights gets them sooner */
            rc = micro_step(tr, &mb[k], &gp, l, fault, &poisoned, err);
        }
        if (rc == 0) rc = train_wbcast_before_update(tr, err);
        if (rc) {
            train_buckets_disarm(tr);
            break;
        }
        *lr = optim_lr(c->optim.lr, c->optim.schedule, c->optim.warmup_ratio, tr->optim_steps_done, tr->optim_steps_total);
        int res = train_optim_step(tr, &oc, *lr, poisoned, norm);
        if (res < 0) rc = mmupt_fail(err, "optimizer step: collective failed");
        *skipped |= res == 1;
        tr->optim_steps_done++;
        i = j;
    }
    double sums[5] = {l->loss, l->pg_loss, l->kl, l->entropy, l->clip_frac};
    if (rc == 0 && comm_allreduce_sum_f64(&tr->learn, sums, 5) == 0) {
        double k = (double)(n_mb > 0 ? n_mb : 1) * tr->learn.size;
        l->loss = sums[0] / k, l->pg_loss = sums[1] / k, l->kl = sums[2] / k, l->entropy = sums[3] / k,
        l->clip_frac = sums[4] / k;
    }
    for (int i = 0; i < n_mb; i++) micro_free(&mb[i]);
    free(mb);
    free(mb_first);
    /* the last micro-batch's activations back to the pool now, not at the next forward: a colocated
     * rank's rollout comes first */
    if (tr->on_device) model_dev_release(&tr->dev);
    tr->phase[PH_UPDATE] += mmupt_now() - t0;
    return rc;
}
