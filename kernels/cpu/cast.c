/* float32 -> bfloat16, CPU reference: round to nearest even, NaN kept (include/mmupt/bf16.h). The
 * mixed-precision GEMMs round their operands with it; the device model rounds its weights' bf16 copy
 * with the CUDA twin - or, with model.bf16_rounding = stochastic, with cast_bf16_sr's twin
 * (include/mmupt/bf16_sr.h). And back: add_bf16 adds widened bf16 values to fp32 ones (cuDNN's
 * attention gradients into the model's fp32 accumulators). */
#include <string.h>

#include "mmupt/bf16.h"
#include "mmupt/bf16_sr.h"
#include "mmupt/err.h"
#include "mmupt/kernels.h"

void cast_bf16_cpu(uint16_t *out, const float *in, long n)
{
#pragma omp parallel for schedule(static) if (n > 65536)
    for (long i = 0; i < n; i++) out[i] = bf16_from_f32(in[i]);
}

void cast_bf16_sr_cpu(uint16_t *out, const float *in, long n, uint64_t seed)
{
#pragma omp parallel for schedule(static) if (n > 65536)
    for (long i = 0; i < n; i++) {
        uint32_t b;
        memcpy(&b, &in[i], sizeof b);
        out[i] = bf16_sr_bits(b, bf16_sr_noise(seed, (uint64_t)i));
    }
}

float *bf16_widened(const uint16_t *x, long n)
{
    float *y = mmupt_xmalloc((size_t)(n > 0 ? n : 1) * sizeof *y);
    for (long i = 0; i < n; i++) y[i] = bf16_to_f32(x[i]);
    return y;
}

void add_bf16_cpu(float *y, const uint16_t *x, long n)
{
#pragma omp parallel for schedule(static) if (n > 65536)
    for (long i = 0; i < n; i++) y[i] += bf16_to_f32(x[i]);
}
