/* The trainer's model compute on the device: cluster.backend=cuda (a CUDA build on a GPU node) or
 * emulator (a CPU-only build: the same code path on the device emulator, src/gpu/mem_emu.c, which
 * is how CI checks that a run on the device path equals the CPU run bit for bit).
 *
 * What runs there: every forward, log-probability and backward pass of the learner, and the
 * rollout's prefill and decode. What stays on the host: the fp32 master weights, the optimizer
 * (ZeRO-1 shards) and the collectives, and the sampler - the gradients come back once per optimizer
 * step and the weights go up after it. Moving those onto the device is the next step of issue 10.
 *
 * The device holds up to three weight sets: the current weights (tr->model.params; re-uploaded
 * lazily after train_weights_changed), the frozen reference of the KL term (uploaded once) and one
 * older snapshot for behaviour log-probs (uploaded on use). */
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
        log_info(&tr->lg, "device: %s (CUDA device %d): model forward/backward and rollout decoding; optimizer, "
                          "collectives and sampling on the host", gi.device_name, tr->gpu.device);
    }
    return 0;
}

void train_device_close(struct trainer *tr)
{
    if (!tr->on_device || !tr->dev_current) return;
    tr->dev.params = tr->dev_current; /* the buffer model_dev_free owns */
    gpu_free(&tr->gpu, tr->dev_ref);
    gpu_free(&tr->gpu, tr->dev_other);
    model_dev_free(&tr->dev);
    gpu_ctx_free(&tr->gpu);
    tr->dev_current = tr->dev_ref = tr->dev_other = NULL;
}

void train_weights_changed(struct trainer *tr)
{
    tr->dev_stale = 1;
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
