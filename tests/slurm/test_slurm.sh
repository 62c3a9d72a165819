#!/usr/bin/env bash
# launch/slurm/train.sbatch under a REAL Slurm (a one-node cluster on localhost, tests/slurm/
# local_cluster.sh), with configs/tiny.yaml on CPU ranks:
#   1. an uninterrupted job completes (exit 0) and logs its final weights' checksum;
#   2. a second job gets the preemption signal mid-run (scancel --batch --signal=USR1: what
#      --signal=B:USR1@T delivers before the time limit), checkpoints, exits 75, requeues itself, and
#      the requeued run resumes from that checkpoint to the SAME final weights as job 1;
#   3. an array job runs one seed per task into its own run directory;
#   4. scaling.sbatch runs the scaling benchmark in one allocation (a 2-task smoke run);
#   5. mmupt-run inside an allocation binds each local rank to one of the node's GPUs.
# Needs root and slurm-wlm + munge (launch/setup.sh installs them): in CI it must run (it fails if it
# cannot); elsewhere it skips with the reason.
#   test_slurm.sh MMUPT SRC_ROOT
set -uo pipefail
mmupt=$(realpath "$1")
cd "$2"
. tests/lib.sh
. tests/slurm/local_cluster.sh

why=$(slurm_cluster_check)
if [ -n "$why" ]; then
    if [ -n "${CI:-}" ]; then echo "FAIL: CI must run the Slurm tests, but: $why"; exit 1; fi
    echo "SKIP: $why"
    exit 77
fi
command -v mpirun >/dev/null || { echo "SKIP: mpirun not found (launch/setup.sh installs Open MPI)"; exit 77; }

cluster=$tmp/cluster
trap 'slurm_cluster_stop "$cluster"; rm -rf "$tmp"' EXIT
if ! slurm_cluster_start "$cluster"; then
    echo "FAIL: could not start the test Slurm cluster (logs above)"
    exit 1
fi
ok "a one-node Slurm cluster started ($(sinfo -h -N -o '%c CPUs, %G'))"

gpus=$slurm_cluster_gpus
[ "$gpus" -gt 0 ] && gpu_opt=(--gpus-per-node=1) || gpu_opt=(--gpus-per-node=0)
export MMUPT=$mmupt
# 3 tasks on one node (1 rollout + 2 learners); the template's defaults ask for 2 nodes of 8.
# Responses of 32 tokens and 24 steps make the run last long enough to be signalled mid-run.
sb=(sbatch --parsable --nodes=1 --ntasks-per-node=3 --cpus-per-task=1 --time=10 "${gpu_opt[@]}")
overrides=(run.max_steps=24 rollout.max_new_tokens=32 data.max_response_length=32 checkpoint.interval=0)

# submit NAME [sbatch options...] -- [overrides...]: prints the job id.
submit() {
    local name=$1
    shift
    MMUPT_RUN_DIR=$tmp/$name "${sb[@]}" --job-name="$name" --output="$tmp/$name.out" "$@"
}
checksum() { sed -n 's/.*final weights checksum \([0-9a-f]*\).*/\1/p' "$1" | sort -u; }
show() { echo "job log: $(tail -5 "$tmp/$1.out" 2>/dev/null | tr '\n' '|')"; }

# 1. uninterrupted
j1=$(submit full launch/slurm/train.sbatch configs/tiny.yaml "${overrides[@]}")
if slurm_job_wait "$j1" COMPLETED 180; then
    ok "train.sbatch: an uninterrupted job completes"
else
    fail "train.sbatch: an uninterrupted job completes" "state $(slurm_job_state "$j1")" "$(show full)"
fi
c1=$(checksum "$tmp/full.out")
[ -n "$c1" ] && [ "$(echo "$c1" | wc -l)" = 1 ] && ok "the learners agree on the final weights ($c1)" ||
    fail "the learners agree on the final weights" "checksums: $c1" "$(show full)"

# 2. preempted mid-run, requeued, resumed
j2=$(submit preempt launch/slurm/train.sbatch configs/tiny.yaml "${overrides[@]}")
for i in $(seq 240); do grep -q "step 4/" "$tmp/preempt.out" 2>/dev/null && break; sleep 0.5; done
scancel --batch --signal=USR1 "$j2"
# Slurm holds a requeued job for two minutes (its BeginTime, cred_expire); an operator may release it
# sooner - but not within the second its old credential was revoked: slurmd compares whole-second
# times and kills a relaunch from that same second ("Job credential revoked", seen once in CI).
for i in $(seq 120); do
    [ "$(slurm_job_state "$j2")" = PENDING ] && break
    sleep 0.5
done
sleep 2
scontrol update JobId="$j2" StartTime=now >/dev/null 2>&1
if slurm_job_wait "$j2" COMPLETED 240; then
    ok "the preempted job is requeued and completes"
else
    fail "the preempted job is requeued and completes" "state $(slurm_job_state "$j2")" "$(show preempt)" \
        "$(scontrol show job "$j2" | grep -E 'JobState|Restarts|Reason' | tr '\n' ' ')" \
        "slurmctld: $(grep -E "JobId=$j2|job_id=$j2" "$cluster/log/slurmctld.log" | tail -8 | tr '\n' '|')"
