/* Tokenizer pieces: the byte map, U+FFFD replacement, merges in both forms and their order,
 * added-token splitting, streaming decode, the word cache, long and odd inputs. Expected ids of the
 * small hand-built tokenizers were checked against the HF library (tokenizers 0.23).
 *
 *   test_tokenizer FIXTURES_DIR     (tests/fixtures/tokenizer) */
#include <stdlib.h>
#include <string.h>

#include "../test.h"
#include "mmupt/tokenizer.h"
#include "tokenizer/internal.h"

static const char *fixtures; /* set from argv[1] in main; read-only after that */

/* A byte-level BPE tokenizer.json with the given parts (NULL: the usual ByteLevel ones). */
struct spec {
    const char *vocab, *merges, *added, *normalizer, *pre, *model_extra;
};

static struct tok *build(struct test_state *ts, const struct spec *s)
{
    char json[8192];
    snprintf(json, sizeof json,
             "{\"version\": \"1.0\", \"added_tokens\": [%s], \"normalizer\": %s,"
             " \"pre_tokenizer\": %s, \"decoder\": {\"type\": \"ByteLevel\"},"
             " \"model\": {\"type\": \"BPE\", \"vocab\": {%s}, \"merges\": [%s]%s}}",
             s->added ? s->added : "", s->normalizer ? s->normalizer : "null",
             s->pre ? s->pre : "{\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"use_regex\": true}", s->vocab,
             s->merges ? s->merges : "", s->model_extra ? s->model_extra : "");
    struct tok *t = NULL;
    struct mmupt_err err;
    int rc = tok_load_buffer(&t, "unit.json", json, strlen(json), &err);
    CHECK_MSG(ts, rc == 0, "%s", err.msg);
    return rc == 0 ? t : NULL;
}

/* Encode text and compare with the expected ids (terminated by -1). */
static void expect_ids(struct test_state *ts, struct tok *t, const char *text, size_t len, const int32_t *want)
{
    int32_t *ids;
    size_t n, k = 0;
    struct mmupt_err err;
    if (tok_encode(t, text, len, &ids, &n, &err) != 0) {
        CHECK_MSG(ts, 0, "encode '%s': %s", text, err.msg);
        return;
    }
    while (want[k] >= 0) k++;
    int same = n == k && memcmp(ids, want, k * sizeof *ids) == 0;
    CHECK_MSG(ts, same, "encode '%s': got %zu ids (first %d), want %zu", text, n, n ? (int)ids[0] : -1, k);
    free(ids);
}

#define IDS(...) ((const int32_t[]){__VA_ARGS__, -1})
#define NO_IDS ((const int32_t[]){-1})

static struct tok *load_fixture(struct test_state *ts, const char *name)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/small/%s", fixtures, name);
    struct tok *t = NULL;
    struct mmupt_err err;
    int rc = tok_load(&t, path, &err);
    CHECK_MSG(ts, rc == 0, "%s", err.msg);
    return rc == 0 ? t : NULL;
}

static void test_bytemap(struct test_state *ts)
{
    struct tok_bytemap m;
    tok_bytemap_init(&m);
    int seen[324] = {0};
    for (int b = 0; b < 256; b++) {
        CHECK(ts, m.cp[b] < 324 && !seen[m.cp[b]]);
        seen[m.cp[b]] = 1;
        CHECK(ts, m.byte_of[m.cp[b]] == b);
    }
    CHECK(ts, m.cp[' '] == 0x120 && m.cp['\n'] == 0x10A && m.cp[0] == 0x100 && m.cp['A'] == 'A');
    CHECK(ts, m.cp[0xAD] == 0x143 && m.cp[0xE9] == 0xE9 && m.cp[0x7F] == 0x121);
    struct tok_buf b = {0};
    unsigned char raw[] = {' ', 'h', 'i', '\n', 0xFF, 0x00};
    tok_bytemap_encode(&m, raw, sizeof raw, &b);
    CHECK(ts, b.n == 10 && memcmp(b.p, "\xc4\xa0hi\xc4\x8a\xc3\xbf\xc4\x80", 10) == 0);
    struct tok_buf back = {0};
    tok_bytemap_decode(&m, b.p, b.n, &back);
    CHECK(ts, back.n == sizeof raw && memcmp(back.p, raw, sizeof raw) == 0);
    /* A character outside the map: the token's own text comes back, as in the HF decoder. */
    back.n = 0;
    tok_bytemap_decode(&m, "\xc4\xa0<x y>", 7, &back);
    CHECK(ts, back.n == 7 && memcmp(back.p, "\xc4\xa0<x y>", 7) == 0);
    free(b.p);
    free(back.p);
}

