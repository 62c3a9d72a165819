/* Image module unit tests: smart_resize against a table computed with transformers 5.17, the
 * patch layout on a synthetic image whose pixels encode their coordinates, the normalisation
 * arithmetic, and bad input (each a clear error, never a crash). Parity with PIL on real files is
 * test_image_parity.c. argv[1]: tests/fixtures/images (source files for the corruption tests). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../test.h"
#include "mmupt/image.h"
#include "mmupt/strutil.h"

static const char *fixtures; /* argv[1] */

/* ------------------------------------------------------------------ helpers */

static char *read_fixture(const char *name, size_t *len)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", fixtures, name);
    char *buf = NULL;
    struct mmupt_err err;
    if (file_read_all(path, 1 << 20, &buf, len, &err)) {
        fprintf(stderr, "  %s\n", err.msg);
        return NULL;
    }
    return buf;
}

static uint32_t crc32_png(const uint8_t *p, size_t n)
{
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1)));
    }
    return c ^ 0xffffffffu;
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}

/* Recompute the CRC of the chunk whose length field starts at off. */
static void png_fix_crc(uint8_t *png, size_t off)
{
    uint32_t len = (uint32_t)png[off] << 24 | (uint32_t)png[off + 1] << 16 | (uint32_t)png[off + 2] << 8 | png[off + 3];
    put_be32(png + off + 8 + len, crc32_png(png + off + 4, 4 + len));
}

/* Offset of the first JPEG marker FF <code> (scanning the headers), or 0. */
static size_t jpeg_find_marker(const uint8_t *p, size_t len, uint8_t code)
{
    size_t i = 2;
    while (i + 4 <= len && p[i] == 0xff) {
        if (p[i + 1] == code) return i;
        i += 2 + ((size_t)p[i + 2] << 8 | p[i + 3]);
    }
    return 0;
}

/* Decode expecting failure whose message contains `needle`; the output must stay untouched. */
static void expect_decode_error(struct test_state *ts, const void *p, size_t len, int64_t max_pixels,
                                const char *needle, const char *what)
{
    struct img_rgb out = {7, 9, (uint8_t *)&out};
    struct mmupt_err err = {{0}};
    int rc = img_decode(p, len, max_pixels, &out, &err);
    CHECK_MSG(ts, rc == -1, "%s: decoded although it should not", what);
    CHECK_MSG(ts, out.width == 7 && out.height == 9 && out.data == (uint8_t *)&out, "%s: output changed", what);
    if (rc == 0) img_free(&out);
    if (needle) CHECK_CONTAINS(ts, err.msg, needle);
    if (getenv("TEST_IMAGE_VERBOSE")) printf("  %s: %s\n", what, err.msg);
}

/* ------------------------------------------------------------------ smart_resize */

struct resize_case {
    int h, w;
    int64_t min, max;
    int want_h, want_w;
};

/* From transformers 5.17's smart_resize(h, w, factor=28, min_pixels, max_pixels). */
static const struct resize_case resize_table[] = {
    {56, 56, 3136, 12845056, 56, 56},
    {70, 56, 3136, 12845056, 56, 56},   /* 70/28 = 2.5 rounds to 2 (half to even) */
    {42, 56, 3136, 12845056, 56, 56},   /* 1.5 rounds to 2 */
    {98, 56, 3136, 12845056, 112, 56},  /* 3.5 rounds to 4 */
    {126, 56, 3136, 12845056, 112, 56}, /* 4.5 rounds to 4: C's round() would give 140 */
    {154, 182, 3136, 12845056, 168, 168},
    {1, 1, 3136, 12845056, 56, 56},     /* sides below the factor: scaled up, not refused */
    {10, 10, 3136, 12845056, 56, 56},
    {1, 200, 3136, 12845056, 28, 812},  /* aspect ratio exactly 200 is allowed */
    {200, 1, 3136, 12845056, 812, 28},
    {4, 800, 3136, 12845056, 28, 812},
    {20, 300, 3136, 12845056, 28, 308},
    {331, 17, 3136, 12845056, 336, 28},
    {480, 640, 3136, 12845056, 476, 644},
    {1080, 1920, 3136, 12845056, 1092, 1932},
    {3000, 4000, 3136, 12845056, 2996, 4004},
    {4000, 4000, 3136, 12845056, 3584, 3584}, /* max branch */
    {65535, 65535, 3136, 12845056, 3584, 3584},
    {100, 20000, 3136, 12845056, 112, 19992},
    {28, 28, 784, 3136, 28, 28},
    {14, 14, 784, 3136, 28, 28},
    {63, 84, 784, 3136, 28, 56},
    {10, 200, 784, 3136, 28, 140},      /* min branch overshoots max_pixels, as in transformers */
    {50, 70, 784, 3136, 56, 56},
    {100, 20000, 784, 3136, 28, 784},   /* max branch clamps the short side to one factor */
};

