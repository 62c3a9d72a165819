/* Positions: the 3-D (t, h, w) rotary positions of the language model, the rotary tables built
 * from them, and the vision tower's plan (patch positions, window permutation, attention segments).
 * Semantics follow transformers' get_rope_index / get_vision_window_index (qwen25vl.md §2-3). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model_internal.h"

/* Inverse frequencies as torch computes them in float32: 1 / theta^(2i/dim). */
static void inv_freqs(float *out, int n, double theta, int dim)
{
    for (int i = 0; i < n; i++) out[i] = 1.0f / powf((float)theta, (float)(2 * i) / (float)dim);
}

/* ---- language model ---- */

/* Positions of one sequence. Text tokens count up on all three axes; an image of merged grid
 * h' x w' starting at position s gives its token (f, i, j) the position (s + f, s + i, s + j), and
 * the text after it continues at s + max(h', w'). */
static int sequence_positions(const struct model_config *c, const int64_t *tok, int len, const int64_t *grid,
                              int n_grid, int *next_img, int64_t *pt, int64_t *ph, int64_t *pw, int64_t *delta,
                              struct mmupt_err *err)
{
    int64_t p = 0, maxp = -1;
    for (int i = 0; i < len;) {
        if (!c->has_vision || tok[i] != c->image_token_id) {
            if (c->has_vision && tok[i] == c->video_token_id)
                return mmupt_fail(err, "token %d is a video token; video input is not supported", i);
            pt[i] = ph[i] = pw[i] = p;
            maxp = p++;
            i++;
            continue;
        }
        int run = 0;
        while (i + run < len && tok[i + run] == c->image_token_id) run++;
        if (*next_img >= n_grid)
            return mmupt_fail(err, "image token run at %d has no image left (%d image(s) given)", i, n_grid);
        const int64_t *g = grid + 3 * (*next_img);
        int64_t m = c->vision.merge, ht = g[1] / m, wt = g[2] / m, n = g[0] * ht * wt;
        if (run != n)
            return mmupt_fail(err, "image %d has %lld tokens (grid %lldx%lldx%lld) but its <|image_pad|> run at %d has %d",
                              *next_img, (long long)n, (long long)g[0], (long long)g[1], (long long)g[2], i, run);
        for (int64_t f = 0, k = i; f < g[0]; f++)
            for (int64_t r = 0; r < ht; r++)
                for (int64_t q = 0; q < wt; q++, k++) {
                    pt[k] = p + f;
                    ph[k] = p + r;
                    pw[k] = p + q;
                    int64_t mx = pt[k] > ph[k] ? pt[k] : ph[k];
                    mx = mx > pw[k] ? mx : pw[k];
                    if (mx > maxp) maxp = mx;
                }
        p += ht > wt ? ht : wt;
        (*next_img)++;
        i += run;
    }
    *delta = maxp + 1 - len;
    return 0;
}

int model_positions(const struct model_config *c, const struct model_batch *b, int64_t T, int64_t *pos,
                    int64_t *deltas, struct mmupt_err *err)
{
    int next_img = 0;
    int64_t off = 0;
    for (int s = 0; s < b->n_seq; s++) {
        int len = b->seq_len[s];
        if (sequence_positions(c, b->tokens + off, len, b->grid_thw, b->n_images, &next_img, pos + off, pos + T + off,
                               pos + 2 * T + off, &deltas[s], err)) {
            mmupt_err_prefix(err, "sequence %d", s);
            return -1;
        }
        off += len;
    }
    if (next_img != b->n_images)
        return mmupt_fail(err, "%d image(s) given but the tokens hold %d <|image_pad|> run(s)", b->n_images, next_img);
    return 0;
}

void model_text_rope(const struct model_config *c, const int64_t *pos, int64_t T, float *cos_t, float *sin_t)
{
    int hd = (int)c->text.head_dim, half = hd / 2;
    float *inv = mmupt_xmalloc((size_t)half * sizeof *inv);
    int *axis = mmupt_xmalloc((size_t)half * sizeof *axis);
    inv_freqs(inv, half, c->text.rope_theta, hd);
    /* M-RoPE: frequency f takes its position from the axis of the mrope_section chunk it falls in. */
    for (int f = 0, a = 0, end = (int)c->text.mrope_section[0]; f < half; f++) {
        if (!c->text.has_mrope) {
            axis[f] = 0;
            continue;
        }
        while (f >= end && a < 2) end += (int)c->text.mrope_section[++a];
        axis[f] = a;
    }
#pragma omp parallel for schedule(static)
    for (int64_t t = 0; t < T; t++) {
        for (int f = 0; f < half; f++) {
            float angle = (float)pos[axis[f] * T + t] * inv[f];
            float cs = (float)cos((double)angle), sn = (float)sin((double)angle);
            cos_t[t * hd + f] = cos_t[t * hd + f + half] = cs;
            sin_t[t * hd + f] = sin_t[t * hd + f + half] = sn;
        }
    }
    free(inv);
    free(axis);
}

/* ---- vision tower ---- */

/* Windows of one frame: the merged grid ht x wt tiled by win x win units, row-major, units inside
 * a window row-major; empty windows (none here: tiles are clipped) are skipped. */
