/* How fast is the model? Forward + backward of a next-token loss, tokens per second: the CPU
 * reference, or with --device the device model (the GPU in a CUDA build, the emulator otherwise;
 * timed up to a device sync, the gradients left on the device; benchmarks/learner_cuda.sh).
 *
 *   model_cpu [--device] CONFIG.json BATCH SEQ ITERS [IMAGE_SIDE]
 *
 * Builds the model from CONFIG with deterministic random weights, makes BATCH sequences of SEQ
 * tokens (for vision models each sequence starts with one IMAGE_SIDE x IMAGE_SIDE image, whose
 * tokens count towards SEQ), runs one warm-up step and ITERS timed steps, and prints one JSON line
 * with the median step time and tokens/s. benchmarks/model_cpu.sh runs it beside PyTorch. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mmupt/gpu_mem.h"
#include "mmupt/log.h"
#include "mmupt/model_dev.h"
#include "mmupt/model.h"
#include "mmupt/runtime.h"

static float urand(uint64_t *s)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((*s >> 40) * (1.0 / 16777216.0)) - 0.5f;
}

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
        for (; k < S; k++) t[k] = (int64_t)((urand(rng) + 0.5f) * (float)(text_vocab - 1));
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
    for (int64_t i = 0; i < P * D; i++) b->pixels[i] = 2.0f * urand(rng);
}

int main(int argc, char **argv)
{
    mmupt_runtime_init();
    int on_device = argc > 1 && strcmp(argv[1], "--device") == 0;
    argc -= on_device;
    argv += on_device;
    if (argc < 5) {
        fprintf(stderr, "usage: model_cpu [--device] CONFIG.json BATCH SEQ ITERS [IMAGE_SIDE]\n");
        return 2;
    }
    struct model_config c;
    struct mmupt_err err;
    if (model_config_load(&c, argv[1], &err)) {
        fprintf(stderr, "model_cpu: %s\n", err.msg);
        return 1;
    }
    int B = atoi(argv[2]), S = atoi(argv[3]), iters = atoi(argv[4]), side = argc > 5 ? atoi(argv[5]) : 0;
    if (B < 1 || S < 4 || iters < 1) return 2;
    struct model m;
    model_init(&m, &c);
    uint64_t rng = 42;
    for (int64_t i = 0; i < m.spec.total; i++) m.params[i] = 0.04f * urand(&rng);
    struct bench_batch bb;
    make_batch(&bb, &c, B, S, side, &rng);
    struct model_batch b = {.n_seq = B, .seq_len = bb.seq_len, .tokens = bb.tokens, .n_images = bb.n_images,
                            .grid_thw = bb.grid, .pixels = bb.pixels};
    float *logp = malloc((size_t)bb.T * sizeof *logp), *dlogp = malloc((size_t)bb.T * sizeof *dlogp);
    double *times = malloc((size_t)iters * sizeof *times), loss = 0;
    struct gpu_ctx gpu;
    struct model_dev dev;
    if (on_device) {
        if (gpu_ctx_init(&gpu, &err)) {
            fprintf(stderr, "model_cpu: %s\n", err.msg);
            return 1;
        }
        model_dev_init(&dev, &m, &gpu);
    }
    for (int it = -1; it < iters; it++) {
        double t0 = mmupt_now();
        if (on_device ? model_dev_forward(&dev, &b, &err) : model_forward(&m, &b, &err)) {
            fprintf(stderr, "model_cpu: %s\n", err.msg);
            return 1;
        }
        if (on_device) model_dev_logprobs(&dev, bb.targets, 1.0f, logp, NULL);
        else model_logprobs(&m, bb.targets, 1.0f, logp, NULL);
        int64_t n = 0;
        loss = 0;
        for (int64_t t = 0; t < bb.T; t++) n += bb.targets[t] >= 0;
        for (int64_t t = 0; t < bb.T; t++) {
            loss -= bb.targets[t] >= 0 ? logp[t] / (double)n : 0;
            dlogp[t] = bb.targets[t] >= 0 ? -1.0f / (float)n : 0.0f;
        }
        if (on_device) {
            model_dev_zero_grad(&dev);
            model_dev_backward_logprobs(&dev, bb.targets, 1.0f, dlogp);
            gpu_sync(&gpu);
        } else {
            model_zero_grad(&m);
            model_backward_logprobs(&m, bb.targets, 1.0f, dlogp);
        }
        if (it >= 0) times[it] = mmupt_now() - t0;
    }
    qsort(times, (size_t)iters, sizeof *times, cmp_double);
    double med = times[iters / 2];
    printf("{\"impl\": \"mmupt\", \"device\": \"%s\", \"config\": \"%s\", \"params\": %lld, \"batch\": %d, "
           "\"seq\": %d, \"images\": %d, \"step_s\": %.6f, \"tokens_per_s\": %.1f, \"loss\": %.6f}\n",
           on_device ? (gpu_emulated() ? "emulator" : "cuda") : "cpu", argv[1], (long long)m.spec.total, B, S,
           bb.n_images, med, (double)bb.T / med, loss);
    if (on_device) {
        model_dev_free(&dev);
        gpu_ctx_free(&gpu);
    }
    model_free(&m);
    return 0;
}
