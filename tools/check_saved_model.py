#!/usr/bin/env python3
"""Check that models written by mmupt load in transformers (and therefore in vLLM, which reads the
same files): for each fixture model, `mmupt convert` re-saves it, transformers loads the copy, and
its parameters and logits must equal those of the original directory.

usage (from the repository root, after building): python3 tools/check_saved_model.py [build/mmupt]
Not part of CI (it needs torch and transformers, tools/requirements.txt).
"""
import os
import subprocess
import sys
import tempfile

import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoModelForImageTextToText

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "models")


def load(path, vision):
    auto = AutoModelForImageTextToText if vision else AutoModelForCausalLM
    return auto.from_pretrained(path, dtype=torch.float32).eval()


def main():
    mmupt = sys.argv[1] if len(sys.argv) > 1 else "build/mmupt"
    failed = 0
    for name in ("qwen2_5_vl", "qwen2_vl", "qwen2"):
        src = os.path.join(FIXTURES, name)
        vision = name != "qwen2"
        with tempfile.TemporaryDirectory() as out:
            subprocess.run([mmupt, "convert", "--model", src, "--out", out, "--shard-mb", "0.2"], check=True)
            a, b = load(src, vision), load(out, vision)
            same_params = all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))
            exp = load_file(os.path.join(src, "expected.safetensors"))
            kwargs = {k: exp[k] for k in ("input_ids", "attention_mask") if k in exp}
            if vision:
                kwargs.update({k: exp[k] for k in ("pixel_values", "image_grid_thw", "mm_token_type_ids")})
            with torch.no_grad():
                same_logits = torch.equal(a(**kwargs).logits, b(**kwargs).logits)
            sharded = os.path.exists(os.path.join(out, "model.safetensors.index.json"))
            ok = same_params and same_logits
            failed += not ok
            print(f"{name}: {'ok' if ok else 'FAILED'} (parameters equal: {same_params}, logits equal: "
                  f"{same_logits}, sharded: {sharded})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
