/* A build without CUDA has no NCCL backend: opening one fails with the reason, so no communicator
 * ever reaches the other entry points. */
#include "comm_internal.h"

int comm_nccl_open(struct comm *c, int device, struct mmupt_err *err)
{
    (void)c;
    (void)device;
    return mmupt_fail(err, "comm: this build has no CUDA/NCCL backend (rebuild with -Dcuda=enabled)");
}

int comm_nccl_allreduce(const struct comm *c, void *buf, size_t n, enum comm_dtype t)
{
    (void)c, (void)buf, (void)n, (void)t;
    return -1;
}

int comm_nccl_reduce_scatter(const struct comm *c, const float *in, float *out_shard, size_t n)
{
    (void)c, (void)in, (void)out_shard, (void)n;
    return -1;
}

int comm_nccl_reduce_range(const struct comm *c, const float *in, float *out_shard, size_t n, size_t a, size_t b)
{
    (void)c, (void)in, (void)out_shard, (void)n, (void)a, (void)b;
    return -1;
}

int comm_nccl_after_stream(const struct comm *c, void *stream)
{
    (void)c, (void)stream;
    return -1;
}

int comm_nccl_sync(const struct comm *c)
{
    (void)c;
    return -1;
}

int comm_nccl_allgather(const struct comm *c, const float *shard, float *out, size_t n)
{
    (void)c, (void)shard, (void)out, (void)n;
    return -1;
}

int comm_nccl_broadcast(const struct comm *c, void *buf, size_t bytes, int root)
{
    (void)c, (void)buf, (void)bytes, (void)root;
    return -1;
}

int comm_nccl_broadcast_start(const struct comm *c, void *buf, size_t bytes, int root)
{
    return comm_nccl_broadcast(c, buf, bytes, root);
}

void comm_nccl_free(struct comm *c) { (void)c; }
