#!/usr/bin/env bash
# The collectives and ZeRO-1 AdamW on 1, 2, 3 and 4 ranks under a real mpirun (test_comm.c).
# usage: test_comm.sh TEST_COMM SOURCE_ROOT
set -u
prog=$1
root=$2
. "$root/tests/lib.sh"
mpi_setup

for np in 1 2 3 4; do
    run mpi "$np" "$prog"
    expect "collectives and ZeRO-1 on $np rank(s)" 0 "np=$np:" " 0 failed"
done
finish
