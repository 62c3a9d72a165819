/* libFuzzer target for the prompt-dataset reader, structure-aware: the fuzz bytes are not an HDF5
 * file (that would mostly exercise libhdf5's own parser) but the contents of one. They choose the
 * items (strings of arbitrary bytes, image counts and sizes), the image_offset array (valid or
 * perturbed), the root attributes, and at most one damaged dataset (dropped, resized or retyped).
 * The file is built in memory with plain HDF5 calls and opened with ds_open_image.
 *
 * Oracle beyond "no crash, no sanitizer report": the target knows what it wrote, so
 *   - ds_open must succeed exactly when the file follows the schema;
 *   - ds_read of item i must succeed exactly when the item is within the limits (valid UTF-8, at most
 *     16 images, none empty), and then return exactly the strings and bytes written;
 *   - a refused item must leave the caller's item untouched. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../dataset/h5build.h"
#include "mmupt/dataset.h"
#include "mmupt/strutil.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FAIL(...)                                                                                                      \
    do {                                                                                                               \
        fprintf(stderr, "fuzz_dataset: " __VA_ARGS__);                                                                 \
        fputc('\n', stderr);                                                                                           \
        abort();                                                                                                       \
    } while (0)

enum { MAX_N = 8, MAX_M = MAX_N * 20, FIELDS = 6, STR_FIELDS = 4 };

struct input {
    const uint8_t *p;
    size_t left;
};

static unsigned take(struct input *in)
{
    if (!in->left) return 0;
    in->left--;
    return *in->p++;
}

/* What the target wrote: the items as C strings and byte runs, and the schema changes. */
struct plan {
    int answers;           /* write an 'answer' dataset */
    int n, m;              /* items, images */
    char str[MAX_N][STR_FIELDS][32];
    int count[MAX_N];      /* images per item */
    int64_t offset[MAX_N + 1];
    uint8_t img[MAX_M][16];
    size_t img_len[MAX_M];
    int bad_attr;          /* 1 wrong format, 2 wrong version, 3 version missing */
    int damaged;           /* index of the damaged dataset + 1, or 0 */
    int damage;            /* 0 drop, 1 one entry short, 2 one entry long, 3 wrong type */
};

static void read_plan(struct plan *pl, struct input *in)
{
    unsigned flags = take(in);
    pl->answers = flags & 1;
    pl->bad_attr = (flags >> 1) % 8 == 1 ? 1 + (int)(flags >> 4) % 3 : 0; /* mostly valid attributes */
    unsigned dmg = take(in);
    pl->damaged = dmg % 4 == 0 ? 1 + (int)(dmg >> 2) % FIELDS : 0;
    pl->damage = (int)(dmg >> 5) % 4;
    pl->n = (int)take(in) % (MAX_N + 1);
    pl->m = 0;
    for (int i = 0; i < pl->n; i++) {
        for (int f = 0; f < STR_FIELDS; f++) {
            size_t len = take(in) % 24;
            for (size_t k = 0; k < len; k++) pl->str[i][f][k] = (char)take(in);
            pl->str[i][f][len] = '\0'; /* C strings: HDF5 stores up to the first NUL */
        }
        pl->count[i] = (int)take(in) % 20; /* up to 19: above the limit of 16 now and then */
        for (int k = 0; k < pl->count[i]; k++, pl->m++) {
            pl->img_len[pl->m] = take(in) % 16; /* 0: an empty image, refused by the reader */
            for (size_t b = 0; b < pl->img_len[pl->m]; b++) pl->img[pl->m][b] = (uint8_t)take(in);
        }
        pl->offset[i + 1] = pl->m;
    }
    pl->offset[0] = 0;
    /* Now and then one offset moves (possibly backwards, possibly past the end). */
    unsigned perturb = take(in);
    if (perturb % 4 == 0) {
        int at = (int)(perturb >> 2) % (pl->n + 1);
        pl->offset[at] += (int64_t)(int8_t)take(in);
    }
    /* Dropping 'answer' is allowed (a split without answers); damage to an absent one is none. */
    if (pl->damaged == 4 && (pl->damage == 0 || !pl->answers)) {
        pl->answers = 0;
        pl->damaged = 0;
    }
}

static int offsets_valid(const struct plan *pl)
{
    if (pl->offset[0] != 0 || pl->offset[pl->n] != pl->m) return 0;
    for (int i = 0; i < pl->n; i++)
        if (pl->offset[i + 1] < pl->offset[i] || pl->offset[i + 1] > pl->m) return 0;
    return 1;
}

/* Every damage makes the file invalid: a dropped required dataset, a length that disagrees with
 * 'id' or with image_offset, or a wrong type. */
static int schema_valid(const struct plan *pl)
{
    return !pl->bad_attr && !pl->damaged && offsets_valid(pl);
}

static int utf8_ok(const char *s)
{
    size_t len = strlen(s);
    for (size_t i = 0; i < len;) {
        size_t k = utf8_seq_len((const unsigned char *)s + i, len - i);
        if (!k) return 0;
        i += k;
    }
    return 1;
}

static int item_valid(const struct plan *pl, int i)
{
    for (int f = 0; f < STR_FIELDS; f++)
        if ((f != 3 || pl->answers) && !utf8_ok(pl->str[i][f])) return 0;
    int64_t a = pl->offset[i], b = pl->offset[i + 1];
    if (b - a > DS_MAX_IMAGES) return 0;
    for (int64_t k = a; k < b; k++)
        if (pl->img_len[k] == 0) return 0;
    return 1;
}

