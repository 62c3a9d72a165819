/* THE configuration table. Every run setting is one row here; parsing, range checks, `mmupt config
 * --list` and docs/configuration.md are all generated from it. Defaults follow the MM-UPT paper's
 * published setup (EasyR1 defaults where the paper is silent), see docs/configuration.md. */
#include <float.h>
#include <stddef.h>
#include <string.h>

#include "mmupt/config.h"
#include "mmupt/synth.h" /* the default prompts and the synth.* bounds */

#define OFF(member) offsetof(struct cfg, member)
#define BIG DBL_MAX
/* Integers travel through double in the table; 2^53 is the largest exactly representable bound. */
#define IBIG 9007199254740992.0

static const char *const dtype_names[] = {"fp32", "bf16", NULL};
static const char *const rounding_names[] = {"nearest", "stochastic", NULL};
static const char *const reward_mode_names[] = {"majority", "ground_truth", "none", NULL};
static const char *const extractor_names[] = {"boxed", "choice", "answer_is", NULL};
static const char *const vote_names[] = {"paper", "equivalence", NULL};
static const char *const adv_names[] = {"grpo", "dr_grpo", NULL};
static const char *const kl_names[] = {"low_var_kl", "k1", "none", NULL};
static const char *const loss_agg_names[] = {"token_mean", "seq_mean_token_mean", NULL};
static const char *const schedule_names[] = {"constant", "cosine", NULL};
static const char *const backend_names[] = {"auto", "cpu", "cuda", "emulator", NULL};
static const char *const resume_names[] = {"off", "auto", NULL};
static const char *const weight_broadcast_names[] = {"host", "device", NULL};
static const char *const synth_mode_names[] = {"direct", "in-context", NULL}; /* = enum synth_mode */
static const char *const level_names[] = {"debug", "info", "warn", "error", NULL};

/* MM-UPT's instruction suffix. The official script passes "\n" inside bash double quotes, so the
 * model sees a literal backslash and n, not a newline (shared/reference/mmupt.md section 3.1). */
#define MMUPT_FORMAT_PROMPT "\\nPlease reason step by step, and put your final answer within \\boxed{}."

const struct cfg_section cfg_sections[] = {
    {"run", "Identity, output location and length of the run."},
    {"model", "The policy: a Hugging Face Qwen2.5-VL / Qwen2-VL / Qwen2 model directory."},
    {"data", "Training data (HDF5), prompt construction and image preprocessing."},
    {"rollout", "Sampling of the G answers per question on rollout ranks."},
    {"reward", "How sampled answers are turned into rewards; `majority` is MM-UPT's label-free vote."},
    {"algorithm", "GRPO: advantages, the clipped policy loss, the KL term and batching."},
    {"optim", "AdamW on fp32 master weights."},
    {"cluster", "MPI ranks and their roles, weight sync and the trajectory ring buffer."},
    {"checkpoint", "HDF5 checkpoints and resume."},
    {"logging", "Console log and structured metrics."},
    {"eval", "Decoding and metrics of `mmupt eval` (docs/evaluation.md); the paper's settings by default. `mmupt eval --config FILE` also takes data.format_prompt, data.min_pixels, data.max_pixels and reward.vote."},
    {"synth", "`mmupt synth`: the policy writes new questions for a split's images (docs/synth.md). Its options override these; `--config FILE` also takes data.min_pixels and data.max_pixels."},
};
const size_t cfg_n_sections = sizeof cfg_sections / sizeof cfg_sections[0];

