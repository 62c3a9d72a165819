/* Parsing and validating one safetensors file image, and the lookups on a parsed set.
 *
 * Every number in the header is checked before it is used: the header length against the file,
 * shapes against int64 overflow, offsets against the data buffer and against each other (the
 * tensors must tile the data buffer exactly). The
 * data is never copied; tensors point into the caller's buffer or the mapping. */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "internal.h"
#include "mmupt/json.h"
#include "mmupt/strutil.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors data is little-endian and is used in place: a big-endian host needs byte swapping"
#endif

static const char *const dtype_names[ST_N_DTYPES] = {"F64", "F32", "F16", "BF16", "I64",
                                                     "I32", "I16", "I8",  "U8",   "BOOL"};
static const size_t dtype_sizes[ST_N_DTYPES] = {8, 4, 2, 2, 8, 4, 2, 1, 1, 1};

size_t st_dtype_size(enum st_dtype dt)
{
    MMUPT_CHECK((unsigned)dt < ST_N_DTYPES);
    return dtype_sizes[dt];
}

const char *st_dtype_name(enum st_dtype dt)
{
    return (unsigned)dt < ST_N_DTYPES ? dtype_names[dt] : "?";
}

int st_dtype_parse(const char *name)
{
    for (int i = 0; i < ST_N_DTYPES; i++)
        if (strcmp(name, dtype_names[i]) == 0) return i;
    return -1;
}

void *st_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q) MMUPT_DIE("out of memory (%zu bytes)", n);
    return q;
}

