#!/usr/bin/env bash
# The trajectory ring under a real mpirun: 2 producers + 2 consumers, 1 + 2, and 1 + 1.
# usage: test_ring.sh TEST_RING SOURCE_ROOT [TOTAL]
set -u
prog=$1
root=$2
total=${3:-100000}
. "$root/tests/lib.sh"
if ! command -v mpirun >/dev/null; then echo "SKIP: mpirun not found (launch/setup.sh installs Open MPI)"; exit 77; fi
# Root in containers and CI; more ranks than cores on 2-core machines.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
mpi() { timeout 120 mpirun -np "$@"; }

for np in 4 3 2; do
    run mpi "$np" "$prog" "$total"
    cat "$tmp/out"
    expect "ring on $np ranks" 0 "ok - test_stress (np=$np)" " passed, 0 failed"
done
finish
