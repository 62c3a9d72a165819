/* Writing one checkpoint's files: each learner its optimizer shard, learner 0 the model file. Both
 * are fsynced before they count (ckpt_commit renames the directory only after every file is done). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static void optim_name(const char *dir, int rank, int n, char *out, size_t cap)
{
    snprintf(out, cap, "%s/optim-%05d-of-%05d.h5", dir, rank, n);
}

int ckpt_write_optim(const char *partial, int rank, int n_learners, size_t lo, size_t hi, size_t n, const float *m,
                     const float *v, int64_t t, struct mmupt_err *err)
{
    char path[CKPT_PATH_MAX + 64];
    optim_name(partial, rank, n_learners, path, sizeof path);
    hid_t f = ck_create(path, err);
    if (f < 0) return -1;
    hsize_t len = hi - lo;
    int rc = ck_write_attr_i64(f, path, "lo", (int64_t)lo, err) || ck_write_attr_i64(f, path, "hi", (int64_t)hi, err) ||
             ck_write_attr_i64(f, path, "n", (int64_t)n, err) || ck_write_attr_i64(f, path, "t", t, err) ||
             ck_write_data(f, path, "m", H5T_NATIVE_FLOAT, sizeof(float), 1, &len, m, err) ||
             ck_write_data(f, path, "v", H5T_NATIVE_FLOAT, sizeof(float), 1, &len, v, err)
                 ? -1 : 0;
    if (rc) {
        H5Fclose(f);
        return -1;
    }
    return ck_close_sync(f, path, err);
}

static int write_meta(hid_t f, const char *path, const struct ckpt_meta *m, struct mmupt_err *err)
{
    int64_t ref_sum;
    memcpy(&ref_sum, &m->ref_sum, sizeof ref_sum); /* HDF5 attribute as int64: the same 8 bytes */
    if (ck_write_attr_i64(f, path, "format", CKPT_FORMAT_VERSION, err) || ck_write_attr_i64(f, path, "step", m->step, err) ||
        ck_write_attr_i64(f, path, "policy_version", m->policy_version, err) ||
        ck_write_attr_i64(f, path, "optim_steps", m->optim_steps, err) ||
        ck_write_attr_i64(f, path, "optim_t", m->optim_t, err) || ck_write_attr_i64(f, path, "n_params", m->n_params, err) ||
        ck_write_attr_i64(f, path, "n_learners", m->n_learners, err) || ck_write_attr_i64(f, path, "ref_sum", ref_sum, err) ||
        ck_write_attr_str(f, path, "arch", m->arch, err) || ck_write_attr_str(f, path, "model_path", m->model_path, err))
        return -1;
    hsize_t len = strlen(m->config_yaml);
    if (ck_write_data(f, path, "config", H5T_NATIVE_UCHAR, 1, 1, &len, m->config_yaml, err)) return -1;
    hsize_t cshape[2] = {(hsize_t)m->n_cursors, 4};
    return ck_write_data(f, path, "cursors", H5T_NATIVE_INT64, sizeof(int64_t), 2, cshape, m->cursors, err);
}

/* One dataset per parameter, named by its Hugging Face key, with its shape. */
static int write_weights(hid_t f, const char *path, const struct model_spec *spec, const float *params,
                         struct mmupt_err *err)
{
    hid_t g = H5Gcreate2(f, "weights", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (g < 0) return mmupt_fail(err, "%s: cannot create group weights", path);
    int rc = 0;
    for (int i = 0; i < spec->n_params && rc == 0; i++) {
        const struct model_param *p = &spec->params[i];
        hsize_t shape[MODEL_MAX_DIMS];
        for (int k = 0; k < p->ndim; k++) shape[k] = (hsize_t)p->shape[k];
        rc = ck_write_data(g, path, p->name, H5T_NATIVE_FLOAT, sizeof(float), p->ndim, shape, params + p->offset, err);
    }
    H5Gclose(g);
    return rc;
}

static int write_snaps(hid_t f, const char *path, const struct ckpt_meta *m, const float *const *snaps,
                       struct mmupt_err *err)
{
    hid_t g = H5Gcreate2(f, "snapshots", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (g < 0) return mmupt_fail(err, "%s: cannot create group snapshots", path);
    int rc = 0;
    hsize_t n = (hsize_t)m->n_params;
    for (int i = 0; i < m->n_snaps && rc == 0; i++) {
        char name[32];
        snprintf(name, sizeof name, "%lld", (long long)m->snap_version[i]);
        rc = ck_write_data(g, path, name, H5T_NATIVE_FLOAT, sizeof(float), 1, &n, snaps[i], err);
    }
    H5Gclose(g);
    return rc;
}

int ckpt_write_model(const char *partial, const struct model_spec *spec, const float *params,
                     const struct ckpt_meta *meta, const float *const *snaps, struct mmupt_err *err)
{
    char path[CKPT_PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/model.h5", partial);
    hid_t f = ck_create(path, err);
    if (f < 0) return -1;
    struct h5_quiet q;
    h5_quiet_begin(&q);
    int rc = write_meta(f, path, meta, err) || write_weights(f, path, spec, params, err) ||
             write_snaps(f, path, meta, snaps, err) ? -1 : 0;
    h5_quiet_end(&q);
    if (rc) {
        H5Fclose(f);
        return -1;
    }
    return ck_close_sync(f, path, err);
}
