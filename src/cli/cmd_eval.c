/* mmupt eval: grade a model on a split with answers (src/eval): greedy pass@1, pass@1 at a
 * temperature, maj@G with the trainer's vote, pass@G, overall and per source. Markdown table on
 * stdout, progress on stderr, everything as JSON with --json. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "mmupt/eval.h"
#include "mmupt/metrics.h"
#include "mmupt/rollout.h"

static const char usage[] =
    "usage: mmupt eval --model DIR --data SPLIT.h5 [options]\n"
    "\n"
    "Evaluate the model in DIR on a dataset split whose items have answers. Per item: one greedy\n"
    "answer and G answers sampled at the temperature, each graded like the reward (the \\boxed{}\n"
    "answer, MathRuler-equivalent to the item's answer). Reports greedy pass@1, pass@1 at T (mean over\n"
    "samples), maj@G (the trainer's majority vote, graded), pass@G (any sample right), maj@G - greedy\n"
    "(the headroom majority-vote training can use), parse failures and response lengths, overall and\n"
    "per source. Items without an answer, or whose prompt cannot be built, are skipped and counted.\n"
    "\n"
    "options:\n"
    "  -n G                  samples per item (default 8)\n"
    "  --temperature T       of the samples, > 0 (default 1.0); the greedy answer is always decoded too\n"
    "  --top-p P             nucleus mass of the samples (default 1)\n"
    "  --max-new-tokens N    per response (default 256)\n"
    "  --limit K             only the first K items of the split (default: all)\n"
    "  --min-pixels N        image resize bounds, as training used them (data.min_pixels /\n"
    "  --max-pixels N        data.max_pixels; default: the Qwen2-VL processor's 3136 and 12845056)\n"
    "  --seed S              sampler seed (default 1); draws are keyed by (seed, item, sample, token)\n"
    "  --vote paper|equivalence   the majority vote (default paper, as reward.vote)\n"
    "  --format-prompt TEXT  appended to each problem after a space (default: nothing)\n"
    "  --json FILE           write every metric, count and setting as one JSON object ('-': stdout)\n"
    "  --responses FILE      write every item's responses as JSON lines (for inspection)\n"
    "  --batch B             items generated together (default 16)\n"
    "  --threads T           OpenMP threads (default: OMP_NUM_THREADS or all cores)\n"
    "Stop tokens come from DIR/generation_config.json (eos_token_id), else <|im_end|> and\n"
    "<|endoftext|>; <|image_pad|> gets logit bias -100 as in training. Runs as one process.\n";

struct eval_opts {
    const char *model, *data, *json, *responses;
    int threads;
    struct eval_config cfg;
};

/* An integer option in [lo, hi]; -1 after a usage error naming the option. */
static int parse_long(const char *opt, const char *v, long lo, long hi, long *out)
{
    char *end = NULL;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (end == v || *end || errno) {
        cli_error("eval", "%s: '%s' is not a whole number", opt, v);
        return -1;
    }
    if (x < lo || x > hi) {
        cli_error("eval", "%s: %ld is out of range: must be in [%ld, %ld]", opt, x, lo, hi);
        return -1;
    }
    *out = x;
    return 0;
}

static int parse_float(const char *opt, const char *v, float *out)
{
    char *end = NULL;
    float x = strtof(v, &end);
    if (end == v || *end || !isfinite(x)) {
        cli_error("eval", "%s: '%s' is not a finite number", opt, v);
        return -1;
    }
    *out = x;
    return 0;
}

static int parse_seed(const char *v, uint64_t *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long long x = strtoull(v, &end, 10);
    /* strtoull takes "-1" as 2^64 - 1: only plain digits are a seed. */
    if (v[0] < '0' || v[0] > '9' || *end || errno) {
        cli_error("eval", "--seed: '%s' is not a whole number in [0, 2^64)", v);
        return -1;
    }
    *out = x;
    return 0;
}

