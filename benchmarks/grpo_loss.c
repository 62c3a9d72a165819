/* Is the fused GRPO loss (lm_head + log-softmax + loss + backward in chunks) lighter and no slower
 * than the unfused composition that materialises [T, V] logits and their gradient?
 *
 *   grpo_loss fused|unfused T H V [ITERS] [CHUNK_T]
 *
 * Runs ONE path per process, so the peak resident memory (VmHWM) belongs to that path alone: it is
 * read once after the inputs and outputs exist and are touched (the base, the same for both paths)
 * and again after ITERS timed calls. Prints one JSON line; benchmarks/grpo_loss.sh runs both paths
 * and prints the table. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_random.h"
#include "mmupt/grpo.h"
#include "mmupt/runtime.h"

/* Peak resident set size so far, in MiB, from /proc/self/status. */
static double vm_hwm_mib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmHWM: %ld kB", &kb) == 1) break;
    if (f) fclose(f);
    return kb / 1024.0;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
    if (argc < 5 || (strcmp(argv[1], "fused") && strcmp(argv[1], "unfused"))) {
        fprintf(stderr, "usage: grpo_loss fused|unfused T H V [ITERS] [CHUNK_T]\n");
        return 2;
    }
    mmupt_runtime_init();
    int fused = !strcmp(argv[1], "fused");
    int T = atoi(argv[2]), H = atoi(argv[3]), V = atoi(argv[4]);
    int iters = argc > 5 ? atoi(argv[5]) : 1;
    if (T < 1 || H < 1 || V < 1 || iters < 1) {
        fprintf(stderr, "grpo_loss: sizes and ITERS must be positive\n");
        return 2;
    }
    size_t nh = (size_t)T * H, nw = (size_t)V * H;
    float *hidden = malloc(nh * sizeof(float)), *W = malloc(nw * sizeof(float));
    float *dh = malloc(nh * sizeof(float)), *dw = malloc(nw * sizeof(float));
    float *tok = malloc((size_t)T * 4 * sizeof(float));
    int64_t *targets = malloc((size_t)T * sizeof(int64_t));
    float *old = tok, *ref = tok + T, *adv = tok + 2 * T, *mask = tok + 3 * T;
    uint64_t s = 1;
    for (size_t i = 0; i < nh; i++) hidden[i] = 2.0f * bench_urand(&s);
    for (size_t i = 0; i < nw; i++) W[i] = 0.05f * bench_urand(&s);
    for (int t = 0; t < T; t++) {
        targets[t] = (int64_t)((bench_urand(&s) + 0.5f) * V) % V;
        old[t] = -12.0f + bench_urand(&s), ref[t] = -12.0f + bench_urand(&s), adv[t] = 2.0f * bench_urand(&s), mask[t] = 1.0f;
    }
    /* The gradients belong to the base, so they must be resident before it is read: volatile
     * stores, because the compiler turns malloc + memset(0) into calloc, which touches nothing. */
    for (size_t i = 0; i < nh; i++) ((volatile float *)dh)[i] = 0.0f;
    for (size_t i = 0; i < nw; i++) ((volatile float *)dw)[i] = 0.0f;
    double base = vm_hwm_mib();
    struct grpo_params p;
    grpo_params_default(&p);
    p.chunk_t = argc > 6 ? atoi(argv[6]) : 0;
    struct grpo_metrics m;
    double best = 1e30;
    for (int it = 0; it < iters; it++) {
        double t0 = now_s();
        int rc = fused ? grpo_fused_loss_cpu(hidden, W, targets, old, ref, adv, mask, T, H, V, &p, dh, dw, &m)
                       : grpo_unfused_loss_cpu(hidden, W, targets, old, ref, adv, mask, T, H, V, &p, dh, dw, &m);
        double dt = now_s() - t0;
        if (rc) {
            fprintf(stderr, "grpo_loss: the %s path refused its input\n", argv[1]);
            return 1;
        }
        if (dt < best) best = dt;
    }
    double peak = vm_hwm_mib();
    printf("{\"path\": \"%s\", \"T\": %d, \"H\": %d, \"V\": %d, \"seconds\": %.3f, \"base_mib\": %.1f, "
           "\"peak_mib\": %.1f, \"extra_mib\": %.1f, \"loss\": %.9g, \"entropy\": %.9g}\n",
           argv[1], T, H, V, best, base, peak, peak - base, m.loss, m.entropy);
    free(hidden), free(W), free(dh), free(dw), free(tok), free(targets);
    return 0;
}