static void test_smart_resize_table(struct test_state *ts)
{
    struct img_proc_config c;
    img_proc_config_default(&c);
    for (size_t i = 0; i < sizeof resize_table / sizeof resize_table[0]; i++) {
        const struct resize_case *t = &resize_table[i];
        c.min_pixels = t->min;
        c.max_pixels = t->max;
        int h = 0, w = 0;
        struct mmupt_err err;
        int rc = img_smart_resize(t->h, t->w, &c, &h, &w, &err);
        CHECK_MSG(ts, rc == 0 && h == t->want_h && w == t->want_w, "%dx%d (h x w): got %dx%d, want %dx%d%s%s", t->h,
                  t->w, h, w, t->want_h, t->want_w, rc ? ": " : "", rc ? err.msg : "");
    }
}

static void test_smart_resize_refusals(struct test_state *ts)
{
    struct img_proc_config c;
    img_proc_config_default(&c);
    int h = -1, w = -1;
    struct mmupt_err err;
    CHECK(ts, img_smart_resize(1, 201, &c, &h, &w, &err) == -1);
    CHECK_CONTAINS(ts, err.msg, "aspect ratio 201 exceeds 200");
    CHECK(ts, img_smart_resize(20001, 100, &c, &h, &w, &err) == -1);
    CHECK_CONTAINS(ts, err.msg, "aspect ratio 200 exceeds 200"); /* 200.01, printed with 4 digits */
    CHECK(ts, h == -1 && w == -1);
    CHECK(ts, img_smart_resize(0, 10, &c, &h, &w, &err) == -1);
    CHECK_CONTAINS(ts, err.msg, "out of range");
    CHECK(ts, img_smart_resize(10, 70000, &c, &h, &w, &err) == -1);

    struct img_proc_config bad = c;
    bad.patch = 0;
    CHECK(ts, img_smart_resize(56, 56, &bad, &h, &w, &err) == -1);
    CHECK_CONTAINS(ts, err.msg, "patch 0");
    bad = c;
    bad.min_pixels = bad.max_pixels + 1;
    CHECK(ts, img_smart_resize(56, 56, &bad, &h, &w, &err) == -1);
    CHECK_CONTAINS(ts, err.msg, "min_pixels");
    bad = c;
    bad.std[1] = 0.0f;
    CHECK(ts, img_smart_resize(56, 56, &bad, &h, &w, &err) == -1);
    CHECK_CONTAINS(ts, err.msg, "channel 1");
    /* A min_pixels so large that the result would pass the side limit. */
    bad = c;
    bad.min_pixels = bad.max_pixels = (int64_t)65535 * 65535;
    CHECK(ts, img_smart_resize(1, 200, &bad, &h, &w, &err) == -1);
    CHECK_CONTAINS(ts, err.msg, "would become");
}

/* ------------------------------------------------------------------ patch layout */

/* R = y, G = x, B = 255 - (y + x) % 256: every pixel says where it came from. */
static struct img_rgb coordinate_image(int w, int h)
{
    struct img_rgb im = {w, h, malloc((size_t)w * h * 3)};
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            uint8_t *p = im.data + ((size_t)y * w + x) * 3;
            p[0] = (uint8_t)y, p[1] = (uint8_t)x, p[2] = (uint8_t)(255 - (y + x) % 256);
        }
    return im;
}

static int expected_channel(int ch, int y, int x)
{
    return ch == 0 ? y : ch == 1 ? x : 255 - (y + x) % 256;
}

