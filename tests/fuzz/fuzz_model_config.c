/* libFuzzer target for the config.json parser: arbitrary bytes must give a config or an error,
 * never a crash; an accepted config must be one the parameter table can be built from. */
#include <stdint.h>
#include <stdlib.h>

#include "mmupt/model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct model_config c;
    struct mmupt_err err;
    if (model_config_parse(&c, "fuzz.json", (const char *)data, size, &err) != 0) return 0;
    /* Accepted sizes are bounded, but a table for a huge model is still big: build it only for
     * configs whose table stays small, and check it tiles the buffer. */
    int64_t layers = c.text.n_layers + (c.has_vision ? c.vision.depth : 0);
    if (layers > 256) return 0;
    struct model_spec s;
    model_spec_build(&s, &c);
    int64_t next = 0;
    for (int i = 0; i < s.n_params; i++) {
        if (s.params[i].offset != next || s.params[i].numel < 0) abort();
        next += s.params[i].numel;
    }
    if (next != s.total) abort();
    model_spec_free(&s);
    return 0;
}