/* One option with its value; -1 after a usage error. */
static int parse_one(struct eval_opts *o, const char *a, const char *v)
{
    struct eval_config *c = &o->cfg;
    long x = 0;
    int rc = 0;
    if (strcmp(a, "--model") == 0) o->model = v;
    else if (strcmp(a, "--data") == 0) o->data = v;
    else if (strcmp(a, "--json") == 0) o->json = v;
    else if (strcmp(a, "--responses") == 0) o->responses = v;
    else if (strcmp(a, "--format-prompt") == 0) c->format_prompt = v;
    else if (strcmp(a, "--temperature") == 0) rc = parse_float(a, v, &c->temperature);
    else if (strcmp(a, "--top-p") == 0) rc = parse_float(a, v, &c->top_p);
    else if (strcmp(a, "--seed") == 0) rc = parse_seed(v, &c->seed);
    else if (strcmp(a, "-n") == 0) {
        rc = parse_long(a, v, 1, EVAL_MAX_G, &x);
        c->G = (int)x;
    } else if (strcmp(a, "--max-new-tokens") == 0) {
        rc = parse_long(a, v, 1, 65536, &x);
        c->max_new = (int)x;
    } else if (strcmp(a, "--limit") == 0) {
        rc = parse_long(a, v, 1, LONG_MAX, &x);
        c->limit = x;
    } else if (strcmp(a, "--min-pixels") == 0 || strcmp(a, "--max-pixels") == 0) {
        rc = parse_long(a, v, 1, LONG_MAX, &x);
        *(a[2] == 'm' && a[3] == 'i' ? &c->min_pixels : &c->max_pixels) = x;
    } else if (strcmp(a, "--batch") == 0) {
        rc = parse_long(a, v, 1, 4096, &x);
        c->batch = (int)x;
    } else if (strcmp(a, "--threads") == 0) {
        rc = parse_long(a, v, 1, 1024, &x);
        o->threads = (int)x;
    } else if (strcmp(a, "--vote") == 0) {
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

static int parse(int argc, char **argv, struct eval_opts *o)
{
    memset(o, 0, sizeof *o);
    eval_config_default(&o->cfg);
    for (int i = 1; i < argc; i += 2) {
        if (i + 1 >= argc) {
            cli_error("eval", "'%s' needs a value (see mmupt eval --help)", argv[i]);
            return -1;
        }
        if (parse_one(o, argv[i], argv[i + 1])) return -1;
    }
    if (!o->model || !o->data) {
        cli_error("eval", "--model and --data are required\n\n%s", usage);
        return -1;
    }
    struct mmupt_err err;
    if (eval_config_check(&o->cfg, &err)) {
        cli_error("eval", "%s", err.msg);
        return -1;
    }
    return 0;
}

/* More than one process under mpirun/srun: refuse rather than have every rank evaluate everything
 * and race on the same output files. Data-parallel evaluation comes later (issue 12). */
static int launched_ranks(void)
{
    static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        const char *v = getenv(vars[i]);
        if (v && atoi(v) > 1) return atoi(v);
    }
    return 1;
}

struct progress {
    double t0, last;
    int tty;
    FILE *responses;
    int failed_write;
};

static void on_progress(void *ctx, int64_t done, int64_t total, const struct eval_result *r)
{
    struct progress *p = ctx;
    double now = mmupt_now(), el = now - p->t0;
    /* A terminal gets one line rewritten in place; a log file a line every 10 s and the last one. */
    if (!p->tty && done < total && now - p->last < 10.0) return;
    p->last = now;
    struct eval_metrics m;
    eval_metrics_of(&r->all, &m);
    double eta = done > 0 ? el / (double)done * (double)(total - done) : 0.0;
    fprintf(stderr, "%seval: %lld/%lld items, greedy %.3f, maj@%d %.3f, %.1f s, ETA %.0f s%s", p->tty ? "\r" : "",
            (long long)done, (long long)total, isfinite(m.greedy_pass1) ? m.greedy_pass1 : 0.0, r->G,
            isfinite(m.maj) ? m.maj : 0.0, el, eta, p->tty && done < total ? "   " : "\n");
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
    put_str(f, "greedy", greedy->text);
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

/* Load everything, evaluate, print; the exit status. */
static int run(struct eval_opts *o)
{
    struct mmupt_err err;
    struct model m = {0};
    struct tok *tok = NULL;
    struct ds_reader *ds = NULL;
    char tpath[4096];
    snprintf(tpath, sizeof tpath, "%s/tokenizer.json", o->model);
    if (ds_open(&ds, o->data, &err) || model_open(&m, o->model, &err) || tok_load(&tok, tpath, &err)) {
        cli_error("eval", "%s", err.msg);
        if (ds) ds_close(ds);
        if (m.params) model_free(&m);
        return MMUPT_EXIT_ERROR;
    }
    struct log_ctx lg;
    log_init(&lg, LOG_WARN, 0, stderr);
    int32_t stops[8];
    struct progress pr = {.t0 = mmupt_now(), .tty = isatty(STDERR_FILENO)};
    struct eval_config *c = &o->cfg;
    c->n_stop = rollout_default_stop_ids(o->model, tok, stops, 8);
    c->stop_ids = stops;
    c->lg = &lg;
    c->progress = on_progress;
    c->on_item = on_item;
    c->ctx = &pr;
    int rc = MMUPT_EXIT_OK;
    if (o->responses && !(pr.responses = fopen(o->responses, "w"))) {
        cli_error("eval", "%s: cannot create: %s", o->responses, strerror(errno));
        rc = MMUPT_EXIT_ERROR;
    }
    struct eval_result r;
    if (rc == 0 && eval_run(c, &m, tok, ds, &r, &err)) {
        cli_error("eval", "%s: %s", o->data, err.msg);
        rc = MMUPT_EXIT_ERROR;
    } else if (rc == 0) {
        if (r.skipped_no_answer || r.skipped_bad)
            fprintf(stderr, "eval: %lld of %lld items skipped: %lld without an answer, %lld unusable\n",
                    (long long)(r.skipped_no_answer + r.skipped_bad), (long long)r.visited,
                    (long long)r.skipped_no_answer, (long long)r.skipped_bad);
        eval_write_table(stdout, &r);
        fflush(stdout);
        if (o->json && eval_write_json(o->json, c, &r, o->model, o->data, &err)) {
            cli_error("eval", "%s", err.msg);
            rc = MMUPT_EXIT_ERROR;
        }
        eval_result_free(&r);
    }
    if (pr.responses && (fclose(pr.responses) != 0 || pr.failed_write)) {
        cli_error("eval", "%s: cannot write the responses", o->responses);
        rc = MMUPT_EXIT_ERROR;
    }
    tok_free(tok);
    model_free(&m);
    ds_close(ds);
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
    int np = launched_ranks();
    if (np > 1) {
        cli_error("eval", "runs as one process, but %d were started (mpirun/srun): run it without mpirun; "
                          "data-parallel evaluation is planned (issue 12)", np);
        return MMUPT_EXIT_USAGE;
    }
    if (o.threads > 0) omp_set_num_threads(o.threads);
    return run(&o);
}
