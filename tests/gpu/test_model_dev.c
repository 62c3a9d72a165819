/* The device model against the CPU model on the committed fixtures: logits of a packed batch,
 * last-position logits, log-probabilities and entropies, the gradient of a weighted log-probability
 * objective, and greedy KV-cache decoding (tokens equal to the CPU's and to transformers' generate).
 *
 * Built twice from this one file:
 *   - CUDA builds (suite gpu): on the GPU; skips (77) without a device. Tolerances are fp32's: the
 *     twins differ from the CPU references by summation order (cuBLAS vs OpenBLAS GEMMs, parallel
 *     reductions), a few ulps per op compounding over the fixtures' 2 layers;
 *   - CPU-only builds (suite unit): on the device emulator (src/gpu/mem_emu.c), where the
 *     twins ARE the CPU references, so every result must be BITWISE equal: any difference is the
 *     driver's (a wrong buffer, offset, order or memory space), and the emulator's own checks fault
 *     on host access to device memory and on out-of-extent kernel arguments.
 * usage: test_model_dev FIXTURE_DIR... */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../test.h"
#include "mmupt/model.h"
#include "mmupt/model_dev.h"
#include "mmupt/safetensors.h"
#ifdef MMUPT_HAVE_CUDA
#include "mmupt/gpu_blas.h"
#endif

struct fx {
    struct gpu_ctx g;
    struct model m;
    struct model_dev d;
    /* Relative to the tensor's largest value (test_rel_err): on a GPU fp32 with reordered sums; on
     * the emulator none, its twins being the CPU references. bf16: BF16_TOL_*. */
    double tol_fwd, tol_grad;
    int bf16; /* mixed precision: the CPU model (fp32) is a reference only up to bf16 rounding */
};

/* A packed batch of 3 text sequences with ids drawn from the vocabulary (no special tokens). */
/* bf16 against fp32: each GEMM operand is rounded to 8 significant bits (relative error <= 2^-9 =
 * 2e-3 each), and the errors of the 2-4 layers (and the vision tower) compound; decoding also rounds
 * the KV cache to bf16. Measured on the emulator (2026-11-27, the three fixtures): logits up to
 * 1.1e-2 of the largest logit (decode 1.3e-2), log-probs 2e-3, the whole gradient 1.4e-2 of its
 * largest entry. The tolerances keep ~3x headroom; the GPU's
 * own summation order adds fp32-sized differences only. */
#define BF16_TOL_FWD 3e-2
#define BF16_TOL_GRAD 5e-2

#define N_SEQ 3
static const int SEQ_LEN[N_SEQ] = {7, 1, 12};

static int64_t batch_tokens(int64_t *tok, int64_t vocab)
{
    int64_t T = 0;
    for (int s = 0; s < N_SEQ; s++) T += SEQ_LEN[s];
    unsigned x = 12345;
    int64_t lim = vocab < 100 ? vocab : 100; /* low ids: the fixtures' vocabularies put specials last */
    for (int64_t i = 0; i < T; i++) {
        x = x * 1664525u + 1013904223u;
        tok[i] = (int64_t)((x >> 8) % (unsigned)lim);
    }
    return T;
}

static float *download(const struct fx *f, const float *dev, int64_t n)
{
    float *h = malloc((size_t)n * sizeof *h);
    gpu_download(&f->g, h, dev, (size_t)n * sizeof *h);
    return h;
}

static void check_close(struct test_state *ts, const char *what, const float *got, const float *want, int64_t n,
                        double tol)
{
    double e = test_rel_err(got, want, n);
    printf("  %-28s rel err %.3g (tolerance %.3g)\n", what, e, tol);
    CHECK_MSG(ts, e <= tol, "%s: relative error %.3g > %.3g", what, e, tol);
}

/* model.logit_chunk: lm_head and the log-softmax over 5 rows at a time (so chunks of 5 and a
 * remainder on the fixtures' batches), logits never whole. The log-probs are row-wise, but a GEMM of
 * 5 rows need not round like one of 20 (BLAS kernels differ by shape: bitwise equal with OpenBLAS
 * here, 6e-8 apart in a sanitizer build), and the lm_head gradient sums its rows chunk by chunk
 * (1e-7 measured): CHUNK_TOL_* on top of the precision's tolerances. */
#define CHUNK_TOL_FWD 1e-6
#define CHUNK_TOL_GRAD 1e-5

