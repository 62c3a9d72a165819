/* GRPO: group-normalised advantages and the clipped policy loss with a KL term, as EasyR1 (the
 * framework MM-UPT runs on) computes them. shared/reference/mmupt.md §2.4 is the specification.
 *
 * Per scored token t (x = logp - old_logp, A = advantage):
 *   ratio   = exp(x)
 *   clipped = exp(clamp(x, log(1 - clip_low), log(1 + clip_high)))
 *   Lc      = max(-A * ratio, -A * clipped)
 *   L       = A < 0 ? min(Lc, -A * clip_dual) : Lc               (dual clip)
 *   kl      = clamp(exp(d) - d - 1, -kl_clamp, kl_clamp), d = ref_logp - logp   (low_var_kl, k3)
 *           | logp - ref_logp (k1, not clamped) | 0 (none)
 *   loss    = token_mean(L) + kl_coef * token_mean(kl)
 * Gradients are PyTorch autograd's for exactly that expression, subgradients included: where clamp
 * saturates OR sits exactly on a bound the gradient is 0 (torch.clamp passes gradient only strictly
 * inside), and a tie of max/min sends half the gradient to each side (torch.maximum/minimum).
 *
 * HOW THE TRAINER USES MICRO-BATCHES (EasyR1's semantics, reproduced on purpose): a mini-batch (one
 * optimizer step) is split into grad_accum micro-batches; each call here is ONE micro-batch, its loss
 * a token-mean over that micro-batch's scored tokens only, and its gradient multiplied by
 * scale = 1 / grad_accum. The effective objective is the mean over micro-batches of per-micro-batch
 * token-means: neither a global token-mean nor a sequence-mean, so micro-batch composition matters.
 * grpo_loss_seq_mean_cpu is the "seq-mean-token-mean" alternative (config algorithm.loss_agg): each
 * sequence's token-mean, then the mean over the micro-batch's non-empty sequences.
 *
 * Masks are 0/1 (any non-zero counts as 1). A micro-batch without scored tokens has loss 0 and
 * gradient 0 (EasyR1 divides by count + 1e-8, giving 0 as well). Metrics are over scored tokens. */
#ifndef MMUPT_GRPO_H
#define MMUPT_GRPO_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum grpo_kl { GRPO_KL_LOW_VAR = 0, GRPO_KL_K1 = 1, GRPO_KL_NONE = 2 }; /* = enum cfg_kl */

struct grpo_params {
    float clip_low, clip_high, clip_dual; /* 0.2, 0.3, 3.0 */
    int kl_penalty;                       /* enum grpo_kl: 0 low_var_kl (k3), 1 k1 (logp - ref), 2 none */
    float kl_coef, kl_clamp;              /* 0.01, 10 */
    float tau;                            /* rollout temperature: logits / tau before log-softmax */
    float scale;                          /* gradients are multiplied by this (1 / grad_accum) */
    /* Fused path only: tokens and vocabulary entries per chunk, 0 = defaults (the whole vocabulary
     * and as many tokens as fit GRPO_FUSED_CHUNK_FLOATS). With chunk_v < V the logits of a token
     * chunk are computed twice (statistics, then gradient); with the whole vocabulary once. */
    int chunk_t, chunk_v;
};

/* Working-memory budget of one fused chunk (floats): 16 Mi floats = 64 MiB. */
#define GRPO_FUSED_CHUNK_FLOATS (16 * 1024 * 1024)

struct grpo_metrics {                  /* over the scored tokens */
    double loss, pg_loss, kl, entropy; /* token means; entropy of softmax(logits/tau) */
    double clip_frac, dual_clip_frac, ratio_mean, ratio_min, ratio_max;
    int64_t n_tokens;
};

/* The paper's (EasyR1's) values: clip 0.2/0.3/3.0, low_var_kl, kl_coef 0.01, clamp 10, tau 0.7,
 * scale 1, default chunks. */
void grpo_params_default(struct grpo_params *p);

/* Advantages per sequence from rewards r[n_groups * G] (groups contiguous): (r - mean) / (std + eps)
 * per group with the UNBIASED std (torch.std, divides by G - 1); dr_grpo != 0: r - mean, no std. A
 * group of size 1 has no std (torch gives NaN); here its advantage is 0: nothing to compare with. */
void grpo_advantages(const float *rewards, int n_groups, int G, float eps, int dr_grpo, float *adv);

