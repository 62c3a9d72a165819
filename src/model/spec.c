/* The parameter table: every tensor of the model, its Hugging Face name, shape and offset in one
 * flat buffer. Loading, saving, sharding, gradients and optimizer state all walk this table. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mmupt/model.h"

struct builder {
    struct model_spec *s;
    int cap;
};

/* Append one tensor; returns its offset. Names are printf-formatted. */
static int64_t add(struct builder *b, int ndim, const int64_t *shape, const char *fmt, ...)
{
    struct model_spec *s = b->s;
    if (s->n_params == b->cap) {
        b->cap = b->cap ? 2 * b->cap : 64;
        s->params = realloc(s->params, (size_t)b->cap * sizeof *s->params);
        if (!s->params) MMUPT_DIE("out of memory building the parameter table");
    }
    struct model_param *p = &s->params[s->n_params++];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->name, sizeof p->name, fmt, ap);
    va_end(ap);
    p->ndim = ndim;
    p->numel = 1;
    for (int i = 0; i < ndim; i++) {
        p->shape[i] = shape[i];
        p->numel *= shape[i];
    }
    p->offset = s->total;
    s->total += p->numel;
    return p->offset;
}

#define ADD1(b, n0, ...) add((b), 1, (const int64_t[]){(n0)}, __VA_ARGS__)
#define ADD2(b, n0, n1, ...) add((b), 2, (const int64_t[]){(n0), (n1)}, __VA_ARGS__)

static void build_text(struct builder *b, const struct model_config *c)
{
    const struct model_text_config *t = &c->text;
    struct model_layout *L = &b->s->L;
    int64_t H = t->hidden, I = t->intermediate, kv = t->n_kv_heads * t->head_dim;
    L->embed = ADD2(b, t->vocab, H, "model.embed_tokens.weight");
    L->layers = calloc((size_t)t->n_layers, sizeof *L->layers);
    if (!L->layers) MMUPT_DIE("out of memory");
    for (int64_t l = 0; l < t->n_layers; l++) {
        struct model_text_layer *y = &L->layers[l];
        const char *pre = "model.layers";
        y->ln1 = ADD1(b, H, "%s.%lld.input_layernorm.weight", pre, (long long)l);
        /* q, k and v's weights back to back (then their biases), as gate and up below: each pair or
         * triple is then one [N, H] matrix, which the device decode step multiplies in one GEMM. */
        y->q_w = ADD2(b, H, H, "%s.%lld.self_attn.q_proj.weight", pre, (long long)l);
        y->k_w = ADD2(b, kv, H, "%s.%lld.self_attn.k_proj.weight", pre, (long long)l);
        y->v_w = ADD2(b, kv, H, "%s.%lld.self_attn.v_proj.weight", pre, (long long)l);
        y->q_b = ADD1(b, H, "%s.%lld.self_attn.q_proj.bias", pre, (long long)l);
        y->k_b = ADD1(b, kv, "%s.%lld.self_attn.k_proj.bias", pre, (long long)l);
        y->v_b = ADD1(b, kv, "%s.%lld.self_attn.v_proj.bias", pre, (long long)l);
        y->o_w = ADD2(b, H, H, "%s.%lld.self_attn.o_proj.weight", pre, (long long)l);
        y->ln2 = ADD1(b, H, "%s.%lld.post_attention_layernorm.weight", pre, (long long)l);
        y->gate = ADD2(b, I, H, "%s.%lld.mlp.gate_proj.weight", pre, (long long)l);
        y->up = ADD2(b, I, H, "%s.%lld.mlp.up_proj.weight", pre, (long long)l);
        y->down = ADD2(b, H, I, "%s.%lld.mlp.down_proj.weight", pre, (long long)l);
    }
    L->final_norm = ADD1(b, H, "model.norm.weight");
    L->lm_head = t->tied ? L->embed : ADD2(b, t->vocab, H, "lm_head.weight");
}