static void check_chunked(struct test_state *ts, struct fx *f, const struct model_batch *b, const int64_t *targets,
                          float tau, const float *weight, const float *logp_c, const float *ent_c)
{
    struct mmupt_err err;
    int64_t T = f->d.n_tokens;
    float *logp = malloc(2 * (size_t)T * sizeof *logp), *ent = logp + T;
    float *grads = malloc((size_t)f->m.spec.total * sizeof *grads);
    f->d.logit_chunk = 5;
    CHECK_MSG(ts, model_dev_forward(&f->d, b, &err) == 0, "%s", err.msg);
    CHECK_MSG(ts, f->d.logits == NULL, "a chunked forward kept the whole logits");
    model_dev_logprobs(&f->d, targets, tau, logp, ent);
    check_close(ts, "logp, 5-row logit chunks", logp, logp_c, T, f->tol_fwd + CHUNK_TOL_FWD);
    check_close(ts, "entropy, 5-row logit chunks", ent, ent_c, T, f->tol_fwd + CHUNK_TOL_FWD);
    model_dev_zero_grad(&f->d);
    model_dev_backward_logprobs(&f->d, targets, tau, weight);
    model_dev_download_grads(&f->d, grads);
    check_close(ts, "gradients, 5-row logit chunks", grads, f->m.grads, f->m.spec.total, f->tol_grad + CHUNK_TOL_GRAD);
    f->d.logit_chunk = 0;
    free(logp);
    free(grads);
}

/* What the backward's stage reports (d->grads_done) saw: each range's gradients as they stood when
 * it was reported, and whether the reports came in model_dev_grad_stage's order. */
struct stage_log {
    struct model_dev *d;
    float *seen; /* host, spec.total: each range copied at its report */
    int next, in_order;
};

static void log_stage(void *ctx, int64_t off, int64_t n)
{
    struct stage_log *s = ctx;
    int64_t want_off = -1, want_n = -1;
    if (s->next < model_dev_grad_stages(s->d)) model_dev_grad_stage(s->d, s->next, &want_off, &want_n);
    s->in_order &= off == want_off && n == want_n;
    s->next++;
    gpu_download(s->d->g, s->seen + off, s->d->grads + off, (size_t)n * sizeof(float));
}

/* A backward with stage reports on: the stages tile the gradients, come in their order, and each
 * range is final when reported - the bits the whole backward leaves (grads) - so a reduction may
 * start on it while the rest of the backward runs. */
static void check_stages(struct test_state *ts, struct fx *f, const struct model_batch *b, const int64_t *targets,
                         float tau, const float *weight, const float *grads)
{
    struct mmupt_err err;
    int64_t total = f->m.spec.total, end = 0;
    int k_n = model_dev_grad_stages(&f->d);
    char *covered = calloc((size_t)total, 1);
    for (int k = 0; k < k_n; k++) {
        int64_t off, n;
        model_dev_grad_stage(&f->d, k, &off, &n);
        for (int64_t i = off; i < off + n; i++) covered[i]++;
        end += n;
    }
    int once = end == total;
    for (int64_t i = 0; i < total; i++) once &= covered[i] == 1;
    CHECK_MSG(ts, once, "the %d gradient stages do not tile the %lld gradients", k_n, (long long)total);
    free(covered);
    struct stage_log log = {.d = &f->d, .seen = malloc((size_t)total * sizeof(float)), .in_order = 1};
    memset(log.seen, 0xff, (size_t)total * sizeof(float));
    CHECK_MSG(ts, model_dev_forward(&f->d, b, &err) == 0, "%s", err.msg);
    model_dev_zero_grad(&f->d);
    f->d.grads_done = log_stage;
    f->d.grads_done_ctx = &log;
    model_dev_backward_logprobs(&f->d, targets, tau, weight);
    f->d.grads_done = NULL;
    CHECK_MSG(ts, log.next == k_n && log.in_order, "%d stage reports of %d, in order: %d", log.next, k_n, log.in_order);
    CHECK_MSG(ts, memcmp(log.seen, grads, (size_t)total * sizeof(float)) == 0,
              "a stage's gradients changed after it was reported (max rel err %.3g)",
              test_rel_err(log.seen, grads, total));
    free(log.seen);
}

