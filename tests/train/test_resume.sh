#!/usr/bin/env bash
# Checkpoints and resume under a real mpirun, on the tiny fixture:
#  - exact resume: a run killed with SIGKILL at 5 random points (every rank and mpirun at once, each a
#    random moment after a given step) and
#    resumed with --resume each time ends with weights bitwise identical to an uninterrupted run, for
#    np=1 (colocated) and np=3 (1 rollout rank + 2 learners);
#  - preemption: SIGUSR1 to mpirun, or SIGTERM to every rank, ends the job with status 75 after a
#    checkpoint, and --resume completes it with the uninterrupted run's weights;
#  - a damaged latest checkpoint: --resume fails naming the file and the way back, nothing is
#    deleted, and checkpoint.resume_path=<the previous one> continues from there.
# usage: test_resume.sh MMUPT SOURCE_ROOT
set -u
mmupt=$(realpath "$1")
root=$2
. "$root/tests/lib.sh"
mpi_setup
leaks_sparingly # under the sanitizers: leak checks on each completed resume, refusal and export (lib.sh)
export OMP_NUM_THREADS=1
cd "$root"
# The sanitizer pass of launch/test.sh asks for a shorter run (the same paths, fewer steps and kills):
# under ASan every attempt's start-up costs several seconds.
steps=${MMUPT_TEST_RESUME_STEPS:-12}
nkills=${MMUPT_TEST_RESUME_KILLS:-5}

# train_args NP R OUT: the command line of one run.
train_cmd() { echo mpirun -q -np "$1" "$mmupt" train configs/tiny.yaml run.output_dir="$3" run.max_steps=$steps \
    checkpoint.interval=1 checkpoint.keep_last=2 cluster.rollout_ranks="$2"; }

checksum() { grep -o "final weights checksum [0-9a-f]*" "$1" | head -1 | awk '{print $4}'; }

# The ranks of the run writing to OUT, by its (unique) output directory: other tests' runs may be
# going on beside this one (meson runs this test in parallel with the train test).
ranks_of() { pgrep -f "^$mmupt train .*run.output_dir=$1( |\$)"; }

kill_job() { # kill_job JOB OUT: kill -9 mpirun and every rank of it
    pkill -9 -P "$1" 2>/dev/null
    kill -9 "$1" 2>/dev/null
    wait "$1" 2>/dev/null
    local p
    for p in $(ranks_of "$2"); do kill -9 "$p" 2>/dev/null; done
    sleep 0.2
}

exact_resume() { # exact_resume NP R
    local np=$1 R=$2
    local ref=$tmp/ref$np out=$tmp/killed$np
    run timeout 300 $(train_cmd "$np" "$R" "$ref")
    expect "np=$np: uninterrupted run" 0 "final weights checksum"
    local want
    want=$(checksum "$tmp/err")
    # Each attempt is killed a random 0-0.3 s after its first checkpoint (a new `latest` on disk: log
    # lines reach the file late under load): in the next step's rollout or update, or the checkpoint
    # write after it, wherever that lands.
    local kills=0 i j
    for i in $(seq 0 $((nkills - 1))); do
        local before
        before=$(cat "$out/checkpoints/latest" 2>/dev/null)
        timeout 300 $(train_cmd "$np" "$R" "$out") --resume >"$tmp/k$i.log" 2>&1 &
        local job=$!
        for j in $(seq 2400); do
            [ "$(cat "$out/checkpoints/latest" 2>/dev/null)" != "$before" ] && break
            kill -0 "$job" 2>/dev/null || break
            sleep 0.05
        done
        sleep "0.$((RANDOM % 30))"
        if kill -0 "$job" 2>/dev/null; then kill_job "$job" "$out"; kills=$((kills + 1)); else wait "$job"; fi
    done
    run leak_checked timeout 300 $(train_cmd "$np" "$R" "$out") --resume
    expect "np=$np: resumed after $kills kills" 0 "final weights checksum"
    local got
    got=$(checksum "$tmp/err")
    local resumed
    resumed=$(cat "$tmp"/k*.log "$tmp/err" | grep -c "resume: continuing from")
    if [ -n "$want" ] && [ "$got" = "$want" ] && [ "$kills" = "$nkills" ] && [ "$resumed" -ge $((nkills - 1)) ]; then
        ok "np=$np: killed $kills times, resumed $resumed times, final weights identical ($got)"
    else
        fail "np=$np: exact resume" "uninterrupted $want, resumed $got, kills $kills, resumes $resumed" \
            "$(for i in $(seq 0 $((nkills - 1))); do echo "attempt $i:"; grep -E "resume|step [0-9]+/|error" "$tmp/k$i.log" | tail -3; done)"
    fi
    lines=$(wc -l <"$out/metrics.jsonl")
    if [ "$lines" = "$steps" ]; then ok "np=$np: metrics.jsonl has one record per step after the resumes"
    else fail "np=$np: metrics.jsonl after resumes" "$lines lines"; fi
}

