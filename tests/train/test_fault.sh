#!/usr/bin/env bash
# Fault: `kill -9` on one rank in the middle of a run (a learner, then a rollout rank). Every other
# rank must be gone within 30 s, the job must fail, and its output must name the lost rank. Open MPI's
# runtime does the detecting (it aborts the job when a process dies by a signal); the trainer's own
# timeouts (cluster.timeout_s) cover a peer that hangs without dying.
# usage: test_fault.sh MMUPT SOURCE_ROOT
set -u
mmupt=$(realpath "$1")
root=$2
. "$root/tests/lib.sh"
mpi_setup
export OMP_NUM_THREADS=1
cd "$root"

# The pid of world rank R among mpirun's descendants (ranks carry OMPI_COMM_WORLD_RANK).
rank_pid() {
    local p
    for p in $(pgrep -f "$mmupt train"); do
        if tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=$1"; then echo "$p"; return; fi
    done
}

kill_rank() { # kill_rank VICTIM ROLE
    local victim=$1 role=$2 log=$tmp/fault$1.log
    timeout 120 mpirun -np 3 "$mmupt" train configs/tiny.yaml run.output_dir="$tmp/run$victim" \
        cluster.rollout_ranks=1 run.max_steps=1000 >"$log" 2>&1 &
    local job=$! i pid
    for i in $(seq 600); do grep -q "step 2/1000" "$log" && break; sleep 0.1; done
    pid=$(rank_pid "$victim")
    if [ -z "$pid" ]; then
        fail "kill -9 the $role: find rank $victim" "$(tail -5 "$log")"
        kill -9 "$job" 2>/dev/null
        return
    fi
    local t0=$SECONDS
    kill -9 "$pid"
    local left=""
    for i in $(seq 300); do
        left=$(pgrep -f "$mmupt train" || true)
        [ -z "$left" ] && break
        sleep 0.1
    done
    wait "$job"
    local status=$? took=$((SECONDS - t0))
    if [ -n "$left" ]; then
        fail "kill -9 the $role (rank $victim): other ranks still running after 30 s" "$left"
        pkill -9 -f "$mmupt train"
    elif [ "$status" = 0 ]; then
        fail "kill -9 the $role (rank $victim): the job reported success"
    elif ! grep -q "rank $victim" "$log"; then
        fail "kill -9 the $role (rank $victim): the lost rank is not named" "$(tail -8 "$log")"
    else
        ok "kill -9 the $role (rank $victim): every rank gone in ${took}s, exit $status, rank named"
    fi
}

kill_rank 1 learner
kill_rank 2 "rollout rank"

# Ctrl-C / scancel: SIGTERM to mpirun ends every rank.
timeout 120 mpirun -np 3 "$mmupt" train configs/tiny.yaml run.output_dir="$tmp/term" cluster.rollout_ranks=1 \
    run.max_steps=1000 >"$tmp/term.log" 2>&1 &
job=$!
for i in $(seq 600); do grep -q "step 2/1000" "$tmp/term.log" && break; sleep 0.1; done
t0=$SECONDS
kill -TERM "$job"
for i in $(seq 300); do [ -z "$(pgrep -f "$mmupt train" || true)" ] && break; sleep 0.1; done
wait "$job"
status=$?
if [ -n "$(pgrep -f "$mmupt train" || true)" ]; then
    fail "SIGTERM to mpirun: ranks still running after 30 s"
    pkill -9 -f "$mmupt train"
elif [ "$status" = 0 ]; then fail "SIGTERM to mpirun: the job reported success"
else ok "SIGTERM to mpirun: every rank gone in $((SECONDS - t0))s, exit $status"; fi
finish
