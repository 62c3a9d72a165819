// Token sampling on the device: the CUDA twin of kernels/cpu/sample.c, whose per-row semantics are
// sample_token's (src/sampler/sample.c). Every reduction adds in an order fixed by the launch shape
// (no float atomics), so a call repeats bit for bit.
//
// Why chunks: a row is a whole vocabulary (152k ids) but a decode step has only tens of rows, so one
// block per row leaves most of the GPU idle (64 rows: 64 blocks on 132 SMs). Each row is therefore
// cut into chunks (sample_chunk_len: 4096 ids for a real vocabulary; V / 16 rounded up to a multiple
// of 256 for V below 61441, so small vocabularies are split too), and the passes over the
// vocabulary run one block per (chunk, row): a grid of [chunks, rows], 38 x 64 = 2432 blocks of 256
// threads for the rollout's 64 x 151936. Partial results per (row, chunk) go to a device scratch,
// and a last, small kernel per row combines them in chunk order and draws. The chunk length depends
// on V alone, never on the row count: a row's double sums follow the chunks, and a row's token must
// not depend on how many rows share the call.
//
// The kernels, in stream order:
//   1. sample_stats_kernel [chunks, rows]: the biased values of the biased ids of its chunk
//      ("overrides", each adding its biases in the CPU's order) into a per-row table that every
//      later read of b[i] consults (a cursor per thread walks the sorted override ids: one compare
//      per element); then the chunk's maximum with its lowest id, a NaN or +inf flag (an invalid
//      row) and the count of finite values. The row's statistics are these merged, which is exact
//      in any order (a max over (value, id) packed into one integer, an integer sum), so each later
//      block merges the row's few chunk entries itself rather than waiting for another launch.
//   2. top-k only: sample_topk_kernel [chunks, rows], four rounds of a radix select of the k-th
//      largest finite value on the order-preserving uint32 image of the float, 8 bits a round: each
//      block counts its chunk's keys under the prefix chosen so far into a shared histogram, then
//      adds it to the row's histogram for the round (integer atomics: the counts do not depend on
//      their order); each round replays the earlier rounds' choices from their histograms.
//   3. sample_mass_kernel [chunks, rows] (greedy too, for logp): the chunk's weights
//      w = exp((b - m) / T) summed in double: the normaliser of the full softmax (logp), the kept
//      set's count and its mass in each of SAMPLE_FANOUT "pieces" of the chunk (a warp sums a piece;
//      its lanes read 32 consecutive values at a time), and the chunk's kept mass as those piece sums
//      added in piece order.
//   4. sample_row_kernel [rows]: the row's sums as the chunks' added in chunk order; greedy takes the
//      maximum's lowest id; the plain draw picks the first chunk whose running kept mass (the same
//      chunk-order sum as the total) exceeds u * total, then descends inside it from its stored piece
//      sums (each level splits the chosen piece into SAMPLE_FANOUT pieces again, down to 32 values
//      that every thread scans in id order). Top-p stays per row here: the candidates within `gap`
//      nats of the best (a superset of the nucleus, as in the CPU) are gathered into shared memory
//      and, if at most SAMPLE_SORT_CAP, bitonic-sorted by (value desc, id asc); a block scan in
//      fixed order gives the nucleus cut and the draw. More candidates than that (a flat
//      distribution) take a slower exact path: binary searches over the float's uint32 image for the
//      value at the nucleus cut and at the draw, each step one pass over the row (~70 passes in all),
//      and a search by count for ties at either.
//
// Latency: a chunk pass is 16 values a thread, and each of those passes (and the per-row kernel's
// walks) loads SAMPLE_BATCH values before using any (sample_load), so that a thread waits for memory
// once a batch, not once a value; the per-row kernel stages the chunk entries it adds in order in
// shared memory, and the descent's last 32 values are weighed one a lane. None of this changes an
// addition's order: the results are the bits of one load at a time.
//
// The scratch, one stream-ordered allocation per call: the per-row u and the override tables (from
// the host), then the overrides' values [rows, nu], the chunk statistics and masses [rows, chunks]
// and, with top-k, the radix histograms [rows, 4, 256].
//
// Weights are (float)exp((double)x) with x the CPU's float argument: the correctly rounded expf
// (within the double exp's error). glibc's expf, which the CPU reference uses, differs from it by
// one ulp on ~6e-4 of arguments (CUDA's own expf, allowed 2 ulp, would differ far more often), so
// cumulative sums agree to ~1e-10 relative and the drawn token differs from the CPU's only at
// boundaries within that distance, or within the tree-order rounding of the double sums.
// The price is a double exp per element of the mass pass: cheap on H100/H200 (FP64 at half the
// FP32 rate), slow on GPUs with 1/64-rate FP64.
#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mmupt/cuda_check.h"
#include "mmupt/err.h"
#include "mmupt/kernels.h"
#include "reduce.cuh"
#include "unroll.cuh"

