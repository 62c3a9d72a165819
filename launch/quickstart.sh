#!/usr/bin/env bash
# The quickstart: MM-UPT's effect, reproduced end to end on a laptop-sized task (docs/quickstart.md).
#
#   launch/quickstart.sh                  setup, build, then the whole pipeline for seeds 1 2 3
#   launch/quickstart.sh --seeds "1"      fewer (or other) seeds
#   launch/quickstart.sh --steps N        training steps per run (default: configs/quickstart.yaml)
#   launch/quickstart.sh --warm-start train   retrain the warm start with mmupt sft (~4 min on 2
#                                         cores) instead of using the shipped, checksummed one
#   launch/quickstart.sh --out DIR        where everything goes (default runs/quickstart; replaced)
#   launch/quickstart.sh --smoke          a few steps on a few items: checks the pipeline, not accuracy
#   launch/quickstart.sh --mmupt PATH     use this binary and skip setup and build (tests do)
#
# Pipeline: data (mmupt data shapes) -> warm start -> per seed: eval of the warm start on the test
# split -> mpirun -np 3 mmupt train configs/quickstart.yaml (1 rollout rank + 2 learners,
# majority-vote reward, no labels) -> export of the step validation picked -> eval -> the same
# budget with reward.mode=ground_truth (supervised GRPO) -> eval -> the warm start writes its own
# questions for train images (mmupt synth --mode direct) -> MM-UPT on those -> eval; then mmupt
# report writes DIR/report.md and DIR/report.png. Every number in the report comes from this run.
set -euo pipefail
cd "$(dirname "$0")/.."

seeds="1 2 3"
steps=""
warm=shipped
out=runs/quickstart
smoke=0
mmupt=""
usage() { sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
    case "$1" in
        --seeds) seeds=${2:?--seeds needs a value}; shift 2 ;;
        --steps) steps=${2:?--steps needs a value}; shift 2 ;;
        --warm-start) warm=${2:?--warm-start needs shipped or train}; shift 2 ;;
        --out) out=${2:?--out needs a directory}; shift 2 ;;
        --smoke) smoke=1; shift ;;
        --mmupt) mmupt=${2:?--mmupt needs a path}; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "quickstart: unknown option '$1' (see --help)" >&2; exit 2 ;;
    esac
done
case "$warm" in shipped|train) ;; *) echo "quickstart: --warm-start is shipped or train, not '$warm'" >&2; exit 2 ;; esac
for s in $seeds; do
    [[ "$s" =~ ^[0-9]+$ ]] || { echo "quickstart: seed '$s' is not a non-negative integer" >&2; exit 2; }
done
[ -z "$steps" ] || [[ "$steps" =~ ^[1-9][0-9]*$ ]] || { echo "quickstart: --steps '$steps' is not a positive integer" >&2; exit 2; }

# $out is replaced: never a directory that is not an earlier quickstart run (it has data/ or run.tsv).
if [ -d "$out" ] && [ -n "$(ls -A "$out")" ] && [ ! -d "$out/data" ] && [ ! -f "$out/run.tsv" ]; then
    echo "quickstart: refusing to replace $out: it is not a quickstart run directory (no data/, no run.tsv)" >&2
    exit 1
fi

t_start=$(date +%s.%N)
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

if [ -z "$mmupt" ]; then
    ./launch/setup.sh
    . launch/env.sh
    echo "== build =="
    t_build=$(now)
    ./launch/build.sh build
    build_s=$(since "$t_build")
    mmupt=build/mmupt
    built=1
else
    built=""
    . launch/env.sh
    build_s=0
fi

# Sizes: the smoke run only checks that every stage runs and the report appears.
n_test=1000 n_val=200 n_train=4096 val_limit=200 n_sft=8000 sft_steps=1500 extra=()
n_synth=2048 # train items the warm start writes a question for (20 steps use 1280 questions)
if [ "$smoke" = 1 ]; then
    n_test=16 n_val=8 n_train=64 val_limit=8 n_sft=256 sft_steps=20 n_synth=64 seeds=${seeds%% *}
    steps=${steps:-2}
    extra=(run.val_interval=1 checkpoint.interval=1 data.rollout_batch_size=8 algorithm.global_batch_size=8
           algorithm.micro_batch_size=8 algorithm.micro_batch_size_experience=8)
