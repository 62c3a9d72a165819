/* Reading a checkpoint back: metadata, weights by name, snapshots, and optimizer shards (resharded
 * when the learner count changed). Every dataset's checksum is verified as it is read. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "mmupt/comm.h"

void ckpt_meta_free(struct ckpt_meta *m)
{
    free(m->config_yaml);
    free(m->cursors);
    m->config_yaml = NULL;
    m->cursors = NULL;
}

static hid_t open_model(const char *ckpt, char *path, size_t n, struct mmupt_err *err)
{
    snprintf(path, n, "%s/model.h5", ckpt);
    return ck_open(path, err);
}

/* The dataset's element count, or -1. */
static int64_t data_len(hid_t f, const char *name)
{
    struct h5_quiet q;
    h5_quiet_begin(&q);
    int64_t n = -1;
    hid_t d = H5Lexists(f, name, H5P_DEFAULT) > 0 ? H5Dopen2(f, name, H5P_DEFAULT) : -1;
    if (d >= 0) {
        hid_t s = H5Dget_space(d);
        hssize_t k = H5Sget_simple_extent_npoints(s);
        n = k;
        H5Sclose(s);
        H5Dclose(d);
    }
    h5_quiet_end(&q);
    return n;
}

static int read_attrs(hid_t f, const char *path, struct ckpt_meta *m, struct mmupt_err *err)
{
    int64_t nl = 0, ref_sum = 0;
    if (ck_read_attr_i64(f, path, "format", &m->format, err)) return -1;
    if (m->format != CKPT_FORMAT_VERSION)
        return mmupt_fail(err, "%s: checkpoint format %lld, this mmupt reads format %d", path, (long long)m->format,
                          CKPT_FORMAT_VERSION);
    if (ck_read_attr_i64(f, path, "step", &m->step, err) ||
        ck_read_attr_i64(f, path, "policy_version", &m->policy_version, err) ||
        ck_read_attr_i64(f, path, "optim_steps", &m->optim_steps, err) ||
        ck_read_attr_i64(f, path, "optim_t", &m->optim_t, err) || ck_read_attr_i64(f, path, "n_params", &m->n_params, err) ||
        ck_read_attr_i64(f, path, "n_learners", &nl, err) || ck_read_attr_i64(f, path, "ref_sum", &ref_sum, err) ||
        ck_read_attr_str(f, path, "arch", m->arch, sizeof m->arch, err) ||
        ck_read_attr_str(f, path, "model_path", m->model_path, sizeof m->model_path, err))
        return -1;
    memcpy(&m->ref_sum, &ref_sum, sizeof ref_sum);
    if (m->step < 0 || m->policy_version < 0 || m->optim_steps < 0 || m->optim_t < 0 || m->n_params < 1 || nl < 1 ||
        nl > 1 << 20)
        return mmupt_fail(err, "%s: counters out of range (step %lld, learners %lld, parameters %lld)", path,
                          (long long)m->step, (long long)nl, (long long)m->n_params);
    m->n_learners = (int)nl;
    return 0;
}

/* Snapshot versions are the names in /snapshots. */
static herr_t add_snap(hid_t g, const char *name, const H5L_info_t *info, void *data)
{
    (void)g, (void)info;
    struct ckpt_meta *m = data;
    char *end;
    long long v = strtoll(name, &end, 10);
    if (*end || v < 0 || m->n_snaps >= CKPT_MAX_SNAPS) return -1;
    m->snap_version[m->n_snaps++] = v;
    return 0;
}

int ckpt_read_meta(const char *ckpt, struct ckpt_meta *m, struct mmupt_err *err)
{
    memset(m, 0, sizeof *m);
    char path[CKPT_PATH_MAX + 64];
    hid_t f = open_model(ckpt, path, sizeof path, err);
    if (f < 0) return -1;
    int rc = read_attrs(f, path, m, err);
    int64_t clen = rc ? -1 : data_len(f, "config"), ncur = rc ? -1 : data_len(f, "cursors");
    if (rc == 0 && (clen < 0 || ncur < 0 || ncur % 4))
        rc = mmupt_fail(err, "%s: the config or cursors dataset is missing or malformed", path);
    if (rc == 0) {
        m->config_yaml = mmupt_xcalloc((size_t)clen + 1, 1);
        m->n_cursors = (int)(ncur / 4);
        m->cursors = mmupt_xcalloc((size_t)(m->n_cursors ? m->n_cursors : 1), sizeof *m->cursors);
        rc = ck_read_data(f, path, "config", H5T_NATIVE_UCHAR, 1, 1, NULL, (size_t)clen, m->config_yaml, err) ||
             ck_read_data(f, path, "cursors", H5T_NATIVE_INT64, sizeof(int64_t), 2, NULL, (size_t)ncur, m->cursors, err)
                 ? -1 : 0;
    }
    if (rc == 0) {
        struct h5_quiet q;
        h5_quiet_begin(&q);
        hid_t g = H5Gopen2(f, "snapshots", H5P_DEFAULT);
        if (g < 0 || H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, NULL, add_snap, m) < 0)
            rc = mmupt_fail(err, "%s: the snapshots group is missing or malformed", path);
        if (g >= 0) H5Gclose(g);
        h5_quiet_end(&q);
    }
    H5Fclose(f);
    if (rc) ckpt_meta_free(m);
    return rc;
}

