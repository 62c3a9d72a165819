#!/usr/bin/env bash
# mmupt synth end to end on the tiny fixtures (the random tiny model writes garbage, so permissive
# filters keep some of it and the default filters reject it, counted by reason):
#  - the new split opens with the C reader, has no answers, has provenance, and its ids, sources,
#    problems and images follow docs/synth.md;
#  - `mpirun -np 2` writes the same file as one process (cmp), and the same counts;
#  - in-context mode skips items without an answer; bad input gives a clear error and exit 1 or 2.
# OMP_NUM_THREADS is pinned: identical tokens need the same thread count on every run.
# usage: test_synth.sh MMUPT SOURCE_ROOT DS_DUMP (tests/dataset/ds_dump)
set -u
mmupt=$(realpath "$1")
root=$2
dump=$(realpath "$3")
. "$root/tests/lib.sh"
mpi_setup
command -v python3 >/dev/null || { echo "SKIP: python3 is needed to read the JSON"; exit 77; }
export OMP_NUM_THREADS=1
cd "$root"
model=tests/fixtures/models/tiny_train
data=tests/fixtures/datasets/small.h5
loose=(-n 3 --keep 2 --max-new-tokens 12 --require-question no --min-chars 1 --max-overlap 2)

run "$mmupt" synth --help
expect "help" 0 "--mode M" "in-context" "near_duplicate" "provenance"

"$dump" "$data" >"$tmp/in.jsonl" || fail "dump the input"

run mpi 1 -q "$mmupt" synth --model "$model" --data "$data" --out "$tmp/np1.h5" "${loose[@]}"
expect "np 1, permissive filters" 0 "synth: wrote $tmp/np1.h5" "kept"
run "$dump" "$tmp/np1.h5"
expect "the output opens with the C reader" 0 '"has_answers": false, "has_provenance": true'
cp "$tmp/out" "$tmp/np1.jsonl"

# Every field against the input: id, source, problem layout, images, provenance, no answer.
check_fields() { # NAME OUT.jsonl MODE SUMMARY.json
    if python3 - "$tmp/in.jsonl" "$2" "$3" "$4" "$model" >"$tmp/py" 2>&1 <<'PY'
import json, sys
inp = [json.loads(l) for l in open(sys.argv[1])][1:]
lines = [json.loads(l) for l in open(sys.argv[2])]
mode, summary, model = sys.argv[3], json.load(open(sys.argv[4])), sys.argv[5]
head, out = lines[0], lines[1:]
by_id = {it["id"]: it for it in inp}
assert head["count"] == len(out) > 0, head
assert summary["counts"]["kept"] == len(out), summary["counts"]
seen = {}
for it in out:
    orig_id, tail = it["id"].rsplit("/", 1)
    orig = by_id[orig_id]
    k = seen.get(orig_id, 0)
    assert tail == "synth-%s-%d" % (mode, k), it["id"]
    seen[orig_id] = k + 1
    assert it["source"] == orig["source"], it
    assert it["answer"] is None, it
    assert it["images"] == orig["images"], it   # every image's bytes, in hex
    n = len(orig["images"])
    assert n > 0 and it["problem"].startswith("<image>" * n), it
    assert it["problem"].count("<image>") == n and len(it["problem"]) > 7 * n, it
    p = it["provenance"]
    assert p.startswith("mode=%s item=%s policy=%s seed=1 sample=" % (mode, orig_id, model)), p
ids = [it["id"] for it in out]
order = [next(i for i, o in enumerate(inp) if o["id"] == x.rsplit("/", 1)[0]) for x in ids]
assert order == sorted(order), ids   # item order
c = summary["counts"]
assert c["kept"] + c["rejected"] == c["candidates"], c
assert sum(c["rejected_by_reason"].values()) == c["rejected"], c
assert summary["settings"]["mode"] == mode and summary["prompt"], summary
print("fields ok", len(out))
PY
    then ok "$1"; else fail "$1" "$(cat "$tmp/py")"; fi
}
check_fields "np 1: ids, sources, problems, images, provenance" "$tmp/np1.jsonl" direct "$tmp/np1.json"
if grep -q '"skipped_no_image": 1' "$tmp/np1.json" && grep -q '"items": 5' "$tmp/np1.json"; then
    ok "the text-only item is skipped and counted"
else fail "the text-only item is skipped and counted" "$(cat "$tmp/np1.json")"; fi

run mpi 2 -q "$mmupt" synth --model "$model" --data "$data" --out "$tmp/np2.h5" "${loose[@]}" --batch 1
expect "np 2" 0 "synth: wrote $tmp/np2.h5"
if cmp -s "$tmp/np1.h5" "$tmp/np2.h5"; then ok "np 2 writes the same file as np 1"
else fail "np 2 writes the same file as np 1" "$("$dump" "$tmp/np2.h5" | diff "$tmp/np1.jsonl" - | head -10)"; fi
strip() { grep -v -e '"seconds"' -e '"ranks"' -e '"out"' "$1"; }
if diff <(strip "$tmp/np1.json") <(strip "$tmp/np2.json") >/dev/null; then ok "np 2 counts == np 1"
else fail "np 2 counts == np 1" "$(diff "$tmp/np1.json" "$tmp/np2.json")"; fi

