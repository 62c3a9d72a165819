/* Incremental decoding on the device: src/model/decode.c with the cache in device memory. The
 * cache's bookkeeping (lengths, rope deltas) stays on the host, where the rollout loop reads it; a
 * step uploads its rows' slots and positions once, and every layer's append and attention read them
 * there (no per-layer host tables). */
#include <stdlib.h>
#include <string.h>

#include "dev_internal.h"
#include "mmupt/kernels.h"
#include "mmupt/strutil.h"

void model_dev_kv_init(struct model_kv *kv, const struct model_dev *d, int n_slots, int max_len)
{
    memset(kv, 0, sizeof *kv);
    kv->n_slots = n_slots;
    kv->max_len = max_len;
    kv->n_layers = d->m->cfg.text.n_layers;
    kv->kvd = d->m->cfg.text.n_kv_heads * d->m->cfg.text.head_dim;
    int64_t n = kv->n_layers * n_slots * (int64_t)max_len * kv->kvd;
    if (d->params_bf16) { /* model.dtype=bf16: the cache in bf16 too, half the bytes every step reads */
        kv->k16 = gpu_alloc(d->g, (size_t)n * sizeof *kv->k16);
        kv->v16 = gpu_alloc(d->g, (size_t)n * sizeof *kv->v16);
    } else {
        kv->k = gpu_alloc_floats(d->g, n);
        kv->v = gpu_alloc_floats(d->g, n);
    }
    kv->len = mmupt_xcalloc((size_t)n_slots, sizeof *kv->len);
    kv->delta = mmupt_xcalloc((size_t)n_slots, sizeof *kv->delta);
}

void model_dev_kv_free(struct model_kv *kv, const struct model_dev *d)
{
    void *dev[] = {kv->k, kv->v, kv->k16, kv->v16};
    for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++) gpu_free(d->g, dev[i]);
    free(kv->len);
    free(kv->delta);
    memset(kv, 0, sizeof *kv);
}

/* The k (which 0) or v (1) cache row (layer, slot, pos) as a device address, whatever the dtype. */
static void *kv_at(const struct model_kv *kv, int which, int64_t layer, int slot, int pos)
{
    int64_t off = model_kv_off(kv, layer, slot, pos);
    if (kv->k16) return (which ? kv->v16 : kv->k16) + off;
    return (which ? kv->v : kv->k) + off;
}

static size_t kv_elem(const struct model_kv *kv)
{
    return kv->k16 ? sizeof *kv->k16 : sizeof *kv->k;
}

void model_dev_kv_copy(struct model_kv *kv, const struct model_dev *d, int from, int to)
{
    size_t bytes = (size_t)(kv->len[from] * kv->kvd) * kv_elem(kv);
    /* The slot's rows in every layer, one 2-D copy for keys and one for values: a copy per layer was
     * 48 calls per sample at 24 layers (3072 for a rollout's 64 first samples). */
    size_t pitch = (size_t)(model_kv_off(kv, 1, 0, 0) - model_kv_off(kv, 0, 0, 0)) * kv_elem(kv);
    for (int which = 0; which < 2; which++)
        gpu_copy_2d(d->g, kv_at(kv, which, 0, to, 0), pitch, kv_at(kv, which, 0, from, 0), pitch, bytes,
                    (size_t)kv->n_layers);
    kv->len[to] = kv->len[from];
    kv->delta[to] = kv->delta[from];
}

/* n rows of keys and values (fp32, device) into layer l of the cache at the rows' (slot, at), device
 * arrays: appended as they are, or rounded to bf16 in a bf16 cache. */
static void kv_append_layer(const struct model_dev *d, struct model_kv *kv, int64_t l, const float *k, const float *v,
                            const int *slot, const int *at, int n)
{
    void *ck = kv_at(kv, 0, l, 0, 0), *cv = kv_at(kv, 1, l, 0, 0);
    int kvd = (int)kv->kvd;
    if (kv->k16) kv_append_bf16_cuda(ck, cv, k, v, slot, at, n, kv->n_slots, kv->max_len, kvd, d->g->stream);
    else kv_append_cuda(ck, cv, k, v, slot, at, n, kv->n_slots, kv->max_len, kvd, d->g->stream);
}

