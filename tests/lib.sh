# Shared by the shell tests: check helpers that count and report, then print the plain
# "N passed, N failed" line. Source it, call `check NAME CMD...` / `check_output ...`, end with `finish`.
passed=0
failed=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

ok()   { passed=$((passed + 1)); echo "ok - $1"; }
fail() { failed=$((failed + 1)); echo "not ok - $1"; shift; for l in "$@"; do echo "    $l"; done; }

# run CMD...: runs it, leaving stdout, stderr and status in $tmp/out, $tmp/err and $rc.
run() {
    "$@" >"$tmp/out" 2>"$tmp/err"
    rc=$?
}

# expect NAME STATUS [SUBSTRING-IN-STDERR-OR-STDOUT ...] after a `run`.
expect() {
    local name=$1 want=$2
    shift 2
    if [ "$rc" != "$want" ]; then
        fail "$name" "exit status $rc, expected $want" "stderr: $(head -c 600 "$tmp/err")"
        return
    fi
    local s
    for s in "$@"; do
        if ! grep -qF -- "$s" "$tmp/out" "$tmp/err"; then
            fail "$name" "missing: $s" "stdout: $(head -c 300 "$tmp/out")" "stderr: $(head -c 600 "$tmp/err")"
            return
        fi
    done
    ok "$name"
}

# For tests that start a real mpirun: skip without one; allow root (containers, CI) and more ranks
# than cores (2-core machines). mpi NP CMD... runs CMD on NP ranks with a timeout.
mpi_setup() {
    command -v mpirun >/dev/null || { echo "SKIP: mpirun not found (launch/setup.sh installs Open MPI)"; exit 77; }
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
}
mpi() { timeout 120 mpirun -np "$@"; }

# Under the sanitizers (tests/meson.build sets ASAN_OPTIONS for every test): the exit-time leak
# check, with the slow unwinder its Open MPI suppressions need (tests/lsan.supp matches frames deep
# in MPI's libraries), doubles a tiny-fixture mpirun run under ASan (5.1 s against 2.1 at np 3).
# The long MPI tests call leaks_sparingly after mpi_setup: their runs go without the leak check (ASan
# still checks every access), and leak_checked CMD... runs CMD with the full options - each such
# test keeps its representative runs (each role layout and code path once) and its refusals under
# it. Outside the sanitizer pass both are no-ops.
leaks_sparingly() {
    [ -n "${ASAN_OPTIONS:-}" ] || return 0
    export MMUPT_ASAN_FULL_OPTIONS=$ASAN_OPTIONS
    local o=${ASAN_OPTIONS/detect_leaks=1/detect_leaks=0}
    export ASAN_OPTIONS=${o/fast_unwind_on_malloc=0/fast_unwind_on_malloc=1}
}
leak_options() { echo "${MMUPT_ASAN_FULL_OPTIONS:-${ASAN_OPTIONS:-}}"; }
leak_checked() { ASAN_OPTIONS=$(leak_options) "$@"; }

finish() {
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
}
