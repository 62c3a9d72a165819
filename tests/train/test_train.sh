#!/usr/bin/env bash
# `mmupt train` end to end on the tiny fixture (configs/tiny.yaml) under a real mpirun:
#  - np=1 colocated, 2 (1 rollout + 1 learner), 3 (1 + 2), 4 (2 + 2): each finishes, writes finite
#    metrics (JSONL and a TensorBoard event file), and every learner ends with bitwise identical weights;
#  - the same seed gives the same weights whatever the rollout/learner split, as long as the learner
#    count is the same (docs/design.md explains why a different learner count cannot be bitwise equal):
#    1+1 == colocated 1 and 1+2 == 2+2 == colocated 2;
#  - max_staleness=1 overlaps rollout with learning and reports staleness 1 from the second step;
#  - the device code path (cluster.backend=emulator in a CPU-only build) ends with the CPU weights,
#    also with gradient buckets and with weights broadcast the device way;
#  - bad role or schedule settings are refused with the reason.
# OMP_NUM_THREADS is pinned: a rank's reductions split over threads, so bitwise comparisons need the
# same thread count on every run (mpirun's default binding would otherwise change it with np).
# usage: test_train.sh MMUPT SOURCE_ROOT
set -u
mmupt=$(realpath "$1")  # meson passes a path relative to the build directory
root=$2
. "$root/tests/lib.sh"
mpi_setup
leaks_sparingly # under the sanitizers, leak checks on the runs marked leaks=1 and the refusals (lib.sh)
export OMP_NUM_THREADS=1
cd "$root"

# train NAME NP ROLLOUT_RANKS [OVERRIDE ...]: run and check; leaves the checksum in $sum (the
# rollout ranks' in $rsum). leaks=1 before it: under the sanitizers, with the leak check (lib.sh).
train() {
    local name=$1 np=$2 R=$3
    shift 3
    local out=$tmp/$name
    run ${leaks:+leak_checked} timeout 300 mpirun -q -np "$np" "$mmupt" train configs/tiny.yaml \
        run.output_dir="$out" cluster.rollout_ranks="$R" "$@"
    expect "$name: train np=$np rollout_ranks=$R" 0 "step 2/2" "final weights checksum"
    local learners=$((R == 0 ? np : np - R))
    local sums ranks
    sums=$(grep -o "final weights checksum [0-9a-f]*" "$tmp/err" | sort -u | wc -l)
    ranks=$(grep -c "final weights checksum" "$tmp/err")
    sum=$(grep -o "final weights checksum [0-9a-f]*" "$tmp/err" | head -1 | awk '{print $4}')
    # the rollout ranks' last version and its checksum (read from the device when that copy is newer)
    rsum=$(grep -o "last policy version [0-9]* (weights checksum [0-9a-f]*" "$tmp/err" | sort -u |
        sed 's/last policy version \([0-9]*\) (weights checksum /version \1: /' | paste -sd ' ')
    if [ "$ranks" = "$learners" ] && [ "$sums" = 1 ]; then ok "$name: $learners learner(s), identical weights"
    else fail "$name: identical weights on every learner" "$(grep checksum "$tmp/err")"; fi
    if [ "$R" -gt 0 ]; then
        if [ "$(grep -c "rollout rank done" "$tmp/err")" = "$R" ]; then ok "$name: $R rollout rank(s) finished"
        else fail "$name: rollout ranks finished" "$(grep -E "rollout rank|error" "$tmp/err")"; fi
    fi
    if [ "$(grep -c "time: role" "$tmp/err")" = "$np" ]; then ok "$name: every rank reports its phase times"
    else fail "$name: phase times" "$(grep "time:" "$tmp/err")"; fi
    local lines
    lines=$(grep -c '"loss"' "$out/metrics.jsonl" 2>/dev/null || echo 0)  # a validation-only step 0 has no loss
    # (a skipped update logs its non-finite norm as null: callers expecting one set skipped=1)
    if [ "$lines" = 2 ] && { [ "${skipped:-0}" = 1 ] || ! grep -q null "$out/metrics.jsonl"; } &&
        grep -q '"loss"' "$out/metrics.jsonl"; then
        ok "$name: 2 finite metric records"
    else fail "$name: metrics" "$(cat "$out/metrics.jsonl" 2>/dev/null)"; fi
    if ls "$out"/events.out.tfevents.* >/dev/null 2>&1; then ok "$name: TensorBoard events"
    else fail "$name: TensorBoard events" "$(ls "$out")"; fi
}

