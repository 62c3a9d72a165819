/* PNG to RGB with libpng, converting each colour type the way PIL's convert("RGB") does.
 *
 * libpng reports errors by longjmp to a jmp_buf set in the decoding function. Everything the
 * cleanup needs lives in a context struct reached through a pointer that is not modified after
 * setjmp, so nothing depends on local variables surviving the jump. libpng's own messages go into
 * the context, never to stderr. */
#include <png.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

#include "image/internal.h"
#include "mmupt/strutil.h"

struct png_ctx {
    png_structp png;
    png_infop info;
    const uint8_t *data; /* the whole file */
    size_t len, pos;
    char msg[256];
    char warning[256];   /* the last warning: libpng often explains an error in one just before */
    uint8_t *rows;       /* decoded rows (libpng's layout after our transforms) */
    png_bytep *row_ptrs; /* for interlaced images: one pointer per row into rows */
    struct img_rgb im;   /* the result being built */
};

static void png_ctx_error(png_structp png, png_const_charp msg)
{
    struct png_ctx *c = png_get_error_ptr(png);
    str_copy(c->msg, sizeof c->msg, msg ? msg : "unknown libpng error");
    png_longjmp(png, 1);
}

/* Benign problems (bad ancillary chunk CRC, extra data) are only remembered: PIL ignores them too. */
static void png_ctx_warning(png_structp png, png_const_charp msg)
{
    struct png_ctx *c = png_get_error_ptr(png);
    str_copy(c->warning, sizeof c->warning, msg ? msg : "");
}

static void png_ctx_read(png_structp png, png_bytep dst, size_t n)
{
    struct png_ctx *c = png_get_io_ptr(png);
    if (n > c->len - c->pos) png_error(png, "file is truncated");
    memcpy(dst, c->data + c->pos, n);
    c->pos += n;
}

/* Chunks we never use; libpng skips them unread-into-memory instead of inflating text and ICC
 * profiles. Colour management is ignored as PIL's convert("RGB") ignores it. */
static const png_byte skipped_chunks[] = "iCCP\0iTXt\0tEXt\0zTXt\0sPLT\0eXIf\0tIME\0hIST\0pCAL\0sCAL\0sTER";

/* The transforms that make libpng hand us 8-bit samples (except 16-bit grey, see below).
 * Returns the number of interlace passes. */
