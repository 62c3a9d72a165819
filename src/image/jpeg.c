/* JPEG to RGB with libjpeg(-turbo), with PIL's choices: default IDCT (islow) and fancy upsampling,
 * output colour space from the number of components (1: grey, 3: RGB, 4: CMYK), CMYK taken as
 * Adobe-inverted and converted to RGB with PIL's formula.
 *
 * libjpeg's default error handler calls exit(); ours longjmps back with the message instead.
 * Warnings that mean pixels were lost or invented (corrupt Huffman data, premature end of file)
 * are errors too; warnings about metadata are ignored, as PIL ignores them. */
#include <setjmp.h>
#include <stdio.h> /* jpeglib.h needs FILE and size_t */
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <jerror.h>

#include "image/internal.h"
#include "mmupt/strutil.h"

/* Progressive files can hold any number of scans, each a pass over the whole coefficient buffer;
 * a few hundred tiny scans is a known way to make a small file take minutes. Real encoders write
 * about ten. */
#define IMG_JPEG_MAX_SCANS 1000

struct jpeg_ctx {
    struct jpeg_decompress_struct cinfo;
    struct jpeg_error_mgr jerr;
    struct jpeg_progress_mgr progress;
    jmp_buf jump;
    char msg[JMSG_LENGTH_MAX + 64];
    uint8_t *row; /* one scanline when the output is not RGB */
    struct img_rgb im;
};

static struct jpeg_ctx *ctx_of(j_common_ptr cinfo)
{
    return (struct jpeg_ctx *)cinfo->client_data;
}

static void jpeg_ctx_error_exit(j_common_ptr cinfo)
{
    struct jpeg_ctx *c = ctx_of(cinfo);
    char text[JMSG_LENGTH_MAX];
    cinfo->err->format_message(cinfo, text);
    str_copy(c->msg, sizeof c->msg, text);
    longjmp(c->jump, 1);
}

/* The warnings after which the pixels are not the file's: libjpeg fills in grey or zeros. */
static int warning_is_fatal(int code)
{
    switch (code) {
    case JWRN_HIT_MARKER:      /* corrupt data: premature end of data segment */
    case JWRN_HUFF_BAD_CODE:   /* corrupt data: bad Huffman code */
    case JWRN_JPEG_EOF:        /* premature end of file */
    case JWRN_MUST_RESYNC:     /* corrupt data: found marker instead of RST */
    case JWRN_NOT_SEQUENTIAL:  /* invalid SOS parameters for sequential JPEG */
    case JWRN_BOGUS_PROGRESSION:
    case JWRN_TOO_MUCH_DATA:   /* application transferred too many scanlines */
    case JWRN_ARITH_BAD_CODE:
        return 1;
    default:
        return 0;
    }
}

static void jpeg_ctx_emit_message(j_common_ptr cinfo, int level)
{
    if (level >= 0) return; /* trace messages */
    cinfo->err->num_warnings++;
    if (warning_is_fatal(cinfo->err->msg_code)) jpeg_ctx_error_exit(cinfo);
}

static void jpeg_ctx_output_message(j_common_ptr cinfo)
{
    (void)cinfo; /* never print from library code */
}

static void jpeg_ctx_progress(j_common_ptr cinfo)
{
    struct jpeg_ctx *c = ctx_of(cinfo);
    if (c->cinfo.input_scan_number > IMG_JPEG_MAX_SCANS) {
        snprintf(c->msg, sizeof c->msg, "more than %d progressive scans", IMG_JPEG_MAX_SCANS);
        longjmp(c->jump, 1);
    }
}

/* PIL's CMYK -> RGB on Adobe-inverted samples (PIL stores c = 255 - file byte): with
 * nk = 255 - k, each channel is nk - round(c * nk / 255), the division done with PIL's
 * shift-based rounding. */