/* With mean 0 and std 1 a value is v/255, so the byte each float came from can be read back. */
static void check_layout(struct test_state *ts, int w, int h, int merge, int temporal)
{
    struct img_proc_config c;
    img_proc_config_default(&c);
    c.merge = merge;
    c.temporal_patch = temporal;
    c.min_pixels = 1;
    for (int i = 0; i < 3; i++) c.mean[i] = 0.0f, c.std[i] = 1.0f;
    struct img_rgb im = coordinate_image(w, h);
    float *px = NULL;
    int64_t n = 0, grid[3] = {0};
    struct mmupt_err err;
    int rc = img_preprocess(&im, &c, &px, &n, grid, &err);
    CHECK_MSG(ts, rc == 0, "%s", err.msg);
    if (rc) {
        free(im.data);
        return;
    }
    const int P = 14, gh = h / P, gw = w / P, len = 3 * temporal * P * P;
    CHECK_MSG(ts, grid[0] == 1 && grid[1] == gh && grid[2] == gw && n == (int64_t)gh * gw,
              "grid %lld,%lld,%lld n %lld for %dx%d", (long long)grid[0], (long long)grid[1], (long long)grid[2],
              (long long)n, w, h);
    int bad = 0;
    for (int64_t r = 0; r < n && !bad; r++) {
        /* row r = ((by * (gw/merge) + bx) * merge + my) * merge + mx */
        int mx = (int)(r % merge), my = (int)(r / merge % merge);
        int blk = (int)(r / (merge * merge)), bx = blk % (gw / merge), by = blk / (gw / merge);
        int py = by * merge + my, pxi = bx * merge + mx;
        for (int k = 0; k < len && !bad; k++) {
            int ch = k / (temporal * P * P), yy = k / P % P, xx = k % P; /* (c, t, y, x); t ignored */
            int want = expected_channel(ch, py * P + yy, pxi * P + xx);
            int got = (int)(px[r * len + k] * 255.0f + 0.5f);
            if (got != want) {
                CHECK_MSG(ts, 0, "%dx%d merge %d: row %lld elem %d: got %d want %d", w, h, merge, (long long)r, k, got,
                          want);
                bad = 1;
            }
        }
    }
    free(px);
    free(im.data);
}

static void test_patch_order(struct test_state *ts)
{
    check_layout(ts, 84, 56, 2, 2);   /* 3x2 merge blocks, 6x4 patches */
    check_layout(ts, 56, 112, 2, 2);  /* taller than wide */
    check_layout(ts, 42, 28, 1, 1);   /* no merging, one frame */
    check_layout(ts, 168, 84, 3, 2);  /* merge 3: factor 42 */
}

static void test_normalisation_arithmetic(struct test_state *ts)
{
    /* A constant image needs no resize to stay constant, so every value of channel c must be
     * ((float)(v / 255.0) - mean[c]) / std[c] in float32, as numpy computes it. */
    struct img_proc_config c;
    img_proc_config_default(&c);
    CHECK(ts, c.min_pixels == 3136 && c.max_pixels == 12845056 && c.patch == 14 && c.merge == 2);
    CHECK(ts, c.mean[0] == 0.48145466f && c.std[2] == 0.27577711f);
    struct img_rgb im = {56, 56, malloc(56 * 56 * 3)};
    for (int i = 0; i < 56 * 56; i++) im.data[3 * i] = 0, im.data[3 * i + 1] = 128, im.data[3 * i + 2] = 255;
    float *px = NULL;
    int64_t n = 0, grid[3];
    struct mmupt_err err;
    CHECK(ts, img_preprocess(&im, &c, &px, &n, grid, &err) == 0);
    if (px) {
        const uint8_t v[3] = {0, 128, 255};
        for (int ch = 0; ch < 3; ch++) {
            float x = (float)(v[ch] * (1.0 / 255.0));
            float want = (x - c.mean[ch]) / c.std[ch];
            for (int64_t r = 0; r < n; r++)
                for (int k = 0; k < 392; k++)
                    if (px[r * 1176 + ch * 392 + k] != want) {
                        CHECK_MSG(ts, 0, "channel %d row %lld: %.9g != %.9g", ch, (long long)r,
                                  (double)px[r * 1176 + ch * 392 + k], (double)want);
                        r = n;
                        break;
                    }
        }
        CHECK(ts, px[0] < -1.79f && px[0] > -1.80f); /* (0 - 0.4815) / 0.2686 */
    }
    free(px);
    free(im.data);
}

