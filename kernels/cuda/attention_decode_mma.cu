// Decode attention on bf16 tensor cores: a second CUDA implementation of attention_decode's bf16-cache
// forms (attention_decode_bf16, _bf16_cast and the fused _qkv_bf16_cast), taken with ATTN_DECODE_MMA
// (MMUPT_DECODE_MMA=1) where decode_mma_fits; checked against the same CPU reference
// (kernels/cpu/attention_decode.c) with a bf16 tolerance, as matmul_skinny is against matmul.c.
//
// Why: attention_decode.cu's kernel computes every score and weighted sum in fp32 FMAs, one thread a
// cache row, then a softmax and a sum over warps, three barriers apart - a chain of dependent steps
// that took 16 us a layer in the H200 profile of the 0.5B decode step (64 rows), the largest kernel of
// the step, for ~8 MB of cache. Here a block (row i, kv head g) of W warps splits the cache rows into
// tiles of KEYS keys, warp w taking tiles w, w + W, ...; a warp multiplies its tile with mma.sync
// (mma.cuh), keeps an online softmax in registers (running max and sum per q head, the accumulators
// rescaled when the max grows, as attention_flash.cu's forward does), and the warps' partial results
// meet once in shared memory: one barrier after the q rows, one before the merge.
//
// The products: S = Q K^T with Q the group's q heads as the 16 rows of the A operand (rows past the
// group zero), K's rows as B's columns; O += P V with P the tile's weights rounded to bf16. Both
// contractions read the cache straight from global memory in 16-byte loads, which needs two
// permutations that change nothing in the result:
//   - in S the contraction index k of a lane (4 g + t) is one of 2t, 2t + 1, 2t + 8, 2t + 9; that
//     lane takes d = t hd/4 + 4 ks + {0, 1, 2, 3} for them in k step ks, so over the hd/16 steps it
//     reads the hd/4 consecutive elements of a key row from t hd/4 on - and Q's fragments are built
//     with the same map;
//   - in O the lane's output column g of n tile dt is d = g hd/8 + dt, so for each key it reads the
//     hd/8 consecutive elements from g hd/8 on; the merge writes each column to its d.
// q is rounded to bf16 on its way into the A operand, the weights likewise: the result is within
// bf16 rounding of the fp32 reference (q's 2^-9 relative error moves a score by ~1e-3 at hd 64), not
// its fp32 tolerance - a rollout samples from bf16 weights and logits already. Scores, the softmax
// and the accumulators are fp32 (exp2f on scores scaled by log2 e). Every addition's order depends
// only on the launch shape: a call repeats bit for bit. Keys past the row's length are masked in S
// and their V elements loaded as zeros (the cache's unused rows may hold anything, NaN included).
#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>

#include "mmupt/cuda_check.h"
#include "mmupt/err.h"
#include "attention_decode.cuh"
#include "bf16.cuh"
#include "mma.cuh"
#include "pdl.cuh"
#include "unroll.cuh"
#include "vec.cuh"

enum { DM_ROWS = 16 }; // q heads a block's A operand holds: the largest group it takes

// The launch shape for head size HD: at hd 128 fewer keys a step and fewer warps (registers: a
// lane's output accumulators are hd/2 floats, and the merge's shared memory W x 16 x hd floats).
template <int HD>
struct dm_shape {
    static constexpr int WARPS = HD > 64 ? 4 : 8;
    static constexpr int KEYS = HD > 64 ? 16 : 32; // keys a warp's step takes
    static constexpr int NT = KEYS / 8;            // n tiles of S
    static constexpr int KS = HD / 16;             // k steps of Q K^T
    static constexpr int KC = KEYS / 16;           // k steps of P V
    static constexpr int DT = HD / 8;              // n tiles of O
    static constexpr int KW = HD / 8;              // 32-bit words of a lane's K segment (hd/4 bf16)
    static constexpr int VW = HD / 16;             // words of a lane's V segment (hd/8 bf16)
};

