/* safetensors: one test per kind of bad input. Each must fail with rc -1 and a message naming the
 * file, the tensor (when there is one) and the complaint, and leave the set zeroed. File images
 * are crafted here byte by byte; sharded models are written with st_write_model and then broken. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../test.h"
#include "mmupt/safetensors.h"
#include "st_helpers.h"

static char scratch[64]; /* a fresh directory under /tmp; set once in main */

/* A file image: the 8-byte length field (hlen_field), the header bytes, then data_len bytes. */
static unsigned char *image(uint64_t hlen_field, const char *header, size_t hlen, size_t data_len, size_t *len)
{
    *len = 8 + hlen + data_len;
    unsigned char *b = calloc(1, *len + 1);
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)(hlen_field >> (8 * i));
    memcpy(b + 8, header, hlen);
    return b;
}

/* Parse header (with data_len bytes of data) and expect failure with each non-NULL piece. */
static void expect_bad_n(struct test_state *ts, int line, const char *header, size_t hlen, size_t data_len,
                         const char *p1, const char *p2)
{
    size_t len;
    unsigned char *b = image(hlen, header, hlen, data_len, &len);
    struct st_set s;
    memset(&s, 0x5a, sizeof s);
    struct mmupt_err err = {{0}};
    int rc = st_open_buffer(&s, "bad.safetensors", b, len, &err);
    CHECK_MSG(ts, rc == -1, "line %d: accepted: %s", line, header);
    CHECK_MSG(ts, strstr(err.msg, "bad.safetensors") == err.msg, "line %d: file not named first: %s", line, err.msg);
    CHECK_MSG(ts, strstr(err.msg, p1), "line %d: '%s' not in '%s'", line, p1, err.msg);
    if (p2) CHECK_MSG(ts, strstr(err.msg, p2), "line %d: '%s' not in '%s'", line, p2, err.msg);
    CHECK_MSG(ts, s.n == 0 && s.tensors == NULL && s.files == NULL, "line %d: set not zeroed", line);
    if (rc == 0) st_close(&s);
    free(b);
}

#define EXPECT_BAD(ts, header, data_len, p1, p2) expect_bad_n(ts, __LINE__, header, strlen(header), data_len, p1, p2)

/* A good tensor entry to build variants of. */
#define T_OK "{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}"

static void test_good_baseline(struct test_state *ts)
{
    /* The variants below differ from this accepted file in one place each. */
    size_t len;
    const char *h = "{\"a\":" T_OK ",\"__metadata__\":{\"k\":\"v\"}}   ";
    unsigned char *b = image(strlen(h), h, strlen(h), 8, &len);
    struct st_set s;
    struct mmupt_err err;
    CHECK_MSG(ts, st_open_buffer(&s, "good.safetensors", b, len, &err) == 0, "%s", err.msg);
    CHECK(ts, st_count(&s) == 1 && st_find(&s, "a")->nbytes == 8 && strcmp(st_metadata(&s, "k"), "v") == 0);
    st_close(&s);
    free(b);
}

static void test_bad_length_field(struct test_state *ts)
{
    struct st_set s;
    struct mmupt_err err;
    unsigned char shortf[5] = {1, 0, 0, 0, 0};
    CHECK(ts, st_open_buffer(&s, "bad.safetensors", shortf, 5, &err) == -1);
    CHECK_CONTAINS(ts, err.msg, "bad.safetensors: file too short (5 bytes)");
    CHECK(ts, st_open_buffer(&s, "bad.safetensors", NULL, 0, &err) == -1);
    CHECK_CONTAINS(ts, err.msg, "file too short (0 bytes)");

    size_t len;
    unsigned char *b = image(0, "{}", 2, 0, &len);
    CHECK(ts, st_open_buffer(&s, "bad.safetensors", b, len, &err) == -1);
    CHECK_CONTAINS(ts, err.msg, "bad.safetensors: header length is 0");
    free(b);
    b = image(3, "{}", 2, 0, &len); /* one byte past the end */
    CHECK(ts, st_open_buffer(&s, "bad.safetensors", b, len, &err) == -1);
    CHECK_CONTAINS(ts, err.msg, "header length 3 runs past the end of the file (10 bytes)");
    free(b);
    b = image(UINT64_MAX, "{}", 2, 0, &len);
    CHECK(ts, st_open_buffer(&s, "bad.safetensors", b, len, &err) == -1);
    CHECK_CONTAINS(ts, err.msg, "larger than the limit");
    free(b);
    b = image(ST_MAX_HEADER_BYTES + 1ull, "{}", 2, 0, &len);
    CHECK(ts, st_open_buffer(&s, "bad.safetensors", b, len, &err) == -1);
    CHECK_CONTAINS(ts, err.msg, "header length 100000001 is larger than the limit of 100000000 bytes");
    free(b);
}