/* Forward, forward_last, log-probabilities and the weighted backward of batch b, device vs CPU. */
static void check_train_path(struct test_state *ts, struct fx *f, const struct model_batch *b)
{
    struct mmupt_err err;
    int64_t V = f->m.cfg.text.vocab, T = 0;
    for (int s = 0; s < b->n_seq; s++) T += b->seq_len[s];
    CHECK_MSG(ts, model_forward(&f->m, b, &err) == 0, "%s", err.msg);
    CHECK_MSG(ts, model_dev_forward(&f->d, b, &err) == 0, "%s", err.msg);
    if (ts->current_failed) return;
    CHECK(ts, f->d.n_tokens == T && f->d.n_seq == b->n_seq);
    for (int s = 0; s < b->n_seq; s++) CHECK(ts, f->d.rope_deltas[s] == f->m.rope_deltas[s]);
    float *logits = download(f, f->d.logits, T * V);
    check_close(ts, "logits", logits, f->m.logits, T * V, f->tol_fwd);

    /* targets: the next token, -1 at each sequence's last position (not scored) */
    int64_t *targets = malloc((size_t)T * sizeof *targets);
    float *buf = malloc(5 * (size_t)T * sizeof *buf);
    float *weight = buf, *logp_c = buf + T, *ent_c = buf + 2 * T, *logp_d = buf + 3 * T, *ent_d = buf + 4 * T;
    for (int64_t i = 0, s = 0, end = b->seq_len[0]; i < T; i++) {
        if (i == end) end += b->seq_len[++s];
        targets[i] = i + 1 < end ? b->tokens[i + 1] : -1;
        weight[i] = (float)((i % 5) - 2) * 0.25f;
    }
    const float tau = 0.7f;
    model_logprobs(&f->m, targets, tau, logp_c, ent_c);
    model_dev_logprobs(&f->d, targets, tau, logp_d, ent_d);
    check_close(ts, "logp", logp_d, logp_c, T, f->tol_fwd);
    check_close(ts, "entropy", ent_d, ent_c, T, f->tol_fwd);

    model_zero_grad(&f->m);
    model_dev_zero_grad(&f->d);
    model_backward_logprobs(&f->m, targets, tau, weight);
    model_dev_backward_logprobs(&f->d, targets, tau, weight);
    float *grads = malloc((size_t)f->m.spec.total * sizeof *grads);
    model_dev_download_grads(&f->d, grads);
    /* Per tensor, so a failure names the parameter. */
    for (int i = 0; i < f->m.spec.n_params; i++) {
        const struct model_param *p = &f->m.spec.params[i];
        double e = test_rel_err(grads + p->offset, f->m.grads + p->offset, p->numel);
        CHECK_MSG(ts, e <= f->tol_grad, "gradient of %s: relative error %.3g > %.3g", p->name, e, f->tol_grad);
    }
    check_close(ts, "gradients (all)", grads, f->m.grads, f->m.spec.total, f->tol_grad);
    /* With activation recomputation: the same gradients, bit for bit (deterministic kernels). */
    f->d.recompute = 1;
    CHECK_MSG(ts, model_dev_forward(&f->d, b, &err) == 0, "%s", err.msg);
    model_dev_zero_grad(&f->d);
    model_dev_backward_logprobs(&f->d, targets, tau, weight);
    f->d.recompute = 0;
    float *grads_re = malloc((size_t)f->m.spec.total * sizeof *grads_re);
    model_dev_download_grads(&f->d, grads_re);
    CHECK_MSG(ts, memcmp(grads_re, grads, (size_t)f->m.spec.total * sizeof *grads) == 0,
              "recomputed activations changed the gradients (max rel err %.3g)",
              test_rel_err(grads_re, grads, f->m.spec.total));
    free(grads_re);
    check_stages(ts, f, b, targets, tau, weight, grads);
    check_chunked(ts, f, b, targets, tau, weight, logp_c, ent_c);
    if (b->n_images > 0) { /* the tower really got gradient */
        const struct model_param *pe = model_spec_find(&f->m.spec, "visual.patch_embed.proj.weight");
        double norm = 0;
        for (int64_t i = 0; pe && i < pe->numel; i++) norm += fabs(grads[pe->offset + i]);
        CHECK_MSG(ts, pe && norm > 0, "no gradient reached the patch embedding");
    }

    CHECK_MSG(ts, model_forward_last(&f->m, b, &err) == 0, "%s", err.msg);
    CHECK_MSG(ts, model_dev_forward_last(&f->d, b, &err) == 0, "%s", err.msg);
    float *last = download(f, f->d.logits, b->n_seq * V);
    check_close(ts, "last-position logits", last, f->m.logits, b->n_seq * V, f->tol_fwd);
    free(logits);
    free(grads);
    free(last);
    free(targets);
    free(buf);
}

