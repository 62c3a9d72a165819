/* The small files of a run directory: an evaluation's JSON, run.tsv and times.tsv. */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mmupt/json.h"
#include "mmupt/report.h"
#include "internal.h"
#include "mmupt/strutil.h"

void report_eval_free(struct report_eval *e)
{
    free(e->sources);
    memset(e, 0, sizeof *e);
}

/* A member that is a share in [0, 1] or null (NaN): eval writes null where it had nothing to count. */
static int get_share(const json_t *o, const char *key, double *out, const char *name, const char *path,
                     struct mmupt_err *err)
{
    const json_t *v = json_object_get(o, key);
    if (!v) return mmupt_fail(err, "%s: %s.%s: missing", name, path, key);
    if (json_is_null(v)) {
        *out = NAN;
        return 0;
    }
    if (!json_is_number(v)) return mmupt_fail(err, "%s: %s.%s: not a number or null", name, path, key);
    *out = json_number_value(v);
    if (!(*out >= 0.0 && *out <= 1.0))
        return mmupt_fail(err, "%s: %s.%s: %g is not a share in [0, 1]", name, path, key, *out);
    return 0;
}

int report_get_count(const json_t *o, const char *key, int64_t *out, const char *name, const char *path,
                     struct mmupt_err *err)
{
    const json_t *v = json_object_get(o, key);
    if (!v) return mmupt_fail(err, "%s: %s.%s: missing", name, path, key);
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return mmupt_fail(err, "%s: %s.%s: not a non-negative integer", name, path, key);
    *out = (int64_t)json_integer_value(v);
    return 0;
}

const json_t *report_get_object(const json_t *o, const char *key, const char *name, struct mmupt_err *err)
{
    const json_t *v = json_object_get(o, key);
    if (!v) mmupt_fail(err, "%s: %s: missing", name, key);
    else if (!json_is_object(v)) mmupt_fail(err, "%s: %s: not an object", name, key);
    return v && json_is_object(v) ? v : NULL;
}

static int read_sources(const char *name, const json_t *by, struct report_eval *e, struct mmupt_err *err)
{
    size_t n = json_object_size(by);
    if (n > REPORT_MAX_SOURCES)
        return mmupt_fail(err, "%s: by_source: %zu kinds, more than %d", name, n, REPORT_MAX_SOURCES);
    e->sources = mmupt_xcalloc(n ? n : 1, sizeof *e->sources);
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)by, key, v) {
        struct report_source *s = &e->sources[e->n_sources];
        char path[REPORT_MAX_NAME + 16];
        if (str_copy(s->name, sizeof s->name, key))
            return mmupt_fail(err, "%s: by_source: a kind's name is longer than %d bytes", name, REPORT_MAX_NAME - 1);
        snprintf(path, sizeof path, "by_source.%s", key);
        if (!json_is_object(v)) return mmupt_fail(err, "%s: %s: not an object", name, path);
        if (report_get_count(v, "items", &s->items, name, path, err) ||
            get_share(v, "greedy_pass1", &s->greedy, name, path, err) || get_share(v, "maj", &s->maj, name, path, err))
            return -1;
        e->n_sources++;
    }
    return 0;
}

static int read_eval(const char *name, const json_t *root, struct report_eval *e, struct mmupt_err *err)
{
    if (!json_is_object(root)) return mmupt_fail(err, "%s: not a JSON object (an `mmupt eval --json` file)", name);
    const json_t *settings = report_get_object(root, "settings", name, err), *overall, *by;
    if (!settings) return -1;
    const json_t *g = json_object_get(settings, "G");
    if (!g || !json_is_integer(g) || json_integer_value(g) < 1 || json_integer_value(g) > 1000000)
        return mmupt_fail(err, "%s: settings.G: %s", name, g ? "not an integer in [1, 1000000]" : "missing");
    e->G = (int)json_integer_value(g);
    if (!(overall = report_get_object(root, "overall", name, err))) return -1;
    if (report_get_count(overall, "items", &e->items, name, "overall", err) ||
        get_share(overall, "greedy_pass1", &e->greedy, name, "overall", err) ||
        get_share(overall, "pass1", &e->pass1, name, "overall", err) ||
        get_share(overall, "maj", &e->maj, name, "overall", err))
        return -1;
    if (!(by = report_get_object(root, "by_source", name, err))) return -1;
    return read_sources(name, by, e, err);
}

int report_parse_eval(const char *name, const char *text, size_t len, struct report_eval *out, struct mmupt_err *err)
{
    memset(out, 0, sizeof *out);
    json_t *root;
    if (json_parse_text(name, text, len, &root, err)) return -1;
    int rc = read_eval(name, root, out, err);
    json_decref(root);
    if (rc) report_eval_free(out);
    return rc;
}

/* The next line of text (without its '\n' or a '\r' before it); 0 at the end. */
static int next_line(const char *text, size_t len, size_t *pos, const char **s, size_t *n)
{
    if (*pos >= len) return 0;
    *s = text + *pos;
    const char *nl = memchr(*s, '\n', len - *pos);
    *n = nl ? (size_t)(nl - *s) : len - *pos;
    *pos += *n + (nl != NULL);
    if (*n && (*s)[*n - 1] == '\r') (*n)--;
    return 1;
}

