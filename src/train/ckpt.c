/* The trainer's checkpoints: what a step boundary's state is, who writes which file, how a resumed
 * run picks it up, and the preemption signals.
 *
 * A checkpoint after step s holds: the weights (version s) by HF name; every learner's Adam moment
 * shard and Adam's step count; the learning-rate schedule's position; every learner's question
 * stream position (epoch, position); the behaviour snapshots lagging rollouts still need
 * (max_staleness >= 1); the resolved config; a pointer to the reference model (model.path) with the
 * checksum of its weights. The sampler needs no state: its RNG is keyed by (seed, step, question,
 * sample, token). Rollout ranks write nothing: on resume they rebuild their question streams from
 * the learners' positions and take the weights of the version they need from the checkpoint.
 *
 * Signals: SIGUSR1 (what Slurm's --signal=USR1@T sends, and what mpirun forwards to every rank) or
 * SIGTERM set a flag; the learners agree on it at the end of a step, write a checkpoint, tell the
 * rollout ranks to stop and the job exits with MMUPT_EXIT_PREEMPTED (75). The flag is the one
 * piece of global state in mmupt: a signal handler can reach nothing else. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mmupt/checkpoint.h"
#include "train_internal.h"

static volatile sig_atomic_t stop_signal_seen;

static void on_stop_signal(int sig) { stop_signal_seen = sig; }

void train_signals_install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sa.sa_flags = SA_RESTART; /* a write in progress (a checkpoint) continues instead of failing */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

int train_stop_signal(void) { return stop_signal_seen; }

static void ckpt_root(const struct cfg *c, char *out, size_t n) { train_run_path(c, c->checkpoint.dir, out, n); }

static char *config_yaml(const struct cfg *c)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f) return NULL;
    cfg_write_yaml(c, f, false);
    fclose(f);
    return text;
}

/* Learner 0's part: the model file, with every learner's stream position gathered in. */
static int write_model_file(struct trainer *tr, const char *partial, const int64_t *cursors, struct mmupt_err *err)
{
    struct ckpt_meta m;
    memset(&m, 0, sizeof m);
    m.step = tr->step + 1;
    m.policy_version = tr->version;
    m.optim_steps = tr->optim_steps_done;
    m.optim_t = tr->opt.t;
    m.n_params = tr->model.spec.total;
    m.n_learners = tr->n_learners;
    snprintf(m.arch, sizeof m.arch, "%s", model_arch_name(tr->model.cfg.arch));
    snprintf(m.model_path, sizeof m.model_path, "%s", tr->cfg->model.path);
    m.ref_sum = tr->ref_sum;
    m.config_yaml = config_yaml(tr->cfg);
    m.n_cursors = tr->n_learners;
    m.cursors = (struct ckpt_cursor *)cursors;
    const float *snaps[CKPT_MAX_SNAPS];
    for (int i = 0; i < tr->n_snaps && m.n_snaps < CKPT_MAX_SNAPS; i++) {
        int dup = tr->snaps[i].version == tr->version;
        for (int j = 0; j < m.n_snaps; j++) dup |= m.snap_version[j] == tr->snaps[i].version;
        if (dup) continue;
        m.snap_version[m.n_snaps] = tr->snaps[i].version;
        snaps[m.n_snaps++] = tr->snaps[i].w;
    }
    train_host_weights(tr);
    int rc = m.config_yaml ? ckpt_write_model(partial, &tr->model.spec, tr->model.params, &m, snaps, err)
                           : mmupt_fail(err, "checkpoint: cannot render the config");
    free(m.config_yaml);
    return rc;
}

/* 1 if every learner has ok set. */
static int learners_agree(struct trainer *tr, int ok)
{
    int all = 0;
    MPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_MIN, tr->learn.mpi);
    return all;
}

