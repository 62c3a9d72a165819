// Programmatic dependent launch (sm_90): a kernel launched with the
// cudaLaunchAttributeProgrammaticStreamSerialization attribute (the skinny GEMM with
// MMUPT_GEMM_SKINNY=pdl; the bf16 decode step's own kernels after its cuBLAS GEMMs with
// MMUPT_DECODE_PDL=1) may start while the kernel before it in the stream still runs, once that
// kernel's blocks have all called pdl_trigger (or exited). It may then only do work that reads
// nothing the earlier kernel writes and writes nothing it reads - the skinny GEMM prefetches its
// weights into L2 - and must call pdl_wait, which returns once the earlier kernel has completed and
// its writes are visible, before anything else. The kernels that come before a skinny GEMM in a
// decode step (norms, attention, SwiGLU) call pdl_trigger first thing. Without the attribute both
// are no-ops, and so on the SIMT interpreter (which runs kernels one after the other anyway).
#ifndef MMUPT_KERNELS_CUDA_PDL_CUH
#define MMUPT_KERNELS_CUDA_PDL_CUH

#include <cuda_runtime.h>

#include "mmupt/cuda_check.h"

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
#define PDL_SM90 1
#endif

// Let the next kernel (if launched programmatically) be scheduled now; every thread calls it.
static __device__ __forceinline__ void pdl_trigger(void)
{
#ifdef PDL_SM90
    asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

// Wait until the kernel before this one has completed and its writes are visible.
static __device__ __forceinline__ void pdl_wait(void)
{
#ifdef PDL_SM90
    asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

// Start fetching bytes (a multiple of 16, 16-byte aligned) at p into L2, without waiting (TMA's
// bulk prefetch): a hint, no data moves into registers. Here because a programmatic launch's
// prologue is its first user; decode attention uses it too. Building with -DMMUPT_NO_L2_PREFETCH
// turns every prefetch off (same results): on the H200 (benchmarks/gpu_ab.sh, 2026-11-27) the 0.5B
// decode step took 1.432 ms without it and 1.397 ms with it (2.5% less; one run of each).
static __device__ __forceinline__ void l2_prefetch(const void *p, unsigned bytes)
{
#if defined(PDL_SM90) && !defined(MMUPT_NO_L2_PREFETCH)
    asm volatile("cp.async.bulk.prefetch.L2.global [%0], %1;" ::"l"(p), "r"(bytes) : "memory");
#else
    (void)p, (void)bytes;
#endif
}

// kernel<<<grid, block, smem, st>>>(args...), with the programmatic attribute when pdl is set (the
// interpreter launches everything plainly: it runs kernels one after the other anyway).
template <typename... P, typename... A>
static void pdl_launch(bool pdl, void (*kernel)(P...), dim3 grid, dim3 block, size_t smem, cudaStream_t st, A... args)
{
#ifndef MMUPT_SIMT
    if (pdl) {
        cudaLaunchAttribute attr;
        attr.id = cudaLaunchAttributeProgrammaticStreamSerialization;
        attr.val.programmaticStreamSerializationAllowed = 1;
        cudaLaunchConfig_t cfg = {};
        cfg.gridDim = grid;
        cfg.blockDim = block;
        cfg.dynamicSmemBytes = smem;
        cfg.stream = st;
        cfg.attrs = &attr;
        cfg.numAttrs = 1;
        CUDA_CHECK(cudaLaunchKernelEx(&cfg, kernel, args...));
        return;
    }
#endif
    (void)pdl;
    kernel<<<grid, block, smem, st>>>(args...);
    CUDA_CHECK(cudaGetLastError());
}

#endif
