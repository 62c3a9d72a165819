/* The trainer's model compute on the device: cluster.backend=cuda (a CUDA build on a GPU node) or
 * emulator (a CPU-only build: the same code path on the device emulator, src/gpu/mem_emu.c, which
 * is how CI checks that a run on the device path equals the CPU run bit for bit).
 *
 * What runs there: every forward, log-probability and backward pass of the learner, the rollout's
 * prefill, decode and sampling, and the optimizer step (ZeRO-1: the shard's moments, gradient, norm
 * and AdamW update on the device; the learners' reduce-scatter and all-gather over NCCL on device
 * buffers, or staged through host buffers over MPI where NCCL is absent - the emulator). The new
 * weights reach the host lazily (train_host_weights), when checkpoints, weight broadcasts to rollout
 * ranks, snapshots or the final checksum read them - not after every step.
 *
 * The device holds up to three weight sets: the current weights (tr->model.params; re-uploaded
 * lazily after train_weights_changed), the frozen reference of the KL term (uploaded once) and one
 * older snapshot for behaviour log-probs (uploaded on use). */
#include <math.h>
#include <string.h>

#include "mmupt/gpu.h"
#include "mmupt/kernels.h"
#include "train_internal.h"

/* Which backend this run uses: 1 for the device, 0 for the CPU, -1 with err for an impossible ask. */
static int pick(struct trainer *tr, struct mmupt_err *err)
{
    int on = gpu_backend_resolve(tr->cfg->cluster.backend, err);
    if (on < 0) {
        const struct cfg_field *f = cfg_find("cluster.backend");
        mmupt_err_prefix(err, "cluster.backend=%s", cfg_enum_name(f, tr->cfg->cluster.backend));
        return -1;
    }
    if (on && gpu_emulated())
        log_warn(&tr->lg, "cluster.backend=emulator: the GPU code path on the CPU's device emulator (a test tool, "
                          "several times slower than cluster.backend=cpu)");
    return on;
}

int train_device_pick(struct trainer *tr, struct mmupt_err *err)
{
    int on = pick(tr, err);
    if (on < 0) return -1;
    tr->on_device = on;
    return 0;
}

/* The bf16 blocks' attention as the device's switches chose it (MMUPT_ATTENTION, src/gpu/tuning.c),
 * for the start-up lines: a run's log says which path its numbers came from. */
static const char *attention_said(const struct gpu_tuning *t)
{
    if (t->cudnn_attention) return "cuDNN's fused SDPA (MMUPT_ATTENTION=cudnn; a shape cuDNN refuses: cuBLAS)";
    if (t->flash_attention) return "the fused kernels (MMUPT_ATTENTION=flash)";
    return "cuBLAS GEMMs around softmax kernels (MMUPT_ATTENTION=cublas)";
}

int train_device_open(struct trainer *tr, struct mmupt_err *err)
{
    if (!tr->on_device) return 0;
    struct comm_gpu bound = {.local_size = 1, .count = 1};
    if (!gpu_emulated()) { /* each rank on its own GPU where the node shows several */
        if (comm_bind_gpu(&tr->world, &bound, err)) return -1;
        if (bound.shared)
            log_warn(&tr->lg, "%d ranks on this node share %d GPU(s): launch/mmupt-run --gpus-per-node binds one "
                              "rank per GPU", bound.local_size, bound.count);
    }
    if (gpu_ctx_init(&tr->gpu, err)) return -1;
    model_dev_init(&tr->dev, &tr->model, &tr->gpu);
    tr->dev.recompute = tr->cfg->model.gradient_checkpointing;
    tr->dev.logit_chunk = tr->cfg->model.logit_chunk;
    tr->dev.graphs = tr->dev.graphs && tr->cfg->rollout.cuda_graphs;
    int bf16 = tr->cfg->model.dtype == DTYPE_BF16;
    model_dev_set_bf16(&tr->dev, bf16);
    tr->dev_current = tr->dev.params;
    tr->dev16_current = tr->dev.params_bf16;
    tr->dev_stale = 0;
    const char *what = bf16 ? "bf16 GEMMs on fp32 master weights" : "fp32";
    if (gpu_emulated()) {
        log_info(&tr->lg, "device: the emulator, %s", what);
    } else {
        struct gpu_info gi;
        gpu_query(&gi);
        log_info(&tr->lg, "device: %s (CUDA device %d of %d, node-local rank %d), %s: model passes, rollout "
                          "decoding and sampling, and the optimizer step", gi.device_name, tr->gpu.device, bound.count,
                 bound.local_rank, what);
    }
    if (bf16) log_info(&tr->lg, "device: attention through %s", attention_said(&tr->gpu.tuning));
    return 0;
}

