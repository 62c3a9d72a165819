/* One pre-norm transformer block on the device: src/model/block.c line for line, with each CPU op
 * replaced by its CUDA twin and every buffer in device memory. Temporaries of the backward pass are
 * allocated and freed on the stream (stream-ordered allocation makes that cheap). */
#include <stdlib.h>
#include <string.h>

#include "dev_internal.h"
#include "mmupt/kernels.h"

#define W(p, off) ((off) < 0 ? NULL : (p) + (off))

/* The fp32 gate (and up) buffer, unless there is one: [T, I], or [T, 2I] for SwiGLU (up a view). */
static void mlp_gate_alloc(const struct gpu_ctx *g, struct block_acts *a, const struct block_shape *s)
{
    if (a->gate) return;
    int64_t TI = s->T * s->I;
    a->gate = gpu_alloc_floats(g, (s->mlp == MLP_SWIGLU ? 2 : 1) * TI);
    a->up = s->mlp == MLP_SWIGLU ? a->gate + TI : NULL;
}

void dev_block_acts_alloc(const struct gpu_ctx *g, struct block_acts *a, const struct block_shape *s, int bf16,
                          int keep)
{
    int64_t T = s->T, D = s->D, I = s->I, qd = (int64_t)s->n_heads * s->hd, kvd = (int64_t)s->n_kv * s->hd;
    /* bf16: RMSNorm and SwiGLU write their roundings alone (the GEMMs read nothing else), so the fp32
     * n1, n2 and act - 2 T D + T I floats a block - are never made */
    int norm_fp32 = !bf16 || s->norm != NORM_RMS, act_fp32 = !bf16 || s->mlp != MLP_SWIGLU;
    a->x = gpu_alloc_floats(g, T * D);
    a->n1 = norm_fp32 ? gpu_alloc_floats(g, T * D) : NULL;
    a->mean1 = s->norm == NORM_LAYER ? gpu_alloc_floats(g, T) : NULL;
    a->rstd1 = gpu_alloc_floats(g, T);
    a->q = gpu_alloc_floats(g, T * qd);
    a->k = gpu_alloc_floats(g, T * kvd);
    a->v = gpu_alloc_floats(g, T * kvd);
    a->probs = a->lse = NULL; /* the forward allocates the one its attention keeps (block_attention) */
    a->att = NULL;            /* and att where its attention writes fp32 (cuDNN's writes only a rounding) */
    a->x_mid = gpu_alloc_floats(g, T * D);
    a->n2 = norm_fp32 ? gpu_alloc_floats(g, T * D) : NULL;
    a->mean2 = s->norm == NORM_LAYER ? gpu_alloc_floats(g, T) : NULL;
    a->rstd2 = gpu_alloc_floats(g, T);
    /* SwiGLU: gate and up in one buffer, [T, I] each, or [T, 2I] rows of both when one GEMM writes
     * them (gu_packed); up is a view, not an allocation of its own. A bf16 SwiGLU block's forward
     * allocates it (fp32, or gu16 in bf16: which one depends on the weights, gu_bf16) */
    a->gate = a->up = NULL;
    a->gu16 = a->qkv16 = NULL;
    if (act_fp32) mlp_gate_alloc(g, a, s);
    a->act = act_fp32 ? gpu_alloc_floats(g, T * I) : NULL;
    a->n1h = a->atth = a->n2h = a->acth = NULL;
    if (keep) {
        a->n1h = gpu_alloc(g, (size_t)(T * D) * sizeof *a->n1h);
        a->atth = gpu_alloc(g, (size_t)(T * qd) * sizeof *a->atth);
        a->n2h = gpu_alloc(g, (size_t)(T * D) * sizeof *a->n2h);
        a->acth = gpu_alloc(g, (size_t)(T * I) * sizeof *a->acth);
    }
}

void dev_block_acts_free(const struct gpu_ctx *g, struct block_acts *a)
{
    float *bufs[] = {a->x, a->n1, a->mean1, a->rstd1, a->q, a->k, a->v, a->probs, a->lse, a->att, a->x_mid,
                     a->n2, a->mean2, a->rstd2, a->gate, a->act};
    uint16_t *ops[] = {a->n1h, a->atth, a->n2h, a->acth, a->gu16, a->qkv16};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) gpu_free(g, bufs[i]);
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) gpu_free(g, ops[i]);
    memset(a, 0, sizeof *a);
}

void dev_block_acts_keep_input(const struct gpu_ctx *g, struct block_acts *a)
{
    float *x = a->x;
    a->x = NULL;
    dev_block_acts_free(g, a);
    a->x = x;
}

void dev_block_acts_keep_kv(const struct gpu_ctx *g, struct block_acts *a)
{
    float *k = a->k, *v = a->v;
    a->k = a->v = NULL;
    dev_block_acts_free(g, a);
    a->k = k, a->v = v;
}

static void norm_forward(const struct gpu_ctx *g, const struct block_shape *s, float *out, float *mean, float *rstd,
                         const float *x, const float *w, const float *b)
{
    if (s->norm == NORM_RMS) rmsnorm_forward_cuda(out, rstd, x, w, (int)s->T, (int)s->D, s->eps, g->stream);
    else layernorm_forward_cuda(out, mean, rstd, x, w, b, (int)s->T, (int)s->D, s->eps, g->stream);
}