/* Text that goes into the markdown verbatim: valid UTF-8 without control characters (a tab is
 * allowed in values). Returns the offending byte's offset, or -1 when the text is fine. */
static long bad_byte(const char *s, size_t n, int allow_tab)
{
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        if ((c < 0x20 && !(allow_tab && c == '\t')) || c == 0x7f) return (long)i;
        size_t k = c < 0x80 ? 1 : utf8_seq_len((const unsigned char *)s + i, n - i);
        if (k == 0) return (long)i;
        i += k;
    }
    return -1;
}

/* Split a line at its first tab into a key (copied into key[REPORT_MAX_NAME]) and the rest. */
static int split_tab(const char *name, int line, const char *s, size_t n, char *key, const char **rest,
                     size_t *rest_n, struct mmupt_err *err)
{
    const char *tab = memchr(s, '\t', n);
    if (!tab || tab == s) return mmupt_fail(err, "%s:%d: expected NAME<TAB>VALUE", name, line);
    size_t kn = (size_t)(tab - s);
    if (kn >= REPORT_MAX_NAME)
        return mmupt_fail(err, "%s:%d: name longer than %d bytes", name, line, REPORT_MAX_NAME - 1);
    long b = bad_byte(s, kn, 0);
    if (b >= 0)
        return mmupt_fail(err, "%s:%d:%ld: a control character or invalid UTF-8 in the name", name, line, b + 1);
    memcpy(key, s, kn);
    key[kn] = '\0';
    *rest = tab + 1;
    *rest_n = n - kn - 1;
    return 0;
}

static int blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t') return 0;
    return 1;
}

int report_parse_info(const char *name, const char *text, size_t len, struct report_info **out, int *n,
                      struct mmupt_err *err)
{
    struct report_info *info = mmupt_xcalloc(REPORT_MAX_INFO, sizeof *info);
    int count = 0, line = 0;
    size_t pos = 0, ln, vn;
    const char *s, *v;
    while (next_line(text, len, &pos, &s, &ln)) {
        line++;
        if (blank(s, ln)) continue;
        if (count == REPORT_MAX_INFO) {
            mmupt_fail(err, "%s:%d: more than %d lines", name, line, REPORT_MAX_INFO);
            goto fail;
        }
        struct report_info *e = &info[count];
        if (split_tab(name, line, s, ln, e->key, &v, &vn, err)) goto fail;
        if (vn >= REPORT_MAX_VALUE) {
            mmupt_fail(err, "%s:%d: %s: value longer than %d bytes", name, line, e->key, REPORT_MAX_VALUE - 1);
            goto fail;
        }
        long b = bad_byte(v, vn, 1);
        if (b >= 0) {
            mmupt_fail(err, "%s:%d: %s: a control character or invalid UTF-8 in the value", name, line, e->key);
            goto fail;
        }
        memcpy(e->value, v, vn);
        e->value[vn] = '\0';
        count++;
    }
    *out = info;
    *n = count;
    return 0;
fail:
    free(info);
    *out = NULL;
    *n = 0;
    return -1;
}

static int parse_seconds(const char *name, int line, const char *phase, const char *v, size_t vn, double *out,
                         struct mmupt_err *err)
{
    char buf[64];
    if (vn == 0 || vn >= sizeof buf)
        return mmupt_fail(err, "%s:%d: %s: expected a number of seconds", name, line, phase);
    memcpy(buf, v, vn);
    buf[vn] = '\0';
    char *end;
    errno = 0;
    double x = strtod(buf, &end);
    if (end == buf || *str_trim(end) || errno || !isfinite(x) || x < 0)
        return mmupt_fail(err, "%s:%d: %s: '%s' is not a number of seconds >= 0", name, line, phase, buf);
    *out = x;
    return 0;
}

int report_parse_times(const char *name, const char *text, size_t len, struct report_phase *out, int *n,
                       struct mmupt_err *err)
{
    int count = 0, line = 0;
    size_t pos = 0, ln, vn;
    const char *s, *v;
    *n = 0;
    while (next_line(text, len, &pos, &s, &ln)) {
        line++;
        if (blank(s, ln)) continue;
        if (count == REPORT_MAX_PHASES)
            return mmupt_fail(err, "%s:%d: more than %d phases", name, line, REPORT_MAX_PHASES);
        struct report_phase *p = &out[count];
        if (split_tab(name, line, s, ln, p->name, &v, &vn, err) ||
            parse_seconds(name, line, p->name, v, vn, &p->seconds, err))
            return -1;
        for (int i = 0; i < count; i++)
            if (strcmp(out[i].name, p->name) == 0)
                return mmupt_fail(err, "%s:%d: %s: given twice", name, line, p->name);
        count++;
    }
    if (count == 0) return mmupt_fail(err, "%s: no phase<TAB>seconds lines", name);
    *n = count;
    return 0;
}
