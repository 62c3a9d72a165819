/* mmupt synth: the policy writes new questions for a split's images (src/synth, docs/synth.md).
 * Under mpirun the items are shared among the ranks and rank 0 writes the new split and its
 * summary; the output is the same for any rank count. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "mmupt/comm.h"
#include "mmupt/config.h"
#include "mmupt/eval.h"
#include "mmupt/rollout.h"
#include "mmupt/synth.h"

static const char usage[] =
    "usage: mmupt synth --model PATH --data IN.h5 --out OUT.h5 [--config FILE] [synth.key=value ...] [options]\n"
    "       mpirun -np P mmupt synth ...   (the items are shared among P ranks; same output for any P)\n"
    "\n"
    "Let the model write new questions about the images of a dataset split, and save them as a new\n"
    "split WITHOUT answers (to train on with MM-UPT, whose reward needs none). PATH is a Hugging Face\n"
    "model directory or a training checkpoint (as for mmupt eval).\n"
    "\n"
    "Modes:\n"
    "  direct       the model sees an item's images and is asked for a new question about them\n"
    "  in-context   it also sees the item's question and answer, and is asked for a different one\n"
    "\n"
    "Per item, n candidates are sampled; each goes through the filters in this order, and the first\n"
    "that fails is its rejection reason: undecodable, empty, marker (holds <image> or <|...|>),\n"
    "too_short / too_long (--min-chars / --max-chars, in characters), not_question (ends with '?' or\n"
    "starts with a question or task word), answer_leak (in-context: states the original answer),\n"
    "duplicate / near_duplicate (of a question already kept for the item, or of the original one in\n"
    "in-context mode: word 3-gram Jaccard >= --max-overlap), surplus (the item already has --keep).\n"
    "Items without images are skipped, and in-context items without an answer when the prompt uses\n"
    "{answer}.\n"
    "\n"
    "Output: OUT.h5 with ids '<id>/synth-<mode>-<k>', the original source and images, the question as\n"
    "the problem (after the item's <image> markers) and a provenance string per item; OUT.json (OUT\n"
    "without .h5, plus .json) with the counts by reason, the settings and the prompt.\n"
    "\n"
    "Settings: the config section `synth` (mmupt config --list shows synth.mode, synth.n, synth.keep,\n"
    "synth.temperature, synth.top_p, synth.max_new_tokens, synth.min_chars, synth.max_chars,\n"
    "synth.max_overlap, synth.require_question, synth.prompt_direct and synth.prompt_in_context); with\n"
    "--config also data.min_pixels and data.max_pixels. The options below override the config.\n"
    "\n"
    "options:\n"
    "  --config FILE         a run config (YAML) to take the settings from\n"
    "  --mode M              direct or in-context (default direct)\n"
    "  -n N                  candidates per item (default 4)\n"
    "  --keep K              questions kept per item at most, <= n (default 1)\n"
    "  --temperature T       sampling temperature, >= 0 (default 1; 0 is greedy)\n"
    "  --top-p P             nucleus mass (default 1)\n"
    "  --max-new-tokens N    per candidate (default 128)\n"
    "  --seed S              sampler seed (default 1); draws are keyed by (seed, item, sample, token)\n"
    "  --limit K             only the first K items of the split (default: all)\n"
    "  --min-chars N         shortest question kept, in characters (default 10)\n"
    "  --max-chars N         longest question kept (default 400)\n"
    "  --max-overlap X       near-duplicate threshold, word 3-gram Jaccard (default 0.7; above 1: off)\n"
    "  --require-question yes|no   the not_question filter (default yes)\n"
    "  --prompt TEXT         the request to the model instead of the mode's default; in-context\n"
    "                        prompts may use {question} and {answer} (docs/synth.md has the defaults)\n"
    "  --min-pixels N        image resize bounds (default: the Qwen2-VL processor's 3136 and\n"
    "  --max-pixels N        12845056; pass training's data.min_pixels / data.max_pixels)\n"
    "  --base-model DIR      config and tokenizer for a checkpoint, instead of the path it records\n"
    "  --batch B             items generated together per rank (default 8)\n"
    "  --threads T           OpenMP threads per rank (default: OMP_NUM_THREADS or all cores)\n"
    CLI_DEVICE_HELP
    "The output must differ from the input; an existing output is replaced.\n";

struct synth_opts {
    const char *model, *base_model, *data, *out, *config;
    int threads, prompt_given;
    struct cli_device_opts device; /* --device, --dtype (default auto, auto) */
    struct synth_config cfg;
    struct cfg *cf; /* the resolved config section `synth` (and data.*); owns the config prompts */
};

