/* KV-cache decoding: greedy decoding from each fixture's prompt must reproduce transformers' greedy
 * `generate` ids, and at every step the cached decode logits must equal the last row of a full
 * forward over the whole sequence so far. Two prompts decoded together must give what each gives
 * alone, and group copies of one prefill must decode identically.
 * usage: test_decode FIXTURE_DIR... */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../test.h"
#include "mmupt/model.h"
#include "mmupt/safetensors.h"

#define STEPS 8

static int64_t *read_i64(const struct st_set *s, const char *name, int64_t *numel)
{
    const struct st_tensor *t = st_find(s, name);
    if (!t) return NULL;
    int64_t *out = malloc((size_t)(t->numel ? t->numel : 1) * sizeof *out);
    struct mmupt_err err;
    if (st_copy_i64(t, out, t->numel, &err)) MMUPT_DIE("%s", err.msg);
    *numel = t->numel;
    return out;
}

static int argmax(const float *x, int64_t n)
{
    int best = 0;
    for (int64_t i = 1; i < n; i++)
        if (x[i] > x[best]) best = (int)i;
    return best;
}

static void check_fixture(struct test_state *ts, const char *dir)
{
    struct model m;
    struct st_set exp;
    struct mmupt_err err;
    char path[1024];
    snprintf(path, sizeof path, "%s/expected.safetensors", dir);
    CHECK_MSG(ts, model_open(&m, dir, &err) == 0, "%s", err.msg);
    CHECK_MSG(ts, st_open(&exp, path, &err) == 0, "%s", err.msg);
    if (ts->current_failed) return;
    int64_t n_in, n_out, n_grid = 0;
    int64_t *prompt = read_i64(&exp, "generate.input_ids", &n_in), *want = read_i64(&exp, "generate.output_ids", &n_out);
    int64_t *grid = read_i64(&exp, "generate.image_grid_thw", &n_grid);
    float *pixels = NULL;
    const struct st_tensor *pt = st_find(&exp, "generate.pixel_values");
    if (pt) {
        pixels = malloc((size_t)pt->numel * sizeof *pixels);
        st_copy_f32(pt, pixels, pt->numel, &err);
    }
    CHECK(ts, prompt && want && n_out == n_in + STEPS);
    int64_t V = m.cfg.text.vocab, total = n_in + STEPS;
    int64_t *seq = malloc((size_t)total * sizeof *seq);
    memcpy(seq, prompt, (size_t)n_in * sizeof *seq);
    struct model_kv kv;
    model_kv_init(&kv, &m, 3, (int)total + 1);
    int len = (int)n_in;
    struct model_batch b = {.n_seq = 1, .seq_len = &len, .tokens = seq, .n_images = (int)(n_grid / 3), .grid_thw = grid,
                            .pixels = pixels};
    const float *last;
    CHECK_MSG(ts, model_prefill(&m, &kv, 0, &b, &last, &err) == 0, "%s", err.msg);
    if (ts->current_failed) goto out;
    model_kv_copy(&kv, 0, 2); /* a group sibling, decoded alongside below */
    float *logits = malloc((size_t)(2 * V) * sizeof *logits), *full = malloc((size_t)V * sizeof *full);
    int64_t next = argmax(last, V);
    double worst = 0;
    for (int step = 0; step < STEPS; step++) {
        seq[n_in + step] = next;
        int slots[2] = {0, 2};
        int64_t toks[2] = {next, next};
        CHECK_MSG(ts, model_decode(&m, &kv, slots, toks, 2, logits, &err) == 0, "%s", err.msg);
        CHECK_MSG(ts, test_rel_err(logits + V, logits, V) == 0.0, "step %d: group copies diverged", step);
        /* The same sequence through a full forward: its last row must match the cached decode. */
        len = (int)(n_in + step + 1);
        CHECK_MSG(ts, model_forward(&m, &b, &err) == 0, "%s", err.msg);
        memcpy(full, m.logits + (int64_t)(len - 1) * V, (size_t)V * sizeof *full);
        double e = test_rel_err(logits, full, V);
        worst = fmax(worst, e);
        CHECK_MSG(ts, e <= 1e-5, "%s step %d: decode vs full forward relative error %.3g", dir, step, e);
        CHECK_MSG(ts, argmax(logits, V) == argmax(full, V), "%s step %d: argmax differs", dir, step);
        next = argmax(logits, V);
    }
    int same = 1; /* seq holds the prompt and the STEPS greedy tokens fed back */
    for (int64_t i = 0; i < n_out; i++) same &= seq[i] == want[i];
    CHECK_MSG(ts, same, "%s: greedy ids differ from transformers' generate", dir);
    printf("    %s: %d greedy tokens match transformers; decode vs forward worst rel err %.2e\n", dir, STEPS, worst);
    free(logits);
    free(full);
out:
    model_kv_free(&kv);
    free(seq);
    free(prompt);
    free(want);
    free(grid);
    free(pixels);
    st_close(&exp);
    model_free(&m);
}

