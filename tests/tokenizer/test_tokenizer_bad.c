/* Bad tokenizer.json inputs: each must fail with a message that names the file and the field and
 * says what is wrong, and must leave the caller's pointer untouched. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../test.h"
#include "mmupt/tokenizer.h"

/* The parts of a tokenizer.json; NULL takes the default (a valid small byte-level BPE). A part
 * given as "-" is left out entirely. */
struct parts {
    const char *vocab, *merges, *added, *normalizer, *pre, *decoder, *top, *model;
    const char *raw; /* the whole file instead of parts */
};

struct bad_case {
    const char *what;
    struct parts p;
    const char *expect[3];
};

#define DEF(x, d) ((x) ? (x) : (d))

static int omitted(const char *part)
{
    return part && strcmp(part, "-") == 0;
}

static void compose(char *buf, size_t n, const struct parts *p)
{
    char vocab[512] = "", merges[512] = "", pre[6000] = "", dec[256] = "";
    if (!omitted(p->vocab))
        snprintf(vocab, sizeof vocab, ", \"vocab\": {%s}", DEF(p->vocab, "\"a\": 0, \"b\": 1, \"c\": 2, \"ab\": 3"));
    if (!omitted(p->merges)) snprintf(merges, sizeof merges, ", \"merges\": [%s]", DEF(p->merges, "\"a b\""));
    if (!omitted(p->pre))
        snprintf(pre, sizeof pre, "\"pre_tokenizer\": %s, ",
                 DEF(p->pre, "{\"type\": \"ByteLevel\", \"add_prefix_space\": false}"));
    if (!omitted(p->decoder))
        snprintf(dec, sizeof dec, "\"decoder\": %s, ", DEF(p->decoder, "{\"type\": \"ByteLevel\"}"));
    snprintf(buf, n, "{%s\"added_tokens\": [%s], \"normalizer\": %s, %s%s\"model\": {\"type\": \"BPE\"%s%s%s}}",
             DEF(p->top, ""), DEF(p->added, ""), DEF(p->normalizer, "null"), pre, dec, vocab, merges,
             DEF(p->model, ""));
}

