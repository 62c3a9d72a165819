/* The whole decoder on the device: src/model/model.c's embedding, layers, final norm and lm_head,
 * its backward and the log-probability pair, with the CUDA twins on device buffers. Positions and
 * rotary tables are computed on the host (small, and shared with the CPU model) and uploaded. */
#include <stdlib.h>
#include <string.h>

#include "dev_internal.h"
#include "mmupt/kernels.h"

void model_dev_init(struct model_dev *d, const struct model *m, const struct gpu_ctx *g)
{
    memset(d, 0, sizeof *d);
    d->g = g;
    d->m = m;
    d->params = gpu_alloc_floats(g, m->spec.total);
    d->grads = gpu_alloc_floats(g, m->spec.total);
    d->graphs = 1;
    model_dev_upload_params(d, m->params);
    dev_grads_init(d);
    model_dev_zero_grad(d);
}

static void acts_free(struct model_dev *d)
{
    struct model_dev_acts *a = d->acts;
    const struct gpu_ctx *g = d->g;
    if (a) {
        if (a->layers)
            for (int64_t l = 0; l < d->m->cfg.text.n_layers; l++) dev_block_acts_free(g, &a->layers[l]);
        free(a->layers);
        free(a->seg);
        free(a->image_rows);
        dev_vision_free(g, &a->vis, &d->m->cfg);
        void *dev[] = {a->tokens, a->cos, a->sin, a->embed, a->out, a->final, a->final_rstd, a->final16};
        for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++) gpu_free(g, dev[i]);
        free(a);
    }
    d->acts = NULL;
    gpu_free(g, d->logits);
    d->logits = NULL;
    free(d->rope_deltas);
    d->rope_deltas = NULL;
}

void model_dev_release(struct model_dev *d)
{
    acts_free(d);
    d->stats_valid = 0;
}

void model_dev_free(struct model_dev *d)
{
    acts_free(d);
    dev_decoder_free(d);
    model_dev_set_bf16(d, 0);
    void *dev[] = {d->params, d->grads, d->targets, d->logp, d->entropy, d->row_max, d->row_sum};
    for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++) gpu_free(d->g, dev[i]);
    dev_grads_free(d);
    memset(d, 0, sizeof *d);
}

void model_dev_upload_params(struct model_dev *d, const float *params)
{
    gpu_upload(d->g, d->params, params, (size_t)d->m->spec.total * sizeof(float));
    model_dev_params_changed(d);
}

void dev_upload_rope(const struct model_dev *d, const int64_t *pos, int64_t n, float *cos, float *sin)
{
    int64_t hd = d->m->cfg.text.head_dim;
    float *c = mmupt_xmalloc((size_t)(n * hd) * sizeof *c), *s = mmupt_xmalloc((size_t)(n * hd) * sizeof *s);
    model_text_rope(&d->m->cfg, pos, n, c, s);
    gpu_upload(d->g, cos, c, (size_t)(n * hd) * sizeof *c);
    gpu_upload(d->g, sin, s, (size_t)(n * hd) * sizeof *s);
    free(c);
    free(s);
}

/* Host-side bookkeeping of a batch (segments, positions, rope deltas) and its device inputs. */
static int setup_acts(struct model_dev *d, const struct model_batch *b, int64_t T, struct mmupt_err *err)
{
    const struct gpu_ctx *g = d->g;
    struct model_dev_acts *a = mmupt_xcalloc(1, sizeof *a);
    d->acts = a;
    a->T = T;
    a->n_seq = b->n_seq;
    a->seg = mmupt_xmalloc((size_t)(b->n_seq + 1) * sizeof *a->seg);
    a->seg[0] = 0;
    for (int s = 0; s < b->n_seq; s++) a->seg[s + 1] = a->seg[s] + b->seq_len[s];
    d->n_tokens = T;
    d->n_seq = b->n_seq;
    d->rope_deltas = mmupt_xmalloc((size_t)b->n_seq * sizeof *d->rope_deltas);
    int64_t *pos = mmupt_xmalloc((size_t)(3 * T) * sizeof *pos);
    int rc = model_positions(&d->m->cfg, b, T, pos, d->rope_deltas, err);
    if (rc == 0) {
        int64_t hd = d->m->cfg.text.head_dim;
        a->cos = gpu_alloc_floats(g, T * hd);
        a->sin = gpu_alloc_floats(g, T * hd);
        dev_upload_rope(d, pos, T, a->cos, a->sin);
        a->tokens = gpu_alloc(g, (size_t)T * sizeof *a->tokens);
        gpu_upload(g, a->tokens, b->tokens, (size_t)T * sizeof *a->tokens);
        a->has_images = b->n_images > 0;
        /* the positions of the <|image_pad|> tokens: merged image row k goes to image_rows[k] */
        a->image_rows = mmupt_xmalloc((size_t)T * sizeof *a->image_rows);
        for (int64_t t = 0; a->has_images && t < T; t++)
            if (b->tokens[t] == d->m->cfg.image_token_id) a->image_rows[a->n_image_rows++] = t;
    }
    free(pos);
    return rc;
}