fi
[ -n "$steps" ] && extra+=("run.max_steps=$steps")
extra+=("run.val_limit=$val_limit")

rm -rf "$out"
mkdir -p "$out"
model="$out/model" data="$out/data"
# The samples at T = 1 (the eval section's default is the paper's 0.2): pass@1 and maj@8 measure what
# the rollout draws, the headroom majority-vote training uses (docs/quickstart-task.md).
evalargs=(-n 8 --temperature 1 --max-new-tokens 24 --min-pixels 784 --max-pixels 7056)

# Progress: each stage prints a header with the time so far and an ETA from the stages already done
# (a training run weighs 4, an evaluation or the question writing 1); the commands print their own progress lines.
n_seeds=$(wc -w <<<"$seeds")
units_total=$((n_seeds * 17)) units_done=0 t_units=""
stage() {
    local eta="ETA after the first stage"
    if [ "$units_done" -gt 0 ]; then
        eta=$(awk -v t="$(since "$t_units")" -v d="$units_done" -v n="$units_total" \
              'BEGIN { printf "ETA %.0f s", t / d * (n - d) }')
    fi
    echo
    echo "== [quickstart $(since "$t_start") s, $eta] $* =="
}
done_units() { units_done=$((units_done + $1)); }

stage "data: mmupt data shapes --kinds total --ask-share 0.1 (docs/quickstart-task.md)"
sft_items=0
[ "$warm" = train ] && sft_items=$n_sft
"$mmupt" data shapes --out "$data" --seed 1 --kinds total --ask-share 0.1 --sft "$sft_items" --train "$n_train" --val "$n_val" --test "$n_test"

if [ "$warm" = train ]; then
    stage "warm start: mmupt sft (the command that made the shipped one; about 4 minutes on 2 cores)"
    "$mmupt" sft --init random --model configs/quickstart_model --data "$data/sft.h5" --out "$model" \
        --steps "$sft_steps" --batch 32 --lr 1e-3 --seed 1 --min-pixels 784 --max-pixels 7056 --threads 2 \
        --log-every 100
    if [ "$smoke" = 0 ]; then
        if [ "$(sha256sum <"$model/model.safetensors" | cut -d' ' -f1)" = "$(cut -d' ' -f1 configs/quickstart_model/model.safetensors.sha256)" ]; then
            echo "the retrained warm start is bitwise the shipped one"
        else
            echo "the retrained warm start differs from the shipped one (float sums depend on the build and CPU);" \
                 "the run goes on with the retrained one"
        fi
    fi
else
    stage "warm start: the shipped configs/quickstart_model (made by mmupt sft; docs/quickstart.md)"
    (cd configs/quickstart_model && sha256sum -c --quiet model.safetensors.sha256) || {
        echo "quickstart: configs/quickstart_model/model.safetensors does not match its checksum;" \
             "rerun with --warm-start train to make it again" >&2
        exit 1
    }
    mkdir -p "$model"
    cp configs/quickstart_model/{config.json,generation_config.json,preprocessor_config.json,tokenizer.json,model.safetensors} "$model/"
    echo "checksum ok: $(cut -c1-16 configs/quickstart_model/model.safetensors.sha256)..."
fi
t_units=$(now)

# Evaluate MODEL_DIR on the test split into FILE.json.
evaluate() {
    local t0; t0=$(now)
    "$mmupt" eval --model "$1" --data "$data/test.h5" "${evalargs[@]}" --seed "$seed" --json "$2.json"
    printf '%s\t%s\n' "$3" "$(since "$t0")" >>"$sd/times.tsv"
}