// Threads of the per-row kernel (top-p's gathering, sort and searches walk a whole row in one block).
enum { SAMPLE_THREADS = 512 };
// Threads of the per-chunk kernels: 16 values each in a 4096-id chunk.
enum { SAMPLE_CHUNK_THREADS = 256 };
// Chunk length: V / SAMPLE_MIN_CHUNKS rounded up to a multiple of SAMPLE_CHUNK_STEP, at most
// SAMPLE_CHUNK_MAX (see sample_chunk_len).
enum { SAMPLE_CHUNK_MAX = 4096, SAMPLE_CHUNK_STEP = 256, SAMPLE_MIN_CHUNKS = 16 };
// Pieces a range splits into at each level of the draw's descent (and per chunk in the mass pass).
enum { SAMPLE_FANOUT = 16 };
// Radix select: 4 rounds of 8 bits over the 32-bit key.
enum { SAMPLE_RADIX_ROUNDS = 4, SAMPLE_RADIX_BINS = 256 };
// Most top-p candidates sorted in shared memory: 4096 x 8-byte keys = 32 KiB.
enum { SAMPLE_SORT_CAP = 4096 };
// Values a thread loads before it uses any (sample_load): the loads of a pass over the logits are
// independent, and issuing them together costs one memory latency a batch instead of one a value -
// the passes were latency-bound (a thread's 16 loads of a 4096-id chunk waited one after another).
enum { SAMPLE_BATCH = 8 };
// Chunk entries the per-row kernel stages in shared memory at a time (sample_row_mass).
enum { SAMPLE_ROW_TILE = 256 };
// Sentinel closing the override id list, above every token id.
#define SAMPLE_NO_ID 0x7fffffff

// One chunk's statistics (kernel 1), and a row's once merged. best packs (value desc, id asc) into
// one integer (sample_best), so that merging is a max and a sum, exact in any order; SAMPLE_BAD,
// above every packed value, marks a NaN or +inf (the row is invalid: nothing else matters then).
struct sample_stats {
    unsigned long long best; // sample_best(largest biased value, its lowest id); -inf: nothing finite
    int finite;              // values other than -inf
};
#define SAMPLE_BAD (~0ull)

// One chunk's sums (kernel 3) beside its kept mass, which is stored apart (the draw scans those).
struct sample_chunk {
    double piece[SAMPLE_FANOUT]; // kept mass of each piece, as sample_piece_mass sums it
    double norm;                 // every token's weight (the full softmax's normaliser)
    int n_kept;                  // kept tokens
};

// Everything a block needs about its call; per-row parts are indexed by the row, per-chunk ones
// by row * n_chunks + chunk.
struct sample_args {
    const float *logits;
    int V, chunk, n_chunks; // chunk: ids per chunk (the last may be shorter)
    int32_t *tokens;
    float *logp;
    const double *u;
    const int32_t *ov_id;   // [nu + 1] sorted unique biased ids, then SAMPLE_NO_ID
    const int32_t *ov_beg;  // [nu + 1] ov_bias[ov_beg[j] .. ov_beg[j+1]) are id j's biases, in call order
    const float *ov_bias;
    float *ov_val;          // [rows, nu] biased values of the overridden ids
    struct sample_stats *stats;  // [rows, n_chunks]
    double *kept;                // [rows, n_chunks] each chunk's kept mass
    struct sample_chunk *chunks; // [rows, n_chunks]
    int *hist;                   // [rows, SAMPLE_RADIX_ROUNDS, SAMPLE_RADIX_BINS], top-k only
    int nu;
    int greedy, top_k, topk_on; // topk_on: top-k applies to rows with at least top_k finite values
    double inv_t, top_p;
};

// One row's view: its logits and overrides, the maximum and the temperature.
struct sample_row {
    const float *z;
    const int32_t *ov_id; // [nu + 1], sentinel-terminated
    const float *ov_val;
    int V, nu;
    float m;
    double inv_t;
};

// A set of tokens: finite, >= thr (top-k), image key in [kmin, kmax], and with key == kcut only
// ids <= id_cut (ties at a cut taken in id order). Summed as weights, or counted when count != 0.
struct sample_set {
    float thr;
    uint32_t kmin, kmax, kcut;
    int id_cut, count;
};

static __device__ struct sample_row sample_row_view(const struct sample_args *a, long row, float m)
{
    struct sample_row r;
    r.z = a->logits + row * a->V;
    r.ov_id = a->ov_id;
    r.ov_val = a->ov_val + row * a->nu;
    r.V = a->V;
    r.nu = a->nu;
    r.m = m;
    r.inv_t = a->inv_t;
    return r;
}

