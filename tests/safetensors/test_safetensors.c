/* safetensors: the reader against a file made by the HF library, write -> read round trips of
 * files and sharded models, and the element conversions. Bad inputs: test_safetensors_bad.c.
 * argv[1]: tests/fixtures/safetensors. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../test.h"
#include "mmupt/json.h"
#include "mmupt/safetensors.h"
#include "mmupt/strutil.h"
#include "st_helpers.h"

static const char *fixtures; /* argv[1]; read-only after main sets it */
static char scratch[64];     /* a fresh directory under /tmp; set once in main */

static uint32_t f32_bits(float f)
{
    uint32_t b;
    memcpy(&b, &f, 4);
    return b;
}

static float bits_f32(uint32_t b)
{
    float f;
    memcpy(&f, &b, 4);
    return f;
}

/* ---- conversions ---- */

static void test_dtype_table(struct test_state *ts)
{
    static const size_t sizes[ST_N_DTYPES] = {8, 4, 2, 2, 8, 4, 2, 1, 1, 1};
    static const char *const names[ST_N_DTYPES] = {"F64", "F32", "F16", "BF16", "I64", "I32", "I16", "I8", "U8", "BOOL"};
    for (int d = 0; d < ST_N_DTYPES; d++) {
        CHECK(ts, st_dtype_size((enum st_dtype)d) == sizes[d]);
        CHECK(ts, strcmp(st_dtype_name((enum st_dtype)d), names[d]) == 0);
    }
}

/* Expected values are what torch's float32 -> bfloat16 cast gives (checked when writing this). */
static void test_bf16_rounding(struct test_state *ts)
{
    CHECK(ts, st_f32_to_bf16(1.0f) == 0x3f80);
    CHECK(ts, st_f32_to_bf16(bits_f32(0x3f808000)) == 0x3f80); /* tie, even below: down */
    CHECK(ts, st_f32_to_bf16(bits_f32(0x3f818000)) == 0x3f82); /* tie, odd below: up */
    CHECK(ts, st_f32_to_bf16(bits_f32(0x3f808001)) == 0x3f81); /* just above the tie */
    CHECK(ts, st_f32_to_bf16(bits_f32(0x3f807fff)) == 0x3f80); /* just below */
    CHECK(ts, st_f32_to_bf16(bits_f32(0xbf818000)) == 0xbf82); /* sign does not change rounding */
    CHECK(ts, st_f32_to_bf16(bits_f32(0x7f7fffff)) == 0x7f80); /* FLT_MAX rounds to inf */
    CHECK(ts, st_f32_to_bf16(INFINITY) == 0x7f80 && st_f32_to_bf16(-INFINITY) == 0xff80);
    CHECK(ts, st_f32_to_bf16(-0.0f) == 0x8000);
    CHECK(ts, st_f32_to_bf16(bits_f32(0x00008000)) == 0x0000); /* subnormal tie to even zero */
    CHECK(ts, st_f32_to_bf16(bits_f32(0x00018000)) == 0x0002); /* subnormal tie, odd: up */
    CHECK(ts, st_f32_to_bf16(0x1p-133f) == 0x0001);            /* smallest bf16 subnormal */
    /* NaN must stay NaN, even one whose set mantissa bits are all in the dropped half. */
    uint16_t n1 = st_f32_to_bf16(bits_f32(0x7f800001)), n2 = st_f32_to_bf16(NAN);
    CHECK_MSG(ts, (n1 & 0x7f80) == 0x7f80 && (n1 & 0x7f), "0x%04x", n1);
    CHECK_MSG(ts, (n2 & 0x7f80) == 0x7f80 && (n2 & 0x7f), "0x%04x", n2);
    CHECK(ts, isnan(st_bf16_to_f32(0x7fc0)) && isnan(st_bf16_to_f32(0xffc1)));
    /* Every bf16 value survives bf16 -> f32 -> bf16 unchanged, bit for bit. */
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = st_bf16_to_f32((uint16_t)h);
        if (f32_bits(f) != h << 16) bad++;
        if (!isnan(f) && st_f32_to_bf16(f) != h) bad++;
    }
    CHECK_MSG(ts, bad == 0, "%d bf16 values do not round-trip", bad);
}

