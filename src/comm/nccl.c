/* The NCCL backend of comm.h: the same collectives on device buffers.
 *
 * Shards are comm_shard's (sizes may differ by one), which NCCL's ReduceScatter / AllGather cannot
 * express (they need equal counts), so those two are grouped point-to-root calls: one ncclReduce or
 * ncclBroadcast per shard inside ncclGroupStart/End, which NCCL schedules as one operation. Each call
 * waits for its stream, so a returned buffer is ready, as with the MPI backend. */
#include <cuda_runtime.h>
#include <nccl.h>

#include "comm_internal.h"

static ncclComm_t nc(const struct comm *c) { return (ncclComm_t)c->nccl; }
static cudaStream_t st(const struct comm *c) { return (cudaStream_t)c->stream; }

static int finish(const struct comm *c, ncclResult_t r)
{
    if (r != ncclSuccess) return -1;
    return cudaStreamSynchronize(st(c)) == cudaSuccess ? 0 : -1;
}

/* 1 on every rank if ok was 1 on every rank: collective steps agree before the next one, so a rank
 * that failed never leaves the others waiting in an NCCL call. */
static int all_ok(const struct comm *c, int ok)
{
    int all = 0;
    if (MPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_MIN, c->mpi) != MPI_SUCCESS) return 0;
    return all;
}

int comm_nccl_open(struct comm *c, int device, struct mmupt_err *err)
{
    if (c->nccl) return 0;
    struct {
        int ok;
        ncclUniqueId id;
    } msg = {0};
    if (c->rank == 0) msg.ok = ncclGetUniqueId(&msg.id) == ncclSuccess;
    if (MPI_Bcast(&msg, (int)sizeof msg, MPI_BYTE, 0, c->mpi) != MPI_SUCCESS)
        return mmupt_fail(err, "comm: broadcasting the NCCL unique id failed");
    if (!msg.ok) return mmupt_fail(err, "comm: ncclGetUniqueId failed on rank 0 (is a GPU visible there?)");
    cudaError_t ce = cudaSetDevice(device);
    cudaStream_t s = NULL;
    if (ce == cudaSuccess) ce = cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking);
    if (!all_ok(c, ce == cudaSuccess)) {
        if (s) cudaStreamDestroy(s);
        if (ce != cudaSuccess)
            return mmupt_fail(err, "comm: rank %d: device %d: %s", c->rank, device, cudaGetErrorString(ce));
        return mmupt_fail(err, "comm: another rank could not use its CUDA device; no NCCL communicator");
    }
    ncclComm_t comm = NULL;
    ncclResult_t r = ncclCommInitRank(&comm, c->size, msg.id, c->rank);
    if (!all_ok(c, r == ncclSuccess)) {
        if (r == ncclSuccess) ncclCommDestroy(comm);
        cudaStreamDestroy(s);
        if (r != ncclSuccess)
            return mmupt_fail(err, "comm: rank %d: ncclCommInitRank on device %d: %s", c->rank, device,
                              ncclGetErrorString(r));
        return mmupt_fail(err, "comm: ncclCommInitRank failed on another rank");
    }
    c->nccl = comm;
    c->stream = s;
    return 0;
}

int comm_nccl_allreduce(const struct comm *c, void *buf, size_t n, enum comm_dtype t)
{
    ncclDataType_t dt = t == COMM_F64 ? ncclFloat64 : ncclFloat32;
    return finish(c, ncclAllReduce(buf, buf, n, dt, ncclSum, nc(c), st(c)));
}

/* Queued, not waited for: the window [a, b) of each shard to its owner. */
int comm_nccl_reduce_range(const struct comm *c, const float *in, float *out_shard, size_t n, size_t a, size_t b)
{
    size_t mine, mine_end;
    comm_shard(n, c->size, c->rank, &mine, &mine_end);
    ncclResult_t r = ncclGroupStart();
    for (int p = 0; p < c->size && r == ncclSuccess; p++) {
        size_t lo, hi;
        comm_shard_window(n, c->size, p, a, b, &lo, &hi);
        if (hi > lo)
            r = ncclReduce(in + lo, p == c->rank ? out_shard + (lo - mine) : NULL, hi - lo, ncclFloat32, ncclSum, p,
                           nc(c), st(c));
    }
    ncclResult_t e = ncclGroupEnd();
    return r == ncclSuccess && e == ncclSuccess ? 0 : -1;
}

int comm_nccl_reduce_scatter(const struct comm *c, const float *in, float *out_shard, size_t n)
{
    if (comm_nccl_reduce_range(c, in, out_shard, n, 0, n)) return -1;
    return comm_nccl_sync(c);
}

/* An event is all a cross-stream dependency needs; it may be destroyed once the wait is queued. */
int comm_nccl_after_stream(const struct comm *c, void *stream)
{
    cudaEvent_t e;
    if (cudaEventCreateWithFlags(&e, cudaEventDisableTiming) != cudaSuccess) return -1;
    cudaError_t ce = cudaEventRecord(e, (cudaStream_t)stream);
    if (ce == cudaSuccess) ce = cudaStreamWaitEvent(st(c), e, 0);
    cudaEventDestroy(e);
    return ce == cudaSuccess ? 0 : -1;
}

int comm_nccl_sync(const struct comm *c) { return cudaStreamSynchronize(st(c)) == cudaSuccess ? 0 : -1; }

int comm_nccl_allgather(const struct comm *c, const float *shard, float *out, size_t n)
{
    ncclResult_t r = ncclGroupStart();
    for (int p = 0; p < c->size && r == ncclSuccess; p++) {
        size_t lo, hi;
        comm_shard(n, c->size, p, &lo, &hi);
        if (hi > lo) r = ncclBroadcast(p == c->rank ? shard : out + lo, out + lo, hi - lo, ncclFloat32, p, nc(c), st(c));
    }
    ncclResult_t e = ncclGroupEnd();
    return finish(c, r != ncclSuccess ? r : e);
}

/* Queued, not waited for. */
int comm_nccl_broadcast_start(const struct comm *c, void *buf, size_t bytes, int root)
{
    return ncclBroadcast(buf, buf, bytes, ncclChar, root, nc(c), st(c)) == ncclSuccess ? 0 : -1;
}

int comm_nccl_broadcast(const struct comm *c, void *buf, size_t bytes, int root)
{
    if (comm_nccl_broadcast_start(c, buf, bytes, root)) return -1;
    return comm_nccl_sync(c);
}

void comm_nccl_free(struct comm *c)
{
    if (!c->nccl) return;
    ncclCommDestroy(nc(c));
    cudaStreamDestroy(st(c));
    c->nccl = NULL;
    c->stream = NULL;
}
