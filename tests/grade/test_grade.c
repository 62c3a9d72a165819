/* grade: extraction cases and grade_equal rule by rule (expected values are mathruler 0.1.0's). */
#include <stdlib.h>
#include <string.h>

#include "../test.h"
#include "mmupt/grade.h"

/* Extract from a C string; returns the answer (malloc'd) or NULL, *rc gets the return code. */
static char *ex(const char *s, size_t len, enum grade_extractor how, int *rc)
{
    struct mmupt_err err;
    char *a = (char *)"junk";
    *rc = grade_extract(s, len, how, &a, &err);
    return a;
}

#define CHECK_EXTRACT(ts, how, text, want)                                                         \
    do {                                                                                           \
        int rc_;                                                                                   \
        char *got_ = ex(text, strlen(text), how, &rc_);                                            \
        if (want) CHECK_MSG(ts, rc_ == 1 && got_ && !strcmp(got_, (want) ? (want) : ""), "%s -> %s", text, got_ ? got_ : "(none)"); \
        else CHECK_MSG(ts, rc_ == 0 && got_ == NULL, "%s -> %s, want none", text, got_ ? got_ : "(none)"); \
        free(got_);                                                                                \
    } while (0)

static const char *NONE = NULL;

static void test_boxed(struct test_state *ts)
{
    CHECK_EXTRACT(ts, GRADE_BOXED, "so \\boxed{5}.", "5");
    CHECK_EXTRACT(ts, GRADE_BOXED, "\\boxed{a{b}{c{d}}e}", "a{b}{c{d}}e");    /* nested braces */
    CHECK_EXTRACT(ts, GRADE_BOXED, "\\boxed{1} then \\boxed{2}", "2");        /* the last box */
    CHECK_EXTRACT(ts, GRADE_BOXED, "\\boxed{1} then \\boxed{2", NONE);        /* last one unclosed */
    CHECK_EXTRACT(ts, GRADE_BOXED, "\\boxed{ \t7\n }", "7");                   /* stripped */
    CHECK_EXTRACT(ts, GRADE_BOXED, "\\boxed{\xc2\xa0" "7\xe3\x80\x80}", "7");   /* Unicode white space too */
    CHECK_EXTRACT(ts, GRADE_BOXED, "\\boxed{}", "");                           /* empty box: "" */
    CHECK_EXTRACT(ts, GRADE_BOXED, "\\boxed {5}", NONE);                       /* not recognised */
    CHECK_EXTRACT(ts, GRADE_BOXED, "\\fbox{5}", NONE);
    CHECK_EXTRACT(ts, GRADE_BOXED, "", NONE);
    CHECK_EXTRACT(ts, GRADE_BOXED, "\\boxed{\\boxed{5}}", "5");                /* rfind: the inner one */
    CHECK_EXTRACT(ts, GRADE_BOXED, "\\boxed{\xff\xfe}", "\xff\xfe");           /* not UTF-8: bytes kept */
    /* a NUL byte inside the response does not end it */
    int rc;
    char *a = ex("x\0\\boxed{4}", 11, GRADE_BOXED, &rc);
    CHECK(ts, rc == 1 && a && !strcmp(a, "4"));
    free(a);
    a = ex("\\boxed{4\0}", 10, GRADE_BOXED, &rc);
    CHECK(ts, rc == 1 && a && a[0] == '4' && a[1] == '\0');
    free(a);
    /* huge content: over GRADE_MAX_ANSWER is no answer; at the limit it is kept */
    size_t n = GRADE_MAX_ANSWER + 9;
    char *big = malloc(n + 1);
    memcpy(big, "\\boxed{", 7);
    memset(big + 7, '9', n - 8);
    big[n - 1] = '}';
    big[n] = '\0';
    a = ex(big, n, GRADE_BOXED, &rc);
    CHECK(ts, rc == 0 && a == NULL);
    a = ex(big + 1, n - 1, GRADE_BOXED, &rc); /* "boxed{..." without the backslash: none */
    CHECK(ts, rc == 0);
    big[n - 2] = '}';
    a = ex(big, n - 1, GRADE_BOXED, &rc);
    CHECK(ts, rc == 1 && a && strlen(a) == GRADE_MAX_ANSWER);
    free(a);
    free(big);
    /* deep nesting is a loop, not recursion */
    size_t d = 100000;
    char *deep = malloc(2 * d + 9);
    memcpy(deep, "\\boxed{", 7);
    memset(deep + 7, '{', d);
    memset(deep + 7 + d, '}', d);
    deep[7 + 2 * d] = '}';
    a = ex(deep, 8 + 2 * d, GRADE_BOXED, &rc);
    CHECK(ts, rc == 0); /* 2d bytes of content: too long */
    free(deep);
    struct mmupt_err err;
    CHECK(ts, grade_extract(NULL, 3, GRADE_BOXED, &a, &err) == -1 && strstr(err.msg, "NULL"));
    CHECK(ts, grade_extract(NULL, 0, GRADE_BOXED, &a, &err) == 0 && a == NULL);
}

