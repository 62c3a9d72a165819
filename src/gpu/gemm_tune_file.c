/* The GEMM tuning file (include/mmupt/gemm_tune_file.h): parse, write, look up. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mmupt/gemm_tune_file.h"
#include "mmupt/strutil.h"

#define GEMM_TUNE_MAGIC "mmupt-gemm-tune 1"
enum { GEMM_TUNE_LINE_MAX = 512, GEMM_TUNE_FIELDS = GEMM_TUNE_KEY_FIELDS + 2 };

static const char *const FIELD[GEMM_TUNE_FIELDS] = {"ta",   "tb",      "m",       "n",       "k",    "lda",
                                                    "ldb",  "ldc",     "ctype",   "beta",    "bias", "align_a",
                                                    "align_b", "align_c", "pick", "found"};

/* Where the parser is: the file's name and the line (1-based) for messages. */
struct tune_pos {
    const char *name;
    int line;
};

static int pos_fail(const struct tune_pos *p, struct mmupt_err *err, const char *what)
{
    return mmupt_fail(err, "%s:%d: %s", p->name, p->line, what);
}

static int power_of_two_le_256(long v)
{
    return v >= 1 && v <= 256 && (v & (v - 1)) == 0;
}

/* Whether field i may hold v (the entry's pick is checked against its found afterwards). */
static int field_ok(int i, long v)
{
    switch (i) {
    case 0: case 1: case 9: case 10: return v == 0 || v == 1; /* transposes, beta, bias */
    case 2: case 3: case 4: case 5: case 6: case 7: return v >= 1; /* sizes, leading dimensions */
    case 8: return v >= 0 && v <= 1000;                       /* a cudaDataType */
    case 11: case 12: case 13: return power_of_two_le_256(v);  /* alignments */
    case 14: return v >= 0;                                    /* pick */
    default: return v >= 1 && v <= GEMM_TUNE_MAX_FOUND;        /* found */
    }
}

/* One entry line: GEMM_TUNE_FIELDS decimal integers separated by blanks. */
static int parse_entry(const struct tune_pos *p, char *s, struct gemm_tune_entry *e, struct mmupt_err *err)
{
    int v[GEMM_TUNE_FIELDS];
    for (int i = 0; i < GEMM_TUNE_FIELDS; i++) {
        while (*s == ' ' || *s == '\t') s++;
        if (!*s) return mmupt_fail(err, "%s:%d: field %s: missing (an entry has %d numbers)", p->name, p->line,
                                   FIELD[i], GEMM_TUNE_FIELDS);
        char *end = s;
        errno = 0;
        long x = (*s >= '0' && *s <= '9') ? strtol(s, &end, 10) : 0;
        if (end == s || (*end && *end != ' ' && *end != '\t'))
            return mmupt_fail(err, "%s:%d: field %s: not a non-negative integer", p->name, p->line, FIELD[i]);
        if (errno == ERANGE || x > INT_MAX || !field_ok(i, x))
            return mmupt_fail(err, "%s:%d: field %s: %ld is out of range", p->name, p->line, FIELD[i], x);
        v[i] = (int)x;
        s = end;
    }
    while (*s == ' ' || *s == '\t') s++;
    if (*s) return pos_fail(p, err, "more than 16 numbers on an entry line");
    if (v[14] >= v[15])
        return mmupt_fail(err, "%s:%d: field pick: %d is not below found (%d)", p->name, p->line, v[14], v[15]);
    memcpy(e->key, v, sizeof e->key);
    e->pick = v[14];
    e->found = v[15];
    return 0;
}

/* The header lines in order: the magic, "device NAME", "cublaslt VERSION". */
static int parse_header(const struct tune_pos *p, int which, const char *s, struct gemm_tune_file *f,
                        struct mmupt_err *err)
{
    if (which == 0) return strcmp(s, GEMM_TUNE_MAGIC) == 0 ? 0 : pos_fail(p, err, "not a tuning file (the first line "
                                                                                 "must be '" GEMM_TUNE_MAGIC "')");
    if (which == 1) {
        if (strncmp(s, "device ", 7) != 0 || !s[7]) return pos_fail(p, err, "field device: expected 'device NAME'");
        if (str_copy(f->device, sizeof f->device, s + 7)) return pos_fail(p, err, "field device: name too long");
        return 0;
    }
    char *end = NULL;
    long v = strncmp(s, "cublaslt ", 9) == 0 && s[9] >= '0' && s[9] <= '9' ? strtol(s + 9, &end, 10) : 0;
    if (!end || *end || v < 1 || v > INT_MAX) return pos_fail(p, err, "field cublaslt: expected 'cublaslt VERSION'");
    f->cublaslt = (int)v;
    return 0;
}

/* Line [s, s + n) without its line end into buf; -1 when too long or holding a NUL. */
static int take_line(const char *s, size_t n, char *buf)
{
    if (n > 0 && s[n - 1] == '\r') n--;
    if (n >= GEMM_TUNE_LINE_MAX || memchr(s, '\0', n)) return -1;
    memcpy(buf, s, n);
    buf[n] = '\0';
    return 0;
}

