#!/usr/bin/env bash
# The quickstart, shortened (launch/quickstart.sh --smoke: 2 steps per run, a few items): every
# stage runs with the built binary - data, the checksummed warm start, eval, MM-UPT on 3 ranks,
# validation-picked export, supervised GRPO, report - and the report appears with its table,
# verdict and plot. It checks the pipeline, not the accuracy figure (docs/quickstart.md).
# usage: test_quickstart.sh MMUPT SOURCE_ROOT
set -u
mmupt=$(realpath "$1")
root=$2
. "$root/tests/lib.sh"
mpi_setup
cd "$root"
out=$tmp/qs

run timeout 600 ./launch/quickstart.sh --smoke --mmupt "$mmupt" --out "$out"
expect "quickstart --smoke finishes" 0 "checksum ok" "validation picked step" "quickstart: done"

if [ -f "$out/report.md" ] && grep -q "^## Accuracy on the test split" "$out/report.md" &&
   grep -qE '^\| 1 \| [0-9.]+ \| [0-9.]+ \| [0-9.]+ \| [-+][0-9.]+ \| [0-9.]+ \([-+][0-9.]+\)' "$out/report.md"; then
    ok "report.md has the seed-1 accuracy row"
else fail "report.md accuracy row" "$(head -c 2000 "$out/report.md" 2>&1)"; fi
if grep -q "^## Verdict" "$out/report.md" && grep -q "SMOKE RUN" "$out/report.md"; then
    ok "report.md has the verdict and says it is a smoke run"
else fail "report.md verdict / smoke note" "$(grep -n '^##\|SMOKE' "$out/report.md")"; fi
if [ "$(head -c 8 "$out/report.png" 2>/dev/null | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ]; then
    ok "report.png is a PNG"
else fail "report.png" "$(ls -l "$out")"; fi
s=$out/seed-1
if [ -f "$s/base.json" ] && [ -f "$s/majority.json" ] && [ -f "$s/ground_truth.json" ] && [ -f "$s/synth.json" ] &&
   [ -f "$s/synth_data.h5" ] && [ -f "$s/synth_data.json" ] &&
   [ "$(cut -f1 "$s/times.tsv" | tr '\n' ' ')" = "base_eval majority_train majority_eval ground_truth_train ground_truth_eval synth_gen synth_train synth_eval " ]; then
    ok "four evaluations, the self-written questions and eight timed phases"
else fail "seed files" "$(ls "$s")" "$(cat "$s/times.tsv" 2>&1)"; fi
for mode in majority ground_truth; do
    sel=$(cat "$s/$mode/selected_step" 2>/dev/null)
    if [ -n "$sel" ] && grep -q '"reward/label_accuracy"' "$s/$mode/metrics.jsonl" &&
       { [ "$sel" = 0 ] || [ -f "$s/$mode/model/model.safetensors" ]; }; then
        ok "$mode: validation picked step $sel and that model was evaluated"
    else fail "$mode: selection" "$(ls "$s/$mode")"; fi
done
sel=$(cat "$s/synth/selected_step" 2>/dev/null)
if [ -n "$sel" ] && { [ "$sel" = 0 ] || [ -f "$s/synth/model/model.safetensors" ]; } &&
   grep -q "MM-UPT, self-generated questions (direct)" "$out/report.md" && grep -q "self-generated questions: [0-9]* kept of" "$out/report.md"; then
    ok "self-written questions: trained on, picked step $sel evaluated, the report's row and counts"
else fail "self-written questions" "$(ls "$s/synth" 2>&1 | head -5)" "$(grep -n 'self-generated' "$out/report.md" | head -3)"; fi

# The warm start made in the run (--warm-start train: 20 sft steps in a smoke run) instead of shipped;
# the same --out is replaced, being a quickstart run.
run timeout 600 ./launch/quickstart.sh --smoke --warm-start train --mmupt "$mmupt" --out "$out"
expect "quickstart --smoke --warm-start train finishes" 0 "sft done: 20 steps" "quickstart: done"
if grep -q "warm-start train" "$out/report.md" && ! ls "$out/seed-1" | grep -q '\.tmp$'; then ok "its report names the warm start"
else fail "report after --warm-start train" "$(grep -n 'warm' "$out/report.md")"; fi

# A directory that is not a quickstart run is never replaced.
mkdir -p "$tmp/precious" && echo keep >"$tmp/precious/file"
run ./launch/quickstart.sh --smoke --mmupt "$mmupt" --out "$tmp/precious"
expect "refuses to replace a directory that is not a quickstart run" 1 "not a quickstart run directory"
if [ "$(cat "$tmp/precious/file")" = keep ]; then ok "... and leaves it as it was"; else fail "precious dir changed"; fi
run ./launch/quickstart.sh --seeds "1 x"
expect "a bad seed is a usage error" 2 "seed 'x'"
run ./launch/quickstart.sh --warm-start maybe
expect "a bad --warm-start is a usage error" 2 "shipped or train"
finish