static void test_f16_decode(struct test_state *ts)
{
    CHECK(ts, st_f16_to_f32(0x3c00) == 1.0f && st_f16_to_f32(0xc100) == -2.5f);
    CHECK(ts, st_f16_to_f32(0x7bff) == 65504.0f);
    CHECK(ts, st_f16_to_f32(0x0001) == 0x1p-24f);                /* smallest subnormal */
    CHECK(ts, st_f16_to_f32(0x03ff) == 1023 * 0x1p-24f);         /* largest subnormal */
    CHECK(ts, st_f16_to_f32(0x0400) == 0x1p-14f);                /* smallest normal */
    CHECK(ts, st_f16_to_f32(0x8001) == -0x1p-24f);
    CHECK(ts, f32_bits(st_f16_to_f32(0x8000)) == 0x80000000u);   /* -0 keeps its sign */
    CHECK(ts, st_f16_to_f32(0x7c00) == INFINITY && st_f16_to_f32(0xfc00) == -INFINITY);
    CHECK(ts, isnan(st_f16_to_f32(0x7e00)) && isnan(st_f16_to_f32(0x7c01)) && isnan(st_f16_to_f32(0xfe00)));
    /* Every finite half against the definition, computed in double. */
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        int s = h >> 15, e = (h >> 10) & 31, m = h & 1023;
        if (e == 31) continue;
        double v = e == 0 ? ldexp(m, -24) : ldexp(1.0 + m / 1024.0, e - 15);
        if (s) v = -v;
        float got = st_f16_to_f32((uint16_t)h);
        if ((double)got != v || !!signbit(got) != (s != 0)) bad++;
    }
    CHECK_MSG(ts, bad == 0, "%d halves decode wrong", bad);
}

/* ---- the HF-made fixture ---- */

static void fixture_path(char *out, size_t n)
{
    snprintf(out, n, "%s/hf_small.safetensors", fixtures);
}

static void check_f32(struct test_state *ts, const struct st_set *s, const char *name, const float *want, int n)
{
    const struct st_tensor *t = st_find(s, name);
    CHECK_MSG(ts, t != NULL, "%s missing", name);
    if (!t) return;
    float got[16];
    struct mmupt_err err;
    CHECK_MSG(ts, st_copy_f32(t, got, n, &err) == 0, "%s", err.msg);
    for (int i = 0; i < n; i++)
        CHECK_MSG(ts, (isnan(want[i]) && isnan(got[i])) || (got[i] == want[i] && !!signbit(got[i]) == !!signbit(want[i])),
                  "%s[%d] = %g, want %g", name, i, got[i], want[i]);
}

static void check_i64(struct test_state *ts, const struct st_set *s, const char *name, const int64_t *want, int n)
{
    const struct st_tensor *t = st_find(s, name);
    CHECK_MSG(ts, t != NULL, "%s missing", name);
    if (!t) return;
    int64_t got[16];
    struct mmupt_err err;
    CHECK_MSG(ts, st_copy_i64(t, got, n, &err) == 0, "%s", err.msg);
    for (int i = 0; i < n; i++)
        CHECK_MSG(ts, got[i] == want[i], "%s[%d] = %lld, want %lld", name, i, (long long)got[i], (long long)want[i]);
}