/* Two prompts of different lengths decoded in one step give what each gives alone. */
static void check_mixed_batch(struct test_state *ts, const char *dir)
{
    struct model m;
    struct mmupt_err err;
    CHECK_MSG(ts, model_open(&m, dir, &err) == 0, "%s", err.msg);
    if (ts->current_failed) return;
    int64_t V = m.cfg.text.vocab;
    int64_t a[5] = {5, 17, 42, 8, 99}, c[9] = {7, 7, 1, 2, 3, 250, 11, 12, 13};
    struct model_kv kv;
    model_kv_init(&kv, &m, 4, 16);
    int la = 5, lc = 9;
    struct model_batch ba = {.n_seq = 1, .seq_len = &la, .tokens = a}, bc = {.n_seq = 1, .seq_len = &lc, .tokens = c};
    const float *last;
    CHECK(ts, model_prefill(&m, &kv, 0, &ba, &last, &err) == 0);
    CHECK(ts, model_prefill(&m, &kv, 1, &bc, &last, &err) == 0);
    model_kv_copy(&kv, 0, 2);
    model_kv_copy(&kv, 1, 3);
    float *both = malloc((size_t)(2 * V) * sizeof *both), *one = malloc((size_t)V * sizeof *one);
    for (int step = 0; step < 3; step++) {
        int slots[2] = {0, 1};
        int64_t toks[2] = {30 + step, 60 + step};
        CHECK(ts, model_decode(&m, &kv, slots, toks, 2, both, &err) == 0);
        CHECK(ts, model_decode(&m, &kv, (const int[]){2}, toks, 1, one, &err) == 0);
        CHECK_MSG(ts, test_rel_err(both, one, V) <= 1e-5, "step %d: batched slot 0 differs", step);
        CHECK(ts, model_decode(&m, &kv, (const int[]){3}, toks + 1, 1, one, &err) == 0);
        CHECK_MSG(ts, test_rel_err(both + V, one, V) <= 1e-5, "step %d: batched slot 1 differs", step);
    }
    /* Refusals. */
    CHECK(ts, model_decode(&m, &kv, (const int[]){0, 0}, (const int64_t[]){1, 1}, 2, both, &err) == -1);
    CHECK_CONTAINS(ts, err.msg, "slot 0 appears twice");
    CHECK(ts, model_decode(&m, &kv, (const int[]){9}, (const int64_t[]){1}, 1, both, &err) == -1);
    CHECK(ts, model_decode(&m, &kv, (const int[]){0}, (const int64_t[]){V}, 1, both, &err) == -1);
    CHECK_CONTAINS(ts, err.msg, "outside the vocabulary");
    free(both);
    free(one);
    model_kv_free(&kv);
    model_free(&m);
}

int main(int argc, char **argv)
{
    struct test_state ts = {0};
    for (int i = 1; i < argc; i++) RUN_ON(&ts, check_fixture, argv[i]);
    if (argc > 1) RUN_ON(&ts, check_mixed_batch, argv[argc - 1]);
    return argc < 2 ? 2 : test_summary(&ts);
}
