/* The quickstart report's pieces: the metrics.jsonl parser (nulls, unknown keys, resumed history,
 * errors naming file, line and key), the start/end window means, the eval JSON and TSV parsers,
 * seed directories sorted numerically, the summary rows, the verdict at its boundaries, the
 * markdown's escaping and the figure's size and colours; the run on self-generated questions
 * (synth_data.json's parser, all seeds or none, its row, sentence, facts line and curves). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../test.h"
#include "mmupt/report.h"

static int parse_m(const char *text, struct report_metrics *m, struct mmupt_err *err)
{
    return report_parse_metrics("m.jsonl", text, strlen(text), m, err);
}

static int near(double a, double b)
{
    return fabs(a - b) < 1e-12;
}

static void test_metrics_values(struct test_state *ts)
{
    struct report_metrics m;
    struct mmupt_err err;
    const char *text = "{\"step\": 1, \"reward/mean\": 0.5, \"other\": \"text\", \"reward/label_accuracy\": null}\n"
                       "\n   \n"
                       "{\"step\": 2, \"reward/mean\": 1, \"val/greedy_pass1\": 0.25, \"nested\": {\"a\": [1]}}\r\n"
                       "{\"step\": 3}";
    CHECK_MSG(ts, parse_m(text, &m, &err) == 0, "%s", err.msg);
    CHECK(ts, m.n == 3 && m.pts[0].step == 1 && m.pts[1].step == 2 && m.pts[2].step == 3);
    CHECK(ts, m.pts[0].v[REPORT_REWARD_MEAN] == 0.5 && m.pts[1].v[REPORT_REWARD_MEAN] == 1.0);
    CHECK(ts, isnan(m.pts[0].v[REPORT_LABEL_ACCURACY]) && isnan(m.pts[2].v[REPORT_REWARD_MEAN]));
    CHECK(ts, isnan(m.pts[0].v[REPORT_VAL_GREEDY]) && m.pts[1].v[REPORT_VAL_GREEDY] == 0.25);
    report_metrics_free(&m);
    CHECK(ts, parse_m("", &m, &err) == 0 && m.n == 0);
    CHECK(ts, isnan(report_window_mean(&m, REPORT_REWARD_MEAN, 0)));
    report_metrics_free(&m);
}

/* A resumed run appends from its checkpoint's step: the lines it replaces must not count twice. */
static void test_metrics_resume(struct test_state *ts)
{
    struct report_metrics m;
    struct mmupt_err err;
    const char *text = "{\"step\": 1, \"reward/mean\": 0.1}\n{\"step\": 2, \"reward/mean\": 0.2}\n"
                       "{\"step\": 3, \"reward/mean\": 0.3}\n{\"step\": 2, \"reward/mean\": 0.22}\n"
                       "{\"step\": 3, \"reward/mean\": 0.33}\n{\"step\": 4, \"reward/mean\": 0.44}\n";
    CHECK_MSG(ts, parse_m(text, &m, &err) == 0, "%s", err.msg);
    CHECK(ts, m.n == 4);
    for (int i = 0; i < m.n && i < 4; i++) CHECK(ts, m.pts[i].step == i + 1);
    CHECK(ts, m.n == 4 && m.pts[1].v[REPORT_REWARD_MEAN] == 0.22 && m.pts[3].v[REPORT_REWARD_MEAN] == 0.44);
    report_metrics_free(&m);
}

/* k = max(1, min(5, n / 4)) over the n points with a finite value, nulls skipped. */
static void test_window_means(struct test_state *ts)
{
    static const int sizes[] = {1, 3, 4, 7, 8, 13, 20, 21, 40};
    for (size_t c = 0; c < sizeof sizes / sizeof sizes[0]; c++) {
        int n = sizes[c];
        /* n finite values 1..n on odd steps, a null between each pair */
        char *text = malloc((size_t)n * 120 + 1);
        size_t len = 0;
        for (int i = 0; i < n; i++) {
            len += (size_t)sprintf(text + len, "{\"step\": %d, \"reward/uniform_groups\": %d}\n", 2 * i + 1, i + 1);
            len += (size_t)sprintf(text + len, "{\"step\": %d, \"reward/uniform_groups\": null}\n", 2 * i + 2);
        }
        struct report_metrics m;
        struct mmupt_err err;
        CHECK_MSG(ts, report_parse_metrics("w", text, len, &m, &err) == 0, "%s", err.msg);
        int k = n / 4 < 5 ? n / 4 : 5;
        if (k < 1) k = 1;
        double first = (k + 1) / 2.0, last = n - (k - 1) / 2.0; /* means of 1..k and n-k+1..n */
        double s = report_window_mean(&m, REPORT_UNIFORM_GROUPS, 0);
        double e = report_window_mean(&m, REPORT_UNIFORM_GROUPS, 1);
        CHECK_MSG(ts, near(s, first) && near(e, last), "n=%d k=%d: start %g (want %g) end %g (want %g)", n, k, s, first,
                  e, last);
        CHECK(ts, isnan(report_window_mean(&m, REPORT_VAL_GREEDY, 1)));
        report_metrics_free(&m);
        free(text);
    }
    /* n = 8 with a run of values that would shift the window if nulls were counted */
    struct report_metrics m;
    struct mmupt_err err;
    CHECK(ts, parse_m("{\"step\":1,\"reward/mean\":null}\n{\"step\":2,\"reward/mean\":0.5}\n"
                      "{\"step\":3,\"reward/mean\":0.7}\n{\"step\":4,\"reward/mean\":null}\n",
                      &m, &err) == 0);
    CHECK(ts, near(report_window_mean(&m, REPORT_REWARD_MEAN, 0), 0.5));
    CHECK(ts, near(report_window_mean(&m, REPORT_REWARD_MEAN, 1), 0.7));
    report_metrics_free(&m);
}