static void test_bad_header_text(struct test_state *ts)
{
    EXPECT_BAD(ts, "{\"a\xff\":" T_OK "}", 8, "not valid UTF-8", "header byte 3");
    EXPECT_BAD(ts, "{\"a\":" T_OK ",\"\xed\xa0\x80\":1}", 8, "not valid UTF-8", NULL); /* a surrogate */
    EXPECT_BAD(ts, "{\"a\":" T_OK, 8, "bad.safetensors:1:", "invalid JSON");
    EXPECT_BAD(ts, "{\"a\":" T_OK "} x", 8, "invalid JSON", NULL);       /* trailing garbage, not spaces */
#define NUL_PADDED "{\"a\":" T_OK "}\0\0\0"
    expect_bad_n(ts, __LINE__, NUL_PADDED, sizeof NUL_PADDED - 1, 8, "header contains a NUL byte", "header byte 54");
    /* jansson alone would accept this one (a fuzzer find): a raw NUL right after a number. */
#define NUL_IN_SHAPE "{\"a\":{\"dtype\":\"F32\",\"shape\":[2\0\n],\"data_offsets\":[0,8]}}"
    expect_bad_n(ts, __LINE__, NUL_IN_SHAPE, sizeof NUL_IN_SHAPE - 1, 8, "header contains a NUL byte", NULL);
    EXPECT_BAD(ts, "[1, 2]", 0, "header must be a JSON object", NULL);
    EXPECT_BAD(ts, "\"a\"", 0, "invalid JSON", NULL); /* jansson takes only objects and arrays */
    EXPECT_BAD(ts, "{\"a\":" T_OK ",\"a\":" T_OK "}", 8, "duplicate", "invalid JSON");
}

static void test_bad_tensor_entry(struct test_state *ts)
{
    EXPECT_BAD(ts, "{\"a\":[1]}", 0, "tensor 'a': entry must be an object", NULL);
    EXPECT_BAD(ts, "{\"a\\u0000b\":" T_OK "}", 8, "NUL byte in object key", NULL);
    EXPECT_BAD(ts, "{\"a\":{\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "tensor 'a': missing field 'dtype'", NULL);
    EXPECT_BAD(ts, "{\"a\":{\"dtype\":\"F8_E4M3\",\"shape\":[2],\"data_offsets\":[0,2]}}", 2,
               "tensor 'a': unknown dtype 'F8_E4M3'", NULL);
    EXPECT_BAD(ts, "{\"a\":{\"dtype\":\"f32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "unknown dtype 'f32'", NULL);
    EXPECT_BAD(ts, "{\"a\":{\"dtype\":4,\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "tensor 'a': dtype must be a string",
               NULL);
    EXPECT_BAD(ts, "{\"a\":{\"dtype\":\"F32\\u0000x\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8,
               "unknown dtype 'F32'", NULL);
}

static void test_bad_shape(struct test_state *ts)
{
    EXPECT_BAD(ts, "{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}}", 8, "tensor 'a': missing field 'shape'", NULL);
    EXPECT_BAD(ts, "{\"a\":{\"dtype\":\"F32\",\"shape\":2,\"data_offsets\":[0,8]}}", 8,
               "tensor 'a': shape must be a list of non-negative integers", NULL);
    EXPECT_BAD(ts, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,-1],\"data_offsets\":[0,8]}}", 8,
               "tensor 'a': shape item 1 must be a non-negative integer", NULL);
    EXPECT_BAD(ts, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2.0],\"data_offsets\":[0,8]}}", 8, "shape item 0", NULL);
    EXPECT_BAD(ts, "{\"a\":{\"dtype\":\"F32\",\"shape\":[\"2\"],\"data_offsets\":[0,8]}}", 8, "shape item 0", NULL);
    EXPECT_BAD(ts, "{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,2],\"data_offsets\":[0,8]}}", 8,
               "tensor 'a': shape has 9 dimensions (at most 8)", NULL);
    EXPECT_BAD(ts, "{\"a\":{\"dtype\":\"U8\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,8]}}", 8,
               "tensor 'a': shape overflows the element count", NULL);
    EXPECT_BAD(ts, "{\"a\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904],\"data_offsets\":[0,8]}}", 8,
               "tensor 'a': shape overflows the byte count", NULL);
}

