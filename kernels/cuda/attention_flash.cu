// Fused ("flash") attention over packed segments on bf16 tensor cores (mma.cuh): the CUDA twin of
// kernels/cpu/attention_flash.c, for the bf16 learner. Where attention.cu's TF32 twins write every
// (segment, head)'s len x len probabilities to memory (kept for the backward: the 1.5B learner's
// largest activation) and run the softmax and its gradient as separate row kernels between cuBLAS
// GEMMs, these kernels keep a tile of scores in registers, never store a probability, and keep one
// log-sum-exp a row (lse) for the backward to recompute them.
//
// Tiles are bf16 in shared memory, [rows][hd + 8] (the pad puts the 8 rows a fragment load touches
// on different banks), converted from the fp32 activations as they are staged; a warp owns 16 rows
// of a block's 64 and multiplies with m16n8k16 mma.sync (fp32 accumulators). Fragments come from
// shared memory as 32-bit loads where the tile's rows are the operand's rows (fl_frag_a) or columns
// (fl_frag_b), with ldmatrix.trans where a tile must be read transposed (mma_frag_bt); a product's
// fp32 accumulators become the next product's A operand in registers (mma_c_to_a, mma.cuh).
//   forward   block (q tile of 64 rows, head, segment): S = Q K^T over key tiles of 64 (causal: up to
//             the tile's last row), online softmax (running max and sum per row, the accumulators
//             rescaled when the max grows), O += P V; out = O / l, lse = m + log l.
//   backward  D = dout . out per row (fl_dot_kernel); then block (key tile of 64, kv head, segment)
//             for dk and dv - for every q head of the group and q rows in sub-tiles of 16, each loaded
//             into registers during the step before (the block's steps are many and short):
//             S^T = K Q^T, P^T = exp(scale S^T - lse), dv += P^T dO, dP^T = V dO^T,
//             dS^T = P^T (dP^T - D), dk += dS^T Q; and block (q tile of 64, head, segment) for dq,
//             over key sub-tiles of 32: S, P, dP = dO V^T, dS, dq += dS K. Each output element has
//             one writer that adds its terms in a fixed order: no atomics, results repeat bit for
//             bit, and dq, dk, dv accumulate into what the caller passes.
// Shared memory stays within the default 48 KiB (2 x 64 x 136 bf16 = 34 KiB at hd 128). hd is a
// template parameter (16, 32, 64, 80, 128: attention_flash_supported), so every register array has
// a constant size.
#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>

#include "mmupt/cuda_check.h"
#include "mmupt/gpu_blas.h"
#include "mmupt/kernels.h"
#include "attn_run.cuh"
#include "bf16.cuh"
#include "mma.cuh"
#include "unroll.cuh"
#include "vec.cuh"

enum {
    FL_THREADS = 128,  // 4 warps, 16 rows each
    FL_ROWS = 64,      // q rows (forward, dq) or keys (dk/dv) a block owns
    FL_FWD_KEYS = 64,  // keys a forward step takes
    FL_DQ_KEYS = 32,   // keys a dq step takes
    FL_DKDV_QROWS = 16, // q rows a dk/dv step takes
    FL_PAD = 8,        // bf16 of padding after each tile row
    FL_STAGE_BATCH = 8, // 4-float loads a thread issues before storing any (fl_stage)
};

// The dynamic shared memory's element: 16 bytes, so the tiles start 16-byte aligned (ldmatrix).
typedef vec_pack<uint32_t, 4> fl_u4;

// One launch's view: the run's segment layout, the operands and outputs (unused ones NULL).
struct flash_args {
    const float *q, *k, *v, *dout, *out, *lse_in, *D;
    float *o, *lse, *dq, *dk, *dv;
    int t0, len, n_heads, n_kv, group, causal;
    int vec16; // q, k, v and dout 16-byte aligned: fl_stage loads 4 floats at once
    float scale;
};

