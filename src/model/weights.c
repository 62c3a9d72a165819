/* Model weights in and out of safetensors. Names are matched on the legacy Hugging Face layout;
 * checkpoints saved by transformers 4.52 (and bare model state dicts) use other prefixes, which
 * are mapped first. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mmupt/model.h"
#include "mmupt/safetensors.h"

/* The legacy name of a tensor key, or NULL when the key has no known prefix. */
static const char *canonical(const char *key, char *buf, size_t n)
{
    static const struct { const char *from, *to; } maps[] = {
        {"model.language_model.", "model."},
        {"language_model.model.", "model."}, /* 4.4x-style nesting */
        {"language_model.", "model."},
        {"model.visual.", "visual."},
    };
    for (size_t i = 0; i < sizeof maps / sizeof maps[0]; i++) {
        size_t len = strlen(maps[i].from);
        if (strncmp(key, maps[i].from, len) == 0) {
            snprintf(buf, n, "%s%s", maps[i].to, key + len);
            return buf;
        }
    }
    return key;
}

static int same_shape(const struct model_param *p, const struct st_tensor *t)
{
    if (p->ndim != t->ndim) return 0;
    for (int i = 0; i < p->ndim; i++)
        if (p->shape[i] != t->shape[i]) return 0;
    return 1;
}

static void shape_text(const int64_t *shape, int ndim, char *out, size_t n)
{
    size_t j = (size_t)snprintf(out, n, "[");
    for (int i = 0; i < ndim && j < n; i++) j += (size_t)snprintf(out + j, n - j, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (j < n) snprintf(out + j, n - j, "]");
}

static int load_tensor(const struct model_param *p, const struct st_tensor *t, float *params, struct mmupt_err *err)
{
    if (!same_shape(p, t)) {
        char want[128], got[128];
        shape_text(p->shape, p->ndim, want, sizeof want);
        shape_text(t->shape, t->ndim, got, sizeof got);
        return mmupt_fail(err, "%s: tensor '%s' has shape %s, the config implies %s", t->file, t->name, got, want);
    }
    return st_copy_f32(t, params + p->offset, p->numel, err);
}

int model_weights_load(const struct model_spec *s, float *params, const char *path, struct mmupt_err *err)
{
    struct st_set set;
    if (st_open(&set, path, err)) return -1;
    char *filled = calloc((size_t)s->n_params, 1);
    if (!filled) MMUPT_DIE("out of memory");
    int rc = -1;
    int tied = s->L.lm_head == s->L.embed;
    for (size_t i = 0; i < st_count(&set); i++) {
        const struct st_tensor *t = st_at(&set, i);
        char buf[512];
        const char *name = canonical(t->name, buf, sizeof buf);
        const struct model_param *p = model_spec_find(s, name);
        if (!p) {
            /* Some tied checkpoints store the head anyway; the embedding is the one used. */
            if (tied && strcmp(name, "lm_head.weight") == 0) continue;
            mmupt_fail(err, "%s: unexpected tensor '%s' (not part of this model's config)", t->file, t->name);
            goto out;
        }
        size_t k = (size_t)(p - s->params);
        if (filled[k]) {
            mmupt_fail(err, "%s: tensor '%s' appears twice (under two key layouts)", t->file, t->name);
            goto out;
        }
        if (load_tensor(p, t, params, err)) goto out;
        filled[k] = 1;
    }
    for (int k = 0; k < s->n_params; k++) {
        if (!filled[k]) {
            mmupt_fail(err, "%s: missing tensor '%s'", path, s->params[k].name);
            goto out;
        }
    }
    rc = 0;
out:
    free(filled);
    st_close(&set);
    return rc;
}

int model_weights_save(const struct model_spec *s, const float *params, const char *dir, size_t max_shard_bytes,
                       struct mmupt_err *err)
{
    struct st_entry *e = calloc((size_t)s->n_params, sizeof *e);
    if (!e) MMUPT_DIE("out of memory");
    for (int i = 0; i < s->n_params; i++) {
        const struct model_param *p = &s->params[i];
        e[i].name = p->name;
        e[i].dtype = ST_F32;
        e[i].ndim = p->ndim;
        for (int d = 0; d < p->ndim; d++) e[i].shape[d] = p->shape[d];
        e[i].data = params + p->offset;
    }
    int rc = st_write_model(dir, e, (size_t)s->n_params, max_shard_bytes, err);
    free(e);
    return rc;
}
