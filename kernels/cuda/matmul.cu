// Linear layers, CUDA twins of kernels/cpu/matmul.c through cuBLAS (fp32, pedantic math: no TF32).
// Row-major out[M,N] = inp[M,K] @ weight[N,K]^T is, read column-major, out^T = weight^T' * inp^T:
// every call below is that identity with the operands' row-major buffers passed as their
// column-major transposes, so no data is moved.
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include "mmupt/cuda_check.h"
#include "mmupt/gpu_blas.h"
#include "mmupt/kernels.h"
#include "launch.cuh"
#include "reduce.cuh"

// out[r, :] += bias: one thread per element.
static __global__ void add_bias_kernel(float *out, const float *bias, long rows, int n)
{
    LAUNCH_LOOP(i, rows * n) out[i] += bias[i % n];
}

extern "C" void matmul_forward_cuda(float *out, const float *inp, const float *weight, const float *bias, int M,
                                    int K, int N, const struct gpu_blas *blas)
{
    if (M <= 0 || N <= 0) return;
    const float one = 1.0f, zero = 0.0f;
    int ldk = K > 0 ? K : 1; // cuBLAS wants leading dimensions >= 1 even for an empty inner dimension
    // out^T [N,M] = (weight as col-major K x N)^T [N,K] * (inp as col-major K x M) [K,M]
    CUBLAS_CHECK(cublasSgemm(blas->handle, CUBLAS_OP_T, CUBLAS_OP_N, N, M, K, &one, weight, ldk, inp, ldk, &zero, out, N));
    if (bias) {
        add_bias_kernel<<<launch_blocks((long)M * N), LAUNCH_THREADS, 0, blas->stream>>>(out, bias, M, N);
        CUDA_CHECK(cudaGetLastError());
    }
}

extern "C" void matmul_backward_cuda(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                                     const float *weight, int M, int K, int N, const struct gpu_blas *blas)
{
    if (M <= 0 || N <= 0) return;
    const float one = 1.0f;
    // dinp [M,K] += dout [M,N] @ weight [N,K]: dinp^T [K,M] += (weight as col-major K x N) * (dout^T as N x M)
    if (dinp && K > 0) // K = 0: dinp and dweight are empty
        CUBLAS_CHECK(cublasSgemm(blas->handle, CUBLAS_OP_N, CUBLAS_OP_N, K, M, N, &one, weight, K, dout, N, &one, dinp, K));
    // dweight [N,K] += dout^T [N,M] @ inp [M,K]: dweight^T [K,N] += (inp^T as K x M) * (dout^T as N x M)^T
    if (dweight && K > 0)
        CUBLAS_CHECK(cublasSgemm(blas->handle, CUBLAS_OP_N, CUBLAS_OP_T, K, N, M, &one, inp, K, dout, N, &one, dweight, K));
    // dbias [N] += column sums of dout: the rows are the "chunks" of reduce.cuh's ordered column sum.
    if (dbias) reduce_col_partials(dbias, dout, M, N, blas->stream);
}
