/* Opening a prompt dataset and validating its schema (docs/datasets.md).
 *
 * Everything the reader later relies on is checked here, once: the root attributes, each dataset's
 * link kind, type, rank and length, the filters it needs, and the whole image_offset array (read in
 * fixed-size blocks, so opening a split of millions of items takes no more memory than one of ten).
 * Per-item limits (string and image sizes, UTF-8, images per item) are checked by ds_read, so one
 * bad item does not make a whole split unusable. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "internal.h"
#include "mmupt/dataset.h"

#define OFFSET_BLOCK 4096          /* image_offset entries validated per read */
#define MAX_ITEMS ((int64_t)1 << 40) /* far beyond any real split; keeps N + 1 and sums exact */
#define ATTR_MAX 64                /* longest mmupt_format value read */

void ds_reader_free(struct ds_reader *r)
{
    if (!r) return;
    for (int f = 0; f < DS_N_FIELDS; f++) {
        if (r->fspace[f] >= 0) H5Sclose(r->fspace[f]);
        if (r->dset[f] >= 0) H5Dclose(r->dset[f]);
    }
    hid_t types[] = {r->str_type, r->blob_type};
    for (int k = 0; k < 2; k++)
        if (types[k] >= 0) H5Tclose(types[k]);
    if (r->mem1 >= 0) H5Sclose(r->mem1);
    if (r->mem2 >= 0) H5Sclose(r->mem2);
    if (r->dxpl >= 0) H5Pclose(r->dxpl);
    if (r->file >= 0) H5Fclose(r->file);
    free(r->name);
    free(r);
}

static struct ds_reader *reader_new(const char *name)
{
    struct ds_reader *r = mmupt_xcalloc(1, sizeof *r);
    size_t n = strlen(name) + 1;
    r->name = mmupt_xmalloc(n);
    memcpy(r->name, name, n);
    r->file = r->str_type = r->blob_type = r->mem1 = r->mem2 = r->dxpl = -1;
    for (int f = 0; f < DS_N_FIELDS; f++) r->dset[f] = r->fspace[f] = -1;
    return r;
}

/* ---- root attributes ---- */

/* A string attribute of one element, fixed or variable length, into out (at most n - 1 bytes). */
static int read_string_attr(struct ds_reader *r, const char *attr, char *out, size_t n, struct mmupt_err *err)
{
    hid_t a = H5Aopen(r->file, attr, H5P_DEFAULT);
    if (a < 0) return mmupt_fail(err, "%s: cannot open root attribute '%s'", r->name, attr);
    hid_t t = H5Aget_type(a), sp = H5Aget_space(a), mt = -1;
    int rc = -1;
    char desc[96];
    if (t < 0 || sp < 0 || H5Sget_simple_extent_npoints(sp) != 1) {
        mmupt_fail(err, "%s: root attribute '%s' must hold a single string", r->name, attr);
    } else if (H5Tget_class(t) != H5T_STRING) {
        ds_type_describe(t, desc, sizeof desc);
        mmupt_fail(err, "%s: root attribute '%s' has type %s; expected a string", r->name, attr, desc);
    } else if (H5Tis_variable_str(t) > 0) {
        char *s = NULL;
        mt = ds_str_type();
        if (H5Aread(a, mt, &s) < 0 || !s) {
            mmupt_fail(err, "%s: cannot read root attribute '%s'", r->name, attr);
        } else {
            rc = strlen(s) < n ? 0 : mmupt_fail(err, "%s: root attribute '%s' is too long", r->name, attr);
            if (rc == 0) memcpy(out, s, strlen(s) + 1);
        }
        if (s) H5free_memory(s);
    } else {
        size_t size = H5Tget_size(t);
        mt = H5Tcopy(t);
        if (size >= n) {
            mmupt_fail(err, "%s: root attribute '%s' is too long", r->name, attr);
        } else if (H5Aread(a, mt, out) < 0) {
            mmupt_fail(err, "%s: cannot read root attribute '%s'", r->name, attr);
        } else {
            out[size] = '\0';
            while (size > 0 && (out[size - 1] == ' ' || out[size - 1] == '\0')) out[--size] = '\0'; /* padding */
            rc = 0;
        }
    }
    if (mt >= 0) H5Tclose(mt);
    if (sp >= 0) H5Sclose(sp);
    if (t >= 0) H5Tclose(t);
    H5Aclose(a);
    return rc;
}

