#!/usr/bin/env bash
# Where a training step's time goes: per-phase seconds (rollout, reward, old/ref log-probs, update,
# weight sync, and the waits) and the idle share of learners and rollout ranks, for np = 1..4, each
# split run with max_staleness 0 (strictly on-policy: the baseline) and 1 (rollout of step s+1 overlaps
# learning on step s), in one invocation, as a markdown table. The check the issue asks for: with
# max_staleness 1 the learners' idle share is lower than with 0.
#
#   benchmarks/step.sh [STEPS] [MAX_NEW_TOKENS]      (defaults: 6, 48)
#
# Runs configs/tiny.yaml (the 177k-parameter fixture model) with longer responses so rollout is a
# real share of the step; every rank runs 1 thread (OMP_NUM_THREADS=1), so np = 3 and 4 oversubscribe
# a 2-core machine and their absolute times mostly show the sharing of cores.
set -euo pipefail
cd "$(dirname "$0")/.."
steps=${1:-6}
max_new=${2:-48}
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 OMPI_MCA_rmaps_base_oversubscribe=1
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
. launch/env.sh
./launch/build.sh build >/dev/null
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

# run NP ROLLOUT_RANKS STALENESS: one training run; its log is kept for the table.
run() {
    local log=$out/np$1_r$2_k$3.log
    mpirun -q -np "$1" build/mmupt train configs/tiny.yaml run.output_dir="$out/run" run.max_steps="$steps" \
        cluster.rollout_ranks="$2" cluster.max_staleness="$3" rollout.max_new_tokens="$max_new" \
        data.max_response_length="$max_new" >"$log" 2>&1 || { echo "run np=$1 R=$2 k=$3 failed:" >&2; tail "$log" >&2; exit 1; }
}
run 1 0 0
for k in 0 1; do
    run 2 1 "$k"
    run 3 1 "$k"
    run 4 2 "$k"
done

echo "## step: per-phase time and idle share, $(date -u +%Y-%m-%d), $(lscpu | sed -n 's/^Model name: *//p'), $(nproc --all) cores"
echo
echo "configs/tiny.yaml, $steps steps, 12 questions x 4 samples per step, up to $max_new new tokens; seconds per rank"
echo "(mean over the ranks of a role); idle = waiting for trajectories, ring space or weights."
echo
python3 - "$out" <<'PY'
import glob, os, re, sys
rows = {}
for path in sorted(glob.glob(os.path.join(sys.argv[1], "*.log"))):
    np_, R, k = map(int, re.findall(r"np(\d+)_r(\d+)_k(\d+)", path)[0])
    roles = {}
    for line in open(path):
        m = re.search(r"time: role (\w+)(.*)", line)
        if not m:
            continue
        vals = dict(re.findall(r"(\w+) ([0-9.]+)", m.group(2)))
        roles.setdefault(m.group(1), []).append({a: float(b) for a, b in vals.items()})
    rows[(np_, R, k)] = {r: {key: sum(d[key] for d in ds) / len(ds) for key in ds[0]} for r, ds in roles.items()}

def idle(p):
    return 100 * (p["wait_data"] + p["wait_credit"] + p["wait_weights"]) / p["total"]

print("| np | layout | max_staleness | wall (s) | learner: logprob / update / wait for data | learner idle | "
      "rollout: rollout / wait for weights / wait for space | rollout idle |")
print("|---|---|---|---|---|---|---|---|")
for (np_, R, k), roles in sorted(rows.items()):
    L = roles.get("learner") or roles.get("colocated")
    ro = roles.get("rollout")
    layout = "colocated" if R == 0 else f"{R} rollout + {np_ - R} learner"
    wall = max(p["total"] for p in roles.values())
    lcol = f"{L['logprob']:.2f} / {L['update']:.2f} / {L['wait_data']:.2f}"
    rcol = f"{ro['rollout']:.2f} / {ro['wait_weights']:.2f} / {ro['wait_credit']:.2f}" if ro else \
        f"{L['rollout']:.2f} (in-rank) / - / -"
    print(f"| {np_} | {layout} | {k if R else '-'} | {wall:.2f} | {lcol} | {idle(L):.1f}% | {rcol} | "
          f"{idle(ro):.1f}% |" if ro else f"| {np_} | {layout} | - | {wall:.2f} | {lcol} | {idle(L):.1f}% | {rcol} | - |")
print()
fails = 0
for (np_, R, k), roles in sorted(rows.items()):
    if R == 0 or k != 1:
        continue
    a, b = idle(rows[(np_, R, 0)]["learner"]), idle(roles["learner"])
    ok = b < a
    fails += not ok
    print(f"- np={np_}: learner idle {a:.1f}% (max_staleness 0) -> {b:.1f}% (max_staleness 1), "
          f"{'lower' if ok else 'NOT lower'}; wall {max(p['total'] for p in rows[(np_, R, 0)].values()):.2f} s -> "
          f"{max(p['total'] for p in roles.values()):.2f} s")
print()
print("result: " + ("max_staleness 1 lowered the learners' idle share in every layout" if not fails else
                    f"max_staleness 1 did NOT lower the learners' idle share in {fails} layout(s)"))
sys.exit(1 if fails else 0)
PY