exact_resume 1 0
exact_resume 3 1
want3=$(checksum "$tmp/err")

# Killed after logging steps but before any checkpoint (interval beyond the run): --resume starts
# from step 1 again and the redone steps replace the logged ones instead of being logged twice.
early=$tmp/early
$(train_cmd 1 0 "$early") checkpoint.interval=100 >"$tmp/early.log" 2>&1 &
job=$!
# two steps in metrics.jsonl (rank 0 writes it itself; the log reaches its file late under load)
for j in $(seq 2400); do [ "$(cat "$early/metrics.jsonl" 2>/dev/null | wc -l)" -ge 2 ] && break; sleep 0.05; done
kill_job "$job" "$early"
run timeout 300 $(train_cmd 1 0 "$early") checkpoint.interval=100 --resume
if [ "$rc" = 0 ] && grep -q "no checkpoint yet" "$tmp/err" && [ "$(wc -l <"$early/metrics.jsonl")" = "$steps" ]; then
    ok "killed before the first checkpoint: --resume starts over with one record per step"
else fail "killed before the first checkpoint" "status $rc" "$(wc -l <"$early/metrics.jsonl") lines" "$(tail -3 "$tmp/err")"; fi

# Preemption by SIGUSR1 to mpirun (forwarded to every rank) and by SIGTERM to every rank.
preempt() { # preempt NAME HOW [OVERRIDE ...]
    local label=$1 how=$2 out=$tmp/pre_$2
    shift 2
    local asan=${ASAN_OPTIONS:-} # leaks=1: with the leak check (mpirun itself in the background: $! is its pid)
    [ -z "${leaks:-}" ] || asan=$(leak_options)
    ASAN_OPTIONS=$asan $(train_cmd 3 1 "$out") "$@" >"$tmp/pre.log" 2>&1 &
    local job=$! i
    # The first checkpoint on disk, not a log line: mpirun forwards the ranks' output late under load
    # (the sanitizer pass runs this beside other tests), and a signal in the last step is too late.
    for i in $(seq 1200); do [ -f "$out/checkpoints/latest" ] && break; sleep 0.05; done
    if [ "$how" != term ]; then kill -USR1 "$job"
    else for p in $(ranks_of "$out"); do kill -TERM "$p"; done; fi  # the ranks, not mpirun
    wait "$job"
    local status=$?
    if [ "$status" = 75 ] && grep -q "stopped by a signal" "$tmp/pre.log" && [ -f "$out/checkpoints/latest" ]; then
        ok "$label: exit 75 after a checkpoint ($(cat "$out/checkpoints/latest"))"
    else fail "$label: preemption" "status $status" "$(tail -5 "$tmp/pre.log")"; fi
    run leak_checked timeout 300 $(train_cmd 3 1 "$out") "$@" --resume
    expect "$label: requeued job resumes" 0 "resume: continuing from" "final weights checksum"
    if [ "$(checksum "$tmp/err")" = "$want3" ]; then ok "$label: same final weights as the uninterrupted run"
    else fail "$label: final weights after preemption" "$(checksum "$tmp/err") vs $want3"; fi
}
leaks=1 preempt "SIGUSR1 to mpirun" usr1 # its stop under the leak check too
preempt "SIGTERM to every rank" term
# The same on the device path with weights broadcast the device way (cluster.weight_broadcast):
# the stop message answers the rollout rank's request for the version the learners never made.
if "$mmupt" version | grep -q "no CUDA backend"; then
    preempt "device path (emulator), weight_broadcast=device, SIGUSR1" usr1dev cluster.backend=emulator \
        model.dtype=fp32 cluster.weight_broadcast=device
