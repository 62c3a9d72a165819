#!/usr/bin/env bash
# gpu_check: timeout=180
# Qwen2.5-VL-3B training on one GPU (issue 10's figure): whole training steps of the real 3B shapes
# (benchmarks/configs/qwen25vl_3b.json, 3,754,622,976 parameters, random weights) - vision tower and
# decoder forward, next-token loss, backward with activation recomputation, gradient clipping and
# AdamW over every parameter - in bf16 (bf16 GEMMs; fp32 master weights, gradients and Adam moments),
# as tokens/s per GPU beside EasyR1's published figure for the same model. `model_cpu --device
# --dtype bf16 --recompute --optim`, one warm-up step and 2 timed ones (the median of 2 is the
# slower). No PyTorch run: the issue's comparison for this figure is EasyR1's published number. The
# default attention is cuDNN's fused SDPA; a second row runs the same step with MMUPT_ATTENTION=cublas
# (cuBLAS GEMMs around softmax kernels, the default before 2026-11-28).
#
#   benchmarks/vl3b_cuda.sh [BATCH SEQ IMAGE_SIDE [CONFIG]]   (default 2 1024 336 and the 3B config;
#                                                             MMUPT_BUILD_DIR: the CUDA build, default build-gpu)
#
# CONFIG replaces the 3B config (a tiny one tries the script on the emulator of a CPU-only build).
#
# Why 2 x 1024 tokens with one 336 x 336 image per sequence (144 image tokens, 576 patches):
# - Model state is 18 bytes per parameter, 67.6 GB (62.9 GiB): fp32 weights 4 + gradients 4 + Adam
#   moments 8 + the bf16 copy 2. An 80 GB H100 has 81,559 MiB (85.5 GB), so activations, the CUDA
#   context and cuBLAS's workspace share about 17.9 GB.
# - Activations at this size were measured on the device emulator, whose allocations are the device
#   path's own (the same drivers allocate the same buffers): with the real widths, 4.35 GB at 2
#   decoder layers + 2 vision blocks and 4.58 GB at 4 + 4 (the difference is the added layers'
#   buffers to 0.1%), so 8.0 GB at 36 + 32. At the peak (the decoder's backward) they are
#   mostly the logits and their gradient, fp32 [2048, 151936], 2.5 GB together; the bf16 GEMM
#   scratch, sized by lm_head's backward, 0.6 GB; the vision tower's activations, all kept (the
#   recomputation covers the decoder), 1.7 GB per image; each decoder block's input, 17 MB a layer.
#   Peak: 75.6 GB (72,090 MiB), which leaves about 9 GiB of the H100 for the context, cuBLAS and
#   the allocator's slack. 4 sequences would need about 16 GB of activations: more than is left.
# - Tokens/s is a rate, so a micro-batch of 2 sequences measures it as well as a bigger one would:
#   2048 tokens a step keep the GEMMs large (M = 2048), and EasyR1's 3B row lists batch sizes 1 / 2.
# - Time: initialising 3.75 G random floats on the host takes about 10 s (2.6 ns a float, first
#   touch included, measured single-threaded on a development machine) plus the 15 GB upload, a few
#   seconds. A step's time is unknown until a GPU runs it; the limit above leaves 3 steps about
#   45 s each.
#
# Peak memory: model_cpu reports its allocations' high-water mark (the emulator's count, or on CUDA
# the stream-ordered pool's); on a GPU this script also samples nvidia-smi's memory.used every 100 ms
# during the run (the whole card: the CUDA context and cuBLAS's workspace included - what decides
# whether it fits) and prints both. The pool keeps what it mapped (gpu_ctx_init raises its release
# threshold), so the backward's peak stays visible to the sampling.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
B=${1:-2} S=${2:-1024} SIDE=${3:-336}
cfg=${4:-benchmarks/configs/qwen25vl_3b.json}
cuda_bench_setup vl3b_cuda.sh model_cpu "Qwen2.5-VL-3B training step on one GPU"

# EasyR1's published Qwen2.5-VL-3B throughput, NOT measured here: tokens/s per GPU over whole GRPO
# steps (vLLM generation, log-probs, actor update) on Geometry3k, 8 x H100 80GB, AMP, batch size
# 1 / 2, 120 s a step, actor MFU 8.1%. Source: hiyouga/EasyR1, assets/baselines.md, "Performance
# Baselines" (EasyR1 v0.3.2), row "3B | 8 * H100 80GB | AMP | 1 / 2 | ... | 1800 (+600) | 120s | 8.1%".
EASYR1_3B_TOKENS_PER_S_PER_GPU=1800

