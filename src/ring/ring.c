/* The ring's life cycle (open, close, stats) and the polling helpers both roles use. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ring_internal.h"

double ring_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void ring_backoff(int idle_polls)
{
    /* Spin briefly (latency), then sleep: with more ranks than cores, a busy-polling waiter would
     * steal the core from the very peer it waits for. */
    if (idle_polls < 64) return;
    struct timespec ts = {0, idle_polls < 1024 ? 20000 : 200000};
    nanosleep(&ts, NULL);
}

int ring_send_ctl(struct ring *r, int dest, int tag, int64_t value, struct mmupt_err *err)
{
    MPI_Request req;
    MPI_Isend(&value, 1, MPI_INT64_T, dest, tag, r->comm, &req);
    double deadline = ring_now() + r->cfg.timeout_s;
    for (int idle = 0;; idle++) {
        int done = 0;
        MPI_Test(&req, &done, MPI_STATUS_IGNORE);
        if (done) return 0;
        if (ring_now() > deadline) {
            /* The message is tiny; if it has not left in timeout_s the peer is gone. The request
             * is abandoned (its buffer would go out of scope), so cancel it first. */
            MPI_Cancel(&req);
            MPI_Request_free(&req);
            return mmupt_fail(err, "ring: rank %d: control message to rank %d not delivered within %g s",
                              r->rank, dest, r->cfg.timeout_s);
        }
        ring_backoff(idle);
    }
}

int64_t ring_recv_ctl(struct ring *r, const MPI_Status *st)
{
    int64_t v = 0;
    MPI_Recv(&v, 1, MPI_INT64_T, st->MPI_SOURCE, st->MPI_TAG, r->comm, MPI_STATUS_IGNORE);
    return v;
}

static int check_config(const struct ring_config *c, struct mmupt_err *err)
{
    if (c->capacity < 1 || c->capacity > RING_MAX_CAPACITY)
        return mmupt_fail(err, "ring: capacity %d is out of range [1, %d]", c->capacity, RING_MAX_CAPACITY);
    if (c->max_staleness < 0) return mmupt_fail(err, "ring: max_staleness %d is negative", c->max_staleness);
    if (!(c->timeout_s > 0) || c->timeout_s > 1e6)
        return mmupt_fail(err, "ring: timeout_s %g is out of range (0, 1e6]", c->timeout_s);
    if (c->max_tokens < 0 || c->max_tokens > (1 << 28))
        return mmupt_fail(err, "ring: max_tokens %d is out of range [0, %d]", c->max_tokens, 1 << 28);
    return 0;
}

static int64_t *zeros64(int n) { return mmupt_xcalloc((size_t)(n > 0 ? n : 1), sizeof(int64_t)); }

int ring_open(struct ring **out, MPI_Comm comm, const int *is_producer, const struct ring_config *cfg,
              struct mmupt_err *err)
{
    *out = NULL;
    if (check_config(cfg, err)) return -1;
    int rank, size;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &size);
    int np = 0;
    for (int i = 0; i < size; i++) np += is_producer[i] != 0;
    if (np == 0 || np == size)
        return mmupt_fail(err, "ring: %d producer(s) among %d ranks: need at least one producer and one consumer",
                          np, size);
    if (cfg->capacity < np)
        return mmupt_fail(err, "ring: capacity %d is below the %d producers: each needs at least one slot per consumer",
                          cfg->capacity, np);

    struct ring *r = mmupt_xcalloc(1, sizeof *r);
    MPI_Comm_dup(comm, &r->comm);
    r->rank = rank;
    r->size = size;
    r->producer = is_producer[rank] != 0;
    r->cfg = *cfg;
    if (r->cfg.max_tokens == 0) r->cfg.max_tokens = RING_DEFAULT_MAX_TOKENS;
    r->prod_rank = mmupt_xcalloc((size_t)size, sizeof(int));
    r->cons_rank = mmupt_xcalloc((size_t)size, sizeof(int));
    r->index_of = mmupt_xcalloc((size_t)size, sizeof(int));
    for (int i = 0; i < size; i++) {
        if (is_producer[i]) { r->index_of[i] = r->nprod; r->prod_rank[r->nprod++] = i; }
        else { r->index_of[i] = r->ncons; r->cons_rank[r->ncons++] = i; }
    }
    if (r->producer) {
        r->credits = zeros64(r->ncons);
        r->credits_seen = zeros64(r->ncons);
        r->sent = zeros64(r->ncons);
    } else {
        r->wants = zeros64(r->nprod);
        r->granted = zeros64(r->nprod);
        r->queued = zeros64(r->nprod);
        r->quota = zeros64(r->nprod);
        /* Capacity is split into fixed per-producer shares: a producer that holds credits it cannot
         * use yet (blocked on another consumer) never takes the slots another producer needs. */
        for (int p = 0; p < r->nprod; p++) r->quota[p] = cfg->capacity / r->nprod + (p < cfg->capacity % r->nprod);
        r->granted_total = zeros64(r->nprod);
        r->received = zeros64(r->nprod);
        r->ended = mmupt_xcalloc((size_t)r->nprod, sizeof(int));
        r->queue = mmupt_xcalloc((size_t)cfg->capacity, sizeof(struct ring_traj));
        r->queue_src = mmupt_xcalloc((size_t)cfg->capacity, sizeof(int));
    }
    *out = r;
    return 0;
}

int ring_is_producer(const struct ring *r) { return r->producer; }

int ring_consumers(const struct ring *r) { return r->ncons; }

void ring_get_stats(const struct ring *r, struct ring_stats *s) { *s = r->stats; }

static void release_sends(struct ring *r)
{
    for (int i = 0; i < r->nsends; i++) {
        int done = 0;
        MPI_Test(&r->sends[i].req, &done, MPI_STATUS_IGNORE);
        if (!done) {
            /* Only after an error: the peer never took it. Cancel, and keep the buffer if MPI
             * could not let go of it (a leak is better than a use after free). */
            MPI_Cancel(&r->sends[i].req);
            double deadline = ring_now() + 0.1;
            while (!done && ring_now() < deadline) MPI_Test(&r->sends[i].req, &done, MPI_STATUS_IGNORE);
            if (!done) { MPI_Request_free(&r->sends[i].req); continue; }
        }
        free(r->sends[i].buf);
    }
    free(r->sends);
}

void ring_close(struct ring *r)
{
    if (!r) return;
    release_sends(r);
    for (int i = 0; i < r->qlen; i++) ring_traj_free(&r->queue[(r->qhead + i) % r->cfg.capacity]);
    free(r->queue);
    free(r->queue_src);
    free(r->credits);
    free(r->credits_seen);
    free(r->sent);
    free(r->wants);
    free(r->granted);
    free(r->queued);
    free(r->quota);
    free(r->granted_total);
    free(r->received);
    free(r->ended);
    free(r->prod_rank);
    free(r->cons_rank);
    free(r->index_of);
    MPI_Comm_free(&r->comm);
    free(r);
}
