/* The policy-version schedule, and moving weights from the learners to the rollout ranks.
 *
 * Version u is the weights after u learner steps. In split mode the rollout of step s uses version
 *     v(s) = the smallest multiple of sync_interval that is >= max(0, s - max_staleness),
 * fixed in advance: with max_staleness 0 and sync_interval 1 that is v(s) = s (strictly on-policy:
 * the rollout waits for the newest weights); with 1 it is s - 1, so the rollout of step s + 1 runs
 * while the learners train on step s. Because the schedule never depends on timing, a run is
 * reproducible whatever the speed of its ranks, and no trajectory can exceed the staleness bound
 * (the learners still check it: ring_pop counts a violation, and the trainer stops on it).
 * sync_interval S needs max_staleness >= S - 1, or some step would have no allowed version.
 *
 * Learner 0 broadcasts each version some rollout will use (MPI_Ibcast on the sync communicator,
 * learner 0 + rollout ranks) from a snapshot, so it can go on training while the rollout ranks
 * pick the weights up when they need them. Each version travels as an int64 header (the version)
 * and the weights; a header of -1 instead tells the rollout ranks to stop (preemption). It is sent
 * only while a version is still due, i.e. exactly when the rollout ranks will post a receive. Learners also keep snapshots of the versions that
 * lagging trajectories were sampled from, to compute their behaviour log-probs exactly (so the
 * importance ratio corrects for the lag): max_staleness k costs about k / sync_interval extra
 * copies of the fp32 weights on every learner, plus one on learner 0 for the broadcast.
 *
 * cluster.weight_broadcast=device replaces the host way for versions whose rollout ranks are already
 * waiting when learner 0 can send them (wbcast.c); the others still go as described here.
 *
 * Traffic counting (tr->sync_counters, read by timing.json): one broadcast call per version (or stop
 * message), its payload the int64 header plus the weights, on learner 0 when posted and on a rollout
 * rank when received. Seconds are those spent inside the MPI calls that post, test and wait on those
 * requests, except a rollout rank's wait for the header: that is waiting for the learners to finish
 * the step (the wait_weights phase), not moving bytes. */
#include <stdlib.h>
#include <string.h>

#include "train_internal.h"

/* MPI counts are ints: weights move in pieces of at most this many floats. */
#define SYNC_PIECE ((size_t)1 << 30)

int64_t train_rollout_version(const struct trainer *tr, int64_t step)
{
    if (tr->role == TRAIN_COLOCATED) return step;
    int64_t k = tr->cfg->cluster.max_staleness, S = tr->cfg->cluster.sync_interval;
    int64_t lo = step - k > 0 ? step - k : 0;
    return (lo + S - 1) / S * S;
}

/* Is version u one that some rollout uses (so the rollout ranks must receive it)? */
static int is_broadcast(const struct trainer *tr, int64_t u)
{
    return tr->role != TRAIN_COLOCATED && u > 0 && u % tr->cfg->cluster.sync_interval == 0 &&
           u <= train_rollout_version(tr, tr->total_steps - 1);
}

/* Is version u the behaviour policy of a step that trains after the weights moved past u? */
static int is_behaviour(const struct trainer *tr, int64_t u)
{
    if (tr->role == TRAIN_COLOCATED) return 0;
    int64_t k = tr->cfg->cluster.max_staleness, S = tr->cfg->cluster.sync_interval;
    for (int64_t s = u + 1; s < tr->total_steps && s <= u + k + S; s++)
        if (train_rollout_version(tr, s) == u) return 1;
    return 0;
}

/* Seconds spent in broadcast MPI calls that carry no new payload (tests, waits). */
static void sync_seconds(struct trainer *tr, double t0)
{
    tr->sync_counters.op[COMM_BROADCAST].seconds += mmupt_now() - t0;
}

size_t train_weight_bytes(const struct trainer *tr) { return (size_t)tr->model.spec.total * sizeof(float); }

uint64_t train_version_bytes(const struct trainer *tr) { return sizeof(int64_t) + (uint64_t)train_weight_bytes(tr); }

/* The index of version u's snapshot, or -1. */
static int snap_index(const struct trainer *tr, int64_t u)
{
    for (int i = 0; i < tr->n_snaps; i++)
        if (tr->snaps[i].version == u) return i;
    return -1;
}

static size_t n_pieces(const struct trainer *tr)
{
    return ((size_t)tr->model.spec.total + SYNC_PIECE - 1) / SYNC_PIECE;
}

/* Start (non-blocking) broadcasting w from sync rank 0, or receiving into it (one request per piece). */
static void ibcast(struct trainer *tr, float *w, MPI_Request *req)
{
    size_t n = (size_t)tr->model.spec.total;
    for (size_t p = 0; p * SYNC_PIECE < n; p++) {
        size_t len = n - p * SYNC_PIECE < SYNC_PIECE ? n - p * SYNC_PIECE : SYNC_PIECE;
        MPI_Ibcast(w + p * SYNC_PIECE, (int)len, MPI_FLOAT, 0, tr->sync.mpi, &req[p]);
    }
}

