/* MM-UPT prompts: chat template, image pads, tokens (see prompt.h). */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mmupt/prompt.h"
#include "mmupt/strutil.h"

static const char system_turn[] = "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n";
static const char user_open[] = "<|im_start|>user\n";
static const char user_close[] = "<|im_end|>\n<|im_start|>assistant\n";
static const char vision[] = "<|vision_start|><|image_pad|><|vision_end|>";
static const char marker[] = "<image>";

/* Images larger than this are refused before their pixels are decoded (8192 x 8192). */
#define PROMPT_MAX_DECODE_PIXELS ((int64_t)1 << 26)

void prompt_image_config(struct img_proc_config *ic, const struct model_config *m, int64_t min_pixels,
                         int64_t max_pixels)
{
    img_proc_config_default(ic);
    if (m->has_vision) {
        ic->patch = (int)m->vision.patch;
        ic->temporal_patch = (int)m->vision.temporal_patch;
        ic->merge = (int)m->vision.merge;
    }
    if (min_pixels > 0) ic->min_pixels = min_pixels;
    if (max_pixels > 0) ic->max_pixels = max_pixels;
}

int prompt_builder_init(struct prompt_builder *pb, struct tok *tok, const char *format_prompt,
                        const struct img_proc_config *img, int64_t max_tokens, struct mmupt_err *err)
{
    memset(pb, 0, sizeof *pb);
    pb->tok = tok;
    pb->format_prompt = format_prompt;
    pb->img = *img;
    pb->max_tokens = max_tokens;
    pb->image_pad = tok_id(tok, "<|image_pad|>");
    pb->vision_start = tok_id(tok, "<|vision_start|>");
    pb->vision_end = tok_id(tok, "<|vision_end|>");
    if (pb->image_pad < 0 || pb->vision_start < 0 || pb->vision_end < 0)
        return mmupt_fail(err, "the tokenizer has no <|image_pad|>/<|vision_start|>/<|vision_end|> tokens (not a Qwen-VL tokenizer)");
    return 0;
}

static size_t count_markers(const char *s)
{
    size_t n = 0;
    for (const char *p = strstr(s, marker); p; p = strstr(p + sizeof marker - 1, marker)) n++;
    return n;
}

/* The format prompt without leading and trailing white space, as Python's str.strip(). */
static void stripped(const char *s, const char **begin, size_t *len)
{
    while (*s && isspace((unsigned char)*s)) s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1])) n--;
    *begin = s;
    *len = n;
}

int prompt_render(const char *problem, const char *format_prompt, int n_images, char **text, struct mmupt_err *err)
{
    size_t markers = count_markers(problem);
    if (markers != (size_t)n_images)
        return mmupt_fail(err, "the problem has %zu <image> marker(s) but the item has %d image(s)", markers, n_images);
    const char *fp;
    size_t fp_len;
    stripped(format_prompt ? format_prompt : "", &fp, &fp_len);
    size_t cap = sizeof system_turn + sizeof user_open + sizeof user_close + strlen(problem) +
                 markers * sizeof vision + fp_len + 8;
    char *out = mmupt_xmalloc(cap), *w = out;
    w += sprintf(w, "%s%s", system_turn, user_open);
    for (const char *p = problem;;) {
        const char *m = strstr(p, marker);
        size_t n = m ? (size_t)(m - p) : strlen(p);
        memcpy(w, p, n);
        w += n;
        if (!m) break;
        memcpy(w, vision, sizeof vision - 1);
        w += sizeof vision - 1;
        p = m + sizeof marker - 1;
    }
    if (fp_len) { /* EasyR1 appends " " + format_prompt.strip() only when there is one */
        *w++ = ' ';
        memcpy(w, fp, fp_len);
        w += fp_len;
    }
    strcpy(w, user_close);
    *text = out;
    return 0;
}

/* Decode and preprocess every image, concatenating patch rows. */
static int build_images(struct prompt_builder *pb, const uint8_t *const *images, const size_t *image_len, int n,
                        struct prompt_item *out, struct mmupt_err *err)
{
    out->grid = mmupt_xcalloc((size_t)(n ? n : 1) * 3, sizeof *out->grid);
    int64_t row = 3 * (int64_t)pb->img.temporal_patch * pb->img.patch * pb->img.patch;
    for (int i = 0; i < n; i++) {
        struct img_rgb im;
        float *px;
        int64_t np;
        if (img_decode(images[i], image_len[i], PROMPT_MAX_DECODE_PIXELS, &im, err)) {
            mmupt_err_prefix(err, "image %d", i);
            return -1;
        }
        int rc = img_preprocess(&im, &pb->img, &px, &np, out->grid + 3 * i, err);
        img_free(&im);
        if (rc) {
            mmupt_err_prefix(err, "image %d", i);
            return -1;
        }
        float *grown = realloc(out->pixels, (size_t)((out->n_patches + np) * row) * sizeof(float));
        if (!grown) MMUPT_DIE("out of memory");
        out->pixels = grown;
        memcpy(out->pixels + out->n_patches * row, px, (size_t)(np * row) * sizeof(float));
        out->n_patches += np;
        free(px);
    }
    out->n_images = n;
    return 0;
}

/* Replace the k-th <|image_pad|> by t*h*w/merge^2 copies. */
static int expand_pads(struct prompt_builder *pb, const int32_t *ids, size_t n, struct prompt_item *out,
                       struct mmupt_err *err)
{
    int64_t merge2 = (int64_t)pb->img.merge * pb->img.merge, total = (int64_t)n;
    int k = 0;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] != pb->image_pad) continue;
        if (k >= out->n_images) return mmupt_fail(err, "the text holds more <|image_pad|> tokens than images");
        const int64_t *g = out->grid + 3 * k++;
        total += g[0] * g[1] * g[2] / merge2 - 1;
    }
    if (k != out->n_images) return mmupt_fail(err, "%d image(s) but %d <|image_pad|> token(s) in the text", out->n_images, k);
    if (pb->max_tokens > 0 && total > pb->max_tokens)
        return mmupt_fail(err, "the prompt has %lld tokens, more than the limit %lld", (long long)total,
                          (long long)pb->max_tokens);
    out->ids = mmupt_xmalloc((size_t)total * sizeof *out->ids);
    size_t w = 0;
    k = 0;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] != pb->image_pad) {
            out->ids[w++] = ids[i];
            continue;
        }
        const int64_t *g = out->grid + 3 * k++;
        for (int64_t j = 0; j < g[0] * g[1] * g[2] / merge2; j++) out->ids[w++] = pb->image_pad;
    }
    out->n_ids = w;
    return 0;
}

int prompt_build(struct prompt_builder *pb, const char *problem, const uint8_t *const *images, const size_t *image_len,
                 int n_images, struct prompt_item *out, struct mmupt_err *err)
{
    memset(out, 0, sizeof *out);
    char *text = NULL;
    int32_t *ids = NULL;
    size_t n = 0;
    int rc = -1;
    if (prompt_render(problem, pb->format_prompt, n_images, &text, err)) goto done;
    if (build_images(pb, images, image_len, n_images, out, err)) goto done;
    if (tok_encode(pb->tok, text, strlen(text), &ids, &n, err)) goto done;
    rc = expand_pads(pb, ids, n, out, err);
done:
    free(text);
    free(ids);
    if (rc) prompt_item_free(out);
    return rc;
}

void prompt_item_free(struct prompt_item *it)
{
    free(it->ids);
    free(it->grid);
    free(it->pixels);
    memset(it, 0, sizeof *it);
}