// Elements c, c + 1 of segment-local token row `row` of x (head `head` of `heads`, row t at
// ((t0 + t) heads + head) HD), or zeros for a row past len.
template <int HD>
static __device__ __forceinline__ void fl_read_pair(float &a, float &b, const float *x, int heads, int head, int t0,
                                                    int row, int c, int len)
{
    a = b = 0.0f;
    if (row < len) {
        const float *p = x + ((long)(t0 + row) * heads + head) * HD + c;
        a = p[0];
        b = p[1];
    }
}

// The pair rounded to bf16 into row `row`, columns c, c + 1 of a tile [rows][HD + FL_PAD].
template <int HD>
static __device__ __forceinline__ void fl_write_pair(uint16_t *tile, int row, int c, float a, float b)
{
    *reinterpret_cast<uint32_t *>(tile + row * (HD + FL_PAD) + c) = mma_pack(a, b);
}

// Rows [r0, r0 + ROWS) of x (fl_read_pair's layout) rounded to bf16 into tile; rows past len zero.
// Quad e of the tile is row e / (HD / 4), columns 4 (e % (HD / 4)) .. + 3: one 16-byte load when
// vec16 (a row's HD floats are contiguous and HD % 4 == 0, so every quad is aligned when x is), and
// a thread issues FL_STAGE_BATCH quads' loads before it stores any. Staged a pair at a time, each
// pair waiting on memory before the next was asked for, the tiles were what these kernels waited on
// (ncu on an H200, 2026-11-28: 12-16% of issue slots busy, 16% occupancy).
template <int HD, int ROWS>
static __device__ __forceinline__ void fl_stage(uint16_t *tile, const float *x, int heads, int head, int t0, int r0,
                                                int len, int vec16)
{
    constexpr int QUADS = HD / 4, N = ROWS * QUADS, PER = (N + FL_THREADS - 1) / FL_THREADS;
    static_assert(HD % 4 == 0, "a tile row is whole quads");
    static_assert((HD + FL_PAD) % 8 == 0, "tile rows start 16-byte aligned (mma_frag_bt)");
    UNROLL
    for (int u0 = 0; u0 < PER; u0 += FL_STAGE_BATCH) {
        float f[FL_STAGE_BATCH][4];
        UNROLL
        for (int u = 0; u < FL_STAGE_BATCH; u++) {
            int e = (int)threadIdx.x + (u0 + u) * FL_THREADS, r = e / QUADS;
            f[u][0] = f[u][1] = f[u][2] = f[u][3] = 0.0f;
            if (u0 + u >= PER || e >= N || r0 + r >= len) continue;
            const float *p = x + ((long)(t0 + r0 + r) * heads + head) * HD + 4 * (e % QUADS);
            if (vec16) {
                vec_load(f[u], p);
            } else {
                UNROLL
                for (int j = 0; j < 4; j++) f[u][j] = p[j];
            }
        }
        UNROLL
        for (int u = 0; u < FL_STAGE_BATCH; u++) {
            int e = (int)threadIdx.x + (u0 + u) * FL_THREADS;
            if (u0 + u >= PER || e >= N) continue;
            uint32_t w[2] = {mma_pack(f[u][0], f[u][1]), mma_pack(f[u][2], f[u][3])};
            vec_store(reinterpret_cast<uint32_t *>(tile + (e / QUADS) * (HD + FL_PAD) + 4 * (e % QUADS)), w);
        }
    }
}

// A sub-tile of ROWS rows held in registers between its global load and its store to shared memory:
// thread x's share of fl_stage's pairs (e = x, x + FL_THREADS, ...), so the dk/dv kernel can load the
// next sub-tile while it computes on this one (its many short steps would otherwise each wait for
// memory). fl_fetch reads (rows past len zero), fl_put rounds to bf16 and stores.
template <int HD, int ROWS>
struct fl_rows {
    float v[ROWS * HD / FL_THREADS];
};

template <int HD, int ROWS>
static __device__ __forceinline__ void fl_fetch(fl_rows<HD, ROWS> &r, const float *x, int heads, int head, int t0,
                                                int r0, int len)
{
    constexpr int HALF = HD / 2, N = ROWS * HALF / FL_THREADS;
    UNROLL
    for (int u = 0; u < N; u++) {
        int e = (int)threadIdx.x + u * FL_THREADS;
        fl_read_pair<HD>(r.v[2 * u], r.v[2 * u + 1], x, heads, head, t0, r0 + e / HALF, 2 * (e % HALF), len);
    }
}

