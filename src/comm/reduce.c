/* Deterministic reductions: reduce-scatter, all-gather and all-reduce built from MPI_Alltoallv and
 * MPI_Allgatherv of blocks plus a local sum in rank order (why: include/mmupt/comm.h).
 *
 * Work proceeds in rounds. In round t every rank r moves the part of its shard
 * [lo_r + t*blk, lo_r + (t+1)*blk) clipped to its shard, so each round's counts fit an int and the
 * temporaries are 2 * P * blk elements. Blocks are packed into the send buffer at j*blk, so MPI
 * displacements stay small however large n is. A ranged reduce-scatter (the gradient buckets) works
 * on a window [a, b) of the n elements: every shard is clipped to the window first, so each element
 * is still summed by its owner, in rank order - the same bits as the whole call. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "comm_internal.h"
#include "mmupt/log.h"

/* What differs between float and double reductions. */
struct comm_elem {
    MPI_Datatype type;
    size_t bytes;
    /* out[i] = blocks[0][i] + blocks[1][i] + ... + blocks[p-1][i], added in that order. */
    void (*sum)(const void *blocks, size_t stride, int p, size_t len, void *out);
};

static void sum_f32(const void *blocks, size_t stride, int p, size_t len, void *out)
{
    const float *b = blocks;
    float *o = out;
    memcpy(o, b, len * sizeof *o);
    /* Rank-outer, element-inner: vectorises, and each element still sees x0 + x1 + ... in order. */
    for (int r = 1; r < p; r++)
        for (size_t i = 0; i < len; i++) o[i] += b[(size_t)r * stride + i];
}

static void sum_f64(const void *blocks, size_t stride, int p, size_t len, void *out)
{
    const double *b = blocks;
    double *o = out;
    memcpy(o, b, len * sizeof *o);
    for (int r = 1; r < p; r++)
        for (size_t i = 0; i < len; i++) o[i] += b[(size_t)r * stride + i];
}

static const struct comm_elem comm_f32 = {MPI_FLOAT, sizeof(float), sum_f32};
static const struct comm_elem comm_f64 = {MPI_DOUBLE, sizeof(double), sum_f64};

/* Scratch for one collective call: packed send/receive blocks and MPI's count arrays. */
struct comm_rounds {
    size_t n, a, b, blk, n_rounds; /* n elements, of which the window [a, b) moves */
    char *send, *recv;
    int *scount, *sdisp, *rcount, *rdisp;
};

static void rounds_init(struct comm_rounds *w, const struct comm *c, size_t n, size_t a, size_t b, size_t esize)
{
    MMUPT_CHECK(c->mpi != MPI_COMM_NULL && c->size > 0 && c->chunk > 0 && a <= b && b <= n);
    size_t p = (size_t)c->size, max_part = 0;
    for (int r = 0; r < c->size; r++) {
        size_t lo, hi;
        comm_shard_window(n, c->size, r, a, b, &lo, &hi);
        if (hi - lo > max_part) max_part = hi - lo;
    }
    size_t blk = c->chunk;
    if (blk > max_part) blk = max_part;
    if (blk > (size_t)INT_MAX / p) blk = (size_t)INT_MAX / p; /* displacements p*blk must fit an int */
    if (blk == 0) blk = 1;
    w->n = n;
    w->a = a;
    w->b = b;
    w->blk = blk;
    w->n_rounds = (max_part + blk - 1) / blk;
    w->send = mmupt_xmalloc(p * blk * esize);
    w->recv = mmupt_xmalloc(p * blk * esize);
    w->scount = mmupt_xmalloc(4 * p * sizeof(int));
    w->sdisp = w->scount + p;
    w->rcount = w->sdisp + p;
    w->rdisp = w->rcount + p;
}

static void rounds_free(struct comm_rounds *w)
{
    free(w->send);
    free(w->recv);
    free(w->scount);
}

/* The part [lo, hi) of rank r's shard (in the window) that moves in round t (possibly empty). */
static void round_range(const struct comm *c, const struct comm_rounds *w, int r, size_t t, size_t *lo,
                        size_t *hi)
{
    size_t slo, shi;
    comm_shard_window(w->n, c->size, r, w->a, w->b, &slo, &shi);
    size_t a = slo + t * w->blk;
    if (a > shi) a = shi;
    *lo = a;
    *hi = shi - a < w->blk ? shi : a + w->blk;
}

/* Round t of a reduce-scatter: out (this rank's round range, contiguous) = fixed-order sum. */
static int rs_round(const struct comm *c, const struct comm_elem *e, struct comm_rounds *w, const char *in,
                    size_t t, char *out)
{
    for (int j = 0; j < c->size; j++) {
        size_t lo, hi;
        round_range(c, w, j, t, &lo, &hi);
        w->scount[j] = (int)(hi - lo);
        w->sdisp[j] = (int)((size_t)j * w->blk);
        memcpy(w->send + (size_t)j * w->blk * e->bytes, in + lo * e->bytes, (hi - lo) * e->bytes);
    }
    int mine = w->scount[c->rank];
    for (int r = 0; r < c->size; r++) {
        w->rcount[r] = mine;
        w->rdisp[r] = (int)((size_t)r * w->blk);
    }
    if (MPI_Alltoallv(w->send, w->scount, w->sdisp, e->type, w->recv, w->rcount, w->rdisp, e->type, c->mpi) !=
        MPI_SUCCESS)
        return -1;
    e->sum(w->recv, w->blk, c->size, (size_t)mine, out);
    return 0;
}

/* Round t of an all-gather: every rank's round range lands at its place in out. `mine` may alias
 * out: it is only read by MPI before anything is written. */
