/* Qwen2-VL image preprocessing: smart_resize, resize, rescale, normalise, patchify, with the
 * arithmetic of transformers 5.17's Qwen2VLImageProcessorPil (see include/mmupt/image.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "image/internal.h"

void img_proc_config_default(struct img_proc_config *c)
{
    /* The mean/std literals go through double first, as Python's floats do before numpy casts
     * them to float32: a decimal rounded straight to float can differ in the last bit. */
    static const double mean[3] = {0.48145466, 0.4578275, 0.40821073};
    static const double std[3] = {0.26862954, 0.26130258, 0.27577711};
    memset(c, 0, sizeof *c);
    c->min_pixels = 56 * 56;
    c->max_pixels = 28 * 28 * 16384;
    c->patch = 14;
    c->temporal_patch = 2;
    c->merge = 2;
    for (int i = 0; i < 3; i++) {
        c->mean[i] = (float)mean[i];
        c->std[i] = (float)std[i];
    }
}

/* Every number here sizes an allocation or divides, so each has a range. */
static int config_check(const struct img_proc_config *c, struct mmupt_err *err)
{
    if (c->patch < 1 || c->patch > 1024) return mmupt_fail(err, "image processor: patch %d not in [1, 1024]", c->patch);
    if (c->merge < 1 || c->merge > 64) return mmupt_fail(err, "image processor: merge %d not in [1, 64]", c->merge);
    if (c->temporal_patch < 1 || c->temporal_patch > 64)
        return mmupt_fail(err, "image processor: temporal_patch %d not in [1, 64]", c->temporal_patch);
    int64_t max_area = (int64_t)IMG_MAX_SIDE * IMG_MAX_SIDE;
    if (c->min_pixels < 1 || c->max_pixels < c->min_pixels || c->max_pixels > max_area)
        return mmupt_fail(err, "image processor: need 1 <= min_pixels (%lld) <= max_pixels (%lld) <= %lld",
                          (long long)c->min_pixels, (long long)c->max_pixels, (long long)max_area);
    for (int i = 0; i < 3; i++)
        if (!isfinite(c->mean[i]) || !isfinite(c->std[i]) || c->std[i] == 0.0f)
            return mmupt_fail(err, "image processor: channel %d: mean %g and std %g must be finite, std nonzero", i,
                              (double)c->mean[i], (double)c->std[i]);
    return 0;
}

int img_smart_resize(int height, int width, const struct img_proc_config *c, int *out_h, int *out_w,
                     struct mmupt_err *err)
{
    if (config_check(c, err)) return -1;
    if (height < 1 || width < 1 || height > IMG_MAX_SIDE || width > IMG_MAX_SIDE)
        return mmupt_fail(err, "smart_resize: image size %dx%d (width x height) out of range", width, height);
    double ratio = (double)(height > width ? height : width) / (double)(height > width ? width : height);
    if (ratio > 200)
        return mmupt_fail(err, "smart_resize: image %dx%d (width x height): aspect ratio %.4g exceeds 200", width,
                          height, ratio);
    /* Python ints and floats, step by step: round() is round-half-even (rint), true division of
     * ints below 2^53 is one correctly rounded double division. */
    int64_t f = (int64_t)c->patch * c->merge;
    int64_t area = (int64_t)height * width;
    int64_t h = (int64_t)rint((double)height / (double)f) * f;
    int64_t w = (int64_t)rint((double)width / (double)f) * f;
    if (h * w > c->max_pixels) {
        double beta = sqrt((double)area / (double)c->max_pixels);
        h = (int64_t)floor((double)height / beta / (double)f) * f;
        w = (int64_t)floor((double)width / beta / (double)f) * f;
        if (h < f) h = f;
        if (w < f) w = f;
    } else if (h * w < c->min_pixels) {
        double beta = sqrt((double)c->min_pixels / (double)area);
        h = (int64_t)ceil((double)height * beta / (double)f) * f;
        w = (int64_t)ceil((double)width * beta / (double)f) * f;
    }
    if (h < f || w < f || h > IMG_MAX_SIDE || w > IMG_MAX_SIDE)
        return mmupt_fail(err, "smart_resize: image %dx%d (width x height) would become %lldx%lld, outside 1..%d",
                          width, height, (long long)w, (long long)h, IMG_MAX_SIDE);
    *out_h = (int)h;
    *out_w = (int)w;
    return 0;
}

/* Copy one patch (all channels, all frames) into its row: values ordered (c, t, y, x). */
static void patch_copy(const struct img_rgb *im, int py, int px, const struct img_proc_config *c,
                       const float lut[3][256], float *dst)
{
    int P = c->patch;
    for (int ch = 0; ch < 3; ch++) {
        float *plane = dst + (size_t)ch * c->temporal_patch * P * P;
        for (int y = 0; y < P; y++) {
            const uint8_t *src = im->data + ((size_t)(py * P + y) * im->width + (size_t)px * P) * 3 + ch;
            for (int x = 0; x < P; x++) plane[y * P + x] = lut[ch][src[3 * x]];
        }
        /* A still image is the same picture in every frame of the temporal patch. */
        for (int t = 1; t < c->temporal_patch; t++)
            memcpy(plane + (size_t)t * P * P, plane, sizeof(float) * (size_t)P * P);
    }
}

int img_preprocess(const struct img_rgb *im, const struct img_proc_config *c, float **pixels, int64_t *n_patches,
                   int64_t grid_thw[3], struct mmupt_err *err)
{
    if (!im || !im->data || im->width < 1 || im->height < 1)
        return mmupt_fail(err, "preprocess: empty image");
    int rh, rw;
    if (img_smart_resize(im->height, im->width, c, &rh, &rw, err)) return -1;
    struct img_rgb resized = {0};
    const struct img_rgb *src = im;
    if (rh != im->height || rw != im->width) {
        if (img_resize_bicubic(im, rw, rh, &resized, err)) return -1;
        src = &resized;
    }

    /* rescale then normalise, as numpy does it: x * (1/255) in double, cast to float32, then
     * (x - mean) / std in float32. 256 values per channel cover every pixel. */
    float lut[3][256];
    for (int ch = 0; ch < 3; ch++)
        for (int v = 0; v < 256; v++) {
            float x = (float)((double)v * (1.0 / 255.0));
            lut[ch][v] = (x - c->mean[ch]) / c->std[ch];
        }

    int P = c->patch, M = c->merge;
    int gh = rh / P, gw = rw / P; /* multiples of M: smart_resize returns multiples of P*M */
    size_t row_len = (size_t)3 * c->temporal_patch * P * P;
    size_t n = (size_t)gh * gw;
    float *out = mmupt_xmalloc(sizeof(float) * n * row_len);
    size_t r = 0;
    for (int by = 0; by < gh / M; by++)
        for (int bx = 0; bx < gw / M; bx++)
            for (int my = 0; my < M; my++)
                for (int mx = 0; mx < M; mx++, r++)
                    patch_copy(src, by * M + my, bx * M + mx, c, (const float(*)[256])lut, out + r * row_len);
    img_free(&resized);
    *pixels = out;
    *n_patches = (int64_t)n;
    grid_thw[0] = 1;
    grid_thw[1] = gh;
    grid_thw[2] = gw;
    return 0;
}
