/* Writing a prompt dataset (schema in docs/datasets.md).
 *
 * Every dataset is chunked and extendible, so items are appended one at a time and a split of any
 * size streams through constant memory. The file is built under a temporary name next to the target
 * and renamed over it only by a successful ds_writer_close (after fsync), so readers never see half
 * a split. Items are checked against the reader's limits before anything is written: a refused item
 * leaves the file consistent and the writer usable. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"
#include "mmupt/dataset.h"

/* Chunk lengths: a string chunk holds heap references (16 bytes each), so 256 is 4 KiB; images are
 * read one at a time, offsets two at a time. */
static const hsize_t chunk_len[DS_N_FIELDS] = {256, 256, 256, 256, 1024, 64, 256};

struct ds_writer {
    char *path, *tmp;
    int with_answers;
    int with_provenance; /* ds_writer_enable_provenance was called */
    int failed; /* an HDF5 write failed: the file may be inconsistent and is not published */
    hid_t file;
    hid_t dset[DS_N_FIELDS];
    hid_t str_type, blob_type; /* memory types */
    int64_t len[DS_N_FIELDS];  /* current length of each dataset */
};

/* Call right after the failing HDF5 call: any other HDF5 call clears the error stack it reads. */
static int h5_fail(struct ds_writer *w, struct mmupt_err *err, const char *what)
{
    char why[256];
    h5_error_msg(why, sizeof why);
    w->failed = 1;
    return mmupt_fail(err, "%s: %s: %s", w->path, what, why);
}

/* ---- creating the file ---- */

