/* Incremental decoding with a KV cache: prefill a prompt with the full forward (vision tower
 * included, once per image), keep its post-RoPE keys and values, then extend any set of slots by one
 * token per step, each attending only to its own cache. Positions continue at cache index + the
 * prompt's rope delta on all three M-RoPE axes, as transformers does after a multimodal prompt. */
#include <stdlib.h>
#include <string.h>

#include "mmupt/kernels.h"
#include "model_internal.h"

int64_t model_kv_off(const struct model_kv *kv, int64_t layer, int slot, int pos)
{
    return ((layer * kv->n_slots + slot) * (int64_t)kv->max_len + pos) * kv->kvd;
}

float *model_kv_row(const struct model_kv *kv, float *base, int64_t layer, int slot, int pos)
{
    return base + model_kv_off(kv, layer, slot, pos);
}

void model_step_rows(const struct model_kv *kv, const int *slots, int n, int *slot, int *at, int64_t *pos)
{
    for (int i = 0; i < n; i++) {
        int s = slots[i];
        slot[i] = s;
        at[i] = kv->len[s];
        pos[i] = pos[n + i] = pos[2 * n + i] = kv->len[s] + kv->delta[s];
    }
}

void model_kv_init(struct model_kv *kv, const struct model *m, int n_slots, int max_len)
{
    memset(kv, 0, sizeof *kv);
    kv->n_slots = n_slots;
    kv->max_len = max_len;
    kv->n_layers = m->cfg.text.n_layers;
    kv->kvd = m->cfg.text.n_kv_heads * m->cfg.text.head_dim;
    size_t n = (size_t)(kv->n_layers * n_slots * (int64_t)max_len * kv->kvd);
    kv->k = mmupt_xmalloc(n * sizeof(float));
    kv->v = mmupt_xmalloc(n * sizeof(float));
    kv->len = mmupt_xcalloc((size_t)n_slots, sizeof *kv->len);
    kv->delta = mmupt_xcalloc((size_t)n_slots, sizeof *kv->delta);
}

void model_kv_free(struct model_kv *kv)
{
    free(kv->k);
    free(kv->v);
    free(kv->len);
    free(kv->delta);
    memset(kv, 0, sizeof *kv);
}

void model_kv_copy(struct model_kv *kv, int from, int to)
{
    size_t bytes = (size_t)(kv->len[from] * kv->kvd) * sizeof(float);
    for (int64_t l = 0; l < kv->n_layers; l++) {
        memcpy(model_kv_row(kv, kv->k, l, to, 0), model_kv_row(kv, kv->k, l, from, 0), bytes);
        memcpy(model_kv_row(kv, kv->v, l, to, 0), model_kv_row(kv, kv->v, l, from, 0), bytes);
    }
    kv->len[to] = kv->len[from];
    kv->delta[to] = kv->delta[from];
}

int model_check_prefill(const struct model_kv *kv, const int *slots, const struct model_batch *prompts,
                        struct mmupt_err *err)
{
    if (prompts->n_seq < 1) return mmupt_fail(err, "prefill of no prompt");
    for (int s = 0; s < prompts->n_seq; s++) {
        if (slots[s] < 0 || slots[s] >= kv->n_slots) return mmupt_fail(err, "no KV slot %d", slots[s]);
        for (int j = 0; j < s; j++)
            if (slots[j] == slots[s]) return mmupt_fail(err, "slot %d appears twice in one prefill", slots[s]);
        if (prompts->seq_len[s] >= kv->max_len)
            return mmupt_fail(err, "prompt of %d tokens leaves no room in a KV cache of %d", prompts->seq_len[s],
                              kv->max_len);
    }
    return 0;
}