static int argmax(const float *x, int64_t n)
{
    int best = 0;
    for (int64_t i = 1; i < n; i++)
        if (x[i] > x[best]) best = (int)i;
    return best;
}

/* transformers' greedy generate of the fixture: prompt ids (with images for the VL models), the
 * grids and pixels, and the ids it produced. */
struct gen_fx {
    int64_t *ids, *want, *grid;
    int64_t n_in, n_out, n_grid;
    float *pixels;
    int len;
};

static int gen_load(struct gen_fx *x, const char *dir)
{
    memset(x, 0, sizeof *x);
    char path[1024];
    snprintf(path, sizeof path, "%s/expected.safetensors", dir);
    struct st_set s;
    struct mmupt_err err;
    if (st_open(&s, path, &err)) return -1;
    const char *names[3] = {"generate.input_ids", "generate.output_ids", "generate.image_grid_thw"};
    int64_t **dst[3] = {&x->ids, &x->want, &x->grid}, *n[3] = {&x->n_in, &x->n_out, &x->n_grid};
    for (int k = 0; k < 3; k++) {
        const struct st_tensor *t = st_find(&s, names[k]);
        if (!t) continue;
        *dst[k] = malloc((size_t)(t->numel ? t->numel : 1) * sizeof **dst[k]);
        *n[k] = t->numel;
        if (st_copy_i64(t, *dst[k], t->numel, &err)) MMUPT_DIE("%s", err.msg);
    }
    const struct st_tensor *t = st_find(&s, "generate.pixel_values");
    if (t) {
        x->pixels = malloc((size_t)t->numel * sizeof *x->pixels);
        if (st_copy_f32(t, x->pixels, t->numel, &err)) MMUPT_DIE("%s", err.msg);
    }
    st_close(&s);
    x->len = (int)x->n_in;
    return x->ids && x->want ? 0 : -1;
}

static struct model_batch gen_batch(const struct gen_fx *x)
{
    struct model_batch b = {.n_seq = 1, .seq_len = &x->len, .tokens = x->ids, .n_images = (int)(x->n_grid / 3),
                            .grid_thw = x->grid, .pixels = x->pixels};
    return b;
}

static void gen_free(struct gen_fx *x)
{
    free(x->ids);
    free(x->want);
    free(x->grid);
    free(x->pixels);
}

/* Greedy decoding of the fixture's prompt (images included) in slot 2 and of a copy of it in slot 0
 * (kv_copy), on the device, against the CPU decode step by step and against transformers' ids. */