static int snap_done(struct trainer *tr, struct weight_snap *s)
{
    int done = 1;
    if (s->n_req) {
        double t0 = mmupt_now();
        MPI_Testall(s->n_req, s->req, &done, MPI_STATUSES_IGNORE);
        sync_seconds(tr, t0);
    }
    if (done) s->n_req = 0;
    return done;
}

/* Drop snapshots that neither next_step nor a later step needs and whose broadcast is complete. */
static void snaps_reap(struct trainer *tr, int64_t next_step)
{
    int64_t oldest = train_rollout_version(tr, next_step);
    int k = 0;
    for (int i = 0; i < tr->n_snaps; i++) {
        struct weight_snap *s = &tr->snaps[i];
        if (snap_done(tr, s) && s->version < oldest) {
            free(s->w);
            free(s->req);
        } else {
            tr->snaps[k++] = *s;
        }
    }
    tr->n_snaps = k;
}

/* Learner 0: header + weights of s->version, non-blocking. */
static void send_snap(struct trainer *tr, struct weight_snap *s)
{
    s->header = s->version;
    free(s->req); /* a snapshot re-sent after a resume had its earlier requests completed */
    s->n_req = (int)n_pieces(tr) + 1;
    s->req = mmupt_xcalloc((size_t)s->n_req, sizeof *s->req);
    double t0 = mmupt_now();
    MPI_Ibcast(&s->header, 1, MPI_INT64_T, 0, tr->sync.mpi, &s->req[0]);
    ibcast(tr, s->w, s->req + 1);
    comm_count(&tr->sync_counters, COMM_BROADCAST, train_version_bytes(tr), mmupt_now() - t0);
    tr->last_sent = s->version;
    tr->wbc.headers++;
}

static struct weight_snap *snap_new(struct trainer *tr, int64_t version, const float *w, struct mmupt_err *err)
{
    if (tr->n_snaps == TRAIN_MAX_SNAPS) {
        mmupt_fail(err, "more than %d weight snapshots in use: lower cluster.max_staleness", TRAIN_MAX_SNAPS);
        return NULL;
    }
    struct weight_snap *s = &tr->snaps[tr->n_snaps++];
    *s = (struct weight_snap){.version = version, .w = mmupt_xmalloc(train_weight_bytes(tr))};
    if (w) memcpy(s->w, w, train_weight_bytes(tr));
    return s;
}

struct weight_snap *train_snap_add(struct trainer *tr, int64_t version, struct mmupt_err *err)
{
    return snap_new(tr, version, NULL, err);
}

int train_after_update(struct trainer *tr, int64_t next_step, struct mmupt_err *err)
{
    double t0 = mmupt_now();
    int64_t u = tr->version;
    int send = is_broadcast(tr, u) && tr->world.rank == 0 && u > tr->last_sent;
    if (send && tr->wbc.on) { /* the device way when the rollout ranks ask in time (wbcast.c) */
        tr->wbc.pending = u;
        send = 0;
    }
    snaps_reap(tr, next_step);
    if (send || is_behaviour(tr, u)) {
        train_host_weights(tr);
        struct weight_snap *s = snap_new(tr, u, tr->model.params, err);
        if (!s) return -1;
        if (send) send_snap(tr, s);
    }
    tr->phase[PH_SYNC] += mmupt_now() - t0;
    train_wbcast_poll(tr);
    return 0;
}

int train_sync_send_host(struct trainer *tr, int64_t u, struct mmupt_err *err)
{
    int i = snap_index(tr, u);
    struct weight_snap *s = i >= 0 ? &tr->snaps[i] : NULL;
    if (!s) {
        train_host_weights(tr);
        s = snap_new(tr, u, tr->model.params, err);
        if (!s) return -1;
    }
    send_snap(tr, s);
    return 0;
}

const float *train_behaviour_params(const struct trainer *tr, int64_t step)
{
    int64_t v = train_rollout_version(tr, step);
    if (v == tr->version) return tr->model.params;
    int i = snap_index(tr, v);
    MMUPT_CHECK(i >= 0 && "the behaviour policy's snapshot is missing");
    return tr->snaps[i].w;
}

int train_wait_requests(struct trainer *tr, MPI_Request *req, int n)
{
    double deadline = mmupt_now() + tr->cfg->cluster.timeout_s;
    for (int idle = 0;; idle++) {
        int done = 0;
        MPI_Testall(n, req, &done, MPI_STATUSES_IGNORE);
        if (done) return 0;
        if (mmupt_now() > deadline) return -1;
        ring_backoff(idle);
    }
}

