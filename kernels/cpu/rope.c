/* Rotary position embedding, rotate-half convention, CPU reference.
 *
 * Dim i of the first half pairs with dim i + half:
 *   x'[i]        = x[i] * cos[i]               - x[i + half] * sin[i]
 *   x'[i + half] = x[i + half] * cos[i + half] + x[i] * sin[i + half]
 * The caller builds cos/sin per row, which is what lets one op serve 1-D RoPE, M-RoPE (each dim's
 * angle comes from one of three position axes) and the vision tower's 2-D RoPE. Real tables repeat
 * the same angles in both halves; the code does not rely on it, so the backward is the exact
 * transpose of the forward for any table. */
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