static void check_decode(struct test_state *ts, struct fx *f, const struct gen_fx *x)
{
    struct mmupt_err err;
    int steps = (int)(x->n_out - x->n_in), V = (int)f->m.cfg.text.vocab;
    struct model_kv kc, kd;
    int max_len = (int)x->n_out + 1;
    model_kv_init(&kc, &f->m, 3, max_len);
    model_dev_kv_init(&kd, &f->d, 3, max_len);
    CHECK_MSG(ts, (kd.k16 != NULL) == f->bf16 && (kd.k == NULL) == f->bf16, "the cache's dtype is not the model's");
    struct model_batch b = gen_batch(x);
    const float *lc, *ld;
    float *out_c = malloc(2 * (size_t)V * sizeof *out_c), *out_d = malloc(2 * (size_t)V * sizeof *out_d);
    float *dev_logits = gpu_alloc_floats(&f->g, 2 * (int64_t)V), *dev_logits2 = gpu_alloc_floats(&f->g, 2 * (int64_t)V);
    CHECK_MSG(ts, model_prefill(&f->m, &kc, 2, &b, &lc, &err) == 0, "%s", err.msg);
    CHECK_MSG(ts, model_dev_prefill(&f->d, &kd, 2, &b, &ld, &err) == 0, "%s", err.msg);
    if (ts->current_failed) goto out;
    gpu_download(&f->g, out_d, ld, (size_t)V * sizeof *out_d);
    check_close(ts, "prefill logits", out_d, lc, V, f->tol_fwd);
    int64_t tc = argmax(lc, V), td = argmax(out_d, V);
    CHECK(ts, kd.len[2] == kc.len[2] && kd.delta[2] == kc.delta[2]);
    model_kv_copy(&kc, 2, 0);
    model_dev_kv_copy(&kd, &f->d, 2, 0);
    long long graphs_before = f->d.graph_steps;
    int slots[2] = {2, 0};
    for (int step = 0; step < steps && !ts->current_failed; step++) {
        /* In bf16 a near tie may flip a greedy choice; both sides are fed the CPU's token anyway. */
        CHECK_MSG(ts, f->bf16 || td == tc, "step %d: device token %lld, CPU token %lld", step, (long long)td,
                  (long long)tc);
        CHECK_MSG(ts, f->bf16 || td == x->want[x->n_in + step], "step %d: token %lld, transformers %lld", step,
                  (long long)td, (long long)x->want[x->n_in + step]);
        int64_t toks[2] = {tc, tc};
        CHECK_MSG(ts, model_decode(&f->m, &kc, slots, toks, 2, out_c, &err) == 0, "%s", err.msg);
        /* The last step into another buffer: a graph writes the caller's buffer, so it records again. */
        float *into = step == steps - 1 ? dev_logits2 : dev_logits;
        CHECK_MSG(ts, model_dev_decode(&f->d, &kd, slots, toks, 2, into, &err) == 0, "%s", err.msg);
        gpu_download(&f->g, out_d, into, 2 * (size_t)V * sizeof *out_d);
        char what[64];
        snprintf(what, sizeof what, "decode logits, step %d", step);
        if (step == 0 || step == steps - 1) check_close(ts, what, out_d, out_c, 2 * (int64_t)V, f->tol_fwd);
        else CHECK(ts, test_rel_err(out_d, out_c, 2 * (int64_t)V) <= f->tol_fwd);
        CHECK_MSG(ts, argmax(out_d, V) == argmax(out_d + V, V), "step %d: the copied slot decodes differently", step);
        tc = argmax(out_c, V);
        td = argmax(out_d, V);
    }
    CHECK(ts, kd.len[0] == kc.len[0] && kd.len[2] == kc.len[2] && kd.len[2] == (int)x->n_in + steps);
    /* From the second 2-row step on, each is a graph replay (recorded and checked on the emulator). */
    CHECK_MSG(ts, f->d.graph_steps - graphs_before == steps - 1, "%lld of %d decode steps replayed a graph (%s)",
              f->d.graph_steps - graphs_before, steps, f->d.graph_error);
    /* the input checks are the CPU model's */
    int bad_slot[1] = {3};
    int64_t one[1] = {0};
    CHECK(ts, model_dev_decode(&f->d, &kd, bad_slot, one, 1, dev_logits, &err) == -1);
    CHECK_CONTAINS(ts, err.msg, "slot");
out:
    gpu_free(&f->g, dev_logits);
    gpu_free(&f->g, dev_logits2);
    free(out_c);
    free(out_d);
    model_kv_free(&kc);
    model_dev_kv_free(&kd, &f->d);
}

/* Several prompts in one prefill (the rollout engine's batches): each lands in its slot with its
 * length and rope delta, its last logits equal (to GEMM rounding) those of its own prefill, the device
 * agrees with the CPU, and a repeated slot is refused. */
/* A prefill keeps, of its forward's activations, what the KV cache takes (every layer's k and v) and
 * the last rows' logits path - not every layer's activations: `held` bytes, live after it (emulator's
 * accounting) against a training forward's on the same batch. */
static void check_prefill_memory(struct test_state *ts, struct fx *f, const struct model_batch *b, size_t held)
{
    struct mmupt_err err;
    struct gpu_mem_stats m0, m1;
    int64_t T = 0, kvd = (int64_t)f->m.cfg.text.n_kv_heads * f->m.cfg.text.head_dim;
    for (int s = 0; s < b->n_seq; s++) T += b->seq_len[s];
    model_dev_release(&f->d);
    gpu_mem_stats(&f->g, &m0);
    CHECK_MSG(ts, model_dev_forward(&f->d, b, &err) == 0, "%s", err.msg);
    gpu_mem_stats(&f->g, &m1);
    size_t full = m1.live_bytes - m0.live_bytes, kv = (size_t)(f->m.cfg.text.n_layers * 2 * T * kvd) * sizeof(float);
    printf("  prefill holds %zu bytes of activations (k and v: %zu), a training forward %zu\n", held, kv, full);
    CHECK_MSG(ts, held >= kv && held - kv < (full - kv) / 2, "a prefill holds %zu bytes: k and v are %zu, a forward %zu",
              held, kv, full);
    model_dev_release(&f->d);
}

