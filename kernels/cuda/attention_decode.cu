// Decode attention over the KV cache: the CUDA twin of kernels/cpu/attention_decode.c, in fp32, with
// its layouts (q, out: [n, n_heads, hd]; one cache layer [n_slots, max_len, n_kv, hd]; row i reads slot
// slot[i], positions 0..pos[i]) and its arithmetic where it decides the result: float scores, expf,
// a double normaliser, weights p * inv. Within the tests' fp32 tolerance of the reference, not bitwise:
// the dot products run over d in order with fused multiply-adds (the reference: vectorised partial
// sums), and the weighted sum over the cache rows is split over warps.
//
// slot and pos are device arrays, uploaded once per decode step and read by every layer: a step
// makes no host round trip per layer, and its launches only read device memory (what CUDA graph
// capture needs). The scores live in shared memory when the block's fit (decode_scores_in_smem:
// a rollout's caches), else in the caller's scratch of n * n_heads * max_len floats (row (i, h) at
// (i * n_heads + h) * max_len), which a recorded graph can hold.
//
// One block per (row i, kv head): the block serves every q head of that GQA group, so each K and V
// row of the slot is read from memory once per block and used for all the group's heads. (One block
// per (row, q head) re-read both for each of the group's heads: 7x the bytes for the 0.5B decoder's
// 14 q heads over 2 kv heads.) Heads are taken DECODE_HEADS at a time (a chunk; the per-thread register budget); for
// each chunk:
//   1. the chunk's q rows (consecutive in q: the group's heads are) into shared memory;
//   2. scores: one thread per cache row j (j = tid, tid + blockDim, ...) computes the dot products of
//      k_j with every q row of the chunk, d in order 0..hd-1 (16-byte loads of k_j where the layout
//      allows, the q values broadcast from shared memory), and writes scale * dot to the scratch.
//      No cross-lane reduction per score (a butterfly per score was a long dependent chain);
//   3. softmax: one warp per head: max over the head's scores, expf(s - max) summed in double per
//      lane and then over the lanes (butterflies: fixed order), weights e * inv with
//      inv = (float)(1.0 / sum), as the reference computes them;
//   4. weighted sum: warp w takes the rows j = w, w + nwarps, ... and each lane a pair of dims d, so
//      a warp reads v_j as one contiguous row, once for every head of the chunk (DECODE_ROWS rows'
//      loads issued before their use); the warps' partial rows go to shared memory and are added in
//      warp order.
// 16 warps, and loops over independent loads unrolled: with one block per SM (128 blocks for 64 rows
// of the 0.5B decoder) a block's chain of dependent memory waits is the kernel's time.
// A group larger than DECODE_HEADS (none of the shapes in use) re-reads K and V once per chunk. Any
// length works (every phase loops over the rows), any hd up to DECODE_MAX_HD. Every addition's order
// depends only on the launch shape, so a call repeats bit for bit. A slot or position outside the
// cache (a caller's bookkeeping bug; the reference dies of it) traps.
//
// Split over the cache rows (count != NULL, the scores fit in shared memory, the scratch holds the
// partials): S blocks of DECODE_SPLIT_THREADS per (row, kv head), block s taking the rows
// [s c, (s + 1) c) with c = ceil(L / S). Each runs steps 1-4 on its rows with the weights left
// unnormalised - e_j = expf(s_j - m_s) against its own max m_s, summed in double into l_s - and
// writes its partial output o_s (and m_s, l_s) to the scratch; the last block of the (row, kv head)
// to finish (an arrival counter in count, which that block resets) merges them in split order:
// with M = max m_s and c_s = expf(m_s - M), out = (sum_s c_s o_s) * (float)(1.0 / sum_s c_s l_s).
// (One block per (row, kv head) is one block an SM for the 0.5B decoder's 64 rows: a long chain of
// dependent memory waits at 25% occupancy, the profile's largest decode kernel; split, each block's
// chain is a third as long and three times the blocks overlap their waits.) Equal to the unsplit
// result to a few ulp (c_s e_j is expf(s_j - M) up to rounding), and like it repeatable bit for bit.
//
// Staged (flags ATTN_DECODE_STAGE, MMUPT_DECODE_STAGE=1; unsplit calls whose rows fit in shared memory - up to
// the device's opt-in limit, 227 KiB on an H100/H200: a 384-row cache at hd 64 in bf16 is 123 KiB):
// the block first copies its slot's k and v rows into shared memory, every thread's 16-byte loads
// issued together (decode_stage_*), then runs steps 1-4 on the copies. The copy is one memory round
// trip where the unstaged kernel's steps wait on L2 several times (k rows, then batches of v rows);
// with one block per SM either way, a longer block is the whole kernel's time. Same arithmetic, same
// order: the results are the unstaged kernel's bits.
//
// attention_decode_qkv_bf16_cast is the bf16 decode step's fused form: the block first adds the
// biases to its kv head's k and v of the q/k/v GEMM output, rotates k and appends both to the cache
// (threads < hd / 2, a pair each), and step 1 builds the q rows from that output the same way -
// qkv_rope_append_bf16's arithmetic (rope.cuh's helpers), so cache and results are bitwise that op
// followed by attention_decode_bf16_cast, one launch (and one q round trip through memory) fewer a
// layer. Step 1's barrier publishes the appended row to step 2's readers of the same block.
#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "mmupt/cuda_check.h"
#include "mmupt/err.h"
#include "mmupt/kernels.h"
#include "attention_decode.cuh"
#include "bf16.cuh"
#include "pdl.cuh"
#include "unroll.cuh"
#include "vec.cuh"

