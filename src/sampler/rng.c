/* Counter-based RNG: 64 bits as a pure function of (seed, question, sample, step).
 *
 * Why this construction. The key is four 64-bit numbers (256 bits). Philox4x32-10 takes a 128-bit
 * counter and a 64-bit key, so it would have to truncate or pre-hash part of the key anyway. A
 * chain of SplitMix64 finalisers (Stafford's "Mix13" variant, the output function of Steele, Lea
 * and Flood's SplitMix64, which passes BigCrush on a counter) takes every bit of every argument,
 * costs a few 64-bit multiplies (cheap on a GPU too, so a CUDA twin can reproduce it exactly), and
 * each step of the chain is a bijection of 64 bits:
 *
 *     h = mix(seed     + K0)
 *     h = mix(h ^ mix(question + K1))
 *     h = mix(h ^ mix(sample   + K2))
 *     h = mix(h ^ mix(step     + K3))
 *
 * Fixing any three arguments, the fourth maps injectively to the output, so two steps of one
 * sample (or two questions at one step) never share their bits. Every argument is itself mixed
 * before it meets the state, so streams of neighbouring samples are not shifted copies of each
 * other (which they would be with SplitMix's plain "state + step * gamma" stream splitting).
 * Distinct constants per position keep the arguments from being interchangeable.
 *
 * Not cryptographic: the mixer is invertible and easy to predict from outputs.
 */
#include "mmupt/sampler.h"

static uint64_t rng_mix(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Multiples of the golden-ratio gamma of SplitMix64: odd, well spread, and mix(0) = 0 is never
 * reached for the all-zero key. */
#define RNG_K0 0x9e3779b97f4a7c15ULL
#define RNG_K1 0x3c6ef372fe94f82aULL
#define RNG_K2 0xdaa66d2c7ddf743fULL
#define RNG_K3 0x78dde6e5fd29f054ULL

uint64_t sample_rng_bits(uint64_t seed, uint64_t question, uint64_t sample, uint64_t step)
{
    uint64_t h = rng_mix(seed + RNG_K0);
    h = rng_mix(h ^ rng_mix(question + RNG_K1));
    h = rng_mix(h ^ rng_mix(sample + RNG_K2));
    return rng_mix(h ^ rng_mix(step + RNG_K3));
}

double sample_rng_uniform(uint64_t seed, uint64_t question, uint64_t sample, uint64_t step)
{
    /* 53 bits fill a double's mantissa exactly: every value is k * 2^-53, k < 2^53, so never 1. */
    return (double)(sample_rng_bits(seed, question, sample, step) >> 11) * 0x1.0p-53;
}
