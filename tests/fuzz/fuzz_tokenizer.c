/* libFuzzer target for the tokenizer, two ways:
 *   - the bytes as text, encoded with the small fixture tokenizer that has no normalizer: decoding
 *     the ids, whole or streamed, must give back exactly the text with invalid UTF-8 replaced by
 *     U+FFFD (tests/fixtures/tokenizer/small/legacy_merges.json);
 *   - the bytes as a tokenizer.json: a load gives a tokenizer or an error, never a crash, and a
 *     tokenizer that loads must encode and decode.
 * The fixture is found next to the source (the build directory sits in the source tree), or
 * through MMUPT_TOKENIZER_FIXTURE. */
#include <libgen.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mmupt/tokenizer.h"
#include "tokenizer/internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct tok *load_fixture(void)
{
    const char *rel = "/../fixtures/tokenizer/small/legacy_merges.json";
    char exe[4096] = "", src[4096], cand[3][8192];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[n > 0 ? n : 0] = '\0';
    snprintf(src, sizeof src, "%s", __FILE__);
    const char *exe_dir = dirname(exe), *src_dir = dirname(src);
    /* __FILE__ is relative to the build directory, one level above the test executables. */
    snprintf(cand[0], sizeof cand[0], "%s", getenv("MMUPT_TOKENIZER_FIXTURE") ? getenv("MMUPT_TOKENIZER_FIXTURE") : "");
    snprintf(cand[1], sizeof cand[1], src_dir[0] == '/' ? "%.0s%s%s" : "%s/../%s%s", exe_dir, src_dir, rel);
    snprintf(cand[2], sizeof cand[2], "%s/../../tests/fuzz%s", exe_dir, rel);
    for (int i = 0; i < 3; i++) {
        struct tok *t;
        struct mmupt_err err;
        if (cand[i][0] && access(cand[i], R_OK) == 0) {
            if (tok_load(&t, cand[i], &err) == 0) return t;
            fprintf(stderr, "fuzz_tokenizer: %s\n", err.msg);
            abort();
        }
    }
    fprintf(stderr, "fuzz_tokenizer: cannot find %s (set MMUPT_TOKENIZER_FIXTURE)\n", cand[1]);
    abort();
}

/* Decode ids whole and streamed; both must equal want (when want is given). */
static void check_decode(const struct tok *t, const int32_t *ids, size_t n, const char *want, size_t want_len)
{
    char *text;
    size_t len;
    struct mmupt_err err;
    if (tok_decode(t, ids, n, 0, &text, &len, &err) != 0) {
        fprintf(stderr, "decode of its own ids failed: %s\n", err.msg);
        abort();
    }
    if (want && (len != want_len || memcmp(text, want, len) != 0)) {
        fprintf(stderr, "decode(encode(x)) != x: %zu bytes vs %zu\n", len, want_len);
        abort();
    }
    struct tok_stream s;
    struct tok_buf all = {0};
    char chunk[TOK_STREAM_OUT_MAX];
    tok_stream_init(&s, t, 0);
    for (size_t i = 0; i < n; i++) {
        int w = tok_stream_push(&s, ids[i], chunk, sizeof chunk, &err);
        if (w < 0 || !tok_utf8_valid((const unsigned char *)chunk, (size_t)w)) abort();
        tok_buf_append(&all, chunk, (size_t)w);
    }
    int w = tok_stream_flush(&s, chunk, sizeof chunk);
    if (w < 0) abort();
    tok_buf_append(&all, chunk, (size_t)w);
    if (all.n != len || (len && memcmp(all.p, text, len) != 0)) {
        fprintf(stderr, "streamed decode differs from decode\n");
        abort();
    }
    free(all.p);
    free(text);
}

static void roundtrip(struct tok *t, const uint8_t *data, size_t size, int exact)
{
    int32_t *ids;
    size_t n;
    struct mmupt_err err;
    if (tok_encode(t, (const char *)data, size, &ids, &n, &err) != 0) {
        if (exact) { /* the fixture's GPT-2 regex never nears its match limit on fuzz-sized input */
            fprintf(stderr, "encode failed: %s\n", err.msg);
            abort();
        }
        return;
    }
    struct tok_buf clean = {0};
    tok_utf8_lossy(data, size, 1, &clean);
    check_decode(t, ids, n, exact ? clean.p : NULL, clean.n);
    free(clean.p);
    free(ids);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct tok *fixture; /* loaded once: the fuzzer calls this millions of times */
    if (!fixture) fixture = load_fixture();
    roundtrip(fixture, data, size, 1);

    struct tok *t;
    struct mmupt_err err;
    if (tok_load_buffer(&t, "fuzz.json", (const char *)data, size, &err) != 0) return 0;
    static const char text[] = "Hello <|im_start|>world's 123 \xe4\xbd\xa0\xe5\xa5\xbd\n\n  e\xcc\x81 \xff!";
    roundtrip(t, (const uint8_t *)text, sizeof text - 1, 0);
    roundtrip(t, data, size < 512 ? size : 512, 0);
    if (tok_vocab_size(t) <= 0 || tok_vocab_size(t) > TOK_MAX_VOCAB) abort();
    tok_free(t);
    return 0;
}
