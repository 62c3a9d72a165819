#!/bin/bash
# mmupt eval as a user meets it: help, usage errors (exit 2), missing files, a split without answers
# and a --model that is neither a model nor a checkpoint (exit 1), a real run: the table, --json,
# --limit, the same numbers from the same seed; settings from a config with options overriding it,
# k > n and k = 0 refused; --out and --markdown; a checkpoint (step directory and checkpoint
# directory) evaluated exactly like the model directory holding the same weights.
# Usage: test_eval_cli.sh MMUPT SRC_ROOT EVAL_MKSPLIT
mmupt=$1
root=$2
mksplit=$3
. "$root/tests/lib.sh"
model=$root/tests/fixtures/models/tiny_train
data=$root/tests/fixtures/datasets/small.h5
ev() { run "$mmupt" eval --model "$model" --data "$data" --max-new-tokens 6 "$@"; }

run "$mmupt" eval --help;               expect "help" 0 "usage: mmupt eval" "--limit K"
run "$mmupt" eval;                      expect "no arguments" 2 "--model and --data are required"
run "$mmupt" eval --model "$model";     expect "no data" 2 "--model and --data are required"
ev -n 0;                                expect "G zero" 2 "-n: 0 is out of range"
ev -n 3x;                               expect "G not a number" 2 "-n: '3x' is not a whole number"
ev --temperature 0;                     expect "temperature zero" 2 "temperature must be > 0"
ev --temperature nan;                   expect "temperature nan" 2 "not a finite number"
ev --top-p 2;                           expect "top-p" 2 "top_p must be in (0, 1]"
ev --limit 0;                           expect "limit zero" 2 "--limit: 0 is out of range"
ev --seed -1;                           expect "negative seed" 2 "--seed: '-1'"
ev --vote majority;                     expect "vote mode" 2 "paper or equivalence"
ev --frobnicate 1;                      expect "unknown option" 2 "unknown argument '--frobnicate'"
ev -n;                                  expect "missing value" 2 "'-n' needs a value"
ev --k 1,4 -n 2;                        expect "k > n" 2 "k = 4 exceeds n = 2"
ev --k 0;                               expect "k zero" 2 "--k: k list '0': k = 0"
ev --k 1,,2;                            expect "k junk" 2 "--k: k list"
ev --greedy maybe;                      expect "greedy yes/no" 2 "--greedy: 'maybe' is not yes or no"

run "$mmupt" eval --model "$model" --data "$tmp/nope.h5"
expect "missing split" 1 "$tmp/nope.h5"
run "$mmupt" eval --model "$tmp/nomodel" --data "$data"
expect "missing model" 1 "$tmp/nomodel"
mkdir -p "$tmp/neither"
run "$mmupt" eval --model "$tmp/neither" --data "$data"
expect "neither model nor checkpoint" 1 "$tmp/neither: neither a Hugging Face model directory"
mkdir -p "$tmp/noweights" && echo step-00000009 >"$tmp/noweights/latest"
run "$mmupt" eval --model "$tmp/noweights" --data "$data"
expect "checkpoint without weights" 1 "$tmp/noweights/latest" "step-00000009"
"$mksplit" "$tmp/noanswers.h5"
run "$mmupt" eval --model "$model" --data "$tmp/noanswers.h5"
expect "split without answers" 1 "eval needs them"
ev --limit 1 --json /nonexistent-dir/x.json
expect "unwritable json" 1 "/nonexistent-dir/x.json"

ev -n 2 --limit 4 --json "$tmp/a.json" --responses "$tmp/a.jsonl"
expect "run" 0 "| **all** | 3 |" "maj@2 (paper vote)" "| dapo | 1 |" "1 without an answer"
ev -n 2 --limit 4 --json "$tmp/b.json" --threads 1
expect "run again" 0 "| **all** | 3 |"
if grep -q '"graded": 3' "$tmp/a.json" && grep -q '"skipped_no_answer": 1' "$tmp/a.json" &&
   [ "$(wc -l <"$tmp/a.jsonl")" = 3 ]; then ok "json and responses files"
else fail "json and responses files" "$(head -c 600 "$tmp/a.json")"; fi
if diff <(grep -v '"seconds"' "$tmp/a.json") <(grep -v '"seconds"' "$tmp/b.json") >/dev/null; then ok "same seed, same numbers"
else fail "same seed, same numbers" "$(diff "$tmp/a.json" "$tmp/b.json" | head -20)"; fi

