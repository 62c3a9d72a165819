/* cluster.weight_broadcast=device: new weights go GPU to GPU from learner 0 to the rollout ranks.
 *
 * The host way (sync.c) copies every version learner 0 sends to host memory, twice (device to host,
 * then a snapshot), and MPI broadcasts it from there: seconds per version for a 7B model. An NCCL
 * broadcast reads the device weights in place, but it is a kernel that spins on learner 0's GPU until
 * every rollout rank has joined, and rollout ranks may be a whole step behind (max_staleness >= 1).
 * Learner 0 must not stall for that, nor keep a second copy of the weights on its GPU. Hence:
 *   1. a rollout rank that needs version v sends learner 0 a request (v, point to point on the sync
 *      communicator), then waits for the header as before;
 *   2. once every rollout rank asked for the version learner 0 holds as its live weights, learner 0
 *      posts the header v | WBCAST_DEVICE and broadcasts dev_current: NCCL queued on its own stream
 *      behind the update that made it, and the next optimizer step waits for it;
 *   3. if that next optimizer step comes first, the version goes the host way instead (header v, a
 *      host snapshot, MPI_Ibcast), so learner 0 never waits for a rollout rank.
 * Learner 0 takes requests wherever it waits (the ring's idle polls), between micro-batches and at
 * the end of each update (train_wbcast_poll). Every header - weights either way, or the stop message
 * - answers exactly one request of each rollout rank, so at the end learner 0 takes requests until
 * their count matches and nothing is left unreceived.
 *
 * Without NCCL (the emulator, or it could not start) step 2 is staged through host buffers: a
 * blocking MPI broadcast of the host copy, the same bytes the host way sends. That is how CI tests
 * the handshake; the NCCL transfer itself needs two GPUs. Either way the rollout ranks hold the same
 * fp32 weights and derive the same bf16 copy as with weight_broadcast=host. */
#include <stdlib.h>

#include "mmupt/gpu.h"
#include "train_internal.h"

#define ASK_TAG 0x5742 /* "WB" */

static int learner0(const struct trainer *tr) { return tr->wbc.on && tr->world.rank == 0; }

static void on_ring_idle(void *ctx) { train_wbcast_poll(ctx); }

/* NCCL over the sync ranks; every rank falls back to staging together when it cannot start. */
static void open_nccl(struct trainer *tr)
{
    struct weight_bcast *w = &tr->wbc;
    struct mmupt_err err;
    if (gpu_emulated()) {
        log_info(&tr->lg, "weights to rollout ranks: the device way, staged through host buffers (the emulator has "
                          "no NCCL)");
        return;
    }
    if (comm_split(&tr->sync, 0, &w->dev, &err) == 0) {
        w->dev_split = 1;
        if (comm_nccl_open(&w->dev, tr->gpu.device, &err) == 0) {
            log_info(&tr->lg, "weights to rollout ranks: GPU to GPU over NCCL once they ask, else from host copies");
            return;
        }
    }
    log_warn(&tr->lg, "weights to rollout ranks: no NCCL (%s): the device way is staged through host buffers; "
                      "cluster.weight_broadcast=host overlaps better without it", err.msg);
}

int train_wbcast_open(struct trainer *tr, struct mmupt_err *err)
{
    struct weight_bcast *w = &tr->wbc;
    w->header_req = w->ask_req = MPI_REQUEST_NULL;
    w->dev.mpi = MPI_COMM_NULL;
    int want = tr->cfg->cluster.weight_broadcast == WEIGHT_BCAST_DEVICE;
    if (want && tr->role == TRAIN_COLOCATED)
        log_info(&tr->lg, "cluster.weight_broadcast=device has no effect here: colocated ranks (cluster.rollout_ranks "
                          "0) broadcast no weights");
    if (tr->sync.mpi == MPI_COMM_NULL) return 0; /* colocated, or a learner other than 0 */
    int mine = want && tr->on_device, all = 0;
    if (MPI_Allreduce(&mine, &all, 1, MPI_INT, MPI_MIN, tr->sync.mpi) != MPI_SUCCESS)
        return mmupt_fail(err, "cluster.weight_broadcast: agreeing with the rollout ranks failed (MPI)");
    if (want && !all && tr->world.rank == 0)
        log_warn(&tr->lg, "cluster.weight_broadcast=device needs the device path (cluster.backend cuda or emulator) on "
                          "learner 0 and every rollout rank: weights go the host way");
    w->on = all;
    if (!w->on) return 0;
    const char *late = getenv("MMUPT_TEST_WBCAST_LATE");
    w->late = late && late[0] == '1';
    if (w->late && tr->world.rank == 0)
        log_warn(&tr->lg, "MMUPT_TEST_WBCAST_LATE (a test hook): every weight version goes the host way");
    open_nccl(tr);
    if (tr->world.rank == 0) ring_set_idle(tr->ring, on_ring_idle, tr);
    return 0;
}