struct lossy_case {
    const char *in, *out;
};

static void test_utf8_replacement(struct test_state *ts)
{
    /* Python: bytes.decode('utf-8', errors='replace'); R is one U+FFFD. */
#define R "\xef\xbf\xbd"
    static const struct lossy_case cases[] = {
        {"plain", "plain"},
        {"a\x80" "b", "a" R "b"},
        {"\xc3", R},
        {"\xc3(", R "("},
        {"\xe4\xbd", R},
        {"\xe4\xbd(x", R "(x"},
        {"\xe4\xbd\xa0", "\xe4\xbd\xa0"},
        {"\xe0\x80\xaf", R R R},              /* overlong: E0 needs A0..BF next */
        {"\xe0\xa0\x80", "\xe0\xa0\x80"},
        {"\xed\xa0\x80", R R R},              /* surrogate: ED needs 80..9F next */
        {"\xed\x9f\xbf", "\xed\x9f\xbf"},
        {"\xf0\x9f\x98", R},
        {"\xf0\x9f\x98\x80", "\xf0\x9f\x98\x80"},
        {"\xf0\x80\x80\x80", R R R R},
        {"\xf4\x8f\xbf\xbf", "\xf4\x8f\xbf\xbf"},
        {"\xf4\x90\x80\x80", R R R R},        /* past U+10FFFF */
        {"\xf5\x80", R R},
        {"\xc0\xaf\xc1\xbf", R R R R},
        {"\xff\xfe", R R},
        {"\xf0\x9f\x98x\xf0\x9f", R "x" R},
    };
#undef R
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct tok_buf out = {0};
        size_t n = strlen(cases[i].in);
        size_t used = tok_utf8_lossy((const unsigned char *)cases[i].in, n, 1, &out);
        CHECK_MSG(ts, used == n && out.n == strlen(cases[i].out) && memcmp(out.p, cases[i].out, out.n) == 0,
                  "case %zu", i);
        CHECK(ts, tok_utf8_valid((const unsigned char *)cases[i].in, n) == (strcmp(cases[i].in, cases[i].out) == 0));
        free(out.p);
    }
    /* Not final: a cut-off but so far valid sequence waits for more bytes. */
    struct tok_buf out = {0};
    CHECK(ts, tok_utf8_lossy((const unsigned char *)"ab\xe4\xbd", 4, 0, &out) == 2 && out.n == 2);
    out.n = 0;
    CHECK(ts, tok_utf8_lossy((const unsigned char *)"ab\xe4(", 4, 0, &out) == 4 && out.n == 6);
    free(out.p);
}

/* vocab a b c ab bc abc, for the merge tests */
#define ABC_VOCAB "\"a\": 0, \"b\": 1, \"c\": 2, \"ab\": 3, \"bc\": 4, \"abc\": 5"

