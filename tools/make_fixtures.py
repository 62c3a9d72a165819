#!/usr/bin/env python3
"""Golden fixtures for mmupt's model code, produced by Hugging Face transformers.

Builds three tiny random models (qwen2_5_vl, qwen2_vl, qwen2), runs a hand-built left-padded batch
of 2 through each on the CPU in fp32, and writes per model into tests/fixtures/models/NAME/:

  config.json, generation_config.json, model.safetensors   as save_pretrained writes them
  expected.safetensors                                     inputs, activations, logits, loss,
                                                           gradients, greedy decode

tests/fixtures/models/README.md lists every tensor. Usage:

  python3 tools/make_fixtures.py [--out DIR] [--check-determinism]

Pinned versions: tools/requirements.txt. The C tests never run this script; they read its output.
"""
import argparse
import filecmp
import json
import os
import shutil
import struct
import sys
import tempfile

import numpy
import safetensors
import safetensors.torch
import torch
import transformers
from transformers import (Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration, Qwen2Config,
                          Qwen2ForCausalLM, Qwen2VLConfig, Qwen2VLForConditionalGeneration)
from transformers.vision_utils import get_vision_window_index

SEED = 1234
IMAGE_ID, VIDEO_ID, VSTART_ID, VEND_ID = 300, 301, 302, 303
BOS_ID, EOS_ID, PAD_ID = 304, 305, 306
VOCAB = 320
TEXT_ID_LIMIT = 300     # random text ids are drawn from [0, 300): never a special id
RESPONSE_LEN = 6        # the last 6 tokens of each sample carry real labels
NEW_TOKENS = 8          # greedy decode length
PIXEL_ROW = 3 * 2 * 14 * 14   # channels * temporal_patch * patch^2 = 1176
MERGE = 2


# ----------------------------------------------------------------------------------------------
# configs

def text_fields(rope_theta, mrope):
    """The decoder shape shared by all three models."""
    fields = dict(vocab_size=VOCAB, hidden_size=64, intermediate_size=88, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, rms_norm_eps=1e-6,
                  max_position_embeddings=1024, rope_theta=rope_theta,
                  bos_token_id=BOS_ID, eos_token_id=EOS_ID, pad_token_id=PAD_ID)
    if mrope:
        fields["rope_scaling"] = {"type": "mrope", "mrope_section": [2, 3, 3]}
    return fields


def vl_token_ids():
    return dict(image_token_id=IMAGE_ID, video_token_id=VIDEO_ID,
                vision_start_token_id=VSTART_ID, vision_end_token_id=VEND_ID)


def config_qwen2_5_vl():
    vision = dict(depth=4, hidden_size=32, num_heads=2, intermediate_size=40, out_hidden_size=64,
                  patch_size=14, temporal_patch_size=2, spatial_merge_size=MERGE, window_size=56,
                  fullatt_block_indexes=[1, 3], hidden_act="silu", tokens_per_second=2)
    return Qwen2_5_VLConfig(text_config=text_fields(1e6, True), vision_config=vision,
                            tie_word_embeddings=True, **vl_token_ids())


def config_qwen2_vl():
    # Qwen2-VL: embed_dim is the tower width, hidden_size the merger's OUTPUT width.
    vision = dict(depth=2, embed_dim=32, num_heads=2, mlp_ratio=2, hidden_size=64,
                  hidden_act="quick_gelu", patch_size=14, temporal_patch_size=2,
                  spatial_merge_size=MERGE)
    return Qwen2VLConfig(text_config=text_fields(1e6, True), vision_config=vision,
                         tie_word_embeddings=False, **vl_token_ids())


def config_qwen2():
    return Qwen2Config(tie_word_embeddings=False, **text_fields(10000.0, False))