int dev_block_writes_dx16(const struct model_dev *d, const struct block_shape *s)
{
    return d->params_bf16 && s->norm == NORM_RMS;
}

/* The norm's input gradient into dx: added (res NULL), or assigned as res + it (res: the residual
 * stream's gradient, which the block's input also gets - RMSNorm does both in one pass, the same bits
 * as copying res into dx and adding). Its weight (and bias) gradients at w_off and b_off (< 0: none)
 * add onto zeros. dx16 (RMSNorm only, may be NULL): dx's bf16 rounding, written by the same pass. */
static void norm_backward(struct model_dev *d, const struct block_shape *s, float *dx, uint16_t *dx16,
                          const float *res, int64_t w_off, int64_t b_off, const float *dout, const float *x,
                          const float *mean, const float *rstd)
{
    const struct gpu_ctx *g = d->g;
    const float *w = d->params + w_off;
    float *dw = d->grads + w_off, *db = b_off < 0 ? NULL : d->grads + b_off;
    (void)dev_grad_begin(d, w_off, s->D, 0);
    (void)dev_grad_begin(d, b_off, s->D, 0);
    MMUPT_CHECK(!dx16 || s->norm == NORM_RMS);
    if (dx16) {
        rmsnorm_backward_cast_cuda(dx, dx16, dw, dout, x, w, rstd, res, (int)s->T, (int)s->D, g->stream);
        return;
    }
    if (res && s->norm == NORM_RMS) {
        rmsnorm_backward_res_cuda(dx, dw, dout, x, w, rstd, res, (int)s->T, (int)s->D, g->stream);
        return;
    }
    if (res) gpu_copy(g, dx, res, (size_t)(s->T * s->D) * sizeof *dx);
    if (s->norm == NORM_RMS) rmsnorm_backward_cuda(dx, dw, dout, x, w, rstd, (int)s->T, (int)s->D, g->stream);
    else layernorm_backward_cuda(dx, dw, db, dout, x, w, mean, rstd, (int)s->T, (int)s->D, g->stream);
}

/* bf16 with q, k, v's weights (and biases, if any) back to back - the decoder's layers (spec.c) and
 * the vision blocks' fused qkv: the three projections are then one GEMM, forward and backward (one
 * operand cast, one wider GEMM instead of two skinny ones for k and v). fp32 keeps three, as the
 * CPU reference does, so the emulator's fp32 model stays bitwise equal to it. */
static int qkv_packed(const struct model_dev *d, const struct block_shape *s, const struct block_weights *w)
{
    int64_t qd = (int64_t)s->n_heads * s->hd, kvd = (int64_t)s->n_kv * s->hd;
    int weights = w->k_w == w->q_w + qd * s->D && w->v_w == w->k_w + kvd * s->D;
    int biases = (w->q_b < 0 && w->k_b < 0 && w->v_b < 0) ||
                 (w->q_b >= 0 && w->k_b == w->q_b + qd && w->v_b == w->k_b + kvd);
    return d->params_bf16 && weights && biases;
}

/* The same for SwiGLU's gate and up (the decoder's MLPs have no biases; Qwen2.5-VL's vision blocks
 * have both, back to back too): one GEMM writes [T, 2I] rows of gate and up into a->gate's buffer. */
static int gu_packed(const struct model_dev *d, const struct block_shape *s, const struct block_weights *w)
{
    int64_t I = s->I;
    int weights = w->up_w == w->gate_w + I * s->D;
    int biases = (w->gate_b < 0 && w->up_b < 0) || (w->gate_b >= 0 && w->up_b == w->gate_b + I);
    return d->params_bf16 && s->mlp == MLP_SWIGLU && weights && biases;
}

/* Packed and without biases (the decoder's MLP): gate and up then live in bf16 alone (a->gu16), as
 * autocast keeps a Linear's output - the GEMM rounds its accumulators once, SwiGLU reads the bf16
 * values forward and backward, and nothing needs them in fp32 (biases would: their gradients are
 * taken from fp32 values). Half the bytes of the block's largest activation. */
static int gu_bf16(const struct model_dev *d, const struct block_shape *s, const struct block_weights *w)
{
    return gu_packed(d, s, w) && w->gate_b < 0 && w->up_b < 0;
}

/* Whether the block's attention runs fused (attention_flash_*: bf16 tensor cores, no probabilities
 * kept): a bf16 model with the device's tuning.flash_attention (MMUPT_ATTENTION=flash, gpu_mem.h;
 * off by default: slower than the GEMM path on an H200, docs/performance.md) and a head size the kernels take. Otherwise cuBLAS
 * GEMMs (TF32 in bf16) around softmax kernels, keeping the probabilities. */
static int block_flash(const struct model_dev *d, const struct block_shape *s)
{
    return d->params_bf16 && d->g->tuning.flash_attention && attention_flash_supported(s->hd);
}

