/* Shared by the dataset reader and writer: HDF5 error handling, type descriptions, the schema's
 * dataset names, UTF-8 checks. */
#ifndef MMUPT_DATASET_INTERNAL_H
#define MMUPT_DATASET_INTERNAL_H

#include <hdf5.h>

#include "mmupt/h5util.h"
#include <stddef.h>

/* The root datasets of schema version 1, in the order messages and the writer use. `answer` and
 * `provenance` are optional. */
enum ds_field { DS_ID, DS_SOURCE, DS_PROBLEM, DS_ANSWER, DS_OFFSET, DS_IMAGES, DS_PROVENANCE, DS_N_FIELDS };
extern const char *const ds_field_names[DS_N_FIELDS];

/* A short description of an HDF5 type for messages: "int64", "uint8", "float64", "variable-length
 * string", "fixed-length string", "variable-length sequence of int32", "compound", ... */
void ds_type_describe(hid_t type, char *buf, size_t n);

/* Byte offset of the first invalid UTF-8 sequence in s[0..len), or -1 when all of it is valid. */
long ds_utf8_invalid_at(const char *s, size_t len);

/* Memory types the reader and writer share: variable-length UTF-8 strings and variable-length
 * sequences of uint8. The caller H5Tclose()s them. */
hid_t ds_str_type(void);
hid_t ds_blob_type(void);

/* Caps what HDF5 may allocate while converting one variable-length element into memory: the
 * reader's transfer property list routes HDF5's allocations through it, so a string or image
 * larger than the limit is refused before the memory is taken. `last` is the one allocation of the
 * element being read (the reader reads one element per call), freed by the reader if the read fails. */
struct ds_vlen_guard {
    size_t cap;       /* the most bytes one allocation may take */
    size_t refused;   /* the size of a refused request, 0 if none */
    void *last;       /* the allocation made by the current read, NULL if none */
    size_t last_size; /* its size */
};

struct ds_reader {
    char *name; /* the path, or the name given to ds_open_image, for messages */
    hid_t file;
    hid_t dset[DS_N_FIELDS];   /* -1 when absent (only `answer` and `provenance` may be) */
    hid_t fspace[DS_N_FIELDS]; /* each dataset's file dataspace; its selection changes per read */
    hid_t str_type, blob_type; /* memory types */
    hid_t mem1, mem2;          /* memory dataspaces of one and two elements */
    hid_t dxpl;                /* transfer property list using `guard` */
    int64_t n, m;              /* items, images */
    struct ds_vlen_guard guard;
};

/* Frees everything the reader holds (any subset may be open). */
void ds_reader_free(struct ds_reader *r);

#endif
