// Log-probabilities of target tokens at temperature tau, their entropy and gradient: CUDA twins of
// kernels/cpu/logprob.c. One block per row loops over the whole vocabulary (152064 for Qwen), so
// every row statistic is a block reduction with a fixed order: deterministic, no atomics.
//
// Memory traffic, the cost of these kernels (3072 rows x 151936 is 1.9 GB of fp32 logits): the row
// maximum and the sum of exponentials come from one read (running sums rescaled when the maximum
// grows, logprob_row_stats), so the forward reads each row once and the backward twice, the second
// read to write the gradient - or once, given the forward's row statistics (the *_stats pair: the
// learner's log-probs and their backward over the same logits). The bf16 backward writes that
// gradient as the bf16 operand of lm_head's GEMMs (2 bytes, assigned): ~6 bytes per logit with the
// statistics, ~10 without, against ~30 for zero fill, +=, and a cast.
//
// Numerics. Like the reference, the row maximum is subtracted before exponentiating and the sums of
// exponentials are accumulated in double. The shift is done on the logits themselves,
// y_j = (z_j - max z) / tau, which is z_j/tau - max(z/tau) for tau > 0: the difference of two floats
// is accurate relative to itself, so the terms that matter (y near 0) carry ~1e-7 relative error
// whatever the logits' size (+-80, or 1e4 after a bad update). Each exponential is then a float
// expf: its ~2 ulp are below what the fp32 outputs keep, while a double exp runs at a fraction of
// the float rate on most GPUs and this loop touches every logit once or twice per launch. The
// running sums shift by the same rule (lp_stats_rescale), so the result is the same sum up to
// rounding.
#include <cuda_runtime.h>
#include <float.h>
#include <math.h>

#include "mmupt/cuda_check.h"
#include "mmupt/err.h"
#include "mmupt/kernels.h"
#include "bf16.cuh"
#include "reduce.cuh"
#include "unroll.cuh"

// Logits a thread of the gradient pass loads before it uses any (its elements are independent).
enum { LP_BATCH = 8 };

// The row's target, or -1 for a skipped row. A target >= vocab is a broken invariant (the CPU
// reference dies on it): trap, which makes the next CUDA_CHECK on the host fatal, rather than read
// outside the row. Every thread reads the same value, so a block returns as a whole.
static __device__ __forceinline__ long logprob_target(const int64_t *targets, int vocab)
{
    int64_t t = targets[blockIdx.x];
    if (t >= vocab) __trap();
    return t < 0 ? -1 : (long)t;
}

// Running statistics of a part of a row, relative to the part's maximum m (-FLT_MAX before any
// element; a finite start, so that a -inf logit adds e^-inf = 0 rather than NaN): s = sum e^y and,
// for the entropy, se = sum e^y * y, with y = (z - m) * inv_tau.
struct lp_stats {
    float m;
    double s, se;
};

// Moves st to a new maximum mn >= st->m. Every y changes by d = (m - mn) * inv_tau <= 0, so
//   s' = sum e^(y + d) = s * e^d,   se' = sum e^(y + d) * (y + d) = (se + s * d) * e^d.
// No cancellation: y <= 0 and d <= 0, so se, s * d and their sum are all <= 0. d is formed in float
// like y (the shifted difference of two floats, then the scale), e^d in double: a rescale is rare
// (a thread's running maximum grows about ln(n) times over n random elements), and its factor then
// adds no rounding of its own to the double sums. The clamp changes nothing (e^d underflows to 0
// in double below -745) but keeps s * d finite for d = -inf (the -FLT_MAX start against a large z).
template <bool ENT>
static __device__ __forceinline__ void lp_stats_rescale(lp_stats *st, float mn, float inv_tau)
{
    float d = fmaxf((st->m - mn) * inv_tau, -1000.0f);
    double c = exp((double)d);
    if (ENT) st->se = (st->se + st->s * d) * c;
    st->s *= c;
    st->m = mn;
}