def check_text_config(cfg, theta, mrope):
    """transformers 5.x rewrites rope_scaling into rope_parameters; make sure nothing got lost."""
    rope = cfg.rope_parameters
    assert rope["rope_theta"] == theta, rope
    assert rope.get("rope_type", "default") == "default", rope
    if mrope:
        assert list(rope["mrope_section"]) == [2, 3, 3], rope
    assert cfg.hidden_size // cfg.num_attention_heads == 16


# ----------------------------------------------------------------------------------------------
# weights

def is_norm(module):
    return "Norm" in type(module).__name__


def rerandomise(model, gen):
    """Overwrite EVERY parameter: HF init zeroes biases and sets norms to 1, which hides bugs.

    Walks modules in definition order so the draw order (and so every value) is fixed by the seed.
    A tied tensor (embed_tokens = lm_head) is drawn once, at its first module.
    """
    seen = set()
    for mod_name, module in model.named_modules():
        for p_name, param in module.named_parameters(recurse=False):
            if id(param) in seen:
                continue
            seen.add(id(param))
            full = f"{mod_name}.{p_name}"
            if p_name == "bias":
                mean, std = 0.0, 0.05
            elif is_norm(module) and param.ndim == 1:
                mean, std = 1.0, 0.1
            elif param.ndim >= 2:
                mean, std = 0.0, 0.08
            else:
                raise RuntimeError(f"{full}: no rule for a {tuple(param.shape)} parameter")
            with torch.no_grad():
                param.copy_(torch.randn(param.shape, generator=gen) * std + mean)
    n_params = sum(1 for _ in model.parameters())
    assert len(seen) == n_params, (len(seen), n_params)


def build_model(cls, config, gen):
    model = cls._from_config(config, attn_implementation="eager", dtype=torch.float32)
    model.eval()
    rerandomise(model, gen)
    # generate reads these; save_pretrained writes them to generation_config.json.
    gc = model.generation_config
    gc.bos_token_id, gc.eos_token_id, gc.pad_token_id = BOS_ID, EOS_ID, PAD_ID
    gc.do_sample = False
    return model


# ----------------------------------------------------------------------------------------------
# inputs

def text_ids(gen, n):
    return torch.randint(0, TEXT_ID_LIMIT, (n,), generator=gen).tolist()


