#!/usr/bin/env python3
"""GRPO loss fixtures: the EasyR1 objective (shared/reference/mmupt.md §2.4) written here in PyTorch
from the description, run through autograd on a tiny lm_head, for tests/grpo/test_grpo_parity.c.

Writes tests/fixtures/grpo/CASE.safetensors for two parameter sets:
  easyr1  EasyR1's defaults: clip 0.2/0.3, dual clip 3, low_var_kl (k3) clamped to 10, kl_coef 0.01, tau 0.7
  k1      k1 KL with a large coefficient (so the KL gradient is visible), tau 1.0, dual clip 2.5
Each holds the inputs (hidden [T,H], W [V,H], targets, old/ref log-probs, per-token advantages, mask),
rewards and the advantages derived from them, the current log-probs, the metrics, and the gradients of
the token-mean loss w.r.t. logp, hidden and W, plus the loss and dlogp under seq-mean-token-mean.

Inputs are built so every branch occurs: positive, negative and zero advantages (a group of all-equal
rewards), ratios inside, below and above the clip range and above the dual clip, a clamped KL, and
unscored tokens of both kinds (target -1, and a valid target with mask 0). No ratio lies near a clip
bound, so float rounding cannot flip a branch. Run from the repository root:
  python3 tools/make_grpo_fixtures.py
"""
import math
import os

import torch
from safetensors.torch import save_file

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "grpo")
T, H, V = 37, 24, 53
SEQ_LEN = [14, 12, 11]
# x = logp - old_logp per token, cycled: below, inside, on 0, inside, above the clip range, above the
# dual clip (ratio e^1.5 > 3), far below, inside.
DELTAS = [-0.6, -0.1, 0.0, 0.15, 0.5, 1.5, -1.2, 0.05]
METRICS = ["loss", "pg_loss", "kl", "entropy", "clip_frac", "dual_clip_frac", "ratio_mean", "ratio_min",
           "ratio_max", "n_tokens"]


def advantages(r, G, eps, dr_grpo):
    g = r.view(-1, G)
    d = g - g.mean(dim=1, keepdim=True)
    return (d if dr_grpo else d / (g.std(dim=1, keepdim=True) + eps)).view(-1)  # torch.std: unbiased


def masked_mean(x, mask):
    return (x * mask).sum() / (mask.sum() + 1e-8)


def token_terms(logp, old, ref, adv, p):
    x = logp - old
    ratio = torch.exp(x)
    clipped = torch.exp(torch.clamp(x, math.log(1 - p["clip_low"]), math.log(1 + p["clip_high"])))
    l1, l2 = -adv * ratio, -adv * clipped
    lc = torch.max(l1, l2)
    l3 = -adv * p["clip_dual"]
    pg = torch.where(adv < 0, torch.min(lc, l3), lc)
    if p["kl_penalty"] == 0:  # low_var_kl (k3)
        d = ref - logp
        kl = torch.clamp(torch.exp(d) - d - 1, -p["kl_clamp"], p["kl_clamp"])
    elif p["kl_penalty"] == 1:
        kl = logp - ref
    else:
        kl = torch.zeros_like(logp)
    flags = {"clip": (l1 < l2).float(), "dual": ((lc > l3) & (adv < 0)).float(), "ratio": ratio}
    return pg, kl, flags


