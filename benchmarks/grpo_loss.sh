#!/usr/bin/env bash
# Fused GRPO loss vs the unfused composition on a 0.5B-shape head (H=896, V=151936, 4096 response
# tokens): peak memory and time, each path in its own process, as one markdown table with ratios.
#
#   benchmarks/grpo_loss.sh [THREADS] [T] [ITERS]      (defaults: 2, 4096, 1)
#
# "extra" is the peak resident memory above what the inputs and outputs (hidden, W, dhidden, dW)
# already take, i.e. the path's working memory; "peak" is the whole process. Needs a build
# (launch/build.sh); GRPO_BENCH overrides the binary (default build/benchmarks/grpo_loss).
set -euo pipefail
cd "$(dirname "$0")/.."
threads=${1:-2}
T=${2:-4096}
iters=${3:-1}
H=896
V=151936
export OMP_NUM_THREADS=$threads OPENBLAS_NUM_THREADS=1
bin=${GRPO_BENCH:-build/benchmarks/grpo_loss}
if [ -z "${GRPO_BENCH:-}" ]; then ./launch/build.sh build >/dev/null; fi
fused=$("$bin" fused "$T" "$H" "$V" "$iters")
unfused=$("$bin" unfused "$T" "$H" "$V" "$iters")
echo "## grpo_loss: lm_head + GRPO loss, forward + backward, $(date -u +%Y-%m-%d), $(lscpu | sed -n 's/^Model name: *//p'), $threads thread(s)"
echo
python3 - "$fused" "$unfused" <<'PY'
import json, sys
f, u = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(f"T={f['T']} tokens, H={f['H']}, V={f['V']}; inputs and outputs (base): {f['base_mib']:.0f} MiB")
print()
print("| path | time (s) | peak RSS (MiB) | extra over base (MiB) | loss | entropy |")
print("|---|---|---|---|---|---|")
for r in (u, f):
    print(f"| {r['path']} | {r['seconds']:.2f} | {r['peak_mib']:.0f} | {r['extra_mib']:.0f} | {r['loss']:.6f} | {r['entropy']:.4f} |")
print(f"| unfused / fused | {u['seconds'] / f['seconds']:.2f}x | {u['peak_mib'] / f['peak_mib']:.2f}x | "
      f"{u['extra_mib'] / max(f['extra_mib'], 1e-9):.1f}x | | |")
PY
