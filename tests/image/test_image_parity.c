/* The image module against PIL and transformers (tests/fixtures/images, tools/make_image_fixtures.py):
 *   - decode: PNG and JPEG exactly equal to PIL's convert("RGB");
 *   - smart_resize: the processor's image_grid_thw;
 *   - resize: exactly equal to the PIL backend's bicubic resize, and to Image.resize on the
 *     extra scale factors of resize_cases.safetensors;
 *   - img_preprocess: pixel_values within 1e-6 of the processor's.
 * The largest differences are printed, so a change in a library shows up as a number, not only
 * as a failure. */
#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../test.h"
#include "mmupt/image.h"
#include "mmupt/safetensors.h"

static const char *fixtures; /* argv[1] */

struct maxima {
    int png_decode, jpeg_decode, resize;
    double pixel_values;
    int n_images, n_resized, n_pv, n_resize_cases;
};

/* A U8 tensor of the given shape, or NULL (with a failure recorded). */
static const uint8_t *u8_tensor(struct test_state *ts, const struct st_set *s, const char *name, int64_t d0,
                                int64_t d1, int64_t d2)
{
    const struct st_tensor *t = st_find(s, name);
    CHECK_MSG(ts, t != NULL, "tensor %s missing", name);
    if (!t) return NULL;
    int ok = t->dtype == ST_U8 && t->ndim == 3 && t->shape[0] == d0 && t->shape[1] == d1 && t->shape[2] == d2;
    CHECK_MSG(ts, ok, "%s: %s has shape [%lld, %lld, %lld], want [%lld, %lld, %lld]", t->file, name,
              (long long)t->shape[0], (long long)t->shape[1], (long long)t->shape[2], (long long)d0, (long long)d1,
              (long long)d2);
    return ok ? t->data : NULL;
}

static int max_abs_diff_u8(const uint8_t *a, const uint8_t *b, size_t n)
{
    int m = 0;
    for (size_t i = 0; i < n; i++) {
        int d = abs((int)a[i] - (int)b[i]);
        if (d > m) m = d;
    }
    return m;
}

static void check_pixel_values(struct test_state *ts, const char *name, const struct st_set *s,
                               const struct img_rgb *im, const struct img_proc_config *cfg, struct maxima *mx)
{
    const struct st_tensor *t = st_find(s, "pixel_values");
    if (!t) return;
    float *px = NULL;
    int64_t n = 0, grid[3];
    struct mmupt_err err;
    int rc = img_preprocess(im, cfg, &px, &n, grid, &err);
    CHECK_MSG(ts, rc == 0, "%s: %s", name, err.msg);
    if (rc) return;
    CHECK_MSG(ts, t->ndim == 2 && t->shape[0] == n && t->shape[1] == 1176, "%s: pixel_values shape", name);
    if (t->ndim == 2 && t->shape[0] == n && t->shape[1] == 1176) {
        float *want = malloc(sizeof(float) * (size_t)t->numel);
        CHECK(ts, st_copy_f32(t, want, t->numel, &err) == 0);
        double m = 0;
        for (int64_t i = 0; i < t->numel; i++) m = fmax(m, fabs((double)px[i] - (double)want[i]));
        CHECK_MSG(ts, m <= 1e-6, "%s: pixel_values differ by %g", name, m);
        mx->pixel_values = fmax(mx->pixel_values, m);
        mx->n_pv++;
        free(want);
    }
    free(px);
}