int gemm_tune_parse(const char *name, const char *text, size_t len, struct gemm_tune_file *f,
                    struct mmupt_err *err)
{
    memset(f, 0, sizeof *f);
    struct tune_pos p = {name, 0};
    int header = 0, rc = 0;
    char buf[GEMM_TUNE_LINE_MAX];
    for (size_t at = 0; at < len && rc == 0;) {
        const char *nl = memchr(text + at, '\n', len - at);
        size_t n = nl ? (size_t)(nl - (text + at)) : len - at;
        p.line++;
        if (take_line(text + at, n, buf)) rc = pos_fail(&p, err, "line too long or not text");
        at += n + (nl != NULL);
        char *s = rc ? buf : str_trim(buf);
        if (rc || s[0] == '#' || !s[0]) continue;
        if (header < 3) {
            rc = parse_header(&p, header++, s, f, err);
            continue;
        }
        struct gemm_tune_entry e;
        rc = parse_entry(&p, s, &e, err);
        if (!rc && gemm_tune_find(f, e.key)) rc = pos_fail(&p, err, "a second entry for the same GEMM shape");
        if (!rc) gemm_tune_set(f, e.key, e.pick, e.found);
    }
    if (!rc && header < 3) {
        p.line++;
        rc = pos_fail(&p, err, header == 0 ? "empty: not a tuning file" : "the header ends early (device and "
                                                                         "cublaslt lines expected)");
    }
    if (rc) gemm_tune_free(f);
    return rc;
}

int gemm_tune_read(const char *path, struct gemm_tune_file *f, struct mmupt_err *err)
{
    memset(f, 0, sizeof *f);
    FILE *probe = fopen(path, "rb");
    if (!probe && errno == ENOENT) return 0; /* not written yet */
    if (probe) fclose(probe);
    char *text = NULL;
    size_t len = 0;
    if (file_read_all(path, GEMM_TUNE_MAX_BYTES, &text, &len, err)) return -1;
    int rc = gemm_tune_parse(path, text, len, f, err);
    free(text);
    return rc;
}

int gemm_tune_write(const struct gemm_tune_file *f, const char *path, struct mmupt_err *err)
{
    size_t cap = 1024 + sizeof f->device + (size_t)f->n * GEMM_TUNE_FIELDS * 12, len = 0; /* 12: an int and a blank */
    char *out = mmupt_xmalloc(cap);
    len += (size_t)snprintf(out + len, cap - len,
                            "# GEMM tuning choices (MMUPT_GEMM_TUNE_FILE, docs/running-at-scale.md): per shape,\n"
                            "# ta tb m n k lda ldb ldc ctype beta bias align_a align_b align_c pick found\n"
                            GEMM_TUNE_MAGIC "\ndevice %s\ncublaslt %d\n",
                            f->device, f->cublaslt);
    for (int i = 0; i < f->n; i++) {
        const struct gemm_tune_entry *e = &f->e[i];
        for (int j = 0; j < GEMM_TUNE_KEY_FIELDS; j++) len += (size_t)snprintf(out + len, cap - len, "%d ", e->key[j]);
        len += (size_t)snprintf(out + len, cap - len, "%d %d\n", e->pick, e->found);
    }
    int rc = file_write_atomic(path, out, len, err); /* every rank of a job may rewrite the file */
    free(out);
    return rc;
}

const struct gemm_tune_entry *gemm_tune_find(const struct gemm_tune_file *f, const int *key)
{
    for (int i = 0; i < f->n; i++)
        if (memcmp(f->e[i].key, key, sizeof f->e[i].key) == 0) return &f->e[i];
    return NULL;
}

void gemm_tune_set(struct gemm_tune_file *f, const int *key, int pick, int found)
{
    struct gemm_tune_entry *e = (struct gemm_tune_entry *)gemm_tune_find(f, key);
    if (!e) {
        if (f->n == f->cap) {
            f->cap = f->cap ? 2 * f->cap : 16;
            struct gemm_tune_entry *grown = mmupt_xmalloc((size_t)f->cap * sizeof *grown);
            if (f->n) memcpy(grown, f->e, (size_t)f->n * sizeof *grown);
            free(f->e);
            f->e = grown;
        }
        e = &f->e[f->n++];
        memcpy(e->key, key, sizeof e->key);
    }
    e->pick = pick;
    e->found = found;
}

void gemm_tune_reset(struct gemm_tune_file *f, const char *device, int cublaslt)
{
    f->n = 0;
    (void)str_copy(f->device, sizeof f->device, device); /* a cut name still names the device */
    for (char *c = f->device; *c; c++)
        if ((unsigned char)*c < ' ') *c = '?'; /* the name stays on its line */
    if (!f->device[0]) str_copy(f->device, sizeof f->device, "unknown");
    f->cublaslt = cublaslt;
}

void gemm_tune_free(struct gemm_tune_file *f)
{
    free(f->e);
    memset(f, 0, sizeof *f);
}
