/* Evaluation end to end: eval_run on the tiny_train model and the small fixture split (determinism,
 * greedy independent of G and of the seed, batching invariance, strided shards that add up to the
 * whole, --limit, JSON), bad input, and loading model directories and checkpoints. The metric
 * arithmetic on hand-made responses is in test_eval_score.c.
 * Usage: test_eval MODEL_DIR SPLIT.h5 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../test.h"
#include "mmupt/checkpoint.h"
#include "mmupt/eval.h"
#include "mmupt/json.h"
#include "mmupt/rollout.h"
#include "mmupt/strutil.h"

/* ---- end to end on the tiny model ---- */

struct fixture {
    const char *model_dir, *split;
    struct model m;
    struct tok *tok;
    int32_t stops[8];
    int n_stop;
    char tmp[64];
};

/* Everything the responses said, in order: to compare runs exactly. */
struct transcript {
    char *greedy, *samples;
    size_t glen, slen, gcap, scap;
    struct eval_result rescored; /* the same responses through eval_score_item */
};

static void append(char **buf, size_t *len, size_t *cap, const struct eval_response *r)
{
    size_t n = r->text ? r->len : 0;
    if (*len + n + 2 > *cap) {
        *cap = 2 * (*len + n + 2);
        *buf = realloc(*buf, *cap);
    }
    if (n) memcpy(*buf + *len, r->text, n);
    *len += n;
    (*buf)[(*len)++] = '\x1f';
    (*buf)[*len] = '\0';
}

static void on_item(void *ctx, const struct ds_item *item, const struct eval_response *greedy,
                    const struct eval_response *samples, int G)
{
    struct transcript *t = ctx;
    append(&t->greedy, &t->glen, &t->gcap, greedy);
    for (int g = 0; g < G; g++) append(&t->samples, &t->slen, &t->scap, &samples[g]);
    eval_score_item(&t->rescored, item->source, item->problem, item->answer, greedy, samples);
}

/* Evaluate with the given settings; the transcript and result belong to the caller. */
static int run_eval(struct fixture *fx, int G, uint64_t seed, int64_t limit, int batch, struct transcript *t,
                    struct eval_result *r, struct mmupt_err *err)
{
    struct ds_reader *ds;
    if (ds_open(&ds, fx->split, err)) return -1;
    struct eval_config c;
    eval_config_default(&c);
    c.G = G;
    c.seed = seed;
    c.limit = limit;
    c.batch = batch;
    c.max_new = 8;
    c.stop_ids = fx->stops;
    c.n_stop = fx->n_stop;
    c.on_item = on_item;
    c.ctx = t;
    memset(t, 0, sizeof *t);
    eval_result_init(&t->rescored, G, c.vote, c.n_k, c.k);
    int rc = eval_run(&c, &fx->m, fx->tok, ds, r, err);
    ds_close(ds);
    return rc;
}

static void transcript_free(struct transcript *t)
{
    free(t->greedy);
    free(t->samples);
    eval_result_free(&t->rescored);
}

static int same_counts(const struct eval_counts *a, const struct eval_counts *b)
{
    return a->items == b->items && a->greedy_correct == b->greedy_correct && a->greedy_no_answer == b->greedy_no_answer &&
           a->greedy_tokens == b->greedy_tokens && a->samples == b->samples && a->sample_correct == b->sample_correct &&
           a->sample_no_answer == b->sample_no_answer && a->sample_tokens == b->sample_tokens &&
           a->maj_correct == b->maj_correct && a->any_correct == b->any_correct && a->majority_share == b->majority_share;
}