/* lm_head for every position, or (last_only) for each sequence's last position only. */
static void lm_head(struct model_dev *d, int last_only)
{
    const struct gpu_ctx *g = d->g;
    struct model_dev_acts *a = d->acts;
    int64_t H = d->m->cfg.text.hidden, V = d->m->cfg.text.vocab, rows = last_only ? a->n_seq : a->T;
    const float *x = a->final;
    float *gathered = NULL;
    if (last_only) {
        gathered = gpu_alloc_floats(g, rows * H);
        for (int s = 0; s < a->n_seq; s++)
            gpu_copy(g, gathered + s * H, a->final + (int64_t)(a->seg[s + 1] - 1) * H, (size_t)H * sizeof(float));
        x = gathered;
    }
    a->last_only = last_only;
    d->logits = gpu_alloc_floats(g, rows * V);
    if (a->final16) /* (only a forward of every position keeps it: x is a->final) */
        dev_linear_forward_bf16_op(d, d->logits, x, a->final16, d->m->spec.L.lm_head, -1, (int)rows, (int)H, (int)V);
    else
        dev_linear_forward(d, d->logits, x, d->m->spec.L.lm_head, -1, (int)rows, (int)H, (int)V);
    gpu_free(g, gathered);
}

/* Token embeddings, with the i-th <|image_pad|> row replaced by merged image row i. */
static void embed_tokens(struct model_dev *d)
{
    struct model_dev_acts *a = d->acts;
    int64_t H = d->m->cfg.text.hidden;
    embedding_forward_cuda(a->embed, a->tokens, d->params + d->m->spec.L.embed, (int)a->T, (int)H, d->g->stream);
    if (!a->has_images) return;
    scatter_rows_cuda(a->embed, a->vis.va.merged, a->image_rows, (int)a->n_image_rows, (long)H, d->g->stream);
}

static int forward(struct model_dev *d, const struct model_batch *b, int last_only, struct mmupt_err *err)
{
    const struct gpu_ctx *g = d->g;
    const struct model *m = d->m;
    int64_t T = 0;
    acts_free(d);
    d->stats_valid = 0; /* other logits from here on */
    if (model_check_batch(m, b, &T, err)) return -1;
    if (setup_acts(d, b, T, err)) {
        acts_free(d);
        return -1;
    }
    struct model_dev_acts *a = d->acts;
    const struct model_text_config *tc = &m->cfg.text;
    const struct model_layout *L = &m->spec.L;
    int64_t H = tc->hidden;
    if (a->has_images && dev_vision_forward(d, &a->vis, b, err)) {
        acts_free(d);
        return -1;
    }
    a->embed = gpu_alloc_floats(g, T * H);
    embed_tokens(d);
    a->layers = mmupt_xcalloc((size_t)tc->n_layers, sizeof *a->layers);
    struct block_shape s = model_text_shape(&m->cfg, T, a->seg, a->n_seq, a->cos, a->sin);
    float *x = a->embed;
    for (int64_t l = 0; l < tc->n_layers; l++) {
        struct block_weights w = model_text_weights(&L->layers[l]);
        dev_block_acts_alloc(g, &a->layers[l], &s, d->params_bf16 != NULL,
                             d->params_bf16 && !last_only && !d->recompute);
        float *out = gpu_alloc_floats(g, T * H);
        dev_block_forward(d, &a->layers[l], &s, &w, x, out);
        /* The prefill's forward_last keeps k and v for the cache alone: no backward follows it. */
        if (last_only) dev_block_acts_keep_kv(g, &a->layers[l]);
        else if (d->recompute) dev_block_acts_keep_input(g, &a->layers[l]);
        if (x != a->embed) gpu_free(g, x); /* the block kept its own copy */
        x = out;
    }
    a->out = x;
    a->final = gpu_alloc_floats(g, T * H);
    a->final_rstd = gpu_alloc_floats(g, T);
    if (d->params_bf16 && !last_only) { /* the rounding too: every lm_head GEMM of the step reads it */
        a->final16 = gpu_alloc(g, (size_t)(T * H) * sizeof *a->final16);
        rmsnorm_forward_cast_cuda(a->final, a->final16, a->final_rstd, a->out, d->params + L->final_norm, (int)T,
                                  (int)H, (float)tc->rms_eps, 0, g->stream);
    } else {
        rmsnorm_forward_cuda(a->final, a->final_rstd, a->out, d->params + L->final_norm, (int)T, (int)H,
                             (float)tc->rms_eps, g->stream);
    }
    if (last_only || d->logit_chunk <= 0) lm_head(d, last_only); /* else per chunk, in the log-prob pair */
    return 0;
}