// One element z <= st->m into the sums: e^y is a float expf (see the numerics at the top).
template <bool ENT>
static __device__ __forceinline__ void lp_stats_add(lp_stats *st, float z, float inv_tau)
{
    float y = (z - st->m) * inv_tau, e = expf(y);
    st->s += e;
    if (ENT) st->se += e * y;
}

// Two parts' statistics as one: both moved to the larger maximum, then added. Symmetric in a and b
// bit for bit (a move to its own maximum multiplies by e^0 = 1 exactly; + is commutative), which the
// butterfly below needs so that every lane ends with the same bits.
template <bool ENT>
static __device__ __forceinline__ lp_stats lp_stats_combine(lp_stats a, lp_stats b, float inv_tau)
{
    float m = fmaxf(a.m, b.m);
    lp_stats_rescale<ENT>(&a, m, inv_tau);
    lp_stats_rescale<ENT>(&b, m, inv_tau);
    a.s += b.s;
    if (ENT) a.se += b.se;
    return a;
}

// Every lane gets the combine of the warp's 32 values (reduce.cuh's butterfly, for a triple).
template <bool ENT>
static __device__ __forceinline__ lp_stats lp_stats_warp(lp_stats v, float inv_tau)
{
    for (int off = 16; off > 0; off /= 2) {
        lp_stats o;
        o.m = __shfl_xor_sync(0xffffffffu, v.m, off);
        o.s = __shfl_xor_sync(0xffffffffu, v.s, off);
        o.se = ENT ? __shfl_xor_sync(0xffffffffu, v.se, off) : 0.0;
        v = lp_stats_combine<ENT>(v, o, inv_tau);
    }
    return v;
}

// Row statistics in one read of the row, returned to every thread of the block: the row maximum mz,
// sum = sum e^y and (ENT) sey = sum e^y * y, y_j = (z_j - mz) * inv_tau. Each thread keeps running
// statistics (rescaled when its maximum grows), then the block combines them like reduce_block: a
// fixed order, deterministic. Elements are taken four at a time, one rescale check per four, and
// two such groups are loaded before the first is added (eight loads in flight a thread: the loop is
// bound by memory; the order of the arithmetic is the four-at-a-time loop's).
template <bool ENT>
static __device__ __forceinline__ void lp_stats_add4(lp_stats *st, const float (&zq)[4], float inv_tau)
{
    float mx = fmaxf(fmaxf(zq[0], zq[1]), fmaxf(zq[2], zq[3]));
    if (mx > st->m) lp_stats_rescale<ENT>(st, mx, inv_tau);
    UNROLL
    for (int u = 0; u < 4; u++) lp_stats_add<ENT>(st, zq[u], inv_tau);
}

template <bool ENT>
static __device__ void logprob_row_stats(const float *z, int vocab, float inv_tau, float *mz, double *sum, double *sey)
{
    __shared__ float mscratch[32];
    __shared__ double sscratch[32], escratch[32];
    lp_stats st = {-FLT_MAX, 0.0, 0.0};
    int B = blockDim.x, j = threadIdx.x;
    for (; j + 7 * B < vocab; j += 8 * B) {
        float za[4], zb[4];
        UNROLL
        for (int u = 0; u < 4; u++) za[u] = z[j + u * B], zb[u] = z[j + (4 + u) * B];
        lp_stats_add4<ENT>(&st, za, inv_tau);
        lp_stats_add4<ENT>(&st, zb, inv_tau);
    }
    for (; j + 3 * B < vocab; j += 4 * B) {
        float za[4];
        UNROLL
        for (int u = 0; u < 4; u++) za[u] = z[j + u * B];
        lp_stats_add4<ENT>(&st, za, inv_tau);
    }
    for (; j < vocab; j += B) {
        float zj = z[j];
        if (zj > st.m) lp_stats_rescale<ENT>(&st, zj, inv_tau);
        lp_stats_add<ENT>(&st, zj, inv_tau);
    }
    int lane = threadIdx.x % 32, warp = threadIdx.x / 32, nwarps = blockDim.x / 32;
    st = lp_stats_warp<ENT>(st, inv_tau);
    if (lane == 0) mscratch[warp] = st.m, sscratch[warp] = st.s, escratch[warp] = st.se;
    __syncthreads();
    lp_stats w = {-FLT_MAX, 0.0, 0.0};
    if (lane < nwarps) w.m = mscratch[lane], w.s = sscratch[lane], w.se = escratch[lane];
    st = lp_stats_warp<ENT>(w, inv_tau);
    *mz = st.m;
    *sum = st.s;
    if (ENT) *sey = st.se;
}