same() { # same NAME A B
    if [ -n "$2" ] && [ "$2" = "$3" ]; then ok "$1 ($2)"; else fail "$1" "$2 vs $3"; fi
}

leaks=1 train colocated1 1 0; c1=$sum
train colocated2 2 0; c2=$sum
train split1+1 2 1; s11=$sum
leaks=1 train split1+2 3 1; s12=$sum; r12=$rsum
same "1 rollout + 1 learner ends with the colocated 1-rank weights" "$c1" "$s11"
same "1 rollout + 2 learners ends with the colocated 2-rank weights" "$c2" "$s12"
# Four ranks on CI's two cores are the slowest run here; the sanitizer pass (MMUPT_TEST_TRAIN_SHORT=1)
# leaves them out: 1 + 2 above takes the same code paths with one rollout rank fewer.
if [ "${MMUPT_TEST_TRAIN_SHORT:-0}" != 1 ]; then
    train split2+2 4 2; s22=$sum
    same "2 rollout + 2 learners ends with the 1 + 2 weights" "$s12" "$s22"
fi

# Validation on rank 0 every step: metrics carry val/*, and training is unchanged by it.
leaks=1 train val 3 1 run.val_interval=1 data.val_path=tests/fixtures/datasets/small.h5
same "validation leaves the trained weights unchanged" "$s12" "$sum"
if [ "$(grep -c '"val/greedy_pass1"' "$tmp/val/metrics.jsonl")" = 3 ] && grep -q "validation after step 2" "$tmp/err" &&
   grep -q "validation before training" "$tmp/err" && grep -q '^{"step": 0, "val/greedy_pass1"' "$tmp/val/metrics.jsonl"; then
    ok "validation before training and after every step: logged and in metrics.jsonl"
else fail "validation metrics" "$(cat "$tmp/val/metrics.jsonl")"; fi
# The best validated step is recorded (ties keep the earliest: the fixture model scores 0 throughout).
if [ "$(cat "$tmp/val/best_val_step" 2>/dev/null)" = "0 0" ]; then ok "best validation step recorded (step 0, score 0)"
else fail "best_val_step" "$(cat "$tmp/val/best_val_step" 2>&1)"; fi
run leak_checked timeout 120 mpirun -q -np 1 "$mmupt" train configs/tiny.yaml run.output_dir="$tmp/bad" \
    cluster.rollout_ranks=0 run.val_interval=1
expect "validation without a validation split is refused" 1 "needs data.val_path"
MMUPT_TEST_NONFINITE=2x run leak_checked timeout 120 mpirun -q -np 1 "$mmupt" train configs/tiny.yaml \
    run.output_dir="$tmp/bad" cluster.rollout_ranks=0
expect "a malformed MMUPT_TEST_NONFINITE (test hook) is refused" 1 "MMUPT_TEST_NONFINITE=2x" "STEP:LEARNER"

train stale1 3 1 cluster.max_staleness=1 logging.log_interval=2
st1=$sum
if ! grep -q "step 1/2 " "$tmp/err" && grep -q "step 2/2 " "$tmp/err" && [ "$(grep -c '"loss"' "$tmp/stale1/metrics.jsonl")" = 2 ]; then
    ok "logging.log_interval=2: the console shows step 2 (and the last) only, metrics.jsonl both"
else fail "logging.log_interval=2" "$(grep "step [0-9]/" "$tmp/err")"; fi
if grep -q '"staleness": 0' "$tmp/stale1/metrics.jsonl" && grep -q '"staleness": 1' "$tmp/stale1/metrics.jsonl"; then
    ok "max_staleness=1: step 1 on-policy, step 2 one version behind"
else fail "max_staleness=1 staleness metrics" "$(cat "$tmp/stale1/metrics.jsonl")"; fi

# Two optimizer steps per rollout batch (global_batch_size 6 of 12 questions): 4 after 2 steps.
# (and cluster.weight_broadcast=device on the CPU backend: said to have no effect, the host way is used)
train twoopt 3 1 algorithm.global_batch_size=6 cluster.weight_broadcast=device
if [ "$(grep -c "cluster.weight_broadcast=device needs the device path" "$tmp/err")" = 1 ]; then
    ok "weight_broadcast=device on the CPU backend: the host way, said once"
else fail "weight_broadcast=device on the CPU backend: said once" "$(grep weight_broadcast "$tmp/err")"; fi
if grep -q '"step": 2, .*"optim_steps": 4' "$tmp/twoopt/metrics.jsonl"; then ok "2 optimizer steps per rollout step"
else fail "2 optimizer steps per rollout step" "$(cat "$tmp/twoopt/metrics.jsonl")"; fi