int model_dev_forward(struct model_dev *d, const struct model_batch *b, struct mmupt_err *err)
{
    return forward(d, b, 0, err);
}

int model_dev_forward_last(struct model_dev *d, const struct model_batch *b, struct mmupt_err *err)
{
    return forward(d, b, 1, err);
}

/* Everything below the final norm's output: from dfinal [T, H] (freed here) to every gradient. */
static void backward_body(struct model_dev *d, float *dfinal)
{
    const struct gpu_ctx *g = d->g;
    struct model_dev_acts *a = d->acts;
    const struct model_text_config *tc = &d->m->cfg.text;
    const struct model_layout *L = &d->m->spec.L;
    float *p = d->params, *gr = d->grads;
    int64_t T = a->T, H = tc->hidden;
    float *dx = gpu_zeros_floats(g, T * H), *dprev = gpu_alloc_floats(g, T * H);
    struct block_shape s = model_text_shape(&d->m->cfg, T, a->seg, a->n_seq, a->cos, a->sin);
    /* bf16: each layer's input gradient comes with its bf16 rounding, written by the norm backward
     * that makes it, for the layer below's down projection (no cast launch) */
    uint16_t *dx16 = NULL, *dprev16 = NULL;
    if (dev_block_writes_dx16(d, &s)) {
        dx16 = gpu_alloc(g, (size_t)(T * H) * sizeof *dx16);
        dprev16 = gpu_alloc(g, (size_t)(T * H) * sizeof *dprev16);
    }
    (void)dev_grad_begin(d, L->final_norm, H, 0);
    if (dx16)
        rmsnorm_backward_cast_cuda(dx, dx16, gr + L->final_norm, dfinal, a->out, p + L->final_norm, a->final_rstd,
                                   NULL, (int)T, (int)H, g->stream);
    else
        rmsnorm_backward_cuda(dx, gr + L->final_norm, dfinal, a->out, p + L->final_norm, a->final_rstd, (int)T, (int)H,
                              g->stream);
    gpu_free(g, dfinal);
    dev_grads_stage_done(d, 0);
    for (int64_t l = tc->n_layers - 1; l >= 0; l--) {
        struct block_weights w = model_text_weights(&L->layers[l]);
        uint16_t *out16 = l > 0 ? dprev16 : NULL; /* the embeddings' gradient is read in fp32 only */
        if (d->recompute) { /* the block's activations again, from its saved input */
            struct block_acts re;
            dev_block_acts_alloc(g, &re, &s, d->params_bf16 != NULL, d->params_bf16 != NULL);
            float *out = gpu_alloc_floats(g, T * H);
            dev_block_forward(d, &re, &s, &w, a->layers[l].x, out);
            gpu_free(g, out);
            dev_block_backward(d, &re, &s, &w, dx, dx16, dprev, out16);
            dev_block_acts_free(g, &re);
        } else {
            dev_block_backward(d, &a->layers[l], &s, &w, dx, dx16, dprev, out16);
        }
        float *t = dx;
        dx = dprev;
        dprev = t;
        uint16_t *t16 = dx16;
        dx16 = dprev16;
        dprev16 = t16;
        dev_grads_stage_done(d, (int)(tc->n_layers - l));
    }
    /* dx is the gradient of the embeddings. Image rows go to the vision tower, the others to the
     * embedding table (the pad token's own row receives nothing from image positions). */
    float *dmerged = NULL;
    if (a->has_images) {
        int64_t n = a->n_image_rows;
        dmerged = gpu_alloc_floats(g, n * H);
        float *zero = gpu_zeros_floats(g, n * H);
        gather_rows_cuda(dmerged, dx, a->image_rows, (int)n, (long)H, g->stream);
        scatter_rows_cuda(dx, zero, a->image_rows, (int)n, (long)H, g->stream);
        gpu_free(g, zero);
    }
    (void)dev_grad_begin(d, L->embed, tc->vocab * H, 0); /* tied: lm_head's GEMM wrote it first */
    embedding_backward_cuda(gr + L->embed, dx, a->tokens, (int)T, (int)H, g->stream);
    dev_grads_stage_done(d, (int)tc->n_layers + 1);
    if (a->has_images) dev_vision_backward(d, &a->vis, dmerged);
    if (L->patch_embed >= 0) dev_grads_stage_done(d, (int)tc->n_layers + 2);
    gpu_free(g, dmerged);
    gpu_free(g, dx);
    gpu_free(g, dprev);
    gpu_free(g, dx16);
    gpu_free(g, dprev16);
}

