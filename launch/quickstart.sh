#!/usr/bin/env bash
# The quickstart: set up, build, and run the main job on the embedded default config.
#
# The quickstart's own task (data and a warm-started model) is not built yet, so this builds mmupt,
# shows the resolved quickstart configuration, runs the CPU model and the rollout engine on a tiny
# random Qwen2.5-VL test model, and trains that model for two MM-UPT steps on 3 MPI ranks (1 rollout
# rank + 2 learners). It says
# plainly what is still missing. Nothing here is simulated.
set -euo pipefail
cd "$(dirname "$0")/.."
./launch/setup.sh
. launch/env.sh
echo "== build =="
./launch/build.sh build
echo
echo "== mmupt version =="
build/mmupt version
echo
echo "== resolved configuration: configs/quickstart.yaml =="
build/mmupt config configs/quickstart.yaml
echo
echo "== the CPU model: a tiny random Qwen2.5-VL (tests/fixtures/models/qwen2_5_vl), 2 sequences, 3 images =="
mkdir -p runs/quickstart
build/mmupt forward --model tests/fixtures/models/qwen2_5_vl \
    --inputs tests/fixtures/models/qwen2_5_vl/expected.safetensors --out runs/quickstart/forward.safetensors
echo
echo "== rollout: 4 sampled answers from the same tiny model (ids in, ids out: it has no tokenizer) =="
build/mmupt generate --model tests/fixtures/models/qwen2_5_vl --prompt-ids "1 2 3 4 5" -n 4 --max-new-tokens 8
echo
echo "== MM-UPT training on the tiny fixture, 1 rollout rank + 2 learners: mpirun -np 3 build/mmupt train configs/tiny.yaml =="
mpirun -q -np 3 build/mmupt train configs/tiny.yaml
echo
cat <<'MSG'
quickstart: what ran: the build (CPU backend, plus CUDA when the toolkit is present), the CPU model,
rollout with the KV-cache engine, and two steps of label-free GRPO training of a tiny random model on
3 MPI ranks: a rollout rank sends trajectories through the ring buffer to 2 learners, which send new
weights back (metrics in runs/tiny/metrics.jsonl and TensorBoard events).
quickstart: NOT implemented yet: the quickstart's own pipeline (a warm start that has learned the
synthetic task, MM-UPT vs supervised GRPO on it, the report), so no accuracy numbers are produced
yet. Its pieces exist and can be run by hand: mmupt data shapes, mmupt sft, mmupt eval (README.md,
"Using it"; docs/quickstart-task.md). See README.md, "Status".
MSG
