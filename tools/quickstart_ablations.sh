#!/usr/bin/env bash
# Which settings matter for the quickstart's MM-UPT effect: variants of the seed-1 run, each
# evaluated on the test split at its LAST step (no stopping on validation, so what the setting does
# shows), with the step validation would have picked. Prints a markdown table (docs/results.md).
#
#   tools/quickstart_ablations.sh [RUN_DIR] [OUT_DIR]
#     RUN_DIR  a finished quickstart run (default runs/quickstart): its data/ and model/ are used
#     OUT_DIR  where the variants train (default runs/quickstart-ablations; replaced)
#
# Variants: the quickstart's settings for 60 steps instead of 20; lr 3e-4 without KL (the
# prototype's failure mode); G = 4; a warm start WITHOUT the biased shortcut (the direct total is
# always right: no headroom), trained with the vote and with true answers. About 13 minutes on 2
# cores (the unbiased warm start is 4 of them). Needs build/mmupt, mpirun and python3.
set -euo pipefail
cd "$(dirname "$0")/.."
run=${1:-runs/quickstart}
out=${2:-runs/quickstart-ablations}
M=build/mmupt
[ -x "$M" ] || { echo "ablations: $M not built (launch/build.sh)" >&2; exit 1; }
[ -f "$run/model/model.safetensors" ] && [ -f "$run/data/test.h5" ] ||
    { echo "ablations: $run is not a finished quickstart run (no model/ or data/)" >&2; exit 1; }
. launch/env.sh
rm -rf "$out"
mkdir -p "$out"
evalargs=(-n 8 --temperature 1 --max-new-tokens 24 --min-pixels 784 --max-pixels 7056 --seed 1)

variant() { # NAME MODEL DESCRIPTION [override ...]
    local name=$1 model=$2 desc=$3
    shift 3
    echo "== ablation $name: $desc ==" >&2
    mpirun -q -np 3 "$M" train configs/quickstart.yaml run.seed=1 run.output_dir="$out/$name" model.path="$model" \
        data.train_path="$run/data/train.h5" data.val_path="$run/data/val.h5" "$@" >"$out/$name.log" 2>&1
    "$M" export "$out/$name/checkpoints" "$out/$name/final" >/dev/null
    "$M" eval --model "$out/$name/final" --data "$run/data/test.h5" "${evalargs[@]}" --json "$out/$name.json" >/dev/null
    printf '%s\t%s\t%s\t%s\n' "$name" "$model" "$desc" "$*" >>"$out/variants.tsv"
}

"$M" eval --model "$run/model" --data "$run/data/test.h5" "${evalargs[@]}" --json "$out/base.json" >/dev/null
variant default "$run/model" "the quickstart's settings (lr 5e-5, KL 0.1, G 8), 20 steps"
variant long "$run/model" "the same for 60 steps" run.max_steps=60 checkpoint.interval=10
variant aggressive "$run/model" "lr 3e-4, no KL" optim.lr=3e-4 algorithm.kl_coef=0
variant g4 "$run/model" "G = 4 samples per question" rollout.n=4

echo "== ablation: a warm start without the shortcut's bias (mmupt sft, about 4 minutes) ==" >&2
"$M" data shapes --out "$out/nobias_data" --seed 1 --kinds total --ask-share 0.1 --set crowded_minus1=0 --set crowded_minus2=0 \
    --train 0 --val 0 --test 0 >/dev/null
"$M" sft --init random --model configs/quickstart_model --data "$out/nobias_data/sft.h5" --out "$out/nobias_model" \
    --steps 1500 --batch 32 --lr 1e-3 --seed 1 --min-pixels 784 --max-pixels 7056 --threads 2 --log-every 0 >/dev/null
"$M" eval --model "$out/nobias_model" --data "$run/data/test.h5" "${evalargs[@]}" --json "$out/nobias_base.json" >/dev/null
variant nobias "$out/nobias_model" "warm start without the biased shortcut, MM-UPT"
variant nobias_gt "$out/nobias_model" "warm start without the biased shortcut, ground-truth GRPO" reward.mode=ground_truth

python3 - "$out" <<'PY'
import json, sys
out = sys.argv[1]
def ev(path):
    return json.load(open(path))["overall"]
def metrics(name):
    rows = [json.loads(l) for l in open(f"{out}/{name}/metrics.jsonl") if l.strip()]
    la = [r["reward/label_accuracy"] for r in rows if r.get("reward/label_accuracy") is not None]
    un = [r["reward/uniform_groups"] for r in rows if r.get("reward/uniform_groups") is not None]
    k = lambda xs: max(1, min(5, len(xs) // 4))
    mean = lambda xs: 100 * sum(xs) / len(xs)
    return mean(la[:k(la)]), mean(la[-k(la):]), mean(un[:k(un)]), mean(un[-k(un):])
print("| variant | base greedy / maj@8 | greedy at the last step (delta) | pass@1 | step validation picks (val greedy) | vote label accuracy start -> end | unanimous groups start -> end |")
print("|---|--:|--:|--:|--:|--:|--:|")
for line in open(f"{out}/variants.tsv"):
    name, model, desc, _ = line.rstrip("\n").split("\t")
    base = ev(f"{out}/nobias_base.json" if model.endswith("nobias_model") else f"{out}/base.json")
    e = ev(f"{out}/{name}.json")
    step, score = open(f"{out}/{name}/best_val_step").read().split()
    l0, l1, u0, u1 = metrics(name)
    d = 100 * (e["greedy_pass1"] - base["greedy_pass1"])
    print(f"| {desc} | {100*base['greedy_pass1']:.1f} / {100*base['maj']:.1f} | {100*e['greedy_pass1']:.1f} ({d:+.1f}) "
          f"| {100*e['pass1']:.1f} | {step} ({100*float(score):.1f}) | {l0:.1f} -> {l1:.1f} | {u0:.1f} -> {u1:.1f} |")
PY
