/* The scaling benchmark's report: reads the timing.json of every run benchmarks/scaling.sh made and
 * prints a markdown table (throughput, speedup or time ratio against the colocated np=1 baseline,
 * per-phase seconds, idle shares, and the communication model beside the measured traffic), and
 * draws steps/s against ranks with the ideal lines as a PNG.
 *
 *   scaling_table PNG SERIES=RUN_DIR...
 *
 * SERIES is one of base, weak-base (the np=1 baselines of the strong and the weak series),
 * strong-learners, weak-learners, strong-rollout, weak-rollout; runs of a series are given in order
 * of rank count. A bad or missing timing.json ends the program with a message naming the file and
 * the field (status 1). docs/scaling.md explains the columns. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mmupt/comm.h"
#include "mmupt/image.h"
#include "mmupt/json.h"
#include "mmupt/plot.h"
#include "mmupt/strutil.h"

#define MAX_RUNS 64
#define MAX_RANKS 4096
#define TIMING_MAX_BYTES ((size_t)64 << 20)

enum series { S_BASE, S_WEAK_BASE, S_STRONG_L, S_WEAK_L, S_STRONG_R, S_WEAK_R, S_COUNT };
static const char *const series_names[S_COUNT] = {"base", "weak-base", "strong-learners", "weak-learners",
                                                  "strong-rollout", "weak-rollout"};

/* The phases the table shows, as timing.json names them. */
enum { P_ROLLOUT, P_LOGPROB, P_UPDATE, P_SYNC, P_WAIT_DATA, P_WAIT_CREDIT, P_WAIT_WEIGHTS, P_COUNT };
static const char *const phase_keys[P_COUNT] = {"rollout", "logprob", "update", "sync",
                                                "wait_data", "wait_credit", "wait_weights"};

/* One run, reduced to what the table needs; times are per training step. */
struct run {
    enum series series;
    char path[1024];
    int64_t np, learners, rollout_ranks, steps, samples_per_step;
    double train_s;                 /* slowest rank: total minus setup */
    double learner[P_COUNT], rollout[P_COUNT]; /* mean over the ranks of the role (colocated count as learners) */
    double learner_idle, rollout_idle;         /* shares of total time, mean over the role */
    int n_rollout_ranks_seen;
    double model_bytes, meas_bytes, meas_s;    /* per step: model payload, rank 0's measured bytes and seconds */
    double model_run_bytes, meas_run_bytes;    /* the whole run: the model for its steps and versions; measured */
};

static void die(const char *msg)
{
    fprintf(stderr, "scaling_table: %s\n", msg);
    exit(1);
}

/* A member that must be an object; err names the file and the key path. */
static const json_t *get_obj(const json_t *o, const char *key, const char *where, struct mmupt_err *err)
{
    const json_t *v = json_object_get(o, key);
    if (!json_is_object(v)) {
        mmupt_fail(err, "%s: %s: missing or not an object", where, key);
        return NULL;
    }
    return v;
}

/* Sum over the four kinds of comm.KIND.{bytes, seconds} of one counters object. */
static int read_counters(const json_t *c, const char *where, double *bytes, double *seconds, struct mmupt_err *err)
{
    for (int op = 0; op < COMM_OP_COUNT; op++) {
        char w[1200];
        snprintf(w, sizeof w, "%s.%s", where, comm_op_names[op]);
        const json_t *k = get_obj(c, comm_op_names[op], where, err);
        double b, s;
        if (!k || json_get_number(k, "bytes", &b, w, err) || json_get_number(k, "seconds", &s, w, err)) return -1;
        *bytes += b;
        *seconds += s;
    }
    return 0;
}