/* Learner 0: the requests that arrived. They come in version order per rank, and no rank asks for
 * a version before it has the previous one, so the newest version asked for and its count suffice. */
static int take_asks(struct trainer *tr)
{
    struct weight_bcast *w = &tr->wbc;
    for (;;) {
        int flag = 0;
        MPI_Status st;
        if (MPI_Iprobe(MPI_ANY_SOURCE, ASK_TAG, tr->sync.mpi, &flag, &st) != MPI_SUCCESS) return -1;
        if (!flag) return 0;
        int64_t v = 0;
        if (MPI_Recv(&v, 1, MPI_INT64_T, st.MPI_SOURCE, ASK_TAG, tr->sync.mpi, MPI_STATUS_IGNORE) != MPI_SUCCESS)
            return -1;
        w->asks++;
        if (v == w->asked_v) {
            w->asked_n++;
        } else if (v > w->asked_v) {
            w->asked_v = v;
            w->asked_n = 1;
        }
    }
}

/* Learner 0: the header, then the live weights (NCCL queued, or staged and done on return). */
static int launch(struct trainer *tr)
{
    struct weight_bcast *w = &tr->wbc;
    if (train_wait_requests(tr, &w->header_req, 1)) return -1; /* the previous one: answered long ago */
    double t0 = mmupt_now();
    int64_t u = w->pending;
    w->header = u | WBCAST_DEVICE;
    if (MPI_Ibcast(&w->header, 1, MPI_INT64_T, 0, tr->sync.mpi, &w->header_req) != MPI_SUCCESS) return -1;
    w->headers++;
    w->pending = 0;
    tr->last_sent = u;
    float *live = train_device_live(tr);
    int rc;
    if (w->dev.nccl) {
        rc = comm_after_stream(&w->dev, tr->gpu.stream) ||
             comm_broadcast_start(&w->dev, live, train_weight_bytes(tr), 0);
        w->in_flight = rc == 0;
    } else { /* staged: the host copy of those weights */
        train_host_weights(tr);
        rc = comm_broadcast(&tr->sync, tr->model.params, train_weight_bytes(tr), 0);
    }
    comm_count(&tr->sync_counters, COMM_BROADCAST, train_version_bytes(tr), mmupt_now() - t0);
    w->n_device++;
    return rc ? -1 : 0;
}

/* Learner 0: the pending version the host way (sync.c), from a snapshot. */
static int send_host(struct trainer *tr, struct mmupt_err *err)
{
    struct weight_bcast *w = &tr->wbc;
    int64_t u = w->pending;
    w->pending = 0;
    w->n_host++;
    return train_sync_send_host(tr, u, err);
}

void train_wbcast_poll(struct trainer *tr)
{
    struct weight_bcast *w = &tr->wbc;
    if (!learner0(tr) || w->failed) return;
    if (take_asks(tr)) {
        w->failed = mmupt_fail(&w->err, "learner rank 0: taking the rollout ranks' weight requests failed (MPI)");
    } else if (w->pending && w->asked_v == w->pending && w->asked_n == tr->n_rollout) {
        if (w->late) w->failed = send_host(tr, &w->err);
        else if (launch(tr))
            w->failed = mmupt_fail(&w->err, "learner rank 0: the device broadcast of policy version %lld failed "
                                            "(MPI or NCCL)", (long long)tr->last_sent);
    }
}

/* What failed in a poll (which has no caller to tell), or the wait that just failed. */
static int failed(struct trainer *tr, struct mmupt_err *err)
{
    if (tr->wbc.failed) {
        *err = tr->wbc.err;
        return -1;
    }
    return mmupt_fail(err, "learner rank 0: waiting for a device weight broadcast to the rollout ranks failed");
}

