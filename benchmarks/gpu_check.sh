#!/usr/bin/env bash
# One visit to a GPU machine: build with the CUDA backend, run the gpu suite, the GPU benchmarks and
# the unit suite (in that order: the figures matter more than a CPU re-run), and leave every log plus
# a summary under ${OUT:-gpu-check-out}.
#
#   bash benchmarks/gpu_check.sh [--quick | --bench NAMES] [--no-unit]
#
#   --quick         environment, build and the gpu suite only
#   --bench NAMES   environment, build and only these benchmarks (a comma list of the *_cuda.sh
#                   stems: vl3b,learner,rollout,iteration), no test suite: the second call of a visit
#                   whose device time does not fit everything in one (the build is incremental then)
#   --no-unit       leave out the closing unit-suite run (CI runs it; spare the device time)
#
# Every step runs even when the one before failed (a visit is rare: it should bring back all it can)
# and has a time limit; the whole stays under GPU_CHECK_BUDGET_S seconds (default 480). Results:
# summary.txt (one line per step: PASS, FAIL, WARN, SKIP, TIMEOUT), env.log, build.log,
# test-gpu.log, test-unit.log, bench.log and logs.tar.gz (meson's logs) - at most 8 files, which is
# what the device tool brings back. Exit status 0 when nothing failed, 1 otherwise.
#
# Environment: OUT (results folder), BUILD_DIR (default build-gpu), GPU_CHECK_BUDGET_S, MMUPT_TREE
# (the commit to report as built: on the device machine git's HEAD may be stale). On the GPU
# machine meson/ninja come from /opt/torch/.venv/bin when missing, and the C libyaml from
# .deps/libyaml (launch/fetch_deps.sh; carry .deps) when the system has none (likewise any library
# extracted as .deps/NAME/usr/lib/x86_64-linux-gnu/pkgconfig). GPU benchmarks are the scripts
# benchmarks/*_cuda.sh, vl3b_cuda.sh first; each runs with MMUPT_BUILD_DIR set to the build folder,
# under a limit of 150 s or what its line "# gpu_check: timeout=SECONDS" asks.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
root=$PWD

quick=0 only= unit=1
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) quick=1 ;;
        --no-unit) unit=0 ;;
        --bench)
            [ $# -ge 2 ] || { echo "gpu_check.sh: --bench needs a list, e.g. rollout,iteration" >&2; exit 2; }
            only=,$2,
            for name in ${2//,/ }; do
                [ -f "benchmarks/${name}_cuda.sh" ] ||
                    { echo "gpu_check.sh: --bench: no benchmarks/${name}_cuda.sh" >&2; exit 2; }
            done
            shift ;;
        -h|--help) sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "gpu_check.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
    esac
    shift
done

# What was built: MMUPT_TREE when the caller names it (the device tool's copy of the tree carries a
# git HEAD that need not be the working tree it copied), else git's HEAD here.
tree=${MMUPT_TREE:-$(git rev-parse --short HEAD 2>/dev/null || echo 'no git')}
out=${OUT:-gpu-check-out}
mkdir -p "$out" || { echo "gpu_check.sh: cannot create $out" >&2; exit 1; }
out=$(cd "$out" && pwd)
build=${BUILD_DIR:-build-gpu}
budget=${GPU_CHECK_BUDGET_S:-480}
start=$SECONDS
# Meson's own logs are collected here and packed into one file at the end (few files come back).
extra=$(mktemp -d)
trap 'rm -rf "$extra"' EXIT
rm -f "$out"/{summary.txt,env.log,build.log,test-gpu.log,test-unit.log,bench.log,logs.tar.gz}

# ---- bookkeeping ----
rows=()
nfail=0
# record STATUS STEP SECONDS DETAIL: one summary row, echoed as it happens.
record() {
    rows+=("$(printf '%-7s %-22s %5s  %s' "$1" "$2" "$3s" "$4")")
    case "$1" in FAIL|TIMEOUT) nfail=$((nfail + 1)) ;; esac
    echo "== [$1] $2 ($3 s): $4"
}
# Seconds a step may take: what it asks for, but never past the budget (minus time to pack up).
limit() {
    local left=$((budget - (SECONDS - start) - 15))
    left=$(($1 < left ? $1 : left))
    echo $((left > 0 ? left : 0))
}
# logged LOG SECONDS CMD...: run CMD with a time limit, appending a header and its output to LOG.
# Status 125 when the budget left no time to start it.
logged() {
    local log=$1 t=$2
    shift 2
    printf '\n### %s (limit %s s, at +%s s)\n' "$*" "$t" "$((SECONDS - start))" >>"$log"
    # timeout 0 would mean no limit at all.
    [ "$t" -ge 5 ] || { echo "not run: out of the time budget" >>"$log"; return 125; }
    timeout -k 10 "$t" "$@" >>"$log" 2>&1
}