static const struct bad_case cases[] = {
    {"model type", {.raw = "{\"model\": {\"type\": \"WordPiece\"}}"}, {"model.type 'WordPiece' is not supported"}},
    {"no vocab", {.vocab = "-"}, {"missing field 'model.vocab'"}},
    {"no merges", {.merges = "-"}, {"missing field 'model.merges'"}},
    {"vocab a list", {.raw = "{\"model\": {\"type\": \"BPE\", \"vocab\": [1], \"merges\": []}}"},
     {"model.vocab must be an object"}},
    {"negative id", {.vocab = "\"a\": -1"}, {"model.vocab: id of 'a' must be an integer in [0, "}},
    {"string id", {.vocab = "\"a\": \"0\""}, {"model.vocab: id of 'a'"}},
    {"absurd id", {.vocab = "\"a\": 1000000000000"}, {"model.vocab: id of 'a' must be an integer in [0, 4194304)"}},
    {"duplicate ids", {.vocab = "\"a\": 0, \"b\": 0", .merges = ""}, {"model.vocab", "id 0 is given to both"}},
    {"empty token", {.vocab = "\"\": 0"}, {"model.vocab: empty token string"}},
    {"empty vocab", {.vocab = "", .merges = ""}, {"model.vocab is empty"}},
    {"merges not a list", {.raw = "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": 3}}"},
     {"model.merges must be a list"}},
    {"merge without space", {.merges = "\"ab\""}, {"model.merges[0] must be \"left right\" or [left, right]"}},
    {"merge of three", {.merges = "\"a b\", \"a b c\""}, {"model.merges[1] must be"}},
    {"merge of numbers", {.merges = "[0, 1]"}, {"model.merges[0] must be"}},
    {"merge of one", {.merges = "[\"a\"]"}, {"model.merges[0] must be"}},
    {"merge names unknown", {.merges = "\"a z\""}, {"model.merges[0]: 'z' is not in model.vocab"}},
    {"merge result unknown", {.merges = "\"a b\", [\"b\", \"c\"]"}, {"model.merges[1]: the merged token 'bc'"}},
    {"added not a list",
     {.raw = "{\"added_tokens\": {}, \"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}}"},
     {"added_tokens must be a list"}},
    {"added without id", {.added = "{\"content\": \"<x>\"}"}, {"added_tokens[0]: missing field 'id'"}},
    {"added entry not an object", {.added = "3"}, {"added_tokens[0] must be an object"}},
    {"added negative id", {.added = "{\"id\": -1, \"content\": \"<x>\"}"}, {"added_tokens[0].id must be in [0, "}},
    {"added empty", {.added = "{\"id\": 9, \"content\": \"\"}"}, {"added_tokens[0]: empty token string"}},
    {"added NUL", {.added = "{\"id\": 9, \"content\": \"<\\u0000>\"}"}, {"added_tokens[0]: token contains a NUL"}},
    {"added flag", {.added = "{\"id\": 9, \"content\": \"<x>\", \"special\": 1}"},
     {"added_tokens[0].special must be true or false"}},
    {"added ids twice", {.added = "{\"id\": 9, \"content\": \"<x>\"}, {\"id\": 9, \"content\": \"<y>\"}"},
     {"added_tokens[1]", "id 9 is given to two added tokens"}},
    {"added content twice", {.added = "{\"id\": 9, \"content\": \"<x>\"}, {\"id\": 10, \"content\": \"<x>\"}"},
     {"added_tokens[1]: '<x>' is listed twice"}},
    {"added renumbers a vocab token", {.added = "{\"id\": 7, \"content\": \"ab\"}"},
     {"added_tokens[0]: 'ab' has id 7 but model.vocab gives it id 3"}},
    {"added takes a vocab id", {.added = "{\"id\": 1, \"content\": \"<x>\"}"},
     {"added_tokens[0]", "id 1 is given to both 'b' and '<x>'"}},
    {"normalizer", {.normalizer = "{\"type\": \"Lowercase\"}"}, {"normalizer: type 'Lowercase' is not supported"}},
    {"normalizer in a sequence",
     {.normalizer = "{\"type\": \"Sequence\", \"normalizers\": [{\"type\": \"NFC\"}, {\"type\": \"NFKC\"}]}"},
     {"normalizer.normalizers[1]: type 'NFKC' is not supported"}},
    {"normalizer not an object", {.normalizer = "\"NFC\""}, {"normalizer must be an object with a string 'type'"}},
    {"no pre-tokenizer", {.pre = "-"}, {"pre_tokenizer is missing"}},
    {"pre-tokenizer", {.pre = "{\"type\": \"Whitespace\"}"}, {"pre_tokenizer: type 'Whitespace' is not supported"}},
    {"split behavior",
     {.pre = "{\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Split\", \"pattern\": {\"Regex\": \"a\"}, "
             "\"behavior\": \"Removed\"}, {\"type\": \"ByteLevel\"}]}"},
     {"pre_tokenizer.pretokenizers[0].behavior 'Removed' is not supported"}},
    {"split invert",
     {.pre = "{\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Split\", \"pattern\": {\"Regex\": \"a\"}, "
             "\"behavior\": \"Isolated\", \"invert\": true}, {\"type\": \"ByteLevel\"}]}"},
     {"pre_tokenizer.pretokenizers[0].invert"}},
    {"split without pattern",
     {.pre = "{\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Split\", \"behavior\": \"Isolated\"}, "
             "{\"type\": \"ByteLevel\"}]}"},
     {"pre_tokenizer.pretokenizers[0].pattern must be"}},
    {"bad regex",
     {.pre = "{\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Split\", \"pattern\": {\"Regex\": \"(a|\"}, "
             "\"behavior\": \"Isolated\"}, {\"type\": \"ByteLevel\"}]}"},
     {"pre_tokenizer.pretokenizers[0].pattern: bad regex at offset 3"}},
    {"no ByteLevel",
     {.pre = "{\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Split\", \"pattern\": {\"Regex\": \"a\"}, "
             "\"behavior\": \"Isolated\"}]}"},
     {"pre_tokenizer.pretokenizers[0]: type 'Split' is not supported here"}},
    {"ByteLevel first",
     {.pre = "{\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"ByteLevel\"}, {\"type\": \"Split\", "
             "\"pattern\": {\"Regex\": \"a\"}, \"behavior\": \"Isolated\"}]}"},
     {"pre_tokenizer.pretokenizers[0]: type 'ByteLevel' is not supported here"}},
    {"empty sequence", {.pre = "{\"type\": \"Sequence\", \"pretokenizers\": []}"}, {"must end with ByteLevel"}},
    {"ByteLevel flag", {.pre = "{\"type\": \"ByteLevel\", \"use_regex\": \"yes\"}"},
     {"pre_tokenizer.use_regex must be true or false"}},
    {"no decoder", {.decoder = "-"}, {"decoder: type 'none' is not supported"}},
    {"decoder", {.decoder = "{\"type\": \"WordPiece\"}"}, {"decoder: type 'WordPiece' is not supported"}},
    {"post-processor", {.top = "\"post_processor\": {\"type\": \"TemplateProcessing\"}, "},
     {"post_processor: type 'TemplateProcessing' is not supported"}},
    {"truncation", {.top = "\"truncation\": {\"max_length\": 5}, "}, {"truncation is not supported"}},
    {"dropout", {.model = ", \"dropout\": 0.1"}, {"model.dropout"}},
    {"byte fallback", {.model = ", \"byte_fallback\": true"}, {"model.byte_fallback is not supported"}},
    {"subword prefix", {.model = ", \"continuing_subword_prefix\": \"##\""},
     {"model.continuing_subword_prefix '##' is not supported"}},
    {"suffix", {.model = ", \"end_of_word_suffix\": \"</w>\""}, {"model.end_of_word_suffix '</w>'"}},
    {"unk not in vocab", {.model = ", \"unk_token\": \"<unk>\""}, {"model.unk_token '<unk>' is not in model.vocab"}},
    {"fuse_unk", {.model = ", \"fuse_unk\": \"yes\""}, {"model.fuse_unk must be true or false"}},
};

