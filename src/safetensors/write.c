/* Writing safetensors files and sharded models.
 *
 * Every file is written to a temporary name in its own directory, fsync'ed and renamed over the
 * target, so a crash or a full disk leaves either the old file or the new one, never half of one;
 * a reader that has the old file mapped keeps its (now unlinked) copy. Entries are validated
 * before anything is written, so bad input leaves no files behind. */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"
#include "mmupt/json.h"
#include "mmupt/strutil.h"

#define INDEX_NAME "model.safetensors.index.json"
#define SINGLE_NAME "model.safetensors"
#define MAX_SHARDS 99999 /* the 5-digit file names */

/* ---- atomic output file ---- */

struct out_file {
    FILE *f;
    char *tmp;
    const char *path;
};

static int out_open(struct out_file *o, const char *path, struct mmupt_err *err)
{
    size_t n = strlen(path);
    o->path = path;
    o->tmp = mmupt_xmalloc(n + sizeof ".tmp.XXXXXX");
    memcpy(o->tmp, path, n);
    memcpy(o->tmp + n, ".tmp.XXXXXX", sizeof ".tmp.XXXXXX");
    int fd = mkstemp(o->tmp);
    if (fd < 0) {
        int e = errno;
        free(o->tmp);
        return mmupt_fail(err, "%s: cannot create a temporary file next to it: %s", path, strerror(e));
    }
    /* mkstemp creates 0600; weight files are normally readable by everyone, as the HF library's. */
    if (fchmod(fd, 0644) != 0 || !(o->f = fdopen(fd, "wb"))) {
        int e = errno;
        close(fd);
        unlink(o->tmp);
        free(o->tmp);
        return mmupt_fail(err, "%s: cannot prepare the temporary file: %s", path, strerror(e));
    }
    return 0;
}

static void out_abort(struct out_file *o)
{
    fclose(o->f);
    unlink(o->tmp);
    free(o->tmp);
}

static int out_write(struct out_file *o, const void *p, size_t n, struct mmupt_err *err)
{
    if (n > 0 && fwrite(p, 1, n, o->f) != n)
        return mmupt_fail(err, "%s: write failed: %s", o->path, strerror(errno));
    return 0;
}

/* fsync the directory so the rename itself survives a crash. Best effort: some file systems
 * refuse fsync on directories, and the data is already safe at this point. */
static void sync_parent(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir = slash ? strndup(path, (size_t)(slash - path + (slash == path))) : strdup(".");
    if (!dir) MMUPT_DIE("out of memory");
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
    free(dir);
}

/* Flush, fsync, close and rename; on failure the temporary file is removed. */
static int out_commit(struct out_file *o, struct mmupt_err *err)
{
    const char *what = NULL;
    int e = 0;
    if (fflush(o->f) != 0) {
        what = "write";
        e = errno;
    } else if (fsync(fileno(o->f)) != 0) {
        what = "fsync";
        e = errno;
    }
    if (fclose(o->f) != 0 && !what) {
        what = "close";
        e = errno;
    }
    if (!what && rename(o->tmp, o->path) != 0) {
        what = "rename";
        e = errno;
    }
    if (what) {
        unlink(o->tmp);
        free(o->tmp);
        return mmupt_fail(err, "%s: %s failed: %s", o->path, what, strerror(e));
    }
    sync_parent(o->path);
    free(o->tmp);
    return 0;
}

/* ---- validation ---- */

static bool valid_utf8(const char *s)
{
    size_t n = strlen(s);
    for (size_t i = 0; i < n;) {
        size_t k = utf8_seq_len((const unsigned char *)s + i, n - i);
        if (k == 0) return false;
        i += k;
    }
    return true;
}