enum {
    DECODE_THREADS = 512,                 // 16 warps: one block per (row, kv head) is ~1 block per SM
    DECODE_WARPS = DECODE_THREADS / 32,
    DECODE_SPLIT_THREADS = 128,           // a split's block: 4 warps, several blocks an SM
    DECODE_SPLIT_ROWS = 128,              // cache rows a split takes at full length
    DECODE_MAX_SPLITS = 16,
    DECODE_ROWS = 8,                      // v rows a warp loads before using them (step 4)
    DECODE_HEADS = 8,                     // q heads per chunk: score accumulators per thread (step 2)
    DECODE_LANE_DIMS = 2,                 // dims per lane in the weighted sum (step 4)
    DECODE_DIMS = 32 * DECODE_LANE_DIMS,  // dims per warp pass in the weighted sum
    DECODE_MAX_HD = 1024,
};

// The loops over heads, pack elements and lane dims have constant trip counts and index register
// arrays: they unroll fully (UNROLL). Loops over independent loads unroll by 4 (UNROLL_BY(4)), so
// their latencies overlap.

// Dynamic shared memory: the chunk's q rows [hc][hd] in steps 1-2, then the warps' partial output
// rows [warps][hc][DECODE_DIMS] in step 4 (the same floats: a barrier separates the uses): at most
// max(8 * 1024, 16 * 8 * 64) floats = 32 KiB. After them, the chunk's scores [hc][rows] when they fit
// the default 48 KiB in all (rows: the block's share of max_len; a rollout's cache: 7 heads x 384
// positions is 10.5 KiB): steps 3 and 4 then read them from shared memory, not through L2 (the
// softmax is three dependent passes over them); longer caches keep them in the caller's scratch.
// Same values either way.
static size_t decode_smem_floats(int group, int hd, int warps)
{
    size_t hc = (size_t)(group < DECODE_HEADS ? group : DECODE_HEADS);
    size_t qrows = hc * hd, parts = (size_t)warps * hc * DECODE_DIMS;
    return qrows > parts ? qrows : parts;
}

// The default limit, less the kernel's static shared memory (the split merge's `last`, 16 bytes with
// its alignment): dynamic memory up to this needs no cudaFuncSetAttribute. (At exactly 48 KiB the launch
// failed - a group of 8 over a 512-row cache at hd 64 - found on an H200 on 2026-11-28.)
enum { DECODE_SMEM_LIMIT = 48 * 1024 - 16 };

static int decode_scores_in_smem(int group, int hd, int warps, int rows)
{
    size_t hc = (size_t)(group < DECODE_HEADS ? group : DECODE_HEADS);
    return (decode_smem_floats(group, hd, warps) + hc * (size_t)rows) * sizeof(float) <= DECODE_SMEM_LIMIT;
}

// The split partials in the scores scratch, per (row i, q head, split s): o [n * n_heads * S][hd],
// then m [n * n_heads * S] floats, then l [n * n_heads * S] doubles (at an even float offset).
static long decode_split_floats(long heads_splits, int hd)
{
    long f = heads_splits * ((long)hd + 1);
    return f + (f & 1) + 2 * heads_splits;
}

// How many splits of the cache rows a call makes: one per DECODE_SPLIT_ROWS of max_len, at most
// DECODE_MAX_SPLITS, as many as the scratch (n * n_heads * max_len floats) holds partials for and
// the scores of a split's rows fit in shared memory; 1 (no split) without counters or below 2.
static int decode_splits(int n, int n_heads, int group, int hd, int max_len, const unsigned *count)
{
    if (!count) return 1;
    int s = (max_len + DECODE_SPLIT_ROWS - 1) / DECODE_SPLIT_ROWS;
    if (s > DECODE_MAX_SPLITS) s = DECODE_MAX_SPLITS;
    long hs = (long)n * n_heads;
    while (s >= 2 && (decode_split_floats(hs * s, hd) > hs * max_len ||
                      !decode_scores_in_smem(group, hd, DECODE_SPLIT_THREADS / 32, (max_len + s - 1) / s)))
        s--;
    return s >= 2 ? s : 1;
}

// A cache element as a float: fp32 caches as they are, bf16 ones widened (exact).
static __device__ __forceinline__ float kv_widen(float x) { return x; }
static __device__ __forceinline__ float kv_widen(uint16_t h) { return bf16_widen(h); }