/* The packed prompts' keys and values (d->acts, every layer) into their slots' cache rows 0..T-1: one
 * append per layer over all the prompts' rows (row r of prompt s goes to (slots[s], its position)),
 * not a copy per prompt and layer - 3072 launches for 64 prompts of a 24-layer model. */
static void kv_fill_prompts(struct model_dev *d, struct model_kv *kv, const int *slots,
                            const struct model_batch *prompts)
{
    const struct gpu_ctx *g = d->g;
    int64_t T = d->acts->T;
    int *idx = mmupt_xmalloc(2 * (size_t)T * sizeof *idx); /* [slot | position] per packed row */
    for (int s = 0, r = 0; s < prompts->n_seq; s++)
        for (int t = 0; t < prompts->seq_len[s]; t++, r++) {
            idx[r] = slots[s];
            idx[T + r] = t;
        }
    int *d_idx = gpu_alloc(g, 2 * (size_t)T * sizeof *d_idx);
    gpu_upload(g, d_idx, idx, 2 * (size_t)T * sizeof *idx);
    for (int64_t l = 0; l < kv->n_layers; l++)
        kv_append_layer(d, kv, l, d->acts->layers[l].k, d->acts->layers[l].v, d_idx, d_idx + T, (int)T);
    gpu_free(g, d_idx); /* stream-ordered: after the appends */
    free(idx);
}

int model_dev_prefill_many(struct model_dev *d, struct model_kv *kv, const int *slots,
                           const struct model_batch *prompts, const float **last_logits, struct mmupt_err *err)
{
    if (model_check_prefill(kv, slots, prompts, err) || model_dev_forward_last(d, prompts, err)) return -1;
    kv_fill_prompts(d, kv, slots, prompts);
    for (int s = 0; s < prompts->n_seq; s++) {
        kv->len[slots[s]] = prompts->seq_len[s];
        kv->delta[slots[s]] = d->rope_deltas[s];
    }
    *last_logits = d->logits;
    return 0;
}

int model_dev_prefill(struct model_dev *d, struct model_kv *kv, int slot, const struct model_batch *prompt,
                      const float **last_logits, struct mmupt_err *err)
{
    if (prompt->n_seq != 1) return mmupt_fail(err, "prefill takes one prompt at a time (got %d)", prompt->n_seq);
    return model_dev_prefill_many(d, kv, &slot, prompt, last_logits, err);
}

/* Device buffers of one decode step for up to n rows. */
struct dev_step {
    float *x, *n1, *q, *k, *v, *att, *mid, *n2, *gate, *up, *act, *rstd, *cos, *sin;
    float *qkv, *gu; /* the bf16 step's packed projections: [n, qd + 2 kvd] and [n, 2 I] */
    /* The step's inputs, views of ONE device block (`in`, in_bytes) that a step fills with one upload
     * from its host twin (`host_in`, same layout): token ids, rotary tables, and each row's cache slot
     * and new position - [tokens | cos | sin | slot | at], each sized for the capacity. */
    int64_t *tokens;
    int *slot, *at;
    void *in, *host_in;
    size_t in_bytes;
    float *scores; /* decode attention's scratch, [n * n_heads, max_len] of the cache (decoder_ready) */
    unsigned *count; /* its split counters, [n * n_kv], zero between calls (attention_decode_cuda); NULL
                      * (the default, MMUPT_DECODE_SPLIT=0): every (row, kv head) in one block. The split
                      * made the 0.5B rollout's decode step slower on an H200 (1.526 against 1.397 ms,
                      * benchmarks/gpu_ab.sh, 2026-11-27); kept, tested, for longer caches. */
};

/* The inputs block's views for n rows of head size hd, over base (device or host). */
static void step_views(void *base, int64_t n, int64_t hd, int64_t **tokens, float **cos, float **sin, int **slot,
                       int **at)
{
    *tokens = base;
    *cos = (float *)(*tokens + n);
    *sin = *cos + n * hd;
    *slot = (int *)(*sin + n * hd);
    *at = *slot + n;
}

