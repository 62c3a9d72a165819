#!/usr/bin/env python3
"""transformers twin of benchmarks/rollout.c: generate() with the same config, batch, prompt length,
new tokens (min_new_tokens = max_new_tokens, no eos), sampling at temperature 1 (top_k 0, top_p 1),
threads from OMP_NUM_THREADS; prompts include one image per sequence for vision configs.

usage: rollout_torch.py CONFIG.json BATCH PROMPT_LEN NEW [IMAGE_SIDE]
"""
import json
import os
import shutil
import sys
import tempfile
import time

import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForImageTextToText


def main():
    path, batch, plen, new = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    side = int(sys.argv[5]) if len(sys.argv) > 5 else 0
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", os.cpu_count())))
    torch.manual_seed(42)
    tmp = tempfile.mkdtemp()
    shutil.copy(path, os.path.join(tmp, "config.json"))
    cfg = AutoConfig.from_pretrained(tmp)
    shutil.rmtree(tmp)
    vision = json.load(open(path))["model_type"] != "qwen2"
    auto = AutoModelForImageTextToText if vision else AutoModelForCausalLM
    model = auto.from_config(cfg, dtype=torch.float32).eval()
    kwargs = {}
    if vision and side:
        vc = cfg.vision_config
        g = side // vc.patch_size
        n_img = (g // vc.spatial_merge_size) ** 2
        ids = torch.randint(0, cfg.image_token_id, (batch, plen))
        ids[:, 0] = cfg.vision_start_token_id
        ids[:, 1:1 + n_img] = cfg.image_token_id
        ids[:, 1 + n_img] = cfg.vision_end_token_id
        kwargs["pixel_values"] = torch.rand(batch * g * g, 3 * vc.temporal_patch_size * vc.patch_size ** 2) * 2 - 1
        kwargs["image_grid_thw"] = torch.tensor([[1, g, g]] * batch)
        kwargs["mm_token_type_ids"] = (ids == cfg.image_token_id).long()
    else:
        ids = torch.randint(0, cfg.vocab_size, (batch, plen))
    gen = dict(do_sample=True, temperature=1.0, top_k=0, top_p=1.0, max_new_tokens=new, min_new_tokens=new,
               eos_token_id=None, pad_token_id=0)
    with torch.no_grad():
        t0 = time.perf_counter()
        out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), **kwargs, **gen)
        dt = time.perf_counter() - t0
    n = (out.shape[1] - plen) * batch
    print(json.dumps({"impl": "transformers", "config": path, "batch": batch, "prompt": plen, "new": new,
                      "generated": n, "seconds": round(dt, 4), "tokens_per_s": round(n / dt, 1)}))


if __name__ == "__main__":
    main()