static void check_prefill_many(struct test_state *ts, struct fx *f, const struct model_batch *b)
{
    struct mmupt_err err;
    int V = (int)f->m.cfg.text.vocab, k = b->n_seq, slots[N_SEQ] = {2, 0, 1};
    struct model_kv kc, kd;
    model_kv_init(&kc, &f->m, 3, 32);
    model_dev_kv_init(&kd, &f->d, 3, 32);
    const float *lc, *ld;
    struct gpu_mem_stats m0, m1;
    model_dev_release(&f->d);
    gpu_mem_stats(&f->g, &m0);
    CHECK_MSG(ts, model_prefill_many(&f->m, &kc, slots, b, &lc, &err) == 0, "%s", err.msg);
    CHECK_MSG(ts, model_dev_prefill_many(&f->d, &kd, slots, b, &ld, &err) == 0, "%s", err.msg);
    if (ts->current_failed) goto out;
    gpu_mem_stats(&f->g, &m1);
    float *many = malloc((size_t)k * V * sizeof *many), *dev = malloc((size_t)k * V * sizeof *dev);
    memcpy(many, lc, (size_t)k * V * sizeof *many);
    gpu_download(&f->g, dev, ld, (size_t)k * V * sizeof *dev);
    check_close(ts, "prefill of 3 prompts at once", dev, many, (int64_t)k * V, f->tol_fwd);
    for (int s = 0; s < k; s++) CHECK(ts, kc.len[slots[s]] == b->seq_len[s] && kd.len[slots[s]] == b->seq_len[s]);
    const int64_t *tok = b->tokens;
    for (int s = 0; s < k; s++) {
        struct model_batch one = {.n_seq = 1, .seq_len = &b->seq_len[s], .tokens = tok};
        const float *l1;
        CHECK_MSG(ts, model_prefill(&f->m, &kc, 0, &one, &l1, &err) == 0, "%s", err.msg);
        CHECK_MSG(ts, test_rel_err(many + (size_t)s * V, l1, V) <= 1e-5, "prompt %d: batched prefill vs its own", s);
        tok += b->seq_len[s];
    }
    int twice[N_SEQ] = {1, 1, 0};
    CHECK(ts, model_dev_prefill_many(&f->d, &kd, twice, b, &ld, &err) == -1);
    CHECK_CONTAINS(ts, err.msg, "slot 1 appears twice");
    free(many);
    free(dev);
    if (gpu_emulated()) check_prefill_memory(ts, f, b, m1.live_bytes - m0.live_bytes); /* (replaces ld) */
out:
    model_kv_free(&kc);
    model_dev_kv_free(&kd, &f->d);
}

/* Bad input is refused with the CPU model's messages, and a failed forward leaves nothing behind. */
static void check_refusals(struct test_state *ts, struct fx *f, const struct gen_fx *x)
{
    struct mmupt_err err;
    int len = 2;
    int64_t tok[2] = {1, f->m.cfg.text.vocab}; /* one id outside the vocabulary */
    struct model_batch b = {.n_seq = 1, .seq_len = &len, .tokens = tok};
    CHECK(ts, model_dev_forward(&f->d, &b, &err) == -1);
    CHECK_CONTAINS(ts, err.msg, "outside the vocabulary");
    if (x->n_grid == 0) return;
    b = gen_batch(x);
    b.n_images = 0; /* image tokens without their images */
    CHECK(ts, model_dev_forward(&f->d, &b, &err) == -1);
    CHECK(ts, f->d.acts == NULL && f->d.logits == NULL);
}