static void test_choice_and_answer_is(struct test_state *ts)
{
    CHECK_EXTRACT(ts, GRADE_CHOICE, "so \\boxed{B}", "B");
    CHECK_EXTRACT(ts, GRADE_CHOICE, "so \\boxed{(C)}", "C");
    CHECK_EXTRACT(ts, GRADE_CHOICE, "so \\boxed{\\text{D}}", "D");
    CHECK_EXTRACT(ts, GRADE_CHOICE, "so \\boxed{A. 12 cm}", "A");
    CHECK_EXTRACT(ts, GRADE_CHOICE, "\\boxed{12} The answer is (E).", "E");     /* box not a letter */
    CHECK_EXTRACT(ts, GRADE_CHOICE, "the answer is B, since ...", "B");
    CHECK_EXTRACT(ts, GRADE_CHOICE, "The Answer Is: C", "C");
    CHECK_EXTRACT(ts, GRADE_CHOICE, "the answer is Because", NONE);             /* a word, not a letter */
    CHECK_EXTRACT(ts, GRADE_CHOICE, "Reasoning...\n(A)\n", "A");                /* a lone last line */
    CHECK_EXTRACT(ts, GRADE_CHOICE, "Reasoning...\nB.", "B");
    CHECK_EXTRACT(ts, GRADE_CHOICE, "Reasoning... I think A", NONE);
    CHECK_EXTRACT(ts, GRADE_CHOICE, "Z", NONE);                                  /* past J */
    CHECK_EXTRACT(ts, GRADE_ANSWER_IS, "So the answer is 3.5. Done.", "3.5");
    CHECK_EXTRACT(ts, GRADE_ANSWER_IS, "the answer is 1. But The answer is: 12 cm\nmore", "12 cm");
    CHECK_EXTRACT(ts, GRADE_ANSWER_IS, "THE ANSWER IS  x = 2", "x = 2");
    CHECK_EXTRACT(ts, GRADE_ANSWER_IS, "the answer is .", NONE);
    CHECK_EXTRACT(ts, GRADE_ANSWER_IS, "no marker", NONE);
}

#define EQ(ts, given, ref, want) \
    CHECK_MSG(ts, grade_equal(given, ref) == (want), "grade_equal(\"%s\", \"%s\") != %d", given, ref, want)

