/* Shared between the image module's files; not part of the public API. */
#ifndef MMUPT_IMAGE_INTERNAL_H
#define MMUPT_IMAGE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "mmupt/err.h"
#include "mmupt/image.h"

/* Format decoders: bytes start with the format's magic; messages start with "PNG: "/"JPEG: ". */
int img_decode_png(const uint8_t *bytes, size_t len, int64_t max_pixels, struct img_rgb *out, struct mmupt_err *err);
int img_decode_jpeg(const uint8_t *bytes, size_t len, int64_t max_pixels, struct img_rgb *out, struct mmupt_err *err);

/* The size check every decoder runs on the header's numbers before allocating pixel memory. */
int img_check_size(const char *format, int64_t width, int64_t height, int64_t max_pixels, struct mmupt_err *err);

/* Allocate width*height*3 bytes for *im (sizes already checked). */
void img_alloc(struct img_rgb *im, int width, int height);

#endif
