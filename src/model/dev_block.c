/* One pre-norm transformer block on the device: src/model/block.c line for line, with each CPU op
 * replaced by its CUDA twin and every buffer in device memory. Temporaries of the backward pass are
 * allocated and freed on the stream (stream-ordered allocation makes that cheap). */
#include <stdlib.h>
#include <string.h>

#include "dev_internal.h"
#include "mmupt/kernels.h"

#define W(p, off) ((off) < 0 ? NULL : (p) + (off))
#define G(g, off) ((off) < 0 ? NULL : (g) + (off))

void dev_block_acts_alloc(const struct gpu_ctx *g, struct block_acts *a, const struct block_shape *s)
{
    int64_t T = s->T, D = s->D, I = s->I, qd = (int64_t)s->n_heads * s->hd, kvd = (int64_t)s->n_kv * s->hd;
    a->x = gpu_alloc_floats(g, T * D);
    a->n1 = gpu_alloc_floats(g, T * D);
    a->mean1 = s->norm == NORM_LAYER ? gpu_alloc_floats(g, T) : NULL;
    a->rstd1 = gpu_alloc_floats(g, T);
    a->q = gpu_alloc_floats(g, T * qd);
    a->k = gpu_alloc_floats(g, T * kvd);
    a->v = gpu_alloc_floats(g, T * kvd);
    a->probs = gpu_alloc_floats(g, (int64_t)attention_probs_size(s->seg, s->n_seg, s->n_heads));
    a->att = gpu_alloc_floats(g, T * qd);
    a->x_mid = gpu_alloc_floats(g, T * D);
    a->n2 = gpu_alloc_floats(g, T * D);
    a->mean2 = s->norm == NORM_LAYER ? gpu_alloc_floats(g, T) : NULL;
    a->rstd2 = gpu_alloc_floats(g, T);
    a->gate = gpu_alloc_floats(g, T * I);
    a->up = s->mlp == MLP_SWIGLU ? gpu_alloc_floats(g, T * I) : NULL;
    a->act = gpu_alloc_floats(g, T * I);
}

void dev_block_acts_free(const struct gpu_ctx *g, struct block_acts *a)
{
    float *bufs[] = {a->x, a->n1, a->mean1, a->rstd1, a->q, a->k, a->v, a->probs, a->att, a->x_mid,
                     a->n2, a->mean2, a->rstd2, a->gate, a->up, a->act};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) gpu_free(g, bufs[i]);
    memset(a, 0, sizeof *a);
}

void dev_block_acts_keep_input(const struct gpu_ctx *g, struct block_acts *a)
{
    float *x = a->x;
    a->x = NULL;
    dev_block_acts_free(g, a);
    a->x = x;
}

static void norm_forward(const struct gpu_ctx *g, const struct block_shape *s, float *out, float *mean, float *rstd,
                         const float *x, const float *w, const float *b)
{
    if (s->norm == NORM_RMS) rmsnorm_forward_cuda(out, rstd, x, w, (int)s->T, (int)s->D, s->eps, g->stream);
    else layernorm_forward_cuda(out, mean, rstd, x, w, b, (int)s->T, (int)s->D, s->eps, g->stream);
}

static void norm_backward(const struct gpu_ctx *g, const struct block_shape *s, float *dx, float *dw, float *db,
                          const float *dout, const float *x, const float *w, const float *mean, const float *rstd)
{
    if (s->norm == NORM_RMS) rmsnorm_backward_cuda(dx, dw, dout, x, w, rstd, (int)s->T, (int)s->D, g->stream);
    else layernorm_backward_cuda(dx, dw, db, dout, x, w, mean, rstd, (int)s->T, (int)s->D, g->stream);
}

void dev_block_forward(const struct gpu_ctx *g, struct block_acts *a, const struct block_shape *s,
                       const struct block_weights *w, const float *p, const float *x, float *out)
{
    int T = (int)s->T, D = (int)s->D, I = (int)s->I, qd = s->n_heads * s->hd, kvd = s->n_kv * s->hd;
    gpu_copy(g, a->x, x, (size_t)T * D * sizeof *x);
    norm_forward(g, s, a->n1, a->mean1, a->rstd1, x, W(p, w->norm1_w), W(p, w->norm1_b));
    matmul_forward_cuda(a->q, a->n1, p + w->q_w, W(p, w->q_b), T, D, qd, g->blas);
    matmul_forward_cuda(a->k, a->n1, p + w->k_w, W(p, w->k_b), T, D, kvd, g->blas);
    matmul_forward_cuda(a->v, a->n1, p + w->v_w, W(p, w->v_b), T, D, kvd, g->blas);
    rope_forward_cuda(a->q, s->cos, s->sin, T, s->n_heads, s->hd, g->stream);
    rope_forward_cuda(a->k, s->cos, s->sin, T, s->n_kv, s->hd, g->stream);
    attention_forward_cuda(a->att, a->probs, a->q, a->k, a->v, s->seg, s->n_seg, s->n_heads, s->n_kv, s->hd, s->causal,
                           g->stream);
    matmul_forward_cuda(a->x_mid, a->att, p + w->o_w, W(p, w->o_b), T, qd, D, g->blas);
    residual_forward_cuda(a->x_mid, a->x_mid, x, (long)T * D, g->stream);
    norm_forward(g, s, a->n2, a->mean2, a->rstd2, a->x_mid, W(p, w->norm2_w), W(p, w->norm2_b));
    matmul_forward_cuda(a->gate, a->n2, p + w->gate_w, W(p, w->gate_b), T, D, I, g->blas);
    if (s->mlp == MLP_SWIGLU) {
        matmul_forward_cuda(a->up, a->n2, p + w->up_w, W(p, w->up_b), T, D, I, g->blas);
        swiglu_forward_cuda(a->act, a->gate, a->up, (long)T * I, g->stream);
    } else {
        quick_gelu_forward_cuda(a->act, a->gate, (long)T * I, g->stream);
    }
    matmul_forward_cuda(out, a->act, p + w->down_w, W(p, w->down_b), T, I, D, g->blas);
    residual_forward_cuda(out, out, a->x_mid, (long)T * D, g->stream);
}

