// GRPO per-token loss of one micro-batch: CUDA twin of grpo_loss_cpu (kernels/cpu/grpo_loss.c; the
// objective is in include/mmupt/grpo.h). Tokens are independent except for two reductions: the
// count of scored tokens (the token-mean's divisor, needed before any gradient can be written) and
// the metrics. So two passes over the tokens:
//   1. validate and count: each block writes its number of scored tokens and whether it saw a
//      NaN/Inf; the host adds them up and returns -1 before anything is written, as the reference;
//   2. per token: dlogp, and per block the partial metric sums (double) and ratio min/max, which
//      the host adds up in block order.
// Every sum has a fixed order (grid-stride loop, reduce_block's fixed tree, block order on the
// host), so a call repeats bit for bit. No atomics. The host waits for the stream (it needs the
// count in between and returns the metrics).
#include <cuda_runtime.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "launch.cuh"
#include "mmupt/cuda_check.h"
#include "mmupt/err.h"
#include "mmupt/grpo.h"
#include "../grpo_token.h"
#include "reduce.cuh"

// Blocks of a pass: one per REDUCE_THREADS tokens up to a cap, and a grid-stride loop covers the
// rest; the cap bounds the partials the host copies back (1024 * 72 bytes).
static const int GRPO_MAX_BLOCKS = 1024;

// What one block reports: pass 1 fills count and bad, pass 2 the metric partials.
struct grpo_block_part {
    long long count;
    int bad;
    double pg, kl, clip, dual, ratio, ratio_min, ratio_max;
};

static int grpo_blocks(int64_t n)
{
    int64_t b = (n + REDUCE_THREADS - 1) / REDUCE_THREADS;
    return b < GRPO_MAX_BLOCKS ? (int)b : GRPO_MAX_BLOCKS;
}

struct grpo_min {
    __device__ __forceinline__ double operator()(double a, double b) const { return fmin(a, b); }
};
struct grpo_max {
    __device__ __forceinline__ double operator()(double a, double b) const { return fmax(a, b); }
};

// Pass 1. A non-finite mask anywhere, or a non-finite input of a scored token, is "bad".
static __global__ void grpo_count_kernel(struct grpo_block_part *part, const float *logp, const float *old,
                                         const float *ref, const float *adv, const float *mask, long n)
{
    __shared__ long long cscratch[32];
    __shared__ int bscratch[32];
    long long c = 0;
    int bad = 0;
    LAUNCH_LOOP(t, n) {
        float mk = mask[t];
        if (!isfinite(mk)) bad = 1;
        else if (mk != 0.0f) {
            if (isfinite(logp[t]) && isfinite(old[t]) && (!ref || isfinite(ref[t])) && isfinite(adv[t])) c++;
            else bad = 1;
        }
    }
    c = reduce_block(c, cscratch, 0LL, reduce_add());
    bad = reduce_block(bad, bscratch, 0, reduce_add());
    if (threadIdx.x == 0) {
        part[blockIdx.x].count = c;
        part[blockIdx.x].bad = bad;
    }
}

// One token's terms: kernels/grpo_token.h, shared with the CPU reference.

// Pass 2: dlogp for every token (0 where the mask is 0) and the block's partial metrics. w is the
// token-mean weight 1 / (scored tokens), 0 when there are none.
static __global__ void grpo_loss_kernel(float *dlogp, struct grpo_block_part *part, const float *logp,
                                        const float *old, const float *ref, const float *adv, const float *mask,
                                        long n, struct grpo_params p, float lo, float hi, double w)
{
    __shared__ double scratch[32];
    double pg = 0.0, kl = 0.0, clip = 0.0, dual = 0.0, ratio = 0.0, rmin = INFINITY, rmax = -INFINITY;
    LAUNCH_LOOP(t, n) {
        if (mask[t] == 0.0f) {
            dlogp[t] = 0.0f;
            continue;
        }
        struct grpo_token o;
        grpo_token_terms(logp[t], old[t], ref ? ref[t] : 0.0f, adv[t], &p, lo, hi, &o);
        dlogp[t] = (float)(__dmul_rn(p.scale, w) * (o.dL + __dmul_rn(p.kl_coef, o.dkl)));
        pg += w * o.L;
        kl += w * o.kl;
        clip += w * o.clipped;
        dual += w * o.dual;
        ratio += w * o.ratio;
        rmin = fmin(rmin, o.ratio);
        rmax = fmax(rmax, o.ratio);
    }
    // Each call ends with a barrier, so they can share one scratch.
    pg = reduce_block(pg, scratch, 0.0, reduce_add());
    kl = reduce_block(kl, scratch, 0.0, reduce_add());
    clip = reduce_block(clip, scratch, 0.0, reduce_add());
    dual = reduce_block(dual, scratch, 0.0, reduce_add());
    ratio = reduce_block(ratio, scratch, 0.0, reduce_add());
    rmin = reduce_block(rmin, scratch, (double)INFINITY, grpo_min());
    rmax = reduce_block(rmax, scratch, -(double)INFINITY, grpo_max());
    if (threadIdx.x == 0) {
        struct grpo_block_part *b = part + blockIdx.x;
        b->pg = pg;
        b->kl = kl;
        b->clip = clip;
        b->dual = dual;
        b->ratio = ratio;
        b->ratio_min = rmin;
        b->ratio_max = rmax;
    }
}

