/* The whole model: token embedding with image rows spliced in at <|image_pad|> positions, the
 * decoder layers, the final norm and the lm_head; forward keeps every activation the backward pass
 * needs (this is the CPU reference, memory is not its concern). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mmupt/kernels.h"
#include "model_internal.h"

void model_init(struct model *m, const struct model_config *c)
{
    memset(m, 0, sizeof *m);
    m->cfg = *c;
    model_spec_build(&m->spec, c);
    m->params = mmupt_xcalloc((size_t)m->spec.total, sizeof(float));
    m->grads = mmupt_xcalloc((size_t)m->spec.total, sizeof(float));
}

int model_open(struct model *m, const char *dir, struct mmupt_err *err)
{
    struct model_config c;
    if (model_config_load(&c, dir, err)) return -1;
    model_init(m, &c);
    if (model_weights_load(&m->spec, m->params, dir, err)) {
        model_free(m);
        return -1;
    }
    return 0;
}

static void acts_free(struct model *m)
{
    struct model_acts *a = m->acts;
    if (!a) return;
    if (a->layers)
        for (int64_t l = 0; l < m->cfg.text.n_layers; l++) block_acts_free(&a->layers[l]);
    vision_acts_free(&a->vis, &m->cfg);
    free(a->layers);
    free(a->seg);
    free(a->tokens);
    free(a->cos);
    free(a->sin);
    free(a->embed);
    free(a->out);
    free(a->final);
    free(a->final_rstd);
    free(a);
    m->acts = NULL;
    free(m->logits);
    free(m->positions);
    free(m->rope_deltas);
    m->logits = NULL;
    m->positions = m->rope_deltas = NULL;
}

void model_free(struct model *m)
{
    acts_free(m);
    model_spec_free(&m->spec);
    free(m->params);
    free(m->grads);
    memset(m, 0, sizeof *m);
}

void model_zero_grad(struct model *m)
{
    memset(m->grads, 0, (size_t)m->spec.total * sizeof(float));
}

static struct block_shape text_shape(const struct model *m)
{
    const struct model_acts *a = m->acts;
    return model_text_shape(&m->cfg, a->T, a->seg, a->n_seq, a->cos, a->sin);
}

struct block_shape model_text_shape(const struct model_config *c, int64_t T, const int *seg, int n_seq, const float *cos,
                                    const float *sin)
{
    const struct model_text_config *t = &c->text;
    struct block_shape s = {
        .T = T, .D = t->hidden, .I = t->intermediate, .n_heads = (int)t->n_heads, .n_kv = (int)t->n_kv_heads,
        .hd = (int)t->head_dim, .causal = 1, .seg = seg, .n_seg = n_seq, .norm = NORM_RMS, .mlp = MLP_SWIGLU,
        .eps = (float)t->rms_eps, .cos = cos, .sin = sin,
    };
    return s;
}

struct block_weights model_text_weights(const struct model_text_layer *y)
{
    struct block_weights w = {
        .norm1_w = y->ln1, .norm1_b = -1, .norm2_w = y->ln2, .norm2_b = -1,
        .q_w = y->q_w, .q_b = y->q_b, .k_w = y->k_w, .k_b = y->k_b, .v_w = y->v_w, .v_b = y->v_b,
        .o_w = y->o_w, .o_b = -1,
        .gate_w = y->gate, .gate_b = -1, .up_w = y->up, .up_b = -1, .down_w = y->down, .down_b = -1,
    };
    return w;
}

/* Check the batch before anything is allocated from its numbers. */
int model_check_batch(const struct model *m, const struct model_batch *b, int64_t *T, struct mmupt_err *err)
{
    if (b->n_seq < 1) return mmupt_fail(err, "empty batch");
    int64_t total = 0;
    for (int s = 0; s < b->n_seq; s++) {
        if (b->seq_len[s] < 1) return mmupt_fail(err, "sequence %d is empty", s);
        total += b->seq_len[s];
        if (total > (1 << 24)) return mmupt_fail(err, "batch of more than %d tokens", 1 << 24);
    }
    for (int64_t i = 0; i < total; i++)
        if (b->tokens[i] < 0 || b->tokens[i] >= m->cfg.text.vocab)
            return mmupt_fail(err, "token %lld has id %lld, outside the vocabulary [0, %lld)", (long long)i,
                              (long long)b->tokens[i], (long long)m->cfg.text.vocab);
    if (b->n_images > 0 && !m->cfg.has_vision)
        return mmupt_fail(err, "%d image(s) given to a text-only model", b->n_images);
    *T = total;
    return 0;
}

