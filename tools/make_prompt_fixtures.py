#!/usr/bin/env python3
"""Prompt fixtures: what transformers' Qwen2.5-VL processor makes of MM-UPT prompts.

For a few (problem, images) items it builds the chat messages exactly as EasyR1/MM-UPT does (the problem
split on "<image>", an image part at each marker, text = problem + " " + format_prompt.strip()), renders
them with the Qwen2-VL chat template, runs the processor (tokenizer = the shared Qwen tokenizer.json,
image processor = Qwen2VLImageProcessor, which without torchvision is the PIL backend) and writes
tests/fixtures/prompt/expected.safetensors:
  item.K.text        U8   the rendered prompt text (UTF-8 bytes), before image-pad expansion
  item.K.input_ids   I64  [n] the processor's ids (image pads expanded)
  item.K.grid        I64  [images, 3]
Images are the PNG files in tests/fixtures/prompt/ (written here). Requires the shared tokenizer at
../shared/assets/qwen-tokenizer/tokenizer.json (the project root's sibling).

usage: python3 tools/make_prompt_fixtures.py
"""
import json
import os
import sys

import numpy as np
import torch
from PIL import Image
from safetensors.torch import save_file
from transformers import PreTrainedTokenizerFast, Qwen2_5_VLProcessor
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
OUT = os.path.join(ROOT, "tests", "fixtures", "prompt")
TOKENIZER = os.path.join(ROOT, "..", "shared", "assets", "qwen-tokenizer", "tokenizer.json")

# The Qwen2-VL / Qwen2.5-VL chat template (the model repositories' chat_template).
CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}{% if add_vision_id %}Picture {{ image_count.value }}: {% endif %}"
    "<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}{% set video_count.value = video_count.value + 1 %}"
    "{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

FORMAT_PROMPT = "\\nPlease reason step by step, and put your final answer within \\boxed{}."

ITEMS = [
    ("<image>What is the area of the triangle shown? Choices: (A) 6 (B) 8 (C) 12", [(56, 84)]),
    ("In the figure <image> the angle ABC is 40°. Find x.", [(112, 56)]),
    ("Compare <image> and <image>: which bar is taller?", [(56, 56), (84, 112)]),
    ("What is 3 + 4?  ", []),
    ("<image>\n求三角形的面积。 $\\frac{1}{2}ab\\sin C$", [(84, 84)]),
]


class ImageOnlyProcessor(Qwen2_5_VLProcessor):
    """The Qwen2.5-VL processor without its video processor, which needs torchvision (not installed
    here); these prompts have no video, so nothing else changes."""

    @classmethod
    def get_attributes(cls):
        return ["image_processor", "tokenizer"]

    video_processor = None


def messages(problem, n_images):
    text = problem + " " + FORMAT_PROMPT.strip()
    content = []
    for i, part in enumerate(text.split("<image>")):
        if i:
            content.append({"type": "image"})
        if part:
            content.append({"type": "text", "text": part})
    return [{"role": "user", "content": content}]


def image(k, w, h):
    y, x = np.mgrid[0:h, 0:w]
    rgb = np.stack([(x * 7 + k * 40) % 256, (y * 5 + k * 90) % 256, ((x + y) * 3) % 256], -1).astype(np.uint8)
    return Image.fromarray(rgb, "RGB")


def main():
    if not os.path.exists(TOKENIZER):
        print(f"missing {TOKENIZER}", file=sys.stderr)
        return 1
    os.makedirs(OUT, exist_ok=True)
    tok = PreTrainedTokenizerFast(tokenizer_file=TOKENIZER)
    ip = Qwen2VLImageProcessorPil(min_pixels=28 * 28, max_pixels=28 * 28 * 64)
    proc = ImageOnlyProcessor(image_processor=ip, tokenizer=tok, chat_template=CHAT_TEMPLATE)
    tensors, n = {}, 0
    for k, (problem, sizes) in enumerate(ITEMS):
        images = []
        for j, (w, h) in enumerate(sizes):
            im = image(k * 4 + j, w, h)
            im.save(os.path.join(OUT, f"item{k}_{j}.png"))
            images.append(im)
        text = proc.apply_chat_template(messages(problem, len(images)), tokenize=False, add_generation_prompt=True)
        out = proc(text=[text], images=images or None, return_tensors="pt")
        tensors[f"item.{k}.text"] = torch.tensor(list(text.encode("utf-8")), dtype=torch.uint8)
        tensors[f"item.{k}.input_ids"] = out["input_ids"][0].to(torch.int64)
        if images:
            tensors[f"item.{k}.grid"] = out["image_grid_thw"].to(torch.int64)
        n += 1
    meta = {"items": json.dumps([p for p, _ in ITEMS]), "format_prompt": FORMAT_PROMPT,
            "image_sizes": json.dumps([s for _, s in ITEMS]), "min_pixels": str(28 * 28),
            "max_pixels": str(28 * 28 * 64), "script": "tools/make_prompt_fixtures.py"}
    save_file(tensors, os.path.join(OUT, "expected.safetensors"), metadata=meta)
    print(f"wrote {n} items to {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
