#!/usr/bin/env bash
# Checkpoint write/read throughput for a 0.5B-shape model (params + Adam m and v, ~5.9 GB) against
# plain write()/read() of the same bytes on the same disk, as one markdown table with the ratios.
#
#   benchmarks/checkpoint.sh [DIR] [LEARNERS] [REPS]      (defaults: a fresh directory under runs/, 1, 3)
#
# DIR must be on the disk whose speed matters: the default is the one real runs write to. Needs about
# 12 GB of free disk (one checkpoint and one baseline copy at a time) and 10 GB of memory. Builds
# (launch/build.sh); CKPT_BENCH overrides the binary (default build/benchmarks/checkpoint_bench).
set -euo pipefail
cd "$(dirname "$0")/.."
learners=${2:-1}
reps=${3:-3}
bin=${CKPT_BENCH:-build/benchmarks/checkpoint_bench}
if [ -z "${CKPT_BENCH:-}" ]; then ./launch/build.sh build >/dev/null; fi
if [ -n "${1:-}" ]; then
    dir=$1
else
    mkdir -p runs
    dir=$(mktemp -d runs/ckbench.XXXXXX)
    # The program removes what it wrote, but not after a failure: take the whole directory then.
    trap 'rm -rf "$dir"' EXIT
fi
out=$("$bin" benchmarks/configs/qwen2_0_5b.json "$dir" "$learners" "$reps")
echo "## checkpoint: write/read throughput, $(date -u +%Y-%m-%d), $(lscpu | sed -n 's/^Model name: *//p')"
echo
python3 - "$out" "$dir" <<'PY'
import json, sys
r, d = json.loads(sys.argv[1]), sys.argv[2]
print(f"Qwen2-0.5B shape: {r['floats']:,} floats x 3 (params, Adam m, v), {r['tensors']} weight tensors, "
      f"{r['learners']} optimizer shard(s); median of {r['reps']} runs in {d}; before each read: {r['cache']} "
      f"(pages still cached afterwards: checkpoint {100 * r['ckpt_read']['resident_after_drop']:.1f}%, "
      f"baseline {100 * r['raw_read']['resident_after_drop']:.1f}%)")
print()
print("| path | bytes | s | GB/s |")
print("|---|---|---|---|")
for key, name in (("ckpt_write", "checkpoint write (begin, optim, model, commit; fsync)"),
                  ("raw_write", "baseline write (write() 64 MiB pieces, fsync)"),
                  ("ckpt_read", "checkpoint read (meta, weights, optim; checksums)"),
                  ("raw_read", "baseline read (read() 64 MiB pieces)")):
    p = r[key]
    print(f"| {name} | {p['bytes']:,} | {p['s']:.2f} | {p['gbps']:.2f} |")
print()
w, rd = r["ckpt_write_parts_s"], r["ckpt_read_parts_s"]
print(f"Checkpoint files: {r['ckpt_file_bytes']:,} bytes. Parts (s): write: begin {w['begin']:.2f}, optim "
      f"{w['optim']:.2f}, model {w['model']:.2f}, commit {w['commit']:.2f}; read: meta {rd['meta']:.2f}, weights "
      f"{rd['weights']:.2f}, optim {rd['optim']:.2f}. ckpt_sum64 in memory: {r['sum64_gbps']:.2f} GB/s.")
print()
for key, name in (("write_ratio", "write"), ("read_ratio", "read")):
    v = r[key]
    print(f"- {name}: checkpoint / baseline throughput = {v:.2f}; goal >= 0.7: {'met' if v >= 0.7 else 'NOT met'}")
PY
