#!/usr/bin/env bash
# How fast is the CPU model (forward + backward of a next-token loss), next to PyTorch on the same
# machine, config, batch, threads and loss? Prints a markdown table with the ratio.
#
#   benchmarks/model_cpu.sh [THREADS]       (default: all cores)
#
# Needs a build (launch/build.sh) and PyTorch + transformers from PyPI (tools/requirements.txt).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
bench_setup model_cpu "${1:-}"

# name, config, batch, seq, iters, image side
cases=(
  "quickstart-size VL|benchmarks/configs/quickstart_vl.json|8|64|5|56"
  "0.5B shape, 2 layers|benchmarks/configs/qwen2_0_5b_2layers.json|2|128|3|0"
)
bench_heading "model_cpu: forward + backward"
echo "| case | batch x seq | mmupt tokens/s | PyTorch tokens/s | ratio | mmupt loss | PyTorch loss |"
echo "|---|---|---|---|---|---|---|"
for c in "${cases[@]}"; do
    IFS='|' read -r name cfg b s it side <<<"$c"
    ours=$(build/benchmarks/model_cpu "$cfg" "$b" "$s" "$it" "$side")
    theirs=$(python3 benchmarks/model_cpu_torch.py "$cfg" "$b" "$s" "$it" "$side" 2>/dev/null | tail -1)
    python3 - "$name" "$ours" "$theirs" <<'PY'
import json, sys
name, a, b = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
print(f"| {name} | {a['batch']} x {a['seq']} | {a['tokens_per_s']:.0f} | {b['tokens_per_s']:.0f} | "
      f"{a['tokens_per_s'] / b['tokens_per_s']:.2f}x | {a['loss']:.4f} | {b['loss']:.4f} |")
PY
done
echo
echo "PyTorch $(python3 -c 'import torch; print(torch.__version__)'), transformers $(python3 -c 'import transformers; print(transformers.__version__)'); the losses differ because the random weights differ."
