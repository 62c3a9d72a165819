/* Bicubic resize of uint8 RGB, computed the way PIL's Image.resize(size, Image.BICUBIC) computes it
 * (Pillow's libImaging resampler), so that the processor's reference output is reproduced exactly:
 *
 *   - separable: one pass per direction with a uint8 intermediate, usually horizontal first (see
 *     vertical_first for the exception); a pass whose size does not change is skipped;
 *   - output pixel i samples around center = (i + 0.5) * scale, scale = in / out; when
 *     downscaling, the kernel is stretched by the scale (support 2 * scale), which is the
 *     antialiasing; the window [center - support, center + support) is rounded to whole pixels
 *     and clipped to the image, and its weights are normalised to sum to one;
 *   - weights become 22-bit fixed point (rounded half away from zero), sums start at half an LSB,
 *     and each result is clipped to 0..255.
 * Every step, the rounding of the window bounds included, follows the same arithmetic in double
 * precision, which is what makes the result bit-identical rather than merely close. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "image/internal.h"

#define IMG_FIXED_BITS 22 /* 32 - 8 bits of result - 2 bits of headroom for negative lobes */

/* Keys' cubic convolution kernel with a = -0.5, support 2. */
static double cubic_kernel(double x)
{
    const double a = -0.5;
    if (x < 0.0) x = -x;
    if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
    if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
    return 0.0;
}

/* The weights of one pass: output i reads inputs first[i] .. first[i] + count[i] - 1 with weights
 * w[i * ksize + j]. */
struct resize_pass {
    int ksize;
    int *first, *count;
    int32_t *w;
};

static void pass_free(struct resize_pass *p)
{
    free(p->first);
    free(p->count);
    free(p->w);
}

static int32_t to_fixed(double w)
{
    return w < 0 ? (int32_t)(-0.5 + w * (1 << IMG_FIXED_BITS)) : (int32_t)(0.5 + w * (1 << IMG_FIXED_BITS));
}

static void pass_init(struct resize_pass *p, int in_size, int out_size)
{
    double scale = (double)in_size / out_size;
    double filterscale = scale < 1.0 ? 1.0 : scale;
    double support = 2.0 * filterscale;
    p->ksize = (int)ceil(support) * 2 + 1;
    p->first = mmupt_xmalloc(sizeof(int) * (size_t)out_size);
    p->count = mmupt_xmalloc(sizeof(int) * (size_t)out_size);
    p->w = mmupt_xcalloc((size_t)out_size * (size_t)p->ksize, sizeof(int32_t));
    double inv = 1.0 / filterscale; /* Pillow multiplies by the reciprocal; dividing rounds differently */
    double *tmp = mmupt_xmalloc(sizeof(double) * (size_t)p->ksize);
    for (int i = 0; i < out_size; i++) {
        double center = (i + 0.5) * scale;
        int lo = (int)(center - support + 0.5); /* truncation toward zero, then clipped, as Pillow */
        int hi = (int)(center + support + 0.5);
        if (lo < 0) lo = 0;
        if (hi > in_size) hi = in_size;
        int n = hi - lo;
        double sum = 0.0;
        for (int j = 0; j < n; j++) {
            tmp[j] = cubic_kernel((j + lo - center + 0.5) * inv);
            sum += tmp[j];
        }
        for (int j = 0; j < n; j++) p->w[(size_t)i * p->ksize + j] = to_fixed(sum != 0.0 ? tmp[j] / sum : tmp[j]);
        p->first[i] = lo;
        p->count[i] = n;
    }
    free(tmp);
}

static uint8_t clip_fixed(int64_t acc)
{
    if (acc < 0) return 0;
    int64_t v = acc >> IMG_FIXED_BITS;
    return (uint8_t)(v > 255 ? 255 : v);
}

/* Horizontal pass: `rows` rows of `in` (in_w wide) into out (out_w wide). */
static void resize_horizontal(const uint8_t *in, int in_w, int rows, const struct resize_pass *p, int out_w,
                              uint8_t *out)
{
    for (int y = 0; y < rows; y++) {
        const uint8_t *src = in + (size_t)y * in_w * 3;
        uint8_t *dst = out + (size_t)y * out_w * 3;
        for (int x = 0; x < out_w; x++) {
            const int32_t *w = p->w + (size_t)x * p->ksize;
            const uint8_t *s = src + (size_t)p->first[x] * 3;
            int64_t a0 = 1 << (IMG_FIXED_BITS - 1), a1 = a0, a2 = a0;
            for (int j = 0; j < p->count[x]; j++) {
                a0 += (int64_t)s[3 * j + 0] * w[j];
                a1 += (int64_t)s[3 * j + 1] * w[j];
                a2 += (int64_t)s[3 * j + 2] * w[j];
            }
            dst[3 * x + 0] = clip_fixed(a0);
            dst[3 * x + 1] = clip_fixed(a1);
            dst[3 * x + 2] = clip_fixed(a2);
        }
    }
}

