// Token embedding lookup and its gradient, CUDA twin of kernels/cpu/embedding.c.
#include <cuda_runtime.h>

#include "mmupt/cuda_check.h"
#include "mmupt/kernels.h"
#include "launch.cuh"

// One thread per output element (token i, column c), grid-stride with long indices: n * dim passes
// 2^31 for long batches of a wide model. Neighbouring threads copy neighbouring columns of one row,
// so reads and writes coalesce.
static __global__ void embedding_forward_kernel(float *out, const int64_t *ids, const float *table, long total, int dim)
{
    for (long e = blockIdx.x * (long)blockDim.x + threadIdx.x; e < total; e += (long)gridDim.x * blockDim.x) {
        long i = e / dim, c = e % dim;
        out[e] = table[ids[i] * dim + c];
    }
}

// One thread per column walks all n tokens in order and adds dout[i, c] into dtable[ids[i], c].
// A repeated id therefore sums in token order, the same order as the CPU reference, with one
// writer per element and no float atomics: the result is deterministic and bitwise equal to the
// reference. It uses only `dim` threads, which is slow for long batches; the fast path for later
// sorts the tokens by id (a stable sort keeps the order) and gives each distinct row its own block.
static __global__ void embedding_backward_kernel(float *dtable, const float *dout, const int64_t *ids, int n, int dim)
{
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= dim) return;
    for (int i = 0; i < n; i++) dtable[ids[i] * dim + c] += dout[(long)i * dim + c];
}

extern "C" void embedding_forward_cuda(float *out, const int64_t *ids, const float *table, int n, int dim,
                                       void *stream)
{
    long total = (long)n * dim;
    if (total <= 0) return;  // a zero-block launch is an error, and there is nothing to copy
    embedding_forward_kernel<<<launch_blocks(total), LAUNCH_THREADS, 0, (cudaStream_t)stream>>>(out, ids, table, total, dim);
    CUDA_CHECK(cudaGetLastError());
}

extern "C" void embedding_backward_cuda(float *dtable, const float *dout, const int64_t *ids, int n, int dim,
                                        void *stream)
{
    if (!dtable || n <= 0 || dim <= 0) return;
    unsigned blocks = (unsigned)((dim + LAUNCH_THREADS - 1) / LAUNCH_THREADS);
    embedding_backward_kernel<<<blocks, LAUNCH_THREADS, 0, (cudaStream_t)stream>>>(dtable, dout, ids, n, dim);
    CUDA_CHECK(cudaGetLastError());
}