run mpi 1 -q "$mmupt" synth --model "$model" --data "$data" --out "$tmp/ic.h5" --mode in-context "${loose[@]}"
expect "in-context mode" 0 "2 without an answer"
"$dump" "$tmp/ic.h5" >"$tmp/ic.jsonl"
check_fields "in-context: fields and provenance" "$tmp/ic.jsonl" in-context "$tmp/ic.json"
# syn-9 (empty answer) and the unnamed item (no answer) have images: skipped for {answer}.
if grep -q '"skipped_no_answer": 2' "$tmp/ic.json" && grep -q '"items_used": 2' "$tmp/ic.json"; then
    ok "in-context skips items without an answer"
else fail "in-context skips items without an answer" "$(cat "$tmp/ic.json")"; fi

# Default (strict) filters: the tiny model's garbage is rejected, and every rejection counted.
run mpi 1 -q "$mmupt" synth --model "$model" --data "$data" --out "$tmp/strict.h5" -n 4 --max-new-tokens 12
expect "strict filters" 0 "rejected:"
if python3 - "$tmp/strict.json" >"$tmp/py" 2>&1 <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))["counts"]
assert c["candidates"] == 16 and c["rejected"] > 0, c
assert c["kept"] + c["rejected"] == 16 and sum(c["rejected_by_reason"].values()) == c["rejected"], c
assert set(c["rejected_by_reason"]) == {"undecodable", "empty", "marker", "too_short", "too_long", "not_question",
                                        "answer_leak", "duplicate", "near_duplicate", "surplus"}, c
PY
then ok "strict: rejections counted by reason"; else fail "strict: rejections counted by reason" "$(cat "$tmp/py")"; fi
run "$dump" "$tmp/strict.h5"
expect "strict: the output is a valid split" 0 '"has_provenance": true'

# A custom prompt is recorded in the summary.
run mpi 1 -q "$mmupt" synth --model "$model" --data "$data" --out "$tmp/p.h5" --prompt "Ask about the picture." \
    "${loose[@]}" --limit 2
expect "custom prompt" 0 "synth: wrote"
if grep -q '"prompt": "Ask about the picture."' "$tmp/p.json" && grep -q '"items": 2' "$tmp/p.json"; then
    ok "custom prompt and --limit recorded"
else fail "custom prompt and --limit recorded" "$(cat "$tmp/p.json")"; fi

# Bad input.
run "$mmupt" synth --model "$model" --data "$tmp/missing.h5" --out "$tmp/x.h5"
expect "missing data file" 1 "$tmp/missing.h5"
run "$mmupt" synth --model "$tmp/nomodel" --data "$data" --out "$tmp/x.h5"
expect "missing model" 1 "$tmp/nomodel"
run "$mmupt" synth --model "$model" --data "$data" --out "$data"
expect "--out equal to --data" 2 "is the input split"
cp "$data" "$tmp/in.h5"
run "$mmupt" synth --model "$model" --data "$tmp/in.h5" --out "$tmp/./in.h5"
expect "--out the same file by another path" 2 "is the input split"
if cmp -s "$data" "$tmp/in.h5"; then ok "the input is untouched"; else fail "the input is untouched"; fi
run "$mmupt" synth --model "$model" --data "$data" --out "$tmp/x.h5" --mode bogus
expect "--mode bogus" 2 "--mode: 'bogus' is not a mode: direct or in-context"
run "$mmupt" synth --model "$model" --data "$data" --out "$tmp/x.h5" -n 0
expect "-n 0" 2 "-n: 0 is out of range"
run "$mmupt" synth --model "$model" --data "$data" --out "$tmp/x.h5" -n 2 --keep 3
expect "--keep above n" 2 "keep"
run "$mmupt" synth --model "$model" --data "$data"
expect "--out missing" 2 "--out are required"
run "$mmupt" synth --model "$model" --data "$data" --out "$tmp/x.h5" --prompt "<image> Ask."
expect "a prompt with a marker" 2 "<image>"
if [ ! -e "$tmp/x.h5" ]; then ok "no output after errors"; else fail "no output after errors"; fi
run mpi 2 -q "$mmupt" synth --model "$model" --data "$tmp/missing.h5" --out "$tmp/x.h5"
expect "missing data under mpirun" 1 "$tmp/missing.h5"
if [ "$(grep -c 'error' "$tmp/err")" = 1 ]; then ok "the error printed once"
else fail "the error printed once" "$(cat "$tmp/err")"; fi
finish