template <int HD, int ROWS>
static __device__ __forceinline__ void fl_put(uint16_t *tile, const fl_rows<HD, ROWS> &r)
{
    constexpr int HALF = HD / 2, N = ROWS * HALF / FL_THREADS;
    UNROLL
    for (int u = 0; u < N; u++) {
        int e = (int)threadIdx.x + u * FL_THREADS;
        fl_write_pair<HD>(tile, e / HALF, 2 * (e % HALF), r.v[2 * u], r.v[2 * u + 1]);
    }
}

// The A fragment (mma.cuh) of rows r0.. r0 + 15, columns k0 .. k0 + 15 of a row-major tile.
static __device__ __forceinline__ void fl_frag_a(uint32_t (&a)[4], const uint16_t *tile, int ld, int r0, int k0)
{
    int lane = (int)(threadIdx.x % 32), g = lane / 4, t = lane % 4;
    const uint16_t *p0 = tile + (r0 + g) * ld + k0 + 2 * t, *p1 = p0 + 8 * ld;
    a[0] = *reinterpret_cast<const uint32_t *>(p0);
    a[1] = *reinterpret_cast<const uint32_t *>(p1);
    a[2] = *reinterpret_cast<const uint32_t *>(p0 + 8);
    a[3] = *reinterpret_cast<const uint32_t *>(p1 + 8);
}

// The B fragment with B[k][n] = tile[n0 + n][k0 + k]: the tile's rows are B's columns (K in Q K^T).
static __device__ __forceinline__ void fl_frag_b(uint32_t (&b)[2], const uint16_t *tile, int ld, int n0, int k0)
{
    int lane = (int)(threadIdx.x % 32), g = lane / 4, t = lane % 4;
    const uint16_t *p = tile + (n0 + g) * ld + k0 + 2 * t;
    b[0] = *reinterpret_cast<const uint32_t *>(p);
    b[1] = *reinterpret_cast<const uint32_t *>(p + 8);
}

// Accumulator tiles set to zero.
template <int N>
static __device__ __forceinline__ void fl_zero(float (&x)[N][4])
{
    UNROLL
    for (int i = 0; i < N; i++)
        UNROLL
        for (int e = 0; e < 4; e++) x[i][e] = 0.0f;
}

// acc += C T: C the 16 x 8 NT accumulators c (rounded to bf16 as A operands, 16 columns at a time),
// T the rows 0 .. 8 NT - 1 of a row-major tile read transposed, 8 DT columns - P V forward, dS K for
// dq, P^T dO and dS^T Q for dk/dv.
template <int NT, int DT>
static __device__ __forceinline__ void fl_mma_ct(float (&acc)[DT][4], const float (&c)[NT][4], const uint16_t *tile,
                                                 int ld)
{
    UNROLL
    for (int kc = 0; kc < NT / 2; kc++) {
        uint32_t a[4];
        mma_c_to_a(a, c[2 * kc], c[2 * kc + 1]);
        UNROLL
        for (int dt = 0; dt < DT; dt++) {
            uint32_t b[2];
            mma_frag_bt(b, tile, ld, kc * 16, dt * 8); // (ld = HD + FL_PAD: a multiple of 8)
            mma_bf16_16816(acc[dt], a, b);
        }
    }
}

// dst += scale * acc for the lane's accumulator rows r0 and r0 + 8 of a segment at t0 (rows past len
// skipped), head `head` of `heads` vectors of 8 DT values a token row.
template <int DT>
static __device__ __forceinline__ void fl_add_rows(float *dst, const float (&acc)[DT][4], float scale, int r0, int len,
                                                   int t0, int heads, int head)
{
    int t = (int)(threadIdx.x % 4);
    UNROLL
    for (int r = 0; r < 2; r++) {
        int row = r0 + 8 * r;
        if (row >= len) continue;
        long at = ((long)(t0 + row) * heads + head) * (8 * DT) + 2 * t;
        UNROLL
        for (int dt = 0; dt < DT; dt++) {
            dst[at + dt * 8] += scale * acc[dt][2 * r];
            dst[at + dt * 8 + 1] += scale * acc[dt][2 * r + 1];
        }
    }
}

