/* Prompt datasets: the committed fixture (written by tools/convert_dataset.py through h5py), writer ->
 * reader round trips, and what the writer refuses. Bad files are in test_dataset_bad.c. */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../test.h"
#include "mmupt/dataset.h"
#include "mmupt/strutil.h"

static const char *fixtures; /* argv[1]; read-only after main sets it */
static char tmpdir[64];      /* a fresh folder for written files */

static int str_eq(const char *a, const char *b)
{
    return a && b ? strcmp(a, b) == 0 : a == b;
}

/* ---- the committed fixture ---- */

struct expect {
    const char *id, *source, *problem, *answer;
    int n_images;
    const char *image[2]; /* file names under images/ */
};

/* tests/fixtures/datasets/small.jsonl, as the converter stores it. */
static const struct expect small[] = {
    {"geo-0001", "geometry3k", "<image>Find x. In \xe2\x96\xb3" "ABC, \xe2\x88\xa0" "A = 30\xc2\xb0 and AB = 2x + 4.", "15", 1,
     {"triangle.png"}},
    {"mmr1-17", "MMR1",
     "<image><image>Which bar is taller in the chart, compared with the photo? "
     "\xd0\x9e\xd1\x82\xd0\xb2\xd0\xb5\xd1\x82 \xd0\xbe\xd0\xb4\xd0\xbd\xd0\xbe\xd0\xb9 "
     "\xd0\xb1\xd1\x83\xd0\xba\xd0\xb2\xd0\xbe\xd0\xb9.",
     "B", 2, {"chart.png", "photo.jpg"}},
    {"text-3", "dapo", "Compute 2 + 2 \xe2\x80\x94 no picture needed \xe2\x9c\x93", "4", 0, {NULL}},
    {"syn-9", "synthetic",
     "<image>\xe8\xbf\x99\xe4\xb8\xaa\xe4\xb8\x89\xe8\xa7\x92\xe5\xbd\xa2\xe7\x9a\x84\xe9\x9d\xa2\xe7\xa7\xaf"
     "\xe6\x98\xaf\xe5\xa4\x9a\xe5\xb0\x91\xef\xbc\x9f \xf0\x9f\x98\x80",
     NULL /* empty answer: none */, 1, {"triangle.png"}},
    {"4", "small", "<image>What colour dominates the photo?", NULL /* no answer key */, 1, {"photo.jpg"}},
};

static void check_image(struct test_state *ts, const struct ds_item *it, int k, const char *name)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/images/%s", fixtures, name);
    char *bytes;
    size_t len;
    struct mmupt_err err;
    CHECK_MSG(ts, file_read_all(path, 1 << 20, &bytes, &len, &err) == 0, "%s", err.msg);
    CHECK_MSG(ts, it->image_len[k] == len && memcmp(it->image[k], bytes, len) == 0, "item %lld image %d != %s",
              (long long)it->index, k, name);
    free(bytes);
}

static void test_fixture(struct test_state *ts)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/small.h5", fixtures);
    struct ds_reader *r = NULL;
    struct mmupt_err err;
    int rc = ds_open(&r, path, &err);
    CHECK_MSG(ts, rc == 0, "%s", err.msg);
    if (rc) return;
    CHECK(ts, ds_count(r) == 5 && ds_has_answers(r));
    for (int i = 0; i < 5; i++) {
        const struct expect *e = &small[i];
        struct ds_item it;
        rc = ds_read(r, i, &it, &err);
        CHECK_MSG(ts, rc == 0, "%s", err.msg);
        if (rc) continue;
        CHECK(ts, it.index == i);
        CHECK_MSG(ts, str_eq(it.id, e->id) && str_eq(it.source, e->source), "item %d: '%s' '%s'", i, it.id, it.source);
        CHECK_MSG(ts, str_eq(it.problem, e->problem), "item %d: '%s'", i, it.problem);
        CHECK_MSG(ts, str_eq(it.answer, e->answer), "item %d: answer '%s'", i, it.answer ? it.answer : "(null)");
        CHECK(ts, it.n_images == e->n_images);
        for (int k = 0; k < it.n_images && k < e->n_images; k++) check_image(ts, &it, k, e->image[k]);
        ds_item_free(&it);
        CHECK(ts, it.id == NULL && it.n_images == 0); /* freed items are zeroed */
    }
    struct ds_item untouched = {.index = 77};
    CHECK(ts, ds_read(r, 5, &untouched, &err) == -1 && untouched.index == 77);
    CHECK_CONTAINS(ts, err.msg, "small.h5: item 5 does not exist (the split has 5 items)");
    CHECK(ts, ds_read(r, -1, &untouched, &err) == -1);
    ds_close(r);
}

/* ---- writer -> reader ---- */

static uint8_t *pattern(size_t n, unsigned seed)
{
    uint8_t *p = malloc(n);
    for (size_t k = 0; k < n; k++) p[k] = (uint8_t)(seed * 31 + k * 7 + (k >> 8));
    return p;
}