static void test_run(struct test_state *ts, struct fixture *fx)
{
    struct transcript t1, t2, t3;
    struct eval_result r1, r2, r3;
    struct mmupt_err err;
    CHECK_MSG(ts, run_eval(fx, 3, 5, 0, 16, &t1, &r1, &err) == 0, "%s", err.msg);
    CHECK_MSG(ts, run_eval(fx, 3, 5, 0, 16, &t2, &r2, &err) == 0, "%s", err.msg);
    /* small.h5: five items, two without an answer; three sources. */
    CHECK(ts, r1.visited == 5 && r1.all.items == 3 && r1.skipped_no_answer == 2 && r1.skipped_bad == 0);
    CHECK(ts, r1.n_sources == 3 && r1.all.samples == 9);
    CHECK(ts, r1.all.greedy_tokens > 0 && r1.all.greedy_tokens <= 3 * 8);
    /* Same seed: the same responses and the same numbers. */
    CHECK(ts, t1.slen == t2.slen && memcmp(t1.samples, t2.samples, t1.slen) == 0);
    CHECK(ts, same_counts(&r1.all, &r2.all));
    /* What eval_run reports is what the scorer makes of the responses it generated. */
    CHECK(ts, same_counts(&r1.all, &t1.rescored.all));
    /* Another seed draws other samples but the same greedy answers. */
    CHECK_MSG(ts, run_eval(fx, 3, 6, 0, 16, &t3, &r3, &err) == 0, "%s", err.msg);
    CHECK(ts, t1.slen != t3.slen || memcmp(t1.samples, t3.samples, t1.slen) != 0);
    CHECK(ts, t1.glen == t3.glen && memcmp(t1.greedy, t3.greedy, t1.glen) == 0);
    transcript_free(&t2);
    transcript_free(&t3);
    eval_result_free(&r2);
    eval_result_free(&r3);

    /* Greedy does not depend on G; samples do not depend on how items are batched. */
    CHECK_MSG(ts, run_eval(fx, 1, 5, 0, 16, &t2, &r2, &err) == 0, "%s", err.msg);
    CHECK(ts, t1.glen == t2.glen && memcmp(t1.greedy, t2.greedy, t1.glen) == 0);
    CHECK(ts, r1.all.greedy_correct == r2.all.greedy_correct && r1.all.greedy_tokens == r2.all.greedy_tokens);
    CHECK_MSG(ts, run_eval(fx, 3, 5, 0, 1, &t3, &r3, &err) == 0, "%s", err.msg);
    CHECK(ts, t1.slen == t3.slen && memcmp(t1.samples, t3.samples, t1.slen) == 0);
    transcript_free(&t1);
    transcript_free(&t2);
    transcript_free(&t3);
    eval_result_free(&r1);
    eval_result_free(&r2);
    eval_result_free(&r3);
}

static void test_limit(struct test_state *ts, struct fixture *fx)
{
    int64_t limits[] = {1, 2, 4, 100}, visited[] = {1, 2, 4, 5}, graded[] = {1, 2, 3, 3};
    for (int k = 0; k < 4; k++) {
        struct transcript t;
        struct eval_result r;
        struct mmupt_err err;
        CHECK_MSG(ts, run_eval(fx, 1, 1, limits[k], 2, &t, &r, &err) == 0, "%s", err.msg);
        CHECK_MSG(ts, r.visited == visited[k] && r.all.items == graded[k], "limit %lld: visited %lld graded %lld",
                  (long long)limits[k], (long long)r.visited, (long long)r.all.items);
        transcript_free(&t);
        eval_result_free(&r);
    }
}

static json_t *json_path(json_t *o, const char *a, const char *b)
{
    json_t *x = json_object_get(o, a);
    return b ? json_object_get(x, b) : x;
}

/* The JSON file holds every row; two runs with one seed write the same numbers. */
static void test_json(struct test_state *ts, struct fixture *fx)
{
    char path[2][128];
    char *text[2] = {NULL, NULL};
    size_t len[2] = {0, 0};
    struct eval_config c;
    eval_config_default(&c);
    c.G = 3;
    for (int k = 0; k < 2; k++) {
        struct transcript t;
        struct eval_result r;
        struct mmupt_err err;
        snprintf(path[k], sizeof path[k], "%s/run%d.json", fx->tmp, k);
        CHECK_MSG(ts, run_eval(fx, 3, 5, 0, 16, &t, &r, &err) == 0, "%s", err.msg);
        r.seconds = 0; /* the one field that may differ */
        CHECK_MSG(ts, eval_write_json(path[k], &c, &r, fx->model_dir, fx->split, &err) == 0, "%s", err.msg);
        CHECK(ts, file_read_all(path[k], 1 << 20, &text[k], &len[k], &err) == 0);
        transcript_free(&t);
        eval_result_free(&r);
    }
    CHECK(ts, text[0] && text[1] && len[0] == len[1] && memcmp(text[0], text[1], len[0]) == 0);
    json_t *o = NULL;
    struct mmupt_err err;
    CHECK_MSG(ts, json_parse_file(path[0], 1 << 20, &o, &err) == 0, "%s", err.msg);
    if (o) {
        CHECK(ts, json_integer_value(json_path(o, "overall", "items")) == 3);
        CHECK(ts, json_integer_value(json_path(o, "counts", "skipped_no_answer")) == 2);
        CHECK(ts, json_integer_value(json_path(o, "settings", "G")) == 3);
        CHECK(ts, strcmp(json_string_value(json_path(o, "settings", "vote")), "paper") == 0);
        CHECK(ts, json_is_number(json_path(o, "overall", "maj")) && json_is_number(json_path(o, "overall", "headroom")));
        json_t *by = json_object_get(o, "by_source");
        CHECK(ts, json_object_size(by) == 3 && json_object_get(by, "dapo") && json_object_get(by, "geometry3k"));
        CHECK(ts, strcmp(json_string_value(json_object_get(o, "model")), fx->model_dir) == 0);
        json_decref(o);
    }
    free(text[0]);
    free(text[1]);
    /* An unwritable place is an error naming it. */
    struct eval_result r;
    eval_result_init(&r, 1, REWARD_VOTE_PAPER, 0, NULL);
    CHECK(ts, eval_write_json("/nonexistent-dir/x.json", &c, &r, NULL, NULL, &err) == -1);
    CHECK_CONTAINS(ts, err.msg, "/nonexistent-dir/x.json");
    eval_result_free(&r);
}

