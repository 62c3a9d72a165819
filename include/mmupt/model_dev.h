/* The policy model on a GPU: the CPU model's forward, backward, log-probabilities and incremental
 * decoding (include/mmupt/model.h) run with the CUDA twins of its ops on device buffers.
 *
 * State (issue 10, step 2 of docs/design.md's plan): fp32, vision tower and decoder. The drivers
 * (src/model/dev*.c) mirror the CPU model's line for line; CPU-only builds run them on the device
 * emulator (src/gpu/mem_emu.c) against the CPU model in the unit suite, and CUDA builds run the same
 * test on the GPU in the gpu suite.
 *
 * Memory spaces are in each comment: "device" arrays are gpu_alloc'ed memory the caller never
 * dereferences; "host" arrays are ordinary memory. */
#ifndef MMUPT_MODEL_DEV_H
#define MMUPT_MODEL_DEV_H

#include <stdint.h>

#include "mmupt/err.h"
#include "mmupt/gpu_mem.h"
#include "mmupt/model.h"

#ifdef __cplusplus
extern "C" {
#endif

struct model_dev_acts;
struct model_dev_decoder;

/* How a block's attention ran (model_dev.attention_runs): TF32 cuBLAS products around softmax
 * kernels, the fused kernels (MMUPT_ATTENTION=flash), cuDNN's SDPA graphs (MMUPT_ATTENTION=cudnn). */
enum { MODEL_DEV_ATTN_CUBLAS, MODEL_DEV_ATTN_FLASH, MODEL_DEV_ATTN_CUDNN, MODEL_DEV_ATTN_KINDS };

struct model_dev {
    const struct gpu_ctx *g;
    const struct model *m;  /* config and parameter table (the caller keeps it alive) */
    float *params, *grads;  /* device, m->spec.total floats each; the same offsets as the host buffers */
    /* Mixed precision (model.dtype = bf16, model_dev_set_bf16): a bf16 copy of params (device,
     * m->spec.total, the same offsets), rounded to nearest even from the fp32 master weights. Every
     * linear layer (GEMM) then reads it and its input rounded to bf16, accumulates in fp32 on tensor
     * cores and writes fp32; all other ops, the gradients and the optimizer stay fp32. NULL: fp32. */
    uint16_t *params_bf16;
    uint16_t *cast;         /* device scratch of the GEMMs' bf16 operands (grown on demand) */
    int64_t cast_cap;
    struct model_dev_acts *acts;
    /* Results of the last forward, valid until the next one: */
    int64_t n_tokens;
    int n_seq;
    float *logits;          /* device: [n_tokens, vocab], or [n_seq, vocab] after a forward_last */
    int64_t *rope_deltas;   /* host [n_seq] */
    /* Activation recomputation (model.gradient_checkpointing): a forward keeps only each decoder
     * block's input and the backward recomputes the block from it - the same results (the kernels
     * are deterministic), the activation memory of one block instead of all. Off after init. */
    int recompute;
    /* model.logit_chunk: > 0 makes model_dev_forward stop before lm_head (logits NULL), and the
     * log-probability pair then runs lm_head, the log-softmax and their backward over this many rows
     * at a time, never holding [n_tokens, vocab] logits - reading d->params when they run, so the
     * forward's weights must still be installed then. 0 (after init): every row's logits kept. */
    int64_t logit_chunk;
    /* Decode steps (model_dev_decode) keep their buffers between calls and, with graphs != 0 (the
     * default after init), replay each row count's step as one CUDA graph from the second step with
     * that count on (the first is a warm-up; the emulator checks each replay against its recording,
     * gpu_mem.h). A failed capture turns graphs off and says why in graph_error (the steps then run
     * kernel by kernel, with the same results). */
    struct model_dev_decoder *dec;
    int graphs;
    char graph_error[160];
    long long graph_steps; /* decode steps replayed from a graph so far */
    /* Scratch of the log-probability calls (device, grown on demand). */
    int64_t *targets;
    float *logp, *entropy;
    int64_t scratch_rows;
    /* bf16: the row statistics model_dev_logprobs leaves for model_dev_backward_logprobs over the
     * same logits (logprob_forward_stats), valid (stats_valid) until the next forward or temperature. */
    float *row_max;
    double *row_sum;
    float stats_tau;
    int stats_valid;
    /* Which gradients this step has written (src/model/dev_grads.c): zeroing is lazy. */
    struct model_dev_grads *grad_state;
    /* When set, a backward pass calls grads_done(grads_done_ctx, off, n) as it finishes each stage
     * (model_dev_grad_stage): d->grads[off, off + n) are then final for this pass - whatever no
     * writer reached is zeroed - and only the kernels queued on g->stream so far write them. The
     * learners reduce-scatter them from there while the rest of the backward runs. NULL after init. */
    void (*grads_done)(void *ctx, int64_t off, int64_t n);
    void *grads_done_ctx;
    /* Block forwards (recomputations included) by the attention they ran, since init: what a switch
     * like the default MMUPT_ATTENTION=cudnn actually did - a shape cuDNN refuses attends through cuBLAS - for
     * the benchmarks to print beside their figures. */
    long long attention_runs[MODEL_DEV_ATTN_KINDS];
};

/* Device buffers for m's parameters (uploaded from m->params) and zeroed gradients. */
void model_dev_init(struct model_dev *d, const struct model *m, const struct gpu_ctx *g);
void model_dev_free(struct model_dev *d);
/* params: host, m->spec.total floats (e.g. the learner's new weights). */
void model_dev_upload_params(struct model_dev *d, const float *params);
/* on != 0: the bf16 GEMMs above (allocates and fills params_bf16); 0: back to fp32 (frees it). */
void model_dev_set_bf16(struct model_dev *d, int on);
/* d->params were changed on the device (an optimizer step): refresh what is derived from them (the
 * bf16 copy). model_dev_upload_params does this itself. */
void model_dev_params_changed(struct model_dev *d);
/* The same with the bf16 copy stochastically rounded (cast_bf16_sr, keyed by seed): unbiased. */
void model_dev_params_changed_sr(struct model_dev *d, uint64_t seed);
/* grads: host, m->spec.total floats, overwritten with the device gradients. */
void model_dev_download_grads(struct model_dev *d, float *grads);
/* Start a step's gradients at zero: lazily (src/model/dev_grads.c) - each tensor is zeroed or
 * assigned by its first writer, and model_dev_grads zeroes the rest. */
void model_dev_zero_grad(struct model_dev *d);
/* d->grads, complete: what a reader of the gradients (the optimizer, a reduction, a download) must
 * take them from after a backward - until then a tensor nothing wrote holds garbage. */
float *model_dev_grads(struct model_dev *d);

/* A backward pass's stages in the order it finishes them: 0 the final norm (and an untied
 * lm_head), 1 .. L the decoder layers from the last to the first, L + 1 the embedding table (tied:
 * lm_head's too), L + 2 the vision tower when the model has one. Their ranges [off, off + n) tile
 * [0, spec.total). */
int model_dev_grad_stages(const struct model_dev *d);
void model_dev_grad_stage(const struct model_dev *d, int k, int64_t *off, int64_t *n);
/* Every stage reported to grads_done in order, as a backward would: for a rank whose last
 * micro-batch ran no backward, so that its collectives still match the other ranks'. */
void model_dev_grads_done_all(struct model_dev *d);

/* model_forward / model_forward_last on the device: the batch is host data; logits stay on the
 * device (forward: NULL when logit_chunk > 0, see there). -1 with err for the CPU model's input errors. */
int model_dev_forward(struct model_dev *d, const struct model_batch *b, struct mmupt_err *err);
int model_dev_forward_last(struct model_dev *d, const struct model_batch *b, struct mmupt_err *err);
/* Free the last forward's activations and logits now rather than at the next forward: a learner's
 * micro-batches done, their memory goes back to the pool for what comes next (a colocated rollout). */
void model_dev_release(struct model_dev *d);
/* dlogits: device [n_tokens, vocab]; gradients accumulate into d->grads. (Works in either logit mode.) */
void model_dev_backward(struct model_dev *d, const float *dlogits);
/* model_logprobs / model_backward_logprobs: targets, logp, entropy (may be NULL) and weight are
 * host arrays of n_tokens. */
void model_dev_logprobs(struct model_dev *d, const int64_t *targets, float tau, float *logp, float *entropy);
void model_dev_backward_logprobs(struct model_dev *d, const int64_t *targets, float tau, const float *weight);

/* Incremental decoding: a struct model_kv whose k and v are device buffers (len and delta stay on
 * the host). Free it with model_dev_kv_free, never model_kv_free. */
void model_dev_kv_init(struct model_kv *kv, const struct model_dev *d, int n_slots, int max_len);
void model_dev_kv_free(struct model_kv *kv, const struct model_dev *d);
void model_dev_kv_copy(struct model_kv *kv, const struct model_dev *d, int from, int to);
/* model_prefill: *last_logits points at the device row [vocab] of the prompt's last position. */
int model_dev_prefill(struct model_dev *d, struct model_kv *kv, int slot, const struct model_batch *prompt,
                      const float **last_logits, struct mmupt_err *err);
/* model_prefill_many: *last_logits is device [k, vocab]. */
int model_dev_prefill_many(struct model_dev *d, struct model_kv *kv, const int *slots,
                           const struct model_batch *prompts, const float **last_logits, struct mmupt_err *err);
/* model_decode: slots and tokens are host arrays of n; logits is a device buffer [n, vocab]. */
int model_dev_decode(struct model_dev *d, struct model_kv *kv, const int *slots, const int64_t *tokens, int n,
                     float *logits, struct mmupt_err *err);

#ifdef __cplusplus
}
#endif

#endif
