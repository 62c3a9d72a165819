// One warp's bf16 tensor-core multiply-add, D = A B + C with fp32 accumulators: A is 16 x 16, B is
// 16 x 8, C and D 16 x 8 (PTX mma.sync m16n8k16, sm_80 and later). Each lane holds its fragments in
// registers, two bf16 to a 32-bit register (the lower index in the lower half); with lane = 4 g + t:
//   a[0] = A[g][2t, 2t+1]    a[1] = A[g+8][2t, 2t+1]    a[2] = A[g][2t+8, 2t+9]    a[3] = A[g+8][2t+8, 2t+9]
//   b[0] = B[2t, 2t+1][g]    b[1] = B[2t+8, 2t+9][g]
//   c[0], c[1] = C[g][2t, 2t+1]                      c[2], c[3] = C[g+8][2t, 2t+1]
// The SIMT interpreter (no tensor cores) gathers the A rows and B columns a lane's four outputs need
// with shuffles and adds the products in k order in fp32: the same product, not the same rounding
// (the hardware's accumulation order inside one instruction is not specified), so tests compare
// against the CPU reference with a tolerance, as they do for cuBLAS. Below it the helpers both
// tensor-core attentions use: operand packing, accumulators as the next A operand, quad reductions.
#ifndef MMUPT_KERNELS_CUDA_MMA_CUH
#define MMUPT_KERNELS_CUDA_MMA_CUH

#include <math.h>
#include <stdint.h>

#include "bf16.cuh"

#ifndef __CUDA_ARCH__
// The interpreter's emulation: the lower and upper bf16 of a register, widened (exact).
static __device__ __forceinline__ float mma_lo(uint32_t r) { return __uint_as_float(r << 16); }
static __device__ __forceinline__ float mma_hi(uint32_t r) { return __uint_as_float(r & 0xffff0000u); }
#endif

static __device__ __forceinline__ void mma_bf16_16816(float (&c)[4], const uint32_t (&a)[4], const uint32_t (&b)[2])
{
#ifdef __CUDA_ARCH__
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
                 "{%8, %9}, {%0, %1, %2, %3};"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#else
    int lane = (int)(threadIdx.x % 32), g = lane / 4, t = lane % 4;
    float arow[2][16], bcol[2][16]; // A rows g and g + 8; B columns 2t and 2t + 1
    for (int s = 0; s < 4; s++) {   // lane 4 g + s holds A's k = 2s, 2s+1 and 2s+8, 2s+9 of rows g, g+8
        uint32_t r[4];
        for (int i = 0; i < 4; i++) r[i] = __shfl_sync(0xffffffffu, a[i], 4 * g + s);
        for (int h = 0; h < 2; h++) { // h: row g (registers 0, 2) or g + 8 (1, 3)
            arow[h][2 * s] = mma_lo(r[h]);
            arow[h][2 * s + 1] = mma_hi(r[h]);
            arow[h][2 * s + 8] = mma_lo(r[h + 2]);
            arow[h][2 * s + 9] = mma_hi(r[h + 2]);
        }
        for (int j = 0; j < 2; j++) { // column n = 2t + j lives in lanes 4 n + s
            uint32_t q0 = __shfl_sync(0xffffffffu, b[0], 4 * (2 * t + j) + s);
            uint32_t q1 = __shfl_sync(0xffffffffu, b[1], 4 * (2 * t + j) + s);
            bcol[j][2 * s] = mma_lo(q0);
            bcol[j][2 * s + 1] = mma_hi(q0);
            bcol[j][2 * s + 8] = mma_lo(q1);
            bcol[j][2 * s + 9] = mma_hi(q1);
        }
    }
    for (int h = 0; h < 2; h++)
        for (int j = 0; j < 2; j++) {
            float acc = c[2 * h + j];
            for (int k = 0; k < 16; k++) acc += arow[h][k] * bcol[j][k];
            c[2 * h + j] = acc;
        }
#endif
}

// The B fragment of a row-major bf16 tile read transposed, B[k][n] = tile[k0 + k][n0 + n] (V in P V):
// on the GPU one ldmatrix.x2.trans for the warp - lane l (mod 16) gives the address of tile row
// k0 + l, and the instruction hands lane 4 g + t the pairs (2t, 2t+1 ; g) of rows k0.. and k0 + 8..
// - where element loads take four a lane. Each row's 8 values must start 16-byte aligned (ld and
// n0 multiples of 8, the tile aligned). The interpreter reads the same elements one at a time.
static __device__ __forceinline__ void mma_frag_bt(uint32_t (&b)[2], const uint16_t *tile, int ld, int k0, int n0)
{
    int lane = (int)(threadIdx.x % 32);
#ifdef __CUDA_ARCH__
    uint32_t row = (uint32_t)__cvta_generic_to_shared(tile + (k0 + lane % 16) * ld + n0);
    asm volatile("ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16 {%0, %1}, [%2];"
                 : "=r"(b[0]), "=r"(b[1])
                 : "r"(row));
#else
    int g = lane / 4, t = lane % 4;
    const uint16_t *p = tile + (k0 + 2 * t) * ld + n0 + g;
    b[0] = (uint32_t)p[0] | ((uint32_t)p[ld] << 16);
    b[1] = (uint32_t)p[8 * ld] | ((uint32_t)p[9 * ld] << 16);
#endif
}

// Two floats rounded to bf16 as one operand register, the first in the lower half.
static __device__ __forceinline__ uint32_t mma_pack(float lo, float hi)
{
    return (uint32_t)bf16_round(lo) | ((uint32_t)bf16_round(hi) << 16);
}

// Two adjacent 16 x 8 accumulator tiles (columns 0-7 and 8-15) as the A fragment of a 16 x 16
// operand, rounded to bf16: the layouts line up lane for lane (the table above).
static __device__ __forceinline__ void mma_c_to_a(uint32_t (&a)[4], const float (&c0)[4], const float (&c1)[4])
{
    a[0] = mma_pack(c0[0], c0[1]);
    a[1] = mma_pack(c0[2], c0[3]);
    a[2] = mma_pack(c1[0], c1[1]);
    a[3] = mma_pack(c1[2], c1[3]);
}

// x reduced over the 4 lanes of a quad: the lanes that hold one row of an accumulator tile.
static __device__ __forceinline__ float mma_quad_max(float x)
{
    x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 1));
    return fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 2));
}

static __device__ __forceinline__ float mma_quad_sum(float x)
{
    x += __shfl_xor_sync(0xffffffffu, x, 1);
    return x + __shfl_xor_sync(0xffffffffu, x, 2);
}

#endif