/* ------------------------------------------------------------------ resize */

static void test_resize_basics(struct test_state *ts)
{
    struct img_rgb im = coordinate_image(30, 20), out = {0};
    struct mmupt_err err;
    CHECK(ts, img_resize_bicubic(&im, 30, 20, &out, &err) == 0);
    CHECK(ts, out.data && memcmp(out.data, im.data, 30 * 20 * 3) == 0);
    img_free(&out);
    CHECK(ts, out.data == NULL && out.width == 0);
    /* A constant image stays constant at any scale (the weights sum to one). */
    memset(im.data, 77, 30 * 20 * 3);
    const int sizes[][2] = {{1, 1}, {7, 3}, {100, 61}, {30, 5}, {2, 20}};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        CHECK(ts, img_resize_bicubic(&im, sizes[i][0], sizes[i][1], &out, &err) == 0);
        int ok = out.width == sizes[i][0] && out.height == sizes[i][1];
        for (int k = 0; ok && k < out.width * out.height * 3; k++) ok = out.data[k] == 77;
        CHECK_MSG(ts, ok, "constant image resized to %dx%d", sizes[i][0], sizes[i][1]);
        img_free(&out);
    }
    CHECK(ts, img_resize_bicubic(&im, 0, 5, &out, &err) == -1);
    CHECK_CONTAINS(ts, err.msg, "output size 0x5");
    CHECK(ts, img_resize_bicubic(&im, 5, 70000, &out, &err) == -1);
    struct img_rgb empty = {0};
    CHECK(ts, img_resize_bicubic(&empty, 5, 5, &out, &err) == -1);
    CHECK_CONTAINS(ts, err.msg, "empty");
    free(im.data);
}

/* ------------------------------------------------------------------ bad input */

static void test_unknown_formats(struct test_state *ts)
{
    expect_decode_error(ts, "", 0, 1 << 20, "empty image (0 bytes)", "empty");
    expect_decode_error(ts, "GIF89a\x01\0\x01\0\0\0\0;", 14, 1 << 20, "unsupported image format (GIF)", "gif");
    expect_decode_error(ts, "BM\x3a\0\0\0\0\0\0\0\x36\0\0\0", 14, 1 << 20, "unsupported image format (BMP)", "bmp");
    expect_decode_error(ts, "RIFF\x1a\0\0\0WEBPVP8L", 16, 1 << 20, "unsupported image format (WebP)", "webp");
    expect_decode_error(ts, "II*\0\x08\0\0\0", 8, 1 << 20, "(TIFF)", "tiff");
    expect_decode_error(ts, "\0\0\0\x1c" "ftypavif", 12, 1 << 20, "ISO media", "avif");
    expect_decode_error(ts, "hello, world", 12, 1 << 20,
                        "unsupported image format (first bytes 68 65 6c 6c 6f 2c 20 77)", "text");
    expect_decode_error(ts, "\x89PNG", 4, 1 << 20, "unsupported image format", "png magic cut");
    struct img_rgb out;
    struct mmupt_err err;
    CHECK(ts, img_decode("\xff\xd8\xff", 3, 0, &out, &err) == -1);
    CHECK_CONTAINS(ts, err.msg, "max_pixels must be at least 1");
}