// f[0..N) = p[0..N) widened. VEC: p is aligned to the pack and all N are in range (one vector load);
// otherwise element by element, the first `valid` of them (the rest 0).
template <typename T, int N, bool VEC>
static __device__ __forceinline__ void kv_load_n(float (&f)[N], const T *p, int valid)
{
    if (VEC) {
        vec_pack<T, N> v = *reinterpret_cast<const vec_pack<T, N> *>(p);
        UNROLL
        for (int e = 0; e < N; e++) f[e] = kv_widen(v.e[e]);
    } else {
        UNROLL
        for (int e = 0; e < N; e++) f[e] = e < valid ? kv_widen(p[e]) : 0.0f;
    }
}

// f[0..N) = the shared q values at p (16-byte aligned and N a multiple of 4 when VEC).
template <int N, bool VEC>
static __device__ __forceinline__ void q_load_n(float (&f)[N], const float *p)
{
    if (VEC) {
        UNROLL
        for (int c = 0; c < N / 4; c++) {
            decode_f4 v = reinterpret_cast<const decode_f4 *>(p)[c];
            UNROLL
            for (int e = 0; e < 4; e++) f[4 * c + e] = v.e[e];
        }
    } else {
        UNROLL
        for (int e = 0; e < N; e++) f[e] = p[e];
    }
}

// The fused step is bf16-only (attention_decode.cuh): the fp32 kernel's call of it is never reached.
static __device__ void decode_append_new(const struct decode_args<float> &, int, int, long, float *, float *) { __trap(); }

// A value another block of this kernel wrote: from L2 (__ldcg), never a stale L1 line.
template <typename V>
static __device__ __forceinline__ V decode_ld_l2(const V *p)
{
#ifdef __CUDA_ARCH__
    return __ldcg(p);
#else
    return *p;
#endif
}

// The last split block of (row i, kv head g) merges the splits' partials of the chunk's heads
// hq0 .. hq0 + hc - 1 (see the top of the file) into out / out16.
template <typename T>
static __device__ void decode_merge(float *out, uint16_t *out16, const struct decode_args<T> &a, int i, long hq0, int hc)
{
    int S = a.splits, hd = a.hd;
    long hs = (long)a.n * a.n_heads * S;
    const float *po = a.scores, *pm = a.scores + hs * hd;
    long lf = hs * ((long)hd + 1);
    const double *pl = (const double *)(a.scores + lf + (lf & 1));
    for (int t = threadIdx.x; t < hc * hd; t += blockDim.x) {
        int h = t / hd, d = t % hd;
        long rec = ((long)i * a.n_heads + hq0 + h) * S; // the head's first split record
        float M = -INFINITY;
        for (int s = 0; s < S; s++) M = fmaxf(M, decode_ld_l2(pm + rec + s));
        double l = 0.0;
        float o = 0.0f;
        for (int s = 0; s < S; s++) {
            float c = expf(decode_ld_l2(pm + rec + s) - M); // an empty split: expf(-inf) = 0
            l += (double)c * decode_ld_l2(pl + rec + s);
            o += c * decode_ld_l2(po + (rec + s) * hd + d);
        }
        float r = o * (float)(1.0 / l);
        long at = ((long)i * a.n_heads + hq0 + h) * hd + d;
        out[at] = r;
        if (out16) out16[at] = bf16_round(r);
    }
}

// Staging (STAGE): the k and v rows [j0, jn) of the block's cache slot into shared memory, 16 bytes
// per load, DECODE_STAGE_BATCH loads per thread in flight before their stores (the whole 0.5B
// decoder's 384-row cache in one batch at hd 64: one memory round trip where steps 2 and 4 otherwise
// wait on several). Staged rows are kst elements apart (hd plus one 16-byte pack: a warp's threads
// reading 16 bytes of consecutive rows at one offset, as step 2 does, then fall in different banks).
enum { DECODE_STAGE_BATCH = 12 };

struct decode_stage {
    const decode_f4 *k, *v; // the slot's rows j0.. in global memory, as 16-byte packs
    decode_f4 *sk, *sv;     // their staged copies
    long stride, kst;       // row strides in packs: global and staged
    int cpr, total;         // packs per row; packs to move (k's and v's)
};

template <typename T>
static __device__ decode_stage decode_stage_plan(const T *k, const T *v, T *sk, T *sv, long stride, int kst, int hd,
                                                 int rows)
{
    decode_stage p;
    int per = 16 / (int)sizeof(T);
    p.k = reinterpret_cast<const decode_f4 *>(k);
    p.v = reinterpret_cast<const decode_f4 *>(v);
    p.sk = reinterpret_cast<decode_f4 *>(sk);
    p.sv = reinterpret_cast<decode_f4 *>(sv);
    p.stride = stride / per;
    p.kst = kst / per;
    p.cpr = hd / per;
    p.total = 2 * rows * p.cpr;
    return p;
}

