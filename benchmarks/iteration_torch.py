#!/usr/bin/env python3
"""PyTorch/transformers twin of benchmarks/iteration.c: one whole GRPO iteration - generate G samples
for each of P random prompts (temperature 1, NEW tokens, no early stop), majority vote of the samples'
last tokens and group advantages, then per micro-batch of MB sequences the reference model's
log-probs, the policy forward, the GRPO loss (clip 0.2/0.3, low_var_kl with coefficient 0.01,
token mean) and backward, then AdamW (lr 1e-6, weight decay 0.01) after clipping the norm to 1.
Prints one JSON line with the seconds of each phase of the second of two iterations: the first, of
the same shapes, is a warm-up (as in iteration.c).

usage: iteration_torch.py [--device cuda] [--dtype fp32|bf16] CONFIG.json P G PROMPT_LEN NEW MB
"""
import copy
import json
import sys
import time

import torch

from hf_baseline import pop_device_args, random_model


def sync(device):
    if device != "cpu":
        torch.cuda.synchronize()


def iteration(device, model, ref, opt, prompts, P, G, S, NEW, MB):
    """One whole iteration with NEW new tokens per sample; the phases' end times and the norm."""
    sync(device)
    t0 = time.perf_counter()
    model.eval()
    with torch.no_grad():
        seqs = model.generate(input_ids=prompts, attention_mask=torch.ones_like(prompts), do_sample=True,
                              temperature=1.0, top_k=0, top_p=1.0, max_new_tokens=NEW, min_new_tokens=NEW,
                              num_return_sequences=G, eos_token_id=None, pad_token_id=0)
    sync(device)
    t1 = time.perf_counter()
    last = seqs[:, -1].view(P, G)
    votes = (last.unsqueeze(2) == last.unsqueeze(1)).sum(2)          # [P, G]: how many share my answer
    winner = last.gather(1, votes.argmax(1, keepdim=True))
    rewards = (last == winner).float()
    adv = ((rewards - rewards.mean(1, keepdim=True)) / (rewards.std(1, keepdim=True) + 1e-6)).view(-1)
    sync(device)
    t2 = time.perf_counter()
    model.train()
    opt.zero_grad(set_to_none=True)
    n = seqs.shape[0]
    n_mb = (n + MB - 1) // MB
    for f in range(0, n, MB):
        x = seqs[f:f + MB]
        tgt = x[:, S:]
        with torch.no_grad():
            ref_lp = torch.log_softmax(ref(input_ids=x).logits[:, S - 1:-1].float(), -1).gather(2, tgt.unsqueeze(2)).squeeze(2)
        lp = torch.log_softmax(model(input_ids=x).logits[:, S - 1:-1].float(), -1).gather(2, tgt.unsqueeze(2)).squeeze(2)
        ratio = torch.exp(lp - lp.detach())
        a = adv[f:f + MB].unsqueeze(1)
        pg = torch.maximum(-a * ratio, -a * ratio.clamp(1 - 0.2, 1 + 0.3))
        d = (ref_lp - lp).clamp(-10, 10)
        kl = (torch.exp(d) - d - 1).clamp(-10, 10)
        loss = (pg + 0.01 * kl).mean() / n_mb
        loss.backward()
    sync(device)
    t3 = time.perf_counter()
    norm = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    sync(device)
    t4 = time.perf_counter()
    return t0, t1, t2, t3, t4, norm, seqs


def main():
    device, dtype = pop_device_args(sys.argv)
    path = sys.argv[1]
    P, G, S, NEW, MB = (int(x) for x in sys.argv[2:7])
    cfg, model, vision = random_model(path, device, dtype)
    if vision:
        raise SystemExit("iteration_torch.py: text configs only (as the benchmark's prompts)")
    ref = copy.deepcopy(model).eval()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-6, weight_decay=0.01)
    prompts = torch.randint(0, cfg.vocab_size, (P, S), device=device)
    n_params = sum(p.numel() for p in model.parameters())

    iteration(device, model, ref, opt, prompts, P, G, S, NEW, MB)  # the warm-up, of the same shapes
    t0, t1, t2, t3, t4, norm, seqs = iteration(device, model, ref, opt, prompts, P, G, S, NEW, MB)
    print(json.dumps({"impl": "pytorch", "device": device, "dtype": str(dtype).split(".")[-1], "config": path,
                      "params": n_params, "prompts": P, "G": G, "prompt": S, "new": NEW, "micro_batch": MB,
                      "generated": int(seqs.shape[0] * (seqs.shape[1] - S)), "rollout_s": round(t1 - t0, 4),
                      "reward_s": round(t2 - t1, 4), "learn_s": round(t3 - t2, 4), "optim_s": round(t4 - t3, 4),
                      "iteration_s": round(t4 - t0, 4), "grad_norm": float(norm)}))


if __name__ == "__main__":
    main()
