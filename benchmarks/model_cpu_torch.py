#!/usr/bin/env python3
"""PyTorch/transformers twin of benchmarks/model_cpu.c: the same config, batch shape, image layout,
loss and step (forward + backward), timed the same way (one warm-up, median of ITERS).

usage: model_cpu_torch.py [--device cuda] [--dtype fp32|bf16] CONFIG.json BATCH SEQ ITERS [IMAGE_SIDE]
       (threads: OMP_NUM_THREADS)
"""
import json
import statistics
import sys
import time

import torch

from hf_baseline import pop_device_args, random_model, synthetic_batch


def main():
    device, dtype = pop_device_args(sys.argv)
    path, batch, seq, iters = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    side = int(sys.argv[5]) if len(sys.argv) > 5 else 0
    cfg, model, vision = random_model(path, device, dtype)
    model.train()
    n_params = sum(p.numel() for p in model.parameters())
    ids, kwargs = synthetic_batch(cfg, vision, batch, seq, side)
    ids = ids.to(device)
    kwargs = {k: (v.to(device, dtype) if v.is_floating_point() else v.to(device)) for k, v in kwargs.items()}
    times = []
    for it in range(iters + 1):
        t0 = time.perf_counter()
        model.zero_grad(set_to_none=True)
        out = model(input_ids=ids, labels=ids, **kwargs)
        out.loss.backward()
        if device != "cpu":
            torch.cuda.synchronize()
        if it > 0:
            times.append(time.perf_counter() - t0)
    step = statistics.median(times)
    print(json.dumps({"impl": "pytorch", "torch": torch.__version__, "device": device,
                      "dtype": str(dtype).split(".")[-1], "config": path, "params": n_params,
                      "batch": batch, "seq": seq, "images": batch if kwargs else 0, "step_s": round(step, 6),
                      "tokens_per_s": round(batch * seq / step, 1), "loss": round(out.loss.item(), 6)}))


if __name__ == "__main__":
    main()