void model_dev_backward(struct model_dev *d, const float *dlogits)
{
    struct model_dev_acts *a = d->acts;
    MMUPT_CHECK(a != NULL && !a->last_only); /* a forward_last keeps no per-token logits */
    int64_t T = a->T, H = d->m->cfg.text.hidden, V = d->m->cfg.text.vocab;
    float *dfinal = gpu_alloc_floats(d->g, T * H); /* assigned by the GEMM */
    dev_linear_backward_set(d, dfinal, dlogits, a->final, a->final16, d->m->spec.L.lm_head, -1, (int)T, (int)H, (int)V);
    backward_body(d, dfinal);
}

/* Device scratch for n rows of targets and log-probabilities. */
static void scratch_reserve(struct model_dev *d, int64_t n)
{
    if (n <= d->scratch_rows) return;
    gpu_free(d->g, d->targets);
    gpu_free(d->g, d->logp);
    gpu_free(d->g, d->entropy);
    gpu_free(d->g, d->row_max);
    gpu_free(d->g, d->row_sum);
    d->targets = gpu_alloc(d->g, (size_t)n * sizeof *d->targets);
    d->logp = gpu_alloc_floats(d->g, n);
    d->entropy = gpu_alloc_floats(d->g, n);
    d->row_max = gpu_alloc_floats(d->g, n);
    d->row_sum = gpu_alloc(d->g, (size_t)n * sizeof *d->row_sum);
    d->scratch_rows = n;
    d->stats_valid = 0;
}

/* Rows [r0, r0 + n) of the logits, from the final norm's output, into chunk [n, V]. */
static void chunk_logits(struct model_dev *d, float *chunk, int64_t r0, int64_t n)
{
    const struct model_dev_acts *a = d->acts;
    int64_t H = d->m->cfg.text.hidden, V = d->m->cfg.text.vocab, w = d->m->spec.L.lm_head;
    if (a->final16)
        dev_linear_forward_bf16_op(d, chunk, a->final + r0 * H, a->final16 + r0 * H, w, -1, (int)n, (int)H, (int)V);
    else
        dev_linear_forward(d, chunk, a->final + r0 * H, w, -1, (int)n, (int)H, (int)V);
}

void model_dev_logprobs(struct model_dev *d, const int64_t *targets, float tau, float *logp, float *entropy)
{
    MMUPT_CHECK(d->acts != NULL && !d->acts->last_only);
    const struct gpu_ctx *g = d->g;
    int64_t n = d->n_tokens, V = d->m->cfg.text.vocab;
    scratch_reserve(d, n);
    gpu_upload(g, d->targets, targets, (size_t)n * sizeof *targets);
    /* bf16: the rows' statistics too, which spare the backward a read of every logit */
    int stats = d->params_bf16 != NULL;
    float *ent = entropy ? d->entropy : NULL, *rmax = stats ? d->row_max : NULL;
    double *rsum = stats ? d->row_sum : NULL;
    if (d->logits) {
        logprob_forward_stats_cuda(d->logp, ent, rmax, rsum, d->logits, d->targets, (int)n, (int)V, tau, g->stream);
    } else { /* chunked: lm_head and the log-softmax over logit_chunk rows at a time */
        int64_t c = d->logit_chunk < n ? d->logit_chunk : n;
        float *chunk = gpu_alloc_floats(g, c * V);
        for (int64_t r0 = 0; r0 < n; r0 += c) {
            int64_t k = n - r0 < c ? n - r0 : c;
            chunk_logits(d, chunk, r0, k);
            logprob_forward_stats_cuda(d->logp + r0, ent ? ent + r0 : NULL, rmax ? rmax + r0 : NULL,
                                       rsum ? rsum + r0 : NULL, chunk, d->targets + r0, (int)k, (int)V, tau, g->stream);
        }
        gpu_free(g, chunk);
    }
    d->stats_valid = stats;
    d->stats_tau = tau;
    gpu_download(g, logp, d->logp, (size_t)n * sizeof *logp);
    if (entropy) gpu_download(g, entropy, d->entropy, (size_t)n * sizeof *entropy);
}

