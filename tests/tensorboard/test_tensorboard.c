/* TensorBoard event files: CRC32C vectors, varints, exact event bytes, and files written by
 * tb_open/tb_scalar read back with a small independent TFRecord + protobuf reader.
 *
 * With an argument DIR, instead writes the fixed demo scalars (write_demo) into DIR and exits:
 * tools/check_tensorboard.py uses that to check the file with the real TensorBoard reader. */
#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../test.h"
#include "mmupt/strutil.h"
#include "mmupt/tensorboard.h"
#include "tensorboard/tb_internal.h"

/* ---- a minimal reader, written from the format description, not from the writer ---- */

static uint64_t rd_le(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

/* Decode a varint at *pos; returns -1 if it runs past end or exceeds 10 bytes. */
static int rd_varint(const uint8_t *p, size_t end, size_t *pos, uint64_t *out)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 70 && *pos < end; shift += 7) {
        uint8_t b = p[(*pos)++];
        v |= (uint64_t)(b & 0x7F) << shift;
        if (!(b & 0x80)) {
            *out = v;
            return 0;
        }
    }
    return -1;
}

/* One decoded Event, holding only the fields mmupt writes. */
struct ev {
    int has_wall, has_step, has_version, has_summary;
    double wall;
    int64_t step;
    char version[64];
    char tag[TB_TAG_MAX + 1];
    float value;
    int n_values, unknown_fields;
};

/* Walk the fields of a message in p[0..n); calls on_field for each. Returns -1 on malformed input. */
struct field {
    unsigned num, wire;
    uint64_t u;             /* varint / fixed value */
    const uint8_t *data;    /* wire type 2 */
    size_t len;
};

static int next_field(const uint8_t *p, size_t n, size_t *pos, struct field *f)
{
    uint64_t key;
    if (rd_varint(p, n, pos, &key) != 0) return -1;
    f->num = (unsigned)(key >> 3);
    f->wire = (unsigned)(key & 7);
    switch (f->wire) {
    case 0: return rd_varint(p, n, pos, &f->u);
    case 1: if (n - *pos < 8) return -1; f->u = rd_le(p + *pos, 8); *pos += 8; return 0;
    case 5: if (n - *pos < 4) return -1; f->u = rd_le(p + *pos, 4); *pos += 4; return 0;
    case 2:
        if (rd_varint(p, n, pos, &f->u) != 0 || f->u > n - *pos) return -1;
        f->data = p + *pos;
        f->len = (size_t)f->u;
        *pos += f->len;
        return 0;
    default: return -1;
    }
}

static int decode_value(const uint8_t *p, size_t n, struct ev *e)
{
    struct field f;
    for (size_t pos = 0; pos < n;) {
        if (next_field(p, n, &pos, &f) != 0) return -1;
        if (f.num == 1 && f.wire == 2 && f.len <= TB_TAG_MAX) {
            memcpy(e->tag, f.data, f.len);
            e->tag[f.len] = '\0';
        } else if (f.num == 2 && f.wire == 5) {
            uint32_t bits = (uint32_t)f.u;
            memcpy(&e->value, &bits, 4);
        } else {
            e->unknown_fields++;
        }
    }
    return 0;
}

static int decode_event(const uint8_t *p, size_t n, struct ev *e)
{
    memset(e, 0, sizeof *e);
    struct field f;
    for (size_t pos = 0; pos < n;) {
        if (next_field(p, n, &pos, &f) != 0) return -1;
        if (f.num == 1 && f.wire == 1) {
            e->has_wall = 1;
            memcpy(&e->wall, &f.u, 8);
        } else if (f.num == 2 && f.wire == 0) {
            e->has_step = 1;
            e->step = (int64_t)f.u;
        } else if (f.num == 3 && f.wire == 2 && f.len < sizeof e->version) {
            e->has_version = 1;
            memcpy(e->version, f.data, f.len);
        } else if (f.num == 5 && f.wire == 2) {
            e->has_summary = 1;
            struct field v;
            for (size_t q = 0; q < f.len;) {
                if (next_field(f.data, f.len, &q, &v) != 0) return -1;
                if (v.num != 1 || v.wire != 2) { e->unknown_fields++; continue; }
                e->n_values++;
                if (decode_value(v.data, v.len, e) != 0) return -1;
            }
        } else {
            e->unknown_fields++;
        }
    }
    return 0;
}

