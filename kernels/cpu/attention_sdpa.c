/* Attention as cuDNN's fused SDPA graphs compute it (MMUPT_ATTENTION=cudnn: src/gpu/sdpa_cudnn.c),
 * CPU reference. The same attention as attention_flash.c - causal or not within each segment, GQA,
 * scores scale q . k in fp32, one log-sum-exp a row kept instead of the probabilities (stats,
 * [T, n_heads], attention_flash's lse) - but with cuDNN's operand types: q, k, v, out and every
 * gradient are bf16 (uint16_t), stats fp32. Layouts: q16, o16, dq16 [T, n_heads, hd]; k16, v16, dk16,
 * dv16 [T, n_kv, hd] (token-major, as the model's activations; cuDNN reads them as ragged batches).
 *
 * The backward ASSIGNS dq16, dk16, dv16 (cuDNN writes its outputs; the caller adds them where it
 * accumulates). It is attention_flash_backward_cpu's gradient of the widened operands, rounded to
 * bf16 once: cuDNN's own roundings inside the fused kernels (p and dS to bf16 before their second
 * products) are within the tests' bf16 tolerances, not reproduced. */
#include <stdlib.h>
#include <string.h>

#include "mmupt/err.h"
#include "mmupt/kernels.h"

int attention_sdpa_shape_ok(const int *seg, int n_seg, int n_heads, int n_kv, int hd)
{
    if (n_seg < 0 || seg[0] != 0) return 0;
    for (int s = 0; s < n_seg; s++)
        if (seg[s + 1] < seg[s]) return 0;
    return n_heads > 0 && n_kv > 0 && n_heads % n_kv == 0 && hd >= 8 && hd <= 128 && hd % 8 == 0;
}

void attention_sdpa_forward_cpu(uint16_t *o16, float *stats, const uint16_t *q16, const uint16_t *k16,
                                const uint16_t *v16, const int *seg, int n_seg, int n_heads, int n_kv, int hd,
                                int causal)
{
    MMUPT_CHECK(attention_sdpa_shape_ok(seg, n_seg, n_heads, n_kv, hd));
    long T = seg[n_seg], nq = T * n_heads * hd, nk = T * n_kv * hd;
    float *q = bf16_widened(q16, nq), *k = bf16_widened(k16, nk), *v = bf16_widened(v16, nk);
    float *out = mmupt_xmalloc((size_t)(nq ? nq : 1) * sizeof *out);
    attention_flash_forward_cpu(out, stats, q, k, v, seg, n_seg, n_heads, n_kv, hd, causal);
    cast_bf16_cpu(o16, out, nq);
    free(q), free(k), free(v), free(out);
}

void attention_sdpa_backward_cpu(uint16_t *dq16, uint16_t *dk16, uint16_t *dv16, const uint16_t *dout16,
                                 const uint16_t *o16, const float *stats, const uint16_t *q16, const uint16_t *k16,
                                 const uint16_t *v16, const int *seg, int n_seg, int n_heads, int n_kv, int hd,
                                 int causal)
{
    MMUPT_CHECK(attention_sdpa_shape_ok(seg, n_seg, n_heads, n_kv, hd));
    long T = seg[n_seg], nq = T * n_heads * hd, nk = T * n_kv * hd;
    float *q = bf16_widened(q16, nq), *k = bf16_widened(k16, nk), *v = bf16_widened(v16, nk);
    float *out = bf16_widened(o16, nq), *dout = bf16_widened(dout16, nq);
    float *dq = mmupt_xcalloc((size_t)(nq ? nq : 1), sizeof *dq);
    float *dk = mmupt_xcalloc((size_t)(nk ? nk : 1), sizeof *dk);
    float *dv = mmupt_xcalloc((size_t)(nk ? nk : 1), sizeof *dv);
    attention_flash_backward_cpu(dq, dk, dv, dout, out, stats, q, k, v, seg, n_seg, n_heads, n_kv, hd, causal);
    cast_bf16_cpu(dq16, dq, nq);
    cast_bf16_cpu(dk16, dk, nk);
    cast_bf16_cpu(dv16, dv, nk);
    free(q), free(k), free(v), free(out), free(dout), free(dq), free(dk), free(dv);
}
