/* Shared by the checkpoint writer and reader: checksummed HDF5 datasets and attributes. */
#ifndef MMUPT_CHECKPOINT_INTERNAL_H
#define MMUPT_CHECKPOINT_INTERNAL_H

#include <hdf5.h>

#include "mmupt/checkpoint.h"
#include "mmupt/h5util.h"

/* Write a 1-D (or, with ndim/shape, N-D) dataset of `type` (H5T_NATIVE_FLOAT, _INT64, _UCHAR) at
 * loc/name with its sum64 attribute. elem is the element size in bytes. */
int ck_write_data(hid_t loc, const char *path, const char *name, hid_t type, size_t elem, int ndim,
                  const hsize_t *shape, const void *data, struct mmupt_err *err);
/* Read a dataset that must hold exactly `count` elements of the given class/size, verify its
 * checksum; shape (when not NULL) must match too. Messages name path and name. */
int ck_read_data(hid_t loc, const char *path, const char *name, hid_t type, size_t elem, int ndim,
                 const hsize_t *shape, size_t count, void *out, struct mmupt_err *err);
int ck_write_attr_i64(hid_t loc, const char *path, const char *name, int64_t v, struct mmupt_err *err);
int ck_read_attr_i64(hid_t loc, const char *path, const char *name, int64_t *v, struct mmupt_err *err);
int ck_write_attr_str(hid_t loc, const char *path, const char *name, const char *v, struct mmupt_err *err);
int ck_read_attr_str(hid_t loc, const char *path, const char *name, char *v, size_t n, struct mmupt_err *err);

/* Open an existing HDF5 file read-only / create one; errors name the path. */
hid_t ck_open(const char *path, struct mmupt_err *err);
hid_t ck_create(const char *path, struct mmupt_err *err);
/* Close, then fsync the file, so it is on disk before anything points at it. */
int ck_close_sync(hid_t f, const char *path, struct mmupt_err *err);
/* fsync a directory (a rename inside it is durable only after this). */
int ck_sync_dir(const char *dir, struct mmupt_err *err);

#endif