fi

# Export: the final checkpoint as a Hugging Face directory (tools/check_saved_model.py --export loads
# one with transformers); an existing directory is refused; --shard-mb shards with an index.
run leak_checked "$mmupt" export "$tmp/ref3/checkpoints" "$tmp/hf"
expect "export the latest checkpoint" 0 "exported"
if [ -f "$tmp/hf/model.safetensors" ] && [ -f "$tmp/hf/config.json" ] && [ -f "$tmp/hf/tokenizer.json" ]; then
    ok "export wrote weights, config and tokenizer"
else fail "export output" "$(ls "$tmp/hf")"; fi
run leak_checked "$mmupt" export "$tmp/ref3/checkpoints" "$tmp/hf"
expect "export refuses a non-empty directory" 1 "exists and is not empty"
prev=$(printf "step-%08d" $((steps - 1))) # keep_last=2: the last checkpoint but one
run leak_checked "$mmupt" export "$tmp/ref3/checkpoints/$prev" "$tmp/hf2" --shard-mb 0.2
expect "export a named step, sharded" 0 "step $((steps - 1))"
if [ -f "$tmp/hf2/model.safetensors.index.json" ]; then ok "sharded export has an index"; else fail "no index" "$(ls "$tmp/hf2")"; fi
run leak_checked "$mmupt" export "$tmp/nowhere" "$tmp/hf3"
expect "export of a missing checkpoint" 1 "nowhere"

# A damaged latest checkpoint.
out=$tmp/ref3
latest=$out/checkpoints/$(tr -d '\n' <"$out/checkpoints/latest")
python3 - "$latest/model.h5" <<'PY' 2>/dev/null || dd if=/dev/urandom of="$latest/model.h5" bs=1 count=64 seek=4096 conv=notrunc 2>/dev/null
import sys
p = sys.argv[1]
with open(p, "r+b") as f:
    data = bytearray(f.read())
    mid = len(data) * 3 // 4
    for i in range(mid, mid + 64):
        data[i] ^= 0xFF
    f.seek(0)
    f.write(data)
PY
before=$(ls "$out/checkpoints" | tr '\n' ' ')
run leak_checked timeout 120 $(train_cmd 3 1 "$out") --resume
expect "damaged latest checkpoint: refused" 1 "cannot resume" "model.h5" "checkpoint.resume_path"
run leak_checked "$mmupt" export "$out/checkpoints" "$tmp/hf4"
expect "export of the damaged checkpoint is refused" 1 "model.h5"
after=$(ls "$out/checkpoints" | tr '\n' ' ')
if [ "$before" = "$after" ]; then ok "nothing deleted after the refusal ($after)"; else fail "checkpoints changed" "$before -> $after"; fi
prev=$(ls -d "$out"/checkpoints/step-* | sort | tail -2 | head -1)
run leak_checked timeout 300 $(train_cmd 3 1 "$out") checkpoint.resume_path="$(basename "$prev")"
expect "resume_path falls back to the previous checkpoint" 0 "as asked (checkpoint.resume_path)" "final weights checksum"
if [ "$(checksum "$tmp/err")" = "$want3" ]; then ok "fallback run ends with the uninterrupted weights"
else fail "fallback final weights" "$(checksum "$tmp/err") vs $want3"; fi
finish
