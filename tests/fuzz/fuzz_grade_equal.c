/* libFuzzer target: grade_equal on the two halves of the input (split at the first 0xff byte, or in
 * the middle). Asserts only what mathruler guarantees: grade(x, x) is true (path (a) compares the
 * normalised strings, which are equal), and NULL given is false. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mmupt/grade.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 8192) return 0;
    const uint8_t *cut = memchr(data, 0xff, size);
    size_t k = cut ? (size_t)(cut - data) : size / 2;
    char *a = malloc(k + 1), *b = malloc(size - k + 1);
    memcpy(a, data, k);
    a[k] = '\0';
    size_t bl = size - k - (cut ? 1 : 0);
    memcpy(b, data + size - bl, bl);
    b[bl] = '\0';
    int ab = grade_equal(a, b), ba = grade_equal(b, a);
    if ((ab != 0 && ab != 1) || (ba != 0 && ba != 1)) abort();
    if (grade_equal(a, a) != 1 || grade_equal(b, b) != 1) abort();
    if (grade_equal(NULL, a) != 0) abort();
    free(grade_normalize_math(a));
    free(grade_normalize_expr(b));
    free(a);
    free(b);
    return 0;
}
