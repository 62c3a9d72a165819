/* Checks that involve more than one field. Each field's own type and range were checked when it
 * was set; here are the relations between them. Messages name every key involved. */
#include "internal.h"

/* Keys EasyR1's configs carry, kept so those configs load, whose other values mmupt does not
 * implement: such a value is refused with what runs instead, never silently ignored. */
static int cfg_validate_implemented(const struct cfg *c, struct mmupt_err *err)
{
    const struct cfg_algorithm *a = &c->algorithm;
    if (a->entropy_coef != 0)
        return mmupt_fail(err, "algorithm.entropy_coef=%g: an entropy bonus is not implemented (the entropy is "
                               "only logged); set it to 0", a->entropy_coef);
    if (a->ppo_epochs != 1)
        return mmupt_fail(err, "algorithm.ppo_epochs=%lld: one pass over each rollout batch is all that is "
                               "implemented; set it to 1", (long long)a->ppo_epochs);
    if (c->model.freeze_vision_tower)
        return mmupt_fail(err, "model.freeze_vision_tower=true is not implemented (the vision tower and merger "
                               "train, as in MM-UPT); set it to false");
    return 0;
}

int cfg_validate(const struct cfg *c, struct mmupt_err *err)
{
    const struct cfg_data *d = &c->data;
    const struct cfg_algorithm *a = &c->algorithm;
    if (d->min_pixels > d->max_pixels)
        return mmupt_fail(err, "data.min_pixels (%lld) must not exceed data.max_pixels (%lld)",
                          (long long)d->min_pixels, (long long)d->max_pixels);
    if (a->global_batch_size > d->rollout_batch_size || d->rollout_batch_size % a->global_batch_size != 0)
        return mmupt_fail(err, "algorithm.global_batch_size (%lld) must divide data.rollout_batch_size (%lld)",
                          (long long)a->global_batch_size, (long long)d->rollout_batch_size);
    if (c->reward.mode == REWARD_MAJORITY && c->rollout.n < 2)
        return mmupt_fail(err, "reward.mode=majority needs rollout.n >= 2 answers to vote over (got %lld)",
                          (long long)c->rollout.n);
    if (c->rollout.max_new_tokens > d->max_response_length)
        return mmupt_fail(err, "rollout.max_new_tokens (%lld) exceeds data.max_response_length (%lld)",
                          (long long)c->rollout.max_new_tokens, (long long)d->max_response_length);
    if (c->run.output_dir[0] == '\0')
        return mmupt_fail(err, "run.output_dir must not be empty");
    return cfg_validate_implemented(c, err);
}

int cfg_resolve(struct cfg *c, const char *path, int n_overrides, char *const *overrides, struct mmupt_err *err)
{
    cfg_defaults(c);
    if (path && cfg_load_file(c, path, err)) return -1;
    for (int i = 0; i < n_overrides; i++)
        if (cfg_apply_override(c, overrides[i], err)) return -1;
    if (cfg_validate(c, err)) {
        mmupt_err_prefix(err, "%s", path ? path : "config");
        return -1;
    }
    return 0;
}