/* Logit rows [r0, r0 + k) (z: their logits, [k, V]): the gradient of the weighted log-probabilities
 * (weights in d->logp) into dz, then lm_head's share of the backward from it: dfinal's rows = dz @ W
 * and lm_head's weight gradient. dz: k * V values of scratch, fp32 or - bf16 model - bf16. The bf16
 * GEMMs round their operand to bf16 anyway: logprob_backward_bf16 writes that rounding directly,
 * with no zero fill, no fp32 buffer and no cast (a third of the bytes). */
static void lm_head_rows_backward(struct model_dev *d, float *dfinal, void *dz, const float *z, int64_t r0, int64_t k,
                                  float tau)
{
    const struct gpu_ctx *g = d->g;
    int64_t H = d->m->cfg.text.hidden, V = d->m->cfg.text.vocab, w = d->m->spec.L.lm_head;
    const float *x = d->acts->final + r0 * H;
    if (d->params_bf16) {
        /* the forward's row statistics over these same logits (recomputed chunks are the same GEMM,
         * so the same bits), when model_dev_logprobs left them: one read of the logits, not two */
        int stats = d->stats_valid && d->stats_tau == tau;
        logprob_backward_bf16_stats_cuda(dz, d->logp + r0, z, d->targets + r0, stats ? d->row_max + r0 : NULL,
                                         stats ? d->row_sum + r0 : NULL, (int)k, (int)V, tau, g->stream);
        const uint16_t *x16 = d->acts->final16 ? d->acts->final16 + r0 * H : NULL;
        dev_linear_backward_bf16_dy(d, dfinal + r0 * H, dz, NULL, x, x16, w, -1, (int)k, (int)H, (int)V);
        return;
    }
    gpu_zero(g, dz, (size_t)(k * V) * sizeof(float));
    logprob_backward_cuda(dz, d->logp + r0, z, d->targets + r0, (int)k, (int)V, tau, g->stream);
    dev_linear_backward_set(d, dfinal + r0 * H, dz, x, NULL, w, -1, (int)k, (int)H, (int)V);
}

void model_dev_backward_logprobs(struct model_dev *d, const int64_t *targets, float tau, const float *weight)
{
    MMUPT_CHECK(d->acts != NULL && !d->acts->last_only);
    const struct gpu_ctx *g = d->g;
    int64_t n = d->n_tokens, V = d->m->cfg.text.vocab, H = d->m->cfg.text.hidden;
    size_t elem = d->params_bf16 ? sizeof(uint16_t) : sizeof(float); /* of the logits' gradient */
    scratch_reserve(d, n);
    gpu_upload(g, d->targets, targets, (size_t)n * sizeof *targets);
    gpu_upload(g, d->logp, weight, (size_t)n * sizeof *weight); /* the weights, in the logp scratch */
    float *dfinal = gpu_alloc_floats(g, n * H); /* each row block assigned once, by its lm_head GEMM */
    if (d->logits) {
        void *dlogits = gpu_alloc(g, (size_t)(n * V) * elem);
        lm_head_rows_backward(d, dfinal, dlogits, d->logits, 0, n, tau);
        gpu_free(g, dlogits);
    } else { /* chunked: each chunk's logits again, their gradient, and its share of lm_head's backward */
        int64_t c = d->logit_chunk < n ? d->logit_chunk : n;
        float *chunk = gpu_alloc_floats(g, c * V);
        void *dchunk = gpu_alloc(g, (size_t)(c * V) * elem);
        for (int64_t r0 = 0; r0 < n; r0 += c) {
            int64_t k = n - r0 < c ? n - r0 : c;
            chunk_logits(d, chunk, r0, k);
            lm_head_rows_backward(d, dfinal, dchunk, chunk, r0, k, tau);
        }
        gpu_free(g, chunk);
        gpu_free(g, dchunk);
    }
    backward_body(d, dfinal);
}
