#!/usr/bin/env python3
"""transformers twin of benchmarks/rollout.c: generate() with the same config, batch, prompt length,
new tokens (min_new_tokens = max_new_tokens, no eos), sampling at temperature 1 (top_k 0, top_p 1),
threads from OMP_NUM_THREADS; prompts include one image per sequence for vision configs. A short
warm-up generate (at most 16 new tokens) comes before the timed one, as in rollout.c.

usage: rollout_torch.py [--device cuda] [--dtype fp32|bf16] CONFIG.json BATCH PROMPT_LEN NEW [IMAGE_SIDE]
"""
import json
import sys
import time

import torch

from hf_baseline import pop_device_args, random_model, synthetic_batch


def main():
    device, dtype = pop_device_args(sys.argv)
    path, batch, plen, new = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    side = int(sys.argv[5]) if len(sys.argv) > 5 else 0
    cfg, model, vision = random_model(path, device, dtype)
    model.eval()
    ids, kwargs = synthetic_batch(cfg, vision, batch, plen, side)
    ids = ids.to(device)
    kwargs = {k: (v.to(device, dtype) if v.is_floating_point() else v.to(device)) for k, v in kwargs.items()}
    gen = dict(do_sample=True, temperature=1.0, top_k=0, top_p=1.0, max_new_tokens=new, min_new_tokens=new,
               eos_token_id=None, pad_token_id=0)
    with torch.no_grad():
        # A short warm-up generate first (as in rollout.c): one-time costs are not every rollout's.
        model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), **kwargs,
                       **dict(gen, max_new_tokens=min(new, 16), min_new_tokens=min(new, 16)))
        if device != "cpu":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), **kwargs, **gen)
        if device != "cpu":
            torch.cuda.synchronize()
        dt = time.perf_counter() - t0
    n = (out.shape[1] - plen) * batch
    print(json.dumps({"impl": "transformers", "device": device, "dtype": str(dtype).split(".")[-1], "config": path, "batch": batch, "prompt": plen, "new": new,
                      "generated": n, "seconds": round(dt, 4), "tokens_per_s": round(n / dt, 1)}))


if __name__ == "__main__":
    main()