# Epochs: 5 items, 2 questions per step -> 2 steps per epoch, 2 epochs -> 4 steps.
run timeout 300 mpirun -q -np 1 "$mmupt" train configs/tiny.yaml run.output_dir="$tmp/epochs" cluster.rollout_ranks=0 \
    run.max_steps=0 data.epochs=2 data.rollout_batch_size=2 algorithm.global_batch_size=2
expect "data.epochs=2 runs 2 epochs of 2 steps" 0 "step 4/4" "final weights checksum"

# The device code path (src/model/dev*.c, src/train/device.c): in a CPU-only build it runs on the
# device emulator, whose kernels are the CPU references, so a run must end with the CPU run's weights
# bit for bit - colocated, split (new weights uploaded on the rollout rank), and off-policy (older
# weight snapshots on the device). The KL term's reference weights are on in configs/tiny.yaml.
# model.dtype=fp32: the CPU reference is fp32; the bf16 run (mixed-precision GEMMs) must differ.
if "$mmupt" version | grep -q "no CUDA backend"; then
    run leak_checked timeout 120 mpirun -q -np 2 "$mmupt" train configs/tiny.yaml run.output_dir="$tmp/bad" \
        cluster.backend=cuda
    expect "cluster.backend=cuda in a CPU-only build says how to get CUDA" 1 "cluster.backend=cuda" \
        "built without CUDA" "emulator backend"
    train emu1 1 0 cluster.backend=emulator model.dtype=fp32
    same "device path (emulator), colocated: the CPU run's weights" "$c1" "$sum"
    # 1 learner: the device step's weights reach the host lazily, for the broadcast to the rollout rank
    train emu11 2 1 cluster.backend=emulator model.dtype=fp32
    same "device path (emulator), 1 rollout + 1 learner: the CPU run's weights" "$s11" "$sum"
    train emu12 3 1 cluster.backend=emulator model.dtype=fp32 run.val_interval=1 data.val_path=tests/fixtures/datasets/small.h5
    same "device path (emulator), 1 rollout + 2 learners, validating: the CPU run's weights" "$s12" "$sum"
    same "device path (emulator), host way: the rollout rank holds the version the CPU run sent" "$r12" "$rsum"
    same "device path (emulator): the CPU run's validation metrics" \
        "$(grep -o '"val/[a-z_0-9]*": [-0-9.e]*' "$tmp/val/metrics.jsonl" | paste -sd ' ')" \
        "$(grep -o '"val/[a-z_0-9]*": [-0-9.e]*' "$tmp/emu12/metrics.jsonl" | paste -sd ' ')"
    # ... with gradient buckets too (cluster.grad_bucket_mb): each optimizer step's last backward
    # reduce-scatters its finished layers while it goes on - merged into buckets of 0.2 MiB here, the
    # rest sent after it - with the whole reduce-scatter's sums
    leaks=1 train emustale 3 1 cluster.backend=emulator model.dtype=fp32 cluster.max_staleness=1 \
        cluster.grad_bucket_mb=0.2
    same "device path (emulator), max_staleness=1, gradient buckets: the CPU run's weights" "$st1" "$sum"
    expect "device path (emulator), gradient buckets: sent during the backward passes" 0 \
        "gradient buckets of 0.2 MiB" "windows reduce-scattered during backward passes"
    # cluster.weight_broadcast=device (src/train/wbcast.c): learner 0 sends its live device weights
    # once every rollout rank asked for them (staged through host buffers here: no NCCL), else from a
    # host copy. Strictly on-policy, the rollout rank always asks before learner 0 needs to update;
    # the test hook sends every version the host way, answering requests that came first.
    leaks=1 train emuwb 3 1 cluster.backend=emulator model.dtype=fp32 cluster.weight_broadcast=device
    same "weight_broadcast=device (emulator): the CPU run's weights" "$s12" "$sum"
    same "weight_broadcast=device (emulator): the rollout rank's device holds the version the CPU run sent" \
        "$r12" "$rsum"
    expect "weight_broadcast=device, on-policy: the version goes the device way" 0 \
        "1 version(s) the device way (staged through host buffers), 0 from host copies"
    if [ "${MMUPT_TEST_TRAIN_SHORT:-0}" != 1 ]; then # the sanitizer pass: the host way is emu12's
        MMUPT_TEST_WBCAST_LATE=1 train emuwblate 3 1 cluster.backend=emulator model.dtype=fp32 \
            cluster.weight_broadcast=device
        same "weight_broadcast=device, every version from a host copy: the CPU run's weights" "$s12" "$sum"
        same "weight_broadcast=device, every version from a host copy: the rollout rank's weights" "$r12" "$rsum"
        expect "weight_broadcast=device, test hook: the version goes from a host copy" 0 \
            "0 version(s) the device way (staged through host buffers), 1 from host copies"
    fi
    # A learner whose last micro-batch turns non-finite (the MMUPT_TEST_NONFINITE hook) runs no
    # backward for it: with buckets it must still send the other learner's windows (or both hang),
    # and every learner skips the update - the CPU run's weights, which skip it too.
    MMUPT_TEST_NONFINITE=1:1 skipped=1 train nan 3 1 model.dtype=fp32
    nan=$sum
    expect "a non-finite micro-batch on learner 1: the update is skipped everywhere" 0 \
        "step 1: non-finite log-probs" "update skipped: non-finite gradient"
    if grep '"step": 1,' "$tmp/nan/metrics.jsonl" | grep -q '"grad_norm": null.*"update_skipped": 1'; then
        ok "the skipped update is in metrics.jsonl (grad_norm null, update_skipped 1)"
    else fail "the skipped update in metrics.jsonl" "$(cat "$tmp/nan/metrics.jsonl")"; fi
    MMUPT_TEST_NONFINITE=1:1 skipped=1 train emunan 3 1 cluster.backend=emulator model.dtype=fp32 cluster.grad_bucket_mb=0.2
    same "device path (emulator), gradient buckets, a learner's last micro-batch non-finite: the CPU run's weights" \
        "$nan" "$sum"
    if [ -n "$nan" ] && [ "$nan" != "$s12" ]; then ok "the non-finite step changed the outcome ($nan, not $s12)"
    else fail "the non-finite step changed the outcome" "checksum $nan, unpoisoned $s12"; fi
    # runs NAME STEPS OVERRIDES...: a STEPS-step colocated run writing a checkpoint every step; sets $sum.
    runs() {
        local name=$1 steps=$2
        shift 2
        run timeout 300 mpirun -q -np 1 "$mmupt" train configs/tiny.yaml run.output_dir="$tmp/$name" \
            cluster.rollout_ranks=0 run.max_steps="$steps" checkpoint.interval=1 "$@"
        expect "$name: a $steps-step run" 0 "final weights checksum"
        sum=$(grep -o "final weights checksum [0-9a-f]*" "$tmp/err" | head -1 | awk '{print $4}')
    }
    # preempted NAME STEPS WANT OVERRIDES...: that run on the emulator, stopped (SIGUSR1) after its
    # first step and resumed, must end with checksum WANT: the restored weights reach the device.
    preempted() {
        local label=$1 steps=$2 want=$3 out=$tmp/pre_$1
        shift 3
        mpirun -q -np 1 "$mmupt" train configs/tiny.yaml run.output_dir="$out" cluster.rollout_ranks=0 \
            run.max_steps="$steps" checkpoint.interval=1 cluster.backend=emulator "$@" >"$tmp/pre.log" 2>&1 &
        local job=$! status
        # its first checkpoint on disk (log lines reach the file late under load)
        for i in $(seq 1200); do [ -f "$out/checkpoints/latest" ] && break; sleep 0.05; done
        kill -USR1 "$job"
        wait "$job"
        status=$?
        [ "$status" = 75 ] || fail "device path (emulator), $label: preempted" "the run ended with status $status, not 75"
        run leak_checked timeout 300 mpirun -q -np 1 "$mmupt" train configs/tiny.yaml run.output_dir="$out" \
            cluster.rollout_ranks=0 run.max_steps="$steps" checkpoint.interval=1 cluster.backend=emulator "$@" --resume
        expect "device path (emulator), $label: preempted (status $status) and resumed" 0 "resume: continuing from" \
            "final weights checksum"
        same "device path (emulator), $label, preempted and resumed: the uninterrupted run's weights" "$want" \
            "$(grep -o "final weights checksum [0-9a-f]*" "$tmp/err" | head -1 | awk '{print $4}')"
    }
    # Stochastic bf16 rounding keys its bits by the weights' version: a resumed run rebuilds the same
    # bf16 copy from the restored fp32 weights, so it ends where the uninterrupted run does (in the
    # sanitizer pass too: CI's first pass is a CUDA build, without the emulator).
    # Three steps: the resumed run's second step samples from the version it rebuilt from the
    # checkpoint, its third from one it made itself.
    runs sr3 3 cluster.backend=emulator model.dtype=bf16 model.bf16_rounding=stochastic
    preempted bf16_stochastic 3 "$sum" model.dtype=bf16 model.bf16_rounding=stochastic
    # The fp32 device path against the CPU run over 4 steps. Left out of the sanitizer pass
    # (MMUPT_TEST_TRAIN_SHORT=1, launch/test.sh): three more runs of a 4-step job, a third of this
    # test's time under ASan; train_resume covers checkpoints there.
    if [ "${MMUPT_TEST_TRAIN_SHORT:-0}" = 1 ]; then echo "# skipped (MMUPT_TEST_TRAIN_SHORT=1): device path, fp32, preempted and resumed"; else
    runs cpu4 4
    preempted fp32 4 "$sum" model.dtype=fp32
    fi
    leaks=1 train emubf16 3 1 cluster.backend=emulator model.dtype=bf16
    if grep -q "device: the emulator, bf16 GEMMs" "$tmp/err" && grep -q "device: attention through cuDNN's" "$tmp/err" &&
        [ -n "$sum" ] && [ "$sum" != "$s12" ]; then
        ok "device path (emulator), model.dtype=bf16: mixed precision, cuDNN's attention (the default), other weights than fp32's ($sum)"
    else fail "device path (emulator), model.dtype=bf16" "checksum $sum vs fp32 $s12; $(grep device: "$tmp/err")"; fi
    near=$sum
    # Stochastic rounding on a rollout rank too (its versions' copies); the sanitizer pass has the
    # resume check above, which takes the same upload path.
    if [ "${MMUPT_TEST_TRAIN_SHORT:-0}" != 1 ]; then
    train emusr 3 1 cluster.backend=emulator model.dtype=bf16 model.bf16_rounding=stochastic
    if [ -n "$sum" ] && [ "$sum" != "$near" ]; then
        ok "device path (emulator), bf16 with stochastic rounding, 1 rollout + 2 learners: other weights than nearest's"
    else fail "device path (emulator), model.bf16_rounding=stochastic" "checksum $sum, nearest $near"; fi
    fi
