#!/usr/bin/env bash
# timing.json and the communication model, on the tiny fixture under a real mpirun: np 3 (1 rollout
# rank + 2 learners), np 4 (2 + 2, two optimizer steps per training step, weights every 2 steps) and
# np 2 colocated. timing.json has one record per rank, and the bytes every learner's collectives
# MEASURED equal the model's payload per step x steps EXACTLY for each kind, and the broadcast bytes
# on learner 0 and every rollout rank equal the model's versions x bytes per version: a term the model
# forgets (or the code adds) fails here.
# usage: test_timing.sh MMUPT SOURCE_ROOT
set -u
mmupt=$(realpath "$1")
root=$2
. "$root/tests/lib.sh"
mpi_setup
leaks_sparingly # under the sanitizers: no leak checks here, the train test's runs have them (lib.sh)
export OMP_NUM_THREADS=1
cd "$root"
command -v python3 >/dev/null || { echo "SKIP: python3 not found"; exit 77; }

# check_timing NAME NP R STEPS KEY=VALUE...: one run, then its timing.json against the model.
check_timing() {
    local name=$1 np=$2 R=$3 steps=$4
    shift 4
    local out=$tmp/$name
    run timeout 300 mpirun -q -np "$np" "$mmupt" train configs/tiny.yaml run.output_dir="$out" run.max_steps="$steps" \
        cluster.rollout_ranks="$R" "$@"
    expect "$name: trains" 0 "comm model per step: reduce-scatter"
    if python3 - "$out/timing.json" "$np" "$R" "$steps" >"$tmp/py.out" 2>&1 <<'PY'; then
import json, sys
path, np_, R, steps = sys.argv[1], *map(int, sys.argv[2:])
t = json.load(open(path))
L = np_ - R
assert (t["np"], t["learners"], t["rollout_ranks"], t["steps"]) == (np_, L, R, steps), \
    f"np/learners/rollout_ranks/steps {t['np']} {t['learners']} {t['rollout_ranks']} {t['steps']}"
ranks = t["ranks"]
assert [r["rank"] for r in ranks] == list(range(np_)), "one record per rank, in order"
m = t["model"]
kinds = ["allreduce", "reduce_scatter", "allgather", "broadcast"]
versions = m["versions_broadcast"]
if R:
    # the schedule of sync.c for a fresh run: versions S, 2S, ... up to the last one a rollout uses
    S, k = t["sync_interval"], t["max_staleness"]
    last = -(-max(0, steps - 1 - k) // S) * S
    assert versions == last // S, f"versions_broadcast {versions}, expected {last // S}"
    assert m["broadcast"]["payload_bytes_per_step"] * S == m["broadcast_bytes_per_version"] == 8 + 4 * t["params"]
else:
    assert versions == 0 and m["broadcast"]["payload_bytes_per_step"] == 0
checked = 0
for r in ranks:
    learn, sync = r["comm"]["learn"], r["comm"]["sync"]
    want_role = "colocated" if R == 0 else ("learner" if r["rank"] < L else "rollout")
    assert r["role"] == want_role, f"rank {r['rank']}: role {r['role']}"
    assert set(r["phases"]) >= {"rollout", "update", "sync", "wait_data", "wait_weights"}, "phases"
    assert r["total_s"] > 0
    if want_role != "rollout":
        for kind in kinds[:3]:
            want = m[kind]["payload_bytes_per_step"] * steps
            assert learn[kind]["bytes"] == want, f"rank {r['rank']} {kind}: measured {learn[kind]['bytes']}, model {want}"
            checked += 1
        assert learn["reduce_scatter"]["calls"] == learn["allgather"]["calls"] == m["optim_steps_per_step"] * steps
        assert learn["broadcast"]["bytes"] == 0
    else:
        assert all(learn[k]["bytes"] == 0 for k in kinds), f"rank {r['rank']}: a rollout rank in learner collectives"
    in_sync = R > 0 and (r["rank"] == 0 or want_role == "rollout")
    want = versions * m["broadcast_bytes_per_version"] if in_sync else 0
    assert sync["broadcast"]["bytes"] == want, f"rank {r['rank']} broadcast: measured {sync['broadcast']['bytes']}, model {want}"
    assert sync["broadcast"]["calls"] == (versions if in_sync else 0)
    checked += 1
print(f"{checked} byte counts equal the model ({versions} versions broadcast)")
PY
        ok "$name: timing.json matches the comm model ($(cat "$tmp/py.out"))"
    else
        fail "$name: timing.json" "$(cat "$tmp/py.out")"
    fi
}

check_timing split3 3 1 3
check_timing split4 4 2 4 algorithm.global_batch_size=6 cluster.sync_interval=2 cluster.max_staleness=1
check_timing colocated2 2 0 2

# A model missing a term must not pass: drop the stop flag's 4 bytes from one record's model.
python3 - "$tmp/split3/timing.json" <<'PY'
import json, sys
t = json.load(open(sys.argv[1]))
t["model"]["allreduce"]["payload_bytes_per_step"] -= 4
json.dump(t, open(sys.argv[1], "w"))
PY
steps=3
if python3 -c "
import json, sys
t = json.load(open('$tmp/split3/timing.json'))
sys.exit(0 if t['ranks'][0]['comm']['learn']['allreduce']['bytes'] == t['model']['allreduce']['payload_bytes_per_step'] * $steps else 1)
"; then fail "a model without the stop flag's all-reduce still matched"
else ok "a model without the stop flag's all-reduce no longer matches the measurement"; fi
finish