// Pack t of the plan: k's first, then v's; row r = (t mod half) / cpr.
static __device__ __forceinline__ void decode_stage_at(const decode_stage &p, int t, const decode_f4 **src,
                                                       decode_f4 **dst)
{
    int half = p.total / 2, kv = t >= half, u = kv ? t - half : t, r = u / p.cpr, c = u % p.cpr;
    *src = (kv ? p.v : p.k) + r * p.stride + c;
    *dst = (kv ? p.sv : p.sk) + r * p.kst + c;
}

// One batch: the packs base, base + blockDim.x, ... (DECODE_STAGE_BATCH of them) loaded into r
// (STORE false), or r stored to their copies (STORE true). Two calls, so a caller can do other work
// while the loads are in flight.
template <bool STORE>
static __device__ __forceinline__ void decode_stage_move(const decode_stage &p, int base,
                                                        decode_f4 (&r)[DECODE_STAGE_BATCH])
{
    UNROLL
    for (int b = 0; b < DECODE_STAGE_BATCH; b++) {
        int t = base + b * (int)blockDim.x;
        const decode_f4 *src;
        decode_f4 *dst;
        if (t < p.total) {
            decode_stage_at(p, t, &src, &dst);
            if (STORE) *dst = r[b];
            else r[b] = *src;
        }
    }
}

