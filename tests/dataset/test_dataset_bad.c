/* Bad prompt files, one defect each, and the message each must give: files that are not HDF5 or
 * are cut short, wrong root attributes, a missing dataset, a wrong type, rank or length, broken
 * image_offset arrays; then items that break the per-item limits, after which the reader must still
 * work. The files are built with plain HDF5 calls (h5build.h), starting from a valid file that the
 * first test shows is accepted. */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../test.h"
#include "h5build.h"
#include "mmupt/dataset.h"
#include "mmupt/strutil.h"

enum { F_ID, F_SOURCE, F_PROBLEM, F_ANSWER, F_OFFSET, F_IMAGES, F_COUNT };
enum { N_ITEMS = 4, N_IMAGES = 3, SPARE = 8 };

static char tmpdir[64];

static const char *const words[SPARE] = {"a", "b", "c", "d", "e", "f", "g", "h"};
static const int64_t zeros[SPARE + 1];
static const int64_t good_offsets[N_ITEMS + 1] = {0, 1, 1, 3, 3};
static const uint8_t png[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
static const uint8_t *const blobs[SPARE] = {png, png, png, png, png, png, png, png};
static const size_t blob_lens[SPARE] = {8, 8, 8, 8, 8, 8, 8, 8};

/* The valid file: 4 items, 3 images. Every entry carries data for every kind, so a case can change
 * an entry's kind without supplying new data. */
static void valid_list(struct h5b_dset d[F_COUNT])
{
    static const char *const names[F_COUNT] = {"id", "source", "problem", "answer", "image_offset", "images"};
    static const enum h5b_kind kinds[F_COUNT] = {H5B_STR, H5B_STR, H5B_STR, H5B_STR, H5B_I64, H5B_BLOB};
    for (int f = 0; f < F_COUNT; f++)
        d[f] = (struct h5b_dset){.name = names[f], .kind = kinds[f], .rank = 1, .n = N_ITEMS, .str = words,
                                 .i64 = zeros, .blob = blobs, .blob_len = blob_lens};
    d[F_OFFSET].n = N_ITEMS + 1;
    d[F_OFFSET].i64 = good_offsets;
    d[F_IMAGES].n = N_IMAGES;
}

struct bad_case {
    const char *label;
    int field;     /* the entry changed, or -1 */
    int drop;      /* leave it out */
    int kind;      /* 1 + its new kind (KIND()), 0: unchanged */
    int rank;      /* 1 + its new rank (RANK()), 0: unchanged */
    int dn;        /* change of its length */
    const int64_t *offsets; /* new image_offset values (with field = F_OFFSET) */
    const char *format;     /* mmupt_format, NULL: "prompts"; "" : left out */
    int64_t version;        /* format_version, 0: 1; -1: left out */
    int version_float;
    int special;            /* 1: 'images' is a group; 2: 'id' is a soft link */
    const char *expect;
};

#define KIND(k) .kind = 1 + (k)
#define RANK(r) .rank = 1 + (r)

static const int64_t off_start1[] = {1, 1, 1, 3, 3};
static const int64_t off_decrease[] = {0, 2, 1, 3, 3};
static const int64_t off_past[] = {0, 1, 9, 9, 9};
static const int64_t off_short[] = {0, 1, 1, 2, 2};

static const struct bad_case cases[] = {
    {"no_format", -1, .format = "", .expect = "not an mmupt prompt dataset: root attribute 'mmupt_format' is missing"},
    {"other_format", -1, .format = "checkpoint", .expect = "mmupt_format is 'checkpoint', expected 'prompts'"},
    {"no_version", -1, .version = -1, .expect = "root attribute 'format_version' is missing"},
    {"version_2", -1, .version = 2, .expect = "format_version is 2; this build reads version 1"},
    {"version_float", -1, .version = 1, .version_float = 1,
     .expect = "root attribute 'format_version' has type float64; expected an integer"},
    {"no_id", F_ID, .drop = 1, .expect = "dataset 'id' is missing"},
    {"no_source", F_SOURCE, .drop = 1, .expect = "dataset 'source' is missing"},
    {"no_problem", F_PROBLEM, .drop = 1, .expect = "dataset 'problem' is missing"},
    {"no_offset", F_OFFSET, .drop = 1, .expect = "dataset 'image_offset' is missing"},
    {"no_images", F_IMAGES, .drop = 1, .expect = "dataset 'images' is missing"},
    {"problem_fixed", F_PROBLEM, KIND(H5B_FIXSTR),
     .expect = "'problem' has type fixed-length string; expected variable-length UTF-8 strings"},
    {"answer_int", F_ANSWER, KIND(H5B_I64), .expect = "'answer' has type int64; expected variable-length UTF-8 strings"},
    {"id_blob", F_ID, KIND(H5B_BLOB), .expect = "'id' has type variable-length sequence of uint8; expected variable-length"},
    {"offset_i32", F_OFFSET, KIND(H5B_I32), .expect = "'image_offset' has type int32; expected int64"},
    {"offset_f64", F_OFFSET, KIND(H5B_F64), .expect = "'image_offset' has type float64; expected int64"},
    {"images_str", F_IMAGES, KIND(H5B_STR),
     .expect = "'images' has type variable-length string; expected variable-length sequences of uint8"},
    {"images_int8", F_IMAGES, KIND(H5B_BLOB8),
     .expect = "'images' has type variable-length sequence of int8; expected variable-length sequences of uint8"},
    {"id_rank2", F_ID, RANK(2), .expect = "'id' has rank 2; expected a one-dimensional dataset"},
    {"images_scalar", F_IMAGES, RANK(0), .expect = "'images' has rank 0; expected a one-dimensional dataset"},
    {"source_short", F_SOURCE, .dn = -1, .expect = "'source' has 3 entries but 'id' has 4"},
    {"answer_long", F_ANSWER, .dn = 2, .expect = "'answer' has 6 entries but 'id' has 4"},
    {"problem_long", F_PROBLEM, .dn = 1, .expect = "'problem' has 5 entries but 'id' has 4"},
    {"offset_short", F_OFFSET, .dn = -1, .expect = "'image_offset' has 4 entries; expected 5 (one more than 'id')"},
    {"offset_start", F_OFFSET, .offsets = off_start1, .expect = "image_offset[0] is 1; it must be 0"},
    {"offset_decrease", F_OFFSET, .offsets = off_decrease, .expect = "image_offset decreases at entry 2: 1 after 2"},
    {"offset_past", F_OFFSET, .offsets = off_past,
     .expect = "image_offset[2] is 9, out of range: 'images' has 3 entries"},
    {"offset_end", F_OFFSET, .offsets = off_short, .expect = "image_offset ends at 2 but 'images' has 3 entries"},
    {"images_group", F_IMAGES, .drop = 1, .special = 1, .expect = "'images' is not a dataset (a group?)"},
    {"id_softlink", F_ID, .drop = 1, .special = 2, .expect = "'id' is a soft or external link"},
};

/* Write the valid file changed as c says (c NULL: unchanged) to path. */
static int build(const char *path, const struct bad_case *c)
{
    struct h5b_dset d[F_COUNT];
    valid_list(d);
    const char *format = "prompts";
    int64_t version = 1;
    int vfloat = 0;
    if (c) {
        if (c->field >= 0) {
            struct h5b_dset *e = &d[c->field];
            if (c->drop) e->name = NULL;
            if (c->kind) e->kind = (enum h5b_kind)(c->kind - 1);
            if (c->rank) e->rank = c->rank - 1;
            e->n = (size_t)((int)e->n + c->dn);
            if (c->offsets) e->i64 = c->offsets;
        }
        if (c->format) format = c->format;
        if (c->version) version = c->version;
        vfloat = c->version_float;
    }
    hid_t f = h5b_create(path);
    if (f < 0) return -1;
    int rc = 0;
    if (format[0]) rc |= h5b_attr_str(f, "mmupt_format", format);
    if (version >= 0) rc |= h5b_attr_num(f, "format_version", version, vfloat);
    for (int k = 0; k < F_COUNT; k++) rc |= h5b_add(f, &d[k]);
    if (c && c->special == 1) {
        hid_t g = H5Gcreate2(f, "images", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        rc |= g < 0;
        if (g >= 0) H5Gclose(g);
    }
    if (c && c->special == 2) rc |= H5Lcreate_soft("source", f, "id", H5P_DEFAULT, H5P_DEFAULT) < 0;
    H5Fclose(f);
    return rc ? -1 : 0;
}

/* Without this, every case below could pass by rejecting everything. */
static void test_valid_base(struct test_state *ts)
{
    char path[256];
    snprintf(path, sizeof path, "%s/valid.h5", tmpdir);
    CHECK(ts, build(path, NULL) == 0);
    struct ds_reader *r;
    struct mmupt_err err;
    int rc = ds_open(&r, path, &err);
    CHECK_MSG(ts, rc == 0, "%s", err.msg);
    if (rc) return;
    CHECK(ts, ds_count(r) == N_ITEMS && ds_has_answers(r));
    int64_t want_images[N_ITEMS] = {1, 0, 2, 0};
    for (int i = 0; i < N_ITEMS; i++) {
        struct ds_item it;
        CHECK_MSG(ts, ds_read(r, i, &it, &err) == 0, "%s", err.msg);
        CHECK(ts, it.n_images == want_images[i] && strcmp(it.problem, words[i]) == 0);
        for (int k = 0; k < it.n_images; k++) CHECK(ts, it.image_len[k] == 8 && memcmp(it.image[k], png, 8) == 0);
        ds_item_free(&it);
    }
    ds_close(r);
}

static void test_answer_optional(struct test_state *ts)
{
    char path[256];
    snprintf(path, sizeof path, "%s/no_answer.h5", tmpdir);
    struct bad_case c = {"no_answer", F_ANSWER, .drop = 1};
    CHECK(ts, build(path, &c) == 0);
    struct ds_reader *r;
    struct mmupt_err err;
    int rc = ds_open(&r, path, &err);
    CHECK_MSG(ts, rc == 0, "%s", err.msg);
    if (rc) return;
    struct ds_item it;
    CHECK(ts, !ds_has_answers(r) && ds_read(r, 0, &it, &err) == 0 && it.answer == NULL);
    ds_item_free(&it);
    ds_close(r);
}

static void test_bad_schema(struct test_state *ts)
{
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const struct bad_case *c = &cases[k];
        char path[256];
        snprintf(path, sizeof path, "%s/%s.h5", tmpdir, c->label);
        CHECK_MSG(ts, build(path, c) == 0, "cannot build %s", c->label);
        struct ds_reader *r = NULL;
        struct mmupt_err err = {{0}};
        int rc = ds_open(&r, path, &err);
        CHECK_MSG(ts, rc == -1, "%s was accepted", c->label);
        if (rc == 0) ds_close(r);
        CHECK_MSG(ts, strstr(err.msg, c->expect) != NULL, "%s: '%s' not in '%s'", c->label, c->expect, err.msg);
        CHECK_MSG(ts, strstr(err.msg, path) != NULL, "%s: the message does not name the file: %s", c->label, err.msg);
    }
}

static int write_bytes(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    int rc = fwrite(p, 1, n, f) == n ? 0 : -1;
    return fclose(f) || rc ? -1 : 0;
}

static void expect_open_fails(struct test_state *ts, const char *path, const char *expect)
{
    struct ds_reader *r;
    struct mmupt_err err = {{0}};
    CHECK_MSG(ts, ds_open(&r, path, &err) == -1, "%s accepted", path);
    CHECK_MSG(ts, strstr(err.msg, path) && strstr(err.msg, expect), "'%s' not in '%s'", expect, err.msg);
}

static void test_not_hdf5(struct test_state *ts)
{
    char path[256];
    snprintf(path, sizeof path, "%s/text.h5", tmpdir);
    const char text[] = "id,problem\n1,what is 2+2?\n";
    CHECK(ts, write_bytes(path, text, sizeof text - 1) == 0);
    expect_open_fails(ts, path, "not an HDF5 file (no HDF5 signature)");
    snprintf(path, sizeof path, "%s/zero.h5", tmpdir);
    CHECK(ts, write_bytes(path, "", 0) == 0);
    expect_open_fails(ts, path, "not an HDF5 file");
    expect_open_fails(ts, "/nonexistent/train.h5", "cannot open: No such file or directory");
    expect_open_fails(ts, tmpdir, "is a directory");
    struct ds_reader *r;
    struct mmupt_err err;
    CHECK(ts, ds_open_image(&r, "mem.h5", text, sizeof text - 1, &err) == -1);
    CHECK_CONTAINS(ts, err.msg, "mem.h5: not an HDF5 file");
}

/* The valid file cut at several lengths: every cut is refused, none crashes. */
static void test_truncated(struct test_state *ts)
{
    char path[256], cut[256];
    snprintf(path, sizeof path, "%s/valid_for_cut.h5", tmpdir);
    snprintf(cut, sizeof cut, "%s/cut.h5", tmpdir);
    CHECK(ts, build(path, NULL) == 0);
    char *bytes;
    size_t len;
    struct mmupt_err err;
    if (file_read_all(path, 1 << 24, &bytes, &len, &err)) {
        CHECK_MSG(ts, 0, "%s", err.msg);
        return;
    }
    const double fractions[] = {0.999, 0.9, 0.5, 0.1, 0.01};
    for (size_t k = 0; k < sizeof fractions / sizeof fractions[0]; k++) {
        size_t n = (size_t)((double)len * fractions[k]);
        CHECK(ts, write_bytes(cut, bytes, n) == 0);
        struct ds_reader *r;
        CHECK_MSG(ts, ds_open(&r, cut, &err) == -1, "cut at %zu of %zu accepted", n, len);
        CHECK_MSG(ts, strstr(err.msg, cut) && strstr(err.msg, "cannot open as HDF5: truncated file: eof = "),
                  "cut at %zu: %s", n, err.msg);
        CHECK(ts, ds_open_image(&r, "cut-image", bytes, n, &err) == -1);
    }
    free(bytes);
}

/* ---- items that break the per-item limits ---- */

static void test_bad_items(struct test_state *ts)
{
    enum { N = 7, M = 20 };
    char *huge = malloc(DS_MAX_STRING + 2), *limit = malloc(DS_MAX_STRING + 1);
    memset(huge, 'a', DS_MAX_STRING + 1);
    huge[DS_MAX_STRING + 1] = '\0';
    memset(limit, 'b', DS_MAX_STRING);
    limit[DS_MAX_STRING] = '\0';
    const char *id[N] = {"0", "1", "2", "3", "4", "5", "6"};
    const char *source[N] = {"s", "s", huge, "s", "s", "s", limit};
    const char *problem[N] = {"ok", "x\xc3(", "p", "p", "p", "p", "p"};
    const char *answer[N] = {"", "", "", "", "", "\xc0\xaf", "\xf0\x9f\x98\x80"};
    const int64_t offsets[N + 1] = {0, 1, 1, 1, 18, 19, 19, 20};
    const uint8_t *img[M];
    size_t img_len[M];
    for (int k = 0; k < M; k++) {
        img[k] = png;
        img_len[k] = k == 18 ? 0 : 8;
    }
    struct h5b_dset d[F_COUNT] = {
        {"id", H5B_STR, 1, N, id, NULL, NULL, NULL},
        {"source", H5B_STR, 1, N, source, NULL, NULL, NULL},
        {"problem", H5B_STR, 1, N, problem, NULL, NULL, NULL},
        {"answer", H5B_STR, 1, N, answer, NULL, NULL, NULL},
        {"image_offset", H5B_I64, 1, N + 1, NULL, offsets, NULL, NULL},
        {"images", H5B_BLOB, 1, M, NULL, NULL, img, img_len},
    };
    hid_t f = h5b_create(NULL);
    int rc = h5b_attr_str(f, "mmupt_format", "prompts") | h5b_attr_num(f, "format_version", 1, 0);
    for (int k = 0; k < F_COUNT; k++) rc |= h5b_add(f, &d[k]);
    size_t len;
    void *image = h5b_image(f, &len);
    CHECK(ts, rc == 0 && image);
    struct ds_reader *r;
    struct mmupt_err err;
    rc = image ? ds_open_image(&r, "items.h5", image, len, &err) : -1;
    free(image);
    CHECK_MSG(ts, rc == 0, "%s", err.msg);
    if (rc == 0) {
        static const char *const expect[N] = {
            NULL,
            "items.h5: item 1: problem: invalid UTF-8 at byte 1",
            "items.h5: item 2: source: string of 1048577 bytes exceeds the limit of 1048576 bytes",
            "items.h5: item 3: images: 17 images, more than the 16 allowed",
            "items.h5: item 4: images[18]: the image is empty (0 bytes)",
            "items.h5: item 5: answer: invalid UTF-8 at byte 0",
            NULL,
        };
        for (int pass = 0; pass < 2; pass++) /* twice: a refused item leaves the reader working */
            for (int i = 0; i < N; i++) {
                struct ds_item it = {.index = 1234};
                rc = ds_read(r, i, &it, &err);
                if (expect[i]) {
                    CHECK_MSG(ts, rc == -1 && it.index == 1234, "item %d accepted", i);
                    CHECK_CONTAINS(ts, err.msg, expect[i]);
                } else {
                    CHECK_MSG(ts, rc == 0, "item %d: %s", i, err.msg);
                    CHECK(ts, it.index == i && it.answer == (i == 0 ? NULL : it.answer));
                    if (i == 6) CHECK(ts, strlen(it.source) == DS_MAX_STRING && strcmp(it.answer, answer[6]) == 0);
                    ds_item_free(&it);
                }
            }
        ds_close(r);
    }
    free(huge);
    free(limit);
}

static void test_oversize_image(struct test_state *ts)
{
    size_t big = (size_t)DS_MAX_IMAGE + 1;
    uint8_t *pixels = calloc(big, 1);
    const char *one[1] = {"x"};
    const int64_t offsets[2] = {0, 1};
    const uint8_t *img[1] = {pixels};
    struct h5b_dset d[5] = {
        {"id", H5B_STR, 1, 1, one, NULL, NULL, NULL},
        {"source", H5B_STR, 1, 1, one, NULL, NULL, NULL},
        {"problem", H5B_STR, 1, 1, one, NULL, NULL, NULL},
        {"image_offset", H5B_I64, 1, 2, NULL, offsets, NULL, NULL},
        {"images", H5B_BLOB, 1, 1, NULL, NULL, img, &big},
    };
    hid_t f = h5b_create(NULL);
    int rc = h5b_attr_str(f, "mmupt_format", "prompts") | h5b_attr_num(f, "format_version", 1, 0);
    for (int k = 0; k < 5; k++) rc |= h5b_add(f, &d[k]);
    free(pixels);
    size_t len;
    void *image = h5b_image(f, &len);
    struct ds_reader *r;
    struct mmupt_err err;
    rc = rc == 0 && image ? ds_open_image(&r, "big.h5", image, len, &err) : -1;
    free(image);
    CHECK_MSG(ts, rc == 0, "%s", err.msg);
    if (rc) return;
    struct ds_item it;
    CHECK(ts, ds_read(r, 0, &it, &err) == -1);
    CHECK_CONTAINS(ts, err.msg, "big.h5: item 0: images[0]: image of 67108865 bytes exceeds the limit of 67108864 bytes");
    ds_close(r);
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/mmupt-dsbad-XXXXXX");
    if (!mkdtemp(tmpdir)) return 1;
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL); /* the builder's own HDF5 calls: keep the log readable */
    struct test_state ts = {0};
    RUN(&ts, test_valid_base);
    RUN(&ts, test_answer_optional);
    RUN(&ts, test_bad_schema);
    RUN(&ts, test_not_hdf5);
    RUN(&ts, test_truncated);
    RUN(&ts, test_bad_items);
    RUN(&ts, test_oversize_image);
    test_remove_dir(tmpdir);
    return test_summary(&ts);
}