/* Write a split of text-only items; answers[i] NULL writes none. */
static int write_split(const char *path, int with_answers, const char *const *answers, int n,
                       const uint8_t *image, size_t image_len)
{
    struct ds_writer *w;
    struct mmupt_err err;
    if (ds_writer_open(&w, path, with_answers, &err)) return -1;
    for (int i = 0; i < n; i++) {
        char id[16];
        snprintf(id, sizeof id, "t-%d", i);
        uint8_t *img[1] = {(uint8_t *)image};
        size_t ilen[1] = {image_len};
        struct ds_item it = {.index = i, .id = id, .source = "t", .answer = (char *)answers[i],
                             .problem = image && i == 0 ? "<image>How many?" : "What is 2+2?",
                             .n_images = image && i == 0, .image = image && i == 0 ? img : NULL,
                             .image_len = image && i == 0 ? ilen : NULL};
        if (ds_writer_add(w, &it, &err)) {
            ds_writer_close(w, &err);
            return -1;
        }
    }
    return ds_writer_close(w, &err);
}

static void test_bad_input(struct test_state *ts, struct fixture *fx)
{
    char path[128];
    struct ds_reader *ds;
    struct eval_result r;
    struct mmupt_err err;
    struct eval_config c;
    eval_config_default(&c);
    c.G = 2;
    c.max_new = 4;
    const char *none[] = {NULL, NULL}, *some[] = {"4", "4"};

    /* No `answer` dataset: refused with a message that says why. */
    snprintf(path, sizeof path, "%s/noanswers.h5", fx->tmp);
    CHECK(ts, write_split(path, 0, none, 2, NULL, 0) == 0);
    CHECK(ts, ds_open(&ds, path, &err) == 0);
    CHECK(ts, eval_run(&c, &fx->m, fx->tok, ds, &r, &err) == -1);
    CHECK_CONTAINS(ts, err.msg, "eval needs");
    ds_close(ds);

    /* Answers present but all empty: nothing to grade. */
    snprintf(path, sizeof path, "%s/empty.h5", fx->tmp);
    CHECK(ts, write_split(path, 1, none, 2, NULL, 0) == 0);
    CHECK(ts, ds_open(&ds, path, &err) == 0);
    CHECK(ts, eval_run(&c, &fx->m, fx->tok, ds, &r, &err) == -1);
    CHECK_CONTAINS(ts, err.msg, "none of the 2 item(s) could be graded: 2 without an answer");
    ds_close(ds);

    /* A broken image skips that item and counts it; the rest is graded. */
    snprintf(path, sizeof path, "%s/badimage.h5", fx->tmp);
    static const uint8_t junk[] = "this is not a PNG";
    CHECK(ts, write_split(path, 1, some, 2, junk, sizeof junk) == 0);
    CHECK(ts, ds_open(&ds, path, &err) == 0);
    CHECK_MSG(ts, eval_run(&c, &fx->m, fx->tok, ds, &r, &err) == 0, "%s", err.msg);
    CHECK(ts, r.visited == 2 && r.skipped_bad == 1 && r.all.items == 1);
    eval_result_free(&r);

    /* Bad settings are refused before anything runs. */
    c.G = EVAL_MAX_G + 1;
    CHECK(ts, eval_run(&c, &fx->m, fx->tok, ds, &r, &err) == -1);
    CHECK_CONTAINS(ts, err.msg, "samples per item");
    ds_close(ds);
}

/* Strided shards cover the split once, and their items added in index order give the whole run's
 * numbers exactly (what eval_gather does across ranks). */