// Block b = (i * n_kv + g) * splits + s: row i, kv head g, q heads g * group .. (g + 1) * group - 1,
// the cache rows of split s (all of them when splits = 1). out16 (may be NULL) gets out rounded to
// bf16 (attention_decode_bf16_cast). VEC: hd is a multiple of the 16-byte pack (4 floats, 8 bf16) and
// both caches are 16-byte aligned, so every row of k and v, and of q in shared memory, can be read in
// packs (a row starts at a multiple of hd elements).
template <typename T, bool VEC, bool STAGE>
static __global__ void __launch_bounds__(DECODE_THREADS, 1)
attention_decode_kernel(float *out, uint16_t *out16, const float *q, struct decode_args<T> a)
{
    pdl_trigger(); // the o-projection's skinny GEMM may start its weight prefetch (pdl.cuh)
    extern __shared__ decode_f4 smem[];
    float *sh = (float *)smem;
    constexpr int KW = VEC ? 16 / (int)sizeof(T) : 1; // k elements per load in step 2
    int S = a.splits, b = (int)(blockIdx.x / S), sp = (int)(blockIdx.x % S);
    int i = b / a.n_kv, g = b % a.n_kv, hd = a.hd, group = a.group;
    int s = a.slot[i], L = a.pos[i] + 1;
    if (s < 0 || s >= a.n_slots || L < 1 || L > a.max_len) __trap();
    int chunk = (L + S - 1) / S, j0 = min(L, sp * chunk), j1 = min(L, j0 + chunk), nj = j1 - j0;
    long stride = (long)a.n_kv * hd, kvoff = (long)g * hd;
    const T *k = a.cache_k + s * a.slot_floats + kvoff, *v = a.cache_v + s * a.slot_floats + kvoff;
    int tid = threadIdx.x, lane = tid % 32, warp = tid / 32, nwarps = (int)(blockDim.x / 32);
    // Every cached k and v row this block reads (hd elements each, a row a thread) starts on its way
    // into L2 now, so steps 2 and 4 wait on L2 rather than on DRAM (a hint: no data moves into
    // registers, and the rows are not written while the kernel runs but for the new one, which L2
    // keeps coherent). VEC rows are 16-byte aligned with a length a multiple of 16 bytes.
    if (VEC && !STAGE)
        for (int j = j0 + tid; j < j1 && j < L - 1; j += blockDim.x) {
            l2_prefetch(k + j * stride, (unsigned)(hd * sizeof(T)));
            l2_prefetch(v + j * stride, (unsigned)(hd * sizeof(T)));
        }
    // Staged: the rows into shared memory (the fused step's new row it makes itself, below), the
    // first batch's loads in flight across the append; from here on k and v point at the copies,
    // kst elements a row, row j0 first.
    T *sk = STAGE ? reinterpret_cast<T *>(sh + a.stage_at) : (T *)NULL;
    T *sv = STAGE ? sk + (long)a.rows_cap * a.kst : (T *)NULL;
    decode_stage plan = {};
    decode_f4 batch[DECODE_STAGE_BATCH];
    if (STAGE) {
        int jn = a.qkv ? min(j1, L - 1) : j1;
        plan = decode_stage_plan<T>(k + j0 * stride, v + j0 * stride, sk, sv, stride, a.kst, hd, max(jn - j0, 0));
        decode_stage_move<false>(plan, tid, batch);
    }
    // Launched programmatically (ATTN_DECODE_PDL): everything above read only what earlier steps
    // wrote (the slot table, the cache's older rows); the kernel before - the q/k/v GEMM - must have
    // finished before its output is read or the cache's new row written.
    pdl_wait();
    // The fused step appends the row's own k and v first (the split whose rows hold it): step 1's
    // barrier publishes them to step 2.
    if (a.qkv && L - 1 >= j0 && L - 1 < j1) {
        long at = (long)(L - 1 - j0) * a.kst;
        decode_append_new(a, i, g, s * a.slot_floats + (long)(L - 1) * stride + kvoff, STAGE ? sk + at : (T *)NULL,
                          STAGE ? sv + at : (T *)NULL);
    }
    if (STAGE) {
        decode_stage_move<true>(plan, tid, batch);
        for (int base = tid + DECODE_STAGE_BATCH * (int)blockDim.x; base < plan.total;
             base += DECODE_STAGE_BATCH * (int)blockDim.x) {
            decode_stage_move<false>(plan, base, batch);
            decode_stage_move<true>(plan, base, batch);
        }
        k = sk; // row j at k + j * stride, as below (j0 = 0: staged calls are not split)
        v = sv;
        stride = a.kst;
    }

    for (int h0 = 0; h0 < group; h0 += DECODE_HEADS) {
        int hc = group - h0 < DECODE_HEADS ? group - h0 : DECODE_HEADS;
        long row0 = (long)i * a.n_heads + (long)g * group + h0; // the chunk's first (row, q head)
        // its scores: [hc][rows_cap], row j at j - j0
        float *p = a.scores_at > 0 ? sh + a.scores_at : a.scores + row0 * a.max_len;

        // 1. The chunk's q rows, [hc][hd], contiguous in q (or made from qkv: the fused step).
        if (a.qkv) decode_q_rope(sh, a, i, g * group + h0, hc);
        else
            for (int t = tid; t < hc * hd; t += blockDim.x) sh[t] = q[row0 * hd + t];
        __syncthreads();

        // 2. Scores, a thread per cache row: acc[h] is q_h . k_j summed over d in order.
        for (int j = j0 + tid; j < j1; j += blockDim.x) {
            const T *kj = k + j * stride;
            float acc[DECODE_HEADS];
            UNROLL
            for (int h = 0; h < DECODE_HEADS; h++) acc[h] = 0.0f;
            UNROLL_BY(4)
            for (int d = 0; d < hd; d += KW) {
                float kf[KW];
                kv_load_n<T, KW, VEC>(kf, kj + d, KW);
                UNROLL
                for (int h = 0; h < DECODE_HEADS; h++) {
                    if (h < hc) { // a register array indexed by constants: the guard, not a bound
                        float qf[KW];
                        q_load_n<KW, VEC>(qf, sh + h * hd + d);
                        UNROLL
                        for (int e = 0; e < KW; e++) acc[h] += qf[e] * kf[e];
                    }
                }
            }
            UNROLL
            for (int h = 0; h < DECODE_HEADS; h++)
                if (h < hc) p[(long)h * a.rows_cap + (j - j0)] = a.scale * acc[h];
        }
        __syncthreads(); // publishes the scores to the warps of step 3

        // 3. Softmax, a warp per head (warp-uniform loop: every lane takes part in the butterflies);
        // split: the weights left unnormalised, the max and sum into the split's record.
        for (int h = warp; h < hc; h += nwarps) {
            float *ph = p + (long)h * a.rows_cap;
            float mx = -INFINITY;
            UNROLL_BY(4)
            for (int j = lane; j < nj; j += 32) mx = fmaxf(mx, ph[j]);
            for (int off = 16; off > 0; off /= 2) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, off));
            double sum = 0.0;
            UNROLL_BY(4)
            for (int j = lane; j < nj; j += 32) {
                float e = expf(ph[j] - mx); // expf, not __expf: see tests/gpu/test_attention_decode_cuda.c
                ph[j] = e;
                sum += e;
            }
            // Lanes i and i ^ off add the same two values: every lane ends with the same bits.
            for (int off = 16; off > 0; off /= 2) sum += __shfl_xor_sync(0xffffffffu, sum, off);
            if (S > 1) {
                if (lane == 0) {
                    long hs = (long)a.n * a.n_heads * S, rec = (row0 + h) * S + sp, lf = hs * ((long)hd + 1);
                    a.scores[hs * hd + rec] = mx;                           // m: -inf for no rows
                    ((double *)(a.scores + lf + (lf & 1)))[rec] = sum;      // l
                }
                continue;
            }
            float inv = (float)(1.0 / sum);
            UNROLL_BY(4)
            for (int j = lane; j < nj; j += 32) ph[j] *= inv;
        }
        __syncthreads(); // every weight is read by every warp below; q in sh is no longer needed

        // 4. Weighted sum, DECODE_DIMS dims per pass: warp w, lane l sum w_hj * v_j[d] over the rows
        // j = j0 + w, j0 + w + nwarps, ... for d = d0 + 2l, d0 + 2l + 1 and every head h of the chunk.
        float *part = sh; // [nwarps][hc][DECODE_DIMS]
        for (int d0 = 0; d0 < hd; d0 += DECODE_DIMS) {
            int dl = lane * DECODE_LANE_DIMS, d = d0 + dl, nd = hd - d; // nd <= 0: no dims here
            float acc[DECODE_HEADS][DECODE_LANE_DIMS];
            UNROLL
            for (int h = 0; h < DECODE_HEADS; h++)
                UNROLL
                for (int e = 0; e < DECODE_LANE_DIMS; e++) acc[h][e] = 0.0f;
            // DECODE_ROWS of the warp's rows are loaded before any is used (their latencies overlap,
            // where one at a time would wait for each), then added in row order as before.
            for (int r0 = warp; nd > 0 && r0 < nj; r0 += nwarps * DECODE_ROWS) {
                float vf[DECODE_ROWS][DECODE_LANE_DIMS];
                UNROLL
                for (int r = 0; r < DECODE_ROWS; r++) {
                    int jr = r0 + r * nwarps;
                    if (jr < nj) kv_load_n<T, DECODE_LANE_DIMS, VEC>(vf[r], v + (j0 + jr) * stride + d, nd);
                }
                UNROLL
                for (int r = 0; r < DECODE_ROWS; r++) {
                    int jr = r0 + r * nwarps;
                    UNROLL
                    for (int h = 0; h < DECODE_HEADS; h++) {
                        if (h < hc && jr < nj) {
                            float w = p[(long)h * a.rows_cap + jr];
                            UNROLL
                            for (int e = 0; e < DECODE_LANE_DIMS; e++) acc[h][e] += w * vf[r][e];
                        }
                    }
                }
            }
            UNROLL
            for (int h = 0; h < DECODE_HEADS; h++)
                UNROLL
                for (int e = 0; e < DECODE_LANE_DIMS; e++)
                    if (h < hc && e < nd) part[(warp * hc + h) * DECODE_DIMS + dl + e] = acc[h][e];
            __syncthreads();
            for (int t = tid; t < hc * DECODE_DIMS; t += blockDim.x) {
                int h = t / DECODE_DIMS, dd = t % DECODE_DIMS;
                if (d0 + dd >= hd) continue;
                float o = 0.0f;
                for (int w = 0; w < nwarps; w++) o += part[(w * hc + h) * DECODE_DIMS + dd];
                if (S > 1) { // the split's partial o_s
                    a.scores[((row0 + h) * S + sp) * hd + d0 + dd] = o;
                    continue;
                }
                long at = (row0 + h) * hd + d0 + dd;
                out[at] = o;
                if (out16) out16[at] = bf16_round(o);
            }
            __syncthreads(); // part (and, for the next chunk, sh) is rewritten next
        }
    }
    if (S == 1) return;

    // The last split of (i, g) to arrive merges every chunk's partials.
    __shared__ int last;
    __threadfence(); // this block's partials are visible to the block that reads them
    __syncthreads();
    if (tid == 0) last = atomicAdd(&a.count[b], 1u) == (unsigned)(S - 1);
    __syncthreads();
    if (!last) return;
    __threadfence();
    for (int h0 = 0; h0 < group; h0 += DECODE_HEADS)
        decode_merge(out, out16, a, i, (long)g * group + h0, group - h0 < DECODE_HEADS ? group - h0 : DECODE_HEADS);
    if (tid == 0) a.count[b] = 0u; // stream order: the next call starts after this one
}

