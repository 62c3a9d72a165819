/* mmupt sft: supervised fine-tuning on a split's answer texts (src/sft), the quickstart's warm-up. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "mmupt/log.h"
#include "mmupt/sft.h"

static const char usage[] =
    "usage: mmupt sft --model DIR --data SPLIT.h5 --out OUT_DIR [options]\n"
    "\n"
    "Fine-tune the model in DIR on the items of SPLIT.h5: each item's prompt (chat template, images)\n"
    "followed by its `answer` text and <|im_end|>; the loss is the mean cross-entropy of those target\n"
    "tokens (prompt and image tokens are not scored). AdamW, linear warmup then cosine decay, gradient\n"
    "clipping at 1.0, shuffled batches (as many epochs as the steps need). OUT_DIR becomes a Hugging\n"
    "Face model directory (model.safetensors, config and tokenizer copied from DIR) that mmupt\n"
    "generate, mmupt train and transformers load; it must not exist or be empty.\n"
    "\n"
    "options:\n"
    "  --init random        start from random weights (transformers' initialisation, keyed by --seed);\n"
    "                       DIR then needs only config.json and tokenizer.json\n"
    "  --steps N            optimizer steps (default 800)\n"
    "  --batch B            examples per step (default 16)\n"
    "  --lr X               peak learning rate (default 2e-3)\n"
    "  --warmup-ratio R     share of the steps with linear warmup (default 0.05)\n"
    "  --weight-decay W     AdamW weight decay (default 0.01)\n"
    "  --seed S             data order and random init (default 1)\n"
    "  --max-prompt N       skip items whose prompt has more tokens (default 0: no limit)\n"
    "  --max-target N       skip items whose answer + <|im_end|> has more tokens (default 512)\n"
    "  --min-pixels N       image resize bounds, as the later runs use them\n"
    "  --max-pixels N       (default 3136 and 12845056, the Qwen2-VL processor's)\n"
    "  --threads T          OpenMP threads (default: OMP_NUM_THREADS or all cores)\n"
    "  --log-every K        progress line every K steps (default 10; 0: none)\n"
    "\n"
    "Runs as one process (mpirun with more ranks is refused for now).\n"
    "Exit status: 0 done, 1 bad input (message says which), 2 bad command line.\n";

struct sft_cli {
    struct sft_paths paths;
    struct sft_config cfg;
    int threads;
};

/* A whole-string number; -1 when text is not one. */
static int num_i64(const char *text, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (end == text || *end || errno == ERANGE) return -1;
    *out = v;
    return 0;
}

/* An int-sized whole-string number (the range checks come later, with their messages). */
static int num_int(const char *text, int *out)
{
    int64_t v;
    if (num_i64(text, &v) || v < -(1 << 30) || v > 1 << 30) return -1;
    *out = (int)v;
    return 0;
}

static int num_f64(const char *text, double *out)
{
    char *end;
    *out = strtod(text, &end);
    return end == text || *end ? -1 : 0;
}

/* One option with its value. 1: not an option of ours. */
static int parse_opt(struct sft_cli *o, const char *a, const char *v)
{
    struct sft_config *c = &o->cfg;
    int64_t i = 0;
    if (strcmp(a, "--model") == 0) o->paths.model_dir = v;
    else if (strcmp(a, "--data") == 0) o->paths.data = v;
    else if (strcmp(a, "--out") == 0) o->paths.out_dir = v;
    else if (strcmp(a, "--init") == 0) {
        if (strcmp(v, "random") != 0) return -1;
        o->paths.init_random = 1;
    } else if (strcmp(a, "--lr") == 0) return num_f64(v, &c->lr);
    else if (strcmp(a, "--warmup-ratio") == 0) return num_f64(v, &c->warmup_ratio);
    else if (strcmp(a, "--weight-decay") == 0) return num_f64(v, &c->weight_decay);
    else if (strcmp(a, "--steps") == 0) return num_i64(v, &c->steps);
    else if (strcmp(a, "--max-prompt") == 0) return num_i64(v, &c->max_prompt);
    else if (strcmp(a, "--max-target") == 0) return num_i64(v, &c->max_target);
    else if (strcmp(a, "--min-pixels") == 0) return num_i64(v, &c->min_pixels);
    else if (strcmp(a, "--max-pixels") == 0) return num_i64(v, &c->max_pixels);
    else if (strcmp(a, "--seed") == 0) {
        if (num_i64(v, &i) || i < 0) return -1;
        c->seed = (uint64_t)i;
    } else if (strcmp(a, "--batch") == 0) return num_int(v, &c->batch);
    else if (strcmp(a, "--threads") == 0) return num_int(v, &o->threads);
    else if (strcmp(a, "--log-every") == 0) return num_int(v, &c->log_every);
    else return 1;
    return 0;
}

static int parse(int argc, char **argv, struct sft_cli *o)
{
    memset(o, 0, sizeof *o);
    sft_config_default(&o->cfg);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (a[0] != '-' || !v) {
            cli_error("sft", "%s '%s' (see mmupt sft --help)", a[0] != '-' ? "unexpected argument" : "missing value after",
                      a);
            return -1;
        }
        int r = parse_opt(o, a, argv[++i]);
        if (r > 0) cli_error("sft", "unknown option '%s' (see mmupt sft --help)", a);
        if (r < 0) cli_error("sft", "%s: '%s' is not a valid value", a, v);
        if (r) return -1;
    }
    if (!o->paths.model_dir || !o->paths.data || !o->paths.out_dir) {
        cli_error("sft", "--model, --data and --out are required\n\n%s", usage);
        return -1;
    }
    struct mmupt_err err;
    if (sft_config_check(&o->cfg, &err)) {
        cli_error("sft", "%s", err.msg);
        return -1;
    }
    if (o->threads < 0 || o->threads > 4096) {
        cli_error("sft", "--threads must be in [0, 4096] (0: the OpenMP default)");
        return -1;
    }
    return 0;
}

/* Train on this rank's share; rank 0 says why a run failed. */
static int run(void *ctx, const struct comm *w)
{
    struct sft_cli *o = ctx;
    struct mmupt_err err;
    struct log_ctx lg;
    log_init(&lg, LOG_INFO, w->rank, stderr);
    lg.only_rank0 = 1;
    struct sft_stats st = {0};
    if (sft_run(&o->paths, &o->cfg, w, &lg, &st, &err) == 0) return MMUPT_EXIT_OK;
    if (w->rank == 0) cli_error("sft", "%s", err.msg);
    return MMUPT_EXIT_ERROR;
}

int cmd_sft(int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        fputs(usage, stdout);
        return MMUPT_EXIT_OK;
    }
    struct sft_cli o;
    if (parse(argc, argv, &o)) return MMUPT_EXIT_USAGE;
    return cli_with_world("sft", &argc, &argv, o.threads, run, &o);
}