# Suite counts from meson's JSON test log: "P passed, F failed, S skipped[; failed: names]".
suite_counts() {
    python3 - "$1" <<'PY'
import json, sys
res = []
for line in open(sys.argv[1]):
    try:
        res.append(json.loads(line))
    except ValueError:  # the last line of a run stopped at its time limit
        pass
ok = [r["name"] for r in res if r["result"] in ("OK", "EXPECTEDFAIL")]
skip = [r["name"] for r in res if r["result"] == "SKIP"]
bad = [f'{r["name"]} ({r["result"]})' for r in res if r["name"] not in ok + skip]
s = f"{len(ok)} passed, {len(bad)} failed, {len(skip)} skipped"
print(s + ("; failed: " + ", ".join(bad) if bad else ""))
PY
}

# ---- 1. environment: tools on PATH, libyaml, what the machine is ----
t0=$SECONDS
. launch/env.sh
. benchmarks/lib.sh
gpu_machine_env "$root"
notes=("${gpu_env_notes[@]}")
deps_used=("${gpu_env_deps[@]}")
# The pkg-config modules root meson.build asks for (hdf5 and MPI are found by their compiler
# wrappers instead): a missing one fails the configure step, so name it up front.
missing=()
for mod in yaml-0.1 jansson libpcre2-8 libutf8proc libpng libjpeg; do
    pkg-config --exists "$mod" 2>/dev/null || missing+=("$mod")
