/* Producer side of the ring: ask for credits, send trajectories with them, end cleanly. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ring_internal.h"

/* "rank 2, rank 3" for the consumers whose flag is 0 (or all when flags is NULL). */
static void list_consumers(const struct ring *r, const int *flags, char *buf, size_t cap)
{
    size_t n = 0;
    buf[0] = '\0';
    for (int c = 0; c < r->ncons && n + 16 < cap; c++)
        if (!flags || !flags[c]) n += (size_t)snprintf(buf + n, cap - n, "%srank %d", n ? ", " : "", r->cons_rank[c]);
}

/* Forget data sends that completed, so their buffers do not pile up. */
static void reap_sends(struct ring *r)
{
    int k = 0;
    for (int i = 0; i < r->nsends; i++) {
        int done = 0;
        MPI_Test(&r->sends[i].req, &done, MPI_STATUS_IGNORE);
        if (done) free(r->sends[i].buf);
        else r->sends[k++] = r->sends[i];
    }
    r->nsends = k;
}

/* Take every credit message that has arrived. Returns 1 if any did, -1 on a bad message. */
static int drain_credits(struct ring *r, struct mmupt_err *err)
{
    int got = 0;
    for (;;) {
        int flag = 0;
        MPI_Status st;
        MPI_Iprobe(MPI_ANY_SOURCE, RING_TAG_CREDIT, r->comm, &flag, &st);
        if (!flag) return got;
        int64_t v = ring_recv_ctl(r, &st);
        int c = r->index_of[st.MPI_SOURCE];
        if (r->cons_rank[c] != st.MPI_SOURCE || v < 1 || v > r->cfg.capacity)
            return mmupt_fail(err, "ring: producer rank %d: bad credit message (%lld) from rank %d", r->rank,
                              (long long)v, st.MPI_SOURCE);
        r->credits[c] += v;
        r->credits_seen[c] += v;
        got = 1;
    }
}

/* A consumer whose credit we hold: `target` if it is >= 0, else the next one in rotation (so
 * trajectories spread over consumers); -1 if there is none yet. */
static int credit_from(struct ring *r, int target)
{
    if (target >= 0) return r->credits[target] > 0 ? target : -1;
    for (int k = 0; k < r->ncons; k++) {
        int c = (r->next_cons + k) % r->ncons;
        if (r->credits[c] > 0) {
            r->next_cons = (c + 1) % r->ncons;
            return c;
        }
    }
    return -1;
}

/* Block until the target consumer (or any, target < 0) granted a credit; return its index. */
static int wait_credit(struct ring *r, int target, struct mmupt_err *err)
{
    double deadline = ring_now() + r->cfg.timeout_s;
    for (int idle = 0;; idle++) {
        int c = credit_from(r, target);
        if (c >= 0) return c;
        int got = drain_credits(r, err);
        if (got < 0) return -1;
        if (got) { idle = 0; continue; }
        reap_sends(r);
        if (ring_now() > deadline) {
            char who[256];
            if (target >= 0) snprintf(who, sizeof who, "rank %d", r->cons_rank[target]);
            else list_consumers(r, NULL, who, sizeof who);
            return mmupt_fail(err, "ring: producer rank %d: no credit from %s%s within %g s", r->rank,
                              target >= 0 ? "" : "any consumer: ", who, r->cfg.timeout_s);
        }
        ring_backoff(idle);
    }
}

int ring_push(struct ring *r, const struct ring_traj *t, struct mmupt_err *err)
{
    return ring_push_to(r, -1, t, err);
}