static void step_alloc(struct dev_step *b, const struct gpu_ctx *g, const struct model_config *c, int n)
{
    const struct model_text_config *t = &c->text;
    int64_t H = t->hidden, I = t->intermediate, qd = t->n_heads * t->head_dim, kvd = t->n_kv_heads * t->head_dim;
    float **f[] = {&b->x, &b->n1, &b->att, &b->mid, &b->n2};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) *f[i] = gpu_alloc_floats(g, n * (qd > H ? qd : H));
    b->q = gpu_alloc_floats(g, n * qd);
    b->k = gpu_alloc_floats(g, n * kvd);
    b->v = gpu_alloc_floats(g, n * kvd);
    b->qkv = gpu_alloc_floats(g, n * (qd + 2 * kvd));
    b->gu = gpu_alloc_floats(g, n * 2 * I);
    b->gate = gpu_alloc_floats(g, n * I);
    b->up = gpu_alloc_floats(g, n * I);
    b->act = gpu_alloc_floats(g, n * I);
    b->rstd = gpu_alloc_floats(g, n);
    if (g->tuning.decode_split) { /* MMUPT_DECODE_SPLIT=1 (gpu_mem.h) */
        b->count = gpu_alloc(g, (size_t)n * t->n_kv_heads * sizeof *b->count);
        gpu_zero(g, b->count, (size_t)n * t->n_kv_heads * sizeof *b->count);
    }
    b->in_bytes = (size_t)n * (sizeof *b->tokens + 2 * (size_t)t->head_dim * sizeof(float) + 2 * sizeof(int));
    b->in = gpu_alloc(g, b->in_bytes);
    b->host_in = mmupt_xcalloc(1, b->in_bytes);
    step_views(b->in, n, t->head_dim, &b->tokens, &b->cos, &b->sin, &b->slot, &b->at);
}

static void step_free(struct dev_step *b, const struct gpu_ctx *g)
{
    void *dev[] = {b->x, b->n1, b->q,    b->k,  b->v,  b->att, b->mid, b->n2,
                   b->gate, b->up, b->act, b->rstd, b->qkv, b->gu, b->in, b->scores, b->count};
    for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++) gpu_free(g, dev[i]);
    free(b->host_in);
    memset(b, 0, sizeof *b);
}

/* Row counts up to this get a CUDA graph each (a rollout's batch shrinks as sequences finish). */
enum { DEC_GRAPH_ROWS = 256 };

/* What decode steps keep between calls (d->dec): the step buffers, sized for `cap` rows and kept at
 * fixed addresses so that a step recorded as a CUDA graph can be replayed, and the graphs, one per
 * row count, recorded the second time a count is seen (the first runs directly: a warm-up, so cuBLAS
 * has chosen its kernels). A graph bakes in every address it touches; `key` holds those that can
 * change between calls (weights, the GEMM cast scratch, the cache), and a change drops the graphs.
 * Each graph writes its logits straight into the caller's buffer it was recorded with (`out`): a call
 * with another buffer records that row count again (a copy from a buffer of our own would move
 * n x vocab floats per step - 39 MB at 64 rows of a 152k vocabulary). */
struct model_dev_decoder {
    int cap;
    struct dev_step b;
    const void *key[5];
    int key_slots, key_len;
    int64_t scores_floats; /* what b.scores holds */
    struct gpu_graph *graph[DEC_GRAPH_ROWS + 1];
    const float *out[DEC_GRAPH_ROWS + 1]; /* the logits buffer graph[n] writes */
    unsigned char seen[DEC_GRAPH_ROWS + 1];
};

static void drop_graphs(struct model_dev_decoder *dc)
{
    for (int i = 0; i <= DEC_GRAPH_ROWS; i++) {
        gpu_graph_free(dc->graph[i]);
        dc->graph[i] = NULL;
        dc->seen[i] = 0;
    }
}

void dev_decoder_free(struct model_dev *d)
{
    struct model_dev_decoder *dc = d->dec;
    if (!dc) return;
    drop_graphs(dc);
    step_free(&dc->b, d->g);
    free(dc);
    d->dec = NULL;
}

/* The decoder with buffers for n rows (growing them drops the graphs, which hold the old ones) and
 * graphs that match the current weights, scratch and cache. */
