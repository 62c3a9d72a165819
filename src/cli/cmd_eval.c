/* mmupt eval: grade a model (a Hugging Face directory or a training checkpoint) on a split with
 * answers (src/eval): greedy pass@1, pass@1 at a temperature, pass@k and maj@k, maj@G with the
 * trainer's vote, pass@G, overall and per source. Decoding settings come from the config section
 * `eval` (--config FILE, key=value overrides), command-line options override them. Under mpirun the
 * items are shared among the ranks and rank 0 writes the results. Markdown table on stdout, progress
 * on stderr, JSON and markdown files on request. docs/evaluation.md. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "mmupt/comm.h"
#include "mmupt/config.h"
#include "mmupt/eval.h"
#include "mmupt/metrics.h"
#include "mmupt/rollout.h"
#include "mmupt/strutil.h"

static const char usage[] =
    "usage: mmupt eval --model PATH --data SPLIT.h5 [--config FILE] [section.key=value ...] [options]\n"
    "       mpirun -np P mmupt eval ...   (the items are shared among P ranks; same results for any P)\n"
    "\n"
    "Evaluate a model on a dataset split whose items have answers. PATH is a Hugging Face model\n"
    "directory, a training checkpoint (runs/X/checkpoints/step-00000020) or a checkpoint directory\n"
    "(its latest step); a checkpoint takes its architecture and tokenizer from the model the run\n"
    "started from (or --base-model DIR). Per item: a greedy answer and n answers sampled at the\n"
    "temperature, each graded like the reward (the \\boxed{} answer, MathRuler-equivalent to the item's\n"
    "answer; multiple-choice items by option letter). Reports greedy pass@1, pass@1 at T, pass@k\n"
    "(unbiased estimator) and maj@k (vote over the first k samples) for each k, maj@n (the trainer's\n"
    "vote), pass@n, maj@n - greedy, parse failures and response lengths, overall and per source.\n"
    "Items without an answer, or whose prompt cannot be built, are skipped and counted.\n"
    "\n"
    "Settings: the config section `eval` (eval.n, eval.temperature, eval.top_p, eval.max_new_tokens,\n"
    "eval.k, eval.greedy); with --config or overrides also data.format_prompt, data.min_pixels,\n"
    "data.max_pixels and reward.vote. The options below override the config.\n"
    "\n"
    "options:\n"
    "  --config FILE         a run config (YAML) to take the settings from\n"
    "  -n G                  samples per item (eval.n, default 1)\n"
    "  --temperature T       of the samples, > 0 (eval.temperature, default 0.2)\n"
    "  --top-p P             nucleus mass of the samples (eval.top_p, default 1)\n"
    "  --max-new-tokens N    per response (eval.max_new_tokens, default 1024)\n"
    "  --k LIST              k values for pass@k and maj@k, e.g. 1,4,8; each <= n (eval.k, default 1)\n"
    "  --greedy yes|no       also decode the greedy answer (eval.greedy, default yes)\n"
    "  --limit K             only the first K items of the split (default: all)\n"
    "  --min-pixels N        image resize bounds, as training used them (data.min_pixels /\n"
    "  --max-pixels N        data.max_pixels; without a config: the Qwen2-VL processor's 3136 and 12845056)\n"
    "  --seed S              sampler seed (default 1); draws are keyed by (seed, item, sample, token)\n"
    "  --vote paper|equivalence   the majority vote (reward.vote; default paper)\n"
    "  --format-prompt TEXT  appended to each problem after a space (data.format_prompt; without a\n"
    "                        config: nothing)\n"
    "  --base-model DIR      config and tokenizer for a checkpoint, instead of the path it records\n"
    "  --json FILE           write every metric, count and setting as one JSON object ('-': stdout)\n"
    "  --markdown FILE       write the settings and the table as markdown ('-': stdout)\n"
    "  --out DIR             write DIR/results.json and DIR/results.md (DIR is created)\n"
    "  --responses FILE      write every item's responses as JSON lines (for inspection; under mpirun\n"
    "                        each rank writes FILE.rank-R)\n"
    "  --batch B             items generated together per rank (default 16)\n"
    "  --threads T           OpenMP threads per rank (default: OMP_NUM_THREADS or all cores)\n"
    CLI_DEVICE_HELP
    "Stop tokens come from the model's generation_config.json (eos_token_id), else <|im_end|> and\n"
    "<|endoftext|>; <|image_pad|> gets logit bias -100 as in training.\n";

/* What the command line gave; `set_*` marks options given, so they override the config. */
struct eval_opts {
    const char *model, *base_model, *data, *json, *markdown, *out, *responses, *config;
    int threads;
    struct cli_device_opts device; /* --device, --dtype (default auto, auto) */
    int n_overrides;
    char **overrides;
    struct eval_config cfg;   /* option values (only those marked given are used) */
    int set_G, set_temperature, set_top_p, set_max_new, set_k, set_greedy, set_min_pixels, set_max_pixels;
    int set_vote, set_format_prompt;
};