/* Whether it runs through cuDNN's SDPA graphs (attention_sdpa_*: bf16 in and out) instead: a bf16
 * model with tuning.cudnn_attention (MMUPT_ATTENTION=cudnn) where cuDNN planned the call's shapes -
 * the same answer for the forward and its backward (attention_sdpa_supported). */
static int block_sdpa(const struct model_dev *d, const struct block_shape *s)
{
    return d->params_bf16 && d->g->tuning.cudnn_attention &&
           attention_sdpa_supported(s->seg, s->n_seg, s->n_heads, s->n_kv, s->hd, s->causal, d->g->blas);
}

/* The buffer of q, k and v's bf16 rounding cuDNN reads (q16, then k16 and v16 after it): a->qkv16 when
 * the block keeps copies for a backward, else a scratch qkv16_release frees. */
static uint16_t *qkv16_buffer(const struct model_dev *d, struct block_acts *a, const struct block_shape *s)
{
    size_t bytes = (size_t)(s->T * (s->n_heads + 2 * s->n_kv) * s->hd) * sizeof(uint16_t);
    if (!a->atth) return gpu_alloc(d->g, bytes);
    if (!a->qkv16) a->qkv16 = gpu_alloc(d->g, bytes);
    return a->qkv16;
}

static void qkv16_release(const struct model_dev *d, const struct block_acts *a, uint16_t *qkv16)
{
    if (qkv16 != a->qkv16) gpu_free(d->g, qkv16);
}

/* q, k and v rounded into qkv16 (where RoPE did not write their rounding itself). */
static void qkv_round(const struct model_dev *d, const struct block_acts *a, const struct block_shape *s,
                      uint16_t *qkv16)
{
    const struct gpu_ctx *g = d->g;
    int64_t nq = s->T * s->n_heads * s->hd, nkv = s->T * s->n_kv * s->hd;
    cast_bf16_cuda(qkv16, a->q, (long)nq, g->stream);
    cast_bf16_cuda(qkv16 + nq, a->k, (long)nkv, g->stream);
    cast_bf16_cuda(qkv16 + nq + nkv, a->v, (long)nkv, g->stream);
}

/* The cuDNN forward from qkv16: the output straight into the o-projection's bf16 operand (out16:
 * a->atth, or the shared scratch when nothing is kept) and the rows' log-sum-exps into a->lse. No
 * fp32 output: the projection and its backward take the rounding alone (their inp NULL). */
static void block_attention_sdpa(struct model_dev *d, struct block_acts *a, const struct block_shape *s,
                                 uint16_t *out16, const uint16_t *qkv16)
{
    const struct gpu_ctx *g = d->g;
    int64_t nq = s->T * s->n_heads * s->hd, nkv = s->T * s->n_kv * s->hd;
    if (!a->lse) a->lse = gpu_alloc_floats(g, s->T * s->n_heads);
    attention_sdpa_forward_cuda(out16, a->lse, qkv16, qkv16 + nq, qkv16 + nq + nkv, s->seg, s->n_seg, s->n_heads,
                                s->n_kv, s->hd, s->causal, g->blas);
}

/* Its backward from datt16 (the output's gradient in bf16): cuDNN's bf16 gradients in one buffer the
 * caller frees - dq16 [T, qd], then dk16 and dv16 ([T, kvd] each). */
static uint16_t *block_attention_sdpa_grads(struct model_dev *d, const struct block_acts *a,
                                            const struct block_shape *s, const uint16_t *datt16)
{
    const struct gpu_ctx *g = d->g;
    MMUPT_CHECK(a->atth && a->lse && a->qkv16); /* the forward's operands, output and statistics, kept */
    int64_t nq = s->T * s->n_heads * s->hd, nkv = s->T * s->n_kv * s->hd;
    const uint16_t *qkv16 = a->qkv16;
    uint16_t *grads = gpu_alloc(g, (size_t)(nq + 2 * nkv) * sizeof *grads);
    uint16_t *dq16 = grads, *dk16 = dq16 + nq, *dv16 = dk16 + nkv;
    attention_sdpa_backward_cuda(dq16, dk16, dv16, datt16, a->atth, a->lse, qkv16, qkv16 + nq, qkv16 + nq + nkv,
                                 s->seg, s->n_seg, s->n_heads, s->n_kv, s->hd, s->causal, g->blas);
    return grads;
}

/* The attention of the block's q, k, v into a->att, keeping what its backward needs: lse (fused) or
 * the probabilities, allocated here on first use. */
static void block_attention(struct model_dev *d, struct block_acts *a, const struct block_shape *s)
{
    const struct gpu_ctx *g = d->g;
    if (block_flash(d, s)) {
        if (!a->lse) a->lse = gpu_alloc_floats(g, s->T * s->n_heads);
        attention_flash_forward_cuda(a->att, a->lse, a->q, a->k, a->v, s->seg, s->n_seg, s->n_heads, s->n_kv, s->hd,
                                     s->causal, g->blas);
        return;
    }
    if (!a->probs) a->probs = gpu_alloc_floats(g, (int64_t)attention_probs_size(s->seg, s->n_seg, s->n_heads));
    /* bf16 (mixed precision): the attention products on TF32 tensor cores, finer than the bf16 GEMMs */
    (d->params_bf16 ? attention_forward_tf32_cuda : attention_forward_cuda)(a->att, a->probs, a->q, a->k, a->v, s->seg,
                                                                           s->n_seg, s->n_heads, s->n_kv, s->hd,
                                                                           s->causal, g->blas);
}

