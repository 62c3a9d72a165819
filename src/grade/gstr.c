/* String helpers for the grade module: Python str semantics on UTF-8 bytes. */
#include "gstr.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mmupt/err.h"
#include "mmupt/strutil.h"

void gbuf_put(struct gbuf *b, const char *s, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->n + n + 1) {
            MMUPT_CHECK(cap < SIZE_MAX / 2);
            cap *= 2;
        }
        char *p = realloc(b->p, cap);
        if (!p) MMUPT_DIE("out of memory (%zu bytes)", cap);
        b->p = p;
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

void gbuf_puts(struct gbuf *b, const char *s) { gbuf_put(b, s, strlen(s)); }
void gbuf_putc(struct gbuf *b, char c) { gbuf_put(b, &c, 1); }

char *gbuf_take(struct gbuf *b)
{
    if (!b->p) gbuf_put(b, "", 0);
    char *p = b->p;
    b->p = NULL;
    b->n = b->cap = 0;
    return p;
}

char *gs_dupn(const char *s, size_t n)
{
    char *p = mmupt_xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *gs_dup(const char *s) { return gs_dupn(s, strlen(s)); }

char *gs_replace(char *s, const char *from, const char *to)
{
    size_t fl = strlen(from);
    if (!strstr(s, from)) return s;
    struct gbuf b = {0};
    const char *p = s, *hit;
    while ((hit = strstr(p, from))) {
        gbuf_put(&b, p, (size_t)(hit - p));
        gbuf_puts(&b, to);
        p = hit + fl;
    }
    gbuf_puts(&b, p);
    free(s);
    return gbuf_take(&b);
}

/* Decode the code point at s; *len gets its byte length (1 for an invalid byte, cp = -1). */
static long decode(const char *s, size_t *len)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t avail = strnlen(s, 4);
    size_t n = avail ? utf8_seq_len(u, avail) : 0;
    if (n == 0) {
        *len = 1;
        return -1;
    }
    *len = n;
    if (n == 1) return u[0];
    long cp = u[0] & (0x7f >> n);
    for (size_t i = 1; i < n; i++) cp = (cp << 6) | (u[i] & 0x3f);
    return cp;
}

size_t gs_cp_len(const char *s)
{
    size_t n;
    decode(s, &n);
    return n;
}

size_t gs_space_len(const char *s)
{
    size_t n;
    long c = decode(s, &n);
    int space = (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x20) || c == 0x85 || c == 0xa0 || c == 0x1680 ||
                (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 || c == 0x202f || c == 0x205f ||
                c == 0x3000;
    return space ? n : 0;
}

size_t gs_cp_count(const char *s, size_t n)
{
    size_t count = 0;
    for (size_t i = 0; i < n; i += gs_cp_len(s + i)) count++;
    return count;
}

size_t gs_last_cp(const char *s, size_t n)
{
    size_t i = 0, last = 0;
    while (i < n) {
        last = i;
        i += gs_cp_len(s + i);
    }
    return last;
}

char *gs_strip(char *s)
{
    size_t n = strlen(s), a = 0, k;
    while (a < n && (k = gs_space_len(s + a))) a += k;
    size_t e = n;
    while (e > a) {
        size_t last = a + gs_last_cp(s + a, e - a);
        if (!gs_space_len(s + last)) break;
        e = last;
    }
    if (a == 0 && e == n) return s;
    char *r = gs_dupn(s + a, e - a);
    free(s);
    return r;
}

/* digitpart := digit (["_"] digit)*; returns bytes consumed (0 if none). Copies digits to out. */
static size_t digitpart(const char *s, struct gbuf *out)
{
    size_t i = 0;
    if (s[0] < '0' || s[0] > '9') return 0;
    for (;;) {
        gbuf_putc(out, s[i]);
        i++;
        if (s[i] >= '0' && s[i] <= '9') continue;
        if (s[i] == '_' && s[i + 1] >= '0' && s[i + 1] <= '9') {
            i++;
            continue;
        }
        return i;
    }
}

int gs_py_float(const char *s, double *out)
{
    char *t = gs_strip(gs_dup(s));
    const char *p = t;
    int rc = -1;
    struct gbuf b = {0};
    if (*p == '+' || *p == '-') gbuf_putc(&b, *p++);
    if (!strcasecmp(p, "inf") || !strcasecmp(p, "infinity") || !strcasecmp(p, "nan")) {
        gbuf_puts(&b, p);
        rc = 0;
    } else {
        size_t a = digitpart(p, &b);
        p += a;
        size_t f = 0;
        if (*p == '.') {
            gbuf_putc(&b, '.');
            p++;
            f = digitpart(p, &b);
            p += f;
        }
        if (a + f > 0 && (*p == 'e' || *p == 'E')) {
            gbuf_putc(&b, 'e');
            p++;
            if (*p == '+' || *p == '-') gbuf_putc(&b, *p++);
            size_t e = digitpart(p, &b);
            p += e;
            if (e == 0) a = f = 0;
        }
        rc = (a + f > 0 && *p == '\0') ? 0 : -1;
    }
    if (rc == 0) *out = strtod(b.p, NULL);
    free(b.p);
    free(t);
    return rc;
}

int gs_is_int(double x)
{
    if (!isfinite(x)) return 0;
    return fabs(x - nearbyint(x)) <= 1e-7;
}

char *gs_int_str(double x)
{
    char tmp[64];
    if (fabs(x) < 9e18) {
        snprintf(tmp, sizeof tmp, "%lld", (long long)x);
        return gs_dup(tmp);
    }
    /* mantissa * 2^e exactly, as a little-endian array of decimal digits. */
    int e;
    double m = frexp(fabs(x), &e);
    uint64_t mant = (uint64_t)ldexp(m, 53);
    e -= 53;
    unsigned char d[400];
    int nd = 0;
    for (; mant; mant /= 10) d[nd++] = (unsigned char)(mant % 10);
    for (int k = 0; k < e; k++) {
        int carry = 0;
        for (int i = 0; i < nd; i++) {
            int v = d[i] * 2 + carry;
            d[i] = (unsigned char)(v % 10);
            carry = v / 10;
        }
        if (carry) d[nd++] = (unsigned char)carry;
    }
    struct gbuf b = {0};
    if (x < 0) gbuf_putc(&b, '-');
    for (int i = nd - 1; i >= 0; i--) gbuf_putc(&b, (char)('0' + d[i]));
    return gbuf_take(&b);
}

char *gs_text_group(const char *s)
{
    size_t n = strlen(s);
    if (strncmp(s, "\\text{", 6) != 0) return NULL;
    /* `$` also matches before one final newline; `.` never matches a newline. */
    size_t end = n;
    if (end > 0 && s[end - 1] == '\n') {
        if (end >= 8 && s[end - 2] == '}' && !memchr(s + 6, '\n', end - 2 - 6)) return gs_dupn(s + 6, end - 8);
    }
    if (end < 8 || s[end - 1] != '}') return NULL;
    if (memchr(s + 6, '\n', end - 7)) return NULL;
    return gs_dupn(s + 6, end - 7);
}