else  # a CUDA build: the emulator tests run in CPU-only builds (launch/test.sh's sanitizer pass)
    run leak_checked timeout 120 mpirun -q -np 1 "$mmupt" train configs/tiny.yaml run.output_dir="$tmp/bad" \
        cluster.rollout_ranks=0 cluster.backend=emulator
    expect "cluster.backend=emulator in a CUDA build is refused" 1 "exists only in CPU-only builds"
    if "$mmupt" version | grep -q "^gpu *none"; then
        run leak_checked timeout 120 mpirun -q -np 1 "$mmupt" train configs/tiny.yaml run.output_dir="$tmp/bad" \
            cluster.rollout_ranks=0 cluster.backend=cuda
        expect "cluster.backend=cuda without a GPU says why" 1 "no usable CUDA device"
    fi
fi
run leak_checked timeout 120 mpirun -q -np 1 "$mmupt" train configs/tiny.yaml run.output_dir="$tmp/nested/run/dir" \
    cluster.rollout_ranks=0 run.max_steps=1
expect "run.output_dir is created with its parents" 0 "step 1/1"
run leak_checked timeout 120 mpirun -q -np 2 "$mmupt" train configs/tiny.yaml run.output_dir="$tmp/bad" \
    cluster.rollout_ranks=2
expect "every rank a rollout rank is refused" 1 "leaves no learner among 2 rank(s)"
run leak_checked timeout 120 mpirun -q -np 2 "$mmupt" train configs/tiny.yaml run.output_dir="$tmp/bad" \
    cluster.rollout_ranks=1 cluster.sync_interval=3 cluster.max_staleness=1
expect "sync_interval beyond the staleness bound is refused" 1 "cluster.sync_interval=3" "max_staleness=1"
run leak_checked timeout 120 mpirun -q -np 3 "$mmupt" train configs/tiny.yaml run.output_dir="$tmp/bad" \
    cluster.rollout_ranks=0 data.rollout_batch_size=4 algorithm.global_batch_size=4
expect "batch not divisible by ranks" 1 "must be multiples of the 3 ranks"
run leak_checked timeout 120 mpirun -q -np 4 "$mmupt" train configs/tiny.yaml run.output_dir="$tmp/bad" \
    cluster.rollout_ranks=1 data.rollout_batch_size=4 algorithm.global_batch_size=4
expect "batch not divisible by learners" 1 "must be multiples of the 3 learner ranks"
finish