/* Its backward: dq, dk, dv += the gradients through it of datt. */
static void block_attention_backward(struct model_dev *d, const struct block_acts *a, const struct block_shape *s,
                                     float *dq, float *dk, float *dv, const float *datt)
{
    const struct gpu_ctx *g = d->g;
    if (block_flash(d, s)) {
        attention_flash_backward_cuda(dq, dk, dv, datt, a->att, a->lse, a->q, a->k, a->v, s->seg, s->n_seg,
                                      s->n_heads, s->n_kv, s->hd, s->causal, g->blas);
        return;
    }
    (d->params_bf16 ? attention_backward_tf32_cuda : attention_backward_cuda)(dq, dk, dv, datt, a->probs, a->q, a->k,
                                                                             a->v, s->seg, s->n_seg, s->n_heads,
                                                                             s->n_kv, s->hd, s->causal, g->blas);
}

/* bf16: where an activation's rounding goes - its kept copy (kept, from block_acts), or, when the
 * forward keeps none (no backward follows), the shared operand scratch. NULL in fp32. */
static uint16_t *operand_of(struct model_dev *d, uint16_t *kept, int64_t n)
{
    if (!d->params_bf16) return NULL;
    return kept ? kept : dev_linear_operand(d, n);
}

/* A projection of inp, whose bf16 rounding op holds (bf16), or of inp itself (fp32: op NULL). */
static void project(struct model_dev *d, float *out, const float *inp, const uint16_t *op, int64_t w_off,
                    int64_t b_off, int M, int K, int N)
{
    if (op) dev_linear_forward_bf16_op(d, out, inp, op, w_off, b_off, M, K, N);
    else dev_linear_forward(d, out, inp, w_off, b_off, M, K, N);
}

/* out = the projection of inp (op: its bf16 rounding, or NULL in fp32) + res, res not out: in the
 * GEMM's epilogue for a bf16 projection without a bias (project_res_fused; the device's
 * tuning.gemm_residual, MMUPT_GEMM_RESIDUAL, on by default), else the projection and residual_forward. */
static int project_res_fused(const struct model_dev *d, const uint16_t *op, int64_t b_off)
{
    return op && d->params_bf16 && b_off < 0 && d->g->tuning.gemm_residual;
}

static void project_res(struct model_dev *d, float *out, const float *res, const float *inp, const uint16_t *op,
                        int64_t w_off, int64_t b_off, int M, int K, int N)
{
    if (project_res_fused(d, op, b_off)) {
        dev_linear_forward_bf16_res(d, out, res, inp, op, w_off, M, K, N);
        return;
    }
    project(d, out, inp, op, w_off, b_off, M, K, N);
    residual_forward_cuda(out, out, res, (long)M * N, d->g->stream);
}

/* The input norm into out and, in bf16, its rounding into op (RMSNorm: in the same launch); res (may
 * be NULL): x + res is normalised and stored in sum first. */
static void norm_forward_operand(struct model_dev *d, const struct block_shape *s, float *out, uint16_t *op,
                                 float *mean, float *rstd, float *sum, const float *x, const float *res, const float *w,
                                 const float *b)
{
    const struct gpu_ctx *g = d->g;
    if (op && s->norm == NORM_RMS) {
        if (res)
            residual_rmsnorm_forward_cast_cuda(sum, out, op, rstd, x, res, w, (int)s->T, (int)s->D, s->eps, 0, g->stream);
        else
            rmsnorm_forward_cast_cuda(out, op, rstd, x, w, (int)s->T, (int)s->D, s->eps, 0, g->stream);
        return;
    }
    if (res) residual_forward_cuda(sum, x, res, (long)s->T * s->D, g->stream);
    norm_forward(g, s, out, mean, rstd, res ? sum : x, w, b);
    if (op) cast_bf16_cuda(op, out, (long)s->T * s->D, g->stream);
}

/* gate and up as two GEMMs of n2 (fp32, or weights not back to back), then the activation into
 * a->act and, in bf16, its rounding into act16. */
static void mlp_forward_unpacked(struct model_dev *d, struct block_acts *a, const struct block_shape *s,
                                 const struct block_weights *w, const uint16_t *n2_16, uint16_t *act16)
{
    const struct gpu_ctx *g = d->g;
    int T = (int)s->T, D = (int)s->D, I = (int)s->I;
    long n = (long)T * I;
    project(d, a->gate, a->n2, n2_16, w->gate_w, w->gate_b, T, D, I);
    if (s->mlp != MLP_SWIGLU) {
        quick_gelu_forward_cuda(a->act, a->gate, n, g->stream);
        if (act16) cast_bf16_cuda(act16, a->act, n, g->stream);
        return;
    }
    project(d, a->up, a->n2, n2_16, w->up_w, w->up_b, T, D, I);
    if (act16) swiglu_forward_cast_cuda(a->act, act16, a->gate, a->up, n, g->stream);
    else swiglu_forward_cuda(a->act, a->gate, a->up, n, g->stream);
}