// Block (q tile, head h, segment): see the top of the file. Dynamic shared memory: K and V tiles,
// [FL_FWD_KEYS][HD + FL_PAD] each (the K tile's space first holds the block's q rows).
template <int HD>
static __global__ void __launch_bounds__(FL_THREADS) attention_flash_forward_kernel(struct flash_args a)
{
    constexpr int LD = HD + FL_PAD, KT = HD / 16, DT = HD / 8, NT = FL_FWD_KEYS / 8;
    extern __shared__ fl_u4 fl_smem[];
    uint16_t *Ks = (uint16_t *)fl_smem, *Vs = Ks + FL_FWD_KEYS * LD;
    int warp = (int)(threadIdx.x / 32), lane = (int)(threadIdx.x % 32), g = lane / 4, t = lane % 4;
    int q0 = (int)blockIdx.x * FL_ROWS, h = (int)blockIdx.y, kvh = h / a.group;
    int t0 = a.t0 + (int)blockIdx.z * a.len, r0 = q0 + warp * 16 + g; // the lane's rows r0, r0 + 8

    fl_stage<HD, FL_ROWS>(Ks, a.q, a.n_heads, h, t0, q0, a.len, a.vec16);
    __syncthreads();
    uint32_t qa[KT][4];
    UNROLL
    for (int kk = 0; kk < KT; kk++) fl_frag_a(qa[kk], Ks, LD, warp * 16, kk * 16);
    __syncthreads();

    float o[DT][4], m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};
    fl_zero(o);
    int kend = a.causal ? min(a.len, q0 + FL_ROWS) : a.len;
    for (int k0 = 0; k0 < kend; k0 += FL_FWD_KEYS) {
        fl_stage<HD, FL_FWD_KEYS>(Ks, a.k, a.n_kv, kvh, t0, k0, a.len, a.vec16);
        fl_stage<HD, FL_FWD_KEYS>(Vs, a.v, a.n_kv, kvh, t0, k0, a.len, a.vec16);
        __syncthreads();
        float s[NT][4];
        fl_zero(s);
        UNROLL
        for (int kk = 0; kk < KT; kk++)
            UNROLL
            for (int nt = 0; nt < NT; nt++) {
                uint32_t b[2];
                fl_frag_b(b, Ks, LD, nt * 8, kk * 16);
                mma_bf16_16816(s[nt], qa[kk], b);
            }
        // Scale and mask (element e: row r0 + 8 (e / 2), key k0 + 8 nt + 2t + e % 2), the step's
        // row maxima, then the running max, sum and accumulators rescaled to it.
        float mx[2] = {-INFINITY, -INFINITY};
        UNROLL
        for (int nt = 0; nt < NT; nt++)
            UNROLL
            for (int e = 0; e < 4; e++) {
                int key = k0 + nt * 8 + 2 * t + (e & 1), row = r0 + 8 * (e >> 1);
                bool ok = key < a.len && (!a.causal || key <= row);
                s[nt][e] = ok ? s[nt][e] * a.scale : -INFINITY;
                mx[e >> 1] = fmaxf(mx[e >> 1], s[nt][e]);
            }
        UNROLL
        for (int r = 0; r < 2; r++) {
            float mn = fmaxf(m[r], mma_quad_max(mx[r]));
            float alpha = mn == -INFINITY ? 1.0f : expf(m[r] - mn); // expf(-inf) = 0: the first step
            m[r] = mn;
            l[r] *= alpha;
            UNROLL
            for (int dt = 0; dt < DT; dt++) {
                o[dt][2 * r] *= alpha;
                o[dt][2 * r + 1] *= alpha;
            }
        }
        UNROLL
        for (int nt = 0; nt < NT; nt++)
            UNROLL
            for (int e = 0; e < 4; e++) {
                float mm = m[e >> 1], p = mm == -INFINITY ? 0.0f : expf(s[nt][e] - mm);
                s[nt][e] = p;
                l[e >> 1] += p;
            }
        fl_mma_ct<NT, DT>(o, s, Vs, LD); // O += P V, the probabilities rounded to bf16
        __syncthreads(); // the tiles are restaged next
    }
    UNROLL
    for (int r = 0; r < 2; r++) {
        float L = mma_quad_sum(l[r]);
        int row = r0 + 8 * r;
        if (row >= a.len) continue;
        float inv = 1.0f / L;
        long at = ((long)(t0 + row) * a.n_heads + h) * HD + 2 * t;
        UNROLL
        for (int dt = 0; dt < DT; dt++) {
            a.o[at + dt * 8] = o[dt][2 * r] * inv;
            a.o[at + dt * 8 + 1] = o[dt][2 * r + 1] * inv;
        }
        if (t == 0) a.lse[(long)(t0 + row) * a.n_heads + h] = m[r] + logf(L);
    }
}

