#!/bin/bash
# mmupt eval as a user meets it: help, usage errors (exit 2), missing files and a split without
# answers (exit 1), the refusal under mpirun, and a real run: the table, --json, --limit, and the
# same numbers from the same seed.
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
OMPI_COMM_WORLD_SIZE=2 ev;              expect "np > 1 refused" 2 "runs as one process, but 2 were started"

run "$mmupt" eval --model "$model" --data "$tmp/nope.h5"
expect "missing split" 1 "$tmp/nope.h5"
run "$mmupt" eval --model "$tmp/nomodel" --data "$data"
expect "missing model" 1 "$tmp/nomodel"
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
ev -n 2 --limit 2 --vote equivalence --json -
expect "json on stdout, limit" 0 '"graded": 2' '"vote": "equivalence"'
finish
