/* libFuzzer target: ckpt_parse_latest on arbitrary bytes. A result is either -1 with a message, or
 * a step >= 0 whose canonical spelling parses back to the same step. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mmupt/checkpoint.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct mmupt_err err;
    err.msg[0] = '\0';
    int64_t step = ckpt_parse_latest((const char *)data, size, &err);
    if (step < -1 || (step == -1 && !err.msg[0])) abort();
    if (step >= 0) {
        char text[64];
        int n = snprintf(text, sizeof text, "step-%08lld\n", (long long)step);
        if (ckpt_parse_latest(text, (size_t)n, &err) != step) abort();
    }
    return 0;
}
