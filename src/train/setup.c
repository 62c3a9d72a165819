/* Trainer setup and teardown, and gathering each step's questions. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "mmupt/rollout.h"
#include "mmupt/tensorboard.h"
#include "train_internal.h"

/* A path relative to run.output_dir unless absolute. */
static void run_path(const struct cfg *c, const char *name, char *out, size_t n)
{
    if (name[0] == '/') snprintf(out, n, "%s", name);
    else snprintf(out, n, "%s/%s", c->run.output_dir, name);
}

/* Stop tokens: rollout.stop_token_ids when given, else what the model directory asks for. */
static void read_stop_ids(struct trainer *tr)
{
    const struct cfg *c = tr->cfg;
    for (int i = 0; i < c->rollout.stop_token_ids.n && i < 8; i++) tr->stop_ids[tr->n_stop++] = (int32_t)c->rollout.stop_token_ids.v[i];
    if (!tr->n_stop) tr->n_stop = rollout_default_stop_ids(c->model.path, tr->tok, tr->stop_ids, 8);
}

static int check_shapes(struct trainer *tr, struct mmupt_err *err)
{
    const struct cfg *c = tr->cfg;
    int world = tr->comm.size;
    if (c->cluster.rollout_ranks != 0)
        return mmupt_fail(err, "cluster.rollout_ranks=%lld: dedicated rollout ranks are not implemented yet; use 0 "
                               "(colocated: every rank rolls out and learns)", (long long)c->cluster.rollout_ranks);
    if (c->data.rollout_batch_size % world || c->algorithm.global_batch_size % world)
        return mmupt_fail(err, "data.rollout_batch_size (%lld) and algorithm.global_batch_size (%lld) must be multiples "
                               "of the %d ranks", (long long)c->data.rollout_batch_size,
                          (long long)c->algorithm.global_batch_size, world);
    tr->q_per_rank = (int)(c->data.rollout_batch_size / world);
    int64_t n = ds_count(tr->ds);
    tr->total_steps = c->run.max_steps ? c->run.max_steps : c->data.epochs * (n / c->data.rollout_batch_size);
    if (tr->total_steps < 1)
        return mmupt_fail(err, "%s has %lld items, fewer than one rollout batch of %lld", c->data.train_path, (long long)n,
                          (long long)c->data.rollout_batch_size);
    tr->optim_steps_total = tr->total_steps * (c->data.rollout_batch_size / c->algorithm.global_batch_size);
    return 0;
}

static int open_outputs(struct trainer *tr, struct mmupt_err *err)
{
    const struct cfg *c = tr->cfg;
    if (tr->comm.rank != 0) return 0;
    if (mkdir(c->run.output_dir, 0755) != 0 && errno != EEXIST)
        return mmupt_fail(err, "%s: cannot create: %s", c->run.output_dir, strerror(errno));
    char path[2 * CFG_STR_MAX + 8];
    run_path(c, c->logging.metrics_file, path, sizeof path);
    if (metrics_open(&tr->metrics, path, err)) return -1;
    if (c->logging.tensorboard && tb_open(&tr->tb, c->run.output_dir, err)) return -1;
    return 0;
}

int train_open(struct trainer *tr, const struct cfg *c, struct mmupt_err *err)
{
    memset(tr, 0, sizeof *tr);
    tr->cfg = c;
    if (comm_world(&tr->comm, err)) return -1;
    log_init(&tr->lg, (enum log_level)c->logging.level, tr->comm.rank, stderr);
    tr->lg.only_rank0 = 1;
    char path[CFG_STR_MAX + 64];
    snprintf(path, sizeof path, "%s/tokenizer.json", c->model.path);
    if (model_open(&tr->model, c->model.path, err) || tok_load(&tr->tok, path, err) ||
        ds_open(&tr->ds, c->data.train_path, err) || check_shapes(tr, err))
        return -1;
    read_stop_ids(tr);
    struct img_proc_config ic;
    img_proc_config_default(&ic);
    ic.min_pixels = c->data.min_pixels;
    ic.max_pixels = c->data.max_pixels;
    ic.merge = (int)tr->model.cfg.vision.merge;
    if (prompt_builder_init(&tr->pb, tr->tok, c->data.format_prompt, &ic, c->data.max_prompt_length, err)) return -1;
    struct ds_cursor cur;
    ds_cursor_init(&cur, (uint64_t)c->data.seed, c->data.shuffle, tr->comm.rank, tr->comm.size);
    prompt_loader_init(&tr->loader, tr->ds, &tr->pb, &tr->lg, &cur, c->data.skip_bad_items);
    if (c->algorithm.kl_penalty != KL_NONE && c->algorithm.kl_coef > 0) {
        tr->ref_params = mmupt_xmalloc((size_t)tr->model.spec.total * sizeof(float));
        memcpy(tr->ref_params, tr->model.params, (size_t)tr->model.spec.total * sizeof(float));
    }
    optim_init(&tr->opt, (size_t)tr->model.spec.total, tr->comm.rank, tr->comm.size);
    if (open_outputs(tr, err)) return -1;
    log_info(&tr->lg, "training %s (%lld parameters) on %d rank(s), colocated: %lld steps, %d questions x %lld samples "
                      "per rank per step", model_arch_name(tr->model.cfg.arch), (long long)tr->model.spec.total,
             tr->comm.size, (long long)tr->total_steps, tr->q_per_rank, (long long)c->rollout.n);
    return 0;
}

void train_close(struct trainer *tr)
{
    if (tr->comm.rank == 0 && tr->metrics.f) metrics_close(&tr->metrics);
    tb_close(tr->tb);
    optim_free(&tr->opt);
    free(tr->ref_params);
    if (tr->ds) ds_close(tr->ds);
    tok_free(tr->tok);
    if (tr->model.params) model_free(&tr->model);
    comm_free(&tr->comm);
}

int train_collect_questions(struct trainer *tr, struct step_data *d, struct mmupt_err *err)
{
    memset(d, 0, sizeof *d);
    d->G = (int)tr->cfg->rollout.n;
    d->q = mmupt_xcalloc((size_t)tr->q_per_rank, sizeof *d->q);
    d->samples = mmupt_xcalloc((size_t)tr->q_per_rank * d->G, sizeof *d->samples);
    for (int i = 0; i < tr->q_per_rank; i++) {
        if (prompt_loader_next(&tr->loader, &d->q[i].prompt, &d->q[i].item, err)) return -1;
        d->n_q++;
    }
    return 0;
}

void train_step_free(struct step_data *d)
{
    for (int i = 0; i < d->n_q; i++) {
        prompt_item_free(&d->q[i].prompt);
        ds_item_free(&d->q[i].item);
        free(d->q[i].ids64);
    }
    for (int i = 0; d->samples && i < d->n_q * d->G; i++) free(d->samples[i].ids);
    free(d->q);
    free(d->samples);
}