// logp[r] = y_t - log(sum); entropy[r] = log(sum) - E_p[y] (H = -E_p[log p], log p = y - log sum);
// row_max/row_sum (may be NULL): the statistics, for a backward over the same logits. One read of
// the row.
static __global__ void logprob_forward_kernel(float *logp, float *entropy, float *row_max, double *row_sum,
                                              const float *logits, const int64_t *targets, int vocab, float inv_tau_f,
                                              double inv_tau)
{
    long t = logprob_target(targets, vocab);
    if (t < 0) {
        if (threadIdx.x == 0) {
            logp[blockIdx.x] = 0.0f;
            if (entropy) entropy[blockIdx.x] = 0.0f;
            if (row_max) row_max[blockIdx.x] = 0.0f, row_sum[blockIdx.x] = 0.0; // "not computed"
        }
        return;
    }
    const float *z = logits + (long)blockIdx.x * vocab;
    float mz;
    double sum, sey = 0.0;
    if (entropy) logprob_row_stats<true>(z, vocab, inv_tau_f, &mz, &sum, &sey); // the same branch in every thread
    else logprob_row_stats<false>(z, vocab, inv_tau_f, &mz, &sum, &sey);
    if (threadIdx.x == 0) {
        double ls = log(sum);
        logp[blockIdx.x] = (float)(((double)z[t] - mz) * inv_tau - ls);
        if (entropy) entropy[blockIdx.x] = (float)(ls - sey / sum);
        if (row_max) row_max[blockIdx.x] = mz, row_sum[blockIdx.x] = sum;
    }
}

// The gradient of row r: g * (onehot_t(j) - p_j), g = dlogp[r] / tau, p_j = e^(y_j) / sum: e^y <= 1
// and sum >= 1 (the maximum's term is 1), so the product cannot overflow and keeps full relative
// precision. Reads the row a second time after the statistics (unless the forward's are given: sum > 0,
// the same values this would compute); each thread handles only the elements it owns (one writer
// per element), and store(j, value) says what becomes of the value.
template <typename Store>
static __device__ __forceinline__ void logprob_row_grad(const float *z, long t, float dlogp, int vocab, float inv_tau_f,
                                                        double inv_tau, float mz, double sum, Store store)
{
    double unused;
    if (sum == 0.0) logprob_row_stats<false>(z, vocab, inv_tau_f, &mz, &sum, &unused); // the same in every thread
    float inv_sum = (float)(1.0 / sum), g = (float)(dlogp * inv_tau);
    int B = blockDim.x;
    for (int j0 = threadIdx.x; j0 < vocab; j0 += LP_BATCH * B) { // LP_BATCH loads in flight, then the stores
        float zb[LP_BATCH];
        UNROLL
        for (int u = 0; u < LP_BATCH; u++) zb[u] = j0 + u * B < vocab ? z[j0 + u * B] : 0.0f;
        UNROLL
        for (int u = 0; u < LP_BATCH; u++) {
            int j = j0 + u * B;
            if (j >= vocab) break;
            float p = expf((zb[u] - mz) * inv_tau_f) * inv_sum;
            store(j, g * ((j == t ? 1.0f : 0.0f) - p));
        }
    }
}

