/* Checksummed HDF5 datasets and small attributes for checkpoints. All HDF5 calls run with HDF5's
 * own error printing off; failures become messages naming the file and the object. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

static int h5_fail(struct mmupt_err *err, const char *path, const char *what)
{
    char msg[256];
    h5_error_msg(msg, sizeof msg);
    return mmupt_fail(err, "%s: %s: %s", path, what, msg);
}

hid_t ck_open(const char *path, struct mmupt_err *err)
{
    /* Ask the kernel to start reading the whole file now: the page cache is shared, so HDF5's
     * reads (and our checksumming between them) then find data already on its way. */
    int fd = open(path, O_RDONLY);
    if (fd >= 0) {
        posix_fadvise(fd, 0, 0, POSIX_FADV_WILLNEED);
        close(fd);
    }
    struct h5_quiet q;
    h5_quiet_begin(&q);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) h5_fail(err, path, access(path, F_OK) ? "missing" : "cannot open as HDF5 (truncated or corrupted?)");
    h5_quiet_end(&q);
    return f;
}

hid_t ck_create(const char *path, struct mmupt_err *err)
{
    struct h5_quiet q;
    h5_quiet_begin(&q);
    hid_t f = H5Fcreate(path, H5F_ACC_EXCL, H5P_DEFAULT, H5P_DEFAULT);
    if (f < 0) h5_fail(err, path, "cannot create");
    h5_quiet_end(&q);
    return f;
}

int ck_close_sync(hid_t f, const char *path, struct mmupt_err *err)
{
    struct h5_quiet q;
    h5_quiet_begin(&q);
    int bad = H5Fclose(f) < 0;
    h5_quiet_end(&q);
    if (bad) return h5_fail(err, path, "cannot finish writing (disk full?)");
    int fd = open(path, O_RDONLY);
    if (fd < 0) return mmupt_fail(err, "%s: cannot reopen to sync: %s", path, strerror(errno));
    int rc = fsync(fd);
    int e = errno;
    close(fd);
    if (rc) return mmupt_fail(err, "%s: fsync: %s", path, strerror(e));
    return 0;
}

int ck_sync_dir(const char *dir, struct mmupt_err *err)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0) return mmupt_fail(err, "%s: cannot open directory to sync: %s", dir, strerror(errno));
    int rc = fsync(fd);
    int e = errno;
    close(fd);
    if (rc) return mmupt_fail(err, "%s: fsync: %s", dir, strerror(e));
    return 0;
}

static int write_sum(hid_t d, uint64_t sum)
{
    hid_t s = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(d, "sum64", H5T_NATIVE_UINT64, s, H5P_DEFAULT, H5P_DEFAULT);
    int rc = a < 0 || H5Awrite(a, H5T_NATIVE_UINT64, &sum) < 0 ? -1 : 0;
    if (a >= 0) H5Aclose(a);
    H5Sclose(s);
    return rc;
}