done
yaml_from=system
for d in "${deps_used[@]}"; do [[ "$d" == .deps/libyaml/* ]] && yaml_from=.deps/libyaml; done
[[ " ${missing[*]} " == *" yaml-0.1 "* ]] &&
    yaml_from="MISSING (run launch/fetch_deps.sh on a development machine and carry .deps)"
{
    echo "date:     $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "host:     $(uname -a)"
    echo "os:       $(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME")"
    echo "cpus:     $(nproc), memory: $(free -g | awk '/^Mem:/ {print $2 " GiB"}')"
    echo "tree:     $root ($tree)"
    echo "libyaml:  $yaml_from"
    echo ".deps:    ${deps_used[*]:-none used}"
    echo "missing:  ${missing[*]:-no pkg-config module}"
    echo "PATH:     $PATH"
    echo "notes:    ${notes[*]:-none}"
    for tool in meson ninja nvcc gcc python3 pkg-config mpicc; do
        printf '%-12s%s\n' "$tool" "$(command -v "$tool" || echo 'not found')"
    done
} >"$out/env.log"
logged "$out/env.log" 30 nvidia-smi
logged "$out/env.log" 30 nvcc --version
logged "$out/env.log" 10 meson --version
logged "$out/env.log" 10 gcc --version
logged "$out/env.log" 10 pkg-config --modversion yaml-0.1
logged "$out/env.log" 10 pkg-config --cflags --libs yaml-0.1
logged "$out/env.log" 10 ls -l /usr/include/nccl.h /usr/include/x86_64-linux-gnu/cudnn.h /usr/local/cuda/include/cudnn.h
device=$(timeout 30 nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null |
    head -1)
device=${device:-"no GPU (nvidia-smi absent or failed)"}
nvcc_v=$(nvcc --version 2>/dev/null | sed -n 's/.*release \([0-9.]*\).*/\1/p')
st=PASS
[ "${#missing[@]}" = 0 ] || st=FAIL
record "$st" environment $((SECONDS - t0)) "device: $device; nvcc ${nvcc_v:-not found}; libyaml: $yaml_from$([ "$st" = PASS ] || echo "; missing pkg-config modules: ${missing[*]}")"

# ---- 2. configure and compile ----
# No --werror: another compiler's new warnings must not stop the tests from running; they are counted
# and listed instead (the development machines build with --werror).
t0=$SECONDS
have_build=0
cuda_build=0
reused=0
if [ -f "$build/build.ninja" ]; then
    record PASS configure 0 "reused $build"
    reused=1
else
    if logged "$out/build.log" "$(limit 120)" meson setup "$build" -Dcuda=enabled; then
        record PASS configure $((SECONDS - t0)) "$build, -Dcuda=enabled"
    else
        rc=$?
        record FAIL configure $((SECONDS - t0)) "-Dcuda=enabled (rc $rc): $(grep -m1 'ERROR' "$out/build.log" || echo 'see build.log')"
        # A CPU build still shows whether the host code builds and passes here.
        rm -rf "$build"
        t0=$SECONDS
        if logged "$out/build.log" "$(limit 120)" meson setup "$build" -Dcuda=disabled; then
            record WARN configure-cpu $((SECONDS - t0)) "fell back to -Dcuda=disabled for the unit suite"
        else
            record FAIL configure-cpu $((SECONDS - t0)) "-Dcuda=disabled failed too: $(grep 'ERROR' "$out/build.log" | tail -1)"
        fi
    fi
fi
cp "$build/meson-logs/meson-log.txt" "$extra/meson-log.txt" 2>/dev/null
# The CUDA backend is in when its define reaches the compile lines.
grep -q MMUPT_HAVE_CUDA "$build/build.ninja" 2>/dev/null && cuda_build=1
if [ -f "$build/build.ninja" ]; then
    t0=$SECONDS
    # -k 0: build every target that can be built, so the tests of unaffected modules still run.
    logged "$out/build.log" "$(limit 300)" ninja -C "$build" -k 0
    rc=$?
    warnings=$(grep -c 'warning:' "$out/build.log")
    if [ "$rc" = 0 ]; then
        record PASS compile $((SECONDS - t0)) "$warnings warning(s)$([ "$reused" = 1 ] && echo ' in the files rebuilt')"
    elif [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
        record TIMEOUT compile $((SECONDS - t0)) "stopped at the limit; tests run with what was built"
    else
        record FAIL compile $((SECONDS - t0)) "$(grep -c 'FAILED:' "$out/build.log") target(s) failed; first: $(grep -m1 'error:' "$out/build.log" | cut -c1-160)"
    fi
    [ "$warnings" = 0 ] || record WARN warnings 0 "$(grep -m1 'warning:' "$out/build.log" | cut -c1-160) (all in build.log)"
    have_build=1
    if [ -x "$build/mmupt" ]; then
        logged "$out/env.log" 30 "$build/mmupt" version
        record PASS "mmupt version" 0 "$(sed -n '/mmupt version/,$p' "$out/env.log" | grep -E '^(cuda|gpu) ' | tr -s ' ' | paste -sd ';')"
    fi
else
    record SKIP compile 0 "not configured"
fi

# ---- 3. test suites ----
# run_suite NAME SECONDS: meson test --suite NAME without rebuilding; its counts in the summary.
run_suite() {
    local name=$1 t0=$SECONDS log=$out/test-$1.log rc
    logged "$log" "$(limit "$2")" meson test -C "$build" --suite "$name" --no-rebuild --print-errorlogs \
        --num-processes "$(nproc)"
    rc=$?
    if [ "$rc" = 125 ]; then
        record SKIP "$name suite" 0 "out of time budget"
        return
    fi
    if [ ! -f "$build/meson-logs/testlog.json" ] || grep -q 'No suitable tests defined' "$log"; then
        record SKIP "$name suite" $((SECONDS - t0)) "no $name tests in this build"
        return
    fi
    cp "$build/meson-logs/testlog.json" "$extra/testlog-$name.json"
    cp "$build/meson-logs/testlog.txt" "$extra/testlog-$name.txt"
    local counts st
    counts=$(suite_counts "$build/meson-logs/testlog.json")
    if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then st=TIMEOUT
    elif [ "$rc" != 0 ] || [[ "$counts" != *" 0 failed"* ]]; then st=FAIL
    elif [[ "$counts" == "0 passed"* ]]; then st=SKIP
    else st=PASS
    fi
    record "$st" "$name suite" $((SECONDS - t0)) "$counts"
}
if [ -n "$only" ]; then
    record SKIP "gpu suite" 0 "--bench"
elif [ "$have_build" = 1 ] && [ "$cuda_build" = 1 ]; then
    rm -f "$build/meson-logs/testlog.json"
    run_suite gpu 300
else
    record SKIP "gpu suite" 0 "no CUDA build"
fi

# ---- 4. benchmarks: a PyTorch reference on this card, then benchmarks/*_cuda.sh ----
bench() {
    local log=$out/bench.log t0=$SECONDS
    # What the card gives PyTorch: the reference the project's own kernels are compared with.
    logged "$log" "$(limit 90)" python3 - <<'PY'
import time
import torch
print(f"torch {torch.__version__}, cuda available: {torch.cuda.is_available()}")
if not torch.cuda.is_available():
    raise SystemExit(3)
print(f"device: {torch.cuda.get_device_name(0)}, cuda {torch.version.cuda}, cudnn {torch.backends.cudnn.version()}")
n = 8192
a, b = (torch.randn(n, n, device="cuda", dtype=torch.bfloat16) for _ in range(2))
for _ in range(3):
    a @ b
torch.cuda.synchronize()
reps, t = 20, time.perf_counter()
for _ in range(reps):
    a @ b
torch.cuda.synchronize()
dt = (time.perf_counter() - t) / reps
print(f"bf16 matmul {n}^3: {2 * n**3 / dt / 1e12:.0f} TFLOP/s")
x = torch.empty(1 << 28, device="cuda", dtype=torch.float32)
torch.cuda.synchronize()
t = time.perf_counter()
for _ in range(10):
    x.mul_(1.0001)
torch.cuda.synchronize()
print(f"fp32 in-place scale, 1 GiB: {2 * x.numel() * 4 * 10 / (time.perf_counter() - t) / 1e9:.0f} GB/s")
PY
    local rc=$?
    case $rc in
        0) record PASS "torch reference" $((SECONDS - t0)) "$(grep -E 'TFLOP|GB/s' "$log" | paste -sd ';')" ;;
        3) record SKIP "torch reference" $((SECONDS - t0)) "torch sees no CUDA device" ;;
        125) record SKIP "torch reference" 0 "out of time budget" ;;
        124|137) record TIMEOUT "torch reference" $((SECONDS - t0)) "see bench.log" ;;
        *) record FAIL "torch reference" $((SECONDS - t0)) "rc $rc: $(tail -1 "$log" | cut -c1-160)" ;;
    esac

    # The Qwen2.5-VL-3B step first: issue 10's headline figure, with no PyTorch run beside it, so
    # it is not the one a spent budget skips. Then the rollout (the figure nearest its target, with
    # the skinny GEMM's A/B rows), then the others in name order.
    local found=0 script want t order=(benchmarks/vl3b_cuda.sh benchmarks/rollout_cuda.sh)
    for script in benchmarks/*_cuda.sh; do
        [[ " ${order[*]} " == *" $script "* ]] || order+=("$script")
    done
    for script in "${order[@]}"; do
        [ -f "$script" ] || continue
        local stem=${script##*/}
        stem=${stem%_cuda.sh}
        [ -z "$only" ] || [[ "$only" == *",$stem,"* ]] || continue
        found=1
        t0=$SECONDS
        want=$(sed -n 's/^# gpu_check: timeout=\([0-9]*\).*/\1/p' "$script" | head -1)
        want=${want:-150}
        t=$(limit "$want")
        if [ "$t" -lt "$want" ] && [ "$t" -lt 20 ]; then
            record SKIP "$(basename "$script")" 0 "out of time budget"
            continue
        fi
        MMUPT_BUILD_DIR=$build logged "$log" "$t" bash "$script"
        rc=$?
        case $rc in
            0) record PASS "$(basename "$script")" $((SECONDS - t0)) "table in bench.log" ;;
            124|137) record TIMEOUT "$(basename "$script")" $((SECONDS - t0)) "limit $t s" ;;
            *) record FAIL "$(basename "$script")" $((SECONDS - t0)) "rc $rc: $(tail -1 "$log" | cut -c1-160)" ;;
        esac
    done
    [ "$found" = 1 ] || record SKIP "GPU benchmarks" 0 "none yet (benchmarks/*_cuda.sh)"
}
if [ "$quick" = 1 ]; then
    record SKIP benchmarks 0 "--quick"