int ckpt_read_weights(const char *ckpt, const struct model_spec *spec, float *params, struct mmupt_err *err)
{
    char path[CKPT_PATH_MAX + 64];
    hid_t f = open_model(ckpt, path, sizeof path, err);
    if (f < 0) return -1;
    struct h5_quiet q;
    h5_quiet_begin(&q);
    hid_t g = H5Gopen2(f, "weights", H5P_DEFAULT);
    h5_quiet_end(&q);
    int rc = g < 0 ? mmupt_fail(err, "%s: group weights is missing", path) : 0;
    hsize_t n_links = 0;
    if (rc == 0) {
        H5G_info_t gi;
        if (H5Gget_info(g, &gi) >= 0) n_links = gi.nlinks;
        if (n_links != (hsize_t)spec->n_params)
            rc = mmupt_fail(err, "%s: %llu weight tensors, this model has %d (a checkpoint of another model?)", path,
                            (unsigned long long)n_links, spec->n_params);
    }
    for (int i = 0; i < spec->n_params && rc == 0; i++) {
        const struct model_param *p = &spec->params[i];
        hsize_t shape[MODEL_MAX_DIMS];
        for (int k = 0; k < p->ndim; k++) shape[k] = (hsize_t)p->shape[k];
        char where[CKPT_PATH_MAX + 80];
        snprintf(where, sizeof where, "%s: weights", path);
        rc = ck_read_data(g, where, p->name, H5T_NATIVE_FLOAT, sizeof(float), p->ndim, shape, (size_t)p->numel,
                          params + p->offset, err);
    }
    if (g >= 0) H5Gclose(g);
    H5Fclose(f);
    return rc;
}

int ckpt_read_snapshot(const char *ckpt, int64_t version, int64_t n_params, float *out, struct mmupt_err *err)
{
    char path[CKPT_PATH_MAX + 64], name[48];
    hid_t f = open_model(ckpt, path, sizeof path, err);
    if (f < 0) return -1;
    snprintf(name, sizeof name, "snapshots/%lld", (long long)version);
    int rc = ck_read_data(f, path, name, H5T_NATIVE_FLOAT, sizeof(float), 1, NULL, (size_t)n_params, out, err);
    H5Fclose(f);
    return rc;
}

/* Read one saved shard whole (verifying it) and copy its overlap with [lo, hi). */
static int read_shard(const char *ckpt, int r, int saved, size_t lo, size_t hi, size_t n, float *m, float *v, int64_t *t,
                      struct mmupt_err *err)
{
    char path[CKPT_PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/optim-%05d-of-%05d.h5", ckpt, r, saved);
    hid_t f = ck_open(path, err);
    if (f < 0) return -1;
    int64_t slo, shi, sn;
    int rc = ck_read_attr_i64(f, path, "lo", &slo, err) || ck_read_attr_i64(f, path, "hi", &shi, err) ||
             ck_read_attr_i64(f, path, "n", &sn, err) || ck_read_attr_i64(f, path, "t", t, err) ? -1 : 0;
    if (rc == 0 && (sn != (int64_t)n || slo < 0 || shi < slo || shi > sn))
        rc = mmupt_fail(err, "%s: shard [%lld, %lld) of %lld does not fit a model of %zu parameters", path,
                        (long long)slo, (long long)shi, (long long)sn, n);
    float *bm = NULL, *bv = NULL;
    /* A shard inside [lo, hi) (always so when the learner count is unchanged) is read straight
     * into place: no second copy of the moments in memory. */
    int inside = rc == 0 && (size_t)slo >= lo && (size_t)shi <= hi;
    if (inside) {
        size_t len = (size_t)(shi - slo);
        rc = ck_read_data(f, path, "m", H5T_NATIVE_FLOAT, sizeof(float), 1, NULL, len, m + ((size_t)slo - lo), err) ||
             ck_read_data(f, path, "v", H5T_NATIVE_FLOAT, sizeof(float), 1, NULL, len, v + ((size_t)slo - lo), err) ? -1 : 0;
    } else if (rc == 0) {
        size_t len = (size_t)(shi - slo);
        bm = mmupt_xmalloc((len ? len : 1) * sizeof *bm);
        bv = mmupt_xmalloc((len ? len : 1) * sizeof *bv);
        rc = ck_read_data(f, path, "m", H5T_NATIVE_FLOAT, sizeof(float), 1, NULL, len, bm, err) ||
             ck_read_data(f, path, "v", H5T_NATIVE_FLOAT, sizeof(float), 1, NULL, len, bv, err) ? -1 : 0;
    }
    if (rc == 0 && !inside) {
        size_t a = (size_t)slo > lo ? (size_t)slo : lo, b = (size_t)shi < hi ? (size_t)shi : hi;
        if (a < b) {
            memcpy(m + (a - lo), bm + (a - (size_t)slo), (b - a) * sizeof *m);
            memcpy(v + (a - lo), bv + (a - (size_t)slo), (b - a) * sizeof *v);
        }
    }
    free(bm);
    free(bv);
    H5Fclose(f);
    return rc;
}

int ckpt_read_optim(const char *ckpt, int saved_learners, size_t lo, size_t hi, size_t n, float *m, float *v,
                    int64_t *t, struct mmupt_err *err)
{
    int rc = 0;
    for (int r = 0; r < saved_learners && rc == 0; r++) {
        /* The saved shards are comm_shard's: only those overlapping [lo, hi) are read (and shard 0
         * for an empty range, to learn t). */
        size_t slo, shi;
        comm_shard(n, saved_learners, r, &slo, &shi);
        if ((shi <= lo || slo >= hi) && !(hi == lo && r == 0)) continue;
        rc = read_shard(ckpt, r, saved_learners, lo, hi, n, m, v, t, err);
    }
    return rc;
}
