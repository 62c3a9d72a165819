/* The vision tower on the device: src/model/vision.c with the CUDA twins. The plan (window order,
 * segments) is built on the host as for the CPU model; its rotary tables and the pixels are
 * uploaded once per forward; the window permutation is a gather (and its inverse a scatter) of
 * whole merge units. */
#include <stdlib.h>
#include <string.h>

#include "dev_internal.h"
#include "mmupt/kernels.h"

/* Move whole merge units (rows_per_unit rows of cols) between original and window order: window
 * slot u holds original unit index[u]. */
static void permute_units(const struct gpu_ctx *g, float *dst, const float *src, const int64_t *index, int64_t U,
                          int64_t rows_per_unit, int64_t cols, int to_window)
{
    if (to_window) gather_rows_cuda(dst, src, index, (int)U, (long)(rows_per_unit * cols), g->stream);
    else scatter_rows_cuda(dst, src, index, (int)U, (long)(rows_per_unit * cols), g->stream);
}

static struct block_shape dev_vision_shape(const struct dev_vision *dv, const struct model_config *c, int64_t b)
{
    struct block_shape s = vision_block_shape(&dv->va.plan, c, b);
    s.cos = dv->cos; /* the device copies of the plan's tables */
    s.sin = dv->sin;
    return s;
}

int dev_vision_forward(struct model_dev *d, struct dev_vision *dv, const struct model_batch *b,
                       struct mmupt_err *err)
{
    const struct gpu_ctx *g = d->g;
    const struct model_config *c = &d->m->cfg;
    const float *p = d->params;
    struct vision_acts *va = &dv->va;
    if (vision_plan_build(&va->plan, c, b->grid_thw, b->n_images, err)) return -1;
    const struct model_vision_config *v = &c->vision;
    const struct model_layout *L = &d->m->spec.L;
    int64_t P = va->plan.n_patches, U = va->plan.n_units, D = v->hidden, M = D * v->merge * v->merge;
    int64_t H = v->out_hidden, up = v->merge * v->merge, hd = v->head_dim, pd = model_patch_dim(c);
    dv->cos = gpu_alloc_floats(g, P * hd);
    dv->sin = gpu_alloc_floats(g, P * hd);
    gpu_upload(g, dv->cos, va->plan.cos, (size_t)(P * hd) * sizeof(float));
    gpu_upload(g, dv->sin, va->plan.sin, (size_t)(P * hd) * sizeof(float));
    dv->pixels = gpu_alloc_floats(g, P * pd);
    gpu_upload(g, dv->pixels, b->pixels, (size_t)(P * pd) * sizeof(float));

    va->pe = gpu_alloc_floats(g, P * D);
    dev_linear_forward(d, va->pe, dv->pixels, L->patch_embed, -1, (int)P, (int)pd, (int)D);
    float *x = gpu_alloc_floats(g, P * D), *y = gpu_alloc_floats(g, P * D);
    permute_units(g, x, va->pe, va->plan.window_index, U, up, D, 1);
    va->blocks = mmupt_xcalloc((size_t)v->depth, sizeof *va->blocks);
    for (int64_t k = 0; k < v->depth; k++) {
        struct block_shape s = dev_vision_shape(dv, c, k);
        struct block_weights w = vision_block_weights(&L->blocks[k], D);
        dev_block_acts_alloc(g, &va->blocks[k], &s, d->params_bf16 != NULL, d->params_bf16 != NULL);
        dev_block_forward(d, &va->blocks[k], &s, &w, x, y);
        float *t = x;
        x = y;
        y = t;
    }
    gpu_free(g, y);
    va->out = x;
    va->ln = gpu_alloc_floats(g, P * D);
    va->ln_mean = gpu_alloc_floats(g, P);
    va->ln_rstd = gpu_alloc_floats(g, P);
    if (v->norm == NORM_RMS)
        rmsnorm_forward_cuda(va->ln, va->ln_rstd, va->out, p + L->merger_ln_w, (int)P, (int)D, 1e-6f, g->stream);
    else
        layernorm_forward_cuda(va->ln, va->ln_mean, va->ln_rstd, va->out, p + L->merger_ln_w, p + L->merger_ln_b, (int)P,
                               (int)D, 1e-6f, g->stream);
    va->h0 = gpu_alloc_floats(g, U * M);
    va->h1 = gpu_alloc_floats(g, U * M);
    va->merged_w = gpu_alloc_floats(g, U * H);
    va->merged = gpu_alloc_floats(g, U * H);
    /* The norm output [P, D] is read as [U, merge^2 * D]: four consecutive patches per row. */
    dev_linear_forward(d, va->h0, va->ln, L->merger_w0, L->merger_b0, (int)U, (int)M, (int)M);
    gelu_forward_cuda(va->h1, va->h0, (long)(U * M), g->stream);
    dev_linear_forward(d, va->merged_w, va->h1, L->merger_w2, L->merger_b2, (int)U, (int)M, (int)H);
    permute_units(g, va->merged, va->merged_w, va->plan.window_index, U, 1, H, 0);
    return 0;
}

