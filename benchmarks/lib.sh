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