int ring_push_to(struct ring *r, int consumer, const struct ring_traj *t, struct mmupt_err *err)
{
    MMUPT_CHECK(r->producer && !r->finished && consumer >= -1 && consumer < r->ncons);
    if (t->n < 0 || t->n > r->cfg.max_tokens)
        return mmupt_fail(err, "ring: push: token count %d is outside [0, %d]", (int)t->n, r->cfg.max_tokens);
    if (!r->asked) {
        /* Ask for a full window from every consumer; each trajectory sent asks for one more, so
         * the ask is standing and never repeated. The consumers share it out round-robin. */
        for (int c = 0; c < r->ncons; c++)
            if (ring_send_ctl(r, r->cons_rank[c], RING_TAG_ASK, r->cfg.capacity, err)) return -1;
        r->asked = 1;
    }
    reap_sends(r);
    int c = wait_credit(r, consumer, err);
    if (c < 0) return -1;
    r->credits[c]--;
    if (r->nsends == r->cap_sends) {
        r->cap_sends = r->cap_sends ? 2 * r->cap_sends : 16;
        struct ring_send *s = mmupt_xmalloc((size_t)r->cap_sends * sizeof *s);
        if (r->nsends) memcpy(s, r->sends, (size_t)r->nsends * sizeof *s);
        free(r->sends);
        r->sends = s;
    }
    /* Sends complete in the background (a large one needs the consumer to be polling), so a
     * learner busy with a training step does not stall this rank beyond its credits. */
    struct ring_send *s = &r->sends[r->nsends++];
    size_t len = ring_wire_size(t->n);
    s->buf = mmupt_xmalloc(len);
    s->dest = r->cons_rank[c];
    ring_wire_encode(t, s->buf);
    MPI_Isend(s->buf, (int)len, MPI_BYTE, s->dest, RING_TAG_TRAJ, r->comm, &s->req);
    r->sent[c]++;
    r->stats.pushed++;
    return 0;
}

/* Wait for every pending data send, naming the consumer that does not take its trajectory. */
static int flush_sends(struct ring *r, struct mmupt_err *err)
{
    double deadline = ring_now() + r->cfg.timeout_s;
    for (int idle = 0; r->nsends > 0; idle++) {
        int before = r->nsends;
        reap_sends(r);
        if (r->nsends < before) { idle = 0; deadline = ring_now() + r->cfg.timeout_s; continue; }
        if (ring_now() > deadline)
            return mmupt_fail(err, "ring: producer rank %d: rank %d did not receive a trajectory within %g s",
                              r->rank, r->sends[0].dest, r->cfg.timeout_s);
        ring_backoff(idle);
    }
    return 0;
}

/* Receive the end acknowledgements, discarding credits still on their way. */
static int wait_acks(struct ring *r, struct mmupt_err *err)
{
    int *acked = mmupt_xcalloc((size_t)r->ncons, sizeof(int));
    int nacked = 0, rc = 0;
    double deadline = ring_now() + r->cfg.timeout_s;
    for (int idle = 0; nacked < r->ncons && rc == 0; idle++) {
        int flag = 0;
        MPI_Status st;
        MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, r->comm, &flag, &st);
        if (!flag) {
            if (ring_now() > deadline) {
                char who[256];
                list_consumers(r, acked, who, sizeof who);
                rc = mmupt_fail(err, "ring: producer rank %d: no end acknowledgement from %s within %g s", r->rank,
                                who, r->cfg.timeout_s);
            }
            ring_backoff(idle);
            continue;
        }
        idle = 0;
        deadline = ring_now() + r->cfg.timeout_s;
        int64_t v = ring_recv_ctl(r, &st);
        int c = r->index_of[st.MPI_SOURCE];
        if (r->cons_rank[c] != st.MPI_SOURCE) {
            rc = mmupt_fail(err, "ring: producer rank %d: message from rank %d, which is not a consumer", r->rank,
                            st.MPI_SOURCE);
        } else if (st.MPI_TAG == RING_TAG_CREDIT) {
            r->credits_seen[c] += v; /* MPI keeps one sender's order: all its credits precede its ack */
        } else if (st.MPI_TAG == RING_TAG_END_ACK && !acked[c]) {
            if (v != r->credits_seen[c])
                rc = mmupt_fail(err, "ring: producer rank %d: rank %d granted %lld credits, %lld arrived", r->rank,
                                st.MPI_SOURCE, (long long)v, (long long)r->credits_seen[c]);
            acked[c] = 1;
            nacked++;
        } else {
            rc = mmupt_fail(err, "ring: producer rank %d: unexpected message (tag %d) from rank %d while ending",
                            r->rank, st.MPI_TAG, st.MPI_SOURCE);
        }
    }
    free(acked);
    return rc;
}

int ring_finish(struct ring *r, struct mmupt_err *err)
{
    MMUPT_CHECK(r->producer && !r->finished);
    r->finished = 1;
    /* The count lets a consumer prove nothing was lost: MPI delivers one sender's messages in
     * order, so when END arrives every trajectory sent before it has arrived too. */
    for (int c = 0; c < r->ncons; c++)
        if (ring_send_ctl(r, r->cons_rank[c], RING_TAG_END, r->sent[c], err)) return -1;
    if (flush_sends(r, err)) return -1;
    return wait_acks(r, err);
}
