/* Path (a) of grade_answer: math_normalize.normalize_answer, the Hendrycks MATH _strip_string.
 * Each step is one Python statement of the original; a step that raises in Python (an assert, an
 * index past the end) makes normalize_answer return its input unchanged, which `fail` models. */
#include <stdlib.h>
#include <string.h>

#include "gstr.h"
#include "mmupt/grade.h"

/* "\text{ " marks units on the right; more than one occurrence raises (assert). */
static char *remove_right_units(char *s, int *fail)
{
    char *hit = strstr(s, "\\text{ ");
    if (!hit) return s;
    if (strstr(hit + 1, "\\text{ ")) {
        *fail = 1;
        return s;
    }
    *hit = '\0';
    return s;
}

/* \sqrt3 -> \sqrt{3}; "\sqrt" at the very end raises. */
static char *fix_sqrt(char *s, int *fail)
{
    if (!strstr(s, "\\sqrt")) return s;
    struct gbuf b = {0};
    const char *p = strstr(s, "\\sqrt");
    gbuf_put(&b, s, (size_t)(p - s));
    while (p) {
        const char *part = p + 5, *next = strstr(part, "\\sqrt");
        size_t len = next ? (size_t)(next - part) : strlen(part);
        if (len == 0) {
            *fail = 1;
            free(b.p);
            return s;
        }
        if (part[0] != '{') {
            size_t a = gs_cp_len(part);
            if (a > len) a = len;
            gbuf_puts(&b, "\\sqrt{");
            gbuf_put(&b, part, a);
            gbuf_putc(&b, '}');
            gbuf_put(&b, part + a, len - a);
        } else {
            gbuf_puts(&b, "\\sqrt");
            gbuf_put(&b, part, len);
        }
        p = next;
    }
    free(s);
    return gbuf_take(&b);
}

/* \frac12 -> \frac{1}{2}, \frac1{72} -> \frac{1}{72}. An empty piece raises; a piece of one
 * character returns the string as it was. */
static char *fix_fracs(char *s, int *fail)
{
    const char *p = strstr(s, "\\frac");
    if (!p) return s;
    struct gbuf b = {0};
    gbuf_put(&b, s, (size_t)(p - s));
    while (p) {
        const char *part = p + 5, *next = strstr(part, "\\frac");
        size_t len = next ? (size_t)(next - part) : strlen(part);
        gbuf_puts(&b, "\\frac");
        if (len == 0) {
            *fail = 1;
            free(b.p);
            return s;
        }
        if (part[0] == '{') {
            gbuf_put(&b, part, len);
        } else {
            size_t a = gs_cp_len(part);
            if (a >= len) { /* len(substr) < 2 */
                free(b.p);
                return s;
            }
            size_t bl = gs_cp_len(part + a);
            if (a + bl > len) bl = len - a;
            gbuf_putc(&b, '{');
            gbuf_put(&b, part, a);
            gbuf_putc(&b, '}');
            if (part[a] != '{') {
                gbuf_putc(&b, '{');
                gbuf_put(&b, part + a, bl);
                gbuf_putc(&b, '}');
            } else {
                gbuf_put(&b, part + a, bl);
            }
            gbuf_put(&b, part + a + bl, len - a - bl);
        }
        p = next;
    }
    free(s);
    return gbuf_take(&b);
}

/* str(int(x)) == x: an optional '-' and digits without leading zeros ("-0" is not). Python 3.11
 * refuses int() of more than 4300 digits. */
static int canonical_int(const char *s, size_t n)
{
    size_t i = 0;
    if (n && s[0] == '-') i = 1;
    if (i == n || n - i > 4300) return 0;
    for (size_t k = i; k < n; k++)
        if (s[k] < '0' || s[k] > '9') return 0;
    if (s[i] == '0' && n - i > 1) return 0;
    if (s[i] == '0' && i == 1) return 0;
    return 1;
}

static char *fix_a_slash_b(char *s)
{
    char *slash = strchr(s, '/');
    if (!slash || strchr(slash + 1, '/')) return s;
    if (!canonical_int(s, (size_t)(slash - s)) || !canonical_int(slash + 1, strlen(slash + 1))) return s;
    struct gbuf b = {0};
    gbuf_puts(&b, "\\frac{");
    gbuf_put(&b, s, (size_t)(slash - s));
    gbuf_puts(&b, "}{");
    gbuf_puts(&b, slash + 1);
    gbuf_putc(&b, '}');
    free(s);
    return gbuf_take(&b);
}

/* _strip_string; *fail set when Python would have raised. */
static char *strip_string(char *s, int *fail)
{
    s = gs_replace(s, "\n", "");
    s = gs_replace(s, "\\!", "");
    s = gs_replace(s, "\\\\", "\\");
    s = gs_replace(s, "tfrac", "frac");
    s = gs_replace(s, "dfrac", "frac");
    s = gs_replace(s, "\\left", "");
    s = gs_replace(s, "\\right", "");
    s = gs_replace(s, "^{\\circ}", "");
    s = gs_replace(s, "^\\circ", "");
    s = gs_replace(s, "\\$", "");
    s = remove_right_units(s, fail);
    if (*fail) return s;
    s = gs_replace(s, "\\%", "");
    s = gs_replace(s, "%", "");
    s = gs_replace(s, " .", " 0.");
    s = gs_replace(s, "{.", "{0.");
    if (s[0] == '\0') return s;
    if (s[0] == '.') {
        char *t = mmupt_xmalloc(strlen(s) + 2);
        t[0] = '0';
        strcpy(t + 1, s);
        free(s);
        s = t;
    }
    char *eq = strchr(s, '=');
    if (eq && !strchr(eq + 1, '=') && gs_cp_count(s, (size_t)(eq - s)) <= 2) {
        char *t = gs_dup(eq + 1);
        free(s);
        s = t;
    }
    s = fix_sqrt(s, fail);
    if (*fail) return s;
    s = gs_replace(s, " ", "");
    s = fix_fracs(s, fail);
    if (*fail) return s;
    if (strcmp(s, "0.5") == 0) {
        free(s);
        s = gs_dup("\\frac{1}{2}");
    }
    return fix_a_slash_b(s);
}

char *grade_normalize_math(const char *in)
{
    char *s = gs_strip(gs_dup(in));
    char *group = gs_text_group(s);
    if (group) {
        free(s);
        s = gs_strip(group);
    }
    int fail = 0;
    char *r = strip_string(gs_dup(s), &fail);
    if (fail) {
        free(r);
        return s;
    }
    free(s);
    return r;
}