static void test_merges(struct test_state *ts)
{
    const struct {
        const char *merges;
        const int32_t *want;
    } cases[] = {
        {"\"b c\", \"a b\"", IDS(0, 4)},             /* lowest rank first: bc, then no (a, bc) merge */
        {"\"a b\", \"b c\"", IDS(3, 2)},
        {"[\"b\", \"c\"], [\"a\", \"b\"]", IDS(0, 4)}, /* the newer pair form */
        {"[\"a\", \"b\"], \"b c\"", IDS(3, 2)},       /* both forms in one list */
        {"\"a b\", \"b c\", \"a b\"", IDS(0, 4)},     /* a repeated pair: the later rank counts */
        {"\"b c\", \"a bc\"", IDS(5)},
        {"", IDS(0, 1, 2)},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct tok *t = build(ts, &(struct spec){.vocab = ABC_VOCAB, .merges = cases[i].merges});
        if (!t) continue;
        expect_ids(ts, t, "abc", 3, cases[i].want);
        tok_free(t);
    }
    /* Equal ranks go leftmost first. */
    struct tok *t = build(ts, &(struct spec){.vocab = "\"a\": 0, \"aa\": 1, \"aaa\": 2", .merges = "\"a a\", \"aa a\""});
    if (t) {
        expect_ids(ts, t, "aaa", 3, IDS(2));
        expect_ids(ts, t, "aaaaa", 5, IDS(1, 2));
        expect_ids(ts, t, "aaaa", 4, IDS(1, 1));
        tok_free(t);
    }
    /* ignore_merges: a word that is a token is taken whole. */
    t = build(ts, &(struct spec){.vocab = ABC_VOCAB, .merges = "\"a b\"", .model_extra = ", \"ignore_merges\": true"});
    if (t) {
        expect_ids(ts, t, "abc", 3, IDS(5));
        expect_ids(ts, t, "ab c", 4, IDS(3, 2)); /* " c": the space is not in this vocab: dropped */
        tok_free(t);
    }
}

static void test_added_tokens(struct test_state *ts)
{
    /* Leftmost first, then longest; raw ("normalized": false) tokens before normalized ones. */
    struct tok *t = build(ts, &(struct spec){
        .vocab = "\"a\": 0, \"b\": 1, \"c\": 2, \"d\": 3, \"<\": 4, \">\": 5, \"x\": 6",
        .added = "{\"id\": 7, \"content\": \"<a>\", \"special\": true},"
                 "{\"id\": 8, \"content\": \"<a>b\", \"special\": true},"
                 "{\"id\": 9, \"content\": \"ab\", \"special\": true},"
                 "{\"id\": 10, \"content\": \"bcd\", \"special\": true},"
                 "{\"id\": 11, \"content\": \"x<\", \"special\": false}"});
    if (!t) return;
    expect_ids(ts, t, "x<a>b<a>", 8, IDS(6, 8, 7));
    expect_ids(ts, t, "abcd", 4, IDS(9, 2, 3));      /* "ab" starts first, though "bcd" is longer */
    expect_ids(ts, t, "<a<a>b", 6, IDS(4, 0, 8));
    expect_ids(ts, t, "abcdbcd", 7, IDS(9, 2, 3, 10));
    expect_ids(ts, t, "x<a>bx<", 7, IDS(6, 8, 11)); /* "x<" is normalized: matched after "<a>b" */
    expect_ids(ts, t, "", 0, NO_IDS);
    CHECK(ts, tok_vocab_size(t) == 12);
    CHECK(ts, tok_id(t, "<a>b") == 8 && tok_id(t, "x") == 6 && tok_id(t, "<a") == -1);
    CHECK(ts, tok_str(t, 8) && strcmp(tok_str(t, 8), "<a>b") == 0 && tok_str(t, 12) == NULL && tok_str(t, -1) == NULL);
    CHECK(ts, tok_is_special(t, 7) && !tok_is_special(t, 11) && !tok_is_special(t, 0) && !tok_is_special(t, 99));
    char *text;
    size_t len;
    struct mmupt_err err;
    const int32_t ids[] = {7, 8, 9, 0, 10, 11};
    CHECK(ts, tok_decode(t, ids, 6, 0, &text, &len, &err) == 0 && strcmp(text, "<a><a>baba" "bcdx<") == 0);
    free(text);
    CHECK(ts, tok_decode(t, ids, 6, 1, &text, &len, &err) == 0 && strcmp(text, "ax<") == 0 && len == 3);
    free(text);
    tok_free(t);
}

