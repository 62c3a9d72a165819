/* AdamW with ZeRO-1 sharding over fp32 master weights.
 *
 * Every learner holds the full fp32 parameter buffer (the flat buffer of struct model_spec) but
 * only the Adam moments of its own comm_shard range [lo, hi): gradients are reduce-scattered, each
 * rank updates its shard, and the shards are all-gathered so every learner again holds identical
 * full parameters. The collectives are deterministic (mmupt/comm.h), so replicas stay bitwise equal.
 *
 * Numerics follow torch.optim.AdamW (amsgrad off), computed in double per element and stored fp32
 * (parameters and moments both, as PyTorch keeps fp32 state for fp32 parameters):
 *   m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;  p *= 1 - lr wd;
 *   p -= lr * (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps)
 */
#ifndef MMUPT_OPTIM_H
#define MMUPT_OPTIM_H

#include <stddef.h>
#include <stdint.h>

#include "mmupt/comm.h"

#ifdef __cplusplus
extern "C" {
#endif

struct optim_config {
    double lr, beta1, beta2, eps, weight_decay, clip_grad_norm;
};

struct optim {
    size_t n;        /* length of the full flat parameter buffer */
    size_t lo, hi;   /* this rank's shard */
    int rank, size;  /* the learner communicator this state was sharded for */
    float *m, *v;    /* moments of the shard, hi - lo each */
    float *gbuf;     /* the shard's summed gradient (workspace) */
    int64_t t;       /* applied steps (skipped steps do not count) */
};

void optim_init(struct optim *o, size_t n_params, int rank, int size);
void optim_free(struct optim *o);

/* One step: grads (full, length n, not modified) are summed across learners by reduce-scatter and
 * divided by the learner count (average); the global grad norm comes from the shards (all-reduce
 * of the shard's sum of squares, in f64) and is clipped (scale = clip/norm when norm > clip; clip
 * 0 = off). A non-finite norm skips the update: returns 1, params, moments and step count
 * untouched. Otherwise AdamW on the local shard of params, then all-gather. cfg->lr is not used:
 * lr is passed per step (the schedule lives outside). *grad_norm receives the pre-clip norm.
 * Returns 0 on an applied step, 1 on a skipped step, -1 on a comm error (params untouched unless
 * the final all-gather is what failed). */
int optim_step(struct optim *o, const struct comm *c, const struct optim_config *cfg, double lr, float *params,
               const float *grads, double *grad_norm);

/* The update rule's gate, shared by every optimizer step (host, device, sharded device): 0 when the
 * global norm is not finite (skip the update), else 1 with *scale the clip factor (clip/norm when
 * norm > clip, clip 0 = off; 1 otherwise). */
int optim_clip_scale(const struct optim_config *cfg, double norm, double *scale);

/* optim_step for a single learner with its state on the device (include/mmupt/gpu_mem.h): params,
 * grads, m and v are device arrays of o->n floats (o->m and o->v are then not used), stream the
 * device context's. The same norm, skip, clip and update as optim_step - on the device emulator
 * bitwise the same. Returns 0 or 1 (skipped: non-finite norm). */
int optim_step_device(struct optim *o, const struct optim_config *cfg, double lr, float *params, const float *grads,
                      float *m, float *v, void *stream, double *grad_norm);

/* Learning rate after `step` applied steps (0-based, as transformers' LambdaLR) of `total`:
 * linear warmup over floor(warmup_ratio * total) steps from 0 to peak, then schedule 0 (constant)
 * stays at peak and schedule 1 (cosine) falls as 0.5 (1 + cos(pi * progress)) to 0 at total. */
double optim_lr(double peak, int schedule, double warmup_ratio, int64_t step, int64_t total);

#ifdef __cplusplus
}
#endif

#endif
