/* Parity with Hugging Face transformers: each fixture directory (tools/make_fixtures.py) holds a
 * tiny random model and the tensors transformers computed for a padded batch. The C model runs the
 * same batch packed without padding and must agree at every real (unpadded) position:
 *   positions and rope deltas exactly; activations, logits and the loss within 1e-5 and every
 *   parameter gradient within 1e-4, both relative to the largest magnitude of the reference tensor
 *   (elementwise relative error is meaningless for values near zero).
 * usage: test_model_parity FIXTURE_DIR... */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../test.h"
#include "mmupt/model.h"
#include "mmupt/safetensors.h"

#define ACT_TOL 1e-5
#define GRAD_TOL 1e-4

struct fixture {
    const char *dir;
    struct st_set exp;
    struct model m;
    int64_t B, S;
    int64_t *ids, *mask, *labels;
    int *seq_len;
    int64_t *packed;   /* packed token ids */
    int64_t *row_of;   /* packed index -> b * S + s */
    int64_t T;
    float *pixels;
    int64_t *grid;
    int n_images;
};

static int64_t *read_i64(struct test_state *ts, struct fixture *f, const char *name, int64_t *numel)
{
    const struct st_tensor *t = st_find(&f->exp, name);
    CHECK_MSG(ts, t != NULL, "%s: expected.safetensors has no '%s'", f->dir, name);
    if (!t) return NULL;
    int64_t *out = malloc((size_t)(t->numel ? t->numel : 1) * sizeof *out);
    struct mmupt_err err;
    CHECK_MSG(ts, st_copy_i64(t, out, t->numel, &err) == 0, "%s", err.msg);
    if (numel) *numel = t->numel;
    return out;
}

static float *read_f32(struct test_state *ts, struct fixture *f, const char *name, int64_t *numel)
{
    const struct st_tensor *t = st_find(&f->exp, name);
    CHECK_MSG(ts, t != NULL, "%s: expected.safetensors has no '%s'", f->dir, name);
    if (!t) return NULL;
    float *out = malloc((size_t)(t->numel ? t->numel : 1) * sizeof *out);
    struct mmupt_err err;
    CHECK_MSG(ts, st_copy_f32(t, out, t->numel, &err) == 0, "%s", err.msg);
    if (numel) *numel = t->numel;
    return out;
}

static int setup(struct test_state *ts, struct fixture *f)
{
    struct mmupt_err err;
    char path[1024];
    snprintf(path, sizeof path, "%s/expected.safetensors", f->dir);
    CHECK_MSG(ts, st_open(&f->exp, path, &err) == 0, "%s", err.msg);
    CHECK_MSG(ts, model_open(&f->m, f->dir, &err) == 0, "%s", err.msg);
    if (ts->current_failed) return -1;
    const struct st_tensor *ids = st_find(&f->exp, "input_ids");
    CHECK(ts, ids && ids->ndim == 2);
    if (!ids || ids->ndim != 2) return -1;
    f->B = ids->shape[0];
    f->S = ids->shape[1];
    f->ids = read_i64(ts, f, "input_ids", NULL);
    f->mask = read_i64(ts, f, "attention_mask", NULL);
    f->labels = read_i64(ts, f, "labels", NULL);
    if (ts->current_failed) return -1;
    f->seq_len = calloc((size_t)f->B, sizeof *f->seq_len);
    f->packed = malloc((size_t)(f->B * f->S) * sizeof *f->packed);
    f->row_of = malloc((size_t)(f->B * f->S) * sizeof *f->row_of);
    for (int64_t b = 0; b < f->B; b++)
        for (int64_t s = 0; s < f->S; s++)
            if (f->mask[b * f->S + s]) {
                f->packed[f->T] = f->ids[b * f->S + s];
                f->row_of[f->T++] = b * f->S + s;
                f->seq_len[b]++;
            }
    if (f->m.cfg.has_vision && st_find(&f->exp, "pixel_values")) {
        int64_t n;
        f->pixels = read_f32(ts, f, "pixel_values", NULL);
        f->grid = read_i64(ts, f, "image_grid_thw", &n);
        f->n_images = (int)(n / 3);
    }
    return ts->current_failed ? -1 : 0;
}