static void test_shards(struct test_state *ts, struct fixture *fx)
{
    struct ds_reader *ds;
    struct mmupt_err err;
    CHECK(ts, ds_open(&ds, fx->split, &err) == 0);
    struct eval_config c;
    eval_config_default(&c);
    c.G = 3;
    c.n_k = 2;
    c.k[0] = 2;
    c.k[1] = 3;
    c.temperature = 1.0f;
    c.max_new = 8;
    c.stop_ids = fx->stops;
    c.n_stop = fx->n_stop;
    c.keep_items = 1;
    struct eval_result whole, part[2];
    CHECK_MSG(ts, eval_run(&c, &fx->m, fx->tok, ds, &whole, &err) == 0, "%s", err.msg);
    c.shard_count = 2;
    for (int r = 0; r < 2; r++) {
        c.shard_rank = r;
        CHECK_MSG(ts, eval_run(&c, &fx->m, fx->tok, ds, &part[r], &err) == 0, "%s", err.msg);
    }
    CHECK(ts, part[0].visited == 3 && part[1].visited == 2); /* items 0 2 4 and 1 3 */
    CHECK(ts, part[0].n_items + part[1].n_items == whole.n_items && whole.n_items == 3);
    struct eval_result merged;
    eval_result_init(&merged, c.G, c.vote, c.n_k, c.k);
    int64_t i0 = 0, i1 = 0;
    while (i0 < part[0].n_items || i1 < part[1].n_items) {
        int take0 = i1 >= part[1].n_items || (i0 < part[0].n_items && part[0].items[i0].index < part[1].items[i1].index);
        const struct eval_item *it = take0 ? &part[0].items[i0++] : &part[1].items[i1++];
        eval_add_item(&merged, it->source, it);
    }
    CHECK(ts, same_counts(&merged.all, &whole.all) && merged.n_sources == whole.n_sources);
    CHECK(ts, memcmp(merged.all.pass_k, whole.all.pass_k, sizeof whole.all.pass_k) == 0 &&
                  memcmp(merged.all.maj_k_correct, whole.all.maj_k_correct, sizeof whole.all.maj_k_correct) == 0);
    for (int64_t i = 1; i < whole.n_items; i++) CHECK(ts, whole.items[i - 1].index < whole.items[i].index);
    eval_result_free(&merged);
    eval_result_free(&whole);
    eval_result_free(&part[0]);
    eval_result_free(&part[1]);
    /* A shard with nothing gradable is not an error by itself (the gathered result is checked). */
    c.shard_count = 5;
    c.shard_rank = 3; /* item 3 has no answer */
    CHECK_MSG(ts, eval_run(&c, &fx->m, fx->tok, ds, &whole, &err) == 0, "%s", err.msg);
    CHECK(ts, whole.all.items == 0 && whole.visited == 1 && eval_check_graded(&whole, &err) == -1);
    CHECK_CONTAINS(ts, err.msg, "none of the 1 item(s)");
    eval_result_free(&whole);
    ds_close(ds);
}

/* --model: a model directory, a checkpoint step directory, a checkpoint directory; the rest is an
 * error naming the path. */