/* The id of the one-byte token of byte b. */
static int32_t byte_token(const struct tok *t, const struct tok_bytemap *m, unsigned char b)
{
    unsigned char s[5] = {0};
    tok_utf8_put(m->cp[b], s);
    return tok_id(t, (const char *)s);
}

/* Push byte tokens one at a time: text appears exactly when a character completes. */
static void test_stream_split_chars(struct test_state *ts)
{
    struct tok *t = load_fixture(ts, "tokenizer.json");
    if (!t) return;
    struct tok_bytemap m;
    tok_bytemap_init(&m);
    const char *texts[] = {"\xc3\xa9", "\xe4\xbd\xa0\xe5\xa5\xbd", "\xf0\x9f\x98\x80!", "a\xe2\x82\xac" "b",
                           "\xe4\xbd\xa0x", "\xe4\xbd" "x\xf0\x9f"};
    const char *whole[] = {"\xc3\xa9", "\xe4\xbd\xa0\xe5\xa5\xbd", "\xf0\x9f\x98\x80!", "a\xe2\x82\xac" "b",
                           "\xe4\xbd\xa0x", "\xef\xbf\xbdx\xef\xbf\xbd"};
    for (size_t k = 0; k < sizeof texts / sizeof texts[0]; k++) {
        struct tok_stream s;
        struct tok_buf all = {0};
        struct mmupt_err err;
        char out[TOK_STREAM_OUT_MAX];
        tok_stream_init(&s, t, 0);
        const unsigned char *p = (const unsigned char *)texts[k];
        for (size_t i = 0; p[i]; i++) {
            int32_t id = byte_token(t, &m, p[i]);
            CHECK_MSG(ts, id >= 0, "no byte token for %02x", p[i]);
            int w = tok_stream_push(&s, id, out, sizeof out, &err);
            CHECK(ts, w >= 0);
            /* Each piece is complete UTF-8 on its own. */
            CHECK_MSG(ts, w <= 0 || tok_utf8_valid((const unsigned char *)out, (size_t)w), "text %zu byte %zu", k, i);
            /* Nothing comes out in the middle of a well-formed character. */
            if (k < 5 && p[i + 1] && (p[i + 1] & 0xC0) == 0x80) CHECK_MSG(ts, w == 0, "text %zu byte %zu", k, i);
            if (w > 0) tok_buf_append(&all, out, (size_t)w);
        }
        int w = tok_stream_flush(&s, out, sizeof out);
        CHECK(ts, w >= 0 && s.n_pending == 0);
        tok_buf_append(&all, out, (size_t)w);
        CHECK_MSG(ts, all.n == strlen(whole[k]) && memcmp(all.p, whole[k], all.n) == 0, "text %zu", k);
        free(all.p);
    }
    /* A bad id and a too small buffer fail and leave the stream as it was. */
    struct tok_stream s;
    struct mmupt_err err;
    char out[8];
    tok_stream_init(&s, t, 0);
    int32_t e4 = byte_token(t, &m, 0xE4);
    CHECK(ts, e4 >= 0 && tok_stream_push(&s, e4, out, sizeof out, &err) == 0 && s.n_pending == 1);
    CHECK(ts, tok_stream_push(&s, (int32_t)tok_vocab_size(t), out, sizeof out, &err) == -1);
    CHECK_CONTAINS(ts, err.msg, "not a token id");
    CHECK(ts, tok_stream_push(&s, -5, out, sizeof out, &err) == -1 && s.n_pending == 1);
    int32_t x = tok_id(t, "x");
    CHECK(ts, tok_stream_push(&s, x, out, 2, &err) == -1 && s.n_pending == 1); /* needs 4 bytes */
    CHECK_CONTAINS(ts, err.msg, "do not fit");
    CHECK(ts, tok_stream_push(&s, x, out, 4, &err) == 4 && memcmp(out, "\xef\xbf\xbdx", 4) == 0);
    CHECK(ts, tok_stream_flush(&s, out, sizeof out) == 0);
    CHECK(ts, tok_stream_push(&s, e4, out, sizeof out, &err) == 0 && tok_stream_flush(&s, out, 2) == -1);
    CHECK(ts, tok_stream_flush(&s, out, 3) == 3 && memcmp(out, "\xef\xbf\xbd", 3) == 0);
    /* Skipped special tokens produce nothing. */
    tok_stream_init(&s, t, 1);
    CHECK(ts, tok_stream_push(&s, tok_id(t, "<|im_end|>"), out, sizeof out, &err) == 0);
    tok_stream_init(&s, t, 0);
    char big[TOK_STREAM_OUT_MAX];
    CHECK(ts, tok_stream_push(&s, tok_id(t, "<|im_end|>"), big, sizeof big, &err) == 10);
    tok_free(t);
}

