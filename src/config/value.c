/* Field values: text -> typed member (with range checks) and typed member -> text. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "internal.h"
#include "mmupt/strutil.h"

static int utf8_valid(const char *s);

int cfg_text_is_null(const char *text)
{
    return text[0] == '\0' || strcmp(text, "~") == 0 || strcmp(text, "null") == 0 ||
           strcmp(text, "Null") == 0 || strcmp(text, "NULL") == 0;
}

size_t cfg_section_len(const char *key)
{
    const char *dot = strchr(key, '.');
    return dot ? (size_t)(dot - key) : strlen(key);
}

/* YAML 1.1 booleans, as PyYAML (and so EasyR1/verl configs) accept them. */
static int parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = {"true", "yes", "on"};
    static const char *const no[] = {"false", "no", "off"};
    for (int i = 0; i < 3; i++) {
        if (strcasecmp(s, yes[i]) == 0) { *out = true; return 0; }
        if (strcasecmp(s, no[i]) == 0) { *out = false; return 0; }
    }
    return -1;
}

static int parse_int(const char *s, int64_t *out)
{
    if (!*s || isspace((unsigned char)*s)) return -1;
    errno = 0;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (errno == ERANGE) return -2;
    if (*end != '\0') return -1;
    *out = v;
    return 0;
}

static int parse_float(const char *s, double *out)
{
    if (!*s || isspace((unsigned char)*s)) return -1;
    /* strtod also reads "nan", "inf" and hex floats; a config has no use for them. */
    for (const char *p = s; *p; p++)
        if (!strchr("0123456789+-.eE", *p)) return -1;
    errno = 0;
    char *end;
    double v = strtod(s, &end);
    if (*end != '\0' || end == s) return -1;
    if (!isfinite(v)) return -2;
    *out = v;
    return 0;
}

static int check_range(const struct cfg_field *f, double v, const char *text, struct mmupt_err *err)
{
    bool low_ok = (f->flags & CFG_MIN_EXCLUSIVE) ? v > f->min : v >= f->min;
    if (low_ok && v <= f->max) return 0;
    char range[128];
    cfg_describe_range(f, range, sizeof range);
    return mmupt_fail(err, "%s is out of range: must be %s", text, range);
}

/* Shown in type errors: the offending text, cut and sanitised so a binary blob stays one line. */
static void excerpt(const char *text, char *out, size_t n)
{
    size_t j = 0;
    for (size_t i = 0; text[i] && j + 4 < n; i++)
        out[j++] = (text[i] >= 32 && text[i] < 127) ? text[i] : '?';
    if (strlen(text) > j) { out[j++] = '.'; out[j++] = '.'; out[j++] = '.'; }
    out[j] = '\0';
}

static int set_int(int64_t *dst, const struct cfg_field *f, const char *text, struct mmupt_err *err)
{
    int64_t v;
    char ex[64];
    excerpt(text, ex, sizeof ex);
    int rc = parse_int(text, &v);
    if (rc == -2) return mmupt_fail(err, "%s does not fit in a 64-bit integer", ex);
    if (rc) return mmupt_fail(err, "expected an integer, got '%s'", ex);
    if (check_range(f, (double)v, ex, err)) return -1;
    *dst = v;
    return 0;
}

int cfg_set_list(struct cfg *c, const struct cfg_field *f, const char *const *items, size_t n,
                 struct mmupt_err *err)
{
    if (n > CFG_LIST_MAX) return mmupt_fail(err, "too many items (%zu; at most %d)", n, CFG_LIST_MAX);
    struct cfg_int_list tmp = {.n = (int)n};
    for (size_t i = 0; i < n; i++) {
        if (set_int(&tmp.v[i], f, items[i], err)) {
            mmupt_err_prefix(err, "item %zu", i + 1);
            return -1;
        }
    }
    *(struct cfg_int_list *)cfg_member(c, f) = tmp;
    return 0;
}

/* A flow list as text: "[1, 2, 3]" or "1,2,3" or "[]" (defaults and command-line overrides). */
static int set_list_text(struct cfg *c, const struct cfg_field *f, const char *text, struct mmupt_err *err)
{
    char buf[CFG_STR_MAX];
    if (strlen(text) >= sizeof buf) return mmupt_fail(err, "list text too long");
    strcpy(buf, text);
    char *s = str_trim(buf);
    size_t len = strlen(s);
    if (len && s[0] == '[') {
        if (s[len - 1] != ']') return mmupt_fail(err, "list '%s' has no closing ']'", s);
        s[len - 1] = '\0';
        s = str_trim(s + 1);
    }
    const char *items[CFG_LIST_MAX + 1];
    size_t n = 0;
    if (*s) {
        for (char *tok = s;; n++) {
            char *comma = strchr(tok, ',');
            if (comma) *comma = '\0';
            if (n > CFG_LIST_MAX) return mmupt_fail(err, "too many items (at most %d)", CFG_LIST_MAX);
            items[n] = str_trim(tok);
            if (!comma) { n++; break; }
            tok = comma + 1;
        }
    }
    return cfg_set_list(c, f, items, n, err);
}

