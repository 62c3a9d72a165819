// The rotate-half map of one pair of a head's vector (kernels/cpu/rope.c's arithmetic), shared by
// rope.cu and the bf16 decode step's fused q/k/v op (kv_append.cu), so the two cannot drift.
#ifndef MMUPT_KERNELS_CUDA_ROPE_CUH
#define MMUPT_KERNELS_CUDA_ROPE_CUH

// (x1, x2) = the head's elements i and i + half; c, s: the row's cos and sin tables.
static __device__ __forceinline__ void rope_rotate(float x1, float x2, const float *c, const float *s, int i, int half,
                                                   float *y1, float *y2)
{
    *y1 = x1 * c[i] - x2 * s[i];
    *y2 = x2 * c[i + half] + x1 * s[i + half];
}

// The transpose of that map (the gradient through it), as kernels/cpu/rope.c's backward.
static __device__ __forceinline__ void rope_unrotate(float g1, float g2, const float *c, const float *s, int i,
                                                     int half, float *y1, float *y2)
{
    *y1 = g1 * c[i] + g2 * s[i + half];
    *y2 = g2 * c[i + half] - g1 * s[i];
}

// (u1, u2) = the elements i and i + half of a head's vector at x, plus its bias b (may be NULL): what
// RoPE rotates in the packed q/k/v ops (the projections come out of a GEMM without their biases).
static __device__ __forceinline__ void qkv_pair_biased(const float *x, const float *b, int i, int half, float *u1,
                                                       float *u2)
{
    *u1 = x[i];
    *u2 = x[i + half];
    if (b) {
        *u1 += b[i];
        *u2 += b[i + half];
    }
}

// Pair p of rows packed as [q | k | v] - pq pairs of q first, then pk of k, then v's; heads of
// hd = 2 half values - as the packed q/k/v kernels (rope.cu, kv_append.cu) walk them: its part (0 q,
// 1 k, 2 v), dim i < half, row r, head h among the part's heads, rh = r * heads + h (the head's
// vector lies at rh * hd in the part's own [rows, heads, hd] array) and the vector's offset in the
// packed rows.
struct qkv_pair {
    int part, i, h;
    long r, rh, packed;
};

static __device__ __forceinline__ struct qkv_pair qkv_pair_at(long p, long pq, long pk, int n_heads, int n_kv,
                                                              int half)
{
    struct qkv_pair x;
    int hd = 2 * half, qd = n_heads * hd, kvd = n_kv * hd;
    x.part = p < pq ? 0 : (p < pq + pk ? 1 : 2);
    int heads = x.part ? n_kv : n_heads;
    long e = p - (x.part >= 1 ? pq : 0) - (x.part == 2 ? pk : 0);
    x.i = (int)(e % half);
    x.rh = e / half;
    x.r = x.rh / heads;
    x.h = (int)(x.rh % heads);
    x.packed = x.r * (qd + 2L * kvd) + (x.part == 0 ? 0 : (x.part == 1 ? qd : qd + kvd)) + (long)x.h * hd;
    return x;
}

#endif
