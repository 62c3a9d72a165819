/* State of a ring shared by ring.c, producer.c and consumer.c. Not a public header. */
#ifndef MMUPT_RING_INTERNAL_H
#define MMUPT_RING_INTERNAL_H

#include "mmupt/ring.h"

/* Message tags on the ring's private communicator. Control messages carry one int64. */
enum ring_tag {
    RING_TAG_ASK = 1,     /* producer -> consumer: I want this many more credits */
    RING_TAG_CREDIT = 2,  /* consumer -> producer: this many credits granted */
    RING_TAG_TRAJ = 3,    /* producer -> consumer: a trajectory (uses one credit, asks for one more) */
    RING_TAG_END = 4,     /* producer -> consumer: no more; value = trajectories sent to you */
    RING_TAG_END_ACK = 5, /* consumer -> producer: value = credits I ever granted you */
};

/* A data send still in progress; its buffer lives until the send completes. */
struct ring_send {
    MPI_Request req;
    unsigned char *buf;
    int dest;
};

struct ring {
    MPI_Comm comm; /* a duplicate: ring traffic never matches anyone else's receives */
    int rank, size;
    int producer;
    struct ring_config cfg;
    int nprod, ncons;
    int *prod_rank, *cons_rank; /* index -> rank */
    int *index_of;              /* rank -> index within its role */

    /* producer side, per consumer index */
    int64_t *credits;      /* credits held, not yet used */
    int64_t *credits_seen; /* credits ever received */
    int64_t *sent;         /* trajectories sent */
    int asked, finished, next_cons;
    struct ring_send *sends;
    int nsends, cap_sends;

    /* consumer side, per producer index */
    int64_t *wants;        /* credits asked for and not yet granted */
    int64_t *granted;      /* credits outstanding (granted, trajectory not yet received) */
    int64_t *queued;       /* trajectories from this producer waiting in the queue */
    int64_t *quota;        /* this producer's share of capacity: granted + queued never exceed it */
    int64_t *granted_total;
    int64_t *received;
    int *ended;
    int nended, rr;
    int64_t in_flight;     /* sum(granted) + qlen: never above capacity */
    struct ring_traj *queue; /* circular, capacity entries */
    int *queue_src;
    int qhead, qlen;

    struct ring_stats stats;

    void (*on_idle)(void *ctx); /* ring_set_idle: called between the consumer's empty polls */
    void *idle_ctx;
};

/* Seconds on a monotonic clock. */
double ring_now(void);
/* Send one int64 control message and wait for it (with the timeout) to complete. */
int ring_send_ctl(struct ring *r, int dest, int tag, int64_t value, struct mmupt_err *err);
/* Receive the control message a probe found. */
int64_t ring_recv_ctl(struct ring *r, const MPI_Status *st);

#endif
