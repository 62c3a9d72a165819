// float32 -> bfloat16, CUDA twin of kernels/cpu/cast.c: the same integer rounding as
// include/mmupt/bf16.h (nearest even, NaN kept quiet), so bitwise equal to the reference, NaN
// payloads included (cuda_bf16.h's conversion rounds the same but may pick another NaN). The
// stochastic twin shares its whole rule with the reference (include/mmupt/bf16_sr.h).
#include <cuda_runtime.h>
#include <stdint.h>

#include "mmupt/cuda_check.h"
#include "mmupt/bf16_sr.h"
#include "mmupt/kernels.h"
#include "bf16.cuh"
#include "launch.cuh"

static __global__ void cast_bf16_kernel(uint16_t *out, const float *x, long n)
{
    LAUNCH_LOOP(i, n) out[i] = bf16_round(x[i]);
}

extern "C" void cast_bf16_cuda(uint16_t *out, const float *x, long n, void *stream)
{
    if (n <= 0) return;
    cast_bf16_kernel<<<launch_blocks(n), LAUNCH_THREADS, 0, (cudaStream_t)stream>>>(out, x, n);
    CUDA_CHECK(cudaGetLastError());
}

static __global__ void cast_bf16_sr_kernel(uint16_t *out, const float *x, long n, uint64_t seed)
{
    LAUNCH_LOOP(i, n) out[i] = bf16_sr_bits(__float_as_uint(x[i]), bf16_sr_noise(seed, (uint64_t)i));
}

extern "C" void cast_bf16_sr_cuda(uint16_t *out, const float *x, long n, uint64_t seed, void *stream)
{
    if (n <= 0) return;
    cast_bf16_sr_kernel<<<launch_blocks(n), LAUNCH_THREADS, 0, (cudaStream_t)stream>>>(out, x, n, seed);
    CUDA_CHECK(cudaGetLastError());
}

// y += widen(x): exact (a bf16 value is a float with a zero low half), one add each, as the reference.
static __global__ void add_bf16_kernel(float *y, const uint16_t *x, long n)
{
    LAUNCH_LOOP(i, n) y[i] += bf16_widen(x[i]);
}

extern "C" void add_bf16_cuda(float *y, const uint16_t *x, long n, void *stream)
{
    if (n <= 0) return;
    add_bf16_kernel<<<launch_blocks(n), LAUNCH_THREADS, 0, (cudaStream_t)stream>>>(y, x, n);
    CUDA_CHECK(cudaGetLastError());
}
