/* Incremental decoding on the device: src/model/decode.c with the cache in device memory. The
 * cache's bookkeeping (lengths, rope deltas) stays on the host, where the rollout loop reads it; a
 * step uploads its rows' slots and positions once, and every layer's append and attention read them
 * there (no per-layer host tables). */
#include <stdlib.h>
#include <string.h>

#include "dev_internal.h"
#include "mmupt/kernels.h"

void model_dev_kv_init(struct model_kv *kv, const struct model_dev *d, int n_slots, int max_len)
{
    memset(kv, 0, sizeof *kv);
    kv->n_slots = n_slots;
    kv->max_len = max_len;
    kv->n_layers = d->m->cfg.text.n_layers;
    kv->kvd = d->m->cfg.text.n_kv_heads * d->m->cfg.text.head_dim;
    int64_t n = kv->n_layers * n_slots * (int64_t)max_len * kv->kvd;
    kv->k = gpu_alloc_floats(d->g, n);
    kv->v = gpu_alloc_floats(d->g, n);
    kv->len = mmupt_xcalloc((size_t)n_slots, sizeof *kv->len);
    kv->delta = mmupt_xcalloc((size_t)n_slots, sizeof *kv->delta);
}

void model_dev_kv_free(struct model_kv *kv, const struct model_dev *d)
{
    gpu_free(d->g, kv->k);
    gpu_free(d->g, kv->v);
    free(kv->len);
    free(kv->delta);
    memset(kv, 0, sizeof *kv);
}

void model_dev_kv_copy(struct model_kv *kv, const struct model_dev *d, int from, int to)
{
    size_t bytes = (size_t)(kv->len[from] * kv->kvd) * sizeof(float);
    for (int64_t l = 0; l < kv->n_layers; l++) {
        gpu_copy(d->g, model_kv_row(kv, kv->k, l, to, 0), model_kv_row(kv, kv->k, l, from, 0), bytes);
        gpu_copy(d->g, model_kv_row(kv, kv->v, l, to, 0), model_kv_row(kv, kv->v, l, from, 0), bytes);
    }
    kv->len[to] = kv->len[from];
    kv->delta[to] = kv->delta[from];
}

int model_dev_prefill(struct model_dev *d, struct model_kv *kv, int slot, const struct model_batch *prompt,
                      const float **last_logits, struct mmupt_err *err)
{
    if (prompt->n_seq != 1) return mmupt_fail(err, "prefill takes one prompt at a time (got %d)", prompt->n_seq);
    if (slot < 0 || slot >= kv->n_slots) return mmupt_fail(err, "no KV slot %d", slot);
    if (prompt->seq_len[0] >= kv->max_len)
        return mmupt_fail(err, "prompt of %d tokens leaves no room in a KV cache of %d", prompt->seq_len[0], kv->max_len);
    if (model_dev_forward_last(d, prompt, err)) return -1;
    int T = prompt->seq_len[0];
    size_t bytes = (size_t)(T * kv->kvd) * sizeof(float);
    for (int64_t l = 0; l < kv->n_layers; l++) {
        gpu_copy(d->g, model_kv_row(kv, kv->k, l, slot, 0), d->acts->layers[l].k, bytes);
        gpu_copy(d->g, model_kv_row(kv, kv->v, l, slot, 0), d->acts->layers[l].v, bytes);
    }
    kv->len[slot] = T;
    kv->delta[slot] = d->rope_deltas[0];
    *last_logits = d->logits;
    return 0;
}

/* Device buffers of one decode step for n rows. */
struct dev_step {
    float *x, *n1, *q, *k, *v, *att, *mid, *n2, *gate, *up, *act, *rstd, *cos, *sin;
    int64_t *tokens;
    int *slot, *at; /* [n] each: the rows' cache slots and their new tokens' positions (one buffer) */
};

static void step_alloc(struct dev_step *b, const struct gpu_ctx *g, const struct model_config *c, int n)
{
    const struct model_text_config *t = &c->text;
    int64_t H = t->hidden, I = t->intermediate, qd = t->n_heads * t->head_dim, kvd = t->n_kv_heads * t->head_dim;
    float **f[] = {&b->x, &b->n1, &b->att, &b->mid, &b->n2};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) *f[i] = gpu_alloc_floats(g, n * (qd > H ? qd : H));
    b->q = gpu_alloc_floats(g, n * qd);
    b->k = gpu_alloc_floats(g, n * kvd);
    b->v = gpu_alloc_floats(g, n * kvd);
    b->gate = gpu_alloc_floats(g, n * I);
    b->up = gpu_alloc_floats(g, n * I);
    b->act = gpu_alloc_floats(g, n * I);
    b->rstd = gpu_alloc_floats(g, n);
    b->cos = gpu_alloc_floats(g, n * t->head_dim);
    b->sin = gpu_alloc_floats(g, n * t->head_dim);
    b->tokens = gpu_alloc(g, (size_t)n * sizeof *b->tokens);
    b->slot = gpu_alloc(g, 2 * (size_t)n * sizeof *b->slot);
    b->at = b->slot + n;
}

