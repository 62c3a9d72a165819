// Rotary position embedding, CUDA twin of kernels/cpu/rope.c (rotate-half, per-row cos/sin tables).
//
// One thread per rotated pair (row r, head h, dim i < half): it reads x[i] and x[i + half] and
// writes both, so every element has exactly one writer and the op runs in place without races.
// The index is a long because rows * n_heads * half can exceed 2^31 for long packed batches.
#include <cuda_runtime.h>

#include "mmupt/cuda_check.h"
#include "mmupt/err.h"
#include "mmupt/kernels.h"
#include "bf16.cuh"
#include "launch.cuh"
#include "rope.cuh"
#include "vec.cuh"

// Splits a flat pair index into (row, head, i) and returns the offsets of the head's vector in x
// and of the row's tables in cos/sin.
static __device__ void rope_locate(long p, int n_heads, int half, long *xoff, long *toff, int *i)
{
    *i = (int)(p % half);
    long rh = p / half;  // r * n_heads + h: heads of a row lie back to back in x
    long r = rh / n_heads;
    *xoff = rh * (2L * half);
    *toff = r * (2L * half);
}

static __global__ void rope_forward_kernel(float *x, const float *cos, const float *sin, long pairs, int n_heads,
                                           int half)
{
    for (long p = blockIdx.x * (long)blockDim.x + threadIdx.x; p < pairs; p += (long)gridDim.x * blockDim.x) {
        long xoff, toff;
        int i;
        rope_locate(p, n_heads, half, &xoff, &toff, &i);
        float *xh = x + xoff;
        const float *c = cos + toff, *s = sin + toff;
        rope_rotate(xh[i], xh[i + half], c, s, i, half, &xh[i], &xh[i + half]);
    }
}

// The transpose of the forward's 2x2 map, as in the CPU reference.
static __global__ void rope_backward_kernel(float *dx, const float *cos, const float *sin, long pairs, int n_heads,
                                            int half)
{
    for (long p = blockIdx.x * (long)blockDim.x + threadIdx.x; p < pairs; p += (long)gridDim.x * blockDim.x) {
        long xoff, toff;
        int i;
        rope_locate(p, n_heads, half, &xoff, &toff, &i);
        float *g = dx + xoff;
        rope_unrotate(g[i], g[i + half], cos + toff, sin + toff, i, half, &g[i], &g[i + half]);
    }
}

extern "C" void rope_forward_cuda(float *x, const float *cos, const float *sin, int rows, int n_heads, int head_dim,
                                  void *stream)
{
    MMUPT_CHECK(head_dim % 2 == 0);
    int half = head_dim / 2;
    long pairs = (long)rows * n_heads * half;
    if (pairs <= 0) return;  // a zero-block launch is an error, and there is nothing to do
    rope_forward_kernel<<<launch_blocks(pairs), LAUNCH_THREADS, 0, (cudaStream_t)stream>>>(x, cos, sin, pairs, n_heads,
                                                                                       half);
    CUDA_CHECK(cudaGetLastError());
}

extern "C" void rope_backward_cuda(float *dx, const float *cos, const float *sin, int rows, int n_heads, int head_dim,
                                   void *stream)
{
    MMUPT_CHECK(head_dim % 2 == 0);
    int half = head_dim / 2;
    long pairs = (long)rows * n_heads * half;
    if (pairs <= 0) return;
    rope_backward_kernel<<<launch_blocks(pairs), LAUNCH_THREADS, 0, (cudaStream_t)stream>>>(dx, cos, sin, pairs, n_heads,
                                                                                        half);
    CUDA_CHECK(cudaGetLastError());
}

// rope_qkv: row r on grid y, its pairs (head h of [q | k | v], dim i < half) on x, each moved between
// the packed rows [q | k | v] (width w) and its own [rows, heads, hd] array; q's and k's pairs rotated
// on the way (forward: rope_rotate; backward: the transpose, as rope_backward_kernel), v's copied.
// The unpacked side may also be bf16: the forward writing q/k/v's rounding (rope_qkv_forward_cast,
// cuDNN's attention operands), the backward reading gradients in bf16 (rope_qkv16_backward_cast).
// 32-bit index arithmetic within a row (a flat index's 64-bit divisions were most of the work).
// A thread takes VEC consecutive pairs (i .. i + VEC - 1 and their partners j = i + half ..): 16-byte
// loads and stores of the fp32 arrays, 8-byte ones of the bf16 arrays, where half is a multiple of 4
// and every array is aligned to that (the 1.5B learner's step ran these kernels at ~1.4 TB/s with a
// 4-byte access a thread); else one pair a thread. Each element's arithmetic is the same either way.
struct rope_qkv_args {
    float *packed, *q, *k, *v; // the unpacked side: written by the forward, read by the backward
    uint16_t *packed16;        // the backward's bf16 rounding of packed (may be NULL; then packed may be)
    const float *cos, *sin;
    int rows, n_heads, n_kv, half;
    uint16_t *q16, *k16, *v16; // bf16 q, k, v: the forward's rounding of its outputs, or the backward's
                               // inputs instead of q, k, v (or NULL)
};

