/* The trajectory ring: rollout ranks (producers) hand finished trajectories to learner ranks
 * (consumers) over MPI point-to-point messages.
 *
 * Flow control is by credits. A consumer owns `capacity` slots; a slot is "in flight" from the
 * moment the consumer grants a credit for it until the trajectory sent with that credit is popped
 * (or the producer ends and gives the credit back). So credits outstanding + trajectories queued at
 * a consumer never exceed `capacity`, and a producer without a credit blocks in ring_push: that is
 * the back-pressure. A producer asks every consumer for up to `capacity` credits on its first push
 * and every trajectory it sends asks for one more; a consumer hands free slots out one at a time,
 * round-robin over the producers that want one, so a fast producer cannot starve a slow one.
 *
 * Each consumer's capacity is split into fixed per-producer shares (so capacity must be at least
 * the number of producers): a producer blocked on one consumer can hold at most its share of
 * another's credits, never all of them.
 *
 * Which consumer gets a trajectory: ring_push sends to a consumer it holds a credit from,
 * rotating over consumers, so the load spreads over learners and a slow learner simply grants
 * fewer credits; ring_push_to sends to a named consumer (the trainer's fixed group -> learner map).
 *
 * Staleness: ring_pop takes the learner's current policy version; a trajectory generated with a
 * version older than `version - max_staleness` is not handed out for training but returned as
 * RING_STALE (so the caller can regenerate that question) and counted.
 *
 * Shutdown: ring_finish sends an end marker (with the number of trajectories sent) to every
 * consumer and waits for each to acknowledge, so no message is left unreceived. ring_pop returns
 * RING_END once every producer has ended. Every wait is non-blocking MPI polled against
 * `timeout_s`; a peer that stays silent that long gives an error naming its rank, never a hang.
 *
 * Wire format: a 32-byte header (question, group, policy_version as int64; sample, n as int32;
 * native byte order: all ranks of one job share an architecture) then n int32 tokens and n float
 * log-probs. Colocated mode (a rank that is both producer and consumer) is not supported here.
 */
#ifndef MMUPT_RING_H
#define MMUPT_RING_H

#include <stddef.h>
#include <stdint.h>

#include <mpi.h>

#include "mmupt/err.h"

#ifdef __cplusplus
extern "C" {
#endif

struct ring_config {
    int capacity;       /* trajectories in flight per consumer, >= 1 */
    int max_staleness;  /* policy versions a trajectory may lag behind the learner, >= 0 */
    double timeout_s;   /* longest silence from a peer before an error, > 0 */
    int max_tokens;     /* largest accepted trajectory; 0 means RING_DEFAULT_MAX_TOKENS */
};

#define RING_DEFAULT_MAX_TOKENS (1 << 20)
#define RING_MAX_CAPACITY (1 << 20)
#define RING_WIRE_HEADER 32

/* One trajectory. tokens and logp have n entries. Trajectories that ring_pop fills own their
 * arrays: release them with ring_traj_free. */
struct ring_traj {
    int64_t question, group;
    int32_t sample;
    int64_t policy_version;
    int32_t n;
    int32_t *tokens;
    float *logp;
};

/* What ring_pop gives back (besides -1 for an error). */
enum ring_pop_result {
    RING_END = 0,    /* every producer has ended and everything was handed out */
    RING_GOT = 1,    /* *out is a fresh trajectory for training */
    RING_STALE = 2,  /* *out is too old for training: regenerate its question */
};

struct ring_stats {
    int64_t pushed;        /* producer: trajectories sent */
    int64_t popped;        /* consumer: trajectories handed out as RING_GOT */
    int64_t stale;         /* consumer: trajectories handed out as RING_STALE */
    int64_t max_in_flight; /* consumer: the most slots ever in flight (never above capacity) */
};

struct ring; /* opaque: its own communicator, my role, peers, credits, queue, pending sends */

/* Collective over comm. is_producer has one entry per rank of comm; there must be at least one
 * producer and one consumer. */
int ring_open(struct ring **r, MPI_Comm comm, const int *is_producer, const struct ring_config *cfg,
              struct mmupt_err *err);
/* Producer: send a copy of *t; blocks while no consumer has granted a credit. */
int ring_push(struct ring *r, const struct ring_traj *t, struct mmupt_err *err);
/* Producer: send a copy of *t to consumer number `consumer` (consumers are numbered 0.. in rank
 * order; -1 means any, as ring_push); blocks until that consumer grants a credit. The trainer uses
 * it so a question group always lands on the learner that owns it, whatever the timing. */
int ring_push_to(struct ring *r, int consumer, const struct ring_traj *t, struct mmupt_err *err);
/* Number of consumers (valid `consumer` arguments are 0 .. count - 1). */
int ring_consumers(const struct ring *r);
/* Producer: no more trajectories; returns once every consumer acknowledged. */
int ring_finish(struct ring *r, struct mmupt_err *err);
/* Consumer: RING_GOT, RING_STALE (both fill *out), RING_END, or -1 on error. */
int ring_pop(struct ring *r, int64_t policy_version, struct ring_traj *out, struct mmupt_err *err);
/* Consumer: call fn(ctx) between the empty polls of ring_pop, so a rank blocked there can serve
 * other non-blocking traffic (the trainer answers weight requests). NULL: none. */
void ring_set_idle(struct ring *r, void (*fn)(void *ctx), void *ctx);
void ring_get_stats(const struct ring *r, struct ring_stats *s);
int ring_is_producer(const struct ring *r);
/* Not collective; after an error it releases what it can without waiting on peers. */
void ring_close(struct ring *r);

void ring_traj_free(struct ring_traj *t);

/* Short sleep between empty polls (growing with idle_polls), so oversubscribed ranks leave the
 * cores to the busy ones. Shared with the trainer's other polled waits. */
void ring_backoff(int idle_polls);

/* Serialisation, exposed for tests. Size of the message for n tokens. */
size_t ring_wire_size(int32_t n);
void ring_wire_encode(const struct ring_traj *t, unsigned char *buf);
/* Validates len against the header (n in [0, max_tokens], exact size) before allocating. */
int ring_wire_decode(const unsigned char *buf, size_t len, int max_tokens, struct ring_traj *out,
                     struct mmupt_err *err);

#ifdef __cplusplus
}
#endif

#endif
