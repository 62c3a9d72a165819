/* libFuzzer target for image decoding (PNG, JPEG) and the Qwen2-VL preprocessing behind it.
 * Oracle beyond "no crash, no sanitizer report, no exit()":
 *   - a rejected input leaves the output untouched and says something;
 *   - an accepted image has sides in 1..IMG_MAX_SIDE, at most max_pixels pixels, and decodes to
 *     the same bytes a second time (uninitialised memory would show as a difference);
 *   - preprocessing it either refuses (aspect ratio) or gives the grid smart_resize promises and
 *     only values that normalising 0..255 can produce. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mmupt/image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_MAX_PIXELS (256 * 256) /* keeps each input fast; sizes above it are refused */

#define FAIL(...)                                                                                                      \
    do {                                                                                                               \
        fprintf(stderr, "fuzz_image: " __VA_ARGS__);                                                                   \
        fputc('\n', stderr);                                                                                           \
        abort();                                                                                                       \
    } while (0)

static void check_preprocess(const struct img_rgb *im)
{
    struct img_proc_config c;
    img_proc_config_default(&c);
    c.min_pixels = 28 * 28;
    c.max_pixels = 28 * 28 * 16; /* small outputs: the resize is what is being exercised */
    struct mmupt_err err;
    int rh, rw;
    int sized = img_smart_resize(im->height, im->width, &c, &rh, &rw, &err);
    float *px = NULL;
    int64_t n = 0, grid[3];
    int rc = img_preprocess(im, &c, &px, &n, grid, &err);
    if (rc != sized) FAIL("smart_resize says %d, preprocess %d for %dx%d", sized, rc, im->width, im->height);
    if (rc) {
        if (!err.msg[0]) FAIL("preprocess failed without a message");
        return;
    }
    if (grid[0] != 1 || grid[1] * 14 != rh || grid[2] * 14 != rw || n != grid[1] * grid[2])
        FAIL("grid %lld %lld %lld for %dx%d", (long long)grid[0], (long long)grid[1], (long long)grid[2], rw, rh);
    for (int64_t i = 0; i < n * 1176; i++) {
        int ch = (int)(i % 1176 / 392);
        float lo = (0.0f - c.mean[ch]) / c.std[ch], hi = (1.0f - c.mean[ch]) / c.std[ch];
        if (!(px[i] >= lo && px[i] <= hi)) FAIL("value %g outside [%g, %g]", (double)px[i], (double)lo, (double)hi);
    }
    free(px);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct img_rgb im = {-1, -1, NULL};
    struct mmupt_err err = {{0}};
    if (img_decode(data, size, FUZZ_MAX_PIXELS, &im, &err) != 0) {
        if (im.width != -1 || im.height != -1 || im.data) FAIL("output changed on error");
        if (!err.msg[0]) FAIL("error without a message");
        return 0;
    }
    if (im.width < 1 || im.height < 1 || im.width > IMG_MAX_SIDE || im.height > IMG_MAX_SIDE || !im.data ||
        (int64_t)im.width * im.height > FUZZ_MAX_PIXELS)
        FAIL("accepted %dx%d", im.width, im.height);
    struct img_rgb again;
    if (img_decode(data, size, FUZZ_MAX_PIXELS, &again, &err) != 0) FAIL("second decode failed: %s", err.msg);
    if (again.width != im.width || again.height != im.height ||
        memcmp(again.data, im.data, (size_t)im.width * im.height * 3))
        FAIL("two decodes of the same bytes differ");
    img_free(&again);
    check_preprocess(&im);
    img_free(&im);
    return 0;
}
