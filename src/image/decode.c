/* Image decoding front end: pick the decoder by magic bytes, size checks shared by the decoders,
 * reading from a file. The format decoders are png.c and jpeg.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "image/internal.h"
#include "mmupt/strutil.h"

/* A file may be at most this much larger than its pixels at 8 bytes each (16-bit RGBA, stored
 * uncompressed): room for metadata, and still a bound that no file can talk us out of. */
#define IMG_FILE_SLACK_BYTES (64u << 20)
#define IMG_FILE_MAX_BYTES (1u << 30)

static const uint8_t png_magic[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

int img_check_size(const char *format, int64_t width, int64_t height, int64_t max_pixels, struct mmupt_err *err)
{
    if (width <= 0 || height <= 0)
        return mmupt_fail(err, "%s: image size %lldx%lld: width and height must be positive", format,
                          (long long)width, (long long)height);
    if (width > IMG_MAX_SIDE || height > IMG_MAX_SIDE)
        return mmupt_fail(err, "%s: image size %lldx%lld: sides above %d pixels are refused", format,
                          (long long)width, (long long)height, IMG_MAX_SIDE);
    if (width * height > max_pixels)
        return mmupt_fail(err, "%s: image size %lldx%lld: %lld pixels exceed the limit of %lld", format,
                          (long long)width, (long long)height, (long long)(width * height), (long long)max_pixels);
    return 0;
}

void img_alloc(struct img_rgb *im, int width, int height)
{
    im->width = width;
    im->height = height;
    im->data = mmupt_xmalloc((size_t)width * (size_t)height * 3);
}

void img_free(struct img_rgb *im)
{
    if (!im) return;
    free(im->data);
    im->data = NULL;
    im->width = im->height = 0;
}

/* Name the formats people will actually hand us, so the message says what the file is. */
static const char *known_other_format(const uint8_t *p, size_t len)
{
    if (len >= 6 && (!memcmp(p, "GIF87a", 6) || !memcmp(p, "GIF89a", 6))) return "GIF";
    if (len >= 12 && !memcmp(p, "RIFF", 4) && !memcmp(p + 8, "WEBP", 4)) return "WebP";
    if (len >= 2 && !memcmp(p, "BM", 2)) return "BMP";
    if (len >= 4 && (!memcmp(p, "II*\0", 4) || !memcmp(p, "MM\0*", 4))) return "TIFF";
    if (len >= 12 && !memcmp(p + 4, "ftyp", 4)) return "HEIF/AVIF/MP4 (ISO media)";
    if (len >= 12 && !memcmp(p, "\0\0\0\x0cjP  ", 8)) return "JPEG 2000";
    if (len >= 4 && !memcmp(p, "\0\0\1\0", 4)) return "ICO";
    return NULL;
}

int img_decode(const void *bytes, size_t len, int64_t max_pixels, struct img_rgb *out, struct mmupt_err *err)
{
    const uint8_t *p = bytes;
    if (max_pixels < 1) return mmupt_fail(err, "image: max_pixels must be at least 1, got %lld", (long long)max_pixels);
    if (len == 0 || !p) return mmupt_fail(err, "empty image (0 bytes)");
    if (len >= sizeof png_magic && !memcmp(p, png_magic, sizeof png_magic))
        return img_decode_png(p, len, max_pixels, out, err);
    if (len >= 3 && p[0] == 0xff && p[1] == 0xd8 && p[2] == 0xff) return img_decode_jpeg(p, len, max_pixels, out, err);
    const char *other = known_other_format(p, len);
    if (other) return mmupt_fail(err, "unsupported image format (%s); only PNG and JPEG are read", other);
    char hex[3 * 8 + 1] = "";
    for (size_t i = 0, at = 0; i < len && i < 8; i++)
        at += (size_t)snprintf(hex + at, sizeof hex - at, i ? " %02x" : "%02x", p[i]);
    return mmupt_fail(err, "unsupported image format (first bytes %s); only PNG and JPEG are read", hex);
}

int img_decode_file(const char *path, int64_t max_pixels, struct img_rgb *out, struct mmupt_err *err)
{
    size_t cap = IMG_FILE_MAX_BYTES;
    if (max_pixels >= 0 && (uint64_t)max_pixels < (IMG_FILE_MAX_BYTES - IMG_FILE_SLACK_BYTES) / 8)
        cap = IMG_FILE_SLACK_BYTES + 8 * (size_t)max_pixels;
    char *buf;
    size_t len;
    if (file_read_all(path, cap, &buf, &len, err)) return -1; /* its messages name the path */
    int rc = img_decode(buf, len, max_pixels, out, err);
    free(buf);
    if (rc) mmupt_err_prefix(err, "%s", path);
    return rc;
}
