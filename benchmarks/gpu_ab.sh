#!/usr/bin/env bash
# A/B of a compile-time switch of the CUDA kernels on one GPU: the rollout benchmark of the CUDA build
# (MMUPT_BUILD_DIR, default build-gpu, built already - e.g. by gpu_check.sh) against the same tree
# built again into BUILD_B (default build-gpu-b) with FLAGS added to every nvcc command
# (NVCC_APPEND_FLAGS), each with cuBLAS's GEMMs and with the skinny GEMM (MMUPT_GEMM_SKINNY=1) and
# with decode attention split over the cache rows and not (MMUPT_DECODE_SPLIT), the eight runs
# repeated REPEAT times (default 1) in alternation so drift hits both sides alike.
#
#   benchmarks/gpu_ab.sh [FLAGS]        (default: -DMMUPT_NO_L2_PREFETCH, kernels/cuda/pdl.cuh)
#
# Prints every run's JSON line and a table of the median decode step and tokens/s per build and GEMM.
# The B build finds its tools and libraries as gpu_check.sh does (lib.sh's gpu_machine_env).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
. launch/env.sh
. benchmarks/lib.sh
gpu_machine_env "$PWD"
flags=${1:--DMMUPT_NO_L2_PREFETCH}
a=${MMUPT_BUILD_DIR:-build-gpu} b=${BUILD_B:-build-gpu-b} repeat=${REPEAT:-1}
cfg=benchmarks/configs/qwen2_0_5b.json
[ -x "$a/benchmarks/rollout" ] || { echo "gpu_ab.sh: no $a/benchmarks/rollout (build first)" >&2; exit 1; }
if [ ! -f "$b/build.ninja" ]; then
    meson setup "$b" -Dcuda=enabled >/tmp/gpu_ab_setup.log 2>&1 ||
        { tail -20 /tmp/gpu_ab_setup.log; echo "gpu_ab.sh: meson setup $b failed" >&2; exit 1; }
fi
NVCC_APPEND_FLAGS="$flags" ninja -C "$b" benchmarks/rollout >/tmp/gpu_ab_build.log 2>&1 ||
    { tail -20 /tmp/gpu_ab_build.log; echo "gpu_ab.sh: building $b with $flags failed" >&2; exit 1; }
echo "## A: $a; B: $b with $flags; $(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)"
runs=()
for ((r = 1; r <= repeat; r++)); do
    for dir in "$a" "$b"; do
        for split in 1 0; do
            for skinny in 0 1; do
                row=$(MMUPT_DECODE_SPLIT=$split MMUPT_GEMM_SKINNY=$skinny "$dir/benchmarks/rollout" --device \
                    --dtype bf16 "$cfg" 64 128 256) || row='{}'
                side=$([ "$dir" = "$a" ] && echo A || echo B)
                echo "$side split=$split skinny=$skinny: $row"
                runs+=("$side $split $skinny $row")
            done
        done
    done
done
python3 - "${runs[@]}" <<'PY'
import json, statistics, sys
got = {}
for run in sys.argv[1:]:
    side, split, skinny, raw = run.split(" ", 3)
    key = (side, split, skinny)
    try:
        j = json.loads(raw)
        got.setdefault(key, []).append((j["step_decode_ms"], j["tokens_per_s"]))
    except (ValueError, KeyError):
        got.setdefault(key, [])
print("| build | decode attention | GEMM | decode step (ms, median) | tokens/s (median) | runs |")
print("|---|---|---|---|---|---|")
for (side, split, skinny), v in sorted(got.items()):
    gemm = "skinny" if skinny == "1" else "cuBLAS"
    att = "split" if split == "1" else "one block"
    if v:
        print(f"| {side} | {att} | {gemm} | {statistics.median(x[0] for x in v):.3f} | "
              f"{statistics.median(x[1] for x in v):.0f} | {len(v)} |")
    else:
        print(f"| {side} | {att} | {gemm} | failed | - | 0 |")
PY