static void teardown(struct fixture *f)
{
    st_close(&f->exp);
    model_free(&f->m);
    free(f->ids);
    free(f->mask);
    free(f->labels);
    free(f->seq_len);
    free(f->packed);
    free(f->row_of);
    free(f->pixels);
    free(f->grid);
}

/* Compare a [B, S, C] reference at the real positions with a packed [T, C] result. */
static void check_padded(struct test_state *ts, struct fixture *f, const char *name, const float *got, int64_t C,
                         double tol)
{
    int64_t n;
    float *ref = read_f32(ts, f, name, &n);
    if (!ref) return;
    CHECK_MSG(ts, n == f->B * f->S * C, "%s: %lld values, expected %lld", name, (long long)n, (long long)(f->B * f->S * C));
    float *sel = malloc((size_t)(f->T * C) * sizeof *sel);
    for (int64_t t = 0; t < f->T && n == f->B * f->S * C; t++) memcpy(sel + t * C, ref + f->row_of[t] * C, (size_t)C * sizeof *sel);
    double e = test_rel_err(got, sel, f->T * C);
    CHECK_MSG(ts, e <= tol, "%s %s: relative error %.3g > %.g", f->dir, name, e, tol);
    printf("    %-28s rel err %.2e\n", name, e);
    free(sel);
    free(ref);
}

static void check_flat(struct test_state *ts, struct fixture *f, const char *name, const float *got, int64_t count,
                       double tol)
{
    int64_t n;
    float *ref = read_f32(ts, f, name, &n);
    if (!ref) return;
    CHECK_MSG(ts, n == count, "%s: %lld values, C has %lld", name, (long long)n, (long long)count);
    double e = n == count ? test_rel_err(got, ref, n) : INFINITY;
    CHECK_MSG(ts, e <= tol, "%s %s: relative error %.3g > %.g", f->dir, name, e, tol);
    printf("    %-28s rel err %.2e\n", name, e);
    free(ref);
}

static void check_positions(struct test_state *ts, struct fixture *f)
{
    int64_t n;
    int64_t *ref = read_i64(ts, f, "position_ids", &n);
    if (!ref) return;
    int axes = (int)(n / (f->B * f->S));
    int bad = 0;
    for (int a = 0; a < axes; a++)
        for (int64_t t = 0; t < f->T; t++)
            if (f->m.positions[a * f->T + t] != ref[a * f->B * f->S + f->row_of[t]]) bad++;
    CHECK_MSG(ts, bad == 0, "%s: %d position ids differ", f->dir, bad);
    free(ref);
    if (!st_find(&f->exp, "rope_deltas")) return;
    int64_t *deltas = read_i64(ts, f, "rope_deltas", &n);
    for (int64_t b = 0; deltas && b < n && b < f->B; b++)
        CHECK_MSG(ts, f->m.rope_deltas[b] == deltas[b], "%s: rope delta of sequence %lld: %lld vs %lld", f->dir,
                  (long long)b, (long long)f->m.rope_deltas[b], (long long)deltas[b]);
    free(deltas);
}

static void check_vision(struct test_state *ts, struct fixture *f)
{
    int64_t rows, cols;
    const float *t = model_tap(&f->m, "vision.patch_embed", &rows, &cols);
    check_flat(ts, f, "vision.patch_embed", t, rows * cols, ACT_TOL);
    for (int64_t b = 0; b < f->m.cfg.vision.depth; b++) {
        char name[64];
        snprintf(name, sizeof name, "vision.block.%lld", (long long)b);
        t = model_tap(&f->m, name, &rows, &cols);
        check_flat(ts, f, name, t, rows * cols, ACT_TOL);
    }
    t = model_tap(&f->m, "vision.merged", &rows, &cols);
    check_flat(ts, f, "vision.merged", t, rows * cols, ACT_TOL);
}

/* HF's loss: logits at t predict labels at t + 1, mean over labels that are not -100. Computed
 * through the API GRPO uses (model_logprobs), whose backward with weight -1/count per scored token
 * accumulates the loss gradient. */