static int png_setup_transforms(struct png_ctx *c, int color_type, int depth)
{
    if (color_type == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(c->png); /* x255/85/17 */
    if (color_type == PNG_COLOR_TYPE_PALETTE && depth < 8) png_set_packing(c->png); /* one index per byte */
    /* 16-bit: PIL reads the high byte (rawmodes "RGB;16B", "RGBA;16B", "LA;16B"), which is what
     * strip_16 does. Grey without alpha is the exception: PIL opens it as "I;16" and converting
     * that to RGB clips, so those rows stay 16-bit. */
    if (depth == 16 && color_type != PNG_COLOR_TYPE_GRAY) png_set_strip_16(c->png);
    int passes = png_set_interlace_handling(c->png);
    png_read_update_info(c->png, c->info);
    return passes;
}

/* One decoded row to RGB. */
static void png_row_to_rgb(const uint8_t *src, uint8_t *dst, int width, int color_type, int depth,
                           const uint8_t palette[256][3])
{
    for (int x = 0; x < width; x++, dst += 3) {
        switch (color_type) {
        case PNG_COLOR_TYPE_GRAY: {
            unsigned v = depth == 16 ? (unsigned)(src[2 * x] << 8 | src[2 * x + 1]) : src[x];
            dst[0] = dst[1] = dst[2] = (uint8_t)(v > 255 ? 255 : v);
            break;
        }
        case PNG_COLOR_TYPE_GRAY_ALPHA:
            dst[0] = dst[1] = dst[2] = src[2 * x];
            break;
        case PNG_COLOR_TYPE_PALETTE:
            memcpy(dst, palette[src[x]], 3);
            break;
        case PNG_COLOR_TYPE_RGB:
            memcpy(dst, src + 3 * x, 3);
            break;
        default: /* RGB_ALPHA */
            memcpy(dst, src + 4 * x, 3);
            break;
        }
    }
}

/* The body that runs under libpng's longjmp. Returns 0, or -1 with c->msg set. */
static int png_run(struct png_ctx *c, int64_t max_pixels, struct mmupt_err *err)
{
    if (setjmp(png_jmpbuf(c->png))) return -1;
    png_set_read_fn(c->png, c, png_ctx_read);
    /* libpng's own size limits off (PNG's maximum): img_check_size gives the clearer message. */
    png_set_user_limits(c->png, 0x7fffffff, 0x7fffffff);
    png_set_keep_unknown_chunks(c->png, PNG_HANDLE_CHUNK_NEVER, NULL, 0);
    png_set_keep_unknown_chunks(c->png, PNG_HANDLE_CHUNK_NEVER, skipped_chunks, (int)(sizeof skipped_chunks / 5));
    png_read_info(c->png, c->info);

    png_uint_32 w, h;
    int depth, color_type, interlace;
    png_get_IHDR(c->png, c->info, &w, &h, &depth, &color_type, &interlace, NULL, NULL);
    if (img_check_size("PNG", w, h, max_pixels, err)) {
        c->msg[0] = '\0'; /* err already says it */
        return -1;
    }

    uint8_t palette[256][3];
    memset(palette, 0, sizeof palette); /* indices past the palette read black, as in PIL */
    if (color_type == PNG_COLOR_TYPE_PALETTE) {
        png_colorp pal;
        int n = 0;
        if (png_get_PLTE(c->png, c->info, &pal, &n) != PNG_INFO_PLTE) png_error(c->png, "palette image without PLTE");
        for (int i = 0; i < n && i < 256; i++) {
            palette[i][0] = pal[i].red;
            palette[i][1] = pal[i].green;
            palette[i][2] = pal[i].blue;
        }
    }

    int passes = png_setup_transforms(c, color_type, depth);
    size_t rowbytes = png_get_rowbytes(c->png, c->info);
    img_alloc(&c->im, (int)w, (int)h);
    if (passes == 1) {
        /* Row by row through one buffer: the decoded image never exists twice. */
        c->rows = mmupt_xmalloc(rowbytes);
        for (png_uint_32 y = 0; y < h; y++) {
            png_read_row(c->png, c->rows, NULL);
            png_row_to_rgb(c->rows, c->im.data + (size_t)y * w * 3, (int)w, color_type, depth, palette);
        }
    } else {
        /* Adam7 fills every row in several passes, so the whole decoded image is needed. */
        c->rows = mmupt_xmalloc(rowbytes * h);
        c->row_ptrs = mmupt_xmalloc(sizeof *c->row_ptrs * h);
        for (png_uint_32 y = 0; y < h; y++) c->row_ptrs[y] = c->rows + (size_t)y * rowbytes;
        png_read_image(c->png, c->row_ptrs);
        for (png_uint_32 y = 0; y < h; y++)
            png_row_to_rgb(c->row_ptrs[y], c->im.data + (size_t)y * w * 3, (int)w, color_type, depth, palette);
    }
    /* No png_read_end: like PIL, stop once the pixels are in (a missing IEND is not an error);
     * libpng has already checked the last IDAT's CRC and the end of the zlib stream. */
    return 0;
}

int img_decode_png(const uint8_t *bytes, size_t len, int64_t max_pixels, struct img_rgb *out, struct mmupt_err *err)
{
    struct png_ctx *c = mmupt_xcalloc(1, sizeof *c);
    c->data = bytes;
    c->len = len;
    c->png = png_create_read_struct(PNG_LIBPNG_VER_STRING, c, png_ctx_error, png_ctx_warning);
    if (c->png) c->info = png_create_info_struct(c->png);
    if (!c->png || !c->info) MMUPT_DIE("out of memory creating a libpng reader");

    int rc = png_run(c, max_pixels, err);
    if (rc && c->msg[0] && c->warning[0]) mmupt_fail(err, "PNG: %s (last warning: %s)", c->msg, c->warning);
    else if (rc && c->msg[0]) mmupt_fail(err, "PNG: %s", c->msg);
    png_destroy_read_struct(&c->png, &c->info, NULL);
    free(c->rows);
    free(c->row_ptrs);
    if (rc == 0) *out = c->im;
    else img_free(&c->im);
    free(c);
    return rc;
}
