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

#endif
