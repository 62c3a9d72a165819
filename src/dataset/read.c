/* Reading one item: a one-element hyperslab of each string dataset, two entries of image_offset,
 * and the item's images one at a time. Variable-length data is allocated through the reader's
 * guard (open.c), so a string or image over its limit is refused before its memory is taken. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "mmupt/dataset.h"

/* Read element `index` of dataset f (variable-length) into buf with memory type `type`, letting one
 * allocation of at most `cap` bytes happen. On failure `why` says what went wrong. */
static int read_vlen(struct ds_reader *r, enum ds_field f, int64_t index, hid_t type, size_t cap, void *buf,
                     char *why, size_t why_n)
{
    hsize_t start = (hsize_t)index, one = 1;
    r->guard = (struct ds_vlen_guard){.cap = cap};
    if (H5Sselect_hyperslab(r->fspace[f], H5S_SELECT_SET, &start, NULL, &one, NULL) >= 0 &&
        H5Dread(r->dset[f], type, r->mem1, r->fspace[f], r->dxpl, buf) >= 0)
        return 0;
    if (r->guard.refused)
        snprintf(why, why_n, "%zu bytes exceed the limit", r->guard.refused);
    else
        h5_error_msg(why, why_n);
    free(r->guard.last); /* allocated, then the read failed: the buffer never reached the caller */
    r->guard.last = NULL;
    return -1;
}

static int read_string(struct ds_reader *r, enum ds_field f, int64_t i, char **out, struct mmupt_err *err)
{
    const char *name = ds_field_names[f];
    char *s = NULL, why[256];
    if (read_vlen(r, f, i, r->str_type, (size_t)DS_MAX_STRING + 1, &s, why, sizeof why)) {
        if (r->guard.refused) /* HDF5 asks for the string's length plus its NUL */
            return mmupt_fail(err, "%s: item %lld: %s: string of %zu bytes exceeds the limit of %d bytes", r->name,
                              (long long)i, name, r->guard.refused - 1, DS_MAX_STRING);
        return mmupt_fail(err, "%s: item %lld: %s: cannot read: %s", r->name, (long long)i, name, why);
    }
    if (!s) { /* a null string (as written by a C NULL pointer) reads as the empty string */
        s = mmupt_xmalloc(1);
        s[0] = '\0';
        *out = s;
        return 0;
    }
    /* HDF5 allocated exactly length + 1: a shorter C string means a NUL byte inside it. */
    size_t len = r->guard.last_size - 1, clen = strlen(s);
    r->guard.last = NULL;
    *out = s;
    if (clen != len)
        return mmupt_fail(err, "%s: item %lld: %s: contains a NUL byte at byte %zu", r->name, (long long)i, name, clen);
    long bad = ds_utf8_invalid_at(s, len);
    if (bad >= 0)
        return mmupt_fail(err, "%s: item %lld: %s: invalid UTF-8 at byte %ld", r->name, (long long)i, name, bad);
    return 0;
}

/* The item's image range from image_offset[i] and image_offset[i + 1], checked again here: the file
 * could have changed since ds_open validated it. */
static int read_range(struct ds_reader *r, int64_t i, int64_t *a, int64_t *b, struct mmupt_err *err)
{
    hsize_t start = (hsize_t)i, two = 2;
    int64_t v[2];
    if (H5Sselect_hyperslab(r->fspace[DS_OFFSET], H5S_SELECT_SET, &start, NULL, &two, NULL) < 0 ||
        H5Dread(r->dset[DS_OFFSET], H5T_NATIVE_INT64, r->mem2, r->fspace[DS_OFFSET], H5P_DEFAULT, v) < 0) {
        char why[256];
        h5_error_msg(why, sizeof why);
        return mmupt_fail(err, "%s: item %lld: image_offset: cannot read: %s", r->name, (long long)i, why);
    }
    if (v[0] < 0 || v[1] < v[0] || v[1] > r->m)
        return mmupt_fail(err, "%s: item %lld: image_offset: [%lld, %lld) is out of range ('images' has %lld entries)",
                          r->name, (long long)i, (long long)v[0], (long long)v[1], (long long)r->m);
    if (v[1] - v[0] > DS_MAX_IMAGES)
        return mmupt_fail(err, "%s: item %lld: images: %lld images, more than the %d allowed", r->name, (long long)i,
                          (long long)(v[1] - v[0]), DS_MAX_IMAGES);
    *a = v[0];
    *b = v[1];
    return 0;
}

