#!/usr/bin/env python3
"""The same supervised warm start as `mmupt sft`, in PyTorch/transformers: a cross-check for the
quickstart task. Loads a model directory (e.g. one written by `mmupt sft --steps 1 --lr 1e-12`, i.e. the
random init), trains on a split's worked answers (prompt and image tokens unscored, AdamW, warmup +
cosine, clipping 1.0, batch 32) and prints the running loss every 100 steps.

Used on 2026-11-26 to show that a plateau of `mmupt sft` at loss ~0.55 on the colour questions (the
model copies neither the count nor looks at colours) is the model's, not mmupt's: transformers
plateaus at the same loss with the same config and data.

usage: python3 tools/sft_torch_baseline.py MODEL_DIR SPLIT.h5 STEPS
"""
import io, json, math, sys, time
import h5py, numpy as np, torch
from PIL import Image
from tokenizers import Tokenizer
from transformers import Qwen2_5_VLForConditionalGeneration, Qwen2VLImageProcessor
torch.manual_seed(0); torch.set_num_threads(2)
mdir, data, steps = sys.argv[1], sys.argv[2], int(sys.argv[3])
model = Qwen2_5_VLForConditionalGeneration.from_pretrained(mdir, dtype=torch.float32)
tok = Tokenizer.from_file(mdir + "/tokenizer.json")
proc = Qwen2VLImageProcessor(min_pixels=784, max_pixels=7056, patch_size=14, temporal_patch_size=2, merge_size=2)
f = h5py.File(data, "r"); N = len(f["problem"])
pad = tok.token_to_id("<|image_pad|>"); imend = tok.token_to_id("<|im_end|>")
def example(i):
    prob = f["problem"][i].decode().replace("<image>", "")
    img = Image.open(io.BytesIO(bytes(f["images"][f["image_offset"][i]]))).convert("RGB")
    pv = proc(images=[img], return_tensors="pt")
    n_tok = int(pv["image_grid_thw"].prod()) // 4
    text = ("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n<|vision_start|>" +
            "<|image_pad|>" * n_tok + "<|vision_end|>" + prob + "<|im_end|>\n<|im_start|>assistant\n")
    p = tok.encode(text).ids
    t = tok.encode(f["answer"][i].decode()).ids + [imend]
    return p, t, pv
opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.01)
rng = np.random.default_rng(0); t0 = time.time(); B = 32; run = 0
for step in range(steps):
    lr = 3e-3 * min(1, (step + 1) / (0.05 * steps)) * (0.5 * (1 + math.cos(math.pi * step / steps)))
    for g in opt.param_groups: g["lr"] = lr
    idx = rng.integers(0, N, B); total = 0; ntok = 0
    batch = [example(int(i)) for i in idx]
    L = max(len(p) + len(t) for p, t, _ in batch)
    ids = torch.zeros(B, L, dtype=torch.long); att = torch.zeros(B, L, dtype=torch.long); lab = torch.full((B, L), -100)
    for b, (p, t, _) in enumerate(batch):
        s = p + t; ids[b, :len(s)] = torch.tensor(s); att[b, :len(s)] = 1; lab[b, len(p):len(s)] = torch.tensor(t)
    pv = torch.cat([x[2]["pixel_values"] for x in batch]); grid = torch.cat([x[2]["image_grid_thw"] for x in batch])
    out = model(input_ids=ids, attention_mask=att, pixel_values=pv, image_grid_thw=grid)
    logits = out.logits[:, :-1]; tgt = lab[:, 1:]
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), tgt.reshape(-1), ignore_index=-100)
    opt.zero_grad(); loss.backward(); torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0); opt.step()
    run = 0.95 * run + 0.05 * loss.item() if step else loss.item()
    if (step + 1) % 100 == 0: print(f"step {step+1} loss {run:.4f} ({time.time()-t0:.0f}s)", flush=True)
