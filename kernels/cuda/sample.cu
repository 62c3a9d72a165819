// Token sampling on the device: the CUDA twin of kernels/cpu/sample.c, whose per-row semantics are
// sample_token's (src/sampler/sample.c). One block per row; every reduction adds in an order fixed
// by the launch shape (no float atomics), so a call repeats bit for bit.
//
// Per row:
//   0. the biased values of the few biased ids ("overrides", added in the CPU's order) into a
//      per-row scratch; every later read of b[i] takes z[i] or its override (a cursor per thread
//      walks the sorted override ids, so the lookup costs one compare per element);
//   1. pass 1: the maximum m with its lowest id (the greedy token and the draw's fallback), a NaN or
//      +inf flag (invalid row), and the count of finite values (top-k);
//   2. top-k (if on): the exact k-th largest finite value by radix select on the order-preserving
//      uint32 image of the float, 8 bits per pass (4 passes, integer histograms in shared memory);
//   3. pass 2: in "warp pieces" (warp w owns a contiguous piece of the row, its lanes read 32
//      consecutive values at a time) the weights w = exp((b - m) / T) summed in double: the
//      normaliser of the full softmax (logp), the kept mass and count, and each piece's kept mass;
//   4. without top-p, the draw: the first kept id whose running sum exceeds u * total, found by
//      descending through the pieces (each level splits the chosen piece among the warps again,
//      down to 32 values that every thread scans in id order);
//      with top-p, the candidates within `gap` nats of the best (a superset of the nucleus, as in
//      the CPU) are gathered into shared memory and, if at most SAMPLE_SORT_CAP, bitonic-sorted by
//      (value desc, id asc); a block scan in fixed order gives the nucleus cut and the draw. More
//      candidates than that (a flat distribution) take a slower exact path: binary searches over
//      the float's uint32 image for the value at the nucleus cut and at the draw, each step one
//      pass over the row (~70 passes in all), and a search by count for ties at either.
//
// Weights are (float)exp((double)x) with x the CPU's float argument: the correctly rounded expf
// (within the double exp's error). glibc's expf, which the CPU reference uses, differs from it by
// one ulp on ~6e-4 of arguments (CUDA's own expf, allowed 2 ulp, would differ far more often), so
// cumulative sums agree to ~1e-10 relative and the drawn token differs from the CPU's only at
// boundaries within that distance, or within the tree-order rounding of the double sums.
// The price is a double exp per element of pass 2: cheap on H100/H200 (FP64 at half the FP32
// rate), slow on GPUs with 1/64-rate FP64.
#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mmupt/cuda_check.h"
#include "mmupt/err.h"
#include "mmupt/kernels.h"
#include "reduce.cuh"

// Threads per row. 16 warps: enough loads in flight for one row per SM, and the register budget
// of __launch_bounds__ leaves room (64 rows use 64 SMs; the plain path is two passes over the row).
enum { SAMPLE_THREADS = 512, SAMPLE_WARPS = SAMPLE_THREADS / 32 };
// Most top-p candidates sorted in shared memory: 4096 x 8-byte keys = 32 KiB.
enum { SAMPLE_SORT_CAP = 4096 };
// Sentinel closing the override id list, above every token id.
#define SAMPLE_NO_ID 0x7fffffff