static int read_rank(struct run *r, const json_t *rk, int i, struct mmupt_err *err)
{
    char where[1100];
    snprintf(where, sizeof where, "%s: ranks[%d]", r->path, i);
    const char *role;
    double total, setup;
    if (!json_is_object(rk)) return mmupt_fail(err, "%s: not an object", where);
    if (json_get_string(rk, "role", &role, where, err) || json_get_number(rk, "total_s", &total, where, err) ||
        json_get_number(rk, "setup_s", &setup, where, err))
        return -1;
    if (total - setup > r->train_s) r->train_s = total - setup;
    const json_t *ph = get_obj(rk, "phases", where, err);
    if (!ph) return -1;
    double v[P_COUNT];
    char w[1200];
    snprintf(w, sizeof w, "%s.phases", where);
    for (int p = 0; p < P_COUNT; p++)
        if (json_get_number(ph, phase_keys[p], &v[p], w, err)) return -1;
    int is_rollout = strcmp(role, "rollout") == 0;
    if (!is_rollout && strcmp(role, "learner") && strcmp(role, "colocated"))
        return mmupt_fail(err, "%s.role: '%s' is not learner, rollout or colocated", where, role);
    double *acc = is_rollout ? r->rollout : r->learner;
    for (int p = 0; p < P_COUNT; p++) acc[p] += v[p];
    double idle = total > 0 ? (v[P_WAIT_DATA] + v[P_WAIT_CREDIT] + v[P_WAIT_WEIGHTS]) / total : 0;
    *(is_rollout ? &r->rollout_idle : &r->learner_idle) += idle;
    r->n_rollout_ranks_seen += is_rollout;
    if (i == 0) { /* learner 0 takes part in every collective kind: its traffic is the run's */
        const json_t *comm = get_obj(rk, "comm", where, err);
        snprintf(w, sizeof w, "%s.comm", where);
        const json_t *learn = comm ? get_obj(comm, "learn", w, err) : NULL, *sync = learn ? get_obj(comm, "sync", w, err) : NULL;
        if (!sync) return -1;
        char wl[1300], ws[1300];
        snprintf(wl, sizeof wl, "%s.learn", w);
        snprintf(ws, sizeof ws, "%s.sync", w);
        if (read_counters(learn, wl, &r->meas_bytes, &r->meas_s, err) ||
            read_counters(sync, ws, &r->meas_bytes, &r->meas_s, err))
            return -1;
    }
    return 0;
}

/* The model's payload per step (steady state: the broadcast averaged over sync_interval) and over
 * this run (learner collectives x steps + the versions it broadcast; what rank 0 must have measured). */
static int read_model(struct run *r, const json_t *doc, struct mmupt_err *err)
{
    char where[1100];
    snprintf(where, sizeof where, "%s: model", r->path);
    const json_t *m = get_obj(doc, "model", r->path, err);
    if (!m) return -1;
    for (int op = 0; op < COMM_OP_COUNT; op++) {
        char w[1200];
        snprintf(w, sizeof w, "%s.%s", where, comm_op_names[op]);
        const json_t *k = get_obj(m, comm_op_names[op], where, err);
        double b;
        if (!k || json_get_number(k, "payload_bytes_per_step", &b, w, err)) return -1;
        r->model_bytes += b;
        if (op != COMM_BROADCAST) r->model_run_bytes += b * (double)r->steps;
    }
    int64_t versions, per_version;
    if (json_get_int(m, "versions_broadcast", &versions, where, err) ||
        json_get_int(m, "broadcast_bytes_per_version", &per_version, where, err))
        return -1;
    r->model_run_bytes += (double)versions * (double)per_version;
    return 0;
}

/* Read DIR/timing.json into r (times per step, means per role). */
static int run_read(struct run *r, struct mmupt_err *err)
{
    json_t *doc;
    if (json_parse_file(r->path, TIMING_MAX_BYTES, &doc, err)) return -1;
    int rc = -1;
    const json_t *ranks = json_object_get(doc, "ranks");
    if (json_get_int(doc, "np", &r->np, r->path, err) || json_get_int(doc, "learners", &r->learners, r->path, err) ||
        json_get_int(doc, "rollout_ranks", &r->rollout_ranks, r->path, err) ||
        json_get_int(doc, "steps", &r->steps, r->path, err) ||
        json_get_int(doc, "samples_per_step", &r->samples_per_step, r->path, err))
        goto done;
    if (r->np < 1 || r->np > MAX_RANKS || r->learners < 1 || r->rollout_ranks < 0 ||
        r->learners + r->rollout_ranks != r->np) {
        mmupt_fail(err, "%s: np %lld, learners %lld, rollout_ranks %lld do not add up", r->path, (long long)r->np,
                   (long long)r->learners, (long long)r->rollout_ranks);
        goto done;
    }
    if (r->steps < 1) {
        mmupt_fail(err, "%s: steps: %lld (a run of no steps has no rate)", r->path, (long long)r->steps);
        goto done;
    }
    if (read_model(r, doc, err)) goto done;
    if (!json_is_array(ranks) || json_array_size(ranks) != (size_t)r->np) {
        mmupt_fail(err, "%s: ranks: expected an array of %lld records", r->path, (long long)r->np);
        goto done;
    }
    for (int i = 0; i < (int)r->np; i++)
        if (read_rank(r, json_array_get(ranks, (size_t)i), i, err)) goto done;
    double n_l = (double)r->learners, n_r = r->n_rollout_ranks_seen ? r->n_rollout_ranks_seen : 1;
    for (int p = 0; p < P_COUNT; p++) r->learner[p] /= n_l * (double)r->steps, r->rollout[p] /= n_r * (double)r->steps;
    r->learner_idle /= n_l;
    r->rollout_idle /= n_r;
    r->meas_run_bytes = r->meas_bytes;
    r->meas_bytes /= (double)r->steps;
    r->meas_s /= (double)r->steps;
    rc = 0;
done:
    json_decref(doc);
    return rc;
}