/* One option with its value; -1 after a usage error. */
static int parse_one(struct eval_opts *o, const char *a, const char *v)
{
    struct eval_config *c = &o->cfg;
    long x = 0;
    int rc = 0;
    struct mmupt_err err;
    if (strcmp(a, "--model") == 0) o->model = v;
    else if (strcmp(a, "--base-model") == 0) o->base_model = v;
    else if (strcmp(a, "--data") == 0) o->data = v;
    else if (strcmp(a, "--config") == 0) o->config = v;
    else if (strcmp(a, "--json") == 0) o->json = v;
    else if (strcmp(a, "--markdown") == 0) o->markdown = v;
    else if (strcmp(a, "--out") == 0) o->out = v;
    else if (strcmp(a, "--responses") == 0) o->responses = v;
    else if (strcmp(a, "--device") == 0) rc = cli_parse_device("eval", v, &o->device);
    else if (strcmp(a, "--dtype") == 0) rc = cli_parse_dtype("eval", v, &o->device);
    else if (strcmp(a, "--format-prompt") == 0) c->format_prompt = v, o->set_format_prompt = 1;
    else if (strcmp(a, "--temperature") == 0) rc = cli_parse_float("eval", a, v, &c->temperature), o->set_temperature = 1;
    else if (strcmp(a, "--top-p") == 0) rc = cli_parse_float("eval", a, v, &c->top_p), o->set_top_p = 1;
    else if (strcmp(a, "--seed") == 0) rc = cli_parse_seed("eval", v, &c->seed);
    else if (strcmp(a, "--greedy") == 0) rc = cli_parse_yes_no("eval", a, v, &c->greedy), o->set_greedy = 1;
    else if (strcmp(a, "--k") == 0) {
        o->set_k = 1;
        if (eval_parse_k(v, c->k, &c->n_k, &err)) {
            cli_error("eval", "--k: %s", err.msg);
            rc = -1;
        }
    } else if (strcmp(a, "-n") == 0) {
        rc = cli_parse_long("eval", a, v, 1, EVAL_MAX_G, &x);
        c->G = (int)x;
        o->set_G = 1;
    } else if (strcmp(a, "--max-new-tokens") == 0) {
        rc = cli_parse_long("eval", a, v, 1, 65536, &x);
        c->max_new = (int)x;
        o->set_max_new = 1;
    } else if (strcmp(a, "--limit") == 0) {
        rc = cli_parse_long("eval", a, v, 1, LONG_MAX, &x);
        c->limit = x;
    } else if (strcmp(a, "--min-pixels") == 0) {
        rc = cli_parse_long("eval", a, v, 1, LONG_MAX, &x);
        c->min_pixels = x;
        o->set_min_pixels = 1;
    } else if (strcmp(a, "--max-pixels") == 0) {
        rc = cli_parse_long("eval", a, v, 1, LONG_MAX, &x);
        c->max_pixels = x;
        o->set_max_pixels = 1;
    } else if (strcmp(a, "--batch") == 0) {
        rc = cli_parse_long("eval", a, v, 1, 4096, &x);
        c->batch = (int)x;
    } else if (strcmp(a, "--threads") == 0) {
        rc = cli_parse_long("eval", a, v, 1, 1024, &x);
        o->threads = (int)x;
    } else if (strcmp(a, "--vote") == 0) {
        o->set_vote = 1;
        if (strcmp(v, "paper") == 0) c->vote = REWARD_VOTE_PAPER;
        else if (strcmp(v, "equivalence") == 0) c->vote = REWARD_VOTE_EQUIVALENCE;
        else {
            cli_error("eval", "--vote: '%s' is not a vote mode: paper or equivalence", v);
            rc = -1;
        }
    } else {
        cli_error("eval", "unknown argument '%s' (see mmupt eval --help)", a);
        rc = -1;
    }
    return rc;
}

