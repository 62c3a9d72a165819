/* The trainer's model compute on the device: cluster.backend=cuda (a CUDA build on a GPU node) or
 * emulator (a CPU-only build: the same code path on the device emulator, src/gpu/mem_emu.c, which
 * is how CI checks that a run on the device path equals the CPU run bit for bit).
 *
 * What runs there: every forward, log-probability and backward pass of the learner, the rollout's
 * prefill, decode and sampling, and - for a single learner - the optimizer step (norm, clip, AdamW
 * on device moments), after which the new weights are copied to the host (checkpoints, weight
 * broadcasts and snapshots read them there). With several learners the collectives still run on
 * host buffers (MPI): the gradients come down once per optimizer step, the host ZeRO-1 step runs,
 * and the weights go back up lazily. NCCL on device buffers for the learners is the next step.
 *
 * The device holds up to three weight sets: the current weights (tr->model.params; re-uploaded
 * lazily after train_weights_changed), the frozen reference of the KL term (uploaded once) and one
 * older snapshot for behaviour log-probs (uploaded on use). */
#include <math.h>
#include <string.h>

#include "mmupt/gpu.h"
#include "train_internal.h"

/* Which backend this run uses: 1 for the device, 0 for the CPU, -1 with err for an impossible ask. */
static int pick(struct trainer *tr, struct mmupt_err *err)
{
    int on = gpu_backend_resolve(tr->cfg->cluster.backend, err);
    if (on < 0) {
        static const char *const names[] = {"auto", "cpu", "cuda", "emulator"};
        mmupt_err_prefix(err, "cluster.backend=%s", names[tr->cfg->cluster.backend]);
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

int train_device_open(struct trainer *tr, struct mmupt_err *err)
{
    if (!tr->on_device) return 0;
    if (gpu_ctx_init(&tr->gpu, err)) return -1;
    model_dev_init(&tr->dev, &tr->model, &tr->gpu);
    tr->dev_current = tr->dev.params;
    tr->dev_stale = 0;
    if (!gpu_emulated()) {
        struct gpu_info gi;
        gpu_query(&gi);
        log_info(&tr->lg, "device: %s (CUDA device %d), fp32: model passes, rollout decoding and sampling, and the "
                          "optimizer step when there is one learner", gi.device_name, tr->gpu.device);
    }
    return 0;
}

void train_device_close(struct trainer *tr)
{
    if (!tr->on_device || !tr->dev_current) return;
    tr->dev.params = tr->dev_current; /* the buffer model_dev_free owns */
    gpu_free(&tr->gpu, tr->dev_ref);
    gpu_free(&tr->gpu, tr->dev_other);
    gpu_free(&tr->gpu, tr->dev_m);
    gpu_free(&tr->gpu, tr->dev_v);
    model_dev_free(&tr->dev);
    gpu_ctx_free(&tr->gpu);
    tr->dev_current = tr->dev_ref = tr->dev_other = tr->dev_m = tr->dev_v = NULL;
}

void train_weights_changed(struct trainer *tr)
{
    tr->dev_stale = 1;
    tr->dev_opt_stale = 1; /* a restore also brings moments: the device's are older */
}

void train_device_pull_optim(struct trainer *tr)
{
    if (!tr->dev_m || !tr->host_opt_stale) return;
    size_t bytes = tr->opt.n * sizeof(float);
    gpu_download(&tr->gpu, tr->opt.m, tr->dev_m, bytes);
    gpu_download(&tr->gpu, tr->opt.v, tr->dev_v, bytes);
    tr->host_opt_stale = 0;
}

/* One learner, on the device: moments there (uploaded from the host after a restore), the step,
 * and the new weights back on the host. */
static int step_on_device(struct trainer *tr, const struct optim_config *oc, double lr, int poisoned, double *norm)
{
    const struct gpu_ctx *g = &tr->gpu;
    size_t bytes = tr->opt.n * sizeof(float);
    if (!tr->dev_m) {
        tr->dev_m = gpu_alloc_floats(g, (long long)tr->opt.n);
        tr->dev_v = gpu_alloc_floats(g, (long long)tr->opt.n);
        tr->dev_opt_stale = 1;
    }
    if (tr->dev_opt_stale) {
        gpu_upload(g, tr->dev_m, tr->opt.m, bytes);
        gpu_upload(g, tr->dev_v, tr->opt.v, bytes);
        tr->dev_opt_stale = 0;
    }
    if (poisoned) {
        const float nan = NAN;
        gpu_upload(g, tr->dev.grads, &nan, sizeof nan);
    }
    train_device_use(tr, tr->model.params);
    int res = optim_step_device(&tr->opt, oc, lr, tr->dev_current, tr->dev.grads, tr->dev_m, tr->dev_v, g->stream,
                                norm);
    if (res == 0) {
        gpu_download(g, tr->model.params, tr->dev_current, bytes);
        tr->host_opt_stale = 1;
    }
    return res;
}

int train_optim_step(struct trainer *tr, const struct optim_config *oc, double lr, int poisoned, double *norm)
{
    if (tr->on_device && tr->learn.size == 1) return step_on_device(tr, oc, lr, poisoned, norm);
    if (tr->on_device) model_dev_download_grads(&tr->dev, tr->model.grads);
    if (poisoned) tr->model.grads[0] = NAN;
    int res = optim_step(&tr->opt, &tr->learn, oc, lr, tr->model.params, tr->model.grads, norm);
    tr->dev_stale = 1; /* the host weights moved on */
    return res;
}

/* Upload a whole weight set into *buf (allocated on first use). */
static float *upload_into(struct trainer *tr, float **buf, const float *src)
{
    int64_t n = tr->model.spec.total;
    if (!*buf) *buf = gpu_alloc_floats(&tr->gpu, n);
    gpu_upload(&tr->gpu, *buf, src, (size_t)n * sizeof(float));
    return *buf;
}

void train_device_use(struct trainer *tr, const float *params)
{
    if (!tr->on_device) return;
    if (params == tr->model.params) {
        if (tr->dev_stale) upload_into(tr, &tr->dev_current, params);
        tr->dev_stale = 0;
        tr->dev.params = tr->dev_current;
    } else if (params == tr->ref_params) {
        if (!tr->dev_ref) upload_into(tr, &tr->dev_ref, params); /* frozen: once */
        tr->dev.params = tr->dev_ref;
    } else {
        tr->dev.params = upload_into(tr, &tr->dev_other, params);
    }
}
