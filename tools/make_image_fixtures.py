#!/usr/bin/env python3
"""Image fixtures for src/image: small PNG/JPEG files and what PIL and transformers make of them.

Writes tests/fixtures/images/:
  NAME.png / NAME.jpg      the image (Pillow-encoded, or written chunk by chunk below for the PNG
                           variants Pillow cannot write: 1/2/4/16-bit, Adam7 interlace, odd palettes)
  NAME.safetensors         rgb           U8  [H, W, 3]   Image.open(f).convert("RGB")
                           resized       U8  [h, w, 3]   the PIL backend's bicubic resize (only when
                                                         smart_resize changes the size)
                           image_grid_thw I64 [1, 3]
                           pixel_values  F32 [N, 1176]   (only for a few images, to stay small)
                           metadata: image file name, min_pixels, max_pixels, PIL mode, versions
  resize_cases.safetensors in_K / out_K U8 pairs: PIL Image.resize(BICUBIC) on random small images,
                           for scale factors the processor cases do not reach (1:16, 8:1, 1 pixel)

The reference is transformers' Qwen2VLImageProcessorPil (what Qwen2VLImageProcessor falls back to
without torchvision), with min_pixels = 28*28 and max_pixels = 56*56 so every array stays small.

  python3 tools/make_image_fixtures.py [--out DIR]

Deterministic (fixed seeds, zlib level 9): rerun and `git diff` shows whether anything changed.
Made with Pillow 13.0.0 (libjpeg-turbo 3.2.0), transformers 5.17.0, numpy 2.4, safetensors 0.8.
"""
import argparse
import io
import json
import os
import struct
import warnings
import zlib

import numpy as np
import PIL
import transformers
from PIL import Image, features
from safetensors.numpy import save_file
from transformers.image_utils import SizeDict
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil, smart_resize

MIN_PIXELS = 28 * 28
MAX_PIXELS = 56 * 56


