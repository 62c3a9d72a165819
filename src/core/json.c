/* jansson with the project's error convention (see json.h). */
#include <stdlib.h>
#include <string.h>

#include "mmupt/json.h"
#include "mmupt/strutil.h"

int json_parse_text(const char *name, const char *text, size_t len, json_t **out, struct mmupt_err *err)
{
    /* jansson lets a raw NUL byte through in places (right after a number); JSON has no use for
     * one, so refuse it here with its position. Escaped \u0000 inside strings stays allowed. */
    const char *nul = memchr(text, '\0', len);
    if (nul) {
        int line = 1, col = 1;
        for (const char *p = text; p < nul; p++, col++)
            if (*p == '\n') line++, col = 0;
        return mmupt_fail(err, "%s:%d:%d: invalid JSON: NUL byte", name, line, col);
    }
    json_error_t je;
    *out = json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &je);
    if (!*out) return mmupt_fail(err, "%s:%d:%d: invalid JSON: %s", name, je.line, je.column, je.text);
    return 0;
}

int json_parse_file(const char *path, size_t max_bytes, json_t **out, struct mmupt_err *err)
{
    char *text;
    size_t len;
    if (file_read_all(path, max_bytes, &text, &len, err)) return -1;
    int rc = json_parse_text(path, text, len, out, err);
    free(text);
    return rc;
}

static const json_t *get(const json_t *obj, const char *key, const char *where, struct mmupt_err *err)
{
    const json_t *v = json_is_object(obj) ? json_object_get(obj, key) : NULL;
    if (!v) mmupt_fail(err, "%s: missing field '%s'", where, key);
    return v;
}

int json_get_int(const json_t *obj, const char *key, int64_t *out, const char *where, struct mmupt_err *err)
{
    const json_t *v = get(obj, key, where, err);
    if (!v) return -1;
    if (!json_is_integer(v)) return mmupt_fail(err, "%s: field '%s' must be an integer", where, key);
    *out = (int64_t)json_integer_value(v);
    return 0;
}

int json_get_number(const json_t *obj, const char *key, double *out, const char *where, struct mmupt_err *err)
{
    const json_t *v = get(obj, key, where, err);
    if (!v) return -1;
    if (!json_is_number(v)) return mmupt_fail(err, "%s: field '%s' must be a number", where, key);
    *out = json_number_value(v);
    return 0;
}

int json_get_bool(const json_t *obj, const char *key, int *out, const char *where, struct mmupt_err *err)
{
    const json_t *v = get(obj, key, where, err);
    if (!v) return -1;
    if (!json_is_boolean(v)) return mmupt_fail(err, "%s: field '%s' must be true or false", where, key);
    *out = json_is_true(v);
    return 0;
}

int json_get_string(const json_t *obj, const char *key, const char **out, const char *where, struct mmupt_err *err)
{
    const json_t *v = get(obj, key, where, err);
    if (!v) return -1;
    if (!json_is_string(v)) return mmupt_fail(err, "%s: field '%s' must be a string", where, key);
    *out = json_string_value(v);
    return 0;
}

int json_get_int_array(const json_t *obj, const char *key, int64_t *out, int max, int *n, const char *where,
                       struct mmupt_err *err)
{
    const json_t *v = get(obj, key, where, err);
    if (!v) return -1;
    if (!json_is_array(v)) return mmupt_fail(err, "%s: field '%s' must be a list of integers", where, key);
    size_t len = json_array_size(v);
    if (len > (size_t)max) return mmupt_fail(err, "%s: field '%s' has %zu items (at most %d)", where, key, len, max);
    for (size_t i = 0; i < len; i++) {
        const json_t *x = json_array_get(v, i);
        if (!json_is_integer(x)) return mmupt_fail(err, "%s: field '%s' item %zu must be an integer", where, key, i);
        out[i] = (int64_t)json_integer_value(x);
    }
    *n = (int)len;
    return 0;
}
