/* The CUDA twins' names on the emulated device: each checks that every device argument lies inside
 * a live device allocation with the extent the op will touch (and that host arguments are host
 * memory), then runs the CPU reference with device memory opened for the duration. What this proves
 * about a caller: it passes the right buffers, of the right sizes, in the right memory space. What
 * it cannot prove: anything about the real kernels (the gpu suite checks each against its reference). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "emu.h"
#include "mmupt/bf16.h"
#include "mmupt/err.h"
#include "mmupt/grpo.h"
#include "mmupt/kernels.h"

/* n elements of *p's type at p must be device memory. */
#define DEV(p, n) emu_dev(st, __func__, #p, (p), (size_t)(n) * sizeof *(p))
#define DEV_OPT(p, n) ((p) ? DEV((p), (n)) : (void)0)
#define EMU_RUN(call)          \
    do {                   \
        if (emu_open(st)) { \
            call;          \
        }                  \
        emu_close(st);     \
    } while (0)

void rmsnorm_forward_cuda(float *out, float *rstd, const float *x, const float *weight, int rows, int dim, float eps,
                          void *stream)
{
    struct emu_state *st = emu_state_of(stream, __func__);
    DEV(out, (long)rows * dim), DEV_OPT(rstd, rows), DEV(x, (long)rows * dim), DEV(weight, dim);
    EMU_RUN(rmsnorm_forward_cpu(out, rstd, x, weight, rows, dim, eps));
}


void rmsnorm_forward_cast_cuda(float *out, uint16_t *out16, float *rstd, const float *x, const float *weight, int rows,
                               int dim, float eps, int pdl, void *stream)
{
    (void)pdl; /* how a GPU launches it: the emulator runs kernels one after the other */
    struct emu_state *st = emu_state_of(stream, __func__);
    long n = (long)rows * dim;
    DEV_OPT(out, n), DEV(out16, n), DEV_OPT(rstd, rows), DEV(x, n), DEV(weight, dim);
    EMU_RUN(rmsnorm_forward_cast_cpu(out, out16, rstd, x, weight, rows, dim, eps));
}

void residual_rmsnorm_forward_cast_cuda(float *sum, float *out, uint16_t *out16, float *rstd, const float *a,
                                        const float *b, const float *weight, int rows, int dim, float eps, int pdl,
                                        void *stream)
{
    (void)pdl;
    struct emu_state *st = emu_state_of(stream, __func__);
    long n = (long)rows * dim;
    DEV(sum, n), DEV_OPT(out, n), DEV(out16, n), DEV_OPT(rstd, rows), DEV(a, n), DEV(b, n), DEV(weight, dim);
    EMU_RUN(residual_rmsnorm_forward_cast_cpu(sum, out, out16, rstd, a, b, weight, rows, dim, eps));
}

void rmsnorm_backward_cuda(float *dx, float *dweight, const float *dout, const float *x, const float *weight,
                           const float *rstd, int rows, int dim, void *stream)
{
    struct emu_state *st = emu_state_of(stream, __func__);
    DEV_OPT(dx, (long)rows * dim), DEV_OPT(dweight, dim), DEV(dout, (long)rows * dim), DEV(x, (long)rows * dim);
    DEV(weight, dim), DEV(rstd, rows);
    EMU_RUN(rmsnorm_backward_cpu(dx, dweight, dout, x, weight, rstd, rows, dim));
}

void rmsnorm_backward_res_cuda(float *dx, float *dweight, const float *dout, const float *x, const float *weight,
                               const float *rstd, const float *res, int rows, int dim, void *stream)
{
    struct emu_state *st = emu_state_of(stream, __func__);
    long n = (long)rows * dim;
    MMUPT_CHECK(dx != NULL && res != NULL && dx != res);
    DEV(dx, n), DEV_OPT(dweight, dim), DEV(dout, n), DEV(x, n), DEV(weight, dim), DEV(rstd, rows), DEV(res, n);
    EMU_RUN(rmsnorm_backward_res_cpu(dx, dweight, dout, x, weight, rstd, res, rows, dim));
}

void rmsnorm_backward_cast_cuda(float *dx, uint16_t *dx16, float *dweight, const float *dout, const float *x,
                                const float *weight, const float *rstd, const float *res, int rows, int dim,
                                void *stream)
{
    struct emu_state *st = emu_state_of(stream, __func__);
    long n = (long)rows * dim;
    MMUPT_CHECK(dx != NULL && dx16 != NULL && dx != res);
    DEV(dx, n), DEV(dx16, n), DEV_OPT(dweight, dim), DEV(dout, n), DEV(x, n), DEV(weight, dim), DEV(rstd, rows);
    DEV_OPT(res, n);
    EMU_RUN(rmsnorm_backward_cast_cpu(dx, dx16, dweight, dout, x, weight, rstd, res, rows, dim));
}

void layernorm_forward_cuda(float *out, float *mean, float *rstd, const float *x, const float *weight,
                            const float *bias, int rows, int dim, float eps, void *stream)
{
    struct emu_state *st = emu_state_of(stream, __func__);
    DEV(out, (long)rows * dim), DEV_OPT(mean, rows), DEV_OPT(rstd, rows), DEV(x, (long)rows * dim);
    DEV(weight, dim), DEV_OPT(bias, dim);
    EMU_RUN(layernorm_forward_cpu(out, mean, rstd, x, weight, bias, rows, dim, eps));
}

void layernorm_backward_cuda(float *dx, float *dweight, float *dbias, const float *dout, const float *x,
                             const float *weight, const float *mean, const float *rstd, int rows, int dim,
                             void *stream)
{
    struct emu_state *st = emu_state_of(stream, __func__);
    DEV_OPT(dx, (long)rows * dim), DEV_OPT(dweight, dim), DEV_OPT(dbias, dim), DEV(dout, (long)rows * dim);
    DEV(x, (long)rows * dim), DEV(weight, dim), DEV(mean, rows), DEV(rstd, rows);
    EMU_RUN(layernorm_backward_cpu(dx, dweight, dbias, dout, x, weight, mean, rstd, rows, dim));
}

void rope_forward_cuda(float *x, const float *cos, const float *sin, int rows, int n_heads, int head_dim, void *stream)
{
    struct emu_state *st = emu_state_of(stream, __func__);
    DEV(x, (long)rows * n_heads * head_dim), DEV(cos, (long)rows * head_dim), DEV(sin, (long)rows * head_dim);
    EMU_RUN(rope_forward_cpu(x, cos, sin, rows, n_heads, head_dim));
}