/* Read every record of a file, checking framing and both CRCs. Returns the count, -1 on damage. */
static int read_events(struct test_state *ts, const char *path, struct ev *evs, int max)
{
    char *buf;
    size_t len;
    struct mmupt_err err;
    if (file_read_all(path, 1 << 20, &buf, &len, &err) != 0) {
        CHECK_MSG(ts, 0, "%s", err.msg);
        return -1;
    }
    struct tb_crc32c_table tab;
    tb_crc32c_init(&tab);
    const uint8_t *p = (const uint8_t *)buf;
    int count = 0;
    size_t pos = 0;
    while (pos < len && count < max) {
        if (len - pos < 12) break;
        uint64_t n = rd_le(p + pos, 8);
        uint32_t len_crc = (uint32_t)rd_le(p + pos + 8, 4);
        CHECK_MSG(ts, len_crc == tb_crc32c_mask(tb_crc32c(&tab, p + pos, 8)), "length crc of record %d", count);
        pos += 12;
        if (n > len - pos || len - pos - n < 4) break;
        uint32_t data_crc = (uint32_t)rd_le(p + pos + n, 4);
        CHECK_MSG(ts, data_crc == tb_crc32c_mask(tb_crc32c(&tab, p + pos, n)), "data crc of record %d", count);
        if (decode_event(p + pos, (size_t)n, &evs[count]) != 0) break;
        pos += n + 4;
        count++;
    }
    CHECK_MSG(ts, pos == len, "%zu trailing bytes after %d records", len - pos, count);
    free(buf);
    return pos == len ? count : -1;
}

/* The single event file in dir (the test makes fresh directories), into out. */
static int find_event_file(const char *dir, char *out, size_t n, int *count)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    *count = 0;
    while (d && (e = readdir(d))) {
        if (strncmp(e->d_name, "events.out.tfevents.", 20) != 0) continue;
        snprintf(out, n, "%s/%s", dir, e->d_name);
        (*count)++;
    }
    if (d) closedir(d);
    return *count == 1 ? 0 : -1;
}

static void make_tmpdir(char *out, size_t n)
{
    snprintf(out, n, "/tmp/mmupt_tb_XXXXXX");
    if (!mkdtemp(out)) MMUPT_DIE("mkdtemp failed");
}

/* ---- tests ---- */

static void test_crc32c_vectors(struct test_state *ts)
{
    struct tb_crc32c_table tab;
    tb_crc32c_init(&tab);
    uint8_t zeros[32] = {0}, ones[32], inc[32];
    memset(ones, 0xFF, sizeof ones);
    for (int i = 0; i < 32; i++) inc[i] = (uint8_t)i;
    CHECK(ts, tb_crc32c(&tab, "123456789", 9) == 0xE3069283u);
    CHECK(ts, tb_crc32c(&tab, zeros, 32) == 0x8A9136AAu);
    CHECK(ts, tb_crc32c(&tab, ones, 32) == 0x62A8AB43u);   /* RFC 3720 B.4 vectors */
    CHECK(ts, tb_crc32c(&tab, inc, 32) == 0x46DD794Eu);
    CHECK(ts, tb_crc32c(&tab, "", 0) == 0);
    CHECK(ts, tb_crc32c_mask(0) == 0xA282EAD8u);
    CHECK(ts, tb_crc32c_mask(0x00008000u) == 0xA282EAD9u); /* bit 15 rotates to bit 0 */
    CHECK(ts, tb_crc32c_mask(1) == 0xA284EAD8u);           /* bit 0 rotates to bit 17 */
}

static int varint_is(uint64_t v, const uint8_t *want, size_t n)
{
    uint8_t mem[16];
    struct tb_buf b = {mem, 0, sizeof mem};
    tb_put_varint(&b, v);
    return b.len == n && memcmp(mem, want, n) == 0;
}