/* The per-token objective of ONE micro-batch, token-mean over mask: from per-token current log-probs
 * (at tau), old and reference log-probs, per-token advantages and a 0/1 mask (n tokens). Writes
 * dlogp[t] = scale * d loss / d logp[t] (0 where the mask is 0) and the metrics; returns -1 (and
 * writes nothing) if any input of a scored token (or any mask value) is NaN/Inf. m->entropy is 0
 * here (no logits); a caller with per-token entropies fills it with grpo_masked_mean. */
int grpo_loss_cpu(const float *logp, const float *old_logp, const float *ref_logp, const float *adv,
                  const float *mask, int64_t n, const struct grpo_params *p, float *dlogp, struct grpo_metrics *m);

/* The same with seq-mean-token-mean aggregation: tokens [seq_start[s], seq_start[s+1]) form sequence
 * s (seq_start has n_seq + 1 entries, 0 .. n). Every mean (loss, pg_loss, kl, ratio_mean, clip
 * fractions) is the mean over non-empty sequences of per-sequence token-means. */
int grpo_loss_seq_mean_cpu(const float *logp, const float *old_logp, const float *ref_logp, const float *adv,
                           const float *mask, const int64_t *seq_start, int n_seq, const struct grpo_params *p,
                           float *dlogp, struct grpo_metrics *m);

/* A packed micro-batch's loss under the trainer's aggregation (config algorithm.loss_agg): sequence k
 * is the seq_len[k] tokens after those of the sequences before it (n = their sum); seq_mean 0 is
 * grpo_loss_cpu over all n tokens, 1 grpo_loss_seq_mean_cpu over the sequences. */
int grpo_loss_packed_cpu(int seq_mean, const float *logp, const float *old_logp, const float *ref_logp,
                         const float *adv, const float *mask, const int *seq_len, int n_seq,
                         const struct grpo_params *p, float *dlogp, struct grpo_metrics *m);

/* CUDA twin of grpo_loss_cpu (kernels/cuda/grpo_loss.cu): the same contract with device arrays
 * (logp .. mask, dlogp); p and m stay on the host, and m is complete when it returns (the call waits
 * for `stream`, a cudaStream_t, NULL the default stream). */
int grpo_loss_cuda(const float *logp, const float *old_logp, const float *ref_logp, const float *adv,
                   const float *mask, int64_t n, const struct grpo_params *p, float *dlogp, struct grpo_metrics *m,
                   void *stream);

/* sum(x * mask) / count(mask != 0), 0 when nothing is masked in. */
double grpo_masked_mean(const float *x, const float *mask, int64_t n);

/* The same objective FUSED with the lm_head: hidden [T, H] (final-norm output), W [V, H] (lm_head),
 * targets [T] (the sampled next token; < 0 = not scored; a token is scored when its target is >= 0
 * AND its mask is non-zero). It computes logp = log_softmax(hidden @ W^T / tau)[target] and the
 * entropy in chunks over tokens and vocabulary (online max / log-sum-exp), the loss, and ACCUMULATES
 * scale * gradients into dhidden [T, H] and dW [V, H] (either may be NULL), never holding a [T, V]
 * tensor: working memory O(chunk_t * chunk_v + chunk_t * H + T). Token-mean aggregation only. Returns -1 and writes nothing when
 * an input of a scored token, or any of W, is NaN/Inf, or when |logits| could overflow float (the
 * check is the bound max|hidden_t| * max|W_v| made before anything is written, since gradients of
 * early chunks cannot be taken back). Calls OpenBLAS: not from inside an OpenMP region. */
int grpo_fused_loss_cpu(const float *hidden, const float *W, const int64_t *targets, const float *old_logp,
                        const float *ref_logp, const float *adv, const float *mask, int T, int H, int V,
                        const struct grpo_params *p, float *dhidden, float *dW, struct grpo_metrics *m);

/* The reference composition the fused path replaces, same arguments and contract: [T, V] logits by
 * matmul_forward_cpu, logprob_forward_cpu, grpo_loss_cpu, logprob_backward_cpu, matmul_backward_cpu.
 * Holds two [T, V] tensors; for tests and benchmarks. */
int grpo_unfused_loss_cpu(const float *hidden, const float *W, const int64_t *targets, const float *old_logp,
                          const float *ref_logp, const float *adv, const float *mask, int T, int H, int V,
                          const struct grpo_params *p, float *dhidden, float *dW, struct grpo_metrics *m);

#ifdef __cplusplus
}
#endif

#endif
