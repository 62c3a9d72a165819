/* Path (b) of grade_answer: grader._normalize. Step order matters (units are removed before the
 * LaTeX conversion, braces dropped after it), so this file follows the original statement by
 * statement. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "grade_internal.h"
#include "gstr.h"
#include "mmupt/grade.h"

static int is_digit(char c) { return c >= '0' && c <= '9'; }

/* One pass of re.sub(r"(\d)(,)(\d\d\d)($|\D)", r"\1\3\4"); returns 1 if something changed. */
static int strip_commas_pass(const char *s, struct gbuf *out)
{
    size_t n = strlen(s), i = 0;
    int changed = 0;
    while (i < n) {
        if (i + 4 < n + 0 && is_digit(s[i]) && s[i + 1] == ',' && is_digit(s[i + 2]) && is_digit(s[i + 3]) &&
            is_digit(s[i + 4]) && (i + 5 == n || !is_digit(s[i + 5]))) {
            size_t tail = i + 5 < n ? gs_cp_len(s + i + 5) : 0;
            gbuf_putc(out, s[i]);
            gbuf_put(out, s + i + 2, 3 + tail);
            i += 5 + tail;
            changed = 1;
        } else {
            gbuf_putc(out, s[i]);
            i++;
        }
    }
    return changed;
}

char *grade_strip_commas(const char *s)
{
    char *cur = gs_dup(s);
    for (;;) {
        struct gbuf b = {0};
        int changed = strip_commas_pass(cur, &b);
        char *next = gbuf_take(&b);
        free(cur);
        cur = next;
        if (!changed) return cur;
    }
}

int grade_str_is_int(const char *s)
{
    char *t = grade_strip_commas(s);
    double x;
    int ok = gs_py_float(t, &x) == 0 && gs_is_int(x);
    free(t);
    return ok;
}

/* str(int(float(s.replace(",", "")))): int() truncates, so "0.99999999" becomes "0". */
static char *str_to_int(const char *s)
{
    char *t = gs_replace(gs_dup(s), ",", "");
    double x = 0;
    int rc = gs_py_float(t, &x);
    free(t);
    if (rc) return gs_dup(s); /* unreachable after grade_str_is_int: every comma was a separator */
    return gs_int_str(trunc(x));
}

/* re.sub(rf"{unit}(es)?(s)? *(\^[0-9]+)?", "", s) */
static char *remove_unit(char *s, const char *unit)
{
    if (!strstr(s, unit)) return s;
    size_t ul = strlen(unit);
    struct gbuf b = {0};
    const char *p = s, *hit;
    while ((hit = strstr(p, unit))) {
        gbuf_put(&b, p, (size_t)(hit - p));
        const char *e = hit + ul;
        if (e[0] == 'e' && e[1] == 's') e += 2;
        if (e[0] == 's') e++;
        while (*e == ' ') e++;
        if (e[0] == '^' && is_digit(e[1])) {
            e++;
            while (is_digit(*e)) e++;
        }
        p = e;
    }
    gbuf_puts(&b, p);
    free(s);
    return gbuf_take(&b);
}

/* re.sub(r"\^ *\\circ", "", s) */
static char *remove_circ(char *s)
{
    struct gbuf b = {0};
    for (const char *p = s; *p;) {
        if (*p == '^') {
            const char *e = p + 1;
            while (*e == ' ') e++;
            if (strncmp(e, "\\circ", 5) == 0) {
                p = e + 5;
                continue;
            }
        }
        gbuf_putc(&b, *p++);
    }
    free(s);
    return gbuf_take(&b);
}

/* re.sub(",\\\\! *", "", s): a comma followed by LaTeX's negative thin space. */
static char *remove_thin_space(char *s)
{
    struct gbuf b = {0};
    for (const char *p = s; *p;) {
        if (p[0] == ',' && p[1] == '\\' && p[2] == '!') {
            p += 3;
            while (*p == ' ') p++;
            continue;
        }
        gbuf_putc(&b, *p++);
    }
    free(s);
    return gbuf_take(&b);
}

