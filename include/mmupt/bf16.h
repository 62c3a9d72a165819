/* bfloat16 <-> float32 on the host: the one rounding rule of the project (round to nearest, ties to
 * even; NaN stays a quiet NaN), shared by the safetensors reader/writer, the CPU references of the
 * bf16 kernels and the tests. A bf16 value is the top half of a float32, kept in a uint16_t. */
#ifndef MMUPT_BF16_H
#define MMUPT_BF16_H

#include <stdint.h>
#include <string.h>

static inline float bf16_to_f32(uint16_t h)
{
    uint32_t b = (uint32_t)h << 16;
    float f;
    memcpy(&f, &b, sizeof f);
    return f;
}

static inline uint16_t bf16_from_f32(float f)
{
    uint32_t b;
    memcpy(&b, &f, sizeof b);
    /* NaN: truncating could clear every mantissa bit left and make an infinity; keep it quiet. */
    if ((b & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((b >> 16) | 0x0040u);
    /* Round to nearest, ties to even: add just under half an ulp, plus one when the kept lsb is
     * odd. A carry into the exponent is right, including the overflow to infinity. */
    b += 0x7fffu + ((b >> 16) & 1u);
    return (uint16_t)(b >> 16);
}

#endif