// Dynamic shared memory in floats: q rows [16][hd], the warps' outputs [W][group][hd], maxima and
// sums [W][group] each.
static size_t dm_smem_floats(int hd, int warps, int group)
{
    return (size_t)DM_ROWS * hd + (size_t)warps * group * hd + 2 * (size_t)warps * group;
}

// The lower (hi 0) or upper (hi 1) bf16 halves of two words, as one operand register (a first).
static __device__ __forceinline__ uint32_t dm_halves(uint32_t a, uint32_t b, int hi)
{
    return hi ? (a >> 16) | (b & 0xffff0000u) : (a & 0xffffu) | (b << 16);
}

// W words from p (aligned to the pack), or zeros when !ok.
template <int W>
static __device__ __forceinline__ void dm_load(uint32_t (&w)[W], const uint16_t *p, bool ok)
{
    if (ok) vec_load<uint32_t, W>(w, reinterpret_cast<const uint32_t *>(p));
    else
        UNROLL
        for (int e = 0; e < W; e++) w[e] = 0u;
}

// One warp's online softmax state: rows g and g + 8 of the lane's quad (max in log2 units, the
// lane's share of the sum) and its output accumulators.
template <int HD>
struct dm_state {
    float m[2], l[2], o[dm_shape<HD>::DT][4];
};

// One step of a warp: the keys kb .. kb + KEYS - 1 (those below L) of k and v (row j at j * stride),
// against the q fragments qa.
template <int HD>
static __device__ __forceinline__ void dm_step(dm_state<HD> &st, const uint32_t (&qa)[dm_shape<HD>::KS][4],
                                               const uint16_t *k, const uint16_t *v, long stride, int kb, int L,
                                               float scale_log2)
{
    using S = dm_shape<HD>;
    int lane = (int)(threadIdx.x % 32), g = lane / 4, t = lane % 4;
    // Every load of the step first: K segments (key kb + 8 nt + g, from t hd/4), V segments (keys
    // 16 kc + 2t + {0, 1, 8, 9}, from g hd/8).
    uint32_t kw[S::NT][S::KW], vw[S::KC][4][S::VW];
    UNROLL
    for (int nt = 0; nt < S::NT; nt++) {
        int key = kb + nt * 8 + g;
        dm_load<S::KW>(kw[nt], k + key * stride + t * (HD / 4), key < L);
    }
    UNROLL
    for (int kc = 0; kc < S::KC; kc++)
        UNROLL
        for (int u = 0; u < 4; u++) {
            int key = kb + 16 * kc + 2 * t + (u & 1) + 8 * (u >> 1);
            dm_load<S::VW>(vw[kc][u], v + key * stride + g * (HD / 8), key < L);
        }
    // S = Q K^T, scaled to log2 units, keys past L masked; the rows' maxima over the tile.
    float sc[S::NT][4];
    UNROLL
    for (int nt = 0; nt < S::NT; nt++) {
        UNROLL
        for (int e = 0; e < 4; e++) sc[nt][e] = 0.0f;
        UNROLL
        for (int ks = 0; ks < S::KS; ks++) {
            uint32_t b[2] = {kw[nt][2 * ks], kw[nt][2 * ks + 1]};
            mma_bf16_16816(sc[nt], qa[ks], b);
        }
    }
    float mx[2] = {-INFINITY, -INFINITY};
    UNROLL
    for (int nt = 0; nt < S::NT; nt++)
        UNROLL
        for (int e = 0; e < 4; e++) {
            int key = kb + nt * 8 + 2 * t + (e & 1);
            sc[nt][e] = key < L ? sc[nt][e] * scale_log2 : -INFINITY;
            mx[e >> 1] = fmaxf(mx[e >> 1], sc[nt][e]);
        }
    // The running max, sum and accumulators rescaled to it; every tile a warp takes holds key kb < L,
    // so the new max is finite (exp2f(-inf) = 0 rescales the empty first state).
    UNROLL
    for (int r = 0; r < 2; r++) {
        float mn = fmaxf(st.m[r], mma_quad_max(mx[r])), alpha = exp2f(st.m[r] - mn);
        st.m[r] = mn;
        st.l[r] *= alpha;
        UNROLL
        for (int dt = 0; dt < S::DT; dt++) {
            st.o[dt][2 * r] *= alpha;
            st.o[dt][2 * r + 1] *= alpha;
        }
    }
    UNROLL
    for (int nt = 0; nt < S::NT; nt++)
        UNROLL
        for (int e = 0; e < 4; e++) {
            float p = exp2f(sc[nt][e] - st.m[e >> 1]);
            sc[nt][e] = p;
            st.l[e >> 1] += p;
        }
    // O += P V: P's accumulators are the A operand lane for lane (mma.cuh), V's B operand for output
    // column g of n tile dt is element dt of the lane's segments of keys 2t, 2t + 1 (b[0]) and 2t + 8,
    // 2t + 9 (b[1]).
    UNROLL
    for (int kc = 0; kc < S::KC; kc++) {
        uint32_t a[4];
        mma_c_to_a(a, sc[2 * kc], sc[2 * kc + 1]);
        UNROLL
        for (int dt = 0; dt < S::DT; dt++) {
            uint32_t b[2] = {dm_halves(vw[kc][0][dt / 2], vw[kc][1][dt / 2], dt % 2),
                             dm_halves(vw[kc][2][dt / 2], vw[kc][3][dt / 2], dt % 2)};
            mma_bf16_16816(st.o[dt], a, b);
        }
    }
}