static void bad_metrics(struct test_state *ts, const char *text, size_t len, const char *want)
{
    struct report_metrics m = {(struct report_point *)1, 5, 5};
    struct mmupt_err err = {{0}};
    CHECK_MSG(ts, report_parse_metrics("run/m.jsonl", text, len, &m, &err) == -1, "accepted: %s", text);
    CHECK_CONTAINS(ts, err.msg, want);
    CHECK(ts, m.n == 0 && m.pts == NULL);
}

static void test_metrics_errors(struct test_state *ts)
{
    const char *ok = "{\"step\": 1}\n";
    char buf[256];
#define BAD(tail, want)                                                      \
    do {                                                                     \
        snprintf(buf, sizeof buf, "%s%s%s", ok, ok, tail);                   \
        bad_metrics(ts, buf, strlen(buf), want);                             \
    } while (0)
    BAD("{\"step\": \"three\"}\n", "run/m.jsonl:3: \"step\": not an integer");
    BAD("{\"step\": 1.5}\n", "run/m.jsonl:3: \"step\": not an integer");
    BAD("{\"reward/mean\": 1}\n", "run/m.jsonl:3: \"step\": missing");
    BAD("{\"step\": -2}\n", "run/m.jsonl:3: \"step\": -2 is negative");
    BAD("{\"step\": 3, \"reward/mean\": \"high\"}\n", "run/m.jsonl:3: \"reward/mean\": not a number or null");
    BAD("{\"step\": 3, \"val/greedy_pass1\": true}\n", "\"val/greedy_pass1\": not a number or null");
    BAD("[1, 2]\n", "run/m.jsonl:3: not a JSON object");
    BAD("{\"step\": 3,\n", "run/m.jsonl:3:");
    BAD("{\"step\": 3, \"step\": 4}\n", "run/m.jsonl:3:");
    BAD("\n\n{\"step\": 3}}\n", "run/m.jsonl:5:");
    BAD("{\"step\": 3, \"reward/mean\": 1e999}\n", "run/m.jsonl:3:");
#undef BAD
    const char nul[] = "{\"step\": 1}\n{\"step\": 2\0}\n";
    bad_metrics(ts, nul, sizeof nul - 1, "run/m.jsonl:2:11: invalid JSON: NUL byte");
}

static const char eval_json[] =
    "{\"model\": \"m\", \"settings\": {\"G\": 8, \"temperature\": 1.0},\n"
    " \"overall\": {\"items\": 1000, \"greedy_pass1\": 0.713, \"pass1\": null, \"maj\": 0.9},\n"
    " \"by_source\": {\"red\": {\"items\": 10, \"greedy_pass1\": 1.0, \"maj\": 0.5},\n"
    "               \"a|b\": {\"items\": 0, \"greedy_pass1\": null, \"maj\": null}}}\n";

static void bad_eval(struct test_state *ts, const char *from, const char *to, const char *want)
{
    char text[1024];
    const char *at = strstr(eval_json, from);
    CHECK_MSG(ts, at != NULL, "fixture lacks %s", from);
    if (!at) return;
    snprintf(text, sizeof text, "%.*s%s%s", (int)(at - eval_json), eval_json, to, at + strlen(from));
    struct report_eval e;
    struct mmupt_err err = {{0}};
    CHECK_MSG(ts, report_parse_eval("b.json", text, strlen(text), &e, &err) == -1, "accepted: %s", text);
    CHECK_CONTAINS(ts, err.msg, want);
    CHECK(ts, e.sources == NULL && e.n_sources == 0);
}

