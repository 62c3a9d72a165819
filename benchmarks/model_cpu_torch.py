#!/usr/bin/env python3
"""PyTorch/transformers twin of benchmarks/model_cpu.c: the same config, batch shape, image layout,
loss and step (forward + backward), timed the same way (one warm-up, median of ITERS).

usage: model_cpu_torch.py CONFIG.json BATCH SEQ ITERS [IMAGE_SIDE]   (threads: OMP_NUM_THREADS)
"""
import json
import os
import shutil
import statistics
import sys
import tempfile
import time

import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForImageTextToText


def main():
    path, batch, seq, iters = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    side = int(sys.argv[5]) if len(sys.argv) > 5 else 0
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", os.cpu_count())))
    torch.manual_seed(42)
    tmp = tempfile.mkdtemp()
    shutil.copy(path, os.path.join(tmp, "config.json"))
    cfg = AutoConfig.from_pretrained(tmp)
    shutil.rmtree(tmp)
    raw = json.load(open(path))
    vision = raw["model_type"] != "qwen2"
    auto = AutoModelForImageTextToText if vision else AutoModelForCausalLM
    model = auto.from_config(cfg, dtype=torch.float32).train()
    n_params = sum(p.numel() for p in model.parameters())

    kwargs = {}
    if vision and side:
        vc = cfg.vision_config
        g = side // vc.patch_size
        n_img = (g // vc.spatial_merge_size) ** 2
        text_hi = min(cfg.image_token_id, cfg.vision_start_token_id)
        ids = torch.randint(0, text_hi, (batch, seq))
        ids[:, 0] = cfg.vision_start_token_id
        ids[:, 1:1 + n_img] = cfg.image_token_id
        ids[:, 1 + n_img] = cfg.vision_end_token_id
        patch_dim = 3 * vc.temporal_patch_size * vc.patch_size ** 2
        kwargs["pixel_values"] = torch.rand(batch * g * g, patch_dim) * 2 - 1
        kwargs["image_grid_thw"] = torch.tensor([[1, g, g]] * batch)
        kwargs["mm_token_type_ids"] = (ids == cfg.image_token_id).long()
    else:
        ids = torch.randint(0, cfg.vocab_size if not vision else cfg.text_config.vocab_size, (batch, seq))

    times = []
    for it in range(iters + 1):
        t0 = time.perf_counter()
        model.zero_grad(set_to_none=True)
        out = model(input_ids=ids, labels=ids, **kwargs)
        out.loss.backward()
        if it > 0:
            times.append(time.perf_counter() - t0)
    step = statistics.median(times)
    print(json.dumps({"impl": "pytorch", "torch": torch.__version__, "config": path, "params": n_params,
                      "batch": batch, "seq": seq, "images": batch if kwargs else 0, "step_s": round(step, 6),
                      "tokens_per_s": round(batch * seq / step, 1), "loss": round(out.loss.item(), 6)}))


if __name__ == "__main__":
    main()