// Block (row i, kv head g): see the top of the file.
template <int HD>
static __global__ void __launch_bounds__(dm_shape<HD>::WARPS * 32)
attention_decode_mma_kernel(float *out, uint16_t *out16, const float *q, struct decode_args<uint16_t> a)
{
    using S = dm_shape<HD>;
    pdl_trigger(); // the kernel after may start its prologue (pdl.cuh)
    extern __shared__ decode_f4 dm_smem[];
    int group = a.group, b = (int)blockIdx.x, i = b / a.n_kv, g = b % a.n_kv;
    float *qs = (float *)dm_smem, *os = qs + DM_ROWS * HD, *ms = os + S::WARPS * group * HD, *ls = ms + S::WARPS * group;
    int tid = (int)threadIdx.x, warp = tid / 32, lane = tid % 32, r = lane / 4, t = lane % 4;
    int s = a.slot[i], L = a.pos[i] + 1;
    if (s < 0 || s >= a.n_slots || L < 1 || L > a.max_len) __trap();
    long stride = (long)a.n_kv * HD, kvoff = (long)g * HD, row0 = (long)i * a.n_heads + (long)g * group;
    const uint16_t *k = a.cache_k + s * a.slot_floats + kvoff, *v = a.cache_v + s * a.slot_floats + kvoff;
    // The cached rows start on their way into L2 now, while the q rows are made (a hint, as in
    // attention_decode.cu; not the new row, which this kernel may write).
    for (int j = tid; j < L - 1; j += (int)blockDim.x) {
        l2_prefetch(k + j * stride, HD * sizeof(uint16_t));
        l2_prefetch(v + j * stride, HD * sizeof(uint16_t));
    }
    // Launched programmatically: the q/k/v GEMM before must be done before its output is read.
    pdl_wait();
    // The q rows [16][hd] (rows past the group zero); the fused step appends the row's own k and v
    // first - the barrier publishes both to every warp.
    if (a.qkv) {
        decode_append_new(a, i, g, s * a.slot_floats + (long)(L - 1) * stride + kvoff, (uint16_t *)NULL,
                          (uint16_t *)NULL);
        decode_q_rope(qs, a, i, g * group, group);
    } else
        for (int e = tid; e < group * HD; e += (int)blockDim.x) qs[e] = q[row0 * HD + e];
    for (int e = group * HD + tid; e < DM_ROWS * HD; e += (int)blockDim.x) qs[e] = 0.0f;
    __syncthreads();

    // Q's A fragments under the contraction map (the top of the file).
    uint32_t qa[S::KS][4];
    UNROLL
    for (int ks = 0; ks < S::KS; ks++) {
        const float *p0 = qs + r * HD + t * (HD / 4) + 4 * ks, *p1 = p0 + 8 * HD;
        qa[ks][0] = mma_pack(p0[0], p0[1]);
        qa[ks][1] = mma_pack(p1[0], p1[1]);
        qa[ks][2] = mma_pack(p0[2], p0[3]);
        qa[ks][3] = mma_pack(p1[2], p1[3]);
    }
    dm_state<HD> st;
    UNROLL
    for (int e = 0; e < 2; e++) {
        st.m[e] = -INFINITY;
        st.l[e] = 0.0f;
    }
    UNROLL
    for (int dt = 0; dt < S::DT; dt++)
        UNROLL
        for (int e = 0; e < 4; e++) st.o[dt][e] = 0.0f;
    float scale_log2 = a.scale * 1.4426950408889634f;
    for (int kb = warp * S::KEYS; kb < L; kb += S::WARPS * S::KEYS) dm_step<HD>(st, qa, k, v, stride, kb, L, scale_log2);

    // The warp's partial results for the group's heads: output columns to their d (the top of the
    // file), the max and the quad's sum per head. A warp without a tile leaves m = -inf, l = 0.
    UNROLL
    for (int h = 0; h < 2; h++) {
        int row = r + 8 * h;
        float l = mma_quad_sum(st.l[h]); // every lane: the shuffles need the whole warp
        if (row >= group) continue;
        if (t == 0) {
            ms[warp * group + row] = st.m[h];
            ls[warp * group + row] = l;
        }
        float *o = os + ((long)warp * group + row) * HD;
        UNROLL
        for (int dt = 0; dt < S::DT; dt++) {
            o[2 * t * (HD / 8) + dt] = st.o[dt][2 * h];
            o[(2 * t + 1) * (HD / 8) + dt] = st.o[dt][2 * h + 1];
        }
    }
    __syncthreads();
    // The merge, in warp order: out = sum_w c_w o_w / sum_w c_w l_w with c_w = 2^(m_w - max_w m_w).
    for (int e = tid; e < group * HD; e += (int)blockDim.x) {
        int h = e / HD, d = e % HD;
        float M = -INFINITY;
        for (int w = 0; w < S::WARPS; w++) M = fmaxf(M, ms[w * group + h]);
        float num = 0.0f, den = 0.0f;
        for (int w = 0; w < S::WARPS; w++) {
            float c = exp2f(ms[w * group + h] - M);
            den += c * ls[w * group + h];
            num += c * os[((long)w * group + h) * HD + d];
        }
        float y = num / den;
        long at = (row0 + h) * HD + d;
        out[at] = y;
        if (out16) out16[at] = bf16_round(y);
    }
}