static void test_varints(struct test_state *ts)
{
    CHECK(ts, varint_is(0, (const uint8_t[]){0x00}, 1));
    CHECK(ts, varint_is(1, (const uint8_t[]){0x01}, 1));
    CHECK(ts, varint_is(127, (const uint8_t[]){0x7F}, 1));
    CHECK(ts, varint_is(128, (const uint8_t[]){0x80, 0x01}, 2));
    CHECK(ts, varint_is(300, (const uint8_t[]){0xAC, 0x02}, 2));
    CHECK(ts, varint_is(16383, (const uint8_t[]){0xFF, 0x7F}, 2));
    CHECK(ts, varint_is(16384, (const uint8_t[]){0x80, 0x80, 0x01}, 3));
    CHECK(ts, varint_is(UINT64_MAX, (const uint8_t[]){0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01}, 10));
    /* int64 -1 as protobuf int64 (not sint64): the two's-complement bits, ten bytes. */
    CHECK(ts, varint_is((uint64_t)(int64_t)-1, (const uint8_t[]){0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01}, 10));
    CHECK(ts, varint_is((uint64_t)1 << 63, (const uint8_t[]){0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01}, 10));
    uint8_t mem[8];
    struct tb_buf b = {mem, 0, sizeof mem};
    tb_put_fixed32(&b, 0x3F800000u);
    tb_put_fixed32(&b, 0x01020304u);
    CHECK(ts, b.len == 8 && memcmp(mem, "\x00\x00\x80\x3F\x04\x03\x02\x01", 8) == 0);
}

/* Exact bytes of one scalar event, worked out by hand from the field numbers. */
static void test_scalar_event_bytes(struct test_state *ts)
{
    uint8_t mem[TB_EVENT_MAX];
    struct tb_buf b = {mem, 0, sizeof mem};
    tb_encode_scalar_event(&b, 2.0, 300, "a", 1.0f);
    static const uint8_t want[] = {
        0x09, 0, 0, 0, 0, 0, 0, 0, 0x40,  /* field 1, fixed64: 2.0 = 0x4000000000000000 */
        0x10, 0xAC, 0x02,                 /* field 2, varint: 300 */
        0x2A, 0x0A,                       /* field 5, bytes, 10: Summary */
        0x0A, 0x08,                       /*   field 1, bytes, 8: Value */
        0x0A, 0x01, 'a',                  /*     field 1, string "a" */
        0x15, 0x00, 0x00, 0x80, 0x3F,     /*     field 2, fixed32: 1.0f */
    };
    CHECK_MSG(ts, b.len == sizeof want && memcmp(mem, want, sizeof want) == 0, "len %zu", b.len);

    b.len = 0;
    tb_encode_version_event(&b, 0.0);
    CHECK(ts, b.len == 9 + 2 + 13 && mem[9] == 0x1A && mem[10] == 13 && memcmp(mem + 11, "brain.Event:2", 13) == 0);

    /* TFRecord framing of 3 bytes: 8 + 4 + 3 + 4. */
    uint8_t rec_mem[32];
    struct tb_buf r = {rec_mem, 0, sizeof rec_mem};
    struct tb_crc32c_table tab;
    tb_crc32c_init(&tab);
    tb_frame_record(&r, &tab, (const uint8_t *)"xyz", 3);
    CHECK(ts, r.len == 19 && rd_le(rec_mem, 8) == 3 && memcmp(rec_mem + 12, "xyz", 3) == 0);
    CHECK(ts, rd_le(rec_mem + 15, 4) == tb_crc32c_mask(tb_crc32c(&tab, "xyz", 3)));
}