void dev_block_forward(struct model_dev *d, struct block_acts *a, const struct block_shape *s,
                       const struct block_weights *w, const float *x, float *out)
{
    const struct gpu_ctx *g = d->g;
    const float *p = d->params;
    int T = (int)s->T, D = (int)s->D, I = (int)s->I, qd = s->n_heads * s->hd, kvd = s->n_kv * s->hd;
    gpu_copy(g, a->x, x, (size_t)T * D * sizeof *x);
    /* Without kept copies the operands share one scratch, used in turn: sized for the widest first,
     * so that no pointer taken below goes stale when a later one grows it. */
    if (!a->n1h) {
        int64_t widest = D > qd ? D : qd;
        dev_linear_reserve(d, (int64_t)T * (widest > I ? widest : I));
    }
    uint16_t *op = operand_of(d, a->n1h, (int64_t)T * D);
    norm_forward_operand(d, s, a->n1, op, a->mean1, a->rstd1, NULL, x, NULL, W(p, w->norm1_w), W(p, w->norm1_b));
    int sdpa = block_sdpa(d, s);
    d->attention_runs[sdpa ? MODEL_DEV_ATTN_CUDNN : block_flash(d, s) ? MODEL_DEV_ATTN_FLASH : MODEL_DEV_ATTN_CUBLAS]++;
    uint16_t *qkv16 = sdpa ? qkv16_buffer(d, a, s) : NULL; /* cuDNN's operands */
    if (qkv_packed(d, s, w)) { /* one GEMM (and bias) over the packed rows, then RoPE while unpacking */
        float *qkv = gpu_alloc_floats(g, (int64_t)T * (qd + 2 * kvd));
        project(d, qkv, a->n1, op, w->q_w, w->q_b, T, D, qd + 2 * kvd);
        if (sdpa) /* q/k/v's rounding from the same pass; no fp32 q (nothing reads it) - k, v the caches' */
            rope_qkv_forward_cast_cuda(NULL, a->k, a->v, qkv16, qkv16 + (int64_t)T * qd, qkv16 + (int64_t)T * (qd + kvd),
                                       qkv, s->cos, s->sin, T, s->n_heads, s->n_kv, s->hd, g->stream);
        else
            rope_qkv_forward_cuda(a->q, a->k, a->v, qkv, s->cos, s->sin, T, s->n_heads, s->n_kv, s->hd, g->stream);
        gpu_free(g, qkv);
    } else {
        project(d, a->q, a->n1, op, w->q_w, w->q_b, T, D, qd);
        project(d, a->k, a->n1, op, w->k_w, w->k_b, T, D, kvd);
        project(d, a->v, a->n1, op, w->v_w, w->v_b, T, D, kvd);
        rope_forward_cuda(a->q, s->cos, s->sin, T, s->n_heads, s->hd, g->stream);
        rope_forward_cuda(a->k, s->cos, s->sin, T, s->n_kv, s->hd, g->stream);
        if (sdpa) qkv_round(d, a, s, qkv16);
    }
    op = operand_of(d, a->atth, (int64_t)T * qd);
    if (sdpa) {
        block_attention_sdpa(d, a, s, op, qkv16); /* writes the operand itself */
        qkv16_release(d, a, qkv16);
    } else {
        if (!a->att) a->att = gpu_alloc_floats(g, (int64_t)T * qd);
        block_attention(d, a, s);
        if (op) cast_bf16_cuda(op, a->att, (long)T * qd, g->stream);
    }
    /* x_mid = attention output + x, then its norm: the sum in the GEMM's epilogue (fused), or in the
     * norm's launch (bf16 with RMSNorm) */
    const float *att = sdpa ? NULL : a->att;
    int fused = project_res_fused(d, op, w->o_b);
    if (fused) dev_linear_forward_bf16_res(d, a->x_mid, x, att, op, w->o_w, T, qd, D);
    else project(d, a->x_mid, att, op, w->o_w, w->o_b, T, qd, D);
    op = operand_of(d, a->n2h, (int64_t)T * D);
    norm_forward_operand(d, s, a->n2, op, a->mean2, a->rstd2, fused ? NULL : a->x_mid, a->x_mid, fused ? NULL : x,
                         W(p, w->norm2_w), W(p, w->norm2_b));
    uint16_t *act16 = operand_of(d, a->acth, (int64_t)T * I);
    if (gu_bf16(d, s, w)) { /* one GEMM into bf16 gate/up rows; SwiGLU of them writes down's operand */
        if (!a->gu16) a->gu16 = gpu_alloc(g, (size_t)(2 * (int64_t)T * I) * sizeof *a->gu16);
        dev_linear_forward_bf16_out16(d, a->gu16, op, w->gate_w, T, D, 2 * I);
        swiglu_packed16_forward_cast_cuda(act16, a->gu16, T, I, g->stream);
    } else if (gu_packed(d, s, w)) { /* one GEMM for gate and up; SwiGLU over its rows writes down's operand */
        mlp_gate_alloc(g, a, s);
        project(d, a->gate, a->n2, op, w->gate_w, w->gate_b, T, D, 2 * I);
        swiglu_packed_forward_cast_cuda(a->act, act16, a->gate, T, I, 0, g->stream);
    } else {
        mlp_gate_alloc(g, a, s);
        mlp_forward_unpacked(d, a, s, w, op, act16);
    }
    project_res(d, out, a->x_mid, a->act, act16, w->down_w, w->down_b, T, I, D); /* out = MLP output + x_mid */
}

