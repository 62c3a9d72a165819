/* mmupt generate: try a model. Renders a chat prompt (with images), samples answers with the
 * rollout engine and streams the first sample's text as it is generated. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "mmupt/log.h"
#include "mmupt/prompt.h"
#include "mmupt/rollout.h"
#include "mmupt/strutil.h"

static const char usage[] =
    "usage: mmupt generate --model DIR (--prompt TEXT | --prompt-ids \"ID ID ...\") [options]\n"
    "\n"
    "Sample answers from the model in DIR. --prompt is rendered with the Qwen2-VL chat template (one\n"
    "image part per --image, before the text) and tokenized with DIR/tokenizer.json (or --tokenizer);\n"
    "--prompt-ids feeds raw token ids and prints ids (for models without a tokenizer). The first\n"
    "sample streams to standard output as it is generated; the others follow when done.\n"
    "\n"
    "options:\n"
    "  --image FILE          an image (PNG or JPEG); repeat for several\n"
    "  --tokenizer FILE      tokenizer.json (default: DIR/tokenizer.json)\n"
    "  -n G                  samples (default 1)\n"
    "  --temperature T       0 = greedy (default 0.7)\n"
    "  --top-p P             nucleus mass (default 1)\n"
    "  --top-k K             0 = off (default 0)\n"
    "  --max-new-tokens N    default 256\n"
    "  --seed S              default 1\n"
    CLI_DEVICE_HELP
    "Stop tokens come from DIR/generation_config.json (eos_token_id), else <|im_end|> and\n"
    "<|endoftext|>; <|image_pad|> is forbidden (logit bias -100), as in MM-UPT.\n";

struct gen_opts {
    const char *model, *prompt, *prompt_ids, *tokenizer;
    const char *images[16];
    int n_images, G, max_new, top_k;
    struct cli_device_opts device; /* --device, --dtype (default auto, auto) */
    float temperature, top_p;
    uint64_t seed;
};

static int parse(int argc, char **argv, struct gen_opts *o)
{
    *o = (struct gen_opts){.G = 1, .max_new = 256, .temperature = 0.7f, .top_p = 1.0f, .seed = 1};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) {
            cli_error("generate", "'%s' needs a value (see mmupt generate --help)", a);
            return -1;
        }
        i++;
        char *end = NULL;
        if (strcmp(a, "--model") == 0) o->model = v;
        else if (strcmp(a, "--prompt") == 0) o->prompt = v;
        else if (strcmp(a, "--prompt-ids") == 0) o->prompt_ids = v;
        else if (strcmp(a, "--tokenizer") == 0) o->tokenizer = v;
        else if (strcmp(a, "--device") == 0) {
            if (cli_parse_device("generate", v, &o->device)) return -1;
        } else if (strcmp(a, "--dtype") == 0) {
            if (cli_parse_dtype("generate", v, &o->device)) return -1;
        }
        else if (strcmp(a, "--image") == 0 && o->n_images < 16) o->images[o->n_images++] = v;
        else if (strcmp(a, "-n") == 0) o->G = (int)strtol(v, &end, 10);
        else if (strcmp(a, "--temperature") == 0) o->temperature = strtof(v, &end);
        else if (strcmp(a, "--top-p") == 0) o->top_p = strtof(v, &end);
        else if (strcmp(a, "--top-k") == 0) o->top_k = (int)strtol(v, &end, 10);
        else if (strcmp(a, "--max-new-tokens") == 0) o->max_new = (int)strtol(v, &end, 10);
        else if (strcmp(a, "--seed") == 0) o->seed = strtoull(v, &end, 10);
        else {
            cli_error("generate", "unknown argument '%s' (see mmupt generate --help)", a);
            return -1;
        }
        if (end && *end) {
            cli_error("generate", "%s: '%s' is not a number", a, v);
            return -1;
        }
    }
    if (!o->model || !o->prompt == !o->prompt_ids) {
        cli_error("generate", "--model and exactly one of --prompt / --prompt-ids are required\n\n%s", usage);
        return -1;
    }
    if (o->G < 1 || o->G > 256 || o->max_new < 1 || o->max_new > 1 << 20 || !(o->temperature >= 0) ||
        !(o->top_p > 0 && o->top_p <= 1) || o->top_k < 0) {
        cli_error("generate", "out of range: -n in [1, 256], --max-new-tokens >= 1, --temperature >= 0, --top-p in (0, 1]");
        return -1;
    }
    return 0;
}

struct printer {
    struct tok *tok;
    struct tok_stream stream;
    int G;
    double t0;
};

static void on_token(void *ctx, int64_t question, int sample, int32_t token)
{
    struct printer *p = ctx;
    (void)question;
    if (sample != 0) return;
    if (!p->tok) {
        printf("%d ", token);
    } else {
        char buf[TOK_STREAM_OUT_MAX];
        struct mmupt_err err;
        int n = tok_stream_push(&p->stream, token, buf, sizeof buf, &err);
        if (n > 0) fwrite(buf, 1, (size_t)n, stdout);
    }
    fflush(stdout);
}

