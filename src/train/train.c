/* The MM-UPT training loop.
 *
 * Colocated (cluster.rollout_ranks = 0): every rank rolls out its share of each step's questions,
 * rewards them by majority vote, and all ranks learn together with data-parallel GRPO (gradients
 * reduce-scattered, AdamW on ZeRO-1 shards, weights all-gathered).
 * Split (R > 0): ranks 0 .. L-1 are learners, the last R ranks roll out; trajectories reach the
 * learner owning their question group through the ring (split.c), and new weights reach the rollout
 * ranks by broadcast on the policy-version schedule of sync.c. A learner's step is the colocated
 * step with "roll out" replaced by "receive", so with the same data order the learners compute the
 * same thing either way. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mmupt/tensorboard.h"
#include "mmupt/train.h"
#include "train_internal.h"

const char *const train_phase_names[PH_COUNT] = {"load", "rollout", "reward", "logprob", "update", "sync",
                                                 "validate", "wait_data", "wait_credit", "wait_weights"};

/* Sum the step's reward statistics and token count over the learners, so rank 0 reports them all. */
static void reduce_stats(struct trainer *tr, struct step_data *d)
{
    struct reward_stats *s = &d->stats;
    double v[12] = {(double)s->groups, (double)s->samples, (double)s->no_answer, (double)s->uniform_groups,
                    s->majority_share, s->reward_sum, s->length_sum, (double)s->truth_groups,
                    (double)s->label_correct, (double)s->truth_samples, (double)s->reward_agree, (double)d->tokens};
    if (comm_allreduce_sum_f64(&tr->learn, v, 12)) return; /* then rank 0 logs its own share */
    *s = (struct reward_stats){.groups = (int64_t)v[0], .samples = (int64_t)v[1], .no_answer = (int64_t)v[2],
                               .uniform_groups = (int64_t)v[3], .majority_share = v[4], .reward_sum = v[5],
                               .length_sum = v[6], .truth_groups = (int64_t)v[7], .label_correct = (int64_t)v[8],
                               .truth_samples = (int64_t)v[9], .reward_agree = (int64_t)v[10]};
    d->tokens = (int64_t)v[11];
}

static void log_step(struct trainer *tr, const struct step_data *d, const struct train_losses *l, double lr, double norm,
                     int skipped, double seconds, double t_start, const struct train_val *val)
{
    double reward_mean = d->stats.samples ? d->stats.reward_sum / (double)d->stats.samples : 0;
    double majority = d->stats.groups ? d->stats.majority_share / (double)d->stats.groups : 0;
    double elapsed = mmupt_now() - t_start,
           eta = elapsed / (double)(tr->step + 1 - tr->start_step) * (double)(tr->total_steps - tr->step - 1);
    int64_t n = tr->step + 1;
    if (n % tr->cfg->logging.log_interval == 0 || n == tr->total_steps || skipped) /* logging.log_interval */
        log_info(&tr->lg, "step %lld/%lld  loss %.4f  kl %.4f  reward %.3f  majority %.3f  tokens/s %.0f  eta %.0fs%s",
                 (long long)n, (long long)tr->total_steps, l->loss, l->kl, reward_mean, majority,
                 (double)d->tokens / seconds, eta, skipped ? "  (update skipped: non-finite gradient)" : "");
    if (val->done)
        log_info(&tr->lg, "validation after step %lld: greedy pass@1 %.3f  pass@1 %.3f  maj@%lld %.3f",
                 (long long)tr->step + 1, val->greedy, val->pass1, (long long)tr->cfg->rollout.n, val->maj);
    if (tr->world.rank != 0) return;
    struct mmupt_err err;
    metrics_begin(&tr->metrics);
    metrics_i64(&tr->metrics, "step", tr->step + 1);
    metrics_f64(&tr->metrics, "loss", l->loss);
    metrics_f64(&tr->metrics, "pg_loss", l->pg_loss);
    metrics_f64(&tr->metrics, "kl", l->kl);
    metrics_f64(&tr->metrics, "entropy", l->entropy);
    metrics_f64(&tr->metrics, "clip_frac", l->clip_frac);
    metrics_f64(&tr->metrics, "grad_norm", norm);
    metrics_f64(&tr->metrics, "lr", lr);
    metrics_i64(&tr->metrics, "update_skipped", skipped);
    metrics_i64(&tr->metrics, "optim_steps", tr->optim_steps_done);
    metrics_i64(&tr->metrics, "policy_version", tr->version);
    metrics_i64(&tr->metrics, "staleness", tr->step - train_rollout_version(tr, tr->step));
    reward_stats_write(&d->stats, &tr->metrics);
    metrics_f64(&tr->metrics, "tokens_per_s", (double)d->tokens / seconds);
    if (val->done) train_val_metrics(tr, val);
    metrics_f64(&tr->metrics, "time/step_s", seconds);
    if (metrics_end(&tr->metrics, &err)) log_warn(&tr->lg, "%s", err.msg);
    if (tr->tb) {
        const char *names[] = {"loss", "kl", "entropy", "grad_norm", "lr", "reward/mean", "reward/majority_ratio",
                               "tokens_per_s", "staleness"};
        double vals[] = {l->loss, l->kl, l->entropy, norm, lr, reward_mean, majority, (double)d->tokens / seconds,
                         (double)(tr->step - train_rollout_version(tr, tr->step))};
        for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) tb_scalar(tr->tb, names[i], tr->step + 1, vals[i], &err);
        if (val->done) train_val_tb(tr, tr->step + 1, val);
        if (tb_flush(tr->tb, &err)) log_warn(&tr->lg, "%s", err.msg);
    }
}

