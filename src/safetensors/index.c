/* st_open: a single .safetensors file, a sharded model's index, or a model directory.
 *
 * A sharded model is only trusted when its index and its shards agree exactly: every tensor of a
 * shard is in weight_map under that shard, every weight_map entry is found where it says, and no
 * tensor lives in two shards. Anything else means a half-copied or mixed-up checkpoint, which
 * would otherwise load silently with the wrong weights. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"
#include "mmupt/json.h"

#define INDEX_NAME "model.safetensors.index.json"
#define SINGLE_NAME "model.safetensors"

static char *join_path(const char *dir, const char *name)
{
    size_t a = strlen(dir), b = strlen(name);
    char *p = mmupt_xmalloc(a + b + 2);
    memcpy(p, dir, a);
    p[a] = '/';
    memcpy(p + a + 1, name, b + 1);
    return p;
}

/* mmap the whole file read-only. An empty file gets no mapping (mmap refuses length 0); the
 * parser then reports it as too short, like any other short file. */
static int map_file(const char *path, void **map, size_t *len, struct mmupt_err *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return mmupt_fail(err, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return mmupt_fail(err, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return mmupt_fail(err, "%s: not a regular file", path);
    }
    *map = NULL;
    *len = (size_t)st.st_size;
    if (*len > 0) {
        void *p = mmap(NULL, *len, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            int e = errno;
            close(fd);
            return mmupt_fail(err, "%s: cannot mmap: %s", path, strerror(e));
        }
        *map = p;
    }
    close(fd); /* the mapping keeps the file */
    return 0;
}

/* Map one file into the set and parse it. */
static int add_shard(struct st_set *set, const char *path, bool want_meta, struct mmupt_err *err)
{
    void *map = NULL;
    size_t len = 0;
    if (map_file(path, &map, &len, err)) return -1;
    size_t f = st_add_file(set, path, map, len);
    return st_parse_image(set, f, map, len, want_meta, err);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The shard names of weight_map, checked (plain file names in the index's directory), sorted and
 * unique; *n receives their count. The strings belong to the JSON. */
static int shard_names(const char *index, const json_t *wm, const char ***out, size_t *n, struct mmupt_err *err)
{
    const char **names = mmupt_xcalloc(json_object_size(wm) + 1, sizeof *names);
    size_t m = 0;
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)wm, key, v) {
        size_t klen = strlen(key); /* jansson refuses NUL bytes in keys */
        int shown = (int)(klen < ST_NAME_SHOWN ? klen : ST_NAME_SHOWN);
        const char *s = json_is_string(v) ? json_string_value(v) : NULL;
        int bad = 0;
        if (!s)
            bad = mmupt_fail(err, "%s: weight_map: tensor '%.*s': shard must be a string (a file name)", index,
                             shown, key);
        else if (strlen(s) != json_string_length(v) || s[0] == '\0' || strchr(s, '/') || strstr(s, ".."))
            bad = mmupt_fail(err, "%s: weight_map: tensor '%.*s': shard '%.200s' must be a plain file name in the "
                             "index's directory (no '/', no '..')", index, shown, key, s);
        if (bad) {
            free(names);
            return -1;
        }
        names[m++] = s;
    }
    qsort(names, m, sizeof *names, cmp_str);
    size_t u = 0;
    for (size_t i = 0; i < m; i++)
        if (u == 0 || strcmp(names[u - 1], names[i]) != 0) names[u++] = names[i];
    *out = names;
    *n = u;
    return 0;
}

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

/* Index and shards must describe the same tensors (see the top of this file). */
static int check_weight_map(const struct st_set *set, const char *index, const json_t *wm, struct mmupt_err *err)
{
    for (size_t i = 0; i < set->n; i++) {
        const struct st_tensor *t = &set->tensors[i];
        const json_t *v = json_object_get(wm, t->name);
        if (!v)
            return mmupt_fail(err, "%s: tensor '%.200s' of shard %s is missing from weight_map", index, t->name,
                              t->file);
        if (strcmp(json_string_value(v), base_name(t->file)) != 0)
            return mmupt_fail(err, "%s: weight_map puts tensor '%.200s' in shard %s, but it is in %s", index, t->name,
                              json_string_value(v), t->file);
    }
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)wm, key, v) {
        if (!st_find(set, key))
            return mmupt_fail(err, "%s: weight_map lists tensor '%.200s' in shard %s, which does not contain it",
                              index, key, json_string_value(v));
    }
    return 0;
}

static int open_index(struct st_set *set, const char *index, struct mmupt_err *err)
{
    json_t *root;
    if (json_parse_file(index, ST_MAX_HEADER_BYTES, &root, err)) return -1;
    const json_t *wm = json_is_object(root) ? json_object_get(root, "weight_map") : NULL;
    int rc = 0;
    if (!json_is_object(root)) rc = mmupt_fail(err, "%s: must be a JSON object", index);
    else if (!wm) rc = mmupt_fail(err, "%s: missing field 'weight_map'", index);
    else if (!json_is_object(wm)) rc = mmupt_fail(err, "%s: weight_map must be an object (tensor -> shard)", index);
    const char **shards = NULL;
    size_t n_shards = 0;
    if (rc == 0) rc = shard_names(index, wm, &shards, &n_shards, err);
    /* Shards are relative to the index's own directory, wherever the process runs. */
    const char *slash = strrchr(index, '/');
    char *dir = slash ? strndup(index, (size_t)(slash - index + (slash == index))) : strdup(".");
    if (!dir) MMUPT_DIE("out of memory");
    for (size_t i = 0; rc == 0 && i < n_shards; i++) {
        char *path = join_path(dir, shards[i]);
        rc = add_shard(set, path, i == 0, err);
        free(path);
        if (rc) mmupt_err_prefix(err, "%s", index);
    }
    if (rc == 0 && st_sort_tensors(set, err)) {
        rc = -1;
        mmupt_err_prefix(err, "%s", index);
    }
    if (rc == 0) rc = check_weight_map(set, index, wm, err);
    free(dir);
    free(shards);
    json_decref(root);
    return rc;
}

static int open_single(struct st_set *set, const char *path, struct mmupt_err *err)
{
    if (add_shard(set, path, true, err)) return -1;
    return st_sort_tensors(set, err);
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

static bool exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static int open_path(struct st_set *set, const char *path, struct mmupt_err *err)
{
    struct stat st;
    if (stat(path, &st) != 0) return mmupt_fail(err, "%s: cannot open: %s", path, strerror(errno));
    if (!S_ISDIR(st.st_mode)) return ends_with(path, ".json") ? open_index(set, path, err) : open_single(set, path, err);
    char *index = join_path(path, INDEX_NAME), *single = join_path(path, SINGLE_NAME);
    int rc;
    if (exists(index)) rc = open_index(set, index, err);
    else if (exists(single)) rc = open_single(set, single, err);
    else rc = mmupt_fail(err, "%s: directory holds neither %s nor %s", path, INDEX_NAME, SINGLE_NAME);
    free(index);
    free(single);
    return rc;
}

int st_open(struct st_set *set, const char *path, struct mmupt_err *err)
{
    struct st_set tmp = {0};
    if (open_path(&tmp, path, err)) {
        st_close(&tmp);
        memset(set, 0, sizeof *set);
        return -1;
    }
    *set = tmp;
    return 0;
}