// Copies the blocks' reports to the host and waits for them.
static void grpo_fetch(struct grpo_block_part *host, const struct grpo_block_part *dev, int blocks, cudaStream_t st)
{
    CUDA_CHECK(cudaGetLastError());
    CUDA_CHECK(cudaMemcpyAsync(host, dev, (size_t)blocks * sizeof *host, cudaMemcpyDeviceToHost, st));
    CUDA_CHECK(cudaStreamSynchronize(st));
}

extern "C" int grpo_loss_cuda(const float *logp, const float *old_logp, const float *ref_logp, const float *adv,
                              const float *mask, int64_t n, const struct grpo_params *p, float *dlogp,
                              struct grpo_metrics *m, void *stream)
{
    MMUPT_CHECK(n >= 0);
    MMUPT_CHECK(p->kl_penalty >= GRPO_KL_LOW_VAR && p->kl_penalty <= GRPO_KL_NONE);
    MMUPT_CHECK(ref_logp || p->kl_penalty == GRPO_KL_NONE);
    struct grpo_metrics r;
    memset(&r, 0, sizeof r);
    if (n == 0) { // no tokens: loss 0, nothing to launch
        if (m) *m = r;
        return 0;
    }
    cudaStream_t st = (cudaStream_t)stream;
    int blocks = grpo_blocks(n);
    struct grpo_block_part *d_part = NULL;
    CUDA_CHECK(cudaMallocAsync((void **)&d_part, (size_t)blocks * sizeof *d_part, st));
    struct grpo_block_part *part = (struct grpo_block_part *)mmupt_xmalloc((size_t)blocks * sizeof *part);

    grpo_count_kernel<<<blocks, REDUCE_THREADS, 0, st>>>(d_part, logp, old_logp, ref_logp, adv, mask, (long)n);
    grpo_fetch(part, d_part, blocks, st);
    int64_t n_tok = 0;
    int bad = 0;
    for (int b = 0; b < blocks; b++) {
        n_tok += part[b].count;
        bad |= part[b].bad != 0;
    }
    if (!bad) {
        // The clip bounds in float, computed as the reference does (EasyR1's np.log cast to float32).
        float lo, hi;
        grpo_clip_bounds(p, &lo, &hi);
        double w = n_tok ? 1.0 / (double)n_tok : 0.0;
        grpo_loss_kernel<<<blocks, REDUCE_THREADS, 0, st>>>(dlogp, d_part, logp, old_logp, ref_logp, adv, mask,
                                                            (long)n, *p, lo, hi, w);
        grpo_fetch(part, d_part, blocks, st);
        r.ratio_min = n_tok ? INFINITY : 0.0;
        r.ratio_max = n_tok ? -INFINITY : 0.0;
        r.n_tokens = n_tok;
        for (int b = 0; b < blocks; b++) {
            r.pg_loss += part[b].pg;
            r.kl += part[b].kl;
            r.clip_frac += part[b].clip;
            r.dual_clip_frac += part[b].dual;
            r.ratio_mean += part[b].ratio;
            if (part[b].ratio_min < r.ratio_min) r.ratio_min = part[b].ratio_min;
            if (part[b].ratio_max > r.ratio_max) r.ratio_max = part[b].ratio_max;
        }
        r.loss = r.pg_loss + p->kl_coef * r.kl;
        if (m) *m = r;
    }
    CUDA_CHECK(cudaFreeAsync(d_part, st));
    free(part);
    return bad ? -1 : 0;
}