// The fused step's inputs (attention_decode_qkv_bf16_cast), or none.
struct decode_qkv {
    const float *qkv, *bq, *bk, *bv, *cos, *sin;
};

// The most dynamic shared memory a block may have (the staged kernel asks for more than the default
// 48 KiB when its rows need it); the interpreter has the default only.
static size_t decode_smem_max()
{
#ifdef MMUPT_SIMT
    return DECODE_SMEM_LIMIT;
#else
    int dev = 0, v = 0;
    if (cudaGetDevice(&dev) != cudaSuccess ||
        cudaDeviceGetAttribute(&v, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev) != cudaSuccess) {
        cudaGetLastError();
        return DECODE_SMEM_LIMIT;
    }
    return (size_t)v - 1024; // the kernel's static shared memory (16 bytes) comes out of the same limit
#endif
}

// The staged kernel's shared memory for a call, in bytes (a.stage_at and a.kst set): the unstaged
// layout with the scores in it, then the k and v rows; 0 when that is more than `most`.
template <typename T>
static size_t decode_stage_bytes(struct decode_args<T> *a, int threads, size_t most)
{
    size_t hc = (size_t)(a->group < DECODE_HEADS ? a->group : DECODE_HEADS);
    a->scores_at = (long)decode_smem_floats(a->group, a->hd, threads / 32);
    size_t floats = (size_t)a->scores_at + hc * (size_t)a->rows_cap;
    floats = (floats + 3) / 4 * 4; // the staged rows start on a 16-byte boundary
    a->kst = a->hd + 16 / (int)sizeof(T);
    a->stage_at = (long)floats;
    size_t bytes = floats * sizeof(float) + 2 * (size_t)a->rows_cap * a->kst * sizeof(T);
    return bytes <= most ? bytes : 0;
}

