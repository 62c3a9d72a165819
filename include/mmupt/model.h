/* The policy model: Qwen2.5-VL, Qwen2-VL and text-only Qwen2/Qwen2.5, built from a Hugging Face
 * model directory.
 *
 * Three layers of description, each derived from the one before:
 *   struct model_config  - what config.json says (flat or nested `text_config`, rope_scaling or
 *                          rope_parameters), checked for consistency;
 *   struct model_spec    - every parameter tensor: HF name, shape, offset in ONE flat float buffer.
 *                          The same offsets index gradients, fp32 master weights and Adam moments;
 *   struct model_layout  - per-layer offsets, so the forward pass reads `p + L->q_w` instead of
 *                          looking names up.
 */
#ifndef MMUPT_MODEL_H
#define MMUPT_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "mmupt/err.h"

enum model_arch { MODEL_QWEN2 = 0, MODEL_QWEN2_VL, MODEL_QWEN2_5_VL };
enum model_norm { NORM_RMS = 0, NORM_LAYER };
enum model_mlp { MLP_SWIGLU = 0, MLP_QUICK_GELU }; /* vision MLP: gated SiLU (2.5) or fc1-quick_gelu-fc2 (2) */

#define MODEL_MAX_FULLATT 64

struct model_text_config {
    int64_t hidden, intermediate, n_layers, n_heads, n_kv_heads, head_dim, vocab;
    double rope_theta, rms_eps;
    int tied;              /* lm_head shares embed_tokens */
    int has_mrope;         /* VL models: 3-D rotary positions */
    int64_t mrope_section[3];
};

struct model_vision_config {
    int64_t depth, hidden, intermediate, n_heads, head_dim, out_hidden;
    int64_t patch, temporal_patch, merge, window_size; /* window_size 0: full attention everywhere */
    int n_fullatt;
    int64_t fullatt[MODEL_MAX_FULLATT];
    enum model_norm norm;
    enum model_mlp mlp;
    double eps;
    double rope_theta; /* of the 2-D patch rotary embedding */
    double tokens_per_second;
};

struct model_config {
    enum model_arch arch;
    int has_vision;
    struct model_text_config text;
    struct model_vision_config vision;
    int64_t image_token_id, video_token_id, vision_start_token_id, vision_end_token_id;
};

/* Read config.json (a file, or a directory holding one). */
int model_config_load(struct model_config *c, const char *path, struct mmupt_err *err);
/* The same from text; `name` is used in messages. */
int model_config_parse(struct model_config *c, const char *name, const char *text, size_t len, struct mmupt_err *err);
const char *model_arch_name(enum model_arch a);
/* Length of one pixel row: 3 * temporal_patch * patch^2 (1176 for the real models). */
int64_t model_patch_dim(const struct model_config *c);

/* ---- parameters ---- */

#define MODEL_NAME_MAX 96
#define MODEL_MAX_DIMS 5

struct model_param {
    char name[MODEL_NAME_MAX]; /* Hugging Face legacy key: model.layers.3.mlp.up_proj.weight */
    int ndim;
    int64_t shape[MODEL_MAX_DIMS];
    int64_t numel;
    int64_t offset; /* in floats, into the flat buffer */
};

struct model_text_layer {
    int64_t ln1, q_w, q_b, k_w, k_b, v_w, v_b, o_w, ln2, gate, up, down;
};

/* Vision block. Qwen2.5-VL: RMSNorm (no bias) and gate/up/down with biases. Qwen2-VL: LayerNorm
 * (weight and bias) and fc1 (in `gate`) / fc2 (in `down`); `up` is -1. */
struct model_vision_block {
    int64_t norm1_w, norm1_b, qkv_w, qkv_b, proj_w, proj_b, norm2_w, norm2_b;
    int64_t gate_w, gate_b, up_w, up_b, down_w, down_b;
};

