/* CUDA error checks for host code that calls the CUDA runtime: a failing call is fatal and reports
 * the call, file, line and rank through the common fatal path (err.h). */
#ifndef MMUPT_CUDA_CHECK_H
#define MMUPT_CUDA_CHECK_H

#include <cuda_runtime.h>

#include "mmupt/err.h"

#define CUDA_CHECK(call)                                                                         \
    do {                                                                                         \
        cudaError_t cuda_check_e_ = (call);                                                      \
        if (cuda_check_e_ != cudaSuccess)                                                        \
            mmupt_die_at(__FILE__, __LINE__, "%s: %s", #call, cudaGetErrorString(cuda_check_e_)); \
    } while (0)

#endif
