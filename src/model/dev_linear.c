/* The device model's linear layers and its precision (model.dtype). fp32: the fp32 GEMM twins on the
 * fp32 weights. bf16 (mixed precision, as autocast does it): the bf16 GEMM twins on a bf16 copy of
 * the weights, the fp32 activations rounded on the way in, fp32 out; the master weights, gradients,
 * optimizer and every other op stay fp32. Every projection of the model goes through these two
 * functions, so the precision is decided in one place. */
#include "dev_internal.h"
#include "mmupt/kernels.h"

void model_dev_params_changed(struct model_dev *d)
{
    if (d->params_bf16) cast_bf16_cuda(d->params_bf16, d->params, (long)d->m->spec.total, d->g->stream);
}

void model_dev_params_changed_sr(struct model_dev *d, uint64_t seed)
{
    if (d->params_bf16) cast_bf16_sr_cuda(d->params_bf16, d->params, (long)d->m->spec.total, seed, d->g->stream);
}

void model_dev_set_bf16(struct model_dev *d, int on)
{
    if (on && !d->params_bf16) {
        d->params_bf16 = gpu_alloc(d->g, (size_t)d->m->spec.total * sizeof *d->params_bf16);
        model_dev_params_changed(d);
    } else if (!on && d->params_bf16) {
        gpu_free(d->g, d->params_bf16);
        gpu_free(d->g, d->cast);
        d->params_bf16 = d->cast = NULL;
        d->cast_cap = 0;
    }
}

/* The bf16 operands' scratch, at least n values (grown, never shrunk: the largest GEMM of a step,
 * usually lm_head's, sets it once). */
static uint16_t *cast_scratch(struct model_dev *d, int64_t n)
{
    if (n > d->cast_cap) {
        gpu_free(d->g, d->cast);
        d->cast = gpu_alloc(d->g, (size_t)n * sizeof *d->cast);
        d->cast_cap = n;
    }
    return d->cast;
}

void dev_linear_reserve(struct model_dev *d, int64_t n)
{
    if (d->params_bf16) (void)cast_scratch(d, n);
}

uint16_t *dev_linear_operand(struct model_dev *d, int64_t n)
{
    return cast_scratch(d, n);
}

static void linear_forward(struct model_dev *d, float *out, const float *inp, int64_t w_off, int64_t b_off, int M,
                           int K, int N, int again)
{
    const float *bias = b_off < 0 ? NULL : d->params + b_off;
    if (!d->params_bf16) {
        matmul_forward_cuda(out, inp, d->params + w_off, bias, M, K, N, d->g->blas);
        return;
    }
    uint16_t *scratch = cast_scratch(d, (int64_t)M * K);
    matmul_forward_bf16_cuda(out, inp, d->params_bf16 + w_off, bias, M, K, N, scratch, again, d->g->blas);
}

void dev_linear_forward(struct model_dev *d, float *out, const float *inp, int64_t w_off, int64_t b_off, int M, int K,
                        int N)
{
    linear_forward(d, out, inp, w_off, b_off, M, K, N, 0);
}

void dev_linear_forward_again(struct model_dev *d, float *out, const float *inp, int64_t w_off, int64_t b_off, int M,
                              int K, int N)
{
    linear_forward(d, out, inp, w_off, b_off, M, K, N, 1);
}

void dev_linear_forward_bf16_op(struct model_dev *d, float *out, const float *inp, const uint16_t *inp16,
                                int64_t w_off, int64_t b_off, int M, int K, int N)
{
    MMUPT_CHECK(d->params_bf16 != NULL && inp16 != NULL);
    /* cast_done: the GEMM reads inp16 as its scratch and writes nothing there */
    matmul_forward_bf16_cuda(out, inp, d->params_bf16 + w_off, b_off < 0 ? NULL : d->params + b_off, M, K, N,
                             (uint16_t *)inp16, 1, d->g->blas);
}

void dev_linear_forward_bf16_res(struct model_dev *d, float *out, const float *res, const float *inp,
                                 const uint16_t *inp16, int64_t w_off, int M, int K, int N)
{
    MMUPT_CHECK(d->params_bf16 != NULL && inp16 != NULL);
    /* cast_done: the GEMM reads inp16 as its scratch and writes nothing there */
    matmul_forward_bf16_res_cuda(out, res, inp, d->params_bf16 + w_off, M, K, N, (uint16_t *)inp16, 1, d->g->blas);
}

