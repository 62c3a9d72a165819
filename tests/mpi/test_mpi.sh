#!/usr/bin/env bash
# Multi-rank behaviour under a real mpirun: rank-tagged logs, the fatal path ending the whole job,
# `mmupt train` reporting a config error once (not once per rank) and a start-up error ending the job.
# usage: test_mpi.sh MMUPT TEST_MPI_FATAL SOURCE_ROOT
set -u
mmupt=$1
fatal=$2
root=$3
. "$root/tests/lib.sh"
mpi_setup

run mpi 2 "$fatal";       expect "ranks log with their tag" 0 "[r0 +" "[r1 +" "hello from rank 1"
run mpi 2 "$fatal" die;   rc_die=$rc
if [ "$rc_die" -ne 0 ] && [ "$rc_die" -ne 124 ]; then rc=1; else rc=$rc_die; fi
expect "fatal on one rank ends the job" 1 "mmupt: [rank 1]" "test_mpi_fatal.c:" "fatal: deliberate failure on rank 1"
run mpi 2 "$mmupt" train "$root/configs/quickstart.yaml" cluster.rollout_ranks=0
expect "a rank that cannot start ends the job, naming the problem" 1 "[rank " "runs/quickstart/model/config.json: cannot open"
run mpi 2 "$mmupt" train "$root/tests/fixtures/config/bad/duplicate_key.yaml"
expect "config error under mpirun" 1 "duplicate key"
if [ "$(grep -c 'duplicate key' "$tmp/err")" = 1 ]; then ok "config error reported once"
else fail "config error reported once" "$(cat "$tmp/err")"; fi
run mpi 2 "$mmupt" train "$root/configs/quickstart.yaml" cluster.rollout_ranks=2
expect "no learner left is an error" 1 "leaves no learner"
finish