void rope_backward_cuda(float *dx, const float *cos, const float *sin, int rows, int n_heads, int head_dim,
                        void *stream)
{
    struct emu_state *st = emu_state_of(stream, __func__);
    DEV(dx, (long)rows * n_heads * head_dim), DEV(cos, (long)rows * head_dim), DEV(sin, (long)rows * head_dim);
    EMU_RUN(rope_backward_cpu(dx, cos, sin, rows, n_heads, head_dim));
}

void rope_qkv_forward_cuda(float *q, float *k, float *v, const float *qkv, const float *cos, const float *sin,
                           int rows, int n_heads, int n_kv, int head_dim, void *stream)
{
    struct emu_state *st = emu_state_of(stream, __func__);
    long nq = (long)rows * n_heads * head_dim, nk = (long)rows * n_kv * head_dim;
    if (nq <= 0) return;
    DEV(q, nq), DEV(k, nk), DEV(v, nk), DEV(qkv, nq + 2 * nk), DEV(cos, (long)rows * head_dim);
    DEV(sin, (long)rows * head_dim);
    EMU_RUN(rope_qkv_forward_cpu(q, k, v, qkv, cos, sin, rows, n_heads, n_kv, head_dim));
}

void rope_qkv_backward_cuda(float *dqkv, const float *dq, const float *dk, const float *dv, const float *cos,
                            const float *sin, int rows, int n_heads, int n_kv, int head_dim, void *stream)
{
    struct emu_state *st = emu_state_of(stream, __func__);
    long nq = (long)rows * n_heads * head_dim, nk = (long)rows * n_kv * head_dim;
    if (nq <= 0) return;
    DEV(dqkv, nq + 2 * nk), DEV(dq, nq), DEV(dk, nk), DEV(dv, nk), DEV(cos, (long)rows * head_dim);
    DEV(sin, (long)rows * head_dim);
    EMU_RUN(rope_qkv_backward_cpu(dqkv, dq, dk, dv, cos, sin, rows, n_heads, n_kv, head_dim));
}

void rope_qkv_backward_cast_cuda(float *dqkv, uint16_t *dqkv16, const float *dq, const float *dk, const float *dv,
                                 const float *cos, const float *sin, int rows, int n_heads, int n_kv, int head_dim,
                                 void *stream)
{
    struct emu_state *st = emu_state_of(stream, __func__);
    long nq = (long)rows * n_heads * head_dim, nk = (long)rows * n_kv * head_dim;
    MMUPT_CHECK(dqkv != NULL || dqkv16 != NULL);
    if (nq <= 0) return;
    DEV_OPT(dqkv, nq + 2 * nk), DEV_OPT(dqkv16, nq + 2 * nk), DEV(dq, nq), DEV(dk, nk), DEV(dv, nk);
    DEV(cos, (long)rows * head_dim), DEV(sin, (long)rows * head_dim);
    EMU_RUN(rope_qkv_backward_cast_cpu(dqkv, dqkv16, dq, dk, dv, cos, sin, rows, n_heads, n_kv, head_dim));
}

void rope_qkv_forward_cast_cuda(float *q, float *k, float *v, uint16_t *q16, uint16_t *k16, uint16_t *v16,
                                const float *qkv, const float *cos, const float *sin, int rows, int n_heads, int n_kv,
                                int head_dim, void *stream)
{
    struct emu_state *st = emu_state_of(stream, __func__);
    long nq = (long)rows * n_heads * head_dim, nk = (long)rows * n_kv * head_dim;
    if (nq <= 0) return;
    DEV_OPT(q, nq), DEV(k, nk), DEV(v, nk), DEV(q16, nq), DEV(k16, nk), DEV(v16, nk), DEV(qkv, nq + 2 * nk);
    DEV(cos, (long)rows * head_dim), DEV(sin, (long)rows * head_dim);
    EMU_RUN(rope_qkv_forward_cast_cpu(q, k, v, q16, k16, v16, qkv, cos, sin, rows, n_heads, n_kv, head_dim));
}

void rope_qkv16_backward_cast_cuda(float *dqkv, uint16_t *dqkv16, const uint16_t *dq16, const uint16_t *dk16,
                                   const uint16_t *dv16, const float *cos, const float *sin, int rows, int n_heads,
                                   int n_kv, int head_dim, void *stream)
{
    struct emu_state *st = emu_state_of(stream, __func__);
    long nq = (long)rows * n_heads * head_dim, nk = (long)rows * n_kv * head_dim;
    MMUPT_CHECK(dqkv != NULL || dqkv16 != NULL);
    if (nq <= 0) return;
    DEV_OPT(dqkv, nq + 2 * nk), DEV_OPT(dqkv16, nq + 2 * nk), DEV(dq16, nq), DEV(dk16, nk), DEV(dv16, nk);
    DEV(cos, (long)rows * head_dim), DEV(sin, (long)rows * head_dim);
    EMU_RUN(rope_qkv16_backward_cast_cpu(dqkv, dqkv16, dq16, dk16, dv16, cos, sin, rows, n_heads, n_kv, head_dim));
}

void swiglu_forward_cuda(float *out, const float *gate, const float *up, long n, void *stream)
{
    struct emu_state *st = emu_state_of(stream, __func__);
    DEV(out, n), DEV(gate, n), DEV(up, n);
    EMU_RUN(swiglu_forward_cpu(out, gate, up, n));
}

void swiglu_forward_cast_cuda(float *out, uint16_t *out16, const float *gate, const float *up, long n, void *stream)
{
    struct emu_state *st = emu_state_of(stream, __func__);
    DEV_OPT(out, n), DEV(out16, n), DEV(gate, n), DEV(up, n);
    EMU_RUN(swiglu_forward_cast_cpu(out, out16, gate, up, n));
}

void swiglu_packed_forward_cast_cuda(float *out, uint16_t *out16, const float *gu, long rows, long inner, int pdl,
                                     void *stream)
{
    (void)pdl;
    struct emu_state *st = emu_state_of(stream, __func__);
    long n = rows * inner;
    DEV_OPT(out, n), DEV(out16, n), DEV(gu, 2 * n);
    EMU_RUN(swiglu_packed_forward_cast_cpu(out, out16, gu, rows, inner));
}

