/* Line charts: glyphs land where they should, series are drawn in their colour at the right place,
 * a non-finite point breaks a line, fixed y ranges clip, bad sizes are refused. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../test.h"
#include "mmupt/plot.h"

static int is(const struct img_rgb *im, int x, int y, const uint8_t c[3])
{
    return !memcmp(im->data + 3 * ((size_t)y * (size_t)im->width + (size_t)x), c, 3);
}

static int count(const struct img_rgb *im, const uint8_t c[3], int x0, int x1)
{
    int n = 0;
    for (int y = 0; y < im->height; y++)
        for (int x = x0; x < x1; x++) n += is(im, x, y, c);
    return n;
}

static void test_text(struct test_state *ts)
{
    struct img_rgb im = {20, 10, calloc(20 * 10 * 3, 1)};
    const uint8_t red[3] = {255, 0, 0};
    plot_text(&im, 1, 1, "1", red, 1);
    /* '1' = columns 00 42 7F 40 00: the middle column is a full 7-pixel stem, 10 pixels in all */
    CHECK(ts, count(&im, red, 0, 20) == 10);
    for (int row = 0; row < 7; row++) CHECK(ts, is(&im, 1 + 2, 1 + row, red));
    CHECK(ts, !is(&im, 1, 1, red) && is(&im, 1 + 1, 1 + 1, red) && is(&im, 1 + 3, 1 + 6, red));
    memset(im.data, 0, 20 * 10 * 3);
    plot_text(&im, 0, 0, "-", red, 1); /* row 3 across 5 columns */
    CHECK(ts, count(&im, red, 0, 20) == 5 && is(&im, 0, 3, red) && is(&im, 4, 3, red));
    memset(im.data, 0, 20 * 10 * 3);
    plot_text(&im, 18, 8, "W\x01", red, 2); /* clipped at the edges and odd bytes: no crash */
    free(im.data);
}

static void test_render(struct test_state *ts)
{
    double x[5] = {0, 1, 2, 3, 4}, up[5] = {0, 0.25, 0.5, 0.75, 1}, gap[5] = {1, 1, NAN, 0, 0};
    struct plot_series s[2] = {{"up", x, up, 5, {220, 0, 0}}, {"gap", x, gap, 5, {0, 0, 220}}};
    struct plot_panel p[2] = {{"first", s, 2, 0, 1}, {"second", s, 1, 0.4, 0.6}};
    struct img_rgb im = {0};
    struct mmupt_err err;
    CHECK(ts, plot_render(p, 2, 2, 320, 200, &im, &err) == 0);
    CHECK(ts, im.width == 640 && im.height == 200);
    int red_left = count(&im, s[0].rgb, 0, 320), blue_left = count(&im, s[1].rgb, 0, 320);
    CHECK_MSG(ts, red_left > 200 && blue_left > 150, "red %d blue %d", red_left, blue_left);
    /* The rising line passes near the panel's centre; the gap line has nothing between x=2 and x=3
     * except its legend (below the axis). */
    int left = 48, right = 320 - 12, top = 24, bottom = 200 - 40, cx = (left + right) / 2, cy = (top + bottom) / 2;
    int near = 0;
    for (int dy = -2; dy <= 2; dy++) near += is(&im, cx, cy + dy, s[0].rgb);
    CHECK(ts, near > 0);
    int xa = left + (right - left) / 2 + 10, xb = left + 3 * (right - left) / 4 - 10, blue_mid = 0;
    for (int y = top; y < bottom; y++)
        for (int xx = xa; xx < xb; xx++) blue_mid += is(&im, xx, y, s[1].rgb);
    CHECK_MSG(ts, blue_mid == 0, "%d blue pixels inside the gap", blue_mid);
    /* Second panel: range [0.4, 0.6] clips the rising line to its middle part. */
    CHECK(ts, count(&im, s[0].rgb, 320, 640) > 0);
    struct img_rgb again = {0};
    CHECK(ts, plot_render(p, 2, 2, 320, 200, &again, &err) == 0);
    CHECK(ts, !memcmp(im.data, again.data, (size_t)im.width * im.height * 3));
    free(im.data);
    free(again.data);
    CHECK(ts, plot_render(p, 2, 2, 100, 200, &im, &err) == -1);
    CHECK_CONTAINS(ts, err.msg, "out of range");
}

int main(void)
{
    struct test_state ts = {0};
    RUN(&ts, test_text);
    RUN(&ts, test_render);
    return test_summary(&ts);
}