static int check_entry(const char *path, size_t i, const struct st_entry *e, size_t *nbytes, struct mmupt_err *err)
{
    if (!e->name) return mmupt_fail(err, "%s: entry %zu has no name", path, i);
    const char *nm = e->name;
    if (!valid_utf8(nm)) return mmupt_fail(err, "%s: tensor %zu: name is not valid UTF-8", path, i);
    if (strcmp(nm, "__metadata__") == 0) return mmupt_fail(err, "%s: tensor name '__metadata__' is reserved", path);
    if ((unsigned)e->dtype >= ST_N_DTYPES)
        return mmupt_fail(err, "%s: tensor '%.200s': unknown dtype %d", path, nm, (int)e->dtype);
    if (e->ndim < 0 || e->ndim > ST_MAX_DIMS)
        return mmupt_fail(err, "%s: tensor '%.200s': %d dimensions (0 to %d)", path, nm, e->ndim, ST_MAX_DIMS);
    int64_t numel = 1;
    bool empty = false;
    for (int d = 0; d < e->ndim; d++) {
        if (e->shape[d] < 0)
            return mmupt_fail(err, "%s: tensor '%.200s': negative dimension %lld", path, nm, (long long)e->shape[d]);
        empty |= e->shape[d] == 0;
    }
    for (int d = 0; d < e->ndim && !empty; d++) {
        if (numel > INT64_MAX / e->shape[d]) return mmupt_fail(err, "%s: tensor '%.200s': shape overflows", path, nm);
        numel *= e->shape[d];
    }
    if (empty) numel = 0;
    if (numel > INT64_MAX / (int64_t)st_dtype_size(e->dtype))
        return mmupt_fail(err, "%s: tensor '%.200s': shape overflows the byte count", path, nm);
    *nbytes = (size_t)numel * st_dtype_size(e->dtype);
    if (*nbytes > 0 && !e->data) return mmupt_fail(err, "%s: tensor '%.200s': data is NULL", path, nm);
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Each entry valid, names unique; nbytes[i] receives each tensor's size and *total their sum. */
static int check_entries(const char *path, const struct st_entry *e, size_t n, size_t *nbytes, size_t *total,
                         struct mmupt_err *err)
{
    *total = 0;
    for (size_t i = 0; i < n; i++) {
        if (check_entry(path, i, &e[i], &nbytes[i], err)) return -1;
        /* Offsets are JSON integers (int64), so the whole data buffer must fit one. */
        if (nbytes[i] > (size_t)INT64_MAX - *total) return mmupt_fail(err, "%s: total size overflows", path);
        *total += nbytes[i];
    }
    const char **names = mmupt_xcalloc(n + 1, sizeof *names);
    for (size_t i = 0; i < n; i++) names[i] = e[i].name;
    qsort(names, n, sizeof *names, cmp_str);
    int rc = 0;
    for (size_t i = 1; i < n && rc == 0; i++)
        if (strcmp(names[i - 1], names[i]) == 0)
            rc = mmupt_fail(err, "%s: duplicate tensor name '%.200s'", path, names[i]);
    free(names);
    return rc;
}

/* ---- one file ---- */

static int build_metadata(const char *path, const char *const *metadata, json_t *header, struct mmupt_err *err)
{
    if (!metadata) return 0;
    json_t *m = json_object();
    MMUPT_CHECK(m != NULL);
    json_object_set_new(header, "__metadata__", m);
    for (size_t i = 0; metadata[i]; i += 2) {
        const char *k = metadata[i], *v = metadata[i + 1];
        if (!v) return mmupt_fail(err, "%s: metadata key '%.200s' has no value", path, k);
        if (!valid_utf8(k) || !valid_utf8(v))
            return mmupt_fail(err, "%s: metadata '%.200s' is not valid UTF-8", path, k);
        if (json_object_get(m, k)) return mmupt_fail(err, "%s: duplicate metadata key '%.200s'", path, k);
        MMUPT_CHECK(json_object_set_new(m, k, json_string(v)) == 0);
    }
    return 0;
}

static json_t *tensor_json(const struct st_entry *e, size_t begin, size_t nbytes)
{
    json_t *shape = json_array();
    MMUPT_CHECK(shape != NULL);
    for (int d = 0; d < e->ndim; d++) MMUPT_CHECK(json_array_append_new(shape, json_integer(e->shape[d])) == 0);
    json_t *t = json_pack("{s:s, s:o, s:[I, I]}", "dtype", st_dtype_name(e->dtype), "shape", shape, "data_offsets",
                          (json_int_t)begin, (json_int_t)(begin + nbytes));
    MMUPT_CHECK(t != NULL);
    return t;
}

/* The header text, padded with spaces to a multiple of 8 bytes so the data buffer starts 8-byte
 * aligned in a mapping, as the HF library writes it. */
static char *header_text(const struct st_entry *e, size_t n, const size_t *nbytes, const char *const *metadata,
                         const char *path, size_t *len, struct mmupt_err *err)
{
    json_t *h = json_object();
    MMUPT_CHECK(h != NULL);
    if (build_metadata(path, metadata, h, err)) {
        json_decref(h);
        return NULL;
    }
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        MMUPT_CHECK(json_object_set_new(h, e[i].name, tensor_json(&e[i], off, nbytes[i])) == 0);
        off += nbytes[i];
    }
    char *text = json_dumps(h, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(h);
    MMUPT_CHECK(text != NULL);
    size_t raw = strlen(text), padded = (raw + 7) & ~(size_t)7;
    char *out = mmupt_xmalloc(padded + 1);
    memcpy(out, text, raw);
    memset(out + raw, ' ', padded - raw);
    out[padded] = '\0';
    free(text);
    *len = padded;
    return out;
}

static int write_checked(const char *path, const struct st_entry *e, size_t n, const size_t *nbytes,
                         const char *const *metadata, struct mmupt_err *err)
{
    size_t hlen;
    char *header = header_text(e, n, nbytes, metadata, path, &hlen, err);
    if (!header) return -1;
    if (hlen > ST_MAX_HEADER_BYTES) {
        free(header);
        return mmupt_fail(err, "%s: header of %zu bytes is larger than readers accept (%u)", path, hlen,
                          ST_MAX_HEADER_BYTES);
    }
    unsigned char len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)((uint64_t)hlen >> (8 * i));
    struct out_file o;
    if (out_open(&o, path, err)) {
        free(header);
        return -1;
    }
    int rc = (out_write(&o, len8, 8, err) || out_write(&o, header, hlen, err)) ? -1 : 0;
    for (size_t i = 0; i < n && rc == 0; i++) rc = out_write(&o, e[i].data, nbytes[i], err);
    free(header);
    if (rc) {
        out_abort(&o);
        return -1;
    }
    return out_commit(&o, err);
}