// D[i] = dout_i . out_i for every (token row, head) i of [rows * heads] vectors of HD: a warp each.
static __global__ void fl_dot_kernel(float *D, const float *dout, const float *out, long n, int hd)
{
    long i = ((long)blockIdx.x * blockDim.x + threadIdx.x) / 32;
    int lane = (int)(threadIdx.x % 32);
    if (i >= n) return; // whole warps: n's warps are contiguous
    float s = 0.0f;
    for (int d = lane; d < hd; d += 32) s += dout[i * hd + d] * out[i * hd + d];
    for (int off = 16; off > 0; off /= 2) s += __shfl_xor_sync(0xffffffffu, s, off);
    if (lane == 0) D[i] = s;
}

// Block (key tile, kv head, segment): dk and dv of the tile's keys (see the top of the file). Dynamic
// shared memory: K and V tiles [FL_ROWS][HD + FL_PAD], then Q and dO sub-tiles [FL_DKDV_QROWS][HD +
// FL_PAD], then the sub-tile's lse and D.
template <int HD>
static __global__ void __launch_bounds__(FL_THREADS) attention_flash_dkdv_kernel(struct flash_args a)
{
    constexpr int LD = HD + FL_PAD, KT = HD / 16, DT = HD / 8, QB = FL_DKDV_QROWS, NT = QB / 8;
    extern __shared__ fl_u4 fl_smem[];
    uint16_t *Ks = (uint16_t *)fl_smem, *Vs = Ks + FL_ROWS * LD, *Qs = Vs + FL_ROWS * LD, *dOs = Qs + QB * LD;
    float *lse_s = (float *)(dOs + QB * LD), *D_s = lse_s + QB;
    int warp = (int)(threadIdx.x / 32), lane = (int)(threadIdx.x % 32), g = lane / 4, t = lane % 4;
    int k0 = (int)blockIdx.x * FL_ROWS, kvh = (int)blockIdx.y, t0 = a.t0 + (int)blockIdx.z * a.len;
    int kr = k0 + warp * 16 + g; // the lane's keys kr, kr + 8

    fl_stage<HD, FL_ROWS>(Ks, a.k, a.n_kv, kvh, t0, k0, a.len, a.vec16);
    fl_stage<HD, FL_ROWS>(Vs, a.v, a.n_kv, kvh, t0, k0, a.len, a.vec16);
    float dk[DT][4], dv[DT][4];
    fl_zero(dk);
    fl_zero(dv);
    // Steps over (q head of the group, sub-tile of QB q rows), the next step's rows loaded into
    // registers while this one computes. Rows before the key tile see none of its keys (causal).
    int i_first = a.causal ? k0 : 0, subs = (a.len - i_first + QB - 1) / QB, steps = a.group * subs;
    fl_rows<HD, QB> nq, no;
    float nl = 0.0f, nd = 0.0f;
    for (int it = 0; it <= steps; it++) {
        int hq = kvh * a.group + it / subs, i0 = i_first + (it % subs) * QB; // it = steps: nothing left
        if (it > 0) {
            __syncthreads(); // the last step's readers are done (and, first time, K and V staged)
            fl_put<HD, QB>(Qs, nq);
            fl_put<HD, QB>(dOs, no);
            if ((int)threadIdx.x < QB) {
                lse_s[threadIdx.x] = nl;
                D_s[threadIdx.x] = nd;
            }
        }
        if (it < steps) { // the next step's rows into registers, in flight during this step's products
            fl_fetch<HD, QB>(nq, a.q, a.n_heads, hq, t0, i0, a.len);
            fl_fetch<HD, QB>(no, a.dout, a.n_heads, hq, t0, i0, a.len);
            int i = i0 + (int)threadIdx.x;
            long at = (long)(t0 + i) * a.n_heads + hq;
            nl = (int)threadIdx.x < QB && i < a.len ? a.lse_in[at] : 0.0f;
            nd = (int)threadIdx.x < QB && i < a.len ? a.D[at] : 0.0f;
        }
        if (it == 0) continue; // nothing staged yet
        i0 = i_first + ((it - 1) % subs) * QB; // the staged step's rows
            __syncthreads();
            // S^T = K Q^T (rows: the warp's 16 keys; columns: the sub-tile's q rows), then P^T.
            float st[NT][4], dp[NT][4];
            fl_zero(st);
            fl_zero(dp);
            UNROLL
            for (int kk = 0; kk < KT; kk++) {
                uint32_t ka[4], va[4];
                fl_frag_a(ka, Ks, LD, warp * 16, kk * 16);
                fl_frag_a(va, Vs, LD, warp * 16, kk * 16);
                UNROLL
                for (int nt = 0; nt < NT; nt++) {
                    uint32_t bq[2], bo[2];
                    fl_frag_b(bq, Qs, LD, nt * 8, kk * 16);
                    fl_frag_b(bo, dOs, LD, nt * 8, kk * 16);
                    mma_bf16_16816(st[nt], ka, bq); // S^T
                    mma_bf16_16816(dp[nt], va, bo); // dP^T = V dO^T
                }
            }
            UNROLL
            for (int nt = 0; nt < NT; nt++)
                UNROLL
                for (int e = 0; e < 4; e++) {
                    int key = kr + 8 * (e >> 1), qc = nt * 8 + 2 * t + (e & 1), qi = i0 + qc;
                    bool ok = qi < a.len && key < a.len && (!a.causal || qi >= key);
                    float p = ok ? expf(st[nt][e] * a.scale - lse_s[qc]) : 0.0f;
                    st[nt][e] = p;
                    dp[nt][e] = p * (dp[nt][e] - D_s[qc]); // dS^T
                }
            fl_mma_ct<NT, DT>(dv, st, dOs, LD); // dv += P^T dO
            fl_mma_ct<NT, DT>(dk, dp, Qs, LD);  // dk += dS^T Q
        }
    if (a.dk) fl_add_rows(a.dk, dk, a.scale, kr, a.len, t0, a.n_kv, kvh);
    if (a.dv) fl_add_rows(a.dv, dv, 1.0f, kr, a.len, t0, a.n_kv, kvh);
}