static int read_int_attr(struct ds_reader *r, const char *attr, int64_t *out, struct mmupt_err *err)
{
    hid_t a = H5Aopen(r->file, attr, H5P_DEFAULT);
    if (a < 0) return mmupt_fail(err, "%s: cannot open root attribute '%s'", r->name, attr);
    hid_t t = H5Aget_type(a), sp = H5Aget_space(a);
    int rc = -1;
    char desc[96];
    if (t < 0 || sp < 0 || H5Sget_simple_extent_npoints(sp) != 1) {
        mmupt_fail(err, "%s: root attribute '%s' must hold a single integer", r->name, attr);
    } else if (H5Tget_class(t) != H5T_INTEGER) {
        ds_type_describe(t, desc, sizeof desc);
        mmupt_fail(err, "%s: root attribute '%s' has type %s; expected an integer", r->name, attr, desc);
    } else if (H5Aread(a, H5T_NATIVE_INT64, out) < 0) {
        mmupt_fail(err, "%s: cannot read root attribute '%s' as int64", r->name, attr);
    } else {
        rc = 0;
    }
    if (sp >= 0) H5Sclose(sp);
    if (t >= 0) H5Tclose(t);
    H5Aclose(a);
    return rc;
}

static int check_attributes(struct ds_reader *r, struct mmupt_err *err)
{
    const char *names[] = {"mmupt_format", "format_version"};
    for (int k = 0; k < 2; k++)
        if (H5Aexists(r->file, names[k]) <= 0)
            return mmupt_fail(err, "%s: not an mmupt prompt dataset: root attribute '%s' is missing", r->name,
                              names[k]);
    char format[ATTR_MAX];
    if (read_string_attr(r, "mmupt_format", format, sizeof format, err)) return -1;
    if (strcmp(format, DS_FORMAT_NAME) != 0)
        return mmupt_fail(err, "%s: mmupt_format is '%s', expected '%s': not a prompt dataset", r->name, format,
                          DS_FORMAT_NAME);
    int64_t version;
    if (read_int_attr(r, "format_version", &version, err)) return -1;
    if (version != DS_FORMAT_VERSION)
        return mmupt_fail(err, "%s: format_version is %lld; this build reads version %d", r->name, (long long)version,
                          DS_FORMAT_VERSION);
    return 0;
}

/* ---- datasets ---- */

static int type_ok(enum ds_field f, hid_t t)
{
    if (f == DS_OFFSET)
        return H5Tget_class(t) == H5T_INTEGER && H5Tget_size(t) == 8 && H5Tget_sign(t) == H5T_SGN_2;
    if (f == DS_IMAGES) {
        if (H5Tget_class(t) != H5T_VLEN) return 0;
        hid_t super = H5Tget_super(t);
        int ok = super >= 0 && H5Tget_class(super) == H5T_INTEGER && H5Tget_size(super) == 1 &&
                 H5Tget_sign(super) == H5T_SGN_NONE;
        if (super >= 0) H5Tclose(super);
        return ok;
    }
    return H5Tget_class(t) == H5T_STRING && H5Tis_variable_str(t) > 0;
}

static const char *type_wanted(enum ds_field f)
{
    if (f == DS_OFFSET) return "int64";
    if (f == DS_IMAGES) return "variable-length sequences of uint8";
    return "variable-length UTF-8 strings";
}

/* Every filter the dataset was written with must exist in this HDF5 build, or reads fail later with
 * an obscure message; h5py users sometimes write lzf, which plain HDF5 lacks. */
