/* Parity with the Hugging Face `tokenizers` library on the committed fixtures
 * (tools/make_tokenizer_fixtures.py): every sample must encode to exactly the library's ids, and
 * decode (whole, streamed, with and without special tokens) to exactly its text.
 *
 *   test_tokenizer_parity CORPUS.json EXPECTED.json TOKENIZER.json
 *
 * Exits 77 (skip) when TOKENIZER.json does not exist: the Qwen tokenizer is a shared asset that a
 * checkout may not have; the small fixture tokenizers are always there. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../test.h"
#include "mmupt/json.h"
#include "mmupt/tokenizer.h"
#include "tokenizer/internal.h"

#define MAX_REPORTS 10

/* Set once in main, read-only after. */
static json_t *corpus, *expected;
static struct tok *tok;

struct text {
    char *p;
    size_t n;
};

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* A sample's bytes: its "text", or its "hex" decoded. */
static struct text sample_bytes(const json_t *s)
{
    struct text t;
    const json_t *text = json_object_get(s, "text");
    if (text) {
        t.n = json_string_length(text);
        t.p = mmupt_xmalloc(t.n + 1);
        memcpy(t.p, json_string_value(text), t.n + 1);
        return t;
    }
    const char *hex = json_string_value(json_object_get(s, "hex"));
    t.n = strlen(hex) / 2;
    t.p = mmupt_xmalloc(t.n + 1);
    for (size_t i = 0; i < t.n; i++) t.p[i] = (char)(hexval(hex[2 * i]) * 16 + hexval(hex[2 * i + 1]));
    return t;
}

/* What the sample decodes back to when the library gives no other text: the sample as the library
 * saw it (U+FFFD in place of invalid bytes). */
static const json_t *sample_clean(const json_t *s)
{
    const json_t *c = json_object_get(s, "clean");
    return c ? c : json_object_get(s, "text");
}

static size_t ids_of(const json_t *arr, int32_t **out)
{
    size_t n = json_array_size(arr);
    *out = mmupt_xmalloc((n + 1) * sizeof **out);
    for (size_t i = 0; i < n; i++) (*out)[i] = (int32_t)json_integer_value(json_array_get(arr, i));
    return n;
}

static void print_ids(const char *what, const int32_t *ids, size_t n, size_t from)
{
    fprintf(stderr, "    %s:", what);
    for (size_t i = from; i < n && i < from + 16; i++) fprintf(stderr, " %d", (int)ids[i]);
    fprintf(stderr, n > from + 16 ? " ...\n" : "\n");
}

static const char *sample_name(size_t k)
{
    size_t idx = (size_t)json_integer_value(json_array_get(json_object_get(expected, "samples"), k));
    return json_string_value(json_object_get(json_array_get(json_object_get(corpus, "samples"), idx), "name"));
}

static const json_t *sample_at(size_t k)
{
    size_t idx = (size_t)json_integer_value(json_array_get(json_object_get(expected, "samples"), k));
    return json_array_get(json_object_get(corpus, "samples"), idx);
}

static void test_encode(struct test_state *ts)
{
    const json_t *enc = json_object_get(expected, "encode");
    int reports = 0;
    for (size_t k = 0; k < json_array_size(enc); k++) {
        struct text s = sample_bytes(sample_at(k));
        int32_t *want, *got;
        size_t n_want = ids_of(json_array_get(enc, k), &want), n_got;
        struct mmupt_err err;
        int rc = tok_encode(tok, s.p, s.n, &got, &n_got, &err);
        CHECK_MSG(ts, rc == 0, "%s: %s", sample_name(k), err.msg);
        size_t d = 0;
        while (rc == 0 && d < n_got && d < n_want && got[d] == want[d]) d++;
        int same = rc == 0 && n_got == n_want && d == n_want;
        CHECK_MSG(ts, same, "sample %s encodes differently (first difference at id #%zu)", sample_name(k), d);
        if (!same && rc == 0 && reports++ < MAX_REPORTS) {
            print_ids("expected", want, n_want, d > 4 ? d - 4 : 0);
            print_ids("got     ", got, n_got, d > 4 ? d - 4 : 0);
        }
        if (rc == 0) free(got);
        free(want);
        free(s.p);
    }
}

static void check_text(struct test_state *ts, const char *what, const char *name, const char *got, size_t n,
                       const json_t *want)
{
    size_t wn = json_string_length(want);
    const char *w = json_string_value(want);
    int same = n == wn && memcmp(got, w, n) == 0;
    CHECK_MSG(ts, same, "%s of %s: got %zu bytes '%.60s', want %zu bytes '%.60s'", what, name, n, got, wn, w);
}