/* Token embeddings, with the i-th <|image_pad|> row replaced by merged image row i. */
static void embed_tokens(struct model *m)
{
    struct model_acts *a = m->acts;
    int64_t H = m->cfg.text.hidden;
    embedding_forward_cpu(a->embed, a->tokens, m->params + m->spec.L.embed, (int)a->T, (int)H);
    if (!a->has_images) return;
    for (int64_t t = 0, k = 0; t < a->T; t++)
        if (a->tokens[t] == m->cfg.image_token_id)
            memcpy(a->embed + t * H, a->vis.merged + (k++) * H, (size_t)H * sizeof(float));
}

static int setup_acts(struct model *m, const struct model_batch *b, int64_t T, struct mmupt_err *err)
{
    struct model_acts *a = mmupt_xcalloc(1, sizeof *a);
    m->acts = a;
    a->T = T;
    a->n_seq = b->n_seq;
    a->seg = mmupt_xmalloc((size_t)(b->n_seq + 1) * sizeof *a->seg);
    a->seg[0] = 0;
    for (int s = 0; s < b->n_seq; s++) a->seg[s + 1] = a->seg[s] + b->seq_len[s];
    a->tokens = mmupt_xmalloc((size_t)T * sizeof *a->tokens);
    memcpy(a->tokens, b->tokens, (size_t)T * sizeof *a->tokens);
    m->n_tokens = T;
    m->positions = mmupt_xmalloc((size_t)(3 * T) * sizeof *m->positions);
    m->rope_deltas = mmupt_xmalloc((size_t)b->n_seq * sizeof *m->rope_deltas);
    if (model_positions(&m->cfg, b, T, m->positions, m->rope_deltas, err)) return -1;
    int64_t hd = m->cfg.text.head_dim;
    a->cos = mmupt_xmalloc((size_t)(T * hd) * sizeof(float));
    a->sin = mmupt_xmalloc((size_t)(T * hd) * sizeof(float));
    model_text_rope(&m->cfg, m->positions, T, a->cos, a->sin);
    a->has_images = b->n_images > 0;
    a->pixels = b->pixels;
    if (a->has_images && vision_plan_build(&a->vis.plan, &m->cfg, b->grid_thw, b->n_images, err)) return -1;
    return 0;
}

static int forward(struct model *m, const struct model_batch *b, int last_only, struct mmupt_err *err);

int model_forward(struct model *m, const struct model_batch *b, struct mmupt_err *err)
{
    return forward(m, b, 0, err);
}

int model_forward_last(struct model *m, const struct model_batch *b, struct mmupt_err *err)
{
    return forward(m, b, 1, err);
}

/* lm_head for every position, or (last_only) only for the last position of each sequence: a
 * prefill needs one row of logits, not seq_len x vocab of them. */
static void lm_head(struct model *m, int last_only)
{
    struct model_acts *a = m->acts;
    int64_t H = m->cfg.text.hidden, V = m->cfg.text.vocab, rows = last_only ? a->n_seq : a->T;
    const float *x = a->final;
    float *gathered = NULL;
    if (last_only) {
        gathered = mmupt_xmalloc((size_t)(rows * H) * sizeof(float));
        for (int s = 0; s < a->n_seq; s++)
            memcpy(gathered + s * H, a->final + (int64_t)(a->seg[s + 1] - 1) * H, (size_t)H * sizeof(float));
        x = gathered;
    }
    a->last_only = last_only;
    m->logits = mmupt_xmalloc((size_t)(rows * V) * sizeof(float));
    matmul_forward_cpu(m->logits, x, m->params + m->spec.L.lm_head, NULL, (int)rows, (int)H, (int)V);
    free(gathered);
}

static int forward(struct model *m, const struct model_batch *b, int last_only, struct mmupt_err *err)
{
    int64_t T = 0;
    acts_free(m);
    if (model_check_batch(m, b, &T, err)) return -1;
    if (setup_acts(m, b, T, err)) {
        acts_free(m);
        return -1;
    }
    struct model_acts *a = m->acts;
    const struct model_text_config *tc = &m->cfg.text;
    const struct model_layout *L = &m->spec.L;
    int64_t H = tc->hidden;
    if (a->has_images) vision_forward(&a->vis, &m->cfg, &m->spec, m->params, b->pixels);
    a->embed = mmupt_xmalloc((size_t)(T * H) * sizeof(float));
    embed_tokens(m);
    a->layers = mmupt_xcalloc((size_t)tc->n_layers, sizeof *a->layers);
    struct block_shape s = text_shape(m);
    float *x = a->embed;
    for (int64_t l = 0; l < tc->n_layers; l++) {
        struct block_weights w = model_text_weights(&L->layers[l]);
        block_acts_alloc(&a->layers[l], &s);
        float *out = mmupt_xmalloc((size_t)(T * H) * sizeof(float));
        block_forward(&a->layers[l], &s, &w, m->params, x, out);
        /* block_forward saved its own copy of x, so the previous layer's output can go. */
        if (x != a->embed) free(x);
        x = out;
    }
    a->out = x;
    a->final = mmupt_xmalloc((size_t)(T * H) * sizeof(float));
    a->final_rstd = mmupt_xmalloc((size_t)T * sizeof(float));
    rmsnorm_forward_cpu(a->final, a->final_rstd, a->out, m->params + L->final_norm, (int)T, (int)H, (float)tc->rms_eps);
    lm_head(m, last_only);
    return 0;
}

