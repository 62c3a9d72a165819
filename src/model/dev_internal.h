/* Shared by the device model's files (src/model/dev*.c) only. Device buffers reuse the CPU model's
 * structs (block_acts, block_shape, model_kv): the same fields, pointing at device memory, so the
 * drivers read like the CPU reference they mirror. */
#ifndef MMUPT_MODEL_DEV_INTERNAL_H
#define MMUPT_MODEL_DEV_INTERNAL_H

#include "mmupt/gpu_mem.h"
#include "mmupt/model_dev.h"
#include "model_internal.h"

/* The vision tower's activations on the device: the CPU struct (host plan, device buffers) and the
 * device copies of what the CPU tower reads from the host. */
struct dev_vision {
    struct vision_acts va;
    float *cos, *sin; /* the plan's rotary tables [P, head_dim] */
    float *pixels;    /* [P, patch_dim] */
};

/* Activations of the last device forward. Host: seg (launch metadata of the attention twins).
 * Device: everything else. */
struct model_dev_acts {
    int64_t T;
    int n_seq;
    int *seg;
    int64_t *tokens;
    int64_t *image_rows;       /* host: the positions of the image tokens, in order */
    int64_t n_image_rows;
    float *cos, *sin;          /* [T, head_dim] */
    int has_images;
    struct dev_vision vis;
    float *embed;              /* [T, H] */
    struct block_acts *layers; /* the CPU struct, device buffers */
    float *out, *final, *final_rstd;
    uint16_t *final16; /* bf16 (not forward_last): final rounded, lm_head's operand forward and backward */
    int last_only;
};

/* Lazy gradient zeroing (dev_grads.c). dev_grad_begin is called by every writer of the gradients
 * [off, off + n) (off < 0: none) before it writes: 0 when the writer may assign them (can_assign,
 * whole tensors none of which is written yet this step), else 1 - add to them, the fresh tensors
 * they touch zeroed first. */
void dev_grads_init(struct model_dev *d);
void dev_grads_free(struct model_dev *d);
float dev_grad_begin(struct model_dev *d, int64_t off, int64_t n, int can_assign);
/* The backward has finished stage k (model_dev_grad_stage): its untouched tensors zeroed, then
 * d->grads_done told. Nothing when grads_done is NULL. */
void dev_grads_stage_done(struct model_dev *d, int k);

/* bf16: a bf16 model's block, whose GEMMs read their operands' roundings - the fp32 outputs that
 * only a GEMM reads are then not kept (n1 and n2 of RMSNorm blocks, act of SwiGLU ones: NULL, the
 * producers write the rounding alone); keep: the bf16 operand copies too (block_acts' n1h .. acth),
 * for a backward to reuse. */
void dev_block_acts_alloc(const struct gpu_ctx *g, struct block_acts *a, const struct block_shape *s, int bf16,
                          int keep);
void dev_block_acts_free(const struct gpu_ctx *g, struct block_acts *a);
/* Activation recomputation: free everything of a but the block input x (the backward recomputes the
 * rest from it). */
void dev_block_acts_keep_input(const struct gpu_ctx *g, struct block_acts *a);
/* A prefill (forward_last): free everything of a but k and v, which the KV cache takes after the last
 * block - a prefill's peak memory is one block's activations, not every block's. */
void dev_block_acts_keep_kv(const struct gpu_ctx *g, struct block_acts *a);
/* The linear layers of the device model (src/model/dev_linear.c), in d's precision: out[M,N] =
 * inp[M,K] @ W^T (+ b) for the parameter at offset w_off of d->params (bias at b_off; < 0: none), and
 * its backward: dinp (may be NULL) += dout @ W, d->grads[w_off..] += dout^T @ inp, the bias gradient
 * += the column sums of dout. Activations are device memory. */
void dev_linear_forward(struct model_dev *d, float *out, const float *inp, int64_t w_off, int64_t b_off, int M, int K,
                        int N);
/* inp16: bf16 only, inp rounded to bf16 as the forward's GEMM read it (kept by the caller), or NULL
 * to round inp again; fp32 ignores it. */
void dev_linear_backward(struct model_dev *d, float *dinp, const float *dout, const float *inp, const uint16_t *inp16,
                         int64_t w_off, int64_t b_off, int M, int K, int N);
/* The same with dinp assigned (=), not accumulated: a fresh gradient buffer needs no zero fill. */
void dev_linear_backward_set(struct model_dev *d, float *dinp, const float *dout, const float *inp,
                             const uint16_t *inp16, int64_t w_off, int64_t b_off, int M, int K, int N);
