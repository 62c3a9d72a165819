"""Shared by the PyTorch/transformers baselines of the benchmarks: a random-weight model from a
config.json file and the same synthetic batch the C benchmarks build (random text ids; for vision
configs one image per sequence right after <|vision_start|>)."""
import json
import os
import shutil
import tempfile

import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForImageTextToText


def pop_device_args(argv):
    """Remove --device DEV and --dtype {fp32,bf16} from argv; returns (device, torch dtype).
    Defaults: cpu, fp32 (the CPU benchmarks)."""
    device, dtype = "cpu", "fp32"
    for flag in ("--device", "--dtype"):
        if flag in argv:
            i = argv.index(flag)
            val = argv[i + 1]
            del argv[i:i + 2]
            if flag == "--device":
                device = val
            else:
                dtype = val
    return device, {"fp32": torch.float32, "bf16": torch.bfloat16}[dtype]


def random_model(path, device="cpu", dtype=torch.float32):
    """(config, model, is_vision) for the config.json at path, seeded, on device in dtype (fp32 on the
    CPU by default); threads from OMP_NUM_THREADS."""
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", os.cpu_count())))
    torch.manual_seed(42)
    tmp = tempfile.mkdtemp()
    shutil.copy(path, os.path.join(tmp, "config.json"))
    cfg = AutoConfig.from_pretrained(tmp)
    shutil.rmtree(tmp)
    vision = json.load(open(path))["model_type"] != "qwen2"
    auto = AutoModelForImageTextToText if vision else AutoModelForCausalLM
    # Built on the device itself: initialising a 1.5B model on the CPU first took most of a
    # benchmark's device time (the weights are random either way).
    with torch.device(device):
        model = auto.from_config(cfg, dtype=dtype)
    return cfg, model, vision


def synthetic_batch(cfg, vision, batch, seq, side):
    """(input_ids [batch, seq], extra forward kwargs) matching benchmarks/*.c's batches."""
    if not (vision and side):
        vocab = cfg.text_config.vocab_size if vision else cfg.vocab_size
        return torch.randint(0, vocab, (batch, seq)), {}
    vc = cfg.vision_config
    g = side // vc.patch_size
    n_img = (g // vc.spatial_merge_size) ** 2
    ids = torch.randint(0, min(cfg.image_token_id, cfg.vision_start_token_id), (batch, seq))
    ids[:, 0] = cfg.vision_start_token_id
    ids[:, 1:1 + n_img] = cfg.image_token_id
    ids[:, 1 + n_img] = cfg.vision_end_token_id
    kwargs = {"pixel_values": torch.rand(batch * g * g, 3 * vc.temporal_patch_size * vc.patch_size ** 2) * 2 - 1,
              "image_grid_thw": torch.tensor([[1, g, g]] * batch),
              "mm_token_type_ids": (ids == cfg.image_token_id).long()}
    return ids, kwargs
