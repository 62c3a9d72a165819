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
            if (cli_parse_shard_mb("convert", argv[++i], &shard_mb)) return MMUPT_EXIT_USAGE;
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
    if (model_save_hf_dir(&m.spec, m.params, in, out, shard_mb, &err)) {
        cli_error("convert", "%s", err.msg);
        goto done;
    }
    log_info(&lg, "wrote %s: %s, %d tensors, %lld parameters (F32, legacy layout)", out, model_arch_name(m.cfg.arch),
             m.spec.n_params, (long long)m.spec.total);
    rc = MMUPT_EXIT_OK;
done:
    model_free(&m);
    return rc;
}
