#!/usr/bin/env python3
"""Check mmupt's hand-written TensorBoard event files with the real TensorBoard reader.

The C test binary, given a directory, writes a fixed set of demo scalars there (write_demo in
tests/tensorboard/test_tensorboard.c). This script runs it into a fresh temporary directory, loads the
directory with tensorboard's EventAccumulator and checks every tag, step and value. It then corrupts
one byte of a copy and checks that TensorBoard's reader notices (so the CRCs are really verified).

    pip install tensorboard
    python3 tools/check_tensorboard.py build/tests/tensorboard/test_tensorboard

With --run DIR it checks a real training run instead: every scalar TensorBoard reads from DIR's event
files must equal (as float32) the same key, same step, in DIR/metrics.jsonl, and every step must be there.

    mpirun -np 3 build/mmupt train configs/tiny.yaml
    python3 tools/check_tensorboard.py --run runs/tiny

Exit status 0 when everything matches. Not run by meson: it needs the tensorboard package.
"""
import math
import os
import shutil
import struct
import subprocess
import sys
import tempfile

import tensorboard
from tensorboard.backend.event_processing import event_accumulator


def f32(x):
    """x rounded to float32, as TensorBoard's simple_value stores it."""
    return struct.unpack("<f", struct.pack("<f", x))[0]


# Must match write_demo in tests/tensorboard/test_tensorboard.c.
EXPECTED = {
    "train/loss": [(s, f32(1.0 / (s + 1))) for s in range(10)],
    "reward/mean": [(s * 10, f32(0.25 * s - 1.0)) for s in range(10)],
    "edge": [(1, math.nan), (2, math.inf), (1 << 40, -3.5)],
}


def load(logdir):
    acc = event_accumulator.EventAccumulator(logdir, size_guidance={event_accumulator.SCALARS: 0})
    acc.Reload()
    return acc


def same(a, b):
    return (math.isnan(a) and math.isnan(b)) or a == b


def check_demo(logdir):
    acc = load(logdir)
    problems = []
    tags = sorted(acc.Tags()["scalars"])
    if tags != sorted(EXPECTED):
        problems.append(f"tags {tags} != {sorted(EXPECTED)}")
    for tag, want in EXPECTED.items():
        if tag not in tags:
            continue
        got = [(e.step, e.value) for e in acc.Scalars(tag)]
        if len(got) != len(want) or not all(gs == ws and same(gv, wv) for (gs, gv), (ws, wv) in zip(got, want)):
            problems.append(f"{tag}: got {got}, want {want}")
        if any(e.wall_time < 1.7e9 for e in acc.Scalars(tag)):
            problems.append(f"{tag}: wall_time not a Unix time")
    return problems


def check_corruption_detected(path, workdir):
    """Flip one byte inside the last record's data: TensorBoard must drop that event."""
    bad_dir = os.path.join(workdir, "corrupt")
    os.makedirs(bad_dir)
    bad = os.path.join(bad_dir, os.path.basename(path))
    shutil.copy(path, bad)
    with open(bad, "r+b") as f:
        f.seek(-8, os.SEEK_END)  # inside the float of the last event, before its 4-byte CRC
        b = f.read(1)
        f.seek(-8, os.SEEK_END)
        f.write(bytes([b[0] ^ 0xFF]))
    acc = load(bad_dir)
    edge = [e.step for e in acc.Scalars("edge")] if "edge" in acc.Tags()["scalars"] else []
    if (1 << 40) in edge:
        return ["a corrupted record was accepted: TensorBoard did not check the data CRC"]
    return []


def check_run(run_dir):
    """Compare a training run's TensorBoard scalars with its metrics.jsonl."""
    import json
    records = [json.loads(line) for line in open(os.path.join(run_dir, "metrics.jsonl"))]
    acc = event_accumulator.EventAccumulator(run_dir, size_guidance={event_accumulator.SCALARS: 0})
    acc.Reload()
    tags = acc.Tags()["scalars"]
    problems = [] if tags else [f"{run_dir}: TensorBoard found no scalars"]
    by_step = {r["step"]: r for r in records}
    for tag in tags:
        events = acc.Scalars(tag)
        if sorted(e.step for e in events) != sorted(by_step):
            problems.append(f"{tag}: steps {[e.step for e in events]}, metrics.jsonl has {sorted(by_step)}")
        for e in events:
            want = by_step.get(e.step, {}).get(tag)
            if want is None or not (f32(want) == e.value or (math.isnan(want) and math.isnan(e.value))):
                problems.append(f"{tag} step {e.step}: TensorBoard {e.value!r}, metrics.jsonl {want!r}")
    print(f"tensorboard {tensorboard.__version__}: {len(tags)} tags x {len(by_step)} steps in {run_dir}: "
          f"{', '.join(sorted(tags))}")
    return problems


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--run":
        problems = check_run(sys.argv[2])
        for p in problems:
            print("FAIL:", p)
        if problems:
            sys.exit(1)
        print("ok: every scalar TensorBoard reads equals metrics.jsonl at the same step")
        return
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    binary = sys.argv[1]
    with tempfile.TemporaryDirectory() as tmp:
        logdir = os.path.join(tmp, "runs", "demo")
        out = subprocess.run([binary, logdir], check=True, capture_output=True, text=True)
        path = out.stdout.strip()
        problems = check_demo(logdir)
        problems += check_corruption_detected(path, tmp)
    print(f"tensorboard {tensorboard.__version__}: read {os.path.basename(path)}")
    for p in problems:
        print("FAIL:", p)
    if problems:
        sys.exit(1)
    print("ok: tags, steps, values (NaN, inf, step 2^40) match; a corrupted record is rejected")


if __name__ == "__main__":
    main()
