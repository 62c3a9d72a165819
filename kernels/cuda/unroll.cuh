// Loop unrolling for the kernels. Loops over register arrays indexed by a loop counter must unroll
// fully (or the arrays spill to local memory), and loops over independent loads unroll so that the
// loads are issued together and their latencies overlap. The SIMT interpreter's host compiler does
// not know nvcc's pragma: there the macros are empty (the loops are the same loops).
#ifndef MMUPT_KERNELS_CUDA_UNROLL_CUH
#define MMUPT_KERNELS_CUDA_UNROLL_CUH

#ifdef __CUDA_ARCH__
#define UNROLL_PRAGMA(x) _Pragma(#x)
#define UNROLL UNROLL_PRAGMA(unroll)
#define UNROLL_BY(n) UNROLL_PRAGMA(unroll n)
#else
#define UNROLL
#define UNROLL_BY(n)
#endif

#endif