template <typename T, bool VEC, bool STAGE>
// most: decode_smem_max(), which a launch above the default shared memory needs.
static void decode_run(float *out, uint16_t *out16, const float *q, const struct decode_args<T> &a, unsigned blocks,
                       int threads, size_t smem, size_t most, int pdl, cudaStream_t st)
{
    if (smem > DECODE_SMEM_LIMIT) {
#ifndef MMUPT_SIMT
        // The kernel's limit raised to the device's most, outside graph captures only (a capture may
        // refuse calls that are not stream work): the decode step's first call of a shape runs
        // uncaptured, and the limit holds for every later launch, captured or not.
        cudaStreamCaptureStatus cs = cudaStreamCaptureStatusNone;
        CUDA_CHECK(cudaStreamIsCapturing(st, &cs));
        if (cs == cudaStreamCaptureStatusNone)
            CUDA_CHECK(cudaFuncSetAttribute(attention_decode_kernel<T, VEC, STAGE>,
                                            cudaFuncAttributeMaxDynamicSharedMemorySize, (int)most));
#endif
    }
    (void)most;
    pdl_launch(pdl != 0, attention_decode_kernel<T, VEC, STAGE>, dim3(blocks), dim3((unsigned)threads), smem, st, out,
               out16, q, a);
}

// The tensor-core form takes a call when asked (ATTN_DECODE_MMA) and it fits: bf16 caches only.
static int decode_try_mma(float *, uint16_t *, const float *, const struct decode_args<float> &, int, int,
                          cudaStream_t)
{
    return 0;
}

static int decode_try_mma(float *out, uint16_t *out16, const float *q, const struct decode_args<uint16_t> &a,
                          int flags, int pdl, cudaStream_t st)
{
    if (!(flags & ATTN_DECODE_MMA) || !decode_mma_fits(a.group, a.hd, a.cache_k, a.cache_v)) return 0;
    decode_mma_run(out, out16, q, a, pdl, st);
    return 1;
}

template <typename T>
static void decode_launch(float *out, uint16_t *out16, const float *q, const T *cache_k, const T *cache_v,
                          const int *slot, const int *pos, int n, int n_slots, int max_len, int n_heads, int n_kv,
                          int hd, float *scores, unsigned *count, int flags, void *stream,
                          const struct decode_qkv *f = NULL)
{
    MMUPT_CHECK((flags & ~(ATTN_DECODE_STAGE | ATTN_DECODE_PDL | ATTN_DECODE_MMA)) == 0);
    int pdl = (flags & ATTN_DECODE_PDL) != 0;
    MMUPT_CHECK(!pdl || f); // the fused form only: the plain one's new row comes from the kernel before
    MMUPT_CHECK(n >= 0 && n_heads > 0 && n_kv > 0 && n_heads % n_kv == 0 && hd > 0 && hd <= DECODE_MAX_HD);
    MMUPT_CHECK(!f || hd % 2 == 0); // RoPE's pairs
    MMUPT_CHECK(n_slots > 0 && max_len > 0);
    MMUPT_CHECK((long)n * n_kv * DECODE_MAX_SPLITS <= 0x7fffffffL); // grid x
    if (n == 0) return;
    cudaStream_t st = (cudaStream_t)stream;
    struct decode_args<T> a;
    a.scores = scores; // the caller's: no allocation inside a graph capture
    a.cache_k = cache_k;
    a.cache_v = cache_v;
    a.slot = slot;
    a.pos = pos;
    a.slot_floats = (long)max_len * n_kv * hd;
    a.n_heads = n_heads;
    a.group = n_heads / n_kv;
    a.n_kv = n_kv;
    a.hd = hd;
    a.n_slots = n_slots;
    a.max_len = max_len;
    a.n = n;
    a.count = count;
    a.scale = (float)(1.0 / sqrt((double)hd)); // as the CPU reference computes it
    struct decode_qkv none = {};
    const struct decode_qkv *x = f ? f : &none;
    a.qkv = x->qkv;
    a.bq = x->bq;
    a.bk = x->bk;
    a.bv = x->bv;
    a.cos = x->cos;
    a.sin = x->sin;
    a.wk = f ? (T *)cache_k : (T *)NULL; // the same layer the attention reads
    a.wv = f ? (T *)cache_v : (T *)NULL;
    if (decode_try_mma(out, out16, q, a, flags, pdl, st)) return;
    a.splits = decode_splits(n, n_heads, a.group, hd, max_len, count);
    a.stage_at = 0;
    a.kst = 0;
    int threads = a.splits > 1 ? DECODE_SPLIT_THREADS : DECODE_THREADS;
    a.rows_cap = (max_len + a.splits - 1) / a.splits;
    size_t floats = decode_smem_floats(a.group, hd, threads / 32);
    a.scores_at = decode_scores_in_smem(a.group, hd, threads / 32, a.rows_cap) ? (long)floats : 0;
    if (a.scores_at > 0) floats += (size_t)(a.group < DECODE_HEADS ? a.group : DECODE_HEADS) * a.rows_cap;
    size_t smem = floats * sizeof(float);
    MMUPT_CHECK(smem <= DECODE_SMEM_LIMIT);
    unsigned blocks = (unsigned)((long)n * n_kv * a.splits);
    int pack = 16 / (int)sizeof(T);
    int vec = hd % pack == 0 && ((uintptr_t)cache_k | (uintptr_t)cache_v) % 16 == 0;
    // Staged (the caller's choice): unsplit calls whose rows fit in shared memory; others as before.
    int stage = (flags & ATTN_DECODE_STAGE) && vec && a.splits == 1;
    size_t most = stage ? decode_smem_max() : (size_t)DECODE_SMEM_LIMIT;
    size_t staged = stage ? decode_stage_bytes(&a, threads, most) : 0;
    if (staged)
        decode_run<T, true, true>(out, out16, q, a, blocks, threads, staged, most, pdl, st);
    else if (vec)
        decode_run<T, true, false>(out, out16, q, a, blocks, threads, smem, most, pdl, st);
    else
        decode_run<T, false, false>(out, out16, q, a, blocks, threads, smem, most, pdl, st);
}