static void test_bad_offsets(struct test_state *ts)
{
    EXPECT_BAD(ts, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8, "tensor 'a': missing field 'data_offsets'", NULL);
    EXPECT_BAD(ts, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8]}}", 8,
               "tensor 'a': data_offsets must be two non-negative integers", NULL);
    EXPECT_BAD(ts, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8,8]}}", 8, "must be two", NULL);
    EXPECT_BAD(ts, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,\"8\"]}}", 8, "must be two", NULL);
    EXPECT_BAD(ts, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[-8,0]}}", 8, "must be two", NULL);
    EXPECT_BAD(ts, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":{\"0\":8}}}", 8, "must be two", NULL);
    EXPECT_BAD(ts, "{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,0]}}", 8,
               "tensor 'a': data_offsets begin 8 is after end 0", NULL);
    EXPECT_BAD(ts, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 8,
               "tensor 'a': data_offsets end 12 is past the end of the data (8 bytes)", NULL);
    EXPECT_BAD(ts, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,9223372036854775807]}}", 8,
               "past the end of the data", NULL);
    EXPECT_BAD(ts, "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 16,
               "tensor 'a': data_offsets span 8 bytes but F32 shape needs 12", NULL);
    EXPECT_BAD(ts, "{\"a\":{\"dtype\":\"BF16\",\"shape\":[],\"data_offsets\":[0,0]}}", 8, "span 0 bytes", "needs 2");
    EXPECT_BAD(ts, "{\"a\":" T_OK ",\"b\":{\"dtype\":\"I32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12,
               "tensors 'a' [0, 8) and 'b' [4, 12) overlap", NULL);
    EXPECT_BAD(ts, "{\"b\":" T_OK ",\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[7,8]}}", 8,
               "'b' [0, 8) and 'a' [7, 8) overlap", NULL);
    EXPECT_BAD(ts, "{\"b\":" T_OK ",\"a\":" T_OK "}", 8, "overlap", NULL); /* two names, same bytes */
}

/* Bytes of the data buffer that belong to no tensor (the format forbids holes). */
static void test_bad_coverage(struct test_state *ts)
{
    EXPECT_BAD(ts, "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8,
               "data bytes [0, 4) before tensor 'a' belong to no tensor", NULL);
    EXPECT_BAD(ts, "{\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]},"
                   "\"b\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[6,8]}}", 8,
               "data bytes [4, 6) before tensor 'b'", NULL);
    EXPECT_BAD(ts, "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 8,
               "data buffer has 8 bytes but the tensors end at byte 4", NULL);
    EXPECT_BAD(ts, "{}", 1, "data buffer has 1 bytes but the tensors end at byte 0", NULL);
    /* An empty tensor inside another one's bytes. */
    EXPECT_BAD(ts, "{\"e\":{\"dtype\":\"F32\",\"shape\":[0,5],\"data_offsets\":[4,4]},\"a\":" T_OK "}", 8,
               "tensors 'a' [0, 8) and 'e' [4, 4) overlap", NULL);
}

/* Things that look odd but are valid: empty tensors at tensor boundaries, ignored extra fields. */
static void test_valid_edge_cases(struct test_state *ts)
{
    static const struct {
        const char *header;
        size_t data_len;
    } ok[] = {
        {"{}", 0},
        {"{\"e\":{\"dtype\":\"F32\",\"shape\":[0,5],\"data_offsets\":[8,8]},\"a\":" T_OK "}", 8},
        {"{\"e\":{\"dtype\":\"F32\",\"shape\":[0,5],\"data_offsets\":[0,0]},\"a\":" T_OK "}", 8},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],\"extra\":1}}", 8},
        {"{\"z\":{\"dtype\":\"F64\",\"shape\":[],\"data_offsets\":[0,8]},\"__metadata__\":{}}", 8},
        {"{\"a\":{\"dtype\":\"BOOL\",\"shape\":[9223372036854775807,0],\"data_offsets\":[0,0]}}", 0},
        {"  {\"a\":" T_OK "}  \n\t ", 8},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        size_t len;
        unsigned char *b = image(strlen(ok[i].header), ok[i].header, strlen(ok[i].header), ok[i].data_len, &len);
        struct st_set s;
        struct mmupt_err err;
        CHECK_MSG(ts, st_open_buffer(&s, "ok.safetensors", b, len, &err) == 0, "%s: %s", ok[i].header, err.msg);
        st_close(&s);
        free(b);
    }
}

