/* Configuration: the table, round trips, overrides, and every kind of bad input.
 * Bad-input files live in tests/fixtures/config/bad/; each starts with a line
 *   # expect: SUBSTRING [&& SUBSTRING ...]
 * naming what the error message must contain (file:line:col, key, and the complaint). */
#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../test.h"
#include "mmupt/config.h"
#include "mmupt/log.h"
#include "mmupt/strutil.h"

static const char *fixtures; /* set from argv[1] in main; read-only after that */

static void test_table_consistent(struct test_state *ts)
{
    for (size_t i = 0; i < cfg_n_fields; i++) {
        const struct cfg_field *f = &cfg_fields[i];
        CHECK_MSG(ts, cfg_find(f->key) == f, "duplicate key %s", f->key);
        CHECK_MSG(ts, strchr(f->key, '.') && cfg_find_section(f->key, strcspn(f->key, ".")), "no section: %s", f->key);
        CHECK_MSG(ts, f->doc && strlen(f->doc) > 5 && !strchr(f->doc, '\n'), "doc of %s", f->key);
        CHECK_MSG(ts, (f->type == CFG_ENUM) == (f->choices != NULL), "choices of %s", f->key);
        CHECK_MSG(ts, f->min <= f->max, "range of %s", f->key);
        /* Fields of one section are contiguous and sections appear in table order, so the
         * emitted YAML and the docs follow the same order as the table. */
        if (i > 0) {
            size_t a = (size_t)(cfg_find_section(cfg_fields[i - 1].key, strcspn(cfg_fields[i - 1].key, ".")) - cfg_sections);
            size_t b = (size_t)(cfg_find_section(f->key, strcspn(f->key, ".")) - cfg_sections);
            CHECK_MSG(ts, b == a || b == a + 1, "%s out of section order", f->key);
        }
    }
}

static void test_enum_names_match_c_enums(struct test_state *ts)
{
    struct cfg c;
    cfg_defaults(&c);
    struct mmupt_err err;
    CHECK(ts, cfg_apply_override(&c, "reward.mode=ground_truth", &err) == 0 && c.reward.mode == REWARD_GROUND_TRUTH);
    CHECK(ts, cfg_apply_override(&c, "reward.mode=none", &err) == 0 && c.reward.mode == REWARD_NONE);
    CHECK(ts, cfg_apply_override(&c, "reward.extractor=answer_is", &err) == 0 && c.reward.extractor == EXTRACT_ANSWER_IS);
    CHECK(ts, cfg_apply_override(&c, "reward.vote=equivalence", &err) == 0 && c.reward.vote == VOTE_EQUIVALENCE);
    CHECK(ts, cfg_apply_override(&c, "algorithm.kl_penalty=none", &err) == 0 && c.algorithm.kl_penalty == KL_NONE);
    CHECK(ts, cfg_apply_override(&c, "algorithm.loss_agg=seq_mean_token_mean", &err) == 0 &&
                  c.algorithm.loss_agg == LOSS_AGG_SEQ_MEAN_TOKEN_MEAN);
    CHECK(ts, cfg_apply_override(&c, "optim.schedule=cosine", &err) == 0 && c.optim.schedule == SCHED_COSINE);
    CHECK(ts, cfg_apply_override(&c, "cluster.backend=cuda", &err) == 0 && c.cluster.backend == BACKEND_CUDA);
    CHECK(ts, cfg_apply_override(&c, "checkpoint.resume=auto", &err) == 0 && c.checkpoint.resume == RESUME_AUTO);
    CHECK(ts, cfg_apply_override(&c, "model.dtype=fp32", &err) == 0 && c.model.dtype == DTYPE_FP32);
    CHECK(ts, cfg_apply_override(&c, "model.bf16_rounding=stochastic", &err) == 0 &&
                  c.model.bf16_rounding == BF16_STOCHASTIC);
    CHECK(ts, cfg_apply_override(&c, "logging.level=warn", &err) == 0 && c.logging.level == LOG_WARN);
    CHECK(ts, cfg_apply_override(&c, "logging.level=debug", &err) == 0 && c.logging.level == LOG_DEBUG);
}