static struct model_dev_decoder *decoder_ready(struct model_dev *d, const struct model_kv *kv, int n)
{
    if (!d->dec) d->dec = mmupt_xcalloc(1, sizeof *d->dec);
    struct model_dev_decoder *dc = d->dec;
    if (n > dc->cap) {
        drop_graphs(dc);
        step_free(&dc->b, d->g);
        dc->cap = n;
        step_alloc(&dc->b, d->g, &d->m->cfg, n);
        dc->scores_floats = 0;
    }
    const struct model_text_config *t = &d->m->cfg.text;
    int64_t widest = t->intermediate > t->hidden ? t->intermediate : t->hidden;
    if (t->n_heads * t->head_dim > widest) widest = t->n_heads * t->head_dim;
    dev_linear_reserve(d, (int64_t)dc->cap * widest); /* no scratch may move inside a graph */
    int64_t scores = (int64_t)dc->cap * t->n_heads * kv->max_len;
    if (scores > dc->scores_floats) { /* a longer cache: the graphs hold the old scratch */
        drop_graphs(dc);
        gpu_free(d->g, dc->b.scores);
        dc->b.scores = gpu_alloc_floats(d->g, scores);
        dc->scores_floats = scores;
    }
    const void *key[5] = {d->params, d->params_bf16, d->cast, kv_at(kv, 0, 0, 0, 0), kv_at(kv, 1, 0, 0, 0)};
    if (memcmp(key, dc->key, sizeof key) != 0 || kv->n_slots != dc->key_slots || kv->max_len != dc->key_len) {
        drop_graphs(dc);
        memcpy(dc->key, key, sizeof key);
        dc->key_slots = kv->n_slots;
        dc->key_len = kv->max_len;
    }
    return dc;
}

/* rmsnorm of x into out, and - in bf16 - also straight into the GEMM operand scratch, so the
 * projections that follow reuse it (dev_linear_forward_again) instead of casting first. */
static void decode_norm(struct model_dev *d, float *out, const float *x, int64_t w_off, int n, int H, float eps,
                        float *rstd)
{
    const float *w = d->params + w_off;
    if (d->params_bf16)
        rmsnorm_forward_cast_cuda(out, dev_linear_operand(d, (int64_t)n * H), rstd, x, w, n, H, eps, 0, d->g->stream);
    else
        rmsnorm_forward_cuda(out, rstd, x, w, n, H, eps, d->g->stream);
}

/* SwiGLU into act, and - in bf16 - also into the GEMM operand scratch, for the down projection. */
static void decode_swiglu(struct model_dev *d, float *act, const float *gate, const float *up, int64_t n)
{
    if (d->params_bf16)
        swiglu_forward_cast_cuda(act, dev_linear_operand(d, n), gate, up, (long)n, d->g->stream);
    else
        swiglu_forward_cuda(act, gate, up, (long)n, d->g->stream);
}

/* The projection of inp just written by decode_norm or decode_swiglu: in bf16 its operand is already
 * in the scratch, so the GEMM reuses it instead of casting. */
static void decode_linear(struct model_dev *d, float *out, const float *inp, int64_t w_off, int64_t b_off, int M,
                          int K, int N)
{
    (d->params_bf16 ? dev_linear_forward_again : dev_linear_forward)(d, out, inp, w_off, b_off, M, K, N);
}

/* q, k, v of the new rows from b->n1 (decode_norm's), RoPE on q and k, k and v appended to the cache:
 * the plain step's (fp32, or bf16 weights over an fp32 cache). */
static void decode_qkv(struct model_dev *d, struct model_kv *kv, int64_t l, int n, struct dev_step *b)
{
    const struct gpu_ctx *g = d->g;
    const struct model_text_config *t = &d->m->cfg.text;
    const struct model_text_layer *y = &d->m->spec.L.layers[l];
    int H = (int)t->hidden, nh = (int)t->n_heads, nkv = (int)t->n_kv_heads, hd = (int)t->head_dim, kvd = nkv * hd;
    decode_linear(d, b->q, b->n1, y->q_w, y->q_b, n, H, nh * hd);
    dev_linear_forward_again(d, b->k, b->n1, y->k_w, y->k_b, n, H, kvd);
    dev_linear_forward_again(d, b->v, b->n1, y->v_w, y->v_b, n, H, kvd);
    rope_forward_cuda(b->q, b->cos, b->sin, n, nh, hd, g->stream);
    rope_forward_cuda(b->k, b->cos, b->sin, n, nkv, hd, g->stream);
    kv_append_layer(d, kv, l, b->k, b->v, b->slot, b->at, n);
}

