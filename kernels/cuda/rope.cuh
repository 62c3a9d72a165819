// The rotate-half map of one pair of a head's vector (kernels/cpu/rope.c's arithmetic), shared by
// rope.cu and the bf16 decode step's fused q/k/v op (attention_decode.cu), so the two cannot drift.
#ifndef MMUPT_KERNELS_CUDA_ROPE_CUH
#define MMUPT_KERNELS_CUDA_ROPE_CUH

// (x1, x2) = the head's elements i and i + half; c, s: the row's cos and sin tables.
static __device__ __forceinline__ void rope_rotate(float x1, float x2, const float *c, const float *s, int i, int half,
                                                   float *y1, float *y2)
{
    *y1 = x1 * c[i] - x2 * s[i];
    *y2 = x2 * c[i + half] + x1 * s[i + half];
}

#endif