int model_prefill_many(struct model *m, struct model_kv *kv, const int *slots, const struct model_batch *prompts,
                       const float **last_logits, struct mmupt_err *err)
{
    if (model_check_prefill(kv, slots, prompts, err) || model_forward_last(m, prompts, err)) return -1;
    int64_t row = 0; /* the first packed row of prompt s */
    for (int s = 0; s < prompts->n_seq; s++) {
        int T = prompts->seq_len[s];
        size_t bytes = (size_t)(T * kv->kvd) * sizeof(float);
        for (int64_t l = 0; l < kv->n_layers; l++) {
            memcpy(model_kv_row(kv, kv->k, l, slots[s], 0), m->acts->layers[l].k + row * kv->kvd, bytes);
            memcpy(model_kv_row(kv, kv->v, l, slots[s], 0), m->acts->layers[l].v + row * kv->kvd, bytes);
        }
        kv->len[slots[s]] = T;
        kv->delta[slots[s]] = m->rope_deltas[s];
        row += T;
    }
    *last_logits = m->logits;
    return 0;
}

int model_prefill(struct model *m, struct model_kv *kv, int slot, const struct model_batch *prompt,
                  const float **last_logits, struct mmupt_err *err)
{
    if (prompt->n_seq != 1) return mmupt_fail(err, "prefill takes one prompt at a time (got %d)", prompt->n_seq);
    return model_prefill_many(m, kv, &slot, prompt, last_logits, err);
}

/* Buffers of one decode step, sized for n rows. */
struct step_bufs {
    float *x, *n1, *q, *k, *v, *att, *mid, *n2, *gate, *up, *act, *rstd, *cos, *sin;
    int64_t *pos;
    int *slot, *at; /* the rows' cache slots and their new tokens' positions, for every layer */
};

static void bufs_alloc(struct step_bufs *b, const struct model_config *c, int n)
{
    const struct model_text_config *t = &c->text;
    int64_t H = t->hidden, I = t->intermediate, qd = t->n_heads * t->head_dim, kvd = t->n_kv_heads * t->head_dim;
    float **f[] = {&b->x, &b->n1, &b->att, &b->mid, &b->n2};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) *f[i] = mmupt_xmalloc((size_t)(n * H) * sizeof(float));
    b->q = mmupt_xmalloc((size_t)(n * qd) * sizeof(float));
    b->k = mmupt_xmalloc((size_t)(n * kvd) * sizeof(float));
    b->v = mmupt_xmalloc((size_t)(n * kvd) * sizeof(float));
    b->gate = mmupt_xmalloc((size_t)(n * I) * sizeof(float));
    b->up = mmupt_xmalloc((size_t)(n * I) * sizeof(float));
    b->act = mmupt_xmalloc((size_t)(n * I) * sizeof(float));
    b->rstd = mmupt_xmalloc((size_t)n * sizeof(float));
    b->cos = mmupt_xmalloc((size_t)(n * t->head_dim) * sizeof(float));
    b->sin = mmupt_xmalloc((size_t)(n * t->head_dim) * sizeof(float));
    b->pos = mmupt_xmalloc((size_t)(3 * n) * sizeof *b->pos);
    b->slot = mmupt_xmalloc((size_t)n * sizeof *b->slot);
    b->at = mmupt_xmalloc((size_t)n * sizeof *b->at);
}

static void bufs_free(struct step_bufs *b)
{
    void *p[] = {b->x, b->n1, b->q, b->k, b->v, b->att, b->mid, b->n2, b->gate, b->up, b->act, b->rstd, b->cos, b->sin,
                 b->pos, b->slot, b->at};
    for (size_t i = 0; i < sizeof p / sizeof p[0]; i++) free(p[i]);
}