/* Vertical pass: in has `width` columns; p's input rows are relative to in's first row. */
static void resize_vertical(const uint8_t *in, int width, const struct resize_pass *p, int out_h, uint8_t *out)
{
    size_t stride = (size_t)width * 3;
    for (int y = 0; y < out_h; y++) {
        const int32_t *w = p->w + (size_t)y * p->ksize;
        const uint8_t *src = in + (size_t)p->first[y] * stride;
        uint8_t *dst = out + (size_t)y * stride;
        for (size_t x = 0; x < stride; x++) {
            int64_t acc = 1 << (IMG_FIXED_BITS - 1);
            for (int j = 0; j < p->count[y]; j++) acc += (int64_t)src[(size_t)j * stride + x] * w[j];
            dst[x] = clip_fixed(acc);
        }
    }
}

/* Pillow 13 runs the vertical pass first when the height shrinks by more than twice as many pixels
 * as the width does (Pillow PR 9549, found by testing since the rule is not documented): the
 * intermediate image is then small. Before Pillow 13 the horizontal pass always ran first. The
 * order matters because the intermediate is rounded to uint8. */
static int vertical_first(int in_w, int in_h, int out_w, int out_h)
{
    return out_h < in_h && out_w != in_w && in_h - out_h > 2 * (in_w - out_w);
}

int img_resize_bicubic(const struct img_rgb *in, int out_w, int out_h, struct img_rgb *out, struct mmupt_err *err)
{
    if (!in || !in->data || in->width <= 0 || in->height <= 0 || in->width > IMG_MAX_SIDE || in->height > IMG_MAX_SIDE)
        return mmupt_fail(err, "resize: input image %dx%d is empty or too large", in ? in->width : 0,
                          in ? in->height : 0);
    if (out_w <= 0 || out_h <= 0 || out_w > IMG_MAX_SIDE || out_h > IMG_MAX_SIDE)
        return mmupt_fail(err, "resize: output size %dx%d must be within 1..%d", out_w, out_h, IMG_MAX_SIDE);

    int in_w = in->width, in_h = in->height;
    struct img_rgb res;
    img_alloc(&res, out_w, out_h);
    struct resize_pass ph = {0}, pv = {0};
    if (out_w != in_w) pass_init(&ph, in_w, out_w);
    if (out_h != in_h) pass_init(&pv, in_h, out_h);

    if (out_w == in_w && out_h == in_h) {
        memcpy(res.data, in->data, (size_t)out_w * out_h * 3);
    } else if (out_h == in_h) {
        resize_horizontal(in->data, in_w, in_h, &ph, out_w, res.data);
    } else if (out_w == in_w) {
        resize_vertical(in->data, in_w, &pv, out_h, res.data);
    } else if (vertical_first(in_w, in_h, out_w, out_h)) {
        uint8_t *tmp = mmupt_xmalloc((size_t)in_w * out_h * 3);
        resize_vertical(in->data, in_w, &pv, out_h, tmp);
        resize_horizontal(tmp, in_w, out_h, &ph, out_w, res.data);
        free(tmp);
    } else {
        /* The horizontal pass only needs the rows the vertical pass will read. */
        int y_first = pv.first[0], y_last = pv.first[out_h - 1] + pv.count[out_h - 1];
        uint8_t *tmp = mmupt_xmalloc((size_t)out_w * (y_last - y_first) * 3);
        resize_horizontal(in->data + (size_t)y_first * in_w * 3, in_w, y_last - y_first, &ph, out_w, tmp);
        for (int y = 0; y < out_h; y++) pv.first[y] -= y_first;
        resize_vertical(tmp, out_w, &pv, out_h, res.data);
        free(tmp);
    }
    pass_free(&ph);
    pass_free(&pv);
    *out = res;
    return 0;
}