// Everything a block needs about its call; the per-row parts are indexed by blockIdx.x.
struct sample_args {
    const float *logits;
    int V;
    int32_t *tokens;
    float *logp;
    const double *u;
    const int32_t *ov_id;   // [nu + 1] sorted unique biased ids, then SAMPLE_NO_ID
    const int32_t *ov_beg;  // [nu + 1] ov_bias[ov_beg[j] .. ov_beg[j+1]) are id j's biases, in call order
    const float *ov_bias;
    float *ov_val;          // [rows, nu] biased values of the overridden ids
    int nu;
    int greedy, top_k;
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

// Length of each warp's piece of [lo, hi): a multiple of 32 so lanes stay aligned.
static __device__ __forceinline__ int sample_piece_len(int lo, int hi)
{
    int n = (hi - lo + SAMPLE_WARPS - 1) / SAMPLE_WARPS;
    return (n + 31) / 32 * 32;
}

// sums[w] = the set's mass in warp w's piece of [lo, hi) (a barrier publishes it to the block).
static __device__ void sample_piece_sums(const struct sample_row *r, const struct sample_set *s, int lo, int hi,
                                         double *sums)
{
    int lane = threadIdx.x % 32, warp = threadIdx.x / 32, P = sample_piece_len(lo, hi);
    int beg = lo + warp * P, end = min(beg + P, hi);
    double acc = 0.0;
    if (beg < end) {
        int c = sample_cursor(r, beg + lane);
        for (int i = beg + lane; i < end; i += 32) acc += sample_in_set(s, r, sample_value(r, i, &c), i);
    }
    acc = sample_warp_sum(acc);
    if (lane == 0) sums[warp] = acc;
    __syncthreads();
}

// The mass of set s over the whole row, as the pieces' sums added in piece order.
static __device__ double sample_set_mass(const struct sample_row *r, const struct sample_set *s, double *sums)
{
    sample_piece_sums(r, s, 0, r->V, sums);
    double t = 0.0;
    for (int w = 0; w < SAMPLE_WARPS; w++) t += sums[w];
    __syncthreads(); // sums is reused by the next call
    return t;
}

// The first id i in [lo, hi) of set s at which base + (running sum in id order) exceeds x; the
// pieces' sums for [lo, hi) may already be in sums (have_sums). Each level picks the first piece
// whose running total passes x; if rounding leaves none, the last piece with mass (the boundary is
// then within rounding, and that piece's last member is a correct answer at that precision).
// Returns -1 only when the range holds no mass at all.
static __device__ int sample_search(const struct sample_row *r, const struct sample_set *s, int lo, int hi, double x,
                                    double base, double *sums, int have_sums)
{
    while (hi - lo > 32) {
        if (!have_sums) sample_piece_sums(r, s, lo, hi, sums);
        have_sums = 0;
        int P = sample_piece_len(lo, hi), pick = -1, last = -1;
        double acc = base, at_pick = base, at_last = base;
        for (int w = 0; w < SAMPLE_WARPS && pick < 0; w++) {
            double sw = sums[w];
            if (sw > 0.0) {
                last = w;
                at_last = acc;
            }
            if (acc + sw > x) {
                pick = w;
                at_pick = acc;
            }
            acc += sw;
        }
        __syncthreads(); // every thread has read sums
        if (pick < 0) {
            if (last < 0) return -1;
            pick = last;
            at_pick = at_last;
        }
        base = at_pick;
        int nlo = lo + pick * P;
        hi = min(nlo + P, hi);
        lo = nlo;
    }
    // At most 32 values left: every thread scans them in id order (same reads, same answer).
    int c = sample_cursor(r, lo), found = -1;
    double acc = base;
    for (int i = lo; i < hi; i++) {
        double w = sample_in_set(s, r, sample_value(r, i, &c), i);
        if (w > 0.0) {
            found = i;
            if (acc + w > x) return i;
            acc += w;
        }
    }
    return found;
}

// Pass 1 results, the same in every thread.
struct sample_stats {
    float m;    // largest biased value (-inf: nothing finite)
    int arg;    // its lowest id
    int bad;    // a NaN or +inf value
    int finite; // values other than -inf
};

static __device__ struct sample_stats sample_pass1(const struct sample_row *r)
{
    __shared__ float s_m[32];
    __shared__ int s_a[32], s_n[32];
    float m = -INFINITY;
    int arg = SAMPLE_NO_ID, bad = 0, fin = 0, c = sample_cursor(r, threadIdx.x);
    for (int i = threadIdx.x; i < r->V; i += blockDim.x) {
        float v = sample_value(r, i, &c);
        if (isnan(v) || v == INFINITY) bad = 1;
        else if (v != -INFINITY) {
            fin++;
            if (v > m) { // strict, and ids rise: ties keep the lowest id
                m = v;
                arg = i;
            }
        }
    }
    for (int off = 16; off > 0; off /= 2) { // (value desc, id asc) is exact: any order gives the same
        float om = __shfl_xor_sync(0xffffffffu, m, off);
        int oa = __shfl_xor_sync(0xffffffffu, arg, off);
        fin += __shfl_xor_sync(0xffffffffu, fin, off);
        if (om > m || (om == m && oa < arg)) {
            m = om;
            arg = oa;
        }
    }
    int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    if (lane == 0) {
        s_m[warp] = m;
        s_a[warp] = arg;
        s_n[warp] = fin;
    }
    struct sample_stats st;
    st.bad = __syncthreads_or(bad);
    st.m = -INFINITY;
    st.arg = SAMPLE_NO_ID;
    st.finite = 0;
    for (int w = 0; w < SAMPLE_WARPS; w++) {
        if (s_m[w] > st.m || (s_m[w] == st.m && s_a[w] < st.arg)) {
            st.m = s_m[w];
            st.arg = s_a[w];
        }
        st.finite += s_n[w];
    }
    __syncthreads();
    return st;
}

// The k-th largest finite value (k <= the number of finite values), exactly: radix select on the
// keys, one byte per pass from the top, counting in a shared histogram (integer atomics: the counts
// do not depend on their order).
static __device__ float sample_kth_largest(const struct sample_row *r, int k)
{
    __shared__ int hist[256];
    __shared__ int sel[2];
    uint32_t prefix = 0, mask = 0;
    for (int shift = 24; shift >= 0; shift -= 8) {
        for (int b = threadIdx.x; b < 256; b += blockDim.x) hist[b] = 0;
        __syncthreads();
        int c = sample_cursor(r, threadIdx.x);
        for (int i = threadIdx.x; i < r->V; i += blockDim.x) {
            float v = sample_value(r, i, &c);
            if (v == -INFINITY) continue;
            uint32_t key = sample_key(v);
            if ((key & mask) == prefix) atomicAdd(&hist[(key >> shift) & 255u], 1);
        }
        __syncthreads();
        if (threadIdx.x == 0) { // the bin holding the k-th largest, and k's rank inside it
            int cum = 0, b = 255;
            while (b > 0 && cum + hist[b] < k) cum += hist[b--];
            sel[0] = b;
            sel[1] = k - cum;
        }
        __syncthreads();
        prefix |= (uint32_t)sel[0] << shift;
        mask |= 0xffu << shift;
        k = sel[1];
        __syncthreads(); // sel is rewritten in the next round
    }
    return sample_unkey(prefix);
}

// Pass 2 results: the full softmax's normaliser, the kept set's mass and size.
struct sample_mass {
    double norm, kept;
    int n_kept;
};

// One pass in the pieces of sample_piece_sums (so sums[] is the kept set's, as that function would
// compute it, bit for bit): the normaliser over every token, the kept mass and count.
static __device__ struct sample_mass sample_pass2(const struct sample_row *r, float thr, double *sums)
{
    __shared__ double s_norm[32];
    __shared__ int s_cnt[32];
    int lane = threadIdx.x % 32, warp = threadIdx.x / 32, P = sample_piece_len(0, r->V);
    int beg = warp * P, end = min(beg + P, r->V), cnt = 0;
    double norm = 0.0, kept = 0.0;
    if (beg < end) {
        int c = sample_cursor(r, beg + lane);
        for (int i = beg + lane; i < end; i += 32) {
            float v = sample_value(r, i, &c);
            double w = v == -INFINITY ? 0.0 : sample_weight(v, r->m, r->inv_t);
            int in = v != -INFINITY && v >= thr;
            norm += w;
            kept += in ? w : 0.0;
            cnt += in;
        }
    }
    norm = sample_warp_sum(norm);
    kept = sample_warp_sum(kept);
    for (int off = 16; off > 0; off /= 2) cnt += __shfl_xor_sync(0xffffffffu, cnt, off);
    if (lane == 0) {
        sums[warp] = kept;
        s_norm[warp] = norm;
        s_cnt[warp] = cnt;
    }
    __syncthreads();
    struct sample_mass ms = {0.0, 0.0, 0};
    for (int w = 0; w < SAMPLE_WARPS; w++) {
        ms.norm += s_norm[w];
        ms.kept += sums[w];
        ms.n_kept += s_cnt[w];
    }
    __syncthreads();
    return ms;
}

static __device__ struct sample_set sample_set_kept(float thr)
{
    struct sample_set s = {thr, 0u, 0xffffffffu, 0u, 0, 0};
    return s;
}

// The n-th member (n >= 1, in id order) of a counted set, or -1.
static __device__ int sample_nth(const struct sample_row *r, struct sample_set s, int n, double *sums)
{
    s.count = 1;
    return sample_search(r, &s, 0, r->V, (double)n - 0.5, 0.0, sums, 0);
}

// Largest key t in [lo, hi) for which the mass of s restricted to keys >= t passes the test
// (>= x when ge, else > x), given that it passes at lo: a binary search, one pass per step.
static __device__ uint32_t sample_key_search(const struct sample_row *r, struct sample_set s, uint32_t lo, uint32_t hi,
                                             double x, int ge, double *sums)
{
    while (hi - lo > 1) {
        uint32_t mid = lo + (hi - lo) / 2;
        s.kmin = mid;
        double mass = sample_set_mass(r, &s, sums);
        if (ge ? mass >= x : mass > x) lo = mid;
        else hi = mid;
    }
    return lo;
}

// Members of s with key exactly k, counted.
static __device__ int sample_count_at(const struct sample_row *r, struct sample_set s, uint32_t k, double *sums)
{
    s.kmin = s.kmax = k;
    s.count = 1;
    return (int)sample_set_mass(r, &s, sums);
}

// Top-p when the candidates do not fit the shared sort: exact, by binary searches on the key.
// The nucleus is every kept token above the cut value v* plus the first c of the ties at v* (in id
// order), with v* the largest value whose mass at or above reaches the target; the draw is found
// the same way inside the nucleus.
static __device__ int sample_nucleus_slow(const struct sample_row *r, float thr, double total, double top_p, double u,
                                          double *sums)
{
    struct sample_set s = sample_set_kept(thr);
    double target = top_p * total;
    uint32_t top = sample_key(r->m) + 1u; // no mass at or above
    uint32_t ks = sample_key_search(r, s, 0u, top, target, 1, sums);
    s.kmin = ks + 1u;
    double above = sample_set_mass(r, &s, sums);
    double wt = sample_weight(sample_unkey(ks), r->m, r->inv_t);
    int ties = sample_count_at(r, s, ks, sums), c = ties;
    if (wt > 0.0) {
        double need = ceil((target - above) / wt);
        c = need < 1.0 ? 1 : need > (double)ties ? ties : (int)need;
        while (c > 1 && above + (c - 1) * wt >= target) c--;
        while (c < ties && above + c * wt < target) c++;
    }
    struct sample_set nuc = s;
    nuc.kmin = ks;
    nuc.kcut = ks;
    nuc.id_cut = SAMPLE_NO_ID;
    if (c < ties) {
        struct sample_set tie = s;
        tie.kmin = tie.kmax = ks;
        nuc.id_cut = sample_nth(r, tie, c, sums);
    }

    double x = u * sample_set_mass(r, &nuc, sums);
    uint32_t ke = sample_key_search(r, nuc, ks, top, x, 0, sums);
    struct sample_set hi = nuc;
    hi.kmin = ke + 1u;
    double before = ke + 1u < top ? sample_set_mass(r, &hi, sums) : 0.0;
    double we = sample_weight(sample_unkey(ke), r->m, r->inv_t);
    int nte = sample_count_at(r, nuc, ke, sums), q = 0;
    if (we > 0.0) {
        double f = floor((x - before) / we);
        q = f < 0.0 ? 0 : f > (double)(nte - 1) ? nte - 1 : (int)f;
        while (q > 0 && before + q * we > x) q--;
        while (q < nte - 1 && before + (q + 1) * we <= x) q++;
    }
    struct sample_set tie = nuc;
    tie.kmin = tie.kmax = ke;
    return sample_nth(r, tie, q + 1, sums);
}

// Sort key of a candidate: value image above, inverted id below, so that descending key order is
// (value desc, id asc). Real candidates are > 0 (finite keys are), so 0 pads to the end.
static __device__ __forceinline__ uint64_t sample_cand_key(float v, int i)
{
    return ((uint64_t)sample_key(v) << 32) | (uint32_t)~(uint32_t)i;
}

// Bitonic sort of keys[0, n2), n2 a power of two, into descending order.
static __device__ void sample_bitonic_desc(uint64_t *keys, int n2)
{
    for (int k = 2; k <= n2; k <<= 1)
        for (int j = k >> 1; j > 0; j >>= 1) {
            for (int i = threadIdx.x; i < n2; i += blockDim.x) {
                int p = i ^ j;
                if (p <= i) continue;
                uint64_t a = keys[i], b = keys[p];
                if ((i & k) == 0 ? a < b : a > b) {
                    keys[i] = b;
                    keys[p] = a;
                }
            }
            __syncthreads();
        }
}

// Exclusive prefix of each thread's x over the block in thread order, in a fixed order: a
// Hillis-Steele scan within each warp, then the warps' totals added one by one.
static __device__ double sample_block_excl_scan(double x)
{
    __shared__ double s_tot[32];
    int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    double incl = x;
    for (int off = 1; off < 32; off *= 2) {
        double y = __shfl_up_sync(0xffffffffu, incl, off);
        if (lane >= off) incl += y;
    }
    double excl = __shfl_up_sync(0xffffffffu, incl, 1);
    if (lane == 0) excl = 0.0;
    if (lane == 31) s_tot[warp] = incl;
    __syncthreads();
    double base = 0.0;
    for (int w = 0; w < warp; w++) base += s_tot[w];
    __syncthreads();
    return base + excl;
}

static __device__ int sample_block_min_int(int v)
{
    __shared__ int s_v[32];
    for (int off = 16; off > 0; off /= 2) v = min(v, __shfl_xor_sync(0xffffffffu, v, off));
    if (threadIdx.x % 32 == 0) s_v[threadIdx.x / 32] = v;
    __syncthreads();
    for (int w = 0; w < SAMPLE_WARPS; w++) v = min(v, s_v[w]);
    __syncthreads();
    return v;
}

// Top-p: the nucleus (smallest prefix in (value desc, id asc) order whose mass reaches
// top_p * total) and the draw inside it. The candidates within `gap` nats of the best are the
// CPU's superset of the nucleus; when they fit SAMPLE_SORT_CAP they are sorted in shared memory,
// else (or if rounding puts the target beyond them) sample_nucleus_slow decides.
static __device__ int sample_nucleus(const struct sample_row *r, float thr, struct sample_mass ms, double top_p,
                                     double u, double *sums)
{
    __shared__ uint64_t keys[SAMPLE_SORT_CAP];
    __shared__ int s_n;
    __shared__ double s_total;
    double target = top_p * ms.kept;
    double gap = log((double)(ms.n_kept > 1 ? ms.n_kept - 1 : 1) / (1.0 - top_p)) + 1.0;
    if (threadIdx.x == 0) s_n = 0;
    __syncthreads();
    double near = 0.0;
    int c = sample_cursor(r, threadIdx.x);
    for (int i = threadIdx.x; i < r->V; i += blockDim.x) {
        float v = sample_value(r, i, &c);
        if (v == -INFINITY || !(v >= thr) || ((double)v - r->m) * r->inv_t < -gap) continue;
        near += sample_weight(v, r->m, r->inv_t);
        int at = atomicAdd(&s_n, 1); // slots in any order: the sort below fixes the order
        if (at < SAMPLE_SORT_CAP) keys[at] = sample_cand_key(v, i);
    }
    near = reduce_block_sum_double(near, sums);
    int n = s_n;
    if (n > SAMPLE_SORT_CAP || !(near >= target)) return sample_nucleus_slow(r, thr, ms.kept, top_p, u, sums);

    int n2 = 1;
    while (n2 < n) n2 *= 2;
    for (int i = n + threadIdx.x; i < n2; i += blockDim.x) keys[i] = 0;
    __syncthreads();
    sample_bitonic_desc(keys, n2);

    // Thread t owns sorted positions [t*per, (t+1)*per): its running sum starts at its prefix.
    int per = (n + blockDim.x - 1) / blockDim.x, beg = min((int)threadIdx.x * per, n), end = min(beg + per, n);
    double local = 0.0;
    for (int j = beg; j < end; j++) local += sample_weight(sample_unkey((uint32_t)(keys[j] >> 32)), r->m, r->inv_t);
    double base = sample_block_excl_scan(local), acc = base;
    int cut = SAMPLE_NO_ID;
    for (int j = beg; j < end && cut == SAMPLE_NO_ID; j++) {
        acc += sample_weight(sample_unkey((uint32_t)(keys[j] >> 32)), r->m, r->inv_t);
        if (acc >= target) cut = j + 1;
    }
    cut = sample_block_min_int(cut);
    if (cut == SAMPLE_NO_ID) cut = n; // rounding only: keep every sorted candidate, as the CPU does
    acc = base;
    for (int j = beg; j < end; j++) {
        acc += sample_weight(sample_unkey((uint32_t)(keys[j] >> 32)), r->m, r->inv_t);
        if (j == cut - 1) s_total = acc; // one writer: the owner of the nucleus' last position
    }
    __syncthreads();
    double x = u * s_total;
    int pick = SAMPLE_NO_ID;
    acc = base;
    for (int j = beg; j < end && j < cut && pick == SAMPLE_NO_ID; j++) {
        acc += sample_weight(sample_unkey((uint32_t)(keys[j] >> 32)), r->m, r->inv_t);
        if (acc > x) pick = j;
    }
    pick = sample_block_min_int(pick);
    if (pick == SAMPLE_NO_ID) pick = 0; // the most probable candidate, as the CPU's guard
    return (int)~(uint32_t)keys[pick];
}

static __device__ void sample_finish(const struct sample_args *a, int tok, float lp)
{
    if (threadIdx.x != 0) return;
    a->tokens[blockIdx.x] = tok;
    if (a->logp) a->logp[blockIdx.x] = tok < 0 ? 0.0f : lp;
}

static __global__ void __launch_bounds__(SAMPLE_THREADS) sample_kernel(struct sample_args a)
{
    __shared__ double sums[32];
    long row = blockIdx.x;
    struct sample_row r;
    r.z = a.logits + row * a.V;
    r.ov_id = a.ov_id;
    r.ov_val = a.ov_val + row * a.nu;
    r.V = a.V;
    r.nu = a.nu;
    // 0. the biased values of the biased ids, each adding its biases in the caller's order
    for (int j = threadIdx.x; j < a.nu; j += blockDim.x) {
        float v = r.z[a.ov_id[j]];
        for (int t = a.ov_beg[j]; t < a.ov_beg[j + 1]; t++) v += a.ov_bias[t];
        a.ov_val[row * a.nu + j] = v;
    }
    __syncthreads(); // also publishes the global writes above to the block
    double u = a.u[row];
    if (!(u >= 0.0 && u < 1.0)) return sample_finish(&a, -1, 0.0f);

    struct sample_stats st = sample_pass1(&r);
    if (st.bad || st.m == -INFINITY) return sample_finish(&a, -1, 0.0f);
    r.m = st.m;
    r.inv_t = a.greedy ? 1.0 : a.inv_t;
    float thr = -INFINITY;
    if (!a.greedy && a.top_k > 0 && a.top_k < a.V && st.finite >= a.top_k) thr = sample_kth_largest(&r, a.top_k);
    struct sample_mass ms = sample_pass2(&r, thr, sums);

    int tok = st.arg;
    if (!a.greedy && a.top_p < 1.0) {
        tok = sample_nucleus(&r, thr, ms, a.top_p, u, sums);
    } else if (!a.greedy) {
        struct sample_set kept = sample_set_kept(thr);
        tok = sample_search(&r, &kept, 0, a.V, u * ms.kept, 0.0, sums, 1);
    }
    if (tok < 0) tok = st.arg; // unreachable with consistent sums; the CPU's guard
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

    // The overrides: unique ids (sorted), where each one's biases start, the biases grouped.
    int nb = p->n_bias, nu = 0;
    struct sample_bias_ent *e = (struct sample_bias_ent *)mmupt_xmalloc((size_t)(nb ? nb : 1) * sizeof *e);
    for (int i = 0; i < nb; i++) e[i] = (struct sample_bias_ent){p->bias_ids[i], i};
    qsort(e, (size_t)nb, sizeof *e, sample_bias_cmp);
    for (int i = 0; i < nb; i++) nu += i == 0 || e[i].id != e[i - 1].id;

    // One stream-ordered scratch: [u | ov_id | ov_beg | ov_bias | ov_val]
    size_t o_id = sample_align((size_t)rows * sizeof(double));
    size_t o_beg = o_id + sample_align((size_t)(nu + 1) * sizeof(int32_t));
    size_t o_bias = o_beg + sample_align((size_t)(nu + 1) * sizeof(int32_t));
    size_t o_val = o_bias + sample_align((size_t)nb * sizeof(float));
    size_t bytes = o_val + (size_t)rows * (size_t)nu * sizeof(float);
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

    struct sample_args a;
    a.logits = logits;
    a.V = V;
    a.tokens = tokens;
    a.logp = logp;
    a.u = (const double *)d;
    a.ov_id = (const int32_t *)(d + o_id);
    a.ov_beg = (const int32_t *)(d + o_beg);
    a.ov_bias = (const float *)(d + o_bias);
    a.ov_val = (float *)(d + o_val);
    a.nu = nu;
    a.greedy = p->temperature == 0.0f;
    a.top_k = p->top_k;
    a.inv_t = a.greedy ? 1.0 : 1.0 / (double)p->temperature;
    a.top_p = (double)p->top_p;
    sample_kernel<<<(unsigned)rows, SAMPLE_THREADS, 0, st>>>(a);
    CUDA_CHECK(cudaGetLastError());
    CUDA_CHECK(cudaFreeAsync(d, st));
}
