/* Answer extraction from a model response (docs/grading.md, "Extraction").
 * BOXED is mathruler's extract_boxed_content; CHOICE and ANSWER_IS are mmupt's own rules for the
 * config's other extractors. Responses are any bytes: every scan is bounded by len, not by NUL. */
#include <stdlib.h>
#include <string.h>

#include "gstr.h"
#include "mmupt/grade.h"

#define BOXED_OPEN "\\boxed{"
#define CHOICE_MAX_LETTER 'J'

/* Last occurrence of needle (n bytes) in s[0..len), or NULL. */
static const char *last_match(const char *s, size_t len, const char *needle, size_t n, int fold)
{
    if (len < n) return NULL;
    for (size_t i = len - n + 1; i-- > 0;) {
        if (fold ? strncasecmp(s + i, needle, n) == 0 && !memchr(s + i, '\0', n) : memcmp(s + i, needle, n) == 0)
            return s + i;
    }
    return NULL;
}

static int is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

/* Python str.strip() of s[a..e): Unicode white space, which needs NUL-free text to decode; a NUL
 * is not white space in Python either, so scanning stops at it. */
static void strip_range(const char *s, size_t *a, size_t *e)
{
    while (*a < *e && s[*a] != '\0') {
        char tmp[5] = {0};
        memcpy(tmp, s + *a, *e - *a < 4 ? *e - *a : 4);
        size_t k = gs_space_len(tmp);
        if (!k || *a + k > *e) break;
        *a += k;
    }
    while (*e > *a) {
        size_t back = 1;
        while (back < 4 && *e - back > *a && ((unsigned char)s[*e - back] & 0xc0) == 0x80) back++;
        char tmp[5] = {0};
        memcpy(tmp, s + *e - back, back);
        size_t k = gs_space_len(tmp);
        if (k != back) {
            if (back > 1 && is_ws(s[*e - 1])) { /* an ASCII space after a stray continuation byte */
                (*e)--;
                continue;
            }
            break;
        }
        *e -= back;
    }
}

static int give(const char *s, size_t a, size_t e, char **answer)
{
    if (e - a > GRADE_MAX_ANSWER) return 0;
    *answer = gs_dupn(s + a, e - a);
    return 1;
}

/* The content of the last \boxed{...}, brace depth matched; 0 if none or never closed. Sets
 * [*a, *e) to the stripped content. */
static int boxed_range(const char *s, size_t len, size_t *a, size_t *e)
{
    const char *open = last_match(s, len, BOXED_OPEN, strlen(BOXED_OPEN), 0);
    if (!open) return 0;
    size_t start = (size_t)(open - s) + strlen(BOXED_OPEN);
    long depth = 0;
    for (size_t i = start; i < len; i++) {
        if (s[i] == '{') depth++;
        else if (s[i] == '}' && --depth == -1) {
            *a = start;
            *e = i;
            strip_range(s, a, e);
            return 1;
        }
    }
    return 0;
}

/* A choice letter alone, optionally in parentheses and followed by '.', ':' or ')' text:
 * "B", "(B)", "B.", "B) 12 cm". Returns the letter or 0. */
static char lone_letter(const char *s, size_t a, size_t e)
{
    strip_range(s, &a, &e);
    if (a < e && s[a] == '(') a++;
    if (a >= e || s[a] < 'A' || s[a] > CHOICE_MAX_LETTER) return 0;
    char c = s[a];
    size_t next = a + 1;
    if (next == e) return c;
    if (s[next] == ')' || s[next] == '.' || s[next] == ':' || is_ws(s[next])) {
        /* "A)" or "A." alone, or a letter then its option text after a separator */
        if (next + 1 == e || s[next] == ')' || s[next] == ':') return c;
        if (s[next] == '.' && is_ws(s[next + 1])) return c;
    }
    return 0;
}

static int single_char(char c, char **answer)
{
    *answer = gs_dupn(&c, 1);
    return 1;
}

static int extract_choice(const char *s, size_t len, char **answer)
{
    size_t a, e;
    char c;
    if (boxed_range(s, len, &a, &e)) {
        /* \boxed{\text{B}} and \boxed{(B)} count as B */
        if (e - a > 7 && !strncmp(s + a, "\\text{", 6) && s[e - 1] == '}') a += 6, e -= 1;
        if ((c = lone_letter(s, a, e))) return single_char(c, answer);
    }
    const char *hit = last_match(s, len, "answer is", 9, 1);
    if (hit) {
        size_t p = (size_t)(hit - s) + 9;
        while (p < len && (is_ws(s[p]) || s[p] == ':' || s[p] == '*')) p++;
        if (p < len && s[p] == '(' && p + 2 < len && s[p + 2] == ')' && s[p + 1] >= 'A' &&
            s[p + 1] <= CHOICE_MAX_LETTER)
            return single_char(s[p + 1], answer);
        if (p < len && s[p] >= 'A' && s[p] <= CHOICE_MAX_LETTER &&
            (p + 1 == len || !((s[p + 1] | 32) >= 'a' && (s[p + 1] | 32) <= 'z')))
            return single_char(s[p], answer);
    }
    /* the last line of the response, if it is a lone letter */
    e = len;
    while (e > 0 && is_ws(s[e - 1])) e--;
    a = e;
    while (a > 0 && s[a - 1] != '\n') a--;
    if ((c = lone_letter(s, a, e))) return single_char(c, answer);
    return 0;
}

static int extract_answer_is(const char *s, size_t len, char **answer)
{
    const char *hit = last_match(s, len, "the answer is", 13, 1);
    if (!hit) return 0;
    size_t a = (size_t)(hit - s) + 13;
    if (a < len && s[a] == ':') a++;
    /* the sentence ends at a newline or at a '.' followed by white space or the end ("3.5" stays) */
    size_t e = a;
    while (e < len && s[e] != '\n' && !(s[e] == '.' && (e + 1 == len || is_ws(s[e + 1])))) e++;
    strip_range(s, &a, &e);
    if (a == e) return 0;
    return give(s, a, e, answer);
}

int grade_extract(const char *response, size_t len, enum grade_extractor how, char **answer, struct mmupt_err *err)
{
    *answer = NULL;
    if (!response && len > 0) return mmupt_fail(err, "grade_extract: no response text (NULL with length %zu)", len);
    if (!response) response = "";
    size_t a, e;
    switch (how) {
    case GRADE_BOXED:
        if (!boxed_range(response, len, &a, &e)) return 0;
        return give(response, a, e, answer);
    case GRADE_CHOICE: return extract_choice(response, len, answer);
    case GRADE_ANSWER_IS: return extract_answer_is(response, len, answer);
    }
    return mmupt_fail(err, "grade_extract: unknown extractor %d", (int)how);
}
