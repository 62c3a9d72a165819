#!/usr/bin/env bash
# How does training scale with learners and with rollout ranks? Weak and strong scaling, each against
# the colocated np=1 run in the same invocation, with every run's per-phase times and its measured
# communication beside the model of it (timing.json; docs/scaling.md explains everything printed).
#
#   benchmarks/scaling.sh [--max-np N] [--steps N] [--config FILE] [--out DIR] [--batch B] [--base B]
#                         [--counts "K1 K2 ..."] [--mmupt PATH] [--mpirun-args "ARGS"]
#
#   --max-np     largest rank count (default 4): learners and rollout ranks each go 1 .. N-1
#   --counts "K1 K2 ..."  the learner / rollout rank counts to run instead of 1 .. N-1 (each < N;
#                powers of two on a big allocation: "1 2 4 8 16")
#   --steps      training steps per run (default 8)
#   --config     default configs/tiny.yaml (the 177k-parameter fixture model)
#   --out        where the runs go, one run.output_dir each (default runs/scaling-DATE)
#   --batch      questions per step of the strong series (default: 12, or the smallest multiple of
#                12 that every learner count divides)
#   --base       questions per step per scaled rank of the weak series (default 4)
#   --mmupt      the binary (default: $MMUPT, else build/mmupt, built first)
#   --mpirun-args extra mpirun arguments, split at spaces (e.g. "--host a:4,b:4"), passed through
#                launch/mmupt-run --mpi-arg
#
# Runs (L learners + R rollout ranks; the batch sets data.rollout_batch_size and
# algorithm.global_batch_size, so one optimizer step per training step):
#   base             colocated np=1, batch B            every strong ratio is against it
#   weak-base        colocated np=1, batch base         every weak ratio is against it
#   strong-learners  R=1, L=1..N-1, batch B
#   weak-learners    R=1, L=1..N-1, batch base*L
#   strong-rollout   L=1, R=1..N-1, batch B
#   weak-rollout     L=1, R=1..N-1, batch base*R
# (a layout two series share runs once). Responses up to 48 tokens (rollout.max_new_tokens), so
# rollout is a real share of a step. Each rank runs OMP_NUM_THREADS threads (default 1: a rank stands
# for one device); on a 2-core machine np 3 and 4 oversubscribe the cores, so their absolute times
# mostly show the cores being shared. On a GPU cluster the same script runs unchanged (set --config to
# a GPU config, --mpirun-args for the hosts, OMP_NUM_THREADS as you like).
set -euo pipefail
cd "$(dirname "$0")/.."
max_np=4 counts="" steps=8 config=configs/tiny.yaml out="" batch="" base=4 mmupt="${MMUPT:-}" mpirun_args=""
while [ $# -gt 0 ]; do
    case "$1" in
        --max-np) max_np=$2; shift 2 ;;
        --counts) counts=$2; shift 2 ;;
        --steps) steps=$2; shift 2 ;;
        --config) config=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        --batch) batch=$2; shift 2 ;;
        --base) base=$2; shift 2 ;;
        --mmupt) mmupt=$2; shift 2 ;;
        --mpirun-args) mpirun_args=$2; shift 2 ;;
        -h|--help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "scaling.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
done
[[ "$max_np" =~ ^[0-9]+$ ]] && [ "$max_np" -ge 2 ] || { echo "scaling.sh: --max-np must be at least 2" >&2; exit 2; }
counts=${counts:-$(seq 1 $((max_np - 1)))}
for k in $counts; do
    [[ "$k" =~ ^[0-9]+$ ]] && [ "$k" -ge 1 ] && [ "$k" -lt "$max_np" ] ||
        { echo "scaling.sh: --counts: '$k' is not a rank count in 1 .. $((max_np - 1)) (--max-np $max_np)" >&2; exit 2; }
done
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}
. launch/env.sh
if [ -z "$mmupt" ]; then
    ./launch/build.sh build >/dev/null
    mmupt=build/mmupt
fi
table=$(dirname "$mmupt")/benchmarks/scaling_table
[ -x "$table" ] || { echo "scaling.sh: no $table (build the benchmarks: ninja -C $(dirname "$mmupt"))" >&2; exit 1; }
out=${out:-runs/scaling-$(date -u +%Y%m%d-%H%M%S)}
mkdir -p "$out"
if [ -z "$batch" ]; then # 12, or the smallest multiple of it every learner count divides
    batch=12
    for l in $counts; do while ((batch % l)); do batch=$((batch + 12)); done; done
fi
mpi_args=()
for a in $mpirun_args; do mpi_args+=(--mpi-arg "$a"); done

# run NAME L R BATCH: one run into $out/NAME (skipped when that layout already ran).
run() {
    local dir=$out/$1 log=$out/$1.log
    [ -f "$dir/timing.json" ] && return 0
    local np=$(($2 + $3))
    launch/mmupt-run -n "$np" -r "$3" --mmupt "$mmupt" "${mpi_args[@]}" "$config" run.output_dir="$dir" \
        run.max_steps="$steps" data.rollout_batch_size="$4" algorithm.global_batch_size="$4" \
        rollout.max_new_tokens=48 data.max_response_length=48 checkpoint.interval=0 logging.tensorboard=false \
        >"$log" 2>&1 || { echo "scaling.sh: run $1 (L=$2 R=$3 batch $4) failed; $log:" >&2; tail "$log" >&2; exit 1; }
    echo "ran $1: L=$2 R=$3 batch $4 in $(python3 -c "import json,sys; print(round(json.load(open(sys.argv[1]))['wall_s'],1))" "$dir/timing.json") s" >&2
}

args=()
run np1_b"$batch" 1 0 "$batch"; args+=(base="$out/np1_b$batch")
run np1_b"$base" 1 0 "$base"; args+=(weak-base="$out/np1_b$base")
for k in $counts; do
    run l"$k"_r1_b"$batch" "$k" 1 "$batch"; args+=(strong-learners="$out/l${k}_r1_b$batch")
    run l"$k"_r1_b$((base * k)) "$k" 1 $((base * k)); args+=(weak-learners="$out/l${k}_r1_b$((base * k))")
    run l1_r"$k"_b"$batch" 1 "$k" "$batch"; args+=(strong-rollout="$out/l1_r${k}_b$batch")
    run l1_r"$k"_b$((base * k)) 1 "$k" $((base * k)); args+=(weak-rollout="$out/l1_r${k}_b$((base * k))")
done

echo "## scaling: learners and rollout ranks, $(date -u +%Y-%m-%d), $(lscpu | sed -n 's/^Model name: *//p'), $(nproc --all) cores"
echo
echo "$config, $steps steps per run, $OMP_NUM_THREADS thread(s) per rank, up to 48 new tokens; strong batch $batch questions,"
echo "weak $base questions per scaled rank; times per training step (setup excluded); runs in $out."
echo
"$table" "$out/scaling.png" "${args[@]}"