def make_case(name, p, seed):
    g = torch.Generator().manual_seed(seed)
    hidden = torch.randn(T, H, generator=g)
    W = torch.randn(V, H, generator=g) * 0.3
    targets = torch.randint(0, V, (T,), generator=g)
    mask = torch.ones(T)
    seq_start, pos = [0], 0
    for n in SEQ_LEN:
        targets[pos] = -1                    # not scored: no target
        mask[pos] = 0.0
        mask[pos + 1] = 0.0                  # not scored: a target, but masked out
        pos += n
        seq_start.append(pos)
    rewards = torch.tensor([1, 0, 0, 1, 1, 1, 1, 1, 0, 1, 0, 0], dtype=torch.float32)
    adv_groups = advantages(rewards, 4, 1e-6, False)
    adv_dr = advantages(rewards, 4, 1e-6, True)
    seq_adv = [adv_groups[0], adv_groups[1], adv_groups[4]]  # positive, negative, zero (all-equal group)
    adv = torch.cat([torch.full((n,), float(a)) for n, a in zip(SEQ_LEN, seq_adv)])

    def logprobs(hid, w):
        logits = (hid @ w.T) / p["tau"]
        lsm = torch.log_softmax(logits, dim=-1)
        logp = lsm.gather(1, targets.clamp(min=0).view(-1, 1)).view(-1)
        ent = -(lsm.exp() * lsm).sum(-1)
        return logp, ent

    with torch.no_grad():
        logp0, _ = logprobs(hidden, W)
        delta = torch.tensor([DELTAS[i % len(DELTAS)] for i in range(T)])
        old = logp0 - delta
        ref = logp0 + 0.3 * torch.randn(T, generator=g)
        ref[5] = logp0[5] + 3.0  # k3 = e^3 - 4 = 16 > 10: clamped
    hidden.requires_grad_(True)
    W.requires_grad_(True)
    logp, ent = logprobs(hidden, W)
    logp.retain_grad()
    pg, kl, flags = token_terms(logp, old, ref, adv, p)
    loss = masked_mean(pg, mask) + p["kl_coef"] * masked_mean(kl, mask)
    loss.backward()
    metrics = [loss.item(), masked_mean(pg, mask).item(), masked_mean(kl, mask).item(),
               masked_mean(ent, mask).item(), masked_mean(flags["clip"], mask).item(),
               masked_mean(flags["dual"], mask).item(), masked_mean(flags["ratio"], mask).item(),
               flags["ratio"][mask > 0].min().item(), flags["ratio"][mask > 0].max().item(), mask.sum().item()]
    assert 0 < metrics[4] < 1 and 0 < metrics[5] < 1, "every clip branch must occur"

    # seq-mean-token-mean: each sequence's token-mean, then the mean over sequences.
    lp2 = logp.detach().clone().requires_grad_(True)
    pg2, kl2, _ = token_terms(lp2, old, ref, adv, p)
    tok = pg2 + p["kl_coef"] * kl2
    seq_loss = torch.stack([masked_mean(tok[a:b], mask[a:b]) for a, b in zip(seq_start, seq_start[1:])]).mean()
    seq_loss.backward()

    params = [p["clip_low"], p["clip_high"], p["clip_dual"], p["kl_penalty"], p["kl_coef"], p["kl_clamp"], p["tau"]]
    tensors = {
        "hidden": hidden.detach(), "W": W.detach(), "targets": targets, "old_logp": old, "ref_logp": ref,
        "adv": adv, "mask": mask, "seq_start": torch.tensor(seq_start), "rewards": rewards,
        "adv_groups": adv_groups, "adv_dr": adv_dr, "logp": logp.detach(), "params": torch.tensor(params, dtype=torch.float64),
        "metrics": torch.tensor(metrics, dtype=torch.float64), "dlogp": logp.grad, "dhidden": hidden.grad,
        "dW": W.grad, "seqmean_loss": torch.tensor([seq_loss.item()], dtype=torch.float64), "seqmean_dlogp": lp2.grad,
    }
    os.makedirs(OUT, exist_ok=True)
    save_file({k: v.contiguous() for k, v in tensors.items()}, os.path.join(OUT, name + ".safetensors"),
              metadata={"metrics": ",".join(METRICS), "params": "clip_low,clip_high,clip_dual,kl_penalty,kl_coef,"
                        "kl_clamp,tau", "torch": torch.__version__})
    print(name, "loss", metrics[0], "clip_frac", metrics[4], "dual_clip_frac", metrics[5])


def main():
    make_case("easyr1", dict(clip_low=0.2, clip_high=0.3, clip_dual=3.0, kl_penalty=0, kl_coef=0.01, kl_clamp=10.0,
                             tau=0.7), seed=1)
    make_case("k1", dict(clip_low=0.2, clip_high=0.3, clip_dual=2.5, kl_penalty=1, kl_coef=0.3, kl_clamp=10.0,
                         tau=1.0), seed=2)


if __name__ == "__main__":
    main()