static void test_bad_metadata(struct test_state *ts)
{
    EXPECT_BAD(ts, "{\"__metadata__\":[\"a\"]}", 0, "__metadata__ must be an object of strings", NULL);
    EXPECT_BAD(ts, "{\"__metadata__\":{\"format\":1}}", 0, "__metadata__ value of 'format' must be a string", NULL);
    EXPECT_BAD(ts, "{\"__metadata__\":{\"k\":{\"x\":\"y\"}}}", 0, "value of 'k' must be a string", NULL);
    EXPECT_BAD(ts, "{\"__metadata__\":{\"k\":\"a\\u0000b\"}}", 0, "value of 'k' contains a NUL character", NULL);
    EXPECT_BAD(ts, "{\"__metadata__\":{\"k\\u0000\":\"v\"}}", 0, "NUL byte in object key", NULL);
}

/* ---- files, directories and sharded models ---- */

static void expect_open_error(struct test_state *ts, int line, const char *path, const char *p1, const char *p2)
{
    struct st_set s;
    memset(&s, 0x5a, sizeof s);
    struct mmupt_err err = {{0}};
    int rc = st_open(&s, path, &err);
    CHECK_MSG(ts, rc == -1, "line %d: %s opened", line, path);
    CHECK_MSG(ts, strstr(err.msg, p1), "line %d: '%s' not in '%s'", line, p1, err.msg);
    if (p2) CHECK_MSG(ts, strstr(err.msg, p2), "line %d: '%s' not in '%s'", line, p2, err.msg);
    CHECK_MSG(ts, s.n == 0 && s.tensors == NULL && s.files == NULL, "line %d: set not zeroed", line);
    if (rc == 0) st_close(&s);
}

#define EXPECT_OPEN_ERROR(ts, path, p1, p2) expect_open_error(ts, __LINE__, path, p1, p2)

static void test_bad_paths(struct test_state *ts)
{
    char path[256];
    snprintf(path, sizeof path, "%s/missing.safetensors", scratch);
    EXPECT_OPEN_ERROR(ts, path, path, "cannot open: No such file");
    snprintf(path, sizeof path, "%s/emptydir", scratch);
    mkdir(path, 0755);
    EXPECT_OPEN_ERROR(ts, path, "emptydir: directory holds neither model.safetensors.index.json nor model.safetensors",
                      NULL);
    snprintf(path, sizeof path, "%s/zero.safetensors", scratch);
    write_text(path, "", 0);
    EXPECT_OPEN_ERROR(ts, path, "zero.safetensors: file too short (0 bytes)", NULL);
    snprintf(path, sizeof path, "%s/garbage.safetensors", scratch);
    write_text(path, "\x10\0\0\0\0\0\0\0{\"a\":3}         ", 24);
    EXPECT_OPEN_ERROR(ts, path, "garbage.safetensors: tensor 'a': entry must be an object", NULL);
}

