#!/usr/bin/env bash
# The whole CPU test suite, from a fresh machine: setup, build, test; the CUDA code's tests on the
# SIMT interpreter (src/simt: the kernels run on CPU fibers); then the same suite again under
# AddressSanitizer + UndefinedBehaviorSanitizer.
#
#   launch/test.sh            everything CI runs (the Slurm suite needs root: CI runs as root)
#   launch/test.sh --quick    skip the SIMT and sanitizer passes
#   launch/test.sh --gpu      only the GPU suite (needs a CUDA device; see docs/testing.md)
#
# The `gpu` suite is not part of the default run: CI has no GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
quick=0
gpu=0
for arg in "$@"; do
    case "$arg" in
        --quick) quick=1 ;;
        --gpu) gpu=1 ;;
        -h|--help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "test.sh: unknown option '$arg' (see --help)" >&2; exit 2 ;;
    esac
done

if [ "$gpu" = 1 ]; then ./launch/setup.sh; else ./launch/setup.sh --slurm; fi
. launch/env.sh
start=$(date +%s)

# Counts from meson's JSON test log, as one plain line.
summarize() {
    python3 - "$1/meson-logs/testlog.json" "$2" <<'PY'
import json, sys
res = [json.loads(l)["result"] for l in open(sys.argv[1]) if l.strip()]
ok = sum(r in ("OK", "EXPECTEDFAIL") for r in res)
skip = sum(r == "SKIP" for r in res)
bad = len(res) - ok - skip
print(f"{sys.argv[2]}: {ok} passed, {bad} failed, {skip} skipped")
PY
}

if [ "$gpu" = 1 ]; then
    ./launch/build.sh build -Dcuda=enabled
    meson test -C build --suite gpu --print-errorlogs
    summarize build "gpu suite"
    exit 0
fi

status=0
section() { echo "== $* ($(( $(date +%s) - start )) s in) =="; }
section "build (CUDA backend compiled when the toolkit is present)"
./launch/build.sh build
build/mmupt version | grep -E "^(cuda|gpu) "
section "tests"
meson test -C build --no-suite gpu --no-suite cudnn-plan --print-errorlogs || status=1
summarize build "tests" | tee build/summary.txt

if [ "$quick" = 0 ]; then
    section "the CUDA code on the SIMT interpreter (src/simt/README.md)"
    # Only the simt suite's programs: the rest of this build is the first build's code again.
    if [ ! -f build-simt/build.ninja ]; then
        meson setup build-simt --werror -Dcuda=disabled -Dsimt=true >build-simt.setup.log 2>&1 ||
            { cat build-simt.setup.log; exit 1; }
        rm -f build-simt.setup.log
    fi
    simt_targets=$(meson introspect build-simt --tests | python3 -c '
import json, os, sys
root = os.path.realpath("build-simt")
print(" ".join(sorted({os.path.relpath(t["cmd"][0], root) for t in json.load(sys.stdin)
                       if "mmupt:simt" in t["suite"] and os.path.realpath(t["cmd"][0]).startswith(root)})))')
    # shellcheck disable=SC2086
    ninja -C build-simt $simt_targets
    meson test -C build-simt --no-rebuild --suite simt --print-errorlogs || status=1
    summarize build-simt "tests (SIMT interpreter)" | tee build-simt/summary.txt

    section "build with AddressSanitizer + UndefinedBehaviorSanitizer (host code)"
    # CUDA code is compiled and checked by the first build; nvcc does not take -fsanitize.
    ./launch/build.sh build-asan -Db_sanitize=address,undefined -Db_lundef=false -Dcuda=disabled
    section "tests under sanitizers"
    # The Slurm suite tests the batch scripts, not memory safety: once is enough. The quickstart's
    # pipeline (suite pipeline) chains stages that each have their own tests here.
    # Shorter here, the same paths: the resume test's kill-and-resume series (2 kills over 6 steps,
    # not 5 over 12) and the train test without its second preempt-and-resume (a 4-step job twice)
    # and its 4-rank layout (the first pass runs it).
    MMUPT_TEST_RESUME_KILLS=2 MMUPT_TEST_RESUME_STEPS=6 MMUPT_TEST_TRAIN_SHORT=1 \
        meson test -C build-asan --no-suite gpu --no-suite slurm --no-suite pipeline --print-errorlogs || status=1
    summarize build-asan "tests (sanitizers)" | tee build-asan/summary.txt
fi

total_pass=0; total_fail=0; total_skip=0
for f in build/summary.txt build-simt/summary.txt build-asan/summary.txt; do
    [ "$quick" = 1 ] && [ "$f" != build/summary.txt ] && continue
    read -r p fl s < <(sed -E 's/.*: ([0-9]+) passed, ([0-9]+) failed, ([0-9]+) skipped/\1 \2 \3/' "$f")
    total_pass=$((total_pass + p)); total_fail=$((total_fail + fl)); total_skip=$((total_skip + s))
done
echo "== done in $(( $(date +%s) - start )) s =="
echo "$total_pass passed, $total_fail failed, $total_skip skipped"
exit $status
