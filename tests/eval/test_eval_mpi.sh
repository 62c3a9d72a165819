#!/usr/bin/env bash
# mmupt eval data parallel under a real mpirun:
#  - eval_gather with np 1, 2, 3 equals the one-process result bit for bit (test_eval_mpi);
#  - `mpirun -np P mmupt eval` on the tiny fixtures writes the same results.json (every metric, per
#    source too) and the same responses for P = 1, 2, 3, and only rank 0 writes the results;
#  - a bad --model under mpirun: exit 1, the error printed once, naming the path.
# OMP_NUM_THREADS is pinned: a rank's reductions split over threads, so identical tokens need the
# same thread count on every run.
# usage: test_eval_mpi.sh MMUPT SOURCE_ROOT TEST_EVAL_MPI
set -u
mmupt=$(realpath "$1")
root=$2
gather=$(realpath "$3")
. "$root/tests/lib.sh"
mpi_setup
export OMP_NUM_THREADS=1
cd "$root"
model=tests/fixtures/models/tiny_train
data=tests/fixtures/datasets/small.h5

for np in 1 2 3; do
    run mpi "$np" -q "$gather"
    expect "eval_gather np $np equals one process" 0 "ok - test_gather"
done

for np in 1 2 3; do
    run mpi "$np" -q "$mmupt" eval --model "$model" --data "$data" -n 3 --k 1,2,3 --temperature 1 \
        --max-new-tokens 8 --batch 1 --out "$tmp/np$np" --responses "$tmp/resp$np.jsonl"
    expect "mpirun -np $np mmupt eval" 0 "| **all** | 3 |" "maj@2"
done
# One table: only rank 0 prints it.
if [ "$(grep -c '^| \*\*all\*\*' "$tmp/out")" = 1 ]; then ok "one table from 3 ranks"
else fail "one table from 3 ranks" "$(cat "$tmp/out")"; fi
for np in 2 3; do
    if diff <(grep -v '"seconds"' "$tmp/np1/results.json") <(grep -v '"seconds"' "$tmp/np$np/results.json") >/dev/null &&
       cmp -s "$tmp/np1/results.md" "$tmp/np$np/results.md"; then ok "results np $np == np 1"
    else fail "results np $np == np 1" "$(diff "$tmp/np1/results.json" "$tmp/np$np/results.json" | head -20)"; fi
    if [ "$(ls "$tmp"/resp$np.jsonl.rank-* | wc -l)" = "$np" ] &&
       diff <(sort "$tmp/resp1.jsonl") <(cat "$tmp"/resp$np.jsonl.rank-* | sort) >/dev/null; then ok "responses np $np == np 1"
    else fail "responses np $np == np 1" "$(ls "$tmp")"; fi
done
if grep -q '"pass_at_k"' "$tmp/np3/results.json" && grep -q '"graded": 3' "$tmp/np3/results.json" &&
   grep -q '"skipped_no_answer": 2' "$tmp/np3/results.json"; then ok "gathered counts"
else fail "gathered counts" "$(head -c 800 "$tmp/np3/results.json")"; fi

run mpi 2 -q "$mmupt" eval --model "$tmp/nomodel" --data "$data"
expect "bad model under mpirun" 1 "$tmp/nomodel"
if [ "$(grep -c 'error' "$tmp/err")" = 1 ]; then ok "the error printed once"
else fail "the error printed once" "$(cat "$tmp/err")"; fi
finish
