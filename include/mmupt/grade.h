/* Answer extraction and MathRuler-compatible answer grading (docs/grading.md).
 *
 * MM-UPT rewards a sample when its extracted answer is equivalent to the group's majority answer;
 * "equivalent" is mathruler 0.1.0's grade_answer. These functions reproduce it in C: both string
 * normalisations, the tuple/interval split and, in place of sympy, a small exact evaluator for
 * rational arithmetic with pi. Where sympy would decide by symbolic algebra the answer here is 0;
 * docs/grading.md lists the classes of disagreement and the parity table measures them. */
#ifndef MMUPT_GRADE_H
#define MMUPT_GRADE_H

#include <stddef.h>

#include "mmupt/err.h"

/* Same order as config reward.extractor (enum cfg_extractor). */
enum grade_extractor { GRADE_BOXED = 0, GRADE_CHOICE, GRADE_ANSWER_IS };

/* An extracted answer longer than this is treated as no answer (never cut). */
#define GRADE_MAX_ANSWER 4096

/* Extract the answer from a model response (len bytes, any bytes; NUL bytes included).
 * Returns 1 with a malloc'd NUL-terminated *answer, 0 when there is none (*answer = NULL), -1 on
 * error (a NULL response with len > 0). Rules per extractor are in docs/grading.md; BOXED is
 * exactly mathruler's extract_boxed_content except that "None" is reported as 0. */
int grade_extract(const char *response, size_t len, enum grade_extractor how, char **answer, struct mmupt_err *err);

/* mathruler grader.grade_answer(given, reference): 1 equal, 0 not (or cannot decide). NULL given
 * (Python None) gives 0; a NULL reference also gives 0. */
int grade_equal(const char *given, const char *reference);

/* The two normalisations, exposed for tests and for the docs' examples; malloc'd results.
 * grade_normalize_math: math_normalize.normalize_answer (Hendrycks MATH _strip_string).
 * grade_normalize_expr: grader._normalize (units, LaTeX to text, case, integers). */
char *grade_normalize_math(const char *s);
char *grade_normalize_expr(const char *s);

/* ---- multiple choice (src/grade/choice.c) ----
 * A multiple-choice problem ends with a choices block, as the dataset converter writes it:
 *     ...question text
 *     Choices:
 *     (A) 12
 *     (B) 15
 * Its answer is the letter. Responses are graded by letter: "B", "(B)", "B.", "B) 15", "b" all
 * mean B, and an answer equal (grade_equal) to one option's text means that option's letter. */
#define GRADE_MAX_CHOICES 26

struct grade_choices {
    int n;                            /* options: letters 'A' .. 'A' + n - 1, in order */
    char *text[GRADE_MAX_CHOICES];    /* each option's text, trimmed (malloc'd) */
};

/* The choices block at the end of problem: a line "Choices:" followed only by lines "(A) text",
 * "(B) text", ... with consecutive letters from A (at least two; blank lines at the end are
 * allowed). Returns 1 with *out filled (grade_choices_free), 0 when there is none (*out empty). */
int grade_choices_parse(const char *problem, struct grade_choices *out);
void grade_choices_free(struct grade_choices *c);
/* The option letter an answer names ('A'..), or 0 when it names none: a letter form of an existing
 * option ("B", "(B)", "B.", "B)", "B:", any of those followed by text, lower case too, also inside
 * \text{}), else the first option whose text grade_equal accepts. NULL answer: 0. */
char grade_choice_letter(const struct grade_choices *c, const char *answer);

#endif
