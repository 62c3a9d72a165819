/* Validation during training: every run.val_interval steps (and after the last) rank 0 evaluates the
 * current policy on the first run.val_limit items of data.val_path with the basic evaluator: greedy
 * pass@1 (what the quickstart stops on), pass@1 and maj@G at the rollout settings. The other ranks
 * wait at their next collective; at the quickstart's size this costs seconds. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "mmupt/eval.h"
#include "mmupt/strutil.h"
#include "mmupt/tensorboard.h"
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
    ec.seed = train_rollout_seed(c);
    ec.vote = (enum reward_vote_mode)c->reward.vote;
    ec.format_prompt = c->data.format_prompt;
    ec.max_prompt_tokens = c->data.max_prompt_length;
    ec.min_pixels = c->data.min_pixels;
    ec.max_pixels = c->data.max_pixels;
    ec.image_pad_bias = (float)c->rollout.image_pad_bias;
    ec.stop_ids = tr->stop_ids;
    ec.n_stop = tr->n_stop;
    ec.dev = tr->on_device ? &tr->dev : NULL;
    train_device_use(tr, tr->model.params);
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

/* The validation's three values into the metrics record being written (val/greedy_pass1,
 * val/pass1, val/maj), and as TensorBoard scalars at `step` (the caller flushes). */
static const char *const val_keys[3] = {"val/greedy_pass1", "val/pass1", "val/maj"};

void train_val_metrics(struct trainer *tr, const struct train_val *val)
{
    const double v[3] = {val->greedy, val->pass1, val->maj};
    for (int i = 0; i < 3; i++) metrics_f64(&tr->metrics, val_keys[i], v[i]);
}

void train_val_tb(struct trainer *tr, int64_t step, const struct train_val *val)
{
    if (!tr->tb) return;
    const double v[3] = {val->greedy, val->pass1, val->maj};
    struct mmupt_err e;
    for (int i = 0; i < 3; i++) tb_scalar(tr->tb, val_keys[i], step, v[i], &e);
}

/* The best validation so far lives in run.output_dir/best_val_step as "STEP SCORE": the step whose
 * weights to keep when stopping on validation (0: the initial policy was best), so a script can
 * export that checkpoint. Ties keep the earlier step: fewer updates for the same score. */
static void best_path(const struct trainer *tr, char *out, size_t n)
{
    train_run_path(tr->cfg, "best_val_step", out, n);
}

int train_val_record(struct trainer *tr, int64_t step, const struct train_val *val, struct mmupt_err *err)
{
    if (!val->done || !(val->greedy > tr->val_best)) return 0;
    tr->val_best = val->greedy;
    tr->val_best_step = step;
    char path[4096], text[64];
    best_path(tr, path, sizeof path);
    int n = snprintf(text, sizeof text, "%lld %.17g\n", (long long)step, val->greedy);
    if (file_write_atomic(path, text, (size_t)n, err)) {
        mmupt_err_prefix(err, "the best validation step");
        return -1;
    }
    return 0;
}

/* After a resume from step `step`: keep the record if it is not from a step about to be redone. */
void train_val_restore(struct trainer *tr, int64_t step)
{
    char path[4096];
    best_path(tr, path, sizeof path);
    FILE *f = fopen(path, "r");
    long long s;
    double v;
    if (f && fscanf(f, "%lld %lf", &s, &v) == 2 && s >= 0 && s <= step && isfinite(v)) {
        tr->val_best = v;
        tr->val_best_step = s;
    }
    if (f) fclose(f);
}

int train_validate_initial(struct trainer *tr, struct mmupt_err *err)
{
    struct train_val val = {0};
    if (train_validate(tr, &val, err)) return -1;
    log_info(&tr->lg, "validation before training: greedy pass@1 %.3f  pass@1 %.3f  maj@%lld %.3f", val.greedy,
             val.pass1, (long long)tr->cfg->rollout.n, val.maj);
    struct mmupt_err e;
    metrics_begin(&tr->metrics);
    metrics_i64(&tr->metrics, "step", 0);
    train_val_metrics(tr, &val);
    if (metrics_end(&tr->metrics, &e)) log_warn(&tr->lg, "%s", e.msg);
    train_val_tb(tr, 0, &val);
    return train_val_record(tr, 0, &val, err);
}