// dlogits[r, j] += the gradient (fp32; rows with target < 0 untouched).
static __global__ void logprob_backward_kernel(float *dlogits, const float *dlogp, const float *logits,
                                               const int64_t *targets, int vocab, float inv_tau_f, double inv_tau)
{
    long t = logprob_target(targets, vocab);
    if (t < 0) return;
    long row = (long)blockIdx.x * vocab;
    float *dz = dlogits + row;
    logprob_row_grad(logits + row, t, dlogp[blockIdx.x], vocab, inv_tau_f, inv_tau, 0.0f, 0.0,
                     [dz](int j, float v) { dz[j] += v; });
}

// dlogits[r, j] = the gradient rounded to bf16, assigned (rows with target < 0: zeros): the operand
// of lm_head's bf16 backward GEMMs, written in one pass instead of zero fill, += and a cast.
static __global__ void logprob_backward_bf16_kernel(uint16_t *dlogits, const float *dlogp, const float *logits,
                                                    const int64_t *targets, const float *row_max,
                                                    const double *row_sum, int vocab, float inv_tau_f, double inv_tau)
{
    long t = logprob_target(targets, vocab), row = (long)blockIdx.x * vocab;
    uint16_t *dz = dlogits + row;
    if (t < 0) {
        for (int j = threadIdx.x; j < vocab; j += blockDim.x) dz[j] = 0;
        return;
    }
    float mz = row_max ? row_max[blockIdx.x] : 0.0f;
    double sum = row_max ? row_sum[blockIdx.x] : 0.0;
    logprob_row_grad(logits + row, t, dlogp[blockIdx.x], vocab, inv_tau_f, inv_tau, mz, sum,
                     [dz](int j, float v) { dz[j] = bf16_round(v); });
}

extern "C" void logprob_forward_stats_cuda(float *logp, float *entropy, float *row_max, double *row_sum,
                                           const float *logits, const int64_t *targets, int rows, int vocab, float tau,
                                           void *stream)
{
    MMUPT_CHECK(tau > 0.0f && vocab > 0 && !row_max == !row_sum);
    if (rows <= 0) return;
    double inv_tau = 1.0 / tau;
    logprob_forward_kernel<<<rows, REDUCE_THREADS, 0, (cudaStream_t)stream>>>(logp, entropy, row_max, row_sum, logits,
                                                                              targets, vocab, (float)inv_tau, inv_tau);
    CUDA_CHECK(cudaGetLastError());
}

extern "C" void logprob_forward_cuda(float *logp, float *entropy, const float *logits, const int64_t *targets, int rows,
                                     int vocab, float tau, void *stream)
{
    logprob_forward_stats_cuda(logp, entropy, (float *)NULL, (double *)NULL, logits, targets, rows, vocab, tau, stream);
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

extern "C" void logprob_backward_bf16_stats_cuda(uint16_t *dlogits, const float *dlogp, const float *logits,
                                                 const int64_t *targets, const float *row_max, const double *row_sum,
                                                 int rows, int vocab, float tau, void *stream)
{
    MMUPT_CHECK(tau > 0.0f && vocab > 0 && !row_max == !row_sum);
    if (rows <= 0) return;
    double inv_tau = 1.0 / tau;
    logprob_backward_bf16_kernel<<<rows, REDUCE_THREADS, 0, (cudaStream_t)stream>>>(
        dlogits, dlogp, logits, targets, row_max, row_sum, vocab, (float)inv_tau, inv_tau);
    CUDA_CHECK(cudaGetLastError());
}

extern "C" void logprob_backward_bf16_cuda(uint16_t *dlogits, const float *dlogp, const float *logits,
                                           const int64_t *targets, int rows, int vocab, float tau, void *stream)
{
    logprob_backward_bf16_stats_cuda(dlogits, dlogp, logits, targets, (const float *)NULL, (const double *)NULL, rows,
                                     vocab, tau, stream);
}