/* Build the file image; NULL if HDF5 could not (never expected). */
static void *build(const struct plan *pl, size_t *len)
{
    static const char *const names[FIELDS] = {"id", "source", "problem", "answer", "image_offset", "images"};
    const char *strs[STR_FIELDS][MAX_N + 1];
    const uint8_t *img[MAX_M + 1];
    for (int f = 0; f < STR_FIELDS; f++) {
        for (int i = 0; i < pl->n; i++) strs[f][i] = pl->str[i][f];
        strs[f][pl->n] = "x"; /* the extra entry of a 'one entry long' dataset */
    }
    for (int k = 0; k <= pl->m && k <= MAX_M; k++) img[k] = pl->img[k < pl->m ? k : 0];
    size_t img_len[MAX_M + 1];
    memcpy(img_len, pl->img_len, sizeof img_len - sizeof img_len[0]);
    img_len[MAX_M] = 1;
    if (pl->m < MAX_M) img_len[pl->m] = 1;
    int64_t off[MAX_N + 2];
    memcpy(off, pl->offset, sizeof pl->offset);
    off[pl->n + 1] = pl->m;
    struct h5b_dset d[FIELDS];
    for (int f = 0; f < FIELDS; f++) {
        d[f] = (struct h5b_dset){.name = names[f], .kind = H5B_STR, .rank = 1, .n = (size_t)pl->n,
                                 .str = f < STR_FIELDS ? strs[f] : strs[0], .i64 = off, .blob = img, .blob_len = img_len};
    }
    d[4].kind = H5B_I64;
    d[4].n = (size_t)pl->n + 1;
    d[5].kind = H5B_BLOB;
    d[5].n = (size_t)pl->m;
    if (!pl->answers) d[3].name = NULL;
    if (pl->damaged) {
        struct h5b_dset *x = &d[pl->damaged - 1];
        if (pl->damage == 0) x->name = NULL;
        else if (pl->damage == 1 && x->n > 0) x->n--;
        else if (pl->damage == 1) x->kind = H5B_F64; /* nothing to shorten: retype instead */
        else if (pl->damage == 2) x->n++;
        else x->kind = x->kind == H5B_STR ? H5B_BLOB : x->kind == H5B_I64 ? H5B_I32 : H5B_BLOB8;
    }
    hid_t file = h5b_create(NULL);
    if (file < 0) return NULL;
    int rc = h5b_attr_str(file, "mmupt_format", pl->bad_attr == 1 ? "prompt" : "prompts");
    if (pl->bad_attr != 3) rc |= h5b_attr_num(file, "format_version", pl->bad_attr == 2 ? 2 : 1, 0);
    for (int f = 0; f < FIELDS; f++) rc |= h5b_add(file, &d[f]);
    void *image = h5b_image(file, len);
    if (rc) {
        free(image);
        return NULL;
    }
    return image;
}

static void check_item(const struct plan *pl, int i, const struct ds_item *it)
{
    const char *got[STR_FIELDS] = {it->id, it->source, it->problem, it->answer};
    for (int f = 0; f < STR_FIELDS; f++) {
        const char *want = pl->str[i][f];
        if (f == 3 && (!pl->answers || !want[0])) {
            if (got[f]) FAIL("item %d: an answer where none was written", i);
            continue;
        }
        if (!got[f] || strcmp(got[f], want) != 0) FAIL("item %d: field %d differs", i, f);
    }
    int64_t a = pl->offset[i];
    if (it->n_images != (int)(pl->offset[i + 1] - a)) FAIL("item %d: %d images", i, it->n_images);
    for (int k = 0; k < it->n_images; k++)
        if (it->image_len[k] != pl->img_len[a + k] || memcmp(it->image[k], pl->img[a + k], it->image_len[k]) != 0)
            FAIL("item %d: image %d differs", i, k);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL); /* no HDF5 error stacks on stderr from the builder */
    struct input in = {data, size};
    struct plan *pl = calloc(1, sizeof *pl);
    read_plan(pl, &in);
    size_t len;
    void *image = build(pl, &len);
    if (!image) FAIL("could not build the file");
    struct ds_reader *r = NULL;
    struct mmupt_err err;
    int rc = ds_open_image(&r, "fuzz.h5", image, len, &err);
    free(image);
    if ((rc == 0) != schema_valid(pl)) FAIL("ds_open %s: %s", rc == 0 ? "accepted a bad file" : "refused", err.msg);
    if (rc == 0) {
        if (ds_count(r) != pl->n || ds_has_answers(r) != pl->answers) FAIL("count or answers differ");
        for (int i = 0; i < pl->n; i++) {
            struct ds_item it = {.index = -7};
            rc = ds_read(r, i, &it, &err);
            if ((rc == 0) != item_valid(pl, i)) FAIL("item %d %s: %s", i, rc == 0 ? "accepted" : "refused", err.msg);
            if (rc == 0) {
                check_item(pl, i, &it);
                ds_item_free(&it);
            } else if (it.index != -7 || it.id) {
                FAIL("a refused read changed the item");
            }
        }
        ds_close(r);
    }
    free(pl);
    return 0;
}