/* The MLP half: from the gradient of the block output to (+=) the gradient of x_mid. */
static void mlp_backward(const struct gpu_ctx *g, const struct block_acts *a, const struct block_shape *s,
                         const struct block_weights *w, const float *p, float *gr, const float *dout, float *dx_mid)
{
    int T = (int)s->T, D = (int)s->D, I = (int)s->I;
    float *dact = gpu_zeros_floats(g, (int64_t)T * I), *dgate = gpu_zeros_floats(g, (int64_t)T * I), *dn2 = gpu_zeros_floats(g, (int64_t)T * D);
    matmul_backward_cuda(dact, gr + w->down_w, G(gr, w->down_b), dout, a->act, p + w->down_w, T, I, D, g->blas);
    if (s->mlp == MLP_SWIGLU) {
        float *dup = gpu_zeros_floats(g, (int64_t)T * I);
        swiglu_backward_cuda(dgate, dup, dact, a->gate, a->up, (long)T * I, g->stream);
        matmul_backward_cuda(dn2, gr + w->up_w, G(gr, w->up_b), dup, a->n2, p + w->up_w, T, D, I, g->blas);
        gpu_free(g, dup);
    } else {
        quick_gelu_backward_cuda(dgate, dact, a->gate, (long)T * I, g->stream);
    }
    matmul_backward_cuda(dn2, gr + w->gate_w, G(gr, w->gate_b), dgate, a->n2, p + w->gate_w, T, D, I, g->blas);
    norm_backward(g, s, dx_mid, gr + w->norm2_w, G(gr, w->norm2_b), dn2, a->x_mid, p + w->norm2_w, a->mean2, a->rstd2);
    gpu_free(g, dact);
    gpu_free(g, dgate);
    gpu_free(g, dn2);
}

void dev_block_backward(const struct gpu_ctx *g, const struct block_acts *a, const struct block_shape *s,
                        const struct block_weights *w, const float *p, float *gr, const float *dout, float *dx)
{
    int T = (int)s->T, D = (int)s->D, qd = s->n_heads * s->hd, kvd = s->n_kv * s->hd;
    int64_t TD = (int64_t)T * D;
    float *dx_mid = gpu_alloc_floats(g, TD);
    gpu_copy(g, dx_mid, dout, (size_t)TD * sizeof *dout); /* the residual path */
    mlp_backward(g, a, s, w, p, gr, dout, dx_mid);

    float *datt = gpu_zeros_floats(g, (int64_t)T * qd), *dq = gpu_zeros_floats(g, (int64_t)T * qd);
    float *dk = gpu_zeros_floats(g, (int64_t)T * kvd), *dv = gpu_zeros_floats(g, (int64_t)T * kvd), *dn1 = gpu_zeros_floats(g, TD);
    matmul_backward_cuda(datt, gr + w->o_w, G(gr, w->o_b), dx_mid, a->att, p + w->o_w, T, qd, D, g->blas);
    attention_backward_cuda(dq, dk, dv, datt, a->probs, a->q, a->k, a->v, s->seg, s->n_seg, s->n_heads, s->n_kv, s->hd,
                            s->causal, g->stream);
    rope_backward_cuda(dq, s->cos, s->sin, T, s->n_heads, s->hd, g->stream);
    rope_backward_cuda(dk, s->cos, s->sin, T, s->n_kv, s->hd, g->stream);
    matmul_backward_cuda(dn1, gr + w->q_w, G(gr, w->q_b), dq, a->n1, p + w->q_w, T, D, qd, g->blas);
    matmul_backward_cuda(dn1, gr + w->k_w, G(gr, w->k_b), dk, a->n1, p + w->k_w, T, D, kvd, g->blas);
    matmul_backward_cuda(dn1, gr + w->v_w, G(gr, w->v_b), dv, a->n1, p + w->v_w, T, D, kvd, g->blas);
    residual_forward_cuda(dx, dx, dx_mid, (long)TD, g->stream);
    norm_backward(g, s, dx, gr + w->norm1_w, G(gr, w->norm1_b), dn1, a->x, p + w->norm1_w, a->mean1, a->rstd1);
    float *tmp[] = {dx_mid, datt, dq, dk, dv, dn1};
    for (size_t i = 0; i < sizeof tmp / sizeof tmp[0]; i++) gpu_free(g, tmp[i]);
}