# --device: the device model decodes; on the emulator of a CPU-only build the numbers are the CPU's.
ev --device gpu;                        expect "device choice" 2 "--device: 'gpu' is not one of"
if "$mmupt" version | grep -q "no CUDA backend"; then
    ev --device cuda --limit 1;         expect "cuda in a CPU-only build" 1 "--device: this mmupt was built without CUDA"
    ev -n 2 --limit 4 --json "$tmp/e.json" --device emulator --dtype fp32
    expect "run on the device emulator" 0 "| **all** | 3 |"
    if diff <(grep -v '"seconds"' "$tmp/a.json") <(grep -v '"seconds"' "$tmp/e.json") >/dev/null; then
        ok "device emulator: the CPU's numbers"
    else fail "device emulator: the CPU's numbers" "$(diff "$tmp/a.json" "$tmp/e.json" | head -20)"; fi
else
    ev --device emulator --limit 1;     expect "emulator in a CUDA build" 1 "--device: this build has the real CUDA backend"
fi
ev -n 2 --limit 2 --vote equivalence --json -
expect "json on stdout, limit" 0 '"graded": 2' '"vote": "equivalence"'
# Settings from a config; options override it; the config's data and vote settings apply.
cat >"$tmp/eval.yaml" <<'YAML'
eval:
  n: 2
  k: [1, 2]
  temperature: 1.0
  max_new_tokens: 6
  greedy: false
reward:
  vote: equivalence
YAML
run "$mmupt" eval --model "$model" --data "$data" --config "$tmp/eval.yaml" --limit 2 --json -
expect "config" 0 '"n": 2' '"vote": "equivalence"' '"greedy": false' '"max_new_tokens": 6' '"greedy_pass1": null' \
    'Please reason step by step'
run "$mmupt" eval --model "$model" --data "$data" --config "$tmp/eval.yaml" eval.n=3 -n 4 --vote paper --limit 1 --json -
expect "options override the config" 0 '"n": 4' '"vote": "paper"' '"temperature": 1.0'
run "$mmupt" eval --model "$model" --data "$data" --config "$tmp/eval.yaml" eval.k=1,4
expect "config k > n" 1 "$tmp/eval.yaml" "k = 4 exceeds n = 2"
run "$mmupt" eval --model "$model" --data "$data" eval.k=0
expect "config k zero" 1 "eval.k" "item 1"
run "$mmupt" eval --model "$model" --data "$data" --config "$tmp/missing.yaml"
expect "missing config" 1 "$tmp/missing.yaml"
run "$mmupt" eval --model "$model" --data "$data" eval.bogus=1
expect "unknown config key" 1 "eval.bogus"

# --out and --markdown.
ev -n 2 --k 1,2 --limit 3 --out "$tmp/res/a" --markdown "$tmp/res.md"
expect "out and markdown" 0 "| **all** |"
if [ -s "$tmp/res/a/results.json" ] && grep -q '"maj_at_k"' "$tmp/res/a/results.json" &&
   grep -q '^Model `.*tiny_train` on .*n=2 samples per item at T=0.2, .*k=1,2, greedy on' "$tmp/res/a/results.md" &&
   grep -q '| maj@1 | maj@2 (paper vote) |' "$tmp/res/a/results.md" && cmp -s "$tmp/res.md" "$tmp/res/a/results.md"
then ok "results.json and results.md"
else fail "results.json and results.md" "$(ls -R "$tmp/res")" "$(head -5 "$tmp/res/a/results.md")"; fi

# A checkpoint holding the model's weights evaluates exactly like the model directory.
"$mksplit" --checkpoint "$model" "$tmp/ckpts"
ev -n 2 --limit 3 --json "$tmp/hf.json"
expect "model directory" 0
for c in "$tmp/ckpts" "$tmp/ckpts/step-00000005"; do
    run "$mmupt" eval --model "$c" --data "$data" --max-new-tokens 6 -n 2 --limit 3 --json "$tmp/ck.json"
    expect "checkpoint $c" 0 "checkpoint $tmp/ckpts/step-00000005 (step 5)"
    if diff <(grep -v '"seconds"\|"model"' "$tmp/hf.json") <(grep -v '"seconds"\|"model"' "$tmp/ck.json") >/dev/null
    then ok "checkpoint $c == model directory"
    else fail "checkpoint $c == model directory" "$(diff "$tmp/hf.json" "$tmp/ck.json" | head)"; fi
done
run "$mmupt" eval --model "$tmp/ckpts" --base-model "$root/tests/fixtures/models/qwen2" --data "$data"
expect "checkpoint with another architecture" 1 "parameters"
finish