// Block (q tile, head h, segment): dq of the tile's rows (see the top of the file). Dynamic shared
// memory: K and V sub-tiles [FL_DQ_KEYS][HD + FL_PAD] (first holding the block's q rows, then its
// dout rows, 64 of either).
template <int HD>
static __global__ void __launch_bounds__(FL_THREADS) attention_flash_dq_kernel(struct flash_args a)
{
    constexpr int LD = HD + FL_PAD, KT = HD / 16, DT = HD / 8, KB = FL_DQ_KEYS, NT = KB / 8;
    extern __shared__ fl_u4 fl_smem[];
    uint16_t *Ks = (uint16_t *)fl_smem, *Vs = Ks + KB * LD;
    int warp = (int)(threadIdx.x / 32), lane = (int)(threadIdx.x % 32), g = lane / 4, t = lane % 4;
    int q0 = (int)blockIdx.x * FL_ROWS, h = (int)blockIdx.y, kvh = h / a.group;
    int t0 = a.t0 + (int)blockIdx.z * a.len, r0 = q0 + warp * 16 + g;

    uint32_t qa[KT][4], oa[KT][4];
    fl_stage<HD, FL_ROWS>(Ks, a.q, a.n_heads, h, t0, q0, a.len, a.vec16);
    __syncthreads();
    UNROLL
    for (int kk = 0; kk < KT; kk++) fl_frag_a(qa[kk], Ks, LD, warp * 16, kk * 16);
    __syncthreads();
    fl_stage<HD, FL_ROWS>(Ks, a.dout, a.n_heads, h, t0, q0, a.len, a.vec16);
    __syncthreads();
    UNROLL
    for (int kk = 0; kk < KT; kk++) fl_frag_a(oa[kk], Ks, LD, warp * 16, kk * 16);
    float lse[2], D[2], dq[DT][4];
    UNROLL
    for (int r = 0; r < 2; r++) {
        int row = r0 + 8 * r;
        long at = (long)(t0 + row) * a.n_heads + h;
        lse[r] = row < a.len ? a.lse_in[at] : 0.0f;
        D[r] = row < a.len ? a.D[at] : 0.0f;
    }
    fl_zero(dq);
    int kend = a.causal ? min(a.len, q0 + FL_ROWS) : a.len;
    for (int k0 = 0; k0 < kend; k0 += KB) {
        __syncthreads(); // the last step's (or the fragments') readers are done
        fl_stage<HD, KB>(Ks, a.k, a.n_kv, kvh, t0, k0, a.len, a.vec16);
        fl_stage<HD, KB>(Vs, a.v, a.n_kv, kvh, t0, k0, a.len, a.vec16);
        __syncthreads();
        float s[NT][4], dp[NT][4];
        fl_zero(s);
        fl_zero(dp);
        UNROLL
        for (int kk = 0; kk < KT; kk++)
            UNROLL
            for (int nt = 0; nt < NT; nt++) {
                uint32_t bk[2], bv[2];
                fl_frag_b(bk, Ks, LD, nt * 8, kk * 16);
                fl_frag_b(bv, Vs, LD, nt * 8, kk * 16);
                mma_bf16_16816(s[nt], qa[kk], bk);  // S = Q K^T
                mma_bf16_16816(dp[nt], oa[kk], bv); // dP = dO V^T
            }
        UNROLL
        for (int nt = 0; nt < NT; nt++)
            UNROLL
            for (int e = 0; e < 4; e++) {
                int key = k0 + nt * 8 + 2 * t + (e & 1), row = r0 + 8 * (e >> 1);
                bool ok = row < a.len && key < a.len && (!a.causal || key <= row);
                float p = ok ? expf(s[nt][e] * a.scale - lse[e >> 1]) : 0.0f;
                dp[nt][e] = p * (dp[nt][e] - D[e >> 1]); // dS
            }
        fl_mma_ct<NT, DT>(dq, dp, Ks, LD); // dq += dS K
    }
    fl_add_rows(a.dq, dq, a.scale, r0, a.len, t0, a.n_heads, h);
}