static char *dup_bytes(const char *s, size_t n)
{
    char *d = mmupt_xmalloc(n + 1);
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

size_t st_add_file(struct st_set *set, const char *path, void *map, size_t map_len)
{
    set->files = st_xrealloc(set->files, (set->n_files + 1) * sizeof *set->files);
    struct st_file *f = &set->files[set->n_files];
    f->path = dup_bytes(path, strlen(path));
    f->map = map;
    f->map_len = map_len;
    return set->n_files++;
}

/* What the checks of one file need to know, and the names messages use. */
struct image {
    const char *file;
    uint64_t data_len;          /* bytes in the data buffer */
    const unsigned char *data;  /* the data buffer */
};

/* A tensor's place in the data buffer, for the overlap check. */
struct span {
    uint64_t begin, end;
    const char *name;
};

static int shown(size_t len)
{
    return (int)(len < ST_NAME_SHOWN ? len : ST_NAME_SHOWN);
}

/* shape: a list of at most ST_MAX_DIMS non-negative integers whose product fits int64. */
static int parse_shape(const struct image *im, const char *name, size_t nlen, const json_t *shape,
                       struct st_tensor *t, struct mmupt_err *err)
{
    if (!shape) return mmupt_fail(err, "%s: tensor '%.*s': missing field 'shape'", im->file, shown(nlen), name);
    if (!json_is_array(shape))
        return mmupt_fail(err, "%s: tensor '%.*s': shape must be a list of non-negative integers", im->file,
                          shown(nlen), name);
    size_t nd = json_array_size(shape);
    if (nd > ST_MAX_DIMS)
        return mmupt_fail(err, "%s: tensor '%.*s': shape has %zu dimensions (at most %d)", im->file, shown(nlen),
                          name, nd, ST_MAX_DIMS);
    bool has_zero = false;
    for (size_t i = 0; i < nd; i++) {
        const json_t *x = json_array_get(shape, i);
        if (!json_is_integer(x) || json_integer_value(x) < 0)
            return mmupt_fail(err, "%s: tensor '%.*s': shape item %zu must be a non-negative integer", im->file,
                              shown(nlen), name, i);
        t->shape[i] = (int64_t)json_integer_value(x);
        has_zero |= t->shape[i] == 0;
    }
    t->ndim = (int)nd;
    /* A zero dimension makes the tensor empty whatever the others are, so only non-empty shapes
     * can overflow. The byte count must fit too, since it is compared with the offsets. */
    int64_t numel = 1;
    for (size_t i = 0; i < nd && !has_zero; i++) {
        if (numel > INT64_MAX / t->shape[i])
            return mmupt_fail(err, "%s: tensor '%.*s': shape overflows the element count", im->file, shown(nlen),
                              name);
        numel *= t->shape[i];
    }
    t->numel = has_zero ? 0 : numel;
    if (t->numel > INT64_MAX / (int64_t)st_dtype_size(t->dtype))
        return mmupt_fail(err, "%s: tensor '%.*s': shape overflows the byte count", im->file, shown(nlen), name);
    t->nbytes = (size_t)t->numel * st_dtype_size(t->dtype);
    return 0;
}

/* data_offsets: [begin, end] within the data buffer, exactly numel * dtype size bytes apart. */
static int parse_offsets(const struct image *im, const char *name, size_t nlen, const json_t *off,
                         struct st_tensor *t, struct span *sp, struct mmupt_err *err)
{
    if (!off) return mmupt_fail(err, "%s: tensor '%.*s': missing field 'data_offsets'", im->file, shown(nlen), name);
    if (!json_is_array(off) || json_array_size(off) != 2 || !json_is_integer(json_array_get(off, 0)) ||
        !json_is_integer(json_array_get(off, 1)) || json_integer_value(json_array_get(off, 0)) < 0 ||
        json_integer_value(json_array_get(off, 1)) < 0)
        return mmupt_fail(err, "%s: tensor '%.*s': data_offsets must be two non-negative integers [begin, end]",
                          im->file, shown(nlen), name);
    uint64_t b = (uint64_t)json_integer_value(json_array_get(off, 0));
    uint64_t e = (uint64_t)json_integer_value(json_array_get(off, 1));
    if (b > e)
        return mmupt_fail(err, "%s: tensor '%.*s': data_offsets begin %llu is after end %llu", im->file,
                          shown(nlen), name, (unsigned long long)b, (unsigned long long)e);
    if (e > im->data_len)
        return mmupt_fail(err, "%s: tensor '%.*s': data_offsets end %llu is past the end of the data (%llu bytes)",
                          im->file, shown(nlen), name, (unsigned long long)e, (unsigned long long)im->data_len);
    if (e - b != (uint64_t)t->nbytes)
        return mmupt_fail(err, "%s: tensor '%.*s': data_offsets span %llu bytes but %s shape needs %zu", im->file,
                          shown(nlen), name, (unsigned long long)(e - b), st_dtype_name(t->dtype), t->nbytes);
    t->data = im->data + b;
    sp->begin = b;
    sp->end = e;
    return 0;
}

static int parse_tensor(const struct image *im, const char *name, size_t nlen, const json_t *v, struct st_tensor *t,
                        struct span *sp, struct mmupt_err *err)
{
    if (!json_is_object(v))
        return mmupt_fail(err, "%s: tensor '%.*s': entry must be an object with dtype, shape and data_offsets",
                          im->file, shown(nlen), name);
    /* Other fields are ignored, as the HF library does. */
    const json_t *dt = json_object_get(v, "dtype");
    if (!dt) return mmupt_fail(err, "%s: tensor '%.*s': missing field 'dtype'", im->file, shown(nlen), name);
    if (!json_is_string(dt))
        return mmupt_fail(err, "%s: tensor '%.*s': dtype must be a string", im->file, shown(nlen), name);
    /* The length check keeps "F32\u0000junk" from passing as "F32". */
    const char *dname = json_string_value(dt);
    int d = strlen(dname) == json_string_length(dt) ? st_dtype_parse(dname) : -1;
    if (d < 0)
        return mmupt_fail(err, "%s: tensor '%.*s': unknown dtype '%.20s' (known: F64 F32 F16 BF16 I64 I32 I16 I8 U8 "
                          "BOOL)", im->file, shown(nlen), name, dname);
    t->dtype = (enum st_dtype)d;
    if (parse_shape(im, name, nlen, json_object_get(v, "shape"), t, err)) return -1;
    if (parse_offsets(im, name, nlen, json_object_get(v, "data_offsets"), t, sp, err)) return -1;
    t->name = dup_bytes(name, nlen);
    return 0;
}

static int cmp_meta(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* __metadata__: an object of strings, copied into the set (sorted by key) when want is true. */
static int parse_metadata(struct st_set *set, const struct image *im, const json_t *m, bool want,
                          struct mmupt_err *err)
{
    if (!json_is_object(m)) return mmupt_fail(err, "%s: __metadata__ must be an object of strings", im->file);
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)m, key, v) {
        if (!json_is_string(v))
            return mmupt_fail(err, "%s: __metadata__ value of '%.*s' must be a string", im->file,
                              shown(strlen(key)), key);
        /* Values are C strings to callers; "\u0000" would cut one silently. */
        if (strlen(json_string_value(v)) != json_string_length(v))
            return mmupt_fail(err, "%s: __metadata__ value of '%.*s' contains a NUL character", im->file,
                              shown(strlen(key)), key);
    }
    if (!want) return 0;
    size_t n = json_object_size(m);
    set->meta = mmupt_xcalloc(2 * n + 1, sizeof *set->meta);
    json_object_foreach((json_t *)m, key, v) {
        set->meta[2 * set->n_meta] = dup_bytes(key, strlen(key));
        set->meta[2 * set->n_meta + 1] = dup_bytes(json_string_value(v), json_string_length(v));
        set->n_meta++;
    }
    qsort(set->meta, set->n_meta, 2 * sizeof *set->meta, cmp_meta);
    return 0;
}