/* One option with its value; -1 after a usage error. */
static int parse_one(struct synth_opts *o, const char *a, const char *v)
{
    struct synth_config *c = &o->cfg;
    double d = 0.0;
    long x = 0;
    int rc = 0;
    if (strcmp(a, "--model") == 0) o->model = v;
    else if (strcmp(a, "--base-model") == 0) o->base_model = v;
    else if (strcmp(a, "--data") == 0) o->data = v;
    else if (strcmp(a, "--out") == 0) o->out = v;
    else if (strcmp(a, "--device") == 0) rc = cli_parse_device("synth", v, &o->device);
    else if (strcmp(a, "--dtype") == 0) rc = cli_parse_dtype("synth", v, &o->device);
    else if (strcmp(a, "--prompt") == 0) c->prompt = v, o->prompt_given = 1;
    else if (strcmp(a, "--mode") == 0) {
        if (synth_parse_mode(v, &c->mode)) {
            cli_error("synth", "--mode: '%s' is not a mode: direct or in-context", v);
            rc = -1;
        }
    } else if (strcmp(a, "-n") == 0) rc = cli_parse_int("synth", a, v, 1, SYNTH_MAX_N, &c->n);
    else if (strcmp(a, "--keep") == 0) rc = cli_parse_int("synth", a, v, 1, SYNTH_MAX_N, &c->filter.keep);
    else if (strcmp(a, "--max-new-tokens") == 0) rc = cli_parse_int("synth", a, v, 1, 65536, &c->max_new);
    else if (strcmp(a, "--min-chars") == 0) rc = cli_parse_int("synth", a, v, 0, SYNTH_MAX_CHARS, &c->filter.min_chars);
    else if (strcmp(a, "--max-chars") == 0) rc = cli_parse_int("synth", a, v, 1, SYNTH_MAX_CHARS, &c->filter.max_chars);
    else if (strcmp(a, "--batch") == 0) rc = cli_parse_int("synth", a, v, 1, 4096, &c->batch);
    else if (strcmp(a, "--threads") == 0) rc = cli_parse_int("synth", a, v, 1, 1024, &o->threads);
    else if (strcmp(a, "--seed") == 0) rc = cli_parse_seed("synth", v, &c->seed);
    else if (strcmp(a, "--limit") == 0) rc = cli_parse_long("synth", a, v, 1, LONG_MAX, &x), c->limit = x;
    else if (strcmp(a, "--min-pixels") == 0) rc = cli_parse_long("synth", a, v, 1, LONG_MAX, &x), c->min_pixels = x;
    else if (strcmp(a, "--max-pixels") == 0) rc = cli_parse_long("synth", a, v, 1, LONG_MAX, &x), c->max_pixels = x;
    else if (strcmp(a, "--temperature") == 0) rc = cli_parse_double("synth", a, v, &d), c->temperature = (float)d;
    else if (strcmp(a, "--top-p") == 0) rc = cli_parse_double("synth", a, v, &d), c->top_p = (float)d;
    else if (strcmp(a, "--max-overlap") == 0) rc = cli_parse_double("synth", a, v, &c->filter.max_overlap);
    else if (strcmp(a, "--require-question") == 0) {
        if (strcmp(v, "yes") == 0) c->filter.require_question = 1;
        else if (strcmp(v, "no") == 0) c->filter.require_question = 0;
        else {
            cli_error("synth", "--require-question: '%s' is not yes or no", v);
            rc = -1;
        }
    } else {
        cli_error("synth", "unknown argument '%s' (see mmupt synth --help)", a);
        rc = -1;
    }
    return rc;
}