/* The values tools/make_safetensors_fixture.py wrote. */
static void test_hf_fixture_values(struct test_state *ts)
{
    char path[512];
    fixture_path(path, sizeof path);
    struct st_set s;
    struct mmupt_err err;
    int rc = st_open(&s, path, &err);
    CHECK_MSG(ts, rc == 0, "%s", err.msg);
    if (rc) return;
    CHECK(ts, st_count(&s) == 14);
    for (size_t i = 1; i < st_count(&s); i++) CHECK(ts, strcmp(st_at(&s, i - 1)->name, st_at(&s, i)->name) < 0);
    CHECK(ts, st_at(&s, st_count(&s)) == NULL && st_find(&s, "nope") == NULL && st_find(&s, "f3") == NULL);
    CHECK(ts, st_metadata_count(&s) == 1 && strcmp(st_metadata_key(&s, 0), "format") == 0);
    CHECK(ts, strcmp(st_metadata(&s, "format"), "pt") == 0 && st_metadata(&s, "other") == NULL);

    const struct st_tensor *t = st_find(&s, "f32");
    CHECK(ts, t && t->dtype == ST_F32 && t->ndim == 2 && t->shape[0] == 2 && t->shape[1] == 3 && t->numel == 6 &&
                  t->nbytes == 24 && strcmp(t->file, path) == 0);
    check_f32(ts, &s, "f32", (const float[]){-1.0f, -0.5f, 0.0f, 0.5f, 1.0f, 1.5f}, 6);
    check_f32(ts, &s, "f64", (const float[]){(float)(1.0 / 3.0), -INFINITY}, 2);
    check_f32(ts, &s, "f16", (const float[]){0, -0.0f, 1, -2.5f, 65504, 0x1p-24f, 0x1p-14f, INFINITY, -INFINITY, NAN}, 10);
    check_f32(ts, &s, "bf16",
              (const float[]){0, -0.0f, 1, -2.5f, 3.3895313892515355e38f, 0x1p-133f, 0x1p-126f, INFINITY, -INFINITY, NAN},
              10);
    check_f32(ts, &s, "model.layers.0.self_attn.q_proj.weight", (const float[]){0, 1, 2, 3}, 4);
    check_i64(ts, &s, "i64", (const int64_t[]){INT64_MIN, INT64_MAX, 0, -1}, 4);
    check_i64(ts, &s, "i32", (const int64_t[]){INT32_MIN, INT32_MAX, 7}, 3);
    check_i64(ts, &s, "i16", (const int64_t[]){-32768, 32767}, 2);
    check_i64(ts, &s, "i8", (const int64_t[]){-128, 127, -1}, 3);
    check_i64(ts, &s, "u8", (const int64_t[]){0, 255, 128}, 3);
    check_i64(ts, &s, "bool", (const int64_t[]){1, 0, 1}, 3);
    check_i64(ts, &s, "h\xc3\xa9llo", (const int64_t[]){7}, 1);

    t = st_find(&s, "scalar");
    CHECK(ts, t && t->ndim == 0 && t->numel == 1 && t->nbytes == 4);
    check_f32(ts, &s, "scalar", (const float[]){42.0f}, 1);
    t = st_find(&s, "empty");
    CHECK(ts, t && t->ndim == 2 && t->shape[0] == 3 && t->shape[1] == 0 && t->numel == 0 && t->nbytes == 0);
    float none;
    CHECK(ts, t && st_copy_f32(t, &none, 0, &err) == 0);
    /* The data buffer starts 8-byte aligned in the mapping (the header is padded to 8). */
    CHECK(ts, ((uintptr_t)st_find(&s, "i64")->data & 7) == 0);
    st_close(&s);
    CHECK(ts, st_count(&s) == 0 && s.tensors == NULL);
}

static void test_copy_errors(struct test_state *ts)
{
    char path[512];
    fixture_path(path, sizeof path);
    struct st_set s;
    struct mmupt_err err;
    if (st_open(&s, path, &err)) {
        CHECK_MSG(ts, 0, "%s", err.msg);
        return;
    }
    float f[8];
    int64_t i[8];
    CHECK(ts, st_copy_f32(st_find(&s, "i64"), f, 4, &err) == -1);
    CHECK_CONTAINS(ts, err.msg, "hf_small.safetensors");
    CHECK_CONTAINS(ts, err.msg, "'i64'");
    CHECK_CONTAINS(ts, err.msg, "I64 is not a float type");
    CHECK(ts, st_copy_i64(st_find(&s, "bf16"), i, 10, &err) == -1);
    CHECK_CONTAINS(ts, err.msg, "'bf16'");
    CHECK_CONTAINS(ts, err.msg, "BF16 is not an integer type");
    CHECK(ts, st_copy_f32(st_find(&s, "f32"), f, 5, &err) == -1);
    CHECK_CONTAINS(ts, err.msg, "'f32': has 6 elements, expected 5");
    CHECK(ts, st_copy_i64(st_find(&s, "u8"), i, 4, &err) == -1);
    CHECK_CONTAINS(ts, err.msg, "has 3 elements, expected 4");
    st_close(&s);
}

/* Data order; the HF library breaks ties (an empty tensor at another's offset) by name. */
static int cmp_by_data(const void *a, const void *b)
{
    const struct st_entry *x = a, *y = b;
    if (x->data != y->data) return (const char *)x->data < (const char *)y->data ? -1 : 1;
    return strcmp(x->name, y->name);
}

