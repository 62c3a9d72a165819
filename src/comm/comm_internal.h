/* The NCCL backend's entry points, called by comm.c and reduce.c when a communicator has one. The
 * CUDA build implements them in nccl.c; other builds link nccl_none.c, where comm_nccl_open fails
 * and so the others are never reached. Not a public header. */
#ifndef MMUPT_COMM_INTERNAL_H
#define MMUPT_COMM_INTERNAL_H

#include "mmupt/comm.h"

enum comm_dtype { COMM_F32, COMM_F64, COMM_BYTE };

int comm_nccl_allreduce(const struct comm *c, void *buf, size_t n, enum comm_dtype t);
int comm_nccl_reduce_scatter(const struct comm *c, const float *in, float *out_shard, size_t n);
int comm_nccl_reduce_range(const struct comm *c, const float *in, float *out_shard, size_t n, size_t a, size_t b);
int comm_nccl_after_stream(const struct comm *c, void *stream);
int comm_nccl_sync(const struct comm *c);
int comm_nccl_allgather(const struct comm *c, const float *shard, float *out, size_t n);
int comm_nccl_broadcast(const struct comm *c, void *buf, size_t bytes, int root);
int comm_nccl_broadcast_start(const struct comm *c, void *buf, size_t bytes, int root);
void comm_nccl_free(struct comm *c);

#endif
