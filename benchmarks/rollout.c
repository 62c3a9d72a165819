/* How fast is rollout? Generated tokens per second of the rollout engine (KV cache, continuous
 * batching, sampling at temperature 1, no stop token so every sample runs to NEW tokens).
 *
 *   rollout [--device [--dtype fp32|bf16]] CONFIG.json BATCH PROMPT_LEN NEW [IMAGE_SIDE]
 *
 * Random weights and prompts as in model_cpu.c. A warm-up rollout of at most 16 new tokens, then the
 * timed one; prints one JSON line: tokens/s, the time until every sample drew its first token
 * (prefill_s), the mean decode step after that, and (device) how many steps replayed a CUDA graph
 * (graph_steps, or graph_error: why not), and (device) where a step's time goes: step_decode_ms and
 * step_sample_ms, a decode step and the sampler timed alone (step_parts), the rest being the host's.
 * --device decodes with the device
 * model (include/mmupt/model_dev.h: the GPU in a CUDA build, the emulator otherwise); the weights'
 * upload is not timed. --dtype: bf16 (the default with --device) runs the GEMMs in bf16 over fp32
 * weights (model_dev_set_bf16), fp32 everything in fp32; the CPU reference is fp32 only.
 * benchmarks/rollout.sh and rollout_cuda.sh run it beside transformers' generate. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_random.h"
#include "device_opts.h"
#include "mmupt/gpu_mem.h"
#include "mmupt/kernels.h"
#include "mmupt/log.h"
#include "mmupt/metrics.h"
#include "mmupt/rollout.h"
#include "mmupt/runtime.h"

/* What a rollout's callbacks count: tokens drawn, and when the last sample drew its first (the
 * prefill's end: every sample's first draw follows its prompt's prefill). */
struct tally {
    int64_t generated, drawn;
    int batch;
    double first_all;
};

static void count(void *ctx, struct rollout_sample *s)
{
    struct tally *t = ctx;
    t->generated += s->n;
    free(s->ids);
    free(s->logp);
}

static void on_token(void *ctx, int64_t question, int sample, int32_t token)
{
    (void)question, (void)sample, (void)token;
    struct tally *t = ctx;
    if (++t->drawn == t->batch) t->first_all = mmupt_now();
}

/* Where a device decode step's time goes (decode_step_ms is the whole step, host included): REPS
 * decode steps of B rows alone (graph replays after two warm-up steps, each waited for, as the
 * rollout waits for its draws) and the sampler alone on their logits (with the download of the
 * draws), every row's cache at the timed rollout's mean length, S + NEW / 2. The keys and values are
 * zeros: the time does not depend on them. */
enum { STEP_PARTS_REPS = 20 };

static void step_parts(struct model_dev *dev, const struct rollout_config *rc, int B, int S, int NEW,
                       double *decode_ms, double *sample_ms)
{
    const struct gpu_ctx *g = dev->g;
    int V = (int)dev->m->cfg.text.vocab, max_len = S + NEW + STEP_PARTS_REPS + 3;
    struct model_kv kv;
    model_dev_kv_init(&kv, dev, B, max_len);
    size_t elem = kv.k16 ? sizeof *kv.k16 : sizeof *kv.k, n = (size_t)(kv.n_layers * B * (int64_t)max_len * kv.kvd);
    gpu_zero(g, kv.k16 ? (void *)kv.k16 : (void *)kv.k, n * elem);
    gpu_zero(g, kv.v16 ? (void *)kv.v16 : (void *)kv.v, n * elem);
    int *slots = malloc((size_t)B * sizeof *slots);
    int64_t *toks = malloc((size_t)B * sizeof *toks);
    double *u = malloc((size_t)B * sizeof *u);
    int32_t *drawn = malloc((size_t)B * sizeof *drawn);
    for (int b = 0; b < B; b++) slots[b] = b, toks[b] = b + 1, u[b] = (b + 0.5) / B, kv.len[b] = S + NEW / 2;
    float *logits = gpu_alloc_floats(g, (int64_t)B * V), *lp = gpu_alloc_floats(g, B);
    int32_t *d_drawn = gpu_alloc(g, (size_t)B * sizeof *d_drawn);
    struct mmupt_err err;
    double t0 = 0.0;
    for (int r = -2; r < STEP_PARTS_REPS; r++) {
        if (r == 0) t0 = mmupt_now();
        if (model_dev_decode(dev, &kv, slots, toks, B, logits, &err)) MMUPT_DIE("step_parts: %s", err.msg);
        gpu_sync(g);
    }
    *decode_ms = (mmupt_now() - t0) * 1e3 / STEP_PARTS_REPS;
    for (int r = -2; r < STEP_PARTS_REPS; r++) {
        if (r == 0) t0 = mmupt_now();
        sample_tokens_cuda(d_drawn, lp, logits, B, V, &rc->sampling, u, g->stream);
        gpu_download(g, drawn, d_drawn, (size_t)B * sizeof *drawn);
    }
    *sample_ms = (mmupt_now() - t0) * 1e3 / STEP_PARTS_REPS;
    gpu_free(g, logits);
    gpu_free(g, lp);
    gpu_free(g, d_drawn);
    model_dev_kv_free(&kv, dev);
    free(slots), free(toks), free(u), free(drawn);
}

