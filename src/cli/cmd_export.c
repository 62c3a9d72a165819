/* mmupt export: a training checkpoint -> a Hugging Face model directory (transformers, vLLM). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "mmupt/checkpoint.h"
#include "mmupt/eval.h"
#include "mmupt/log.h"
#include "mmupt/model.h"
#include "mmupt/strutil.h"

static const char usage[] =
    "usage: mmupt export CHECKPOINT OUT_DIR [--shard-mb N] [--model DIR]\n"
    "\n"
    "Write the policy weights of a training checkpoint as a Hugging Face model directory: F32\n"
    "safetensors in the legacy key layout (model.*, visual.*, lm_head.weight), sharded with\n"
    "model.safetensors.index.json above N MB (default 4096), plus config.json, tokenizer and\n"
    "generation files copied from the model the run started from. transformers and vLLM load it.\n"
    "\n"
    "CHECKPOINT is a step-NNNNNNNN directory, or a checkpoint directory (its `latest` is used).\n"
    "--model DIR takes config and tokenizer from DIR instead of the path recorded in the checkpoint\n"
    "(for a run whose model directory has moved). OUT_DIR must not exist or be empty.\n";

int cmd_export(int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        fputs(usage, stdout);
        return MMUPT_EXIT_OK;
    }
    const char *pos[2] = {NULL, NULL}, *model_dir = NULL;
    int npos = 0;
    double shard_mb = 4096;
    for (int i = 1; i < argc; i++) {
        if (i + 1 < argc && strcmp(argv[i], "--shard-mb") == 0) {
            if (cli_parse_shard_mb("export", argv[++i], &shard_mb)) return MMUPT_EXIT_USAGE;
        } else if (i + 1 < argc && strcmp(argv[i], "--model") == 0) {
            model_dir = argv[++i];
        } else if (argv[i][0] != '-' && npos < 2) {
            pos[npos++] = argv[i];
        } else {
            cli_error("export", "unexpected argument '%s'\n\n%s", argv[i], usage);
            return MMUPT_EXIT_USAGE;
        }
    }
    if (npos != 2) {
        cli_error("export", "a checkpoint and an output directory are required\n\n%s", usage);
        return MMUPT_EXIT_USAGE;
    }
    struct mmupt_err err;
    int empty = dir_empty_or_missing(pos[1], &err);
    if (empty <= 0) {
        if (empty == 0) cli_error("export", "%s exists and is not empty: choose a new directory (nothing was written)", pos[1]);
        else cli_error("export", "%s", err.msg);
        return MMUPT_EXIT_ERROR;
    }
    /* Loading is eval's: both read a checkpoint the same way (src/eval/load.c). */
    char ckpt[CKPT_PATH_MAX];
    struct model m;
    struct eval_model_source src;
    if (eval_resolve_checkpoint(pos[0], ckpt, sizeof ckpt, &err) || eval_load_checkpoint(ckpt, model_dir, &m, &src, &err)) {
        int cfg = strstr(err.msg, "config.json") != NULL; /* the run's model moved: say how to point at it */
        cli_error("export", "%s%s", err.msg, cfg && !model_dir ? " (--model DIR takes the config from elsewhere)" : "");
        return MMUPT_EXIT_ERROR;
    }
    int rc = MMUPT_EXIT_ERROR;
    if (model_save_hf_dir(&m.spec, m.params, src.dir, pos[1], shard_mb, &err)) {
        cli_error("export", "%s", err.msg);
    } else {
        struct log_ctx lg;
        log_init(&lg, LOG_INFO, 0, stderr);
        log_info(&lg, "exported %s (step %lld, policy version %lld) to %s: %s, %lld parameters, F32 legacy layout",
                 ckpt, (long long)src.step, (long long)src.policy_version, pos[1], model_arch_name(m.cfg.arch), (long long)m.spec.total);
        rc = MMUPT_EXIT_OK;
    }
    model_free(&m);
    return rc;
}
