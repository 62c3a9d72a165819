// The skinny bf16 GEMM: out[M, N] = x[M, K] @ w[N, K]^T (+ bias) for M <= 64 rows - a decode step's
// projections - on tensor cores (mma.cuh), fp32 accumulation, fp32 out. The same op as
// matmul_forward_bf16_cuda's cuBLAS call (matmul.cu chooses between them; kernels/cpu/matmul.c is the
// reference of both), in another summation order.
//
// Why: with 64 rows a projection is a stream of its weights (each used 64 times) and cuBLAS's kernels
// for it were 5-10 us where the weights' bytes take 0.5-5 us (the fourth GPU run's profile: q/k/v 5.5
// us, o 5.3, gate/up 8.4, down 7.1 + a 3.4 us split-K reduction launch, per layer of the 0.5B decode
// step). Here every weight is read once, straight from global memory into the tensor-core fragments
// (no shared-memory staging: no tile is reused), all of a warp's loads are issued before its products
// so their latencies overlap, and the split over K reduces inside the kernel - one launch.
//
// Work split. A block is 4 warps over SKINNY_COLS * WN columns and a range of kc values of k (its split
// ks = blockIdx.y); warp (wn, wk) = (warp % WN, warp / WN) takes 32 columns (four 8-wide mma tiles) and
// the 32-wide k steps wk, wk + WK, ... of the block's range (WK = 4 / WN; warps of one wk read the
// same x values at the same time, from L1). Each lane loads 16 bytes - 8 consecutive k - of a w row
// and of two x rows per step and feeds them to two mma k16 products: the mma's k order is a
// permutation of the real k (lane t of a group holds real k 8t..8t+7 where the mma expects 2t, 2t+1,
// 2t+8, 2t+9), the same for x and w, so the dot products are exact sums over the right pairs.
// Then: the WK warps' tiles add in shared memory in warp order; with one split the block writes
// out (+ bias); with several it writes its partial tile, and the last block of the column tile to
// finish (an arrival counter, reset by that block for the next call) adds the partials in split order.
// Every addition's order depends only on the plan, so a call repeats bit for bit. The plan
// (matmul_skinny_plan) picks WN and the split count from the shape and the number of SMs.
#include <cuda_runtime.h>
#include <stdint.h>

#include "mmupt/cuda_check.h"
#include "mmupt/err.h"
#include "mmupt/gpu_blas.h"
#include "mmupt/kernels.h"
#include "mma.cuh"
#include "pdl.cuh"
#include "unroll.cuh"

enum {
    SKINNY_THREADS = 128, // 4 warps
    SKINNY_WARPS = SKINNY_THREADS / 32,
    SKINNY_COLS = 32,     // columns a warp computes: SKINNY_NT mma tiles of 8
    SKINNY_NT = SKINNY_COLS / 8,
    SKINNY_UNROLL = 2,    // k steps whose loads a warp issues before using them
};


// Eight bf16 (16 bytes): one lane's load of a row; and four floats of a tile (the sums).
struct alignas(16) skinny_u4 {
    uint32_t w[4];
};
struct alignas(16) skinny_f4 {
    float v[4];
};

// 16 bytes at p (aligned), or zeros when not live. The weights stream past once (evict first, no
// L1 allocation: __ldcs); x is read by every column tile (the read-only path, cached: __ldg).
static __device__ __forceinline__ skinny_u4 skinny_load(const uint16_t *p, bool live, bool stream)
{
    skinny_u4 r = {{0u, 0u, 0u, 0u}};
    if (!live) return r;
#ifdef __CUDA_ARCH__
    uint4 v = stream ? __ldcs(reinterpret_cast<const uint4 *>(p)) : __ldg(reinterpret_cast<const uint4 *>(p));
    r.w[0] = v.x, r.w[1] = v.y, r.w[2] = v.z, r.w[3] = v.w;
#else
    (void)stream;
    r = *reinterpret_cast<const skinny_u4 *>(p);
#endif
    return r;
}

// Four partial sums another block wrote: from L2 (__ldcg), never a stale L1 line.
static __device__ __forceinline__ skinny_f4 skinny_load_part(const float *p)
{
#ifdef __CUDA_ARCH__
    float4 v = __ldcg(reinterpret_cast<const float4 *>(p));
    skinny_f4 r = {{v.x, v.y, v.z, v.w}};
    return r;
#else
    return *reinterpret_cast<const skinny_f4 *>(p);
#endif
}

