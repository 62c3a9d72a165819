/* Validation during training: every run.val_interval steps (and after the last) rank 0 evaluates the
 * current policy on the first run.val_limit items of data.val_path with the basic evaluator: greedy
 * pass@1 (what the quickstart stops on), pass@1 and maj@G at the rollout settings. The other ranks
 * wait at their next collective; at the quickstart's size this costs seconds. */
#include <math.h>
#include <string.h>

#include "mmupt/eval.h"
#include "train_internal.h"

int train_val_due(const struct trainer *tr)
{
    int64_t k = tr->cfg->run.val_interval;
    return k > 0 && tr->val_ds && ((tr->step + 1) % k == 0 || tr->step + 1 == tr->total_steps);
}

int train_validate(struct trainer *tr, struct train_val *out, struct mmupt_err *err)
{
    const struct cfg *c = tr->cfg;
    double t0 = mmupt_now();
    struct eval_config ec;
    eval_config_default(&ec);
    ec.G = (int)c->rollout.n;
    ec.temperature = c->rollout.temperature > 0 ? (float)c->rollout.temperature : 1.0f;
    ec.top_p = (float)c->rollout.top_p;
    ec.top_k = c->rollout.top_k > 0 ? (int)c->rollout.top_k : 0; /* the config says -1 for off */
    ec.max_new = (int)c->rollout.max_new_tokens;
    ec.limit = c->run.val_limit;
    ec.seed = (uint64_t)c->rollout.seed;
    ec.vote = (enum reward_vote_mode)c->reward.vote;
    ec.format_prompt = c->data.format_prompt;
    ec.max_prompt_tokens = c->data.max_prompt_length;
    ec.min_pixels = c->data.min_pixels;
    ec.max_pixels = c->data.max_pixels;
    ec.image_pad_bias = (float)c->rollout.image_pad_bias;
    ec.stop_ids = tr->stop_ids;
    ec.n_stop = tr->n_stop;
    struct eval_result r;
    if (eval_run(&ec, &tr->model, tr->tok, tr->val_ds, &r, err)) {
        mmupt_err_prefix(err, "validation on %s", c->data.val_path);
        return -1;
    }
    struct eval_metrics m;
    eval_metrics_of(&r.all, &m);
    *out = (struct train_val){.done = 1, .greedy = m.greedy_pass1, .pass1 = m.pass1, .maj = m.maj};
    eval_result_free(&r);
    tr->phase[PH_VALIDATE] += mmupt_now() - t0;
    return 0;
}