/* The projection's backward, dinp assigned, from dout or - when the op that made dout also wrote its
 * bf16 rounding (dout16, else NULL) - from that rounding: no cast, the same bits. */
static void project_backward_set(struct model_dev *d, float *dinp, const float *dout, const uint16_t *dout16,
                                 const float *inp, const uint16_t *inp16, int64_t w_off, int64_t b_off, int M, int K,
                                 int N)
{
    if (dout16) dev_linear_backward_bf16_dy(d, dinp, dout16, dout, inp, inp16, w_off, b_off, M, K, N);
    else dev_linear_backward_set(d, dinp, dout, inp, inp16, w_off, b_off, M, K, N);
}

/* The MLP half's GEMMs and SwiGLU for a bf16 decoder MLP (gu_bf16: gate/up kept in bf16 alone), from
 * its output gradient's rounding (dout16): every operand in bf16. The down projection's backward GEMM
 * writes dact's rounding alone, as autocast keeps a Linear's input gradient - half the bytes of an
 * fp32 dact written and read back, T x I values a layer; SwiGLU's backward reads it and writes
 * dgate | dup's rounding for the one gate/up backward GEMM, which assigns dn2. */
static void mlp_backward_bf16(struct model_dev *d, const struct block_acts *a, const struct block_shape *s,
                              const struct block_weights *w, const float *dout, const uint16_t *dout16, float *dn2)
{
    const struct gpu_ctx *g = d->g;
    int T = (int)s->T, D = (int)s->D, I = (int)s->I;
    uint16_t *dact16 = gpu_alloc(g, (size_t)T * I * sizeof *dact16);
    dev_linear_backward_bf16_dy16(d, dact16, dout16, dout, a->acth, w->down_w, w->down_b, T, I, D);
    uint16_t *dgu = gpu_alloc(g, (size_t)2 * T * I * sizeof *dgu); /* every value written: no zero fill */
    swiglu_packed16_backward16_cuda(dgu, dact16, a->gu16, T, I, g->stream);
    gpu_free(g, dact16);
    dev_linear_backward_bf16_dy(d, dn2, dgu, NULL, a->n2, a->n2h, w->gate_w, -1, T, D, 2 * I);
    gpu_free(g, dgu);
}

/* The same from an fp32 dact (the down projection's input gradient) for every other MLP - fp32, or
 * with biases, whose gradients are taken from fp32 values - dn2 assigned. */
static void mlp_backward_dact32(struct model_dev *d, const struct block_acts *a, const struct block_shape *s,
                                const struct block_weights *w, const float *dout, const uint16_t *dout16, float *dn2)
{
    const struct gpu_ctx *g = d->g;
    int T = (int)s->T, D = (int)s->D, I = (int)s->I;
    int packed = gu_packed(d, s, w);
    /* dact is assigned by the first GEMM that writes it (the *_set backwards): no zero fill */
    float *dact = gpu_alloc_floats(g, (int64_t)T * I);
    float *dgate = gpu_zeros_floats(g, (int64_t)(packed ? 2 : 1) * T * I); /* packed: [T, 2I] rows */
    project_backward_set(d, dact, dout, dout16, a->act, a->acth, w->down_w, w->down_b, T, I, D);
    if (packed) { /* one backward GEMM for gate and up, as one forward GEMM made them */
        swiglu_packed_backward_cuda(dgate, dact, a->gate, T, I, g->stream);
        dev_linear_backward_set(d, dn2, dgate, a->n2, a->n2h, w->gate_w, w->gate_b, T, D, 2 * I);
    } else if (s->mlp == MLP_SWIGLU) {
        float *dup = gpu_zeros_floats(g, (int64_t)T * I);
        swiglu_backward_cuda(dgate, dup, dact, a->gate, a->up, (long)T * I, g->stream);
        dev_linear_backward_set(d, dn2, dup, a->n2, a->n2h, w->up_w, w->up_b, T, D, I);
        gpu_free(g, dup);
    } else {
        quick_gelu_backward_cuda(dgate, dact, a->gate, (long)T * I, g->stream);
    }
    if (!packed) /* after up's (SwiGLU), or the first (GELU) */
        (s->mlp == MLP_SWIGLU ? dev_linear_backward : dev_linear_backward_set)(d, dn2, dgate, a->n2, a->n2h, w->gate_w,
                                                                               w->gate_b, T, D, I);
    gpu_free(g, dact);
    gpu_free(g, dgate);
}

