#!/usr/bin/env bash
# How fast does mmupt's tokenizer encode, next to the HF `tokenizers` library on the same machine,
# corpus and tokenizer, one thread each? Prints a markdown table with the ratio.
#
#   benchmarks/tokenizer.sh [TOKENIZER.json] [MEGABYTES]
#
# Default tokenizer: the shared Qwen tokenizer.json (../shared/assets/qwen-tokenizer). The corpus
# (MEGABYTES, default 3) is built from the fixture samples (tests/fixtures/tokenizer/corpus.json),
# shuffled with a fixed seed and grouped into documents of about 2 KB. Both sides: one warm-up
# pass, then the best of 5. HF runs encode_batch with RAYON_NUM_THREADS=1 (docs) and one encode
# of the joined text (whole); the C side encodes the same texts in a loop / at once. The id
# checksums must agree. Set TOKENIZER_BENCH to use a benchmark binary other than the build's.
set -euo pipefail
cd "$(dirname "$0")/.."
tokenizer=${1:-../shared/assets/qwen-tokenizer/tokenizer.json}
mb=${2:-3}
bench=${TOKENIZER_BENCH:-build/benchmarks/tokenizer_bench}
[ -n "${TOKENIZER_BENCH:-}" ] || ./launch/build.sh build >/dev/null
python3 -c "import tokenizers" 2>/dev/null || { echo "tokenizer: needs the tokenizers package (pip install -r tools/requirements.txt)" >&2; exit 1; }
[ -f "$tokenizer" ] || { echo "tokenizer: $tokenizer not found" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

python3 - "$mb" "$tmp/corpus.bin" <<'PY'
import json, random, struct, sys
samples = json.load(open("tests/fixtures/tokenizer/corpus.json", encoding="utf-8"))["samples"]
texts = [s["text"] if "text" in s else s["clean"] for s in samples]
rng, target, docs, size = random.Random(1234), int(float(sys.argv[1]) * 1e6), [], 0
while size < target:
    order = texts[:]
    rng.shuffle(order)
    doc, n = [], 0
    for t in order:
        doc.append(t)
        n += len(t.encode())
        if n >= 2000:
            b = "\n\n".join(doc).encode()
            docs.append(b)
            size += len(b)
            doc, n = [], 0
with open(sys.argv[2], "wb") as f:
    f.write(struct.pack("<I", len(docs)))
    for b in docs:
        f.write(struct.pack("<I", len(b)) + b)
PY

ours=$("$bench" "$tokenizer" "$tmp/corpus.bin" 5 2>/dev/null)
theirs=$(RAYON_NUM_THREADS=1 TOKENIZERS_PARALLELISM=false python3 benchmarks/tokenizer_hf.py "$tokenizer" "$tmp/corpus.bin" 5)
echo "## tokenizer: encode throughput, $(date -u +%Y-%m-%d), $(lscpu | sed -n 's/^Model name: *//p'), 1 thread"
echo
echo "| mode | MB | ids | mmupt MB/s | HF tokenizers MB/s | ratio | same ids |"
echo "|---|---|---|---|---|---|---|"
python3 - "$ours" "$theirs" <<'PY'
import json, sys
ours = {r["mode"]: r for r in map(json.loads, sys.argv[1].splitlines())}
theirs = {r["mode"]: r for r in map(json.loads, sys.argv[2].splitlines())}
for mode, what in [("docs", "docs (~2 KB each)"), ("whole", "whole (one text)")]:
    a, b = ours[mode], theirs[mode]
    same = "yes" if (a["ids"], a["checksum"]) == (b["ids"], b["checksum"]) else "NO"
    print(f"| {what} | {a['bytes'] / 1e6:.2f} | {a['ids']} | {a['mb_per_s']:.2f} | {b['mb_per_s']:.2f} | "
          f"{a['mb_per_s'] / b['mb_per_s']:.2f}x | {same} |")
PY
echo
echo "tokenizers $(python3 -c 'import tokenizers; print(tokenizers.__version__)'), tokenizer $tokenizer"