static void test_defaults_are_the_papers(struct test_state *ts)
{
    struct cfg c;
    struct mmupt_err err;
    cfg_defaults(&c);
    CHECK(ts, cfg_validate(&c, &err) == 0);
    CHECK(ts, c.rollout.n == 10 && c.rollout.temperature == 0.7 && c.rollout.top_p == 0.99);
    CHECK(ts, c.algorithm.clip_ratio_low == 0.2 && c.algorithm.clip_ratio_high == 0.3);
    CHECK(ts, c.algorithm.clip_ratio_dual == 3.0 && c.algorithm.kl_coef == 0.01);
    CHECK(ts, c.optim.lr == 1e-6 && c.optim.weight_decay == 0.01 && c.reward.mode == REWARD_MAJORITY);
    CHECK(ts, c.data.max_pixels == 1204224 && c.data.min_pixels == 262144);
    CHECK(ts, strcmp(c.data.format_prompt,
                     "\\nPlease reason step by step, and put your final answer within \\boxed{}.") == 0);
    CHECK(ts, c.rollout.stop_token_ids.n == 0 && c.model.path[0] == '\0');
}

static const char good_yaml[] =
    "# a comment\n"
    "run:\n  name: 'it''s: a \"test\" # not a comment'\n  seed: 42\n"
    "model:\n  path: \"/models/q\\tvl\\u00e9\"\n  freeze_vision_tower: yes\n"
    "data:\n  format_prompt: |\n    line one\n    line two \\boxed{}\n  shuffle: off\n"
    "rollout:\n  n: 8\n  temperature: 1\n  top_p: 0.3333333333333333\n  stop_token_ids: [151645, 151643]\n"
    "optim:\n  lr: 2.5e-6\n  beta2: .95\n"
    "reward:\n"
    "logging:\n  level: debug\n";

static void test_load_values(struct test_state *ts)
{
    struct cfg c;
    struct mmupt_err err;
    cfg_defaults(&c);
    int rc = cfg_load_buffer(&c, "good.yaml", good_yaml, strlen(good_yaml), &err);
    CHECK_MSG(ts, rc == 0, "%s", err.msg);
    CHECK(ts, strcmp(c.run.name, "it's: a \"test\" # not a comment") == 0);
    CHECK(ts, c.run.seed == 42);
    CHECK(ts, strcmp(c.model.path, "/models/q\tvl\xc3\xa9") == 0);
    CHECK(ts, c.model.freeze_vision_tower == true && c.data.shuffle == false);
    CHECK(ts, strcmp(c.data.format_prompt, "line one\nline two \\boxed{}\n") == 0);
    CHECK(ts, c.rollout.n == 8 && c.rollout.temperature == 1.0 && c.rollout.top_p == 0.3333333333333333);
    CHECK(ts, c.rollout.stop_token_ids.n == 2 && c.rollout.stop_token_ids.v[1] == 151643);
    CHECK(ts, c.optim.lr == 2.5e-6 && c.optim.beta2 == 0.95 && c.logging.level == LOG_DEBUG);
    CHECK(ts, c.optim.beta1 == 0.9); /* untouched keys keep their defaults */
}

/* Emit -> parse must give back the identical struct, for defaults and for awkward values. */
static void roundtrip(struct test_state *ts, const struct cfg *c, bool docs)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    CHECK(ts, cfg_write_yaml(c, f, docs) == 0);
    fclose(f);
    struct cfg back;
    struct mmupt_err err;
    cfg_defaults(&back);
    memset(back.run.name, 'x', 10); /* make sure the value comes from the text */
    back.optim.lr = 0.5;
    int rc = cfg_load_buffer(&back, "emitted.yaml", text, len, &err);
    CHECK_MSG(ts, rc == 0, "%s\n%s", err.msg, text);
    CHECK_MSG(ts, cfg_equal(c, &back), "round trip differs:\n%s", text);
    free(text);
}

static void test_roundtrip(struct test_state *ts)
{
    struct cfg c;
    struct mmupt_err err;
    cfg_defaults(&c);
    roundtrip(ts, &c, false);
    roundtrip(ts, &c, true);
    CHECK(ts, cfg_load_buffer(&c, "good.yaml", good_yaml, strlen(good_yaml), &err) == 0);
    roundtrip(ts, &c, false);
    /* Awkward strings and floats. */
    strcpy(c.run.name, "  leading space, trailing tab\t, # hash, : colon, \\ backslash, \x01 control, \xe4\xb8\xad");
    /* Characters a YAML reader folds or drops unless escaped: U+2028, U+2029, NEL, BOM, DEL. */
    strcpy(c.data.format_prompt, "a\xe2\x80\xa8" "b\xe2\x80\xa9" "c\xc2\x85" "d\xef\xbb\xbf\x7f\r\n");
    strcpy(c.data.val_path, "null");
    strcpy(c.data.train_path, "~");
    strcpy(c.model.path, "true");
    c.optim.lr = 1.0 / 3.0;
    c.optim.eps = 5e-324 * 1e10;
    c.rollout.image_pad_bias = -1e9;
    c.rollout.stop_token_ids.n = 0;
    roundtrip(ts, &c, false);
    roundtrip(ts, &c, true);
}