void model_backward(struct model *m, const float *dlogits)
{
    struct model_acts *a = m->acts;
    MMUPT_CHECK(a != NULL && !a->last_only); /* model_forward_last keeps no per-token logits */
    const struct model_text_config *tc = &m->cfg.text;
    const struct model_layout *L = &m->spec.L;
    float *p = m->params, *g = m->grads;
    int64_t T = a->T, H = tc->hidden, V = tc->vocab;
    float *dfinal = mmupt_xcalloc((size_t)(T * H), sizeof(float));
    float *dx = mmupt_xcalloc((size_t)(T * H), sizeof(float)), *dprev = mmupt_xmalloc((size_t)(T * H) * sizeof(float));
    matmul_backward_cpu(dfinal, g + L->lm_head, NULL, dlogits, a->final, p + L->lm_head, (int)T, (int)H, (int)V);
    rmsnorm_backward_cpu(dx, g + L->final_norm, dfinal, a->out, p + L->final_norm, a->final_rstd, (int)T, (int)H);
    struct block_shape s = text_shape(m);
    for (int64_t l = tc->n_layers - 1; l >= 0; l--) {
        struct block_weights w = model_text_weights(&L->layers[l]);
        memset(dprev, 0, (size_t)(T * H) * sizeof(float));
        block_backward(&a->layers[l], &s, &w, p, g, dx, dprev);
        float *t = dx;
        dx = dprev;
        dprev = t;
    }
    /* dx is the gradient of the embeddings. Image rows go to the vision tower, the others to the
     * embedding table (the pad token's own row receives nothing from image positions). */
    float *dmerged = NULL;
    if (a->has_images) {
        dmerged = mmupt_xcalloc((size_t)(a->vis.plan.n_units * H), sizeof(float));
        for (int64_t t = 0, k = 0; t < T; t++)
            if (a->tokens[t] == m->cfg.image_token_id) {
                memcpy(dmerged + (k++) * H, dx + t * H, (size_t)H * sizeof(float));
                memset(dx + t * H, 0, (size_t)H * sizeof(float));
            }
    }
    embedding_backward_cpu(g + L->embed, dx, a->tokens, (int)T, (int)H);
    if (a->has_images) vision_backward(&a->vis, &m->cfg, &m->spec, p, g, a->pixels, dmerged);
    free(dmerged);
    free(dfinal);
    free(dx);
    free(dprev);
}

void model_logprobs(const struct model *m, const int64_t *targets, float tau, float *logp, float *entropy)
{
    MMUPT_CHECK(m->acts != NULL);
    logprob_forward_cpu(logp, entropy, m->logits, targets, (int)m->n_tokens, (int)m->cfg.text.vocab, tau);
}

void model_backward_logprobs(struct model *m, const int64_t *targets, float tau, const float *weight)
{
    MMUPT_CHECK(m->acts != NULL);
    int64_t n = m->n_tokens * m->cfg.text.vocab;
    float *dlogits = mmupt_xcalloc((size_t)n, sizeof(float));
    logprob_backward_cpu(dlogits, weight, m->logits, targets, (int)m->n_tokens, (int)m->cfg.text.vocab, tau);
    model_backward(m, dlogits);
    free(dlogits);
}

const float *model_tap(const struct model *m, const char *name, int64_t *rows, int64_t *cols)
{
    const struct model_acts *a = m->acts;
    if (!a) return NULL;
    int64_t H = m->cfg.text.hidden, D = m->cfg.vision.hidden, idx;
    char tail;
    *rows = a->T;
    *cols = H;
    if (strcmp(name, "hidden.embed") == 0) return a->embed;
    if (strcmp(name, "hidden.norm") == 0) return a->final;
    if (sscanf(name, "hidden.layer.%lld%c", (long long *)&idx, &tail) == 1 && idx >= 0 && idx < m->cfg.text.n_layers)
        return idx + 1 < m->cfg.text.n_layers ? a->layers[idx + 1].x : a->out;
    if (!a->has_images) return NULL;
    *rows = a->vis.plan.n_patches;
    *cols = D;
    if (strcmp(name, "vision.patch_embed") == 0) return a->vis.pe;
    if (sscanf(name, "vision.block.%lld%c", (long long *)&idx, &tail) == 1 && idx >= 0 && idx < m->cfg.vision.depth)
        return idx + 1 < m->cfg.vision.depth ? a->vis.blocks[idx + 1].x : a->vis.out;
    if (strcmp(name, "vision.merged") == 0) {
        *rows = a->vis.plan.n_units;
        *cols = H;
        return a->vis.merged;
    }
    return NULL;
}
