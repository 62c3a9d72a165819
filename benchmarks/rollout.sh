#!/usr/bin/env bash
# How fast is rollout? Generated tokens/s of mmupt's rollout engine next to transformers' generate on
# the same machine, config, batch, prompt length, new tokens, sampling and threads. Markdown table.
#
#   benchmarks/rollout.sh [THREADS]
set -euo pipefail
. "$(dirname "$0")/lib.sh"
bench_setup rollout "${1:-}"

# name, config, batch, prompt length, new tokens, image side
cases=(
  "quickstart-size VL|benchmarks/configs/quickstart_vl.json|8|32|64|56"
  "0.5B shape, 2 layers|benchmarks/configs/qwen2_0_5b_2layers.json|8|32|32|0"
)
bench_heading "rollout: generated tokens/s"
echo "| case | batch x (prompt + new) | mmupt tokens/s | transformers tokens/s | ratio |"
echo "|---|---|---|---|---|"
for c in "${cases[@]}"; do
    IFS='|' read -r name cfg b p n side <<<"$c"
    ours=$(build/benchmarks/rollout "$cfg" "$b" "$p" "$n" "$side")
    theirs=$(python3 benchmarks/rollout_torch.py "$cfg" "$b" "$p" "$n" "$side" 2>/dev/null | tail -1)
    python3 - "$name" "$ours" "$theirs" <<'PY'
import json, sys
name, a, b = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
assert a["generated"] == b["generated"], (a, b)
print(f"| {name} | {a['batch']} x ({a['prompt']} + {a['new']}) | {a['tokens_per_s']:.0f} | {b['tokens_per_s']:.0f} | "
      f"{a['tokens_per_s'] / b['tokens_per_s']:.2f}x |")
PY
done
echo
echo "transformers $(python3 -c 'import transformers; print(transformers.__version__)'), torch $(python3 -c 'import torch; print(torch.__version__)'); sampling at temperature 1, no early stop."
