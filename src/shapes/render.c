/* shapes: painting an item's image. Numbers are listed in docs/quickstart-task.md.
 *
 * A light background whose tint varies per image, filled squares of side 8-10 px at a small random
 * offset inside their 14-px cell (a 1-px margin at least, so squares of neighbouring cells never
 * touch), per-square colour jitter, and grey per-pixel noise over everything. The variation is
 * there so that a model must look at colour and shape, not at exact pixel values. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define NOISE_MAX 8    /* per-pixel grey noise, uniform in [-8, 8] */
#define JITTER_MAX 20  /* per-square colour jitter, uniform in [-20, 20] per channel */
#define SIDE_MIN 8     /* square side 8..10 px */
#define SIDE_SPAN 3

static const int base_red[3] = {200, 40, 40};
static const int base_blue[3] = {40, 60, 200};

static uint8_t clamp_u8(int v)
{
    return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

/* Background: brightness 222..238 per image and a tint of -4..4 per channel, then noise. The noise
 * values are kept in `noise` so the squares get the same texture. */
static void paint_background(struct shapes_rng *rng, uint8_t *px, int8_t *noise)
{
    int bright = 222 + shapes_rng_below(rng, 17), bg[3];
    for (int ch = 0; ch < 3; ch++) bg[ch] = bright + shapes_rng_below(rng, 9) - 4;
    int n = SHAPES_SIZE * SHAPES_SIZE;
    for (int i = 0; i < n; i += 8) {
        uint64_t bits = shapes_rng_next(rng); /* eight 8-bit slices, one per pixel */
        for (int k = 0; k < 8 && i + k < n; k++, bits >>= 8)
            noise[i + k] = (int8_t)((int)(((bits & 0xff) * (2 * NOISE_MAX + 1)) >> 8) - NOISE_MAX);
    }
    for (int i = 0; i < n; i++)
        for (int ch = 0; ch < 3; ch++) px[3 * i + ch] = clamp_u8(bg[ch] + noise[i]);
}

static void paint_square(struct shapes_rng *rng, uint8_t *px, const int8_t *noise, int cell, const int base[3])
{
    int side = SIDE_MIN + shapes_rng_below(rng, SIDE_SPAN);
    int room = SHAPES_CELL - side - 2;                       /* offsets 1 .. CELL-side-1 */
    int x0 = (cell % SHAPES_GRID) * SHAPES_CELL + 1 + shapes_rng_below(rng, room + 1);
    int y0 = (cell / SHAPES_GRID) * SHAPES_CELL + 1 + shapes_rng_below(rng, room + 1);
    int col[3];
    for (int ch = 0; ch < 3; ch++) col[ch] = base[ch] + shapes_rng_below(rng, 2 * JITTER_MAX + 1) - JITTER_MAX;
    for (int y = y0; y < y0 + side; y++)
        for (int x = x0; x < x0 + side; x++) {
            int i = y * SHAPES_SIZE + x;
            for (int ch = 0; ch < 3; ch++) px[3 * i + ch] = clamp_u8(col[ch] + noise[i]);
        }
}

void shapes_render(const struct shapes_config *c, enum shapes_split split, uint64_t index,
                   const struct shapes_facts *f, struct img_rgb *out)
{
    struct shapes_rng rng;
    shapes_rng_init(&rng, c, split, index, SHAPES_STREAM_PIXELS);
    out->width = out->height = SHAPES_SIZE;
    out->data = mmupt_xmalloc((size_t)SHAPES_SIZE * SHAPES_SIZE * 3);
    int8_t noise[SHAPES_SIZE * SHAPES_SIZE];
    paint_background(&rng, out->data, noise);
    /* Every cell takes the same draws whether or not it holds a square, so an image's pixels
     * depend on its layout only where the squares are. */
    for (int cell = 0; cell < SHAPES_CELLS; cell++) {
        struct shapes_rng sq = rng;
        for (int k = 0; k < 8; k++) shapes_rng_next(&rng); /* each square uses 6 draws; 8 reserved */
        if (f->cell[cell] == SHAPES_CELL_RED) paint_square(&sq, out->data, noise, cell, base_red);
        else if (f->cell[cell] == SHAPES_CELL_BLUE) paint_square(&sq, out->data, noise, cell, base_blue);
    }
}
