#!/bin/bash
# mmupt report as a user meets it: a small run directory written here (eval JSONs shaped like
# `mmupt eval --json`, metrics lines like the trainer's), the report's numbers computed from those
# values, the verdict when the bars are met and when they are not, a run without ground-truth GRPO,
# the figure, and bad input: usage errors (exit 2), missing or malformed files (exit 1, the message
# naming the file and line), and an earlier report left intact by a failed run; the run on
# self-generated questions (issue 12): its row, sentence, facts and curves, its bad files, and a run
# without it reported exactly as before.
# Usage: test_report_cli.sh MMUPT SRC_ROOT
mmupt=$1
mmupt_abs=$(cd "$(dirname "$mmupt")" && pwd)/$(basename "$mmupt")
root=$2
. "$root/tests/lib.sh"

# evaljson FILE GREEDY PASS1 MAJ [KIND ITEMS GREEDY MAJ]... : an eval result with G = 8.
evaljson() {
    local f=$1 g=$2 p=$3 m=$4 sep=""
    shift 4
    {
        printf '{\n  "model": "runs/x/model",\n  "data": "data/shapes/test.h5",\n'
        printf '  "settings": {"G": 8, "temperature": 1.0, "top_p": 1.0, "top_k": 0, "max_new_tokens": 32,\n'
        printf '               "limit": 0, "seed": "1", "vote": "paper", "format_prompt": ""},\n'
        printf '  "counts": {"visited": 1000, "graded": 1000, "skipped_no_answer": 0, "skipped_bad": 0},\n'
        printf '  "overall": {"items": 1000, "samples": 8000, "greedy_pass1": %s, "pass1": %s, "maj": %s,\n' "$g" "$p" "$m"
        printf '              "pass_g": 0.99, "headroom": 0.1, "greedy_parse_failure": 0.0},\n'
        printf '  "by_source": {'
        while [ $# -ge 4 ]; do
            printf '%s\n    "%s": {"items": %s, "samples": 80, "greedy_pass1": %s, "pass1": 0.5, "maj": %s}' \
                "$sep" "$1" "$2" "$3" "$4"
            sep=,
            shift 4
        done
        printf '\n  },\n  "seconds": 12.5\n}\n'
    } >"$f"
}

# metrics FILE: 8 steps; label accuracy 0.5 .. 0.9 (k = 2), uniform groups with a null (7 values,
# k = 1), validation at steps 4 and 8.
metrics() {
    local la=(0.5 0.7 0.6 0.8 0.8 0.9 0.7 0.9) un=(0.1 0.2 null 0.3 0.4 0.5 0.6 0.7) s
    for s in 1 2 3 4 5 6 7 8; do
        printf '{"step": %d, "loss": 0.01, "reward/mean": 0.%d, "reward/majority_ratio": 0.%d, "reward/uniform_groups": %s, "reward/parse_failure": 0, "reward/label_accuracy": %s' \
            $s $((s + 1)) $((s + 1)) "${un[s - 1]}" "${la[s - 1]}"
        [ $s = 4 ] && printf ', "val/greedy_pass1": 0.72, "val/pass1": 0.7'
        [ $s = 8 ] && printf ', "val/greedy_pass1": 0.78, "val/pass1": 0.75'
        printf ', "time/step_s": 0.5}\n'
    done
}

# seed DIR N BASE MMUPT GT: a seed directory; accuracies of the base, MM-UPT and GT-GRPO models.
seed() {
    local d=$1/seed-$2
    mkdir -p "$d/majority" "$d/ground_truth"
    evaljson "$d/base.json" "$3" 0.802 0.901 red 250 0.9 0.95 total 250 0.5 0.9
    evaljson "$d/majority.json" "$4" 0.81 0.9 red 250 0.88 0.95 total 250 0.62 0.9
    evaljson "$d/ground_truth.json" "$5" 0.9 0.95 red 250 0.96 0.97 total 250 0.8 0.9
    metrics >"$d/majority/metrics.jsonl"
    metrics >"$d/ground_truth/metrics.jsonl"
    echo 6 >"$d/majority/selected_step"
    printf 'base_eval\t10\nmajority_train\t50\nmajority_eval\t10\nground_truth_train\t50.4\nground_truth_eval\t2.6\n' >"$d/times.tsv"
}

good=$tmp/good
mkdir -p "$good"
printf 'command\tlaunch/quickstart.sh\nmachine\ttest|box\nmodel_sha256\tabc123\n' >"$good/run.tsv"
seed "$good" 1 0.713 0.778 0.850
seed "$good" 2 0.701 0.684 0.811
seed "$good" 10 0.690 0.795 0.800

run "$mmupt" report --help;        expect "help" 0 "usage: mmupt report RUN_DIR" "docs/quickstart.md" "times.tsv"
run "$mmupt" report;               expect "no run dir" 2 "RUN_DIR is required"
run "$mmupt" report "$good" --frob; expect "unknown option" 2 "unknown option '--frob'"
run "$mmupt" report "$good" "$tmp"; expect "two run dirs" 2 "one run directory expected"
run "$mmupt" report "$good" --out; expect "option without value" 2 "'--out' needs a value"
run "$mmupt" report "$tmp/nope";   expect "missing run dir" 1 "$tmp/nope: cannot open the run directory"
mkdir -p "$tmp/empty"
run "$mmupt" report "$tmp/empty"; expect "no seed dirs" 1 "$tmp/empty: no seed-N directories"

run "$mmupt" report "$good"
expect "report" 0 "wrote $good/report.md and $good/report.png (3 seeds)"
md=$good/report.md
# has NAME LINE...: each line appears verbatim in report.md.
has() {
    local name=$1 l
    shift
    for l in "$@"; do
        grep -qxF -- "$l" "$md" || { fail "$name" "missing line: $l" "$(head -c 3000 "$md")"; return; }
    done
    ok "$name"
}
has "summary rows, numbers from the fixture" \
    "| 1 | 71.3 | 80.2 | 90.1 | +18.8 | 77.8 (+6.5) | 81.0 | 85.0 (+13.7) | 60.0 -> 80.0 | 10.0 -> 70.0 | 123 |" \
    "| 2 | 70.1 | 80.2 | 90.1 | +20.0 | 68.4 (-1.7) | 81.0 | 81.1 (+11.0) | 60.0 -> 80.0 | 10.0 -> 70.0 | 123 |" \
    "| **mean** | 70.1 | 80.2 | 90.1 | +20.0 | 75.2 (+5.1) | 81.0 | 82.0 (+11.9) | 60.0 -> 80.0 | 10.0 -> 70.0 | 123 |"
has "run section from run.tsv" "| command | launch/quickstart.sh |" "| machine | test\\|box |" "| model\\_sha256 | abc123 |"
has "verdict met" \
    "- **MM-UPT** (majority-vote reward, no labels): **met**. Mean greedy delta +5.1 points over 3 seeds (bar: at least +5.0); lowest seed 2 at -1.7 points (bar: none below -3.0)." \
    "- **Ground-truth GRPO** (true answers as reward, the supervised reference): **met**. Greedy delta per seed (bar: at least +10.0 on every seed): seed 1 +13.7, seed 2 +11.0, seed 10 +11.0." \
    "MM-UPT lost accuracy on seed 2: greedy 70.1 -> 68.4 (-1.7 points)."
has "per kind, training runs, times" "| total | 250 | 50.0 | 90.0 | 62.0 (+12.0) | 80.0 (+30.0) |" \
    "| 10 | MM-UPT | 8 | 8 | 6 | 25.0 -> 85.0 | 25.0 -> 85.0 | 60.0 -> 80.0 | 10.0 -> 70.0 | 72.0 -> 78.0 (best 78.0 at step 8) |" \
    "| 1 | 10.0 | 50.0 | 10.0 | 50.4 | 2.6 | 123.0 |"
order=$(grep -E '^\| (1|2|10) \| [0-9]' "$md" | head -3 | cut -d' ' -f2 | tr '\n' ' ')
if [ "$order" = "1 2 10 " ]; then ok "seeds in numeric order"; else fail "seeds in numeric order" "got: $order"; fi
if grep -qF '](report.png)' "$md" && grep -qF 'k = max(1, min(5, n/4))' "$md"; then ok "figure link and legend"
else fail "figure link and legend"; fi
if [ "$(head -c 8 "$good/report.png" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ]; then ok "report.png is a PNG"
else fail "report.png is a PNG" "$(head -c 8 "$good/report.png" | od -c)"; fi
if ls "$good" | grep -q '\.tmp$'; then fail "no temporaries left" "$(ls "$good")"; else ok "no temporaries left"; fi

# The bars missed: MM-UPT loses 4.1 points on seed 2 (mean +4.3), ground truth gains only 8.9 there.
notmet=$tmp/notmet
cp -r "$good" "$notmet"
evaljson "$notmet/seed-2/majority.json" 0.660 0.7 0.8 red 250 0.8 0.9
evaljson "$notmet/seed-2/ground_truth.json" 0.790 0.8 0.9 red 250 0.9 0.9
run "$mmupt" report "$notmet"
expect "report, bars missed" 0
md=$notmet/report.md
has "verdict NOT met" \
    "- **MM-UPT** (majority-vote reward, no labels): **NOT met**. Mean greedy delta +4.3 points over 3 seeds (bar: at least +5.0, missed); lowest seed 2 at -4.1 points (bar: none below -3.0, missed)." \
    "- **Ground-truth GRPO** (true answers as reward, the supervised reference): **NOT met**. Greedy delta per seed (bar: at least +10.0 on every seed): seed 1 +13.7, seed 2 +8.9, seed 10 +11.0; lowest: seed 2 at +8.9." \
    "MM-UPT lost accuracy on seed 2: greedy 70.1 -> 66.0 (-4.1 points)." \
    "| total | 250 | 50.0 | 90.0 | - | - |"

# No ground-truth run: allowed, and said so.
nogt=$tmp/nogt
cp -r "$good" "$nogt"
rm -rf "$nogt"/seed-*/ground_truth "$nogt"/seed-*/ground_truth.json "$nogt"/report.*
run "$mmupt" report "$nogt" --out "$tmp/nogt.md" --png "$tmp/nogt.png"
expect "report without ground truth" 0 "wrote $tmp/nogt.md and $tmp/nogt.png"
md=$tmp/nogt.md
has "ground truth not run" \
    "| 1 | 71.3 | 80.2 | 90.1 | +18.8 | 77.8 (+6.5) | 81.0 | not run | 60.0 -> 80.0 | 10.0 -> 70.0 | 123 |" \
    "| **mean** | 70.1 | 80.2 | 90.1 | +20.0 | 75.2 (+5.1) | 81.0 | not run | 60.0 -> 80.0 | 10.0 -> 70.0 | 123 |" \
    "- **Ground-truth GRPO** (true answers as reward, the supervised reference): **not run** (no ground_truth.json in any seed directory)."
if grep -qF "](nogt.png)" "$md" && [ ! -e "$nogt/report.md" ]; then ok "--out and --png"; else fail "--out and --png"; fi

# Bad input: exit 1, a message naming the file (and line), and the earlier report untouched.
cp "$good/report.md" "$tmp/old.md"
cp "$good/report.png" "$tmp/old.png"
# broken NAME EXPECTED SHELL-CODE: applies the code to a copy of the good run ($b), runs the report.
broken() {
    local name=$1 want=$2 code=$3
    b=$tmp/broken
    rm -rf "$b"
    cp -r "$good" "$b"
    eval "$code"
    run "$mmupt" report "$b"
    expect "$name" 1 "$want"
    if ! cmp -s "$b/report.md" "$tmp/old.md" || ! cmp -s "$b/report.png" "$tmp/old.png" || ls "$b" | grep -q '\.tmp$'; then
        fail "$name: earlier report intact" "$(ls -l "$b")"
    fi
}
broken "missing base.json" "$tmp/broken/seed-2/base.json: cannot open" 'rm "$b/seed-2/base.json"'
broken "missing run.tsv" "$tmp/broken/run.tsv: cannot open" 'rm "$b/run.tsv"'
broken "missing times.tsv" "seed-10/times.tsv: cannot open" 'rm "$b/seed-10/times.tsv"'
broken "missing majority dir" "seed-1/majority: missing" 'rm -r "$b/seed-1/majority"'
broken "gt json without its dir" "seed-2/ground_truth: missing (the evaluation exists" 'rm -r "$b/seed-2/ground_truth"'
broken "gt dir without its json" "seed-2/ground_truth.json: missing (the training directory exists" \
    'rm "$b/seed-2/ground_truth.json"'
broken "malformed JSON" "seed-1/majority.json:3:" 'printf "{\n  \"settings\": {\n  \"G\" 8}}\n" >"$b/seed-1/majority.json"'
broken "JSON without a field" "seed-1/base.json: overall.maj: missing" \
    'sed -i "s/\"maj\": 0.901,//" "$b/seed-1/base.json"'
broken "share out of range" "seed-2/base.json: overall.greedy_pass1: 1.5 is not a share in [0, 1]" \
    'evaljson "$b/seed-2/base.json" 1.5 0.8 0.9'
broken "bad metrics step" "seed-10/majority/metrics.jsonl:3: \"step\": not an integer" \
    'sed -i "3s/.*/{\"step\": \"three\", \"reward\/mean\": 1}/" "$b/seed-10/majority/metrics.jsonl"'
broken "metrics line not JSON" "seed-1/ground_truth/metrics.jsonl:5:" \
    'sed -i "5s/.*/{\"step\": 5,/" "$b/seed-1/ground_truth/metrics.jsonl"'
broken "metrics value not a number" "metrics.jsonl:2: \"reward/label_accuracy\": not a number or null" \
    'sed -i "2s/\"reward\/label_accuracy\": 0.7/\"reward\/label_accuracy\": \"high\"/" "$b/seed-1/majority/metrics.jsonl"'
broken "bad times line" "seed-2/times.tsv:2: majority_train: 'fast' is not a number of seconds" \
    'printf "base_eval\t1\nmajority_train\tfast\n" >"$b/seed-2/times.tsv"'
broken "bad run.tsv line" "run.tsv:2: expected NAME<TAB>VALUE" 'printf "a\tb\nno tab here\n" >"$b/run.tsv"'
broken "bad selected_step" "seed-1/majority/selected_step: 'six' is not a step number" \
    'echo six >"$b/seed-1/majority/selected_step"'
broken "bad seed dir name" "seed-01: not a seed directory name" 'mkdir "$b/seed-01"'
run "$mmupt" report "$good" --out /nonexistent-dir/r.md
expect "unwritable output" 1 "/nonexistent-dir/r.md"
run "$mmupt" report "$good" --out "$tmp/same" --png "$tmp/same"
expect "report and figure the same file" 1 "the report and the figure would be the same file"
# Without the self-generated-question files the report is the one from before issue 12, byte for
# byte: golden_nosynth.md was written by that code from this fixture (run directory given as "good").
(cd "$tmp" && "$mmupt_abs" report good >/dev/null 2>&1)
if cmp -s "$good/report.md" "$root/tests/report/golden_nosynth.md"; then ok "no synth files: report unchanged"
else fail "no synth files: report unchanged" "$(diff "$root/tests/report/golden_nosynth.md" "$good/report.md" | head -20)"; fi

# synthjson FILE KEPT CANDIDATES NOT_QUESTION TOO_SHORT: an `mmupt synth` summary (mode direct); the
# candidates left over are "surplus".
synthjson() {
    cat >"$1" <<JSON
{
  "model": "runs/x/model", "policy": "runs/x/model", "data": "data/train.h5", "out": "seed-1/synth_data.h5",
  "settings": {"mode": "direct", "n": 4, "keep": 1, "temperature": 1.0, "top_p": 1.0, "max_new_tokens": 64,
               "seed": 1, "limit": 0, "min_chars": 10, "max_chars": 400, "max_overlap": 0.7,
               "require_question": true, "min_pixels": 0, "max_pixels": 0, "ranks": 1},
  "prompt": "Write one question about this image.", "prompt_is_default": true,
  "counts": {"items": 64, "items_used": 64, "skipped_no_image": 0, "skipped_no_answer": 0, "skipped_bad": 0,
             "candidates": $3, "kept": $2, "rejected": $(($3 - $2)),
             "rejected_by_reason": {"undecodable": 0, "empty": 0, "marker": 0, "too_short": $5, "too_long": 0,
                                    "not_question": $4, "answer_leak": 0, "duplicate": 0, "near_duplicate": 0,
                                    "surplus": $(($3 - $2 - $4 - $5))},
             "mean_response_tokens": 21.5},
  "seconds": 3.25
}
JSON
}

# addsynth DIR N GREEDY: seed N's run on self-generated questions, its summary and phase times.
addsynth() {
    local d=$1/seed-$2
    mkdir -p "$d/synth"
    evaljson "$d/synth.json" "$3" 0.79 0.88 red 250 0.86 0.95 total 250 0.6 0.9
    metrics >"$d/synth/metrics.jsonl"
    echo 4 >"$d/synth/selected_step"
    synthjson "$d/synth_data.json" 40 256 150 30
    printf 'synth_gen\t20\nsynth_train\t50\nsynth_eval\t10\n' >>"$d/times.tsv"
}

syn=$tmp/syn
cp -r "$good" "$syn"
rm -f "$syn"/report.*
addsynth "$syn" 1 0.760
addsynth "$syn" 2 0.701
addsynth "$syn" 10 0.700
synthjson "$syn/seed-2/synth_data.json" 64 256 150 0
run "$mmupt" report "$syn"
expect "report with self-generated questions" 0 "wrote $syn/report.md and $syn/report.png (3 seeds)"
md=$syn/report.md
# seed 1: 76.0 - 71.3 = +4.7 against +6.5; seed 2: 70.1 - 70.1 = +0.0 against -1.7; seed 10: +1.0
# against +10.5; mean (4.7 + 0 + 1.0) / 3 = +1.9 against +5.1.
has "self-generated row beside the original" \
    "| seed | base greedy | base pass@1 | base maj@8 | headroom | MM-UPT, original questions: greedy (delta) | original: pass@1 | original: maj@8 | MM-UPT, self-generated questions (direct): greedy (delta) | self-generated: pass@1 | self-generated: maj@8 | GT-GRPO greedy (delta) | vote label accuracy start -> end | unanimous groups start -> end | wall s |" \
    "| 1 | 71.3 | 80.2 | 90.1 | +18.8 | 77.8 (+6.5) | 81.0 | 90.0 | 76.0 (+4.7) | 79.0 | 88.0 | 85.0 (+13.7) | 60.0 -> 80.0 | 10.0 -> 70.0 | 203 |" \
    "| 2 | 70.1 | 80.2 | 90.1 | +20.0 | 68.4 (-1.7) | 81.0 | 90.0 | 70.1 (+0.0) | 79.0 | 88.0 | 81.1 (+11.0) | 60.0 -> 80.0 | 10.0 -> 70.0 | 203 |" \
    "| **mean** | 70.1 | 80.2 | 90.1 | +20.0 | 75.2 (+5.1) | 81.0 | 90.0 | 72.0 (+1.9) | 79.0 | 88.0 | 82.0 (+11.9) | 60.0 -> 80.0 | 10.0 -> 70.0 | 203 |"
has "a sentence per seed, self-generated against original" \
    "- seed 1: greedy delta +4.7 points on self-generated questions against +6.5 on the original questions: 1.8 points lower." \
    "- seed 2: greedy delta +0.0 points on self-generated questions against -1.7 on the original questions: 1.7 points higher." \
    "- seed 10: greedy delta +1.0 points on self-generated questions against +10.5 on the original questions: 9.5 points lower." \
    "- mean over the seeds: greedy delta +1.9 points on self-generated questions against +5.1 on the original questions: 3.2 points lower."
has "synth counts in the run facts" \
    "- seed 1: self-generated questions: 40 kept of 256 candidates (rejected: too\\_short 30, not\\_question 150, surplus 36), from 64 items." \
    "- seed 2: self-generated questions: 64 kept of 256 candidates (rejected: not\\_question 150, surplus 42), from 64 items."
has "self-generated run in the per-kind, training and time tables" \
    "| total | 250 | 50.0 | 90.0 | 62.0 (+12.0) | 60.0 (+10.0) | 80.0 (+30.0) |" \
    "| 10 | MM-UPT self-generated | 8 | 8 | 4 | 25.0 -> 85.0 | 25.0 -> 85.0 | 60.0 -> 80.0 | 10.0 -> 70.0 | 72.0 -> 78.0 (best 78.0 at step 8) |" \
    "| 2 | 10.0 | 50.0 | 10.0 | 50.4 | 2.6 | 20.0 | 50.0 | 10.0 | 203.0 |"
if grep -qF "in purples and pinks" "$md" && grep -qF -- "- **MM-UPT, self-generated questions**" "$md"; then
    ok "legend covers the self-generated run"
else fail "legend covers the self-generated run"; fi
# The verdict is MM-UPT's on the original questions, as before: no bar for the self-generated run.
has "verdict unchanged" \
    "- **MM-UPT** (majority-vote reward, no labels): **met**. Mean greedy delta +5.1 points over 3 seeds (bar: at least +5.0); lowest seed 2 at -1.7 points (bar: none below -3.0)."
if [ "$(head -c 8 "$syn/report.png" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] &&
    [ "$(stat -c %s "$syn/report.png")" -gt 1000 ] && ! cmp -s "$syn/report.png" "$good/report.png"; then
    ok "report.png with the self-generated curves"
else fail "report.png with the self-generated curves"; fi

# Bad self-generated-question files: exit 1, the file and field named.
# broken_syn NAME EXPECTED SHELL-CODE: applies the code to a copy of the synth run ($b).
broken_syn() {
    local name=$1 want=$2 code=$3
    b=$tmp/broken_syn
    rm -rf "$b"
    cp -r "$syn" "$b"
    eval "$code"
    run "$mmupt" report "$b"
    expect "$name" 1 "$want"
}
broken_syn "synth files on some seeds only" "$tmp/broken_syn/seed-10/synth.json: missing (seed 1 has the run on self-generated questions" \
    'rm -r "$b/seed-10/synth" "$b/seed-10/synth.json" "$b/seed-10/synth_data.json"'
broken_syn "synth_data.json missing" "$tmp/broken_syn/seed-2/synth_data.json: missing" 'rm "$b/seed-2/synth_data.json"'
broken_syn "synth dir missing" "$tmp/broken_syn/seed-2/synth: missing" 'rm -r "$b/seed-2/synth"'
broken_syn "synth.json missing" "$tmp/broken_syn/seed-1/synth.json: missing" 'rm "$b/seed-1/synth.json"'
broken_syn "synth_data.json without counts.kept" "seed-1/synth_data.json: counts.kept: missing" \
    'sed -i "s/\"kept\": 40,//" "$b/seed-1/synth_data.json"'
broken_syn "synth_data.json kept not a count" "seed-1/synth_data.json: counts.kept: not a non-negative integer" \
    'sed -i "s/\"kept\": 40,/\"kept\": \"forty\",/" "$b/seed-1/synth_data.json"'
broken_syn "synth_data.json reasons not adding up" "seed-1/synth_data.json: counts: kept (40) plus rejected_by_reason (215)" \
    'sed -i "s/\"too_short\": 30/\"too_short\": 29/" "$b/seed-1/synth_data.json"'
broken_syn "synth_data.json not JSON" "seed-1/synth_data.json:1:" 'echo "{counts" >"$b/seed-1/synth_data.json"'
broken_syn "synth eval bad" "seed-2/synth.json: overall.greedy_pass1: 1.5 is not a share" \
    'evaljson "$b/seed-2/synth.json" 1.5 0.8 0.9'
broken_syn "synth metrics bad" "seed-10/synth/metrics.jsonl:2: \"step\": not an integer" \
    'sed -i "2s/.*/{\"step\": null}/" "$b/seed-10/synth/metrics.jsonl"'
finish