/* dev_linear_backward_set of a bf16 model (d->params_bf16: dinp assigned) from dout already rounded to
 * bf16 (dout16, as logprob_backward_bf16 writes lm_head's, or a norm's or RoPE's backward its
 * output's): the GEMMs' operand as it is, no cast. A bias (b_off >= 0) takes its gradient from the
 * fp32 dout, as dev_linear_backward_set does; without one dout may be NULL. */
void dev_linear_backward_bf16_dy(struct model_dev *d, float *dinp, const uint16_t *dout16, const float *dout,
                                 const float *inp, const uint16_t *inp16, int64_t w_off, int64_t b_off, int M, int K,
                                 int N);
/* The same with inp's rounding kept (inp16, required) and dinp written as its bf16 rounding (dinp16,
 * assigned; NULL: none): the o-projection's backward before cuDNN's attention, which reads that
 * gradient in bf16 only - no fp32 buffer, no cast launch. */
void dev_linear_backward_bf16_dy16(struct model_dev *d, uint16_t *dinp16, const uint16_t *dout16, const float *dout,
                                   const uint16_t *inp16, int64_t w_off, int64_t b_off, int M, int K, int N);
/* dev_linear_forward of a bf16 model from inp16, inp already rounded to bf16 (no cast). */
void dev_linear_forward_bf16_op(struct model_dev *d, float *out, const float *inp, const uint16_t *inp16,
                                int64_t w_off, int64_t b_off, int M, int K, int N);
/* dev_linear_forward_bf16_op without a bias, plus res: out = the projection + res (res not out) in the
 * GEMM's epilogue - a block's residual add (matmul_forward_bf16_res). */
void dev_linear_forward_bf16_res(struct model_dev *d, float *out, const float *res, const float *inp,
                                 const uint16_t *inp16, int64_t w_off, int M, int K, int N);
/* The same without a bias and with the output rounded to bf16 (out16): the gate/up projection of a
 * bf16 block, whose only reader (SwiGLU) takes bf16. */
void dev_linear_forward_bf16_out16(struct model_dev *d, uint16_t *out16, const uint16_t *inp16, int64_t w_off, int M,
                                   int K, int N);
/* dev_linear_forward on the same inp as the call just before, unchanged since (q/k/v read one norm
 * output, gate/up another): in bf16 its rounded copy is reused instead of cast again. */
void dev_linear_forward_again(struct model_dev *d, float *out, const float *inp, int64_t w_off, int64_t b_off, int M,
                              int K, int N);

/* Make the GEMM cast scratch hold at least n values now (bf16 only), so that work recorded in a CUDA
 * graph never sees it move. */
void dev_linear_reserve(struct model_dev *d, int64_t n);
/* bf16: the GEMM operand scratch (at least n values) that dev_linear_forward_again reads; an op that
 * writes its output's bf16 rounding there (the *_cast ops of kernels.h) spares the next projection
 * its cast. */
uint16_t *dev_linear_operand(struct model_dev *d, int64_t n);
/* The decode steps' persistent buffers and graphs (dev_decode.c). */
void dev_decoder_free(struct model_dev *d);

/* block_forward / block_backward on the device, with d's parameters and gradients: x, out, dout, dx
 * are device memory. */
void dev_block_forward(struct model_dev *d, struct block_acts *a, const struct block_shape *s,
                       const struct block_weights *w, const float *x, float *out);
/* dx (the block input's gradient) is assigned, its old contents unread. dout16 (may be NULL): dout
 * rounded to bf16, which the down projection's backward then reads instead of rounding dout itself;
 * dx16 (may be NULL): dx's rounding, written alongside for the block before (a bf16 model with
 * RMSNorm; block_writes_dx16 says whether the block does). */
void dev_block_backward(struct model_dev *d, const struct block_acts *a, const struct block_shape *s,
                        const struct block_weights *w, const float *dout, const uint16_t *dout16, float *dx,
                        uint16_t *dx16);
int dev_block_writes_dx16(const struct model_dev *d, const struct block_shape *s);

/* vision_forward / vision_backward on the device (b: the host batch with its grids and pixels). */
int dev_vision_forward(struct model_dev *d, struct dev_vision *dv, const struct model_batch *b,
                       struct mmupt_err *err);
void dev_vision_backward(struct model_dev *d, const struct dev_vision *dv, const float *dmerged);
void dev_vision_free(const struct gpu_ctx *g, struct dev_vision *dv, const struct model_config *c);

/* Rotary tables for [3, n] positions, computed on the host and uploaded into cos/sin ([n, head_dim],
 * device). */
void dev_upload_rope(const struct model_dev *d, const int64_t *pos, int64_t n, float *cos, float *sin);

#endif
