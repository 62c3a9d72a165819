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
struct rope_qkv_args {
    float *packed, *q, *k, *v; // the unpacked side: written by the forward, read by the backward
    uint16_t *packed16;        // the backward's bf16 rounding of packed (may be NULL; then packed may be)
    const float *cos, *sin;
    int rows, n_heads, n_kv, half;
    uint16_t *q16, *k16, *v16; // bf16 q, k, v: the forward's rounding of its outputs, or the backward's
                               // inputs instead of q, k, v (or NULL)
};

template <bool BACKWARD>
static __global__ void rope_qkv_kernel(struct rope_qkv_args a)
{
    int hd = 2 * a.half, heads = a.n_heads + 2 * a.n_kv, per_row = heads * a.half;
    for (long r = blockIdx.y; r < a.rows; r += gridDim.y)
        for (int p = (int)(blockIdx.x * blockDim.x + threadIdx.x); p < per_row; p += (int)(gridDim.x * blockDim.x)) {
            int head = p / a.half, i = p - head * a.half, j = i + a.half;
            int part = head < a.n_heads ? 0 : (head < a.n_heads + a.n_kv ? 1 : 2);
            int h = head - (part == 0 ? 0 : (part == 1 ? a.n_heads : a.n_heads + a.n_kv));
            long rh = (r * (part ? a.n_kv : a.n_heads) + h) * hd;
            long y0 = r * heads * hd + (long)head * hd; // the head's offset in the packed row
            const float *c = a.cos + r * hd, *s = a.sin + r * hd;
            if (BACKWARD) {
                float x1, x2;
                if (a.q16) {
                    const uint16_t *x16 = (part == 0 ? a.q16 : (part == 1 ? a.k16 : a.v16)) + rh;
                    x1 = bf16_widen(x16[i]), x2 = bf16_widen(x16[j]);
                } else {
                    const float *x = (part == 0 ? a.q : (part == 1 ? a.k : a.v)) + rh;
                    x1 = x[i], x2 = x[j];
                }
                float g1 = x1, g2 = x2; // v: copied
                if (part != 2) rope_unrotate(x1, x2, c, s, i, a.half, &g1, &g2);
                if (a.packed) a.packed[y0 + i] = g1, a.packed[y0 + j] = g2;
                if (a.packed16) a.packed16[y0 + i] = bf16_round(g1), a.packed16[y0 + j] = bf16_round(g2);
            } else {
                float *x = part == 0 ? a.q : (part == 1 ? a.k : a.v); // q may be NULL (rounding alone)
                uint16_t *x16 = part == 0 ? a.q16 : (part == 1 ? a.k16 : a.v16);
                const float *y = a.packed + y0;
                float r1 = y[i], r2 = y[j]; // v: copied
                if (part != 2) rope_rotate(y[i], y[j], c, s, i, a.half, &r1, &r2);
                if (x) x[rh + i] = r1, x[rh + j] = r2;
                if (x16) x16[rh + i] = bf16_round(r1), x16[rh + j] = bf16_round(r2);
            }
        }
}

template <bool BACKWARD>
static void rope_qkv_launch(struct rope_qkv_args a, int head_dim, void *stream)
{
    MMUPT_CHECK(head_dim % 2 == 0 && a.n_heads > 0 && a.n_kv > 0);
    MMUPT_CHECK((long)(a.n_heads + 2L * a.n_kv) * head_dim <= 0x7fffffffL); // a row's index is an int
    long per_row = (long)(a.n_heads + 2L * a.n_kv) * a.half;
    if (a.rows <= 0 || per_row <= 0) return;
    rope_qkv_kernel<BACKWARD><<<launch_row_grid(a.rows, per_row), LAUNCH_THREADS, 0, (cudaStream_t)stream>>>(a);
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
