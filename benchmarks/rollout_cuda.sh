#!/usr/bin/env bash
# gpu_check: timeout=200
# Rollout on one GPU (issue 10's figure): generated tokens/s of mmupt's device rollout for the
# 0.5B-shape Qwen2 config, 64 prompts x 128 tokens, 256 new tokens sampled at temperature 1 (no early
# stop), beside transformers' generate on the same GPU in the same invocation, fp32 (mmupt's current
# precision) and bf16 (the usual baseline). Prints a markdown table with the ratios.
#
#   benchmarks/rollout_cuda.sh [BATCH PROMPT NEW]        (MMUPT_BUILD_DIR: the CUDA build, default build-gpu)
#
# State: mmupt's device path is fp32 with host-side sampling and per-row cache appends (the
# correctness step of issue 10); the issue's target is >= 50,000 tokens/s.
set -uo pipefail
cd "$(dirname "$0")/.."
build=${MMUPT_BUILD_DIR:-build-gpu}
B=${1:-64} P=${2:-128} N=${3:-256}
cfg=benchmarks/configs/qwen2_0_5b.json
[ -x "$build/benchmarks/rollout" ] || { echo "rollout_cuda.sh: no $build/benchmarks/rollout (build first)" >&2; exit 1; }
echo "## rollout on one GPU, $(date -u +%Y-%m-%d), $(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)"
echo
ours=$("$build/benchmarks/rollout" --device "$cfg" "$B" "$P" "$N") || { echo "mmupt rollout failed" >&2; exit 1; }
echo "mmupt: $ours"
rows=()
for dt in fp32 bf16; do
    theirs=$(cd benchmarks && python3 rollout_torch.py --device cuda --dtype "$dt" "../$cfg" "$B" "$P" "$N" 2>/dev/null | tail -1)
    echo "transformers $dt: ${theirs:-failed}"
    rows+=("$theirs")
done
echo
python3 - "$ours" "${rows[@]}" <<'PY'
import json, sys
a = json.loads(sys.argv[1])
print(f"| 0.5B shape, {a['batch']} x ({a['prompt']} + {a['new']}) | tokens/s | vs mmupt |")
print("|---|---|---|")
print(f"| mmupt ({a['device']}, fp32) | {a['tokens_per_s']:.0f} | 1.00x |")
for raw in sys.argv[2:]:
    try:
        b = json.loads(raw)
    except ValueError:
        print("| transformers | failed | - |")
        continue
    print(f"| transformers generate ({b['dtype']}) | {b['tokens_per_s']:.0f} | "
          f"mmupt is {a['tokens_per_s'] / b['tokens_per_s']:.2f}x |")
print()
print(f"target (issue 10): >= 50,000 tokens/s; mmupt measured {a['tokens_per_s']:.0f}")
PY
