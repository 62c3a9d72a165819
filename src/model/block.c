/* One pre-norm transformer block, forward and backward, shared by the vision tower and the
 * decoder: x += proj(attn(rope(qkv(norm1(x))))), then x += mlp(norm2(x)). The two differ only in
 * data: causal or not, the segments attention runs within, the norm and MLP kinds, GQA, and which
 * biases exist (an offset of -1 means "no such tensor"). */
#include <stdlib.h>
#include <string.h>

#include "mmupt/kernels.h"
#include "model_internal.h"

#define W(p, off) ((off) < 0 ? NULL : (p) + (off))
#define G(g, off) ((off) < 0 ? NULL : (g) + (off))

static float *alloc_f(int64_t n)
{
    return mmupt_xcalloc((size_t)(n > 0 ? n : 1), sizeof(float));
}

void block_acts_alloc(struct block_acts *a, const struct block_shape *s)
{
    int64_t T = s->T, D = s->D, I = s->I, qd = (int64_t)s->n_heads * s->hd, kvd = (int64_t)s->n_kv * s->hd;
    a->x = alloc_f(T * D);
    a->n1 = alloc_f(T * D);
    a->mean1 = alloc_f(T);
    a->rstd1 = alloc_f(T);
    a->q = alloc_f(T * qd);
    a->k = alloc_f(T * kvd);
    a->v = alloc_f(T * kvd);
    a->probs = alloc_f((int64_t)attention_probs_size(s->seg, s->n_seg, s->n_heads));
    a->att = alloc_f(T * qd);
    a->x_mid = alloc_f(T * D);
    a->n2 = alloc_f(T * D);
    a->mean2 = alloc_f(T);
    a->rstd2 = alloc_f(T);
    a->gate = alloc_f(T * I);
    a->up = s->mlp == MLP_SWIGLU ? alloc_f(T * I) : NULL;
    a->act = alloc_f(T * I);
}

void block_acts_free(struct block_acts *a)
{
    float *bufs[] = {a->x, a->n1, a->mean1, a->rstd1, a->q, a->k, a->v, a->probs, a->att, a->x_mid,
                     a->n2, a->mean2, a->rstd2, a->gate, a->up, a->act};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) free(bufs[i]);
    memset(a, 0, sizeof *a);
}

static void norm_forward(const struct block_shape *s, float *out, float *mean, float *rstd, const float *x,
                         const float *w, const float *b)
{
    if (s->norm == NORM_RMS) rmsnorm_forward_cpu(out, rstd, x, w, (int)s->T, (int)s->D, s->eps);
    else layernorm_forward_cpu(out, mean, rstd, x, w, b, (int)s->T, (int)s->D, s->eps);
}

static void norm_backward(const struct block_shape *s, float *dx, float *dw, float *db, const float *dout,
                          const float *x, const float *w, const float *mean, const float *rstd)
{
    if (s->norm == NORM_RMS) rmsnorm_backward_cpu(dx, dw, dout, x, w, rstd, (int)s->T, (int)s->D);
    else layernorm_backward_cpu(dx, dw, db, dout, x, w, mean, rstd, (int)s->T, (int)s->D);
}

void block_forward(struct block_acts *a, const struct block_shape *s, const struct block_weights *w, const float *p,
                   const float *x, float *out)
{
    int T = (int)s->T, D = (int)s->D, I = (int)s->I, qd = s->n_heads * s->hd, kvd = s->n_kv * s->hd;
    memcpy(a->x, x, (size_t)T * D * sizeof *x);
    norm_forward(s, a->n1, a->mean1, a->rstd1, x, W(p, w->norm1_w), W(p, w->norm1_b));
    matmul_forward_cpu(a->q, a->n1, p + w->q_w, W(p, w->q_b), T, D, qd);
    matmul_forward_cpu(a->k, a->n1, p + w->k_w, W(p, w->k_b), T, D, kvd);
    matmul_forward_cpu(a->v, a->n1, p + w->v_w, W(p, w->v_b), T, D, kvd);
    rope_forward_cpu(a->q, s->cos, s->sin, T, s->n_heads, s->hd);
    rope_forward_cpu(a->k, s->cos, s->sin, T, s->n_kv, s->hd);
    attention_forward_cpu(a->att, a->probs, a->q, a->k, a->v, s->seg, s->n_seg, s->n_heads, s->n_kv, s->hd, s->causal);
    matmul_forward_cpu(a->x_mid, a->att, p + w->o_w, W(p, w->o_b), T, qd, D);
    for (int64_t i = 0; i < (int64_t)T * D; i++) a->x_mid[i] += x[i];
    norm_forward(s, a->n2, a->mean2, a->rstd2, a->x_mid, W(p, w->norm2_w), W(p, w->norm2_b));
    matmul_forward_cpu(a->gate, a->n2, p + w->gate_w, W(p, w->gate_b), T, D, I);
    if (s->mlp == MLP_SWIGLU) {
        matmul_forward_cpu(a->up, a->n2, p + w->up_w, W(p, w->up_b), T, D, I);
        swiglu_forward_cpu(a->act, a->gate, a->up, (long)T * I);
    } else {
        quick_gelu_forward_cpu(a->act, a->gate, (long)T * I);
    }
    matmul_forward_cpu(out, a->act, p + w->down_w, W(p, w->down_b), T, I, D);
    for (int64_t i = 0; i < (int64_t)T * D; i++) out[i] += a->x_mid[i];
}

