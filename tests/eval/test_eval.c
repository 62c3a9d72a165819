/* Evaluation: the metric arithmetic on hand-made responses (pass@1, maj@G with the paper and
 * equivalence votes and their tie-breaks, pass@G, parse failures, per-source rows), then eval_run end
 * to end on the tiny_train model and the small fixture split (determinism, greedy independent of G
 * and of the seed, batching invariance, --limit, JSON), and bad input.
 * Usage: test_eval MODEL_DIR SPLIT.h5 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "../test.h"
#include "mmupt/eval.h"
#include "mmupt/json.h"
#include "mmupt/rollout.h"
#include "mmupt/strutil.h"

/* ---- scoring without a model ---- */

static struct eval_response resp(const char *text)
{
    return (struct eval_response){.text = text, .len = text ? strlen(text) : 0, .tokens = text ? (int)strlen(text) : 3};
}

/* Score one item with G sampled texts and the greedy text. */
static void score(struct eval_result *r, const char *source, const char *truth, const char *greedy,
                  const char *const *samples)
{
    struct eval_response g = resp(greedy), s[16];
    for (int i = 0; i < r->G; i++) s[i] = resp(samples[i]);
    eval_score_item(r, source, truth, &g, s);
}

static void test_one_item(struct test_state *ts)
{
    struct eval_result r;
    eval_result_init(&r, 4, REWARD_VOTE_PAPER);
    const char *s[] = {"so \\boxed{7}", "\\boxed{6}", "red 3 \\boxed{6}", "I do not know"};
    score(&r, "total", "7", "\\boxed{7}", s);
    struct eval_metrics m;
    eval_metrics_of(&r.all, &m);
    CHECK(ts, m.items == 1 && m.samples == 4);
    CHECK(ts, m.greedy_pass1 == 1.0);
    CHECK(ts, m.pass1 == 0.25);
    CHECK(ts, m.maj == 0.0);     /* "6" has two votes */
    CHECK(ts, m.pass_g == 1.0);  /* one sample is right */
    CHECK(ts, m.headroom == -1.0);
    CHECK(ts, m.greedy_parse_failure == 0.0);
    CHECK(ts, m.sample_parse_failure == 0.25);
    CHECK(ts, m.majority_share == 0.5);
    CHECK(ts, m.greedy_length == 9.0);
    CHECK_MSG(ts, fabs(m.sample_length - (12 + 9 + 15 + 13) / 4.0) < 1e-12, "%g", m.sample_length);
    eval_result_free(&r);
}

/* The paper vote counts exact strings and gives ties to the candidate seen first. */
static void test_paper_ties(struct test_state *ts)
{
    struct eval_result r;
    eval_result_init(&r, 4, REWARD_VOTE_PAPER);
    const char *a[] = {"\\boxed{3}", "\\boxed{5}", "\\boxed{5}", "\\boxed{3}"};
    const char *b[] = {"\\boxed{5}", "\\boxed{3}", "\\boxed{3}", "\\boxed{5}"};
    score(&r, "red", "3", "\\boxed{3}", a); /* tie 2-2, "3" first: right */
    score(&r, "red", "3", "\\boxed{3}", b); /* tie 2-2, "5" first: wrong */
    CHECK(ts, r.all.maj_correct == 1);
    CHECK(ts, r.all.any_correct == 2);
    CHECK(ts, r.all.sample_correct == 4);
    struct eval_metrics m;
    eval_metrics_of(&r.all, &m);
    CHECK(ts, m.maj == 0.5 && m.pass1 == 0.5 && m.greedy_pass1 == 1.0 && m.headroom == -0.5);
    eval_result_free(&r);
}

/* Paper and equivalence votes differ where equal answers are written differently, and where most
 * samples have no answer (paper: "None" wins and is graded wrong; equivalence: they abstain). */
static void test_vote_modes(struct test_state *ts)
{
    const char *split[] = {"\\boxed{2}", "\\boxed{0.5}", "\\boxed{\\frac{1}{2}}"};
    const char *none[] = {"no answer", "\\boxed{4}", "still none"};
    const char *all_none[] = {"a", "b", "c"};
    int want_paper[] = {0, 0, 0}, want_equiv[] = {1, 1, 0};
    const char *const *items[] = {split, none, all_none};
    const char *truth[] = {"\\frac12", "4", "None"};
    for (int mode = 0; mode < 2; mode++) {
        for (int k = 0; k < 3; k++) {
            struct eval_result r;
            eval_result_init(&r, 3, mode ? REWARD_VOTE_EQUIVALENCE : REWARD_VOTE_PAPER);
            score(&r, "x", truth[k], "\\boxed{4}", items[k]);
            int want = mode ? want_equiv[k] : want_paper[k];
            CHECK_MSG(ts, r.all.maj_correct == want, "mode %d item %d: maj %lld, expected %d", mode, k,
                      (long long)r.all.maj_correct, want);
            eval_result_free(&r);
        }
    }
    /* pass@1 does not depend on the vote: the two forms of 1/2 are both right. */
    struct eval_result r;
    eval_result_init(&r, 3, REWARD_VOTE_PAPER);
    score(&r, "x", "\\frac12", NULL, split);
    CHECK(ts, r.all.sample_correct == 2 && r.all.any_correct == 1 && r.all.greedy_no_answer == 1);
    eval_result_free(&r);
}

