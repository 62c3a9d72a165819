#!/usr/bin/env bash
# Where the GPU time goes: every kernel of a learner step and of a short rollout, timed one by one by
# Nsight Compute (ncu, gpu__time_duration only: one pass, no counter replay), summed by kernel name
# into a table (share of the total, launches, mean time). The shapes are the learner and rollout
# benchmarks' widths with 4 layers instead of 28/24: every kernel has its benchmark shape, there are
# just fewer of them, so ncu's per-launch overhead fits a short device visit.
#
#   benchmarks/gpu_profile.sh [learner|learner-flash|learner-cublas|learner-torch|rollout|rollout-warm|rollout-skinny|nsys:rollout|
#                              detail:KERNEL|detail-learner:KERNEL ...]
#                                                                              (default the first three)
#
# learner-torch is PyTorch eager's step of the same shape (benchmarks/model_cpu_torch.py, bf16): what
# each of its kernels costs beside ours (its weight initialisation's kernels are in its table too).
# learner-flash is the learner step with the fused attention kernels (MMUPT_ATTENTION=flash),
# learner-cublas with cuBLAS GEMMs around softmax kernels (MMUPT_ATTENTION=cublas; cuDNN's SDPA graphs
# are the default attention).
# rollout-warm is the rollout without ncu's cache flush before each kernel (--cache-control none).
# rollout-skinny is the rollout with MMUPT_GEMM_SKINNY=1 (the skinny GEMM's kernels by plan). nsys:rollout
# is Nsight Systems' trace of the whole 24-layer rollout (64 new tokens), graph nodes traced one by
# one: every kernel's time as it ran inside the replayed decode graphs, caches warm and launches
# overlapping as they do outside a profiler (its table has the same columns; no ncu needed for it).
# detail:KERNEL is ncu's detailed report (speed of light, memory and compute workload, occupancy,
# warp stalls) of the first launch of KERNEL (a regular expression) in the short rollout, e.g.
# detail:sample_mass_kernel or detail:attention_decode_kernel. detail-learner:KERNEL is the same for a
# kernel of the fused-attention learner step (MMUPT_ATTENTION=flash), e.g.
# detail-learner:attention_flash_dkdv_kernel. MMUPT_BUILD_DIR: the CUDA build (default build-gpu); OUT: where the results
# go; PROFILE_LIMIT_S: the time limit of each ncu run (default 240).
#
# Everything printed goes to OUT/profile.txt too, and ncu's rows of every table to
# OUT/profile-csv.tar.gz (two files: the device tool brings back few). The wall time of the same run
# without ncu is printed too: ncu serialises kernels and adds its own gaps (and flushes the caches
# before each kernel, which makes small ones look slower), so a table says which kernels cost the
# most, not what the whole step costs.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
build=${MMUPT_BUILD_DIR:-build-gpu}
out=${OUT:-gpu-profile-out}
mkdir -p "$out"
ncu=$(command -v ncu || ls /usr/local/cuda/bin/ncu /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)
[ -n "$ncu" ] || { echo "gpu_profile.sh: no ncu (Nsight Compute) on this machine" >&2; exit 1; }
names=("$@")
[ ${#names[@]} -gt 0 ] || names=(learner learner-torch rollout)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# CONFIG with num_hidden_layers set to 4 (the JSON is flat enough for one substitution).
few_layers() {
    sed -E 's/"num_hidden_layers": *[0-9]+/"num_hidden_layers": 4/' "$1" >"$tmp/$(basename "$1")"
    echo "$tmp/$(basename "$1")"
}

# profile NAME CMD...: the run's wall time alone, then under ncu; the table by kernel name.
profile() {
    local name=$1
    shift
    echo "## $name: $*"
    echo "without ncu: $("$@" 2>&1 | tail -1)"
    # shellcheck disable=SC2086 # NCU_EXTRA: more ncu options, word-split on purpose
    timeout "${PROFILE_LIMIT_S:-240}" "$ncu" --clock-control none ${NCU_EXTRA:-} --metrics gpu__time_duration.sum --csv --print-units base \
        --print-kernel-base function --log-file "$tmp/$name.csv" "$@" >"$tmp/$name.out" 2>&1 ||
        { echo "ncu failed:"; tail -5 "$tmp/$name.out"; return 1; }
    python3 - "$tmp/$name.csv" <<'PY'
import csv, sys
rows = list(csv.reader(l for l in open(sys.argv[1]) if l.startswith('"')))
head, body = rows[0], rows[1:]
k, v = head.index("Kernel Name"), head.index("Metric Value")
tot, cnt = {}, {}
for r in body:
    ns = float(r[v].replace(",", ""))
    tot[r[k]] = tot.get(r[k], 0.0) + ns
    cnt[r[k]] = cnt.get(r[k], 0) + 1
all_ns = sum(tot.values())
print(f"{len(body)} kernel launches, {all_ns / 1e6:.2f} ms of kernel time in all")
print(f"| kernel | share | ms | launches | us each |")
print("|---|---|---|---|---|")
for name in sorted(tot, key=tot.get, reverse=True)[:30]:
    print(f"| {name[:90]} | {100 * tot[name] / all_ns:.1f}% | {tot[name] / 1e6:.2f} | {cnt[name]} | "
          f"{tot[name] / cnt[name] / 1e3:.1f} |")
PY
    mkdir -p "$tmp/csv" && cp "$tmp/$name.csv" "$tmp/csv/"
    echo
}

# nsys_profile NAME CMD...: the kernels of one run under Nsight Systems, summed by name (graph
# nodes traced one by one).
nsys_profile() {
    local name=$1
    shift
    local nsys
    nsys=$(command -v nsys || ls /usr/local/cuda/bin/nsys /opt/nvidia/nsight-systems*/bin/nsys 2>/dev/null | head -1)
    echo "## $name (nsys): $*"
    [ -n "$nsys" ] || { echo "no nsys (Nsight Systems) on this machine"; return 1; }
    timeout "${PROFILE_LIMIT_S:-240}" "$nsys" profile -t cuda --cuda-graph-trace=node --force-overwrite true \
        -o "$tmp/$name" "$@" >"$tmp/$name.out" 2>&1 || { echo "nsys failed:"; tail -5 "$tmp/$name.out"; return 1; }
    grep '^{"impl"' "$tmp/$name.out" | tail -1
    "$nsys" stats -r cuda_gpu_kern_sum -f csv -o "$tmp/$name" "$tmp/$name.nsys-rep" >/dev/null 2>&1
    python3 - "$tmp/${name}_cuda_gpu_kern_sum.csv" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
tot = sum(float(r["Total Time (ns)"]) for r in rows)
print(f"{sum(int(r['Instances']) for r in rows)} kernels, {tot / 1e6:.2f} ms of kernel time in all")
print("| kernel | share | ms | launches | us each |")
print("|---|---|---|---|---|")
for r in rows[:30]:
    t = float(r["Total Time (ns)"])
    print(f"| {r['Name'][:90]} | {100 * t / tot:.1f}% | {t / 1e6:.2f} | {r['Instances']} | {float(r['Avg (ns)']) / 1e3:.1f} |")
PY
    echo
}

# detail KERNEL: ncu's detailed sections for the first launch of KERNEL in the short rollout.
# detail KERNEL WHAT CMD...: ncu's detailed report of KERNEL's first launch in CMD.
detail() {
    local kernel=$1 what=$2
    shift 2
    echo "## detail: $kernel (first launch, in $what)"
    timeout "${PROFILE_LIMIT_S:-240}" "$ncu" --clock-control none --set detailed -k "regex:$kernel" -c 1 "$@" \
        2>&1 | grep -v '^==PROF==' | grep -v '^{"impl"' || echo "ncu failed"
    echo
}

for name in "${names[@]}"; do
    case $name in
        detail:?*) detail "${name#detail:}" "a rollout of 64 x (128 + 4) at the 0.5B widths, 4 layers" \
            "$build/benchmarks/rollout" --device --dtype bf16 "$(few_layers benchmarks/configs/qwen2_0_5b.json)" 64 128 4 ;;
        detail-learner:?*) MMUPT_ATTENTION=flash detail "${name#detail-learner:}" \
            "a fused-attention learner step of 8 x 384 at the 1.5B widths, 4 layers" "$build/benchmarks/model_cpu" \
            --device --dtype bf16 "$(few_layers benchmarks/configs/qwen2_1_5b.json)" 8 384 1 ;;
        learner) # one warm-up step and one timed step of 8 x 384 at the 1.5B widths
            profile learner "$build/benchmarks/model_cpu" --device --dtype bf16 \
                "$(few_layers benchmarks/configs/qwen2_1_5b.json)" 8 384 1 ;;
        learner-flash)
            MMUPT_ATTENTION=flash profile learner-flash "$build/benchmarks/model_cpu" --device --dtype bf16 \
                "$(few_layers benchmarks/configs/qwen2_1_5b.json)" 8 384 1 ;;
        learner-cublas)
            MMUPT_ATTENTION=cublas profile learner-cublas "$build/benchmarks/model_cpu" --device --dtype bf16 \
                "$(few_layers benchmarks/configs/qwen2_1_5b.json)" 8 384 1 ;;
        learner-torch)
            profile learner-torch python3 benchmarks/model_cpu_torch.py --device cuda --dtype bf16 \
                "$(few_layers benchmarks/configs/qwen2_1_5b.json)" 8 384 1 ;;
        rollout) # 64 prompts of 128 tokens and 16 new at the 0.5B widths (prefill, decode graphs)
            profile rollout "$build/benchmarks/rollout" --device --dtype bf16 \
                "$(few_layers benchmarks/configs/qwen2_0_5b.json)" 64 128 16 ;;
        rollout-warm) # the same with the caches as the kernel before left them (ncu's default flushes
            # them before each kernel): closer to a decode step inside its graph, where small kernels
            # find their inputs in L2
            NCU_EXTRA="--cache-control none" profile rollout-warm "$build/benchmarks/rollout" --device --dtype bf16 \
                "$(few_layers benchmarks/configs/qwen2_0_5b.json)" 64 128 16 ;;
        rollout-skinny)
            MMUPT_GEMM_SKINNY=1 profile rollout-skinny "$build/benchmarks/rollout" --device --dtype bf16 \
                "$(few_layers benchmarks/configs/qwen2_0_5b.json)" 64 128 16 ;;
        nsys:rollout) # the whole 0.5B decoder, 64 x (128 + 64)
            nsys_profile nsys-rollout "$build/benchmarks/rollout" --device --dtype bf16 \
                benchmarks/configs/qwen2_0_5b.json 64 128 64 ;;
        *) echo "gpu_profile.sh: unknown profile '$name' (learner, learner-flash, learner-cublas, learner-torch, rollout, rollout-warm, rollout-skinny, nsys:rollout, detail:KERNEL, detail-learner:KERNEL)" ;;
    esac
done 2>&1 | tee "$out/profile.txt"
[ -d "$tmp/csv" ] && tar -czf "$out/profile-csv.tar.gz" -C "$tmp/csv" .
