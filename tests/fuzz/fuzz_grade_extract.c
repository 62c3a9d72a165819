/* libFuzzer target: grade_extract with every extractor on arbitrary bytes. Checks that an answer
 * is NUL-terminated within GRADE_MAX_ANSWER and that BOXED content never starts or ends with an
 * ASCII space (it is stripped) when the response holds no NUL byte. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mmupt/grade.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct mmupt_err err;
    for (int how = GRADE_BOXED; how <= GRADE_ANSWER_IS; how++) {
        char *ans = NULL;
        int rc = grade_extract((const char *)data, size, (enum grade_extractor)how, &ans, &err);
        if (rc < 0 || (rc == 0) != (ans == NULL)) abort();
        if (ans) {
            size_t n = strlen(ans);
            if (n > GRADE_MAX_ANSWER) abort();
            /* a NUL inside the box ends the C string early, so the edge check needs NUL-free input */
            if (how == GRADE_BOXED && n && !memchr(data, 0, size) && (ans[0] == ' ' || ans[n - 1] == ' ')) abort();
            /* grading an extracted answer against itself must not crash either */
            (void)grade_equal(ans, ans);
        }
        free(ans);
    }
    return 0;
}