void dev_linear_forward_bf16_out16(struct model_dev *d, uint16_t *out16, const uint16_t *inp16, int64_t w_off, int M,
                                   int K, int N)
{
    MMUPT_CHECK(d->params_bf16 != NULL && inp16 != NULL);
    /* cast_done: the GEMM reads inp16 as its scratch and writes nothing there */
    matmul_forward_bf16_out16_cuda(out16, NULL, d->params_bf16 + w_off, M, K, N, (uint16_t *)inp16, 1, d->g->blas);
}

static void linear_backward(struct model_dev *d, float *dinp, float dinp_beta, const float *dout, const float *inp,
                            const uint16_t *inp16, int64_t w_off, int64_t b_off, int M, int K, int N)
{
    float *dw = d->grads + w_off, *db = b_off < 0 ? NULL : d->grads + b_off;
    /* bf16: the weight gradient's first write of a step assigns (dev_grads.c); the bias's column
     * sums add, onto zeros */
    float dw_beta = dev_grad_begin(d, w_off, (int64_t)N * K, d->params_bf16 != NULL);
    (void)dev_grad_begin(d, b_off, N, 0);
    if (!d->params_bf16) { /* the fp32 twin accumulates, as the CPU reference does */
        if (dinp && dinp_beta == 0.0f) gpu_zero(d->g, dinp, (size_t)M * K * sizeof *dinp);
        matmul_backward_cuda(dinp, dw, db, dout, inp, d->params + w_off, M, K, N, d->g->blas);
        return;
    }
    uint16_t *scratch = cast_scratch(d, inp16 ? (int64_t)M * N : matmul_bf16_backward_scratch(M, K, N));
    matmul_backward_bf16_cuda(dinp, dinp_beta, dw, dw_beta, db, dout, inp, inp16, d->params_bf16 + w_off, M, K, N,
                              scratch, d->g->blas);
}

void dev_linear_backward(struct model_dev *d, float *dinp, const float *dout, const float *inp, const uint16_t *inp16,
                         int64_t w_off, int64_t b_off, int M, int K, int N)
{
    linear_backward(d, dinp, 1.0f, dout, inp, inp16, w_off, b_off, M, K, N);
}

void dev_linear_backward_set(struct model_dev *d, float *dinp, const float *dout, const float *inp,
                             const uint16_t *inp16, int64_t w_off, int64_t b_off, int M, int K, int N)
{
    linear_backward(d, dinp, 0.0f, dout, inp, inp16, w_off, b_off, M, K, N);
}

/* The bias gradient of a backward from dout16: the column sums of the fp32 dout alone (no GEMM, no
 * scratch). */
static void bias_backward_fp32(struct model_dev *d, const float *dout, int64_t w_off, int64_t b_off, int M, int K,
                               int N)
{
    if (b_off >= 0)
        matmul_backward_bf16_cuda(NULL, 0.0f, NULL, 0.0f, d->grads + b_off, dout, NULL, NULL, d->params_bf16 + w_off,
                                  M, K, N, NULL, d->g->blas);
}

void dev_linear_backward_bf16_dy(struct model_dev *d, float *dinp, const uint16_t *dout16, const float *dout,
                                 const float *inp, const uint16_t *inp16, int64_t w_off, int64_t b_off, int M, int K,
                                 int N)
{
    MMUPT_CHECK(d->params_bf16 != NULL && (b_off < 0 || dout != NULL));
    uint16_t *scratch = inp16 ? NULL : cast_scratch(d, (int64_t)M * K);
    float dw_beta = dev_grad_begin(d, w_off, (int64_t)N * K, 1);
    (void)dev_grad_begin(d, b_off, N, 0);
    matmul_backward_bf16_dy_cuda(dinp, 0.0f, d->grads + w_off, dw_beta, dout16, inp, inp16, d->params_bf16 + w_off, M,
                                 K, N, scratch, d->g->blas);
    bias_backward_fp32(d, dout, w_off, b_off, M, K, N);
}

void dev_linear_backward_bf16_dy16(struct model_dev *d, uint16_t *dinp16, const uint16_t *dout16, const float *dout,
                                   const uint16_t *inp16, int64_t w_off, int64_t b_off, int M, int K, int N)
{
    MMUPT_CHECK(d->params_bf16 != NULL && inp16 != NULL && (b_off < 0 || dout != NULL));
    float dw_beta = dev_grad_begin(d, w_off, (int64_t)N * K, 1);
    (void)dev_grad_begin(d, b_off, N, 0);
    matmul_backward_bf16_dy16_cuda(dinp16, d->grads + w_off, dw_beta, dout16, inp16, d->params_bf16 + w_off, M, K, N,
                                   d->g->blas);
    bias_backward_fp32(d, dout, w_off, b_off, M, K, N);
}
