#!/usr/bin/env bash
# The collectives and ZeRO-1 AdamW on 1, 2, 3 and 4 ranks under a real mpirun (test_comm.c).
# usage: test_comm.sh TEST_COMM SOURCE_ROOT
set -u
prog=$1
root=$2
. "$root/tests/lib.sh"
if ! command -v mpirun >/dev/null; then echo "SKIP: mpirun not found (launch/setup.sh installs Open MPI)"; exit 77; fi
# Root in containers and CI; more ranks than cores on 2-core machines.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
mpi() { timeout 120 mpirun -np "$@"; }

for np in 1 2 3 4; do
    run mpi "$np" "$prog"
    expect "collectives and ZeRO-1 on $np rank(s)" 0 "np=$np:" " 0 failed"
done
finish
