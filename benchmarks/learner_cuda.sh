#!/usr/bin/env bash
# gpu_check: timeout=200
# Learner on one GPU (issue 10's figure): forward + backward of a next-token loss for the 1.5B-shape
# Qwen2 config, sequences of 384 tokens, as model FLOP utilisation: 6 * N * tokens / step time over
# the H100/H200 dense bf16 peak (989 TFLOP/s; N = all parameters). Beside PyTorch eager on the same
# GPU in the same invocation (fp32 and bf16). Markdown table with the ratios.
#
#   benchmarks/learner_cuda.sh [BATCH SEQ [CONFIG]]   (default 8 x 384, the 1.5B shape; MMUPT_BUILD_DIR
#                                                      default build-gpu; MMUPT_DTYPE=fp32 for mmupt's fp32 path)
#
# CONFIG replaces the 1.5B config (a small one tries the script on the emulator of a CPU-only build).
#
# The issue's step is 64 x 384; mmupt's device path keeps every activation (no --recompute here), so
# the headline rows run it in micro-batches (MFU is a rate: the same for every micro-batch of a step).
# State: mmupt runs in bf16 - bf16 GEMMs on tensor cores over fp32 master weights, attention through
# cuDNN's fused SDPA graphs (the default since 2026-11-28; src/gpu/sdpa_cudnn.c: its first step
# plans them - the warm-up), the other ops fp32 or bf16 as docs/design.md says (issue 10's target is
# MFU >= 50% in bf16). The table names the dtype and the attention each row ran. More mmupt rows run
# the same step under the GPU switches that are off by default (measured slower, or not repeatable
# bit for bit; docs/running-at-scale.md): attention through cuBLAS GEMMs around softmax kernels
# (MMUPT_ATTENTION=cublas, the default before), the fused attention kernels (MMUPT_ATTENTION=flash,
# kernels/cuda/attention_flash.cu), GEMM algorithms tuned by timing (MMUPT_GEMM_TUNE=1,
# src/gpu/gemm_lt.c: the warm-up step tunes, the timed steps use the choice), and the residual adds
# as separate launches (MMUPT_GEMM_RESIDUAL=0: the default adds them in the o- and down projections'
# epilogue) - before the PyTorch baseline, so a short time budget still gets them. Then the same step
# in larger micro-batches (MMUPT_LEARNER_MICRO_BATCHES, default "32 64"; 64 x 384 is the issue's whole
# step in one micro-batch - the logits still go 4096 rows at a time), by default and with tuned GEMMs:
# taller GEMMs fill more of the GPU's waves and the step's fixed costs spread over more tokens. MFU is
# a rate, so these rows compare with the others directly; "time a token" is the column that does. The
# headline is the fastest row's MFU, to two decimals (49.99% is not 50%), and the default row's.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
B=${1:-8} S=${2:-384}
cfg=${3:-benchmarks/configs/qwen2_1_5b.json}
cuda_bench_setup learner_cuda.sh model_cpu "learner on one GPU"
cuda_bench_variants model_cpu "$cfg" "$B" "$S" 3 -- MMUPT_ATTENTION=cublas MMUPT_ATTENTION=flash MMUPT_GEMM_TUNE=1 \
    MMUPT_GEMM_RESIDUAL=0
for mb in ${MMUPT_LEARNER_MICRO_BATCHES-32 64}; do
    [ "$mb" = "$B" ] && continue
    cuda_bench_row "micro-batch $mb ($mb x $S)" "" model_cpu "$cfg" "$mb" "$S" 3
    cuda_bench_row "micro-batch $mb ($mb x $S), MMUPT_GEMM_TUNE=1" MMUPT_GEMM_TUNE=1 model_cpu "$cfg" "$mb" "$S" 3
done
cuda_bench_pair model_cpu model_cpu_torch.py "$cfg" "$B" "$S" 3
python3 - "$ours" "${#variants[@]}" "${variants[@]}" "${labels[@]}" "${rows[@]}" <<'PY'
import json, sys
sys.path.insert(0, "benchmarks")
from bench_rows import attention_note
PEAK = 989e12
def mfu(r):
    return 6 * r["params"] * r["batch"] * r["seq"] / r["step_s"] / PEAK
def per_token(r):
    return r["step_s"] / (r["batch"] * r["seq"])
a = json.loads(sys.argv[1])
nv = int(sys.argv[2])
variants, labels, theirs = sys.argv[3:3 + nv], sys.argv[3 + nv:3 + 2 * nv], sys.argv[3 + 2 * nv:]
best = a
print(f"| {a['params'] / 1e9:.2f}B params, {a['batch']} x {a['seq']} | step (s) | tokens/s | MFU | loss | time a token / mmupt's |")
print("|---|---|---|---|---|---|")
print(f"| mmupt ({a['device']}, {a['dtype']}){attention_note(a)} | {a['step_s']:.3f} | {a['tokens_per_s']:.0f} | {100 * mfu(a):.1f}% | {a['loss']:.4f} | 1.00x |")
for raw, label in zip(variants, labels):
    try:
        f = json.loads(raw)
        print(f"| mmupt, {label}{attention_note(f)} | {f['step_s']:.3f} | {f['tokens_per_s']:.0f} | "
              f"{100 * mfu(f):.1f}% | {f['loss']:.4f} | {per_token(f) / per_token(a):.2f}x |")
        if mfu(f) > mfu(best):
            best = f
    except (ValueError, KeyError):
        print(f"| mmupt, {label} | failed | - | - | - | - |")
for raw in theirs:
    try:
        b = json.loads(raw)
    except ValueError:
        print("| PyTorch eager | failed | - | - | - | - |")
        continue
    print(f"| PyTorch eager ({b['dtype']}) | {b['step_s']:.3f} | {b['tokens_per_s']:.0f} | {100 * mfu(b):.1f}% | "
          f"{b['loss']:.4f} | {per_token(b) / per_token(a):.2f}x |")
print()
print(f"target (issue 10): MFU >= 50% in bf16; mmupt measured {100 * mfu(best):.2f}% in {best['dtype']} "
      f"(the fastest of its rows, {best['batch']} x {best['seq']} a micro-batch): "
      f"{'met' if mfu(best) >= 0.5 else 'not met'}; by default at {a['batch']} x {a['seq']}: {100 * mfu(a):.2f}%. "
      "Losses differ from PyTorch's: different random weights, and the micro-batches' different tokens")
PY