# ---------------------------------------------------------------- pictures
def picture(h, w, channels, seed, noise=24):
    """Gradients, a sine pattern, hard black/white edges (bicubic overshoot must clip) and noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    out = []
    for c in range(channels):
        v = 255 * (0.5 + 0.5 * np.sin((x * (c + 1) * 0.37 + y * 0.21 * (3 - c)) + seed))
        v = 0.6 * v + 0.4 * 255 * ((x + 2 * y + 17 * c) % max(w, 2)) / max(w, 2)
        v += rng.normal(0, noise, size=(h, w))
        out.append(v)
    a = np.stack(out, -1)
    a[h // 3: h // 3 + max(1, h // 5), w // 4: w // 4 + max(1, w // 3)] = 255  # white block
    a[h // 2: h // 2 + max(1, h // 6), w // 2: w // 2 + max(1, w // 4)] = 0    # black block
    return np.clip(np.rint(a), 0, 255).astype(np.uint8)


# ---------------------------------------------------------------- a raw PNG writer
def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def pack_row(samples, depth):
    """One scanline of samples (ints) at 1/2/4/8/16 bits, MSB first, as PNG stores them."""
    if depth == 16:
        return b"".join(struct.pack(">H", int(v)) for v in samples)
    if depth == 8:
        return bytes(int(v) for v in samples)
    per = 8 // depth
    out = bytearray()
    for i in range(0, len(samples), per):
        byte = 0
        for j in range(per):
            v = int(samples[i + j]) if i + j < len(samples) else 0
            byte |= v << (8 - depth * (j + 1))
        out.append(byte)
    return bytes(out)


# Adam7 passes as (x0, y0, dx, dy).
ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]


def png_bytes(a, depth, color_type, interlace=False, extra=b""):
    """a: [H, W, C] samples. Filter type 0 on every row; extra chunks go before IDAT."""
    h, w, _ = a.shape
    raw = bytearray()
    passes = ADAM7 if interlace else [(0, 0, 1, 1)]
    for x0, y0, dx, dy in passes:
        sub = a[y0::dy, x0::dx]
        if sub.shape[0] == 0 or sub.shape[1] == 0:
            continue
        for row in sub:
            raw += b"\0" + pack_row(row.reshape(-1), depth)
    ihdr = struct.pack(">IIBBBBB", w, h, depth, color_type, 0, 0, 1 if interlace else 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + extra + chunk(b"IDAT", zlib.compress(bytes(raw), 9)) +
            chunk(b"IEND", b""))


def pil_bytes(a, mode, fmt, **kw):
    """Encode a [H, W, C] array with Pillow (C = 1 for "L")."""
    im = Image.fromarray(a[..., 0] if mode == "L" else a, mode)
    b = io.BytesIO()
    im.save(b, fmt, **kw)
    return b.getvalue()


def palette_png(seed):
    rgb = picture(33, 45, 3, seed)
    im = Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE, colors=200)
    b = io.BytesIO()
    im.save(b, "PNG", optimize=False)
    return b.getvalue()


def cases():
    """(name, extension, bytes, keep pixel_values)."""
    rng = np.random.default_rng(7)
    pal4 = bytes(rng.integers(0, 256, 16 * 3, dtype=np.uint8))
    idx4 = rng.integers(0, 16, (20, 30, 1))
    pal3 = bytes([200, 10, 10, 10, 200, 10, 10, 10, 200])
    idx_oob = rng.integers(0, 6, (9, 12, 1))  # indices 3..5 are past the 3-entry palette
    grey16 = rng.integers(0, 700, (27, 33, 1))  # many values above 255: PIL clips them
    rgb16 = (picture(24, 40, 3, 8).astype(np.int64) * 257 + rng.integers(0, 257, (24, 40, 3))).clip(0, 65535)
    rgba16 = rng.integers(0, 65536, (19, 25, 4))
    return [
        ("png_rgb_56x56", "png", pil_bytes(picture(56, 56, 3, 1), "RGB", "PNG"), True),
        ("png_grey_28x56", "png", pil_bytes(picture(56, 28, 1, 2), "L", "PNG"), False),
        ("png_grey_37x29", "png", pil_bytes(picture(29, 37, 1, 3), "L", "PNG"), False),
        ("png_grey_alpha_31x23", "png", pil_bytes(picture(23, 31, 2, 4), "LA", "PNG"), False),
        ("png_palette_45x33", "png", palette_png(5), False),
        ("png_palette4_trns_30x20", "png",
         png_bytes(idx4, 4, 3, extra=chunk(b"PLTE", pal4) + chunk(b"tRNS", bytes([0, 128, 255, 7]))), False),
        ("png_palette_oob_12x9", "png", png_bytes(idx_oob, 8, 3, extra=chunk(b"PLTE", pal3)), False),
        ("png_rgba_28x84", "png", pil_bytes(picture(84, 28, 4, 6), "RGBA", "PNG"), False),
        ("png_grey16_33x27", "png", png_bytes(grey16, 16, 0), False),
        ("png_rgb16_40x24", "png", png_bytes(rgb16, 16, 2), False),
        ("png_rgba16_interlaced_25x19", "png", png_bytes(rgba16, 16, 6, interlace=True), False),
        ("png_rgb_interlaced_35x41", "png", png_bytes(picture(41, 35, 3, 9), 8, 2, interlace=True), False),
        ("png_grey1_interlaced_23x17", "png", png_bytes(rng.integers(0, 2, (17, 23, 1)), 1, 0, interlace=True), False),
        ("png_grey2_17x11", "png", png_bytes(rng.integers(0, 4, (11, 17, 1)), 2, 0), False),
        ("png_grey4_trns_19x13", "png",
         png_bytes(rng.integers(0, 16, (13, 19, 1)), 4, 0, extra=chunk(b"tRNS", struct.pack(">H", 3))), False),
        ("png_1x1", "png", pil_bytes(np.array([[[200, 30, 90]]], np.uint8), "RGB", "PNG"), True),
        ("png_wide_10x200", "png", pil_bytes(picture(10, 200, 1, 10), "L", "PNG"), False),
        ("png_down_84x63", "png", pil_bytes(picture(63, 84, 3, 11, noise=60), "RGB", "PNG"), True),
        ("png_up_13x9", "png", pil_bytes(picture(9, 13, 3, 12), "RGB", "PNG"), False),
        ("jpg_rgb_q95_45x38", "jpg", pil_bytes(picture(38, 45, 3, 13), "RGB", "JPEG", quality=95), False),
        ("jpg_rgb_q50_444_40x30", "jpg",
         pil_bytes(picture(30, 40, 3, 14), "RGB", "JPEG", quality=50, subsampling=0), False),
        ("jpg_rgb_q75_422_33x17", "jpg",
         pil_bytes(picture(17, 33, 3, 15), "RGB", "JPEG", quality=75, subsampling=1), False),
        ("jpg_grey_36x44", "jpg", pil_bytes(picture(44, 36, 1, 16), "L", "JPEG", quality=90), False),
        ("jpg_cmyk_32x24", "jpg", pil_bytes(picture(24, 32, 4, 17), "CMYK", "JPEG", quality=90), False),
        ("jpg_progressive_48x40", "jpg",
         pil_bytes(picture(40, 48, 3, 18), "RGB", "JPEG", quality=85, progressive=True), False),
        ("jpg_rgb_56x56", "jpg", pil_bytes(picture(56, 56, 3, 19), "RGB", "JPEG", quality=90), False),
        # 70/28 = 2.5 rounds to 2 (half to even): 56x56, a downscale in width, an upscale in height.
        ("jpg_tie_70x50", "jpg", pil_bytes(picture(50, 70, 3, 20), "RGB", "JPEG", quality=85), False),
    ]


# ---------------------------------------------------------------- output
def save(tensors, path, metadata):
    """safetensors' save_file, then the metadata keys sorted in place: the library writes them in
    hash-map order, which changes from run to run, and the fixtures should not."""
    save_file(tensors, path, metadata=metadata)
    with open(path, "r+b") as f:
        n = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(n))
        header["__metadata__"] = dict(sorted(header["__metadata__"].items()))
        text = json.dumps(header, separators=(",", ":")).encode()
        assert len(text) <= n, "header grew"
        f.seek(8)
        f.write(text + b" " * (n - len(text)))


# ---------------------------------------------------------------- references
def reference(data, keep_pv, proc):
    im = Image.open(io.BytesIO(data))
    mode = im.mode
    rgb_im = im.convert("RGB")
    rgb = np.array(rgb_im)
    h, w = rgb.shape[:2]
    rh, rw = smart_resize(h, w, factor=28, min_pixels=MIN_PIXELS, max_pixels=MAX_PIXELS)
    t = {"rgb": rgb}
    if (rh, rw) != (h, w):
        # The processor's own resize on the array its pipeline builds (CHW uint8).
        chw = proc.process_image(rgb_im, do_convert_rgb=True)
        out = proc.resize(chw, size=SizeDict(shortest_edge=MIN_PIXELS, longest_edge=MAX_PIXELS),
                          resample=proc.resample, factor=28)
        t["resized"] = np.ascontiguousarray(np.transpose(out, (1, 2, 0))).astype(np.uint8)
        assert t["resized"].shape == (rh, rw, 3)
    feat = proc(images=rgb_im, return_tensors="np")
    t["image_grid_thw"] = np.asarray(feat["image_grid_thw"], dtype=np.int64)
    assert tuple(t["image_grid_thw"][0]) == (1, rh // 14, rw // 14)
    if keep_pv:
        t["pixel_values"] = np.ascontiguousarray(feat["pixel_values"], dtype=np.float32)
    return t, mode


def resize_cases():
    rng = np.random.default_rng(99)
    sizes = [((16, 16), (1, 1)), ((16, 12), (1, 3)), ((2, 3), (16, 14)), ((1, 1), (5, 7)), ((15, 9), (4, 16)),
             ((13, 16), (13, 5)), ((7, 16), (16, 7)), ((16, 16), (3, 3)), ((5, 5), (16, 16)), ((9, 14), (10, 15)),
             ((16, 11), (12, 11)), ((3, 16), (3, 2))]
    t = {}
    for k, ((ih, iw), (oh, ow)) in enumerate(sizes):
        a = rng.integers(0, 256, (ih, iw, 3), dtype=np.uint8)
        if k % 3 == 0:
            a = np.where(a > 127, 255, 0).astype(np.uint8)  # hard edges: clipping at both ends
        t[f"in_{k}"] = a
        t[f"out_{k}"] = np.array(Image.fromarray(a).resize((ow, oh), Image.Resampling.BICUBIC))
    return t


def main():
    # PIL warns that palette+tRNS images 'should be converted to RGBA'; convert('RGB') is what we test.
    warnings.filterwarnings("ignore", message="Palette images with Transparency")
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="tests/fixtures/images")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    proc = Qwen2VLImageProcessorPil(min_pixels=MIN_PIXELS, max_pixels=MAX_PIXELS)
    versions = {"transformers": transformers.__version__, "pillow": PIL.__version__,
                "libjpeg_turbo": str(features.version("libjpeg_turbo"))}
    total = 0
    for name, ext, data, keep_pv in cases():
        fname = f"{name}.{ext}"
        with open(os.path.join(args.out, fname), "wb") as f:
            f.write(data)
        tensors, mode = reference(data, keep_pv, proc)
        meta = {"image": fname, "min_pixels": str(MIN_PIXELS), "max_pixels": str(MAX_PIXELS), "pil_mode": mode,
                **versions}
        path = os.path.join(args.out, f"{name}.safetensors")
        save(tensors, path, meta)
        total += len(data) + os.path.getsize(path)
        print(f"{fname:34s} {mode:5s} {tensors['rgb'].shape[1]}x{tensors['rgb'].shape[0]} -> grid "
              f"{tensors['image_grid_thw'][0].tolist()}{' +pixel_values' if keep_pv else ''}")
    path = os.path.join(args.out, "resize_cases.safetensors")
    save(resize_cases(), path, {"note": "PIL Image.resize(BICUBIC)", **versions})
    total += os.path.getsize(path)
    print(f"total {total} bytes")


if __name__ == "__main__":
    main()