/* Options come in pairs; a lone `section.key=value` is a config override (gathered at the front
 * of argv's tail: argv is ours to reorder). */
static int parse(int argc, char **argv, struct eval_opts *o)
{
    memset(o, 0, sizeof *o);
    eval_config_default(&o->cfg);
    o->overrides = argv + 1;
    for (int i = 1; i < argc;) {
        if (argv[i][0] != '-' && strchr(argv[i], '=')) {
            o->overrides[o->n_overrides++] = argv[i++];
            continue;
        }
        if (i + 1 >= argc) {
            cli_error("eval", "'%s' needs a value (see mmupt eval --help)", argv[i]);
            return -1;
        }
        if (parse_one(o, argv[i], argv[i + 1])) return -1;
        i += 2;
    }
    if (!o->model || !o->data) {
        cli_error("eval", "--model and --data are required\n\n%s", usage);
        return -1;
    }
    return 0;
}

/* The settings: config section `eval` (its defaults without a config), with a config also the data
 * and vote settings training used, then the options given. Returns 0, or the exit status after an
 * error: 1 when the config is at fault, 2 for a bad command line. String settings point into *cf. */
static int settings(struct eval_opts *o, struct cfg *cf, struct eval_config *c)
{
    struct mmupt_err err;
    int have_cfg = o->config || o->n_overrides > 0;
    if (cfg_resolve(cf, o->config, o->n_overrides, o->overrides, &err)) {
        cli_error("eval", "%s", err.msg);
        return MMUPT_EXIT_ERROR;
    }
    const struct eval_config *opt = &o->cfg;
    *c = *opt;
    const struct cfg_eval *e = &cf->eval;
    c->G = o->set_G ? opt->G : (int)e->n;
    c->temperature = o->set_temperature ? opt->temperature : (float)e->temperature;
    c->top_p = o->set_top_p ? opt->top_p : (float)e->top_p;
    c->max_new = o->set_max_new ? opt->max_new : (int)e->max_new_tokens;
    c->greedy = o->set_greedy ? opt->greedy : e->greedy;
    if (!o->set_k) {
        if (e->k.n < 1 || e->k.n > EVAL_MAX_K) {
            cli_error("eval", "%s: eval.k needs 1 to %d values, got %d", o->config ? o->config : "config", EVAL_MAX_K,
                      e->k.n);
            return MMUPT_EXIT_ERROR;
        }
        c->n_k = e->k.n;
        for (int i = 0; i < e->k.n; i++) c->k[i] = (int)e->k.v[i];
    }
    if (have_cfg) {
        if (!o->set_format_prompt) c->format_prompt = cf->data.format_prompt;
        if (!o->set_min_pixels) c->min_pixels = cf->data.min_pixels;
        if (!o->set_max_pixels) c->max_pixels = cf->data.max_pixels;
        if (!o->set_vote) c->vote = (enum reward_vote_mode)cf->reward.vote;
    }
    if (eval_config_check(c, &err)) {
        /* k > n can come from the config, the options or both: name where the settings came from. */
        if (have_cfg) {
            cli_error("eval", "%s: %s", o->config ? o->config : "overrides", err.msg);
            return MMUPT_EXIT_ERROR;
        }
        cli_error("eval", "%s", err.msg);
        return MMUPT_EXIT_USAGE;
    }
    return 0;
}