// f[0..VEC) = the widened p[0..VEC), and p[0..VEC) = f's rounding: the bf16 sides' accesses.
template <int VEC>
static __device__ __forceinline__ void rope_ld16(float (&f)[VEC], const uint16_t *p)
{
    uint16_t h[VEC];
    vec_load<uint16_t, VEC>(h, p);
    UNROLL
    for (int e = 0; e < VEC; e++) f[e] = bf16_widen(h[e]);
}

template <int VEC>
static __device__ __forceinline__ void rope_st16(uint16_t *p, const float (&f)[VEC])
{
    uint16_t h[VEC];
    UNROLL
    for (int e = 0; e < VEC; e++) h[e] = bf16_round(f[e]);
    vec_store<uint16_t, VEC>(p, h);
}

template <bool BACKWARD, int VEC>
static __global__ void rope_qkv_kernel(struct rope_qkv_args a)
{
    int hd = 2 * a.half, heads = a.n_heads + 2 * a.n_kv, per_row = heads * a.half / VEC;
    for (long r = blockIdx.y; r < a.rows; r += gridDim.y)
        for (int t = (int)(blockIdx.x * blockDim.x + threadIdx.x); t < per_row; t += (int)(gridDim.x * blockDim.x)) {
            int p = t * VEC, head = p / a.half, i = p - head * a.half, j = i + a.half;
            int part = head < a.n_heads ? 0 : (head < a.n_heads + a.n_kv ? 1 : 2);
            int h = head - (part == 0 ? 0 : (part == 1 ? a.n_heads : a.n_heads + a.n_kv));
            long rh = (r * (part ? a.n_kv : a.n_heads) + h) * hd;
            long y0 = r * heads * hd + (long)head * hd; // the head's offset in the packed row
            const float *c = a.cos + r * hd, *s = a.sin + r * hd;
            float x1[VEC], x2[VEC], y1[VEC], y2[VEC];
            if (BACKWARD) {
                if (a.q16) {
                    const uint16_t *x16 = (part == 0 ? a.q16 : (part == 1 ? a.k16 : a.v16)) + rh;
                    rope_ld16<VEC>(x1, x16 + i), rope_ld16<VEC>(x2, x16 + j);
                } else {
                    const float *x = (part == 0 ? a.q : (part == 1 ? a.k : a.v)) + rh;
                    vec_load<float, VEC>(x1, x + i), vec_load<float, VEC>(x2, x + j);
                }
                UNROLL
                for (int e = 0; e < VEC; e++) {
                    y1[e] = x1[e], y2[e] = x2[e]; // v: copied
                    if (part != 2) rope_unrotate(x1[e], x2[e], c, s, i + e, a.half, &y1[e], &y2[e]);
                }
                if (a.packed)
                    vec_store<float, VEC>(a.packed + y0 + i, y1), vec_store<float, VEC>(a.packed + y0 + j, y2);
                if (a.packed16) rope_st16<VEC>(a.packed16 + y0 + i, y1), rope_st16<VEC>(a.packed16 + y0 + j, y2);
            } else {
                float *x = part == 0 ? a.q : (part == 1 ? a.k : a.v); // q may be NULL (rounding alone)
                uint16_t *x16 = part == 0 ? a.q16 : (part == 1 ? a.k16 : a.v16);
                vec_load<float, VEC>(x1, a.packed + y0 + i), vec_load<float, VEC>(x2, a.packed + y0 + j);
                UNROLL
                for (int e = 0; e < VEC; e++) {
                    y1[e] = x1[e], y2[e] = x2[e]; // v: copied
                    if (part != 2) rope_rotate(x1[e], x2[e], c, s, i + e, a.half, &y1[e], &y2[e]);
                }
                if (x) vec_store<float, VEC>(x + rh + i, y1), vec_store<float, VEC>(x + rh + j, y2);
                if (x16) rope_st16<VEC>(x16 + rh + i, y1), rope_st16<VEC>(x16 + rh + j, y2);
            }
        }
}

