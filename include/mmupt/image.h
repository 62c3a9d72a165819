/* image: decode PNG/JPEG to RGB and turn an image into Qwen2-VL vision-tower input.
 *
 * The reference is what transformers 5.17 computes on a machine without torchvision: its
 * Qwen2VLImageProcessor then falls back to the PIL backend (Qwen2VLImageProcessorPil, Pillow 13).
 * So decoding follows PIL's Image.open(...).convert("RGB"), resizing follows PIL's
 * Image.resize(BICUBIC) bit for bit, and rescale/normalise/patchify follow the processor's numpy
 * code in float32. (The torchvision "fast" processor differs from PIL by about one LSB after the
 * resize; nothing here tries to match it.)
 *
 * Every function that reads input returns 0 or -1 and fills err; results are caller-owned and are
 * written only on success.
 */
#ifndef MMUPT_IMAGE_H
#define MMUPT_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "mmupt/err.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Largest width or height accepted anywhere (PNG allows 2^31-1, JPEG 65535). */
#define IMG_MAX_SIDE 65535

struct img_rgb {
    int width, height;
    uint8_t *data; /* RGB, row-major, 3 bytes per pixel, width*height*3 bytes (malloc'd) */
};

/* Decode a PNG or JPEG (chosen by the magic bytes) to 8-bit RGB, as PIL's convert("RGB") does:
 *   PNG: grey (1/2/4 bits scaled to 8), grey+alpha, palette (1-8 bits, with or without tRNS;
 *        indices past the palette give black), RGB, RGBA, interlaced (Adam7). Alpha and tRNS are
 *        dropped, not composited. 16-bit samples keep their high byte, except 16-bit grey
 *        without alpha, which PIL opens as "I;16" and clips to 255 (min(v, 255)).
 *   JPEG: greyscale, YCbCr/RGB, CMYK/YCCK (read as Adobe-inverted CMYK and converted with PIL's
 *        formula). Corrupt entropy data and truncation are errors (PIL decodes corrupt data with
 *        grey blocks; a training set is better off without such images).
 * max_pixels (>= 1) caps width*height; it is checked from the header before any pixel memory is
 * allocated. Width or height 0 or above IMG_MAX_SIDE is refused. Other formats (GIF, BMP, WebP,
 * ...) give "unsupported image format". */
int img_decode(const void *bytes, size_t len, int64_t max_pixels, struct img_rgb *out, struct mmupt_err *err);
/* The same for a file; messages start with the path. */
int img_decode_file(const char *path, int64_t max_pixels, struct img_rgb *out, struct mmupt_err *err);
void img_free(struct img_rgb *im); /* frees data and zeroes *im; safe on a zeroed struct */

struct img_proc_config {
    int64_t min_pixels, max_pixels;   /* smart_resize bounds on the resized area, in pixels */
    int patch, temporal_patch, merge; /* 14, 2, 2 */
    float mean[3], std[3];            /* per channel, applied after the 1/255 rescale */
};

/* Qwen2-VL's preprocessor_config.json: min 56*56, max 28*28*16384, patch 14, temporal 2, merge 2,
 * OpenAI CLIP mean and std. */
void img_proc_config_default(struct img_proc_config *c);

/* transformers' smart_resize with factor = patch*merge: round each side to the nearest multiple
 * of the factor (ties to even, as Python's round), then if the area exceeds max_pixels scale both
 * sides down (floor, at least one factor), else if it is below min_pixels scale them up (ceil).
 * An aspect ratio above 200 is refused. Sides below the factor are accepted, as transformers 5.17
 * accepts them (older versions refused them): a 1x1 image becomes 56x56 with the defaults.
 * Results are multiples of the factor; a result above IMG_MAX_SIDE is refused. */
int img_smart_resize(int height, int width, const struct img_proc_config *c, int *out_h, int *out_w,
                     struct mmupt_err *err);

/* Resize uint8 RGB to out_w x out_h as PIL's Image.resize(size, BICUBIC): separable (horizontal
 * pass, then vertical), cubic kernel a = -0.5 whose support widens by the scale when
 * downscaling (antialiasing), coefficients in 22-bit fixed point, each pass rounded and clipped
 * to uint8. Same size gives a copy. */
int img_resize_bicubic(const struct img_rgb *in, int out_w, int out_h, struct img_rgb *out, struct mmupt_err *err);

/* The processor's whole pipeline for one image: smart_resize, bicubic resize (skipped when the
 * size already fits), x * (1/255) in double rounded to float, (x - mean) / std in float, the
 * frame repeated temporal_patch times, and patches in merge-block order: row
 * ((by * (gw/merge) + bx) * merge + my) * merge + mx holds patch (by*merge+my, bx*merge+mx), its
 * 3*temporal_patch*patch*patch values ordered (channel, frame, y, x).
 * *pixels is malloc'd [*n_patches][3*temporal_patch*patch*patch] float32; grid_thw = {1, h/patch,
 * w/patch} and *n_patches = grid_thw[1] * grid_thw[2]. */
int img_preprocess(const struct img_rgb *im, const struct img_proc_config *c, float **pixels, int64_t *n_patches,
                   int64_t grid_thw[3], struct mmupt_err *err);

/* Encode 8-bit RGB as a PNG file in memory (src/image/encode.c): not interlaced, no ancillary
 * chunks, fixed compression settings, so equal pixels give equal bytes. *out is malloc'd (*len
 * bytes). Refuses an image without pixels or with a side outside [1, IMG_MAX_SIDE]. */
int img_png_encode(const struct img_rgb *im, uint8_t **out, size_t *len, struct mmupt_err *err);

#ifdef __cplusplus
}
#endif

#endif