/* _parse_latex; on a Python exception the input stays as it was. */
static char *parse_latex(char *s)
{
    char *t = gs_replace(gs_dup(s), "\\tfrac", "\\frac");
    t = gs_replace(t, "\\dfrac", "\\frac");
    t = gs_replace(t, "\\frac", " \\frac");
    int fail = 0;
    char *txt = grade_latex_to_text(t, &fail);
    free(t);
    if (fail) {
        free(txt);
        return s;
    }
    free(s);
    txt = gs_replace(txt, "√", "sqrt");
    txt = gs_replace(txt, "π", "pi");
    txt = gs_replace(txt, "∞", "inf");
    txt = gs_replace(txt, "∪", "U");
    txt = gs_replace(txt, "·", "*");
    txt = gs_replace(txt, "×", "*");
    return gs_strip(txt);
}

/* re.sub("- *", "-") then re.sub("([0-9]) +([0-9])", "\\1+\\2"): a mixed number 7 3/4 -> 7+3/4. */
static char *minus_and_mixed_numbers(char *s)
{
    struct gbuf b = {0};
    for (const char *p = s; *p;) {
        gbuf_putc(&b, *p);
        if (*p++ == '-')
            while (*p == ' ') p++;
    }
    free(s);
    s = gbuf_take(&b);
    for (const char *p = s; *p;) {
        if (is_digit(p[0]) && p[1] == ' ') {
            const char *e = p + 1;
            while (*e == ' ') e++;
            if (is_digit(*e)) {
                gbuf_putc(&b, p[0]);
                gbuf_putc(&b, '+');
                gbuf_putc(&b, *e);
                p = e + 1;
                continue;
            }
        }
        gbuf_putc(&b, *p++);
    }
    free(s);
    return gbuf_take(&b);
}

/* Python str.lower() for ASCII, Latin-1, Greek and basic Cyrillic capitals. */
static char *lower(char *s)
{
    struct gbuf b = {0};
    for (const char *p = s; *p;) {
        size_t k = gs_cp_len(p);
        const unsigned char *u = (const unsigned char *)p;
        if (k == 1) {
            char c = *p;
            gbuf_putc(&b, (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c);
        } else if (k == 2) {
            unsigned cp = ((u[0] & 0x1fu) << 6) | (u[1] & 0x3fu);
            if ((cp >= 0xc0 && cp <= 0xde && cp != 0xd7) || (cp >= 0x391 && cp <= 0x3a9 && cp != 0x3a2) ||
                (cp >= 0x410 && cp <= 0x42f))
                cp += 32;
            else if (cp >= 0x400 && cp <= 0x40f)
                cp += 80;
            char enc[2] = {(char)(0xc0 | (cp >> 6)), (char)(0x80 | (cp & 0x3f))};
            gbuf_put(&b, enc, 2);
        } else {
            gbuf_put(&b, p, k);
        }
        p += k;
    }
    free(s);
    return gbuf_take(&b);
}

static const char *const units[] = {"degree", "cm",   "centimeter", "meter", "mile",  "second", "minute", "hour",
                                    "day",    "week", "month",      "year",  "foot",  "feet",   "inch",   "yard"};

char *grade_normalize_expr(const char *in)
{
    char *s = gs_text_group(in);
    if (!s) s = gs_dup(in);
    s = gs_replace(s, "\\%", "%");
    s = gs_replace(s, "\\$", "$");
    s = gs_replace(s, "$", "");
    s = gs_replace(s, "%", "");
    s = gs_replace(s, " or ", " , ");
    s = gs_replace(s, " and ", " , ");
    s = gs_replace(s, "million", "*10^6");
    s = gs_replace(s, "billion", "*10^9");
    s = gs_replace(s, "trillion", "*10^12");
    for (size_t k = 0; k < sizeof units / sizeof units[0]; k++) s = remove_unit(s, units[k]);
    s = remove_circ(s);
    size_t n = strlen(s);
    if (n > 0 && s[0] == '{' && s[n - 1] == '}') {
        memmove(s, s + 1, n - 2);
        s[n - 2] = '\0';
    }
    s = remove_thin_space(s);
    double x;
    if (gs_py_float(s, &x) == 0 && gs_is_int(x)) {
        free(s);
        s = gs_int_str(nearbyint(x));
    }
    if (strchr(s, '\\')) s = parse_latex(s);
    s = minus_and_mixed_numbers(s);
    s = gs_replace(s, " ", "");
    s = gs_replace(s, "{", "");
    s = gs_replace(s, "}", "");
    s = lower(s);
    if (grade_str_is_int(s)) {
        char *t = str_to_int(s);
        free(s);
        s = t;
    }
    return s;
}