/* Given the same tensors in the same data order, our writer produces the HF library's bytes. */
static void test_writer_matches_hf_bytes(struct test_state *ts)
{
    char path[512], out[512];
    fixture_path(path, sizeof path);
    snprintf(out, sizeof out, "%s/hf_again.safetensors", scratch);
    struct st_set s;
    struct mmupt_err err;
    if (st_open(&s, path, &err)) {
        CHECK_MSG(ts, 0, "%s", err.msg);
        return;
    }
    size_t n = st_count(&s);
    struct st_entry *e = calloc(n, sizeof *e);
    for (size_t i = 0; i < n; i++) {
        const struct st_tensor *t = st_at(&s, i);
        e[i] = (struct st_entry){.name = t->name, .dtype = t->dtype, .ndim = t->ndim, .data = t->data};
        memcpy(e[i].shape, t->shape, sizeof e[i].shape);
    }
    qsort(e, n, sizeof *e, cmp_by_data);
    static const char *const meta[] = {"format", "pt", NULL};
    CHECK_MSG(ts, st_write_file(out, e, n, meta, &err) == 0, "%s", err.msg);
    char *a = NULL, *b = NULL;
    size_t la = 0, lb = 0;
    CHECK(ts, file_read_all(path, 1 << 20, &a, &la, &err) == 0);
    CHECK(ts, file_read_all(out, 1 << 20, &b, &lb, &err) == 0);
    CHECK_MSG(ts, a && b && la == lb && memcmp(a, b, la) == 0, "our file (%zu bytes) differs from HF's (%zu bytes)",
              lb, la);
    free(a);
    free(b);
    free(e);
    st_close(&s);
}

/* ---- our own round trips ---- */

#define N_RT 13

/* Tensors of every dtype, a scalar, empty ones and an 8-dim one, with patterned bytes. */
struct rt_data {
    struct st_entry e[N_RT];
    unsigned char bytes[N_RT][256];
};

static void make_entries(struct rt_data *d)
{
    static const struct {
        const char *name;
        enum st_dtype dt;
        int ndim;
        int64_t shape[ST_MAX_DIMS];
    } spec[N_RT] = {
        {"f64", ST_F64, 1, {3}},
        {"f32.matrix", ST_F32, 2, {2, 3}},
        {"f16", ST_F16, 1, {5}},
        {"bf16", ST_BF16, 3, {2, 1, 3}},
        {"i64", ST_I64, 1, {2}},
        {"i32", ST_I32, 1, {3}},
        {"i16", ST_I16, 1, {3}},
        {"i8", ST_I8, 1, {7}},
        {"u8", ST_U8, 2, {1, 5}},
        {"bool", ST_BOOL, 1, {4}},
        {"scalar", ST_F32, 0, {0}},
        {"empty", ST_BF16, 3, {4, 0, 5}},
        {"eight.dims", ST_I8, 8, {1, 2, 1, 2, 1, 2, 1, 2}},
    };
    for (int i = 0; i < N_RT; i++) {
        struct st_entry *e = &d->e[i];
        *e = (struct st_entry){.name = spec[i].name, .dtype = spec[i].dt, .ndim = spec[i].ndim, .data = d->bytes[i]};
        memcpy(e->shape, spec[i].shape, sizeof e->shape);
        for (int k = 0; k < 256; k++)
            d->bytes[i][k] = (unsigned char)(spec[i].dt == ST_BOOL ? (k + i) % 2 : (k * 37 + i * 11 + 5));
    }
}

static size_t entry_bytes(const struct st_entry *e)
{
    size_t n = st_dtype_size(e->dtype);
    for (int d = 0; d < e->ndim; d++) n *= (size_t)e->shape[d];
    return n;
}

