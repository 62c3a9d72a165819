#!/usr/bin/env python3
"""A tiny Qwen2.5-VL model WITH a matching tokenizer, for end-to-end runs on the CPU (`mmupt generate
--prompt`, and the trainer tests): tests/fixtures/models/tiny_train/.

The tokenizer is tests/fixtures/tokenizer/small/qwen_layout.json (a 300-token byte-level BPE in Qwen's
layout with <|im_start|>=1, <|im_end|>=2, <|image_pad|>=300, <|vision_start|>=301, <|vision_end|>=302);
the model's vocabulary is 304 rows (303 = an unused video token id). Weights are transformers' random
init with a fixed seed, saved by save_pretrained in fp32.

usage: python3 tools/make_train_fixture.py
"""
import json
import os
import shutil
import sys

import torch
from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
OUT = os.path.join(ROOT, "tests", "fixtures", "models", "tiny_train")
TOKENIZER = os.path.join(ROOT, "tests", "fixtures", "tokenizer", "small", "qwen_layout.json")


def main():
    torch.manual_seed(20261126)
    cfg = Qwen2_5_VLConfig(
        text_config={"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
                     "num_key_value_heads": 2, "vocab_size": 304, "rms_norm_eps": 1e-6, "rope_theta": 1e6,
                     "rope_scaling": {"type": "mrope", "mrope_section": [2, 3, 3]}, "bos_token_id": 0,
                     "eos_token_id": 2, "max_position_embeddings": 4096},
        vision_config={"depth": 2, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2, "out_hidden_size": 64,
                       "patch_size": 14, "temporal_patch_size": 2, "spatial_merge_size": 2, "window_size": 56,
                       "fullatt_block_indexes": [1], "hidden_act": "silu", "tokens_per_second": 2},
        image_token_id=300, vision_start_token_id=301, vision_end_token_id=302, video_token_id=303,
        tie_word_embeddings=True)
    model = Qwen2_5_VLForConditionalGeneration(cfg).to(torch.float32).eval()
    with torch.no_grad():  # HF init zeroes biases; give every parameter some signal
        for name, p in sorted(model.named_parameters()):
            if name.endswith("bias"):
                p.normal_(0, 0.02)
    if os.path.exists(OUT):
        shutil.rmtree(OUT)
    model.save_pretrained(OUT, safe_serialization=True)
    shutil.copy(TOKENIZER, os.path.join(OUT, "tokenizer.json"))
    with open(os.path.join(OUT, "generation_config.json"), "w") as f:
        json.dump({"eos_token_id": [2, 0], "pad_token_id": 0}, f, indent=2)
        f.write("\n")
    n = sum(p.numel() for p in model.parameters())
    print(f"wrote {OUT}: {n:,} parameters")
    return 0


if __name__ == "__main__":
    sys.exit(main())
