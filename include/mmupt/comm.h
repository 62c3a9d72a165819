/* Collectives between ranks, behind one interface so the trainer loop does not care which backend
 * moves the bytes. A communicator starts on the MPI backend (host buffers); comm_nccl_open switches
 * it to NCCL (device buffers), after which the same calls take device pointers.
 *
 * Determinism: learner replicas must stay BITWISE identical, and results must not depend on MPI's
 * choice of reduction algorithm. So no float reduction here uses MPI_SUM: blocks are exchanged
 * (MPI_Alltoallv) and every element is summed by exactly one rank, in rank order 0..P-1
 * (s = x0; s += x1; ...), then the sums are gathered. Every rank therefore holds the same bytes,
 * equal to that serial fixed-order sum, for any P and any chunking.
 *
 * Large buffers move in rounds of at most `chunk` elements per rank: MPI counts and displacements
 * are ints, and the temporaries stay at 2 * size * chunk elements instead of the whole buffer.
 *
 * Errors: communicators use MPI_ERRORS_RETURN; collectives return 0, or -1 when MPI reports an
 * error. A failed call that needed several rounds may leave earlier rounds applied (documented per
 * function); a single-round call changes nothing on failure. */
#ifndef MMUPT_COMM_H
#define MMUPT_COMM_H

#include <mpi.h>
#include <stddef.h>
#include <stdint.h>

#include "mmupt/err.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Elements per rank per round by default: 4 Mi (16 MiB of floats). */
#define COMM_DEFAULT_CHUNK ((size_t)1 << 22)

/* What the collectives moved, per kind, so a benchmark can set measured traffic beside a model of it.
 * Bytes are the PAYLOAD as the caller sees it, not what travels on the wire (that depends on the
 * algorithm): all-reduce n * element size, reduce-scatter the whole n-float input, all-gather the
 * whole n-float output, broadcast its bytes. Seconds are wall time inside the call. */
enum comm_op { COMM_ALLREDUCE, COMM_REDUCE_SCATTER, COMM_ALLGATHER, COMM_BROADCAST, COMM_OP_COUNT };

extern const char *const comm_op_names[COMM_OP_COUNT]; /* "allreduce", "reduce_scatter", ... */

struct comm_counter {
    uint64_t calls, bytes;
    double seconds;
};

struct comm_counters {
    struct comm_counter op[COMM_OP_COUNT];
};

/* Add one call of op moving `bytes` in `seconds` to k; nothing when k is NULL. Code that calls MPI
 * directly (the trainer's non-blocking weight broadcast) counts itself with this. */
void comm_count(struct comm_counters *k, enum comm_op op, uint64_t bytes, double seconds);

struct comm {
    MPI_Comm mpi;  /* owned: a duplicate (comm_world) or a split; MPI_COMM_NULL when not a member */
    int rank, size;
    size_t chunk;  /* max elements per rank per round; must be equal on every rank (tests shrink it) */
    void *nccl;    /* ncclComm_t once comm_nccl_open succeeded: collectives then take device buffers */
    void *stream;  /* cudaStream_t the NCCL collectives run on (each call waits for it) */
    struct comm_counters *counters; /* owned by the caller; NULL (comm_world, comm_split): not counted.
                                     * Every collective but the barrier adds to it, on either backend. */
};

/* A duplicate of MPI_COMM_WORLD with MPI_ERRORS_RETURN (MPI must be initialised by the caller). */
int comm_world(struct comm *c, struct mmupt_err *err);
/* Split by role: ranks passing the same color >= 0 form one group, ordered by parent rank. A rank
 * passing a negative color joins no group: out->mpi is MPI_COMM_NULL, rank -1, size 0. Collective
 * over the parent. */
int comm_split(const struct comm *parent, int color, struct comm *out, struct mmupt_err *err);
void comm_free(struct comm *c);
/* This rank's index among the ranks of c on its node (shared memory), and their count. Collective
 * over c. */
int comm_node_rank(const struct comm *c, int *local_rank, int *local_size, struct mmupt_err *err);
/* Collective over c: make this rank's current CUDA device its node-local rank mod the visible GPUs
 * (gpu_device_for_rank in gpu.h), before anything starts on the device. What was chosen: */
struct comm_gpu {
    int local_rank, local_size; /* among c's ranks on this node */
    int count, device;          /* visible GPUs, the one taken */
    int shared;                 /* more ranks than GPUs on this node */
};
int comm_bind_gpu(const struct comm *c, struct comm_gpu *out, struct mmupt_err *err);
/* Collective over c: give c an NCCL communicator over the same ranks on CUDA device `device` (rank
 * 0 creates the unique id and broadcasts it over MPI). From then on c's reductions, all-gather and
 * broadcast take DEVICE buffers and run on c->stream, returning when the result is in place.
 *
 * NCCL's sums are not the MPI backend's rank-order sums: every rank still receives the same bits
 * (each element is reduced once, then distributed), so replicas stay identical, but the result may
 * differ in the last bits from a run with another rank count or another NCCL algorithm choice
 * (NCCL_ALGO). Fails plainly in a build without CUDA. */
