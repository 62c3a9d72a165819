/* Line charts as RGB images (PNG via img_png_encode), so reports carry their curves without any
 * plotting library. A chart is a grid of panels; each panel has a title, axes with numeric ticks and
 * a legend, and one polyline per series. */
#ifndef MMUPT_PLOT_H
#define MMUPT_PLOT_H

#include <stdint.h>

#include "mmupt/err.h"
#include "mmupt/image.h"

struct plot_series {
    const char *name;        /* legend text (ASCII) */
    const double *x, *y;     /* n points; non-finite y values break the line */
    int n;
    uint8_t rgb[3];
};

struct plot_panel {
    const char *title;       /* ASCII */
    const struct plot_series *series;
    int n_series;
    double ymin, ymax;       /* the y range; ymin >= ymax means: fit the data */
};

/* Render panels in a grid of `cols` columns, each panel_w x panel_h pixels (at least 160 x 120). */
int plot_render(const struct plot_panel *panels, int n_panels, int cols, int panel_w, int panel_h, struct img_rgb *out,
                struct mmupt_err *err);

/* Draw ASCII text with the built-in 5x7 font (scale 1 = 6 px per character); exposed for tests. */
void plot_text(struct img_rgb *im, int x, int y, const char *text, const uint8_t rgb[3], int scale);

#endif
