/* What `mmupt eval --model PATH` evaluates: a Hugging Face model directory, a checkpoint step
 * directory or a checkpoint directory (its latest step). A checkpoint holds weights only; the
 * architecture (config.json), tokenizer and stop tokens come from the model the run started from,
 * whose path the checkpoint records. `mmupt export` reads checkpoints with the same functions. */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "mmupt/checkpoint.h"
#include "mmupt/eval.h"

static int is_file(const char *dir, const char *name)
{
    char p[CKPT_PATH_MAX + 64];
    struct stat st;
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

int eval_resolve_checkpoint(const char *arg, char *out, size_t n, struct mmupt_err *err)
{
    if (strlen(arg) + 16 >= n) return mmupt_fail(err, "%.200s...: path too long", arg);
    if (is_file(arg, "model.h5")) {
        snprintf(out, n, "%s", arg);
        return 0;
    }
    int found = ckpt_find_latest(arg, out, n, err);
    if (found == 0)
        return mmupt_fail(err, "%s: neither a checkpoint (no model.h5) nor a checkpoint directory (no latest)", arg);
    return found < 0 ? -1 : 0;
}

int eval_load_checkpoint(const char *ckpt, const char *base_dir, struct model *m, struct eval_model_source *src,
                         struct mmupt_err *err)
{
    struct ckpt_meta meta;
    if (ckpt_read_meta(ckpt, &meta, err)) return -1;
    const char *dir = base_dir ? base_dir : meta.model_path;
    char cfg_path[CKPT_PATH_MAX + 16];
    snprintf(cfg_path, sizeof cfg_path, "%s/config.json", dir);
    struct model_config mc;
    if (model_config_load(&mc, cfg_path, err)) {
        mmupt_err_prefix(err, "%s: the model %s", ckpt, base_dir ? "given for its architecture" : "the run started from");
        ckpt_meta_free(&meta);
        return -1;
    }
    model_init(m, &mc);
    int rc = 0;
    if (m->spec.total != meta.n_params) {
        rc = mmupt_fail(err, "%s has %lld parameters, the checkpoint %s %lld: not the model this run trained", dir,
                        (long long)m->spec.total, ckpt, (long long)meta.n_params);
    } else if (ckpt_read_weights(ckpt, &m->spec, m->params, err)) {
        rc = -1;
    }
    if (rc) {
        model_free(m);
    } else {
        src->is_checkpoint = 1;
        snprintf(src->ckpt, sizeof src->ckpt, "%s", ckpt);
        snprintf(src->dir, sizeof src->dir, "%s", dir);
        src->step = meta.step;
        src->policy_version = meta.policy_version;
    }
    ckpt_meta_free(&meta);
    return rc;
}

int eval_load_model(const char *path, const char *base_dir, struct model *m, struct eval_model_source *src,
                    struct mmupt_err *err)
{
    memset(src, 0, sizeof *src);
    src->step = src->policy_version = -1;
    if (strlen(path) + 32 >= sizeof src->dir) return mmupt_fail(err, "%.200s...: path too long", path);
    if (is_file(path, "config.json")) {
        if (model_open(m, path, err)) return -1;
        snprintf(src->dir, sizeof src->dir, "%s", path);
        return 0;
    }
    if (!is_file(path, "model.h5") && !is_file(path, "latest")) {
        struct stat st;
        if (stat(path, &st) != 0) return mmupt_fail(err, "%s: no such model directory or checkpoint", path);
        return mmupt_fail(err, "%s: neither a Hugging Face model directory (no config.json), nor a checkpoint (no "
                               "model.h5), nor a checkpoint directory (no latest)", path);
    }
    char ckpt[CKPT_PATH_MAX];
    if (eval_resolve_checkpoint(path, ckpt, sizeof ckpt, err)) return -1;
    return eval_load_checkpoint(ckpt, base_dir, m, src, err);
}
