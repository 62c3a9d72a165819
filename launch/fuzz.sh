#!/usr/bin/env bash
# Fuzz the parsers with libFuzzer (clang, ASan + UBSan) for a while, then merge new interesting
# inputs into the committed corpus (tests/fuzz/corpus/NAME), which CI replays on every run.
#
#   launch/fuzz.sh [SECONDS_PER_TARGET] [TARGET ...]     default: 120 s, every target
#
# A crash leaves its input as tests/fuzz/crash-* (git-ignored) and stops with a non-zero status;
# reproduce with build-fuzz/tests/fuzz_NAME tests/fuzz/crash-...
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-120}
shift || true
./launch/setup.sh --fuzz
. launch/env.sh
if [ ! -f build-fuzz/build.ninja ]; then
    CC=clang meson setup build-fuzz -Dfuzz=true -Dcuda=disabled -Db_sanitize=address,undefined -Db_lundef=false >/dev/null
fi
meson compile -C build-fuzz >/dev/null
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=($(ls build-fuzz/tests | sed -n 's/^fuzz_\([a-z_]*\)$/\1/p'))
export ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
for t in "${targets[@]}"; do
    corpus=tests/fuzz/corpus/$t
    work=tests/fuzz/work/$t
    mkdir -p "$corpus" "$work"
    seeds=("$corpus")
    case "$t" in
        config) seeds+=(configs tests/fixtures/config/bad) ;;
        model_config) seeds+=(tests/fixtures/model_configs) ;;
    esac
    dict=()
    [ -f "tests/fuzz/$t.dict" ] && dict=(-dict="tests/fuzz/$t.dict")
    echo "fuzz: $t for ${secs}s"
    build-fuzz/tests/fuzz_$t "$work" "${seeds[@]}" -max_total_time="$secs" -max_len=4096 \
        -artifact_prefix=tests/fuzz/crash-$t- -print_final_stats=1 "${dict[@]}" \
        2>&1 | grep -E "^#[0-9]+ +DONE|stat::number_of_executed_units|ERROR|SUMMARY|crash" || true
    ls tests/fuzz/crash-$t-* >/dev/null 2>&1 && { echo "fuzz: $t crashed, see tests/fuzz/crash-$t-*"; exit 1; }
    # Keep only inputs that add coverage, and keep the committed corpus small.
    build-fuzz/tests/fuzz_$t -merge=1 "$corpus" "$work" >/dev/null 2>&1
    echo "fuzz: $t corpus now $(ls "$corpus" | wc -l) files, $(du -sh "$corpus" | cut -f1)"
done