/* Both paths name the same file (the output would replace the input). */
static int same_file(const char *a, const char *b)
{
    struct stat sa, sb;
    if (strcmp(a, b) == 0) return 1;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

/* A lone `section.key=value` is a config override; everything else comes as `--name value`. */
static int is_override(const char *a) { return a[0] != '-' && strchr(a, '='); }

/* The config section `synth` (its defaults without --config), with a config file also the image
 * bounds training used. Returns 0, or MMUPT_EXIT_ERROR after printing what is wrong with it. */
static int from_config(struct synth_opts *o, int argc, char **argv)
{
    char **ov = mmupt_xcalloc((size_t)argc, sizeof *ov);
    int n = 0;
    for (int i = 1; i < argc; i++) {
        if (is_override(argv[i])) ov[n++] = argv[i];
        else if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) o->config = argv[++i];
        else i++; /* an option's value */
    }
    struct mmupt_err err;
    o->cf = mmupt_xcalloc(1, sizeof *o->cf);
    int rc = cfg_resolve(o->cf, o->config, n, ov, &err);
    free(ov);
    if (rc) {
        cli_error("synth", "%s", err.msg);
        return MMUPT_EXIT_ERROR;
    }
    const struct cfg_synth *y = &o->cf->synth;
    struct synth_config *c = &o->cfg;
    c->mode = y->mode == 1 ? SYNTH_IN_CONTEXT : SYNTH_DIRECT;
    c->n = (int)y->n;
    c->filter.keep = (int)y->keep;
    c->temperature = (float)y->temperature;
    c->top_p = (float)y->top_p;
    c->max_new = (int)y->max_new_tokens;
    c->filter.min_chars = (int)y->min_chars;
    c->filter.max_chars = (int)y->max_chars;
    c->filter.max_overlap = y->max_overlap;
    c->filter.require_question = y->require_question;
    if (o->config || n > 0) {
        c->min_pixels = o->cf->data.min_pixels;
        c->max_pixels = o->cf->data.max_pixels;
    }
    return 0;
}

/* The prompt: --prompt, else the config's for the mode (NULL when it is the built-in default, so
 * the summary can say the default was used). */
static void pick_prompt(struct synth_opts *o)
{
    struct synth_config *c = &o->cfg;
    if (o->prompt_given) return;
    const char *p = c->mode == SYNTH_IN_CONTEXT ? o->cf->synth.prompt_in_context : o->cf->synth.prompt_direct;
    c->prompt = strcmp(p, synth_default_prompt(c->mode)) == 0 ? NULL : p;
}

/* Returns 0, or the exit status after an error (2 for the command line, 1 for the config). */
static int parse(int argc, char **argv, struct synth_opts *o)
{
    memset(o, 0, sizeof *o);
    synth_config_default(&o->cfg);
    int rc = from_config(o, argc, argv);
    if (rc) return rc;
    for (int i = 1; i < argc; i += 2) {
        if (is_override(argv[i])) {
            i--; /* one word, not a pair */
            continue;
        }
        if (argv[i][0] != '-') {
            cli_error("synth", "unexpected argument '%s': options come as --name value (see mmupt synth --help)",
                      argv[i]);
            return MMUPT_EXIT_USAGE;
        }
        if (i + 1 >= argc) {
            cli_error("synth", "'%s' needs a value (see mmupt synth --help)", argv[i]);
            return MMUPT_EXIT_USAGE;
        }
        if (strcmp(argv[i], "--config") == 0) continue; /* read by from_config */
        if (parse_one(o, argv[i], argv[i + 1])) return MMUPT_EXIT_USAGE;
    }
    pick_prompt(o);
    if (!o->model || !o->data || !o->out) {
        cli_error("synth", "--model, --data and --out are required\n\n%s", usage);
        return MMUPT_EXIT_USAGE;
    }
    if (same_file(o->data, o->out)) {
        cli_error("synth", "--out %s is the input split --data %s; write the new questions to another file", o->out,
                  o->data);
        return MMUPT_EXIT_USAGE;
    }
    struct mmupt_err err;
    if (synth_config_check(&o->cfg, &err)) {
        cli_error("synth", "%s", err.msg);
        return MMUPT_EXIT_USAGE;
    }
    return 0;
}

struct progress {
    double t0, last;
    int show;
};

static void on_progress(void *ctx, int64_t done, int64_t total, const struct synth_result *r)
{
    struct progress *p = ctx;
    if (!p->show) return;
    double now = mmupt_now();
    if (done < total && now - p->last < 10.0) return; /* a line every 10 s and the last one */
    p->last = now;
    fprintf(stderr, "synth: %lld/%lld items%s, %lld of %lld candidates kept, %.1f s\n", (long long)done,
            (long long)total, p->show > 1 ? " (rank 0's share)" : "", (long long)r->counts.verdicts[SYNTH_KEEP],
            (long long)r->counts.candidates, now - p->t0);
}

