/* mmupt convert: load a Hugging Face model directory (either key layout, BF16/F16/F32, sharded or
 * not) and write it back in the legacy layout as F32 safetensors, which transformers and vLLM load.
 * It repairs checkpoints saved in the transformers 4.52 layout and checks that mmupt reads a model. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "mmupt/log.h"
#include "mmupt/model.h"
#include "mmupt/strutil.h"

static const char usage[] =
    "usage: mmupt convert --model DIR --out DIR [--shard-mb N]\n"
    "\n"
    "Read the model in DIR (config.json + *.safetensors) and write OUT with config.json and the\n"
    "weights as F32 safetensors in the legacy Hugging Face key layout (model.*, visual.*,\n"
    "lm_head.weight), sharded with model.safetensors.index.json above N MB (default 4096).\n"
    "generation_config.json and tokenizer files are copied when present.\n";

static const char *const copied[] = {"config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
                                     "preprocessor_config.json", "chat_template.json", NULL};

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

int cmd_convert(int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        fputs(usage, stdout);
        return MMUPT_EXIT_OK;
    }
    const char *in = NULL, *out = NULL;
    double shard_mb = 4096;
    for (int i = 1; i < argc; i++) {
        if (i + 1 < argc && strcmp(argv[i], "--model") == 0) in = argv[++i];
        else if (i + 1 < argc && strcmp(argv[i], "--out") == 0) out = argv[++i];
        else if (i + 1 < argc && strcmp(argv[i], "--shard-mb") == 0) {
            char *end;
            shard_mb = strtod(argv[++i], &end);
            if (*end || !(shard_mb >= 0.01 && shard_mb <= 1048576)) {
                cli_error("convert", "--shard-mb must be a number in [0.01, 1048576]");
                return MMUPT_EXIT_USAGE;
            }
        } else {
            cli_error("convert", "unknown or incomplete argument '%s'\n\n%s", argv[i], usage);
            return MMUPT_EXIT_USAGE;
        }
    }
    if (!in || !out) {
        cli_error("convert", "--model and --out are required\n\n%s", usage);
        return MMUPT_EXIT_USAGE;
    }
    struct log_ctx lg;
    log_init(&lg, LOG_INFO, 0, stderr);
    struct model m;
    struct mmupt_err err;
    if (model_open(&m, in, &err)) {
        cli_error("convert", "%s", err.msg);
        return MMUPT_EXIT_ERROR;
    }
    int rc = MMUPT_EXIT_ERROR;
    if (mkdir(out, 0755) != 0 && errno != EEXIST) {
        cli_error("convert", "%s: cannot create: %s", out, strerror(errno));
        goto done;
    }
    if (model_weights_save(&m.spec, m.params, out, (size_t)(shard_mb * 1048576.0), &err)) {
        cli_error("convert", "%s", err.msg);
        goto done;
    }
    for (int i = 0; copied[i]; i++) {
        char from[4096], to[4096];
        snprintf(from, sizeof from, "%s/%s", in, copied[i]);
        snprintf(to, sizeof to, "%s/%s", out, copied[i]);
        struct stat st;
        if (stat(from, &st) != 0) continue;
        if (copy_file(from, to, &err)) {
            cli_error("convert", "%s", err.msg);
            goto done;
        }
    }
    log_info(&lg, "wrote %s: %s, %d tensors, %lld parameters (F32, legacy layout)", out, model_arch_name(m.cfg.arch),
             m.spec.n_params, (long long)m.spec.total);
    rc = MMUPT_EXIT_OK;
done:
    model_free(&m);
    return rc;
}