# train_and_pick NAME MODE SPLIT: train with reward mode MODE on SPLIT into $sd/NAME, then export the
# step validation picked (0: the warm start).
train_and_pick() {
    local name=$1 mode=$2 dir="$sd/$1" t0; t0=$(now)
    mpirun -q -np 3 "$mmupt" train configs/quickstart.yaml reward.mode="$mode" run.seed="$seed" \
        run.output_dir="$dir" model.path="$model" data.train_path="$3" data.val_path="$data/val.h5" \
        "${extra[@]}"
    printf '%s_train\t%s\n' "$name" "$(since "$t0")" >>"$sd/times.tsv"
    local best; best=$(cut -d' ' -f1 "$dir/best_val_step")
    echo "$best" >"$dir/selected_step"
    if [ "$best" = 0 ]; then
        echo "validation picked step 0: the warm start itself is evaluated"
        picked="$model"
    else
        echo "validation picked step $best (greedy pass@1 $(cut -d' ' -f2 "$dir/best_val_step") on the val split)"
        "$mmupt" export "$dir/checkpoints/$(printf 'step-%08d' "$best")" "$dir/model" >/dev/null
        picked="$dir/model"
    fi
}

for seed in $seeds; do
    sd="$out/seed-$seed"
    mkdir -p "$sd"
    stage "seed $seed: eval of the warm start on the test split"
    evaluate "$model" "$sd/base" base_eval
    done_units 1
    stage "seed $seed: MM-UPT (majority-vote reward, no labels): mpirun -np 3 mmupt train configs/quickstart.yaml"
    train_and_pick majority majority "$data/train.h5"
    done_units 4
    stage "seed $seed: eval after MM-UPT"
    evaluate "$picked" "$sd/majority" majority_eval
    done_units 1
    stage "seed $seed: supervised GRPO, the same budget: reward.mode=ground_truth"
    train_and_pick ground_truth ground_truth "$data/train.h5"
    done_units 4
    stage "seed $seed: eval after supervised GRPO"
    evaluate "$picked" "$sd/ground_truth" ground_truth_eval
    done_units 1
    stage "seed $seed: the warm start writes its own questions: mmupt synth --mode direct (docs/synth.md)"
    t0=$(now)
    "$mmupt" synth --model "$model" --data "$data/train.h5" --out "$sd/synth_data.h5" --mode direct -n 4 --keep 1 \
        --seed "$seed" --limit "$n_synth" --max-new-tokens 24 --min-pixels 784 --max-pixels 7056
    printf 'synth_gen\t%s\n' "$(since "$t0")" >>"$sd/times.tsv"
    done_units 1
    stage "seed $seed: MM-UPT on the self-generated questions (majority vote, the same budget)"
    train_and_pick synth majority "$sd/synth_data.h5"
    done_units 4
    stage "seed $seed: eval after MM-UPT on self-generated questions"
    evaluate "$picked" "$sd/synth" synth_eval
    done_units 1
done

total_s=$(since "$t_start")
{
    printf 'command\t%s\n' "launch/quickstart.sh --seeds \"$seeds\"${steps:+ --steps $steps} --warm-start $warm$([ "$smoke" = 1 ] && echo ' --smoke')"
    printf 'date\t%s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    printf 'machine\t%s, %s cores\n' "$(uname -srm)" "$(nproc)"
    printf 'cpu\t%s\n' "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
    printf 'mmupt\t%s\n' "$("$mmupt" version | head -1)"
    printf 'warm start\t%s (%s)\n' "$warm" "$(sha256sum "$model/model.safetensors" | cut -c1-16)..."
    printf 'data\tmmupt data shapes --seed 1 --kinds total: train %s, val %s, test %s items\n' "$n_train" "$n_val" "$n_test"
    [ "$smoke" = 1 ] && printf 'note\t%s\n' "SMOKE RUN: $steps steps on $n_test test items; it checks the pipeline, its accuracy figures mean nothing"
    printf 'build_s\t%s\n' "$build_s"
    printf 'total_s\t%s (setup and build included: %s)\n' "$total_s" "$([ -n "$built" ] && echo yes || echo 'no, --mmupt')"
} >"$out/run.tsv"

stage "report: mmupt report $out"
"$mmupt" report "$out"
echo
sed -n '/^## Accuracy on the test split/,/^## Greedy accuracy per kind/p' "$out/report.md" | sed '$d'
echo "quickstart: done in $(since "$t_start") s; report: $out/report.md, plot: $out/report.png"