int train_checkpoint(struct trainer *tr, struct mmupt_err *err)
{
    double t0 = mmupt_now();
    const struct cfg *c = tr->cfg;
    char dir[2 * CFG_STR_MAX + 8], partial[CKPT_PATH_MAX];
    ckpt_root(c, dir, sizeof dir);
    int64_t step = tr->step + 1;
    ckpt_step_dir(dir, step, 1, partial, sizeof partial);
    int lead = tr->learn.rank == 0;
    int ok = lead ? ckpt_begin(dir, step, err) == 0 : 1;
    MPI_Bcast(&ok, 1, MPI_INT, 0, tr->learn.mpi);
    if (!ok) return lead ? -1 : mmupt_fail(err, "checkpoint: learner 0 could not create %s", partial);
    train_device_pull_optim(tr);
    ok = ckpt_write_optim(partial, tr->learn.rank, tr->learn.size, tr->opt.lo, tr->opt.hi, tr->opt.n, tr->opt.m,
                          tr->opt.v, tr->opt.t, err) == 0;
    const struct prompt_loader *L = &tr->streams[tr->learner];
    int64_t mine[4] = {L->cursor.epoch, L->cursor.position, L->served, L->skipped};
    int64_t *all = lead ? mmupt_xcalloc((size_t)tr->learn.size * 4, sizeof *all) : NULL;
    MPI_Gather(mine, 4, MPI_INT64_T, all, 4, MPI_INT64_T, 0, tr->learn.mpi);
    if (lead && ok) ok = write_model_file(tr, partial, all, err) == 0;
    free(all);
    int everyone = learners_agree(tr, ok);
    if (everyone && lead) everyone = ckpt_commit(dir, step, (int)c->checkpoint.keep_last, err) == 0;
    MPI_Bcast(&everyone, 1, MPI_INT, 0, tr->learn.mpi);
    if (!everyone) {
        if (lead) ckpt_abandon(dir, step);
        if (ok && !(lead && err->msg[0])) mmupt_fail(err, "checkpoint of step %lld: another learner failed to write "
                                                          "its part", (long long)step);
        mmupt_err_prefix(err, "checkpoint of step %lld (the previous checkpoint is untouched)", (long long)step);
        return -1;
    }
    log_info(&tr->lg, "checkpoint: step %lld saved in %s/step-%08lld (%.2f s)", (long long)step, dir, (long long)step,
             mmupt_now() - t0);
    return 0;
}

/* ---- resume ---- */

/* Which checkpoint: resume_path, or the latest. "" when there is none to resume from. */
static int pick_checkpoint(struct trainer *tr, char *path, size_t n, struct mmupt_err *err)
{
    const struct cfg *c = tr->cfg;
    char dir[2 * CFG_STR_MAX + 8];
    ckpt_root(c, dir, sizeof dir);
    path[0] = '\0';
    if (c->checkpoint.resume_path[0]) {
        int len = c->checkpoint.resume_path[0] == '/' ? snprintf(path, n, "%.*s", (int)n - 1, c->checkpoint.resume_path)
                                                      : snprintf(path, n, "%.2000s/%.2000s", dir, c->checkpoint.resume_path);
        if (len < 0 || (size_t)len >= n) return mmupt_fail(err, "checkpoint.resume_path: path too long");
        return 0;
    }
    int found = ckpt_find_latest(dir, path, n, err);
    if (found < 0) {
        mmupt_err_prefix(err, "cannot resume");
        return -1;
    }
    if (!found) path[0] = '\0';
    return 0;
}

static int check_meta(struct trainer *tr, const char *path, const struct ckpt_meta *m, struct mmupt_err *err)
{
    if (m->n_params != tr->model.spec.total || strcmp(m->arch, model_arch_name(tr->model.cfg.arch)))
        return mmupt_fail(err, "%s: a checkpoint of a %s with %lld parameters; model.path is a %s with %lld", path,
                          m->arch, (long long)m->n_params, model_arch_name(tr->model.cfg.arch),
                          (long long)tr->model.spec.total);
    if (m->ref_sum != tr->ref_sum)
        return mmupt_fail(err, "%s: the reference model (the initial weights in %s) differs from the one this run "
                               "started from", path, tr->cfg->model.path);
    if (m->step > tr->total_steps)
        return mmupt_fail(err, "%s: step %lld is past this run's %lld steps", path, (long long)m->step,
                          (long long)tr->total_steps);
    return 0;
}

/* Question streams where the learners left them. With another learner count the streams are other
 * streams: continue at the same epoch and the same share of it (not exact, said so). */
static void restore_streams(struct trainer *tr, const struct ckpt_meta *m)
{
    int L = tr->n_learners;
    if (m->n_cursors == L) {
        for (int l = 0; l < L; l++) {
            tr->streams[l].cursor.epoch = m->cursors[l].epoch;
            tr->streams[l].cursor.position = m->cursors[l].position;
            tr->streams[l].served = m->cursors[l].served;
            tr->streams[l].skipped = m->cursors[l].skipped;
        }
        return;
    }
    int64_t consumed = 0;
    for (int l = 0; l < m->n_cursors; l++) consumed += m->cursors[l].position;
    for (int l = 0; l < L; l++) {
        tr->streams[l].cursor.epoch = m->n_cursors ? m->cursors[0].epoch : 0;
        tr->streams[l].cursor.position = consumed / L;
    }
    log_warn(&tr->lg, "resume: the checkpoint had %d learners, this run has %d: the data order continues from the "
                      "same point of epoch %lld but is not the one the original run would have used",
             m->n_cursors, L, (long long)(m->n_cursors ? m->cursors[0].epoch : 0));
}