static int write_attributes(struct ds_writer *w, struct mmupt_err *err)
{
    hid_t sp = H5Screate(H5S_SCALAR);
    const char *format = DS_FORMAT_NAME;
    int64_t version = DS_FORMAT_VERSION;
    hid_t a1 = H5Acreate2(w->file, "mmupt_format", w->str_type, sp, H5P_DEFAULT, H5P_DEFAULT);
    hid_t a2 = H5Acreate2(w->file, "format_version", H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
    int ok = a1 >= 0 && a2 >= 0 && H5Awrite(a1, w->str_type, &format) >= 0 &&
             H5Awrite(a2, H5T_NATIVE_INT64, &version) >= 0;
    int rc = ok ? 0 : h5_fail(w, err, "cannot write the root attributes");
    if (a1 >= 0) H5Aclose(a1);
    if (a2 >= 0) H5Aclose(a2);
    H5Sclose(sp);
    return rc;
}

static int create_dataset(struct ds_writer *w, enum ds_field f, struct mmupt_err *err)
{
    hsize_t zero = 0, unlimited = H5S_UNLIMITED;
    hid_t sp = H5Screate_simple(1, &zero, &unlimited);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    hid_t type = f == DS_OFFSET ? H5Tcopy(H5T_STD_I64LE) : f == DS_IMAGES ? H5Tvlen_create(H5T_STD_U8LE) : ds_str_type();
    int ok = sp >= 0 && dcpl >= 0 && type >= 0 && H5Pset_chunk(dcpl, 1, &chunk_len[f]) >= 0 &&
             H5Pset_obj_track_times(dcpl, 0) >= 0; /* no timestamps: the same items give the same file */
    /* Strings compress as references only (HDF5 keeps variable-length data in its global heap),
     * but the schema asks for gzip, and h5py's converter writes it the same way. */
    if (ok && f != DS_OFFSET && f != DS_IMAGES && H5Zfilter_avail(H5Z_FILTER_DEFLATE) > 0)
        ok = H5Pset_deflate(dcpl, 4) >= 0;
    if (ok) {
        w->dset[f] = H5Dcreate2(w->file, ds_field_names[f], type, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
        ok = w->dset[f] >= 0;
    }
    int rc = 0;
    if (!ok) {
        char what[64];
        snprintf(what, sizeof what, "cannot create '%s'", ds_field_names[f]);
        rc = h5_fail(w, err, what);
    }
    if (type >= 0) H5Tclose(type);
    if (dcpl >= 0) H5Pclose(dcpl);
    if (sp >= 0) H5Sclose(sp);
    return rc;
}

/* Append count elements of `type` from buf to dataset f. */
static int append(struct ds_writer *w, enum ds_field f, hid_t type, hsize_t count, const void *buf,
                  struct mmupt_err *err)
{
    hsize_t start = (hsize_t)w->len[f], total = start + count;
    hid_t fs = -1, mem = -1;
    int ok = H5Dset_extent(w->dset[f], &total) >= 0 && (fs = H5Dget_space(w->dset[f])) >= 0 &&
             (mem = H5Screate_simple(1, &count, NULL)) >= 0 &&
             H5Sselect_hyperslab(fs, H5S_SELECT_SET, &start, NULL, &count, NULL) >= 0 &&
             H5Dwrite(w->dset[f], type, mem, fs, H5P_DEFAULT, buf) >= 0;
    int rc = 0;
    if (!ok) {
        char what[64];
        snprintf(what, sizeof what, "cannot append to '%s'", ds_field_names[f]);
        rc = h5_fail(w, err, what);
    }
    if (mem >= 0) H5Sclose(mem);
    if (fs >= 0) H5Sclose(fs);
    if (rc == 0) w->len[f] = (int64_t)total;
    return rc;
}

/* Close whatever is still open and free the writer (the temporary file stays; callers unlink it). */
static void writer_free(struct ds_writer *w)
{
    for (int f = 0; f < DS_N_FIELDS; f++)
        if (w->dset[f] >= 0) H5Dclose(w->dset[f]);
    if (w->str_type >= 0) H5Tclose(w->str_type);
    if (w->blob_type >= 0) H5Tclose(w->blob_type);
    if (w->file >= 0) H5Fclose(w->file);
    free(w->path);
    free(w->tmp);
    free(w);
}

/* An empty file with the attributes, every dataset, and image_offset = [0]. */
static int create_file(struct ds_writer *w, struct mmupt_err *err)
{
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    MMUPT_CHECK(fapl >= 0);
    H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG);
#if H5_VERSION_GE(1, 10, 2)
    /* Object formats HDF5 1.10 reads, even when built against a newer HDF5. */
    H5Pset_libver_bounds(fapl, H5F_LIBVER_EARLIEST, H5F_LIBVER_V110);
#endif
    w->file = H5Fcreate(w->tmp, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    H5Pclose(fapl);
    if (w->file < 0) return h5_fail(w, err, "cannot create the temporary HDF5 file");
    if (write_attributes(w, err)) return -1;
    for (int f = 0; f < DS_N_FIELDS; f++)
        if (f != DS_PROVENANCE && (f != DS_ANSWER || w->with_answers) && create_dataset(w, (enum ds_field)f, err))
            return -1;
    int64_t zero = 0;
    return append(w, DS_OFFSET, H5T_NATIVE_INT64, 1, &zero, err);
}

int ds_writer_open(struct ds_writer **out, const char *path, int with_answers, struct mmupt_err *err)
{
    struct ds_writer *w = mmupt_xcalloc(1, sizeof *w);
    size_t n = strlen(path);
    w->path = mmupt_xmalloc(n + 1);
    memcpy(w->path, path, n + 1);
    w->tmp = mmupt_xmalloc(n + sizeof ".tmp.XXXXXX");
    memcpy(w->tmp, path, n);
    memcpy(w->tmp + n, ".tmp.XXXXXX", sizeof ".tmp.XXXXXX");
    w->with_answers = with_answers;
    w->file = w->str_type = w->blob_type = -1;
    for (int f = 0; f < DS_N_FIELDS; f++) w->dset[f] = -1;
    /* mkstemp reserves a unique name next to the target (same file system, so rename is atomic);
     * HDF5 then truncates and writes it. */
    int fd = mkstemp(w->tmp);
    if (fd < 0) {
        int e = errno;
        writer_free(w);
        return mmupt_fail(err, "%s: cannot create a temporary file next to it: %s", path, strerror(e));
    }
    fchmod(fd, 0644); /* mkstemp's 0600 would hide the dataset from other users */
    close(fd);
    struct h5_quiet q;
    h5_quiet_begin(&q);
    w->str_type = ds_str_type();
    w->blob_type = ds_blob_type();
    int rc = create_file(w, err);
    if (rc) {
        unlink(w->tmp);
        writer_free(w);
    }
    h5_quiet_end(&q);
    if (rc == 0) *out = w;
    return rc;
}

int ds_writer_enable_provenance(struct ds_writer *w, struct mmupt_err *err)
{
    if (w->with_provenance) return 0;
    if (w->len[DS_ID] > 0)
        return mmupt_fail(err, "%s: provenance must be enabled before the first item is added", w->path);
    struct h5_quiet q;
    h5_quiet_begin(&q);
    int rc = create_dataset(w, DS_PROVENANCE, err);
    h5_quiet_end(&q);
    if (rc == 0) w->with_provenance = 1;
    return rc;
}

/* ---- adding items ---- */

static int check_string(const struct ds_writer *w, int64_t i, const char *field, const char *s, struct mmupt_err *err)
{
    if (!s) return mmupt_fail(err, "%s: item %lld: %s is NULL", w->path, (long long)i, field);
    size_t len = strnlen(s, (size_t)DS_MAX_STRING + 1);
    if (len > DS_MAX_STRING)
        return mmupt_fail(err, "%s: item %lld: %s: string of more than %d bytes", w->path, (long long)i, field,
                          DS_MAX_STRING);
    long bad = ds_utf8_invalid_at(s, len);
    if (bad >= 0) return mmupt_fail(err, "%s: item %lld: %s: invalid UTF-8 at byte %ld", w->path, (long long)i, field, bad);
    return 0;
}

static int check_item(const struct ds_writer *w, const struct ds_item *it, struct mmupt_err *err)
{
    int64_t i = w->len[DS_ID];
    if (check_string(w, i, "id", it->id, err) || check_string(w, i, "source", it->source, err) ||
        check_string(w, i, "problem", it->problem, err))
        return -1;
    if (it->answer && check_string(w, i, "answer", it->answer, err)) return -1;
    if (it->provenance && check_string(w, i, "provenance", it->provenance, err)) return -1;
    if (!w->with_provenance && it->provenance && it->provenance[0])
        return mmupt_fail(err, "%s: item %lld: has a provenance, but the split is written without one", w->path,
                          (long long)i);
    if (!w->with_answers && it->answer && it->answer[0])
        return mmupt_fail(err, "%s: item %lld: has an answer, but the split is written without answers", w->path,
                          (long long)i);
    if (it->n_images < 0 || it->n_images > DS_MAX_IMAGES)
        return mmupt_fail(err, "%s: item %lld: %d images; allowed are 0 to %d", w->path, (long long)i, it->n_images,
                          DS_MAX_IMAGES);
    for (int k = 0; k < it->n_images; k++) {
        if (!it->image[k] || it->image_len[k] == 0)
            return mmupt_fail(err, "%s: item %lld: image %d is empty", w->path, (long long)i, k);
        if (it->image_len[k] > DS_MAX_IMAGE)
            return mmupt_fail(err, "%s: item %lld: image %d has %zu bytes, more than the limit of %d", w->path,
                              (long long)i, k, it->image_len[k], DS_MAX_IMAGE);
    }
    return 0;
}

static int write_item(struct ds_writer *w, const struct ds_item *it, struct mmupt_err *err)
{
    const char *answer = it->answer ? it->answer : "";
    if (append(w, DS_ID, w->str_type, 1, &it->id, err) || append(w, DS_SOURCE, w->str_type, 1, &it->source, err) ||
        append(w, DS_PROBLEM, w->str_type, 1, &it->problem, err))
        return -1;
    if (w->with_answers && append(w, DS_ANSWER, w->str_type, 1, &answer, err)) return -1;
    const char *prov = it->provenance ? it->provenance : "";
    if (w->with_provenance && append(w, DS_PROVENANCE, w->str_type, 1, &prov, err)) return -1;
    if (it->n_images > 0) {
        hvl_t v[DS_MAX_IMAGES];
        for (int k = 0; k < it->n_images; k++) v[k] = (hvl_t){it->image_len[k], it->image[k]};
        if (append(w, DS_IMAGES, w->blob_type, (hsize_t)it->n_images, v, err)) return -1;
    }
    int64_t end = w->len[DS_IMAGES];
    return append(w, DS_OFFSET, H5T_NATIVE_INT64, 1, &end, err);
}

int ds_writer_add(struct ds_writer *w, const struct ds_item *item, struct mmupt_err *err)
{
    if (w->failed) return mmupt_fail(err, "%s: an earlier write failed; the file cannot take more items", w->path);
    if (check_item(w, item, err)) return -1;
    struct h5_quiet q;
    h5_quiet_begin(&q);
    int rc = write_item(w, item, err);
    h5_quiet_end(&q);
    return rc;
}

/* ---- publishing ---- */

static int sync_file(const char *path)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

int ds_writer_close(struct ds_writer *w, struct mmupt_err *err)
{
    int rc = 0;
    if (w->failed) rc = mmupt_fail(err, "%s: not written: an earlier write failed", w->path);
    struct h5_quiet q;
    h5_quiet_begin(&q);
    for (int f = 0; f < DS_N_FIELDS; f++) {
        if (w->dset[f] >= 0 && H5Dclose(w->dset[f]) < 0 && rc == 0) rc = h5_fail(w, err, "cannot close a dataset");
        w->dset[f] = -1;
    }
    if (H5Fclose(w->file) < 0 && rc == 0) rc = h5_fail(w, err, "cannot finish the HDF5 file");
    w->file = -1;
    h5_quiet_end(&q);
    if (rc == 0 && sync_file(w->tmp) != 0)
        rc = mmupt_fail(err, "%s: cannot sync the temporary file: %s", w->path, strerror(errno));
    if (rc == 0 && rename(w->tmp, w->path) != 0)
        rc = mmupt_fail(err, "%s: cannot rename the temporary file over it: %s", w->path, strerror(errno));
    if (rc) unlink(w->tmp);
    writer_free(w);
    return rc;
}