static void expect_fail(struct test_state *ts, const char *what, const char *json, size_t len, const char *const *want)
{
    struct tok *t = (struct tok *)&t; /* a sentinel: must survive a failed load */
    struct tok *before = t;
    struct mmupt_err err = {{0}};
    int rc = tok_load_buffer(&t, "bad.json", json, len, &err);
    CHECK_MSG(ts, rc == -1, "%s: loaded", what);
    if (rc == 0) {
        tok_free(t);
        return;
    }
    CHECK_MSG(ts, t == before, "%s: output pointer changed", what);
    CHECK_MSG(ts, strncmp(err.msg, "bad.json", 8) == 0, "%s: message does not name the file: %s", what, err.msg);
    for (int i = 0; i < 3 && want[i]; i++) CHECK_CONTAINS(ts, err.msg, want[i]);
}

static void test_bad_parts(struct test_state *ts)
{
    char json[16384];
    compose(json, sizeof json, &(struct parts){0});
    struct tok *t;
    struct mmupt_err err;
    int rc = tok_load_buffer(&t, "good.json", json, strlen(json), &err);
    CHECK_MSG(ts, rc == 0, "the default parts must load: %s\n%s", err.msg, json);
    if (rc == 0) tok_free(t);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (cases[i].p.raw) snprintf(json, sizeof json, "%s", cases[i].p.raw);
        else compose(json, sizeof json, &cases[i].p);
        expect_fail(ts, cases[i].what, json, strlen(json), cases[i].expect);
    }
}

static void test_not_json(struct test_state *ts)
{
    expect_fail(ts, "garbage", "tokenizer", 9, (const char *[]){"bad.json:1:", "invalid JSON", NULL});
    expect_fail(ts, "truncated", "{\"model\": {", 11, (const char *[]){"invalid JSON", NULL});
    expect_fail(ts, "NUL byte", "{\"a\": 1}\0", 9, (const char *[]){"NUL byte", NULL});
    expect_fail(ts, "array", "[1, 2]", 6, (const char *[]){"the top level must be an object", NULL});
    expect_fail(ts, "empty object", "{}", 2, (const char *[]){"missing field 'model'", NULL});
    expect_fail(ts, "model not an object", "{\"model\": 3}", 12, (const char *[]){"missing field 'model'", NULL});
    expect_fail(ts, "no type", "{\"model\": {\"vocab\": {}}}", 24, (const char *[]){"model.type '(missing)'", NULL});
    /* Size is checked before a byte is read. */
    expect_fail(ts, "huge", "{}", (size_t)TOK_MAX_FILE_BYTES + 1, (const char *[]){"too large", NULL});
}