/* decode, whole and streamed, of the expected ids must give the library's text. */
static void decode_both_ways(struct test_state *ts, const char *name, const int32_t *ids, size_t n, int skip,
                             const json_t *want)
{
    char *text;
    size_t len;
    struct mmupt_err err;
    CHECK_MSG(ts, tok_decode(tok, ids, n, skip, &text, &len, &err) == 0, "%s: %s", name, err.msg);
    check_text(ts, skip ? "decode(skip_special)" : "decode", name, text, len, want);
    free(text);
    struct tok_buf streamed = {0};
    struct tok_stream st;
    char chunk[TOK_STREAM_OUT_MAX];
    tok_stream_init(&st, tok, skip);
    for (size_t i = 0; i < n; i++) {
        int w = tok_stream_push(&st, ids[i], chunk, sizeof chunk, &err);
        CHECK_MSG(ts, w >= 0, "%s: %s", name, err.msg);
        if (w > 0) tok_buf_append(&streamed, chunk, (size_t)w);
    }
    int w = tok_stream_flush(&st, chunk, sizeof chunk);
    CHECK(ts, w >= 0 && w <= 3);
    tok_buf_append(&streamed, chunk, (size_t)w);
    check_text(ts, skip ? "stream(skip_special)" : "stream", name, streamed.p ? streamed.p : "", streamed.n, want);
    free(streamed.p);
}

static void test_decode(struct test_state *ts)
{
    const json_t *enc = json_object_get(expected, "encode"), *dec = json_object_get(expected, "decoded"),
                 *skip = json_object_get(expected, "decoded_skip");
    for (size_t k = 0; k < json_array_size(enc); k++) {
        int32_t *ids;
        size_t n = ids_of(json_array_get(enc, k), &ids);
        const json_t *d = json_array_get(dec, k), *ds = json_array_get(skip, k);
        if (json_is_null(d)) d = sample_clean(sample_at(k));
        if (json_is_null(ds)) ds = d;
        decode_both_ways(ts, sample_name(k), ids, n, 0, d);
        decode_both_ways(ts, sample_name(k), ids, n, 1, ds);
        free(ids);
    }
}

static void test_decode_cases(struct test_state *ts)
{
    const json_t *cases = json_object_get(expected, "decode_cases");
    CHECK(ts, json_array_size(cases) > 0);
    for (size_t k = 0; k < json_array_size(cases); k++) {
        const json_t *c = json_array_get(cases, k);
        int32_t *ids;
        size_t n = ids_of(json_object_get(c, "ids"), &ids);
        char name[64];
        snprintf(name, sizeof name, "decode_cases[%zu]", k);
        decode_both_ways(ts, name, ids, n, json_is_true(json_object_get(c, "skip_special")), json_object_get(c, "text"));
        free(ids);
    }
}

/* The replacement of invalid UTF-8, against Python's bytes.decode(errors='replace'). */
static void test_clean(struct test_state *ts)
{
    const json_t *samples = json_object_get(corpus, "samples");
    int seen = 0;
    for (size_t i = 0; i < json_array_size(samples); i++) {
        const json_t *s = json_array_get(samples, i), *clean = json_object_get(s, "clean");
        if (!clean) continue;
        struct text b = sample_bytes(s);
        struct tok_buf out = {0};
        tok_utf8_lossy((const unsigned char *)b.p, b.n, 1, &out);
        check_text(ts, "U+FFFD replacement", json_string_value(json_object_get(s, "name")), out.p, out.n, clean);
        free(out.p);
        free(b.p);
        seen++;
    }
    CHECK(ts, seen > 5);
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: %s CORPUS.json EXPECTED.json TOKENIZER.json\n", argv[0]);
        return 2;
    }
    struct stat st;
    if (stat(argv[3], &st) != 0) {
        printf("SKIP: %s not found (the shared Qwen tokenizer asset is not in this checkout)\n", argv[3]);
        return TEST_SKIP;
    }
    struct mmupt_err err;
    if (json_parse_file(argv[1], 1u << 26, &corpus, &err) || json_parse_file(argv[2], 1u << 26, &expected, &err) ||
        tok_load(&tok, argv[3], &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    struct test_state ts = {0};
    RUN(&ts, test_encode);
    RUN(&ts, test_decode);
    RUN(&ts, test_decode_cases);
    RUN(&ts, test_clean);
    printf("%zu samples checked\n", json_array_size(json_object_get(expected, "encode")));
    tok_free(tok);
    json_decref(corpus);
    json_decref(expected);
    return test_summary(&ts);
}