static double steps_per_s(const struct run *r) { return r->train_s > 0 ? (double)r->steps / r->train_s : 0; }

static void print_row(const struct run *r, const struct run *base)
{
    double sps = steps_per_s(r), bsps = base ? steps_per_s(base) : 0;
    char ratio[64] = "1 (baseline)";
    int weak = r->series == S_WEAK_L || r->series == S_WEAK_R;
    if (r->series != S_BASE && r->series != S_WEAK_BASE && bsps > 0 && sps > 0) {
        if (weak) snprintf(ratio, sizeof ratio, "time x%.2f", bsps / sps);
        else snprintf(ratio, sizeof ratio, "%.2fx / %.0f%%", sps / bsps, 100 * sps / bsps / (double)r->np);
    }
    const double *L = r->learner, *R = r->rollout;
    char ro[96];
    if (r->rollout_ranks) snprintf(ro, sizeof ro, "%.3f / %.3f / %.3f | %.0f%%", R[P_ROLLOUT], R[P_WAIT_WEIGHTS],
                                   R[P_WAIT_CREDIT], 100 * r->rollout_idle);
    else snprintf(ro, sizeof ro, "%.3f (in-rank) | -", L[P_ROLLOUT]);
    const double mib = 1024.0 * 1024.0;
    printf("| %s | %lld+%lld | %lld | %.2f | %.1f | %s | %.3f / %.3f / %.3f / %.3f | %.0f%% | %s | %.3f | %.3f | %.4f | %.3f |\n",
           series_names[r->series], (long long)r->learners, (long long)r->rollout_ranks,
           (long long)r->samples_per_step, sps, sps * (double)r->samples_per_step, ratio, L[P_LOGPROB], L[P_UPDATE],
           L[P_SYNC], L[P_WAIT_DATA], 100 * r->learner_idle, ro, r->model_bytes / mib, r->meas_bytes / mib, r->meas_s,
           r->meas_s > 0 ? r->meas_bytes / r->meas_s / 1e9 : 0);
}

static const struct run *series_base(const struct run *runs, int n, enum series s)
{
    enum series want = s == S_WEAK_L || s == S_WEAK_R || s == S_WEAK_BASE ? S_WEAK_BASE : S_BASE;
    for (int i = 0; i < n; i++)
        if (runs[i].series == want) return &runs[i];
    return NULL;
}