static void print_summary(const struct synth_result *r, const char *out, const char *json)
{
    const struct synth_counts *k = &r->counts;
    fprintf(stderr, "synth: %lld items (%lld skipped: %lld without images, %lld without an answer, %lld unusable)\n",
            (long long)k->items, (long long)(k->skipped_no_image + k->skipped_no_answer + k->skipped_bad),
            (long long)k->skipped_no_image, (long long)k->skipped_no_answer, (long long)k->skipped_bad);
    fprintf(stderr, "synth: %lld candidates, %lld kept; rejected:", (long long)k->candidates,
            (long long)k->verdicts[SYNTH_KEEP]);
    for (int v = 1; v < SYNTH_N_VERDICTS; v++)
        if (k->verdicts[v]) fprintf(stderr, " %s %lld", synth_verdict_name((enum synth_verdict)v), (long long)k->verdicts[v]);
    fprintf(stderr, "\nsynth: wrote %s (%lld items) and %s\n", out, (long long)r->n, json);
    if (r->n == 0) fprintf(stderr, "synth: warning: no candidate passed the filters; %s has no items\n", out);
}

/* Rank 0: the new split and the summary. */
static int write_outputs(const struct synth_opts *o, const struct synth_config *c, struct ds_reader *ds,
                         const struct synth_result *r)
{
    struct mmupt_err err;
    char json[4096 + 16];
    synth_summary_path(o->out, json, sizeof json);
    if (synth_write(c, ds, r, o->out, &err) ||
        synth_write_summary(json, c, r, o->model, o->data, o->out, &err)) {
        cli_error("synth", "%s", err.msg);
        return MMUPT_EXIT_ERROR;
    }
    print_summary(r, o->out, json);
    return MMUPT_EXIT_OK;
}

static int run(void *ctx, const struct comm *w)
{
    struct synth_opts *o = ctx;
    struct mmupt_err err;
    struct model m;
    struct eval_model_source src;
    struct tok *tok = NULL;
    struct ds_reader *ds = NULL;
    struct cli_device cd;
    if (!cli_all_ok(w, cli_load_policy("synth", o->model, o->base_model, o->data, w, &o->device, &m, &src, &tok, &ds,
                                       &cd) == 0)) {
        if (ds) cli_policy_free(&m, tok, ds, &cd);
        return MMUPT_EXIT_ERROR;
    }
    /* Provenance names the policy: the model directory, or the checkpoint and its step. */
    char policy[4096 + 64];
    if (src.is_checkpoint) snprintf(policy, sizeof policy, "%s@step-%lld", src.ckpt, (long long)src.step);
    else snprintf(policy, sizeof policy, "%s", o->model);
    struct synth_config *c = &o->cfg;
    c->dev = cd.on ? &cd.d : NULL;
    struct log_ctx lg;
    log_init(&lg, LOG_WARN, w->rank, stderr);
    int32_t stops[8];
    struct progress pr = {.t0 = mmupt_now(), .show = w->rank == 0 ? (w->size > 1 ? 2 : 1) : 0};
    c->n_stop = rollout_default_stop_ids(src.dir, tok, stops, 8);
    c->stop_ids = stops;
    c->policy = policy;
    c->lg = &lg;
    c->progress = on_progress;
    c->ctx = &pr;
    c->shard_rank = w->rank;
    c->shard_count = w->size;
    struct synth_result r;
    int ok = synth_run(c, &m, tok, ds, &r, &err) == 0;
    if (!ok) cli_error("synth", "%s: %s", o->data, err.msg);
    int rc = MMUPT_EXIT_ERROR;
    if (cli_all_ok(w, ok)) {
        if (synth_gather(w, &r, &err)) cli_error("synth", "%s", err.msg);
        else rc = w->rank == 0 ? write_outputs(o, c, ds, &r) : MMUPT_EXIT_OK;
    }
    if (ok) synth_result_free(&r);
    cli_policy_free(&m, tok, ds, &cd);
    return rc;
}

int cmd_synth(int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        fputs(usage, stdout);
        return MMUPT_EXIT_OK;
    }
    struct synth_opts o;
    int rc = parse(argc, argv, &o);
    if (rc) {
        free(o.cf);
        return rc;
    }
    rc = cli_with_world("synth", &argc, &argv, o.threads, run, &o);
    free(o.cf);
    return rc;
}