int main(int argc, char **argv)
{
    mmupt_runtime_init();
    struct bench_opts o;
    int first = bench_parse_opts("rollout", argc, argv, NULL, &o), on_device = o.device, bf16 = o.bf16;
    const char *usage = "usage: rollout [--device [--dtype fp32|bf16]] CONFIG.json BATCH PROMPT_LEN NEW [IMAGE_SIDE]\n";
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
        fprintf(stderr, "rollout: %s\n", err.msg);
        return 1;
    }
    int B = atoi(argv[2]), S = atoi(argv[3]), NEW = atoi(argv[4]), side = argc > 5 ? atoi(argv[5]) : 0;
    struct model m;
    model_init(&m, &c);
    uint64_t rng = 42;
    bench_random_weights(&m, &rng);
    int64_t g = c.has_vision && side ? side / c.vision.patch : 0, n_img = g ? (g / c.vision.merge) * (g / c.vision.merge) : 0;
    int64_t text_hi = c.has_vision ? c.image_token_id : c.text.vocab;
    int64_t *tokens = malloc((size_t)(B * S) * sizeof *tokens), grid[3] = {1, g, g};
    float *pixels = g ? malloc((size_t)(g * g * model_patch_dim(&c)) * sizeof *pixels) : NULL;
    for (int64_t i = 0; g && i < g * g * model_patch_dim(&c); i++) pixels[i] = 2.0f * bench_urand(&rng);
    int *lens = malloc((size_t)B * sizeof *lens);
    struct rollout_question *q = calloc((size_t)B, sizeof *q);
    for (int b = 0; b < B; b++) {
        int64_t *t = tokens + (int64_t)b * S;
        int k = 0;
        if (n_img) {
            t[k++] = c.vision_start_token_id;
            for (int64_t i = 0; i < n_img; i++) t[k++] = c.image_token_id;
            t[k++] = c.vision_end_token_id;
        }
        for (; k < S; k++) t[k] = (int64_t)((bench_urand(&rng) + 0.5f) * (float)(text_hi - 1));
        lens[b] = S;
        q[b] = (struct rollout_question){.id = b, .prompt = {.n_seq = 1, .seq_len = &lens[b], .tokens = t,
                                                           .n_images = n_img ? 1 : 0, .grid_thw = grid, .pixels = pixels}};
    }
    struct rollout_config rc = {.G = 1, .max_new = NEW, .n_slots = B, .max_prompt = S, .seed = 1,
                                .sampling = {.temperature = 1.0f, .top_p = 1.0f, .top_k = 0}};
    struct gpu_ctx gpu;
    struct model_dev dev;
    if (on_device) {
        if (gpu_ctx_init(&gpu, &err)) {
            fprintf(stderr, "rollout: %s\n", err.msg);
            return 1;
        }
        model_dev_init(&dev, &m, &gpu);
        if (bf16) model_dev_set_bf16(&dev, 1);
        gpu_sync(&gpu);
        rc.dev = &dev;
    }
    /* A short warm-up rollout first (as in rollout_torch.py): kernels loaded on first use and
     * cuBLAS's choices per shape are a process's one-time costs, not every rollout's. */
    struct rollout_config warm = rc;
    warm.max_new = NEW < 16 ? NEW : 16;
    struct tally tw = {.batch = B}, t = {.batch = B};
    if (rollout_run(&m, &warm, q, B, count, &tw, &err)) {
        fprintf(stderr, "rollout: %s\n", err.msg);
        return 1;
    }
    long long graphs_warm = on_device ? dev.graph_steps : 0;
    rc.on_token = on_token;
    double t0 = mmupt_now();
    if (rollout_run(&m, &rc, q, B, count, &t, &err)) {
        fprintf(stderr, "rollout: %s\n", err.msg);
        return 1;
    }
    if (on_device) gpu_sync(&gpu);
    double t1 = mmupt_now(), dt = t1 - t0;
    long long graphs_run = on_device ? dev.graph_steps - graphs_warm : 0LL; /* before step_parts' own */
    double part_decode = 0.0, part_sample = 0.0;
    if (on_device) step_parts(&dev, &rc, B, S, NEW, &part_decode, &part_sample);
    /* prefill_s: until every sample had drawn its first token; decode steps after that */
    char *graph_error = NULL, peak[32];
    size_t ge_len = 0, ge_cap = 0;
    json_append_string(&graph_error, &ge_len, &ge_cap, on_device ? dev.graph_error : "");
    bench_peak_json(on_device ? &gpu : NULL, peak, sizeof peak); /* the KV cache, a prefill's activations */
    printf("{\"impl\": \"mmupt\", \"device\": \"%s\", \"dtype\": \"%s\", \"config\": \"%s\", \"batch\": %d, "
           "\"prompt\": %d, \"new\": %d, \"generated\": %lld, \"seconds\": %.4f, \"tokens_per_s\": %.1f, "
           "\"prefill_s\": %.4f, \"decode_step_ms\": %.3f, \"step_decode_ms\": %.3f, \"step_sample_ms\": %.3f, "
           "\"graph_steps\": %lld, \"graph_error\": %s, \"peak_device_bytes\": %s}\n",
           on_device ? (gpu_emulated() ? "emulator" : "cuda") : "cpu", bf16 ? "bf16" : "fp32", argv[1], B, S, NEW,
           (long long)t.generated, dt, (double)t.generated / dt, t.first_all - t0,
           NEW > 1 ? (t1 - t.first_all) * 1e3 / (NEW - 1) : 0.0, part_decode, part_sample,
           graphs_run, graph_error, peak);
    free(graph_error);
    if (on_device) {
        model_dev_free(&dev);
        gpu_ctx_free(&gpu);
    }
    free(q);
    free(lens);
    free(pixels);
    free(tokens);
    model_free(&m);
    return 0;
}