int train_wbcast_before_update(struct trainer *tr, struct mmupt_err *err)
{
    struct weight_bcast *w = &tr->wbc;
    if (!learner0(tr)) return 0;
    double t0 = mmupt_now();
    train_wbcast_poll(tr);
    int rc = w->failed ? failed(tr, err) : 0;
    if (rc == 0 && w->pending) rc = send_host(tr, err); /* not asked for yet: before the update overwrites it */
    if (rc == 0 && w->in_flight) {
        w->in_flight = 0;
        if (comm_sync(&w->dev)) rc = failed(tr, err);
    }
    tr->phase[PH_SYNC] += mmupt_now() - t0;
    return rc;
}

int train_wbcast_ask(struct trainer *tr, int64_t version, struct mmupt_err *err)
{
    struct weight_bcast *w = &tr->wbc;
    if (train_wait_requests(tr, &w->ask_req, 1)) /* the previous request: taken by now */
        return mmupt_fail(err, "rollout rank %d: learner 0 did not take a weight request within %g s", tr->world.rank,
                          tr->cfg->cluster.timeout_s);
    w->ask = version;
    if (MPI_Isend(&w->ask, 1, MPI_INT64_T, 0, ASK_TAG, tr->sync.mpi, &w->ask_req) != MPI_SUCCESS)
        return mmupt_fail(err, "rollout rank %d: asking learner 0 for policy version %lld failed (MPI)",
                          tr->world.rank, (long long)version);
    return 0;
}

int train_wbcast_receive(struct trainer *tr, int64_t version, struct mmupt_err *err)
{
    struct weight_bcast *w = &tr->wbc;
    double t0 = mmupt_now();
    int rc;
    if (w->dev.nccl) { /* straight into the device weights, after the kernels that read them */
        rc = comm_after_stream(&w->dev, tr->gpu.stream) ||
             comm_broadcast(&w->dev, tr->dev_current, train_weight_bytes(tr), 0);
    } else { /* staged, then uploaded: the device ends as NCCL leaves it, which is what CI tests */
        rc = comm_broadcast(&tr->sync, tr->model.params, train_weight_bytes(tr), 0);
        if (rc == 0) gpu_upload(&tr->gpu, tr->dev_current, tr->model.params, train_weight_bytes(tr));
    }
    if (rc == 0) train_device_received(tr, version);
    if (rc)
        return mmupt_fail(err, "rollout rank %d: the device broadcast of policy version %lld failed", tr->world.rank,
                          (long long)version);
    tr->version = version;
    comm_count(&tr->sync_counters, COMM_BROADCAST, train_version_bytes(tr), mmupt_now() - t0);
    return 0;
}

/* Learner 0 at the end: serve a version still pending, take every request, let nothing run on. */
static int finish_learner0(struct trainer *tr, struct mmupt_err *err)
{
    struct weight_bcast *w = &tr->wbc;
    double deadline = mmupt_now() + tr->cfg->cluster.timeout_s;
    for (int idle = 0; w->pending || w->asks < (int64_t)tr->n_rollout * w->headers; idle++) {
        train_wbcast_poll(tr);
        if (w->failed) return failed(tr, err);
        if (mmupt_now() > deadline)
            return mmupt_fail(err, "learner rank 0: the rollout ranks sent %lld of %lld weight requests within %g s "
                                   "(cluster.timeout_s)", (long long)w->asks, (long long)tr->n_rollout * w->headers,
                              tr->cfg->cluster.timeout_s);
        ring_backoff(idle);
    }
    if (train_wait_requests(tr, &w->header_req, 1)) return failed(tr, err);
    if (w->in_flight && comm_sync(&w->dev)) return failed(tr, err);
    w->in_flight = 0;
    return 0;
}

int train_wbcast_finish(struct trainer *tr, struct mmupt_err *err)
{
    struct weight_bcast *w = &tr->wbc;
    if (!w->on) return 0;
    if (tr->world.rank == 0) return finish_learner0(tr, err);
    if (train_wait_requests(tr, &w->ask_req, 1))
        return mmupt_fail(err, "rollout rank %d: learner 0 did not take the last weight request within %g s",
                          tr->world.rank, tr->cfg->cluster.timeout_s);
    return 0;
}

void train_wbcast_report(const struct trainer *tr)
{
    const struct weight_bcast *w = &tr->wbc;
    if (!learner0(tr)) return;
    log_info(&tr->lg, "weights to rollout ranks: %lld version(s) the device way (%s), %lld from host copies (%s)",
             w->n_device, w->dev.nccl ? "NCCL" : "staged through host buffers", w->n_host,
             w->late ? "the test hook MMUPT_TEST_WBCAST_LATE" : "the next update came before every rollout rank asked");
}