static void test_files(struct test_state *ts)
{
    struct img_rgb out = {0};
    struct mmupt_err err;
    char path[] = "/tmp/mmupt-test-image-XXXXXX";
    int fd = mkstemp(path);
    CHECK(ts, fd >= 0);
    if (fd < 0) return;
    close(fd);
    CHECK(ts, img_decode_file(path, 1 << 20, &out, &err) == -1); /* zero-size file */
    CHECK_CONTAINS(ts, err.msg, path);
    CHECK_CONTAINS(ts, err.msg, "empty image");
    FILE *f = fopen(path, "wb");
    fputs("GIF87a", f);
    fclose(f);
    CHECK(ts, img_decode_file(path, 1 << 20, &out, &err) == -1);
    CHECK_CONTAINS(ts, err.msg, path);
    CHECK_CONTAINS(ts, err.msg, "unsupported image format (GIF)");
    unlink(path);
    CHECK(ts, img_decode_file("/nonexistent/x.png", 1 << 20, &out, &err) == -1);
    CHECK_CONTAINS(ts, err.msg, "/nonexistent/x.png: cannot open");

    /* A good file through the file entry point, and the pixel cap with the path in the message. */
    char good[4096];
    snprintf(good, sizeof good, "%s/png_grey_37x29.png", fixtures);
    CHECK(ts, img_decode_file(good, 37 * 29, &out, &err) == 0 && out.width == 37 && out.height == 29);
    img_free(&out);
    CHECK(ts, img_decode_file(good, 37 * 29 - 1, &out, &err) == -1); /* one pixel over the cap */
    CHECK_CONTAINS(ts, err.msg, good);
    CHECK_CONTAINS(ts, err.msg, "1073 pixels exceed the limit of 1072");
}

static void test_truncated_png(struct test_state *ts)
{
    const char *names[] = {"png_rgb_interlaced_35x41.png", "png_palette_45x33.png", "png_grey16_33x27.png"};
    for (size_t f = 0; f < sizeof names / sizeof names[0]; f++) {
        size_t len;
        char *png = read_fixture(names[f], &len);
        CHECK(ts, png != NULL);
        if (!png) continue;
        /* Every cut before the IEND chunk (the last 12 bytes) loses pixels or a CRC: an error.
         * Cutting IEND itself is accepted, as PIL accepts it. */
        int failures = 0, wrong = 0;
        for (size_t cut = 0; cut < len; cut++) {
            struct img_rgb out;
            struct mmupt_err err;
            int rc = img_decode(png, cut, 1 << 20, &out, &err);
            if (rc == 0) img_free(&out);
            if (cut < len - 12) {
                failures += rc != 0;
                if (rc == 0 || (cut >= 8 && !strstr(err.msg, "PNG: "))) wrong++;
            } else {
                CHECK_MSG(ts, rc == 0, "%s cut at %zu of %zu: %s", names[f], cut, len, err.msg);
            }
        }
        CHECK_MSG(ts, failures == (int)(len - 12) && wrong == 0, "%s: %d of %zu cuts failed, %d wrongly", names[f],
                  failures, len - 12, wrong);
        expect_decode_error(ts, png, len / 2, 1 << 20, "PNG: file is truncated", names[f]);
        free(png);
    }
}

static void test_truncated_jpeg(struct test_state *ts)
{
    const char *names[] = {"jpg_rgb_q95_45x38.jpg", "jpg_progressive_48x40.jpg", "jpg_cmyk_32x24.jpg"};
    for (size_t f = 0; f < sizeof names / sizeof names[0]; f++) {
        size_t len;
        char *jpg = read_fixture(names[f], &len);
        CHECK(ts, jpg != NULL);
        if (!jpg) continue;
        int failures = 0, wrong = 0;
        for (size_t cut = 0; cut < len; cut++) { /* every cut, even of the final EOI, as PIL */
            struct img_rgb out;
            struct mmupt_err err;
            int rc = img_decode(jpg, cut, 1 << 20, &out, &err);
            if (rc == 0) img_free(&out);
            failures += rc != 0;
            if (rc == 0 || (cut >= 3 && !strstr(err.msg, "JPEG: "))) wrong++;
        }
        CHECK_MSG(ts, failures == (int)len && wrong == 0, "%s: %d of %zu cuts failed, %d wrongly", names[f], failures,
                  len, wrong);
        expect_decode_error(ts, jpg, len - 1, 1 << 20, "JPEG: Premature end of JPEG file", names[f]);
        expect_decode_error(ts, jpg, len / 2, 1 << 20, "JPEG: Premature end of JPEG file", names[f]);
        free(jpg);
    }
}