static void test_grade_rules(struct test_state *ts)
{
    CHECK(ts, grade_equal(NULL, "5") == 0); /* Python None */
    EQ(ts, "None", "None", 1);             /* the string "None" is an ordinary answer */
    EQ(ts, "", "", 1);                     /* empty boxes match each other */
    EQ(ts, "", "0", 0);
    /* path (a) */
    EQ(ts, "\\dfrac{1}{2}", "\\frac12", 1);
    EQ(ts, "0.5", "\\frac{1}{2}", 1);
    EQ(ts, "1/2", "\\frac{1}{2}", 1);
    EQ(ts, "90^{\\circ}", "90", 1);
    EQ(ts, "50\\%", "50", 1);
    EQ(ts, "x = 5", "5", 1);
    EQ(ts, "abc=3", "3", 0);               /* prefix longer than 2 characters stays */
    EQ(ts, "\\sqrt3", "\\sqrt{3}", 1);
    EQ(ts, "5 \\text{ cm}", "5", 1);
    /* path (b) */
    EQ(ts, "5 meters", "5", 1);
    EQ(ts, "today", "to", 1);              /* "day" is a unit word anywhere */
    EQ(ts, "3 million", "3000000", 0);   /* "3*10^6" is not an integer string */
    EQ(ts, "1 or 2", "1,2", 1);
    EQ(ts, "\\text{Yes}", "yes", 1);
    EQ(ts, "5.000000001", "5", 1);
    EQ(ts, "0.99999999", "1", 1);          /* within 1e-7 of an integer */
    EQ(ts, "1,000", "1000", 1);
    EQ(ts, "1,0000", "10000", 0);
    EQ(ts, "\\Delta", "δ", 1);             /* LaTeX to text, then lower() */
    EQ(ts, "\\frac{1+2}{3}", "\\frac{5}{3}", 1); /* pylatexenc writes no parentheses */
    EQ(ts, "\\frac{1+2}{3}", "1", 0);
    EQ(ts, "7 3/4", "7.75", 1);            /* mixed number */
    /* element-wise tuples and intervals */
    EQ(ts, "(0.5, 1)", "(\\frac{1}{2}, 1)", 1);
    EQ(ts, "[1,2)", "(1,2]", 0);
    EQ(ts, "(1,2,3)", "(1,2)", 0);
    EQ(ts, "(2/4, 1)", "(1/2, 1)", 0);     /* fractions must match exactly */
    EQ(ts, "2/4", "1/2", 0);
    EQ(ts, "4/2", "2", 0);                 /* integer vs non-integer */
    /* the exact evaluator */
    EQ(ts, "0.25", "1/4", 1);
    EQ(ts, "0.1", "1/10", 1);
    EQ(ts, "0.1+0.2", "0.3", 0);           /* 53-bit floats, as sympy's Float */
    EQ(ts, "1/3", "0.333", 0);
    EQ(ts, "2.5", "\\frac{5}{2}", 1);
    EQ(ts, "2^3", "8", 0);                 /* integer vs non-integer string */
    EQ(ts, "2^-1", "0.5", 1);
    EQ(ts, "2^{-1}", "1/2", 1);           /* braces go before the "^{" check */
    EQ(ts, "2^{(-1)}", "1/2", 0);         /* "^(" is never evaluated */
    EQ(ts, "2^10", "1024", 0);             /* a two-digit exponent is never evaluated */
    EQ(ts, "2x", "2*x", 1);
    EQ(ts, "\\frac{\\pi}{2}", "0.5\\pi", 1);
    EQ(ts, "\\frac{4}{3}\\pi", "\\frac{4\\pi}{3}", 1);
    EQ(ts, "3.14", "\\pi", 0);
    EQ(ts, "\\sqrt{\\frac{1}{4}}", "\\frac{1}{2}", 1);
    EQ(ts, "\\sqrt{16}", "4.0", 0);
    EQ(ts, "x+1", "1+x", 1);               /* same polynomial */
    EQ(ts, "x+1", "1+y", 0);
    EQ(ts, "xyz", "zyx", 0);               /* more than 2 letters: never evaluated */
    EQ(ts, "1/0", "2", 0);
    EQ(ts, "(B)", "B", 1);
    /* untrusted input */
    char deep[2000];
    memset(deep, '(', 1000);
    memset(deep + 1000, ')', 999);
    deep[1999] = '\0';
    EQ(ts, deep, "1", 0);
    EQ(ts, "99999999999999999999*99999999999999999999", "1", 0); /* overflow: cannot decide */
    EQ(ts, "9223372036854775807*2", "18446744073709551614", 0);
    EQ(ts, "\xff\xfe", "\xff\xfe", 1);
    EQ(ts, "\\frac", "\\frac", 1);
    EQ(ts, "\\sqrt", "x", 0);
}

static void test_normalizers(struct test_state *ts)
{
    struct { const char *in, *math, *expr; } cases[] = {
        {"\\text{ 5 }", "5", "5"},
        {"\\dfrac12", "\\frac{1}{2}", "1/2"},
        {"5 cm^2", "5cm^2", "5"},
        {"1,000,000", "1,000,000", "1000000"},
        {"\\frac{\\sqrt{3}}{2}", "\\frac{\\sqrt{3}}{2}", "sqrt(3)/2"},
        {"3 \\frac{1}{2}", "3\\frac{1}{2}", "3+1/2"},
        {"\\left(1, 2\\right)", "(1,2)", "(1,2)"},
        {"1e3", "1e3", "1000"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *m = grade_normalize_math(cases[i].in), *e = grade_normalize_expr(cases[i].in);
        CHECK_MSG(ts, !strcmp(m, cases[i].math), "math(%s) = %s", cases[i].in, m);
        CHECK_MSG(ts, !strcmp(e, cases[i].expr), "expr(%s) = %s", cases[i].in, e);
        free(m);
        free(e);
    }
}

int main(void)
{
    struct test_state ts = {0};
    RUN(&ts, test_boxed);
    RUN(&ts, test_choice_and_answer_is);
    RUN(&ts, test_grade_rules);
    RUN(&ts, test_normalizers);
    return test_summary(&ts);
}