/* One step on a learner or a colocated rank. */
static int learner_step(struct trainer *tr, double t_start, struct mmupt_err *err)
{
    double t0 = mmupt_now();
    struct step_data d;
    int rc = train_collect_questions(tr, &d, err);
    if (rc == 0)
        rc = tr->role == TRAIN_COLOCATED ? train_rollout(tr, &d, tr->version, err) : train_receive_step(tr, &d, err);
    struct train_losses l = {0};
    double norm = 0, lr = 0;
    int skipped = 0;
    if (rc == 0) {
        train_rewards(tr, &d);
        rc = train_update(tr, &d, &l, &lr, &norm, &skipped, err);
    }
    if (rc == 0) {
        tr->version = tr->step + 1;
        rc = train_after_update(tr, tr->step + 1, err);
    }
    struct train_val val = {0};
    if (rc == 0 && tr->world.rank == 0 && train_val_due(tr)) {
        rc = train_validate(tr, &val, err);
        if (rc == 0) rc = train_val_record(tr, tr->step + 1, &val, err);
    }
    if (rc == 0) {
        reduce_stats(tr, &d);
        log_step(tr, &d, &l, lr, norm, skipped, mmupt_now() - t0, t_start, &val);
    }
    train_step_free(&d);
    return rc;
}

/* Do the learners stop here? SIGUSR1/SIGTERM on any learner stops them all after this step. A
 * maximum, which comm.h does not offer, so plain MPI; counted as the all-reduce it is. */
static int learners_stop(struct trainer *tr)
{
    int mine = train_stop_signal() != 0, any = 0;
    double t0 = mmupt_now();
    MPI_Allreduce(&mine, &any, 1, MPI_INT, MPI_MAX, tr->learn.mpi);
    comm_count(tr->learn.counters, COMM_ALLREDUCE, sizeof mine, mmupt_now() - t0);
    return any;
}

/* After preemption: everything still in the ring is discarded, so the rollout ranks can end. */
static int drain_ring(struct trainer *tr, struct mmupt_err *err)
{
    for (;;) {
        struct ring_traj t;
        int r = ring_pop(tr->ring, 0, &t, err);
        if (r == RING_END) return 0;
        if (r < 0) return -1;
        ring_traj_free(&t);
    }
}

uint64_t train_weights_checksum(struct trainer *tr)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    train_host_weights(tr);
    const unsigned char *b = (const unsigned char *)tr->model.params;
    size_t nb = train_weight_bytes(tr);
    for (size_t i = 0; i < nb; i++) h = (h ^ b[i]) * 1099511628211ull;
    return h;
}

