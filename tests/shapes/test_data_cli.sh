#!/bin/sh
# mmupt data shapes: help, a small run (files, summary, progress), question-writing items
# (--ask-share), bad command lines (exit 2 with a message) and unwritable outputs (exit 1 with a
# message, nothing left behind).
# usage: test_data_cli.sh MMUPT
MMUPT=$1
fail=0
ok() { echo "ok - $1"; }
bad() { echo "FAIL $1"; fail=1; }
check() { # name expected actual
    if [ "$2" = "$3" ]; then ok "$1"; else bad "$1"; echo "  want: $2"; echo "  got:  $3"; fi
}
contains() { # name haystack needle
    case $2 in *"$3"*) ok "$1";; *) bad "$1"; echo "  '$3' not in:"; echo "$2";; esac
}
tmp=$(mktemp -d /tmp/mmupt_data_cli.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

# --help explains the options and prints every number of the target model with its default.
out=$("$MMUPT" data shapes --help); check "--help: exit 0" 0 $?
for want in "usage: mmupt data shapes" "--kinds LIST" "pair_direct=0.45" "pair_red_first=0.275" \
            "single_direct=0.5" "crowded_min=10" "crowded_minus1=0.5" "crowded_minus2=0.1" \
            "close_max_diff=1" "close_flip=0.5" "8000, 4096, 500, 1000" "--ask-share X" \
            "question-writing items"; do
    contains "--help mentions $want" "$out" "$want"
done
"$MMUPT" data --help | grep -q "usage: mmupt data shapes"; check "data --help" 0 $?

# A small run: four files, the summary on stdout, progress on stderr.
out=$("$MMUPT" data shapes --out "$tmp/d" --seed 3 --sft 200 --train 50 --val 20 --test 30 2>"$tmp/err"); rc=$?
check "small run: exit 0" 0 $rc
for s in sft train val test; do
    if [ -s "$tmp/d/$s.h5" ]; then ok "$s.h5 written"; else bad "$s.h5 written"; fi
done
contains "summary: sft row" "$out" "sft         200"
contains "summary: test row" "$out" "test         30"
contains "summary: strategy table" "$out" "red first"
contains "summary: decomposed all right" "$out" "wrong decomposed answers: 0 of"
contains "summary: all parsed" "$out" "responses without \\boxed{}: 0"
contains "progress on stderr" "$(cat "$tmp/err")" "mmupt data: test: 30 items"
# A split of 0 items is not written; an existing directory is reused and its files replaced.
out=$("$MMUPT" data shapes --out "$tmp/d" --sft 0 --train 5 --val 0 --test 0 --kinds total 2>/dev/null)
check "reuse: exit 0" 0 $?
contains "kinds honoured" "$out" "train         5       0       0       5       0"

# --ask-share: 0 writes the very files a run without the option writes; a share writes ask items in
# the SFT split only (the other splits stay byte for byte), the same bytes on every run.
same_files() { # name dirA dirB splits...
    name=$1; a=$2; b=$3; shift 3
    for s in "$@"; do
        if cmp -s "$a/$s.h5" "$b/$s.h5"; then ok "$name: $s.h5 identical"; else bad "$name: $s.h5 identical"; fi
    done
}
sizes="--seed 4 --sft 400 --train 40 --val 20 --test 20"
"$MMUPT" data shapes --out "$tmp/plain" $sizes >/dev/null 2>&1; check "ask: plain run" 0 $?
out=$("$MMUPT" data shapes --out "$tmp/zero" $sizes --ask-share 0 2>/dev/null); check "ask 0: exit 0" 0 $?
same_files "ask 0" "$tmp/plain" "$tmp/zero" sft train val test
case $out in *"question-writing"*) bad "ask 0: no ask summary";; *) ok "ask 0: no ask summary";; esac
out=$("$MMUPT" data shapes --out "$tmp/q1" $sizes --ask-share 0.25 2>/dev/null); check "ask 0.25: exit 0" 0 $?
"$MMUPT" data shapes --out "$tmp/q2" $sizes --ask-share 0.25 >/dev/null 2>&1; check "ask 0.25 again: exit 0" 0 $?
same_files "ask 0.25 twice" "$tmp/q1" "$tmp/q2" sft train val test
same_files "ask 0.25: other splits untouched" "$tmp/plain" "$tmp/q1" train val test
if cmp -s "$tmp/plain/sft.h5" "$tmp/q1/sft.h5"; then bad "ask 0.25: sft.h5 changed"; else ok "ask 0.25: sft.h5 changed"; fi
contains "ask 0.25: summary" "$out" "question-writing (ask) items: "
contains "ask 0.25: phrasing listed" "$out" "How many squares can you see?"
contains "ask 0.25: every phrasing recognised" "$out" "        0  (unrecognised)"
# The ask column: about a quarter of 400 in sft (100, sd 8.7), none elsewhere.
n_ask=$(printf '%s\n' "$out" | awk '$1 == "sft" { print $7 }')
if [ -n "$n_ask" ] && [ "$n_ask" -ge 70 ] && [ "$n_ask" -le 130 ]; then ok "ask 0.25: $n_ask of 400 sft items"; \
else bad "ask 0.25: sft ask column '$n_ask'"; fi
check "ask 0.25: no ask items outside sft" "0 0 0" "$(printf '%s\n' "$out" | awk '$1 ~ /^(train|val|test)$/ { printf "%s%s", s, $7; s = " " }')"
out=$("$MMUPT" data shapes --out "$tmp/all" --sft 30 --train 0 --val 0 --test 0 --ask-share 1 2>/dev/null)
check "ask 1: exit 0" 0 $?
contains "ask 1: every sft item" "$out" "question-writing (ask) items: 30 of 30"