/* clang-format off */
const struct cfg_field cfg_fields[] = {
    /* key, type, offset, default, min, max, flags, choices, doc */
    {"run.name", CFG_STRING, OFF(run.name), "mmupt", 0, 0, 0, NULL,
     "Run name, used in logs and metrics."},
    {"run.output_dir", CFG_STRING, OFF(run.output_dir), "runs/mmupt", 0, 0, 0, NULL,
     "Directory for metrics, logs and checkpoints (created if missing)."},
    {"run.seed", CFG_INT, OFF(run.seed), "1", 0, IBIG, 0, NULL,
     "Master seed: the shuffle and the sampler are keyed by it and by data.seed / rollout.seed, so changing it alone gives a new, reproducible run; stable across rank counts."},
    {"run.max_steps", CFG_INT, OFF(run.max_steps), "0", 0, IBIG, 0, NULL,
     "Stop after this many rollout steps; 0 means run data.epochs over the training set."},
    {"run.val_interval", CFG_INT, OFF(run.val_interval), "0", 0, IBIG, 0, NULL,
     "Rollout steps between validation evaluations on data.val_path (greedy pass@1, pass@1 and maj@G "
     "with rollout.n samples, on rank 0); 0: none."},
    {"run.val_limit", CFG_INT, OFF(run.val_limit), "256", 0, IBIG, 0, NULL,
     "Validation items per evaluation: the first N of the split (0: all)."},

    {"model.path", CFG_STRING, OFF(model.path), "", 0, 0, 0, NULL,
     "Hugging Face model directory (config.json, *.safetensors, tokenizer.json). Required for training."},
    {"model.dtype", CFG_ENUM, OFF(model.dtype), "bf16", 0, 0, 0, dtype_names,
     "Compute dtype on the device backends (cuda, emulator): bf16 = every linear layer is a bf16 GEMM (tensor cores, fp32 accumulation) on a bf16 copy of the weights; norms, attention, the loss, gradients and the optimizer stay fp32. Master weights are always fp32. The CPU backend computes in fp32."},
    {"model.bf16_rounding", CFG_ENUM, OFF(model.bf16_rounding), "nearest", 0, 0, 0, rounding_names,
     "How model.dtype=bf16 rounds each new version of the fp32 master weights into the bf16 copy the GEMMs use: nearest (the closest bf16) or stochastic (up with probability the dropped bits' share: unbiased, so updates below half a bf16 step still move the copy on average; the random bits are keyed by run.seed and the weights' version, so a resumed run and a rollout rank make the same copy). The initial and the KL reference weights always round to nearest."},
    {"model.freeze_vision_tower", CFG_BOOL, OFF(model.freeze_vision_tower), "false", 0, 0, 0, NULL,
     "Keep the vision tower and merger fixed: not implemented, true is refused (MM-UPT trains them: false)."},
    {"model.gradient_checkpointing", CFG_BOOL, OFF(model.gradient_checkpointing), "true", 0, 0, 0, NULL,
     "Recompute each decoder block's activations in the backward pass instead of keeping them (device "
     "path: cluster.backend cuda/emulator; the CPU reference always keeps them). Same results, less memory."},
    {"model.logit_chunk", CFG_INT, OFF(model.logit_chunk), "4096", 0, IBIG, 0, NULL,
     "Device path: the learner's lm_head, log-softmax and their gradients run over this many token rows at "
     "a time, so a micro-batch's [tokens, vocab] logits (4.9 GB per 8192 tokens at Qwen's 151936 vocabulary, "
     "fp32) never exist whole; 0 keeps them all. The lm_head gradient then sums its rows chunk by chunk "
     "(fp32 reassociation only)."},

    {"data.train_path", CFG_STRING, OFF(data.train_path), "", 0, 0, 0, NULL,
     "HDF5 training set. Answers are not needed for reward.mode=majority."},
    {"data.val_path", CFG_STRING, OFF(data.val_path), "", 0, 0, 0, NULL,
     "HDF5 validation set (optional)."},
    {"data.format_prompt", CFG_STRING, OFF(data.format_prompt), MMUPT_FORMAT_PROMPT, 0, 0, 0, NULL,
     "Instruction appended to every question after one space (MM-UPT's text, with a literal backslash-n)."},
    {"data.max_prompt_length", CFG_INT, OFF(data.max_prompt_length), "2048", 1, 1048576, 0, NULL,
     "Prompt tokens (image tokens included); longer prompts are skipped and counted (a cut prompt could end inside an image)."},
    {"data.max_response_length", CFG_INT, OFF(data.max_response_length), "2048", 1, 1048576, 0, NULL,
     "Response tokens kept for training."},
    {"data.rollout_batch_size", CFG_INT, OFF(data.rollout_batch_size), "512", 1, 1048576, 0, NULL,
     "Questions per rollout step (each sampled rollout.n times)."},
    {"data.epochs", CFG_INT, OFF(data.epochs), "15", 1, 1000000, 0, NULL,
     "Passes over the training set."},
    {"data.skip_bad_items", CFG_BOOL, OFF(data.skip_bad_items), "true", 0, 0, 0, NULL,
     "Skip an unusable item (corrupt image, marker/image mismatch, too long) with a warning and count it; false stops the run."},
    {"data.shuffle", CFG_BOOL, OFF(data.shuffle), "true", 0, 0, 0, NULL,
     "Shuffle questions each epoch."},
    {"data.seed", CFG_INT, OFF(data.seed), "1", 0, IBIG, 0, NULL,
     "Seed of the shuffle (combined with run.seed)."},
    {"data.min_pixels", CFG_INT, OFF(data.min_pixels), "262144", 784, 1e9, 0, NULL,
     "Smallest image area after resizing (pixels)."},
    {"data.max_pixels", CFG_INT, OFF(data.max_pixels), "1204224", 784, 1e9, 0, NULL,
     "Largest image area after resizing (pixels); also caps what is decoded."},

    {"rollout.n", CFG_INT, OFF(rollout.n), "10", 1, 4096, 0, NULL,
     "G: answers sampled per question; the vote runs over these."},
    {"rollout.temperature", CFG_FLOAT, OFF(rollout.temperature), "0.7", 0, 100, 0, NULL,
     "Sampling temperature; log-probs for the loss use the same value. 0 means greedy."},
    {"rollout.top_p", CFG_FLOAT, OFF(rollout.top_p), "0.99", 0, 1, CFG_MIN_EXCLUSIVE, NULL,
     "Nucleus sampling mass."},
    {"rollout.top_k", CFG_INT, OFF(rollout.top_k), "-1", -1, 1e9, 0, NULL,
     "Keep only the k most likely tokens; -1 or 0 disables."},
    {"rollout.max_new_tokens", CFG_INT, OFF(rollout.max_new_tokens), "2048", 1, 1048576, 0, NULL,
     "Longest answer sampled."},
    {"rollout.seed", CFG_INT, OFF(rollout.seed), "1", 0, IBIG, 0, NULL,
     "Sampling seed (combined with run.seed); a sample is keyed by (seed, question id, sample index)."},
    {"rollout.image_pad_bias", CFG_FLOAT, OFF(rollout.image_pad_bias), "-100", -1e9, 1e9, 0, NULL,
     "Logit bias on <|image_pad|> so the model never emits it (MM-UPT: -100)."},
    {"rollout.cuda_graphs", CFG_BOOL, OFF(rollout.cuda_graphs), "true", 0, 0, 0, NULL,
     "cluster.backend=cuda: replay each decode step (one per generated token) as a CUDA graph, one launch "
     "instead of a few hundred; the same results. A capture that fails turns them off with a warning."},
    {"rollout.stop_token_ids", CFG_INT_LIST, OFF(rollout.stop_token_ids), "[]", 0, 16777216, 0, NULL,
     "Token ids that end an answer; [] takes them from the model's generation_config.json."},

    {"reward.mode", CFG_ENUM, OFF(reward.mode), "majority", 0, 0, 0, reward_mode_names,
     "majority: label-free vote (MM-UPT); ground_truth: supervised GRPO baseline; none: zero reward."},
    {"reward.extractor", CFG_ENUM, OFF(reward.extractor), "boxed", 0, 0, 0, extractor_names,
     "How an answer is read from a response: last \\boxed{}, a choice letter, or 'the answer is X'."},
    {"reward.vote", CFG_ENUM, OFF(reward.vote), "paper", 0, 0, 0, vote_names,
     "paper: exact strings, first-seen tie-break, no-answer votes; equivalence: vote over equal answers."},
    {"reward.min_majority_share", CFG_FLOAT, OFF(reward.min_majority_share), "0", 0, 1, 0, NULL,
     "Groups whose winning answer has a smaller share get zero reward (0 disables, as in the paper)."},

    {"algorithm.adv_estimator", CFG_ENUM, OFF(algorithm.adv_estimator), "grpo", 0, 0, 0, adv_names,
     "grpo: (r - group mean) / (unbiased group std + adv_std_eps), as the paper; dr_grpo: r - group mean."},
    {"algorithm.adv_std_eps", CFG_FLOAT, OFF(algorithm.adv_std_eps), "1e-6", 0, 1, 0, NULL,
     "Added to the group's reward std (unbiased, N-1) before dividing."},
    {"algorithm.kl_coef", CFG_FLOAT, OFF(algorithm.kl_coef), "0.01", 0, 1000, 0, NULL,
     "Weight of the KL term to the frozen reference model (beta)."},
    {"algorithm.kl_penalty", CFG_ENUM, OFF(algorithm.kl_penalty), "low_var_kl", 0, 0, 0, kl_names,
     "KL estimator: low_var_kl (k3, MM-UPT), k1 (log-ratio), none (no reference model kept)."},
    {"algorithm.kl_clamp", CFG_FLOAT, OFF(algorithm.kl_clamp), "10", 0, 1e9, CFG_MIN_EXCLUSIVE, NULL,
     "The per-token KL is clamped to [-kl_clamp, kl_clamp]."},
    {"algorithm.clip_ratio_low", CFG_FLOAT, OFF(algorithm.clip_ratio_low), "0.2", 0, 1, 0, NULL,
     "Lower PPO clip: ratio >= 1 - clip_ratio_low."},
    {"algorithm.clip_ratio_high", CFG_FLOAT, OFF(algorithm.clip_ratio_high), "0.3", 0, 100, 0, NULL,
     "Upper PPO clip (clip-higher): ratio <= 1 + clip_ratio_high."},
    {"algorithm.clip_ratio_dual", CFG_FLOAT, OFF(algorithm.clip_ratio_dual), "3", 1, 1e9, CFG_MIN_EXCLUSIVE, NULL,
     "Dual clip for negative advantages: the loss is at most clip_ratio_dual * |A|."},
    {"algorithm.entropy_coef", CFG_FLOAT, OFF(algorithm.entropy_coef), "0", 0, 100, 0, NULL,
     "Entropy bonus weight: only 0 is implemented (the entropy is logged; another value is refused)."},
    {"algorithm.loss_agg", CFG_ENUM, OFF(algorithm.loss_agg), "token_mean", 0, 0, 0, loss_agg_names,
     "Loss aggregation: token_mean (EasyR1 micro-batch semantics) or seq_mean_token_mean."},
    {"algorithm.global_batch_size", CFG_INT, OFF(algorithm.global_batch_size), "128", 1, 1048576, 0, NULL,
     "Questions per optimizer step (x rollout.n sequences); must divide data.rollout_batch_size."},
    {"algorithm.ppo_epochs", CFG_INT, OFF(algorithm.ppo_epochs), "1", 1, 100, 0, NULL,
     "Passes over each rollout batch: only 1 is implemented (another value is refused)."},
    {"algorithm.micro_batch_size", CFG_INT, OFF(algorithm.micro_batch_size), "4", 1, 65536, 0, NULL,
     "Sequences per forward/backward on one learner (gradient accumulation covers the rest)."},
    {"algorithm.micro_batch_size_experience", CFG_INT, OFF(algorithm.micro_batch_size_experience), "8", 1, 65536, 0, NULL,
     "Sequences per forward when recomputing old and reference log-probs (EasyR1's key). Not used yet: mmupt computes them in micro-batches of algorithm.micro_batch_size; any value is accepted."},

    {"optim.lr", CFG_FLOAT, OFF(optim.lr), "1e-6", 0, 1, 0, NULL,
     "Peak learning rate."},
    {"optim.beta1", CFG_FLOAT, OFF(optim.beta1), "0.9", 0, 1, 0, NULL,
     "AdamW beta1."},
    {"optim.beta2", CFG_FLOAT, OFF(optim.beta2), "0.999", 0, 1, 0, NULL,
     "AdamW beta2."},
    {"optim.eps", CFG_FLOAT, OFF(optim.eps), "1e-8", 0, 1, CFG_MIN_EXCLUSIVE, NULL,
     "AdamW epsilon."},
    {"optim.weight_decay", CFG_FLOAT, OFF(optim.weight_decay), "0.01", 0, 10, 0, NULL,
     "Decoupled weight decay."},
    {"optim.clip_grad_norm", CFG_FLOAT, OFF(optim.clip_grad_norm), "1", 0, 1e9, 0, NULL,
     "Clip the global gradient norm to this (0 disables); a non-finite norm skips the update."},
    {"optim.warmup_ratio", CFG_FLOAT, OFF(optim.warmup_ratio), "0", 0, 1, 0, NULL,
     "Fraction of the optimizer steps spent in linear warmup."},
    {"optim.schedule", CFG_ENUM, OFF(optim.schedule), "constant", 0, 0, 0, schedule_names,
     "Learning-rate schedule after warmup."},

    {"cluster.rollout_ranks", CFG_INT, OFF(cluster.rollout_ranks), "0", 0, 1048576, 0, NULL,
     "Ranks that only sample; the rest learn. 0: colocated, every rank alternates both roles."},
    {"cluster.backend", CFG_ENUM, OFF(cluster.backend), "auto", 0, 0, 0, backend_names,
     "Compute backend: auto (CUDA when the build has it and a GPU is visible, else cpu), cpu, cuda, or emulator "
     "(CPU-only builds: the GPU code path on the device emulator, for testing it without a GPU; slow)."},
    {"cluster.sync_interval", CFG_INT, OFF(cluster.sync_interval), "1", 1, 1000000, 0, NULL,
     "Learner steps between weight broadcasts to rollout ranks."},
    {"cluster.ring_capacity", CFG_INT, OFF(cluster.ring_capacity), "64", 1, 1048576, 0, NULL,
     "Question groups per learner the trajectory ring buffer holds before rollout ranks wait."},
    {"cluster.max_staleness", CFG_INT, OFF(cluster.max_staleness), "0", 0, 1000000, 0, NULL,
     "Policy versions a trajectory may lag behind the learners. 0: strictly on-policy (the paper); "
     "1: rollout of step s+1 overlaps learning on step s. Needs >= sync_interval - 1."},
    {"cluster.timeout_s", CFG_FLOAT, OFF(cluster.timeout_s), "1800", 0, 1e6, CFG_MIN_EXCLUSIVE, NULL,
     "Longest wait for another rank (a trajectory, ring space, new weights) before stopping with an "
     "error naming it. Must exceed one rollout step."},
    {"cluster.grad_bucket_mb", CFG_FLOAT, OFF(cluster.grad_bucket_mb), "0", 0, 1e6, 0, NULL,
     "Device path, several learners: reduce-scatter the gradients in buckets of this many MiB while the "
     "backward pass still runs (NCCL on its own stream; the same sums). 0: one reduce-scatter after it."},
    {"cluster.weight_broadcast", CFG_ENUM, OFF(cluster.weight_broadcast), "host", 0, 0, 0, weight_broadcast_names,
     "Split mode on the device path: how new weights reach the rollout ranks. host: learner 0 copies them "
     "to host memory and MPI broadcasts them while it trains on. device: GPU to GPU (NCCL) from learner 0's "
     "live weights once every rollout rank is waiting for them, from a host copy when the next update comes "
     "first; staged through host buffers where NCCL is absent. The same weights either way."},

    {"checkpoint.dir", CFG_STRING, OFF(checkpoint.dir), "checkpoints", 0, 0, 0, NULL,
     "Checkpoint directory; relative paths are under run.output_dir."},
    {"checkpoint.interval", CFG_INT, OFF(checkpoint.interval), "50", 0, 1000000000, 0, NULL,
     "Rollout steps between checkpoints (0: only at the end and on preemption)."},
    {"checkpoint.keep_last", CFG_INT, OFF(checkpoint.keep_last), "3", 1, 1000000, 0, NULL,
     "Complete checkpoints kept; older ones are deleted only after a newer one is complete."},
    {"checkpoint.resume", CFG_ENUM, OFF(checkpoint.resume), "off", 0, 0, 0, resume_names,
     "auto: continue from the latest good checkpoint in checkpoint.dir when one exists (also: "
     "mmupt train --resume)."},
    {"checkpoint.resume_path", CFG_STRING, OFF(checkpoint.resume_path), "", 0, 0, 0, NULL,
     "Resume from this checkpoint directory (a step-N) instead of the latest: the way back to an "
     "older checkpoint when the latest is damaged. Relative paths are under checkpoint.dir."},

    {"logging.level", CFG_ENUM, OFF(logging.level), "info", 0, 0, 0, level_names,
     "Console log level (stderr, rank-tagged)."},
    {"logging.metrics_file", CFG_STRING, OFF(logging.metrics_file), "metrics.jsonl", 0, 0, 0, NULL,
     "JSON Lines metrics, one record per step; relative paths are under run.output_dir."},
    {"logging.log_interval", CFG_INT, OFF(logging.log_interval), "1", 1, 1000000, 0, NULL,
     "Steps between console progress lines (the last step's, skipped updates and validation results are always printed; metrics.jsonl has every step)."},
    {"logging.tensorboard", CFG_BOOL, OFF(logging.tensorboard), "false", 0, 0, 0, NULL,
     "Also write TensorBoard event files to run.output_dir."},

    {"eval.temperature", CFG_FLOAT, OFF(eval.temperature), "0.2", 0, 100, CFG_MIN_EXCLUSIVE, NULL,
     "Temperature of the sampled answers (the paper evaluates at 0.2); the greedy answer is decoded separately."},
    {"eval.n", CFG_INT, OFF(eval.n), "1", 1, 256, 0, NULL,
     "Samples per item at eval.temperature: pass@1 at T averages them, maj@n votes over them."},
    {"eval.top_p", CFG_FLOAT, OFF(eval.top_p), "1", 0, 1, CFG_MIN_EXCLUSIVE, NULL,
     "Nucleus sampling mass of the samples."},
    {"eval.max_new_tokens", CFG_INT, OFF(eval.max_new_tokens), "1024", 1, 65536, 0, NULL,
     "Longest response, greedy or sampled."},
    {"eval.k", CFG_INT_LIST, OFF(eval.k), "[1]", 1, 256, 0, NULL,
     "The k of pass@k (unbiased estimator) and maj@k (vote over the first k samples); each k <= eval.n. A YAML list ([1, 4]); as an override also a comma string (eval.k=1,4)."},
    {"eval.greedy", CFG_BOOL, OFF(eval.greedy), "true", 0, 0, 0, NULL,
     "Also decode the greedy (temperature 0) answer: greedy pass@1 and the headroom maj@n - greedy."},

    {"synth.mode", CFG_ENUM, OFF(synth.mode), "direct", 0, 0, 0, synth_mode_names,
     "direct: the model sees an item's images only; in-context: also its question and answer, and writes a different question."},
    {"synth.n", CFG_INT, OFF(synth.n), "4", 1, SYNTH_MAX_N, 0, NULL,
     "Candidate questions sampled per item; each goes through the filters."},
    {"synth.keep", CFG_INT, OFF(synth.keep), "1", 1, SYNTH_MAX_N, 0, NULL,
     "Questions kept per item at most (<= synth.n); the first candidates that pass, in sample order."},
    {"synth.temperature", CFG_FLOAT, OFF(synth.temperature), "1", 0, 100, 0, NULL,
     "Sampling temperature of the candidates (0: greedy, which makes them all equal)."},
    {"synth.top_p", CFG_FLOAT, OFF(synth.top_p), "1", 0, 1, CFG_MIN_EXCLUSIVE, NULL,
     "Nucleus sampling mass of the candidates."},
    {"synth.max_new_tokens", CFG_INT, OFF(synth.max_new_tokens), "128", 1, 65536, 0, NULL,
     "Longest candidate, in tokens."},
    {"synth.min_chars", CFG_INT, OFF(synth.min_chars), "10", 0, SYNTH_MAX_CHARS, 0, NULL,
     "Shortest question kept, in characters (filter too_short)."},
    {"synth.max_chars", CFG_INT, OFF(synth.max_chars), "400", 1, SYNTH_MAX_CHARS, 0, NULL,
     "Longest question kept, in characters (filter too_long)."},
    {"synth.max_overlap", CFG_FLOAT, OFF(synth.max_overlap), "0.7", 0, 1e6, 0, NULL,
     "Near-duplicate threshold: word 3-gram Jaccard similarity to a question already kept for the item (or to the original, in-context) at or above it rejects; above 1: off."},
    {"synth.require_question", CFG_BOOL, OFF(synth.require_question), "true", 0, 0, 0, NULL,
     "Reject a candidate that is not a question (no final '?' and no leading question or task word)."},
    {"synth.prompt_direct", CFG_STRING, OFF(synth.prompt_direct), SYNTH_PROMPT_DIRECT, 0, 0, 0, NULL,
     "The request to the model in direct mode, after the item's images (no <image> marker)."},
    {"synth.prompt_in_context", CFG_STRING, OFF(synth.prompt_in_context), SYNTH_PROMPT_IN_CONTEXT, 0, 0, 0, NULL,
     "The request in in-context mode; {question} and {answer} are replaced by the item's."},
};
/* clang-format on */
const size_t cfg_n_fields = sizeof cfg_fields / sizeof cfg_fields[0];

const struct cfg_field *cfg_find(const char *key)
{
    for (size_t i = 0; i < cfg_n_fields; i++)
        if (strcmp(cfg_fields[i].key, key) == 0) return &cfg_fields[i];
    return NULL;
}

const struct cfg_section *cfg_find_section(const char *name, size_t len)
{
    for (size_t i = 0; i < cfg_n_sections; i++)
        if (strlen(cfg_sections[i].name) == len && memcmp(cfg_sections[i].name, name, len) == 0)
            return &cfg_sections[i];
    return NULL;
}

const char *cfg_enum_name(const struct cfg_field *f, int value)
{
    for (int i = 0; f->choices && f->choices[i]; i++)
        if (i == value) return f->choices[i];
    return "?";
}