static int check_filters(struct ds_reader *r, hid_t d, const char *name, struct mmupt_err *err)
{
    hid_t dcpl = H5Dget_create_plist(d);
    if (dcpl < 0) return mmupt_fail(err, "%s: '%s': cannot read its creation properties", r->name, name);
    int nf = H5Pget_nfilters(dcpl), rc = 0;
    for (int k = 0; k < nf && rc == 0; k++) {
        unsigned flags, conf;
        size_t nv = 0;
        char fname[64] = "";
        H5Z_filter_t id = H5Pget_filter2(dcpl, (unsigned)k, &flags, &nv, NULL, sizeof fname, fname, &conf);
        if (id < 0 || H5Zfilter_avail(id) <= 0)
            rc = mmupt_fail(err, "%s: '%s' needs HDF5 filter %d (%s), which this HDF5 build lacks", r->name, name,
                            (int)id, fname[0] ? fname : "unnamed");
    }
    H5Pclose(dcpl);
    return rc;
}

/* Open dataset f into r, checking link kind, object kind, type, rank and filters; *len gets its
 * length. An absent optional dataset leaves r->dset[f] at -1. */
static int open_field(struct ds_reader *r, enum ds_field f, int64_t *len, struct mmupt_err *err)
{
    const char *name = ds_field_names[f];
    htri_t exists = H5Lexists(r->file, name, H5P_DEFAULT);
    if (exists < 0) return mmupt_fail(err, "%s: cannot look up '%s'", r->name, name);
    if (exists == 0)
        return f == DS_ANSWER || f == DS_PROVENANCE ? 0 : mmupt_fail(err, "%s: dataset '%s' is missing", r->name, name);
    H5L_info_t li;
    if (H5Lget_info(r->file, name, &li, H5P_DEFAULT) < 0)
        return mmupt_fail(err, "%s: cannot look up '%s'", r->name, name);
    if (li.type != H5L_TYPE_HARD) /* an external link could pull in any file */
        return mmupt_fail(err, "%s: '%s' is a soft or external link; it must be a dataset in the file", r->name, name);
    hid_t obj = H5Oopen(r->file, name, H5P_DEFAULT);
    if (obj < 0) return mmupt_fail(err, "%s: cannot open '%s'", r->name, name);
    if (H5Iget_type(obj) != H5I_DATASET) {
        H5Oclose(obj);
        return mmupt_fail(err, "%s: '%s' is not a dataset (a group?)", r->name, name);
    }
    r->dset[f] = obj;
    hid_t t = H5Dget_type(obj);
    if (t < 0) return mmupt_fail(err, "%s: '%s': cannot read its type", r->name, name);
    if (!type_ok(f, t)) {
        char desc[96];
        ds_type_describe(t, desc, sizeof desc);
        H5Tclose(t);
        return mmupt_fail(err, "%s: '%s' has type %s; expected %s", r->name, name, desc, type_wanted(f));
    }
    H5Tclose(t);
    hid_t sp = r->fspace[f] = H5Dget_space(obj);
    if (sp < 0) return mmupt_fail(err, "%s: '%s': cannot read its shape", r->name, name);
    int rank = H5Sget_simple_extent_ndims(sp);
    if (H5Sget_simple_extent_type(sp) != H5S_SIMPLE || rank != 1)
        return mmupt_fail(err, "%s: '%s' has rank %d; expected a one-dimensional dataset", r->name, name,
                          rank < 0 ? 0 : rank);
    hsize_t dim;
    H5Sget_simple_extent_dims(sp, &dim, NULL);
    if (dim > (hsize_t)MAX_ITEMS * DS_MAX_IMAGES)
        return mmupt_fail(err, "%s: '%s' has %llu entries, more than this reader accepts", r->name, name,
                          (unsigned long long)dim);
    *len = (int64_t)dim;
    return check_filters(r, obj, name, err);
}

