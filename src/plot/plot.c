/* Line charts: panels with axes, numeric ticks, a legend and polylines, drawn into an RGB image. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mmupt/plot.h"
#include "plot_internal.h"

static const uint8_t black[3] = {0, 0, 0}, grey[3] = {200, 200, 200}, dark[3] = {90, 90, 90};

static void put(struct img_rgb *im, int x, int y, const uint8_t c[3])
{
    if (x < 0 || y < 0 || x >= im->width || y >= im->height) return;
    memcpy(im->data + 3 * ((size_t)y * (size_t)im->width + (size_t)x), c, 3);
}

void plot_text(struct img_rgb *im, int x, int y, const char *text, const uint8_t rgb[3], int scale)
{
    for (int i = 0; text[i]; i++) {
        const uint8_t *g = plot_glyph(text[i]);
        for (int col = 0; col < 5; col++)
            for (int row = 0; row < 7; row++)
                if (g[col] >> row & 1)
                    for (int dy = 0; dy < scale; dy++)
                        for (int dx = 0; dx < scale; dx++)
                            put(im, x + (6 * i + col) * scale + dx, y + row * scale + dy, rgb);
    }
}

/* A line two pixels wide (Bresenham, with the pixel below each point). */
static void line(struct img_rgb *im, int x0, int y0, int x1, int y1, const uint8_t c[3])
{
    int dx = abs(x1 - x0), dy = -abs(y1 - y0), sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1, e = dx + dy;
    for (;;) {
        put(im, x0, y0, c);
        put(im, x0, y0 + 1, c);
        if (x0 == x1 && y0 == y1) return;
        int e2 = 2 * e;
        if (e2 >= dy) { e += dy; x0 += sx; }
        if (e2 <= dx) { e += dx; y0 += sy; }
    }
}

/* A "nice" tick step (1, 2 or 5 times a power of ten) for about `want` ticks over span. */
static double tick_step(double span, int want)
{
    double raw = span / want, p = pow(10, floor(log10(raw))), f = raw / p;
    return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * p;
}

static void data_range(const struct plot_panel *p, double *x0, double *x1, double *y0, double *y1)
{
    *x0 = *y0 = INFINITY;
    *x1 = *y1 = -INFINITY;
    for (int s = 0; s < p->n_series; s++)
        for (int i = 0; i < p->series[s].n; i++) {
            double x = p->series[s].x[i], y = p->series[s].y[i];
            if (!isfinite(x) || !isfinite(y)) continue;
            *x0 = fmin(*x0, x), *x1 = fmax(*x1, x), *y0 = fmin(*y0, y), *y1 = fmax(*y1, y);
        }
    if (!(*x0 <= *x1)) *x0 = 0, *x1 = 1;
    if (p->ymin < p->ymax) *y0 = p->ymin, *y1 = p->ymax;
    if (!(*y0 <= *y1)) *y0 = 0, *y1 = 1;
    if (*x1 - *x0 < 1e-12) *x1 = *x0 + 1;
    if (*y1 - *y0 < 1e-12) *y0 -= 0.5, *y1 += 0.5;
}

static void panel(struct img_rgb *im, const struct plot_panel *p, int ox, int oy, int w, int h)
{
    int left = ox + 48, right = ox + w - 12, top = oy + 24, bottom = oy + h - 40;
    double x0, x1, y0, y1;
    data_range(p, &x0, &x1, &y0, &y1);
    plot_text(im, left, oy + 6, p->title ? p->title : "", black, 1);
    double ys = tick_step(y1 - y0, 4), xs = tick_step(x1 - x0, 5);
    char buf[32];
    for (double t = ceil(y0 / ys) * ys; t <= y1 + 1e-9 * ys; t += ys) {
        int y = bottom - (int)lround((t - y0) / (y1 - y0) * (bottom - top));
        for (int x = left; x <= right; x += 2) put(im, x, y, grey);
        snprintf(buf, sizeof buf, "%g", fabs(t) < 1e-12 ? 0.0 : t);
        plot_text(im, left - 6 * (int)strlen(buf) - 4, y - 3, buf, dark, 1);
    }
    for (double t = ceil(x0 / xs) * xs; t <= x1 + 1e-9 * xs; t += xs) {
        int x = left + (int)lround((t - x0) / (x1 - x0) * (right - left));
        line(im, x, bottom, x, bottom + 3, dark);
        snprintf(buf, sizeof buf, "%g", t);
        plot_text(im, x - 3 * (int)strlen(buf), bottom + 7, buf, dark, 1);
    }
    line(im, left, top, left, bottom, black);
    line(im, left, bottom, right, bottom, black);
    for (int s = 0; s < p->n_series; s++) {
        const struct plot_series *S = &p->series[s];
        int px = 0, py = 0, have = 0;
        for (int i = 0; i < S->n; i++) {
            if (!isfinite(S->x[i]) || !isfinite(S->y[i])) { have = 0; continue; }
            double yc = fmin(fmax(S->y[i], y0), y1);
            int x = left + (int)lround((S->x[i] - x0) / (x1 - x0) * (right - left));
            int y = bottom - (int)lround((yc - y0) / (y1 - y0) * (bottom - top));
            if (have) line(im, px, py, x, y, S->rgb);
            else put(im, x, y, S->rgb);
            px = x, py = y, have = 1;
        }
        /* legend under the axis, one entry per series */
        int lx = left + s * ((right - left) / (p->n_series > 0 ? p->n_series : 1)), ly = oy + h - 14;
        line(im, lx, ly + 3, lx + 12, ly + 3, S->rgb);
        plot_text(im, lx + 16, ly, S->name ? S->name : "", black, 1);
    }
}

int plot_render(const struct plot_panel *panels, int n_panels, int cols, int panel_w, int panel_h, struct img_rgb *out,
                struct mmupt_err *err)
{
    if (n_panels < 1 || cols < 1 || panel_w < 160 || panel_h < 120 || panel_w > 4096 || panel_h > 4096)
        return mmupt_fail(err, "plot: %d panels in %d columns of %dx%d pixels: out of range", n_panels, cols, panel_w,
                          panel_h);
    int rows = (n_panels + cols - 1) / cols;
    out->width = cols * panel_w;
    out->height = rows * panel_h;
    out->data = mmupt_xmalloc((size_t)out->width * (size_t)out->height * 3);
    memset(out->data, 255, (size_t)out->width * (size_t)out->height * 3);
    for (int i = 0; i < n_panels; i++) panel(out, &panels[i], (i % cols) * panel_w, (i / cols) * panel_h, panel_w, panel_h);
    return 0;
}
