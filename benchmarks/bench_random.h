/* The benchmarks' random inputs: one 64-bit LCG, so that every program (and every run of one) draws
 * the same weights, prompts and pixels for the same sizes. Header-only: benchmarks are single-file
 * programs. */
#ifndef MMUPT_BENCH_RANDOM_H
#define MMUPT_BENCH_RANDOM_H

#include <stdint.h>

#include "mmupt/model.h"

/* Uniform in [-0.5, 0.5), 24 bits. */
static inline float bench_urand(uint64_t *s)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((*s >> 40) * (1.0 / 16777216.0)) - 0.5f;
}

/* Every parameter of m uniform in [-0.02, 0.02): small enough that a random model's activations stay
 * finite through any depth these benchmarks run. */
static inline void bench_random_weights(struct model *m, uint64_t *s)
{
    for (int64_t i = 0; i < m->spec.total; i++) m->params[i] = 0.04f * bench_urand(s);
}

#endif
