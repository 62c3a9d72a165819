/* How fast is the model? Forward + backward of a next-token loss, tokens per second: the CPU
 * reference, or with --device the device model (the GPU in a CUDA build, the emulator otherwise;
 * timed up to a device sync, the gradients left on the device; benchmarks/learner_cuda.sh and
 * vl3b_cuda.sh).
 *
 *   model_cpu [--device [--dtype fp32|bf16] [--recompute] [--optim]] CONFIG.json BATCH SEQ ITERS [IMAGE_SIDE]
 *
 * Builds the model from CONFIG with deterministic random weights, makes BATCH sequences of SEQ
 * tokens (for vision models each sequence starts with one IMAGE_SIDE x IMAGE_SIDE image, whose
 * tokens count towards SEQ), runs one warm-up step and ITERS timed steps, and prints one JSON line
 * with the median step time and tokens/s. benchmarks/model_cpu.sh runs it beside PyTorch.
 *
 * Device options (the CPU reference is fp32 and keeps every activation, so they need --device):
 *   --dtype      bf16 (the default with --device): bf16 GEMMs over fp32 master weights
 *                (model_dev_set_bf16); fp32: every op in fp32.
 *   --recompute  activation recomputation (struct model_dev's recompute).
 *   --optim      a whole training step: after the backward, the gradient norm, clipping and AdamW
 *                over all parameters with fp32 moments on the device, then the bf16 copy's refresh.
 * On the device the JSON line also has the peak device memory of the device model's allocations
 * (the emulator's count; on CUDA the stream-ordered pool's high-water mark - the CUDA context and
 * cuBLAS's workspace are not in it, which is why vl3b_cuda.sh also samples nvidia-smi). The device
 * learner's logits go in chunks of 4096 rows, the trainer's default (model.logit_chunk). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_random.h"
#include "device_opts.h"
#include "mmupt/gpu_mem.h"
#include "mmupt/kernels.h"
#include "mmupt/log.h"
#include "mmupt/model_dev.h"
#include "mmupt/model.h"
#include "mmupt/optim.h"
#include "mmupt/runtime.h"

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

struct bench_batch {
    int *seq_len;
    int64_t *tokens, *targets, *grid;
    float *pixels;
    int n_images;
    int64_t T;
};

/* Random tokens; with images, each sequence is <vision_start> <image_pad>*N <vision_end> text. */
static void make_batch(struct bench_batch *b, const struct model_config *c, int B, int S, int side, uint64_t *rng)
{
    memset(b, 0, sizeof *b);
    b->T = (int64_t)B * S;
    b->seq_len = malloc((size_t)B * sizeof *b->seq_len);
    b->tokens = malloc((size_t)b->T * sizeof *b->tokens);
    b->targets = malloc((size_t)b->T * sizeof *b->targets);
    int64_t g = c->has_vision && side ? side / c->vision.patch : 0;
    int64_t n_img_tok = g ? (g / c->vision.merge) * (g / c->vision.merge) : 0;
    int64_t text_vocab = c->has_vision ? (c->image_token_id < c->vision_start_token_id ? c->image_token_id : c->vision_start_token_id)
                                       : c->text.vocab;
    for (int s = 0; s < B; s++) {
        b->seq_len[s] = S;
        int64_t *t = b->tokens + (int64_t)s * S;
        int k = 0;
        if (n_img_tok) {
            t[k++] = c->vision_start_token_id;
            for (int64_t i = 0; i < n_img_tok; i++) t[k++] = c->image_token_id;
            t[k++] = c->vision_end_token_id;
        }
        for (; k < S; k++) t[k] = (int64_t)((bench_urand(rng) + 0.5f) * (float)(text_vocab - 1));
        for (k = 0; k < S; k++) b->targets[(int64_t)s * S + k] = k + 1 < S ? t[k + 1] : -1;
    }
    if (!n_img_tok) return;
    b->n_images = B;
    b->grid = malloc((size_t)(3 * B) * sizeof *b->grid);
    int64_t P = (int64_t)B * g * g, D = model_patch_dim(c);
    b->pixels = malloc((size_t)(P * D) * sizeof *b->pixels);
    for (int s = 0; s < B; s++) {
        b->grid[3 * s] = 1;
        b->grid[3 * s + 1] = b->grid[3 * s + 2] = g;
    }
    for (int64_t i = 0; i < P * D; i++) b->pixels[i] = 2.0f * bench_urand(rng);
}