/* Decode attention's flags from the device's switches (gpu_mem.h): staged rows, tensor cores (bf16
 * caches; the fp32 kernel ignores it), and - for the fused q/k/v form only, whose kernel follows a
 * GEMM - programmatic launches. */
static int decode_attention_flags(const struct gpu_tuning *t, int fused)
{
    return (t->decode_stage ? ATTN_DECODE_STAGE : 0) | (t->decode_mma ? ATTN_DECODE_MMA : 0) |
           (fused && t->decode_pdl ? ATTN_DECODE_PDL : 0);
}

/* One decoder layer of the plain step for the n new rows; appends their keys and values. */
static void decode_layer(struct model_dev *d, struct model_kv *kv, int64_t l, int n, struct dev_step *b)
{
    const struct gpu_ctx *g = d->g;
    const struct model_text_config *t = &d->m->cfg.text;
    const struct model_text_layer *y = &d->m->spec.L.layers[l];
    int H = (int)t->hidden, I = (int)t->intermediate, nh = (int)t->n_heads, nkv = (int)t->n_kv_heads, hd = (int)t->head_dim;
    float eps = (float)t->rms_eps;
    decode_norm(d, b->n1, b->x, y->ln1, n, H, eps, b->rstd);
    decode_qkv(d, kv, l, n, b);
    const void *ck = kv_at(kv, 0, l, 0, 0), *cv = kv_at(kv, 1, l, 0, 0);
    int flags = decode_attention_flags(&g->tuning, 0);
    if (kv->k16)
        attention_decode_bf16_cuda(b->att, b->q, ck, cv, b->slot, b->at, n, kv->n_slots, kv->max_len, nh, nkv, hd,
                                   b->scores, b->count, flags, g->stream);
    else
        attention_decode_cuda(b->att, b->q, ck, cv, b->slot, b->at, n, kv->n_slots, kv->max_len, nh, nkv, hd,
                              b->scores, b->count, flags, g->stream);
    dev_linear_forward(d, b->mid, b->att, y->o_w, -1, n, nh * hd, H);
    residual_forward_cuda(b->mid, b->mid, b->x, (long)n * H, g->stream);
    decode_norm(d, b->n2, b->mid, y->ln2, n, H, eps, b->rstd);
    decode_linear(d, b->gate, b->n2, y->gate, -1, n, H, I);
    dev_linear_forward_again(d, b->up, b->n2, y->up, -1, n, H, I);
    decode_swiglu(d, b->act, b->gate, b->up, (int64_t)n * I);
    decode_linear(d, b->x, b->act, y->down, -1, n, I, H);
    residual_forward_cuda(b->x, b->x, b->mid, (long)n * H, g->stream);
}

/* The plain step's layers and final norm (into b->n1). */
static void decode_layers(struct model_dev *d, struct model_kv *kv, int n, struct dev_step *b)
{
    const struct model_text_config *t = &d->m->cfg.text;
    for (int64_t l = 0; l < t->n_layers; l++) decode_layer(d, kv, l, n, b);
    decode_norm(d, b->n1, b->x, d->m->spec.L.final_norm, n, (int)t->hidden, (float)t->rms_eps, b->rstd);
}

/* The bf16 step's attention half of layer l (bf16 weights and cache): b->n1's operand (in the GEMM
 * scratch) -> q/k/v as ONE GEMM over the layer's packed weights (spec.c keeps q_w, k_w, v_w back to
 * back) -> biases, RoPE, the cache append and the attention in one launch, writing the
 * o-projection's operand too -> o-projection into b->mid. */