int cfg_set_scalar(struct cfg *c, const struct cfg_field *f, const char *text, bool quoted, struct mmupt_err *err)
{
    void *dst = cfg_member(c, f);
    char ex[64];
    excerpt(text, ex, sizeof ex);
    if (f->type == CFG_STRING) {
        if (!quoted && cfg_text_is_null(text)) text = "";
        if (strlen(text) >= CFG_STR_MAX)
            return mmupt_fail(err, "string too long (%zu bytes; at most %d)", strlen(text), CFG_STR_MAX - 1);
        if (!utf8_valid(text)) return mmupt_fail(err, "'%s' is not valid UTF-8", ex);
        strcpy(dst, text);
        return 0;
    }
    if (!quoted && cfg_text_is_null(text)) return mmupt_fail(err, "missing value");
    switch (f->type) {
    case CFG_BOOL:
        if (parse_bool(text, dst)) return mmupt_fail(err, "expected true or false, got '%s'", ex);
        return 0;
    case CFG_INT:
        return set_int(dst, f, text, err);
    case CFG_FLOAT: {
        double v;
        int rc = parse_float(text, &v);
        if (rc == -2) return mmupt_fail(err, "%s is not a finite number", ex);
        if (rc) return mmupt_fail(err, "expected a number, got '%s'", ex);
        if (check_range(f, v, ex, err)) return -1;
        *(double *)dst = v;
        return 0;
    }
    case CFG_ENUM:
        for (int i = 0; f->choices[i]; i++) {
            if (strcmp(f->choices[i], text) == 0) {
                *(int *)dst = i;
                return 0;
            }
        }
        {
            char set[512];
            cfg_describe_type(f, set, sizeof set);
            return mmupt_fail(err, "'%s' is not %s", ex, set);
        }
    case CFG_INT_LIST:
        return set_list_text(c, f, text, err);
    case CFG_STRING:
        break;
    }
    return mmupt_fail(err, "internal: unknown field type");
}

void cfg_defaults(struct cfg *c)
{
    memset(c, 0, sizeof *c);
    for (size_t i = 0; i < cfg_n_fields; i++) {
        struct mmupt_err err;
        /* A default that fails its own range is a bug in the table (and a unit test catches it). */
        if (cfg_set_scalar(c, &cfg_fields[i], cfg_fields[i].def, true, &err))
            MMUPT_DIE("config table: default of %s: %s", cfg_fields[i].key, err.msg);
    }
}

/* Shortest text that strtod reads back to exactly v, always with a '.' or exponent so YAML
 * readers (PyYAML needs the dot) see a float: 1 -> "1.0", 2e-6 -> "2.0e-06". */
static void format_float(double v, char *out, size_t n)
{
    char buf[64];
    str_format_double(v, buf, sizeof buf);
    char *e = strchr(buf, 'e');
    if (!strchr(buf, '.')) {
        char mant[64];
        size_t mlen = e ? (size_t)(e - buf) : strlen(buf);
        memcpy(mant, buf, mlen);
        mant[mlen] = '\0';
        snprintf(out, n, "%s.0%s", mant, e ? e : "");
    } else {
        snprintf(out, n, "%s", buf);
    }
}

/* Decode the valid UTF-8 sequence at s (n bytes, from utf8_seq_len) to its code point. */
static unsigned utf8_decode(const unsigned char *s, size_t n)
{
    static const unsigned lead_mask[] = {0, 0x7F, 0x1F, 0x0F, 0x07};
    unsigned cp = s[0] & lead_mask[n];
    for (size_t i = 1; i < n; i++) cp = (cp << 6) | (s[i] & 0x3F);
    return cp;
}

/* A double-quoted YAML string that reads back to exactly s. Everything YAML would not keep as it
 * is gets an escape: C0 and C1 controls, DEL, and the characters a YAML reader folds or drops
 * (U+2028, U+2029, BOM, U+FFFE/U+FFFF). s is valid UTF-8 (cfg_set_scalar ensures it). */
static void format_string(const char *s, char *out, size_t n)
{
    size_t j = 0;
    if (n < 3) { if (n) out[0] = '\0'; return; }
    out[j++] = '"';
    const unsigned char *p = (const unsigned char *)s;
    size_t left = strlen(s);
    while (left && j + 12 < n) {
        size_t len = utf8_seq_len(p, left);
        if (len == 0) len = 1; /* unreachable for checked strings; never loop forever */
        unsigned cp = len > 1 ? utf8_decode(p, len) : p[0];
        if (cp == '"' || cp == '\\') j += (size_t)snprintf(out + j, n - j, "\\%c", (char)cp);
        else if (cp == '\n') j += (size_t)snprintf(out + j, n - j, "\\n");
        else if (cp == '\t') j += (size_t)snprintf(out + j, n - j, "\\t");
        else if (cp < 0x20 || (cp >= 0x7F && cp <= 0x9F)) j += (size_t)snprintf(out + j, n - j, "\\x%02x", cp);
        else if (cp == 0x2028 || cp == 0x2029 || cp == 0xFEFF || cp == 0xFFFE || cp == 0xFFFF)
            j += (size_t)snprintf(out + j, n - j, "\\u%04x", cp);
        else {
            memcpy(out + j, p, len);
            j += len;
        }
        p += len;
        left -= len;
    }
    out[j++] = '"';
    out[j] = '\0';
}

