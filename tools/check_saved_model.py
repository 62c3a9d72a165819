#!/usr/bin/env python3
"""Check that models written by mmupt load in transformers (and therefore in vLLM, which reads the
same files): for each fixture model, `mmupt convert` re-saves it, transformers loads the copy, and
its parameters and logits must equal those of the original directory.

usage (from the repository root, after building): python3 tools/check_saved_model.py [build/mmupt]

With --export it checks `mmupt export` instead: a 2-step training run of configs/tiny.yaml writes a
checkpoint, `mmupt export` turns it into a Hugging Face directory (sharded), transformers loads it, and
every parameter must equal the checkpoint's weights (read with h5py from model.h5) bit for bit, and
a forward pass must run.

    python3 tools/check_saved_model.py --export [build/mmupt]

Not part of CI (it needs torch, transformers and h5py, tools/requirements.txt).
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


def check_export(mmupt):
    """Train 2 steps, export the checkpoint, load it with transformers, compare with model.h5."""
    import h5py
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    with tempfile.TemporaryDirectory() as tmp:
        run, out = os.path.join(tmp, "run"), os.path.join(tmp, "hf")
        env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
                   OMPI_MCA_rmaps_base_oversubscribe="1")
        subprocess.run(["mpirun", "-q", "-np", "3", os.path.abspath(mmupt), "train", "configs/tiny.yaml",
                        f"run.output_dir={run}"], check=True, cwd=root, env=env, capture_output=True)
        subprocess.run([mmupt, "export", os.path.join(run, "checkpoints"), out, "--shard-mb", "0.2"], check=True)
        latest = open(os.path.join(run, "checkpoints", "latest")).read().strip()
        model = load(out, True)
        with h5py.File(os.path.join(run, "checkpoints", latest, "model.h5"), "r") as f:
            saved = {k: torch.from_numpy(f["weights"][k][()]) for k in f["weights"]}
        state = model.state_dict()
        # transformers 5 names the language model model.language_model.* and the vision tower
        # model.visual.*; the checkpoint keeps the legacy names model.* and visual.*.
        def legacy(k):
            k = k.replace("model.language_model.", "model.").replace("model.visual.", "visual.")
            # a tied head is the embedding (transformers lists it, the checkpoint stores it once)
            return "model.embed_tokens.weight" if k == "lm_head.weight" and k not in saved else k
        mismatched = [k for k, v in state.items() if legacy(k) in saved and not torch.equal(v, saved[legacy(k)])]
        missing = [k for k in state if legacy(k) not in saved]
        ids = torch.tensor([[1, 2, 3, 4, 5]])
        with torch.no_grad():
            logits = model(input_ids=ids).logits
        sharded = os.path.exists(os.path.join(out, "model.safetensors.index.json"))
        ok = not mismatched and not missing and bool(torch.isfinite(logits).all())
        print(f"export of {latest}: {'ok' if ok else 'FAILED'} ({len(state)} tensors, {len(mismatched)} differ, "
              f"{len(missing)} missing from the checkpoint, sharded: {sharded}, forward logits finite: "
              f"{bool(torch.isfinite(logits).all())})")
        return 0 if ok else 1


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--export":
        return check_export(sys.argv[2] if len(sys.argv) > 2 else "build/mmupt")
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