static int cmp_span(const void *a, const void *b)
{
    const struct span *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end;
}

/* The tensors must tile the data buffer exactly, as the format requires (and the HF library
 * checks): two tensors sharing bytes would alias each other's storage, and bytes that belong to
 * no tensor are how polyglot files hide content. An empty tensor may sit between two others. */
static int check_layout(const struct image *im, struct span *sp, size_t n, struct mmupt_err *err)
{
    qsort(sp, n, sizeof *sp, cmp_span);
    uint64_t pos = 0;
    for (size_t i = 0; i < n; i++) {
        if (sp[i].begin < pos)
            return mmupt_fail(err, "%s: tensors '%.*s' [%llu, %llu) and '%.*s' [%llu, %llu) overlap", im->file,
                              shown(strlen(sp[i - 1].name)), sp[i - 1].name, (unsigned long long)sp[i - 1].begin,
                              (unsigned long long)sp[i - 1].end, shown(strlen(sp[i].name)), sp[i].name,
                              (unsigned long long)sp[i].begin, (unsigned long long)sp[i].end);
        if (sp[i].begin > pos)
            return mmupt_fail(err, "%s: data bytes [%llu, %llu) before tensor '%.*s' belong to no tensor", im->file,
                              (unsigned long long)pos, (unsigned long long)sp[i].begin, shown(strlen(sp[i].name)),
                              sp[i].name);
        pos = sp[i].end;
    }
    if (pos != im->data_len)
        return mmupt_fail(err, "%s: data buffer has %llu bytes but the tensors end at byte %llu", im->file,
                          (unsigned long long)im->data_len, (unsigned long long)pos);
    return 0;
}

/* The 8-byte length, the header's bounds and its encoding; on success *root holds the object. */
static int read_header(const char *file, const unsigned char *buf, size_t len, uint64_t *hlen, json_t **root,
                       struct mmupt_err *err)
{
    if (len < 8)
        return mmupt_fail(err, "%s: file too short (%zu bytes): a safetensors file starts with an 8-byte header length",
                          file, len);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = (n << 8) | buf[i];
    if (n == 0) return mmupt_fail(err, "%s: header length is 0", file);
    if (n > ST_MAX_HEADER_BYTES)
        return mmupt_fail(err, "%s: header length %llu is larger than the limit of %u bytes", file,
                          (unsigned long long)n, ST_MAX_HEADER_BYTES);
    if (n > len - 8)
        return mmupt_fail(err, "%s: header length %llu runs past the end of the file (%zu bytes)", file,
                          (unsigned long long)n, len);
    const unsigned char *h = buf + 8;
    for (size_t i = 0; i < n;) {
        /* Valid JSON never holds a raw NUL byte, but jansson's number reader skips over one. */
        if (h[i] == 0) return mmupt_fail(err, "%s: header contains a NUL byte (header byte %zu)", file, i);
        size_t k = utf8_seq_len(h + i, n - i);
        if (k == 0) return mmupt_fail(err, "%s: header is not valid UTF-8 (header byte %zu)", file, i);
        i += k;
    }
    if (json_parse_text(file, (const char *)h, n, root, err)) return -1;
    if (!json_is_object(*root)) {
        json_decref(*root);
        return mmupt_fail(err, "%s: header must be a JSON object", file);
    }
    *hlen = n;
    return 0;
}