void swiglu_packed16_forward_cast_cuda(uint16_t *out16, const uint16_t *gu16, long rows, long inner, void *stream)
{
    struct emu_state *st = emu_state_of(stream, __func__);
    long n = rows * inner;
    DEV(out16, n), DEV(gu16, 2 * n);
    EMU_RUN(swiglu_packed16_forward_cast_cpu(out16, gu16, rows, inner));
}

void swiglu_packed16_backward16_cuda(uint16_t *dgu, const uint16_t *dout16, const uint16_t *gu16, long rows, long inner,
                                     void *stream)
{
    struct emu_state *st = emu_state_of(stream, __func__);
    long n = rows * inner;
    DEV(dgu, 2 * n), DEV(dout16, n), DEV(gu16, 2 * n);
    EMU_RUN(swiglu_packed16_backward16_cpu(dgu, dout16, gu16, rows, inner));
}

void swiglu_packed_backward_cuda(float *dgu, const float *dout, const float *gu, long rows, long inner, void *stream)
{
    struct emu_state *st = emu_state_of(stream, __func__);
    long n = rows * inner;
    DEV(dgu, 2 * n), DEV(dout, n), DEV(gu, 2 * n);
    EMU_RUN(swiglu_packed_backward_cpu(dgu, dout, gu, rows, inner));
}

void swiglu_packed_backward_bf16_cuda(uint16_t *dgu, const float *dout, const float *gu, long rows, long inner,
                                      void *stream)
{
    struct emu_state *st = emu_state_of(stream, __func__);
    long n = rows * inner;
    DEV(dgu, 2 * n), DEV(dout, n), DEV(gu, 2 * n);
    EMU_RUN(swiglu_packed_backward_bf16_cpu(dgu, dout, gu, rows, inner));
}

void swiglu_backward_cuda(float *dgate, float *dup, const float *dout, const float *gate, const float *up, long n,
                          void *stream)
{
    struct emu_state *st = emu_state_of(stream, __func__);
    DEV_OPT(dgate, n), DEV_OPT(dup, n), DEV(dout, n), DEV(gate, n), DEV(up, n);
    EMU_RUN(swiglu_backward_cpu(dgate, dup, dout, gate, up, n));
}