/* Steps/s against ranks: strong series beside baseline x ranks, weak series beside the flat baseline. */
static int draw(const struct run *runs, int n, const char *png, struct mmupt_err *err)
{
    static const uint8_t col[4][3] = {{31, 119, 180}, {214, 39, 40}, {44, 160, 44}, {148, 103, 189}};
    double x[S_COUNT][MAX_RUNS + 1], y[S_COUNT][MAX_RUNS + 1], ix[2][MAX_RUNS + 1], iy[2][MAX_RUNS + 1];
    int cnt[S_COUNT] = {0}, icnt[2] = {0};
    double xmax = 1, ymax[2] = {0, 0};
    for (int s = S_STRONG_L; s < S_COUNT; s++) {
        const struct run *b = series_base(runs, n, (enum series)s);
        if (b) x[s][0] = 1, y[s][0] = steps_per_s(b), cnt[s] = 1;
        for (int i = 0; i < n; i++)
            if (runs[i].series == (enum series)s) {
                x[s][cnt[s]] = (double)runs[i].np, y[s][cnt[s]++] = steps_per_s(&runs[i]);
                if ((double)runs[i].np > xmax) xmax = (double)runs[i].np;
            }
    }
    for (int k = 0; k < 2; k++) {
        const struct run *b = series_base(runs, n, k ? S_WEAK_L : S_STRONG_L);
        for (int p = 1; b && p <= (int)xmax && p <= MAX_RUNS; p++)
            ix[k][icnt[k]] = p, iy[k][icnt[k]++] = steps_per_s(b) * (k ? 1.0 : (double)p);
    }
    for (int s = S_STRONG_L; s < S_COUNT; s++)
        for (int i = 0; i < cnt[s]; i++) {
            double *m = &ymax[s == S_WEAK_L || s == S_WEAK_R];
            if (y[s][i] > *m) *m = y[s][i];
        }
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < icnt[k]; i++)
            if (iy[k][i] > ymax[k]) ymax[k] = iy[k][i];
    const uint8_t grey[3] = {120, 120, 120};
    struct plot_series strong[3] = {{"learners (R=1)", x[S_STRONG_L], y[S_STRONG_L], cnt[S_STRONG_L], {0}},
                                    {"rollout (L=1)", x[S_STRONG_R], y[S_STRONG_R], cnt[S_STRONG_R], {0}},
                                    {"ideal", ix[0], iy[0], icnt[0], {grey[0], grey[1], grey[2]}}};
    struct plot_series weak[3] = {{"learners (R=1)", x[S_WEAK_L], y[S_WEAK_L], cnt[S_WEAK_L], {0}},
                                  {"rollout (L=1)", x[S_WEAK_R], y[S_WEAK_R], cnt[S_WEAK_R], {0}},
                                  {"ideal", ix[1], iy[1], icnt[1], {grey[0], grey[1], grey[2]}}};
    for (int j = 0; j < 2; j++) memcpy(strong[j].rgb, col[j], 3), memcpy(weak[j].rgb, col[j + 2], 3);
    /* From 0, so a flat line reads as flat and not as the bottom edge. */
    struct plot_panel panels[2] = {{"strong scaling: steps/s vs ranks (fixed batch)", strong, 3, 0, ymax[0] * 1.1},
                                   {"weak scaling: steps/s vs ranks (batch x ranks)", weak, 3, 0, ymax[1] * 1.1}};
    struct img_rgb im = {0};
    uint8_t *bytes = NULL;
    size_t len = 0;
    int rc = plot_render(panels, 2, 2, 520, 340, &im, err);
    if (rc == 0) rc = img_png_encode(&im, &bytes, &len, err);
    if (rc == 0) rc = file_write_atomic(png, bytes, len, err);
    img_free(&im);
    free(bytes);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 3) die("usage: scaling_table PNG SERIES=RUN_DIR... (SERIES: base, weak-base, strong-learners, "
                      "weak-learners, strong-rollout, weak-rollout)");
    static struct run runs[MAX_RUNS];
    int n = 0;
    struct mmupt_err err;
    for (int a = 2; a < argc; a++) {
        const char *eq = strchr(argv[a], '=');
        if (n == MAX_RUNS) die("too many runs (at most 64)");
        struct run *r = &runs[n];
        memset(r, 0, sizeof *r);
        r->series = S_COUNT;
        for (int s = 0; eq && s < S_COUNT; s++)
            if (strlen(series_names[s]) == (size_t)(eq - argv[a]) && !strncmp(argv[a], series_names[s], (size_t)(eq - argv[a])))
                r->series = (enum series)s;
        if (r->series == S_COUNT) {
            fprintf(stderr, "scaling_table: '%s' is not SERIES=RUN_DIR with a known series\n", argv[a]);
            return 1;
        }
        if (snprintf(r->path, sizeof r->path, "%s/timing.json", eq + 1) >= (int)sizeof r->path) die("a path is too long");
        if (run_read(r, &err)) die(err.msg);
        n++;
    }
    printf("| series | L+R | samples/step | steps/s | samples/s | speedup / efficiency (strong), time ratio (weak) | "
           "learner s/step: logprob / update / sync / wait data | learner idle | rollout rank s/step: rollout / "
           "wait weights / wait space | rollout idle | comm model MiB/step | measured MiB/step | measured s/step | "
           "effective GB/s |\n");
    printf("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for (int i = 0; i < n; i++) print_row(&runs[i], series_base(runs, n, runs[i].series));
    /* The model is exact for the payload: any difference is a term it misses (or the code added). */
    int off = 0;
    for (int i = 0; i < n; i++)
        if (runs[i].meas_run_bytes != runs[i].model_run_bytes) {
            printf("\ncomm check: %s: rank 0 measured %.0f payload bytes, the model says %.0f\n", runs[i].path,
                   runs[i].meas_run_bytes, runs[i].model_run_bytes);
            off++;
        }
    if (!off) printf("\ncomm check: in all %d runs rank 0's measured payload bytes equal the model's exactly\n", n);
    if (draw(runs, n, argv[1], &err)) die(err.msg);
    printf("\nplot: %s\n", argv[1]);
    return 0;
}