static void test_overrides(struct test_state *ts)
{
    struct cfg c;
    struct mmupt_err err;
    char *over[] = {"optim.lr=2e-6", "rollout.n=12", "optim.lr=3e-6", "data.shuffle=false",
                    "rollout.stop_token_ids=[1, 2,3]", "run.name=a=b: c", "data.format_prompt=\"x\\ny\"",
                    "model.path="};
    int rc = cfg_resolve(&c, NULL, 8, over, &err);
    CHECK_MSG(ts, rc == 0, "%s", err.msg);
    CHECK(ts, c.optim.lr == 3e-6); /* later overrides win */
    CHECK(ts, c.rollout.n == 12 && c.data.shuffle == false);
    CHECK(ts, c.rollout.stop_token_ids.n == 3 && c.rollout.stop_token_ids.v[2] == 3);
    CHECK(ts, strcmp(c.run.name, "a=b: c") == 0); /* only the first '=' splits */
    CHECK(ts, strcmp(c.data.format_prompt, "x\ny") == 0);
    CHECK(ts, c.model.path[0] == '\0');
    CHECK(ts, cfg_apply_override(&c, "rollout.stop_token_ids=[]", &err) == 0 && c.rollout.stop_token_ids.n == 0);
}

static void test_override_on_file(struct test_state *ts)
{
    char path[512];
    snprintf(path, sizeof path, "%s/../../../configs/quickstart.yaml", fixtures);
    struct cfg c;
    struct mmupt_err err;
    char *over[] = {"optim.lr=2e-6"};
    int rc = cfg_resolve(&c, path, 1, over, &err);
    CHECK_MSG(ts, rc == 0, "%s", err.msg);
    CHECK(ts, c.optim.lr == 2e-6 && c.rollout.n == 8 && strcmp(c.run.name, "quickstart") == 0);
}

struct bad_override {
    const char *arg;
    const char *expect[2];
};

static void test_bad_overrides(struct test_state *ts)
{
    static const struct bad_override cases[] = {
        {"optim.lr", {"override 'optim.lr': expected key=value", NULL}},
        {"=3", {"the key before '=' is empty", NULL}},
        {"lr=1e-6", {"override 'lr': keys are section.key", NULL}},
        {"optim.lrr=1e-6", {"unknown key 'optim.lrr'", "did you mean 'optim.lr'?"}},
        {"rollout.lr=1e-6", {"unknown key 'rollout.lr'", "did you mean 'optim.lr'?"}},
        {"rollout.n=abc", {"override rollout.n: expected an integer, got 'abc'", NULL}},
        {"rollout.n=", {"override rollout.n: missing value", NULL}},
        {"optim.lr=2", {"override optim.lr: 2 is out of range: must be [0, 1]", NULL}},
        {"reward.mode=vote", {"override reward.mode: 'vote' is not one of: majority, ground_truth, none", NULL}},
        {"data.shuffle=2", {"override data.shuffle: expected true or false", NULL}},
        {"data.val_path=\"abc", {"override data.val_path: bad quoted value", NULL}},
        {"data.val_path='a' 'b'", {"override data.val_path: bad quoted value", NULL}},
        {"rollout.stop_token_ids=[1,x]", {"override rollout.stop_token_ids: item 2: expected an integer", NULL}},
        {"rollout.stop_token_ids=[1,2", {"has no closing ']'", NULL}},
        {"run.name=ab\xff", {"override run.name: 'ab?' is not valid UTF-8", NULL}},
    };
    struct cfg c, before;
    cfg_defaults(&c);
    before = c;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct mmupt_err err = {{0}};
        int rc = cfg_apply_override(&c, cases[i].arg, &err);
        CHECK_MSG(ts, rc == -1, "override '%s' accepted", cases[i].arg);
        for (int k = 0; k < 2 && cases[i].expect[k]; k++) CHECK_CONTAINS(ts, err.msg, cases[i].expect[k]);
        CHECK_MSG(ts, cfg_equal(&c, &before), "failed override '%s' changed the config", cases[i].arg);
    }
}

/* Every fixture in bad/: the load fails, the message has every expected piece, and the config
 * the caller held is unchanged. */
