#!/usr/bin/env python3
"""Tests of tools/convert_dataset.py, checked with h5py AND with mmupt's C reader.

Generates a small parquet file (pyarrow, Pillow images, HF Image structs), the same rows as a
`save_to_disk`-style Arrow folder, and a JSONL file with an image folder; converts each; reads the
output with h5py and with ds_dump (tests/dataset/ds_dump.c, a thin wrapper over ds_open/ds_read).
Also checks skipped rows and their reasons, --strict, input errors, that the committed fixture
tests/fixtures/datasets/small.h5 is what its generating command gives, and the public benchmark
layouts: the committed samples in tests/fixtures/benchmarks/ (tools/make_benchmark_samples.py)
convert, with auto-detection, to the exact problems (choices block, markers), letters and sources
expected, and bad rows are counted or, with --strict, fail naming file, row and field.

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
        self.check("items.jsonl:4: images[0]: 'sub/nope.png' not found" in err, f"skip detail: {err}")
        self.check("items.jsonl: detected format mm-upt" in err, f"detection not reported: {err}")
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
        rc, err = self.convert(noprob, "-o", out, "--format", "mm-upt")
        self.check(rc == 1 and "noprob.parquet: no 'problem' field (fields: question)" in err, f"no problem: {err}")
        rc, err = self.convert(noprob, "-o", out)
        self.check(rc == 1 and "noprob.parquet: cannot tell the format from its fields (question); pass --format"
                   in err, f"undetectable: {err}")
        rc, err = self.convert(os.path.join(self.tmp, "absent.parquet"), "-o", out)
        self.check(rc == 1 and "absent.parquet: no such file or folder" in err, f"missing input: {err}")
        rc, err = self.convert(bad, "-o", os.path.join(self.tmp, "no", "dir", "x.h5"))
        self.check(rc == 1 and "does not exist" in err, f"missing output folder: {err}")
        rc, err = self.convert("-o", out)
        self.check(rc == 2, "no input is a usage error")
        self.check(not os.path.exists(out), "an output appeared")

    # ---- public benchmarks (the committed samples from tools/make_benchmark_samples.py) ----

    def sample(self, *parts):
        return os.path.join(ROOT, "tests", "fixtures", "benchmarks", *parts)

    def parquet_images(self, path, column):
        return [r[column]["bytes"] if r[column] else None for r in pq.read_table(path).to_pylist()]

    def convert_sample(self, src, fmt, expect, *extra):
        out = os.path.join(self.tmp, f"{fmt}.h5")
        rc, err = self.convert(src, "-o", out, *extra)
        self.check(rc == 0, f"{fmt}: convert failed: {err}")
        self.check(f"detected format {fmt}" in err, f"{fmt}: detection not reported: {err}")
        self.check(f"{len(expect)} items" in err and "convert: skipped" not in err, f"{fmt}: {err}")
        if rc == 0:
            self.check_file(out, expect, True)

    def test_mathvista(self):
        src = self.sample("mathvista", "data", "testmini-00000-of-00001.parquet")
        img = self.parquet_images(src, "decoded_image")
        rows = [("1", "FigureQA", "<image>Which bar is the tallest?\nChoices:\n(A) red\n(B) green\n(C) blue\n(D) gray", "C"),
                ("2", "Geometry3K", "<image>Find x. Round to the nearest tenth if necessary.", "14"),
                ("3", "FunctionQA", "<image>What is the slope of the line at x = 2?", "0.25"),
                ("4", "IconQA", "<image>How old is the tree (in years)?", "27")]
        expect = [{"id": i, "source": f"mathvista/{s}", "problem": p, "answer": a, "images": [img[k]]}
                  for k, (i, s, p, a) in enumerate(rows)]
        self.convert_sample(src, "mathvista", expect)

    def test_mathverse(self):
        folder = self.sample("mathverse")
        img = self.parquet_images(os.path.join(folder, "testmini.parquet"), "image")
        mc = ("<image>As shown in the figure, line EF meets AB at E and CD at F, angle 1 = 50.0, then angle 2 is "
              "equal to ()\nChoices:\n(A) 50°\n(B) 60°\n(C) 65°\n(D) 90°")
        rows = [("1", "Text Dominant", mc, "C", [img[0]]),
                ("2", "Vision Only", "<image>", "C", [img[1]]),
                ("3", "Text Lite", "<image>The radius is 3 cm. Find L.\n\nGive your answer rounded down to the "
                 "nearest cm.", "14", [img[2]]),
                ("4", "Vision Dominant", "<image>Angle 2 is equal to ()", "C", [img[3]]),
                ("5", "Text Only", "A can has a height of 13 cm and a radius of 3 cm. Find L, the longest straw "
                 "that fits inside.", "14", [])]
        expect = [{"id": i, "source": f"mathverse/{v}", "problem": p, "answer": a, "images": im}
                  for i, v, p, a, im in rows]
        # The folder: both parquet files, in name order (testmini, then testmini_text_only).
        self.convert_sample(folder, "mathverse", expect)

    def test_mathvision(self):
        src = self.sample("mathvision", "data", "testmini-00000-of-00001.parquet")
        img = self.parquet_images(src, "decoded_image")
        rows = [("4", "counting", "How many different digits can you find in this picture?\n<image>", "6"),
                ("6", "logic", "Which kitten has ears of a different colour?\n<image>\nChoices:\n(A) A\n(B) B\n(C) C"
                 "\n(D) D\n(E) E", "D"),
                ("9", "combinatorial geometry", "Theresa moves a pencil along the line <image> and then along "
                 "<image2>. In which order does she meet the shapes?\nChoices:\n(A) $\\Delta, \\square$\n"
                 "(B) $\\square, \\Delta$\n(C) $\\bullet, \\Delta$", "B"),
                ("12", "algebra", "<image>If x + x = 5, what is x?", "2.5")]
        expect = [{"id": i, "source": f"mathvision/{s}", "problem": p, "answer": a, "images": [img[k]]}
                  for k, (i, s, p, a) in enumerate(rows)]
        self.convert_sample(src, "mathvision", expect)

    def test_wemath(self):
        src = self.sample("wemath", "testmini.json")

        def img(path):
            with open(self.sample("wemath", path), "rb") as f:
                return [f.read()]
        rows = [("2steps_1/2steps_1", "Length Units", "According to the diagram: OA = ( ) m, AB = ( ) m\nChoices:\n"
                 "(A) 300, 400\n(B) 400, 300\n(C) 3000, 4000\n(D) 4000, 3000\n(E) No correct answer", "C",
                 "2steps/image/1-1.png"),
                ("2steps_1/2steps_2", "Length Units", "Which cylinder is tallest?\nChoices:\n(A) ①\n(B) ②\n(C) ③\n"
                 "(D) Cannot be determined\n(E) No correct answer", "B", "2steps/image/1-2.png"),
                ("2steps_1/2steps_multi", "Translation", "How does Shape A become Shape C?\nChoices:\n"
                 "(A) Shape A is moved 4 units right to get Shape ;C.\n(B) Shape A is turned to get Shape ;C.\n"
                 "(C) No.\n(D) No correct answer", "A", "2steps/image/1-multi.png"),
                ("3steps_165/3steps_3", "Angles", "What is the angle ( )?\nChoices:\n(A) 45°\n(B) 60°\n(C) 120°\n"
                 "(D) No correct answer", "C", "3steps/image/165-3.png")]
        expect = [{"id": i, "source": f"wemath/{s}", "problem": "<image>" + p, "answer": a, "images": img(path)}
                  for i, s, p, a, path in rows]
        self.convert_sample(src, "wemath", expect)
        # --format names the layout outright: the same result, nothing reported.
        out = os.path.join(self.tmp, "wemath_explicit.h5")
        rc, err = self.convert(src, "-o", out, "--format", "wemath")
        self.check(rc == 0 and "detected" not in err, f"--format wemath: {err}")
        self.check(self.c_read(out) == self.c_read(os.path.join(self.tmp, "wemath.h5")), "--format wemath differs")

    def test_benchmark_bad_rows(self):
        """Rows that cannot be mapped are skipped and counted; --strict names file, row and field."""
        src = self.sample("mathvista", "data", "testmini-00000-of-00001.parquet")
        rows = pq.read_table(src).to_pylist()
        rows[0]["answer"] = "purple"                      # matches none of the choices
        rows[1]["decoded_image"] = None                   # falls back to the path, which is absent
        rows[2]["choices"] = ["1", "0.25", "0.25"]        # multiple choice, answer text twice
        rows[2]["question_type"] = "multi_choice"
        bad = os.path.join(self.tmp, "mv_bad.parquet")
        pq.write_table(pa.Table.from_pylist(rows, schema=pq.read_schema(src)), bad)
        out = os.path.join(self.tmp, "mv_bad.h5")
        rc, err = self.convert(bad, "-o", out)
        self.check(rc == 0, f"convert failed: {err}")
        for s in ("skipped 1 rows: answer matches no choice", "skipped 1 rows: image file missing",
                  "skipped 1 rows: answer matches several choices", "1 items, 1 images",
                  "mv_bad.parquet: row 0: answer: 'purple' is none of the choices ['red', 'green', 'blue', 'gray']",
                  "mv_bad.parquet: row 1: image: 'images/2.png' not found",
                  "mv_bad.parquet: row 2: answer: '0.25' is choice B and C"):
            self.check(s in err, f"'{s}' not in: {err}")
        header, items = self.c_read(out)
        self.check(header == {"count": 1, "has_answers": True} and items[0]["id"] == "4", f"{header} {items}")
        rc, err = self.convert(bad, "-o", os.path.join(self.tmp, "mv_strict.h5"), "--strict")
        self.check(rc == 1 and "mv_bad.parquet: row 0: answer: 'purple' is none of the choices" in err
                   and "(--strict)" in err, f"--strict: {rc} {err}")
        self.check(not os.path.exists(os.path.join(self.tmp, "mv_strict.h5")), "--strict left an output")
        # We-Math: a letter past the options, a missing image file; images resolve against the JSON's folder.
        with open(self.sample("wemath", "testmini.json"), encoding="utf-8") as f:
            items = json.load(f)
        items[0]["answer"] = "F"
        items[1]["image_path"] = "2steps/image/nope.png"
        folder = os.path.join(self.tmp, "wemath_bad")
        os.makedirs(folder, exist_ok=True)
        bad = os.path.join(folder, "testmini.json")
        with open(bad, "w", encoding="utf-8") as f:
            json.dump(items, f)
        rc, err = self.convert(bad, "-o", os.path.join(self.tmp, "we_bad.h5"),
                               "--image-root", self.sample("wemath"))
        for s in ("skipped 1 rows: answer not a choice letter", "skipped 1 rows: image file missing",
                  "testmini.json: row 0: answer: 'F' is not one of the letters A-E",
                  "testmini.json: row 1: image_path: '2steps/image/nope.png' not found", "2 items, 2 images"):
            self.check(s in err, f"'{s}' not in: {err}")
        rc, err = self.convert(bad, "-o", os.path.join(self.tmp, "we_strict.h5"), "--strict",
                               "--image-root", self.sample("wemath"))
        self.check(rc == 1 and "testmini.json: row 0: answer: 'F' is not one of the letters A-E (--strict)" in err,
                   f"--strict: {err}")

    def test_mathvista_json_layout(self):
        """The GitHub release: testmini.json, an object keyed by pid, with image paths; also checks
        that an input of another format in the same run is detected on its own."""
        table = pq.read_table(self.sample("mathvista", "data", "testmini-00000-of-00001.parquet")).to_pylist()
        folder = os.path.join(self.tmp, "mathvista_gh")
        os.makedirs(os.path.join(folder, "images"), exist_ok=True)
        doc, images = {}, [r["decoded_image"]["bytes"] for r in table]
        for r in table:
            with open(os.path.join(folder, r["image"]), "wb") as f:
                f.write(r["decoded_image"]["bytes"])
            del r["decoded_image"]
            doc[r["pid"]] = r
        src = os.path.join(folder, "testmini.json")
        with open(src, "w") as f:
            json.dump(doc, f, indent=4)
        out = os.path.join(self.tmp, "mathvista_gh.h5")
        rc, err = self.convert(src, self.sample("wemath", "testmini.json"), "-o", out)
        self.check(rc == 0 and "detected format mathvista" in err and "detected format wemath" in err, err)
        self.check("8 items, 8 images" in err, f"each input's images resolve against its own folder: {err}")
        rc, err = self.convert(src, "-o", out)
        header, items = self.c_read(out)
        self.check(rc == 0 and header == {"count": 4, "has_answers": True}, f"{header} {err}")
        if header:
            self.check(items[0]["answer"] == "C" and items[0]["problem"].endswith("(D) gray"), f"{items[0]}")
            self.check([bytes.fromhex(it["images"][0]) for it in items] == images, "image bytes from the files")


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
        for fn in (t.test_parquet, t.test_saved_to_disk, t.test_jsonl, t.test_input_errors, t.test_committed_fixture,
                   t.test_mathvista, t.test_mathverse, t.test_mathvision, t.test_wemath, t.test_benchmark_bad_rows,
                   t.test_mathvista_json_layout):
            t.run(fn)
    print(f"{t.passed} passed, {t.failed} failed")
    return 1 if t.failed else 0


if __name__ == "__main__":
    sys.exit(main())
