#!/usr/bin/env bash
# The trajectory ring under a real mpirun: 2 producers + 2 consumers, 1 + 2, and 1 + 1.
# usage: test_ring.sh TEST_RING SOURCE_ROOT [TOTAL]
set -u
prog=$1
root=$2
total=${3:-100000}
. "$root/tests/lib.sh"
mpi_setup

for np in 4 3 2; do
    run mpi "$np" "$prog" "$total"
    cat "$tmp/out"
    expect "ring on $np ranks" 0 "ok - test_stress (np=$np)" " passed, 0 failed"
done
finish
