/* Gradient buckets: the learners' reduce-scatter overlapped with the backward pass
 * (cluster.grad_bucket_mb > 0, the device path, several learners).
 *
 * Without them the learners wait for the whole backward, then reduce-scatter every gradient at once,
 * and the GPUs idle while NCCL moves them. With them the last micro-batch of each optimizer step
 * runs its backward with stage reports on (model_dev's grads_done): as the backward finishes a stage
 * (the final norm and lm_head, then each layer from the last, then the embedding table, then the
 * vision tower), its range is final, and once finished ranges add up to a bucket they are
 * reduce-scattered on NCCL's stream while the compute stream goes on with the next layers.
 *
 * The shards stay ZeRO-1's contiguous ranges: a bucket is a window of the flat gradient, and each
 * learner receives the part of the window inside its shard (comm_reduce_scatter_range). Every
 * learner makes the same calls in the same order, because the stages are the same on every rank and
 * the grouping depends on them alone - also on a rank whose last micro-batch had no backward (a
 * poisoned one: train_buckets_finish reports every stage for it). Over MPI (the emulator, or NCCL
 * could not start) the sums are the whole reduce-scatter's, bit for bit. */
#include <stdlib.h>
#include <string.h>

#include "mmupt/gpu.h"
#include "train_internal.h"

/* Ranges finished but not yet sent: b->r[0 .. n), ascending, none touching another. */
static void pending_add(struct grad_buckets *b, int64_t lo, int64_t hi)
{
    struct grad_range *r = b->r;
    int i = 0;
    while (i < b->n && r[i].hi < lo) i++;
    if (i < b->n && r[i].lo <= hi) { /* touches range i (and maybe the next): merge */
        if (lo < r[i].lo) r[i].lo = lo;
        if (hi > r[i].hi) r[i].hi = hi;
        while (i + 1 < b->n && r[i + 1].lo <= r[i].hi) {
            if (r[i + 1].hi > r[i].hi) r[i].hi = r[i + 1].hi;
            memmove(r + i + 1, r + i + 2, (size_t)(b->n - i - 2) * sizeof *r);
            b->n--;
        }
        return;
    }
    MMUPT_CHECK(b->n < b->cap); /* at most one range per stage */
    memmove(r + i + 1, r + i, (size_t)(b->n - i) * sizeof *r);
    r[i] = (struct grad_range){lo, hi};
    b->n++;
}

/* Send pending range i and forget it. A failure is remembered: the step fails at finish, after every
 * rank has made the same calls. */
static void send(struct trainer *tr, int i)
{
    struct grad_buckets *b = &tr->buckets;
    struct grad_range g = b->r[i];
    if (!b->failed && train_device_reduce_range(tr, (size_t)g.lo, (size_t)g.hi)) b->failed = 1;
    b->sends++;
    b->sent += g.hi - g.lo;
    memmove(b->r + i, b->r + i + 1, (size_t)(b->n - i - 1) * sizeof *b->r);
    b->n--;
}

/* model_dev's grads_done: [off, off + n) is final; send what has grown to a bucket. */
static void stage_done(void *ctx, int64_t off, int64_t n)
{
    struct trainer *tr = ctx;
    struct grad_buckets *b = &tr->buckets;
    b->reported += n;
    pending_add(b, off, off + n);
    for (int i = 0; i < b->n;)
        if (b->r[i].hi - b->r[i].lo >= b->size) send(tr, i);
        else i++;
}

void train_buckets_arm(struct trainer *tr)
{
    struct grad_buckets *b = &tr->buckets;
    double mb = tr->cfg->cluster.grad_bucket_mb;
    if (!tr->on_device || tr->learn.size < 2 || mb <= 0) return;
    train_device_shard_ready(tr); /* NCCL and the shard's buffers before the first bucket goes */
    if (!b->r) {
        b->cap = model_dev_grad_stages(&tr->dev);
        b->r = mmupt_xmalloc((size_t)b->cap * sizeof *b->r);
    }
    b->armed = 1;
    b->size = (int64_t)(mb * 1048576.0 / sizeof(float));
    if (b->size < 1) b->size = 1;
    b->n = 0;
    b->reported = b->sent = 0;
    b->failed = 0;
    tr->dev.grads_done = stage_done;
    tr->dev.grads_done_ctx = tr;
}

void train_buckets_disarm(struct trainer *tr)
{
    tr->buckets.armed = 0;
    tr->dev.grads_done = NULL;
    tr->dev.grads_done_ctx = NULL;
}

int train_buckets_finish(struct trainer *tr)
{
    struct grad_buckets *b = &tr->buckets;
    if (b->reported == 0) model_dev_grads_done_all(&tr->dev); /* no backward ran: the same calls as the others */
    MMUPT_CHECK(b->reported == tr->model.spec.total);
    while (b->n > 0) send(tr, 0);
    MMUPT_CHECK(b->sent == tr->model.spec.total); /* every gradient went in exactly one window */
    train_buckets_disarm(tr);
    if (train_device_reduce_wait(tr)) b->failed = 1;
    return b->failed ? -1 : 0;
}

void train_buckets_free(struct grad_buckets *b)
{
    free(b->r);
    memset(b, 0, sizeof *b);
}

void train_buckets_plan(const struct trainer *tr)
{
    double mb = tr->cfg->cluster.grad_bucket_mb;
    if (mb <= 0 || tr->role == TRAIN_ROLLOUT) return;
    if (!tr->on_device)
        log_warn(&tr->lg, "cluster.grad_bucket_mb=%g: only the device path (cluster.backend cuda or emulator) "
                          "reduces in buckets; these CPU learners reduce once after the backward", mb);
    else if (tr->learn.size < 2)
        log_info(&tr->lg, "cluster.grad_bucket_mb=%g: one learner, no gradients to reduce", mb);
    else
        log_info(&tr->lg, "gradient buckets of %g MiB: the reduce-scatter of %d learners overlaps the backward "
                          "pass of each optimizer step's last micro-batch (%s)",
                 mb, tr->learn.size, gpu_emulated() ? "the emulator: staged through MPI" : "NCCL when it starts");
}

void train_buckets_report(const struct trainer *tr)
{
    if (tr->buckets.sends > 0)
        log_info(&tr->lg, "gradient buckets: %lld windows reduce-scattered during backward passes",
                 tr->buckets.sends);
}