/* A sharded model in DIR: shards {w0 w1} {w2}, and the index text each test replaces. */
static void write_model(struct test_state *ts, const char *dir)
{
    static const float v[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    const struct st_entry e[] = {{"w0", ST_F32, 1, {4}, v}, {"w1", ST_F32, 1, {2}, v}, {"w2", ST_F32, 1, {8}, v}};
    struct mmupt_err err;
    CHECK_MSG(ts, st_write_model(dir, e, 3, 24, &err) == 0, "%s", err.msg);
}

#define S1 "\"model-00001-of-00002.safetensors\""
#define S2 "\"model-00002-of-00002.safetensors\""

static void test_bad_index(struct test_state *ts)
{
    char dir[256], index[320], extra[320];
    snprintf(dir, sizeof dir, "%s/model", scratch);
    write_model(ts, dir);
    snprintf(index, sizeof index, "%s/model.safetensors.index.json", dir);
    struct st_set s;
    struct mmupt_err err;
    CHECK_MSG(ts, st_open(&s, dir, &err) == 0 && st_count(&s) == 3, "%s", err.msg);
    st_close(&s);

    static const struct {
        const char *text, *p1, *p2;
    } cases[] = {
        {"{\"weight_map\": ", "model.safetensors.index.json:1:", "invalid JSON"},
        {"[]", "model.safetensors.index.json: must be a JSON object", NULL},
        {"{\"metadata\": {}}", "model.safetensors.index.json: missing field 'weight_map'", NULL},
        {"{\"weight_map\": [" S1 "]}", "weight_map must be an object", NULL},
        {"{\"weight_map\": {\"w0\": 1}}", "weight_map: tensor 'w0': shard must be a string", NULL},
        {"{\"weight_map\": {\"w0\": \"../model/model-00001-of-00002.safetensors\"}}", "tensor 'w0': shard '../model/",
         "no '/', no '..'"},
        {"{\"weight_map\": {\"w0\": \"sub/x.safetensors\"}}", "shard 'sub/x.safetensors' must be a plain file name",
         NULL},
        {"{\"weight_map\": {\"w0\": \"..\"}}", "shard '..' must be", NULL},
        {"{\"weight_map\": {\"w0\": \"\"}}", "shard '' must be", NULL},
        {"{\"weight_map\": {\"w\\u0000\": " S1 "}}", "NUL byte in object key", NULL},
        {"{\"weight_map\": {\"w0\": \"x\\u0000.safetensors\"}}", "tensor 'w0': shard 'x' must be a plain file name",
         NULL},
        {"{\"weight_map\": {\"w0\": " S1 ", \"w1\": " S1 ", \"w2\": \"gone.safetensors\"}}", "gone.safetensors",
         "cannot open: No such file"},
        {"{\"weight_map\": {\"w0\": " S1 ", \"w1\": " S1 ", \"w2\": " S2 ", \"w3\": " S2 "}}",
         "weight_map lists tensor 'w3' in shard model-00002-of-00002.safetensors, which does not contain it", NULL},
        {"{\"weight_map\": {\"w0\": " S1 ", \"w1\": " S2 ", \"w2\": " S2 "}}",
         "weight_map puts tensor 'w1' in shard model-00002-of-00002.safetensors, but it is in",
         "model-00001-of-00002.safetensors"},
        {"{\"weight_map\": {\"w0\": " S1 ", \"w2\": " S2 "}}",
         "tensor 'w1' of shard", "model-00001-of-00002.safetensors is missing from weight_map"},
        {"{\"weight_map\": {\"w0\": " S1 ", \"w1\": " S1 ", \"w2\": " S2 ", \"x\": \"extra.safetensors\"}}",
         "tensor 'w2' found in two shards", "extra.safetensors"},
        {"{\"weight_map\": {\"w0\": " S1 ", \"w1\": " S1 ", \"w2\": " S2 ", \"y\": \"broken.safetensors\"}}",
         "model.safetensors.index.json: ", "broken.safetensors: header length is 0"},
    };
    /* extra.safetensors repeats w2 (plus its own x); broken.safetensors has a zero header length. */
    static const float v[8] = {0};
    const struct st_entry ex[] = {{"x", ST_F32, 1, {1}, v}, {"w2", ST_F32, 1, {8}, v}};
    snprintf(extra, sizeof extra, "%s/extra.safetensors", dir);
    CHECK_MSG(ts, st_write_file(extra, ex, 2, NULL, &err) == 0, "%s", err.msg);
    snprintf(extra, sizeof extra, "%s/broken.safetensors", dir);
    write_text(extra, "\0\0\0\0\0\0\0\0{}", 10);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        CHECK(ts, write_text(index, cases[i].text, strlen(cases[i].text)) == 0);
        expect_open_error(ts, (int)i, dir, cases[i].p1, cases[i].p2);
        /* Messages about the index name it; the path form opens the same way. */
        expect_open_error(ts, (int)i, index, cases[i].p1, cases[i].p2);
    }
    /* The index wins over a model.safetensors next to it, so a broken index is not bypassed. */
    char single[320];
    snprintf(single, sizeof single, "%s/model.safetensors", dir);
    const struct st_entry one[] = {{"w0", ST_F32, 1, {4}, v}};
    CHECK(ts, st_write_file(single, one, 1, NULL, &err) == 0);
    const char *ghost = "{\"weight_map\": {\"w0\": " S1 ", \"w1\": " S1 ", \"w2\": " S2 ", \"w3\": " S2 "}}";
    CHECK(ts, write_text(index, ghost, strlen(ghost)) == 0);
    EXPECT_OPEN_ERROR(ts, dir, "model.safetensors.index.json", "does not contain it");
}

int main(void)
{
    snprintf(scratch, sizeof scratch, "/tmp/mmupt-stbad-XXXXXX");
    if (!mkdtemp(scratch)) {
        perror("mkdtemp");
        return 1;
    }
    struct test_state ts = {0};
    RUN(&ts, test_good_baseline);
    RUN(&ts, test_bad_length_field);
    RUN(&ts, test_bad_header_text);
    RUN(&ts, test_bad_tensor_entry);
    RUN(&ts, test_bad_shape);
    RUN(&ts, test_bad_offsets);
    RUN(&ts, test_bad_coverage);
    RUN(&ts, test_valid_edge_cases);
    RUN(&ts, test_bad_metadata);
    RUN(&ts, test_bad_paths);
    RUN(&ts, test_bad_index);
    rm_tree(scratch);
    return test_summary(&ts);
}
