/* String and file helpers. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mmupt/strutil.h"

char *str_trim(char *s)
{
    while (isspace((unsigned char)*s)) s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1])) s[--n] = '\0';
    return s;
}

size_t str_edit_distance(const char *a, const char *b, size_t cap)
{
    size_t la = strlen(a), lb = strlen(b);
    if ((la > lb ? la - lb : lb - la) > cap) return cap + 1;
    if (lb > 255) return cap + 1; /* keys are short; anything this long is no typo of one */
    size_t row[256];
    for (size_t j = 0; j <= lb; j++) row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0], best = i;
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t sub = diag + (a[i - 1] != b[j - 1]);
            size_t v = up + 1 < row[j - 1] + 1 ? up + 1 : row[j - 1] + 1;
            row[j] = v < sub ? v : sub;
            diag = up;
            if (row[j] < best) best = row[j];
        }
        if (best > cap) return cap + 1;
    }
    return row[lb];
}

int str_copy(char *dst, size_t n, const char *src)
{
    if (n == 0) return -1;
    size_t len = strlen(src);
    if (len >= n) {
        memcpy(dst, src, n - 1);
        dst[n - 1] = '\0';
        return -1;
    }
    memcpy(dst, src, len + 1);
    return 0;
}

void str_format_double(double v, char *out, size_t n)
{
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(out, n, "%.*g", prec, v);
        if (strtod(out, NULL) == v) break;
    }
    /* %g switches to an exponent early ("-1e+02" for -100); people write such numbers plainly. */
    double a = fabs(v);
    if (strchr(out, 'e') && a >= 1e-4 && a < 1e16) {
        char fixed[64];
        for (int dec = 0; dec <= 20; dec++) {
            snprintf(fixed, sizeof fixed, "%.*f", dec, v);
            if (strtod(fixed, NULL) == v) {
                snprintf(out, n, "%s", fixed);
                return;
            }
        }
    }
}

/* Length of the valid UTF-8 sequence at s, or 0 if it is not one (overlongs, surrogates and
 * code points past U+10FFFF are invalid). */
size_t utf8_seq_len(const unsigned char *s, size_t avail)
{
    if (avail == 0) return 0;
    unsigned c = s[0];
    if (c < 0x80) return 1;
    size_t n;
    unsigned cp;
    if (c >= 0xC2 && c <= 0xDF) { n = 2; cp = c & 0x1F; }
    else if (c >= 0xE0 && c <= 0xEF) { n = 3; cp = c & 0x0F; }
    else if (c >= 0xF0 && c <= 0xF4) { n = 4; cp = c & 0x07; }
    else return 0;
    if (n > avail) return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10FFFF))) return 0;
    if (cp >= 0xD800 && cp <= 0xDFFF) return 0;
    return n;
}

int file_read_all(const char *path, size_t max_bytes, char **out, size_t *len, struct mmupt_err *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) return mmupt_fail(err, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0) {
        fclose(f);
        return mmupt_fail(err, "%s: cannot stat: %s", path, strerror(errno));
    }
    if (S_ISDIR(st.st_mode)) {
        fclose(f);
        return mmupt_fail(err, "%s: is a directory, not a file", path);
    }
    if (S_ISREG(st.st_mode) && (size_t)st.st_size > max_bytes) {
        fclose(f);
        return mmupt_fail(err, "%s: too large (%lld bytes; at most %zu)", path, (long long)st.st_size, max_bytes);
    }
    /* Read in chunks rather than trusting st_size: pipes and /proc files report 0. */
    size_t cap = 4096, n = 0;
    char *buf = mmupt_xmalloc(cap + 1);
    for (;;) {
        if (n == cap) {
            if (cap >= max_bytes) {
                if (fgetc(f) == EOF) break; /* exactly max_bytes long: fits */
                free(buf);
                fclose(f);
                return mmupt_fail(err, "%s: too large (more than %zu bytes)", path, max_bytes);
            }
            cap = cap * 2 > max_bytes ? max_bytes : cap * 2;
            char *grown = realloc(buf, cap + 1);
            if (!grown) MMUPT_DIE("out of memory reading %s", path);
            buf = grown;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        return mmupt_fail(err, "%s: read error", path);
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return 0;
}

/* 1 when dir does not exist or has no entries, 0 when it has some, -1 (err set) when unreadable. */
int dir_empty_or_missing(const char *dir, struct mmupt_err *err)
{
    DIR *d = opendir(dir);
    if (!d) {
        if (errno == ENOENT) return 1;
        return mmupt_fail(err, "%s: cannot read the output directory: %s", dir, strerror(errno));
    }
    struct dirent *e;
    int empty = 1;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) empty = 0;
    closedir(d);
    return empty;
}

int dir_make_all(const char *dir, const char *what, struct mmupt_err *err)
{
    char p[4096];
    if (!dir[0]) return mmupt_fail(err, "empty %s path", what);
    if (strlen(dir) >= sizeof p) return mmupt_fail(err, "%.64s...: %s path too long", dir, what);
    strcpy(p, dir);
    /* Each prefix ending at a '/', then the whole path; an existing one is fine here and checked
     * for being a directory at the end (mkdir on a file also says EEXIST). */
    for (char *s = p + 1;; s++) {
        if (*s != '/' && *s != '\0') continue;
        char saved = *s;
        *s = '\0';
        if (mkdir(p, 0777) != 0 && errno != EEXIST)
            return mmupt_fail(err, "%s: cannot create %s: %s", p, what, strerror(errno));
        *s = saved;
        if (saved == '\0') break;
    }
    struct stat st;
    if (stat(dir, &st) != 0) return mmupt_fail(err, "%s: cannot create %s: %s", dir, what, strerror(errno));
    if (!S_ISDIR(st.st_mode)) return mmupt_fail(err, "%s: cannot create %s: exists and is not a directory", dir, what);
    return 0;
}

int file_write_all(const char *path, const void *data, size_t len, struct mmupt_err *err)
{
    FILE *f = fopen(path, "wb");
    if (!f) return mmupt_fail(err, "%s: cannot create: %s", path, strerror(errno));
    int bad = fwrite(data, 1, len, f) != len || fflush(f) != 0 || fsync(fileno(f)) != 0;
    int e = errno;
    bad |= fclose(f) != 0;
    if (bad) {
        remove(path);
        return mmupt_fail(err, "%s: cannot write: %s", path, strerror(e ? e : errno));
    }
    return 0;
}

int file_write_atomic(const char *path, const void *data, size_t len, struct mmupt_err *err)
{
    char tmp[4096];
    /* this process's own temporary: two processes replacing one path (the ranks of a job) must not
     * write into the same file before their renames */
    if (snprintf(tmp, sizeof tmp, "%s.%ld.tmp", path, (long)getpid()) >= (int)sizeof tmp)
        return mmupt_fail(err, "%s: path too long", path);
    if (file_write_all(tmp, data, len, err)) return -1;
    if (rename(tmp, path) != 0) {
        int e = errno;
        remove(tmp);
        return mmupt_fail(err, "%s: cannot rename into place: %s", path, strerror(e));
    }
    return 0;
}