static void log_checksum(struct trainer *tr)
{
    uint64_t h = train_weights_checksum(tr);
    tr->lg.only_rank0 = 0; /* every learner reports its checksum: replicas must agree */
    log_info(&tr->lg, "done: %lld steps, final weights checksum %016llx", (long long)tr->step,
             (unsigned long long)h);
}

/* 0 when all steps ran, 1 when stopped by a signal (after a checkpoint), -1 on error. */
static int learner_run(struct trainer *tr, struct mmupt_err *err)
{
    double t_start = mmupt_now();
    int64_t interval = tr->cfg->checkpoint.interval;
    int rc = train_after_update(tr, tr->start_step, err); /* a snapshot if lagging rollouts will use it */
    if (rc == 0 && tr->world.rank == 0 && tr->val_ds && tr->start_step == 0) rc = train_validate_initial(tr, err);
    int stopped = 0;
    for (tr->step = tr->start_step; tr->step < tr->total_steps && rc == 0 && !stopped; tr->step++) {
        rc = learner_step(tr, t_start, err);
        if (rc) break;
        stopped = learners_stop(tr) && tr->step + 1 < tr->total_steps;
        if (stopped || tr->step + 1 == tr->total_steps || (interval > 0 && (tr->step + 1) % interval == 0))
            rc = train_checkpoint(tr, err);
    }
    if (rc == 0 && stopped) {
        log_info(&tr->lg, "stopped by a signal after step %lld: checkpoint saved; the job exits with %d so a "
                          "requeued job resumes (checkpoint.resume: auto, or mmupt train --resume)",
                 (long long)tr->step, MMUPT_EXIT_PREEMPTED);
        train_sync_stop(tr);
        if (tr->role == TRAIN_LEARNER) rc = drain_ring(tr, err);
    } else if (rc == 0 && tr->role == TRAIN_LEARNER) {
        rc = train_ring_end(tr, err);
    }
    if (rc == 0) rc = train_sync_finish(tr, err);
    if (rc == 0 && !stopped) log_checksum(tr);
    train_buckets_report(tr);
    train_wbcast_report(tr);
    return rc ? -1 : stopped;
}

/* Every rank's time per phase, so a run shows where it waits (benchmarks/step.sh reads this line). */
static void log_phases(struct trainer *tr, double total)
{
    static const char *const role_names[] = {"colocated", "learner", "rollout"};
    char line[512];
    size_t n = (size_t)snprintf(line, sizeof line, "time: role %s", role_names[tr->role]);
    double idle = tr->phase[PH_WAIT_DATA] + tr->phase[PH_WAIT_CREDIT] + tr->phase[PH_WAIT_WEIGHTS];
    for (int p = 0; p < PH_COUNT && n < sizeof line; p++)
        n += (size_t)snprintf(line + n, sizeof line - n, "  %s %.3f", train_phase_names[p], tr->phase[p]);
    if (n < sizeof line)
        snprintf(line + n, sizeof line - n, "  total %.3f  idle %.1f%%", total, total > 0 ? 100 * idle / total : 0);
    log_info(&tr->lg, "%s", line);
}

int train_run(const struct cfg *c, struct mmupt_err *err)
{
    struct trainer tr;
    double t0 = mmupt_now();
    train_signals_install();
    int rc = train_open(&tr, c, err);
    if (rc == 0) rc = train_agree(&tr, train_resume(&tr, err) == 0, err);
    if (rc == 0) {
        train_comm_model_log(&tr);
        tr.setup_s = mmupt_now() - t0;
        int r = tr.role == TRAIN_ROLLOUT ? train_rollout_rank_run(&tr, err) : learner_run(&tr, err);
        rc = r < 0 ? TRAIN_FAILED : r > 0 ? TRAIN_PREEMPTED : 0;
    }
    if (rc >= 0) {
        double total = mmupt_now() - t0;
        tr.lg.only_rank0 = 0; /* every rank has its own times */
        log_phases(&tr, total);
        tr.lg.only_rank0 = 1;
        train_timing_write(&tr, total, rc == TRAIN_PREEMPTED);
    }
    train_close(&tr);
    return rc;
}