int train_receive_version(struct trainer *tr, int64_t version, struct mmupt_err *err)
{
    double t0 = mmupt_now();
    int n = (int)n_pieces(tr), rc = 0;
    MPI_Request *req = mmupt_xcalloc((size_t)n, sizeof *req);
    while (tr->version < version && rc == 0) {
        int64_t next = tr->version + tr->cfg->cluster.sync_interval, header = 0;
        if (tr->wbc.on && (rc = train_wbcast_ask(tr, next, err)) != 0) break;
        MPI_Request hreq;
        double t_post = mmupt_now();
        MPI_Ibcast(&header, 1, MPI_INT64_T, 0, tr->sync.mpi, &hreq);
        sync_seconds(tr, t_post);
        if (train_wait_requests(tr, &hreq, 1)) {
            rc = mmupt_fail(err, "rollout rank %d: policy version %lld did not arrive from learner rank 0 within %g s "
                                 "(cluster.timeout_s)", tr->world.rank, (long long)next, tr->cfg->cluster.timeout_s);
            break;
        }
        if (header < 0) {
            comm_count(&tr->sync_counters, COMM_BROADCAST, sizeof header, 0);
            rc = 1; /* the learners stopped (preemption) */
            break;
        }
        if (tr->wbc.on && (header & WBCAST_DEVICE) && (header & ~WBCAST_DEVICE) == next) {
            rc = train_wbcast_receive(tr, next, err);
            continue;
        }
        if (header != next) {
            rc = mmupt_fail(err, "rollout rank %d: expected policy version %lld, learner 0 sent %lld", tr->world.rank,
                            (long long)next, (long long)header);
            break;
        }
        double t_weights = mmupt_now();
        ibcast(tr, tr->model.params, req);
        if (train_wait_requests(tr, req, n)) {
            rc = mmupt_fail(err, "rollout rank %d: the weights of policy version %lld did not arrive within %g s",
                            tr->world.rank, (long long)next, tr->cfg->cluster.timeout_s);
        } else {
            comm_count(&tr->sync_counters, COMM_BROADCAST, train_version_bytes(tr), mmupt_now() - t_weights);
            tr->version = next;
            train_weights_changed(tr);
        }
    }
    free(req);
    tr->phase[PH_WAIT_WEIGHTS] += mmupt_now() - t0;
    return rc;
}

void train_sync_stop(struct trainer *tr)
{
    int64_t next = tr->last_sent + tr->cfg->cluster.sync_interval;
    if (tr->role == TRAIN_COLOCATED || tr->world.rank != 0 || !is_broadcast(tr, next)) return;
    tr->stop_header = -1;
    tr->wbc.pending = 0; /* the rollout ranks asked for it; they get the stop message instead */
    tr->wbc.headers++;
    double t0 = mmupt_now();
    MPI_Ibcast(&tr->stop_header, 1, MPI_INT64_T, 0, tr->sync.mpi, &tr->stop_req);
    comm_count(&tr->sync_counters, COMM_BROADCAST, sizeof tr->stop_header, mmupt_now() - t0);
    tr->stop_sent = 1;
}

int train_sync_resume(struct trainer *tr, int64_t rollout_version, struct mmupt_err *err)
{
    tr->last_sent = rollout_version;
    if (tr->role == TRAIN_COLOCATED || tr->world.rank != 0) return 0;
    /* Versions the rollout ranks had received before the restart, after the one they now load from
     * the checkpoint and before the current one (train_after_update sends that). */
    for (int64_t u = rollout_version + tr->cfg->cluster.sync_interval; u < tr->version && is_broadcast(tr, u);
         u += tr->cfg->cluster.sync_interval) {
        int i = snap_index(tr, u);
        if (i < 0) return mmupt_fail(err, "resume: the checkpoint lacks the weights of policy version %lld", (long long)u);
        send_snap(tr, &tr->snaps[i]);
    }
    return 0;
}

int train_sync_finish(struct trainer *tr, struct mmupt_err *err)
{
    double t0 = mmupt_now();
    int rc = train_wbcast_finish(tr, err);
    int waits = tr->stop_sent;
    for (int i = 0; i < tr->n_snaps; i++) waits |= tr->snaps[i].n_req > 0;
    if (rc == 0 && tr->stop_sent && train_wait_requests(tr, &tr->stop_req, 1))
        rc = mmupt_fail(err, "learner rank 0: the rollout ranks did not take the stop message within %g s",
                        tr->cfg->cluster.timeout_s);
    tr->stop_sent = 0;
    for (int i = 0; i < tr->n_snaps && rc == 0; i++) {
        struct weight_snap *s = &tr->snaps[i];
        if (s->n_req && train_wait_requests(tr, s->req, s->n_req))
            rc = mmupt_fail(err, "learner rank 0: the rollout ranks did not take policy version %lld within %g s",
                            (long long)s->version, tr->cfg->cluster.timeout_s);
        else s->n_req = 0;
    }
    if (waits) sync_seconds(tr, t0); /* waiting for broadcasts in flight is broadcast time */
    tr->phase[PH_SYNC] += mmupt_now() - t0;
    return rc;
}

void train_snaps_free(struct trainer *tr)
{
    for (int i = 0; i < tr->n_snaps; i++) {
        /* Only after an error can a broadcast still be pending; its buffer is leaked, not freed
         * under MPI's feet. */
        if (tr->snaps[i].n_req) continue;
        free(tr->snaps[i].w);
        free(tr->snaps[i].req);
    }
    tr->n_snaps = 0;
}