static void tmp_path(char *out, size_t n, const char *name)
{
    snprintf(out, n, "%s/%s", tmpdir, name);
}

static int count_files(void)
{
    DIR *d = opendir(tmpdir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (e->d_name[0] != '.') n++;
    if (d) closedir(d);
    return n;
}

static void check_same(struct test_state *ts, const struct ds_item *a, const struct ds_item *b, int answers)
{
    CHECK(ts, str_eq(a->id, b->id) && str_eq(a->source, b->source) && str_eq(a->problem, b->problem));
    /* An empty answer, or any answer in a split without answers, reads back as none. */
    const char *want = answers && a->answer && a->answer[0] ? a->answer : NULL;
    CHECK_MSG(ts, str_eq(b->answer, want), "answer '%s'", b->answer ? b->answer : "(null)");
    CHECK(ts, a->n_images == b->n_images);
    for (int k = 0; k < a->n_images && k < b->n_images; k++)
        CHECK(ts, a->image_len[k] == b->image_len[k] && memcmp(a->image[k], b->image[k], a->image_len[k]) == 0);
}

static void roundtrip(struct test_state *ts, int with_answers)
{
    enum { N = 40 };
    struct ds_item items[N];
    uint8_t *bufs[N][DS_MAX_IMAGES];
    size_t lens[N][DS_MAX_IMAGES];
    char ids[N][32], problems[N][64];
    for (int i = 0; i < N; i++) {
        /* 0..16 images per item (0 on every fourth), sizes 1 byte to ~70 KB. */
        int n = i % 4 == 0 ? 0 : i == 5 ? DS_MAX_IMAGES : i % 3 + 1;
        for (int k = 0; k < n; k++) {
            lens[i][k] = k == 0 && i == 1 ? 1 : (size_t)(i * 1733 + k * 97) % 70000 + 1;
            bufs[i][k] = pattern(lens[i][k], (unsigned)(i * 17 + k));
        }
        snprintf(ids[i], sizeof ids[i], "item-%d", i);
        snprintf(problems[i], sizeof problems[i], "\xc3\xa9quation %d", i);
        items[i] = (struct ds_item){.index = i, .id = ids[i], .source = i % 2 ? "src" : "", .problem = problems[i],
                                    .answer = !with_answers ? NULL : i % 3 == 0 ? "" : i % 3 == 1 ? NULL : "42 \xe2\x88\x9a",
                                    .n_images = n, .image = bufs[i], .image_len = lens[i]};
    }
    items[2].id = "";
    items[2].problem = ""; /* empty strings are allowed everywhere */
    char path[512];
    tmp_path(path, sizeof path, with_answers ? "rt_answers.h5" : "rt_none.h5");
    struct ds_writer *w;
    struct mmupt_err err;
    int rc = ds_writer_open(&w, path, with_answers, &err);
    CHECK_MSG(ts, rc == 0, "%s", err.msg);
    if (rc) return;
    for (int i = 0; i < N; i++) CHECK_MSG(ts, ds_writer_add(w, &items[i], &err) == 0, "%s", err.msg);
    CHECK(ts, access(path, F_OK) != 0); /* nothing at the target before close */
    CHECK_MSG(ts, ds_writer_close(w, &err) == 0, "%s", err.msg);
    struct ds_reader *r;
    rc = ds_open(&r, path, &err);
    CHECK_MSG(ts, rc == 0, "%s", err.msg);
    if (rc == 0) {
        CHECK(ts, ds_count(r) == N && ds_has_answers(r) == with_answers);
        for (int i = N - 1; i >= 0; i--) { /* any order: items are independent */
            struct ds_item it;
            rc = ds_read(r, i, &it, &err);
            CHECK_MSG(ts, rc == 0, "%s", err.msg);
            if (rc == 0) check_same(ts, &items[i], &it, with_answers);
            ds_item_free(&it);
        }
        ds_close(r);
    }
    for (int i = 0; i < N; i++)
        for (int k = 0; k < items[i].n_images; k++) free(bufs[i][k]);
}

static void test_roundtrip(struct test_state *ts)
{
    int before = count_files();
    roundtrip(ts, 1);
    roundtrip(ts, 0);
    CHECK(ts, count_files() == before + 2); /* the two outputs, no temporary files left */
}

static void test_empty_split(struct test_state *ts)
{
    char path[512];
    tmp_path(path, sizeof path, "empty.h5");
    struct ds_writer *w;
    struct mmupt_err err;
    CHECK(ts, ds_writer_open(&w, path, 0, &err) == 0 && ds_writer_close(w, &err) == 0);
    struct ds_reader *r;
    int rc = ds_open(&r, path, &err);
    CHECK_MSG(ts, rc == 0, "%s", err.msg);
    if (rc) return;
    CHECK(ts, ds_count(r) == 0 && !ds_has_answers(r));
    struct ds_item it;
    CHECK(ts, ds_read(r, 0, &it, &err) == -1);
    ds_close(r);
}

/* A refused item writes nothing, and the writer goes on. */
static void test_writer_refuses(struct test_state *ts)
{
    char path[512];
    tmp_path(path, sizeof path, "refuse.h5");
    struct ds_writer *w;
    struct mmupt_err err;
    CHECK(ts, ds_writer_open(&w, path, 0, &err) == 0);
    uint8_t one = 1, *img[DS_MAX_IMAGES + 1];
    size_t len[DS_MAX_IMAGES + 1];
    for (int k = 0; k <= DS_MAX_IMAGES; k++) {
        img[k] = &one;
        len[k] = 1;
    }
    char *huge = malloc(DS_MAX_STRING + 2);
    memset(huge, 'a', DS_MAX_STRING + 1);
    huge[DS_MAX_STRING + 1] = '\0';
    struct ds_item good = {.id = "g", .source = "s", .problem = "p", .n_images = 1, .image = img, .image_len = len};
    struct {
        struct ds_item it;
        const char *expect;
    } bad[] = {
        {{.id = "a", .source = "s", .problem = "bad \xff byte"}, "item 0: problem: invalid UTF-8 at byte 4"},
        {{.id = "a", .source = "\xed\xa0\x80", .problem = "p"}, "item 0: source: invalid UTF-8 at byte 0"},
        {{.id = huge, .source = "s", .problem = "p"}, "item 0: id: string of more than 1048576 bytes"},
        {{.id = "a", .source = NULL, .problem = "p"}, "item 0: source is NULL"},
        {{.id = "a", .source = "s", .problem = "p", .answer = "7"}, "item 0: has an answer, but the split is written without"},
        {{.id = "a", .source = "s", .problem = "p", .n_images = DS_MAX_IMAGES + 1, .image = img, .image_len = len},
         "item 0: 17 images; allowed are 0 to 16"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        CHECK_MSG(ts, ds_writer_add(w, &bad[k].it, &err) == -1, "case %zu accepted", k);
        CHECK_CONTAINS(ts, err.msg, bad[k].expect);
        CHECK_CONTAINS(ts, err.msg, "refuse.h5");
    }
    len[0] = 0;
    CHECK(ts, ds_writer_add(w, &good, &err) == -1);
    CHECK_CONTAINS(ts, err.msg, "item 0: image 0 is empty");
    len[0] = 1;
    struct ds_item empty_answer = good;
    empty_answer.answer = ""; /* an empty answer is no answer: fine without answers */
    CHECK_MSG(ts, ds_writer_add(w, &good, &err) == 0 && ds_writer_add(w, &empty_answer, &err) == 0, "%s", err.msg);
    CHECK_MSG(ts, ds_writer_close(w, &err) == 0, "%s", err.msg);
    struct ds_reader *r;
    CHECK(ts, ds_open(&r, path, &err) == 0 && ds_count(r) == 2);
    ds_close(r);
    free(huge);
}

static void test_writer_bad_path(struct test_state *ts)
{
    struct ds_writer *w;
    struct mmupt_err err;
    CHECK(ts, ds_writer_open(&w, "/nonexistent-dir/x.h5", 1, &err) == -1);
    CHECK_CONTAINS(ts, err.msg, "/nonexistent-dir/x.h5: cannot create a temporary file next to it");
}

/* The same file opened from memory reads the same. */
static void test_open_image(struct test_state *ts)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/small.h5", fixtures);
    char *bytes;
    size_t len;
    struct mmupt_err err;
    CHECK(ts, file_read_all(path, 1 << 20, &bytes, &len, &err) == 0);
    struct ds_reader *r;
    int rc = ds_open_image(&r, "mem:small", bytes, len, &err);
    free(bytes); /* the reader holds its own copy */
    CHECK_MSG(ts, rc == 0, "%s", err.msg);
    if (rc) return;
    struct ds_item it;
    CHECK(ts, ds_count(r) == 5 && ds_read(r, 1, &it, &err) == 0);
    CHECK(ts, it.n_images == 2 && str_eq(it.id, "mmr1-17"));
    ds_item_free(&it);
    CHECK(ts, ds_read(r, 9, &it, &err) == -1);
    CHECK_CONTAINS(ts, err.msg, "mem:small: item 9");
    ds_close(r);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s FIXTURES_DIR\n", argv[0]);
        return 2;
    }
    fixtures = argv[1];
    snprintf(tmpdir, sizeof tmpdir, "/tmp/mmupt-ds-XXXXXX");
    if (!mkdtemp(tmpdir)) return 1;
    struct test_state ts = {0};
    RUN(&ts, test_fixture);
    RUN(&ts, test_roundtrip);
    RUN(&ts, test_empty_split);
    RUN(&ts, test_writer_refuses);
    RUN(&ts, test_writer_bad_path);
    RUN(&ts, test_open_image);
    test_remove_dir(tmpdir);
    return test_summary(&ts);
}