/* The set holds exactly the entries: names, dtypes, shapes and bytes. */
static void check_same(struct test_state *ts, const struct st_entry *e, size_t n, const struct st_set *s)
{
    CHECK_MSG(ts, st_count(s) == n, "%zu tensors, want %zu", st_count(s), n);
    for (size_t i = 0; i < n; i++) {
        const struct st_tensor *t = st_find(s, e[i].name);
        CHECK_MSG(ts, t != NULL, "%s missing", e[i].name);
        if (!t) continue;
        CHECK_MSG(ts, t->dtype == e[i].dtype && t->ndim == e[i].ndim, "%s: dtype or rank", e[i].name);
        CHECK_MSG(ts, memcmp(t->shape, e[i].shape, (size_t)e[i].ndim * sizeof(int64_t)) == 0, "%s: shape", e[i].name);
        CHECK_MSG(ts, t->nbytes == entry_bytes(&e[i]), "%s: %zu bytes", e[i].name, t->nbytes);
        CHECK_MSG(ts, t->nbytes == 0 || memcmp(t->data, e[i].data, t->nbytes) == 0, "%s: data differs", e[i].name);
    }
}

static void test_roundtrip_file(struct test_state *ts)
{
    struct rt_data *d = calloc(1, sizeof *d);
    make_entries(d);
    char dir[256], path[320];
    snprintf(dir, sizeof dir, "%s/rt", scratch);
    mkdir(dir, 0755);
    snprintf(path, sizeof path, "%s/all.safetensors", dir);
    static const char *const meta[] = {"zeta", "last", "format", "pt", "unicode", "h\xc3\xa9llo \xe2\x9c\x93",
                                       "empty", "", "quote\"key", "back\\slash\nnewline", NULL};
    struct mmupt_err err;
    CHECK_MSG(ts, st_write_file(path, d->e, N_RT, meta, &err) == 0, "%s", err.msg);
    CHECK_MSG(ts, count_entries(dir) == 1, "temporary files left behind");
    struct st_set s;
    int rc = st_open(&s, path, &err);
    CHECK_MSG(ts, rc == 0, "%s", err.msg);
    if (rc == 0) {
        check_same(ts, d->e, N_RT, &s);
        CHECK(ts, st_metadata_count(&s) == 5);
        for (int i = 0; meta[i]; i += 2) {
            const char *v = st_metadata(&s, meta[i]);
            CHECK_MSG(ts, v && strcmp(v, meta[i + 1]) == 0, "metadata %s", meta[i]);
        }
        CHECK(ts, strcmp(st_metadata_key(&s, 0), "empty") == 0 && strcmp(st_metadata_key(&s, 4), "zeta") == 0);
        const struct st_tensor *sc = st_find(&s, "scalar");
        CHECK(ts, sc && sc->ndim == 0 && sc->numel == 1 && sc->nbytes == 4);
        const struct st_tensor *em = st_find(&s, "empty");
        CHECK(ts, em && em->numel == 0 && em->nbytes == 0 && em->shape[2] == 5);
        /* Tensors are contiguous in the order given, right after an 8-byte-aligned header. */
        const unsigned char *base = st_find(&s, "f64")->data;
        CHECK(ts, ((uintptr_t)base & 7) == 0);
        size_t off = 0;
        for (int i = 0; i < N_RT; i++) {
            const struct st_tensor *t = st_find(&s, d->e[i].name);
            CHECK_MSG(ts, t && (const unsigned char *)t->data == base + off, "%s not contiguous", d->e[i].name);
            off += entry_bytes(&d->e[i]);
        }
        st_close(&s);
    }
    /* A directory with model.safetensors opens too; no metadata is fine. */
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    CHECK_MSG(ts, st_write_file(path, d->e, N_RT, NULL, &err) == 0, "%s", err.msg);
    rc = st_open(&s, dir, &err);
    CHECK_MSG(ts, rc == 0, "%s", err.msg);
    if (rc == 0) {
        check_same(ts, d->e, N_RT, &s);
        CHECK(ts, st_metadata_count(&s) == 0 && st_metadata(&s, "format") == NULL);
        st_close(&s);
    }
    /* Overwriting a file that is open keeps the open set intact (rename, not rewrite). */
    CHECK(ts, st_open(&s, path, &err) == 0);
    struct st_entry one = d->e[0];
    CHECK(ts, st_write_file(path, &one, 1, NULL, &err) == 0);
    check_same(ts, d->e, N_RT, &s);
    st_close(&s);
    CHECK(ts, st_open(&s, path, &err) == 0 && st_count(&s) == 1);
    st_close(&s);
    /* No tensors at all is a valid file. */
    CHECK(ts, st_write_file(path, NULL, 0, NULL, &err) == 0 && st_open(&s, path, &err) == 0 && st_count(&s) == 0);
    st_close(&s);
    free(d);
}

