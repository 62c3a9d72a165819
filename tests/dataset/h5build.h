/* Building prompt files dataset by dataset with plain HDF5 calls, for the dataset tests and the
 * fuzz target. Unlike ds_writer nothing is checked: the point is to hand the reader files that are
 * wrong in one chosen way. A file is a list of `struct h5b_dset`; tests start from a valid list and
 * change one entry (its kind, rank, length, or drop it). */
#ifndef MMUPT_TEST_H5BUILD_H
#define MMUPT_TEST_H5BUILD_H

#include <hdf5.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum h5b_kind {
    H5B_STR,    /* variable-length UTF-8 strings from str */
    H5B_FIXSTR, /* fixed-length strings of 8 bytes from str */
    H5B_I64,    /* from i64 */
    H5B_I32,    /* from i64, converted */
    H5B_F64,    /* from i64, converted */
    H5B_BLOB,   /* variable-length uint8 sequences from blob/blob_len */
    H5B_BLOB8,  /* the same, but of int8 */
};

struct h5b_dset {
    const char *name; /* NULL: left out */
    enum h5b_kind kind;
    int rank;         /* 1; 2 writes shape (n, 1); 0 writes a scalar holding element 0 */
    size_t n;
    const char *const *str;
    const int64_t *i64;
    const uint8_t *const *blob;
    const size_t *blob_len;
};

/* A new file at path, or in memory when path is NULL (core driver, no backing store). */
static inline hid_t h5b_create(const char *path)
{
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (!path) H5Pset_fapl_core(fapl, 1 << 16, 0);
    hid_t f = H5Fcreate(path ? path : "in-memory.h5", H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    H5Pclose(fapl);
    return f;
}

static inline int h5b_attr_str(hid_t file, const char *name, const char *value)
{
    hid_t t = H5Tcopy(H5T_C_S1), sp = H5Screate(H5S_SCALAR);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    hid_t a = H5Acreate2(file, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
    int rc = a >= 0 && H5Awrite(a, t, &value) >= 0 ? 0 : -1;
    if (a >= 0) H5Aclose(a);
    H5Sclose(sp);
    H5Tclose(t);
    return rc;
}

/* An integer attribute, or a float64 one when as_float. */
static inline int h5b_attr_num(hid_t file, const char *name, int64_t value, int as_float)
{
    double d = (double)value;
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(file, name, as_float ? H5T_IEEE_F64LE : H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
    int rc = a >= 0 && H5Awrite(a, as_float ? H5T_NATIVE_DOUBLE : H5T_NATIVE_INT64, as_float ? (void *)&d : (void *)&value) >= 0
                 ? 0 : -1;
    if (a >= 0) H5Aclose(a);
    H5Sclose(sp);
    return rc;
}

/* The memory buffer and memory type for d's elements (the caller frees *buf and closes *mtype). */
static inline hid_t h5b_types(const struct h5b_dset *d, void **buf, hid_t *mtype)
{
    size_t n = d->n ? d->n : 1;
    hid_t ftype = -1;
    switch (d->kind) {
    case H5B_STR:
    case H5B_FIXSTR:
        ftype = H5Tcopy(H5T_C_S1);
        H5Tset_size(ftype, d->kind == H5B_STR ? H5T_VARIABLE : 8);
        H5Tset_cset(ftype, H5T_CSET_UTF8);
        *mtype = H5Tcopy(ftype);
        if (d->kind == H5B_STR) {
            *buf = calloc(n, sizeof(char *));
            for (size_t k = 0; k < d->n; k++) ((const char **)*buf)[k] = d->str[k];
        } else {
            *buf = calloc(n, 8);
            for (size_t k = 0; k < d->n; k++) strncpy((char *)*buf + 8 * k, d->str[k], 8);
        }
        break;
    case H5B_I64:
    case H5B_I32:
    case H5B_F64:
        ftype = H5Tcopy(d->kind == H5B_I64 ? H5T_STD_I64LE : d->kind == H5B_I32 ? H5T_STD_I32LE : H5T_IEEE_F64LE);
        *mtype = H5Tcopy(H5T_NATIVE_INT64);
        *buf = calloc(n, sizeof(int64_t));
        if (d->n) memcpy(*buf, d->i64, d->n * sizeof(int64_t));
        break;
    case H5B_BLOB:
    case H5B_BLOB8:
        ftype = H5Tvlen_create(d->kind == H5B_BLOB ? H5T_STD_U8LE : H5T_STD_I8LE);
        *mtype = H5Tvlen_create(d->kind == H5B_BLOB ? H5T_NATIVE_UINT8 : H5T_NATIVE_INT8);
        *buf = calloc(n, sizeof(hvl_t));
        for (size_t k = 0; k < d->n; k++) ((hvl_t *)*buf)[k] = (hvl_t){d->blob_len[k], (void *)d->blob[k]};
        break;
    }
    return ftype;
}

static inline int h5b_add(hid_t file, const struct h5b_dset *d)
{
    if (!d->name) return 0;
    hsize_t dims[2] = {d->n, 1};
    hid_t sp = d->rank == 0 ? H5Screate(H5S_SCALAR) : H5Screate_simple(d->rank, dims, NULL);
    void *buf = NULL;
    hid_t mtype = -1, ftype = h5b_types(d, &buf, &mtype);
    hid_t ds = H5Dcreate2(file, d->name, ftype, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    int rc = ds >= 0 && (d->n == 0 || H5Dwrite(ds, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) >= 0) ? 0 : -1;
    if (ds >= 0) H5Dclose(ds);
    free(buf);
    H5Tclose(mtype);
    H5Tclose(ftype);
    H5Sclose(sp);
    return rc;
}

/* The bytes of an in-memory file (h5b_create(NULL)), which is closed; the caller frees them. */
static inline void *h5b_image(hid_t file, size_t *len)
{
    H5Fflush(file, H5F_SCOPE_GLOBAL);
    ssize_t n = H5Fget_file_image(file, NULL, 0);
    void *buf = n > 0 ? malloc((size_t)n) : NULL;
    if (buf && H5Fget_file_image(file, buf, (size_t)n) != n) {
        free(buf);
        buf = NULL;
    }
    H5Fclose(file);
    *len = buf ? (size_t)n : 0;
    return buf;
}

#endif