static __device__ __forceinline__ void skinny_add(skinny_f4 &s, const skinny_f4 &v)
{
    UNROLL
    for (int e = 0; e < 4; e++) s.v[e] += v.v[e];
}

// Four sums of row r, columns n .. n + 3, into out (+ bias); columns past N are dropped.
static __device__ __forceinline__ void skinny_store(float *out, const float *bias, const skinny_f4 &s, int r, int n,
                                                    int N)
{
    UNROLL
    for (int e = 0; e < 4; e++)
        if (n + e < N) out[(long)r * N + n + e] = bias ? s.v[e] + bias[n + e] : s.v[e];
}

// One 32-wide k step of a warp: the products of its 16 * MT rows of x with its 32 columns of w,
// from the loaded values (xv[mt][h]: row 16 mt + g + 8 h; wv[nt]: column 8 nt + g).
template <int MT>
static __device__ __forceinline__ void skinny_step(float (&acc)[MT][SKINNY_NT][4], const skinny_u4 (&xv)[MT][2],
                                                   const skinny_u4 (&wv)[SKINNY_NT])
{
    UNROLL
    for (int half = 0; half < 2; half++) { // elements 4 half .. 4 half + 3 of each lane's 8
        UNROLL
        for (int mt = 0; mt < MT; mt++) {
            const uint32_t a[4] = {xv[mt][0].w[2 * half], xv[mt][1].w[2 * half], xv[mt][0].w[2 * half + 1],
                                   xv[mt][1].w[2 * half + 1]};
            UNROLL
            for (int nt = 0; nt < SKINNY_NT; nt++) {
                const uint32_t b[2] = {wv[nt].w[2 * half], wv[nt].w[2 * half + 1]};
                mma_bf16_16816(acc[mt][nt], a, b);
            }
        }
    }
}