struct model_layout {
    int64_t embed, final_norm, lm_head; /* lm_head == embed when tied */
    struct model_text_layer *layers;
    int64_t patch_embed;
    struct model_vision_block *blocks;
    int64_t merger_ln_w, merger_ln_b, merger_w0, merger_b0, merger_w2, merger_b2;
};

struct model_spec {
    struct model_param *params;
    int n_params;
    int64_t total; /* floats in the flat buffer */
    struct model_layout L;
};

/* Build the parameter table from a checked config. Every offset is -1 where the architecture has
 * no such tensor. */
void model_spec_build(struct model_spec *s, const struct model_config *c);
void model_spec_free(struct model_spec *s);
const struct model_param *model_spec_find(const struct model_spec *s, const char *name);

/* ---- weights (safetensors) ---- */

/* Fill params (spec->total floats) from a model directory or .safetensors file. Accepts the legacy
 * (model.*, visual.*) and newer (model.language_model.*, model.visual.*) key layouts and BF16/F16/F32.
 * Missing tensors, unexpected tensors and shape mismatches are errors naming file and tensor. */
int model_weights_load(const struct model_spec *s, float *params, const char *path, struct mmupt_err *err);
/* Write params to dir as Hugging Face safetensors (legacy layout, F32, sharded above
 * max_shard_bytes). */
int model_weights_save(const struct model_spec *s, const float *params, const char *dir, size_t max_shard_bytes,
                       struct mmupt_err *err);
/* Write OUT as a whole Hugging Face model directory: the weights as above (sharded with
 * model.safetensors.index.json above shard_mb MB), plus config.json, tokenizer and generation files
 * copied from the model directory src when present. transformers and vLLM load it. */
int model_save_hf_dir(const struct model_spec *spec, const float *params, const char *src, const char *out,
                      double shard_mb, struct mmupt_err *err);

/* ---- running it ---- */

/* A batch of sequences, packed without padding: sequence i is tokens[off_i .. off_i + seq_len[i]).
 * Images are consumed in order of their <|image_pad|> runs across the batch; pixels holds their
 * patch rows ([sum t*h*w, model_patch_dim]) in the processor's merge-block order. */
struct model_batch {
    int n_seq;
    const int *seq_len;
    const int64_t *tokens;
    int n_images;
    const int64_t *grid_thw; /* [n_images, 3] */
    const float *pixels;
};

struct model_acts; /* activations of the last forward, private to src/model */

/* A model instance: config, parameter table, and the flat parameter and gradient buffers. The
 * caller may point params/grads at its own buffers (e.g. a shared master copy). */
struct model {
    struct model_config cfg;
    struct model_spec spec;
    float *params;        /* spec.total floats */
    float *grads;         /* spec.total floats, accumulated by model_backward */
    struct model_acts *acts;
    /* Results of the last forward, valid until the next one: */
    int64_t n_tokens;
    float *logits;        /* [n_tokens, vocab] */
    int64_t *positions;   /* [3, n_tokens]: t, h, w rotary positions (all equal for text) */
    int64_t *rope_deltas; /* [n_seq] */
};

/* Read config.json and the weights of a model directory; allocates params and zeroed grads. */
int model_open(struct model *m, const char *dir, struct mmupt_err *err);
/* Build from a config with zeroed parameters (tests, fresh initialisation). */
void model_init(struct model *m, const struct model_config *c);
void model_free(struct model *m);

/* Fresh weights as transformers initialises a model from its config (_init_weights): Linear, Conv
 * and Embedding weights ~ N(0, 0.02), biases 0, norm weights 1. Element i of the flat buffer comes
 * from a counter-based RNG keyed by (seed, i), so the result is the same for any thread count. */
void model_init_random(struct model *m, uint64_t seed);

/* Forward over a batch: fills m->logits, m->positions, m->rope_deltas and keeps the activations
 * for model_backward. Input errors (token ids outside the vocabulary, image token runs that do not
 * match the grids, bad grids) return -1 with err set. */