static void check_image(struct test_state *ts, const char *st_path, struct maxima *mx)
{
    struct st_set s;
    struct mmupt_err err;
    if (st_open(&s, st_path, &err)) {
        CHECK_MSG(ts, 0, "%s", err.msg);
        return;
    }
    const char *image = st_metadata(&s, "image");
    const char *minp = st_metadata(&s, "min_pixels"), *maxp = st_metadata(&s, "max_pixels");
    CHECK_MSG(ts, image && minp && maxp, "%s: metadata incomplete", st_path);
    if (!image || !minp || !maxp) {
        st_close(&s);
        return;
    }
    struct img_proc_config cfg;
    img_proc_config_default(&cfg);
    cfg.min_pixels = atoll(minp);
    cfg.max_pixels = atoll(maxp);

    char path[4096];
    snprintf(path, sizeof path, "%s/%s", fixtures, image);
    struct img_rgb im = {0};
    int rc = img_decode_file(path, 1 << 20, &im, &err);
    CHECK_MSG(ts, rc == 0, "%s", err.msg);
    if (rc) {
        st_close(&s);
        return;
    }
    mx->n_images++;
    const uint8_t *rgb = u8_tensor(ts, &s, "rgb", im.height, im.width, 3);
    if (rgb) {
        int d = max_abs_diff_u8(rgb, im.data, (size_t)im.width * im.height * 3);
        int is_png = strstr(image, ".png") != NULL;
        CHECK_MSG(ts, d == 0, "%s: decoded pixels differ from PIL's by up to %d", image, d);
        if (is_png && d > mx->png_decode) mx->png_decode = d;
        if (!is_png && d > mx->jpeg_decode) mx->jpeg_decode = d;
    }

    int rh = 0, rw = 0;
    CHECK_MSG(ts, img_smart_resize(im.height, im.width, &cfg, &rh, &rw, &err) == 0, "%s: %s", image, err.msg);
    const struct st_tensor *g = st_find(&s, "image_grid_thw");
    int64_t grid[3] = {0};
    CHECK_MSG(ts, g && st_copy_i64(g, grid, 3, &err) == 0, "%s: image_grid_thw", image);
    CHECK_MSG(ts, grid[0] == 1 && grid[1] * 14 == rh && grid[2] * 14 == rw,
              "%s: smart_resize gives %dx%d, transformers' grid is %lldx%lld patches", image, rw, rh,
              (long long)grid[2], (long long)grid[1]);

    if (st_find(&s, "resized")) {
        const uint8_t *want = u8_tensor(ts, &s, "resized", rh, rw, 3);
        struct img_rgb out = {0};
        CHECK(ts, img_resize_bicubic(&im, rw, rh, &out, &err) == 0);
        if (want && out.data) {
            int d = max_abs_diff_u8(want, out.data, (size_t)rw * rh * 3);
            CHECK_MSG(ts, d == 0, "%s: resized pixels differ from PIL's by up to %d", image, d);
            if (d > mx->resize) mx->resize = d;
            mx->n_resized++;
        }
        img_free(&out);
    } else {
        CHECK_MSG(ts, rh == im.height && rw == im.width, "%s: resized by C but not by transformers", image);
    }
    check_pixel_values(ts, image, &s, &im, &cfg, mx);
    img_free(&im);
    st_close(&s);
}

static void test_processor_fixtures(struct test_state *ts)
{
    struct maxima mx = {0};
    DIR *d = opendir(fixtures);
    CHECK_MSG(ts, d != NULL, "cannot open %s", fixtures);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (n < 12 || strcmp(e->d_name + n - 12, ".safetensors") || !strcmp(e->d_name, "resize_cases.safetensors"))
            continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", fixtures, e->d_name);
        check_image(ts, path, &mx);
    }
    closedir(d);
    CHECK_MSG(ts, mx.n_images >= 20 && mx.n_resized >= 10 && mx.n_pv >= 3, "only %d images, %d resized, %d with pixels",
              mx.n_images, mx.n_resized, mx.n_pv);
    printf("  %d images: max |C - PIL| decode PNG %d, JPEG %d; resize %d (%d images); pixel_values %.3g (%d images)\n",
           mx.n_images, mx.png_decode, mx.jpeg_decode, mx.resize, mx.n_resized, mx.pixel_values, mx.n_pv);
}

static void test_resize_cases(struct test_state *ts)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/resize_cases.safetensors", fixtures);
    struct st_set s;
    struct mmupt_err err;
    int rc = st_open(&s, path, &err);
    CHECK_MSG(ts, rc == 0, "%s", err.msg);
    if (rc) return;
    int n = 0, worst = 0;
    for (;; n++) {
        char in_name[32], out_name[32];
        snprintf(in_name, sizeof in_name, "in_%d", n);
        snprintf(out_name, sizeof out_name, "out_%d", n);
        const struct st_tensor *a = st_find(&s, in_name), *b = st_find(&s, out_name);
        if (!a || !b) break;
        struct img_rgb in = {(int)a->shape[1], (int)a->shape[0], (uint8_t *)a->data}, out = {0};
        CHECK(ts, img_resize_bicubic(&in, (int)b->shape[1], (int)b->shape[0], &out, &err) == 0);
        if (out.data) {
            int d = max_abs_diff_u8(b->data, out.data, (size_t)b->numel);
            CHECK_MSG(ts, d == 0, "case %d: %dx%d -> %dx%d differs by %d", n, in.width, in.height, out.width,
                      out.height, d);
            if (d > worst) worst = d;
        }
        img_free(&out);
    }
    CHECK_MSG(ts, n >= 10, "only %d resize cases", n);
    printf("  %d resize cases: max |C - PIL| %d\n", n, worst);
    st_close(&s);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s tests/fixtures/images\n", argv[0]);
        return 2;
    }
    fixtures = argv[1];
    struct test_state ts = {0};
    RUN(&ts, test_processor_fixtures);
    RUN(&ts, test_resize_cases);
    return test_summary(&ts);
}