static void test_bad_files(struct test_state *ts)
{
    char dir[512];
    snprintf(dir, sizeof dir, "%s/bad", fixtures);
    DIR *d = opendir(dir);
    CHECK_MSG(ts, d != NULL, "cannot open %s", dir);
    if (!d) return;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len < 6 || strcmp(e->d_name + len - 5, ".yaml") != 0) continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        char *text;
        size_t tlen;
        struct mmupt_err err;
        CHECK(ts, file_read_all(path, 1 << 20, &text, &tlen, &err) == 0);
        char expect[1024] = "is empty"; /* a zero-byte file cannot carry its own expectation */
        if (tlen > 0) {
            CHECK_MSG(ts, strncmp(text, "# expect: ", 10) == 0, "%s has no '# expect:' line", path);
            size_t el = strcspn(text + 10, "\n");
            snprintf(expect, sizeof expect, "%.*s", (int)el, text + 10);
        }
        free(text);
        struct cfg c, before;
        cfg_defaults(&c);
        c.rollout.n = 7; /* a non-default value the failed load must not disturb */
        before = c;
        int rc = cfg_load_file(&c, path, &err);
        struct cfg resolved;
        if (rc == 0) rc = cfg_resolve(&resolved, path, 0, NULL, &err); /* cross-field checks, with the file name */
        CHECK_MSG(ts, rc == -1, "%s was accepted", e->d_name);
        for (char *piece = strtok(expect, "&"); piece; piece = strtok(NULL, "&")) {
            piece = str_trim(piece);
            if (*piece) CHECK_MSG(ts, strstr(err.msg, piece) != NULL, "%s: '%s' not in '%s'", e->d_name, piece, err.msg);
        }
        CHECK_MSG(ts, cfg_equal(&c, &before) || strncmp(e->d_name, "cross_", 6) == 0, "%s changed the config", e->d_name);
        n++;
    }
    closedir(d);
    CHECK_MSG(ts, n >= 40, "only %d bad fixtures found", n);
}

static void test_bad_paths(struct test_state *ts)
{
    struct cfg c;
    struct mmupt_err err;
    cfg_defaults(&c);
    CHECK(ts, cfg_load_file(&c, "/nonexistent/run.yaml", &err) == -1);
    CHECK_CONTAINS(ts, err.msg, "/nonexistent/run.yaml: cannot open: No such file or directory");
    CHECK(ts, cfg_load_file(&c, fixtures, &err) == -1);
    CHECK_CONTAINS(ts, err.msg, "is a directory");
    CHECK(ts, cfg_load_buffer(&c, "mem.yaml", "", 0, &err) == -1);
    CHECK_CONTAINS(ts, err.msg, "mem.yaml: is empty");
    /* A string longer than the field holds is refused, not cut. */
    size_t n = CFG_STR_MAX + 100;
    char *yaml = malloc(n + 64);
    CHECK(ts, yaml != NULL);
    if (!yaml) return;
    int k = sprintf(yaml, "run:\n  name: ");
    memset(yaml + k, 'a', n);
    strcpy(yaml + k + n, "\n");
    CHECK(ts, cfg_load_buffer(&c, "long.yaml", yaml, strlen(yaml), &err) == -1);
    CHECK_CONTAINS(ts, err.msg, "long.yaml:2:9: run.name: string too long");
    free(yaml);
}

static void test_suggest(struct test_state *ts)
{
    CHECK(ts, cfg_suggest("rollout.temprature") && strcmp(cfg_suggest("rollout.temprature"), "rollout.temperature") == 0);
    CHECK(ts, cfg_suggest("algorithm.klcoef") && strcmp(cfg_suggest("algorithm.klcoef"), "algorithm.kl_coef") == 0);
    CHECK(ts, cfg_suggest("rolout") && strcmp(cfg_suggest("rolout"), "rollout") == 0);
    CHECK(ts, cfg_suggest("zzzzzz.qqqq") == NULL);
}

static void test_describe(struct test_state *ts)
{
    char buf[256];
    cfg_describe_range(cfg_find("rollout.top_p"), buf, sizeof buf);
    CHECK(ts, strcmp(buf, "(0, 1]") == 0);
    cfg_describe_range(cfg_find("run.seed"), buf, sizeof buf);
    CHECK(ts, strcmp(buf, ">= 0") == 0);
    cfg_describe_type(cfg_find("reward.mode"), buf, sizeof buf);
    CHECK(ts, strcmp(buf, "one of: majority, ground_truth, none") == 0);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s FIXTURES_DIR\n", argv[0]);
        return 2;
    }
    fixtures = argv[1];
    struct test_state ts = {0};
    RUN(&ts, test_table_consistent);
    RUN(&ts, test_enum_names_match_c_enums);
    RUN(&ts, test_defaults_are_the_papers);
    RUN(&ts, test_load_values);
    RUN(&ts, test_roundtrip);
    RUN(&ts, test_overrides);
    RUN(&ts, test_override_on_file);
    RUN(&ts, test_bad_overrides);
    RUN(&ts, test_bad_files);
    RUN(&ts, test_bad_paths);
    RUN(&ts, test_suggest);
    RUN(&ts, test_describe);
    return test_summary(&ts);
}
