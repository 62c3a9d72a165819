/* Private string helpers of the grade module: a growable buffer and the handful of Python str
 * operations (replace, strip, float(), int()) that mathruler's normalisers are written in. Every
 * function returns a fresh malloc'd string so the normalisers read as a list of steps. */
#ifndef MMUPT_GRADE_GSTR_H
#define MMUPT_GRADE_GSTR_H

#include <stddef.h>

struct gbuf {
    char *p;
    size_t n, cap;
};

void gbuf_put(struct gbuf *b, const char *s, size_t n);
void gbuf_puts(struct gbuf *b, const char *s);
void gbuf_putc(struct gbuf *b, char c);
char *gbuf_take(struct gbuf *b); /* NUL-terminated result; b is empty afterwards */

char *gs_dup(const char *s);
char *gs_dupn(const char *s, size_t n);
/* Python s.replace(from, to): non-overlapping, left to right. Frees s (so steps chain). */
char *gs_replace(char *s, const char *from, const char *to);
/* Python s.strip(): Unicode white space at both ends. Frees s. */
char *gs_strip(char *s);
/* Length of a Unicode white-space character at s (Python str.isspace), or 0. */
size_t gs_space_len(const char *s);
/* Length in bytes of the code point at s (1 for a byte that starts no valid sequence). */
size_t gs_cp_len(const char *s);
/* Number of code points (Python len()). */
size_t gs_cp_count(const char *s, size_t n);
/* Start of the last code point of s[0..n) (n > 0). */
size_t gs_last_cp(const char *s, size_t n);

/* Python float(s): 0 with *out, -1 when Python raises ValueError. */
int gs_py_float(const char *s, double *out);
/* grader._is_int on a float: |x - round(x)| <= 1e-7 (inf and nan: false). */
int gs_is_int(double x);
/* str(int(x)) for an integral finite double, exactly (doubles above 2^63 included). Frees nothing. */
char *gs_int_str(double x);

/* The regex ^\\text\{(.+?)\}$ of both normalisers: returns the group (malloc'd) or NULL. */
char *gs_text_group(const char *s);

#endif