static void test_decode_bad_ids(struct test_state *ts)
{
    struct tok *t = load_fixture(ts, "tokenizer.json");
    if (!t) return;
    char *text = NULL;
    size_t len;
    struct mmupt_err err;
    const int32_t ids[] = {0, 1, 400000};
    CHECK(ts, tok_decode(t, ids, 3, 0, &text, &len, &err) == -1 && text == NULL);
    CHECK_CONTAINS(ts, err.msg, "id #2: 400000 is not a token id");
    const int32_t neg[] = {-1};
    CHECK(ts, tok_decode(t, neg, 1, 0, &text, &len, &err) == -1);
    CHECK_CONTAINS(ts, err.msg, "id #0: -1");
    CHECK(ts, tok_decode(t, NULL, 0, 0, &text, &len, &err) == 0 && len == 0 && text[0] == '\0');
    free(text);
    tok_free(t);
}

/* Round trips on awkward inputs with the fixture tokenizer that has no normalizer. */
static void roundtrip(struct test_state *ts, struct tok *t, const char *in, size_t n, const char *want, size_t wn)
{
    int32_t *ids;
    size_t k, len;
    char *text;
    struct mmupt_err err;
    CHECK(ts, tok_encode(t, in, n, &ids, &k, &err) == 0);
    CHECK(ts, tok_decode(t, ids, k, 0, &text, &len, &err) == 0);
    CHECK_MSG(ts, len == wn && memcmp(text, want, wn) == 0, "round trip of %zu bytes gave %zu", n, len);
    free(ids);
    free(text);
}

static void test_long_and_odd_inputs(struct test_state *ts)
{
    struct tok *t = load_fixture(ts, "legacy_merges.json");
    if (!t) return;
    size_t n = 1 << 20;
    char *s = malloc(n + 1);
    memset(s, ' ', n);
    s[n] = 'x';
    roundtrip(ts, t, s, n + 1, s, n + 1);           /* one megabyte of spaces: \s+(?!\S) backtracks */
    memset(s, 'a', 100000);
    roundtrip(ts, t, s, 100000, s, 100000);          /* one long word through the heap-based BPE */
    for (size_t i = 0; i < 4096; i++) s[i] = (char)(i % 7 == 0 ? '\n' : i % 5 == 0 ? '\t' : '\0');
    roundtrip(ts, t, s, 4096, s, 4096);              /* NUL bytes are ordinary characters */
    roundtrip(ts, t, "a\xff" "b", 3, "a\xef\xbf\xbd" "b", 5);
    roundtrip(ts, t, "", 0, "", 0);
    free(s);
    tok_free(t);
}