/* Every check on one precision: the text batch, the image prompt (if any), decoding, refusals. */
static void check_all(struct test_state *ts, struct fx *f, const struct model_batch *text, const struct gen_fx *x)
{
    printf("  text batch of %d sequences\n", N_SEQ);
    check_train_path(ts, f, text);
    check_prefill_many(ts, f, text);
    if (x->n_grid > 0) {
        printf("  the generate prompt, %lld image(s)\n", (long long)(x->n_grid / 3));
        struct model_batch img = gen_batch(x);
        check_train_path(ts, f, &img);
    }
    check_decode(ts, f, x);
    check_refusals(ts, f, x);
}

/* The bf16 path really rounds: its logits are not the fp32 ones, and after model_dev_set_bf16(0)
 * they are again. */
static void check_bf16_rounds(struct test_state *ts, struct fx *f, const struct model_batch *b)
{
    struct mmupt_err err;
    int64_t V = f->m.cfg.text.vocab, T = 0;
    for (int s = 0; s < b->n_seq; s++) T += b->seq_len[s];
    CHECK_MSG(ts, model_forward(&f->m, b, &err) == 0 && model_dev_forward(&f->d, b, &err) == 0, "%s", err.msg);
    float *lb = download(f, f->d.logits, T * V);
    model_dev_set_bf16(&f->d, 0);
    CHECK_MSG(ts, model_dev_forward(&f->d, b, &err) == 0, "%s", err.msg);
    float *lf = download(f, f->d.logits, T * V);
    double eb = test_rel_err(lb, f->m.logits, T * V), ef = test_rel_err(lf, f->m.logits, T * V);
    printf("  bf16 logits vs fp32: %.3g; back in fp32: %.3g\n", eb, ef);
    CHECK_MSG(ts, eb > 1e-5 && eb > 10 * ef, "bf16 logits %.3g from the fp32 ones (fp32 path %.3g): no rounding?", eb, ef);
    free(lb);
    free(lf);
}