static int load_learner(struct trainer *tr, const char *path, const struct ckpt_meta *m, struct mmupt_err *err)
{
    if (ckpt_read_weights(path, &tr->model.spec, tr->model.params, err) ||
        ckpt_read_optim(path, m->n_learners, tr->opt.lo, tr->opt.hi, tr->opt.n, tr->opt.m, tr->opt.v, &tr->opt.t, err))
        return -1;
    for (int i = 0; i < m->n_snaps; i++) {
        struct weight_snap *s = train_snap_add(tr, m->snap_version[i], err);
        if (!s || ckpt_read_snapshot(path, m->snap_version[i], m->n_params, s->w, err)) return -1;
    }
    return 0;
}

/* Keep only the metric records of the steps the checkpoint covers (the rest will be redone). */
static void trim_metrics(struct trainer *tr, int64_t step)
{
    if (tr->world.rank != 0 || !tr->metrics.f) return;
    char path[2 * CFG_STR_MAX + 8];
    train_run_path(tr->cfg, tr->cfg->logging.metrics_file, path, sizeof path);
    metrics_close(&tr->metrics);
    FILE *in = fopen(path, "r");
    char tmp[CFG_STR_MAX * 2 + 16];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *out = in ? fopen(tmp, "w") : NULL;
    char *line = NULL;
    size_t cap = 0;
    while (out && getline(&line, &cap, in) > 0) {
        long long s = -1;
        if (sscanf(line, "{\"step\": %lld", &s) == 1 && s > step) continue;
        fputs(line, out);
    }
    free(line);
    if (in) fclose(in);
    if (out && fclose(out) == 0) rename(tmp, path);
    struct mmupt_err err;
    if (metrics_open(&tr->metrics, path, &err)) log_warn(&tr->lg, "%s", err.msg);
}

int train_resume(struct trainer *tr, struct mmupt_err *err)
{
    const struct cfg *c = tr->cfg;
    if (c->checkpoint.resume == 0 && !c->checkpoint.resume_path[0]) return 0;
    /* Rank 0 decides which checkpoint, so every rank loads the same one. */
    struct { int rc; char path[CKPT_PATH_MAX]; } pick = {0};
    if (tr->world.rank == 0) pick.rc = pick_checkpoint(tr, pick.path, sizeof pick.path, err);
    MPI_Bcast(&pick, (int)sizeof pick, MPI_BYTE, 0, tr->world.mpi);
    if (pick.rc) return tr->world.rank == 0 ? -1 : mmupt_fail(err, "rank 0 found no usable checkpoint");
    if (!pick.path[0]) {
        /* A run killed before its first checkpoint may have logged steps: they are redone now. */
        trim_metrics(tr, -1);
        log_info(&tr->lg, "resume: no checkpoint yet, starting from step 1");
        return 0;
    }
    struct ckpt_meta m;
    int rc = ckpt_read_meta(pick.path, &m, err);
    if (rc == 0) rc = check_meta(tr, pick.path, &m, err);
    int64_t s = rc == 0 ? m.step : 0, v = train_rollout_version(tr, s);
    if (rc == 0 && tr->role != TRAIN_ROLLOUT) rc = load_learner(tr, pick.path, &m, err);
    if (rc == 0 && tr->role == TRAIN_ROLLOUT)
        rc = v == m.policy_version ? ckpt_read_weights(pick.path, &tr->model.spec, tr->model.params, err)
                                   : ckpt_read_snapshot(pick.path, v, m.n_params, tr->model.params, err);
    if (rc == 0) {
        train_weights_changed(tr); /* the device copy, if any, is of the weights before the restore */
        restore_streams(tr, &m);
        tr->start_step = s;
        tr->optim_steps_done = m.optim_steps;
        tr->version = tr->role == TRAIN_ROLLOUT ? v : m.policy_version;
        trim_metrics(tr, s);
        if (tr->world.rank == 0) train_val_restore(tr, s);
        rc = train_sync_resume(tr, v, err);
    } else if (!c->checkpoint.resume_path[0]) {
        mmupt_err_prefix(err, "cannot resume (to continue from an older complete checkpoint instead, set "
                              "checkpoint.resume_path=step-NNNNNNNN, one of the step-* directories next to it)");
    }
    if (rc == 0 && c->checkpoint.resume_path[0] == '\0')
        log_info(&tr->lg, "resume: continuing from %s (step %lld of %lld)", pick.path, (long long)s + 1,
                 (long long)tr->total_steps);
    else if (rc == 0)
        log_info(&tr->lg, "resume: continuing from %s as asked (checkpoint.resume_path), step %lld of %lld", pick.path,
                 (long long)s + 1, (long long)tr->total_steps);
    if (rc == 0 && m.n_learners != tr->n_learners)
        log_info(&tr->lg, "resume: optimizer state resharded from %d to %d learners", m.n_learners, tr->n_learners);
    ckpt_meta_free(&m);
    return rc;
}