static void test_write_and_read_back(struct test_state *ts)
{
    char dir[64], path[4096];
    make_tmpdir(dir, sizeof dir);
    struct tb_writer *w;
    struct mmupt_err err;
    CHECK_MSG(ts, tb_open(&w, dir, &err) == 0, "%s", err.msg);
    if (!w) return;
    CHECK(ts, tb_scalar(w, "loss", 0, 2.5, &err) == 0);
    CHECK(ts, tb_scalar(w, "reward/mean", 1, -0.125, &err) == 0);
    CHECK(ts, tb_scalar(w, "loss", (int64_t)1 << 40, 1e-3, &err) == 0);
    CHECK(ts, tb_scalar(w, "\xC3\xA9t\xC3\xA9", -7, 1e300, &err) == 0); /* "été": UTF-8; saturates */
    CHECK(ts, tb_flush(w, &err) == 0);
    tb_close(w);

    int nfiles;
    CHECK(ts, find_event_file(dir, path, sizeof path, &nfiles) == 0);
    struct ev e[8];
    int n = read_events(ts, path, e, 8);
    CHECK_MSG(ts, n == 5, "%d events", n);
    if (n == 5) {
        CHECK(ts, e[0].has_version && strcmp(e[0].version, "brain.Event:2") == 0 && !e[0].has_summary);
        CHECK(ts, e[0].has_wall && e[0].wall > 1.7e9); /* a real Unix time (after 2023) */
        CHECK(ts, strcmp(e[1].tag, "loss") == 0 && e[1].step == 0 && e[1].value == 2.5f);
        CHECK(ts, strcmp(e[2].tag, "reward/mean") == 0 && e[2].step == 1 && e[2].value == -0.125f);
        CHECK(ts, strcmp(e[3].tag, "loss") == 0 && e[3].step == (int64_t)1 << 40 && e[3].value == 1e-3f);
        CHECK(ts, strcmp(e[4].tag, "\xC3\xA9t\xC3\xA9") == 0 && e[4].step == -7 && isinf(e[4].value) && e[4].value > 0);
        for (int i = 1; i < 5; i++) {
            CHECK(ts, e[i].has_wall && e[i].has_step && e[i].has_summary && e[i].n_values == 1);
            CHECK(ts, e[i].wall >= e[0].wall && e[i].unknown_fields == 0);
        }
    }
    test_remove_dir(dir);
}

static void test_nested_logdir_and_two_writers(struct test_state *ts)
{
    char dir[64], sub[128], sub2[160], path[4096];
    make_tmpdir(dir, sizeof dir);
    snprintf(sub, sizeof sub, "%s/runs", dir);
    snprintf(sub2, sizeof sub2, "%s/runs/exp1", dir);
    struct tb_writer *a, *b;
    struct mmupt_err err;
    CHECK_MSG(ts, tb_open(&a, sub2, &err) == 0, "%s", err.msg);
    CHECK_MSG(ts, tb_open(&b, sub2, &err) == 0, "%s", err.msg);
    if (a && b) {
        CHECK(ts, strcmp(tb_path(a), tb_path(b)) != 0); /* the second writer never clobbers the first */
        CHECK(ts, strstr(tb_path(a), "/events.out.tfevents.") != NULL);
    }
    tb_close(a);
    tb_close(b);
    int nfiles;
    find_event_file(sub2, path, sizeof path, &nfiles);
    CHECK_MSG(ts, nfiles == 2, "%d files", nfiles);
    test_remove_dir(sub2);
    rmdir(sub);
    rmdir(dir);
}

static void test_bad_logdir(struct test_state *ts)
{
    char dir[64], file[128], under[192];
    make_tmpdir(dir, sizeof dir);
    snprintf(file, sizeof file, "%s/plain", dir);
    FILE *f = fopen(file, "w");
    if (f) fclose(f);
    struct tb_writer *w = (struct tb_writer *)&w; /* must come back NULL */
    struct mmupt_err err;

    CHECK(ts, tb_open(&w, file, &err) == -1 && w == NULL);
    CHECK_CONTAINS(ts, err.msg, file);
    CHECK_CONTAINS(ts, err.msg, "not a directory");

    snprintf(under, sizeof under, "%s/sub/dir", file);
    CHECK(ts, tb_open(&w, under, &err) == -1 && w == NULL);
    CHECK_CONTAINS(ts, err.msg, "cannot create log directory");
    CHECK_CONTAINS(ts, err.msg, file);

    CHECK(ts, tb_open(&w, "", &err) == -1);
    CHECK_CONTAINS(ts, err.msg, "empty log directory");
    /* /proc refuses new files even for root, which chmod-based tests cannot rely on. */
    CHECK(ts, tb_open(&w, "/proc/self", &err) == -1 && w == NULL);
    CHECK_CONTAINS(ts, err.msg, "/proc/self/events.out.tfevents.");
    test_remove_dir(dir);
}