int ck_write_data(hid_t loc, const char *path, const char *name, hid_t type, size_t elem, int ndim,
                  const hsize_t *shape, const void *data, struct mmupt_err *err)
{
    struct h5_quiet q;
    h5_quiet_begin(&q);
    size_t count = 1;
    for (int i = 0; i < ndim; i++) count *= (size_t)shape[i];
    /* A zero-length dataspace is legal; the pointer is never read then. */
    hid_t s = H5Screate_simple(ndim, shape, NULL);
    hid_t d = s < 0 ? -1 : H5Dcreate2(loc, name, type, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    int rc = 0;
    if (d < 0) rc = h5_fail(err, path, name);
    else if (count && H5Dwrite(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0)
        rc = h5_fail(err, path, name);
    else if (write_sum(d, ckpt_sum64(data, count * elem)) < 0)
        rc = h5_fail(err, path, name);
    if (d >= 0) H5Dclose(d);
    if (s >= 0) H5Sclose(s);
    h5_quiet_end(&q);
    return rc;
}

static int read_checked(hid_t d, const char *path, const char *name, hid_t type, size_t elem, int ndim,
                        const hsize_t *shape, size_t count, void *out, struct mmupt_err *err)
{
    hid_t ft = H5Dget_type(d), s = H5Dget_space(d);
    int rc = 0;
    if (H5Tget_class(ft) != H5Tget_class(type) || H5Tget_size(ft) != elem) {
        rc = mmupt_fail(err, "%s: dataset %s has the wrong element type", path, name);
    } else {
        int nd = H5Sget_simple_extent_ndims(s);
        hsize_t dims[8] = {0};
        size_t have = 1;
        if (nd < 0 || nd > 8) nd = -1;
        else H5Sget_simple_extent_dims(s, dims, NULL);
        for (int i = 0; i < nd; i++) have *= (size_t)dims[i];
        int shape_ok = nd >= 0 && have == count && (!shape || nd == ndim);
        for (int i = 0; shape && shape_ok && i < ndim; i++) shape_ok = dims[i] == shape[i];
        if (!shape_ok)
            rc = mmupt_fail(err, "%s: dataset %s has %zu elements%s, expected %zu (a checkpoint of another model "
                                 "or run?)", path, name, nd < 0 ? (size_t)0 : have, shape ? " or another shape" : "",
                            count);
    }
    uint64_t stored = 0;
    if (rc == 0 && count && H5Dread(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, out) < 0)
        rc = h5_fail(err, path, name);
    if (rc == 0) {
        hid_t a = H5Aopen(d, "sum64", H5P_DEFAULT);
        if (a < 0 || H5Aread(a, H5T_NATIVE_UINT64, &stored) < 0)
            rc = mmupt_fail(err, "%s: dataset %s has no readable checksum (sum64)", path, name);
        if (a >= 0) H5Aclose(a);
    }
    if (rc == 0) {
        uint64_t got = ckpt_sum64(out, count * elem);
        if (got != stored)
            rc = mmupt_fail(err, "%s: dataset %s: checksum mismatch (stored %016llx, computed %016llx): the file is "
                                 "corrupted", path, name, (unsigned long long)stored, (unsigned long long)got);
    }
    H5Tclose(ft);
    H5Sclose(s);
    return rc;
}

int ck_read_data(hid_t loc, const char *path, const char *name, hid_t type, size_t elem, int ndim,
                 const hsize_t *shape, size_t count, void *out, struct mmupt_err *err)
{
    struct h5_quiet q;
    h5_quiet_begin(&q);
    int rc;
    hid_t d = H5Lexists(loc, name, H5P_DEFAULT) > 0 ? H5Dopen2(loc, name, H5P_DEFAULT) : -1;
    if (d < 0) rc = mmupt_fail(err, "%s: dataset %s is missing (a checkpoint of another model?)", path, name);
    else rc = read_checked(d, path, name, type, elem, ndim, shape, count, out, err);
    if (d >= 0) H5Dclose(d);
    h5_quiet_end(&q);
    return rc;
}

int ck_write_attr_i64(hid_t loc, const char *path, const char *name, int64_t v, struct mmupt_err *err)
{
    struct h5_quiet q;
    h5_quiet_begin(&q);
    hid_t s = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(loc, name, H5T_NATIVE_INT64, s, H5P_DEFAULT, H5P_DEFAULT);
    int rc = a < 0 || H5Awrite(a, H5T_NATIVE_INT64, &v) < 0 ? h5_fail(err, path, name) : 0;
    if (a >= 0) H5Aclose(a);
    H5Sclose(s);
    h5_quiet_end(&q);
    return rc;
}

int ck_read_attr_i64(hid_t loc, const char *path, const char *name, int64_t *v, struct mmupt_err *err)
{
    struct h5_quiet q;
    h5_quiet_begin(&q);
    hid_t a = H5Aexists(loc, name) > 0 ? H5Aopen(loc, name, H5P_DEFAULT) : -1;
    int rc = a < 0 || H5Aread(a, H5T_NATIVE_INT64, v) < 0
                 ? mmupt_fail(err, "%s: attribute %s is missing or unreadable", path, name) : 0;
    if (a >= 0) H5Aclose(a);
    h5_quiet_end(&q);
    return rc;
}

/* Strings are stored as fixed-length attributes of their exact length. */
int ck_write_attr_str(hid_t loc, const char *path, const char *name, const char *v, struct mmupt_err *err)
{
    struct h5_quiet q;
    h5_quiet_begin(&q);
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, strlen(v) + 1);
    hid_t s = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(loc, name, t, s, H5P_DEFAULT, H5P_DEFAULT);
    int rc = a < 0 || H5Awrite(a, t, v) < 0 ? h5_fail(err, path, name) : 0;
    if (a >= 0) H5Aclose(a);
    H5Sclose(s);
    H5Tclose(t);
    h5_quiet_end(&q);
    return rc;
}

int ck_read_attr_str(hid_t loc, const char *path, const char *name, char *v, size_t n, struct mmupt_err *err)
{
    struct h5_quiet q;
    h5_quiet_begin(&q);
    hid_t a = H5Aexists(loc, name) > 0 ? H5Aopen(loc, name, H5P_DEFAULT) : -1;
    hid_t t = a >= 0 ? H5Aget_type(a) : -1;
    size_t len = t >= 0 && H5Tget_class(t) == H5T_STRING && !H5Tis_variable_str(t) ? H5Tget_size(t) : 0;
    int rc = 0;
    if (len == 0 || len > n) {
        rc = mmupt_fail(err, "%s: attribute %s is missing, not a string, or longer than %zu bytes", path, name, n);
    } else {
        hid_t mt = H5Tcopy(H5T_C_S1);
        H5Tset_size(mt, len);
        if (H5Aread(a, mt, v) < 0) rc = h5_fail(err, path, name);
        v[len - 1] = '\0';
        H5Tclose(mt);
    }
    if (t >= 0) H5Tclose(t);
    if (a >= 0) H5Aclose(a);
    h5_quiet_end(&q);
    return rc;
}