static void test_corrupt_png(struct test_state *ts)
{
    size_t len;
    uint8_t *png = (uint8_t *)read_fixture("png_rgb_interlaced_35x41.png", &len);
    CHECK(ts, png != NULL);
    if (!png) return;
    /* IHDR at 8, IDAT at 33 (the file is written chunk by chunk by the fixture tool). */
    CHECK(ts, !memcmp(png + 12, "IHDR", 4) && !memcmp(png + 37, "IDAT", 4));
    uint8_t *bad = malloc(len);

    memcpy(bad, png, len);
    bad[29] ^= 0x01; /* IHDR CRC */
    expect_decode_error(ts, bad, len, 1 << 20, "CRC error", "IHDR CRC");

    memcpy(bad, png, len);
    size_t idat_len = (size_t)bad[33] << 24 | (size_t)bad[34] << 16 | (size_t)bad[35] << 8 | bad[36];
    bad[33 + 8 + idat_len + 3] ^= 0x10; /* IDAT CRC */
    expect_decode_error(ts, bad, len, 1 << 20, "PNG: IDAT: CRC error", "IDAT CRC");

    memcpy(bad, png, len);
    bad[33 + 8 + 100] ^= 0x55; /* IDAT data, CRC left stale: zlib's own check sees it first */
    expect_decode_error(ts, bad, len, 1 << 20, "PNG: IDAT: ", "IDAT data");

    memcpy(bad, png, len);
    for (int i = 0; i < 40; i++) bad[33 + 8 + 2 + i] = 0xff; /* deflate stream garbage, valid CRC */
    png_fix_crc(bad, 33);
    expect_decode_error(ts, bad, len, 1 << 20, "PNG: ", "corrupt deflate data");

    memcpy(bad, png, len);
    put_be32(bad + 16, 0); /* width 0 */
    png_fix_crc(bad, 8);
    expect_decode_error(ts, bad, len, 1 << 20, "Image width is zero", "zero width");

    memcpy(bad, png, len);
    put_be32(bad + 16, 100000), put_be32(bad + 20, 100000); /* refused from the header, nothing allocated */
    png_fix_crc(bad, 8);
    expect_decode_error(ts, bad, len, (int64_t)65535 * 65535, "PNG: image size 100000x100000: sides above 65535",
                        "100000x100000");
    put_be32(bad + 16, 40000), put_be32(bad + 20, 40000);
    png_fix_crc(bad, 8);
    expect_decode_error(ts, bad, len, 1 << 24, "1600000000 pixels exceed the limit of 16777216", "40000x40000");

    memcpy(bad, png, len);
    bad[24] = 7; /* bit depth 7 */
    png_fix_crc(bad, 8);
    expect_decode_error(ts, bad, len, 1 << 20, "bit depth combination", "bit depth 7");
    free(bad);
    free(png);
}

static void test_corrupt_jpeg(struct test_state *ts)
{
    size_t len;
    uint8_t *jpg = (uint8_t *)read_fixture("jpg_rgb_q95_45x38.jpg", &len);
    CHECK(ts, jpg != NULL);
    if (!jpg) return;
    size_t sof = jpeg_find_marker(jpg, len, 0xc0), sos = jpeg_find_marker(jpg, len, 0xda);
    CHECK(ts, sof > 0 && sos > 0);
    if (!sof || !sos) {
        free(jpg);
        return;
    }
    size_t scan = sos + 2 + ((size_t)jpg[sos + 2] << 8 | jpg[sos + 3]);
    uint8_t *bad = malloc(len);

    /* Runs of one bits (FF 00 is a stuffed FF byte) are no valid Huffman code. */
    memcpy(bad, jpg, len);
    for (size_t i = 0; i < 64; i += 2) bad[scan + 200 + i] = 0xff, bad[scan + 201 + i] = 0x00;
    expect_decode_error(ts, bad, len, 1 << 20, "JPEG: Corrupt JPEG data", "bad Huffman code");

    /* A marker in the middle of the entropy-coded data. */
    memcpy(bad, jpg, len);
    bad[scan + 300] = 0xff, bad[scan + 301] = 0xd9;
    expect_decode_error(ts, bad, len, 1 << 20, "JPEG: ", "EOI inside the scan");

    /* Sizes from the SOF header: refused before decompression allocates anything. */
    memcpy(bad, jpg, len);
    bad[sof + 5] = 0xea, bad[sof + 6] = 0x60, bad[sof + 7] = 0xea, bad[sof + 8] = 0x60; /* 60000 x 60000 */
    expect_decode_error(ts, bad, len, 1 << 24, "JPEG: image size 60000x60000: 3600000000 pixels exceed", "60000^2");
    memcpy(bad, jpg, len);
    bad[sof + 5] = 0, bad[sof + 6] = 0; /* height 0 */
    expect_decode_error(ts, bad, len, 1 << 20, "JPEG: ", "height 0");
    memcpy(bad, jpg, len);
    bad[sof + 9] = 2; /* two components */
    expect_decode_error(ts, bad, len, 1 << 20, "JPEG: ", "two components");

    /* Every single-byte corruption of the scan: an error or an image, never a crash. */
    int failed = 0;
    for (size_t i = scan; i < len - 2; i += 7) {
        memcpy(bad, jpg, len);
        bad[i] ^= 0xa5;
        struct img_rgb out;
        struct mmupt_err err;
        if (img_decode(bad, len, 1 << 20, &out, &err) == 0) img_free(&out);
        else failed++;
    }
    CHECK_MSG(ts, failed > 0, "no corruption was noticed");
    free(bad);
    free(jpg);
}