// Whether a call can take 4 pairs a thread: half a multiple of 4, every fp32 array 16-byte and every
// bf16 array 8-byte aligned (the offsets inside are multiples of 4 elements then).
static bool rope_qkv_vec4(const struct rope_qkv_args *a)
{
    return a->half % 4 == 0 && vec_aligned(16, a->packed, a->q, a->k, a->v) &&
           vec_aligned(8, a->packed16, a->q16, a->k16, a->v16);
}

template <bool BACKWARD>
static void rope_qkv_launch(struct rope_qkv_args a, int head_dim, void *stream)
{
    MMUPT_CHECK(head_dim % 2 == 0 && a.n_heads > 0 && a.n_kv > 0);
    MMUPT_CHECK((long)(a.n_heads + 2L * a.n_kv) * head_dim <= 0x7fffffffL); // a row's index is an int
    long per_row = (long)(a.n_heads + 2L * a.n_kv) * a.half;
    if (a.rows <= 0 || per_row <= 0) return;
    cudaStream_t st = (cudaStream_t)stream;
    if (rope_qkv_vec4(&a))
        rope_qkv_kernel<BACKWARD, 4><<<launch_row_grid(a.rows, per_row / 4), LAUNCH_THREADS, 0, st>>>(a);
    else
        rope_qkv_kernel<BACKWARD, 1><<<launch_row_grid(a.rows, per_row), LAUNCH_THREADS, 0, st>>>(a);
    CUDA_CHECK(cudaGetLastError());
}

extern "C" void rope_qkv_forward_cuda(float *q, float *k, float *v, const float *qkv, const float *cos,
                                      const float *sin, int rows, int n_heads, int n_kv, int head_dim, void *stream)
{
    struct rope_qkv_args a = {(float *)qkv, q,    k, v, (uint16_t *)NULL, cos, sin, rows, n_heads, n_kv, head_dim / 2,
                              NULL,         NULL, NULL};
    rope_qkv_launch<false>(a, head_dim, stream);
}

extern "C" void rope_qkv_forward_cast_cuda(float *q, float *k, float *v, uint16_t *q16, uint16_t *k16, uint16_t *v16,
                                           const float *qkv, const float *cos, const float *sin, int rows, int n_heads,
                                           int n_kv, int head_dim, void *stream)
{
    MMUPT_CHECK(k != NULL && v != NULL && q16 != NULL && k16 != NULL && v16 != NULL);
    struct rope_qkv_args a = {(float *)qkv, q, k, v, (uint16_t *)NULL, cos, sin, rows, n_heads, n_kv, head_dim / 2,
                              q16,          k16, v16};
    rope_qkv_launch<false>(a, head_dim, stream);
}

extern "C" void rope_qkv_backward_cuda(float *dqkv, const float *dq, const float *dk, const float *dv,
                                       const float *cos, const float *sin, int rows, int n_heads, int n_kv,
                                       int head_dim, void *stream)
{
    rope_qkv_backward_cast_cuda(dqkv, (uint16_t *)NULL, dq, dk, dv, cos, sin, rows, n_heads, n_kv, head_dim, stream);
}

extern "C" void rope_qkv_backward_cast_cuda(float *dqkv, uint16_t *dqkv16, const float *dq, const float *dk,
                                            const float *dv, const float *cos, const float *sin, int rows,
                                            int n_heads, int n_kv, int head_dim, void *stream)
{
    MMUPT_CHECK(dqkv != NULL || dqkv16 != NULL);
    struct rope_qkv_args a = {dqkv, (float *)dq, (float *)dk, (float *)dv, dqkv16, cos, sin, rows, n_heads, n_kv,
                              head_dim / 2, NULL, NULL, NULL};
    rope_qkv_launch<true>(a, head_dim, stream);
}

extern "C" void rope_qkv16_backward_cast_cuda(float *dqkv, uint16_t *dqkv16, const uint16_t *dq16,
                                              const uint16_t *dk16, const uint16_t *dv16, const float *cos,
                                              const float *sin, int rows, int n_heads, int n_kv, int head_dim,
                                              void *stream)
{
    MMUPT_CHECK(dqkv != NULL || dqkv16 != NULL);
    MMUPT_CHECK(dq16 != NULL && dk16 != NULL && dv16 != NULL);
    struct rope_qkv_args a = {dqkv,         (float *)NULL,      (float *)NULL, (float *)NULL, dqkv16, cos, sin, rows,
                              n_heads,      n_kv,               head_dim / 2,  (uint16_t *)dq16, (uint16_t *)dk16,
                              (uint16_t *)dv16};
    rope_qkv_launch<true>(a, head_dim, stream);
}