int comm_nccl_open(struct comm *c, int device, struct mmupt_err *err);

/* In place over n elements; every rank ends with the same bytes (fixed-order sum). On an error in
 * a later round, earlier rounds' elements are already reduced. */
int comm_allreduce_sum(const struct comm *c, float *buf, size_t n);
int comm_allreduce_sum_f64(const struct comm *c, double *buf, size_t n);
/* in: n elements on every rank; out_shard: this rank's comm_shard range [lo, hi), summed. */
int comm_reduce_scatter_sum(const struct comm *c, const float *in, float *out_shard, size_t n);
/* One piece of a reduce-scatter: the window [a, b) of the n elements. out_shard is this rank's
 * whole shard ([lo, hi) of n); its part inside the window receives the sums, the rest is left alone.
 * The pieces of any partition of [0, n) together give comm_reduce_scatter_sum's result - bit for bit
 * on the MPI backend (each element is still summed by its owner in rank order). Every rank must make
 * the same calls with the same windows, in the same order. NCCL: queued on c->stream behind what
 * comm_after_stream named, and it returns BEFORE the sums are there (comm_sync waits); MPI: done on
 * return. Counted as a reduce-scatter of (b - a) floats (NCCL: the seconds are the queueing's). */
int comm_reduce_scatter_range(const struct comm *c, const float *in, float *out_shard, size_t n, size_t a, size_t b);
/* NCCL: the collectives queued on c from now on start only after the work already queued on
 * `stream` (a cudaStream_t of c's device) - how a collective overlaps compute without the host
 * waiting. MPI: nothing to do. 0, or -1 when CUDA fails. */
int comm_after_stream(const struct comm *c, void *stream);
/* NCCL: wait until every collective queued on c is done. MPI: nothing to do. 0, or -1. */
int comm_sync(const struct comm *c);
/* shard: this rank's [lo, hi) of n; out: all n. shard may point into out at lo (in place). */
int comm_allgather(const struct comm *c, const float *shard, float *out, size_t n);
int comm_broadcast(const struct comm *c, void *buf, size_t bytes, int root);
/* comm_broadcast that need not be waited for: NCCL queues it on c->stream (behind what
 * comm_after_stream named) and returns before the bytes are there - comm_sync waits, and buf must
 * stay untouched until then; MPI: done on return. Counted as a broadcast (NCCL: the queueing's
 * seconds). */
int comm_broadcast_start(const struct comm *c, void *buf, size_t bytes, int root);
int comm_barrier(const struct comm *c);

/* The contiguous range [lo, hi) of n elements that rank r owns (sizes differ by at most 1). */
void comm_shard(size_t n, int size, int r, size_t *lo, size_t *hi);
/* That shard clipped to the window [a, b): what comm_reduce_scatter_range writes on rank r (empty:
 * lo == hi). */
void comm_shard_window(size_t n, int size, int r, size_t a, size_t b, size_t *lo, size_t *hi);

/* ---- variable-length records to rank 0 (src/comm/gather.c) ----
 * A rank packs its result into a comm_buf, comm_gather_bytes brings every rank's record to rank 0,
 * and rank 0 takes each apart with a comm_reader. Records travel between our own ranks, so a short
 * one is a bug (fatal), not bad input. */
struct comm_buf {
    char *p;       /* malloc'd; NULL while empty */
    size_t n, cap;
};
/* Append n bytes of x (grows the buffer; dies when memory runs out). */
void comm_buf_put(struct comm_buf *b, const void *x, size_t n);
void comm_buf_free(struct comm_buf *b);

struct comm_reader {
    const char *p, *end;
};
/* Copy the next n bytes to x; fatal when fewer than n are left. */
void comm_reader_get(struct comm_reader *r, void *x, size_t n);

/* Collective over c: rank 0 receives every rank's n bytes at `mine`, in *all back to back in rank
 * order (malloc'd, never NULL there), and in *lens each rank's length (malloc'd, c->size entries);
 * on other ranks both are NULL. The sizes travel first: records adding up to more than one MPI
 * message carries (INT_MAX bytes) fail with an error on EVERY rank, and nobody is left waiting.
 * -1 and an error on an MPI failure. */
int comm_gather_bytes(const struct comm *c, const void *mine, size_t n, char **all, size_t **lens,
                      struct mmupt_err *err);
/* comm_gather_bytes of mine's bytes, then mine is freed (every rank) and, on rank 0,
 * merge(ctx, all, lens, c->size) reads the records (freed after it returns). */
typedef void (*comm_merge_fn)(void *ctx, const char *all, const size_t *lens, int size);
int comm_gather_records(const struct comm *c, struct comm_buf *mine, comm_merge_fn merge, void *ctx,
                        struct mmupt_err *err);

#ifdef __cplusplus
}
#endif

#endif
