/* Split mode: the rollout ranks' loop, and the learners' side of the trajectory ring.
 *
 * A trajectory's group is its global question index in the run, step * Q + i (Q = L * q questions
 * per step), so a learner knows from the message alone which step and which of its questions it
 * belongs to; its question field is the dataset item, checked against the learner's own stream. */
#include <stdlib.h>
#include <string.h>

#include "train_internal.h"

static int64_t step_questions(const struct trainer *tr) { return (int64_t)tr->n_learners * tr->q_per_learner; }

/* Send every sample of the step, in question then sample order, each to the learner owning it. */
static int push_step(struct trainer *tr, const struct step_data *d, int64_t lo, int64_t version, struct mmupt_err *err)
{
    double t0 = mmupt_now();
    int rc = 0;
    for (int i = 0; i < d->n_q && rc == 0; i++)
        for (int g = 0; g < d->G && rc == 0; g++) {
            const struct train_sample *s = &d->samples[i * d->G + g];
            struct ring_traj t = {.question = d->q[i].item.index, .group = tr->step * step_questions(tr) + lo + i,
                                  .sample = g, .policy_version = version, .n = s->n, .tokens = s->ids, .logp = s->logp};
            rc = ring_push_to(tr->ring, (int)((lo + i) / tr->q_per_learner), &t, err);
        }
    tr->phase[PH_WAIT_CREDIT] += mmupt_now() - t0;
    return rc;
}

int train_rollout_rank_run(struct trainer *tr, struct mmupt_err *err)
{
    int64_t lo, hi;
    train_rollout_range(tr, &lo, &hi);
    int rc = 0, stopped = 0;
    int64_t pushed = 0;
    for (tr->step = tr->start_step; tr->step < tr->total_steps && rc == 0; tr->step++) {
        int64_t v = train_rollout_version(tr, tr->step);
        struct step_data d;
        rc = train_collect_range(tr, lo, hi, &d, err);
        if (rc == 0) rc = train_receive_version(tr, v, err);
        if (rc == 1) { /* the learners stopped (preemption): end the ring so they can exit */
            stopped = 1;
            rc = 0;
            train_step_free(&d);
            break;
        }
        if (rc == 0) rc = train_rollout(tr, &d, v, err);
        if (rc == 0) rc = push_step(tr, &d, lo, v, err);
        pushed += (int64_t)d.n_q * d.G;
        train_step_free(&d);
    }
    if (rc == 0) rc = train_wbcast_finish(tr, err);
    if (rc == 0) {
        double t0 = mmupt_now();
        rc = ring_finish(tr->ring, err);
        tr->phase[PH_WAIT_CREDIT] += mmupt_now() - t0;
    }
    tr->lg.only_rank0 = 0;
    if (rc == 0)
        log_info(&tr->lg, "rollout rank %s: %lld trajectories for questions [%lld, %lld) of each step, last policy "
                          "version %lld (weights checksum %016llx)", stopped ? "stopped" : "done", (long long)pushed,
                 (long long)lo, (long long)hi, (long long)tr->version,
                 (unsigned long long)train_weights_checksum(tr));
    return rc ? -1 : stopped;
}

/* Place t into d if it belongs to this step: 1 placed, 0 belongs to a later step, -1 error. */
static int place(struct trainer *tr, struct step_data *d, struct ring_traj *t, struct mmupt_err *err)
{
    int64_t Q = step_questions(tr), step = t->group / Q, i = t->group % Q - (int64_t)tr->learner * tr->q_per_learner;
    if (t->group < 0 || step < tr->step || step >= tr->total_steps || i < 0 || i >= tr->q_per_learner || t->sample < 0 ||
        t->sample >= d->G)
        return mmupt_fail(err, "learner %d: trajectory for group %lld sample %d does not belong here (step %lld)",
                          tr->learner, (long long)t->group, (int)t->sample, (long long)tr->step);
    if (step > tr->step) return 0;
    struct train_sample *s = &d->samples[i * d->G + t->sample];
    if (s->ids)
        return mmupt_fail(err, "learner %d: group %lld sample %d arrived twice", tr->learner, (long long)t->group,
                          (int)t->sample);
    if (t->question != d->q[i].item.index)
        return mmupt_fail(err, "learner %d: group %lld is item %lld, but this learner's stream has item %lld there",
                          tr->learner, (long long)t->group, (long long)t->question, (long long)d->q[i].item.index);
    *s = (struct train_sample){.ids = t->tokens, .logp = t->logp, .n = t->n};
    t->tokens = NULL;
    t->logp = NULL;
    return 1;
}

static void keep_pending(struct trainer *tr, struct ring_traj *t)
{
    if (tr->n_pending == tr->cap_pending) {
        tr->cap_pending = tr->cap_pending ? 2 * tr->cap_pending : 64;
        struct ring_traj *p = mmupt_xmalloc((size_t)tr->cap_pending * sizeof *p);
        if (tr->n_pending) memcpy(p, tr->pending, (size_t)tr->n_pending * sizeof *p);
        free(tr->pending);
        tr->pending = p;
    }
    tr->pending[tr->n_pending++] = *t;
}

/* Trajectories that arrived during an earlier step and belong to this one. */
static int take_pending(struct trainer *tr, struct step_data *d, int *have, struct mmupt_err *err)
{
    int k = 0, rc = 0;
    for (int j = 0; j < tr->n_pending; j++) {
        int r = rc ? 0 : place(tr, d, &tr->pending[j], err);
        if (r < 0) rc = -1;
        if (r == 1) { (*have)++; ring_traj_free(&tr->pending[j]); }
        else tr->pending[k++] = tr->pending[j];
    }
    tr->n_pending = k;
    return rc;
}

int train_receive_step(struct trainer *tr, struct step_data *d, struct mmupt_err *err)
{
    int want = d->n_q * d->G, have = 0;
    if (take_pending(tr, d, &have, err)) return -1;
    double t0 = mmupt_now();
    int rc = 0;
    while (have < want && rc == 0) {
        struct ring_traj t;
        int r = ring_pop(tr->ring, tr->step, &t, err);
        if (r == RING_END) {
            rc = mmupt_fail(err, "learner %d: the rollout ranks ended with %d of step %lld's %d samples missing",
                            tr->learner, want - have, (long long)tr->step + 1, want);
            break;
        }
        if (r < 0) { rc = -1; break; }
        if (r == RING_STALE) {
            /* The schedule (sync.c) makes this impossible; if it happens, stop rather than train on it. */
            tr->regenerated++;
            rc = mmupt_fail(err, "learner %d: a trajectory of policy version %lld reached step %lld, beyond "
                                 "cluster.max_staleness=%lld", tr->learner, (long long)t.policy_version,
                            (long long)tr->step, (long long)tr->cfg->cluster.max_staleness);
            ring_traj_free(&t);
            break;
        }
        int p = place(tr, d, &t, err);
        if (p == 1) have++;
        if (p == 0) { keep_pending(tr, &t); continue; }
        ring_traj_free(&t);
        if (p < 0) rc = -1;
    }
    tr->phase[PH_WAIT_DATA] += mmupt_now() - t0;
    return rc;
}

int train_ring_end(struct trainer *tr, struct mmupt_err *err)
{
    struct ring_traj t;
    int r = ring_pop(tr->ring, tr->step, &t, err);
    if (r < 0) return -1;
    if (r != RING_END) {
        ring_traj_free(&t);
        return mmupt_fail(err, "learner %d: a trajectory arrived after the last step", tr->learner);
    }
    return 0;
}