static void check_fixture(struct test_state *ts, const char *dir)
{
    struct fx f;
    struct mmupt_err err;
    CHECK_MSG(ts, model_open(&f.m, dir, &err) == 0, "%s", err.msg);
    if (ts->current_failed) return;
    if (gpu_ctx_init(&f.g, &err)) MMUPT_DIE("%s", err.msg); /* checked in main */
    model_dev_init(&f.d, &f.m, &f.g);
    f.bf16 = 0;
    f.tol_fwd = gpu_emulated() ? 0.0 : 2e-5;
    f.tol_grad = gpu_emulated() ? 0.0 : 2e-4;
    int64_t tok[64];
    batch_tokens(tok, f.m.cfg.text.vocab);
    struct model_batch text = {.n_seq = N_SEQ, .seq_len = SEQ_LEN, .tokens = tok};
    struct gen_fx x;
    CHECK_MSG(ts, gen_load(&x, dir) == 0, "%s: no generate.* tensors", dir);
    if (!ts->current_failed) {
        check_all(ts, &f, &text, &x);
        /* Mixed precision against the fp32 CPU model, within bf16 rounding (see BF16_TOL), with
         * attention through cuBLAS (MMUPT_ATTENTION=cublas; cuDNN's pass, the default, is below). */
        printf("  model.dtype bf16, cuBLAS attention:\n");
        struct gpu_tuning dflt = f.g.tuning; /* as the environment set it: restored for the later passes */
        f.g.tuning.cudnn_attention = 0;
        model_dev_set_bf16(&f.d, 1);
        f.bf16 = 1;
        f.tol_fwd = BF16_TOL_FWD;
        f.tol_grad = BF16_TOL_GRAD;
        check_all(ts, &f, &text, &x);
        /* The same with the fused attention kernels (MMUPT_ATTENTION=flash), decode attention's fp32
         * kernel (MMUPT_DECODE_MMA=0: the default decodes on tensor cores) with its rows staged
         * (MMUPT_DECODE_STAGE=1, the default) and the decode step's programmatic launches (MMUPT_DECODE_PDL=1):
         * the CPU model is the reference within the same bounds. On the fixture with every attention kind - text (head
         * size 16), vision windows and full vision layers (16) - to spare the interpreter's time. */
        if (f.m.cfg.has_vision && f.m.cfg.vision.window_size > 0) {
            printf("  model.dtype bf16, fused attention, fp32 decode attention (staged), programmatic launches:\n");
            model_dev_free(&f.d); /* a fresh device model: its decode graphs record again, as checked */
            model_dev_init(&f.d, &f.m, &f.g);
            model_dev_set_bf16(&f.d, 1);
            struct gpu_tuning was = f.g.tuning; /* restored whole afterwards */
            f.g.tuning.flash_attention = 1; /* the device's switches, as MMUPT_ATTENTION=flash, */
            f.g.tuning.decode_mma = 0;      /* MMUPT_DECODE_MMA=0, MMUPT_DECODE_STAGE=1 and */
            f.g.tuning.decode_stage = 1;    /* MMUPT_DECODE_PDL=1 set them (decoding: the fp32 kernel, */
            f.g.tuning.decode_pdl = 1;      /* staged, programmatic launches) */
            check_all(ts, &f, &text, &x);
            f.g.tuning = was;
        }
        /* Attention through cuDNN's SDPA graphs (MMUPT_ATTENTION=cudnn: bf16 q/k/v, output and
         * gradients) - on the emulator, their CPU reference, so the model's plumbing around them (the
         * operands' rounding, the output written as the o-projection's operand, the stats, the gradients
         * added back) is checked on every commit; on a GPU, cuDNN itself. The same bounds. The SIMT
         * interpreter has no cuDNN: there every block falls back to cuBLAS attention, which the
         * same checks then cover. */
        printf("  model.dtype bf16, cuDNN attention:\n");
        model_dev_free(&f.d);
        model_dev_init(&f.d, &f.m, &f.g);
        model_dev_set_bf16(&f.d, 1);
        f.g.tuning.cudnn_attention = 1;
        check_all(ts, &f, &text, &x);
        f.g.tuning = dflt; /* the passes below run with the environment's switches */
        const long long *runs = f.d.attention_runs; /* what the blocks ran, as the benchmarks print it */
        int has_cudnn = gpu_emulated();
#ifdef MMUPT_HAVE_CUDA
        has_cudnn = 1;
#endif
        CHECK_MSG(ts, (has_cudnn ? runs[MODEL_DEV_ATTN_CUDNN] > 0 : runs[MODEL_DEV_ATTN_CUDNN] == 0) &&
                          runs[MODEL_DEV_ATTN_FLASH] == 0,
                  "cuDNN's pass: %lld block forwards on cuDNN, %lld fused, %lld cuBLAS", runs[MODEL_DEV_ATTN_CUDNN],
                  runs[MODEL_DEV_ATTN_FLASH], runs[MODEL_DEV_ATTN_CUBLAS]);
#ifdef MMUPT_HAVE_CUDA
        /* On a GPU: every bf16 GEMM through cuBLASLt with the algorithm its timing chose
         * (MMUPT_GEMM_TUNE=1) - other tilings and splits of k, the same bounds. (The interpreter's
         * cuBLASLt has one loop behind its algorithms: nothing new to check there.) */
        printf("  model.dtype bf16, GEMMs tuned:\n");
        model_dev_free(&f.d);
        model_dev_init(&f.d, &f.m, &f.g);
        model_dev_set_bf16(&f.d, 1);
        gpu_blas_set_tune(f.g.blas, 1);
        check_all(ts, &f, &text, &x);
        gpu_blas_set_tune(f.g.blas, 0);
#endif
        check_bf16_rounds(ts, &f, &text);
    }
    gen_free(&x);
    model_dev_free(&f.d);
    if (gpu_emulated()) {
        struct gpu_mem_stats st;
        gpu_mem_stats(&f.g, &st);
        printf("  emulated kernels and copies: %lld, peak device memory %zu bytes\n", st.launches, st.peak_bytes);
        CHECK_MSG(ts, st.live_allocs == 0, "%d device allocation(s) left after model_dev_free", st.live_allocs);
        CHECK(ts, st.launches > 100);
    }
    gpu_ctx_free(&f.g);
    model_free(&f.m);
}

int main(int argc, char **argv)
{
    struct gpu_ctx g;
    struct mmupt_err err;
    if (gpu_ctx_init(&g, &err)) {
        printf("SKIP: %s\n", err.msg);
        return TEST_SKIP;
    }
    gpu_ctx_free(&g);
    if (argc < 2) {
        fprintf(stderr, "usage: %s FIXTURE_DIR...\n", argv[0]);
        return 2;
    }
    struct test_state ts = {0};
    for (int i = 1; i < argc; i++) RUN_ON(&ts, check_fixture, argv[i]);
    return test_summary(&ts);
}