static void on_sample(void *ctx, struct rollout_sample *s)
{
    struct printer *p = ctx;
    if (s->sample == 0 && p->tok) {
        char buf[TOK_STREAM_OUT_MAX];
        int n = tok_stream_flush(&p->stream, buf, sizeof buf);
        if (n > 0) fwrite(buf, 1, (size_t)n, stdout);
    }
    if (s->sample != 0) {
        printf("--- sample %d ---\n", s->sample);
        if (p->tok) {
            char *text;
            size_t len;
            struct mmupt_err err;
            if (tok_decode(p->tok, s->ids, (size_t)s->n, 1, &text, &len, &err) == 0) {
                fwrite(text, 1, len, stdout);
                free(text);
            }
        } else {
            for (int i = 0; i < s->n; i++) printf("%d ", s->ids[i]);
        }
    }
    printf("\n");
    fprintf(stderr, "[sample %d: %d tokens, %s]\n", s->sample, s->n, s->finish == ROLLOUT_STOP ? "stop" : "length");
    free(s->ids);
    free(s->logp);
}

/* The prompt as tokens (+ images) from --prompt-ids or from --prompt through the chat template. */
static int build_prompt(const struct gen_opts *o, struct tok *tok, struct prompt_item *it, struct mmupt_err *err)
{
    memset(it, 0, sizeof *it);
    if (o->prompt_ids) {
        it->ids = mmupt_xmalloc((strlen(o->prompt_ids) / 2 + 1) * sizeof *it->ids);
        for (const char *s = o->prompt_ids; *s;) {
            char *end;
            long v = strtol(s, &end, 10);
            if (end == s) return mmupt_fail(err, "--prompt-ids: '%.20s' is not a token id", s);
            it->ids[it->n_ids++] = (int32_t)v;
            for (s = end; *s == ' ' || *s == ','; s++) {
            }
        }
        return it->n_ids ? 0 : mmupt_fail(err, "--prompt-ids is empty");
    }
    if (!tok) return mmupt_fail(err, "--prompt needs a tokenizer (DIR/tokenizer.json or --tokenizer)");
    char problem[8192] = "";
    for (int i = 0; i < o->n_images; i++) strcat(problem, "<image>");
    if (strlen(o->prompt) + strlen(problem) >= sizeof problem) return mmupt_fail(err, "--prompt is too long");
    strcat(problem, o->prompt);
    uint8_t *bytes[16] = {0};
    size_t lens[16];
    int rc = 0;
    for (int i = 0; i < o->n_images && rc == 0; i++)
        rc = file_read_all(o->images[i], 256u << 20, (char **)&bytes[i], &lens[i], err);
    struct prompt_builder pb;
    struct img_proc_config ic;
    img_proc_config_default(&ic);
    if (rc == 0) rc = prompt_builder_init(&pb, tok, "", &ic, 0, err);
    if (rc == 0) rc = prompt_build(&pb, problem, (const uint8_t *const *)bytes, lens, o->n_images, it, err);
    for (int i = 0; i < o->n_images; i++) free(bytes[i]);
    return rc;
}

int cmd_generate(int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        fputs(usage, stdout);
        return MMUPT_EXIT_OK;
    }
    struct gen_opts o;
    if (parse(argc, argv, &o)) return MMUPT_EXIT_USAGE;
    struct mmupt_err err;
    struct model m;
    struct tok *tok = NULL;
    char tpath[4096];
    snprintf(tpath, sizeof tpath, "%s/tokenizer.json", o.model);
    if (o.tokenizer && tok_load(&tok, o.tokenizer, &err)) {
        cli_error("generate", "%s", err.msg);
        return MMUPT_EXIT_ERROR;
    }
    if (!o.tokenizer && o.prompt && tok_load(&tok, tpath, &err)) tok = NULL;
    if (model_open(&m, o.model, &err)) {
        cli_error("generate", "%s", err.msg);
        tok_free(tok);
        return MMUPT_EXIT_ERROR;
    }
    struct cli_device cd;
    if (cli_device_open("generate", &o.device, &m, &cd, NULL)) {
        model_free(&m);
        tok_free(tok);
        return MMUPT_EXIT_ERROR;
    }
    struct prompt_item it;
    int rc = MMUPT_EXIT_ERROR;
    if (build_prompt(&o, tok, &it, &err) == 0) {
        int len = (int)it.n_ids;
        int64_t *ids64 = mmupt_xmalloc((size_t)len * sizeof *ids64);
        for (int i = 0; i < len; i++) ids64[i] = it.ids[i];
        struct rollout_question q = {.id = 0, .prompt = {.n_seq = 1, .seq_len = &len, .tokens = ids64,
                                                         .n_images = it.n_images, .grid_thw = it.grid,
                                                         .pixels = it.pixels}};
        int32_t stops[8], bias_id = m.cfg.has_vision ? (int32_t)m.cfg.image_token_id : -1;
        float bias = -100.0f;
        struct printer pr = {.tok = tok, .G = o.G, .t0 = mmupt_now()};
        if (tok) tok_stream_init(&pr.stream, tok, 1);
        struct rollout_config rc_cfg = {
            .G = o.G, .max_new = o.max_new, .n_slots = o.G, .max_prompt = len, .seed = o.seed,
            .sampling = {.temperature = o.temperature, .top_p = o.top_p, .top_k = o.top_k,
                         .bias_ids = &bias_id, .bias = &bias, .n_bias = bias_id >= 0},
            .stop_ids = stops, .n_stop = rollout_default_stop_ids(o.model, tok, stops, 8), .on_token = on_token,
            .dev = cd.on ? &cd.d : NULL,
        };
        if (rollout_run(&m, &rc_cfg, &q, 1, on_sample, &pr, &err) == 0) rc = MMUPT_EXIT_OK;
        else cli_error("generate", "%s", err.msg);
        free(ids64);
        prompt_item_free(&it);
    } else {
        cli_error("generate", "%s", err.msg);
    }
    cli_device_close(&cd);
    model_free(&m);
    tok_free(tok);
    return rc;
}