int st_parse_image(struct st_set *set, size_t file_idx, const unsigned char *buf, size_t len, bool want_meta,
                   struct mmupt_err *err)
{
    const char *file = set->files[file_idx].path;
    uint64_t hlen = 0;
    json_t *root;
    if (read_header(file, buf, len, &hlen, &root, err)) return -1;
    struct image im = {file, len - 8 - hlen, buf + 8 + hlen};
    /* The object size bounds the tensor count, and jansson already holds that many entries. */
    size_t cap = json_object_size(root);
    set->tensors = st_xrealloc(set->tensors, (set->n + cap) * sizeof *set->tensors);
    struct span *spans = mmupt_xcalloc(cap + 1, sizeof *spans);
    size_t nsp = 0;
    int rc = 0;
    /* Keys are C strings: jansson refuses NUL bytes in object keys. */
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v) {
        if (strcmp(key, "__metadata__") == 0) {
            rc = parse_metadata(set, &im, v, want_meta, err);
        } else {
            struct st_tensor *t = &set->tensors[set->n];
            memset(t, 0, sizeof *t);
            t->file = file;
            rc = parse_tensor(&im, key, strlen(key), v, t, &spans[nsp], err);
            if (rc == 0) {
                spans[nsp++].name = t->name;
                set->n++;
            }
        }
        if (rc) break;
    }
    if (rc == 0) rc = check_layout(&im, spans, nsp, err);
    free(spans);
    json_decref(root);
    return rc;
}

static int cmp_tensor(const void *a, const void *b)
{
    const struct st_tensor *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : strcmp(x->file, y->file);
}

int st_sort_tensors(struct st_set *set, struct mmupt_err *err)
{
    qsort(set->tensors, set->n, sizeof *set->tensors, cmp_tensor);
    for (size_t i = 1; i < set->n; i++)
        if (strcmp(set->tensors[i - 1].name, set->tensors[i].name) == 0)
            return mmupt_fail(err, "tensor '%.*s' found in two shards: %s and %s", shown(strlen(set->tensors[i].name)),
                              set->tensors[i].name, set->tensors[i - 1].file, set->tensors[i].file);
    return 0;
}

int st_open_buffer(struct st_set *set, const char *name, const void *buf, size_t len, struct mmupt_err *err)
{
    struct st_set tmp = {0};
    size_t f = st_add_file(&tmp, name, NULL, 0);
    if (st_parse_image(&tmp, f, buf, len, true, err) || st_sort_tensors(&tmp, err)) {
        st_close(&tmp);
        memset(set, 0, sizeof *set);
        return -1;
    }
    *set = tmp;
    return 0;
}

void st_close(struct st_set *set)
{
    for (size_t i = 0; i < set->n; i++) free((char *)set->tensors[i].name);
    free(set->tensors);
    for (size_t i = 0; i < set->n_files; i++) {
        if (set->files[i].map) munmap(set->files[i].map, set->files[i].map_len);
        free(set->files[i].path);
    }
    free(set->files);
    for (size_t i = 0; i < 2 * set->n_meta; i++) free(set->meta[i]);
    free(set->meta);
    memset(set, 0, sizeof *set);
}

size_t st_count(const struct st_set *set)
{
    return set->n;
}

const struct st_tensor *st_at(const struct st_set *set, size_t i)
{
    return i < set->n ? &set->tensors[i] : NULL;
}

static int cmp_name_key(const void *key, const void *elem)
{
    return strcmp(key, ((const struct st_tensor *)elem)->name);
}

const struct st_tensor *st_find(const struct st_set *set, const char *name)
{
    if (set->n == 0) return NULL;
    return bsearch(name, set->tensors, set->n, sizeof *set->tensors, cmp_name_key);
}

size_t st_metadata_count(const struct st_set *set)
{
    return set->n_meta;
}

const char *st_metadata_key(const struct st_set *set, size_t i)
{
    return i < set->n_meta ? set->meta[2 * i] : NULL;
}

const char *st_metadata(const struct st_set *set, const char *key)
{
    size_t lo = 0, hi = set->n_meta;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(key, set->meta[2 * mid]);
        if (c == 0) return set->meta[2 * mid + 1];
        if (c < 0) hi = mid;
        else lo = mid + 1;
    }
    return NULL;
}
