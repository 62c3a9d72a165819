#!/usr/bin/env python3
"""The HF `tokenizers` twin of benchmarks/tokenizer_bench.c: same corpus file, same two modes, same
warm-up and best-of-REPEATS timing, same output line per mode.

  docs   encode_batch over the documents (run with RAYON_NUM_THREADS=1: one thread)
  whole  encode of all documents joined into one string

  python3 benchmarks/tokenizer_hf.py TOKENIZER.json CORPUS.bin REPEATS
"""
import json
import struct
import sys
import time

from tokenizers import Tokenizer


def read_corpus(path):
    with open(path, "rb") as f:
        data = f.read()
    (count,), at, docs = struct.unpack_from("<I", data, 0), 4, []
    for _ in range(count):
        (n,) = struct.unpack_from("<I", data, at)
        docs.append(data[at + 4:at + 4 + n].decode("utf-8"))
        at += 4 + n
    return docs


def checksum(encodings):
    s = 1469598103934665603
    n = 0
    for e in encodings:
        for i in e.ids:
            s = ((s ^ i) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
        n += len(e.ids)
    return n, s


def measure(mode, fn, docs, repeats):
    nbytes = sum(len(d.encode("utf-8")) for d in docs)
    encodings = fn()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    ids, s = checksum(encodings)
    print(json.dumps({"mode": mode, "bytes": nbytes, "ids": ids, "checksum": f"{s:016x}", "seconds": round(best, 6),
                      "mb_per_s": round(nbytes / best / 1e6, 3)}))


def main():
    tok = Tokenizer.from_file(sys.argv[1])
    docs = read_corpus(sys.argv[2])
    repeats = int(sys.argv[3])
    measure("docs", lambda: tok.encode_batch(docs), docs, repeats)
    whole = "".join(docs)
    measure("whole", lambda: [tok.encode(whole)], [whole], repeats)


if __name__ == "__main__":
    main()