/* More distinct words than the cache holds: it is emptied and refilled, and ids stay the same. */
static void test_cache_overflow(struct test_state *ts)
{
    struct tok *t = load_fixture(ts, "tokenizer.json");
    if (!t) return;
    struct tok_buf text = {0};
    size_t words = TOK_CACHE_ENTRIES + 5000;
    for (size_t i = 0; i < words; i++) {
        char w[32];
        int len = snprintf(w, sizeof w, "w%zuq\n", i * 7919);
        tok_buf_append(&text, w, (size_t)len);
    }
    int32_t *all, *again;
    size_t n_all, n_again;
    struct mmupt_err err;
    CHECK(ts, tok_encode(t, text.p, text.n, &all, &n_all, &err) == 0);
    CHECK(ts, t->cache.n > 0 && t->cache.n < words);
    CHECK(ts, tok_encode(t, text.p, text.n, &again, &n_again, &err) == 0);
    CHECK(ts, n_all == n_again && memcmp(all, again, n_all * sizeof *all) == 0);
    /* Word by word in a fresh tokenizer: the same ids. */
    struct tok *fresh = load_fixture(ts, "tokenizer.json");
    size_t at = 0, pos = 0, bad = 0;
    while (fresh && pos < text.n) {
        size_t end = pos;
        while (text.p[end] != '\n') end++;
        int32_t *ids;
        size_t k;
        CHECK(ts, tok_encode(fresh, text.p + pos, end + 1 - pos, &ids, &k, &err) == 0);
        if (at + k > n_all || memcmp(all + at, ids, k * sizeof *ids) != 0) bad++;
        at += k;
        pos = end + 1;
        free(ids);
    }
    CHECK(ts, bad == 0 && at == n_all);
    free(all);
    free(again);
    free(text.p);
    tok_free(fresh);
    tok_free(t);
}

/* A regex that backtracks without end stops at its match limit with an error, not a hang. */
static void test_regex_limit(struct test_state *ts)
{
    struct tok *t = build(ts, &(struct spec){
        .vocab = "\"a\": 0, \"b\": 1",
        .pre = "{\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Split\", \"pattern\": {\"Regex\": "
               "\"(a|aa)+[^a]\"}, \"behavior\": \"Isolated\"}, {\"type\": \"ByteLevel\", \"use_regex\": false, "
               "\"add_prefix_space\": false}]}"});
    if (!t) return;
    expect_ids(ts, t, "aab", 3, IDS(0, 0, 1));
    char text[200];
    memset(text, 'a', sizeof text);
    int32_t *ids = NULL;
    size_t n;
    struct mmupt_err err;
    CHECK(ts, tok_encode(t, text, sizeof text, &ids, &n, &err) == -1 && ids == NULL);
    CHECK_CONTAINS(ts, err.msg, "pre-tokenizer regex failed on a piece of 200 bytes");
    CHECK_CONTAINS(ts, err.msg, "limit");
    tok_free(t);
}

static void test_load_paths(struct test_state *ts)
{
    char dir[4096];
    struct tok *t = NULL;
    struct mmupt_err err;
    snprintf(dir, sizeof dir, "%s/small/none.json", fixtures);
    CHECK(ts, tok_load(&t, dir, &err) == -1 && t == NULL);
    CHECK_CONTAINS(ts, err.msg, "none.json: cannot open");
    snprintf(dir, sizeof dir, "%s/small", fixtures);
    CHECK(ts, tok_load(&t, dir, &err) == 0); /* a directory holding tokenizer.json */
    CHECK(ts, t && tok_id(t, "<|im_end|>") >= 0 && tok_is_special(t, tok_id(t, "<|im_end|>")));
    tok_free(t);
    tok_free(NULL);
    CHECK(ts, tok_load(&t, fixtures, &err) == -1);
    CHECK_CONTAINS(ts, err.msg, "tokenizer/tokenizer.json: cannot open");
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s FIXTURES_DIR\n", argv[0]);
        return 2;
    }
    fixtures = argv[1];
    struct test_state ts = {0};
    RUN(&ts, test_bytemap);
    RUN(&ts, test_utf8_replacement);
    RUN(&ts, test_merges);
    RUN(&ts, test_added_tokens);
    RUN(&ts, test_stream_split_chars);
    RUN(&ts, test_decode_bad_ids);
    RUN(&ts, test_long_and_odd_inputs);
    RUN(&ts, test_cache_overflow);
    RUN(&ts, test_regex_limit);
    RUN(&ts, test_load_paths);
    return test_summary(&ts);
}