fi
restarts=$(scontrol show job "$j2" | sed -n 's/.*Restarts=\([0-9]*\).*/\1/p')
[ "$restarts" = 1 ] && ok "Slurm restarted it once" || fail "Slurm restarted it once" "Restarts=$restarts"
log=$tmp/preempt.out
if grep -q "SIGUSR1: asking every rank to checkpoint" "$log" && grep -q "stopped by a signal after step" "$log" &&
    grep -q "requeueing job $j2" "$log"; then
    ok "the signal reached the ranks, which checkpointed and exited 75; the script requeued"
else
    fail "the signal reached the ranks, which checkpointed and exited 75; the script requeued" "$(grep -E 'train.sbatch|signal' "$log" | tr '\n' '|')"
fi
stop=$(sed -n 's/.*stopped by a signal after step \([0-9]*\).*/\1/p' "$log" | head -1)
if [ -n "$stop" ] && [ "$stop" -lt 24 ] && grep -q "resume: continuing from .*step-0*$stop " "$log"; then
    ok "the requeued run resumed from the preemption checkpoint (step $stop of 24)"
else
    fail "the requeued run resumed from the preemption checkpoint" "stopped at '$stop'; $(grep resume "$log" | tr '\n' '|')"
fi
c2=$(checksum "$log")
[ -n "$c1" ] && [ "$c2" = "$c1" ] && ok "preempted + resumed run ends with the uninterrupted run's weights ($c2)" ||
    fail "preempted + resumed run ends with the uninterrupted run's weights" "uninterrupted $c1, preempted $c2"

# 3. array job: one seed per task, each in its own directory
ja=$(MMUPT_RUN_DIR=$tmp/arr "${sb[@]}" --job-name=arr --array=1-2 --output="$tmp/arr-%a.out" \
    launch/slurm/train.sbatch configs/tiny.yaml run.max_steps=2)
for i in $(seq 120); do
    [ -z "$(squeue -h -j "$ja" 2>/dev/null)" ] && break
    sleep 0.5
done
if [ -f "$tmp/arr/seed-1/checkpoints/latest" ] && [ -f "$tmp/arr/seed-2/checkpoints/latest" ] &&
    grep -q "training finished" "$tmp/arr-1.out" && grep -q "training finished" "$tmp/arr-2.out"; then
    ok "an array job trains one seed per task into DIR/seed-T"
else
    fail "an array job trains one seed per task into DIR/seed-T" "$(ls "$tmp/arr" 2>&1)" \
        "$(grep -v '^\[' "$tmp/arr-1.out" 2>&1 | head -20 | tr '\n' '|')"
fi
s1=$(checksum "$tmp/arr-1.out"); s2=$(checksum "$tmp/arr-2.out")
[ -n "$s1" ] && [ -n "$s2" ] && [ "$s1" != "$s2" ] && ok "the two seeds train differently ($s1, $s2)" ||
    fail "the two seeds train differently" "seed 1: $s1, seed 2: $s2"

# 4. scaling.sbatch: the scaling benchmark inside one allocation (2 tasks, 1 step per run: a smoke test)
js=$(MMUPT_RUN_DIR=$tmp/scaling sbatch --parsable --nodes=1 --ntasks-per-node=2 --cpus-per-task=1 --gpus-per-node=0 \
    --time=10 --output="$tmp/scaling.out" launch/slurm/scaling.sbatch --steps 1)
if slurm_job_wait "$js" COMPLETED 300 && grep -q "comm check: in all" "$tmp/scaling.out" && [ -s "$tmp/scaling/scaling.png" ]; then
    ok "scaling.sbatch: the table, the comm check and scaling.png"
else
    fail "scaling.sbatch: the table, the comm check and scaling.png" "state $(slurm_job_state "$js")" \
        "$(tail -8 "$tmp/scaling.out" 2>&1 | tr '\n' '|')"
fi

# 5. rank -> GPU binding inside an allocation (a probe stands in for mmupt)
if [ "$gpus" -ge 2 ]; then
    cat >"$tmp/probe" <<'EOF'
#!/bin/sh
echo "rank $OMPI_COMM_WORLD_RANK local $MMUPT_LOCAL_RANK gpu $CUDA_VISIBLE_DEVICES"
EOF
    chmod +x "$tmp/probe"
    jp=$(sbatch --parsable --nodes=1 --ntasks=4 --gpus-per-node=2 --output="$tmp/probe.out" \
        --wrap "launch/mmupt-run --mmupt $tmp/probe configs/tiny.yaml")
    slurm_job_wait "$jp" COMPLETED 60
    got=$(grep '^rank' "$tmp/probe.out" | sort | tr '\n' ';')
    want="rank 0 local 0 gpu 0;rank 1 local 1 gpu 1;rank 2 local 2 gpu 0;rank 3 local 3 gpu 1;"
    [ "$got" = "$want" ] && ok "mmupt-run binds local ranks 0-3 to the job's 2 GPUs round-robin" ||
        fail "mmupt-run binds local ranks to GPUs" "got: $got" "want: $want" "$(cat "$tmp/probe.out" | head -5)"
else
    echo "note: no mknod here, so the test node has no GPUs: the binding check is left to tests/launch"
fi

finish