smi_log=$(mktemp)
trap 'rm -f "$smi_log"' EXIT
smi_pid=
if command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=memory.used,memory.total --format=csv,noheader,nounits -lms 100 >"$smi_log" 2>/dev/null &
    smi_pid=$!
fi
ours=$("$build/benchmarks/model_cpu" --device --dtype bf16 --recompute --optim "$cfg" "$B" "$S" 2 "$SIDE")
rc=$?
[ -n "$smi_pid" ] && kill "$smi_pid" 2>/dev/null && wait "$smi_pid" 2>/dev/null
[ "$rc" = 0 ] || { echo "vl3b_cuda.sh: model_cpu failed (rc $rc)" >&2; exit 1; }
echo "mmupt: $ours"
# The same step with the attention through cuBLAS GEMMs around softmax kernels (MMUPT_ATTENTION=cublas,
# the default before cuDNN's measured faster: 0.173 s against 0.195 a step on an H200, 2026-11-28). A
# row of its own; the card's memory is sampled for the default run only.
alt=$(MMUPT_ATTENTION=cublas "$build/benchmarks/model_cpu" --device --dtype bf16 --recompute --optim "$cfg" "$B" "$S" 2 \
      "$SIDE") || alt=""
echo "mmupt, MMUPT_ATTENTION=cublas: ${alt:-failed}"
echo
python3 - "$ours" "$smi_log" "$EASYR1_3B_TOKENS_PER_S_PER_GPU" "$alt" <<'PY'
import json, sys
sys.path.insert(0, "benchmarks")
from bench_rows import attention_note
a, smi, easyr1 = json.loads(sys.argv[1]), sys.argv[2], float(sys.argv[3])
alt = json.loads(sys.argv[4]) if sys.argv[4] else None
H100_MIB = 81559  # an H100 80GB's memory.total as nvidia-smi reports it
used = []  # nvidia-smi samples (MiB): memory.used, memory.total
for line in open(smi):
    try:
        used.append([float(x) for x in line.split(",")])
    except ValueError:
        pass
# the card's memory only when the run was on the card (not the emulator of a CPU-only build)
peak_mib = max(u for u, _ in used) if used and a["device"] == "cuda" else None
parts = []
if a["peak_device_bytes"]:
    parts.append(f"{a['peak_device_bytes'] / (1 << 30):.2f} GiB (allocations, {a['device']})")
if peak_mib is not None:
    parts.append(f"{peak_mib / 1024:.1f} GiB of {used[0][1] / 1024:.1f} (nvidia-smi, whole card)")
peak = "; ".join(parts) or "not measured"
n = a["params"]
size = f"{n / 1e9:.2f}B" if n >= 1e8 else f"{n / 1e6:.1f}M"
print(f"| {size} params, {a['batch']} x {a['seq']} tokens, {a['images']} image(s) of {a['image_side']} px "
      "| tokens/s per GPU | step (s) | peak memory |")
print("|---|---|---|---|")
print(f"| mmupt ({a['device']}, {a['dtype']}, recompute, AdamW; measured){attention_note(a)} | {a['tokens_per_s']:.0f} | "
      f"{a['step_s']:.3f} | {peak} |")
if alt:
    print(f"| mmupt, MMUPT_ATTENTION=cublas{attention_note(alt)} | {alt['tokens_per_s']:.0f} | {alt['step_s']:.3f} | "
          f"{alt['peak_device_bytes'] / (1 << 30):.2f} GiB (allocations, {alt['device']}) |")
else:
    print("| mmupt, MMUPT_ATTENTION=cublas | failed | - | - |")
print(f"| EasyR1, Qwen2.5-VL-3B on 8 x H100 (published, not measured here) | {easyr1:.0f} | "
      "120 (a whole GRPO step) | - |")
print()
if a["device"] != "cuda":
    print(f"({a['device']}: the timings mean nothing; this only tries the script.)")
print(f"mmupt / EasyR1: {a['tokens_per_s'] / easyr1:.2f}x. Not the same work: EasyR1's figure is a whole GRPO "
      "step (generation, log-probs, update) per GPU; this row is the training step alone (forward, backward, "
      "optimizer).")
if peak_mib is not None:
    print(f"Fits an 80 GB H100 ({H100_MIB} MiB): {'yes' if peak_mib <= H100_MIB else 'NO'} (peak {peak_mib:.0f} MiB).")
print(f"Host initialisation and upload: {a['init_s']:.1f} s; last step's loss {a['loss']:.4f}.")
PY