/* The MLP half: from the gradient of the block output (and its rounding dout16, may be NULL) to the
 * gradient of x_mid (assigned: dout, the residual path, plus the norm's; and its rounding into
 * dx_mid16 when not NULL). */
static void mlp_backward(struct model_dev *d, const struct block_acts *a, const struct block_shape *s,
                         const struct block_weights *w, const float *dout, const uint16_t *dout16, float *dx_mid,
                         uint16_t *dx_mid16)
{
    float *dn2 = gpu_alloc_floats(d->g, s->T * s->D); /* assigned by the first GEMM that writes it */
    if (gu_bf16(d, s, w)) {
        /* dout's rounding, made here where no op before wrote it (a LayerNorm after the block) */
        uint16_t *cast = dout16 ? NULL : gpu_alloc(d->g, (size_t)(s->T * s->D) * sizeof *cast);
        if (cast) cast_bf16_cuda(cast, dout, (long)(s->T * s->D), d->g->stream);
        mlp_backward_bf16(d, a, s, w, dout, dout16 ? dout16 : cast, dn2);
        gpu_free(d->g, cast);
    } else {
        mlp_backward_dact32(d, a, s, w, dout, dout16, dn2);
    }
    norm_backward(d, s, dx_mid, dx_mid16, dout, w->norm2_w, w->norm2_b, dn2, a->x_mid, a->mean2, a->rstd2);
    gpu_free(d->g, dn2);
}

/* The packed projections' backward (qkv_packed): the three gradients - fp32 (dq, dk, dv) or, from
 * cuDNN's attention, bf16 (dq16: dq16, then dk16 and dv16 after it) - packed as the forward's GEMM
 * output by RoPE's backward, then one GEMM backward. */
static void qkv_packed_backward(struct model_dev *d, const struct block_acts *a, const struct block_shape *s,
                                const struct block_weights *w, float *dn1, const float *dq, const float *dk,
                                const float *dv, const uint16_t *dq16)
{
    const struct gpu_ctx *g = d->g;
    int T = (int)s->T, D = (int)s->D, qd = s->n_heads * s->hd, kvd = s->n_kv * s->hd;
    int64_t n = (int64_t)T * (qd + 2 * kvd);
    float *dqkv = w->q_b >= 0 ? gpu_alloc_floats(g, n) : NULL;
    uint16_t *dqkv16 = gpu_alloc(g, (size_t)n * sizeof *dqkv16);
    if (dq16)
        rope_qkv16_backward_cast_cuda(dqkv, dqkv16, dq16, dq16 + (int64_t)T * qd, dq16 + (int64_t)T * (qd + kvd),
                                      s->cos, s->sin, T, s->n_heads, s->n_kv, s->hd, g->stream);
    else
        rope_qkv_backward_cast_cuda(dqkv, dqkv16, dq, dk, dv, s->cos, s->sin, T, s->n_heads, s->n_kv, s->hd,
                                    g->stream);
    dev_linear_backward_bf16_dy(d, dn1, dqkv16, dqkv, a->n1, a->n1h, w->q_w, w->q_b, T, D, qd + 2 * kvd);
    gpu_free(g, dqkv);
    gpu_free(g, dqkv16);
}

/* The attention half's q/k/v projections: from dq, dk, dv to dn1 (assigned). Packed (bf16), RoPE's
 * backward writes the packed gradient's bf16 rounding for the one GEMM, and the fp32 values only
 * where biases take their gradients from them. */
static void qkv_backward(struct model_dev *d, const struct block_acts *a, const struct block_shape *s,
                         const struct block_weights *w, float *dn1, float *dq, float *dk, float *dv)
{
    int T = (int)s->T, D = (int)s->D, qd = s->n_heads * s->hd, kvd = s->n_kv * s->hd;
    const struct gpu_ctx *g = d->g;
    if (qkv_packed(d, s, w)) { /* the three gradients packed as the forward's GEMM output: one backward */
        qkv_packed_backward(d, a, s, w, dn1, dq, dk, dv, NULL);
        return;
    }
    rope_backward_cuda(dq, s->cos, s->sin, T, s->n_heads, s->hd, g->stream);
    rope_backward_cuda(dk, s->cos, s->sin, T, s->n_kv, s->hd, g->stream);
    dev_linear_backward_set(d, dn1, dq, a->n1, a->n1h, w->q_w, w->q_b, T, D, qd);
    dev_linear_backward(d, dn1, dk, a->n1, a->n1h, w->k_w, w->k_b, T, D, kvd);
    dev_linear_backward(d, dn1, dv, a->n1, a->n1h, w->v_w, w->v_b, T, D, kvd);
}

/* From the attention output's gradient - datt, or with cuDNN's attention its bf16 rounding datt16 -
 * to dn1 (assigned): the attention's backward, then the q/k/v projections'. cuDNN's attention before
 * packed projections hands its bf16 gradients straight to RoPE's backward: no fp32 dq, dk, dv, nor
 * their zero fill and additions. */