static int open_datasets(struct ds_reader *r, struct mmupt_err *err)
{
    int64_t len[DS_N_FIELDS] = {0};
    for (int f = 0; f < DS_N_FIELDS; f++)
        if (open_field(r, (enum ds_field)f, &len[f], err)) return -1;
    r->n = len[DS_ID];
    r->m = len[DS_IMAGES];
    if (r->n > MAX_ITEMS)
        return mmupt_fail(err, "%s: 'id' has %lld entries, more than this reader accepts", r->name, (long long)r->n);
    for (int f = DS_SOURCE; f < DS_N_FIELDS; f++)
        if (f != DS_OFFSET && f != DS_IMAGES && r->dset[f] >= 0 && len[f] != r->n)
            return mmupt_fail(err, "%s: '%s' has %lld entries but 'id' has %lld", r->name, ds_field_names[f],
                              (long long)len[f], (long long)r->n);
    if (len[DS_OFFSET] != r->n + 1)
        return mmupt_fail(err, "%s: 'image_offset' has %lld entries; expected %lld (one more than 'id')", r->name,
                          (long long)len[DS_OFFSET], (long long)r->n + 1);
    return 0;
}

/* image_offset: 0 first, never decreasing, never past the end of images, ending exactly there. */
static int check_offsets(struct ds_reader *r, struct mmupt_err *err)
{
    int64_t *buf = mmupt_xmalloc(OFFSET_BLOCK * sizeof *buf);
    int64_t prev = 0, total = r->n + 1;
    int rc = 0;
    for (int64_t start = 0; start < total && rc == 0; start += OFFSET_BLOCK) {
        hsize_t s = (hsize_t)start, c = (hsize_t)(total - start < OFFSET_BLOCK ? total - start : OFFSET_BLOCK);
        hid_t mem = H5Screate_simple(1, &c, NULL);
        if (mem < 0 || H5Sselect_hyperslab(r->fspace[DS_OFFSET], H5S_SELECT_SET, &s, NULL, &c, NULL) < 0 ||
            H5Dread(r->dset[DS_OFFSET], H5T_NATIVE_INT64, mem, r->fspace[DS_OFFSET], H5P_DEFAULT, buf) < 0) {
            char why[256];
            h5_error_msg(why, sizeof why);
            rc = mmupt_fail(err, "%s: 'image_offset': cannot read entries %lld..%lld: %s", r->name, (long long)start,
                            (long long)(start + (int64_t)c - 1), why);
        }
        if (mem >= 0) H5Sclose(mem);
        for (hsize_t k = 0; k < c && rc == 0; k++) {
            int64_t j = start + (int64_t)k, v = buf[k];
            if (j == 0 && v != 0)
                rc = mmupt_fail(err, "%s: image_offset[0] is %lld; it must be 0", r->name, (long long)v);
            else if (v < prev)
                rc = mmupt_fail(err, "%s: image_offset decreases at entry %lld: %lld after %lld", r->name,
                                (long long)j, (long long)v, (long long)prev);
            else if (v > r->m)
                rc = mmupt_fail(err, "%s: image_offset[%lld] is %lld, out of range: 'images' has %lld entries", r->name,
                                (long long)j, (long long)v, (long long)r->m);
            prev = v;
        }
    }
    free(buf);
    if (rc == 0 && prev != r->m)
        rc = mmupt_fail(err, "%s: image_offset ends at %lld but 'images' has %lld entries", r->name, (long long)prev,
                        (long long)r->m);
    return rc;
}

/* ---- the guard HDF5 allocates variable-length data through ---- */

static void *guard_alloc(size_t size, void *info)
{
    struct ds_vlen_guard *g = info;
    if (size > g->cap || g->last) { /* too big, or a second allocation for a one-element read */
        g->refused = size;
        return NULL;
    }
    g->last = mmupt_xmalloc(size ? size : 1);
    g->last_size = size;
    return g->last;
}

static void guard_free(void *p, void *info)
{
    struct ds_vlen_guard *g = info;
    if (p == g->last) g->last = NULL;
    free(p);
}

static int prepare_reads(struct ds_reader *r)
{
    hsize_t one = 1, two = 2;
    r->str_type = ds_str_type();
    r->blob_type = ds_blob_type();
    r->mem1 = H5Screate_simple(1, &one, NULL);
    r->mem2 = H5Screate_simple(1, &two, NULL);
    r->dxpl = H5Pcreate(H5P_DATASET_XFER);
    MMUPT_CHECK(r->mem1 >= 0 && r->mem2 >= 0 && r->dxpl >= 0);
    MMUPT_CHECK(H5Pset_vlen_mem_manager(r->dxpl, guard_alloc, &r->guard, guard_free, &r->guard) >= 0);
    return 0;
}