void train_device_close(struct trainer *tr)
{
    if (!tr->on_device || !tr->dev_current) return;
    tr->dev.params = tr->dev_current; /* the buffers model_dev_free owns */
    tr->dev.params_bf16 = tr->dev16_current;
    gpu_free(&tr->gpu, tr->dev_ref);
    gpu_free(&tr->gpu, tr->dev_other);
    gpu_free(&tr->gpu, tr->dev16_ref);
    gpu_free(&tr->gpu, tr->dev16_other);
    gpu_free(&tr->gpu, tr->dev_m);
    gpu_free(&tr->gpu, tr->dev_v);
    gpu_free(&tr->gpu, tr->dev_gbuf);
    if (tr->learn_dev_split) comm_free(&tr->learn_dev);
    if (tr->wbc.dev_split) comm_free(&tr->wbc.dev);
    train_buckets_free(&tr->buckets);
    model_dev_free(&tr->dev);
    gpu_ctx_free(&tr->gpu);
    tr->dev_current = tr->dev_ref = tr->dev_other = tr->dev_m = tr->dev_v = tr->dev_gbuf = NULL;
    tr->dev16_current = tr->dev16_ref = tr->dev16_other = NULL;
}

void train_weights_changed(struct trainer *tr)
{
    tr->host_stale = 0; /* the host was just written: it is the newer copy */
    tr->dev_stale = 1;
    tr->dev_opt_stale = 1; /* a restore also brings moments: the device's are older */
}

void train_host_weights(struct trainer *tr)
{
    if (!tr->host_stale) return;
    gpu_download(&tr->gpu, tr->model.params, tr->dev_current, train_weight_bytes(tr));
    tr->host_stale = 0;
}

void train_device_pull_optim(struct trainer *tr)
{
    if (!tr->dev_m || !tr->host_opt_stale) return;
    size_t bytes = (tr->opt.hi - tr->opt.lo) * sizeof(float);
    gpu_download(&tr->gpu, tr->opt.m, tr->dev_m, bytes);
    gpu_download(&tr->gpu, tr->opt.v, tr->dev_v, bytes);
    tr->host_opt_stale = 0;
}

/* The shard's moments on the device: allocated on first use, uploaded after a restore. */
static void moments_ready(struct trainer *tr)
{
    const struct gpu_ctx *g = &tr->gpu;
    size_t k = tr->opt.hi - tr->opt.lo, bytes = k * sizeof(float);
    if (!tr->dev_m) {
        tr->dev_m = gpu_alloc_floats(g, (long long)k);
        tr->dev_v = gpu_alloc_floats(g, (long long)k);
        tr->dev_gbuf = tr->learn.size > 1 ? gpu_alloc_floats(g, (long long)k) : NULL;
        tr->dev_opt_stale = 1;
    }
    if (tr->dev_opt_stale) {
        gpu_upload(g, tr->dev_m, tr->opt.m, bytes);
        gpu_upload(g, tr->dev_v, tr->opt.v, bytes);
        tr->dev_opt_stale = 0;
    }
}

/* One learner, on the device: the step (the host copy of the new weights is left stale: lazy). */
static int step_one(struct trainer *tr, const struct optim_config *oc, double lr, double *norm)
{
    const struct gpu_ctx *g = &tr->gpu;
    int res = optim_step_device(&tr->opt, oc, lr, tr->dev_current, tr->dev.grads, tr->dev_m, tr->dev_v, g->stream,
                                norm);
    if (res == 0) tr->host_stale = 1;
    return res;
}

/* The learners' collectives on device buffers: NCCL when tr->learn_dev has it, else staged through
 * the host buffers over tr->learn's MPI (the emulator; or NCCL could not start): the same sums as
 * the host optimizer's, so on the emulator bitwise the CPU run. */
int train_device_reduce_range(struct trainer *tr, size_t a, size_t b)
{
    const struct gpu_ctx *g = &tr->gpu;
    size_t n = tr->opt.n, lo = tr->opt.lo, x, y;
    if (tr->learn_dev.nccl) { /* after the kernels that wrote these gradients, without a host wait */
        if (comm_after_stream(&tr->learn_dev, g->stream)) return -1;
        return comm_reduce_scatter_range(&tr->learn_dev, tr->dev.grads, tr->dev_gbuf, n, a, b);
    }
    gpu_download(g, tr->model.grads + a, tr->dev.grads + a, (b - a) * sizeof(float));
    if (comm_reduce_scatter_range(&tr->learn, tr->model.grads, tr->opt.gbuf, n, a, b)) return -1;
    comm_shard_window(n, tr->opt.size, tr->opt.rank, a, b, &x, &y); /* the window's part of this shard */
    if (y > x) gpu_upload(g, tr->dev_gbuf + (x - lo), tr->opt.gbuf + (x - lo), (y - x) * sizeof(float));
    return 0;
}

