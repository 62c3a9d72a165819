/* Token sampling for rollouts: a counter-based RNG and the next-token sampler.
 *
 * Rollout ranks draw G answers per question. Every random number is a pure function of
 * (seed, question id, sample index, step), so a sample's draws do not depend on which batch it
 * landed in, in what order, or on how many ranks there are: a run reproduces under any layout.
 */
#ifndef MMUPT_SAMPLER_H
#define MMUPT_SAMPLER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* 64 random bits for one (seed, question, sample, step). The construction (src/sampler/rng.c) is
 * a chain of SplitMix64 finalisers, one per argument, each a bijection of 64 bits: with three
 * arguments fixed, distinct values of the fourth never give the same output. It is a statistical
 * generator, NOT cryptographic: do not use it where an adversary must not predict the output. */
uint64_t sample_rng_bits(uint64_t seed, uint64_t question, uint64_t sample, uint64_t step);

/* The top 53 bits of sample_rng_bits as a double in [0, 1) (multiples of 2^-53, never 1). */
double sample_rng_uniform(uint64_t seed, uint64_t question, uint64_t sample, uint64_t step);

struct sample_params {
    float temperature;     /* 0: greedy (argmax, ties -> lowest id); else > 0 and finite */
    float top_p;           /* (0, 1]; 1 disables */
    int top_k;             /* <= 0 (or >= V) disables */
    const int32_t *bias_ids; /* logit bias: bias[i] is added to logits[bias_ids[i]] first;   */
    const float *bias;       /* -INFINITY bans a token outright, -100 makes it practically    */
    int n_bias;              /* unreachable (MM-UPT biases <|image_pad|>). Ids must be in [0, V). */
};

/* 1 when p is usable for a vocabulary of V: temperature >= 0 and finite, top_p in (0, 1], bias ids
 * in [0, V) with non-NaN biases (the parameter checks of sample_token and its device twin). */
int sample_params_valid(const struct sample_params *p, int V);

/* Bytes of workspace sample_token needs for a vocabulary of V (0 for V < 1). */
size_t sample_scratch_size(int V);

/* Pick the next token from logits[V] (not modified), in Hugging Face's logits-processor order:
 *   1. logit bias;
 *   2. temperature (logits / T);
 *   3. top-k: HF's rule, every token whose logit is >= the k-th largest is kept, so ties at the
 *      boundary may keep more than k;
 *   4. top-p: the smallest set of most probable tokens whose probability reaches top_p (at least
 *      one), ranked by probability with ties broken by lower id;
 *   5. a draw with u in [0, 1) (from sample_rng_uniform) over the kept, renormalised probabilities.
 * Greedy (temperature 0) returns the argmax of the biased logits, ties to the lowest id.
 *
 * *logp (may be NULL) receives log softmax(biased logits / T)[token] over the whole vocabulary,
 * BEFORE top-k/top-p truncation: the log-probability of the policy at the rollout temperature,
 * which is what GRPO's "old log-probs" mean (the learner recomputes the same quantity with a
 * forward pass; truncation is a property of the sampler, not of the policy). Greedy: T = 1.
 *
 * scratch: sample_scratch_size(V) bytes, owned by the caller and reused across tokens, so nothing
 * is allocated per token. Cost: O(V) for plain sampling, O(V log k) with top-k, and with top-p
 * alone O(V) plus a sort of the tokens within log((V-1)/(1-top_p)) nats of the best (which contain
 * the nucleus); for a flat distribution that is a full sort of V (acceptable for this CPU
 * reference; the GPU path will need a different algorithm).
 *
 * Returns the token id, or -1 (with *logp untouched) when there is nothing valid to sample: a NaN
 * or +inf biased logit, every biased logit -inf, V < 1, a bias id outside [0, V), a NaN bias, or
 * parameters outside their ranges (temperature < 0 or not finite, top_p outside (0, 1], u outside
 * [0, 1)). */
int32_t sample_token(const float *logits, int V, const struct sample_params *p, double u, void *scratch,
                     float *logp);

#ifdef __cplusplus
}
#endif

#endif