static void test_load(struct test_state *ts, struct fixture *fx)
{
    struct model m;
    struct eval_model_source src;
    struct mmupt_err err;
    CHECK_MSG(ts, eval_load_model(fx->model_dir, NULL, &m, &src, &err) == 0, "%s", err.msg);
    CHECK(ts, !src.is_checkpoint && strcmp(src.dir, fx->model_dir) == 0 && src.step == -1);
    int64_t n = m.spec.total;
    model_free(&m);

    char dir[256], path[512];
    snprintf(dir, sizeof dir, "%s/neither", fx->tmp);
    CHECK(ts, mkdir(dir, 0755) == 0);
    CHECK(ts, eval_load_model(dir, NULL, &m, &src, &err) == -1);
    CHECK_CONTAINS(ts, err.msg, dir);
    CHECK_CONTAINS(ts, err.msg, "neither a Hugging Face model directory (no config.json)");
    snprintf(path, sizeof path, "%s/missing", fx->tmp);
    CHECK(ts, eval_load_model(path, NULL, &m, &src, &err) == -1);
    CHECK_CONTAINS(ts, err.msg, path);

    /* A checkpoint directory whose latest names a step without weights. */
    snprintf(dir, sizeof dir, "%s/ckpt", fx->tmp);
    CHECK(ts, mkdir(dir, 0755) == 0);
    snprintf(path, sizeof path, "%s/latest", dir);
    CHECK(ts, file_write_all(path, "step-00000003\n", 14, &err) == 0);
    CHECK(ts, eval_load_model(dir, NULL, &m, &src, &err) == -1);
    CHECK_CONTAINS(ts, err.msg, "step-00000003");
    CHECK_CONTAINS(ts, err.msg, "model.h5");

    /* A real checkpoint of changed weights: loaded from the step directory and from `latest`, with
     * the architecture and tokenizer of the model it records. */
    struct model base;
    CHECK_MSG(ts, model_open(&base, fx->model_dir, &err) == 0, "%s", err.msg);
    for (int64_t i = 0; i < n; i += 7) base.params[i] += 0.25f;
    struct ckpt_cursor cur = {0, 0, 0, 0};
    struct ckpt_meta meta = {.format = CKPT_FORMAT_VERSION, .step = 7, .policy_version = 7, .n_params = n,
                             .n_learners = 1, .config_yaml = "run:\n  name: t\n", .n_cursors = 1, .cursors = &cur};
    snprintf(meta.arch, sizeof meta.arch, "%s", model_arch_name(base.cfg.arch));
    snprintf(meta.model_path, sizeof meta.model_path, "%s", fx->model_dir);
    char partial[512];
    ckpt_step_dir(dir, 7, 1, partial, sizeof partial);
    int wrote = ckpt_begin(dir, 7, &err) == 0 && ckpt_write_model(partial, &base.spec, base.params, &meta, NULL, &err) == 0 &&
                ckpt_commit(dir, 7, 3, &err) == 0;
    CHECK_MSG(ts, wrote, "%s", err.msg);
    char step[512];
    ckpt_step_dir(dir, 7, 0, step, sizeof step);
    const char *paths[2] = {dir, step};
    for (int k = 0; k < 2 && wrote; k++) {
        CHECK_MSG(ts, eval_load_model(paths[k], NULL, &m, &src, &err) == 0, "%s", err.msg);
        if (!m.params) continue;
        CHECK(ts, src.is_checkpoint && src.step == 7 && strcmp(src.dir, fx->model_dir) == 0 && strcmp(src.ckpt, step) == 0);
        CHECK(ts, m.spec.total == n && memcmp(m.params, base.params, (size_t)n * sizeof *m.params) == 0);
        model_free(&m);
    }
    /* Another architecture for it: refused, naming both. */
    snprintf(path, sizeof path, "%s/../qwen2", fx->model_dir);
    CHECK(ts, eval_load_model(dir, path, &m, &src, &err) == -1);
    CHECK_CONTAINS(ts, err.msg, "parameters");
    model_free(&base);

    /* A step directory whose model.h5 is not a checkpoint. */
    snprintf(dir, sizeof dir, "%s/junkstep", fx->tmp);
    CHECK(ts, mkdir(dir, 0755) == 0);
    snprintf(path, sizeof path, "%s/model.h5", dir);
    CHECK(ts, file_write_all(path, "not hdf5", 8, &err) == 0);
    CHECK(ts, eval_load_model(dir, NULL, &m, &src, &err) == -1);
    CHECK_CONTAINS(ts, err.msg, dir);
}

int main(int argc, char **argv)
{
    struct test_state ts = {0};
    if (argc < 3) {
        fprintf(stderr, "usage: test_eval MODEL_DIR SPLIT.h5\n");
        return 1;
    }
    struct fixture fx = {.model_dir = argv[1], .split = argv[2]};
    struct mmupt_err err;
    char tpath[4096];
    snprintf(tpath, sizeof tpath, "%s/tokenizer.json", fx.model_dir);
    if (model_open(&fx.m, fx.model_dir, &err) || tok_load(&fx.tok, tpath, &err)) {
        fprintf(stderr, "cannot load the fixture model: %s\n", err.msg);
        return 1;
    }
    fx.n_stop = rollout_default_stop_ids(fx.model_dir, fx.tok, fx.stops, 8);
    snprintf(fx.tmp, sizeof fx.tmp, "/tmp/test_eval.XXXXXX");
    if (!mkdtemp(fx.tmp)) return 1;
    RUN_WITH(&ts, test_run, &fx);
    RUN_WITH(&ts, test_limit, &fx);
    RUN_WITH(&ts, test_json, &fx);
    RUN_WITH(&ts, test_bad_input, &fx);
    RUN_WITH(&ts, test_shards, &fx);
    RUN_WITH(&ts, test_load, &fx);
    test_remove_dir(fx.tmp);
    tok_free(fx.tok);
    model_free(&fx.m);
    return test_summary(&ts);
}