static void test_disk_full(struct test_state *ts)
{
    struct tb_writer *w;
    struct mmupt_err err;
    if (access("/dev/full", W_OK) != 0) return; /* not on this system: nothing to check */
    CHECK(ts, tb_open_path(&w, "/dev/full", "wb", &err) == -1 && w == NULL);
    CHECK_CONTAINS(ts, err.msg, "/dev/full: write failed");
    CHECK_CONTAINS(ts, err.msg, "No space left");
}

static void test_bad_tags(struct test_state *ts)
{
    char dir[64];
    make_tmpdir(dir, sizeof dir);
    struct tb_writer *w;
    struct mmupt_err err;
    CHECK_MSG(ts, tb_open(&w, dir, &err) == 0, "%s", err.msg);
    if (w) {
        char long_tag[TB_TAG_MAX + 2];
        memset(long_tag, 'x', sizeof long_tag - 1);
        long_tag[TB_TAG_MAX + 1] = '\0';
        CHECK(ts, tb_scalar(w, long_tag, 0, 1.0, &err) == -1);
        CHECK_CONTAINS(ts, err.msg, "more than 256");
        long_tag[TB_TAG_MAX] = '\0'; /* exactly the limit is fine */
        CHECK_MSG(ts, tb_scalar(w, long_tag, 0, 1.0, &err) == 0, "%s", err.msg);
        CHECK(ts, tb_scalar(w, "", 0, 1.0, &err) == -1);
        CHECK_CONTAINS(ts, err.msg, "empty tag");
        CHECK(ts, tb_scalar(w, "bad\xFF", 0, 1.0, &err) == -1);
        CHECK_CONTAINS(ts, err.msg, "UTF-8");
        CHECK(ts, tb_flush(w, &err) == 0);
    }
    tb_close(w);
    test_remove_dir(dir);
}

/* The scalars tools/check_tensorboard.py expects; keep the two in step. */
static int write_demo(const char *dir)
{
    struct tb_writer *w;
    struct mmupt_err err;
    if (tb_open(&w, dir, &err) != 0) goto fail;
    for (int s = 0; s < 10; s++) {
        if (tb_scalar(w, "train/loss", s, 1.0 / (s + 1), &err) != 0) goto fail_w;
        if (tb_scalar(w, "reward/mean", s * 10, 0.25 * s - 1.0, &err) != 0) goto fail_w;
    }
    if (tb_scalar(w, "edge", 1, NAN, &err) != 0 || tb_scalar(w, "edge", 2, INFINITY, &err) != 0 ||
        tb_scalar(w, "edge", (int64_t)1 << 40, -3.5, &err) != 0)
        goto fail_w;
    if (tb_flush(w, &err) != 0) goto fail_w;
    printf("%s\n", tb_path(w));
    tb_close(w);
    return 0;
fail_w:
    tb_close(w);
fail:
    fprintf(stderr, "test_tensorboard: %s\n", err.msg);
    return 1;
}

int main(int argc, char **argv)
{
    if (argc == 2) return write_demo(argv[1]);
    struct test_state ts = {0};
    RUN(&ts, test_crc32c_vectors);
    RUN(&ts, test_varints);
    RUN(&ts, test_scalar_event_bytes);
    RUN(&ts, test_write_and_read_back);
    RUN(&ts, test_nested_logdir_and_two_writers);
    RUN(&ts, test_bad_logdir);
    RUN(&ts, test_disk_full);
    RUN(&ts, test_bad_tags);
    return test_summary(&ts);
}
