/* grade: multiple-choice blocks and letter normalisation (src/grade/choice.c), with odd and broken
 * inputs: a block that is not at the end, letters out of order, one option only, no header. */
#include <stdlib.h>
#include <string.h>

#include "../test.h"
#include "mmupt/grade.h"

static const char *MC = "<image>What is the length of AB?\nChoices:\n(A) 12\n(B) 15 cm\n(C) \\frac{1}{2}\n(D) \n";

static void test_parse(struct test_state *ts)
{
    struct grade_choices c;
    CHECK(ts, grade_choices_parse(MC, &c) == 1);
    CHECK(ts, c.n == 4);
    if (c.n == 4) {
        CHECK(ts, strcmp(c.text[0], "12") == 0 && strcmp(c.text[1], "15 cm") == 0);
        CHECK(ts, strcmp(c.text[2], "\\frac{1}{2}") == 0 && strcmp(c.text[3], "") == 0);
    }
    grade_choices_free(&c);
    CHECK(ts, c.n == 0);
    /* No trailing newline, CRLF lines, trailing blank lines, the header as the first line. */
    CHECK(ts, grade_choices_parse("Q\nChoices:\n(A) x\n(B) y", &c) == 1 && c.n == 2);
    grade_choices_free(&c);
    CHECK(ts, grade_choices_parse("Q\r\nChoices:\r\n(A) x\r\n(B) y\r\n\n\n", &c) == 1 && c.n == 2 &&
                  strcmp(c.text[1], "y") == 0);
    grade_choices_free(&c);
    CHECK(ts, grade_choices_parse("Choices:\n(A) x\n(B) y\n", &c) == 1);
    grade_choices_free(&c);
    /* Two headers: the last block counts. */
    CHECK(ts, grade_choices_parse("Choices:\n(A) 1\nmore text\nChoices:\n(A) 3\n(B) 4\n(C) 5\n", &c) == 1 && c.n == 3 &&
                  strcmp(c.text[0], "3") == 0);
    grade_choices_free(&c);
}

static void test_parse_refused(struct test_state *ts)
{
    static const char *const bad[] = {
        NULL,
        "",
        "What is 2+2?",
        "Choices:",                                   /* nothing after the header */
        "Q\nChoices:\n(A) only one\n",                /* one option is no choice */
        "Q\nChoices:\n(A) x\n(C) y\n",                /* a letter skipped */
        "Q\nChoices:\n(B) x\n(C) y\n",                /* not from A */
        "Q\nChoices:\n(A) x\n(B) y\nWhich one?\n",    /* the block is not at the end */
        "Q\nChoices:\n(A) x\n(B) y\n\ntext after\n",  /* text after a blank line */
        "Q Choices:\n(A) x\n(B) y\n",                 /* the header is not a line of its own */
        "Q\nChoices: (A) x (B) y\n",                  /* options on the header line */
        "Q\nchoices:\n(A) x\n(B) y\n",                /* case matters: the converter's exact text */
        "Q\nChoices:\nA) x\nB) y\n",                  /* not in parentheses */
        "Q\nChoices:\n(a) x\n(b) y\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct grade_choices c;
        c.n = 99;
        int rc = grade_choices_parse(bad[i], &c);
        CHECK_MSG(ts, rc == 0 && c.n == 0, "case %zu parsed (%d options)", i, c.n);
        grade_choices_free(&c);
    }
    /* 26 options parse, a 27th line is refused. */
    char big[2048] = "Q\nChoices:\n";
    for (int i = 0; i < 26; i++) snprintf(big + strlen(big), sizeof big - strlen(big), "(%c) %d\n", 'A' + i, i);
    struct grade_choices c;
    CHECK(ts, grade_choices_parse(big, &c) == 1 && c.n == 26);
    grade_choices_free(&c);
    strcat(big, "([) 26\n");
    CHECK(ts, grade_choices_parse(big, &c) == 0);
}

static void test_letters(struct test_state *ts)
{
    struct grade_choices c;
    CHECK(ts, grade_choices_parse(MC, &c) == 1);
    struct {
        const char *answer;
        char want;
    } cases[] = {
        {"B", 'B'}, {"(B)", 'B'}, {"B.", 'B'}, {"B)", 'B'}, {"B:", 'B'}, {"B) 15 cm", 'B'}, {"(B) 15", 'B'},
        {"b", 'B'}, {" (c) ", 'C'}, {"\\text{D}", 'D'}, {"\\text{ (A) }", 'A'}, {"\\mathrm{C}", 'C'},
        {"12", 'A'},                 /* an option's text */
        {"12.0", 'A'},               /* by the grader's equality */
        {"0.5", 'C'},                /* \frac{1}{2} */
        {"15 cm", 'B'},
        {"E", 0},                    /* not an option */
        {"(E)", 0}, {"Z.", 0},
        {"Because", 0},              /* a word starting with a letter */
        {"B 15", 0},                 /* no separator: not a letter form, and not an option's text */
        {"", 0},                     /* empty matches no option, not even the empty one */
        {"13", 0},
        {"()", 0}, {"(", 0}, {"(B", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char got = grade_choice_letter(&c, cases[i].answer);
        CHECK_MSG(ts, got == cases[i].want, "'%s' -> '%c', want '%c'", cases[i].answer, got ? got : '0',
                  cases[i].want ? cases[i].want : '0');
    }
    CHECK(ts, grade_choice_letter(&c, NULL) == 0);
    grade_choices_free(&c);
    /* No options: nothing is a letter. */
    struct grade_choices none = {0};
    CHECK(ts, grade_choice_letter(&none, "A") == 0);
}

int main(void)
{
    struct test_state ts = {0};
    RUN(&ts, test_parse);
    RUN(&ts, test_parse_refused);
    RUN(&ts, test_letters);
    return test_summary(&ts);
}
