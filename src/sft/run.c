/* The whole supervised job: model and tokenizer from a directory (or random weights), the split,
 * the loop, and the result written as a Hugging Face model directory. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "mmupt/sft.h"
#include "mmupt/strutil.h"

#define SFT_SHARD_MB 4096.0

static int open_model(const struct sft_paths *p, uint64_t seed, struct model *m, struct mmupt_err *err)
{
    if (!p->init_random) return model_open(m, p->model_dir, err);
    struct model_config mc;
    if (model_config_load(&mc, p->model_dir, err)) return -1;
    model_init(m, &mc);
    model_init_random(m, seed);
    return 0;
}

int sft_run(const struct sft_paths *p, const struct sft_config *c, const struct comm *comm, const struct log_ctx *lg,
            struct sft_stats *st, struct mmupt_err *err)
{
    if (!p->model_dir || !p->data || !p->out_dir) return mmupt_fail(err, "a model directory, a dataset and an output directory are required");
    if (sft_config_check(c, err)) return -1;
    if (comm->size != 1)
        return mmupt_fail(err, "sft runs on one process for now, not %d: start it without mpirun (or -np 1)",
                          comm->size);
    int empty = dir_empty_or_missing(p->out_dir, err);
    if (empty < 0) return -1;
    if (!empty) return mmupt_fail(err, "%s exists and is not empty: choose a new output directory", p->out_dir);
    char tpath[4096];
    snprintf(tpath, sizeof tpath, "%s/tokenizer.json", p->model_dir);
    struct model m = {0};
    struct tok *tok = NULL;
    struct ds_reader *ds = NULL;
    int rc = -1;
    if (open_model(p, c->seed, &m, err) == 0 && tok_load(&tok, tpath, err) == 0 && ds_open(&ds, p->data, err) == 0) {
        if (lg)
            log_info(lg, "sft: %s (%s, %lld parameters, %s), %s: %lld items; %lld steps of %d, lr %g", p->model_dir,
                     model_arch_name(m.cfg.arch), (long long)m.spec.total,
                     p->init_random ? "random init" : "pretrained weights", p->data, (long long)ds_count(ds),
                     (long long)c->steps, c->batch, c->lr);
        if (sft_train(&m, tok, ds, c, comm, lg, st, err) == 0) {
            rc = model_save_hf_dir(&m.spec, m.params, p->model_dir, p->out_dir, SFT_SHARD_MB, err);
            if (rc == 0 && lg) log_info(lg, "sft: wrote %s", p->out_dir);
        } else {
            mmupt_err_prefix(err, "%s", p->data);
        }
    }
    if (ds) ds_close(ds);
    tok_free(tok);
    if (m.params) model_free(&m);
    return rc;
}
