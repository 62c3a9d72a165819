/* Stochastic rounding float32 -> bfloat16: one rule for the host (the CPU reference) and the device
 * (the CUDA twin includes this header: the functions are __host__ __device__ under nvcc), so both
 * give the same bits. A value rounds up to the next bf16 with probability (its 16 dropped bits) /
 * 65536 and down otherwise, so its expected bf16 value is the float itself (nearest rounding is
 * biased: a weight whose updates stay below half a bf16 step never moves). The random bits are a
 * counter-based hash of (seed, index): a call repeats bit for bit, whatever the thread order. */
#ifndef MMUPT_BF16_SR_H
#define MMUPT_BF16_SR_H

#include <stdint.h>

#if defined(__CUDACC__)
#define BF16_SR_FN static __host__ __device__ __forceinline__
#else
#define BF16_SR_FN static inline
#endif

/* 16 uniform random bits for element i of the rounding keyed by seed: SplitMix64's finaliser of
 * seed + (i + 1) * 2^64 / phi, its top 16 bits. */
BF16_SR_FN uint32_t bf16_sr_noise(uint64_t seed, uint64_t i)
{
    uint64_t z = seed + (i + 1) * 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (uint32_t)(z >> 48);
}

/* The bf16 bits of the float with bits b, given 16 random bits r: adding r below the kept bits
 * carries into them exactly when r >= 65536 - (the dropped bits). Works on the magnitude, so
 * negative values round symmetrically; a carry into the exponent is right, including the overflow
 * to infinity above the largest bf16 (nearest rounding overflows there too). NaN stays a quiet NaN
 * (as bf16_from_f32), infinities stay. */
BF16_SR_FN uint16_t bf16_sr_bits(uint32_t b, uint32_t r)
{
    if ((b & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((b >> 16) | 0x0040u);
    if ((b & 0x7fffffffu) == 0x7f800000u) return (uint16_t)(b >> 16);
    return (uint16_t)((b + (r & 0xffffu)) >> 16);
}

#endif