static int read_images(struct ds_reader *r, int64_t i, struct ds_item *it, struct mmupt_err *err)
{
    int64_t a = 0, b = 0;
    if (read_range(r, i, &a, &b, err)) return -1;
    if (a == b) return 0;
    int n = (int)(b - a);
    it->image = mmupt_xcalloc((size_t)n, sizeof *it->image);
    it->image_len = mmupt_xcalloc((size_t)n, sizeof *it->image_len);
    it->n_images = n;
    for (int k = 0; k < n; k++) {
        hvl_t v = {0, NULL};
        char why[256];
        if (read_vlen(r, DS_IMAGES, a + k, r->blob_type, DS_MAX_IMAGE, &v, why, sizeof why)) {
            if (r->guard.refused)
                return mmupt_fail(err, "%s: item %lld: images[%lld]: image of %zu bytes exceeds the limit of %d bytes",
                                  r->name, (long long)i, (long long)(a + k), r->guard.refused, DS_MAX_IMAGE);
            return mmupt_fail(err, "%s: item %lld: images[%lld]: cannot read: %s", r->name, (long long)i,
                              (long long)(a + k), why);
        }
        r->guard.last = NULL;
        it->image[k] = v.p;
        it->image_len[k] = v.len;
        if (v.len == 0)
            return mmupt_fail(err, "%s: item %lld: images[%lld]: the image is empty (0 bytes)", r->name, (long long)i,
                              (long long)(a + k));
    }
    return 0;
}

static int read_item(struct ds_reader *r, int64_t i, struct ds_item *it, struct mmupt_err *err)
{
    if (read_string(r, DS_ID, i, &it->id, err) || read_string(r, DS_SOURCE, i, &it->source, err) ||
        read_string(r, DS_PROBLEM, i, &it->problem, err))
        return -1;
    if (r->dset[DS_ANSWER] >= 0) {
        if (read_string(r, DS_ANSWER, i, &it->answer, err)) return -1;
        if (it->answer[0] == '\0') { /* an empty answer: this item has none */
            free(it->answer);
            it->answer = NULL;
        }
    }
    if (r->dset[DS_PROVENANCE] >= 0) {
        if (read_string(r, DS_PROVENANCE, i, &it->provenance, err)) return -1;
        if (it->provenance[0] == '\0') { /* empty: this item has none */
            free(it->provenance);
            it->provenance = NULL;
        }
    }
    return read_images(r, i, it, err);
}

int ds_read(struct ds_reader *r, int64_t i, struct ds_item *item, struct mmupt_err *err)
{
    if (i < 0 || i >= r->n)
        return mmupt_fail(err, "%s: item %lld does not exist (the split has %lld items)", r->name, (long long)i,
                          (long long)r->n);
    struct ds_item it = {.index = i};
    struct h5_quiet q;
    h5_quiet_begin(&q);
    int rc = read_item(r, i, &it, err);
    h5_quiet_end(&q);
    if (rc) {
        ds_item_free(&it);
        return -1;
    }
    *item = it;
    return 0;
}

void ds_item_free(struct ds_item *item)
{
    free(item->id);
    free(item->source);
    free(item->problem);
    free(item->answer);
    free(item->provenance);
    for (int k = 0; k < item->n_images; k++) free(item->image[k]);
    free(item->image);
    free(item->image_len);
    memset(item, 0, sizeof *item);
}
