/* libFuzzer target for the configuration parsers: the YAML loader and the override parser.
 * Oracle beyond "no crash, no sanitizer report": whatever loads must emit YAML that loads back to
 * an identical config, and a failed load must leave the config untouched. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mmupt/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_roundtrip(const struct cfg *c)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f || cfg_write_yaml(c, f, false)) abort();
    fclose(f);
    struct cfg *back = malloc(sizeof *back);
    struct mmupt_err err;
    cfg_defaults(back);
    if (cfg_load_buffer(back, "emitted", text, len, &err) != 0) {
        fprintf(stderr, "emitted config does not load: %s\n%s\n", err.msg, text);
        abort();
    }
    if (!cfg_equal(c, back)) {
        fprintf(stderr, "emitted config loads to different values:\n%s\n", text);
        abort();
    }
    free(back);
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cfg *c = malloc(sizeof *c), *before = malloc(sizeof *before);
    struct mmupt_err err;
    cfg_defaults(c);
    *before = *c;
    if (cfg_load_buffer(c, "fuzz.yaml", (const char *)data, size, &err) == 0) check_roundtrip(c);
    else if (!cfg_equal(c, before)) abort();

    /* The same bytes as one command-line override. */
    char *arg = malloc(size + 1);
    memcpy(arg, data, size);
    arg[size] = '\0';
    cfg_defaults(c);
    if (cfg_apply_override(c, arg, &err) == 0) check_roundtrip(c);
    else if (!cfg_equal(c, before)) abort();
    free(arg);
    free(c);
    free(before);
    return 0;
}
