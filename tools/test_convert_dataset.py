#!/usr/bin/env python3
"""Tests of tools/convert_dataset.py, checked with h5py AND with mmupt's C reader.

Generates a small parquet file (pyarrow, Pillow images, HF Image structs), the same rows as a
`save_to_disk`-style Arrow folder, and a JSONL file with an image folder; converts each; reads the
output with h5py and with ds_dump (tests/dataset/ds_dump.c, a thin wrapper over ds_open/ds_read).
Also checks skipped rows and their reasons, --strict, input errors, and that the committed fixture
tests/fixtures/datasets/small.h5 is what its generating command gives.

  python3 tools/test_convert_dataset.py --dump build/tests/dataset/ds_dump

Run by meson as the unit test `convert_dataset`. Exit 77 (skip) without h5py, pyarrow or Pillow.
"""
import argparse
import io
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CONVERT = os.path.join(HERE, "convert_dataset.py")

try:
    import h5py
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq
    from PIL import Image
except ImportError as e:
    print(f"skip: {e}")
    sys.exit(77)


class Tests:
    def __init__(self, dump, tmp):
        self.dump, self.tmp = dump, tmp
        self.passed = self.failed = 0
        self.current = []

    def check(self, cond, what):
        if not cond:
            self.current.append(what)

    def run(self, fn):
        self.current = []
        try:
            fn()
        except Exception as e:  # a crash in a test is a failure of that test, not of the run
            self.current.append(f"exception: {type(e).__name__}: {e}")
        if self.current:
            self.failed += 1
            for c in self.current:
                print(f"  FAIL {c}", file=sys.stderr)
            print(f"not ok - {fn.__name__}", file=sys.stderr)
        else:
            self.passed += 1
            print(f"ok - {fn.__name__}")

    # ---- helpers ----

    def convert(self, *args):
        p = subprocess.run([sys.executable, CONVERT, *args], capture_output=True, text=True)
        return p.returncode, p.stderr

    def c_read(self, path):
        """(header, items) as the C reader sees them, or (None, stderr) when it refuses the file."""
        p = subprocess.run([self.dump, path], capture_output=True, text=True)
        if p.returncode != 0:
            return None, p.stderr
        lines = [json.loads(l) for l in p.stdout.splitlines()]
        return lines[0], lines[1:]

    def check_file(self, path, expect, has_answers):
        """expect: list of dicts id, source, problem, answer (None: none), images (bytes list)."""
        with h5py.File(path, "r") as f:
            self.check(f.attrs["mmupt_format"] == "prompts" and int(f.attrs["format_version"]) == 1, "attributes")
            names = {"id", "source", "problem", "image_offset", "images"} | ({"answer"} if has_answers else set())
            self.check(set(f.keys()) == names, f"datasets {sorted(f.keys())}")
            n = len(expect)
            self.check(f["id"].shape == (n,) and f["image_offset"].shape == (n + 1,), "shapes")
            self.check(f["image_offset"].dtype == np.int64, "image_offset dtype")
            self.check(h5py.check_string_dtype(f["problem"].dtype) is not None, "problem is a string dataset")
            self.check(h5py.check_vlen_dtype(f["images"].dtype) == np.dtype(np.uint8), "images are vlen uint8")
            self.check(f["problem"].compression == "gzip" and f["images"].chunks is not None, "chunked, gzip")
            off = f["image_offset"][:]
            for i, e in enumerate(expect):
                for key in ("id", "source", "problem"):
                    got = f[key][i].decode()
                    self.check(got == e[key], f"h5py item {i} {key}: {got!r} != {e[key]!r}")
                if has_answers:
                    got = f["answer"][i].decode()
                    self.check(got == (e["answer"] or ""), f"h5py item {i} answer {got!r}")
                imgs = [bytes(f["images"][k]) for k in range(off[i], off[i + 1])]
                self.check(imgs == e["images"], f"h5py item {i} images")
        header, items = self.c_read(path)
        self.check(header is not None, f"C reader refused {path}: {items}")
        if header is None:
            return
        self.check(header == {"count": len(expect), "has_answers": has_answers}, f"C header {header}")
        for i, (e, got) in enumerate(zip(expect, items)):
            for key in ("id", "source", "problem", "answer"):
                self.check(got[key] == e[key], f"C item {i} {key}: {got[key]!r} != {e[key]!r}")
            self.check([bytes.fromhex(h) for h in got["images"]] == e["images"], f"C item {i} images")

    # ---- inputs ----

    def images(self):
        def encode(img, fmt, **kw):
            b = io.BytesIO()
            img.save(b, fmt, **kw)
            return b.getvalue()
        red = Image.new("RGB", (9, 7), (200, 30, 30))
        gray = Image.new("L", (5, 5), 77)
        photo = Image.new("RGB", (12, 10))
        photo.putdata([(x * 20, y * 25, 90) for y in range(10) for x in range(12)])
        return encode(red, "PNG"), encode(gray, "PNG"), encode(photo, "JPEG", quality=85)

    def parquet_rows(self):
        red, gray, jpeg = self.images()
        with open(os.path.join(self.tmp, "on_disk.png"), "wb") as f:
            f.write(gray)
        img = lambda b: {"bytes": b, "path": None}
        rows = [
            ("<image>What is the area of the red square?", "49", [img(red)]),
            ("<image><image>Compare both pictures. Réponse en français.", "B", [img(red), img(jpeg)]),
            ("No image at all: 3 × 3 = ?", "9", []),
            ("<image>Path-only image", None, [{"bytes": None, "path": "on_disk.png"}]),
            ("Markers missing", "1", [img(red)]),                               # skipped: 0 markers, 1 image
            ("<image>Not an image", "1", [img(b"GIF89a....")]),                # skipped: not PNG/JPEG
            ("<image>" * 17 + "Too many", "1", [img(red)] * 17),               # skipped: 17 images
            ("<image>Empty answer, and \u4e2d\u6587", "", [img(jpeg)]),
        ]
        expect = [
            {"id": "0", "source": "geo", "problem": rows[0][0], "answer": "49", "images": [red]},
            {"id": "1", "source": "geo", "problem": rows[1][0], "answer": "B", "images": [red, jpeg]},
            {"id": "2", "source": "geo", "problem": rows[2][0], "answer": "9", "images": []},
            {"id": "3", "source": "geo", "problem": rows[3][0], "answer": None, "images": [gray]},
            {"id": "7", "source": "geo", "problem": rows[7][0], "answer": None, "images": [jpeg]},
        ]
        image_t = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
        table = pa.table({
            "images": pa.array([r[2] for r in rows], pa.list_(image_t)),
            "problem": pa.array([r[0] for r in rows], pa.string()),
            "answer": pa.array([r[1] for r in rows], pa.string()),
        })
        return table, expect

    # ---- tests ----

    def test_parquet(self):
        table, expect = self.parquet_rows()
        src = os.path.join(self.tmp, "geo.parquet")
        pq.write_table(table, src)
        out = os.path.join(self.tmp, "geo.h5")
        rc, err = self.convert(src, "-o", out)
        self.check(rc == 0, f"convert failed: {err}")
        for reason in ("skipped 1 rows: marker count differs", "skipped 1 rows: image not PNG or JPEG",
                       "skipped 1 rows: too many images", "5 items, 5 images, with answers"):
            self.check(reason in err, f"'{reason}' not in: {err}")
        self.check("geo.parquet: row 4: problem: 0 <image> markers for 1 images" in err, f"skip detail: {err}")
        self.check(not [n for n in os.listdir(self.tmp) if ".tmp." in n], "temporary file left")
        if rc == 0:
            self.check_file(out, expect, True)
        rc, err = self.convert(src, "-o", os.path.join(self.tmp, "strict.h5"), "--strict")
        self.check(rc == 1 and "geo.parquet: row 4: problem: 0 <image> markers for 1 images (--strict)" in err,
                   f"--strict: {rc} {err}")
        self.check(not os.path.exists(os.path.join(self.tmp, "strict.h5")), "--strict left an output")
        # --prepend-image-markers rescues the row without markers.
        rc, err = self.convert(src, "-o", os.path.join(self.tmp, "pre.h5"), "--prepend-image-markers", "--no-answers")
        header, items = self.c_read(os.path.join(self.tmp, "pre.h5"))
        self.check(rc == 0 and header == {"count": 6, "has_answers": False}, f"prepend: {header} {err}")
        if header:
            self.check(items[4]["problem"] == "<image>Markers missing" and items[4]["id"] == "4", f"{items[4]}")

    def test_saved_to_disk(self):
        """A `datasets` save_to_disk folder: state.json naming Arrow stream files."""
        table, expect = self.parquet_rows()
        folder = os.path.join(self.tmp, "geo")
        os.makedirs(folder, exist_ok=True)
        with pa.OSFile(os.path.join(folder, "data-00000-of-00001.arrow"), "wb") as sink:
            with pa.ipc.new_stream(sink, table.schema) as w:
                w.write_table(table, max_chunksize=3)
        with open(os.path.join(folder, "state.json"), "w") as f:
            json.dump({"_data_files": [{"filename": "data-00000-of-00001.arrow"}], "_split": "train"}, f)
        out = os.path.join(self.tmp, "geo_disk.h5")
        rc, err = self.convert(folder, "-o", out, "--image-root", self.tmp)
        self.check(rc == 0, f"convert failed: {err}")
        if rc == 0:
            self.check_file(out, expect, True)

    def test_jsonl(self):
        red, gray, jpeg = self.images()
        imgdir = os.path.join(self.tmp, "imgs", "sub")
        os.makedirs(imgdir, exist_ok=True)
        for name, data in (("a.png", red), ("b.jpg", jpeg), ("c.png", gray)):
            with open(os.path.join(imgdir, name), "wb") as f:
                f.write(data)
        lines = [
            {"id": "q-1", "source": "mine", "problem": "<image>Что изображено? 😀", "images": ["sub/a.png"]},
            {"problem": "<image><image>Two", "images": ["sub/b.jpg", "sub/c.png"]},
            {"id": 17, "problem": "Text only", "images": []},
            {"problem": "<image>Missing file", "images": ["sub/nope.png"]},  # skipped
            {"problem": 5, "images": []},                                     # skipped: problem not text
        ]
        src = os.path.join(self.tmp, "items.jsonl")
        with open(src, "w", encoding="utf-8") as f:
            for obj in lines:
                f.write(json.dumps(obj, ensure_ascii=False) + "\n")
            f.write("\n")  # blank lines are ignored
        out = os.path.join(self.tmp, "items.h5")
        rc, err = self.convert(src, "--image-root", os.path.join(self.tmp, "imgs"), "-o", out)
        self.check(rc == 0, f"convert failed: {err}")
        self.check("skipped 1 rows: image file missing" in err and "skipped 1 rows: problem not text" in err, err)
        self.check("items.jsonl:4: 'sub/nope.png' not found" in err, f"skip detail: {err}")
        expect = [
            {"id": "q-1", "source": "mine", "problem": lines[0]["problem"], "answer": None, "images": [red]},
            {"id": "1", "source": "items", "problem": "<image><image>Two", "answer": None, "images": [jpeg, gray]},
            {"id": "17", "source": "items", "problem": "Text only", "answer": None, "images": []},
        ]
        if rc == 0:
            self.check_file(out, expect, False)

    def test_input_errors(self):
        bad = os.path.join(self.tmp, "bad.jsonl")
        with open(bad, "w") as f:
            f.write('{"problem": "ok", "images": []}\n{"problem": oops}\n')
        out = os.path.join(self.tmp, "never.h5")
        rc, err = self.convert(bad, "-o", out)
        self.check(rc == 1 and "bad.jsonl:2:" in err and "invalid JSON" in err, f"bad JSON: {rc} {err}")
        noprob = os.path.join(self.tmp, "noprob.parquet")
        pq.write_table(pa.table({"question": ["x"]}), noprob)
        rc, err = self.convert(noprob, "-o", out)
        self.check(rc == 1 and "noprob.parquet: no 'problem' field (fields: question)" in err, f"no problem: {err}")
        rc, err = self.convert(os.path.join(self.tmp, "absent.parquet"), "-o", out)
        self.check(rc == 1 and "absent.parquet: no such file or folder" in err, f"missing input: {err}")
        rc, err = self.convert(bad, "-o", os.path.join(self.tmp, "no", "dir", "x.h5"))
        self.check(rc == 1 and "does not exist" in err, f"missing output folder: {err}")
        rc, err = self.convert("-o", out)
        self.check(rc == 2, "no input is a usage error")
        self.check(not os.path.exists(out), "an output appeared")

    def test_committed_fixture(self):
        """tests/fixtures/datasets/small.h5 is what its generating command (README.md there) gives."""
        fixtures = os.path.join(ROOT, "tests", "fixtures", "datasets")
        out = os.path.join(self.tmp, "small.h5")
        rc, err = self.convert(os.path.join(fixtures, "small.jsonl"), "--image-root", os.path.join(fixtures, "images"),
                               "-o", out)
        self.check(rc == 0, err)
        fresh, committed = self.c_read(out), self.c_read(os.path.join(fixtures, "small.h5"))
        self.check(fresh[0] is not None and fresh == committed, "the committed fixture differs from a fresh conversion")
        self.check(os.path.getsize(os.path.join(fixtures, "small.h5")) < 100_000, "fixture over 100 KB")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dump", help="the ds_dump program (default: build*/tests/dataset/ds_dump)")
    args = ap.parse_args()
    dump = args.dump
    if not dump:
        cands = [os.path.join(ROOT, d, "tests", "dataset", "ds_dump") for d in sorted(os.listdir(ROOT))
                 if d.startswith("build")]
        dump = next((c for c in cands if os.access(c, os.X_OK)), None)
        if not dump:
            print("no ds_dump found; build first or pass --dump", file=sys.stderr)
            return 2
    with tempfile.TemporaryDirectory(prefix="mmupt-convert-") as tmp:
        t = Tests(os.path.abspath(dump), tmp)
        for fn in (t.test_parquet, t.test_saved_to_disk, t.test_jsonl, t.test_input_errors, t.test_committed_fixture):
            t.run(fn)
    print(f"{t.passed} passed, {t.failed} failed")
    return 1 if t.failed else 0


if __name__ == "__main__":
    sys.exit(main())
