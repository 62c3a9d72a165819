/* grade_equal: mathruler grader.grade_answer, step by step (docs/grading.md). */
#include <stdlib.h>
#include <string.h>

#include "grade_internal.h"
#include "gstr.h"
#include "mmupt/grade.h"

#define GRADE_TUPLE_CHARS "()[]"

/* The tail of _is_frac's regex after the digits: ".?" then "$" (end, or before a final newline). */
static int frac_tail(const char *t)
{
    if (*t == '\0' || strcmp(t, "\n") == 0) return 1;
    if (*t == '\n') return 0;
    t += gs_cp_len(t);
    return *t == '\0' || strcmp(t, "\n") == 0;
}

/* re.search(r"^-?[0-9]+.?/0*[1-9][0-9]*.?$", s) */
static int is_frac(const char *s)
{
    if (*s == '-') s++;
    size_t nd = strspn(s, "0123456789");
    if (nd == 0) return 0;
    /* [0-9]+ takes k >= 1 digits, ".?" one character or none, then '/' */
    for (size_t k = nd; k >= 1; k--) {
        const char *p = s + k;
        for (int dot = 1; dot >= 0; dot--) {
            const char *q = p;
            if (dot) {
                if (*q == '\0' || *q == '\n') continue;
                q += gs_cp_len(q);
            }
            if (*q != '/') continue;
            q++;
            while (*q == '0') q++;
            if (*q < '1' || *q > '9') continue;
            q += strspn(q, "0123456789");
            /* [0-9]* backtracking can leave its last digit to ".?"; the tail accepts either way. */
            if (frac_tail(q)) return 1;
        }
    }
    return 0;
}

struct elems {
    char **v;
    size_t n;
};

static void elems_free(struct elems *e)
{
    for (size_t i = 0; i < e->n; i++) free(e->v[i]);
    free(e->v);
}

/* split_tuple: "(a,b)" / "[a,b)" into stripped elements when no bracket appears inside. */
static struct elems split_tuple(const char *expr)
{
    struct elems e = {0};
    char *s = grade_strip_commas(expr);
    size_t n = strlen(s);
    if (n == 0) {
        free(s);
        return e;
    }
    int tuple = n > 2 && strchr(GRADE_TUPLE_CHARS, s[0]) && strchr(GRADE_TUPLE_CHARS, s[n - 1]);
    for (size_t i = 1; tuple && i + 1 < n; i++)
        if (strchr(GRADE_TUPLE_CHARS, s[i])) tuple = 0;
    if (!tuple) {
        e.v = mmupt_xmalloc(sizeof *e.v);
        e.v[e.n++] = s;
        return e;
    }
    size_t parts = 1;
    for (size_t i = 1; i + 1 < n; i++) parts += s[i] == ',';
    e.v = mmupt_xmalloc(parts * sizeof *e.v);
    const char *p = s + 1, *end = s + n - 1;
    for (;;) {
        const char *c = memchr(p, ',', (size_t)(end - p));
        const char *stop = c ? c : end;
        e.v[e.n++] = gs_strip(gs_dupn(p, (size_t)(stop - p)));
        if (!c) break;
        p = c + 1;
    }
    free(s);
    return e;
}

static int same_first_last(const char *a, const char *b)
{
    size_t la = gs_cp_len(a), lb = gs_cp_len(b);
    if (la != lb || memcmp(a, b, la) != 0) return 0;
    size_t na = strlen(a), nb = strlen(b);
    size_t ea = gs_last_cp(a, na), eb = gs_last_cp(b, nb);
    return na - ea == nb - eb && memcmp(a + ea, b + eb, na - ea) == 0;
}

static int elements_equal(const char *gt, const char *given)
{
    if (is_frac(gt) && is_frac(given)) return strcmp(gt, given) == 0; /* unreduced fractions stay wrong */
    if (grade_str_is_int(gt) != grade_str_is_int(given)) return 0;
    return grade_exact_equal(gt, given);
}

int grade_equal(const char *given, const char *reference)
{
    if (!given || !reference) return 0;
    char *ma = grade_normalize_math(reference), *mb = grade_normalize_math(given);
    int equal = strcmp(ma, mb) == 0;
    free(ma);
    free(mb);
    if (equal) return 1;

    char *gt = grade_normalize_expr(reference), *gv = grade_normalize_expr(given);
    if (strcmp(gt, gv) == 0) {
        equal = 1;
    } else if (gv[0] != '\0') {
        struct elems ge = split_tuple(gt), ve = split_tuple(gv);
        if (ge.n > 1 && !same_first_last(gt, gv)) {
            equal = 0;
        } else if (ge.n != ve.n) {
            equal = 0;
        } else {
            /* zip over no elements leaves is_correct unset in Python; both lists are non-empty here */
            equal = 1;
            for (size_t i = 0; i < ge.n && equal; i++) equal = elements_equal(ge.v[i], ve.v[i]);
        }
        elems_free(&ge);
        elems_free(&ve);
    }
    free(gt);
    free(gv);
    return equal;
}
