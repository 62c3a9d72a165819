/* Shared by the interpreter's files (src/simt/README.md): the runtime state behind the CUDA API
 * (runtime.cc), the block interpreter (fiber.cc) and the cuBLAS model (blas.cc). */
#ifndef MMUPT_SIMT_INTERNAL_H
#define MMUPT_SIMT_INTERNAL_H

#include <functional>

#include "cuda_runtime.h"

/* The launch limits the interpreter models (sm_90's, without cudaFuncSetAttribute): checked at launch
 * (runtime.cc), reported by cudaGetDeviceProperties, and what the block interpreter sizes for. */
enum {
    SIMT_MAX_BLOCK_THREADS = 1024,
    SIMT_MAX_BLOCK_Z = 64,
    SIMT_MAX_GRID_YZ = 65535,
    SIMT_MAX_DYN_SHARED = 48 * 1024
};

/* Fatal: a bug in the CUDA code under test (an out-of-bounds argument, a divergent barrier): the
 * message names the kernel or call, and the process aborts so the test fails at the cause. */
[[noreturn]] void simt_die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Run every block of one launch now (the caller holds the device lock). */
void simt_run_grid(const char *kernel, const char *site, dim3 grid, dim3 block, size_t shmem, simt_task *task);

/* Enqueue host-side device work on a stream: run now, or append to the graph being captured there.
 * Returns cudaSuccess, or an error (and the work is dropped) when the stream cannot take it. */
cudaError_t simt_stream_submit(cudaStream_t st, std::function<void()> work);

/* Where p points in device memory: the allocation's base and size, or 0 when p is not inside one
 * (one-past-the-end counts as inside when end_ok). */
int simt_find_device(const void *p, int end_ok, const char **base, size_t *bytes);
/* Fatal unless [p, p + bytes) lies inside one live device allocation. */
void simt_require_device(const char *who, const char *what, const void *p, size_t bytes);

/* Record a CUDA error as the runtime's last error and return it (the API's return path). */
cudaError_t simt_set_error(cudaError_t e);

#endif