int model_forward(struct model *m, const struct model_batch *b, struct mmupt_err *err);
/* The same forward with logits only for the last position of each sequence (m->logits is then
 * [n_seq, vocab]): for prefill, where the other rows would be computed and thrown away. No backward
 * after it. */
int model_forward_last(struct model *m, const struct model_batch *b, struct mmupt_err *err);
/* Accumulate into m->grads the gradient of sum(dlogits .* logits) for the last forward. */
void model_backward(struct model *m, const float *dlogits);
void model_zero_grad(struct model *m);

/* What GRPO needs. After model_forward: logp[t] = log softmax(logits[t] / tau)[targets[t]] for every
 * packed position t (targets[t] is the NEXT token; -1 marks positions that are not scored, e.g.
 * prompt and image tokens, and gets logp 0). entropy (may be NULL) receives the entropy of the same
 * distribution. Then model_backward_logprobs accumulates into m->grads the gradient of
 * sum_t weight[t] * logp[t], i.e. of any per-token weighted objective. */
void model_logprobs(const struct model *m, const int64_t *targets, float tau, float *logp, float *entropy);
void model_backward_logprobs(struct model *m, const int64_t *targets, float tau, const float *weight);

/* ---- incremental decoding (rollout) ---- */

/* KV cache: post-RoPE keys and values of every decoder layer for n_slots sequences of up to max_len
 * tokens. A slot's token at cache index c has rotary position c + delta[slot] on all three axes
 * (the rope delta of its multimodal prompt). */
struct model_kv {
    int n_slots, max_len;
    int64_t n_layers, kvd;  /* kvd = n_kv_heads * head_dim */
    float *k, *v;           /* [n_layers][n_slots][max_len][kvd] */
    uint16_t *k16, *v16;    /* the same in bf16 (a device cache in model.dtype=bf16: k, v are NULL then) */
    int *len;               /* tokens cached per slot */
    int64_t *delta;
};
void model_kv_init(struct model_kv *kv, const struct model *m, int n_slots, int max_len);
void model_kv_free(struct model_kv *kv);
/* Copy a slot (one prompt prefilled once, then G samples diverge from copies). */
void model_kv_copy(struct model_kv *kv, int from, int to);
/* Run one prompt (a batch of one sequence, with its images) through model_forward and keep its keys
 * and values in `slot`. *last_logits points at the logits of its last position (valid until the next
 * forward). */
int model_prefill(struct model *m, struct model_kv *kv, int slot, const struct model_batch *prompt,
                  const float **last_logits, struct mmupt_err *err);
/* Several prompts in one forward pass (prompts: a packed batch of k sequences with their images):
 * sequence s goes to slots[s] (distinct); *last_logits: [k, vocab], each prompt's last position. One
 * pass instead of k costs the same arithmetic and k times fewer launches on a GPU; a prompt's logits
 * may differ from its own prefill's by GEMM rounding only. */
int model_prefill_many(struct model *m, struct model_kv *kv, const int *slots, const struct model_batch *prompts,
                       const float **last_logits, struct mmupt_err *err);
/* The input checks both prefills (and the device's) apply. */
int model_check_prefill(const struct model_kv *kv, const int *slots, const struct model_batch *prompts,
                        struct mmupt_err *err);
/* One step for n slots at once: tokens[i] is appended to slots[i]; logits [n, vocab] receives the
 * next-token logits of each. Prompts of different lengths decode together, each attending only to
 * its own cache. */
int model_decode(struct model *m, struct model_kv *kv, const int *slots, const int64_t *tokens, int n, float *logits,
                 struct mmupt_err *err);

/* Debug taps for parity tests: copies of intermediate tensors of the last forward. NULL when the
 * tensor does not exist. Names: "vision.patch_embed" [P,Dv], "vision.block.I" [P,Dv] (window
 * order), "vision.merged" [P/4,H], "hidden.embed", "hidden.layer.I", "hidden.norm" [T,H]. */
const float *model_tap(const struct model *m, const char *name, int64_t *rows, int64_t *cols);

#endif