int st_write_file(const char *path, const struct st_entry *e, size_t n, const char *const *metadata,
                  struct mmupt_err *err)
{
    size_t *nbytes = mmupt_xcalloc(n + 1, sizeof *nbytes), total;
    int rc = check_entries(path, e, n, nbytes, &total, err);
    if (rc == 0) rc = write_checked(path, e, n, nbytes, metadata, err);
    free(nbytes);
    return rc;
}

/* ---- a model directory ---- */

static int remove_if_present(const char *dir, const char *name, struct mmupt_err *err)
{
    size_t a = strlen(dir), b = strlen(name);
    char *p = mmupt_xmalloc(a + b + 2);
    snprintf(p, a + b + 2, "%s/%s", dir, name);
    int rc = 0;
    if (unlink(p) != 0 && errno != ENOENT) rc = mmupt_fail(err, "%s: cannot remove stale file: %s", p, strerror(errno));
    free(p);
    return rc;
}

static int ensure_dir(const char *dir, struct mmupt_err *err)
{
    if (mkdir(dir, 0777) == 0) return 0;
    struct stat st;
    if (errno == EEXIST && stat(dir, &st) == 0 && S_ISDIR(st.st_mode)) return 0;
    return mmupt_fail(err, "%s: cannot create directory: %s", dir, errno == EEXIST ? "not a directory" : strerror(errno));
}

static const char *const pt_metadata[] = {"format", "pt", NULL};