def image_run(grid):
    t, h, w = grid
    return [VSTART_ID] + [IMAGE_ID] * (t * h * w // (MERGE * MERGE)) + [VEND_ID]


def build_sample(gen, parts):
    """parts: list of ints (text lengths) and grids (image runs). Returns token ids."""
    ids = []
    for part in parts:
        ids += text_ids(gen, part) if isinstance(part, int) else image_run(part)
    return ids


def left_pad_batch(samples):
    """Left-pads to the longest sample; labels are -100 except on the last RESPONSE_LEN tokens."""
    seq = max(len(s) for s in samples)
    ids = torch.full((len(samples), seq), PAD_ID, dtype=torch.long)
    mask = torch.zeros((len(samples), seq), dtype=torch.long)
    labels = torch.full((len(samples), seq), -100, dtype=torch.long)
    for b, s in enumerate(samples):
        ids[b, seq - len(s):] = torch.tensor(s)
        mask[b, seq - len(s):] = 1
        labels[b, seq - RESPONSE_LEN:] = ids[b, seq - RESPONSE_LEN:]
    assert not (labels[ids == IMAGE_ID] != -100).any()
    return ids, mask, labels


def random_pixels(gen, grids):
    rows = sum(t * h * w for t, h, w in grids)
    return torch.randn((rows, PIXEL_ROW), generator=gen)


# ----------------------------------------------------------------------------------------------
# independent re-derivations, asserted against what HF computed

def predicted_rope_index(ids, mask, grids):
    """3-D positions and rope deltas as shared/reference/qwen25vl.md §3 "get_rope_index" states
    them, written from the text, not from HF: text counts up on all axes; an image run at position
    s gives (s, s+i, s+j) and moves s on by max(h', w'); pads get 0; delta = max + 1 - length."""
    batch, seq = ids.shape
    pos = torch.zeros((3, batch, seq), dtype=torch.long)
    deltas = []
    grid_iter = iter(grids)
    for b in range(batch):
        cols = [c for c in range(seq) if mask[b, c]]
        s, k, out = 0, 0, []
        while k < len(cols):
            if ids[b, cols[k]] != IMAGE_ID:
                out.append((s, s, s))
                s, k = s + 1, k + 1
                continue
            t, h, w = next(grid_iter)
            hh, ww = h // MERGE, w // MERGE
            assert t == 1, "images only"
            out += [(s, s + i, s + j) for i in range(hh) for j in range(ww)]
            k += hh * ww
            s += max(hh, ww)
        for c, p in zip(cols, out):
            pos[:, b, c] = torch.tensor(p)
        deltas.append(max(max(p) for p in out) + 1 - len(cols))
    return pos, torch.tensor(deltas)


def predicted_window_index(grids, window_units):
    """§2 step 4: tile each image's merged grid into window_units^2 windows, row-major, units
    inside a window row-major, partial edge windows kept, empty ones dropped."""
    order, offset = [], 0
    for t, h, w in grids:
        hh, ww = h // MERGE, w // MERGE
        for f in range(t):
            for wy in range(0, hh, window_units):
                for wx in range(0, ww, window_units):
                    for y in range(wy, min(wy + window_units, hh)):
                        for x in range(wx, min(wx + window_units, ww)):
                            order.append(offset + f * hh * ww + y * ww + x)
        offset += t * hh * ww
    return torch.tensor(order, dtype=torch.long)


# ----------------------------------------------------------------------------------------------
# capture

class Recorder:
    """Forward hooks that copy intermediate tensors out of one forward pass."""

    def __init__(self):
        self.out = {}
        self.handles = []

    def output(self, module, key, pick=None):
        def hook(_mod, _args, result):
            value = pick(result) if pick else result
            if isinstance(value, tuple):
                value = value[0]
            self.out[key] = value.detach().clone()
        self.handles.append(module.register_forward_hook(hook))

    def input(self, module, key, arg_name, arg_pos):
        def hook(_mod, args, kwargs):
            value = kwargs.get(arg_name) if arg_name in kwargs else args[arg_pos]
            self.out[key] = value.detach().clone()
        self.handles.append(module.register_forward_pre_hook(hook, with_kwargs=True))

    def remove(self):
        for h in self.handles:
            h.remove()
        self.handles = []


def attach_hooks(rec, model, kind):
    lm = model.model if kind == "qwen2" else model.model.language_model
    rec.input(lm.layers[0], "hidden.embed", "hidden_states", 0)
    for i, layer in enumerate(lm.layers):
        rec.output(layer, f"hidden.layer.{i}")
    rec.output(lm.norm, "hidden.norm")
    if kind == "qwen2":
        return
    # The position ids the VL model computed internally and handed to its decoder.
    rec.input(lm, "position_ids", "position_ids", 2)
    visual = model.model.visual
    rec.output(visual.patch_embed, "vision.patch_embed")
    for i, block in enumerate(visual.blocks):
        rec.output(block, f"vision.block.{i}")
    rec.output(visual, "vision.merged", pick=lambda r: r.pooler_output)


# ----------------------------------------------------------------------------------------------
# saving

def saved_key_map(model, path):
    """Maps each key of the saved model.safetensors to the live parameter holding the same data.

    Matching by value (the weights are random, so equal data means the same tensor) makes the map
    independent of how this transformers version renames keys on save."""
    saved = safetensors.torch.load_file(path)
    params = list(model.named_parameters())
    mapping = {}
    for key, tensor in saved.items():
        hits = [p for _, p in params if p.shape == tensor.shape and torch.equal(p.detach(), tensor)]
        assert len(hits) == 1, f"{key}: {len(hits)} parameters match"
        mapping[key] = hits[0]
    assert len(set(map(id, mapping.values()))) == len(params), "a parameter was not saved"
    return mapping


def key_layout(keys):
    if any(k.startswith("model.language_model.") for k in keys):
        return "new (model.language_model.* / model.visual.*)"
    if any(k.startswith("model.layers.") for k in keys):
        extra = " / visual.*" if any(k.startswith("visual.") for k in keys) else ""
        return f"legacy (model.*{extra})"
    raise RuntimeError(f"unknown key layout: {sorted(keys)[:4]}")


def save_expected(path, tensors, layout):
    meta = {"transformers": transformers.__version__, "torch": torch.__version__,
            "key_layout": layout, "script": "tools/make_fixtures.py"}
    clean = {k: v.detach().contiguous().clone() for k, v in tensors.items()}
    safetensors.torch.save_file(clean, path, metadata=meta)
    sort_metadata(path)


def sort_metadata(path):
    """safetensors keeps __metadata__ in a Rust HashMap, so its key order (and so the file's bytes)
    changes from run to run. Rewrite the header with sorted metadata keys: same characters, same
    length, so the data offsets stay valid."""
    with open(path, "r+b") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        raw = f.read(n)
        header = json.loads(raw)
        header["__metadata__"] = dict(sorted(header["__metadata__"].items()))
        text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode()
        text += b" " * (n - len(text))
        assert len(text) == n and json.loads(text) == json.loads(raw), "header rewrite changed it"
        f.seek(8)
        f.write(text)


# ----------------------------------------------------------------------------------------------
# one model

MODELS = {
    # kind: (config builder, class, sample-0 parts, sample-1 parts, rope theta)
    # An int is a run of random text ids, a list an image grid [t, h, w] (rows of 14-px patches).
    # The last text run of each sample holds the RESPONSE_LEN labelled tokens.
    "qwen2_5_vl": (config_qwen2_5_vl, Qwen2_5_VLForConditionalGeneration,
                   [4, [1, 6, 8], 3, [1, 6, 4], 9], [3, [1, 4, 6], 8], 1e6),
    "qwen2_vl": (config_qwen2_vl, Qwen2VLForConditionalGeneration,
                 [4, [1, 4, 6], 9], [14], 1e6),
    "qwen2": (config_qwen2, Qwen2ForCausalLM, [20], [13], 10000.0),
}


def grids_of(parts):
    return [p for p in parts if isinstance(p, list)]


def make_inputs(kind, gen):
    _, _, parts0, parts1, _ = MODELS[kind]
    ids, mask, labels = left_pad_batch([build_sample(gen, parts0), build_sample(gen, parts1)])
    inputs = {"input_ids": ids, "attention_mask": mask, "labels": labels}
    if kind == "qwen2":
        # What generate does for left padding; passed explicitly and stored.
        inputs["position_ids"] = torch.clamp(mask.cumsum(-1) - 1, min=0)
        return inputs
    grids = grids_of(parts0) + grids_of(parts1)   # images are consumed in (batch, seq) order
    inputs["pixel_values"] = random_pixels(gen, grids)
    inputs["image_grid_thw"] = torch.tensor(grids, dtype=torch.long)
    inputs["mm_token_type_ids"] = (ids == IMAGE_ID).long()
    return inputs


def check_positions(model, inputs, captured):
    ids, mask = inputs["input_ids"], inputs["attention_mask"]
    grids = inputs["image_grid_thw"].tolist()
    pos_hf, delta_hf = model.model.get_rope_index(
        ids, inputs["mm_token_type_ids"], image_grid_thw=inputs["image_grid_thw"],
        attention_mask=mask)
    pos_pred, delta_pred = predicted_rope_index(ids, mask, grids)
    assert captured.shape == (3, *ids.shape), captured.shape
    assert torch.equal(captured, pos_hf), "forward used other positions than get_rope_index"
    assert torch.equal(pos_hf, pos_pred), "HF positions differ from the §3 rule"
    assert torch.equal(delta_hf.view(-1), delta_pred), (delta_hf, delta_pred)
    assert torch.equal(model.model.rope_deltas.view(-1), delta_pred)
    img = ids == IMAGE_ID
    # Really 3-D: at image tokens the h or w axis leaves the t axis.
    assert ((captured[1] != captured[0]) | (captured[2] != captured[0]))[img].any()
    return delta_pred


def check_vision(kind, model, inputs, out):
    """The merged rows are the rows spliced into the LM, and they are the merger applied to the last
    block's output (after undoing the window permutation for 2.5). Returns HF's window_index."""
    grids = inputs["image_grid_thw"]
    merged = out["vision.merged"]
    spliced = out["hidden.embed"][inputs["input_ids"] == IMAGE_ID]
    assert torch.equal(merged, spliced), "merged rows are not the spliced rows"
    visual = model.model.visual
    with torch.no_grad():
        remerged = visual.merger(out[f"vision.block.{len(visual.blocks) - 1}"])
    if kind != "qwen2_5_vl":
        assert torch.equal(remerged, merged)
        return None
    vcfg = model.config.vision_config
    # The same function the tower calls; checked against the §2 rule written independently.
    window_index, _ = get_vision_window_index(grids, MERGE, vcfg.window_size, vcfg.patch_size)
    units = vcfg.window_size // MERGE // vcfg.patch_size
    assert torch.equal(window_index, predicted_window_index(grids.tolist(), units))
    # Block outputs are in window order: merging them and then undoing the permutation gives the
    # merged rows in image order.
    assert torch.equal(remerged[torch.argsort(window_index)], merged)
    assert not torch.equal(window_index, torch.arange(window_index.numel()))
    return window_index


def check_loss(logits, labels, loss):
    """§3: shift left by one, fp32 cross entropy, mean over the targets that are not -100."""
    target = labels[:, 1:].reshape(-1)
    pred = logits[:, :-1].reshape(-1, logits.shape[-1]).float()
    keep = target != -100
    # The last prompt token predicts the first answer token, so every answer token is a target.
    assert int(keep.sum()) == 2 * RESPONSE_LEN
    mine = torch.nn.functional.cross_entropy(pred[keep], target[keep])
    assert torch.allclose(mine, loss, rtol=1e-6, atol=0), (mine, loss)


def check_1d_pitfall(model, fwd_inputs, logits):
    """transformers 5.x without mm_token_type_ids: Qwen2.5-VL silently falls back to 1-D positions,
    Qwen2-VL raises. Where it falls back, show the fixture tells the two apart (so a C model with
    1-D positions fails its test). Returns a note for the summary."""
    bare = {k: v for k, v in fwd_inputs.items() if k != "mm_token_type_ids"}
    model.model.rope_deltas = None
    try:
        with torch.no_grad():
            other = model(**bare).logits
    except ValueError:
        return "without mm_token_type_ids forward raises"
    finally:
        model.model.rope_deltas = None
    keep = fwd_inputs["attention_mask"].bool()
    diff = float((other - logits)[keep].abs().max())
    assert diff > 1e-3, "1-D and 3-D positions give the same logits"
    return ("without mm_token_type_ids forward silently uses 1-D positions "
            f"(logits move by {diff:.3f})")


def compare_hidden_states(model, fwd_inputs, out):
    """Says how HF's output_hidden_states relate to the hooked tensors (for the README)."""
    with torch.no_grad():
        hs = model(**fwd_inputs, output_hidden_states=True).hidden_states
    names = []
    for i, h in enumerate(hs):
        same = [k for k in out if k.startswith("hidden.") and torch.equal(h, out[k])]
        names.append(f"[{i}]={same[0] if same else '?'}")
    return f"output_hidden_states: {', '.join(names)}"


def run_generate(kind, model, inputs):
    """Greedy decode of sample 0 alone, unpadded."""
    keep = inputs["attention_mask"][0].bool()
    ids = inputs["input_ids"][0][keep].unsqueeze(0)
    gen_in = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    if kind != "qwen2":
        n_img = int((ids == IMAGE_ID).sum())
        grids, rows, tokens = [], 0, 0
        for t, h, w in inputs["image_grid_thw"].tolist():
            if tokens == n_img:
                break
            grids.append([t, h, w])
            rows += t * h * w
            tokens += t * h * w // (MERGE * MERGE)
        assert tokens == n_img
        gen_in["pixel_values"] = inputs["pixel_values"][:rows]
        gen_in["image_grid_thw"] = torch.tensor(grids, dtype=torch.long)
        gen_in["mm_token_type_ids"] = (ids == IMAGE_ID).long()
    with torch.no_grad():
        out_ids = model.generate(**gen_in, do_sample=False, max_new_tokens=NEW_TOKENS,
                                 min_new_tokens=NEW_TOKENS)
    assert out_ids.shape == (1, ids.shape[1] + NEW_TOKENS)
    assert torch.equal(out_ids[:, :ids.shape[1]], ids)
    check_generate_argmax(kind, model, gen_in, out_ids)
    result = {"generate.input_ids": ids, "generate.output_ids": out_ids}
    for key in ["pixel_values", "image_grid_thw"]:
        if key in gen_in:
            result[f"generate.{key}"] = gen_in[key]
    return result


def check_generate_argmax(kind, model, gen_in, out_ids):
    """A full, uncached forward over prompt + answer must pick every generated token by plain
    argmax. This shows that cached decode used positions c + rope_delta (a full forward places the
    answer right after the prompt's last position) and that min_new_tokens never had to mask eos,
    so a plain greedy decoder reproduces the ids."""
    full = {"input_ids": out_ids, "attention_mask": torch.ones_like(out_ids)}
    if kind != "qwen2":
        full["pixel_values"] = gen_in["pixel_values"]
        full["image_grid_thw"] = gen_in["image_grid_thw"]
        full["mm_token_type_ids"] = (out_ids == IMAGE_ID).long()
    with torch.no_grad():
        logits = model(**full).logits
    n0 = gen_in["input_ids"].shape[1]
    picked = logits[0, n0 - 1:-1].argmax(-1)
    assert torch.equal(picked, out_ids[0, n0:]), (picked, out_ids[0, n0:])


def make_one(kind, out_dir, gen):
    build_config, cls, _, _, theta = MODELS[kind]
    config = build_config()
    check_text_config(config if kind == "qwen2" else config.text_config, theta, kind != "qwen2")
    model = build_model(cls, config, gen)
    inputs = make_inputs(kind, gen)

    mdir = os.path.join(out_dir, kind)
    os.makedirs(mdir, exist_ok=True)
    model.save_pretrained(mdir, safe_serialization=True)
    weights_path = os.path.join(mdir, "model.safetensors")
    key_map = saved_key_map(model, weights_path)
    layout = key_layout(key_map.keys())
    if config.tie_word_embeddings:
        assert "lm_head.weight" not in key_map, "tied model saved an lm_head"

    rec = Recorder()
    attach_hooks(rec, model, kind)
    fwd_inputs = dict(inputs)
    model.zero_grad(set_to_none=True)
    result = model(**fwd_inputs)
    result.loss.backward()
    rec.remove()
    out = rec.out

    tensors = {k: v for k, v in inputs.items()}
    if kind != "qwen2":
        tensors["rope_deltas"] = check_positions(model, inputs, out["position_ids"])
        window_index = check_vision(kind, model, inputs, out)
        if window_index is not None:
            tensors["vision.window_index"] = window_index
        model.model.rope_deltas = None   # do not leak cached deltas into the next forward
    for k, v in out.items():
        tensors[k] = v
    tensors["logits"] = result.logits
    check_loss(result.logits.detach(), inputs["labels"], result.loss.detach())
    tensors["loss"] = result.loss.detach().reshape(())
    for key, param in key_map.items():
        assert param.grad is not None, f"{key}: no gradient"
        tensors[f"grad.{key}"] = param.grad

    fwd_inputs.pop("labels")
    notes = [compare_hidden_states(model, fwd_inputs, out)]
    if kind != "qwen2":
        notes.append(check_1d_pitfall(model, fwd_inputs, result.logits.detach()))
    tensors.update(run_generate(kind, model, inputs))
    check_dtypes(kind, tensors)

    expected_path = os.path.join(mdir, "expected.safetensors")
    save_expected(expected_path, tensors, layout)
    return summarise(kind, mdir, tensors, layout, notes)


INT_KEYS = {"input_ids", "attention_mask", "labels", "image_grid_thw", "mm_token_type_ids",
            "rope_deltas", "position_ids", "vision.window_index"}


def check_dtypes(kind, tensors):
    for k, v in tensors.items():
        want = torch.long if k in INT_KEYS or k.endswith(("input_ids", "output_ids", "grid_thw")) \
            else torch.float32
        assert v.dtype == want, f"{kind}: {k} is {v.dtype}, want {want}"


def summarise(kind, mdir, tensors, layout, notes):
    files = sorted(os.listdir(mdir))
    sizes = {f: os.path.getsize(os.path.join(mdir, f)) for f in files}
    lines = [f"{kind}: key layout {layout}; loss {float(tensors['loss']):.6f}",
             f"  expected.safetensors: {len(tensors)} tensors"]
    lines += [f"  {f}: {sizes[f]} bytes" for f in files]
    lines += [f"  note: {note}" for note in notes]
    return "\n".join(lines), sum(sizes.values())


# ----------------------------------------------------------------------------------------------
# main

def setup_torch():
    transformers.utils.logging.disable_progress_bar()
    torch.manual_seed(SEED)
    torch.use_deterministic_algorithms(True)
    # One thread: the tiny models run in seconds, and a fixed reduction order removes one source
    # of run-to-run bit differences.
    torch.set_num_threads(1)


def generate_all(out_dir):
    setup_torch()
    total, report = 0, []
    for i, kind in enumerate(MODELS):
        # One generator per model, so editing one model's inputs leaves the others' bytes alone.
        gen = torch.Generator().manual_seed(SEED + i)
        text, size = make_one(kind, out_dir, gen)
        report.append(text)
        total += size
    return report, total


def same_tree(a, b):
    for kind in MODELS:
        cmp = filecmp.dircmp(os.path.join(a, kind), os.path.join(b, kind))
        if cmp.left_only or cmp.right_only:
            return False
        _, mismatch, errors = filecmp.cmpfiles(os.path.join(a, kind), os.path.join(b, kind),
                                               cmp.common_files, shallow=False)
        if mismatch or errors:
            print(f"differs: {kind}: {mismatch + errors}", file=sys.stderr)
            return False
    return True


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(here, "..", "tests", "fixtures", "models"))
    ap.add_argument("--check-determinism", action="store_true",
                    help="generate a second copy in a temporary folder and compare bytes")
    args = ap.parse_args()
    out_dir = os.path.normpath(args.out)

    report, total = generate_all(out_dir)
    print(f"transformers {transformers.__version__}, torch {torch.__version__}, "
          f"safetensors {safetensors.__version__}, numpy {numpy.__version__}")
    print("\n".join(report))
    print(f"total: {total} bytes ({total / 2**20:.2f} MiB) in {out_dir}")

    if args.check_determinism:
        tmp = tempfile.mkdtemp(prefix="mmupt-fixtures-")
        try:
            generate_all(tmp)
            ok = same_tree(out_dir, tmp)
        finally:
            shutil.rmtree(tmp)
        print("determinism: " + ("byte-identical" if ok else "FILES DIFFER"))
        if not ok:
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
