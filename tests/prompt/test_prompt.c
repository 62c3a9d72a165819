/* MM-UPT prompts against transformers' Qwen2.5-VL processor (tests/fixtures/prompt, made by
 * tools/make_prompt_fixtures.py): the rendered text byte for byte, and - with the shared Qwen
 * tokenizer - the token ids with image pads expanded and the image grids. Plus the refusals.
 * usage: test_prompt FIXTURE_DIR TOKENIZER_JSON */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../test.h"
#include "mmupt/prompt.h"
#include "mmupt/safetensors.h"
#include "mmupt/strutil.h"

static const char *fixture_dir, *tokenizer_path;

/* The problems and image counts of tools/make_prompt_fixtures.py (kept in step with it). */
static const struct { const char *problem; int n_images; } items[] = {
    {"<image>What is the area of the triangle shown? Choices: (A) 6 (B) 8 (C) 12", 1},
    {"In the figure <image> the angle ABC is 40\xc2\xb0. Find x.", 1},
    {"Compare <image> and <image>: which bar is taller?", 2},
    {"What is 3 + 4?  ", 0},
    {"<image>\n\xe6\xb1\x82\xe4\xb8\x89\xe8\xa7\x92\xe5\xbd\xa2\xe7\x9a\x84\xe9\x9d\xa2\xe7\xa7\xaf\xe3\x80\x82 $\\frac{1}{2}ab\\sin C$", 1},
};
static const char format_prompt[] = "\\nPlease reason step by step, and put your final answer within \\boxed{}.";

static char *fixture_text(const struct st_set *exp, int k)
{
    char name[64];
    snprintf(name, sizeof name, "item.%d.text", k);
    const struct st_tensor *t = st_find(exp, name);
    if (!t) return NULL;
    char *s = malloc((size_t)t->numel + 1);
    memcpy(s, t->data, (size_t)t->numel);
    s[t->numel] = '\0';
    return s;
}

static void test_render_matches_processor(struct test_state *ts)
{
    char path[1024];
    struct st_set exp;
    struct mmupt_err err;
    snprintf(path, sizeof path, "%s/expected.safetensors", fixture_dir);
    CHECK_MSG(ts, st_open(&exp, path, &err) == 0, "%s", err.msg);
    if (ts->current_failed) return;
    for (int k = 0; k < (int)(sizeof items / sizeof items[0]); k++) {
        char *want = fixture_text(&exp, k), *got = NULL;
        CHECK(ts, want != NULL);
        CHECK_MSG(ts, prompt_render(items[k].problem, format_prompt, items[k].n_images, &got, &err) == 0, "%s", err.msg);
        if (want && got) CHECK_MSG(ts, strcmp(want, got) == 0, "item %d:\n got  %s\n want %s", k, got, want);
        free(want);
        free(got);
    }
    st_close(&exp);
}

static void test_render_refusals(struct test_state *ts)
{
    char *text = NULL;
    struct mmupt_err err;
    CHECK(ts, prompt_render("<image> a", format_prompt, 0, &text, &err) == -1);
    CHECK_CONTAINS(ts, err.msg, "the problem has 1 <image> marker(s) but the item has 0 image(s)");
    CHECK(ts, prompt_render("no marker", format_prompt, 1, &text, &err) == -1);
    CHECK_CONTAINS(ts, err.msg, "has 0 <image> marker(s) but the item has 1 image(s)");
    CHECK(ts, prompt_render("x", "  \n spaced \t ", 0, &text, &err) == 0);
    CHECK(ts, text && strstr(text, "<|im_start|>user\nx spaced<|im_end|>") != NULL);
    free(text);
}

static uint8_t *read_png(int k, int j, size_t *len)
{
    char path[1100];
    char *buf;
    struct mmupt_err err;
    snprintf(path, sizeof path, "%s/item%d_%d.png", fixture_dir, k, j);
    if (file_read_all(path, 1 << 20, &buf, len, &err)) return NULL;
    return (uint8_t *)buf;
}