else
    bench
fi
# The unit suite last: it catches platform differences, but the benchmark figures are what a rare
# visit must not run out of time for.
no_unit=
[ "$unit" = 0 ] && no_unit=--no-unit
[ -n "$only" ] && no_unit=--bench
[ "$quick" = 1 ] && no_unit=--quick
if [ -n "$no_unit" ]; then
    record SKIP "unit suite" 0 "$no_unit"
elif [ "$have_build" = 1 ]; then
    rm -f "$build/meson-logs/testlog.json"
    run_suite unit 180
else
    record SKIP "unit suite" 0 "no build"
fi

# ---- 5. pack up: meson's logs in one archive, the summary last ----
tar -czf "$out/logs.tar.gz" -C "$extra" . 2>/dev/null
{
    echo "mmupt GPU check, $(date -u +%Y-%m-%dT%H:%M:%SZ), $([ "$quick" = 1 ] && echo quick || echo full)," \
        "$((SECONDS - start)) s of a $budget s budget"
    echo "device: $device"
    echo "tree:   $tree, build folder $build, libyaml $yaml_from"
    echo
    printf '%-7s %-22s %5s  %s\n' status step time detail
    printf '%s\n' "${rows[@]}"
    echo
    echo "result: $([ "$nfail" = 0 ] && echo "OK (no step failed)" || echo "$nfail step(s) FAILED or timed out")"
} >"$out/summary.txt"
echo
cat "$out/summary.txt"
echo "logs in $out: $(cd "$out" && ls | paste -sd ' ')"
[ "$nfail" = 0 ]