// Order-preserving image of a float: a > b iff key(a) > key(b) (NaN excluded; -0 counts as +0,
// since they compare equal). Every finite value and +inf map above key(-inf) = 0x007fffff > 0.
static __device__ __forceinline__ uint32_t sample_key(float v)
{
    uint32_t u = __float_as_uint(v == 0.0f ? 0.0f : v);
    return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

static __device__ __forceinline__ float sample_unkey(uint32_t k)
{
    return __uint_as_float((k & 0x80000000u) ? (k & 0x7fffffffu) : ~k);
}

// The CPU's weight: expf of the same float argument, rounded from a double exp (see the top).
static __device__ __forceinline__ double sample_weight(float v, float m, double inv_t)
{
    float x = (float)(((double)v - m) * inv_t);
    return (double)(float)exp((double)x);
}

// First override position whose id is >= i (binary search; the cursor then walks forward).
static __device__ int sample_cursor(const struct sample_row *r, int i)
{
    int lo = 0, hi = r->nu;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (r->ov_id[mid] < i) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

// b[i] for increasing i within one thread: the override if i is biased, else the logit.
static __device__ __forceinline__ float sample_value(const struct sample_row *r, int i, int *c)
{
    while (r->ov_id[*c] < i) (*c)++;
    return r->ov_id[*c] == i ? r->ov_val[*c] : r->z[i];
}

// b[i] for the ids i = i0 + j * step, j < SAMPLE_BATCH, into v[j], loaded together; -inf for the ids
// at or past end. A -inf is in no set and weighs 0.0, and adding 0.0 to a sum of weights (never
// -0.0: they start at +0.0 and only add terms >= 0) changes none of its bits, so callers treat the
// padding as values: a batch gives the same sums, counts and maxima as the same ids one at a time.
// *c is the override cursor, as in sample_value; the ids must keep increasing from call to call.
static __device__ __forceinline__ void sample_load(const struct sample_row *r, int i0, int step, int end, int *c,
                                                   float *v)
{
    UNROLL
    for (int j = 0; j < SAMPLE_BATCH; j++) {
        int i = i0 + j * step;
        v[j] = i < end ? r->z[i] : -INFINITY;
    }
    if (r->nu == 0) return; // no overrides (the usual call): the logits are the values
    UNROLL
    for (int j = 0; j < SAMPLE_BATCH; j++) {
        int i = i0 + j * step;
        if (i < end) v[j] = sample_value(r, i, c);
    }
}

// f(v, i) for the ids i = i0, i0 + step, ... below end in that order, their values loaded
// SAMPLE_BATCH at a time (sample_load) - and for the -inf padding of the last batch, which changes
// no result (see there). Every pass over a row's values goes through here.
template <typename F>
static __device__ __forceinline__ void sample_each(const struct sample_row *r, int i0, int step, int end, F f)
{
    int c = sample_cursor(r, i0);
    for (int i = i0; i < end; i += SAMPLE_BATCH * step) {
        float v[SAMPLE_BATCH];
        sample_load(r, i, step, end, &c, v);
        UNROLL
        for (int j = 0; j < SAMPLE_BATCH; j++) f(v[j], i + j * step);
    }
}

// Weight (or 1 when counting) of value v at id i in set s; 0 outside it.
static __device__ __forceinline__ double sample_in_set(const struct sample_set *s, const struct sample_row *r, float v,
                                                       int i)
{
    if (v == -INFINITY || !(v >= s->thr)) return 0.0;
    uint32_t k = sample_key(v);
    if (k < s->kmin || k > s->kmax || (k == s->kcut && i > s->id_cut)) return 0.0;
    return s->count ? 1.0 : sample_weight(v, r->m, r->inv_t);
}

static __device__ __forceinline__ double sample_warp_sum(double v)
{
    for (int off = 16; off > 0; off /= 2) v += __shfl_xor_sync(0xffffffffu, v, off);
    return v;
}

static __device__ __forceinline__ int sample_warp_sum_int(int v)
{
    for (int off = 16; off > 0; off /= 2) v += __shfl_xor_sync(0xffffffffu, v, off);
    return v;
}

// ---- pieces and the descent ----

// Length of each of the SAMPLE_FANOUT pieces of [lo, hi): a multiple of 32 so lanes stay aligned
// (the last pieces may be short or empty).
static __device__ __forceinline__ int sample_piece_len(int lo, int hi)
{
    int n = (hi - lo + SAMPLE_FANOUT - 1) / SAMPLE_FANOUT;
    return (n + 31) / 32 * 32;
}

// [*beg, *end) = piece p of [lo, hi) (empty when beg >= end).
static __device__ __forceinline__ void sample_piece(int lo, int hi, int p, int *beg, int *end)
{
    int P = sample_piece_len(lo, hi);
    *beg = lo + p * P;
    *end = min(*beg + P, hi);
}

// The mass of set s in piece p of [lo, hi), summed by one warp: lane l adds ids beg + l, + 32, ...
// in id order, then a butterfly. Its bits depend only on the piece, not on which warp, block or
// kernel sums it (the mass kernel relies on that).
static __device__ double sample_piece_mass(const struct sample_row *r, const struct sample_set *s, int lo, int hi,
                                           int p)
{
    int lane = threadIdx.x % 32, beg, end;
    sample_piece(lo, hi, p, &beg, &end);
    double acc = 0.0;
    if (beg < end) sample_each(r, beg + lane, 32, end, [&](float v, int i) { acc += sample_in_set(s, r, v, i); });
    return sample_warp_sum(acc);
}

// sums[p] = the set's mass in piece p of [lo, hi), p < SAMPLE_FANOUT; warp w sums pieces w,
// w + warps, ... A barrier publishes them to the block.
static __device__ void sample_piece_sums(const struct sample_row *r, const struct sample_set *s, int lo, int hi,
                                         double *sums)
{
    for (int p = threadIdx.x / 32; p < SAMPLE_FANOUT; p += blockDim.x / 32) {
        double m = sample_piece_mass(r, s, lo, hi, p);
        if (threadIdx.x % 32 == 0) sums[p] = m;
    }
    __syncthreads();
}

// The mass of set s over the whole row, as the pieces' sums added in piece order.
static __device__ double sample_set_mass(const struct sample_row *r, const struct sample_set *s, double *sums)
{
    sample_piece_sums(r, s, 0, r->V, sums);
    double t = 0.0;
    for (int p = 0; p < SAMPLE_FANOUT; p++) t += sums[p];
    __syncthreads(); // sums is reused by the next call
    return t;
}

// The first of the n masses v[] at which *base + their running sum exceeds x; *base becomes the
// running sum before it. If rounding leaves none, the last one with mass (the boundary is then
// within rounding, and that part's last member is a correct answer at that precision). -1 only
// when every mass is 0.
static __device__ int sample_pick(const double *v, int n, double x, double *base)
{
    double acc = *base, at_last = acc;
    int last = -1;
    for (int j = 0; j < n; j++) {
        if (v[j] > 0.0) {
            last = j;
            at_last = acc;
        }
        if (acc + v[j] > x) {
            *base = acc;
            return j;
        }
        acc += v[j];
    }
    *base = at_last;
    return last;
}

// The first id i in [lo, hi) of set s at which base + (running sum in id order) exceeds x; the
// pieces' sums for [lo, hi) may already be in sums (have_sums). Each level picks a piece with
// sample_pick and splits it again. Returns -1 only when the range holds no mass at all.
static __device__ int sample_search(const struct sample_row *r, const struct sample_set *s, int lo, int hi, double x,
                                    double base, double *sums, int have_sums)
{
    while (hi - lo > 32) {
        if (!have_sums) sample_piece_sums(r, s, lo, hi, sums);
        have_sums = 0;
        int pick = sample_pick(sums, SAMPLE_FANOUT, x, &base);
        __syncthreads(); // every thread has read sums
        if (pick < 0) return -1;
        int beg, end;
        sample_piece(lo, hi, pick, &beg, &end);
        lo = beg;
        hi = end;
    }
    // At most 32 values left: lane j of every warp weighs id lo + j (one load and exp each, side by
    // side), then every thread adds the weights in id order from the shuffles (same sums, same answer).
    int lane = threadIdx.x % 32, i = lo + lane, c = sample_cursor(r, i), found = -1;
    double w = i < hi ? sample_in_set(s, r, sample_value(r, i, &c), i) : 0.0, acc = base;
    for (int j = 0; j < hi - lo; j++) {
        double wj = __shfl_sync(0xffffffffu, w, j);
        if (wj > 0.0) {
            found = lo + j;
            if (acc + wj > x) return found;
            acc += wj;
        }
    }
    return found;
}

// ---- statistics (kernel 1) ----

// Value v at id i as one integer: the value's order-preserving image above, the inverted id below,
// so a larger integer is a larger value or, for equal values, a lower id.
static __device__ __forceinline__ unsigned long long sample_best(float v, int i)
{
    return ((unsigned long long)sample_key(v) << 32) | (uint32_t)~(uint32_t)i;
}

// The value and id packed by sample_best (-0 comes back as +0: they compare equal, weigh the same).
static __device__ __forceinline__ float sample_best_value(unsigned long long b)
{
    return sample_unkey((uint32_t)(b >> 32));
}
static __device__ __forceinline__ int sample_best_id(unsigned long long b) { return (int)~(uint32_t)b; }

static __device__ __forceinline__ struct sample_stats sample_stats_none(void)
{
    struct sample_stats st = {sample_best(-INFINITY, SAMPLE_NO_ID), 0};
    return st;
}

static __device__ __forceinline__ struct sample_stats sample_stats_merge(struct sample_stats a, struct sample_stats b)
{
    a.best = b.best > a.best ? b.best : a.best;
    a.finite += b.finite;
    return a;
}

// Value v at id i into a thread's statistics.
static __device__ __forceinline__ void sample_stats_add(struct sample_stats *st, float v, int i)
{
    if (isnan(v) || v == INFINITY) st->best = SAMPLE_BAD;
    else if (v != -INFINITY) {
        struct sample_stats one = {sample_best(v, i), 1};
        *st = sample_stats_merge(*st, one);
    }
}

// The warp's statistics merged (a butterfly: every lane ends with the same).
static __device__ struct sample_stats sample_stats_warp(struct sample_stats st)
{
    for (int off = 16; off > 0; off /= 2) {
        struct sample_stats o;
        o.best = __shfl_xor_sync(0xffffffffu, st.best, off);
        o.finite = __shfl_xor_sync(0xffffffffu, st.finite, off);
        st = sample_stats_merge(st, o);
    }
    return st;
}

// The row's statistics: its chunks' merged by the first warp, returned to every thread (each block
// that needs them merges them itself: cheaper than a launch).
static __device__ struct sample_stats sample_row_stats(const struct sample_args *a, long row)
{
    __shared__ struct sample_stats s_st;
    if (threadIdx.x < 32) {
        const struct sample_stats *part = a->stats + row * a->n_chunks;
        struct sample_stats st = sample_stats_none();
        for (int c = threadIdx.x; c < a->n_chunks; c += 32) st = sample_stats_merge(st, part[c]);
        st = sample_stats_warp(st);
        if (threadIdx.x == 0) s_st = st;
    }
    __syncthreads();
    struct sample_stats st = s_st;
    __syncthreads(); // s_st is free again
    return st;
}

// Whether a row has anything to sample: u in [0, 1), no NaN or +inf, something finite.
static __device__ int sample_row_ok(const struct sample_args *a, long row, const struct sample_stats *st)
{
    double u = a->u[row];
    return u >= 0.0 && u < 1.0 && st->best != SAMPLE_BAD && sample_best_value(st->best) != -INFINITY;
}

// The biased values of the overridden ids in [lo, hi) of one row, each adding its biases in the
// caller's order (the CPU's); the barrier publishes them to the block, later kernels see them anyway.
static __device__ void sample_overrides(const struct sample_args *a, const struct sample_row *r, long row, int lo,
                                        int hi)
{
    int end = sample_cursor(r, hi);
    for (int j = sample_cursor(r, lo) + threadIdx.x; j < end; j += blockDim.x) {
        float v = r->z[a->ov_id[j]];
        for (int t = a->ov_beg[j]; t < a->ov_beg[j + 1]; t++) v += a->ov_bias[t];
        a->ov_val[row * a->nu + j] = v;
    }
    __syncthreads();
}

// [*lo, *hi) = this block's chunk (blockIdx.x) of the row.
static __device__ __forceinline__ void sample_chunk_range(const struct sample_args *a, int *lo, int *hi)
{
    *lo = (int)blockIdx.x * a->chunk;
    *hi = min(*lo + a->chunk, a->V);
}

static __global__ void __launch_bounds__(SAMPLE_CHUNK_THREADS) sample_stats_kernel(struct sample_args a)
{
    __shared__ struct sample_stats s_w[32];
    long row = blockIdx.y;
    int lo, hi;
    sample_chunk_range(&a, &lo, &hi);
    struct sample_row r = sample_row_view(&a, row, -INFINITY);
    sample_overrides(&a, &r, row, lo, hi);
    struct sample_stats st = sample_stats_none();
    sample_each(&r, lo + (int)threadIdx.x, blockDim.x, hi, [&](float v, int i) { sample_stats_add(&st, v, i); });
    st = sample_stats_warp(st);
    if (threadIdx.x % 32 == 0) s_w[threadIdx.x / 32] = st;
    __syncthreads();
    if (threadIdx.x != 0) return;
    for (int w = 1; w < (int)(blockDim.x / 32); w++) st = sample_stats_merge(st, s_w[w]);
    a.stats[row * a.n_chunks + blockIdx.x] = st;
}

// ---- top-k: radix select over the chunks (kernel 2) ----

// Where the radix select stands after some rounds: the key bits chosen (prefix under mask) and the
// rank k of the wanted value among the keys that share them.
struct sample_radix {
    uint32_t prefix, mask;
    int k;
};

// One round's choice, by the first warp: the bin, from the top, in which the count of keys at or
// above first reaches s.k (bin 0 if none), and k's rank inside it. Lane l holds bins [8l, 8l + 8);
// a shuffle scan gives the count in the lanes above, and the one lane whose bins hold the crossing
// walks them down and writes the new state to *out (the caller's barrier publishes it).
static_assert(SAMPLE_RADIX_BINS == 32 * 8, "a lane holds 8 bins");
static __device__ void sample_radix_round(const int *h, int round, struct sample_radix s, struct sample_radix *out)
{
    int lane = threadIdx.x, cnt[8], sum = 0;
    for (int j = 0; j < 8; j++) {
        cnt[j] = h[8 * lane + j];
        sum += cnt[j];
    }
    int suffix = sum; // this lane's bins and every lane above
    for (int off = 1; off < 32; off *= 2) {
        int o = __shfl_down_sync(0xffffffffu, suffix, off);
        if (lane + off < 32) suffix += o;
    }
    int cum = suffix - sum; // keys in higher bins
    if (cum >= s.k) return; // the crossing is in a higher lane
    for (int j = 7; j >= 0; j--) {
        int b = 8 * lane + j;
        if (cum + cnt[j] >= s.k || b == 0) {
            int shift = 24 - 8 * round;
            out->prefix = s.prefix | (uint32_t)b << shift;
            out->mask = s.mask | 0xffu << shift;
            out->k = s.k - cum;
            return;
        }
        cum += cnt[j];
    }
}

// The choices of rounds [0, rounds) replayed from the row's histograms (every block needs them and
// they are small): the key bits chosen and k's rank among the keys that share them. Every thread
// of the block must call it; all get the same.
static __device__ struct sample_radix sample_radix_replay(const int *hist, int k, int rounds)
{
    __shared__ struct sample_radix s_sel;
    struct sample_radix s = {0u, 0u, k};
    for (int round = 0; round < rounds; round++) {
        if (threadIdx.x < 32) sample_radix_round(hist + round * SAMPLE_RADIX_BINS, round, s, &s_sel);
        __syncthreads();
        s = s_sel;
        __syncthreads(); // s_sel is rewritten in the next round
    }
    return s;
}

// Whether top-k cuts this row: on for the call, and at least k finite values (else every finite
// token is kept, as in the CPU).
static __device__ __forceinline__ int sample_topk_row(const struct sample_args *a, const struct sample_stats *st)
{
    return a->topk_on && st->finite >= a->top_k;
}

static __global__ void __launch_bounds__(SAMPLE_CHUNK_THREADS) sample_topk_kernel(struct sample_args a, int round)
{
    __shared__ int hist[SAMPLE_RADIX_BINS];
    long row = blockIdx.y;
    struct sample_stats st = sample_row_stats(&a, row);
    if (!sample_row_ok(&a, row, &st) || !sample_topk_row(&a, &st)) return; // the same in every thread
    int *row_hist = a.hist + row * SAMPLE_RADIX_ROUNDS * SAMPLE_RADIX_BINS;
    struct sample_radix sel = sample_radix_replay(row_hist, a.top_k, round);
    for (int b = threadIdx.x; b < SAMPLE_RADIX_BINS; b += blockDim.x) hist[b] = 0;
    __syncthreads();
    int shift = 24 - 8 * round, lo, hi;
    sample_chunk_range(&a, &lo, &hi);
    struct sample_row r = sample_row_view(&a, row, sample_best_value(st.best));
    sample_each(&r, lo + (int)threadIdx.x, blockDim.x, hi, [&](float v, int) {
        if (v == -INFINITY) return;
        uint32_t key = sample_key(v);
        if ((key & sel.mask) == sel.prefix) atomicAdd(&hist[(key >> shift) & 255u], 1);
    });
    __syncthreads();
    int *out = row_hist + round * SAMPLE_RADIX_BINS;
    for (int b = threadIdx.x; b < SAMPLE_RADIX_BINS; b += blockDim.x)
        if (hist[b]) atomicAdd(&out[b], hist[b]);
}

// The row's top-k threshold (its k-th largest finite value, exactly), or -inf when top-k does not
// cut the row. Every thread of the block must call it.
static __device__ float sample_threshold(const struct sample_args *a, long row, const struct sample_stats *st)
{
    if (!sample_topk_row(a, st)) return -INFINITY; // the same in every thread
    const int *h = a->hist + row * SAMPLE_RADIX_ROUNDS * SAMPLE_RADIX_BINS;
    return sample_unkey(sample_radix_replay(h, a->top_k, SAMPLE_RADIX_ROUNDS).prefix);
}

// ---- masses (kernel 3) ----

// One pass over the chunk [lo, hi) in the pieces of sample_piece_sums: every weight into the
// normaliser, the kept ones (finite, >= thr) per piece and counted. A piece's kept sum has the bits
// sample_piece_mass would give it for the kept set (a token outside adds 0.0, which changes no
// bits), so the draw's descent may start from the stored sums. The chunk's kept mass is the piece
// sums added in piece order.
static __device__ void sample_chunk_mass(const struct sample_row *r, float thr, int lo, int hi, double *kept_out,
                                         struct sample_chunk *out)
{
    __shared__ double s_piece[SAMPLE_FANOUT], s_norm[32];
    __shared__ int s_cnt[32];
    int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32, cnt = 0;
    double norm = 0.0;
    for (int p = warp; p < SAMPLE_FANOUT; p += warps) {
        int beg, end;
        sample_piece(lo, hi, p, &beg, &end);
        double kept = 0.0;
        if (beg < end)
            sample_each(r, beg + lane, 32, end, [&](float v, int) {
                double w = v == -INFINITY ? 0.0 : sample_weight(v, r->m, r->inv_t);
                int in = v != -INFINITY && v >= thr;
                norm += w;
                kept += in ? w : 0.0;
                cnt += in;
            });
        kept = sample_warp_sum(kept);
        if (lane == 0) s_piece[p] = kept;
    }
    norm = sample_warp_sum(norm);
    cnt = sample_warp_sum_int(cnt);
    if (lane == 0) {
        s_norm[warp] = norm;
        s_cnt[warp] = cnt;
    }
    __syncthreads();
    if (threadIdx.x < SAMPLE_FANOUT) out->piece[threadIdx.x] = s_piece[threadIdx.x];
    if (threadIdx.x == 0) {
        double kept = 0.0;
        for (int p = 0; p < SAMPLE_FANOUT; p++) kept += s_piece[p];
        norm = 0.0;
        cnt = 0;
        for (int w = 0; w < warps; w++) {
            norm += s_norm[w];
            cnt += s_cnt[w];
        }
        *kept_out = kept;
        out->norm = norm;
        out->n_kept = cnt;
    }
}

static __global__ void __launch_bounds__(SAMPLE_CHUNK_THREADS) sample_mass_kernel(struct sample_args a)
{
    long row = blockIdx.y;
    struct sample_stats st = sample_row_stats(&a, row);
    if (!sample_row_ok(&a, row, &st)) return; // the same in every thread; the row kernel writes -1
    struct sample_row r = sample_row_view(&a, row, sample_best_value(st.best));
    float thr = sample_threshold(&a, row, &st);
    int lo, hi;
    sample_chunk_range(&a, &lo, &hi);
    size_t at = (size_t)row * a.n_chunks + blockIdx.x;
    sample_chunk_mass(&r, thr, lo, hi, &a.kept[at], &a.chunks[at]);
}

// ---- the row: sums, nucleus, draw (kernel 4) ----

// A row's sums: the full softmax's normaliser, the kept set's mass and size.
struct sample_mass {
    double norm, kept;
    int n_kept;
};

// The chunks' entries staged in shared memory, SAMPLE_ROW_TILE at a time (loaded side by side by
// as many threads, then read by every thread in chunk order).
static_assert((int)SAMPLE_THREADS >= (int)SAMPLE_ROW_TILE, "a thread stages each entry of a tile");
struct sample_row_tile {
    double kept[SAMPLE_ROW_TILE], norm[SAMPLE_ROW_TILE];
    int n_kept[SAMPLE_ROW_TILE];
};

// The chunks' sums added in chunk order (each thread alike). With at most SAMPLE_ROW_TILE chunks
// (every vocabulary up to 1M ids) t->kept holds the row's kept masses afterwards, for the draw.
static __device__ struct sample_mass sample_row_mass(const struct sample_args *a, long row,
                                                     struct sample_row_tile *t)
{
    struct sample_mass ms = {0.0, 0.0, 0};
    const double *kept = a->kept + row * a->n_chunks;
    const struct sample_chunk *ch = a->chunks + row * a->n_chunks;
    for (int c0 = 0; c0 < a->n_chunks; c0 += SAMPLE_ROW_TILE) {
        int n = min((int)SAMPLE_ROW_TILE, a->n_chunks - c0), j = threadIdx.x;
        if (c0 > 0) __syncthreads(); // every thread has read the last tile
        if (j < n) {
            t->kept[j] = kept[c0 + j];
            t->norm[j] = ch[c0 + j].norm;
            t->n_kept[j] = ch[c0 + j].n_kept;
        }
        __syncthreads();
        for (j = 0; j < n; j++) {
            ms.norm += t->norm[j];
            ms.kept += t->kept[j];
            ms.n_kept += t->n_kept[j];
        }
    }
    return ms;
}

static __device__ struct sample_set sample_set_kept(float thr)
{
    struct sample_set s = {thr, 0u, 0xffffffffu, 0u, 0, 0};
    return s;
}

#include "sample_nucleus.cuh" // top-p: the nucleus cut and its draw, one block per row

// The plain draw: the first chunk at which the running kept mass, added in chunk order as the total
// was, exceeds x; then the descent inside it, starting from the chunk's stored piece sums.
static __device__ int sample_draw(const struct sample_args *a, const struct sample_row *r, float thr, long row,
                                  double x, const struct sample_row_tile *t, double *sums)
{
    double base = 0.0;
    const double *masses = a->n_chunks <= SAMPLE_ROW_TILE ? t->kept : a->kept + row * a->n_chunks;
    int c = sample_pick(masses, a->n_chunks, x, &base);
    if (c < 0) return -1;
    const struct sample_chunk *ch = a->chunks + row * a->n_chunks + c;
    if (threadIdx.x < SAMPLE_FANOUT) sums[threadIdx.x] = ch->piece[threadIdx.x];
    __syncthreads();
    struct sample_set kept = sample_set_kept(thr);
    int lo = c * a->chunk;
    return sample_search(r, &kept, lo, min(lo + a->chunk, r->V), x, base, sums, 1);
}

static __device__ void sample_finish(const struct sample_args *a, int tok, float lp)
{
    if (threadIdx.x != 0) return;
    a->tokens[blockIdx.x] = tok;
    if (a->logp) a->logp[blockIdx.x] = tok < 0 ? 0.0f : lp;
}

static __global__ void __launch_bounds__(SAMPLE_THREADS) sample_row_kernel(struct sample_args a)
{
    __shared__ double sums[32];
    __shared__ struct sample_row_tile tile;
    long row = blockIdx.x;
    struct sample_stats st = sample_row_stats(&a, row);
    if (!sample_row_ok(&a, row, &st)) return sample_finish(&a, -1, 0.0f);
    struct sample_row r = sample_row_view(&a, row, sample_best_value(st.best));
    float thr = sample_threshold(&a, row, &st);
    struct sample_mass ms = sample_row_mass(&a, row, &tile);
    double u = a.u[row];

    int tok = sample_best_id(st.best);
    if (!a.greedy && a.top_p < 1.0) tok = sample_nucleus(&r, thr, ms, a.top_p, u, sums);
    else if (!a.greedy) tok = sample_draw(&a, &r, thr, row, u * ms.kept, &tile, sums);
    if (tok < 0) tok = sample_best_id(st.best); // unreachable with consistent sums; the CPU's guard
    int c = sample_cursor(&r, tok);
    float b = sample_value(&r, tok, &c);
    sample_finish(&a, tok, (float)(((double)b - r.m) * r.inv_t - log(ms.norm)));
}

// Bias entries ordered by (id, position in the call): ties keep the caller's order, which is the
// order the CPU adds them in.
struct sample_bias_ent {
    int32_t id, at;
};

static int sample_bias_cmp(const void *pa, const void *pb)
{
    const struct sample_bias_ent *a = (const struct sample_bias_ent *)pa, *b = (const struct sample_bias_ent *)pb;
    if (a->id != b->id) return (a->id > b->id) - (a->id < b->id);
    return (a->at > b->at) - (a->at < b->at);
}

static size_t sample_align(size_t n) { return (n + 15) & ~(size_t)15; }

// Ids per chunk: V / SAMPLE_MIN_CHUNKS rounded up to a multiple of SAMPLE_CHUNK_STEP, at most
// SAMPLE_CHUNK_MAX (4096 from V = 61441 up: 38 chunks for 151936; 256 for V <= 4096). A function
// of V alone (see the top), so a row's token does not depend on the other rows of the call.
static int sample_chunk_len(int V)
{
    long n = ((long)V + SAMPLE_MIN_CHUNKS - 1) / SAMPLE_MIN_CHUNKS;
    n = (n + SAMPLE_CHUNK_STEP - 1) / SAMPLE_CHUNK_STEP * SAMPLE_CHUNK_STEP;
    return n > SAMPLE_CHUNK_MAX ? SAMPLE_CHUNK_MAX : (int)n;
}

extern "C" void sample_tokens_cuda(int32_t *tokens, float *logp, const float *logits, int rows, int V,
                                   const struct sample_params *p, const double *u, void *stream)
{
    if (rows <= 0) return;
    cudaStream_t st = (cudaStream_t)stream;
    size_t rb = (size_t)rows * sizeof(float);
    if (V < 1 || !logits || !p || !sample_params_valid(p, V)) { // every row is invalid
        CUDA_CHECK(cudaMemsetAsync(tokens, 0xff, (size_t)rows * sizeof(int32_t), st)); // -1
        if (logp) CUDA_CHECK(cudaMemsetAsync(logp, 0, rb, st));
        return;
    }
    MMUPT_CHECK(tokens && u);
    MMUPT_CHECK(V <= (1 << 30)); // piece bounds (start + length) stay inside int
    MMUPT_CHECK(rows <= 65535);  // the chunk kernels' grid.y
    int chunk = sample_chunk_len(V), n_chunks = (V + chunk - 1) / chunk;
    int greedy = p->temperature == 0.0f, topk_on = !greedy && p->top_k > 0 && p->top_k < V;

    // The overrides: unique ids (sorted), where each one's biases start, the biases grouped.
    int nb = p->n_bias, nu = 0;
    struct sample_bias_ent *e = (struct sample_bias_ent *)mmupt_xmalloc((size_t)(nb ? nb : 1) * sizeof *e);
    for (int i = 0; i < nb; i++) e[i] = (struct sample_bias_ent){p->bias_ids[i], i};
    qsort(e, (size_t)nb, sizeof *e, sample_bias_cmp);
    for (int i = 0; i < nb; i++) nu += i == 0 || e[i].id != e[i - 1].id;

    // One stream-ordered scratch: [u | ov_id | ov_beg | ov_bias] from the host, then the kernels'
    // [ov_val | stats | kept | chunks | hist (top-k only)].
    size_t parts = (size_t)rows * (size_t)n_chunks;
    size_t o_id = sample_align((size_t)rows * sizeof(double));
    size_t o_beg = o_id + sample_align((size_t)(nu + 1) * sizeof(int32_t));
    size_t o_bias = o_beg + sample_align((size_t)(nu + 1) * sizeof(int32_t));
    size_t o_val = o_bias + sample_align((size_t)nb * sizeof(float));
    size_t o_stats = o_val + sample_align((size_t)rows * (size_t)nu * sizeof(float));
    size_t o_kept = o_stats + sample_align(parts * sizeof(struct sample_stats));
    size_t o_chunks = o_kept + sample_align(parts * sizeof(double));
    size_t o_hist = o_chunks + sample_align(parts * sizeof(struct sample_chunk));
    size_t hist_bytes = topk_on ? (size_t)rows * SAMPLE_RADIX_ROUNDS * SAMPLE_RADIX_BINS * sizeof(int) : 0;
    size_t bytes = o_hist + hist_bytes;
    unsigned char *h = (unsigned char *)mmupt_xmalloc(o_val);
    memcpy(h, u, (size_t)rows * sizeof(double));
    int32_t *id = (int32_t *)(h + o_id), *beg = (int32_t *)(h + o_beg);
    float *bias = (float *)(h + o_bias);
    for (int i = 0, j = -1; i < nb; i++) {
        if (i == 0 || e[i].id != e[i - 1].id) {
            id[++j] = e[i].id;
            beg[j] = i;
        }
        bias[i] = p->bias[e[i].at];
    }
    id[nu] = SAMPLE_NO_ID;
    beg[nu] = nb;
    free(e);

    unsigned char *d = NULL;
    CUDA_CHECK(cudaMallocAsync((void **)&d, bytes, st));
    // From pageable memory the copy has taken the bytes when it returns, so h may go at once.
    CUDA_CHECK(cudaMemcpyAsync(d, h, o_val, cudaMemcpyHostToDevice, st));
    free(h);
    if (hist_bytes) CUDA_CHECK(cudaMemsetAsync(d + o_hist, 0, hist_bytes, st)); // the rounds add into it

    struct sample_args a;
    a.logits = logits;
    a.V = V;
    a.chunk = chunk;
    a.n_chunks = n_chunks;
    a.tokens = tokens;
    a.logp = logp;
    a.u = (const double *)d;
    a.ov_id = (const int32_t *)(d + o_id);
    a.ov_beg = (const int32_t *)(d + o_beg);
    a.ov_bias = (const float *)(d + o_bias);
    a.ov_val = (float *)(d + o_val);
    a.stats = (struct sample_stats *)(d + o_stats);
    a.kept = (double *)(d + o_kept);
    a.chunks = (struct sample_chunk *)(d + o_chunks);
    a.hist = hist_bytes ? (int *)(d + o_hist) : (int *)NULL;
    a.nu = nu;
    a.greedy = greedy;
    a.top_k = p->top_k;
    a.topk_on = topk_on;
    a.inv_t = greedy ? 1.0 : 1.0 / (double)p->temperature;
    a.top_p = (double)p->top_p;

    dim3 grid((unsigned)n_chunks, (unsigned)rows);
    sample_stats_kernel<<<grid, SAMPLE_CHUNK_THREADS, 0, st>>>(a);
    CUDA_CHECK(cudaGetLastError());
    for (int round = 0; topk_on && round < SAMPLE_RADIX_ROUNDS; round++) {
        sample_topk_kernel<<<grid, SAMPLE_CHUNK_THREADS, 0, st>>>(a, round);
        CUDA_CHECK(cudaGetLastError());
    }
    sample_mass_kernel<<<grid, SAMPLE_CHUNK_THREADS, 0, st>>>(a);
    CUDA_CHECK(cudaGetLastError());
    sample_row_kernel<<<(unsigned)rows, SAMPLE_THREADS, 0, st>>>(a);
    CUDA_CHECK(cudaGetLastError());
    CUDA_CHECK(cudaFreeAsync(d, st));
}