struct opts {
    int device, bf16, recompute, optim;
};

/* The leading --options into o (device_opts.h). Returns the index of CONFIG, or -1 after a message. */
static int parse_opts(int argc, char **argv, struct opts *o)
{
    static const char *const flags[] = {"--recompute", "--optim", NULL};
    struct bench_opts b;
    int first = bench_parse_opts("model_cpu", argc, argv, flags, &b);
    *o = (struct opts){.device = b.device, .bf16 = b.bf16, .recompute = b.flag[0], .optim = b.flag[1]};
    return first;
}

/* The device side of the benchmark: the model, and with --optim the AdamW moments. */
struct bench_dev {
    struct gpu_ctx g;
    struct model_dev d;
    float *m, *v; /* device, spec.total floats each (--optim) */
    int64_t t;    /* applied optimizer steps */
};

/* One optimizer step as the trainer takes it: global gradient norm, the shared clip-or-skip rule,
 * AdamW over every parameter, then the bf16 copy derived from the new weights. */
static void dev_optim_step(struct bench_dev *e, int64_t n)
{
    const struct optim_config oc = {.lr = 1e-6, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = 0.01,
                                    .clip_grad_norm = 1.0};
    float *grads = model_dev_grads(&e->d); /* complete (lazy zeroing: src/model/dev_grads.c) */
    double norm = sqrt(sumsq_cuda(grads, (long)n, 1.0, e->g.stream)), scale;
    if (!optim_clip_scale(&oc, norm, &scale)) return;
    e->t++;
    adamw_update_cuda(e->d.params, grads, e->m, e->v, (long)n, oc.lr, oc.beta1, oc.beta2, oc.eps,
                      oc.weight_decay, scale, e->t, e->g.stream);
    model_dev_params_changed(&e->d);
}

/* One step: forward, log-probs, the mean next-token loss (into *loss), backward (and the
 * optimizer). -1 with err for the model's input errors. */
static int train_step(struct model *m, struct bench_dev *e, const struct opts *o, const struct model_batch *b,
                      const struct bench_batch *bb, float *logp, float *dlogp, double *loss, struct mmupt_err *err)
{
    if (o->device ? model_dev_forward(&e->d, b, err) : model_forward(m, b, err)) return -1;
    if (o->device) model_dev_logprobs(&e->d, bb->targets, 1.0f, logp, NULL);
    else model_logprobs(m, bb->targets, 1.0f, logp, NULL);
    int64_t n = 0;
    *loss = 0;
    for (int64_t t = 0; t < bb->T; t++) n += bb->targets[t] >= 0;
    for (int64_t t = 0; t < bb->T; t++) {
        *loss -= bb->targets[t] >= 0 ? logp[t] / (double)n : 0;
        dlogp[t] = bb->targets[t] >= 0 ? -1.0f / (float)n : 0.0f;
    }
    if (!o->device) {
        model_zero_grad(m);
        model_backward_logprobs(m, bb->targets, 1.0f, dlogp);
        return 0;
    }
    model_dev_zero_grad(&e->d);
    model_dev_backward_logprobs(&e->d, bb->targets, 1.0f, dlogp);
    if (o->optim) dev_optim_step(e, m->spec.total);
    gpu_sync(&e->g);
    return 0;
}

/* The device copy of m in the precision and memory mode asked for. */
static void dev_open(struct bench_dev *e, const struct model *m, const struct opts *o)
{
    struct mmupt_err err;
    if (gpu_ctx_init(&e->g, &err)) {
        fprintf(stderr, "model_cpu: %s\n", err.msg);
        exit(1);
    }
    model_dev_init(&e->d, m, &e->g);
    if (o->bf16) model_dev_set_bf16(&e->d, 1);
    e->d.recompute = o->recompute;
    e->d.logit_chunk = 4096; /* as the trainer (model.logit_chunk's default) */
    if (o->optim) {
        e->m = gpu_zeros_floats(&e->g, m->spec.total);
        e->v = gpu_zeros_floats(&e->g, m->spec.total);
    }
    gpu_sync(&e->g);
}