static int utf8_valid(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t left = strlen(s);
    while (left) {
        size_t len = utf8_seq_len(p, left);
        if (len == 0) return 0;
        p += len;
        left -= len;
    }
    return 1;
}

void cfg_format_value(const struct cfg *c, const struct cfg_field *f, char *out, size_t n)
{
    const void *src = cfg_member_const(c, f);
    switch (f->type) {
    case CFG_BOOL: snprintf(out, n, "%s", *(const bool *)src ? "true" : "false"); return;
    case CFG_INT: snprintf(out, n, "%lld", (long long)*(const int64_t *)src); return;
    case CFG_FLOAT: format_float(*(const double *)src, out, n); return;
    case CFG_STRING: format_string(src, out, n); return;
    case CFG_ENUM: snprintf(out, n, "%s", cfg_enum_name(f, *(const int *)src)); return;
    case CFG_INT_LIST: {
        const struct cfg_int_list *l = src;
        size_t j = (size_t)snprintf(out, n, "[");
        for (int i = 0; i < l->n && j < n; i++)
            j += (size_t)snprintf(out + j, n - j, "%s%lld", i ? ", " : "", (long long)l->v[i]);
        if (j < n) snprintf(out + j, n - j, "]");
        return;
    }
    }
}

bool cfg_equal(const struct cfg *a, const struct cfg *b)
{
    /* Field by field: padding bytes and unused string tails do not matter. */
    for (size_t i = 0; i < cfg_n_fields; i++) {
        const struct cfg_field *f = &cfg_fields[i];
        const void *x = cfg_member_const(a, f), *y = cfg_member_const(b, f);
        bool same = false;
        switch (f->type) {
        case CFG_BOOL: same = *(const bool *)x == *(const bool *)y; break;
        case CFG_INT: same = *(const int64_t *)x == *(const int64_t *)y; break;
        case CFG_FLOAT: same = *(const double *)x == *(const double *)y; break;
        case CFG_STRING: same = strcmp(x, y) == 0; break;
        case CFG_ENUM: same = *(const int *)x == *(const int *)y; break;
        case CFG_INT_LIST: {
            const struct cfg_int_list *l = x, *m = y;
            same = l->n == m->n && memcmp(l->v, m->v, (size_t)l->n * sizeof l->v[0]) == 0;
            break;
        }
        }
        if (!same) return false;
    }
    return true;
}

static void format_bound(const struct cfg_field *f, double v, char *out, size_t n)
{
    if (f->type == CFG_INT || f->type == CFG_INT_LIST) snprintf(out, n, "%.0f", v);
    else snprintf(out, n, "%g", v);
}

void cfg_describe_range(const struct cfg_field *f, char *out, size_t n)
{
    if (f->type == CFG_ENUM) { cfg_describe_type(f, out, n); return; }
    if (f->type != CFG_INT && f->type != CFG_FLOAT && f->type != CFG_INT_LIST) { snprintf(out, n, "-"); return; }
    char lo[48], hi[48];
    format_bound(f, f->min, lo, sizeof lo);
    format_bound(f, f->max, hi, sizeof hi);
    bool open_lo = f->flags & CFG_MIN_EXCLUSIVE;
    if (f->max >= 9.0e15) snprintf(out, n, "%s %s", open_lo ? ">" : ">=", lo);
    else snprintf(out, n, "%s%s, %s]", open_lo ? "(" : "[", lo, hi);
}

void cfg_describe_type(const struct cfg_field *f, char *out, size_t n)
{
    switch (f->type) {
    case CFG_BOOL: snprintf(out, n, "bool"); return;
    case CFG_INT: snprintf(out, n, "int"); return;
    case CFG_FLOAT: snprintf(out, n, "float"); return;
    case CFG_STRING: snprintf(out, n, "string"); return;
    case CFG_INT_LIST: snprintf(out, n, "list of int (at most %d)", CFG_LIST_MAX); return;
    case CFG_ENUM: {
        size_t j = (size_t)snprintf(out, n, "one of: ");
        for (int i = 0; f->choices[i] && j < n; i++)
            j += (size_t)snprintf(out + j, n - j, "%s%s", i ? ", " : "", f->choices[i]);
        return;
    }
    }
}