static void attention_qkv_backward(struct model_dev *d, const struct block_acts *a, const struct block_shape *s,
                                   const struct block_weights *w, float *dn1, const float *datt,
                                   const uint16_t *datt16)
{
    const struct gpu_ctx *g = d->g;
    int64_t nq = s->T * s->n_heads * s->hd, nkv = s->T * s->n_kv * s->hd;
    uint16_t *dq16 = datt16 ? block_attention_sdpa_grads(d, a, s, datt16) : NULL;
    if (dq16 && qkv_packed(d, s, w)) {
        qkv_packed_backward(d, a, s, w, dn1, NULL, NULL, NULL, dq16);
    } else { /* dq, dk, dv accumulate the attention's gradients */
        float *dq = gpu_zeros_floats(g, nq), *dk = gpu_zeros_floats(g, nkv), *dv = gpu_zeros_floats(g, nkv);
        if (dq16) {
            add_bf16_cuda(dq, dq16, (long)nq, g->stream);
            add_bf16_cuda(dk, dq16 + nq, (long)nkv, g->stream);
            add_bf16_cuda(dv, dq16 + nq + nkv, (long)nkv, g->stream);
        } else {
            block_attention_backward(d, a, s, dq, dk, dv, datt);
        }
        qkv_backward(d, a, s, w, dn1, dq, dk, dv);
        gpu_free(g, dq);
        gpu_free(g, dk);
        gpu_free(g, dv);
    }
    gpu_free(g, dq16);
}

/* The o-projection's backward, from dx_mid (and its rounding dx_mid16, may be NULL) into the attention
 * output's gradient - fp32 (*datt), or with cuDNN's attention (sdpa) bf16 only (*datt16), straight
 * from the GEMM where dx_mid16 is there (no fp32 buffer, no cast). The caller frees both. */
static void oproj_backward(struct model_dev *d, const struct block_acts *a, const struct block_shape *s,
                           const struct block_weights *w, const float *dx_mid, const uint16_t *dx_mid16, int sdpa,
                           float **datt, uint16_t **datt16)
{
    const struct gpu_ctx *g = d->g;
    int T = (int)s->T, D = (int)s->D, qd = s->n_heads * s->hd;
    *datt = NULL, *datt16 = NULL;
    if (sdpa) *datt16 = gpu_alloc(g, (size_t)((int64_t)T * qd) * sizeof **datt16);
    if (sdpa && dx_mid16) { /* cuDNN's attention kept no fp32 output: the GEMMs read its rounding */
        dev_linear_backward_bf16_dy16(d, *datt16, dx_mid16, dx_mid, a->atth, w->o_w, w->o_b, T, qd, D);
        return;
    }
    *datt = gpu_alloc_floats(g, (int64_t)T * qd); /* assigned by the GEMM */
    project_backward_set(d, *datt, dx_mid, dx_mid16, sdpa ? NULL : a->att, a->atth, w->o_w, w->o_b, T, qd, D);
    if (sdpa) cast_bf16_cuda(*datt16, *datt, (long)T * qd, g->stream);
}

void dev_block_backward(struct model_dev *d, const struct block_acts *a, const struct block_shape *s,
                        const struct block_weights *w, const float *dout, const uint16_t *dout16, float *dx,
                        uint16_t *dx16)
{
    const struct gpu_ctx *g = d->g;
    int T = (int)s->T, D = (int)s->D;
    int64_t TD = (int64_t)T * D;
    MMUPT_CHECK(!dx16 || dev_block_writes_dx16(d, s));
    float *dx_mid = gpu_alloc_floats(g, TD); /* assigned by mlp_backward */
    /* bf16 with RMSNorm: the norm's backward rounds x_mid's gradient for the o-projection's GEMMs */
    uint16_t *dx_mid16 = dev_block_writes_dx16(d, s) ? gpu_alloc(g, (size_t)TD * sizeof *dx_mid16) : NULL;
    mlp_backward(d, a, s, w, dout, dout16, dx_mid, dx_mid16);

    float *datt, *dn1 = gpu_alloc_floats(g, TD); /* dn1 assigned by its first GEMM */
    uint16_t *datt16;
    oproj_backward(d, a, s, w, dx_mid, dx_mid16, block_sdpa(d, s), &datt, &datt16);
    attention_qkv_backward(d, a, s, w, dn1, datt, datt16);
    if (d->params_bf16 && s->norm == NORM_RMS) { /* dx = dx_mid + the norm's gradient, in one pass */
        norm_backward(d, s, dx, dx16, dx_mid, w->norm1_w, w->norm1_b, dn1, a->x, a->mean1, a->rstd1);
    } else { /* fp32 keeps the CPU reference's order (0 + dx_mid, then the norm's added): its bits */
        gpu_zero(g, dx, (size_t)TD * sizeof *dx);
        residual_forward_cuda(dx, dx, dx_mid, (long)TD, g->stream);
        norm_backward(d, s, dx, NULL, NULL, w->norm1_w, w->norm1_b, dn1, a->x, a->mean1, a->rstd1);
    }
    float *tmp[] = {dx_mid, datt, dn1};
    for (size_t i = 0; i < sizeof tmp / sizeof tmp[0]; i++) gpu_free(g, tmp[i]);
    gpu_free(g, dx_mid16);
    gpu_free(g, datt16);
}