/* The MLP half: from the gradient of the block output to (+=) the gradient of x_mid. */
static void mlp_backward(const struct block_acts *a, const struct block_shape *s, const struct block_weights *w,
                         const float *p, float *g, const float *dout, float *dx_mid)
{
    int T = (int)s->T, D = (int)s->D, I = (int)s->I;
    float *dact = alloc_f((int64_t)T * I), *dgate = alloc_f((int64_t)T * I), *dn2 = alloc_f((int64_t)T * D);
    matmul_backward_cpu(dact, g + w->down_w, G(g, w->down_b), dout, a->act, p + w->down_w, T, I, D);
    if (s->mlp == MLP_SWIGLU) {
        float *dup = alloc_f((int64_t)T * I);
        swiglu_backward_cpu(dgate, dup, dact, a->gate, a->up, (long)T * I);
        matmul_backward_cpu(dn2, g + w->up_w, G(g, w->up_b), dup, a->n2, p + w->up_w, T, D, I);
        free(dup);
    } else {
        quick_gelu_backward_cpu(dgate, dact, a->gate, (long)T * I);
    }
    matmul_backward_cpu(dn2, g + w->gate_w, G(g, w->gate_b), dgate, a->n2, p + w->gate_w, T, D, I);
    norm_backward(s, dx_mid, g + w->norm2_w, G(g, w->norm2_b), dn2, a->x_mid, p + w->norm2_w, a->mean2, a->rstd2);
    free(dact);
    free(dgate);
    free(dn2);
}

void block_backward(const struct block_acts *a, const struct block_shape *s, const struct block_weights *w,
                    const float *p, float *g, const float *dout, float *dx)
{
    int T = (int)s->T, D = (int)s->D, qd = s->n_heads * s->hd, kvd = s->n_kv * s->hd;
    int64_t TD = (int64_t)T * D;
    float *dx_mid = alloc_f(TD);
    memcpy(dx_mid, dout, (size_t)TD * sizeof *dout); /* the residual path */
    mlp_backward(a, s, w, p, g, dout, dx_mid);

    float *datt = alloc_f((int64_t)T * qd), *dq = alloc_f((int64_t)T * qd);
    float *dk = alloc_f((int64_t)T * kvd), *dv = alloc_f((int64_t)T * kvd), *dn1 = alloc_f(TD);
    matmul_backward_cpu(datt, g + w->o_w, G(g, w->o_b), dx_mid, a->att, p + w->o_w, T, qd, D);
    attention_backward_cpu(dq, dk, dv, datt, a->probs, a->q, a->k, a->v, s->seg, s->n_seg, s->n_heads, s->n_kv, s->hd,
                           s->causal);
    rope_backward_cpu(dq, s->cos, s->sin, T, s->n_heads, s->hd);
    rope_backward_cpu(dk, s->cos, s->sin, T, s->n_kv, s->hd);
    matmul_backward_cpu(dn1, g + w->q_w, G(g, w->q_b), dq, a->n1, p + w->q_w, T, D, qd);
    matmul_backward_cpu(dn1, g + w->k_w, G(g, w->k_b), dk, a->n1, p + w->k_w, T, D, kvd);
    matmul_backward_cpu(dn1, g + w->v_w, G(g, w->v_b), dv, a->n1, p + w->v_w, T, D, kvd);
    for (int64_t i = 0; i < TD; i++) dx[i] += dx_mid[i];
    norm_backward(s, dx, g + w->norm1_w, G(g, w->norm1_b), dn1, a->x, p + w->norm1_w, a->mean1, a->rstd1);
    free(dx_mid);
    free(datt);
    free(dq);
    free(dk);
    free(dv);
    free(dn1);
}
