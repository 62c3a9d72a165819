#!/usr/bin/env python3
"""A tiny safetensors file written by the Hugging Face `safetensors` library itself, so the C reader
(src/safetensors) is checked against the real format, not against our own writer.

Writes tests/fixtures/safetensors/hf_small.safetensors (< 2 KB): one tensor of every dtype mmupt
reads, a 0-dim scalar, an empty tensor, a UTF-8 name and
__metadata__ {"format": "pt"} as transformers writes it. The values are simple formulas that
tests/safetensors/test_safetensors.c repeats in C; change both together.

  python3 tools/make_safetensors_fixture.py [--out FILE]

The output is deterministic (safetensors 0.8.0 made the committed file): the C test also checks that
mmupt's writer, given the same tensors in the same order, produces the identical bytes.
"""
import argparse
import os

import safetensors
import safetensors.torch
import torch


def tensors():
    f16_special = [0.0, -0.0, 1.0, -2.5, 65504.0, 2.0 ** -24, 2.0 ** -14, float("inf"), float("-inf"), float("nan")]
    bf16_special = [0.0, -0.0, 1.0, -2.5, 3.3895313892515355e38, 2.0 ** -133, 2.0 ** -126, float("inf"),
                    float("-inf"), float("nan")]
    return {
        "f32": torch.arange(6, dtype=torch.float32).reshape(2, 3) * 0.5 - 1.0,          # -1.0 .. 1.5
        "f64": torch.tensor([[1.0 / 3.0], [-1e300]], dtype=torch.float64),
        "f16": torch.tensor(f16_special, dtype=torch.float16),
        "bf16": torch.tensor(bf16_special, dtype=torch.bfloat16),
        "i64": torch.tensor([-(2 ** 63), 2 ** 63 - 1, 0, -1], dtype=torch.int64),
        "i32": torch.tensor([-(2 ** 31), 2 ** 31 - 1, 7], dtype=torch.int32),
        "i16": torch.tensor([-32768, 32767], dtype=torch.int16),
        "i8": torch.tensor([-128, 127, -1], dtype=torch.int8),
        "u8": torch.tensor([0, 255, 128], dtype=torch.uint8),
        "bool": torch.tensor([True, False, True], dtype=torch.bool),
        "scalar": torch.tensor(42.0, dtype=torch.float32),                               # shape []
        "empty": torch.zeros((3, 0), dtype=torch.float32),                                # numel 0
        "model.layers.0.self_attn.q_proj.weight": torch.arange(4, dtype=torch.float32).reshape(2, 2).to(torch.bfloat16),
        "h\u00e9llo": torch.tensor([7], dtype=torch.int32),                                 # a UTF-8 name
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--out", default=os.path.join(here, "..", "tests", "fixtures", "safetensors", "hf_small.safetensors"))
    args = ap.parse_args()
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    # One metadata key only: the library keeps metadata in a hash map, so with several keys their
    # order (and so the file's bytes) would change from run to run.
    safetensors.torch.save_file(tensors(), args.out, metadata={"format": "pt"})
    print(f"{args.out}: {os.path.getsize(args.out)} bytes")


if __name__ == "__main__":
    main()
