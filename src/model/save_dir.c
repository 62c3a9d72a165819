/* Writing a Hugging Face model directory (weights + the files that make it loadable): shared by
 * `mmupt convert`, `mmupt export` and `mmupt sft`. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "mmupt/model.h"
#include "mmupt/strutil.h"

/* The files besides the weights that make a directory loadable by transformers and vLLM. */
static const char *const copied[] = {"config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
                                     "preprocessor_config.json", "chat_template.json", "special_tokens_map.json",
                                     "vocab.json", "merges.txt", NULL};

static int copy_file(const char *from, const char *to, struct mmupt_err *err)
{
    char *buf;
    size_t len;
    if (file_read_all(from, 1u << 30, &buf, &len, err)) return -1;
    FILE *f = fopen(to, "wb");
    int ok = f && fwrite(buf, 1, len, f) == len;
    if (f && fclose(f) != 0) ok = 0;
    free(buf);
    return ok ? 0 : mmupt_fail(err, "%s: cannot write: %s", to, strerror(errno));
}

int model_save_hf_dir(const struct model_spec *spec, const float *params, const char *src, const char *out,
                     double shard_mb, struct mmupt_err *err)
{
    if (mkdir(out, 0755) != 0 && errno != EEXIST) return mmupt_fail(err, "%s: cannot create: %s", out, strerror(errno));
    if (model_weights_save(spec, params, out, (size_t)(shard_mb * 1048576.0), err)) return -1;
    for (int i = 0; copied[i]; i++) {
        char from[4096], to[4096];
        snprintf(from, sizeof from, "%s/%s", src, copied[i]);
        snprintf(to, sizeof to, "%s/%s", out, copied[i]);
        struct stat st;
        if (stat(from, &st) != 0) continue;
        if (copy_file(from, to, err)) return -1;
    }
    return 0;
}
