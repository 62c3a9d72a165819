/* Reading a run directory: the seed-N directories in numeric order and every file of each. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "mmupt/report.h"
#include "mmupt/strutil.h"

#define PATH_MAX_LEN 4096

static int join(char *out, const char *dir, const char *rel, struct mmupt_err *err)
{
    if (snprintf(out, PATH_MAX_LEN, "%s/%s", dir, rel) >= PATH_MAX_LEN)
        return mmupt_fail(err, "%s/%s: path too long", dir, rel);
    return 0;
}

/* 1 when path exists, 0 when it does not, -1 (err set) when it cannot be looked at. */
static int exists(const char *path, struct mmupt_err *err)
{
    struct stat st;
    if (stat(path, &st) == 0) return 1;
    if (errno == ENOENT) return 0;
    return mmupt_fail(err, "%s: %s", path, strerror(errno));
}

static int load_eval(const char *dir, const char *rel, struct report_eval *e, struct mmupt_err *err)
{
    char path[PATH_MAX_LEN], *text;
    size_t len;
    if (join(path, dir, rel, err) || file_read_all(path, REPORT_MAX_JSON_BYTES, &text, &len, err)) return -1;
    int rc = report_parse_eval(path, text, len, e, err);
    free(text);
    return rc;
}

/* selected_step: one integer >= 0; -1 in *out when the file is absent. */
static int load_selected(const char *path, int64_t *out, struct mmupt_err *err)
{
    *out = -1;
    int ex = exists(path, err);
    if (ex <= 0) return ex;
    char *text;
    size_t len;
    if (file_read_all(path, 256, &text, &len, err)) return -1;
    char *s = str_trim(text), *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    int bad = end == s || *end || errno || v < 0 || s[0] == '+' || s[0] == '-';
    if (bad) mmupt_fail(err, "%s: '%.40s' is not a step number (one integer >= 0)", path, s);
    else *out = v;
    free(text);
    return bad ? -1 : 0;
}

/* A training run: NAME.json and NAME/ (metrics.jsonl, optional selected_step). */
static int load_run(const char *seed_dir, const char *name, int optional, struct report_run *r, struct mmupt_err *err)
{
    char json_rel[64], dir[PATH_MAX_LEN], json_path[PATH_MAX_LEN], path[PATH_MAX_LEN];
    snprintf(json_rel, sizeof json_rel, "%s.json", name);
    if (join(dir, seed_dir, name, err) || join(json_path, seed_dir, json_rel, err)) return -1;
    int have_json = exists(json_path, err), have_dir = have_json < 0 ? -1 : exists(dir, err);
    if (have_json < 0 || have_dir < 0) return -1;
    if (optional && !have_json && !have_dir) return 0; /* not run */
    if (!have_json || !have_dir)
        return mmupt_fail(err, "%s: missing%s", have_json ? dir : json_path,
                          optional ? have_json ? " (the evaluation exists, the training directory does not)"
                                               : " (the training directory exists, its evaluation does not)"
                                   : "");
    r->present = 1;
    if (load_eval(seed_dir, json_rel, &r->eval, err)) return -1;
    char *text;
    size_t len;
    if (join(path, dir, "metrics.jsonl", err) || file_read_all(path, REPORT_MAX_METRICS_BYTES, &text, &len, err))
        return -1;
    int rc = report_parse_metrics(path, text, len, &r->metrics, err);
    free(text);
    if (rc) return -1;
    return join(path, dir, "selected_step", err) || load_selected(path, &r->selected_step, err) ? -1 : 0;
}

/* The self-generated-question run: synth.json, synth/ and synth_data.json, all or none. */
static int load_synth(const char *seed_dir, struct report_seed *s, struct mmupt_err *err)
{
    static const char *const names[3] = {"synth.json", "synth", "synth_data.json"};
    static const char *const shown[3] = {"synth.json", "synth/", "synth_data.json"};
    char path[3][PATH_MAX_LEN], *text;
    int have[3], n = 0;
    for (int i = 0; i < 3; i++) {
        if (join(path[i], seed_dir, names[i], err) || (have[i] = exists(path[i], err)) < 0) return -1;
        n += have[i];
    }
    if (n == 0) return 0;
    for (int i = 0; i < 3; i++)
        if (!have[i])
            return mmupt_fail(err, "%s: missing (the run on self-generated questions needs synth.json, synth/ and "
                              "synth_data.json; the seed has %s)", path[i], shown[have[0] ? 0 : have[1] ? 1 : 2]);
    size_t len;
    if (load_run(seed_dir, "synth", 0, &s->synth, err) ||
        file_read_all(path[2], REPORT_MAX_JSON_BYTES, &text, &len, err))
        return -1;
    int rc = report_parse_synth(path[2], text, len, &s->synth_data, err);
    free(text);
    return rc;
}

static void free_run(struct report_run *r)
{
    report_eval_free(&r->eval);
    report_metrics_free(&r->metrics);
}

static void free_seed(struct report_seed *s)
{
    report_eval_free(&s->base);
    free_run(&s->majority);
    free_run(&s->ground_truth);
    free_run(&s->synth);
}

