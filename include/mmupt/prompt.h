/* From a dataset item (problem text with <image> markers + encoded images) to what the model eats:
 * token ids with each image's <|image_pad|> run expanded, pixel patches and image grids.
 *
 * The prompt is MM-UPT's (shared/reference/mmupt.md §3.1): text = problem + " " + strip(format_prompt),
 * one image part at each <image> marker, rendered with the Qwen2-VL chat template:
 *   <|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n
 *   ...text with <|vision_start|><|image_pad|><|vision_end|> at each marker...<|im_end|>\n
 *   <|im_start|>assistant\n
 */
#ifndef MMUPT_PROMPT_H
#define MMUPT_PROMPT_H

#include <stddef.h>
#include <stdint.h>

#include "mmupt/err.h"
#include "mmupt/image.h"
#include "mmupt/model.h"
#include "mmupt/tokenizer.h"

struct prompt_builder {
    struct tok *tok;              /* borrowed */
    const char *format_prompt;    /* borrowed; appended after one space, stripped of outer white space */
    struct img_proc_config img;   /* smart_resize bounds, patch geometry, normalisation */
    int64_t max_tokens;           /* longer prompts are refused (0: no limit) */
    int32_t image_pad, vision_start, vision_end;
};

struct prompt_item {
    int32_t *ids;
    size_t n_ids;
    int n_images;
    int64_t *grid;      /* [n_images, 3] */
    float *pixels;      /* [n_patches, 3 * temporal_patch * patch^2] */
    int64_t n_patches;
};

/* The image preprocessing a model's vision tower was built for (its patch, temporal patch and merge
 * sizes) with a run's resize bounds (0 keeps the processor's default), so training, the warm start
 * and evaluation cut images the same way. */
void prompt_image_config(struct img_proc_config *ic, const struct model_config *m, int64_t min_pixels,
                         int64_t max_pixels);

/* Check that the tokenizer has Qwen's vision tokens and fill the builder. */
int prompt_builder_init(struct prompt_builder *pb, struct tok *tok, const char *format_prompt,
                        const struct img_proc_config *img, int64_t max_tokens, struct mmupt_err *err);

/* The chat-template text for a problem with n_images images (one <|image_pad|> per image); refuses a
 * marker count that differs from n_images. *text is malloc'd. */
int prompt_render(const char *problem, const char *format_prompt, int n_images, char **text, struct mmupt_err *err);

/* Decode and preprocess the images, render, tokenize, expand each <|image_pad|> to t*h*w/merge^2
 * copies. On error (bad image, marker mismatch, too long, invalid UTF-8) nothing is allocated in *out. */
int prompt_build(struct prompt_builder *pb, const char *problem, const uint8_t *const *images, const size_t *image_len,
                 int n_images, struct prompt_item *out, struct mmupt_err *err);
void prompt_item_free(struct prompt_item *it);

#endif
