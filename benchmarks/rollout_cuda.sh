#!/usr/bin/env bash
# gpu_check: timeout=200
# Rollout on one GPU (issue 10's figure): generated tokens/s of mmupt's device rollout for the
# 0.5B-shape Qwen2 config, 64 prompts x 128 tokens, 256 new tokens sampled at temperature 1 (no early
# stop), beside transformers' generate on the same GPU in the same invocation, fp32 and bf16 (the
# usual baseline); each side runs a warm-up of 16 new tokens before its timed rollout. Prints a
# markdown table with the ratios.
#
#   benchmarks/rollout_cuda.sh [BATCH PROMPT NEW]        (MMUPT_BUILD_DIR: the CUDA build, default build-gpu;
#                                                         MMUPT_DTYPE=fp32 for mmupt's fp32 path)
#
# State: mmupt runs in bf16 - bf16 GEMMs on tensor cores over fp32 weights, bf16 KV cache and decode
# attention on tensor cores, every other op fp32, decode steps replayed as CUDA graphs (model_dev_init's default), the 64 prompts
# prefilled in one forward (src/rollout/engine.c: up to 8192 tokens, 16 prompts at a time before 2026-11-28); the issue's target is >= 50,000 tokens/s. The table names the dtype each row measured.
# More mmupt rows run the same rollout under the other settings of the device switches
# (docs/running-at-scale.md), before the PyTorch baseline so a short time budget still gets them: the
# prefill's attention through cuBLAS GEMMs around softmax kernels (MMUPT_ATTENTION=cublas; by default
# cuDNN's SDPA graphs take the 64 x 128 prefill's - the warm-up plans them; decoding is the same), the fp32 decode attention kernel (MMUPT_DECODE_MMA=0; the tensor-core one is the default since
# 2026-11-28), the decode step's kernels after its GEMMs launched programmatically (MMUPT_DECODE_PDL=1),
# GEMM algorithms tuned by timing (MMUPT_GEMM_TUNE=1, src/gpu/gemm_lt.c: the warm-up tunes the decode
# step's shapes before its graphs are recorded), tuned with a tuning file (MMUPT_GEMM_TUNE_FILE: the
# first such row times and writes the choices, the second reads them and times nothing - the same
# algorithms, repeatable), and the fp32 kernel unstaged (MMUPT_DECODE_MMA=0
# MMUPT_DECODE_STAGE=0: the defaults before 2026-11-28). (The skinny GEMM, MMUPT_GEMM_SKINNY, measured
# 0.71x cuBLAS: benchmarks/gpu_ab.sh has it.)
set -uo pipefail
. "$(dirname "$0")/lib.sh"
B=${1:-64} P=${2:-128} N=${3:-256}
cfg=benchmarks/configs/qwen2_0_5b.json
cuda_bench_setup rollout_cuda.sh rollout "rollout on one GPU"
tune_file=${MMUPT_BUILD_DIR:-build-gpu}/gemm-tune-rollout.txt # written by the first of its rows, read by the second
rm -f "$tune_file"
cuda_bench_variants rollout "$cfg" "$B" "$P" "$N" -- MMUPT_ATTENTION=cublas MMUPT_DECODE_MMA=0 MMUPT_DECODE_PDL=1 MMUPT_GEMM_TUNE=1 \
    "MMUPT_GEMM_TUNE_FILE=$tune_file" "MMUPT_GEMM_TUNE=1 MMUPT_GEMM_TUNE_FILE=$tune_file" \
    "MMUPT_DECODE_MMA=0 MMUPT_DECODE_STAGE=0"
cuda_bench_pair rollout rollout_torch.py "$cfg" "$B" "$P" "$N"
python3 - "$ours" "${#variants[@]}" "${variants[@]}" "${labels[@]}" "${rows[@]}" <<'PY'
import json, sys
a = json.loads(sys.argv[1])
nv = int(sys.argv[2])
variants, labels, theirs = sys.argv[3:3 + nv], sys.argv[3 + nv:3 + 2 * nv], sys.argv[3 + 2 * nv:]
print(f"| 0.5B shape, {a['batch']} x ({a['prompt']} + {a['new']}) | tokens/s | vs mmupt |")
print("|---|---|---|")
print(f"| mmupt ({a['device']}, {a['dtype']}) | {a['tokens_per_s']:.0f} | 1.00x |")
best = a['tokens_per_s']
for raw, label in zip(variants, labels):
    try:
        k = json.loads(raw)
        best = max(best, k['tokens_per_s'])
        print(f"| mmupt, {label} | {k['tokens_per_s']:.0f} | "
              f"{k['tokens_per_s'] / a['tokens_per_s']:.2f}x (decode step {k['step_decode_ms']:.3f} ms against "
              f"{a['step_decode_ms']:.3f}) |")
    except (ValueError, KeyError, TypeError):
        print(f"| mmupt, {label} | failed | - |")
for raw in theirs:
    try:
        b = json.loads(raw)
    except ValueError:
        print("| transformers | failed | - |")
        continue
    print(f"| transformers generate ({b['dtype']}) | {b['tokens_per_s']:.0f} | "
          f"mmupt is {a['tokens_per_s'] / b['tokens_per_s']:.2f}x |")
print()
print(f"target (issue 10): >= 50,000 tokens/s; mmupt measured {best:.0f} in {a['dtype']} (the faster of its rows)")
print(f"mmupt's timed rollout (after a warm-up of 16 tokens): prefill and first draws {a['prefill_s']:.3f} s, then "
      f"{a['decode_step_ms']:.2f} ms per decode step of {a['batch']} rows; {a['graph_steps']} steps replayed a CUDA graph"
      + (f" (graphs off: {a['graph_error']})" if a['graph_error'] else "")
      + (f"; peak device allocations {a['peak_device_bytes'] / (1 << 30):.2f} GiB"
         if a.get('peak_device_bytes') else ""))
if a.get('step_decode_ms'):
    host = a['decode_step_ms'] - a['step_decode_ms'] - a['step_sample_ms']
    print(f"where a step goes (timed alone, caches at the mean length): decode {a['step_decode_ms']:.2f} ms, "
          f"sampling {a['step_sample_ms']:.2f} ms, the rest ({host:.2f} ms) the host's bookkeeping and transfers")
PY
