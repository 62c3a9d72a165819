/* libFuzzer target for the safetensors reader (and, through the round trip, the writer).
 * Oracle beyond "no crash, no sanitizer report":
 *   - a rejected input leaves the set zeroed and the message names the file;
 *   - every tensor of an accepted input lies inside the input, sorted by name, with
 *     nbytes = numel * dtype size and numel = product of the shape;
 *   - writing the set with st_write_file and reading that file back gives the same tensors
 *     (names, dtypes, shapes, bytes) and the same metadata. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mmupt/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FAIL(...)                                                                                                      \
    do {                                                                                                               \
        fprintf(stderr, "fuzz_safetensors: " __VA_ARGS__);                                                             \
        fputc('\n', stderr);                                                                                           \
        abort();                                                                                                       \
    } while (0)

static void check_tensors(const struct st_set *s, const uint8_t *data, size_t size)
{
    for (size_t i = 0; i < st_count(s); i++) {
        const struct st_tensor *t = st_at(s, i);
        if (i > 0 && strcmp(st_at(s, i - 1)->name, t->name) >= 0) FAIL("not sorted at %zu", i);
        if (st_find(s, t->name) != t) FAIL("st_find misses '%s'", t->name);
        const uint8_t *p = t->data;
        if (p < data + 8 || p > data + size || t->nbytes > (size_t)(data + size - p)) FAIL("'%s' outside the input", t->name);
        if (t->ndim < 0 || t->ndim > ST_MAX_DIMS) FAIL("'%s' ndim %d", t->name, t->ndim);
        int64_t numel = 1;
        for (int d = 0; d < t->ndim; d++) numel = t->shape[d] == 0 ? 0 : numel * t->shape[d];
        if (numel != t->numel || (size_t)numel * st_dtype_size(t->dtype) != t->nbytes) FAIL("'%s' sizes", t->name);
        volatile uint8_t sink = 0;
        for (size_t k = 0; k < t->nbytes; k++) sink ^= p[k]; /* ASan checks every byte is readable */
        (void)sink;
    }
}

static void check_same(const struct st_set *a, const struct st_set *b)
{
    if (st_count(a) != st_count(b)) FAIL("%zu tensors written, %zu read back", st_count(a), st_count(b));
    for (size_t i = 0; i < st_count(a); i++) {
        const struct st_tensor *x = st_at(a, i), *y = st_at(b, i);
        if (strcmp(x->name, y->name) || x->dtype != y->dtype || x->ndim != y->ndim || x->nbytes != y->nbytes ||
            memcmp(x->shape, y->shape, (size_t)x->ndim * sizeof x->shape[0]) ||
            (x->nbytes && memcmp(x->data, y->data, x->nbytes)))
            FAIL("tensor '%s' differs after the round trip", x->name);
    }
    if (st_metadata_count(a) != st_metadata_count(b)) FAIL("metadata count differs");
    for (size_t i = 0; i < st_metadata_count(a); i++) {
        const char *k = st_metadata_key(a, i), *v = st_metadata(b, k);
        if (!v || strcmp(v, st_metadata(a, k))) FAIL("metadata '%s' differs", k);
    }
}

static void roundtrip(const struct st_set *s)
{
    size_t n = st_count(s), m = st_metadata_count(s);
    struct st_entry *e = calloc(n + 1, sizeof *e);
    const char **meta = calloc(2 * m + 1, sizeof *meta);
    for (size_t i = 0; i < n; i++) {
        const struct st_tensor *t = st_at(s, i);
        e[i] = (struct st_entry){.name = t->name, .dtype = t->dtype, .ndim = t->ndim, .data = t->data};
        memcpy(e[i].shape, t->shape, sizeof e[i].shape);
    }
    for (size_t i = 0; i < m; i++) {
        meta[2 * i] = st_metadata_key(s, i);
        meta[2 * i + 1] = st_metadata(s, meta[2 * i]);
    }
    char path[64];
    snprintf(path, sizeof path, "/tmp/mmupt-fuzz-st-%d.safetensors", (int)getpid());
    struct mmupt_err err;
    if (st_write_file(path, e, n, m ? meta : NULL, &err)) FAIL("cannot write back: %s", err.msg);
    struct st_set back;
    if (st_open(&back, path, &err)) FAIL("written file does not read back: %s", err.msg);
    check_same(s, &back);
    st_close(&back);
    unlink(path);
    free(e);
    free(meta);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct st_set s;
    struct mmupt_err err;
    if (st_open_buffer(&s, "fuzz.safetensors", data, size, &err) != 0) {
        if (s.n || s.tensors || s.files || s.meta) FAIL("set not zeroed after an error");
        if (strncmp(err.msg, "fuzz.safetensors", 16) != 0) FAIL("message does not name the file: %s", err.msg);
        return 0;
    }
    check_tensors(&s, data, size);
    roundtrip(&s);
    st_close(&s);
    return 0;
}