static double loss_and_backward(struct fixture *f)
{
    int64_t count = 0;
    int64_t *targets = malloc((size_t)f->T * sizeof *targets);
    float *logp = malloc((size_t)f->T * sizeof *logp), *weight = malloc((size_t)f->T * sizeof *weight);
    for (int64_t t = 0; t < f->T; t++) {
        int last = t + 1 == f->T || f->row_of[t + 1] / f->S != f->row_of[t] / f->S;
        int64_t lab = last ? -100 : f->labels[f->row_of[t + 1]];
        targets[t] = lab < 0 ? -1 : lab;
        count += lab >= 0;
    }
    model_logprobs(&f->m, targets, 1.0f, logp, NULL);
    double loss = 0;
    for (int64_t t = 0; t < f->T; t++) {
        loss -= targets[t] >= 0 ? logp[t] : 0;
        weight[t] = targets[t] >= 0 ? -1.0f / (float)count : 0.0f;
    }
    model_zero_grad(&f->m);
    model_backward_logprobs(&f->m, targets, 1.0f, weight);
    free(targets);
    free(logp);
    free(weight);
    return loss / (double)count;
}

static void check_grads(struct test_state *ts, struct fixture *f)
{
    double worst = 0;
    const char *worst_name = "";
    for (int i = 0; i < f->m.spec.n_params; i++) {
        const struct model_param *p = &f->m.spec.params[i];
        char name[MODEL_NAME_MAX + 8];
        snprintf(name, sizeof name, "grad.%s", p->name);
        int64_t n;
        float *ref = read_f32(ts, f, name, &n);
        if (!ref) continue;
        double e = n == p->numel ? test_rel_err(f->m.grads + p->offset, ref, n) : INFINITY;
        CHECK_MSG(ts, e <= GRAD_TOL, "%s %s: relative error %.3g > %.g", f->dir, name, e, GRAD_TOL);
        if (e > worst) {
            worst = e;
            worst_name = p->name;
        }
        free(ref);
    }
    printf("    %d parameter gradients, worst rel err %.2e (%s)\n", f->m.spec.n_params, worst, worst_name);
}

static void run_fixture(struct test_state *ts, const char *dir)
{
    struct fixture f;
    memset(&f, 0, sizeof f);
    f.dir = dir;
    printf("  %s\n", dir);
    if (setup(ts, &f) == 0) {
        struct model_batch b = {.n_seq = (int)f.B, .seq_len = f.seq_len, .tokens = f.packed,
                                .n_images = f.n_images, .grid_thw = f.grid, .pixels = f.pixels};
        struct mmupt_err err;
        int rc = model_forward(&f.m, &b, &err);
        CHECK_MSG(ts, rc == 0, "%s", err.msg);
        if (rc == 0) {
            int64_t H = f.m.cfg.text.hidden, V = f.m.cfg.text.vocab, rows, cols;
            check_positions(ts, &f);
            if (f.n_images) check_vision(ts, &f);
            check_padded(ts, &f, "hidden.embed", model_tap(&f.m, "hidden.embed", &rows, &cols), H, ACT_TOL);
            for (int64_t l = 0; l < f.m.cfg.text.n_layers; l++) {
                char name[64];
                snprintf(name, sizeof name, "hidden.layer.%lld", (long long)l);
                check_padded(ts, &f, name, model_tap(&f.m, name, &rows, &cols), H, ACT_TOL);
            }
            check_padded(ts, &f, "hidden.norm", model_tap(&f.m, "hidden.norm", &rows, &cols), H, ACT_TOL);
            check_padded(ts, &f, "logits", f.m.logits, V, ACT_TOL);
            float loss = (float)loss_and_backward(&f);
            check_flat(ts, &f, "loss", &loss, 1, ACT_TOL);
            check_grads(ts, &f);
        }
    }
    teardown(&f);
}

int main(int argc, char **argv)
{
    struct test_state ts = {0};
    for (int i = 1; i < argc; i++) RUN_ON(&ts, run_fixture, argv[i]);
    if (argc < 2) fprintf(stderr, "usage: %s FIXTURE_DIR...\n", argv[0]);
    return argc < 2 ? 2 : test_summary(&ts);
}
