#!/usr/bin/env bash
# launch/mmupt-run outside Slurm: refusals, the printed mpirun line and environment (--dry-run),
# rank -> GPU binding (a probe stands in for mmupt), a real training run through it, and SIGUSR1 to
# the wrapper reaching the ranks (checkpoint, exit 75). The same script under Slurm: tests/slurm.
#   test_mmupt_run.sh MMUPT SRC_ROOT
set -uo pipefail
mmupt=$(realpath "$1")
cd "$2"
. tests/lib.sh
mpi_setup
unset SLURM_NTASKS SLURM_JOB_ID SLURM_GPUS_ON_NODE CUDA_VISIBLE_DEVICES NCCL_DEBUG
wrap=launch/mmupt-run

run $wrap --help
expect "--help" 0 "--rollout-ranks" "--dry-run" "NCCL_DEBUG=WARN"
run $wrap -n 2 --mmupt "$mmupt"
expect "no config" 2 "no config given"
run $wrap --mmupt "$mmupt" configs/tiny.yaml
expect "no rank count outside Slurm" 2 "how many ranks? give -n N"
run $wrap -n 0 --mmupt "$mmupt" configs/tiny.yaml
expect "-n 0" 2 "-n '0' is not a positive integer"
run $wrap -n 3 -r 3 --mmupt "$mmupt" configs/tiny.yaml
expect "-r leaves no learner" 2 "-r 3 leaves no learner among 3 ranks"
run $wrap -n 3 -r x --mmupt "$mmupt" configs/tiny.yaml
expect "-r not a number" 2 "-r 'x' is not a non-negative integer"
run $wrap -n 2 --mmupt "$mmupt" configs/tiny.yaml run.max_steps
expect "override without =" 2 "'run.max_steps' is not a key=value override"
run $wrap -n 2 --mmupt "$mmupt" no/such.yaml
expect "missing config" 2 "config 'no/such.yaml' does not exist"
run $wrap -n 2 --mmupt "$tmp/nothing" configs/tiny.yaml
expect "missing binary" 2 "no mmupt binary at '$tmp/nothing'"
run $wrap -n 2 --bogus configs/tiny.yaml
expect "unknown option" 2 "unknown option '--bogus'"
run $wrap -n 2 --gpus-per-node two --mmupt "$mmupt" configs/tiny.yaml
expect "--gpus-per-node not a number" 2 "--gpus-per-node 'two'"

# --dry-run: the environment defaults and the exact mpirun line, nothing started
run $wrap -n 3 -r 1 --gpus-per-node 0 --mmupt "$mmupt" --dry-run configs/tiny.yaml run.max_steps=2
expect "--dry-run prints the line" 0 "export NCCL_DEBUG=WARN" "mpirun -np 3 --bind-to none" \
    "--rank-exec 0 -- $mmupt train configs/tiny.yaml run.max_steps=2 cluster.rollout_ranks=1" \
    "learners: ranks 0-1, rollout: ranks 2-2"
NCCL_DEBUG=INFO OMP_NUM_THREADS=1 run $wrap -n 2 -r 0 --gpus-per-node 0 --mmupt "$mmupt" --dry-run --resume \
    --mpi-arg=--report-bindings configs/tiny.yaml
expect "--dry-run: the user's variables win and are forwarded" 0 "-x NCCL_DEBUG" "-x OMP_NUM_THREADS" \
    "--report-bindings" "train --resume configs/tiny.yaml cluster.rollout_ranks=0" "colocated: all 2 ranks"
if grep -q "NCCL_DEBUG=WARN" "$tmp/out"; then fail "a user's NCCL_DEBUG is not replaced" "$(cat "$tmp/out")"
else ok "a user's NCCL_DEBUG is not replaced"; fi

# Rank -> GPU binding: local rank i gets GPU i mod G, or the i-th of an already narrowed list.
cat >"$tmp/probe" <<'EOF'
#!/bin/sh
echo "rank $OMPI_COMM_WORLD_RANK local $MMUPT_LOCAL_RANK gpu ${CUDA_VISIBLE_DEVICES-unset} args $*"
EOF
chmod +x "$tmp/probe"
bind() { grep '^rank' "$tmp/out" | sed 's/ args.*//' | sort | tr '\n' ';'; }
run timeout 60 $wrap -n 3 --gpus-per-node 2 --mmupt "$tmp/probe" configs/tiny.yaml a.b=1
got=$(bind)
[ "$got" = "rank 0 local 0 gpu 0;rank 1 local 1 gpu 1;rank 2 local 2 gpu 0;" ] &&
    ok "3 ranks on 2 GPUs: 0, 1, 0" || fail "3 ranks on 2 GPUs: 0, 1, 0" "got: $got" "$(head -c 400 "$tmp/err")"
grep -q "args train configs/tiny.yaml a.b=1" "$tmp/out" && ok "each rank runs mmupt train CONFIG overrides" ||
    fail "each rank runs mmupt train CONFIG overrides" "$(head -3 "$tmp/out")"
CUDA_VISIBLE_DEVICES=5,7 run timeout 60 $wrap -n 3 --gpus-per-node 2 --mmupt "$tmp/probe" configs/tiny.yaml
got=$(bind)
[ "$got" = "rank 0 local 0 gpu 5;rank 1 local 1 gpu 7;rank 2 local 2 gpu 5;" ] &&
    ok "an already narrowed CUDA_VISIBLE_DEVICES=5,7: 5, 7, 5" || fail "narrowed CUDA_VISIBLE_DEVICES" "got: $got"
run timeout 60 $wrap -n 2 --gpus-per-node 0 --mmupt "$tmp/probe" configs/tiny.yaml
got=$(bind)
[ "$got" = "rank 0 local 0 gpu unset;rank 1 local 1 gpu unset;" ] &&
    ok "no GPUs: CUDA_VISIBLE_DEVICES left alone" || fail "no GPUs: CUDA_VISIBLE_DEVICES left alone" "got: $got"

# A real run through the wrapper, then SIGUSR1 to the wrapper (it exec'd mpirun): checkpoint, exit 75.
run timeout 120 $wrap -n 3 -r 1 --gpus-per-node 0 --mmupt "$mmupt" configs/tiny.yaml run.output_dir="$tmp/run"
expect "tiny config: 1 rollout + 2 learners through the wrapper" 0 "final weights checksum"
# (no `timeout` in front: it would take the signal itself; meson's test timeout bounds this)
$wrap -n 3 -r 1 --gpus-per-node 0 --mmupt "$mmupt" configs/tiny.yaml run.output_dir="$tmp/sig" \
    run.max_steps=40 checkpoint.interval=0 >"$tmp/sig.log" 2>&1 &
pid=$!
for i in $(seq 240); do grep -q "step 2/" "$tmp/sig.log" && break; sleep 0.25; done
kill -USR1 $pid
wait $pid
rc=$?
if [ $rc = 75 ] && grep -q "stopped by a signal after step" "$tmp/sig.log" && [ -f "$tmp/sig/checkpoints/latest" ]; then
    ok "SIGUSR1 to mmupt-run: every rank stops after a checkpoint, exit 75"
else
    fail "SIGUSR1 to mmupt-run: every rank stops after a checkpoint, exit 75" "exit $rc" "$(tail -5 "$tmp/sig.log")"
fi
finish
