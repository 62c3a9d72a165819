/* Consumer side of the ring: grant credits round-robin, queue what arrives, hand it out. */
#include <stdio.h>
#include <stdlib.h>

#include "ring_internal.h"

/* Hand out free slots one at a time, round-robin over the producers that want one and are below
 * their share of the capacity: a producer that asks often gets no more than one that asks rarely.
 * The shares matter for targeted pushes (ring_push_to): without them a producer blocked on one
 * consumer could hoard every credit of another, starving the producer that consumer waits for. */
static int grant_credits(struct ring *r, struct mmupt_err *err)
{
    while (r->in_flight < r->cfg.capacity) {
        int p = -1;
        for (int k = 0; k < r->nprod; k++) {
            int q = (r->rr + k) % r->nprod;
            if (r->wants[q] > 0 && !r->ended[q] && r->granted[q] + r->queued[q] < r->quota[q]) { p = q; break; }
        }
        if (p < 0) return 0;
        if (ring_send_ctl(r, r->prod_rank[p], RING_TAG_CREDIT, 1, err)) return -1;
        r->rr = (p + 1) % r->nprod;
        r->wants[p]--;
        r->granted[p]++;
        r->granted_total[p]++;
        r->in_flight++;
        if (r->in_flight > r->stats.max_in_flight) r->stats.max_in_flight = r->in_flight;
    }
    return 0;
}

static int on_traj(struct ring *r, const MPI_Status *st, int p, struct mmupt_err *err)
{
    int len = 0;
    MPI_Get_count(st, MPI_BYTE, &len);
    /* Check the size before allocating: it comes from another process. */
    if (len < RING_WIRE_HEADER || (size_t)len > ring_wire_size(r->cfg.max_tokens))
        return mmupt_fail(err, "ring: consumer rank %d: trajectory of %d bytes from rank %d is out of range",
                          r->rank, len, st->MPI_SOURCE);
    unsigned char *buf = mmupt_xmalloc((size_t)len);
    MPI_Recv(buf, len, MPI_BYTE, st->MPI_SOURCE, RING_TAG_TRAJ, r->comm, MPI_STATUS_IGNORE);
    if (r->granted[p] <= 0) {
        free(buf);
        return mmupt_fail(err, "ring: consumer rank %d: rank %d sent a trajectory without a credit", r->rank,
                          st->MPI_SOURCE);
    }
    int slot = (r->qhead + r->qlen) % r->cfg.capacity;
    MMUPT_CHECK(r->qlen < r->cfg.capacity); /* follows from in_flight <= capacity */
    int rc = ring_wire_decode(buf, (size_t)len, r->cfg.max_tokens, &r->queue[slot], err);
    free(buf);
    if (rc) {
        mmupt_err_prefix(err, "ring: consumer rank %d: from rank %d", r->rank, st->MPI_SOURCE);
        return -1;
    }
    r->queue_src[slot] = st->MPI_SOURCE;
    r->qlen++;
    r->queued[p]++;
    r->granted[p]--; /* the slot stays in flight, now as a queued trajectory */
    r->received[p]++;
    r->wants[p]++;   /* every trajectory asks for the next credit */
    return 0;
}

static int on_end(struct ring *r, int p, int64_t sent, struct mmupt_err *err)
{
    if (sent != r->received[p])
        return mmupt_fail(err, "ring: consumer rank %d: rank %d ended after sending %lld trajectories, %lld arrived",
                          r->rank, r->prod_rank[p], (long long)sent, (long long)r->received[p]);
    r->ended[p] = 1;
    r->nended++;
    r->wants[p] = 0;
    r->in_flight -= r->granted[p]; /* credits it never used come back */
    r->granted[p] = 0;
    return ring_send_ctl(r, r->prod_rank[p], RING_TAG_END_ACK, r->granted_total[p], err);
}

/* Receive one probed message. */
static int on_message(struct ring *r, const MPI_Status *st, struct mmupt_err *err)
{
    int src = st->MPI_SOURCE, p = r->index_of[src];
    if (r->prod_rank[p] != src || r->ended[p]) {
        /* Left unreceived: the ring is broken from here on and the caller closes it. */
        return mmupt_fail(err, "ring: consumer rank %d: unexpected message (tag %d) from rank %d%s", r->rank,
                          st->MPI_TAG, src, r->prod_rank[p] == src ? " after its end marker" : ", not a producer");
    }
    if (st->MPI_TAG == RING_TAG_TRAJ) return on_traj(r, st, p, err);
    int64_t v = ring_recv_ctl(r, st);
    if (st->MPI_TAG == RING_TAG_ASK) {
        if (v < 0 || v > r->cfg.capacity)
            return mmupt_fail(err, "ring: consumer rank %d: rank %d asked for %lld credits", r->rank, src, (long long)v);
        r->wants[p] += v;
        return 0;
    }
    if (st->MPI_TAG == RING_TAG_END) return on_end(r, p, v, err);
    return mmupt_fail(err, "ring: consumer rank %d: unexpected message (tag %d) from rank %d", r->rank, st->MPI_TAG,
                      src);
}

/* Receive everything that has arrived. Returns the number of messages, or -1. */
static int drain(struct ring *r, struct mmupt_err *err)
{
    int n = 0;
    for (;;) {
        int flag = 0;
        MPI_Status st;
        MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, r->comm, &flag, &st);
        if (!flag) return n;
        if (on_message(r, &st, err)) return -1;
        n++;
    }
}

static int silent_error(struct ring *r, struct mmupt_err *err)
{
    char who[512];
    size_t n = 0;
    who[0] = '\0';
    for (int p = 0; p < r->nprod && n + 16 < sizeof who; p++)
        if (!r->ended[p]) n += (size_t)snprintf(who + n, sizeof who - n, "%srank %d", n ? ", " : "", r->prod_rank[p]);
    return mmupt_fail(err, "ring: consumer rank %d: nothing from producer %s for %g s (no trajectory, no end marker)",
                      r->rank, who, r->cfg.timeout_s);
}

int ring_pop(struct ring *r, int64_t policy_version, struct ring_traj *out, struct mmupt_err *err)
{
    MMUPT_CHECK(!r->producer);
    double deadline = ring_now() + r->cfg.timeout_s;
    for (int idle = 0;; idle++) {
        int n = drain(r, err);
        if (n < 0 || grant_credits(r, err)) return -1;
        if (n > 0) { idle = 0; deadline = ring_now() + r->cfg.timeout_s; }
        if (r->qlen > 0) {
            *out = r->queue[r->qhead];
            r->queued[r->index_of[r->queue_src[r->qhead]]]--;
            r->qhead = (r->qhead + 1) % r->cfg.capacity;
            r->qlen--;
            r->in_flight--;
            /* Re-grant the freed slot now, not at the next pop: the caller may train for a while. */
            if (grant_credits(r, err)) { ring_traj_free(out); return -1; }
            if (out->policy_version < policy_version - r->cfg.max_staleness) {
                r->stats.stale++;
                return RING_STALE;
            }
            r->stats.popped++;
            return RING_GOT;
        }
        if (r->nended == r->nprod) return RING_END;
        if (ring_now() > deadline) return silent_error(r, err);
        if (r->on_idle) r->on_idle(r->idle_ctx);
        ring_backoff(idle);
    }
}

void ring_set_idle(struct ring *r, void (*fn)(void *ctx), void *ctx)
{
    r->on_idle = fn;
    r->idle_ctx = ctx;
}