static void test_one_pixel(struct test_state *ts)
{
    size_t len;
    char *png = read_fixture("png_1x1.png", &len);
    CHECK(ts, png != NULL);
    if (!png) return;
    struct img_rgb im = {0};
    struct mmupt_err err;
    CHECK(ts, img_decode(png, len, 1, &im, &err) == 0);
    CHECK(ts, im.width == 1 && im.height == 1 && im.data && im.data[0] == 200 && im.data[1] == 30 && im.data[2] == 90);
    struct img_proc_config c;
    img_proc_config_default(&c);
    float *px = NULL;
    int64_t n = 0, grid[3];
    /* transformers 5.17 scales a 1x1 image up to 56x56 (older versions refused it). */
    CHECK(ts, img_preprocess(&im, &c, &px, &n, grid, &err) == 0);
    CHECK(ts, n == 16 && grid[0] == 1 && grid[1] == 4 && grid[2] == 4);
    if (px) {
        float want = ((float)(30 * (1.0 / 255.0)) - c.mean[1]) / c.std[1];
        CHECK(ts, px[392] == want && px[15 * 1176 + 783] == want);
    }
    free(px);
    img_free(&im);
    free(png);
}

static void test_preprocess_refusals(struct test_state *ts)
{
    struct img_rgb wide = coordinate_image(201, 1);
    struct img_proc_config c;
    img_proc_config_default(&c);
    float *px = (float *)&c;
    int64_t n = -5, grid[3] = {-1, -1, -1};
    struct mmupt_err err;
    CHECK(ts, img_preprocess(&wide, &c, &px, &n, grid, &err) == -1);
    CHECK_CONTAINS(ts, err.msg, "aspect ratio 201 exceeds 200");
    CHECK(ts, px == (float *)&c && n == -5 && grid[0] == -1); /* outputs untouched */
    struct img_rgb empty = {0};
    CHECK(ts, img_preprocess(&empty, &c, &px, &n, grid, &err) == -1);
    CHECK_CONTAINS(ts, err.msg, "empty image");
    free(wide.data);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s tests/fixtures/images\n", argv[0]);
        return 2;
    }
    fixtures = argv[1];
    struct test_state ts = {0};
    RUN(&ts, test_smart_resize_table);
    RUN(&ts, test_smart_resize_refusals);
    RUN(&ts, test_patch_order);
    RUN(&ts, test_normalisation_arithmetic);
    RUN(&ts, test_resize_basics);
    RUN(&ts, test_unknown_formats);
    RUN(&ts, test_files);
    RUN(&ts, test_truncated_png);
    RUN(&ts, test_truncated_jpeg);
    RUN(&ts, test_corrupt_png);
    RUN(&ts, test_corrupt_jpeg);
    RUN(&ts, test_one_pixel);
    RUN(&ts, test_preprocess_refusals);
    return test_summary(&ts);
}