static void step_free(struct dev_step *b, const struct gpu_ctx *g)
{
    void *dev[] = {b->x, b->n1, b->q, b->k, b->v, b->att, b->mid, b->n2, b->gate, b->up, b->act, b->rstd, b->cos, b->sin,
                   b->tokens, b->slot};
    for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++) gpu_free(g, dev[i]);
}

/* One decoder layer for the n new rows; appends their keys and values to the cache. */
static void decode_layer(struct model_dev *d, struct model_kv *kv, int64_t l, int n, struct dev_step *b)
{
    const struct gpu_ctx *g = d->g;
    const struct model_text_config *t = &d->m->cfg.text;
    const struct model_text_layer *y = &d->m->spec.L.layers[l];
    const float *p = d->params;
    int H = (int)t->hidden, I = (int)t->intermediate, nh = (int)t->n_heads, nkv = (int)t->n_kv_heads, hd = (int)t->head_dim;
    int kvd = nkv * hd;
    float eps = (float)t->rms_eps;
    rmsnorm_forward_cuda(b->n1, b->rstd, b->x, p + y->ln1, n, H, eps, g->stream);
    dev_linear_forward(d, b->q, b->n1, y->q_w, y->q_b, n, H, nh * hd);
    dev_linear_forward(d, b->k, b->n1, y->k_w, y->k_b, n, H, kvd);
    dev_linear_forward(d, b->v, b->n1, y->v_w, y->v_b, n, H, kvd);
    rope_forward_cuda(b->q, b->cos, b->sin, n, nh, hd, g->stream);
    rope_forward_cuda(b->k, b->cos, b->sin, n, nkv, hd, g->stream);
    float *ck = model_kv_row(kv, kv->k, l, 0, 0), *cv = model_kv_row(kv, kv->v, l, 0, 0); /* this layer */
    kv_append_cuda(ck, cv, b->k, b->v, b->slot, b->at, n, kv->n_slots, kv->max_len, kvd, g->stream);
    attention_decode_cuda(b->att, b->q, ck, cv, b->slot, b->at, n, kv->n_slots, kv->max_len, nh, nkv, hd, g->stream);
    dev_linear_forward(d, b->mid, b->att, y->o_w, -1, n, nh * hd, H);
    residual_forward_cuda(b->mid, b->mid, b->x, (long)n * H, g->stream);
    rmsnorm_forward_cuda(b->n2, b->rstd, b->mid, p + y->ln2, n, H, eps, g->stream);
    dev_linear_forward(d, b->gate, b->n2, y->gate, -1, n, H, I);
    dev_linear_forward(d, b->up, b->n2, y->up, -1, n, H, I);
    swiglu_forward_cuda(b->act, b->gate, b->up, (long)n * I, g->stream);
    dev_linear_forward(d, b->x, b->act, y->down, -1, n, I, H);
    residual_forward_cuda(b->x, b->x, b->mid, (long)n * H, g->stream);
}

int model_dev_decode(struct model_dev *d, struct model_kv *kv, const int *slots, const int64_t *tokens, int n,
                     float *logits, struct mmupt_err *err)
{
    if (n < 1) return 0;
    if (model_check_step(d->m, kv, slots, tokens, n, err)) return -1;
    const struct gpu_ctx *g = d->g;
    const struct model_text_config *t = &d->m->cfg.text;
    struct dev_step b;
    step_alloc(&b, g, &d->m->cfg, n);
    gpu_upload(g, b.tokens, tokens, (size_t)n * sizeof *tokens);
    embedding_forward_cuda(b.x, b.tokens, d->params + d->m->spec.L.embed, n, (int)t->hidden, g->stream);
    int64_t *pos = mmupt_xmalloc((size_t)(3 * n) * sizeof *pos);
    int *idx = mmupt_xmalloc(2 * (size_t)n * sizeof *idx); /* [slot | at], as b.slot and b.at */
    for (int i = 0; i < n; i++) {
        idx[i] = slots[i];
        idx[n + i] = kv->len[slots[i]];
        pos[i] = pos[n + i] = pos[2 * n + i] = kv->len[slots[i]] + kv->delta[slots[i]];
    }
    dev_upload_rope(d, pos, n, b.cos, b.sin);
    gpu_upload(g, b.slot, idx, 2 * (size_t)n * sizeof *idx);
    free(pos);
    free(idx);
    for (int64_t l = 0; l < t->n_layers; l++) decode_layer(d, kv, l, n, &b);
    for (int i = 0; i < n; i++) kv->len[slots[i]]++;
    rmsnorm_forward_cuda(b.n1, b.rstd, b.x, d->params + d->m->spec.L.final_norm, n, (int)t->hidden, (float)t->rms_eps,
                         g->stream);
    dev_linear_forward(d, logits, b.n1, d->m->spec.L.lm_head, -1, n, (int)t->hidden, (int)t->vocab);
    step_free(&b, g);
    return 0;
}