// Block (column tile blockIdx.x, split blockIdx.y); see the top of the file. Dynamic shared memory:
// the warps' tiles, [SKINNY_WARPS][16 MT][SKINNY_COLS] floats (32 KiB at MT = 4).
template <int MT, int WN>
static __global__ void __launch_bounds__(SKINNY_THREADS)
matmul_skinny_kernel(float *out, const uint16_t *x, const uint16_t *w, const float *bias, float *part,
                     unsigned *count, int M, int K, int N, int kc)
{
    extern __shared__ skinny_u4 skinny_smem[];
    float *red = (float *)skinny_smem;
    constexpr int WK = SKINNY_WARPS / WN, ROWS = 16 * MT, TILE = SKINNY_COLS * WN;
    int warp = (int)(threadIdx.x / 32), lane = (int)(threadIdx.x % 32), g = lane / 4, t = lane % 4;
    int wn = warp % WN, wk = warp / WN;
    int n0 = (int)blockIdx.x * TILE + wn * SKINNY_COLS, ks = (int)blockIdx.y;
    int k_end = min(K, (ks + 1) * kc);

    // The block's weights into L2 (a row of its k range a thread) before waiting for the kernel
    // before this one (pdl.cuh: with MMUPT_GEMM_SKINNY=pdl that kernel may still be running - the
    // weights are never written during a step - and without it the wait returns at once).
    if ((int)threadIdx.x < TILE && (int)blockIdx.x * TILE + (int)threadIdx.x < N)
        l2_prefetch(w + (long)((int)blockIdx.x * TILE + (int)threadIdx.x) * K + (long)ks * kc,
                        (unsigned)(k_end - ks * kc) * 2u);
    pdl_wait();

    float acc[MT][SKINNY_NT][4];
    UNROLL
    for (int mt = 0; mt < MT; mt++)
        UNROLL
        for (int nt = 0; nt < SKINNY_NT; nt++)
            UNROLL
            for (int e = 0; e < 4; e++) acc[mt][nt][e] = 0.0f;

    for (int k0 = ks * kc + 32 * wk; k0 < k_end; k0 += 32 * WK * SKINNY_UNROLL) {
        skinny_u4 xv[SKINNY_UNROLL][MT][2], wv[SKINNY_UNROLL][SKINNY_NT];
        UNROLL
        for (int u = 0; u < SKINNY_UNROLL; u++) { // every load first
            int k = k0 + u * 32 * WK + 8 * t;
            bool live = k0 + u * 32 * WK < k_end; // warp-uniform
            UNROLL
            for (int nt = 0; nt < SKINNY_NT; nt++) {
                int n = n0 + 8 * nt + g;
                wv[u][nt] = skinny_load(w + (long)n * K + k, live && n < N, true);
            }
            UNROLL
            for (int mt = 0; mt < MT; mt++)
                UNROLL
                for (int h = 0; h < 2; h++) {
                    int r = 16 * mt + g + 8 * h;
                    xv[u][mt][h] = skinny_load(x + (long)r * K + k, live && r < M, false);
                }
        }
        UNROLL
        for (int u = 0; u < SKINNY_UNROLL; u++)
            if (k0 + u * 32 * WK < k_end) skinny_step<MT>(acc, xv[u], wv[u]);
    }

    // The warps' tiles into shared memory: red[wk][row][wn * 32 + col].
    UNROLL
    for (int mt = 0; mt < MT; mt++)
        UNROLL
        for (int nt = 0; nt < SKINNY_NT; nt++)
            UNROLL
            for (int e = 0; e < 4; e++) {
                int r = 16 * mt + g + 8 * (e / 2), c = wn * SKINNY_COLS + 8 * nt + 2 * t + e % 2;
                red[(wk * ROWS + r) * TILE + c] = acc[mt][nt][e];
            }
    __syncthreads();

    // The WK warps' sums, four columns at a time, into out or into this split's partial tile (the
    // scratch holds each column tile's splits back to back: [tile][split][rows][TILE]).
    int tid = (int)threadIdx.x, rows = min(M, ROWS), first = (int)blockIdx.x * TILE, splits = (int)gridDim.y;
    int quads = rows * TILE / 4;
    long tile_floats = (long)rows * TILE;
    float *tile = part + (long)blockIdx.x * splits * tile_floats;
    for (int i = tid; i < quads; i += SKINNY_THREADS) {
        int r = 4 * i / TILE, c = 4 * i % TILE;
        skinny_f4 s = *reinterpret_cast<const skinny_f4 *>(&red[r * TILE + c]);
        for (int j = 1; j < WK; j++)
            skinny_add(s, *reinterpret_cast<const skinny_f4 *>(&red[(j * ROWS + r) * TILE + c]));
        if (splits == 1) skinny_store(out, bias, s, r, first + c, N);
        else *reinterpret_cast<skinny_f4 *>(&tile[ks * tile_floats + 4L * i]) = s;
    }
    if (splits == 1) return;

    // The last of the column tile's splits to arrive adds the partials, in split order: four quads
    // a thread at once, their loads for SKINNY_LAST_BATCH splits issued together (the tail of the
    // kernel is this block's memory round trips).
    __shared__ int last;
    __threadfence(); // this block's partials are visible to the block that reads them
    __syncthreads();
    if (tid == 0) last = atomicAdd(&count[blockIdx.x], 1u) == (unsigned)(splits - 1);
    __syncthreads();
    if (!last) return;
    __threadfence();
    for (int i0 = tid; i0 < quads; i0 += 4 * SKINNY_THREADS) {
        skinny_f4 s[4];
        UNROLL
        for (int u = 0; u < 4; u++) {
            int i = i0 + u * SKINNY_THREADS;
            if (i < quads) s[u] = skinny_load_part(tile + 4L * i);
        }
        UNROLL_BY(8)
        for (int j = 1; j < splits; j++)
            UNROLL
            for (int u = 0; u < 4; u++) {
                int i = i0 + u * SKINNY_THREADS;
                if (i < quads) skinny_add(s[u], skinny_load_part(tile + j * tile_floats + 4L * i));
            }
        UNROLL
        for (int u = 0; u < 4; u++) {
            int i = i0 + u * SKINNY_THREADS;
            if (i < quads) skinny_store(out, bias, s[u], 4 * i / TILE, first + 4 * i % TILE, N);
        }
    }
    if (tid == 0) count[blockIdx.x] = 0u; // stream order: the next call starts after this one
}

