#!/usr/bin/env python3
"""The quickstart's model definition: configs/quickstart_model/ (config.json, tokenizer.json,
generation_config.json, preprocessor_config.json). No weights: `mmupt sft --init random` starts from
a random initialisation and trains the warm start (docs/quickstart-task.md).

- Tokenizer: a byte-level BPE in Qwen's layout (Qwen's pre-tokenizer regex, so every digit is its own
  token), trained with Hugging Face `tokenizers` on the text the task and the chat template produce:
  <|endoftext|>=0, <|im_start|>=1, <|im_end|>=2, then the merges, then <|image_pad|>,
  <|vision_start|>, <|vision_end|>, <|video_pad|>.
- Model: a tiny Qwen2.5-VL (text hidden 128 in 4 heads of 32, 3 layers, rope_theta 1e4; vision hidden
  32, 2 blocks, patch 14, merge 2; 774k parameters). Width 64 (heads of 16, theta 1e6) never learned
  even to copy a count within its own answer in 2400 warm-start steps - nor did transformers with that
  config (tools/sft_torch_baseline.py) - while width 128 learns it within 600 steps.

Deterministic: the corpus is enumerated, not sampled, so re-running writes the same files.

usage: python3 tools/make_quickstart_model.py      (needs tokenizers and transformers==5.17.0)
"""
import json
import os
import sys

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
from transformers import Qwen2_5_VLConfig

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
OUT = os.path.join(ROOT, "configs", "quickstart_model")
QWEN_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
              r"\s*[\r\n]+|\s+(?!\S)|\s+")
VOCAB = 320  # bytes (256) + merges + the three leading special tokens

PROBLEMS = ["How many red squares are there?", "How many blue squares are there?",
            "How many squares are there in total?", "Are there more red squares than blue squares?"]


def corpus():
    """Every string the quickstart's prompts and responses are made of (docs/quickstart-task.md)."""
    text = ["system\nYou are a helpful assistant.", "user\n", "assistant\n"] + PROBLEMS
    for r in range(10):
        text += [f"red {r} \\boxed{{{r}}}", f"blue {r} \\boxed{{{r}}}", f"\\boxed{{{r}}}"]
        for b in range(10):
            t, more = r + b, "yes" if r > b else "no"
            cmp = ">" if r > b else "<" if r < b else "="
            text += [f"red {r} blue {b} {r}+{b}={t} \\boxed{{{t}}}", f"blue {b} red {r} {b}+{r}={t} \\boxed{{{t}}}",
                     f"red {r} blue {b} {r}{cmp}{b} \\boxed{{{more}}}",
                     f"blue {b} red {r} {r}{cmp}{b} \\boxed{{{more}}}", f"\\boxed{{{t}}}", f"\\boxed{{{more}}}"]
    return text


def tokenizer():
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=VOCAB, show_progress=False,
                                  special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(corpus() * 4, trainer)
    tok.add_special_tokens(["<|image_pad|>", "<|vision_start|>", "<|vision_end|>", "<|video_pad|>"])
    j = json.loads(tok.to_str())
    j["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": QWEN_REGEX}, "behavior": "Isolated", "invert": False},
        {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False}]}
    return j


def main():
    os.makedirs(OUT, exist_ok=True)
    tj = tokenizer()
    ids = {t["content"]: t["id"] for t in tj["added_tokens"]}
    vocab = max(ids.values()) + 1
    cfg = Qwen2_5_VLConfig(
        text_config={"hidden_size": 128, "intermediate_size": 384, "num_hidden_layers": 3, "num_attention_heads": 4,
                     "num_key_value_heads": 4, "vocab_size": vocab, "rms_norm_eps": 1e-6, "rope_theta": 1e4,
                     "rope_scaling": {"type": "mrope", "mrope_section": [4, 6, 6]}, "bos_token_id": 0,
                     "eos_token_id": ids["<|im_end|>"], "max_position_embeddings": 1024},
        vision_config={"depth": 2, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2, "out_hidden_size": 128,
                       "patch_size": 14, "temporal_patch_size": 2, "spatial_merge_size": 2, "window_size": 112,
                       "fullatt_block_indexes": [1], "hidden_act": "silu", "tokens_per_second": 2},
        image_token_id=ids["<|image_pad|>"], vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"], video_token_id=ids["<|video_pad|>"], tie_word_embeddings=True)
    cfg.save_pretrained(OUT)
    with open(os.path.join(OUT, "tokenizer.json"), "w") as f:
        json.dump(tj, f, ensure_ascii=False, indent=1)
        f.write("\n")
    with open(os.path.join(OUT, "generation_config.json"), "w") as f:
        json.dump({"eos_token_id": [ids["<|im_end|>"], ids["<|endoftext|>"]], "pad_token_id": 0}, f, indent=2)
        f.write("\n")
    with open(os.path.join(OUT, "preprocessor_config.json"), "w") as f:
        json.dump({"image_processor_type": "Qwen2VLImageProcessor", "min_pixels": 784, "max_pixels": 7056,
                   "patch_size": 14, "temporal_patch_size": 2, "merge_size": 2,
                   "image_mean": [0.48145466, 0.4578275, 0.40821073],
                   "image_std": [0.26862954, 0.26130258, 0.27577711]}, f, indent=2)
        f.write("\n")
    check = Tokenizer.from_str(json.dumps(tj))
    sample = "red 4 blue 3 4+3=7 \\boxed{7}"
    print(f"wrote {OUT}: vocabulary {vocab}, '{sample}' -> {len(check.encode(sample).ids)} tokens")
    return 0


if __name__ == "__main__":
    sys.exit(main())