static void decode_attention_bf16(struct model_dev *d, struct model_kv *kv, int64_t l, int n, struct dev_step *b)
{
    const struct model_text_config *t = &d->m->cfg.text;
    const struct model_text_layer *y = &d->m->spec.L.layers[l];
    const float *p = d->params;
    int H = (int)t->hidden, nh = (int)t->n_heads, nkv = (int)t->n_kv_heads, hd = (int)t->head_dim;
    int qd = nh * hd, kvd = nkv * hd;
    MMUPT_CHECK(y->k_w == y->q_w + (int64_t)qd * H && y->v_w == y->k_w + (int64_t)kvd * H);
    uint16_t *ck = kv_at(kv, 0, l, 0, 0), *cv = kv_at(kv, 1, l, 0, 0);
    dev_linear_forward_again(d, b->qkv, NULL, y->q_w, -1, n, H, qd + 2 * kvd); /* n1's rounding alone */
    int flags = decode_attention_flags(&d->g->tuning, 1);
    attention_decode_qkv_bf16_cast_cuda(b->att, dev_linear_operand(d, (int64_t)n * qd), b->qkv,
                                        y->q_b < 0 ? NULL : p + y->q_b, y->k_b < 0 ? NULL : p + y->k_b,
                                        y->v_b < 0 ? NULL : p + y->v_b, b->cos, b->sin, ck, cv, b->slot, b->at, n,
                                        kv->n_slots, kv->max_len, nh, nkv, hd, b->scores, b->count, flags,
                                        d->g->stream);
    dev_linear_forward_again(d, b->mid, b->att, y->o_w, -1, n, qd, H);
}

/* The bf16 step's layers: every producer writes the next GEMM's bf16 operand, q/k/v and gate/up are
 * one GEMM each, each residual add rides on the norm after it, and the attention takes q/k/v's
 * biases, RoPE and the cache append - eight launches a layer (q/k/v GEMM, attention, o GEMM, residual
 * + norm, gate/up GEMM, SwiGLU, down GEMM, residual + next norm; cuBLAS may add a split-K reduction;
 * the plain step's fifteen). Each norm and SwiGLU writes only the next GEMM's bf16 operand (no fp32
 * copy: nothing else reads it). Leaves the final norm's rounding in the scratch for lm_head. */
static void decode_layers_bf16(struct model_dev *d, struct model_kv *kv, int n, struct dev_step *b)
{
    const struct gpu_ctx *g = d->g;
    const struct model_text_config *t = &d->m->cfg.text;
    const struct model_layout *L = &d->m->spec.L;
    int H = (int)t->hidden, I = (int)t->intermediate;
    float eps = (float)t->rms_eps;
    rmsnorm_forward_cast_cuda(NULL, dev_linear_operand(d, (int64_t)n * H), NULL, b->x, d->params + L->layers[0].ln1, n,
                              H, eps, 0, g->stream);
    int pdl = g->tuning.decode_pdl; /* the kernels after a GEMM launch programmatically (MMUPT_DECODE_PDL) */
    for (int64_t l = 0; l < t->n_layers; l++) {
        const struct model_text_layer *y = &L->layers[l];
        MMUPT_CHECK(y->up == y->gate + (int64_t)I * H);
        decode_attention_bf16(d, kv, l, n, b);
        residual_rmsnorm_forward_cast_cuda(b->mid, NULL, dev_linear_operand(d, (int64_t)n * H), NULL, b->mid, b->x,
                                           d->params + y->ln2, n, H, eps, pdl, g->stream);
        dev_linear_forward_again(d, b->gu, NULL, y->gate, -1, n, H, 2 * I);
        swiglu_packed_forward_cast_cuda(NULL, dev_linear_operand(d, (int64_t)n * I), b->gu, n, I, pdl, g->stream);
        dev_linear_forward_again(d, b->x, NULL, y->down, -1, n, I, H);
        int64_t next_norm = l + 1 < t->n_layers ? L->layers[l + 1].ln1 : L->final_norm;
        residual_rmsnorm_forward_cast_cuda(b->x, NULL, dev_linear_operand(d, (int64_t)n * H), NULL, b->x, b->mid,
                                           d->params + next_norm, n, H, eps, pdl, g->stream);
    }
}

