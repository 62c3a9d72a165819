# Sourced by the benchmark scripts: the common preamble (threads, a fresh build, the Python baseline's
# packages) and the table heading. Usage: bench_setup NAME THREADS; bench_heading TITLE.
bench_setup() {
    cd "$(dirname "$0")/.."
    threads=${2:-$(nproc)}
    export OMP_NUM_THREADS=$threads OPENBLAS_NUM_THREADS=$threads
    ./launch/build.sh build >/dev/null
    python3 -c "import torch, transformers" 2>/dev/null ||
        { echo "$1: needs torch and transformers (pip install -r tools/requirements.txt)" >&2; exit 1; }
}

bench_heading() {
    echo "## $1, $(date -u +%Y-%m-%d), $(lscpu | sed -n 's/^Model name: *//p'), $threads thread(s)"
    echo
}

# The GPU benchmarks (NAME_cuda.sh, run by gpu_check.sh): the repository root, the CUDA build folder
# ($MMUPT_BUILD_DIR, default build-gpu) holding benchmarks/BINARY, and the heading with the card.
# Usage: cuda_bench_setup NAME BINARY TITLE.
cuda_bench_setup() {
    cd "$(dirname "$0")/.."
    build=${MMUPT_BUILD_DIR:-build-gpu}
    [ -x "$build/benchmarks/$2" ] || { echo "$1: no $build/benchmarks/$2 (build first)" >&2; exit 1; }
    echo "## $3, $(date -u +%Y-%m-%d), $(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)"
    echo
}

# mmupt's measurement, in bf16 (issue 10's targets are bf16; MMUPT_DTYPE=fp32 measures the fp32 path),
# then its PyTorch twin on the GPU in fp32 and bf16 (MMUPT_TORCH_DTYPES, e.g. "bf16" alone where device
# time is short): one JSON line each in $ours and ${rows[@]} (an empty row when the twin failed).
# Usage: cuda_bench_pair BINARY SCRIPT.py CONFIG ARGS...
cuda_bench_pair() {
    local bin=$1 script=$2 cfg=$3 dt theirs
    shift 3
    ours=$("$build/benchmarks/$bin" --device --dtype "${MMUPT_DTYPE:-bf16}" "$cfg" "$@") ||
        { echo "mmupt $bin failed" >&2; exit 1; }
    echo "mmupt: $ours"
    rows=()
    for dt in ${MMUPT_TORCH_DTYPES:-fp32 bf16}; do
        theirs=$(cd benchmarks && python3 "$script" --device cuda --dtype "$dt" "../$cfg" "$@" 2>/dev/null | tail -1)
        echo "pytorch $dt: ${theirs:-failed}"
        rows+=("$theirs")
    done
    echo
}

# One more mmupt measurement, appended to ${variants[@]} (its JSON line, empty when the run failed)
# and ${labels[@]}: SETTING ("VAR=VALUE[ VAR=VALUE...]", the GPU performance switches of
# docs/running-at-scale.md, or "" for none) in the environment of BINARY CONFIG ARGS.
# Usage: cuda_bench_row LABEL SETTING BINARY CONFIG ARGS...
cuda_bench_row() {
    local label=$1 setting=$2 bin=$3 row
    shift 3
    # shellcheck disable=SC2086 # the setting's words are VAR=VALUE assignments for env
    row=$(env $setting "$build/benchmarks/$bin" --device --dtype "${MMUPT_DTYPE:-bf16}" "$@") || row=""
    echo "mmupt, $label: ${row:-failed}"
    variants+=("$row")
    labels+=("$label")
}

# mmupt's measurement again under each setting in $@, before the PyTorch twin so a short budget
# still gets them: one JSON line each in ${variants[@]}, labels in ${labels[@]} (both reset here).
# Usage: cuda_bench_variants BINARY CONFIG ARGS... -- SETTING...
cuda_bench_variants() {
    local bin=$1 cfg=$2 setting
    shift 2
    local args=()
    while [ $# -gt 0 ] && [ "$1" != -- ]; do args+=("$1"); shift; done
    shift
    variants=()
    labels=()
    for setting in "$@"; do cuda_bench_row "$setting" "$setting" "$bin" "$cfg" "${args[@]}"; done
}

# The GPU machine's tools and libraries (gpu_check.sh, gpu_ab.sh): meson/ninja from the torch venv
# when not on PATH; every folder .deps/NAME/usr/lib/x86_64-linux-gnu (launch/fetch_deps.sh; carry
# .deps) whose pkg-config modules the system lacks goes on PKG_CONFIG_PATH and LD_LIBRARY_PATH; and
# the venv's python3 when only it has torch (the baselines). What was done lands in gpu_env_notes
# and gpu_env_deps (folders, relative to ROOT). Usage: gpu_machine_env ROOT.
gpu_machine_env() {
    local root=$1 lib pc
    gpu_env_notes=() gpu_env_deps=()
    if ! command -v meson >/dev/null || ! command -v ninja >/dev/null; then
        if [ -x /opt/torch/.venv/bin/meson ]; then
            export PATH="/opt/torch/.venv/bin:$PATH"
            gpu_env_notes+=("meson/ninja from /opt/torch/.venv/bin")
        fi
    fi
    for lib in "$root"/.deps/*/usr/lib/x86_64-linux-gnu; do
        [ -d "$lib/pkgconfig" ] || continue
        for pc in "$lib"/pkgconfig/*.pc; do
            pkg-config --exists "$(basename "$pc" .pc)" 2>/dev/null && continue
            export PKG_CONFIG_PATH="$lib/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
            export LD_LIBRARY_PATH="$lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
            gpu_env_deps+=("${lib#"$root"/}")
            break
        done
    done
    if ! python3 -c "import torch" 2>/dev/null && [ -x /opt/torch/.venv/bin/python3 ] &&
        /opt/torch/.venv/bin/python3 -c "import torch" 2>/dev/null; then
        export PATH="/opt/torch/.venv/bin:$PATH"
        gpu_env_notes+=("python3 with torch from /opt/torch/.venv/bin")
    fi
}