static int ag_round(const struct comm *c, const struct comm_elem *e, struct comm_rounds *w, const char *mine,
                    size_t t, char *out)
{
    for (int r = 0; r < c->size; r++) {
        size_t lo, hi;
        round_range(c, w, r, t, &lo, &hi);
        w->rcount[r] = (int)(hi - lo);
        w->rdisp[r] = (int)((size_t)r * w->blk);
    }
    if (MPI_Allgatherv(mine, w->rcount[c->rank], e->type, w->recv, w->rcount, w->rdisp, e->type, c->mpi) !=
        MPI_SUCCESS)
        return -1;
    for (int r = 0; r < c->size; r++) {
        size_t lo, hi;
        round_range(c, w, r, t, &lo, &hi);
        memmove(out + lo * e->bytes, w->recv + (size_t)r * w->blk * e->bytes, (hi - lo) * e->bytes);
    }
    return 0;
}

/* The window [a, b)'s part of the reduce-scatter: out_shard is this rank's whole shard, of which the
 * part inside the window is written. */
static int reduce_scatter(const struct comm *c, const struct comm_elem *e, const void *in, void *out_shard,
                          size_t n, size_t a, size_t b)
{
    struct comm_rounds w;
    rounds_init(&w, c, n, a, b, e->bytes);
    size_t lo, hi, part, part_end;
    comm_shard(n, c->size, c->rank, &lo, &hi);
    comm_shard_window(n, c->size, c->rank, a, b, &part, &part_end);
    char *out = (char *)out_shard + (part - lo) * e->bytes;
    int rc = 0;
    for (size_t t = 0; t < w.n_rounds && rc == 0; t++) rc = rs_round(c, e, &w, in, t, out + t * w.blk * e->bytes);
    rounds_free(&w);
    return rc;
}

static int allgather(const struct comm *c, const struct comm_elem *e, const void *shard, void *out, size_t n)
{
    struct comm_rounds w;
    rounds_init(&w, c, n, 0, n, e->bytes);
    int rc = 0;
    for (size_t t = 0; t < w.n_rounds && rc == 0; t++)
        rc = ag_round(c, e, &w, (const char *)shard + t * w.blk * e->bytes, t, out);
    rounds_free(&w);
    return rc;
}

/* Each round reads and writes only its own ranges of buf, so in place is safe. The sums go into the
 * send buffer, which is free once the all-to-all is done. */
static int allreduce(const struct comm *c, const struct comm_elem *e, void *buf, size_t n)
{
    struct comm_rounds w;
    rounds_init(&w, c, n, 0, n, e->bytes);
    int rc = 0;
    for (size_t t = 0; t < w.n_rounds && rc == 0; t++) {
        rc = rs_round(c, e, &w, buf, t, w.send);
        if (rc == 0) rc = ag_round(c, e, &w, w.send, t, buf);
    }
    rounds_free(&w);
    return rc;
}

/* The public entry points: NCCL when the communicator has it (device buffers), MPI otherwise. Each
 * adds itself to c->counters (when set) with its payload bytes; a failed call counts too. */

static double count_start(const struct comm *c) { return c->counters ? mmupt_now() : 0; }

static int counted(const struct comm *c, enum comm_op op, size_t bytes, double t0, int rc)
{
    if (c->counters) comm_count(c->counters, op, (uint64_t)bytes, mmupt_now() - t0);
    return rc;
}

int comm_reduce_scatter_sum(const struct comm *c, const float *in, float *out_shard, size_t n)
{
    double t0 = count_start(c);
    int rc = c->nccl ? comm_nccl_reduce_scatter(c, in, out_shard, n)
                     : reduce_scatter(c, &comm_f32, in, out_shard, n, 0, n);
    return counted(c, COMM_REDUCE_SCATTER, n * sizeof(float), t0, rc);
}

int comm_reduce_scatter_range(const struct comm *c, const float *in, float *out_shard, size_t n, size_t a, size_t b)
{
    MMUPT_CHECK(a <= b && b <= n);
    double t0 = count_start(c);
    int rc = c->nccl ? comm_nccl_reduce_range(c, in, out_shard, n, a, b)
                     : reduce_scatter(c, &comm_f32, in, out_shard, n, a, b);
    return counted(c, COMM_REDUCE_SCATTER, (b - a) * sizeof(float), t0, rc);
}

int comm_after_stream(const struct comm *c, void *stream) { return c->nccl ? comm_nccl_after_stream(c, stream) : 0; }

int comm_sync(const struct comm *c) { return c->nccl ? comm_nccl_sync(c) : 0; }

int comm_allgather(const struct comm *c, const float *shard, float *out, size_t n)
{
    double t0 = count_start(c);
    int rc = c->nccl ? comm_nccl_allgather(c, shard, out, n) : allgather(c, &comm_f32, shard, out, n);
    return counted(c, COMM_ALLGATHER, n * sizeof(float), t0, rc);
}

int comm_allreduce_sum(const struct comm *c, float *buf, size_t n)
{
    double t0 = count_start(c);
    int rc = c->nccl ? comm_nccl_allreduce(c, buf, n, COMM_F32) : allreduce(c, &comm_f32, buf, n);
    return counted(c, COMM_ALLREDUCE, n * sizeof(float), t0, rc);
}

int comm_allreduce_sum_f64(const struct comm *c, double *buf, size_t n)
{
    double t0 = count_start(c);
    int rc = c->nccl ? comm_nccl_allreduce(c, buf, n, COMM_F64) : allreduce(c, &comm_f64, buf, n);
    return counted(c, COMM_ALLREDUCE, n * sizeof(double), t0, rc);
}
