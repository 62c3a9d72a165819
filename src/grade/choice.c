/* Multiple-choice items (grade.h): finding the choices block at the end of a problem and turning
 * an extracted answer into an option letter, so that "B", "(B)" and "B) 15" grade, and vote, as one
 * answer. */
#include <stdlib.h>
#include <string.h>

#include "mmupt/err.h"
#include "mmupt/grade.h"

#define CHOICES_HEADER "Choices:"

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v';
}

/* A malloc'd copy of [a, e) without the white space at both ends. */
static char *trimmed_copy(const char *a, const char *e)
{
    while (a < e && is_space(*a)) a++;
    while (e > a && is_space(e[-1])) e--;
    size_t n = (size_t)(e - a);
    char *s = mmupt_xmalloc(n + 1);
    memcpy(s, a, n);
    s[n] = '\0';
    return s;
}

void grade_choices_free(struct grade_choices *c)
{
    for (int i = 0; i < c->n; i++) free(c->text[i]);
    memset(c, 0, sizeof *c);
}

/* The start of the last line that is exactly "Choices:" (trailing spaces allowed), or NULL. */
static const char *find_header(const char *problem)
{
    const char *found = NULL;
    size_t hn = strlen(CHOICES_HEADER);
    for (const char *p = strstr(problem, CHOICES_HEADER); p; p = strstr(p + 1, CHOICES_HEADER)) {
        if (p != problem && p[-1] != '\n') continue;
        const char *q = p + hn;
        while (*q == ' ' || *q == '\t' || *q == '\r') q++;
        if (*q == '\n') found = p;
    }
    return found;
}

/* Parse the option lines after the header; every non-blank line must be the next "(X) text". */
static int parse_options(const char *s, struct grade_choices *out)
{
    while (*s) {
        const char *e = strchr(s, '\n');
        if (!e) e = s + strlen(s);
        const char *a = s;
        while (a < e && is_space(*a)) a++;
        if (a < e) {
            /* A blank line may only end the block: after one, nothing but blank lines may follow. */
            char want = (char)('A' + out->n);
            if (out->n == GRADE_MAX_CHOICES || e - a < 3 || a[0] != '(' || a[1] != want || a[2] != ')') return 0;
            out->text[out->n++] = trimmed_copy(a + 3, e);
        } else if (out->n > 0) {
            for (const char *r = e; *r; r++)
                if (!is_space(*r)) return 0;
            return 1;
        }
        s = *e ? e + 1 : e;
    }
    return 1;
}

int grade_choices_parse(const char *problem, struct grade_choices *out)
{
    memset(out, 0, sizeof *out);
    if (!problem) return 0;
    const char *h = find_header(problem);
    if (!h) return 0;
    const char *body = strchr(h, '\n') + 1;
    if (!parse_options(body, out) || out->n < 2) {
        grade_choices_free(out);
        return 0;
    }
    return 1;
}

/* The letter at s if it is an option's letter (either case), else 0. */
static char option_letter(const struct grade_choices *c, char ch)
{
    if (ch >= 'a' && ch <= 'z') ch = (char)(ch - 'a' + 'A');
    return ch >= 'A' && ch < 'A' + c->n ? ch : 0;
}

/* Letter forms over [a, e) (trimmed): "B", "(B)...", "B." / "B)" / "B:" followed by anything.
 * "B 12" or "Because" are not letter forms: a letter must stand alone or be followed by one of
 * those separators, else an ordinary word would count as a choice. */
static char letter_form(const struct grade_choices *c, const char *a, const char *e)
{
    size_t n = (size_t)(e - a);
    if (n >= 3 && a[0] == '(' && a[2] == ')') return option_letter(c, a[1]);
    if (n == 1) return option_letter(c, a[0]);
    if (n >= 2 && (a[1] == '.' || a[1] == ')' || a[1] == ':')) return option_letter(c, a[0]);
    return 0;
}

/* \text{B}, \textbf{B}, \mathrm{B}: the content, as [*a, *e). */
static void unwrap_macro(const char **a, const char **e)
{
    static const char *const macros[] = {"\\text{", "\\textbf{", "\\mathrm{", "\\mathbf{"};
    for (size_t i = 0; i < sizeof macros / sizeof macros[0]; i++) {
        size_t m = strlen(macros[i]);
        if ((size_t)(*e - *a) > m && strncmp(*a, macros[i], m) == 0 && (*e)[-1] == '}') {
            *a += m;
            *e -= 1;
            return;
        }
    }
}

char grade_choice_letter(const struct grade_choices *c, const char *answer)
{
    if (!answer || c->n < 1) return 0;
    const char *a = answer, *e = answer + strlen(answer);
    while (a < e && is_space(*a)) a++;
    while (e > a && is_space(e[-1])) e--;
    unwrap_macro(&a, &e);
    while (a < e && is_space(*a)) a++;
    while (e > a && is_space(e[-1])) e--;
    char l = letter_form(c, a, e);
    if (l) return l;
    /* The option's text itself ("15" for "(B) 15"), by the grader's equality; an empty option text
     * matches nothing. */
    for (int i = 0; i < c->n; i++)
        if (c->text[i][0] && grade_equal(answer, c->text[i])) return (char)('A' + i);
    return 0;
}
