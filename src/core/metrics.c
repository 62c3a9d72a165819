/* JSON Lines metrics writer (see metrics.h). */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mmupt/metrics.h"
#include "mmupt/strutil.h"

static void grow(char **out, size_t *cap, size_t need)
{
    if (need <= *cap) return;
    size_t c = *cap ? *cap : 256;
    while (c < need) c *= 2;
    char *p = realloc(*out, c);
    if (!p) MMUPT_DIE("out of memory (%zu bytes)", c);
    *out = p;
    *cap = c;
}

static void append(char **out, size_t *len, size_t *cap, const char *s, size_t n)
{
    grow(out, cap, *len + n + 1);
    memcpy(*out + *len, s, n);
    *len += n;
    (*out)[*len] = '\0';
}

size_t json_append_string(char **out, size_t *len, size_t *cap, const char *s)
{
    append(out, len, cap, "\"", 1);
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        char esc[8];
        if (*p == '"' || *p == '\\') {
            esc[0] = '\\';
            esc[1] = (char)*p;
            append(out, len, cap, esc, 2);
            p++;
        } else if (*p == '\n' || *p == '\t' || *p == '\r') {
            esc[0] = '\\';
            esc[1] = *p == '\n' ? 'n' : (*p == '\t' ? 't' : 'r');
            append(out, len, cap, esc, 2);
            p++;
        } else if (*p < 0x20) {
            snprintf(esc, sizeof esc, "\\u%04x", *p);
            append(out, len, cap, esc, 6);
            p++;
        } else {
            size_t n = utf8_seq_len(p, strlen((const char *)p));
            if (n == 0) {
                append(out, len, cap, "\xEF\xBF\xBD", 3); /* U+FFFD for a bad byte */
                p++;
            } else {
                append(out, len, cap, (const char *)p, n);
                p += n;
            }
        }
    }
    append(out, len, cap, "\"", 1);
    return *len;
}

int metrics_open(struct metrics_writer *w, const char *path, struct mmupt_err *err)
{
    memset(w, 0, sizeof *w);
    if (strcmp(path, "-") == 0) {
        w->f = stdout;
        return 0;
    }
    w->f = fopen(path, "a");
    if (!w->f) return mmupt_fail(err, "%s: cannot open for append: %s", path, strerror(errno));
    return 0;
}

void metrics_close(struct metrics_writer *w)
{
    if (w->f && w->f != stdout) fclose(w->f);
    free(w->line);
    memset(w, 0, sizeof *w);
}

void metrics_begin(struct metrics_writer *w)
{
    w->len = 0;
    w->n_fields = 0;
    w->open_record = 1;
    append(&w->line, &w->len, &w->cap, "{", 1);
}

static void key(struct metrics_writer *w, const char *k)
{
    MMUPT_CHECK(w->open_record);
    if (w->n_fields++) append(&w->line, &w->len, &w->cap, ", ", 2);
    json_append_string(&w->line, &w->len, &w->cap, k);
    append(&w->line, &w->len, &w->cap, ": ", 2);
}

void metrics_i64(struct metrics_writer *w, const char *k, int64_t value)
{
    char buf[32];
    key(w, k);
    int n = snprintf(buf, sizeof buf, "%" PRId64, value);
    append(&w->line, &w->len, &w->cap, buf, (size_t)n);
}

void metrics_f64(struct metrics_writer *w, const char *k, double value)
{
    char buf[40];
    key(w, k);
    if (isfinite(value)) str_format_double(value, buf, sizeof buf);
    else strcpy(buf, "null");
    append(&w->line, &w->len, &w->cap, buf, strlen(buf));
}

void metrics_str(struct metrics_writer *w, const char *k, const char *value)
{
    key(w, k);
    json_append_string(&w->line, &w->len, &w->cap, value);
}

int metrics_end(struct metrics_writer *w, struct mmupt_err *err)
{
    MMUPT_CHECK(w->open_record);
    w->open_record = 0;
    append(&w->line, &w->len, &w->cap, "}\n", 2);
    if (fwrite(w->line, 1, w->len, w->f) != w->len || fflush(w->f) != 0)
        return mmupt_fail(err, "metrics: write failed: %s", strerror(errno));
    return 0;
}