static void frame_windows(struct vision_plan *vp, int64_t base, int64_t ht, int64_t wt, int64_t win, int64_t unit_patches,
                          int64_t *n_idx)
{
    for (int64_t wr = 0; wr < ht; wr += win)
        for (int64_t wc = 0; wc < wt; wc += win) {
            int64_t count = 0;
            for (int64_t r = wr; r < wr + win && r < ht; r++)
                for (int64_t q = wc; q < wc + win && q < wt; q++, count++) vp->window_index[(*n_idx)++] = base + r * wt + q;
            vp->win_seg[vp->n_win_seg + 1] = vp->win_seg[vp->n_win_seg] + (int)(count * unit_patches);
            vp->n_win_seg++;
        }
}

int vision_plan_build(struct vision_plan *vp, const struct model_config *c, const int64_t *grid, int n_images,
                      struct mmupt_err *err)
{
    const struct model_vision_config *v = &c->vision;
    memset(vp, 0, sizeof *vp);
    int64_t m = v->merge, P = 0, frames = 0;
    for (int i = 0; i < n_images; i++) {
        const int64_t *g = grid + 3 * i;
        if (g[0] < 1 || g[1] < m || g[2] < m || g[1] % m || g[2] % m || g[0] > 64 || g[1] > 4096 || g[2] > 4096)
            return mmupt_fail(err, "image %d: grid %lldx%lldx%lld is invalid (t >= 1; h, w multiples of %lld)", i,
                              (long long)g[0], (long long)g[1], (long long)g[2], (long long)m);
        P += g[0] * g[1] * g[2];
        frames += g[0];
    }
    if (P > (1 << 26)) return mmupt_fail(err, "%lld patches in one batch is more than supported", (long long)P);
    int64_t up = m * m, U = P / up;
    vp->n_patches = P;
    vp->n_units = U;
    vp->window_index = mmupt_xmalloc((size_t)(U ? U : 1) * sizeof *vp->window_index);
    vp->win_seg = mmupt_xmalloc((size_t)(U + 1) * sizeof *vp->win_seg);
    vp->full_seg = mmupt_xmalloc((size_t)(frames + 1) * sizeof *vp->full_seg);
    vp->win_seg[0] = vp->full_seg[0] = 0;
    /* Qwen2-VL has no windows: the identity order and one segment per frame. */
    int64_t win = v->window_size ? v->window_size / m / v->patch : 0;
    int64_t base = 0, n_idx = 0;
    for (int i = 0; i < n_images; i++) {
        const int64_t *g = grid + 3 * i;
        int64_t ht = g[1] / m, wt = g[2] / m;
        for (int64_t f = 0; f < g[0]; f++, base += ht * wt) {
            vp->full_seg[vp->n_full_seg + 1] = vp->full_seg[vp->n_full_seg] + (int)(g[1] * g[2]);
            vp->n_full_seg++;
            if (win) frame_windows(vp, base, ht, wt, win, up, &n_idx);
            else
                for (int64_t u = 0; u < ht * wt; u++) vp->window_index[n_idx++] = base + u;
        }
    }
    if (!win) {
        memcpy(vp->win_seg, vp->full_seg, (size_t)(vp->n_full_seg + 1) * sizeof *vp->win_seg);
        vp->n_win_seg = vp->n_full_seg;
    }
    vision_plan_rope(vp, c, grid, n_images);
    return 0;
}

/* Rotary tables of the patches, in window order: each patch rotates by its row position in the
 * first quarter of frequencies' pairs and by its column position in the second (qwen25vl.md §2.3). */
void vision_plan_rope(struct vision_plan *vp, const struct model_config *c, const int64_t *grid, int n_images)
{
    const struct model_vision_config *v = &c->vision;
    int hd = (int)v->head_dim, q = hd / 4;
    int64_t m = v->merge, up = m * m, P = vp->n_patches;
    float *inv = mmupt_xmalloc((size_t)q * sizeof *inv);
    inv_freqs(inv, q, v->rope_theta, hd / 2);
    int64_t *hp = mmupt_xmalloc((size_t)(P ? P : 1) * sizeof *hp), *wp = mmupt_xmalloc((size_t)(P ? P : 1) * sizeof *wp);
    int64_t k = 0;
    for (int i = 0; i < n_images; i++) {
        const int64_t *g = grid + 3 * i;
        for (int64_t f = 0; f < g[0]; f++)
            for (int64_t br = 0; br < g[1] / m; br++)
                for (int64_t bc = 0; bc < g[2] / m; bc++)
                    for (int64_t ir = 0; ir < m; ir++)
                        for (int64_t ic = 0; ic < m; ic++, k++) {
                            hp[k] = br * m + ir;
                            wp[k] = bc * m + ic;
                        }
    }
    vp->cos = mmupt_xmalloc((size_t)(P ? P : 1) * hd * sizeof(float));
    vp->sin = mmupt_xmalloc((size_t)(P ? P : 1) * hd * sizeof(float));
    for (int64_t u = 0; u < vp->n_units; u++) {
        for (int64_t j = 0; j < up; j++) {
            int64_t dst = u * up + j, src = vp->window_index[u] * up + j;
            for (int f = 0; f < 2 * q; f++) {
                float angle = (float)(f < q ? hp[src] : wp[src]) * inv[f % q];
                float cs = (float)cos((double)angle), sn = (float)sin((double)angle);
                vp->cos[dst * hd + f] = vp->cos[dst * hd + f + 2 * q] = cs;
                vp->sin[dst * hd + f] = vp->sin[dst * hd + f + 2 * q] = sn;
            }
        }
    }
    free(inv);
    free(hp);
    free(wp);
}

void vision_plan_free(struct vision_plan *vp)
{
    free(vp->window_index);
    free(vp->win_seg);
    free(vp->full_seg);
    free(vp->cos);
    free(vp->sin);
    memset(vp, 0, sizeof *vp);
}
