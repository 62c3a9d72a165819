/* The vision tower: patch embedding, the window permutation, the blocks (window attention, with
 * full attention per frame in the fullatt blocks; every block for Qwen2-VL), and the 2x2 patch
 * merger, whose output rows return to the original image order. */
#include <stdlib.h>
#include <string.h>

#include "mmupt/kernels.h"
#include "model_internal.h"

static int is_fullatt(const struct model_vision_config *v, int64_t b)
{
    if (v->window_size == 0) return 1;
    for (int i = 0; i < v->n_fullatt; i++)
        if (v->fullatt[i] == b) return 1;
    return 0;
}

struct block_shape vision_block_shape(const struct vision_plan *plan, const struct model_config *c, int64_t b)
{
    const struct model_vision_config *v = &c->vision;
    int full = is_fullatt(v, b);
    struct block_shape s = {
        .T = plan->n_patches, .D = v->hidden, .I = v->intermediate,
        .n_heads = (int)v->n_heads, .n_kv = (int)v->n_heads, .hd = (int)v->head_dim, .causal = 0,
        .seg = full ? plan->full_seg : plan->win_seg, .n_seg = full ? plan->n_full_seg : plan->n_win_seg,
        .norm = v->norm, .mlp = v->mlp, .eps = (float)v->eps, .cos = plan->cos, .sin = plan->sin,
    };
    return s;
}

static struct block_shape vision_shape(const struct vision_acts *va, const struct model_config *c, int64_t b)
{
    return vision_block_shape(&va->plan, c, b);
}

struct block_weights vision_block_weights(const struct model_vision_block *k, int64_t D)
{
    struct block_weights w = {
        .norm1_w = k->norm1_w, .norm1_b = k->norm1_b, .norm2_w = k->norm2_w, .norm2_b = k->norm2_b,
        /* the fused qkv projection is three row blocks of one matrix: [q | k | v] */
        .q_w = k->qkv_w, .q_b = k->qkv_b, .k_w = k->qkv_w + D * D, .k_b = k->qkv_b + D,
        .v_w = k->qkv_w + 2 * D * D, .v_b = k->qkv_b + 2 * D,
        .o_w = k->proj_w, .o_b = k->proj_b,
        .gate_w = k->gate_w, .gate_b = k->gate_b, .up_w = k->up_w, .up_b = k->up_b,
        .down_w = k->down_w, .down_b = k->down_b,
    };
    return w;
}

/* Move whole merge units (up rows each) between original and window order. */
static void permute_units(float *dst, const float *src, const int64_t *index, int64_t U, int64_t rows_per_unit,
                          int64_t cols, int to_window)
{
    size_t bytes = (size_t)(rows_per_unit * cols) * sizeof(float);
    for (int64_t u = 0; u < U; u++) {
        int64_t a = u * rows_per_unit * cols, b = index[u] * rows_per_unit * cols;
        if (to_window) memcpy(dst + a, src + b, bytes);
        else memcpy(dst + b, src + a, bytes);
    }
}

static void merger_norm_forward(struct vision_acts *va, const struct model_config *c, const struct model_layout *L,
                                const float *p)
{
    int P = (int)va->plan.n_patches, D = (int)c->vision.hidden;
    if (c->vision.norm == NORM_RMS) rmsnorm_forward_cpu(va->ln, va->ln_rstd, va->out, p + L->merger_ln_w, P, D, 1e-6f);
    else layernorm_forward_cpu(va->ln, va->ln_mean, va->ln_rstd, va->out, p + L->merger_ln_w, p + L->merger_ln_b, P, D, 1e-6f);
}

