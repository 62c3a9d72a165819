// Log-probabilities of target tokens at temperature tau, their entropy and gradient: CUDA twins of
// kernels/cpu/logprob.c. One block per row loops over the whole vocabulary (152064 for Qwen), so
// every row statistic is a block reduction with a fixed order: deterministic, no atomics.
//
// Numerics. Like the reference, the row maximum is subtracted before exponentiating and the sums of
// exponentials are accumulated in double. The shift is done on the logits themselves,
// y_j = (z_j - max z) / tau, which is z_j/tau - max(z/tau) for tau > 0: the difference of two floats
// is accurate relative to itself, so the terms that matter (y near 0) carry ~1e-7 relative error
// whatever the logits' size (+-80, or 1e4 after a bad update). Each exponential is then a float
// expf: its ~2 ulp are below what the fp32 outputs keep, while a double exp runs at a fraction of
// the float rate on most GPUs and this loop touches rows * vocab elements three times per pass.
#include <cuda_runtime.h>
#include <math.h>

#include "mmupt/cuda_check.h"
#include "mmupt/err.h"
#include "mmupt/kernels.h"
#include "reduce.cuh"

// The row's target, or -1 for a skipped row. A target >= vocab is a broken invariant (the CPU
// reference dies on it): trap, which makes the next CUDA_CHECK on the host fatal, rather than read
// outside the row. Every thread reads the same value, so a block returns as a whole.
static __device__ __forceinline__ long logprob_target(const int64_t *targets, int vocab)
{
    int64_t t = targets[blockIdx.x];
    if (t >= vocab) __trap();
    return t < 0 ? -1 : (long)t;
}

// Row statistics of y_j = (z_j - mz) * inv_tau, returned to every thread of the block: mz = max z,
// sum = sum e^y and, when sey is non-NULL, sum e^y * y (for the entropy), both in double.
static __device__ void logprob_row_stats(const float *z, int vocab, float inv_tau, float *mz, double *sum,
                                         double *sey)
{
    __shared__ float fscratch[32];
    __shared__ double dscratch[32];
    float m = -INFINITY;
    for (int j = threadIdx.x; j < vocab; j += blockDim.x) m = fmaxf(m, z[j]);
    m = reduce_block_max(m, fscratch);
    double s = 0.0, se = 0.0;
    for (int j = threadIdx.x; j < vocab; j += blockDim.x) {
        float y = (z[j] - m) * inv_tau, e = expf(y);
        s += e;
        se += e * y;
    }
    *mz = m;
    *sum = reduce_block_sum_double(s, dscratch);
    if (sey) *sey = reduce_block_sum_double(se, dscratch);  // the condition is the same in every thread
}

// logp[r] = y_t - log(sum); entropy[r] = log(sum) - E_p[y] (H = -E_p[log p], log p = y - log sum).
static __global__ void logprob_forward_kernel(float *logp, float *entropy, const float *logits,
                                              const int64_t *targets, int vocab, float inv_tau_f, double inv_tau)
{
    long t = logprob_target(targets, vocab);
    if (t < 0) {
        if (threadIdx.x == 0) {
            logp[blockIdx.x] = 0.0f;
            if (entropy) entropy[blockIdx.x] = 0.0f;
        }
        return;
    }
    const float *z = logits + (long)blockIdx.x * vocab;
    float mz;
    double sum, sey = 0.0;
    logprob_row_stats(z, vocab, inv_tau_f, &mz, &sum, entropy ? &sey : NULL);
    if (threadIdx.x == 0) {
        double ls = log(sum);
        logp[blockIdx.x] = (float)(((double)z[t] - mz) * inv_tau - ls);
        if (entropy) entropy[blockIdx.x] = (float)(ls - sey / sum);
    }
}

// dlogits[r, j] += dlogp[r] / tau * (onehot_t(j) - p_j), with p_j = e^(y_j) / sum: e^y <= 1 and
// sum >= 1 (the maximum's term is 1), so the product cannot overflow and keeps full relative
// precision. Each thread updates only the elements it owns: one writer per element.
static __global__ void logprob_backward_kernel(float *dlogits, const float *dlogp, const float *logits,
                                               const int64_t *targets, int vocab, float inv_tau_f, double inv_tau)
{
    long t = logprob_target(targets, vocab);
    if (t < 0) return;
    long row = (long)blockIdx.x * vocab;
    const float *z = logits + row;
    float *dz = dlogits + row;
    float mz;
    double sum;
    logprob_row_stats(z, vocab, inv_tau_f, &mz, &sum, NULL);
    float inv_sum = (float)(1.0 / sum), g = (float)(dlogp[blockIdx.x] * inv_tau);
    for (int j = threadIdx.x; j < vocab; j += blockDim.x) {
        float p = expf((z[j] - mz) * inv_tau_f) * inv_sum;
        dz[j] += g * ((j == t ? 1.0f : 0.0f) - p);
    }
}

extern "C" void logprob_forward_cuda(float *logp, float *entropy, const float *logits, const int64_t *targets, int rows,
                                     int vocab, float tau, void *stream)
{
    MMUPT_CHECK(tau > 0.0f && vocab > 0);
    if (rows <= 0) return;
    double inv_tau = 1.0 / tau;
    logprob_forward_kernel<<<rows, REDUCE_THREADS, 0, (cudaStream_t)stream>>>(logp, entropy, logits, targets, vocab,
                                                                              (float)inv_tau, inv_tau);
    CUDA_CHECK(cudaGetLastError());
}

extern "C" void logprob_backward_cuda(float *dlogits, const float *dlogp, const float *logits, const int64_t *targets,
                                      int rows, int vocab, float tau, void *stream)
{
    MMUPT_CHECK(tau > 0.0f && vocab > 0);
    if (rows <= 0) return;
    double inv_tau = 1.0 / tau;
    logprob_backward_kernel<<<rows, REDUCE_THREADS, 0, (cudaStream_t)stream>>>(dlogits, dlogp, logits, targets, vocab,
                                                                               (float)inv_tau, inv_tau);
    CUDA_CHECK(cudaGetLastError());
}