void dev_vision_backward(struct model_dev *d, const struct dev_vision *dv, const float *dmerged)
{
    const struct gpu_ctx *g = d->g;
    const struct model_config *c = &d->m->cfg;
    const float *p = d->params;
    float *gr = d->grads;
    const struct vision_acts *va = &dv->va;
    const struct model_vision_config *v = &c->vision;
    const struct model_layout *L = &d->m->spec.L;
    int64_t P = va->plan.n_patches, U = va->plan.n_units, D = v->hidden, M = D * v->merge * v->merge;
    int64_t H = v->out_hidden, up = v->merge * v->merge;
    float *dmw = gpu_alloc_floats(g, U * H);
    permute_units(g, dmw, dmerged, va->plan.window_index, U, 1, H, 1);
    float *dh1 = gpu_zeros_floats(g, U * M), *dh0 = gpu_zeros_floats(g, U * M), *dln = gpu_zeros_floats(g, P * D);
    dev_linear_backward(d, dh1, dmw, va->h1, NULL, L->merger_w2, L->merger_b2, (int)U, (int)M, (int)H);
    gelu_backward_cuda(dh0, dh1, va->h0, (long)(U * M), g->stream);
    dev_linear_backward(d, dln, dh0, va->ln, NULL, L->merger_w0, L->merger_b0, (int)U, (int)M, (int)M);
    float *dx = gpu_zeros_floats(g, P * D);
    (void)dev_grad_begin(d, L->merger_ln_w, D, 0); /* the norm's gradients add onto zeros */
    (void)dev_grad_begin(d, L->merger_ln_b, D, 0);
    if (v->norm == NORM_RMS)
        rmsnorm_backward_cuda(dx, gr + L->merger_ln_w, dln, va->out, p + L->merger_ln_w, va->ln_rstd, (int)P, (int)D,
                              g->stream);
    else
        layernorm_backward_cuda(dx, gr + L->merger_ln_w, gr + L->merger_ln_b, dln, va->out, p + L->merger_ln_w,
                                va->ln_mean, va->ln_rstd, (int)P, (int)D, g->stream);
    float *dprev = gpu_alloc_floats(g, P * D);
    for (int64_t k = v->depth - 1; k >= 0; k--) {
        struct block_shape s = dev_vision_shape(dv, c, k);
        struct block_weights w = vision_block_weights(&L->blocks[k], D);
        dev_block_backward(d, &va->blocks[k], &s, &w, dx, NULL, dprev, NULL); /* assigns dprev */
        float *t = dx;
        dx = dprev;
        dprev = t;
    }
    /* dx is now the gradient of the permuted patch embedding; undo the permutation. */
    permute_units(g, dprev, dx, va->plan.window_index, U, up, D, 0);
    dev_linear_backward(d, NULL, dprev, dv->pixels, NULL, L->patch_embed, -1, (int)P, (int)model_patch_dim(c), (int)D);
    float *tmp[] = {dmw, dh1, dh0, dln, dx, dprev};
    for (size_t i = 0; i < sizeof tmp / sizeof tmp[0]; i++) gpu_free(g, tmp[i]);
}

void dev_vision_free(const struct gpu_ctx *g, struct dev_vision *dv, const struct model_config *c)
{
    struct vision_acts *va = &dv->va;
    if (va->blocks)
        for (int64_t k = 0; k < c->vision.depth; k++) dev_block_acts_free(g, &va->blocks[k]);
    free(va->blocks);
    float *bufs[] = {va->pe, va->out, va->ln, va->ln_mean, va->ln_rstd, va->h0, va->h1, va->merged_w, va->merged,
                     dv->cos, dv->sin, dv->pixels};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) gpu_free(g, bufs[i]);
    vision_plan_free(&va->plan);
    memset(dv, 0, sizeof *dv);
}