static dim3 fl_grid(const struct attn_run *r, int heads)
{
    return dim3((unsigned)((r->len + FL_ROWS - 1) / FL_ROWS), (unsigned)heads, (unsigned)r->count);
}

template <int HD>
static void fl_forward(struct flash_args a, const struct attn_run *r, cudaStream_t st)
{
    size_t smem = 2 * (size_t)FL_FWD_KEYS * (HD + FL_PAD) * sizeof(uint16_t);
    attention_flash_forward_kernel<HD><<<fl_grid(r, r->n_heads), FL_THREADS, smem, st>>>(a);
    CUDA_CHECK(cudaGetLastError());
}

template <int HD>
static void fl_backward(struct flash_args a, const struct attn_run *r, cudaStream_t st)
{
    if (a.dk || a.dv) {
        size_t smem = (2 * (size_t)FL_ROWS + 2 * FL_DKDV_QROWS) * (HD + FL_PAD) * sizeof(uint16_t) +
                      2 * FL_DKDV_QROWS * sizeof(float);
        attention_flash_dkdv_kernel<HD><<<fl_grid(r, r->n_kv), FL_THREADS, smem, st>>>(a);
        CUDA_CHECK(cudaGetLastError());
    }
    if (a.dq) {
        size_t smem = (size_t)(FL_ROWS > 2 * FL_DQ_KEYS ? FL_ROWS : 2 * FL_DQ_KEYS) * (HD + FL_PAD) * sizeof(uint16_t);
        attention_flash_dq_kernel<HD><<<fl_grid(r, r->n_heads), FL_THREADS, smem, st>>>(a);
        CUDA_CHECK(cudaGetLastError());
    }
}