struct progress {
    double t0, last;
    int tty, show;
    FILE *responses;
    int failed_write;
};

static void on_progress(void *ctx, int64_t done, int64_t total, const struct eval_result *r)
{
    struct progress *p = ctx;
    if (!p->show) return;
    double now = mmupt_now(), el = now - p->t0;
    /* A terminal gets one line rewritten in place; a log file a line every 10 s and the last one. */
    if (!p->tty && done < total && now - p->last < 10.0) return;
    p->last = now;
    struct eval_metrics m;
    eval_metrics_of(&r->all, &m);
    double eta = done > 0 ? el / (double)done * (double)(total - done) : 0.0;
    fprintf(stderr, "%seval: %lld/%lld items%s, greedy %.3f, maj@%d %.3f, %.1f s, ETA %.0f s%s", p->tty ? "\r" : "",
            (long long)done, (long long)total, p->show > 1 ? " (rank 0's share)" : "",
            isfinite(m.greedy_pass1) ? m.greedy_pass1 : 0.0, r->G, isfinite(m.maj) ? m.maj : 0.0, el, eta,
            p->tty && done < total ? "   " : "\n");
    fflush(stderr);
}

/* A JSON string member; the text may be NULL (an undecodable response). */
static void put_str(FILE *f, const char *key, const char *s)
{
    char *buf = NULL;
    size_t len = 0, cap = 0;
    json_append_string(&buf, &len, &cap, s ? s : "");
    fprintf(f, "\"%s\": %.*s", key, (int)len, buf);
    free(buf);
}

static void on_item(void *ctx, const struct ds_item *item, const struct eval_response *greedy,
                    const struct eval_response *samples, int G)
{
    struct progress *p = ctx;
    FILE *f = p->responses;
    if (!f) return;
    fprintf(f, "{\"index\": %lld, ", (long long)item->index);
    put_str(f, "id", item->id);
    fputs(", ", f);
    put_str(f, "source", item->source);
    fputs(", ", f);
    put_str(f, "answer", item->answer);
    fputs(", ", f);
    if (greedy) put_str(f, "greedy", greedy->text);
    else fputs("\"greedy\": null", f);
    fputs(", \"samples\": [", f);
    for (int g = 0; g < G; g++) {
        char *buf = NULL;
        size_t len = 0, cap = 0;
        json_append_string(&buf, &len, &cap, samples[g].text ? samples[g].text : "");
        fprintf(f, "%s%.*s", g ? ", " : "", (int)len, buf);
        free(buf);
    }
    if (fputs("]}\n", f) == EOF) p->failed_write = 1;
}

/* Rank 0: the table on stdout and the files asked for. */
static int write_outputs(const struct eval_opts *o, const struct eval_config *c, const struct eval_result *r)
{
    struct mmupt_err err;
    if (r->skipped_no_answer || r->skipped_bad)
        fprintf(stderr, "eval: %lld of %lld items skipped: %lld without an answer, %lld unusable\n",
                (long long)(r->skipped_no_answer + r->skipped_bad), (long long)r->visited,
                (long long)r->skipped_no_answer, (long long)r->skipped_bad);
    eval_write_table(stdout, r);
    fflush(stdout);
    char pj[4096 + 16], pm[4096 + 16];
    if (o->out) {
        snprintf(pj, sizeof pj, "%s/results.json", o->out);
        snprintf(pm, sizeof pm, "%s/results.md", o->out);
    }
    if ((o->json && eval_write_json(o->json, c, r, o->model, o->data, &err)) ||
        (o->markdown && eval_write_markdown(o->markdown, c, r, o->model, o->data, &err)) ||
        (o->out && (dir_make_all(o->out, "results directory", &err) ||
                    eval_write_json(pj, c, r, o->model, o->data, &err) ||
                    eval_write_markdown(pm, c, r, o->model, o->data, &err)))) {
        cli_error("eval", "%s", err.msg);
        return MMUPT_EXIT_ERROR;
    }
    return MMUPT_EXIT_OK;
}

