/* Internal interfaces between the files of the grade module. */
#ifndef MMUPT_GRADE_INTERNAL_H
#define MMUPT_GRADE_INTERNAL_H

#include <stdlib.h>

/* pylatexenc's latex_to_text for the macros answers use (latex.c). *fail: Python would raise. */
char *grade_latex_to_text(const char *s, int *fail);

/* grader._str_is_int (normalize.c uses it, grade.c too). */
int grade_str_is_int(const char *s);
/* grader._strip_properly_formatted_commas; malloc'd. */
char *grade_strip_commas(const char *s);

/* grader.are_equal_under_sympy with an exact evaluator in place of sympy (eval.c): 1 when
 * (gt)-(given) evaluates to exactly zero, 0 when not or when it cannot decide. */
int grade_exact_equal(const char *gt, const char *given);

#endif