/* The step's inputs into the decoder's buffers - token ids, the rotary tables, each row's slot and
 * position - built in the host block and sent in ONE upload (a step waits on each transfer it
 * issues), before the step's work (which a graph may replay). */
static void step_inputs(struct model_dev *d, int cap, const struct model_kv *kv, const int *slots,
                        const int64_t *tokens, int n, struct dev_step *b)
{
    int64_t *tok, *pos = mmupt_xmalloc((size_t)(3 * n) * sizeof *pos);
    float *cos, *sin;
    int *slot, *at;
    step_views(b->host_in, cap, d->m->cfg.text.head_dim, &tok, &cos, &sin, &slot, &at);
    memcpy(tok, tokens, (size_t)n * sizeof *tok);
    model_step_rows(kv, slots, n, slot, at, pos);
    model_text_rope(&d->m->cfg, pos, n, cos, sin);
    gpu_upload(d->g, b->in, b->host_in, b->in_bytes);
    free(pos);
}

/* The step's device work for n rows, from the uploaded inputs to logits [n, vocab]: no host copies,
 * no synchronisation, no allocation - what a graph can record. Its arguments travel by value (a
 * graph on the emulator runs it again from a copy): the cache's geometry and buffers, not the
 * caller's struct. */
struct step_args {
    struct model_dev *d;
    struct model_kv kv; /* k, v, n_slots, max_len, kvd, n_layers (len and delta are not read) */
    int n;
    struct dev_step *b;
    float *logits;
};

static void step_work(void *ctx)
{
    struct step_args *a = ctx;
    struct model_dev *d = a->d;
    const struct gpu_ctx *g = d->g;
    const struct model_text_config *t = &d->m->cfg.text;
    struct dev_step *b = a->b;
    embedding_forward_cuda(b->x, b->tokens, d->params + d->m->spec.L.embed, a->n, (int)t->hidden, g->stream);
    int bf16 = d->params_bf16 && a->kv.k16;
    (bf16 ? decode_layers_bf16 : decode_layers)(d, &a->kv, a->n, b);
    /* the bf16 step's final norm left only its rounding (in the scratch) */
    decode_linear(d, a->logits, bf16 ? NULL : b->n1, d->m->spec.L.lm_head, -1, a->n, (int)t->hidden, (int)t->vocab);
}

/* Record the step for n rows as a graph; NULL (graphs then off for d, the reason in d->graph_error)
 * when the capture fails. The recorded work has not run. */
static struct gpu_graph *record_step(struct model_dev *d, struct step_args *a)
{
    struct mmupt_err err;
    struct gpu_graph *gr = gpu_graph_record(d->g, step_work, a, sizeof *a, &err);
    if (!gr) {
        d->graphs = 0;
        (void)str_copy(d->graph_error, sizeof d->graph_error, err.msg); /* a long reason is cut */
    }
    return gr;
}

int model_dev_decode(struct model_dev *d, struct model_kv *kv, const int *slots, const int64_t *tokens, int n,
                     float *logits, struct mmupt_err *err)
{
    if (n < 1) return 0;
    if (model_check_step(d->m, kv, slots, tokens, n, err)) return -1;
    struct model_dev_decoder *dc = decoder_ready(d, kv, n);
    step_inputs(d, dc->cap, kv, slots, tokens, n, &dc->b);
    struct step_args a = {.d = d, .kv = *kv, .n = n, .b = &dc->b, .logits = logits};
    int graphs = d->graphs && n <= DEC_GRAPH_ROWS;
    if (graphs && dc->graph[n] && dc->out[n] != logits) { /* another caller buffer: record again */
        gpu_graph_free(dc->graph[n]);
        dc->graph[n] = NULL;
    }
    if (graphs && !dc->graph[n] && dc->seen[n]) {
        dc->graph[n] = record_step(d, &a);
        dc->out[n] = logits;
    }
    if (graphs && dc->graph[n]) {
        gpu_graph_launch(d->g, dc->graph[n]);
        d->graph_steps++;
    } else {
        step_work(&a);
        if (graphs) dc->seen[n] = 1;
    }
    for (int i = 0; i < n; i++) kv->len[slots[i]]++;
    return 0;
}
