/* Shared by the files of the model module only: the vision plan, the saved activations and the
 * per-part forward/backward functions. */
#ifndef MMUPT_MODEL_INTERNAL_H
#define MMUPT_MODEL_INTERNAL_H

#include "mmupt/model.h"

/* Everything the vision tower needs that depends only on the image grids. */
struct vision_plan {
    int64_t n_patches, n_units; /* units: merge x merge patches = one LLM token */
    int64_t *window_index;      /* [n_units]: original unit id at each window-order slot */
    int *win_seg, n_win_seg;    /* window segments, in patches (n_win_seg + 1 boundaries) */
    int *full_seg, n_full_seg;  /* one segment per frame */
    float *cos, *sin;           /* [n_patches, head_dim], rows in window order */
};

int vision_plan_build(struct vision_plan *vp, const struct model_config *c, const int64_t *grid, int n_images,
                      struct mmupt_err *err);
void vision_plan_rope(struct vision_plan *vp, const struct model_config *c, const int64_t *grid, int n_images);
void vision_plan_free(struct vision_plan *vp);

/* 3-D positions of a packed batch ([3, T]) and each sequence's rope delta. */
int model_positions(const struct model_config *c, const struct model_batch *b, int64_t T, int64_t *pos,
                    int64_t *deltas, struct mmupt_err *err);
/* cos/sin tables [T, head_dim] of the language model from [3, T] positions. */
void model_text_rope(const struct model_config *c, const int64_t *pos, int64_t T, float *cos_t, float *sin_t);

/* Saved activations of one transformer block (vision or text). */
struct block_acts {
    float *x;          /* block input (residual stream) [T, D] */
    float *n1, *mean1, *rstd1;
    float *q, *k, *v;  /* after rotary */
    float *probs;      /* softmax probabilities, or (the device model's fused attention) NULL and: */
    float *lse;        /* each row's log-sum-exp of its scores, [T, n_heads] (attention_flash_*) */
    float *att;        /* attention output before the projection [T, D] */
    float *x_mid;      /* residual after attention [T, D] */
    float *n2, *mean2, *rstd2;
    float *gate, *up, *act; /* MLP: pre-activation(s) and activation output [T, I] */
    /* The device model in bf16 only (else NULL): n1, att, n2 and act rounded to bf16, the operands
     * of the four projections that read them, kept from the forward so that the backward's weight
     * gradients need no second rounding. */
    uint16_t *n1h, *atth, *n2h, *acth;
    /* The device model in bf16 with a bias-free packed gate/up (the decoder's MLP): the gate/up GEMM's
     * output in bf16, [T, 2I] rows of gate then up, in place of the fp32 gate/up (NULL otherwise). */
    uint16_t *gu16;
    /* The device model with cuDNN's attention (MMUPT_ATTENTION=cudnn) and kept copies: q, k and v
     * rounded to bf16 in one buffer ([T, n_heads, hd] then [T, n_kv, hd] twice), cuDNN's operands,
     * kept for the backward's (NULL otherwise). */
    uint16_t *qkv16;
};

struct vision_acts {
    struct vision_plan plan;
    float *pe;         /* patch embed output, original order [P, D] */
    struct block_acts *blocks;
    float *out;        /* tower output before the merger (window order) [P, D] */
    float *ln, *ln_mean, *ln_rstd; /* merger norm [P, D] = [U, 4D] */
    float *h0, *h1;    /* merger hidden before/after GELU [U, 4D] */
    float *merged_w;   /* merger output, window order [U, H] */
    float *merged;     /* original order [U, H] */
};

struct model_acts {
    int64_t T;
    int n_seq;
    int *seg;          /* sequence boundaries [n_seq + 1] */
    int64_t *tokens;
    float *cos, *sin;  /* [T, head_dim] */
    int has_images;
    const float *pixels; /* the caller's, used by the patch-embed backward */
    struct vision_acts vis;
    float *embed;      /* [T, H] after the image splice */
    struct block_acts *layers;
    float *out;        /* last layer output [T, H] */
    float *final, *final_rstd; /* after the final norm */
    int last_only;     /* logits exist only for each sequence's last position */
};

/* One block, shared by the vision tower (non-causal, segments of windows or frames) and the
 * decoder (causal, one segment per sequence, GQA, q/k/v biases). */
struct block_shape {
    int64_t T, D, I;      /* rows, width, MLP width */
    int n_heads, n_kv, hd;
    int causal;
    const int *seg;
    int n_seg;
    enum model_norm norm;
    enum model_mlp mlp;
    float eps;
    const float *cos, *sin;
};
/* Weights of a block as offsets into params/grads: the decoder's separate q/k/v map onto
 * qkv_w/qkv_b as three calls, see block.c. */
struct block_weights {
    int64_t norm1_w, norm1_b, norm2_w, norm2_b;
    int64_t q_w, q_b, k_w, k_b, v_w, v_b; /* vision: slices of the fused qkv */
    int64_t o_w, o_b;
    int64_t gate_w, gate_b, up_w, up_b, down_w, down_b;
};

void block_acts_alloc(struct block_acts *a, const struct block_shape *s);
void block_acts_free(struct block_acts *a);
/* x: input [T, D]; out: output [T, D] (may not alias x). */
void block_forward(struct block_acts *a, const struct block_shape *s, const struct block_weights *w, const float *p,
                   const float *x, float *out);
/* dout: gradient of the output; dx receives (+=) the gradient of the input. */
void block_backward(const struct block_acts *a, const struct block_shape *s, const struct block_weights *w,
                    const float *p, float *g, const float *dout, float *dx);

void vision_forward(struct vision_acts *va, const struct model_config *c, const struct model_spec *sp, const float *p,
                    const float *pixels);
void vision_backward(const struct vision_acts *va, const struct model_config *c, const struct model_spec *sp,
                     const float *p, float *g, const float *pixels, const float *dmerged);
void vision_acts_free(struct vision_acts *va, const struct model_config *c);

/* The decoder's blocks: their shape for a packed batch and their weights (shared by the CPU model
 * and the device model, src/model/dev*.c). */
struct block_shape model_text_shape(const struct model_config *c, int64_t T, const int *seg, int n_seq, const float *cos,
                                    const float *sin);
struct block_weights model_text_weights(const struct model_text_layer *y);
/* The vision tower's block b: shape (segments and rotary tables from the plan) and weights (the
 * fused qkv as three row blocks). */
struct block_shape vision_block_shape(const struct vision_plan *plan, const struct model_config *c, int64_t b);
struct block_weights vision_block_weights(const struct model_vision_block *k, int64_t D);
/* Input checks before anything is sized from a batch / a decode step. */
int model_check_batch(const struct model *m, const struct model_batch *b, int64_t *T, struct mmupt_err *err);
int model_check_step(const struct model *m, const struct model_kv *kv, const int *slots, const int64_t *tokens, int n,
                     struct mmupt_err *err);
/* Row `pos` of a slot's cache in one layer (base: kv->k or kv->v; host or device memory alike). */
float *model_kv_row(const struct model_kv *kv, float *base, int64_t layer, int slot, int pos);
/* The element offset of (layer, slot, pos) in the cache, whatever its element type. */
int64_t model_kv_off(const struct model_kv *kv, int64_t layer, int slot, int pos);
/* A decode step's rows: slot[i] = slots[i], at[i] its new token's cache index, pos [3, n] its M-RoPE
 * position (cache index + the prompt's rope delta on all three axes) - for the CPU and device steps. */
void model_step_rows(const struct model_kv *kv, const int *slots, int n, int *slot, int *at, int64_t *pos);

#endif