/* ---- opening ---- */

/* Opens r->name with fapl (taken over) and validates everything. */
static int open_validate(struct ds_reader *r, hid_t fapl, struct mmupt_err *err)
{
    /* Datasets are read-only and shared by every rank; HDF5's advisory lock fails on some
     * parallel file systems (Lustre without flock) and protects nothing here. */
#if H5_VERSION_GE(1, 10, 7)
    H5Pset_file_locking(fapl, 0, 1);
#endif
    H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG);
    r->file = H5Fopen(r->name, H5F_ACC_RDONLY, fapl);
    char why[256];
    h5_error_msg(why, sizeof why); /* before the next HDF5 call clears the error stack */
    H5Pclose(fapl);
    if (r->file < 0) return mmupt_fail(err, "%s: cannot open as HDF5: %s", r->name, why);
    if (check_attributes(r, err) || open_datasets(r, err) || check_offsets(r, err)) return -1;
    return prepare_reads(r);
}

static int finish_open(struct ds_reader **out, struct ds_reader *r, hid_t fapl, struct mmupt_err *err)
{
    struct h5_quiet q;
    h5_quiet_begin(&q);
    int rc = open_validate(r, fapl, err);
    if (rc) ds_reader_free(r);
    else *out = r;
    h5_quiet_end(&q);
    return rc;
}

int ds_open(struct ds_reader **out, const char *path, struct mmupt_err *err)
{
    struct stat st;
    if (stat(path, &st) != 0) return mmupt_fail(err, "%s: cannot open: %s", path, strerror(errno));
    if (S_ISDIR(st.st_mode)) return mmupt_fail(err, "%s: is a directory, not a dataset file", path);
    struct h5_quiet q;
    h5_quiet_begin(&q);
    htri_t is = H5Fis_hdf5(path);
    h5_quiet_end(&q);
    if (is <= 0) return mmupt_fail(err, "%s: not an HDF5 file (no HDF5 signature)", path);
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    MMUPT_CHECK(fapl >= 0);
    return finish_open(out, reader_new(path), fapl, err);
}

/* HDF5 looks for its signature at 0, 512, 1024, 2048, ... (after a user block). */
static int has_signature(const unsigned char *p, size_t len)
{
    static const unsigned char sig[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
    for (size_t at = 0; at + 8 <= len; at = at ? at * 2 : 512)
        if (memcmp(p + at, sig, 8) == 0) return 1;
    return 0;
}

int ds_open_image(struct ds_reader **out, const char *name, const void *image, size_t len, struct mmupt_err *err)
{
    if (!has_signature(image, len)) return mmupt_fail(err, "%s: not an HDF5 file (no HDF5 signature)", name);
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    MMUPT_CHECK(fapl >= 0);
    /* The core driver serves the file from memory; without a backing store nothing touches disk.
     * H5Pset_file_image copies the bytes, so the caller's buffer may go away after this call. */
    if (H5Pset_fapl_core(fapl, 1 << 16, 0) < 0 || H5Pset_file_image(fapl, (void *)image, len) < 0) {
        H5Pclose(fapl);
        return mmupt_fail(err, "%s: cannot set up an in-memory HDF5 file of %zu bytes", name, len);
    }
    return finish_open(out, reader_new(name), fapl, err);
}

void ds_close(struct ds_reader *r)
{
    struct h5_quiet q;
    h5_quiet_begin(&q);
    ds_reader_free(r);
    h5_quiet_end(&q);
}

int64_t ds_count(const struct ds_reader *r)
{
    return r->n;
}

int ds_has_provenance(const struct ds_reader *r)
{
    return r->dset[DS_PROVENANCE] >= 0;
}

int ds_has_answers(const struct ds_reader *r)
{
    return r->dset[DS_ANSWER] >= 0;
}