static int write_index(const char *dir, const struct st_entry *e, size_t n, const size_t *shard, size_t n_shards,
                       size_t total, struct mmupt_err *err)
{
    json_t *wm = json_object();
    MMUPT_CHECK(wm != NULL);
    char file[64];
    for (size_t i = 0; i < n; i++) {
        snprintf(file, sizeof file, "model-%05zu-of-%05zu.safetensors", shard[i] + 1, n_shards);
        MMUPT_CHECK(json_object_set_new(wm, e[i].name, json_string(file)) == 0);
    }
    json_t *root = json_pack("{s:{s:I}, s:o}", "metadata", "total_size", (json_int_t)total, "weight_map", wm);
    MMUPT_CHECK(root != NULL);
    char *text = json_dumps(root, JSON_INDENT(2) | JSON_SORT_KEYS);
    json_decref(root);
    MMUPT_CHECK(text != NULL);
    char path[4096];
    int rc;
    struct out_file o;
    if (snprintf(path, sizeof path, "%s/%s", dir, INDEX_NAME) >= (int)sizeof path)
        rc = mmupt_fail(err, "%s: path too long", dir);
    else if ((rc = out_open(&o, path, err)) == 0) {
        if (out_write(&o, text, strlen(text), err) || out_write(&o, "\n", 1, err)) {
            out_abort(&o);
            rc = -1;
        } else {
            rc = out_commit(&o, err);
        }
    }
    free(text);
    return rc;
}

/* Shards in order: a new one when the next non-empty tensor would overflow the current one. */
static int write_shards(const char *dir, const struct st_entry *e, size_t n, const size_t *nbytes, size_t total,
                        size_t max_shard_bytes, struct mmupt_err *err)
{
    size_t *shard = mmupt_xcalloc(n + 1, sizeof *shard), k = 0, cur = 0;
    for (size_t i = 0; i < n; i++) {
        if (cur > 0 && nbytes[i] > 0 && cur + nbytes[i] > max_shard_bytes) k++, cur = 0;
        shard[i] = k;
        cur += nbytes[i];
    }
    size_t n_shards = k + 1;
    int rc = 0;
    if (n_shards > MAX_SHARDS) rc = mmupt_fail(err, "%s: %zu shards needed (at most %d)", dir, n_shards, MAX_SHARDS);
    char path[4096];
    for (size_t s = 0, i = 0; rc == 0 && s < n_shards; s++) {
        size_t j = i;
        while (j < n && shard[j] == s) j++;
        if (snprintf(path, sizeof path, "%s/model-%05zu-of-%05zu.safetensors", dir, s + 1, n_shards) >=
            (int)sizeof path)
            rc = mmupt_fail(err, "%s: path too long", dir);
        else
            rc = write_checked(path, e + i, j - i, nbytes + i, pt_metadata, err);
        i = j;
    }
    if (rc == 0) rc = write_index(dir, e, n, shard, n_shards, total, err);
    free(shard);
    return rc;
}

int st_write_model(const char *dir, const struct st_entry *e, size_t n, size_t max_shard_bytes,
                   struct mmupt_err *err)
{
    size_t *nbytes = mmupt_xcalloc(n + 1, sizeof *nbytes), total;
    int rc = check_entries(dir, e, n, nbytes, &total, err);
    if (rc == 0) rc = ensure_dir(dir, err);
    if (rc == 0 && total <= max_shard_bytes) {
        char path[4096];
        if (snprintf(path, sizeof path, "%s/%s", dir, SINGLE_NAME) >= (int)sizeof path)
            rc = mmupt_fail(err, "%s: path too long", dir);
        else
            rc = write_checked(path, e, n, nbytes, pt_metadata, err);
        /* The index would win over the new file in st_open and in transformers. */
        if (rc == 0) rc = remove_if_present(dir, INDEX_NAME, err);
    } else if (rc == 0) {
        rc = write_shards(dir, e, n, nbytes, total, max_shard_bytes, err);
        if (rc == 0) rc = remove_if_present(dir, SINGLE_NAME, err);
    }
    free(nbytes);
    return rc;
}