static int load_seed(const char *run_dir, struct report_seed *s, struct mmupt_err *err)
{
    char dir[PATH_MAX_LEN], name[32], path[PATH_MAX_LEN], *text;
    size_t len;
    snprintf(name, sizeof name, "seed-%lld", (long long)s->seed);
    s->majority.selected_step = s->ground_truth.selected_step = s->synth.selected_step = -1;
    if (join(dir, run_dir, name, err) || load_eval(dir, "base.json", &s->base, err) ||
        load_run(dir, "majority", 0, &s->majority, err) || load_run(dir, "ground_truth", 1, &s->ground_truth, err) ||
        load_synth(dir, s, err) ||
        join(path, dir, "times.tsv", err) || file_read_all(path, 1 << 16, &text, &len, err))
        return -1;
    int rc = report_parse_times(path, text, len, s->phases, &s->n_phases, err);
    free(text);
    return rc;
}

/* "seed-N" with N a decimal integer without sign or leading zeros: 1, else 0. */
static int seed_name(const char *name, int64_t *seed)
{
    if (strncmp(name, "seed-", 5) != 0) return 0;
    const char *d = name + 5;
    size_t n = strlen(d);
    if (n == 0 || n > 18 || (d[0] == '0' && n > 1) || strspn(d, "0123456789") != n) return 0;
    *seed = strtoll(d, NULL, 10);
    return 1;
}

static int cmp_seed(const void *a, const void *b)
{
    int64_t x = ((const struct report_seed *)a)->seed, y = ((const struct report_seed *)b)->seed;
    return (x > y) - (x < y);
}

/* The seed directories of run_dir, sorted numerically; entries not named seed-* are not ours. */
static int list_seeds(const char *run_dir, struct report_seed *seeds, int *n, struct mmupt_err *err)
{
    DIR *d = opendir(run_dir);
    if (!d) return mmupt_fail(err, "%s: cannot open the run directory: %s", run_dir, strerror(errno));
    struct dirent *e;
    int rc = 0;
    *n = 0;
    while (rc == 0 && (e = readdir(d))) {
        if (strncmp(e->d_name, "seed-", 5) != 0) continue;
        int64_t seed;
        char path[PATH_MAX_LEN];
        struct stat st;
        if (!seed_name(e->d_name, &seed))
            rc = mmupt_fail(err, "%s/%s: not a seed directory name (seed-N, N a whole number without leading zeros)",
                            run_dir, e->d_name);
        else if (*n == REPORT_MAX_SEEDS)
            rc = mmupt_fail(err, "%s: more than %d seed directories", run_dir, REPORT_MAX_SEEDS);
        else if (join(path, run_dir, e->d_name, err)) rc = -1;
        else if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
            rc = mmupt_fail(err, "%s: not a directory", path);
        else seeds[(*n)++].seed = seed;
    }
    closedir(d);
    if (rc == 0 && *n == 0)
        rc = mmupt_fail(err, "%s: no seed-N directories (expected %s/seed-1/base.json and the rest of a quickstart "
                        "run)", run_dir, run_dir);
    if (rc == 0) qsort(seeds, (size_t)*n, sizeof *seeds, cmp_seed);
    return rc;
}

static int load_info(const char *run_dir, struct report_data *d, struct mmupt_err *err)
{
    char path[PATH_MAX_LEN], *text;
    size_t len;
    if (join(path, run_dir, "run.tsv", err) || file_read_all(path, 1 << 20, &text, &len, err)) return -1;
    int rc = report_parse_info(path, text, len, &d->info, &d->n_info, err);
    free(text);
    return rc;
}

void report_free(struct report_data *d)
{
    for (int i = 0; i < d->n_seeds; i++) free_seed(&d->seeds[i]);
    free(d->seeds);
    free(d->info);
    memset(d, 0, sizeof *d);
}

/* The run on self-generated questions is compared across seeds, so it is on every seed or none. */
static int check_synth(const char *run_dir, struct report_data *d, struct mmupt_err *err)
{
    int with = -1, without = -1;
    for (int i = d->n_seeds - 1; i >= 0; i--) /* backwards: the first seed of each kind is named */
        *(d->seeds[i].synth.present ? &with : &without) = i;
    if (with >= 0 && without >= 0)
        return mmupt_fail(err, "%s/seed-%lld/synth.json: missing (seed %lld has the run on self-generated questions; "
                          "every seed needs synth.json, synth/ and synth_data.json, or none)",
                          run_dir, (long long)d->seeds[without].seed, (long long)d->seeds[with].seed);
    d->synth = with >= 0;
    return 0;
}

int report_load(const char *run_dir, struct report_data *out, struct mmupt_err *err)
{
    struct report_data d = {0};
    memset(out, 0, sizeof *out);
    d.seeds = mmupt_xcalloc(REPORT_MAX_SEEDS, sizeof *d.seeds);
    int n = 0;
    if (list_seeds(run_dir, d.seeds, &n, err) || load_info(run_dir, &d, err)) {
        report_free(&d);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        d.n_seeds = i + 1; /* so report_free releases what this seed loaded on failure */
        if (load_seed(run_dir, &d.seeds[i], err)) {
            report_free(&d);
            return -1;
        }
    }
    if (check_synth(run_dir, &d, err)) {
        report_free(&d);
        return -1;
    }
    *out = d;
    return 0;
}
