#!/usr/bin/env bash
# gpu_check: timeout=240
# A whole GRPO iteration on one GPU (issue 10's figure): rollout (P prompts x G samples, NEW tokens),
# majority-vote rewards, reference and policy log-probs, GRPO loss and backward per micro-batch, the
# optimizer step - mmupt's device path (benchmarks/iteration.c) beside the same iteration written
# with PyTorch/transformers (benchmarks/iteration_torch.py) on the same GPU in the same invocation,
# fp32 and bf16; each side runs a warm-up iteration of the same shapes before its timed one. Markdown
# table of the phases and the ratio.
#
#   benchmarks/iteration_cuda.sh [P G PROMPT NEW MB]   (default 8 8 128 256 8; MMUPT_BUILD_DIR: build-gpu;
#                                                       MMUPT_DTYPE=fp32 for mmupt's fp32 path)
#
# State: mmupt runs in bf16 - bf16 GEMMs on tensor cores over fp32 master weights (the reference
# model has its own bf16 copy), every other op and the optimizer fp32 (issue 10's target: >= 20x the
# PyTorch iteration). The table names the dtype each row measured.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
P=${1:-8} G=${2:-8} S=${3:-128} N=${4:-256} MB=${5:-8}
cfg=benchmarks/configs/qwen2_0_5b.json
cuda_bench_setup iteration_cuda.sh iteration "one GRPO iteration on one GPU"
cuda_bench_pair iteration iteration_torch.py "$cfg" "$P" "$G" "$S" "$N" "$MB"
python3 - "$ours" "${rows[@]}" <<'PY'
import json, sys
a = json.loads(sys.argv[1])
print(f"| 0.5B shape, {a['prompts']} x {a['G']} samples, {a['prompt']} + {a['new']} tokens, micro-batch {a['micro_batch']} "
      "| rollout (s) | reward (s) | log-probs + loss + backward (s) | optimizer (s) | iteration (s) | PyTorch / mmupt |")
print("|---|---|---|---|---|---|---|")
def row(name, r, ratio):
    print(f"| {name} | {r['rollout_s']:.2f} | {r['reward_s']:.3f} | {r['learn_s']:.2f} | {r['optim_s']:.3f} | "
          f"{r['iteration_s']:.2f} | {ratio} |")
row(f"mmupt ({a['device']}, {a['dtype']})", a, "1.00x")
for raw in sys.argv[2:]:
    try:
        b = json.loads(raw)
    except ValueError:
        print("| PyTorch | failed | | | | | |")
        continue
    row(f"PyTorch + transformers ({b['dtype']})", b, f"{b['iteration_s'] / a['iteration_s']:.2f}x")
print()
print("target (issue 10): the PyTorch iteration takes >= 20x mmupt's")
PY
