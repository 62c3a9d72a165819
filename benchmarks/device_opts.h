/* The leading options of the device benchmarks (model_cpu, rollout, iteration): --device, --dtype
 * fp32|bf16 (bf16 by default with --device; the CPU reference is fp32 only) and the device-only
 * flags a program names (model_cpu's --recompute, --optim). Header-only: benchmarks are single-file
 * programs. */
#ifndef MMUPT_BENCH_DEVICE_OPTS_H
#define MMUPT_BENCH_DEVICE_OPTS_H

#include <stdio.h>
#include <string.h>

#include "mmupt/gpu_mem.h"
#include "mmupt/model_dev.h"

enum { BENCH_MAX_FLAGS = 4, BENCH_HELP = -2 };

struct bench_opts {
    int device, bf16;
    int flag[BENCH_MAX_FLAGS]; /* flag[i]: flags[i] was given */
};

/* Parse argv's leading --options (flags: the program's device-only flags, NULL-terminated, at most
 * BENCH_MAX_FLAGS). Returns the index of the first positional argument, BENCH_HELP for -h/--help (the
 * program prints its usage to stdout and exits 0), or -1 after a message. */
static inline int bench_parse_opts(const char *prog, int argc, char **argv, const char *const *flags,
                                   struct bench_opts *o)
{
    const char *dtype = NULL;
    memset(o, 0, sizeof *o);
    int i = 1;
    for (int k = 1; k < argc; k++)
        if (strcmp(argv[k], "-h") == 0 || strcmp(argv[k], "--help") == 0) return BENCH_HELP;
    for (; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
        int known = 0;
        for (int f = 0; flags && flags[f] && f < BENCH_MAX_FLAGS; f++)
            if (strcmp(argv[i], flags[f]) == 0) known = o->flag[f] = 1;
        if (known) continue;
        if (strcmp(argv[i], "--device") == 0) o->device = 1;
        else if (strcmp(argv[i], "--dtype") == 0 && i + 1 < argc) dtype = argv[++i];
        else {
            fprintf(stderr, "%s: unknown option '%s'\n", prog, argv[i]);
            return -1;
        }
    }
    if (dtype && strcmp(dtype, "fp32") != 0 && strcmp(dtype, "bf16") != 0) {
        fprintf(stderr, "%s: --dtype %s: must be fp32 or bf16\n", prog, dtype);
        return -1;
    }
    o->bf16 = dtype ? strcmp(dtype, "bf16") == 0 : o->device;
    if (o->bf16 && !o->device) {
        fprintf(stderr, "%s: --dtype bf16 needs --device (the CPU reference model is fp32)\n", prog);
        return -1;
    }
    for (int f = 0; flags && flags[f] && f < BENCH_MAX_FLAGS; f++)
        if (o->flag[f] && !o->device) {
            fprintf(stderr, "%s: %s needs --device (an option of the device model)\n", prog, flags[f]);
            return -1;
        }
    return i;
}

/* The device's peak allocation so far as a JSON value into buf: bytes, or null (no device, or a
 * device that does not count). */
static inline void bench_peak_json(const struct gpu_ctx *g, char *buf, size_t size)
{
    snprintf(buf, size, "null");
    if (!g) return;
    struct gpu_mem_stats ms;
    gpu_mem_stats(g, &ms);
    if (ms.peak_bytes) snprintf(buf, size, "%zu", ms.peak_bytes);
}

/* The block forwards by the attention they ran (model_dev.attention_runs) as a JSON object into buf -
 * {"cublas": N, "flash": N, "cudnn": N} - or null without a device model: what an MMUPT_ATTENTION
 * setting actually did. */
static inline void bench_attention_json(const struct model_dev *d, char *buf, size_t size)
{
    if (!d) {
        snprintf(buf, size, "null");
        return;
    }
    snprintf(buf, size, "{\"cublas\": %lld, \"flash\": %lld, \"cudnn\": %lld}",
             d->attention_runs[MODEL_DEV_ATTN_CUBLAS], d->attention_runs[MODEL_DEV_ATTN_FLASH],
             d->attention_runs[MODEL_DEV_ATTN_CUDNN]);
}

#endif
