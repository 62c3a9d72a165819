/* ZeRO-1 AdamW (see include/mmupt/optim.h for the update and the sharding). */
#include <math.h>
#include <stdlib.h>

#include "mmupt/kernels.h"
#include "mmupt/optim.h"

void optim_init(struct optim *o, size_t n_params, int rank, int size)
{
    *o = (struct optim){.n = n_params, .rank = rank, .size = size};
    comm_shard(n_params, size, rank, &o->lo, &o->hi);
    size_t k = o->hi - o->lo;
    /* +1: a rank may own nothing when n < size, and calloc(0) may return NULL. */
    o->m = mmupt_xcalloc(k + 1, sizeof(float));
    o->v = mmupt_xcalloc(k + 1, sizeof(float));
    o->gbuf = mmupt_xcalloc(k + 1, sizeof(float));
}

void optim_free(struct optim *o)
{
    free(o->m);
    free(o->v);
    free(o->gbuf);
    *o = (struct optim){0};
}

/* Global norm of the averaged gradient. Every rank gets the same bits (deterministic all-reduce of
 * the per-shard sums), so every rank takes the same skip/clip decision. */
static int global_norm(const struct optim *o, const struct comm *c, double inv_p, double *norm)
{
    double ss = sumsq_cpu(o->gbuf, (long)(o->hi - o->lo), inv_p);
    if (comm_allreduce_sum_f64(c, &ss, 1) != 0) return -1;
    *norm = sqrt(ss);
    return 0;
}

int optim_clip_scale(const struct optim_config *cfg, double norm, double *scale)
{
    *scale = cfg->clip_grad_norm > 0 && norm > cfg->clip_grad_norm ? cfg->clip_grad_norm / norm : 1.0;
    return isfinite(norm);
}

int optim_step(struct optim *o, const struct comm *c, const struct optim_config *cfg, double lr, float *params,
               const float *grads, double *grad_norm)
{
    MMUPT_CHECK(c->rank == o->rank && c->size == o->size);
    if (comm_reduce_scatter_sum(c, grads, o->gbuf, o->n) != 0) return -1;
    const double inv_p = 1.0 / (double)c->size;
    double norm;
    if (global_norm(o, c, inv_p, &norm) != 0) return -1;
    *grad_norm = norm;
    double scale;
    if (!optim_clip_scale(cfg, norm, &scale)) return 1;
    o->t++;
    adamw_update_cpu(params + o->lo, o->gbuf, o->m, o->v, (long)(o->hi - o->lo), lr, cfg->beta1, cfg->beta2, cfg->eps,
                     cfg->weight_decay, inv_p * scale, o->t);
    return comm_allgather(c, params + o->lo, params, o->n) == 0 ? 0 : -1;
}

int optim_step_device(struct optim *o, const struct optim_config *cfg, double lr, float *params, const float *grads,
                      float *m, float *v, void *stream, double *grad_norm)
{
    MMUPT_CHECK(o->size == 1 && o->lo == 0 && o->hi == o->n);
    /* optim_step with one learner: its reduce-scatter, all-reduce and all-gather are identities. */
    double norm = sqrt(sumsq_cuda(grads, (long)o->n, 1.0, stream));
    *grad_norm = norm;
    double scale;
    if (!optim_clip_scale(cfg, norm, &scale)) return 1;
    o->t++;
    adamw_update_cuda(params, grads, m, v, (long)o->n, lr, cfg->beta1, cfg->beta2, cfg->eps, cfg->weight_decay, scale,
                      o->t, stream);
    return 0;
}

double optim_lr(double peak, int schedule, double warmup_ratio, int64_t step, int64_t total)
{
    int64_t warmup = (int64_t)(warmup_ratio * (double)total);
    if (step < warmup) return peak * (double)step / (double)warmup;
    if (schedule == 0) return peak;
    int64_t span = total - warmup > 1 ? total - warmup : 1;
    double progress = (double)(step - warmup) / (double)span;
    if (progress > 1.0) progress = 1.0; /* past the end: stay at 0, do not climb the next cosine */
    double f = 0.5 * (1.0 + cos(M_PI * progress));
    return peak * f;
}
