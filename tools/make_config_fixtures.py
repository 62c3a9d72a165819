#!/usr/bin/env python3
"""Config fixtures for mmupt's model-config parser and parameter table.

Writes tests/fixtures/model_configs/:
  NAME.json           a config.json as published on the Hugging Face hub (flat text fields)
  NAME.v5.json        the same config after a round trip through transformers (nested text_config,
                      rope_parameters), i.e. what a re-saved checkpoint carries
  NAME.params.json    {"total": N, "tensors": {legacy_name: shape}} from transformers itself: the model
                      is instantiated on the meta device (no memory, no weights) and its parameters
                      listed, with in-memory names mapped to the legacy checkpoint layout

Requires transformers==5.17.0 and torch (tools/requirements.txt). Run from the repository root:
  python3 tools/make_config_fixtures.py
"""
import json
import os
import sys

import torch
import transformers
from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForImageTextToText

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "model_configs")

VISION_25 = {"depth": 32, "hidden_act": "silu", "hidden_size": 1280, "intermediate_size": 3420, "num_heads": 16,
             "in_chans": 3, "out_hidden_size": None, "patch_size": 14, "spatial_merge_size": 2,
             "spatial_patch_size": 14, "window_size": 112, "fullatt_block_indexes": [7, 15, 23, 31],
             "tokens_per_second": 2, "temporal_patch_size": 2}


def vl25(hidden, inter, layers, heads, kv, vocab, tied):
    vision = dict(VISION_25, out_hidden_size=hidden)
    return {"architectures": ["Qwen2_5_VLForConditionalGeneration"], "attention_dropout": 0.0,
            "bos_token_id": 151643, "eos_token_id": 151645, "vision_start_token_id": 151652,
            "vision_end_token_id": 151653, "vision_token_id": 151654, "image_token_id": 151655,
            "video_token_id": 151656, "hidden_act": "silu", "hidden_size": hidden, "initializer_range": 0.02,
            "intermediate_size": inter, "max_position_embeddings": 128000, "max_window_layers": layers,
            "model_type": "qwen2_5_vl", "num_attention_heads": heads, "num_hidden_layers": layers,
            "num_key_value_heads": kv, "rms_norm_eps": 1e-06, "rope_theta": 1000000.0, "sliding_window": 32768,
            "tie_word_embeddings": tied, "torch_dtype": "bfloat16", "use_cache": True, "use_sliding_window": False,
            "vision_config": vision, "rope_scaling": {"type": "mrope", "mrope_section": [16, 24, 24]},
            "vocab_size": vocab}


CONFIGS = {
    "qwen2_5_vl_7b": vl25(3584, 18944, 28, 28, 4, 152064, False),
    "qwen2_5_vl_3b": vl25(2048, 11008, 36, 16, 2, 151936, True),
    "qwen2_vl_2b": {"architectures": ["Qwen2VLForConditionalGeneration"], "model_type": "qwen2_vl",
                    "hidden_size": 1536, "intermediate_size": 8960, "num_hidden_layers": 28,
                    "num_attention_heads": 12, "num_key_value_heads": 2, "vocab_size": 151936,
                    "rms_norm_eps": 1e-06, "rope_theta": 1000000.0, "tie_word_embeddings": True,
                    "bos_token_id": 151643, "eos_token_id": 151645, "vision_start_token_id": 151652,
                    "vision_end_token_id": 151653, "vision_token_id": 151654, "image_token_id": 151655,
                    "video_token_id": 151656, "hidden_act": "silu", "max_position_embeddings": 32768,
                    "torch_dtype": "bfloat16",
                    "vision_config": {"depth": 32, "embed_dim": 1280, "mlp_ratio": 4, "num_heads": 16,
                                      "in_chans": 3, "hidden_size": 1536, "patch_size": 14,
                                      "spatial_merge_size": 2, "spatial_patch_size": 14,
                                      "temporal_patch_size": 2, "hidden_act": "quick_gelu"},
                    "rope_scaling": {"type": "mrope", "mrope_section": [16, 24, 24]}},
    "qwen2_0_5b": {"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "hidden_size": 896,
                   "intermediate_size": 4864, "num_hidden_layers": 24, "num_attention_heads": 14,
                   "num_key_value_heads": 2, "vocab_size": 151936, "rms_norm_eps": 1e-06, "rope_theta": 1000000.0,
                   "tie_word_embeddings": True, "max_position_embeddings": 32768, "hidden_act": "silu",
                   "torch_dtype": "bfloat16"},
}


def legacy(name):
    for old, new in (("model.language_model.", "model."), ("model.visual.", "visual.")):
        if name.startswith(old):
            return new + name[len(old):]
    return name


def params(cfg):
    auto = AutoModelForCausalLM if cfg.model_type == "qwen2" else AutoModelForImageTextToText
    with torch.device("meta"):
        model = auto.from_config(cfg)
    tensors = {legacy(n): list(p.shape) for n, p in model.named_parameters()}  # tied weights appear once
    return {"total": sum(p.numel() for p in model.parameters()), "tensors": dict(sorted(tensors.items()))}


def main():
    os.makedirs(OUT, exist_ok=True)
    for name, raw in CONFIGS.items():
        path = os.path.join(OUT, name + ".json")
        with open(path, "w") as f:
            json.dump(raw, f, indent=2)
            f.write("\n")
        cfg = AutoConfig.from_pretrained(path)
        nested = os.path.join(OUT, name + ".v5")
        cfg.save_pretrained(nested)
        os.replace(os.path.join(nested, "config.json"), nested + ".json")
        os.rmdir(nested)
        spec = params(cfg)
        spec["transformers"] = transformers.__version__
        with open(os.path.join(OUT, name + ".params.json"), "w") as f:
            json.dump(spec, f, indent=1)
            f.write("\n")
        print(f"{name}: {len(spec['tensors'])} tensors, {spec['total']:,} parameters")
    return 0


if __name__ == "__main__":
    sys.exit(main())