static void test_ids_match_processor(struct test_state *ts)
{
    struct tok *tok;
    struct mmupt_err err;
    if (access(tokenizer_path, R_OK) != 0) {
        printf("  (skipped: %s is absent; the id parity needs the shared Qwen tokenizer)\n", tokenizer_path);
        return;
    }
    CHECK_MSG(ts, tok_load(&tok, tokenizer_path, &err) == 0, "%s", err.msg);
    if (ts->current_failed) return;
    struct img_proc_config ic;
    img_proc_config_default(&ic);
    ic.min_pixels = 28 * 28;
    ic.max_pixels = 28 * 28 * 64;
    struct prompt_builder pb;
    CHECK_MSG(ts, prompt_builder_init(&pb, tok, format_prompt, &ic, 4096, &err) == 0, "%s", err.msg);
    char path[1024];
    struct st_set exp;
    snprintf(path, sizeof path, "%s/expected.safetensors", fixture_dir);
    CHECK(ts, st_open(&exp, path, &err) == 0);
    for (int k = 0; k < (int)(sizeof items / sizeof items[0]); k++) {
        const uint8_t *imgs[2];
        size_t lens[2];
        for (int j = 0; j < items[k].n_images; j++) imgs[j] = read_png(k, j, &lens[j]);
        struct prompt_item it;
        int rc = prompt_build(&pb, items[k].problem, imgs, lens, items[k].n_images, &it, &err);
        CHECK_MSG(ts, rc == 0, "item %d: %s", k, err.msg);
        char name[64];
        snprintf(name, sizeof name, "item.%d.input_ids", k);
        const struct st_tensor *t = st_find(&exp, name);
        if (rc == 0 && t) {
            int64_t *want = malloc((size_t)t->numel * sizeof *want);
            st_copy_i64(t, want, t->numel, &err);
            int same = (int64_t)it.n_ids == t->numel;
            for (size_t i = 0; same && i < it.n_ids; i++) same = it.ids[i] == want[i];
            CHECK_MSG(ts, same, "item %d: ids differ (%zu vs %lld)", k, it.n_ids, (long long)t->numel);
            free(want);
            snprintf(name, sizeof name, "item.%d.grid", k);
            const struct st_tensor *g = st_find(&exp, name);
            for (int j = 0; g && j < items[k].n_images; j++) {
                int64_t gw[6];
                st_copy_i64(g, gw, g->numel, &err);
                CHECK(ts, memcmp(gw + 3 * j, it.grid + 3 * j, 3 * sizeof(int64_t)) == 0);
            }
        }
        if (rc == 0) prompt_item_free(&it);
        for (int j = 0; j < items[k].n_images; j++) free((void *)imgs[j]);
    }
    /* Refusals: a broken image, too many tokens, a literal <|image_pad|> in the problem text. */
    const uint8_t junk[] = "not an image at all";
    const uint8_t *jp = junk;
    size_t jl = sizeof junk;
    struct prompt_item it;
    CHECK(ts, prompt_build(&pb, "<image>q", &jp, &jl, 1, &it, &err) == -1);
    CHECK_CONTAINS(ts, err.msg, "image 0");
    CHECK(ts, prompt_build(&pb, "sneaky <|image_pad|>", NULL, NULL, 0, &it, &err) == -1);
    CHECK_CONTAINS(ts, err.msg, "more <|image_pad|> tokens than images");
    pb.max_tokens = 10;
    CHECK(ts, prompt_build(&pb, "short", NULL, NULL, 0, &it, &err) == -1);
    CHECK_CONTAINS(ts, err.msg, "more than the limit 10");
    st_close(&exp);
    tok_free(tok);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s FIXTURE_DIR TOKENIZER_JSON\n", argv[0]);
        return 2;
    }
    fixture_dir = argv[1];
    tokenizer_path = argv[2];
    struct test_state ts = {0};
    RUN(&ts, test_render_matches_processor);
    RUN(&ts, test_render_refusals);
    RUN(&ts, test_ids_match_processor);
    return test_summary(&ts);
}