// Whether an unsplit call over a cache of element type T stages (see attention_decode_stage_fits).
template <typename T>
static int decode_stage_fits(int group, int hd, int max_len)
{
    if (hd % (16 / (int)sizeof(T)) != 0) return 0;
    struct decode_args<T> a = {};
    a.group = group, a.hd = hd, a.rows_cap = max_len;
    return decode_stage_bytes(&a, DECODE_THREADS, decode_smem_max()) > 0;
}

extern "C" int attention_decode_stage_fits(int n_heads, int n_kv, int hd, int max_len, int bf16)
{
    MMUPT_CHECK(n_heads > 0 && n_kv > 0 && n_heads % n_kv == 0 && hd > 0 && max_len > 0);
    return bf16 ? decode_stage_fits<uint16_t>(n_heads / n_kv, hd, max_len)
                : decode_stage_fits<float>(n_heads / n_kv, hd, max_len);
}

extern "C" void attention_decode_cuda(float *out, const float *q, const float *cache_k, const float *cache_v,
                                      const int *slot, const int *pos, int n, int n_slots, int max_len, int n_heads,
                                      int n_kv, int hd, float *scores, unsigned *count, int flags, void *stream)
{
    decode_launch<float>(out, (uint16_t *)NULL, q, cache_k, cache_v, slot, pos, n, n_slots, max_len, n_heads, n_kv,
                         hd, scores, count, flags, stream);
}

extern "C" void attention_decode_bf16_cuda(float *out, const float *q, const uint16_t *cache_k,
                                           const uint16_t *cache_v, const int *slot, const int *pos, int n,
                                           int n_slots, int max_len, int n_heads, int n_kv, int hd, float *scores,
                                           unsigned *count, int flags, void *stream)
{
    decode_launch<uint16_t>(out, (uint16_t *)NULL, q, cache_k, cache_v, slot, pos, n, n_slots, max_len, n_heads,
                            n_kv, hd, scores, count, flags, stream);
}

extern "C" void attention_decode_bf16_cast_cuda(float *out, uint16_t *out16, const float *q, const uint16_t *cache_k,
                                                const uint16_t *cache_v, const int *slot, const int *pos, int n,
                                                int n_slots, int max_len, int n_heads, int n_kv, int hd,
                                                float *scores, unsigned *count, int flags, void *stream)
{
    decode_launch<uint16_t>(out, out16, q, cache_k, cache_v, slot, pos, n, n_slots, max_len, n_heads, n_kv, hd,
                            scores, count, flags, stream);
}

extern "C" void attention_decode_qkv_bf16_cast_cuda(float *out, uint16_t *out16, const float *qkv, const float *bq,
                                                    const float *bk, const float *bv, const float *cos,
                                                    const float *sin, uint16_t *cache_k, uint16_t *cache_v,
                                                    const int *slot, const int *pos, int n, int n_slots, int max_len,
                                                    int n_heads, int n_kv, int hd, float *scores, unsigned *count,
                                                    int flags, void *stream)
{
    struct decode_qkv f = {qkv, bq, bk, bv, cos, sin};
    decode_launch<uint16_t>(out, out16, (const float *)NULL, cache_k, cache_v, slot, pos, n, n_slots, max_len, n_heads,
                            n_kv, hd, scores, count, flags, stream, &f);
}