static void build_vision(struct builder *b, const struct model_config *c)
{
    const struct model_vision_config *v = &c->vision;
    struct model_layout *L = &b->s->L;
    int64_t D = v->hidden, I = v->intermediate, M = D * v->merge * v->merge;
    L->patch_embed = add(b, 5, (const int64_t[]){D, 3, v->temporal_patch, v->patch, v->patch},
                         "visual.patch_embed.proj.weight");
    L->blocks = calloc((size_t)v->depth, sizeof *L->blocks);
    if (!L->blocks) MMUPT_DIE("out of memory");
    int layer_norm = v->norm == NORM_LAYER;
    for (int64_t i = 0; i < v->depth; i++) {
        struct model_vision_block *k = &L->blocks[i];
        long long n = (long long)i;
        k->norm1_w = ADD1(b, D, "visual.blocks.%lld.norm1.weight", n);
        k->norm1_b = layer_norm ? ADD1(b, D, "visual.blocks.%lld.norm1.bias", n) : -1;
        k->norm2_w = ADD1(b, D, "visual.blocks.%lld.norm2.weight", n);
        k->norm2_b = layer_norm ? ADD1(b, D, "visual.blocks.%lld.norm2.bias", n) : -1;
        k->qkv_w = ADD2(b, 3 * D, D, "visual.blocks.%lld.attn.qkv.weight", n);
        k->qkv_b = ADD1(b, 3 * D, "visual.blocks.%lld.attn.qkv.bias", n);
        k->proj_w = ADD2(b, D, D, "visual.blocks.%lld.attn.proj.weight", n);
        k->proj_b = ADD1(b, D, "visual.blocks.%lld.attn.proj.bias", n);
        if (v->mlp == MLP_SWIGLU) {
            /* gate and up back to back, then their biases: one GEMM on the GPU (see build_text) */
            k->gate_w = ADD2(b, I, D, "visual.blocks.%lld.mlp.gate_proj.weight", n);
            k->up_w = ADD2(b, I, D, "visual.blocks.%lld.mlp.up_proj.weight", n);
            k->gate_b = ADD1(b, I, "visual.blocks.%lld.mlp.gate_proj.bias", n);
            k->up_b = ADD1(b, I, "visual.blocks.%lld.mlp.up_proj.bias", n);
            k->down_w = ADD2(b, D, I, "visual.blocks.%lld.mlp.down_proj.weight", n);
            k->down_b = ADD1(b, D, "visual.blocks.%lld.mlp.down_proj.bias", n);
        } else {
            k->gate_w = ADD2(b, I, D, "visual.blocks.%lld.mlp.fc1.weight", n);
            k->gate_b = ADD1(b, I, "visual.blocks.%lld.mlp.fc1.bias", n);
            k->up_w = k->up_b = -1;
            k->down_w = ADD2(b, D, I, "visual.blocks.%lld.mlp.fc2.weight", n);
            k->down_b = ADD1(b, D, "visual.blocks.%lld.mlp.fc2.bias", n);
        }
    }
    L->merger_ln_w = ADD1(b, D, "visual.merger.ln_q.weight");
    L->merger_ln_b = layer_norm ? ADD1(b, D, "visual.merger.ln_q.bias") : -1;
    L->merger_w0 = ADD2(b, M, M, "visual.merger.mlp.0.weight");
    L->merger_b0 = ADD1(b, M, "visual.merger.mlp.0.bias");
    L->merger_w2 = ADD2(b, v->out_hidden, M, "visual.merger.mlp.2.weight");
    L->merger_b2 = ADD1(b, v->out_hidden, "visual.merger.mlp.2.bias");
}

void model_spec_build(struct model_spec *s, const struct model_config *c)
{
    memset(s, 0, sizeof *s);
    struct builder b = {.s = s};
    s->L.patch_embed = s->L.merger_ln_w = s->L.merger_ln_b = -1;
    s->L.merger_w0 = s->L.merger_b0 = s->L.merger_w2 = s->L.merger_b2 = -1;
    build_text(&b, c);
    if (c->has_vision) build_vision(&b, c);
}

void model_spec_free(struct model_spec *s)
{
    free(s->params);
    free(s->L.layers);
    free(s->L.blocks);
    memset(s, 0, sizeof *s);
}

const struct model_param *model_spec_find(const struct model_spec *s, const char *name)
{
    for (int i = 0; i < s->n_params; i++)
        if (strcmp(s->params[i].name, name) == 0) return &s->params[i];
    return NULL;
}