# Bad command lines: exit 2 and a message naming the problem; nothing is created.
usage() { # name expected-message args...
    name=$1; msg=$2; shift 2
    err=$("$MMUPT" data "$@" 2>&1 >/dev/null); rc=$?
    check "$name: exit 2" 2 $rc
    contains "$name: message" "$err" "$msg"
}
usage "no dataset" "which dataset?"
usage "unknown dataset" "unknown dataset 'circles'" circles --out "$tmp/x"
usage "no --out" "--out DIR is required" shapes --seed 1
usage "missing value" "--seed needs a value" shapes --out "$tmp/x" --seed
usage "bad seed" "--seed: '-1'" shapes --out "$tmp/x" --seed -1
usage "seed overflow" "--seed: '18446744073709551616'" shapes --out "$tmp/x" --seed 18446744073709551616
usage "bad count" "--train: 'ten'" shapes --out "$tmp/x" --train ten
usage "count too large" "not a count from 0 to 10000000" shapes --out "$tmp/x" --val 10000001
usage "unknown option" "unexpected argument '--size'" shapes --out "$tmp/x" --size 3
usage "stray argument" "unexpected argument 'extra'" shapes --out "$tmp/x" extra
usage "bad kinds" "unknown kind 'green'" shapes --out "$tmp/x" --kinds red,green
usage "bad set" "expected NAME=VALUE" shapes --out "$tmp/x" --set close_flip
usage "set unknown" "unknown parameter 'flip'" shapes --out "$tmp/x" --set flip=0.1
usage "set out of range" "close_flip is 2" shapes --out "$tmp/x" --set close_flip=2
for v in 1.5 -0.1 abc nan inf "" 0.5x; do
    usage "ask share '$v'" "--ask-share: '$v' is not a share from 0 to 1" shapes --out "$tmp/x" --ask-share "$v"
done
usage "ask share missing" "--ask-share needs a value" shapes --out "$tmp/x" --ask-share
if [ -e "$tmp/x" ]; then bad "usage errors create nothing"; else ok "usage errors create nothing"; fi

# Unwritable outputs: exit 1, a message, nothing left behind.
touch "$tmp/file"
err=$("$MMUPT" data shapes --out "$tmp/file/sub" --sft 5 --train 5 --val 5 --test 5 2>&1 >/dev/null); rc=$?
check "under a file: exit 1" 1 $rc
contains "under a file: message" "$err" "$tmp/file/sub: cannot create the directory"
err=$("$MMUPT" data shapes --out "$tmp/file" --sft 5 2>&1 >/dev/null); rc=$?
check "a file: exit 1" 1 $rc
contains "a file: message" "$err" "exists and is not a directory"
# The last split cannot be renamed into place (a directory has its name): the splits already
# written are taken back, and a directory this run created is removed.
mkdir -p "$tmp/late/test.h5"
err=$("$MMUPT" data shapes --out "$tmp/late" --sft 5 --train 5 --val 5 --test 5 2>&1 >/dev/null); rc=$?
check "late failure: exit 1" 1 $rc
contains "late failure: message" "$err" "nothing was left behind"
check "late failure: nothing left" "test.h5" "$(ls "$tmp/late")"
exit $fail