static void test_absurd_sizes(struct test_state *ts)
{
    /* A token longer than any real one. */
    size_t n = 2000;
    char *json = malloc(n + 4096);
    int k = snprintf(json, 4096, "{\"model\": {\"type\": \"BPE\", \"merges\": [], \"vocab\": {\"");
    memset(json + k, 'x', n);
    snprintf(json + k + n, (size_t)(4096 - k), "\": 0}}}"); /* what is left of the n + 4096 */
    expect_fail(ts, "long token", json, strlen(json), (const char *[]){"model.vocab: token of 2000 bytes", NULL});
    free(json);
    /* More added tokens than allowed. */
    size_t count = TOK_MAX_ADDED + 1, cap = count * 8 + 256, len = 0;
    json = malloc(cap);
    len += (size_t)snprintf(json, cap, "{\"added_tokens\": [");
    for (size_t i = 0; i < count; i++) len += (size_t)snprintf(json + len, cap - len, "%s{}", i ? "," : "");
    len += (size_t)snprintf(json + len, cap - len,
                            "], \"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}}");
    expect_fail(ts, "too many added tokens", json, len, (const char *[]){"added_tokens has 65537 entries", NULL});
    free(json);
    /* A regex longer than any real one. */
    size_t rl = 5000;
    json = malloc(rl + 4096);
    k = snprintf(json, 4096, "{\"pre_tokenizer\": {\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Split\", "
                             "\"behavior\": \"Isolated\", \"pattern\": {\"Regex\": \"");
    memset(json + k, 'a', rl);
    snprintf(json + k + rl, (size_t)(4096 - k), "\"}}, {\"type\": \"ByteLevel\"}]}, \"decoder\": {\"type\": \"ByteLevel\"}, "
                                  "\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}}");
    expect_fail(ts, "long regex", json, strlen(json), (const char *[]){"pattern of 5000 bytes", NULL});
    free(json);
}

/* NFC may lengthen a "normalized" added token past the limit that bounds decoding buffers. */
static void test_nfc_growth(struct test_state *ts)
{
    char json[8192];
    int k = snprintf(json, sizeof json, "{\"normalizer\": {\"type\": \"NFC\"}, \"pre_tokenizer\": {\"type\": "
                                        "\"ByteLevel\"}, \"decoder\": {\"type\": \"ByteLevel\"}, \"added_tokens\": "
                                        "[{\"id\": 1, \"normalized\": true, \"content\": \"");
    for (int i = 0; i < 341; i++) k += snprintf(json + k, sizeof json - (size_t)k, "\xe0\xa5\x98"); /* U+0958 */
    snprintf(json + k, sizeof json - (size_t)k,
             "\"}], \"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}}");
    expect_fail(ts, "NFC growth", json, strlen(json), (const char *[]){"added token 1 is 2046 bytes after NFC", NULL});
}

static void test_bad_file(struct test_state *ts)
{
    char path[] = "/tmp/mmupt_tok_XXXXXX";
    int fd = mkstemp(path);
    CHECK(ts, fd >= 0);
    if (fd < 0) return;
    const char text[] = "{\"model\": {\"type\": \"Unigram\"}}";
    CHECK(ts, write(fd, text, sizeof text - 1) == (ssize_t)(sizeof text - 1));
    close(fd);
    struct tok *t = NULL;
    struct mmupt_err err;
    CHECK(ts, tok_load(&t, path, &err) == -1 && t == NULL);
    CHECK_CONTAINS(ts, err.msg, path);
    CHECK_CONTAINS(ts, err.msg, "model.type 'Unigram' is not supported");
    unlink(path);
}

int main(void)
{
    struct test_state ts = {0};
    RUN(&ts, test_bad_parts);
    RUN(&ts, test_not_json);
    RUN(&ts, test_absurd_sizes);
    RUN(&ts, test_nfc_growth);
    RUN(&ts, test_bad_file);
    return test_summary(&ts);
}