// Run r's launches for head size hd (one of attention_flash_supported's).
static void fl_dispatch(int backward, struct flash_args a, const struct attn_run *r, cudaStream_t st)
{
    switch (r->hd) {
    case 16: backward ? fl_backward<16>(a, r, st) : fl_forward<16>(a, r, st); break;
    case 32: backward ? fl_backward<32>(a, r, st) : fl_forward<32>(a, r, st); break;
    case 64: backward ? fl_backward<64>(a, r, st) : fl_forward<64>(a, r, st); break;
    case 80: backward ? fl_backward<80>(a, r, st) : fl_forward<80>(a, r, st); break;
    case 128: backward ? fl_backward<128>(a, r, st) : fl_forward<128>(a, r, st); break;
    default: MMUPT_DIE("attention_flash: head size %d is not one of the kernels' (attention_flash_supported)", r->hd);
    }
}

// Every run of equal-length segments, launched with ops (the operand and output pointers) completed
// by the run's layout.
static void fl_runs(int backward, const struct flash_args *ops, const int *seg, int n_seg, int n_heads, int n_kv,
                    int hd, int causal, cudaStream_t st)
{
    int s = 0;
    for (struct attn_run r; (r = attn_next_run(seg, n_seg, &s, n_heads, n_kv, hd, causal)).count > 0;) {
        struct flash_args a = *ops;
        a.t0 = r.t0;
        a.len = r.len;
        a.n_heads = r.n_heads;
        a.n_kv = r.n_kv;
        a.group = r.group;
        a.causal = r.causal;
        a.scale = r.scale;
        fl_dispatch(backward, a, &r, st);
    }
}

extern "C" void attention_flash_forward_cuda(float *out, float *lse, const float *q, const float *k, const float *v,
                                             const int *seg, int n_seg, int n_heads, int n_kv, int hd, int causal,
                                             const struct gpu_blas *blas)
{
    attn_check_args(seg, n_seg, n_heads, n_kv, hd);
    MMUPT_CHECK(attention_flash_supported(hd));
    struct flash_args a = {};
    a.q = q;
    a.k = k;
    a.v = v;
    a.o = out;
    a.lse = lse;
    a.vec16 = vec_aligned(16, q, k, v);
    fl_runs(0, &a, seg, n_seg, n_heads, n_kv, hd, causal, blas->stream);
}

extern "C" void attention_flash_backward_cuda(float *dq, float *dk, float *dv, const float *dout, const float *out,
                                              const float *lse, const float *q, const float *k, const float *v,
                                              const int *seg, int n_seg, int n_heads, int n_kv, int hd, int causal,
                                              const struct gpu_blas *blas)
{
    attn_check_args(seg, n_seg, n_heads, n_kv, hd);
    MMUPT_CHECK(attention_flash_supported(hd));
    long rows = (long)seg[n_seg] * n_heads;
    if ((!dq && !dk && !dv) || rows == 0) return;
    cudaStream_t st = blas->stream;
    float *D = NULL;
    CUDA_CHECK(cudaMallocAsync((void **)&D, (size_t)rows * sizeof *D, st));
    fl_dot_kernel<<<(unsigned)((rows * 32 + FL_THREADS - 1) / FL_THREADS), FL_THREADS, 0, st>>>(D, dout, out, rows, hd);
    CUDA_CHECK(cudaGetLastError());
    struct flash_args a = {};
    a.q = q;
    a.k = k;
    a.v = v;
    a.dout = dout;
    a.out = out;
    a.lse_in = lse;
    a.D = D;
    a.dq = dq;
    a.dk = dk;
    a.dv = dv;
    a.vec16 = vec_aligned(16, q, k, v, dout);
    fl_runs(1, &a, seg, n_seg, n_heads, n_kv, hd, causal, st);
    CUDA_CHECK(cudaFreeAsync(D, st));
}
