/* Rotary position embedding, rotate-half convention, CPU reference.
 *
 * Dim i of the first half pairs with dim i + half:
 *   x'[i]        = x[i] * cos[i]               - x[i + half] * sin[i]
 *   x'[i + half] = x[i + half] * cos[i + half] + x[i] * sin[i + half]
 * The caller builds cos/sin per row, which is what lets one op serve 1-D RoPE, M-RoPE (each dim's
 * angle comes from one of three position axes) and the vision tower's 2-D RoPE. Real tables repeat
 * the same angles in both halves; the code does not rely on it, so the backward is the exact
 * transpose of the forward for any table. */
#include <stdlib.h>
#include <string.h>

#include "mmupt/err.h"
#include "mmupt/kernels.h"

void rope_forward_cpu(float *x, const float *cos, const float *sin, int rows, int n_heads, int head_dim)
{
    MMUPT_CHECK(head_dim % 2 == 0);
    int half = head_dim / 2;
#pragma omp parallel for schedule(static)
    for (int r = 0; r < rows; r++) {
        const float *c = cos + (long)r * head_dim, *s = sin + (long)r * head_dim;
        for (int h = 0; h < n_heads; h++) {
            float *xh = x + ((long)r * n_heads + h) * head_dim;
            for (int i = 0; i < half; i++) {
                float x1 = xh[i], x2 = xh[i + half];
                xh[i] = x1 * c[i] - x2 * s[i];
                xh[i + half] = x2 * c[i + half] + x1 * s[i + half];
            }
        }
    }
}

/* Transpose of the 2x2 map above:
 *   dx[i]        =  dy[i] * cos[i] + dy[i + half] * sin[i + half]
 *   dx[i + half] = -dy[i] * sin[i] + dy[i + half] * cos[i + half] */
void rope_backward_cpu(float *dx, const float *cos, const float *sin, int rows, int n_heads, int head_dim)
{
    MMUPT_CHECK(head_dim % 2 == 0);
    int half = head_dim / 2;
#pragma omp parallel for schedule(static)
    for (int r = 0; r < rows; r++) {
        const float *c = cos + (long)r * head_dim, *s = sin + (long)r * head_dim;
        for (int h = 0; h < n_heads; h++) {
            float *g = dx + ((long)r * n_heads + h) * head_dim;
            for (int i = 0; i < half; i++) {
                float g1 = g[i], g2 = g[i + half];
                g[i] = g1 * c[i] + g2 * s[i + half];
                g[i + half] = g2 * c[i + half] - g1 * s[i];
            }
        }
    }
}

/* Where each of q, k, v lies in a row of the packed projections [q | k | v]: its offset and width. */
static void qkv_parts(int qd, int kvd, int off[3], int width[3])
{
    off[0] = 0, off[1] = qd, off[2] = qd + kvd;
    width[0] = qd, width[1] = width[2] = kvd;
}

void rope_qkv_forward_cpu(float *q, float *k, float *v, const float *qkv, const float *cos, const float *sin, int rows,
                          int n_heads, int n_kv, int head_dim)
{
    int off[3], width[3];
    qkv_parts(n_heads * head_dim, n_kv * head_dim, off, width);
    long w = off[2] + width[2];
    float *part[3] = {q, k, v};
    for (long r = 0; r < rows; r++)
        for (int j = 0; j < 3; j++) memcpy(part[j] + r * width[j], qkv + r * w + off[j], (size_t)width[j] * sizeof *q);
    rope_forward_cpu(q, cos, sin, rows, n_heads, head_dim);
    rope_forward_cpu(k, cos, sin, rows, n_kv, head_dim);
}

void rope_qkv_backward_cpu(float *dqkv, const float *dq, const float *dk, const float *dv, const float *cos,
                           const float *sin, int rows, int n_heads, int n_kv, int head_dim)
{
    int off[3], width[3];
    qkv_parts(n_heads * head_dim, n_kv * head_dim, off, width);
    long w = off[2] + width[2];
    size_t nq = (size_t)rows * width[0], nk = (size_t)rows * width[1];
    float *gq = memcpy(mmupt_xmalloc(nq * sizeof *gq + 1), dq, nq * sizeof *gq);
    float *gk = memcpy(mmupt_xmalloc(nk * sizeof *gk + 1), dk, nk * sizeof *gk);
    rope_backward_cpu(gq, cos, sin, rows, n_heads, head_dim);
    rope_backward_cpu(gk, cos, sin, rows, n_kv, head_dim);
    const float *part[3] = {gq, gk, dv};
    for (long r = 0; r < rows; r++)
        for (int j = 0; j < 3; j++)
            memcpy(dqkv + r * w + off[j], part[j] + r * width[j], (size_t)width[j] * sizeof *gq);
    free(gq);
    free(gk);
}

void rope_qkv_backward_cast_cpu(float *dqkv, uint16_t *dqkv16, const float *dq, const float *dk, const float *dv,
                                const float *cos, const float *sin, int rows, int n_heads, int n_kv, int head_dim)
{
    long n = (long)rows * (n_heads + 2L * n_kv) * head_dim;
    float *g = dqkv ? dqkv : mmupt_xmalloc((size_t)(n > 0 ? n : 1) * sizeof *g);
    rope_qkv_backward_cpu(g, dq, dk, dv, cos, sin, rows, n_heads, n_kv, head_dim);
    cast_bf16_cpu(dqkv16, g, n);
    if (!dqkv) free(g);
}

void rope_qkv16_backward_cast_cpu(float *dqkv, uint16_t *dqkv16, const uint16_t *dq16, const uint16_t *dk16,
                                  const uint16_t *dv16, const float *cos, const float *sin, int rows, int n_heads,
                                  int n_kv, int head_dim)
{
    long nq = (long)rows * n_heads * head_dim, nk = (long)rows * n_kv * head_dim;
    float *dq = bf16_widened(dq16, nq), *dk = bf16_widened(dk16, nk), *dv = bf16_widened(dv16, nk);
    rope_qkv_backward_cast_cpu(dqkv, dqkv16, dq, dk, dv, cos, sin, rows, n_heads, n_kv, head_dim);
    free(dq), free(dk), free(dv);
}

void rope_qkv_forward_cast_cpu(float *q, float *k, float *v, uint16_t *q16, uint16_t *k16, uint16_t *v16,
                               const float *qkv, const float *cos, const float *sin, int rows, int n_heads, int n_kv,
                               int head_dim)
{
    long nq = (long)rows * n_heads * head_dim, nk = (long)rows * n_kv * head_dim;
    float *qq = q ? q : mmupt_xmalloc((size_t)(nq + 1) * sizeof *qq);
    rope_qkv_forward_cpu(qq, k, v, qkv, cos, sin, rows, n_heads, n_kv, head_dim);
    cast_bf16_cpu(q16, qq, nq);
    cast_bf16_cpu(k16, k, nk);
    cast_bf16_cpu(v16, v, nk);
    if (!q) free(qq);
}