int decode_mma_fits(int group, int hd, const void *cache_k, const void *cache_v)
{
    return group >= 1 && group <= DM_ROWS && (hd == 16 || hd == 32 || hd == 64 || hd == 128) &&
           ((uintptr_t)cache_k | (uintptr_t)cache_v) % 16 == 0;
}

template <int HD>
static void dm_launch(float *out, uint16_t *out16, const float *q, const struct decode_args<uint16_t> &a, int pdl,
                      cudaStream_t st)
{
    using S = dm_shape<HD>;
    size_t smem = dm_smem_floats(HD, S::WARPS, a.group) * sizeof(float); // <= 41 KiB: no opt-in needed
    pdl_launch(pdl != 0, attention_decode_mma_kernel<HD>, dim3((unsigned)((long)a.n * a.n_kv)),
               dim3((unsigned)(S::WARPS * 32)), smem, st, out, out16, q, a);
}

void decode_mma_run(float *out, uint16_t *out16, const float *q, const struct decode_args<uint16_t> &a, int pdl,
                    cudaStream_t st)
{
    switch (a.hd) {
    case 16: dm_launch<16>(out, out16, q, a, pdl, st); break;
    case 32: dm_launch<32>(out, out16, q, a, pdl, st); break;
    case 64: dm_launch<64>(out, out16, q, a, pdl, st); break;
    case 128: dm_launch<128>(out, out16, q, a, pdl, st); break;
    default: MMUPT_DIE("attention_decode (tensor cores): head size %d (decode_mma_fits)", a.hd);
    }
}