int main(int argc, char **argv)
{
    mmupt_runtime_init();
    struct opts o = {0};
    const char *usage = "usage: model_cpu [--device [--dtype fp32|bf16] [--recompute] [--optim]] CONFIG.json BATCH "
                        "SEQ ITERS [IMAGE_SIDE]\n";
    int first = parse_opts(argc, argv, &o);
    if (first == BENCH_HELP) return fputs(usage, stdout), 0;
    if (first < 0 || argc - first < 4) {
        fputs(usage, stderr);
        return 2;
    }
    argc -= first - 1;
    argv += first - 1;
    struct model_config c;
    struct mmupt_err err;
    if (model_config_load(&c, argv[1], &err)) {
        fprintf(stderr, "model_cpu: %s\n", err.msg);
        return 1;
    }
    int B = atoi(argv[2]), S = atoi(argv[3]), iters = atoi(argv[4]), side = argc > 5 ? atoi(argv[5]) : 0;
    if (B < 1 || S < 4 || iters < 1) {
        fprintf(stderr, "model_cpu: BATCH >= 1, SEQ >= 4 and ITERS >= 1\n%s", usage);
        return 2;
    }
    double t_init = mmupt_now();
    struct model m;
    model_init(&m, &c);
    uint64_t rng = 42;
    bench_random_weights(&m, &rng);
    struct bench_dev e = {0};
    if (o.device) dev_open(&e, &m, &o);
    t_init = mmupt_now() - t_init;
    struct bench_batch bb;
    make_batch(&bb, &c, B, S, side, &rng);
    struct model_batch b = {.n_seq = B, .seq_len = bb.seq_len, .tokens = bb.tokens, .n_images = bb.n_images,
                            .grid_thw = bb.grid, .pixels = bb.pixels};
    float *logp = malloc((size_t)bb.T * sizeof *logp), *dlogp = malloc((size_t)bb.T * sizeof *dlogp);
    double *times = malloc((size_t)iters * sizeof *times), loss = 0;
    for (int it = -1; it < iters; it++) {
        double t0 = mmupt_now();
        if (train_step(&m, &e, &o, &b, &bb, logp, dlogp, &loss, &err)) {
            fprintf(stderr, "model_cpu: %s\n", err.msg);
            return 1;
        }
        if (it >= 0) times[it] = mmupt_now() - t0;
    }
    qsort(times, (size_t)iters, sizeof *times, cmp_double);
    double med = times[iters / 2];
    char peak[32], attention[96];
    bench_peak_json(o.device ? &e.g : NULL, peak, sizeof peak);
    bench_attention_json(o.device ? &e.d : NULL, attention, sizeof attention); /* warm-up step included */
    printf("{\"impl\": \"mmupt\", \"device\": \"%s\", \"dtype\": \"%s\", \"recompute\": %d, \"optim\": %d, "
           "\"config\": \"%s\", \"params\": %lld, \"batch\": %d, \"seq\": %d, \"images\": %d, \"image_side\": %d, "
           "\"init_s\": %.3f, \"step_s\": %.6f, \"tokens_per_s\": %.1f, \"loss\": %.6f, \"peak_device_bytes\": %s, "
           "\"attention\": %s}\n",
           o.device ? (gpu_emulated() ? "emulator" : "cuda") : "cpu", o.bf16 ? "bf16" : "fp32", o.recompute, o.optim,
           argv[1], (long long)m.spec.total, B, S, bb.n_images, bb.n_images ? side : 0, t_init, med,
           (double)bb.T / med, loss, peak, attention);
    if (o.device) {
        gpu_free(&e.g, e.m);
        gpu_free(&e.g, e.v);
        model_dev_free(&e.d);
        gpu_ctx_free(&e.g);
    }
    void *host[] = {bb.seq_len, bb.tokens, bb.targets, bb.grid, bb.pixels, logp, dlogp, times};
    for (size_t i = 0; i < sizeof host / sizeof host[0]; i++) free(host[i]);
    model_free(&m);
    return 0;
}