static uint8_t cmyk_channel(int inverted_c, int nk)
{
    int c = 255 - inverted_c;
    int t = c * nk + 128;
    int v = nk - (((t >> 8) + t) >> 8);
    return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

static void jpeg_row_to_rgb(const struct jpeg_ctx *c, const uint8_t *src, uint8_t *dst, int width)
{
    if (c->cinfo.out_color_space == JCS_GRAYSCALE) {
        for (int x = 0; x < width; x++, dst += 3) dst[0] = dst[1] = dst[2] = src[x];
        return;
    }
    for (int x = 0; x < width; x++, dst += 3, src += 4) { /* JCS_CMYK */
        int nk = src[3];                                  /* 255 - (255 - file byte) */
        dst[0] = cmyk_channel(src[0], nk);
        dst[1] = cmyk_channel(src[1], nk);
        dst[2] = cmyk_channel(src[2], nk);
    }
}

/* Colour space of the output from the component count, as PIL picks its mode. */
static int choose_out_color_space(struct jpeg_ctx *c)
{
    switch (c->cinfo.num_components) {
    case 1: c->cinfo.out_color_space = JCS_GRAYSCALE; return 0;
    case 3: c->cinfo.out_color_space = JCS_RGB; return 0; /* from YCbCr or RGB */
    case 4: c->cinfo.out_color_space = JCS_CMYK; return 0; /* from CMYK or YCCK */
    default:
        snprintf(c->msg, sizeof c->msg, "%d colour components are not supported (1, 3 or 4)", c->cinfo.num_components);
        return -1;
    }
}

/* The body that runs under the longjmp. Returns 0, or -1 with c->msg (or err) set. */
static int jpeg_run(struct jpeg_ctx *c, const uint8_t *bytes, size_t len, int64_t max_pixels, struct mmupt_err *err)
{
    if (setjmp(c->jump)) return -1;
    jpeg_create_decompress(&c->cinfo);
    c->cinfo.client_data = c;
    c->cinfo.progress = &c->progress;
    jpeg_mem_src(&c->cinfo, bytes, (unsigned long)len);
    jpeg_read_header(&c->cinfo, TRUE);
    if (img_check_size("JPEG", c->cinfo.image_width, c->cinfo.image_height, max_pixels, err)) return -1;
    if (choose_out_color_space(c)) return -1;

    jpeg_start_decompress(&c->cinfo);
    int w = (int)c->cinfo.output_width, h = (int)c->cinfo.output_height;
    if (w != (int)c->cinfo.image_width || h != (int)c->cinfo.image_height) {
        snprintf(c->msg, sizeof c->msg, "decoder output %dx%d differs from the header", w, h);
        return -1;
    }
    img_alloc(&c->im, w, h);
    int direct = c->cinfo.out_color_space == JCS_RGB;
    if (!direct) c->row = mmupt_xmalloc((size_t)w * (size_t)c->cinfo.output_components);
    while (c->cinfo.output_scanline < c->cinfo.output_height) {
        uint8_t *dst = c->im.data + (size_t)c->cinfo.output_scanline * (size_t)w * 3;
        JSAMPROW row = direct ? dst : c->row;
        if (jpeg_read_scanlines(&c->cinfo, &row, 1) != 1) {
            snprintf(c->msg, sizeof c->msg, "decoder returned no scanline");
            return -1;
        }
        if (!direct) jpeg_row_to_rgb(c, c->row, dst, w);
    }
    /* Reads up to EOI: a file cut after the last scan is truncated, as PIL says too. */
    jpeg_finish_decompress(&c->cinfo);
    return 0;
}

int img_decode_jpeg(const uint8_t *bytes, size_t len, int64_t max_pixels, struct img_rgb *out, struct mmupt_err *err)
{
    struct jpeg_ctx *c = mmupt_xcalloc(1, sizeof *c);
    c->cinfo.err = jpeg_std_error(&c->jerr);
    c->jerr.error_exit = jpeg_ctx_error_exit;
    c->jerr.emit_message = jpeg_ctx_emit_message;
    c->jerr.output_message = jpeg_ctx_output_message;
    c->progress.progress_monitor = jpeg_ctx_progress;
    c->cinfo.client_data = c;

    int rc = jpeg_run(c, bytes, len, max_pixels, err);
    if (rc && c->msg[0]) mmupt_fail(err, "JPEG: %s", c->msg); /* else img_check_size filled err */
    jpeg_destroy_decompress(&c->cinfo);
    free(c->row);
    if (rc == 0) *out = c->im;
    else img_free(&c->im);
    free(c);
    return rc;
}