/* The one-input activations (GELU, quick GELU): out = f(x) and dx += f'(x) dout over n values. */
#define EMU_ACTIVATION(name)                                                                        \
    void name##_forward_cuda(float *out, const float *x, long n, void *stream)                      \
    {                                                                                               \
        struct emu_state *st = emu_state_of(stream, __func__);                                      \
        DEV(out, n), DEV(x, n);                                                                     \
        EMU_RUN(name##_forward_cpu(out, x, n));                                                     \
    }                                                                                               \
    void name##_backward_cuda(float *dx, const float *dout, const float *x, long n, void *stream)   \
    {                                                                                               \
        struct emu_state *st = emu_state_of(stream, __func__);                                      \
        DEV(dx, n), DEV(dout, n), DEV(x, n);                                                        \
        EMU_RUN(name##_backward_cpu(dx, dout, x, n));                                               \
    }
EMU_ACTIVATION(gelu)
EMU_ACTIVATION(quick_gelu)

/* Each indexed row [index[i] * cols, + cols) of base (index: a host array) must lie in device
 * memory; the allocations are registered for the caller's run. */
static void emu_check_rows_at(struct emu_state *st, const char *who, const float *base, const int64_t *index, int n,
                              long cols)
{
    for (int i = 0; i < n; i++) {
        if (index[i] < 0) MMUPT_DIE("emu: %s: negative index %lld at %d", who, (long long)index[i], i);
        emu_dev(st, who, "an indexed row", base + index[i] * cols, (size_t)cols * sizeof *base);
    }
}

/* The embedding's table extent is not an argument: each looked-up row (ids: device memory) must
 * lie inside its allocation. */
static void emu_check_rows(struct emu_state *st, const char *who, const int64_t *ids, const float *table, int n,
                           int dim)
{
    if (n <= 0) return;
    emu_graph_note(st, who, table); /* the rows depend on data: only the table's address is the graph's */
    if (st->graph == EMU_GRAPH_RECORDING) return; /* checked when the work runs (each replay) */
    int64_t *h = mmupt_xmalloc((size_t)n * sizeof *h);
    emu_dev(st, who, "ids", ids, (size_t)n * sizeof *ids);
    EMU_RUN(memcpy(h, ids, (size_t)n * sizeof *h));
    emu_check_rows_at(st, who, table, h, n, dim);
    free(h);
}

void embedding_forward_cuda(float *out, const int64_t *ids, const float *table, int n, int dim, void *stream)
{
    struct emu_state *st = emu_state_of(stream, __func__);
    emu_check_rows(st, __func__, ids, table, n, dim);
    DEV(out, (long)n * dim), DEV(ids, n);
    EMU_RUN(embedding_forward_cpu(out, ids, table, n, dim));
}

void embedding_backward_cuda(float *dtable, const float *dout, const int64_t *ids, int n, int dim, void *stream)
{
    struct emu_state *st = emu_state_of(stream, __func__);
    emu_check_rows(st, __func__, ids, dtable, n, dim);
    DEV(dout, (long)n * dim), DEV(ids, n);
    EMU_RUN(embedding_backward_cpu(dtable, dout, ids, n, dim));
}

static void emu_attention_args(struct emu_state *st, const char *who, const int *seg, int n_seg, int n_heads, int n_kv,
                               int hd, long *q_n, long *kv_n)
{
    emu_host(st, who, "seg", seg);
    long T = seg[n_seg];
    *q_n = T * n_heads * hd;
    *kv_n = T * n_kv * hd;
}

void attention_forward_cuda(float *out, float *probs, const float *q, const float *k, const float *v, const int *seg,
                            int n_seg, int n_heads, int n_kv, int hd, int causal, const struct gpu_blas *blas)
{
    struct emu_state *st = emu_state_of((void *)blas, __func__);
    long qn, kvn;
    emu_attention_args(st, __func__, seg, n_seg, n_heads, n_kv, hd, &qn, &kvn);
    DEV(out, qn), DEV(q, qn), DEV(k, kvn), DEV(v, kvn), DEV(probs, attention_probs_size(seg, n_seg, n_heads));
    EMU_RUN(attention_forward_cpu(out, probs, q, k, v, seg, n_seg, n_heads, n_kv, hd, causal));
}

void attention_backward_cuda(float *dq, float *dk, float *dv, const float *dout, const float *probs, const float *q,
                             const float *k, const float *v, const int *seg, int n_seg, int n_heads, int n_kv, int hd,
                             int causal, const struct gpu_blas *blas)
{
    struct emu_state *st = emu_state_of((void *)blas, __func__);
    long qn, kvn;
    emu_attention_args(st, __func__, seg, n_seg, n_heads, n_kv, hd, &qn, &kvn);
    DEV_OPT(dq, qn), DEV_OPT(dk, kvn), DEV_OPT(dv, kvn), DEV(dout, qn), DEV(q, qn), DEV(k, kvn), DEV(v, kvn);
    DEV(probs, attention_probs_size(seg, n_seg, n_heads));
    EMU_RUN(attention_backward_cpu(dq, dk, dv, dout, probs, q, k, v, seg, n_seg, n_heads, n_kv, hd, causal));
}

/* The emulator has no TF32: its twins are the fp32 references (the bf16 model's tolerances cover it). */
void attention_forward_tf32_cuda(float *out, float *probs, const float *q, const float *k, const float *v,
                                 const int *seg, int n_seg, int n_heads, int n_kv, int hd, int causal,
                                 const struct gpu_blas *blas)
{
    attention_forward_cuda(out, probs, q, k, v, seg, n_seg, n_heads, n_kv, hd, causal, blas);
}

void attention_backward_tf32_cuda(float *dq, float *dk, float *dv, const float *dout, const float *probs,
                                  const float *q, const float *k, const float *v, const int *seg, int n_seg,
                                  int n_heads, int n_kv, int hd, int causal, const struct gpu_blas *blas)
{
    attention_backward_cuda(dq, dk, dv, dout, probs, q, k, v, seg, n_seg, n_heads, n_kv, hd, causal, blas);
}

void attention_flash_forward_cuda(float *out, float *lse, const float *q, const float *k, const float *v,
                                  const int *seg, int n_seg, int n_heads, int n_kv, int hd, int causal,
                                  const struct gpu_blas *blas)
{
    struct emu_state *st = emu_state_of((void *)blas, __func__);
    long qn, kvn;
    emu_attention_args(st, __func__, seg, n_seg, n_heads, n_kv, hd, &qn, &kvn);
    MMUPT_CHECK(attention_flash_supported(hd));
    DEV(out, qn), DEV(lse, (long)seg[n_seg] * n_heads), DEV(q, qn), DEV(k, kvn), DEV(v, kvn);
    EMU_RUN(attention_flash_forward_cpu(out, lse, q, k, v, seg, n_seg, n_heads, n_kv, hd, causal));
}

void attention_flash_backward_cuda(float *dq, float *dk, float *dv, const float *dout, const float *out,
                                   const float *lse, const float *q, const float *k, const float *v, const int *seg,
                                   int n_seg, int n_heads, int n_kv, int hd, int causal, const struct gpu_blas *blas)
{
    struct emu_state *st = emu_state_of((void *)blas, __func__);
    long qn, kvn;
    emu_attention_args(st, __func__, seg, n_seg, n_heads, n_kv, hd, &qn, &kvn);
    MMUPT_CHECK(attention_flash_supported(hd));
    DEV_OPT(dq, qn), DEV_OPT(dk, kvn), DEV_OPT(dv, kvn), DEV(dout, qn), DEV(out, qn), DEV(q, qn), DEV(k, kvn);
    DEV(v, kvn), DEV(lse, (long)seg[n_seg] * n_heads);
    EMU_RUN(attention_flash_backward_cpu(dq, dk, dv, dout, out, lse, q, k, v, seg, n_seg, n_heads, n_kv, hd, causal));
}

/* cuDNN's SDPA, emulated by its CPU reference: every shape attention_sdpa_shape_ok takes (the
 * emulator has no cuDNN to refuse one, nor a plan cache to fill). */
int attention_sdpa_supported(const int *seg, int n_seg, int n_heads, int n_kv, int hd, int causal,
                             const struct gpu_blas *blas)
{
    (void)causal, (void)blas;
    return attention_sdpa_shape_ok(seg, n_seg, n_heads, n_kv, hd);
}

void attention_sdpa_forward_cuda(uint16_t *o16, float *stats, const uint16_t *q16, const uint16_t *k16,
                                 const uint16_t *v16, const int *seg, int n_seg, int n_heads, int n_kv, int hd,
                                 int causal, const struct gpu_blas *blas)
{
    struct emu_state *st = emu_state_of((void *)blas, __func__);
    long qn, kvn;
    emu_attention_args(st, __func__, seg, n_seg, n_heads, n_kv, hd, &qn, &kvn);
    DEV(o16, qn), DEV(stats, (long)seg[n_seg] * n_heads), DEV(q16, qn), DEV(k16, kvn), DEV(v16, kvn);
    EMU_RUN(attention_sdpa_forward_cpu(o16, stats, q16, k16, v16, seg, n_seg, n_heads, n_kv, hd, causal));
}

void attention_sdpa_backward_cuda(uint16_t *dq16, uint16_t *dk16, uint16_t *dv16, const uint16_t *dout16,
                                  const uint16_t *o16, const float *stats, const uint16_t *q16, const uint16_t *k16,
                                  const uint16_t *v16, const int *seg, int n_seg, int n_heads, int n_kv, int hd,
                                  int causal, const struct gpu_blas *blas)
{
    struct emu_state *st = emu_state_of((void *)blas, __func__);
    long qn, kvn;
    emu_attention_args(st, __func__, seg, n_seg, n_heads, n_kv, hd, &qn, &kvn);
    DEV(dq16, qn), DEV(dk16, kvn), DEV(dv16, kvn), DEV(dout16, qn), DEV(o16, qn), DEV(q16, qn), DEV(k16, kvn);
    DEV(v16, kvn), DEV(stats, (long)seg[n_seg] * n_heads);
    EMU_RUN(attention_sdpa_backward_cpu(dq16, dk16, dv16, dout16, o16, stats, q16, k16, v16, seg, n_seg, n_heads, n_kv,
                                        hd, causal));
}

/* A KV cache layer's arguments (elem: its element size, fp32 or bf16) and the rows' slot and
 * position arrays: all device memory; the reference checks the positions against the cache. */
static void emu_cache_args(struct emu_state *st, const char *who, const void *cache_k, const void *cache_v, size_t elem,
                           long cache, const int *slot, const int *pos, int n)
{
    emu_dev(st, who, "cache_k", cache_k, (size_t)cache * elem);
    emu_dev(st, who, "cache_v", cache_v, (size_t)cache * elem);
    emu_dev(st, who, "slot", slot, (size_t)n * sizeof *slot);
    emu_dev(st, who, "pos", pos, (size_t)n * sizeof *pos);
}

/* Decode attention's split counters (may be NULL): n device values, which must be zero when a call
 * starts (the kernel leaves them so; the reference needs none). Checked inside EMU_RUN. */
static void emu_counters(struct emu_state *st, const char *who, const unsigned *count, long n)
{
    if (count) emu_dev(st, who, "count", count, (size_t)n * sizeof *count);
}

static void emu_counters_zero(const char *who, const unsigned *count, long n)
{
    for (long i = 0; count && i < n; i++)
        if (count[i]) MMUPT_DIE("emu: %s: count[%ld] is %u: the counters must be zero when a call starts", who, i,
                                count[i]);
}

int attention_decode_stage_fits(int n_heads, int n_kv, int hd, int max_len, int bf16)
{
    (void)n_heads, (void)n_kv, (void)hd, (void)max_len, (void)bf16;
    return 0; /* the emulator keeps no rows anywhere but the cache */
}

void attention_decode_cuda(float *out, const float *q, const float *cache_k, const float *cache_v, const int *slot,
                           const int *pos, int n, int n_slots, int max_len, int n_heads, int n_kv, int hd,
                           float *scores, unsigned *count, int flags, void *stream)
{
    (void)flags; /* where the device keeps the rows, how it launches: the reference's result either way */
    struct emu_state *st = emu_state_of(stream, __func__);
    if (n <= 0) return;
    DEV(out, (long)n * n_heads * hd), DEV(q, (long)n * n_heads * hd);
    emu_cache_args(st, __func__, cache_k, cache_v, sizeof *cache_k, (long)n_slots * max_len * n_kv * hd, slot, pos, n);
    DEV(scores, (long)n * n_heads * max_len); /* the twin's scratch (the reference needs none) */
    emu_counters(st, __func__, count, (long)n * n_kv);
    EMU_RUN(emu_counters_zero(__func__, count, (long)n * n_kv);
            attention_decode_cpu(out, q, cache_k, cache_v, slot, pos, n, n_slots, max_len, n_heads, n_kv, hd));
}

void attention_decode_bf16_cuda(float *out, const float *q, const uint16_t *cache_k, const uint16_t *cache_v,
                                const int *slot, const int *pos, int n, int n_slots, int max_len, int n_heads,
                                int n_kv, int hd, float *scores, unsigned *count, int flags, void *stream)
{
    (void)flags;
    struct emu_state *st = emu_state_of(stream, __func__);
    if (n <= 0) return;
    DEV(out, (long)n * n_heads * hd), DEV(q, (long)n * n_heads * hd);
    emu_cache_args(st, __func__, cache_k, cache_v, sizeof *cache_k, (long)n_slots * max_len * n_kv * hd, slot, pos, n);
    DEV(scores, (long)n * n_heads * max_len);
    emu_counters(st, __func__, count, (long)n * n_kv);
    EMU_RUN(emu_counters_zero(__func__, count, (long)n * n_kv);
            attention_decode_bf16_cpu(out, q, cache_k, cache_v, slot, pos, n, n_slots, max_len, n_heads, n_kv, hd));
}

void attention_decode_bf16_cast_cuda(float *out, uint16_t *out16, const float *q, const uint16_t *cache_k,
                                     const uint16_t *cache_v, const int *slot, const int *pos, int n, int n_slots,
                                     int max_len, int n_heads, int n_kv, int hd, float *scores, unsigned *count,
                                     int flags, void *stream)
{
    (void)flags;
    struct emu_state *st = emu_state_of(stream, __func__);
    if (n <= 0) return;
    long m = (long)n * n_heads * hd;
    DEV(out, m), DEV(out16, m), DEV(q, m);
    emu_cache_args(st, __func__, cache_k, cache_v, sizeof *cache_k, (long)n_slots * max_len * n_kv * hd, slot, pos, n);
    DEV(scores, (long)n * n_heads * max_len);
    emu_counters(st, __func__, count, (long)n * n_kv);
    EMU_RUN(emu_counters_zero(__func__, count, (long)n * n_kv);
            attention_decode_bf16_cast_cpu(out, out16, q, cache_k, cache_v, slot, pos, n, n_slots, max_len, n_heads,
                                           n_kv, hd));
}

void kv_append_cuda(float *cache_k, float *cache_v, const float *k, const float *v, const int *slot, const int *pos,
                    int n, int n_slots, int max_len, int kvd, void *stream)
{
    struct emu_state *st = emu_state_of(stream, __func__);
    if (n <= 0) return;
    DEV(k, (long)n * kvd), DEV(v, (long)n * kvd);
    emu_cache_args(st, __func__, cache_k, cache_v, sizeof *cache_k, (long)n_slots * max_len * kvd, slot, pos, n);
    EMU_RUN(kv_append_cpu(cache_k, cache_v, k, v, slot, pos, n, n_slots, max_len, kvd));
}

void kv_append_bf16_cuda(uint16_t *cache_k, uint16_t *cache_v, const float *k, const float *v, const int *slot,
                         const int *pos, int n, int n_slots, int max_len, int kvd, void *stream)
{
    struct emu_state *st = emu_state_of(stream, __func__);
    if (n <= 0) return;
    DEV(k, (long)n * kvd), DEV(v, (long)n * kvd);
    emu_cache_args(st, __func__, cache_k, cache_v, sizeof *cache_k, (long)n_slots * max_len * kvd, slot, pos, n);
    EMU_RUN(kv_append_bf16_cpu(cache_k, cache_v, k, v, slot, pos, n, n_slots, max_len, kvd));
}

void attention_decode_qkv_bf16_cast_cuda(float *out, uint16_t *out16, const float *qkv, const float *bq,
                                         const float *bk, const float *bv, const float *cos, const float *sin,
                                         uint16_t *cache_k, uint16_t *cache_v, const int *slot, const int *pos, int n,
                                         int n_slots, int max_len, int n_heads, int n_kv, int hd, float *scores,
                                         unsigned *count, int flags, void *stream)
{
    (void)flags;
    struct emu_state *st = emu_state_of(stream, __func__);
    if (n <= 0) return;
    long qd = (long)n_heads * hd, kvd = (long)n_kv * hd, m = n * qd;
    DEV(out, m), DEV(out16, m), DEV(qkv, n * (qd + 2 * kvd)), DEV_OPT(bq, qd), DEV_OPT(bk, kvd), DEV_OPT(bv, kvd);
    DEV(cos, (long)n * hd), DEV(sin, (long)n * hd);
    emu_cache_args(st, __func__, cache_k, cache_v, sizeof *cache_k, (long)n_slots * max_len * kvd, slot, pos, n);
    DEV(scores, (long)n * n_heads * max_len);
    emu_counters(st, __func__, count, (long)n * n_kv);
    EMU_RUN(emu_counters_zero(__func__, count, (long)n * n_kv);
            attention_decode_qkv_bf16_cast_cpu(out, out16, qkv, bq, bk, bv, cos, sin, cache_k, cache_v, slot, pos, n,
                                               n_slots, max_len, n_heads, n_kv, hd));
}

void qkv_rope_append_bf16_cuda(float *q, const float *qkv, const float *bq, const float *bk, const float *bv,
                               const float *cos, const float *sin, uint16_t *cache_k, uint16_t *cache_v,
                               const int *slot, const int *pos, int n, int n_heads, int n_kv, int hd, int n_slots,
                               int max_len, void *stream)
{
    struct emu_state *st = emu_state_of(stream, __func__);
    if (n <= 0) return;
    long qd = (long)n_heads * hd, kvd = (long)n_kv * hd;
    DEV(q, n * qd), DEV(qkv, n * (qd + 2 * kvd)), DEV_OPT(bq, qd), DEV_OPT(bk, kvd), DEV_OPT(bv, kvd);
    DEV(cos, (long)n * hd), DEV(sin, (long)n * hd);
    emu_cache_args(st, __func__, cache_k, cache_v, sizeof *cache_k, (long)n_slots * max_len * kvd, slot, pos, n);
    EMU_RUN(qkv_rope_append_bf16_cpu(q, qkv, bq, bk, bv, cos, sin, cache_k, cache_v, slot, pos, n, n_heads, n_kv, hd,
                                     n_slots, max_len));
}

void logprob_forward_stats_cuda(float *logp, float *entropy, float *row_max, double *row_sum, const float *logits,
                                const int64_t *targets, int rows, int vocab, float tau, void *stream)
{
    struct emu_state *st = emu_state_of(stream, __func__);
    DEV(logp, rows), DEV_OPT(entropy, rows), DEV_OPT(row_max, rows), DEV_OPT(row_sum, rows);
    DEV(logits, (long)rows * vocab), DEV(targets, rows);
    EMU_RUN(logprob_forward_stats_cpu(logp, entropy, row_max, row_sum, logits, targets, rows, vocab, tau));
}

void logprob_forward_cuda(float *logp, float *entropy, const float *logits, const int64_t *targets, int rows,
                          int vocab, float tau, void *stream)
{
    logprob_forward_stats_cuda(logp, entropy, NULL, NULL, logits, targets, rows, vocab, tau, stream);
}

void logprob_backward_cuda(float *dlogits, const float *dlogp, const float *logits, const int64_t *targets, int rows,
                           int vocab, float tau, void *stream)
{
    struct emu_state *st = emu_state_of(stream, __func__);
    DEV(dlogits, (long)rows * vocab), DEV(dlogp, rows), DEV(logits, (long)rows * vocab), DEV(targets, rows);
    EMU_RUN(logprob_backward_cpu(dlogits, dlogp, logits, targets, rows, vocab, tau));
}

void logprob_backward_bf16_stats_cuda(uint16_t *dlogits, const float *dlogp, const float *logits,
                                      const int64_t *targets, const float *row_max, const double *row_sum, int rows,
                                      int vocab, float tau, void *stream)
{
    struct emu_state *st = emu_state_of(stream, __func__);
    DEV(dlogits, (long)rows * vocab), DEV(dlogp, rows), DEV(logits, (long)rows * vocab), DEV(targets, rows);
    DEV_OPT(row_max, rows), DEV_OPT(row_sum, rows);
    EMU_RUN(logprob_backward_bf16_stats_cpu(dlogits, dlogp, logits, targets, row_max, row_sum, rows, vocab, tau));
}

void logprob_backward_bf16_cuda(uint16_t *dlogits, const float *dlogp, const float *logits, const int64_t *targets,
                                int rows, int vocab, float tau, void *stream)
{
    logprob_backward_bf16_stats_cuda(dlogits, dlogp, logits, targets, NULL, NULL, rows, vocab, tau, stream);
}

void matmul_forward_cuda(float *out, const float *inp, const float *weight, const float *bias, int M, int K, int N,
                         const struct gpu_blas *blas)
{
    struct emu_state *st = emu_state_of((void *)blas, __func__);
    DEV(out, (long)M * N), DEV(inp, (long)M * K), DEV(weight, (long)N * K), DEV_OPT(bias, N);
    EMU_RUN(matmul_forward_cpu(out, inp, weight, bias, M, K, N));
}

void matmul_backward_cuda(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                          const float *weight, int M, int K, int N, const struct gpu_blas *blas)
{
    struct emu_state *st = emu_state_of((void *)blas, __func__);
    DEV_OPT(dinp, (long)M * K), DEV_OPT(dweight, (long)N * K), DEV_OPT(dbias, N), DEV(dout, (long)M * N);
    DEV(inp, (long)M * K), DEV(weight, (long)N * K);
    EMU_RUN(matmul_backward_cpu(dinp, dweight, dbias, dout, inp, weight, M, K, N));
}

void cast_bf16_cuda(uint16_t *out, const float *x, long n, void *stream)
{
    struct emu_state *st = emu_state_of(stream, __func__);
    DEV(out, n), DEV(x, n);
    EMU_RUN(cast_bf16_cpu(out, x, n));
}

void cast_bf16_sr_cuda(uint16_t *out, const float *x, long n, uint64_t seed, void *stream)
{
    struct emu_state *st = emu_state_of(stream, __func__);
    DEV(out, n), DEV(x, n);
    EMU_RUN(cast_bf16_sr_cpu(out, x, n, seed));
}

void add_bf16_cuda(float *y, const uint16_t *x, long n, void *stream)
{
    struct emu_state *st = emu_state_of(stream, __func__);
    DEV(y, n), DEV(x, n);
    EMU_RUN(add_bf16_cpu(y, x, n));
}

/* A bf16 operand the caller says is x rounded (cast_done, inp16): fatal unless every value is, the
 * bug being a stale or foreign rounding (emulated memory is open, so the values can be compared). */
static void emu_check_rounded(const char *who, const char *what, const uint16_t *x16, const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (x16[i] != bf16_from_f32(x[i]))
            MMUPT_DIE("emu: %s: %s, but value %zu of %zu is not this input rounded to bf16 (%p)", who, what, i, n,
                      (const void *)x);
}

/* The GEMM's fp32 input: inp, or - where the caller keeps only its bf16 rounding (inp NULL) - that
 * rounding widened into *tmp (the reference rounds it again to the same values). */
static const float *emu_input(const float *inp, const uint16_t *inp16, size_t n, float **tmp)
{
    *tmp = NULL;
    if (inp) return inp;
    *tmp = bf16_widened(inp16, (long)n);
    return *tmp;
}

/* A bf16 forward's operand as its CUDA twin leaves the scratch (n values; 0 for an empty product):
 * cast_done - checked to be inp's rounding when inp is given - or rounded from inp now. Returns the
 * reference's fp32 input of mk = M * K values (emu_input: inp, or the scratch widened into *tmp). */
static const float *emu_forward_input(const char *who, const float *inp, uint16_t *scratch, int cast_done, size_t n,
                                      size_t mk, float **tmp)
{
    if (cast_done && inp) emu_check_rounded(who, "cast_done", scratch, inp, n);
    else if (!cast_done) cast_bf16_cpu(scratch, inp, (long)n);
    return emu_input(inp, scratch, mk, tmp);
}

/* The scratch gets what the CUDA twin writes there (a later cast_done or inp16 is checked against
 * it); the reference itself rounds into its own buffers. inp may be NULL with cast_done. */
void matmul_forward_bf16_cuda(float *out, const float *inp, const uint16_t *weight, const float *bias, int M, int K,
                              int N, uint16_t *scratch, int cast_done, const struct gpu_blas *blas)
{
    struct emu_state *st = emu_state_of((void *)blas, __func__);
    MMUPT_CHECK(inp || cast_done);
    DEV(out, (long)M * N), DEV_OPT(inp, (long)M * K), DEV(weight, (long)N * K), DEV_OPT(bias, N);
    DEV(scratch, (long)M * K);
    size_t n = M > 0 && N > 0 && K > 0 ? (size_t)M * K : 0;
    EMU_RUN({
        float *tmp;
        const float *x = emu_forward_input(__func__, inp, scratch, cast_done, n, (size_t)M * K, &tmp);
        matmul_forward_bf16_cpu(out, x, weight, bias, M, K, N);
        free(tmp);
    });
}

void matmul_forward_bf16_res_cuda(float *out, const float *res, const float *inp, const uint16_t *weight, int M, int K,
                                  int N, uint16_t *scratch, int cast_done, const struct gpu_blas *blas)
{
    struct emu_state *st = emu_state_of((void *)blas, __func__);
    MMUPT_CHECK((inp || cast_done) && out != res);
    DEV(out, (long)M * N), DEV(res, (long)M * N), DEV_OPT(inp, (long)M * K), DEV(weight, (long)N * K);
    DEV(scratch, (long)M * K);
    size_t n = M > 0 && N > 0 && K > 0 ? (size_t)M * K : 0;
    EMU_RUN({
        float *tmp;
        const float *x = emu_forward_input(__func__, inp, scratch, cast_done, n, (size_t)M * K, &tmp);
        matmul_forward_bf16_res_cpu(out, res, x, weight, M, K, N);
        free(tmp);
    });
}

void matmul_forward_bf16_out16_cuda(uint16_t *out16, const float *inp, const uint16_t *weight, int M, int K, int N,
                                    uint16_t *scratch, int cast_done, const struct gpu_blas *blas)
{
    struct emu_state *st = emu_state_of((void *)blas, __func__);
    MMUPT_CHECK(inp || cast_done);
    DEV(out16, (long)M * N), DEV_OPT(inp, (long)M * K), DEV(weight, (long)N * K), DEV(scratch, (long)M * K);
    size_t n = M > 0 && N > 0 && K > 0 ? (size_t)M * K : 0;
    EMU_RUN({
        float *tmp;
        const float *x = emu_forward_input(__func__, inp, scratch, cast_done, n, (size_t)M * K, &tmp);
        matmul_forward_bf16_out16_cpu(out16, x, weight, M, K, N);
        free(tmp);
    });
}

/* A beta of 0: the gradient assigned, not accumulated - zeroed first, and the reference adds to it
 * (dinp [M, K], dweight [N, K]). */
static void emu_beta(float *dinp, float dinp_beta, float *dweight, float dweight_beta, int M, int K, int N)
{
    MMUPT_CHECK((dinp_beta == 0.0f || dinp_beta == 1.0f) && (dweight_beta == 0.0f || dweight_beta == 1.0f));
    if (dinp && dinp_beta == 0.0f && M > 0 && K > 0) memset(dinp, 0, (size_t)M * K * sizeof *dinp);
    if (dweight && dweight_beta == 0.0f && N > 0 && K > 0) memset(dweight, 0, (size_t)N * K * sizeof *dweight);
}

void matmul_backward_bf16_cuda(float *dinp, float dinp_beta, float *dweight, float dweight_beta, float *dbias,
                               const float *dout, const float *inp, const uint16_t *inp16, const uint16_t *weight,
                               int M, int K, int N, uint16_t *scratch, const struct gpu_blas *blas)
{
    struct emu_state *st = emu_state_of((void *)blas, __func__);
    MMUPT_CHECK(!dweight || inp || inp16);
    DEV_OPT(dinp, (long)M * K), DEV_OPT(dweight, (long)N * K), DEV_OPT(dbias, N), DEV(dout, (long)M * N);
    if (dweight) DEV_OPT(inp, (long)M * K), DEV_OPT(inp16, (long)M * K);
    if (dinp) DEV(weight, (long)N * K);
    int gemms = M > 0 && N > 0 && K > 0 && (dinp || dweight), cast_x = dweight && !inp16;
    if (gemms) DEV(scratch, cast_x ? matmul_bf16_backward_scratch(M, K, N) : (long)M * N);
    EMU_RUN({
        float *tmp = NULL;
        if (gemms && dweight && inp16 && inp) emu_check_rounded(__func__, "inp16", inp16, inp, (size_t)M * K);
        if (gemms) cast_bf16_cpu(scratch, dout, (long)M * N);
        if (gemms && cast_x) cast_bf16_cpu(scratch + matmul_bf16_backward_x_offset(M, N), inp, (long)M * K);
        emu_beta(dinp, dinp_beta, dweight, dweight_beta, M, K, N);
        const float *x = dweight ? emu_input(inp, inp16, (size_t)M * K, &tmp) : inp;
        matmul_backward_bf16_cpu(dinp, dweight, dbias, dout, x, weight, M, K, N);
        free(tmp);
    });
}

void matmul_backward_bf16_dy_cuda(float *dinp, float dinp_beta, float *dweight, float dweight_beta,
                                  const uint16_t *dout16, const float *inp, const uint16_t *inp16,
                                  const uint16_t *weight, int M, int K, int N, uint16_t *scratch,
                                  const struct gpu_blas *blas)
{
    struct emu_state *st = emu_state_of((void *)blas, __func__);
    MMUPT_CHECK(!dweight || inp || inp16);
    DEV_OPT(dinp, (long)M * K), DEV_OPT(dweight, (long)N * K), DEV(dout16, (long)M * N);
    int cast_x = dweight && !inp16 && M > 0 && N > 0 && K > 0;
    if (dweight) DEV_OPT(inp, (long)M * K), DEV_OPT(inp16, (long)M * K);
    if (cast_x) DEV(scratch, (long)M * K);
    if (dinp) DEV(weight, (long)N * K);
    EMU_RUN({
        float *tmp = NULL;
        if (dweight && inp16 && inp && N > 0) emu_check_rounded(__func__, "inp16", inp16, inp, (size_t)M * K);
        if (cast_x) cast_bf16_cpu(scratch, inp, (long)M * K);
        emu_beta(dinp, dinp_beta, dweight, dweight_beta, M, K, N);
        const float *x = dweight ? emu_input(inp, inp16, (size_t)M * K, &tmp) : inp;
        matmul_backward_bf16_dy_cpu(dinp, dweight, dout16, x, weight, M, K, N);
        free(tmp);
    });
}

void matmul_backward_bf16_dy16_cuda(uint16_t *dinp16, float *dweight, float dweight_beta, const uint16_t *dout16,
                                    const uint16_t *inp16, const uint16_t *weight, int M, int K, int N,
                                    const struct gpu_blas *blas)
{
    struct emu_state *st = emu_state_of((void *)blas, __func__);
    MMUPT_CHECK(!dweight || inp16);
    DEV_OPT(dinp16, (long)M * K), DEV_OPT(dweight, (long)N * K), DEV(dout16, (long)M * N);
    if (dweight) DEV(inp16, (long)M * K);
    if (dinp16) DEV(weight, (long)N * K);
    EMU_RUN({
        emu_beta(NULL, 0.0f, dweight, dweight_beta, M, K, N);
        matmul_backward_bf16_dy16_cpu(dinp16, dweight, dout16, inp16, weight, M, K, N);
    });
}

void adamw_update_cuda(float *params, const float *grad, float *m, float *v, long n, double lr, double beta1,
                       double beta2, double eps, double weight_decay, double grad_scale, int64_t t, void *stream)
{
    struct emu_state *st = emu_state_of(stream, __func__);
    DEV(params, n), DEV(grad, n), DEV(m, n), DEV(v, n);
    EMU_RUN(adamw_update_cpu(params, grad, m, v, n, lr, beta1, beta2, eps, weight_decay, grad_scale, t));
}

void residual_forward_cuda(float *out, const float *a, const float *b, long n, void *stream)
{
    struct emu_state *st = emu_state_of(stream, __func__);
    DEV(out, n), DEV(a, n), DEV(b, n);
    EMU_RUN(residual_forward_cpu(out, a, b, n));
}

void gather_rows_cuda(float *dst, const float *src, const int64_t *index, int n, long cols, void *stream)
{
    struct emu_state *st = emu_state_of(stream, __func__);
    if (n <= 0 || cols <= 0) return;
    emu_host(st, __func__, "index", index);
    emu_check_rows_at(st, __func__, src, index, n, cols);
    DEV(dst, (long)n * cols);
    EMU_RUN(gather_rows_cpu(dst, src, index, n, cols));
}

void scatter_rows_cuda(float *dst, const float *src, const int64_t *index, int n, long cols, void *stream)
{
    struct emu_state *st = emu_state_of(stream, __func__);
    if (n <= 0 || cols <= 0) return;
    emu_host(st, __func__, "index", index);
    emu_check_rows_at(st, __func__, dst, index, n, cols);
    DEV(src, (long)n * cols);
    EMU_RUN(scatter_rows_cpu(dst, src, index, n, cols));
}

double sumsq_cuda(const float *x, long n, double scale, void *stream)
{
    struct emu_state *st = emu_state_of(stream, __func__);
    emu_not_in_graph(st, __func__); /* it synchronises to return the sum */
    if (n <= 0) return 0.0;
    DEV(x, n);
    double ss = 0.0;
    EMU_RUN(ss = sumsq_cpu(x, n, scale));
    return ss;
}

int grpo_loss_cuda(const float *logp, const float *old_logp, const float *ref_logp, const float *adv,
                   const float *mask, int64_t n, const struct grpo_params *p, float *dlogp, struct grpo_metrics *m,
                   void *stream)
{
    struct emu_state *st = emu_state_of(stream, __func__);
    DEV(logp, n), DEV(old_logp, n), DEV_OPT(ref_logp, n), DEV(adv, n), DEV(mask, n), DEV(dlogp, n);
    emu_host(st, __func__, "p", p), emu_host(st, __func__, "m", m);
    int rc = -1; /* not run while recording a graph, which emu_host above forbids anyway */
    EMU_RUN(rc = grpo_loss_cpu(logp, old_logp, ref_logp, adv, mask, n, p, dlogp, m));
    return rc;
}

void sample_tokens_cuda(int32_t *tokens, float *logp, const float *logits, int rows, int V,
                        const struct sample_params *p, const double *u, void *stream)
{
    struct emu_state *st = emu_state_of(stream, __func__);
    if (rows <= 0) return;
    DEV(tokens, rows), DEV_OPT(logp, rows), DEV(logits, (long)rows * (V > 0 ? V : 0));
    emu_host(st, __func__, "p", p), emu_host(st, __func__, "u", u);
    emu_host(st, __func__, "p->bias_ids", p->bias_ids), emu_host(st, __func__, "p->bias", p->bias);
    EMU_RUN(sample_tokens_cpu(tokens, logp, logits, rows, V, p, u));
}
