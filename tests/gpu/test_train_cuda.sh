#!/usr/bin/env bash
# `mmupt train` on the GPU (suite gpu; skips without a device): the tiny fixture trained with
# cluster.backend=cuda, colocated and split (1 rollout + 1 learner on the one GPU; weights sent the host
# and the device way), in fp32 and in bf16,
# with the decode steps as CUDA graphs. Each run must finish with finite metrics, say which precision
# it ran, keep its graphs on (no "CUDA graphs off" warning), and the fp32 run must track the CPU run
# step by step: response lengths, rewards and the entropy of the same samples within fp32 rounding
# (the GPU's sums run in other orders, so not bit for bit: a sampled token may in rare near-ties
# differ, which this test would report as a length or reward mismatch - then look at the log).
# usage: test_train_cuda.sh MMUPT SOURCE_ROOT
set -u
mmupt=$(realpath "$1")
root=$2
. "$root/tests/lib.sh"
mpi_setup
export OMP_NUM_THREADS=1
cd "$root"
if "$mmupt" version | grep -q "^gpu *none"; then
    echo "SKIP: no usable CUDA device ($("$mmupt" version | grep '^gpu'))"
    exit 77
fi

# gpu_train NAME NP ROLLOUT_RANKS [OVERRIDE ...]: a run that must finish; its log in $tmp/NAME.log.
gpu_train() {
    local name=$1 np=$2 R=$3
    shift 3
    run timeout 600 mpirun -q -np "$np" "$mmupt" train configs/tiny.yaml run.output_dir="$tmp/$name" \
        cluster.rollout_ranks="$R" "$@"
    cp "$tmp/err" "$tmp/$name.log"
    expect "$name: finishes" 0 "step 2/2" "final weights checksum"
    if grep -q "CUDA graphs off" "$tmp/$name.log"; then fail "$name: decode graphs stay on" "$(grep 'graphs off' "$tmp/$name.log")"
    else ok "$name: decode graphs stay on"; fi
    if python3 - "$tmp/$name/metrics.jsonl" <<'PY'
import json, math, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert len(rows) == 2, rows
for r in rows:
    for k, v in r.items():
        assert not isinstance(v, float) or math.isfinite(v), (k, v)
PY
    then ok "$name: 2 finite metric records"; else fail "$name: 2 finite metric records" "$(cat "$tmp/$name/metrics.jsonl")"; fi
}

gpu_train cpu 1 0 cluster.backend=cpu
gpu_train fp32 1 0 cluster.backend=cuda model.dtype=fp32
if grep -q "device: .*, fp32:" "$tmp/fp32.log"; then ok "fp32: says it runs fp32 on the device"
else fail "fp32: says it runs fp32 on the device" "$(grep 'device:' "$tmp/fp32.log")"; fi
gpu_train bf16 1 0 cluster.backend=cuda model.dtype=bf16
if grep -q "device: .*, bf16 GEMMs on fp32 master weights" "$tmp/bf16.log"; then ok "bf16: says it runs bf16 GEMMs"
else fail "bf16: says it runs bf16 GEMMs" "$(grep 'device:' "$tmp/bf16.log")"; fi
gpu_train split 2 1 cluster.backend=cuda model.dtype=bf16
# New weights the device way (cluster.weight_broadcast=device): NCCL where the two ranks have a GPU
# each, else (one GPU: NCCL refuses two ranks on one device) staged through host buffers. Either way
# learner and rollout rank end with the host way's weights - the GPU's kernels sum in fixed orders.
gpu_train splitdev 2 1 cluster.backend=cuda model.dtype=bf16 cluster.weight_broadcast=device
weights() { grep -o "weights checksum [0-9a-f]*" "$tmp/$1.log" | sort | paste -sd ' '; }
if [ -n "$(weights split)" ] && [ "$(weights split)" = "$(weights splitdev)" ] &&
    grep -q "1 version(s) the device way" "$tmp/splitdev.log"; then
    ok "weight_broadcast=device: the host way's weights on learner and rollout rank ($(grep -o 'the device way ([A-Za-z ]*)' "$tmp/splitdev.log"))"
else fail "weight_broadcast=device on the GPU" "$(weights split) vs $(weights splitdev)" \
    "$(grep -E 'weights to rollout|NCCL' "$tmp/splitdev.log")"; fi

# The fp32 device run against the CPU run, step by step.
if python3 - "$tmp/cpu/metrics.jsonl" "$tmp/fp32/metrics.jsonl" <<'PY'
import json, sys
a = [json.loads(l) for l in open(sys.argv[1])]
b = [json.loads(l) for l in open(sys.argv[2])]
for x, y in zip(a, b):
    for k in ("response/length_mean", "reward/mean", "reward/majority_ratio"):
        assert x[k] == y[k], (x["step"], k, x[k], y[k])
    for k in ("entropy", "loss", "kl"):
        assert abs(x[k] - y[k]) <= 1e-4 * (1 + abs(x[k])), (x["step"], k, x[k], y[k])
    print(f"step {x['step']}: entropy cpu {x['entropy']:.6f} cuda {y['entropy']:.6f}")
PY
then ok "fp32 on the GPU tracks the CPU run (lengths, rewards, entropy, loss)"
else fail "fp32 on the GPU tracks the CPU run" "$(head -c 800 "$tmp/cpu/metrics.jsonl")" "$(head -c 800 "$tmp/fp32/metrics.jsonl")"; fi
finish
