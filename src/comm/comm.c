/* Communicators (world, role splits), sharding, traffic counters, and the collectives that need no
 * arithmetic: broadcast and barrier. The reductions live in reduce.c. */
#include <limits.h>

#include "comm_internal.h"
#include "mmupt/gpu.h"
#include "mmupt/log.h"

const char *const comm_op_names[COMM_OP_COUNT] = {"allreduce", "reduce_scatter", "allgather", "broadcast"};

void comm_count(struct comm_counters *k, enum comm_op op, uint64_t bytes, double seconds)
{
    if (!k) return;
    k->op[op].calls++;
    k->op[op].bytes += bytes;
    k->op[op].seconds += seconds;
}

static int comm_fill(struct comm *c, MPI_Comm mpi, size_t chunk, struct mmupt_err *err)
{
    /* Return codes instead of aborting: the caller decides, and a failed collective can be reported
     * with context instead of MPI's default abort. */
    if (MPI_Comm_set_errhandler(mpi, MPI_ERRORS_RETURN) != MPI_SUCCESS ||
        MPI_Comm_rank(mpi, &c->rank) != MPI_SUCCESS || MPI_Comm_size(mpi, &c->size) != MPI_SUCCESS) {
        MPI_Comm_free(&mpi);
        return mmupt_fail(err, "comm: cannot query the new communicator");
    }
    c->mpi = mpi;
    c->chunk = chunk;
    c->nccl = c->stream = NULL; /* the MPI backend until comm_nccl_open */
    c->counters = NULL;         /* the owner of a communicator decides whether it is counted */
    return 0;
}

int comm_world(struct comm *c, struct mmupt_err *err)
{
    int inited = 0;
    MPI_Initialized(&inited);
    if (!inited) return mmupt_fail(err, "comm: MPI is not initialised (call MPI_Init first)");
    /* A duplicate, so our error handler and traffic never touch the caller's MPI_COMM_WORLD. */
    MPI_Comm dup;
    if (MPI_Comm_dup(MPI_COMM_WORLD, &dup) != MPI_SUCCESS) return mmupt_fail(err, "comm: MPI_Comm_dup failed");
    return comm_fill(c, dup, COMM_DEFAULT_CHUNK, err);
}

int comm_split(const struct comm *parent, int color, struct comm *out, struct mmupt_err *err)
{
    MPI_Comm sub;
    int rc = MPI_Comm_split(parent->mpi, color < 0 ? MPI_UNDEFINED : color, parent->rank, &sub);
    if (rc != MPI_SUCCESS) return mmupt_fail(err, "comm: MPI_Comm_split (color %d) failed", color);
    if (sub == MPI_COMM_NULL) {
        *out = (struct comm){.mpi = MPI_COMM_NULL, .rank = -1, .size = 0, .chunk = parent->chunk};
        return 0;
    }
    return comm_fill(out, sub, parent->chunk, err);
}

int comm_node_rank(const struct comm *c, int *local_rank, int *local_size, struct mmupt_err *err)
{
    MPI_Comm node;
    if (MPI_Comm_split_type(c->mpi, MPI_COMM_TYPE_SHARED, c->rank, MPI_INFO_NULL, &node) != MPI_SUCCESS)
        return mmupt_fail(err, "comm: MPI_Comm_split_type (the ranks of this node) failed");
    MPI_Comm_rank(node, local_rank);
    MPI_Comm_size(node, local_size);
    MPI_Comm_free(&node);
    return 0;
}

int comm_bind_gpu(const struct comm *c, struct comm_gpu *out, struct mmupt_err *err)
{
    struct gpu_info gi;
    gpu_query(&gi);
    out->count = gi.device_count;
    if (comm_node_rank(c, &out->local_rank, &out->local_size, err)) return -1;
    out->device = gpu_device_for_rank(out->local_rank, out->local_size, out->count, &out->shared);
    return gpu_use_device(out->device, err);
}

void comm_free(struct comm *c)
{
    if (c->nccl) comm_nccl_free(c);
    if (c->mpi != MPI_COMM_NULL) MPI_Comm_free(&c->mpi);
    c->mpi = MPI_COMM_NULL;
    c->rank = -1;
    c->size = 0;
}

void comm_shard(size_t n, int size, int r, size_t *lo, size_t *hi)
{
    MMUPT_CHECK(size > 0 && r >= 0 && r < size);
    size_t p = (size_t)size, base = n / p, rem = n % p, ur = (size_t)r;
    /* The first `rem` ranks take one extra element. */
    *lo = ur * base + (ur < rem ? ur : rem);
    *hi = *lo + base + (ur < rem ? 1 : 0);
}

void comm_shard_window(size_t n, int size, int r, size_t a, size_t b, size_t *lo, size_t *hi)
{
    comm_shard(n, size, r, lo, hi);
    if (*lo < a) *lo = a;
    if (*hi > b) *hi = b;
    if (*hi < *lo) *hi = *lo;
}

static int broadcast(const struct comm *c, void *buf, size_t bytes, int root)
{
    if (c->nccl) return comm_nccl_broadcast(c, buf, bytes, root);
    /* MPI counts are ints: send in pieces of at most 1 GiB. */
    const size_t piece = (size_t)1 << 30;
    for (size_t off = 0; off < bytes; off += piece) {
        size_t k = bytes - off < piece ? bytes - off : piece;
        if (MPI_Bcast((char *)buf + off, (int)k, MPI_BYTE, root, c->mpi) != MPI_SUCCESS) return -1;
    }
    return 0;
}

static int counted_broadcast(const struct comm *c, void *buf, size_t bytes, int root, int wait)
{
    double t0 = c->counters ? mmupt_now() : 0;
    int rc = c->nccl && !wait ? comm_nccl_broadcast_start(c, buf, bytes, root) : broadcast(c, buf, bytes, root);
    if (c->counters) comm_count(c->counters, COMM_BROADCAST, bytes, mmupt_now() - t0);
    return rc;
}

int comm_broadcast(const struct comm *c, void *buf, size_t bytes, int root)
{
    return counted_broadcast(c, buf, bytes, root, 1);
}

int comm_broadcast_start(const struct comm *c, void *buf, size_t bytes, int root)
{
    return counted_broadcast(c, buf, bytes, root, 0);
}

int comm_barrier(const struct comm *c)
{
    return MPI_Barrier(c->mpi) == MPI_SUCCESS ? 0 : -1;
}