static void test_eval(struct test_state *ts)
{
    struct report_eval e;
    struct mmupt_err err;
    CHECK_MSG(ts, report_parse_eval("b.json", eval_json, strlen(eval_json), &e, &err) == 0, "%s", err.msg);
    CHECK(ts, e.G == 8 && e.items == 1000 && e.greedy == 0.713 && isnan(e.pass1) && e.maj == 0.9);
    CHECK(ts, e.n_sources == 2 && strcmp(e.sources[0].name, "red") == 0 && strcmp(e.sources[1].name, "a|b") == 0);
    CHECK(ts, e.n_sources == 2 && e.sources[0].items == 10 && e.sources[0].maj == 0.5 && isnan(e.sources[1].greedy));
    report_eval_free(&e);
    bad_eval(ts, "\"G\": 8", "\"G\": 0", "b.json: settings.G: not an integer in [1, 1000000]");
    bad_eval(ts, "\"G\": 8", "\"H\": 8", "b.json: settings.G: missing");
    bad_eval(ts, "\"greedy_pass1\": 0.713", "\"greedy_pass1\": 1.2",
             "b.json: overall.greedy_pass1: 1.2 is not a share");
    bad_eval(ts, "\"pass1\": null", "\"pass1\": \"x\"", "b.json: overall.pass1: not a number or null");
    bad_eval(ts, "\"items\": 1000", "\"items\": -1", "b.json: overall.items: not a non-negative integer");
    bad_eval(ts, "\"maj\": 0.5", "\"mag\": 0.5", "b.json: by_source.red.maj: missing");
    bad_eval(ts, "\"by_source\"", "\"by_kind\"", "b.json: by_source: missing");
    bad_eval(ts, "{\"model\"", "[{\"model\"", "b.json:");
    char longname[300];
    memset(longname, 'k', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    char key[320];
    snprintf(key, sizeof key, "\"%s\"", longname);
    bad_eval(ts, "\"red\"", key, "longer than 127 bytes");
}

static void test_tsv(struct test_state *ts)
{
    struct report_info *info;
    int n;
    struct mmupt_err err = {{0}};
    const char *text = "command\tlaunch/quickstart.sh --seeds 3\n\nmachine\tvm\twith a tab\r\ndate\t\n";
    CHECK_MSG(ts, report_parse_info("run.tsv", text, strlen(text), &info, &n, &err) == 0, "%s", err.msg);
    CHECK(ts, n == 3 && strcmp(info[0].value, "launch/quickstart.sh --seeds 3") == 0);
    CHECK(ts, n == 3 && strcmp(info[1].key, "machine") == 0 && strcmp(info[1].value, "vm\twith a tab") == 0);
    CHECK(ts, n == 3 && info[2].value[0] == '\0');
    free(info);
    CHECK(ts, report_parse_info("run.tsv", "a\tb\nnotab\n", 10, &info, &n, &err) == -1 && info == NULL);
    CHECK_CONTAINS(ts, err.msg, "run.tsv:2: expected NAME<TAB>VALUE");
    CHECK(ts, report_parse_info("run.tsv", "a\tb\x01\n", 5, &info, &n, &err) == -1);
    CHECK_CONTAINS(ts, err.msg, "run.tsv:1: a: a control character or invalid UTF-8");
    CHECK(ts, report_parse_info("run.tsv", "a\t\xff\n", 4, &info, &n, &err) == -1);

    struct report_phase ph[REPORT_MAX_PHASES];
    const char *times = "base_eval\t10.5\nmajority_train\t2e2\n";
    CHECK_MSG(ts, report_parse_times("t.tsv", times, strlen(times), ph, &n, &err) == 0, "%s", err.msg);
    CHECK(ts, n == 2 && ph[0].seconds == 10.5 && ph[1].seconds == 200.0 && strcmp(ph[1].name, "majority_train") == 0);
    static const struct {
        const char *text, *want;
    } bad[] = {
        {"a\t1\na\t2\n", "t.tsv:2: a: given twice"},
        {"a\t-1\n", "t.tsv:1: a: '-1' is not a number of seconds >= 0"},
        {"a\tnan\n", "'nan' is not a number"},
        {"a\t5 s\n", "'5 s' is not a number"},
        {"a\t\n", "t.tsv:1: a: expected a number of seconds"},
        {"\n\n", "t.tsv: no phase<TAB>seconds lines"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_MSG(ts, report_parse_times("t.tsv", bad[i].text, strlen(bad[i].text), ph, &n, &err) == -1, "accepted %s",
                  bad[i].text);
        CHECK_CONTAINS(ts, err.msg, bad[i].want);
    }
}

static void put(const char *dir, const char *rel, const char *text)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    FILE *f = fopen(path, "w");
    MMUPT_CHECK(f != NULL);
    fputs(text, f);
    fclose(f);
}

/* A minimal seed: base and MM-UPT evaluations, metrics and times; no ground truth. */
static void make_seed(const char *run, int seed, double base, double mm)
{
    char d[4096], sub[4200], json[512];
    snprintf(d, sizeof d, "%s/seed-%d", run, seed);
    snprintf(sub, sizeof sub, "%s/majority", d);
    MMUPT_CHECK(mkdir(d, 0755) == 0 && mkdir(sub, 0755) == 0);
    const char *fmt = "{\"settings\": {\"G\": 4}, \"overall\": {\"items\": 100, \"greedy_pass1\": %g, \"pass1\": 0.5, "
                      "\"maj\": 0.9}, \"by_source\": {}}";
    snprintf(json, sizeof json, fmt, base);
    put(d, "base.json", json);
    snprintf(json, sizeof json, fmt, mm);
    put(d, "majority.json", json);
    put(sub, "metrics.jsonl", "{\"step\": 1, \"reward/label_accuracy\": 0.5}\n");
    put(d, "times.tsv", "base_eval\t1\n");
}

/* Removes run/seed-N/{files, majority/, synth/} for the seeds given, then run itself. */
static void remove_run(const char *run, const int *seeds, int n)
{
    char p[1024]; /* short, so test_remove_dir's own paths provably fit */
    for (int i = 0; i < n; i++) {
        snprintf(p, sizeof p, "%s/seed-%d/majority", run, seeds[i]);
        test_remove_dir(p);
        snprintf(p, sizeof p, "%s/seed-%d/synth", run, seeds[i]);
        test_remove_dir(p);
        snprintf(p, sizeof p, "%s/seed-%d", run, seeds[i]);
        test_remove_dir(p);
    }
    test_remove_dir(run);
}

static void test_load_sorts_seeds(struct test_state *ts)
{
    char run[] = "/tmp/mmupt_report_XXXXXX";
    MMUPT_CHECK(mkdtemp(run) != NULL);
    struct report_data d;
    struct mmupt_err err = {{0}};
    CHECK(ts, report_load(run, &d, &err) == -1 && d.seeds == NULL);
    CHECK_CONTAINS(ts, err.msg, "no seed-N directories");
    static const int seeds[] = {2, 10, 1};
    for (int i = 0; i < 3; i++) make_seed(run, seeds[i], 0.5, 0.5 + 0.01 * seeds[i]);
    CHECK(ts, report_load(run, &d, &err) == -1);
    CHECK_CONTAINS(ts, err.msg, "run.tsv: cannot open");
    put(run, "run.tsv", "command\tx\n");
    put(run, "notes.txt", "not ours\n");
    CHECK_MSG(ts, report_load(run, &d, &err) == 0, "%s", err.msg);
    CHECK(ts, d.n_seeds == 3 && d.seeds[0].seed == 1 && d.seeds[1].seed == 2 && d.seeds[2].seed == 10);
    CHECK(ts, d.n_seeds == 3 && near(d.seeds[2].majority.eval.greedy, 0.6) && !d.seeds[2].ground_truth.present);
    CHECK(ts, d.n_seeds == 3 && d.seeds[0].majority.selected_step == -1 && d.n_info == 1);
    report_free(&d);
    put(run, "seed-1/majority/selected_step", " 40\n");
    CHECK_MSG(ts, report_load(run, &d, &err) == 0, "%s", err.msg);
    CHECK(ts, d.n_seeds == 3 && d.seeds[0].majority.selected_step == 40);
    report_free(&d);
    put(run, "seed-1/majority/selected_step", "-4\n");
    CHECK(ts, report_load(run, &d, &err) == -1);
    CHECK_CONTAINS(ts, err.msg, "selected_step: '-4' is not a step number");
    put(run, "seed-1/majority/selected_step", "4\n");
    put(run, "seed-10/ground_truth.json", "{}");
    CHECK(ts, report_load(run, &d, &err) == -1 && d.n_seeds == 0);
    CHECK_CONTAINS(ts, err.msg, "seed-10/ground_truth: missing");
    char p[4200];
    snprintf(p, sizeof p, "%s/seed-10/ground_truth.json", run);
    unlink(p);
    snprintf(p, sizeof p, "%s/seed-1/majority/selected_step", run);
    unlink(p);
    put(run, "seed-3", "a file\n");
    CHECK(ts, report_load(run, &d, &err) == -1);
    CHECK_CONTAINS(ts, err.msg, "seed-3: not a directory");
    snprintf(p, sizeof p, "%s/seed-3", run);
    unlink(p);
    remove_run(run, seeds, 3);
}

static const char synth_json[] =
    "{\"settings\": {\"mode\": \"direct\", \"n\": 4}, \"prompt\": \"Ask.\",\n"
    " \"counts\": {\"items_used\": 16, \"candidates\": 64, \"kept\": 10, \"rejected\": 54,\n"
    "            \"rejected_by_reason\": {\"empty\": 0, \"not_question\": 50, \"too_short\": 4}}}\n";

static void bad_synth(struct test_state *ts, const char *from, const char *to, const char *want)
{
    char text[1024];
    const char *at = strstr(synth_json, from);
    CHECK_MSG(ts, at != NULL, "fixture lacks %s", from);
    if (!at) return;
    snprintf(text, sizeof text, "%.*s%s%s", (int)(at - synth_json), synth_json, to, at + strlen(from));
    struct report_synth_data sd;
    struct mmupt_err err = {{0}};
    CHECK_MSG(ts, report_parse_synth("s.json", text, strlen(text), &sd, &err) == -1, "accepted: %s", text);
    CHECK_CONTAINS(ts, err.msg, want);
    CHECK(ts, sd.n_reasons == 0 && sd.kept == 0);
}

static void test_synth_parse(struct test_state *ts)
{
    struct report_synth_data sd;
    struct mmupt_err err = {{0}};
    CHECK_MSG(ts, report_parse_synth("s.json", synth_json, strlen(synth_json), &sd, &err) == 0, "%s", err.msg);
    CHECK(ts, strcmp(sd.mode, "direct") == 0 && sd.items_used == 16 && sd.candidates == 64 && sd.kept == 10);
    CHECK(ts, sd.n_reasons == 3 && strcmp(sd.reasons[0].name, "empty") == 0 && sd.reasons[0].n == 0);
    CHECK(ts, sd.n_reasons == 3 && strcmp(sd.reasons[1].name, "not_question") == 0 && sd.reasons[1].n == 50);
    CHECK(ts, sd.n_reasons == 3 && strcmp(sd.reasons[2].name, "too_short") == 0 && sd.reasons[2].n == 4);
    bad_synth(ts, "\"counts\"", "\"count\"", "s.json: counts: missing");
    bad_synth(ts, "\"kept\": 10", "\"keep\": 10", "s.json: counts.kept: missing");
    bad_synth(ts, "\"kept\": 10", "\"kept\": 10.5", "s.json: counts.kept: not a non-negative integer");
    bad_synth(ts, "\"candidates\": 64", "\"candidates\": -64", "s.json: counts.candidates: not a non-negative");
    bad_synth(ts, "\"items_used\": 16", "\"items_used\": \"16\"", "s.json: counts.items_used: not a non-negative");
    bad_synth(ts, "\"candidates\": 64", "\"candidates\": 9", "s.json: counts.kept: 10 is more than counts.candidates");
    bad_synth(ts, "\"too_short\": 4", "\"too_short\": 3",
              "s.json: counts: kept (10) plus rejected_by_reason (53) is not candidates (64)");
    bad_synth(ts, "\"too_short\": 4", "\"too_short\": 400", "more rejections than counts.candidates");
    bad_synth(ts, "\"too_short\": 4", "\"too_short\": null", "s.json: counts.rejected_by_reason.too_short: not a");
    bad_synth(ts, "{\"empty\": 0, \"not_question\": 50, \"too_short\": 4}", "[54]",
              "s.json: counts.rejected_by_reason: not an object");
    bad_synth(ts, "\"rejected_by_reason\"", "\"by_reason\"", "s.json: counts.rejected_by_reason: missing");
    bad_synth(ts, "\"mode\": \"direct\"", "\"mode\": 1", "s.json: settings.mode: not a non-empty string");
    bad_synth(ts, "\"mode\": \"direct\"", "\"mode\": \"\"", "s.json: settings.mode: not a non-empty string");
    bad_synth(ts, "\"mode\": \"direct\"", "\"m\": 1", "s.json: settings.mode: missing");
    bad_synth(ts, "{\"mode\": \"direct\", \"n\": 4}", "4", "s.json: settings: not an object");
    bad_synth(ts, "{\"settings\"", "[{\"settings\"", "s.json:");
}

/* Seed N's run on self-generated questions: evaluation, training metrics and synth summary. */
static void add_synth(const char *run, int seed, double greedy)
{
    char d[4096], sub[4200], json[512];
    snprintf(d, sizeof d, "%s/seed-%d", run, seed);
    snprintf(sub, sizeof sub, "%s/synth", d);
    MMUPT_CHECK(mkdir(sub, 0755) == 0);
    snprintf(json, sizeof json, "{\"settings\": {\"G\": 4}, \"overall\": {\"items\": 100, \"greedy_pass1\": %g, "
             "\"pass1\": 0.4, \"maj\": 0.8}, \"by_source\": {}}", greedy);
    put(d, "synth.json", json);
    put(sub, "metrics.jsonl", "{\"step\": 1, \"reward/mean\": 0.25}\n{\"step\": 2, \"reward/mean\": 0.5}\n");
    put(d, "synth_data.json", synth_json);
}

static void test_load_synth(struct test_state *ts)
{
    char run[] = "/tmp/mmupt_report_XXXXXX", p[4200];
    MMUPT_CHECK(mkdtemp(run) != NULL);
    static const int seeds[] = {1, 2};
    for (int i = 0; i < 2; i++) make_seed(run, seeds[i], 0.5, 0.6);
    put(run, "run.tsv", "command\tx\n");
    struct report_data d;
    struct mmupt_err err = {{0}};
    CHECK_MSG(ts, report_load(run, &d, &err) == 0, "%s", err.msg);
    CHECK(ts, d.synth == 0 && d.n_seeds == 2 && !d.seeds[0].synth.present && !d.seeds[1].synth.present);
    report_free(&d);
    add_synth(run, 2, 0.55);
    CHECK(ts, report_load(run, &d, &err) == -1 && d.seeds == NULL);
    CHECK_CONTAINS(ts, err.msg, "seed-1/synth.json: missing (seed 2 has the run on self-generated questions");
    add_synth(run, 1, 0.65);
    CHECK_MSG(ts, report_load(run, &d, &err) == 0, "%s", err.msg);
    CHECK(ts, d.synth == 1 && d.n_seeds == 2 && d.seeds[0].synth.present && d.seeds[1].synth.present);
    CHECK(ts, d.n_seeds == 2 && near(d.seeds[0].synth.eval.greedy, 0.65) && d.seeds[0].synth.metrics.n == 2);
    CHECK(ts, d.n_seeds == 2 && d.seeds[1].synth_data.kept == 10 && d.seeds[1].synth.selected_step == -1);
    report_free(&d);
    /* a seed with some of the three is told which one it lacks */
    snprintf(p, sizeof p, "%s/seed-2/synth_data.json", run);
    unlink(p);
    CHECK(ts, report_load(run, &d, &err) == -1);
    CHECK_CONTAINS(ts, err.msg, "seed-2/synth_data.json: missing (the run on self-generated questions needs");
    put(run, "seed-2/synth_data.json", "{\"settings\": {\"mode\": \"direct\"}}");
    CHECK(ts, report_load(run, &d, &err) == -1);
    CHECK_CONTAINS(ts, err.msg, "seed-2/synth_data.json: counts: missing");
    snprintf(p, sizeof p, "%s/seed-1/synth.json", run);
    unlink(p);
    CHECK(ts, report_load(run, &d, &err) == -1);
    CHECK_CONTAINS(ts, err.msg, "seed-1/synth.json: missing");
    snprintf(p, sizeof p, "%s/seed-1/synth_data.json", run);
    unlink(p);
    snprintf(p, sizeof p, "%s/seed-2/synth.json", run);
    unlink(p);
    snprintf(p, sizeof p, "%s/seed-2/synth_data.json", run);
    unlink(p);
    remove_run(run, seeds, 2);
}

/* A hand-made run: greedy accuracies of base, MM-UPT and ground truth (NaN: not run) per seed. */
struct fake {
    struct report_data d;
    struct report_seed seeds[4];
};

static void fake_run(struct fake *f, int n, const double (*acc)[3])
{
    memset(f, 0, sizeof *f);
    f->d.seeds = f->seeds;
    f->d.n_seeds = n;
    for (int i = 0; i < n; i++) {
        struct report_seed *s = &f->seeds[i];
        s->seed = i + 1;
        s->base = (struct report_eval){.G = 8, .items = 1000, .greedy = acc[i][0], .pass1 = 0.8, .maj = 0.9};
        s->majority.present = 1;
        s->majority.eval = s->base;
        s->majority.eval.greedy = acc[i][1];
        s->ground_truth.present = !isnan(acc[i][2]);
        s->ground_truth.eval = s->base;
        s->ground_truth.eval.greedy = acc[i][2];
        s->n_phases = 1;
        s->phases[0] = (struct report_phase){"base_eval", 10.0 * (i + 1)};
    }
}

static void test_verdict(struct test_state *ts)
{
    struct fake f;
    struct report_verdict v;
    /* MM-UPT deltas +6.5, -1.7, +10.5 (mean +5.1), GT +13.7, +11.0, +11.0: both met */
    const double a[3][3] = {{0.713, 0.778, 0.850}, {0.701, 0.684, 0.811}, {0.690, 0.795, 0.800}};
    fake_run(&f, 3, a);
    report_verdict_of(&f.d, &v);
    CHECK(ts, v.mmupt == REPORT_MET && v.gt == REPORT_MET);
    CHECK_MSG(ts, near(v.mm_mean, 5.1) && near(v.mm_worst, -1.7) && v.mm_worst_seed == 2, "%g %g", v.mm_mean,
              v.mm_worst);
    CHECK(ts, near(v.gt_worst, 11.0) && v.gt_worst_seed == 2);
    /* On the bars exactly, with binary noise: 0.75 - 0.70 = 0.04999.. prints +5.0 and passes */
    const double b[1][3] = {{0.70, 0.75, 0.80}};
    fake_run(&f, 1, b);
    report_verdict_of(&f.d, &v);
    CHECK_MSG(ts, v.mmupt == REPORT_MET && near(v.mm_mean, 5.0), "mean %g", v.mm_mean);
    CHECK(ts, v.gt == REPORT_MET && near(v.gt_worst, 10.0));
    const double c[2][3] = {{0.70, 0.83, 0.80}, {0.70, 0.67, 0.80}};
    fake_run(&f, 2, c);
    report_verdict_of(&f.d, &v);
    CHECK_MSG(ts, v.mmupt == REPORT_MET && near(v.mm_mean, 5.0) && near(v.mm_worst, -3.0), "%g %g", v.mm_mean,
              v.mm_worst);
    CHECK(ts, v.gt == REPORT_MET && near(v.gt_worst, 10.0));
    /* Just under each bar */
    const double e[2][3] = {{0.70, 0.828, 0.80}, {0.70, 0.67, 0.799}};
    fake_run(&f, 2, e);
    report_verdict_of(&f.d, &v);
    CHECK_MSG(ts, v.mmupt == REPORT_NOT_MET && near(v.mm_mean, 4.9), "mean %g", v.mm_mean);
    CHECK(ts, v.gt == REPORT_NOT_MET && near(v.gt_worst, 9.9) && v.gt_worst_seed == 2);
    const double g[2][3] = {{0.70, 0.90, 0.90}, {0.70, 0.668, 0.90}};
    fake_run(&f, 2, g);
    report_verdict_of(&f.d, &v);
    CHECK_MSG(ts, v.mmupt == REPORT_NOT_MET && near(v.mm_worst, -3.2) && near(v.mm_mean, 8.4), "%g %g", v.mm_worst,
              v.mm_mean);
    /* Ground truth on some seeds only: not met; on none: not run */
    const double h[2][3] = {{0.70, 0.80, 0.90}, {0.70, 0.80, NAN}};
    fake_run(&f, 2, h);
    report_verdict_of(&f.d, &v);
    CHECK(ts, v.gt == REPORT_NOT_MET && v.gt_missing == 1 && v.mmupt == REPORT_MET);
    const double k[2][3] = {{0.70, 0.80, NAN}, {0.70, 0.80, NAN}};
    fake_run(&f, 2, k);
    report_verdict_of(&f.d, &v);
    CHECK(ts, v.gt == REPORT_NOT_RUN && v.gt_missing == 0);
    /* A null accuracy is no number: never met */
    const double m[2][3] = {{0.70, NAN, 0.90}, {0.70, 0.90, 0.90}};
    fake_run(&f, 2, m);
    f.seeds[0].ground_truth.eval.greedy = NAN;
    report_verdict_of(&f.d, &v);
    CHECK(ts, v.mmupt == REPORT_NOT_MET && isnan(v.mm_mean) && v.gt == REPORT_NOT_MET && v.gt_worst_seed == 1);
}

static void test_rows(struct test_state *ts)
{
    struct fake f;
    const double a[2][3] = {{0.70, 0.75, NAN}, {0.60, 0.70, 0.80}};
    fake_run(&f, 2, a);
    struct report_row r[2], mean;
    report_row_of(&f.seeds[0], &r[0]);
    report_row_of(&f.seeds[1], &r[1]);
    CHECK(ts, near(r[0].headroom, 0.2) && near(r[0].mm_delta, 0.05) && isnan(r[0].gt_greedy) && isnan(r[0].gt_delta));
    CHECK(ts, near(r[1].gt_delta, 0.2) && r[1].wall_s == 20.0 && isnan(r[1].label_start));
    report_row_mean(r, 2, &mean);
    CHECK(ts, near(mean.base_greedy, 0.65) && near(mean.mm_delta, 0.075) && near(mean.wall_s, 15.0));
    CHECK(ts, near(mean.gt_greedy, 0.80) && near(mean.gt_delta, 0.2) && isnan(mean.label_end));
    CHECK(ts, report_points(0.0666) == 6.7 && report_points(-0.017) == -1.7 && report_points(0.04999999999) == 5.0);
}

static void test_markdown(struct test_state *ts)
{
    struct fake f;
    const double a[2][3] = {{0.70, 0.75, NAN}, {0.60, 0.58, NAN}};
    fake_run(&f, 2, a);
    struct report_source src[2] = {{"a|b\nc", 10, 0.5, 0.6}, {"red", 5, 1.0, 1.0}};
    f.seeds[0].base.sources = src;
    f.seeds[0].base.n_sources = 2;
    struct report_info info[1] = {{"command", "x | y"}};
    f.d.info = info;
    f.d.n_info = 1;
    size_t len;
    char *md = report_markdown(&f.d, "runs/q", "fig (1).png", &len);
    CHECK(ts, len == strlen(md));
    CHECK_CONTAINS(ts, md, "| command | x \\| y |\n");
    CHECK_CONTAINS(ts, md, "| a\\|b c | 10 | 50.0 | 60.0 | - | not run |\n");
    CHECK_CONTAINS(ts, md, "| 2 | 60.0 | 80.0 | 90.0 | +30.0 | 58.0 (-2.0) | 80.0 | not run | - | - | 20 |\n");
    CHECK_CONTAINS(ts, md, "MM-UPT lost accuracy on seed 2: greedy 60.0 -> 58.0 (-2.0 points).");
    CHECK_CONTAINS(ts, md, "**MM-UPT** (majority-vote reward, no labels): **NOT met**. Mean greedy delta +1.5 points");
    CHECK_CONTAINS(ts, md, "**not run**");
    CHECK_CONTAINS(ts, md, "](fig%20%281%29.png)");
    free(md);
}

/* fake_run plus MM-UPT on self-generated questions with these greedy accuracies. */
static void fake_synth(struct fake *f, const double *greedy, struct report_synth_data *sd)
{
    f->d.synth = 1;
    for (int i = 0; i < f->d.n_seeds; i++) {
        struct report_seed *s = &f->seeds[i];
        s->synth.present = 1;
        s->synth.eval = s->base;
        s->synth.eval.greedy = greedy[i];
        s->synth.eval.pass1 = 0.55;
        s->synth.eval.maj = 0.85;
        s->synth.selected_step = -1;
        s->synth_data = *sd;
    }
}

static void test_markdown_synth(struct test_state *ts)
{
    struct fake f;
    const double a[2][3] = {{0.70, 0.75, NAN}, {0.60, 0.58, 0.8}};
    fake_run(&f, 2, a);
    size_t len;
    char *plain = report_markdown(&f.d, "runs/q", "r.png", &len);
    CHECK(ts, strstr(plain, "self-generated") == NULL && strstr(plain, "original questions") == NULL);
    free(plain);
    struct report_synth_data sd = {"direct", 16, 64, 10, 3, {{"empty", 0}, {"not_question", 50}, {"too_short", 4}}};
    const double sy[2] = {0.72, NAN};
    fake_synth(&f, sy, &sd);
    struct report_row r;
    report_row_of(&f.seeds[0], &r);
    CHECK(ts, near(r.sy_greedy, 0.72) && near(r.sy_delta, 0.02) && near(r.sy_vs_mm, -0.03) && near(r.sy_maj, 0.85));
    report_row_of(&f.seeds[1], &r);
    CHECK(ts, isnan(r.sy_greedy) && isnan(r.sy_vs_mm) && near(r.mm_maj, 0.9));
    char *md = report_markdown(&f.d, "runs/q", "r.png", &len);
    CHECK(ts, len == strlen(md));
    CHECK_CONTAINS(ts, md, "| MM-UPT, original questions: greedy (delta) | original: pass@1 | original: maj@8 | "
                           "MM-UPT, self-generated questions (direct): greedy (delta) | self-generated: pass@1 | "
                           "self-generated: maj@8 | GT-GRPO greedy (delta) |");
    CHECK_CONTAINS(ts, md, "| 1 | 70.0 | 80.0 | 90.0 | +20.0 | 75.0 (+5.0) | 80.0 | 90.0 | 72.0 (+2.0) | 55.0 | 85.0 "
                           "| not run | - | - | 10 |\n");
    CHECK_CONTAINS(ts, md, "| 2 | 60.0 | 80.0 | 90.0 | +30.0 | 58.0 (-2.0) | 80.0 | 90.0 | - | 55.0 | 85.0 ");
    CHECK_CONTAINS(ts, md, "- seed 1: greedy delta +2.0 points on self-generated questions against +5.0 on the "
                           "original questions: 3.0 points lower.\n");
    CHECK_CONTAINS(ts, md, "- seed 2: greedy delta - points on self-generated questions against -2.0 on the original "
                           "questions: no difference to give (a null in an evaluation).\n");
    CHECK_CONTAINS(ts, md, "- seed 1: self-generated questions: 10 kept of 64 candidates (rejected: not\\_question "
                           "50, too\\_short 4), from 16 items.\n");
    CHECK_CONTAINS(ts, md, "| 1 | MM-UPT self-generated | 0 | - | - |");
    CHECK_CONTAINS(ts, md, "- **MM-UPT, self-generated questions**");
    free(md);
    /* the same gain, nothing rejected, modes that differ */
    const double same[2] = {0.75, 0.58};
    fake_synth(&f, same, &sd);
    f.seeds[1].synth_data.n_reasons = 0;
    snprintf(f.seeds[1].synth_data.mode, sizeof f.seeds[1].synth_data.mode, "in_context");
    md = report_markdown(&f.d, "runs/q", "r.png", &len);
    CHECK_CONTAINS(ts, md, "against +5.0 on the original questions: the same.\n");
    CHECK_CONTAINS(ts, md, "- seed 2: self-generated questions: 10 kept of 64 candidates (rejected: none), from 16");
    CHECK_CONTAINS(ts, md, "MM-UPT, self-generated questions (modes differ per seed): greedy (delta)");
    CHECK_CONTAINS(ts, md, "- mean over the seeds: greedy delta +1.5 points on self-generated questions against +1.5");
    free(md);
}

static int has_colour(const struct img_rgb *im, uint8_t r, uint8_t g, uint8_t b)
{
    for (size_t i = 0; i < (size_t)im->width * (size_t)im->height; i++)
        if (im->data[3 * i] == r && im->data[3 * i + 1] == g && im->data[3 * i + 2] == b) return 1;
    return 0;
}

static void test_figure(struct test_state *ts)
{
    struct fake f;
    const double a[2][3] = {{0.70, 0.75, 0.8}, {0.60, 0.58, NAN}};
    fake_run(&f, 2, a);
    struct report_point pts[3] = {{1, {0.5, 0.5, 0.2, 0.6, NAN}}, {2, {0.6, 0.7, 0.3, 0.7, 0.5}},
                                  {3, {0.7, 0.9, 0.4, 0.8, NAN}}};
    f.seeds[0].majority.metrics = (struct report_metrics){pts, 3, 3};
    f.seeds[0].ground_truth.metrics = (struct report_metrics){pts, 3, 3};
    struct img_rgb im = {0};
    struct mmupt_err err;
    CHECK_MSG(ts, report_figure(&f.d, &im, &err) == 0, "%s", err.msg);
    CHECK(ts, im.width == 960 && im.height == 600);
    /* the first MM-UPT series is blue, the first ground-truth series orange */
    CHECK(ts, has_colour(&im, 31, 119, 180) && has_colour(&im, 255, 127, 14));
    CHECK(ts, !has_colour(&im, 148, 103, 189));
    free(im.data);
    /* the run on self-generated questions: one more series per seed, in purple */
    struct report_synth_data sd = {0};
    const double sy[2] = {0.72, 0.6};
    fake_synth(&f, sy, &sd);
    f.seeds[0].synth.metrics = (struct report_metrics){pts, 3, 3};
    CHECK_MSG(ts, report_figure(&f.d, &im, &err) == 0, "%s", err.msg);
    CHECK(ts, im.width == 960 && im.height == 600); /* 5 series fit the narrowest panels */
    CHECK(ts, has_colour(&im, 148, 103, 189) && has_colour(&im, 31, 119, 180));
    free(im.data);
}

int main(void)
{
    struct test_state ts = {0};
    RUN(&ts, test_metrics_values);
    RUN(&ts, test_metrics_resume);
    RUN(&ts, test_window_means);
    RUN(&ts, test_metrics_errors);
    RUN(&ts, test_eval);
    RUN(&ts, test_tsv);
    RUN(&ts, test_synth_parse);
    RUN(&ts, test_load_sorts_seeds);
    RUN(&ts, test_load_synth);
    RUN(&ts, test_verdict);
    RUN(&ts, test_rows);
    RUN(&ts, test_markdown);
    RUN(&ts, test_markdown_synth);
    RUN(&ts, test_figure);
    return test_summary(&ts);
}
