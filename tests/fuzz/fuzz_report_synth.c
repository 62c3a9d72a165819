/* libFuzzer target: report_parse_synth (mmupt synth's summary JSON, as the quickstart report reads
 * it) on arbitrary bytes. A result is either -1 with a message, or counts that are non-negative and
 * add up: kept + every rejection = candidates. */
#include <stdint.h>
#include <stdlib.h>

#include "mmupt/report.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct report_synth_data s;
    struct mmupt_err err;
    err.msg[0] = '\0';
    if (report_parse_synth("fuzz.json", (const char *)data, size, &s, &err)) {
        if (!err.msg[0]) abort();
        return 0;
    }
    if (s.items_used < 0 || s.candidates < 0 || s.kept < 0 || s.kept > s.candidates || !s.mode[0]) abort();
    if (s.n_reasons < 0 || s.n_reasons > REPORT_MAX_REASONS) abort();
    int64_t sum = s.kept;
    for (int i = 0; i < s.n_reasons; i++) {
        if (s.reasons[i].n < 0) abort();
        sum += s.reasons[i].n;
    }
    if (sum != s.candidates) abort();
    return 0;
}