int train_device_reduce_wait(struct trainer *tr) { return tr->learn_dev.nccl ? comm_sync(&tr->learn_dev) : 0; }

/* All-gather of the updated shard into d_params (the host copy: fresh when staged, else lazy). */
static int dev_allgather(struct trainer *tr, float *d_params)
{
    const struct gpu_ctx *g = &tr->gpu;
    size_t n = tr->opt.n, lo = tr->opt.lo, k = tr->opt.hi - lo;
    if (tr->learn_dev.nccl) {
        gpu_sync(g);
        if (comm_allgather(&tr->learn_dev, d_params + lo, d_params, n)) return -1;
        tr->host_stale = 1;
        return 0;
    }
    gpu_download(g, tr->model.params + lo, d_params + lo, k * sizeof(float));
    if (comm_allgather(&tr->learn, tr->model.params + lo, tr->model.params, n)) return -1;
    gpu_upload(g, d_params, tr->model.params, n * sizeof(float));
    return 0;
}

/* NCCL over the learners, once, on first use (CUDA builds); every learner falls back to the staged
 * collectives together when it cannot start (comm_nccl_open agrees across ranks). */
static void learn_dev_open(struct trainer *tr)
{
    if (tr->learn_dev_tried) return;
    tr->learn_dev_tried = 1;
    struct mmupt_err err;
    if (gpu_emulated()) return;
    if (comm_split(&tr->learn, 0, &tr->learn_dev, &err)) {
        log_warn(&tr->lg, "learners: %s: gradients and weights go through host buffers", err.msg);
        return;
    }
    tr->learn_dev_split = 1;
    tr->learn_dev.counters = &tr->learn_counters;
    /* Opened at the first sharded step, after a whole pass has grown the pool: NCCL allocates outside
     * it, so give back what the pool keeps first. */
    gpu_release_cached(&tr->gpu);
    if (comm_nccl_open(&tr->learn_dev, tr->gpu.device, &err))
        log_warn(&tr->lg, "learners: no NCCL communicator (%s): gradients and weights go through host buffers",
                 err.msg);
}

void train_device_shard_ready(struct trainer *tr)
{
    learn_dev_open(tr);
    moments_ready(tr);
}

/* The whole gradient's reduce-scatter, unless the buckets sent it during the backward. */
static int reduce_grads(struct trainer *tr)
{
    if (tr->buckets.armed) return train_buckets_finish(tr);
    if (train_device_reduce_range(tr, 0, tr->opt.n)) return -1;
    return train_device_reduce_wait(tr);
}

/* Several learners, on the device: optim_step's ZeRO-1 step with the shard's moments, gradient and
 * update there. A poisoned rank's NaN reaches every rank through the norm, not a gradient (which
 * may have left in a bucket before the poison was known). */
static int step_sharded(struct trainer *tr, const struct optim_config *oc, double lr, int poisoned, double *norm)
{
    struct optim *o = &tr->opt;
    learn_dev_open(tr);
    if (reduce_grads(tr)) return -1;
    const double inv_p = 1.0 / (double)tr->learn.size;
    long k = (long)(o->hi - o->lo);
    double ss = sumsq_cuda(tr->dev_gbuf, k, inv_p, tr->gpu.stream);
    if (poisoned) ss = NAN;
    if (comm_allreduce_sum_f64(&tr->learn, &ss, 1)) return -1;
    *norm = sqrt(ss);
    double scale;
    if (!optim_clip_scale(oc, *norm, &scale)) return 1;
    o->t++;
    adamw_update_cuda(tr->dev_current + o->lo, tr->dev_gbuf, tr->dev_m, tr->dev_v, k, lr, oc->beta1, oc->beta2, oc->eps,
                      oc->weight_decay, inv_p * scale, o->t, tr->gpu.stream);
    return dev_allgather(tr, tr->dev_current) ? -1 : 0;
}

/* The bf16 copy of the selected weight set, which is weight version `version` (-1: the KL reference):
 * rounded to nearest, or - model.bf16_rounding = stochastic, versions after the initial weights -
 * stochastically with bits keyed by (run.seed, version), so every rank and a resumed run derive the
 * same copy from the same fp32 weights. */