static void test_sources(struct test_state *ts)
{
    struct eval_result r;
    eval_result_init(&r, 2, REWARD_VOTE_PAPER);
    const char *right[] = {"\\boxed{yes}", "\\boxed{yes}"}, *wrong[] = {"\\boxed{no}", "nothing"};
    score(&r, "red", "yes", "\\boxed{yes}", right);
    score(&r, "blue", "yes", "nothing", wrong);
    score(&r, "red", "yes", "\\boxed{no}", wrong);
    score(&r, NULL, "yes", "\\boxed{yes}", right);
    CHECK(ts, r.n_sources == 3);
    /* Sorted by name. */
    CHECK(ts, r.n_sources == 3 && strcmp(r.sources[0].source, "(none)") == 0 && strcmp(r.sources[1].source, "blue") == 0 &&
                  strcmp(r.sources[2].source, "red") == 0);
    struct eval_metrics all, red, blue;
    eval_metrics_of(&r.all, &all);
    eval_metrics_of(&r.sources[2], &red);
    eval_metrics_of(&r.sources[1], &blue);
    CHECK(ts, all.items == 4 && all.greedy_pass1 == 0.5 && all.pass1 == 0.5 && all.maj == 0.5);
    CHECK(ts, all.greedy_parse_failure == 0.25 && all.sample_parse_failure == 0.25);
    CHECK(ts, red.items == 2 && red.greedy_pass1 == 0.5 && red.maj == 0.5 && red.pass_g == 0.5 && red.headroom == 0.0);
    CHECK(ts, blue.items == 1 && blue.greedy_pass1 == 0.0 && blue.greedy_parse_failure == 1.0 && blue.maj == 0.0);
    /* The table has the overall row and one row per source. */
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    eval_write_table(f, &r);
    fclose(f);
    CHECK_CONTAINS(ts, buf, "| **all** | 4 | 0.500 | 0.500 | 0.500 | 0.500 | +0.000 | 0.250 / 0.250 |");
    CHECK_CONTAINS(ts, buf, "| blue | 1 | 0.000 |");
    CHECK_CONTAINS(ts, buf, "maj@2 (paper vote)");
    free(buf);
    eval_result_free(&r);
}

/* An empty row has no metrics (NaN, a "-" in the table, null in JSON); many sources share "(other)". */
static void test_edges(struct test_state *ts)
{
    struct eval_counts empty = {0};
    struct eval_metrics m;
    eval_metrics_of(&empty, &m);
    CHECK(ts, isnan(m.greedy_pass1) && isnan(m.maj) && isnan(m.headroom) && m.items == 0);
    struct eval_result r;
    eval_result_init(&r, 1, REWARD_VOTE_EQUIVALENCE);
    const char *one[] = {"\\boxed{1}"};
    for (int i = 0; i < EVAL_MAX_SOURCES + 40; i++) {
        char name[32];
        snprintf(name, sizeof name, "s%04d", i);
        score(&r, name, "1", "\\boxed{1}", one);
    }
    CHECK_MSG(ts, r.n_sources == EVAL_MAX_SOURCES + 1, "%d sources", r.n_sources);
    int other = -1;
    for (int i = 0; i < r.n_sources; i++)
        if (strcmp(r.sources[i].source, EVAL_OTHER_SOURCE) == 0) other = i;
    CHECK(ts, other >= 0 && r.sources[other].items == 40);
    CHECK(ts, r.all.items == EVAL_MAX_SOURCES + 40 && r.all.maj_correct == r.all.items);
    eval_result_free(&r);
    /* A response that could not be decoded (NULL text) is a parse failure. */
    eval_result_init(&r, 1, REWARD_VOTE_PAPER);
    struct eval_response g = {.text = NULL, .tokens = 5}, s = g;
    eval_score_item(&r, "x", "1", &g, &s);
    CHECK(ts, r.all.greedy_no_answer == 1 && r.all.sample_no_answer == 1 && r.all.greedy_tokens == 5);
    eval_result_free(&r);
}

static void test_config_check(struct test_state *ts)
{
    struct eval_config c;
    struct mmupt_err err;
    eval_config_default(&c);
    CHECK(ts, eval_config_check(&c, &err) == 0);
    CHECK(ts, c.G == 8 && c.temperature == 1.0f && c.vote == REWARD_VOTE_PAPER);
    c.G = 0;
    CHECK(ts, eval_config_check(&c, &err) == -1);
    CHECK_CONTAINS(ts, err.msg, "G");
    eval_config_default(&c);
    c.temperature = 0.0f;
    CHECK(ts, eval_config_check(&c, &err) == -1);
    CHECK_CONTAINS(ts, err.msg, "temperature");
    eval_config_default(&c);
    c.top_p = 1.5f;
    CHECK(ts, eval_config_check(&c, &err) == -1);
    eval_config_default(&c);
    c.max_new = 0;
    CHECK(ts, eval_config_check(&c, &err) == -1);
    eval_config_default(&c);
    c.limit = -1;
    CHECK(ts, eval_config_check(&c, &err) == -1);
}

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
    eval_score_item(&t->rescored, item->source, item->answer, greedy, samples);
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
    eval_result_init(&t->rescored, G, c.vote);
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
    eval_result_init(&r, 1, REWARD_VOTE_PAPER);
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

int main(int argc, char **argv)
{
    struct test_state ts = {0};
    RUN(&ts, test_one_item);
    RUN(&ts, test_paper_ties);
    RUN(&ts, test_vote_modes);
    RUN(&ts, test_sources);
    RUN(&ts, test_edges);
    RUN(&ts, test_config_check);
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
    test_remove_dir(fx.tmp);
    tok_free(fx.tok);
    model_free(&fx.m);
    return test_summary(&ts);
}