static int64_t index_total_size(const char *index)
{
    json_t *root;
    struct mmupt_err err;
    if (json_parse_file(index, 1 << 20, &root, &err)) return -1;
    json_t *m = json_object_get(root, "metadata");
    json_t *v = m ? json_object_get(m, "total_size") : NULL;
    int64_t r = json_is_integer(v) ? json_integer_value(v) : -1;
    json_decref(root);
    return r;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

static void test_sharded_model(struct test_state *ts)
{
    static unsigned char buf[1024];
    for (int i = 0; i < 1024; i++) buf[i] = (unsigned char)(i * 7 + 1);
    /* 64, 16, 160, 10, 0 and 90 bytes with a 100-byte limit: {w0 w1} {w2} {w3 w4 w5}. */
    const struct st_entry e[] = {
        {"w0", ST_F32, 1, {16}, buf},       {"w1", ST_BF16, 1, {8}, buf + 64}, {"w2", ST_F32, 2, {4, 10}, buf + 80},
        {"w3", ST_I8, 1, {10}, buf + 240},  {"w4", ST_F32, 1, {0}, NULL},      {"w5", ST_U8, 1, {90}, buf + 250},
    };
    const size_t n = sizeof e / sizeof e[0];
    static const char *const shard_of[] = {"model-00001-of-00003.safetensors", "model-00001-of-00003.safetensors",
                                           "model-00002-of-00003.safetensors", "model-00003-of-00003.safetensors",
                                           "model-00003-of-00003.safetensors", "model-00003-of-00003.safetensors"};
    char dir[256], path[320];
    snprintf(dir, sizeof dir, "%s/sharded", scratch); /* st_write_model creates it */
    struct mmupt_err err;
    CHECK_MSG(ts, st_write_model(dir, e, n, 100, &err) == 0, "%s", err.msg);
    CHECK_MSG(ts, count_entries(dir) == 4, "%d files", count_entries(dir));
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
    CHECK(ts, index_total_size(path) == 340);
    struct st_set s;
    for (int via_index = 0; via_index < 2; via_index++) {
        int rc = st_open(&s, via_index ? path : dir, &err);
        CHECK_MSG(ts, rc == 0, "%s", err.msg);
        if (rc) continue;
        check_same(ts, e, n, &s);
        for (size_t i = 0; i < n; i++) {
            const struct st_tensor *t = st_find(&s, e[i].name);
            CHECK_MSG(ts, t && ends_with(t->file, shard_of[i]), "%s in %s", e[i].name, t ? t->file : "?");
        }
        CHECK(ts, st_metadata(&s, "format") && strcmp(st_metadata(&s, "format"), "pt") == 0);
        st_close(&s);
    }
    /* Each shard is a valid file on its own, with its own tensors only. */
    snprintf(path, sizeof path, "%s/%s", dir, shard_of[2]);
    CHECK(ts, st_open(&s, path, &err) == 0 && st_count(&s) == 1 && st_find(&s, "w2"));
    st_close(&s);

    /* Rewriting as one file removes the index, which would otherwise win. */
    CHECK_MSG(ts, st_write_model(dir, e, n, 340, &err) == 0, "%s", err.msg);
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
    CHECK(ts, !exists(path));
    int rc = st_open(&s, dir, &err);
    CHECK_MSG(ts, rc == 0, "%s", err.msg);
    if (rc == 0) {
        check_same(ts, e, n, &s);
        CHECK(ts, ends_with(st_find(&s, "w5")->file, "/model.safetensors"));
        st_close(&s);
    }
    /* And back to shards (limit 0: one shard per non-empty tensor) removes model.safetensors. */
    CHECK_MSG(ts, st_write_model(dir, e, n, 0, &err) == 0, "%s", err.msg);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    CHECK(ts, !exists(path));
    rc = st_open(&s, dir, &err);
    CHECK_MSG(ts, rc == 0, "%s", err.msg);
    if (rc == 0) {
        check_same(ts, e, n, &s);
        CHECK(ts, ends_with(st_find(&s, "w4")->file, "model-00004-of-00005.safetensors"));
        CHECK(ts, ends_with(st_find(&s, "w5")->file, "model-00005-of-00005.safetensors"));
        st_close(&s);
    }
}

/* Bad writer input is refused before any file is created. */
static void expect_write_error(struct test_state *ts, const struct st_entry *e, size_t n, const char *const *meta,
                               const char *piece)
{
    char dir[256], path[320];
    snprintf(dir, sizeof dir, "%s/wbad", scratch);
    mkdir(dir, 0755);
    snprintf(path, sizeof path, "%s/x.safetensors", dir);
    struct mmupt_err err = {{0}};
    CHECK_MSG(ts, st_write_file(path, e, n, meta, &err) == -1, "accepted, wanted '%s'", piece);
    CHECK_MSG(ts, strstr(err.msg, piece) && strstr(err.msg, "x.safetensors"), "'%s' not in '%s'", piece, err.msg);
    CHECK_MSG(ts, count_entries(dir) == 0, "a file was left for '%s'", piece);
}

static void test_write_errors(struct test_state *ts)
{
    static const float v[4] = {1, 2, 3, 4};
    struct st_entry ok = {"a", ST_F32, 1, {4}, v};
    struct st_entry two[2] = {ok, ok};
    expect_write_error(ts, two, 2, NULL, "duplicate tensor name 'a'");
    struct st_entry e = ok;
    e.name = "bad\xff";
    expect_write_error(ts, &e, 1, NULL, "not valid UTF-8");
    e = ok, e.name = "__metadata__";
    expect_write_error(ts, &e, 1, NULL, "'__metadata__' is reserved");
    e = ok, e.shape[0] = -1;
    expect_write_error(ts, &e, 1, NULL, "negative dimension");
    e = ok, e.ndim = 9;
    expect_write_error(ts, &e, 1, NULL, "9 dimensions");
    e = ok, e.data = NULL;
    expect_write_error(ts, &e, 1, NULL, "'a': data is NULL");
    e = ok, e.dtype = (enum st_dtype)42;
    expect_write_error(ts, &e, 1, NULL, "unknown dtype 42");
    e = ok, e.ndim = 3, e.shape[0] = e.shape[1] = e.shape[2] = INT64_C(1) << 30;
    expect_write_error(ts, &e, 1, NULL, "overflows");
    e = ok, e.name = NULL;
    expect_write_error(ts, &e, 1, NULL, "entry 0 has no name");
    static const char *const odd[] = {"k", NULL};
    expect_write_error(ts, &ok, 1, odd, "metadata key 'k' has no value");
    static const char *const dup[] = {"k", "1", "k", "2", NULL};
    expect_write_error(ts, &ok, 1, dup, "duplicate metadata key 'k'");
    static const char *const bad[] = {"k", "\xc0\x80", NULL};
    expect_write_error(ts, &ok, 1, bad, "metadata 'k' is not valid UTF-8");
    /* An unwritable place is an error naming the path. */
    struct mmupt_err err;
    CHECK(ts, st_write_file("/nonexistent-dir/x.safetensors", &ok, 1, NULL, &err) == -1);
    CHECK_CONTAINS(ts, err.msg, "/nonexistent-dir/x.safetensors");
    CHECK(ts, st_write_model("/nonexistent-dir/sub", &ok, 1, 100, &err) == -1);
    CHECK_CONTAINS(ts, err.msg, "cannot create directory");
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s FIXTURE_DIR\n", argv[0]);
        return 2;
    }
    fixtures = argv[1];
    snprintf(scratch, sizeof scratch, "/tmp/mmupt-st-XXXXXX");
    if (!mkdtemp(scratch)) {
        perror("mkdtemp");
        return 1;
    }
    struct test_state ts = {0};
    RUN(&ts, test_dtype_table);
    RUN(&ts, test_bf16_rounding);
    RUN(&ts, test_f16_decode);
    RUN(&ts, test_hf_fixture_values);
    RUN(&ts, test_copy_errors);
    RUN(&ts, test_writer_matches_hf_bytes);
    RUN(&ts, test_roundtrip_file);
    RUN(&ts, test_sharded_model);
    RUN(&ts, test_write_errors);
    rm_tree(scratch);
    return test_summary(&ts);
}