static void round_set(struct trainer *tr, int64_t version)
{
    if (tr->cfg->model.bf16_rounding == BF16_STOCHASTIC && version > 0)
        model_dev_params_changed_sr(&tr->dev, train_mix_seed((uint64_t)tr->cfg->run.seed ^ 0x62663136u /* "bf16" */,
                                                             (uint64_t)version));
    else
        model_dev_params_changed(&tr->dev);
}

/* Everything of the optimizer on the device: the moments, the update, the gradient collectives. */
static int step_on_device(struct trainer *tr, const struct optim_config *oc, double lr, int poisoned, double *norm)
{
    moments_ready(tr);
    (void)model_dev_grads(&tr->dev); /* complete them: tensors no backward wrote are zeroed now */
    if (poisoned && tr->learn.size == 1) { /* several learners: step_sharded poisons the norm */
        const float nan = NAN;
        gpu_upload(&tr->gpu, tr->dev.grads, &nan, sizeof nan);
    }
    train_device_use(tr, tr->model.params);
    int res = tr->learn.size == 1 ? step_one(tr, oc, lr, norm) : step_sharded(tr, oc, lr, poisoned, norm);
    if (res == 0) tr->host_opt_stale = 1;
    /* The bf16 copy of the new version (tr->step + 1; a skipped step's weights are the old ones, but
     * a stochastic copy is keyed by the version, as a resumed run or a rollout rank makes it). */
    if (res == 0 || (res == 1 && tr->cfg->model.bf16_rounding == BF16_STOCHASTIC)) round_set(tr, tr->step + 1);
    return res;
}

int train_optim_step(struct trainer *tr, const struct optim_config *oc, double lr, int poisoned, double *norm)
{
    if (tr->on_device) return step_on_device(tr, oc, lr, poisoned, norm);
    if (poisoned) tr->model.grads[0] = NAN;
    return optim_step(&tr->opt, &tr->learn, oc, lr, tr->model.params, tr->model.grads, norm);
}

/* Make (f32, bf16) the device model's weights: set bf16 is NULL in fp32 runs. */
static void select_set(struct trainer *tr, float *f32, uint16_t *bf16)
{
    tr->dev.params = f32;
    tr->dev.params_bf16 = bf16;
}

/* Upload a whole weight set, weight version `version` (-1: the KL reference), into *buf (allocated on
 * first use), select it and derive its bf16 copy (*buf16, allocated on first use in bf16 runs). */
static void upload_set(struct trainer *tr, float **buf, uint16_t **buf16, const float *src, int64_t version)
{
    int64_t n = tr->model.spec.total;
    if (!*buf) *buf = gpu_alloc_floats(&tr->gpu, n);
    if (tr->dev16_current && !*buf16) *buf16 = gpu_alloc(&tr->gpu, (size_t)n * sizeof **buf16);
    gpu_upload(&tr->gpu, *buf, src, (size_t)n * sizeof(float));
    select_set(tr, *buf, *buf16);
    round_set(tr, version);
}

/* The version of a snapshot's weights (the off-policy sets), -1 when params is none of them. */
static int64_t snap_version(const struct trainer *tr, const float *params)
{
    for (int i = 0; i < tr->n_snaps; i++)
        if (tr->snaps[i].w == params) return tr->snaps[i].version;
    return -1;
}

void train_device_use(struct trainer *tr, const float *params)
{
    if (!tr->on_device) return;
    if (params == tr->model.params) {
        if (tr->dev_stale) upload_set(tr, &tr->dev_current, &tr->dev16_current, params, tr->version);
        tr->dev_stale = 0;
        select_set(tr, tr->dev_current, tr->dev16_current);
    } else if (params == tr->ref_params) {
        if (!tr->dev_ref) upload_set(tr, &tr->dev_ref, &tr->dev16_ref, params, -1); /* frozen: once */
        select_set(tr, tr->dev_ref, tr->dev16_ref);
    } else {
        upload_set(tr, &tr->dev_other, &tr->dev16_other, params, snap_version(tr, params));
    }
}

float *train_device_live(struct trainer *tr)
{
    train_device_use(tr, tr->model.params);
    return tr->dev_current;
}

void train_device_received(struct trainer *tr, int64_t version)
{
    tr->dev_stale = 0;
    tr->host_stale = 1;
    select_set(tr, tr->dev_current, tr->dev16_current);
    round_set(tr, version);
}