// The plan for wn warps across a tile: as many splits as reach `target` blocks, within the bound on
// the last block's partial sums and the scratch; 0 when the scratch cannot hold a split plan.
static int plan_for(int M, int K, int N, int wn, int target, struct matmul_skinny_plan *p)
{
    int steps = K / 32;
    long tiles = (N + SKINNY_COLS * wn - 1) / (SKINNY_COLS * wn);
    int max_splits = SKINNY_LAST_FLOATS / (M * SKINNY_COLS * wn); // the last block adds these alone
    long want = (target + tiles - 1) / tiles;
    int splits = (int)(want < max_splits ? want : max_splits);
    if (splits > steps) splits = steps;
    if (splits < 1) splits = 1;
    p->kc = (steps + splits - 1) / splits * 32; // a multiple of 32, every split non-empty
    p->splits = (K + p->kc - 1) / p->kc;
    p->wn = wn;
    p->tiles = (int)tiles;
    long part = (long)p->splits * tiles * M * SKINNY_COLS * wn; // whole tiles, the last one padded
    return p->splits == 1 || (part <= SKINNY_PART_FLOATS && tiles <= SKINNY_COUNTERS);
}

// Wide tiles read x fewer times (each tile reads all of it), narrow ones and more splits make more
// blocks: the widest wn that reaches two blocks an SM (8 warps: their loads in flight cover the
// memory latency), else the one with the most blocks.
extern "C" int matmul_skinny_plan(int M, int K, int N, int sms, struct matmul_skinny_plan *p)
{
    if (M < 1 || M > SKINNY_MAX_ROWS || K < 32 || K % 32 != 0 || N < 1 || sms < 1) return -1;
    int target = 2 * sms, found = 0;
    for (int wn = 4; wn >= 1; wn /= 2) {
        struct matmul_skinny_plan q;
        if (!plan_for(M, K, N, wn, target, &q)) continue;
        long blocks = (long)q.tiles * q.splits;
        if (!found || blocks > (long)p->tiles * p->splits) *p = q;
        found = 1;
        if (blocks >= target) break;
    }
    return found ? 0 : -1;
}

// SKINNY_PDL: launched with programmatic stream serialisation (pdl.cuh), so the kernel may start
// while the one before it finishes. The interpreter runs kernels in order: a plain launch there.
template <int MT, int WN>
static void skinny_launch(float *out, const uint16_t *x, const uint16_t *w, const float *bias, int M, int K, int N,
                          const struct matmul_skinny_plan *p, const struct gpu_blas *blas)
{
    dim3 grid((unsigned)p->tiles, (unsigned)p->splits);
    size_t smem = (size_t)SKINNY_WARPS * 16 * MT * SKINNY_COLS * sizeof(float);
    pdl_launch(blas->skinny == SKINNY_PDL, matmul_skinny_kernel<MT, WN>, grid, dim3(SKINNY_THREADS), smem, blas->stream,
               out, x, w, bias, blas->skinny_part, blas->skinny_count, M, K, N, p->kc);
}

template <int MT>
static void skinny_launch_wn(float *out, const uint16_t *x, const uint16_t *w, const float *bias, int M, int K, int N,
                             const struct matmul_skinny_plan *p, const struct gpu_blas *blas)
{
    if (p->wn == 4) skinny_launch<MT, 4>(out, x, w, bias, M, K, N, p, blas);
    else if (p->wn == 2) skinny_launch<MT, 2>(out, x, w, bias, M, K, N, p, blas);
    else skinny_launch<MT, 1>(out, x, w, bias, M, K, N, p, blas);
}

extern "C" int matmul_skinny_bf16_cuda(float *out, const uint16_t *x, const uint16_t *w, const float *bias, int M,
                                       int K, int N, const struct gpu_blas *blas)
{
    struct matmul_skinny_plan p;
    if (!blas->skinny_part || matmul_skinny_plan(M, K, N, blas->sms, &p)) return -1;
    if (((uintptr_t)x | (uintptr_t)w) % 16 != 0) return -1; // 16-byte loads (K % 32 == 0 keeps rows aligned)
    switch ((M + 15) / 16) {
    case 1: skinny_launch_wn<1>(out, x, w, bias, M, K, N, &p, blas); break;
    case 2: skinny_launch_wn<2>(out, x, w, bias, M, K, N, &p, blas); break;
    case 3: skinny_launch_wn<3>(out, x, w, bias, M, K, N, &p, blas); break;
    default: skinny_launch_wn<4>(out, x, w, bias, M, K, N, &p, blas); break;
    }
    return 0;
}