/* Load everything, evaluate this rank's share, gather on rank 0, print; the exit status. */
struct eval_job {
    struct eval_opts *o;
    struct eval_config *c;
};

static int run(void *ctx, const struct comm *w)
{
    struct eval_opts *o = ((struct eval_job *)ctx)->o;
    struct eval_config *c = ((struct eval_job *)ctx)->c;
    struct mmupt_err err;
    struct model m;
    struct eval_model_source src;
    struct tok *tok = NULL;
    struct ds_reader *ds = NULL;
    struct cli_device cd;
    if (!cli_all_ok(w, cli_load_policy("eval", o->model, o->base_model, o->data, w, &o->device, &m, &src, &tok, &ds,
                                       &cd) == 0)) {
        if (ds) cli_policy_free(&m, tok, ds, &cd);
        return MMUPT_EXIT_ERROR;
    }
    if (w->rank == 0 && src.is_checkpoint)
        fprintf(stderr, "eval: checkpoint %s (step %lld), architecture and tokenizer from %s\n", src.ckpt,
                (long long)src.step, src.dir);
    c->dev = cd.on ? &cd.d : NULL;
    struct log_ctx lg;
    log_init(&lg, LOG_WARN, w->rank, stderr);
    int32_t stops[8];
    struct progress pr = {.t0 = mmupt_now(), .tty = isatty(STDERR_FILENO), .show = w->rank == 0 ? (w->size > 1 ? 2 : 1) : 0};
    c->n_stop = rollout_default_stop_ids(src.dir, tok, stops, 8);
    c->stop_ids = stops;
    c->lg = &lg;
    c->progress = on_progress;
    c->on_item = on_item;
    c->ctx = &pr;
    c->shard_rank = w->rank;
    c->shard_count = w->size;
    c->keep_items = 1;
    int ok = 1;
    if (o->responses) {
        char path[4096 + 32];
        if (w->size > 1) snprintf(path, sizeof path, "%s.rank-%d", o->responses, w->rank);
        else snprintf(path, sizeof path, "%s", o->responses);
        if (!(pr.responses = fopen(path, "w"))) {
            cli_error("eval", "%s: cannot create: %s", path, strerror(errno));
            ok = 0;
        }
    }
    struct eval_result r;
    int have_r = 0;
    if (cli_all_ok(w, ok)) {
        have_r = eval_run(c, &m, tok, ds, &r, &err) == 0;
        if (!have_r) cli_error("eval", "%s: %s", o->data, err.msg);
    }
    if (pr.responses && (fclose(pr.responses) != 0 || pr.failed_write)) {
        cli_error("eval", "%s: cannot write the responses", o->responses);
        ok = 0;
    }
    int rc = MMUPT_EXIT_ERROR;
    if (cli_all_ok(w, ok && have_r)) {
        if (eval_gather(w, &r, &err)) cli_error("eval", "%s", err.msg);
        else if (w->rank == 0 && eval_check_graded(&r, &err)) cli_error("eval", "%s: %s", o->data, err.msg);
        else rc = w->rank == 0 ? write_outputs(o, c, &r) : MMUPT_EXIT_OK;
    }
    if (have_r) eval_result_free(&r);
    cli_policy_free(&m, tok, ds, &cd);
    return rc;
}

int cmd_eval(int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        fputs(usage, stdout);
        return MMUPT_EXIT_OK;
    }
    struct eval_opts o;
    if (parse(argc, argv, &o)) return MMUPT_EXIT_USAGE;
    struct cfg *cf = mmupt_xcalloc(1, sizeof *cf); /* large: file paths; c's strings point into it */
    struct eval_config c;
    int rc = settings(&o, cf, &c);
    if (rc) {
        free(cf);
        return rc;
    }
    struct eval_job job = {&o, &c};
    rc = cli_with_world("eval", &argc, &argv, o.threads, run, &job);
    free(cf);
    return rc;
}
