// N consecutive elements moved as one aligned access (a 16-, 8- or 4-byte vector load or store on
// the GPU): what the bandwidth-bound kernels use to move 16 bytes per instruction. Own structs, not
// CUDA's float4/uint4, so the SIMT interpreter's host compiler builds the same code.
#ifndef MMUPT_KERNELS_CUDA_VEC_CUH
#define MMUPT_KERNELS_CUDA_VEC_CUH

#include <stdint.h>

#include "unroll.cuh" // loops over a pack's elements unroll (their registers are an array indexed by constants)

// Aligned to its size up to 16 bytes (the widest access): 8 floats are two 16-byte accesses.
template <typename T, int N>
struct alignas(N * sizeof(T) < 16 ? N * sizeof(T) : 16) vec_pack {
    T e[N];
};

// f[0..N) = p[0..N) (p aligned to the pack).
template <typename T, int N>
static __device__ __forceinline__ void vec_load(T (&f)[N], const T *p)
{
    vec_pack<T, N> v = *reinterpret_cast<const vec_pack<T, N> *>(p);
    UNROLL
    for (int e = 0; e < N; e++) f[e] = v.e[e];
}

// p[0..N) = f[0..N) (p aligned to the pack).
template <typename T, int N>
static __device__ __forceinline__ void vec_store(T *p, const T (&f)[N])
{
    vec_pack<T, N> v;
    UNROLL
    for (int e = 0; e < N; e++) v.e[e] = f[e];
    *reinterpret_cast<vec_pack<T, N> *>(p) = v;
}

// Whether every pointer is aligned to `bytes` (NULL ones are).
static inline bool vec_aligned(uintptr_t bytes, const void *a, const void *b = 0, const void *c = 0,
                               const void *d = 0)
{
    return ((uintptr_t)a | (uintptr_t)b | (uintptr_t)c | (uintptr_t)d) % bytes == 0;
}

#endif
