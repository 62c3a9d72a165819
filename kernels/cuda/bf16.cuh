// bfloat16 on the device, the same bits as include/mmupt/bf16.h's host rule (round to nearest even,
// NaN kept quiet): shared by the cast twin and the bf16 KV cache's append and attention.
#ifndef MMUPT_KERNELS_CUDA_BF16_CUH
#define MMUPT_KERNELS_CUDA_BF16_CUH

#include <stdint.h>

static __device__ __forceinline__ uint16_t bf16_round(float f)
{
    uint32_t b = __float_as_uint(f);
    if ((b & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((b >> 16) | 0x0040u);
    b += 0x7fffu + ((b >> 16) & 1u);
    return (uint16_t)(b >> 16);
}

static __device__ __forceinline__ float bf16_widen(uint16_t h)
{
    return __uint_as_float((uint32_t)h << 16);
}

#endif