void vision_forward(struct vision_acts *va, const struct model_config *c, const struct model_spec *sp, const float *p,
                    const float *pixels)
{
    const struct model_vision_config *v = &c->vision;
    const struct model_layout *L = &sp->L;
    int64_t P = va->plan.n_patches, U = va->plan.n_units, D = v->hidden, M = D * v->merge * v->merge;
    int64_t H = v->out_hidden, up = v->merge * v->merge;
    va->pe = mmupt_xcalloc((size_t)(P * D), sizeof(float));
    matmul_forward_cpu(va->pe, pixels, p + L->patch_embed, NULL, (int)P, (int)model_patch_dim(c), (int)D);
    float *x = mmupt_xmalloc((size_t)(P * D) * sizeof(float)), *y = mmupt_xmalloc((size_t)(P * D) * sizeof(float));
    permute_units(x, va->pe, va->plan.window_index, U, up, D, 1);
    va->blocks = mmupt_xcalloc((size_t)v->depth, sizeof *va->blocks);
    for (int64_t b = 0; b < v->depth; b++) {
        struct block_shape s = vision_shape(va, c, b);
        struct block_weights w = vision_block_weights(&L->blocks[b], D);
        block_acts_alloc(&va->blocks[b], &s);
        block_forward(&va->blocks[b], &s, &w, p, x, y);
        float *t = x;
        x = y;
        y = t;
    }
    free(y);
    va->out = x;
    va->ln = mmupt_xmalloc((size_t)(P * D) * sizeof(float));
    va->ln_mean = mmupt_xmalloc((size_t)P * sizeof(float));
    va->ln_rstd = mmupt_xmalloc((size_t)P * sizeof(float));
    merger_norm_forward(va, c, L, p);
    va->h0 = mmupt_xmalloc((size_t)(U * M) * sizeof(float));
    va->h1 = mmupt_xmalloc((size_t)(U * M) * sizeof(float));
    va->merged_w = mmupt_xmalloc((size_t)(U * H) * sizeof(float));
    va->merged = mmupt_xmalloc((size_t)(U * H) * sizeof(float));
    /* The norm output [P, D] is read as [U, merge^2 * D]: four consecutive patches per row. */
    matmul_forward_cpu(va->h0, va->ln, p + L->merger_w0, p + L->merger_b0, (int)U, (int)M, (int)M);
    gelu_forward_cpu(va->h1, va->h0, (long)(U * M));
    matmul_forward_cpu(va->merged_w, va->h1, p + L->merger_w2, p + L->merger_b2, (int)U, (int)M, (int)H);
    permute_units(va->merged, va->merged_w, va->plan.window_index, U, 1, H, 0);
}

void vision_backward(const struct vision_acts *va, const struct model_config *c, const struct model_spec *sp,
                     const float *p, float *g, const float *pixels, const float *dmerged)
{
    const struct model_vision_config *v = &c->vision;
    const struct model_layout *L = &sp->L;
    int64_t P = va->plan.n_patches, U = va->plan.n_units, D = v->hidden, M = D * v->merge * v->merge;
    int64_t H = v->out_hidden, up = v->merge * v->merge;
    float *dmw = mmupt_xmalloc((size_t)(U * H) * sizeof(float));
    permute_units(dmw, dmerged, va->plan.window_index, U, 1, H, 1);
    float *dh1 = mmupt_xcalloc((size_t)(U * M), sizeof(float)), *dh0 = mmupt_xcalloc((size_t)(U * M), sizeof(float));
    float *dln = mmupt_xcalloc((size_t)(P * D), sizeof(float));
    matmul_backward_cpu(dh1, g + L->merger_w2, g + L->merger_b2, dmw, va->h1, p + L->merger_w2, (int)U, (int)M, (int)H);
    gelu_backward_cpu(dh0, dh1, va->h0, (long)(U * M));
    matmul_backward_cpu(dln, g + L->merger_w0, g + L->merger_b0, dh0, va->ln, p + L->merger_w0, (int)U, (int)M, (int)M);
    float *dx = mmupt_xcalloc((size_t)(P * D), sizeof(float));
    if (v->norm == NORM_RMS)
        rmsnorm_backward_cpu(dx, g + L->merger_ln_w, dln, va->out, p + L->merger_ln_w, va->ln_rstd, (int)P, (int)D);
    else
        layernorm_backward_cpu(dx, g + L->merger_ln_w, g + L->merger_ln_b, dln, va->out, p + L->merger_ln_w, va->ln_mean,
                               va->ln_rstd, (int)P, (int)D);
    float *dprev = mmupt_xmalloc((size_t)(P * D) * sizeof(float));
    for (int64_t b = v->depth - 1; b >= 0; b--) {
        struct block_shape s = vision_shape(va, c, b);
        struct block_weights w = vision_block_weights(&L->blocks[b], D);
        memset(dprev, 0, (size_t)(P * D) * sizeof(float));
        block_backward(&va->blocks[b], &s, &w, p, g, dx, dprev);
        float *t = dx;
        dx = dprev;
        dprev = t;
    }
    /* dx is now the gradient of the permuted patch embedding; undo the permutation. */
    permute_units(dprev, dx, va->plan.window_index, U, up, D, 0);
    matmul_backward_cpu(NULL, g + L->patch_embed, NULL, dprev, pixels, p + L->patch_embed, (int)P,
                        (int)model_patch_dim(c), (int)D);
    free(dmw);
    free(dh1);
    free(dh0);
    free(dln);
    free(dx);
    free(dprev);
}

void vision_acts_free(struct vision_acts *va, const struct model_config *c)
{
    if (va->blocks)
        for (int64_t b = 0; b < c->vision.depth; b++) block_acts_free(&va->blocks[b]);
    free(va->blocks);
    float *bufs[] = {va->pe, va->out, va->ln, va->ln_mean, va->ln_rstd, va->h0, va->h1, va->merged_w, va->merged};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) free(bufs[i]);
    vision_plan_free(&va->plan);
    memset(va, 0, sizeof *va);
}