/* One decoder layer for the n new rows; appends their keys and values to the cache. */
static void decode_layer(struct model *m, struct model_kv *kv, int64_t l, int n, struct step_bufs *b)
{
    const struct model_text_config *t = &m->cfg.text;
    const struct model_text_layer *y = &m->spec.L.layers[l];
    const float *p = m->params;
    int H = (int)t->hidden, I = (int)t->intermediate, nh = (int)t->n_heads, nkv = (int)t->n_kv_heads, hd = (int)t->head_dim;
    int kvd = nkv * hd;
    rmsnorm_forward_cpu(b->n1, b->rstd, b->x, p + y->ln1, n, H, (float)t->rms_eps);
    matmul_forward_cpu(b->q, b->n1, p + y->q_w, p + y->q_b, n, H, nh * hd);
    matmul_forward_cpu(b->k, b->n1, p + y->k_w, p + y->k_b, n, H, kvd);
    matmul_forward_cpu(b->v, b->n1, p + y->v_w, p + y->v_b, n, H, kvd);
    rope_forward_cpu(b->q, b->cos, b->sin, n, nh, hd);
    rope_forward_cpu(b->k, b->cos, b->sin, n, nkv, hd);
    float *ck = model_kv_row(kv, kv->k, l, 0, 0), *cv = model_kv_row(kv, kv->v, l, 0, 0); /* this layer */
    kv_append_cpu(ck, cv, b->k, b->v, b->slot, b->at, n, kv->n_slots, kv->max_len, kvd);
    attention_decode_cpu(b->att, b->q, ck, cv, b->slot, b->at, n, kv->n_slots, kv->max_len, nh, nkv, hd);
    matmul_forward_cpu(b->mid, b->att, p + y->o_w, NULL, n, nh * hd, H);
    for (int64_t i = 0; i < (int64_t)n * H; i++) b->mid[i] += b->x[i];
    rmsnorm_forward_cpu(b->n2, b->rstd, b->mid, p + y->ln2, n, H, (float)t->rms_eps);
    matmul_forward_cpu(b->gate, b->n2, p + y->gate, NULL, n, H, I);
    matmul_forward_cpu(b->up, b->n2, p + y->up, NULL, n, H, I);
    swiglu_forward_cpu(b->act, b->gate, b->up, (long)n * I);
    matmul_forward_cpu(b->x, b->act, p + y->down, NULL, n, I, H);
    for (int64_t i = 0; i < (int64_t)n * H; i++) b->x[i] += b->mid[i];
}

int model_check_step(const struct model *m, const struct model_kv *kv, const int *slots, const int64_t *tokens, int n,
                      struct mmupt_err *err)
{
    for (int i = 0; i < n; i++) {
        if (slots[i] < 0 || slots[i] >= kv->n_slots) return mmupt_fail(err, "no KV slot %d", slots[i]);
        if (kv->len[slots[i]] >= kv->max_len) return mmupt_fail(err, "KV slot %d is full (%d tokens)", slots[i], kv->max_len);
        if (tokens[i] < 0 || tokens[i] >= m->cfg.text.vocab)
            return mmupt_fail(err, "token id %lld outside the vocabulary", (long long)tokens[i]);
        for (int j = 0; j < i; j++)
            if (slots[j] == slots[i]) return mmupt_fail(err, "slot %d appears twice in one step", slots[i]);
    }
    return 0;
}

int model_decode(struct model *m, struct model_kv *kv, const int *slots, const int64_t *tokens, int n, float *logits,
                 struct mmupt_err *err)
{
    if (n < 1) return 0;
    if (model_check_step(m, kv, slots, tokens, n, err)) return -1;
    const struct model_text_config *t = &m->cfg.text;
    struct step_bufs b;
    bufs_alloc(&b, &m->cfg, n);
    embedding_forward_cpu(b.x, tokens, m->params + m->spec.L.embed, n, (int)t->hidden);
    model_step_rows(kv, slots, n, b.slot, b.at, b.pos);
    model_text_rope(&m->cfg, b.pos, n, b.cos, b.sin);
    for (int64_t l = 0; l < t->n_layers; l++) decode_layer(m, kv, l, n, &b);
    for (int i = 0; i < n; i++) kv->len[slots[i]]++;
    rmsnorm_forward_cpu(b.n1, b.rstd, b.x, m->params + m->spec.L.final_norm, n, (int)t->hidden, (float)t->rms_eps);
    matmul_forward_cpu(logits, b.n1, m->params + m->spec.L.lm_head, NULL, n, (int)t->hidden, (int)t->vocab);
    bufs_free(&b);
    return 0;
}
