/* Prompt datasets: one HDF5 file per split (schema in docs/datasets.md), a reader that holds one item
 * in memory at a time, a writer, and a shuffled, sharded, resumable cursor over item indices.
 *
 * Reading a split:
 *   struct ds_reader *r;
 *   if (ds_open(&r, "train.h5", &err)) return -1;
 *   struct ds_cursor c;
 *   ds_cursor_init(&c, seed, 1, rank, world);
 *   struct ds_item it;
 *   if (ds_read(r, ds_cursor_next(&c, ds_count(r)), &it, &err) == 0) { ...; ds_item_free(&it); }
 *
 * HDF5 is not thread-safe in the Debian/Ubuntu builds: use a reader or writer from one thread. */
#ifndef MMUPT_DATASET_H
#define MMUPT_DATASET_H

#include <stddef.h>
#include <stdint.h>

#include "mmupt/err.h"

#ifdef __cplusplus
extern "C" {
#endif

#define DS_FORMAT_NAME "prompts"  /* root attribute mmupt_format */
#define DS_FORMAT_VERSION 1       /* root attribute format_version */
/* Per-item limits. Larger values are refused (never cut), by the reader and the writer alike. */
#define DS_MAX_STRING (1 << 20)   /* bytes of one string, without its NUL */
#define DS_MAX_IMAGES 16          /* images of one item */
#define DS_MAX_IMAGE (64 << 20)   /* bytes of one encoded image */

struct ds_reader; /* opaque */

struct ds_item {
    int64_t index;
    char *id, *source, *problem, *answer; /* answer NULL when the split or the item has none */
    char *provenance;  /* how the item was made (`mmupt synth`); NULL when the split or item has none */
    int n_images;
    uint8_t **image;   /* n_images buffers (NULL when n_images is 0) */
    size_t *image_len;
};

/* Open and validate the schema: root attributes, every dataset's presence, type, rank and length,
 * and image_offset (0 first, non-decreasing, ending at the number of images; checked in blocks, so
 * memory does not grow with the file). Messages name the file and the dataset. */
int ds_open(struct ds_reader **out, const char *path, struct mmupt_err *err);
/* The same from a file image held in memory (copied); `name` stands for the file in messages. */
int ds_open_image(struct ds_reader **out, const char *name, const void *image, size_t len, struct mmupt_err *err);
void ds_close(struct ds_reader *r);
int64_t ds_count(const struct ds_reader *r);
int ds_has_answers(const struct ds_reader *r);
int ds_has_provenance(const struct ds_reader *r); /* the optional `provenance` dataset is present */

/* Read item i (one hyperslab element per dataset). Refused, with a message naming file, item and
 * field, while the reader stays usable: a string over DS_MAX_STRING bytes, holding a NUL byte or
 * invalid UTF-8; more than DS_MAX_IMAGES images; an empty image or one over DS_MAX_IMAGE bytes;
 * offsets out of range. On failure *item is left as it was. */
int ds_read(struct ds_reader *r, int64_t i, struct ds_item *item, struct mmupt_err *err);
/* Free what ds_read filled in and zero the item; safe on a zeroed item. */
void ds_item_free(struct ds_item *item);

/* A shuffled, sharded, resumable walk over the split. Epoch e visits a pseudo-random permutation of
 * [0, N) keyed by (seed, e), computed without O(N) memory (a Feistel network on the next even power
 * of two, with cycle walking). Rank r of W takes global positions r, r+W, r+2W, ... of the epoch,
 * floor(N/W) of them (drop_last, so ranks stay in step). The state is (seed, epoch, position), with
 * position = items this rank has taken from the epoch: saving those resumes exactly. shuffle=0 walks
 * in file order. */
struct ds_cursor {
    uint64_t seed;
    int shuffle;
    int rank, world;
    int64_t epoch, position;
};
void ds_cursor_init(struct ds_cursor *c, uint64_t seed, int shuffle, int rank, int world);
/* The next item index for this rank; moves to the next epoch when this one is exhausted. Returns -1
 * (and leaves the cursor alone) when a rank gets no item per epoch: n_items < world. */
int64_t ds_cursor_next(struct ds_cursor *c, int64_t n_items);
/* Position g of epoch e's order: the permutation itself (g in [0, n_items)). */
int64_t ds_permute(uint64_t seed, int64_t epoch, int64_t g, int64_t n_items);

/* Writer (tests, `mmupt synth`). Items are checked against the limits above before anything is
 * written, so a refused item leaves the file consistent and the writer usable. The file appears at
 * `path` only when ds_writer_close succeeds (temporary file, fsync, rename); a failed close removes
 * the temporary file. with_answers=0 writes no `answer` dataset and refuses items with answers. */
struct ds_writer;
int ds_writer_open(struct ds_writer **out, const char *path, int with_answers, struct mmupt_err *err);
/* Give the split the optional `provenance` dataset (one string per item; an item's NULL is written
 * as ""). Call before the first ds_writer_add; without it, items with a provenance are refused. */
int ds_writer_enable_provenance(struct ds_writer *w, struct mmupt_err *err);
int ds_writer_add(struct ds_writer *w, const struct ds_item *item, struct mmupt_err *err);
int ds_writer_close(struct ds_writer *w, struct mmupt_err *err); /* frees w in every case */

#ifdef __cplusplus
}
#endif

#endif
