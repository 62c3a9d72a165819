#!/usr/bin/env python3
"""Convert prompt datasets to mmupt's HDF5 prompt format (schema version 1, docs/datasets.md).

Inputs, one or more (their rows are concatenated in the order given):
  - parquet files, or a folder of them: the MM-UPT training sets' layout on the Hugging Face hub,
    with `problem`, optional `answer`, optional `id`/`source`, and `images`, a list of HF Image
    structs {bytes, path} (path alone is read from disk, relative to --image-root or the input's folder);
  - a Hugging Face dataset saved with `save_to_disk` (a folder with state.json and .arrow files);
  - JSONL files: one object per line with `problem`, optional `answer`/`id`/`source`, and `images`,
    a list of file paths relative to --image-root (default: the JSONL file's folder).

Without `id`, a row's id is its row number (counted over all inputs, so ids stay unique); without
`source`, the input's name: the file's stem, or the folder's name for a folder. Images are stored exactly
as they come: the bytes of PNG or JPEG files.

Rows that break the schema's limits are skipped and counted by reason (--strict: the first one fails
the conversion instead): a missing or non-string problem, an <image> marker count that differs from
the number of images, more than 16 images, an image that is missing, empty, over 64 MiB or neither
PNG nor JPEG, a string over 1 MiB or holding a NUL byte or an unpaired surrogate.

  python3 tools/convert_dataset.py train.parquet -o data/geometry3k_train.h5
  python3 tools/convert_dataset.py items.jsonl --image-root imgs -o data/mine.h5

Exit status: 0 done, 1 an input or output error (the message names file, row and field), 2 usage.
"""
import argparse
import collections
import json
import os
import sys
import time

FORMAT_NAME = "prompts"
FORMAT_VERSION = 1
MAX_STRING = 1 << 20
MAX_IMAGES = 16
MAX_IMAGE = 64 << 20
MARKER = "<image>"
BATCH = 64  # rows buffered before each write (their images are held in memory)


class InputError(Exception):
    """Bad input that ends the conversion; the message names file, row and field."""


class Skip(Exception):
    """A row that breaks the schema: `reason` is the category counted in the summary."""

    def __init__(self, reason, detail):
        super().__init__(detail)
        self.reason = reason


# ---- reading inputs ----

def image_kind(data):
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if data[:3] == b"\xff\xd8\xff":
        return "jpeg"
    return None


def read_image_file(path, roots):
    for root in roots:
        full = path if os.path.isabs(path) else os.path.join(root, path)
        if os.path.isfile(full):
            size = os.path.getsize(full)
            if size > MAX_IMAGE:
                raise Skip("image too large", f"{full}: {size} bytes, more than {MAX_IMAGE}")
            with open(full, "rb") as f:
                return f.read()
    raise Skip("image file missing", f"'{path}' not found under {', '.join(roots)}")


def image_bytes(entry, k, roots):
    """The encoded bytes of image k of a row: HF Image struct, raw bytes, or a path."""
    if isinstance(entry, dict):
        data, path = entry.get("bytes"), entry.get("path")
        if data is None and path:
            data = read_image_file(path, roots)
    elif isinstance(entry, (bytes, bytearray)):
        data = bytes(entry)
    elif isinstance(entry, str):
        data = read_image_file(entry, roots)
    else:
        raise Skip("bad image entry", f"images[{k}]: expected a path, bytes or an Image struct, got "
                   f"{type(entry).__name__}")
    if not data:
        raise Skip("empty image", f"images[{k}] is empty")
    if len(data) > MAX_IMAGE:
        raise Skip("image too large", f"images[{k}]: {len(data)} bytes, more than {MAX_IMAGE}")
    if image_kind(data) is None:
        raise Skip("image not PNG or JPEG", f"images[{k}] is neither PNG nor JPEG (starts with {bytes(data[:4])!r})")
    return bytes(data)


# Every source yields (where, row): `where` names the row in messages ("f.parquet: row 3", "f.jsonl:7").

def arrow_rows(batches, path):
    k = 0
    try:
        for batch in batches:
            for row in batch.to_pylist():
                yield f"{path}: row {k}", row
                k += 1
    except InputError:
        raise
    except Exception as e:  # a damaged file fails part way through, with pyarrow's own exceptions
        raise InputError(f"{path}: cannot read: {e}")


def parquet_source(path):
    import pyarrow.parquet as pq
    try:
        pf = pq.ParquetFile(path)
    except Exception as e:
        raise InputError(f"{path}: cannot read as parquet: {e}")
    return pf.schema_arrow.names, arrow_rows(pf.iter_batches(batch_size=64), path)


def arrow_source(path):
    import pyarrow as pa
    try:  # `datasets` writes the Arrow stream format; plain Arrow files are the other kind
        reader = pa.ipc.open_stream(pa.memory_map(path))
        return reader.schema.names, arrow_rows(reader, path)
    except pa.ArrowInvalid:
        pass
    try:
        f = pa.ipc.open_file(pa.memory_map(path))
    except Exception as e:
        raise InputError(f"{path}: cannot read as Arrow: {e}")
    return f.schema.names, arrow_rows((f.get_batch(i) for i in range(f.num_record_batches)), path)


def jsonl_rows(path):
    with open(path, encoding="utf-8", errors="surrogateescape") as f:
        for line_no, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise InputError(f"{path}:{line_no}:{e.colno}: invalid JSON: {e.msg}")
            if not isinstance(obj, dict):
                raise InputError(f"{path}:{line_no}: expected a JSON object, got {type(obj).__name__}")
            yield f"{path}:{line_no}", obj


def jsonl_source(path):
    # One cheap pass decides whether the split has answers, since JSONL declares no schema.
    has_answer = any("answer" in obj for _, obj in jsonl_rows(path))
    names = ["problem"] + (["answer"] if has_answer else [])
    return names, jsonl_rows(path)


def expand_inputs(paths):
    """(file, kind, name) for each input file, folders expanded; name is the default source."""
    out = []
    for p in paths:
        if not os.path.exists(p):
            raise InputError(f"{p}: no such file or folder")
        if os.path.isdir(p):
            if os.path.isfile(os.path.join(p, "dataset_dict.json")):
                splits = sorted(d for d in os.listdir(p) if os.path.isdir(os.path.join(p, d)))
                raise InputError(f"{p}: a DatasetDict; convert one split folder at a time: {', '.join(splits)}")
            state = os.path.join(p, "state.json")
            if os.path.isfile(state):
                with open(state) as f:
                    files = [d["filename"] for d in json.load(f).get("_data_files", [])]
                out += [(os.path.join(p, name), "arrow", folder_name(p)) for name in files]
                continue
            files = sorted(n for n in os.listdir(p) if n.endswith(".parquet"))
            if not files:
                raise InputError(f"{p}: a folder with neither state.json (save_to_disk) nor .parquet files")
            out += [(os.path.join(p, name), "parquet", folder_name(p)) for name in files]
            continue
        stem = os.path.splitext(os.path.basename(p))[0]
        if p.endswith(".parquet"):
            out.append((p, "parquet", stem))
        elif p.endswith(".arrow"):
            out.append((p, "arrow", stem))
        elif p.endswith(".jsonl") or p.endswith(".json"):
            out.append((p, "jsonl", stem))
        else:
            raise InputError(f"{p}: unknown input type (expected .parquet, .arrow, .jsonl or a folder)")
    return out


def folder_name(path):
    return os.path.basename(os.path.normpath(os.path.abspath(path)))


def open_source(path, kind):
    if kind == "parquet":
        names, rows = parquet_source(path)
    elif kind == "arrow":
        names, rows = arrow_source(path)
    else:
        names, rows = jsonl_source(path)
    # Only `problem` is required: text-only sets (DAPO-17K in the paper's appendix) have no images.
    if "problem" not in names:
        raise InputError(f"{path}: no 'problem' field (fields: {', '.join(names)})")
    return names, rows


# ---- checking one row ----

def text(row, field, default=None):
    """A row's string field, checked against the schema's limits. Numbers become text (ids and
    answers like 3 are common in JSON), except for the problem."""
    v = row.get(field)
    if v is None:
        if default is None:
            raise Skip(f"no {field}", f"{field}: missing")
        return default
    numeric = isinstance(v, (int, float)) and not isinstance(v, bool)
    if not isinstance(v, str) and not (numeric and field != "problem"):
        raise Skip(f"{field} not text", f"{field}: expected a string, got {type(v).__name__}")
    v = str(v)
    try:
        b = v.encode("utf-8")
    except UnicodeEncodeError as e:
        raise Skip("invalid UTF-8", f"{field}: not valid UTF-8 at character {e.start}")
    if len(b) > MAX_STRING:
        raise Skip("string too long", f"{field}: {len(b)} bytes, more than {MAX_STRING}")
    if "\0" in v:
        raise Skip("NUL in string", f"{field}: contains a NUL character")
    return v


def convert_row(row, row_no, stem, roots, prepend_markers, with_answers):
    problem = text(row, "problem")
    images = row.get("images")
    if images is None:
        images = []
    if not isinstance(images, list):
        raise Skip("bad images field", f"images: expected a list, got {type(images).__name__}")
    if len(images) > MAX_IMAGES:
        raise Skip("too many images", f"images: {len(images)}, more than {MAX_IMAGES}")
    blobs = [image_bytes(e, k, roots) for k, e in enumerate(images)]
    markers = problem.count(MARKER)
    if markers == 0 and blobs and prepend_markers:
        problem = MARKER * len(blobs) + problem
        markers = len(blobs)
    if markers != len(blobs):
        raise Skip("marker count differs", f"problem: {markers} {MARKER} markers for {len(blobs)} images")
    return {
        "id": text(row, "id", str(row_no)),
        "source": text(row, "source", stem),
        "problem": problem,
        "answer": text(row, "answer", "") if with_answers else "",
        "images": blobs,
    }


# ---- writing ----

class Writer:
    """Appends items to the HDF5 file in batches (chunked, extendible datasets)."""

    def __init__(self, path, with_answers):
        import h5py
        import numpy as np
        self.h5py, self.np = h5py, np
        self.path, self.tmp = path, f"{path}.tmp.{os.getpid()}"
        # libver ('earliest', 'v110'): HDF5 1.10 (Debian, Ubuntu) must read what a newer h5py writes.
        self.f = h5py.File(self.tmp, "w", libver=("earliest", "v110"))
        self.f.attrs["mmupt_format"] = FORMAT_NAME
        self.f.attrs["format_version"] = np.int64(FORMAT_VERSION)
        s = h5py.string_dtype("utf-8")
        fields = ["id", "source", "problem"] + (["answer"] if with_answers else [])
        self.strings = {}
        for name in fields:
            self.strings[name] = self.f.create_dataset(name, shape=(0,), maxshape=(None,), dtype=s, chunks=(256,),
                                                       compression="gzip", compression_opts=4, track_times=False)
        self.offset = self.f.create_dataset("image_offset", data=np.zeros(1, np.int64), maxshape=(None,),
                                            chunks=(1024,), track_times=False)
        self.images = self.f.create_dataset("images", shape=(0,), maxshape=(None,),
                                            dtype=h5py.vlen_dtype(np.uint8), chunks=(64,), track_times=False)
        self.pending = []
        self.n = self.m = 0

    def add(self, item):
        self.pending.append(item)
        if len(self.pending) >= BATCH:
            self.flush()

    def flush(self):
        np, items = self.np, self.pending
        if not items:
            return
        k = len(items)
        for name, d in self.strings.items():
            d.resize((self.n + k,))
            d[self.n:] = [it[name] for it in items]
        blobs = [np.frombuffer(b, np.uint8) for it in items for b in it["images"]]
        if blobs:
            self.images.resize((self.m + len(blobs),))
            arr = np.empty(len(blobs), dtype=object)
            arr[:] = blobs
            self.images[self.m:] = arr
        ends = self.m + np.cumsum([len(it["images"]) for it in items], dtype=np.int64)
        self.offset.resize((self.n + k + 1,))
        self.offset[self.n + 1:] = ends
        self.n += k
        self.m += len(blobs)
        self.pending = []

    def close(self):
        self.flush()
        self.f.close()
        with open(self.tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(self.tmp, self.path)

    def abort(self):
        try:
            self.f.close()
        finally:
            if os.path.exists(self.tmp):
                os.unlink(self.tmp)


# ---- main ----

class Progress:
    def __init__(self, quiet):
        self.quiet, self.tty, self.last = quiet, sys.stderr.isatty(), time.monotonic()

    def show(self, written, skipped, final=False):
        now = time.monotonic()
        if self.quiet or (not final and now - self.last < (0.5 if self.tty else 10.0)):
            return
        self.last = now
        line = f"convert: {written} rows written, {skipped} skipped"
        end = "\n" if final or not self.tty else ""
        print(("\r" if self.tty else "") + line, end=end, file=sys.stderr, flush=True)


def run(args):
    inputs = expand_inputs(args.inputs)
    out_dir = os.path.dirname(os.path.abspath(args.output))
    if not os.path.isdir(out_dir):
        raise InputError(f"{args.output}: the folder {out_dir} does not exist")
    sources = [(path, kind, stem) + open_source(path, kind) for path, kind, stem in inputs]
    with_answers = not args.no_answers and any("answer" in names for _, _, _, names, _ in sources)
    writer = Writer(args.output, with_answers)
    skipped, shown, total = collections.Counter(), 0, 0
    progress = Progress(args.quiet)
    try:
        for path, _, stem, _, rows in sources:
            roots = [args.image_root] if args.image_root else [os.path.dirname(os.path.abspath(path))]
            for where, row in rows:
                total += 1
                try:
                    writer.add(convert_row(row, total - 1, stem, roots, args.prepend_image_markers, with_answers))
                except Skip as s:
                    if args.strict:
                        raise InputError(f"{where}: {s} (--strict)")
                    skipped[s.reason] += 1
                    if shown < 10 and not args.quiet:
                        print(f"convert: skipped {where}: {s}", file=sys.stderr)
                        shown += 1
                progress.show(writer.n + len(writer.pending), sum(skipped.values()))
                if args.limit and writer.n + len(writer.pending) >= args.limit:
                    break
            if args.limit and writer.n + len(writer.pending) >= args.limit:
                break
        writer.close()
    except BaseException:
        writer.abort()
        raise
    progress.show(writer.n, sum(skipped.values()), final=True)
    if not args.quiet:
        for reason, count in skipped.most_common():
            print(f"convert: skipped {count} rows: {reason}", file=sys.stderr)
        print(f"convert: wrote {args.output}: {writer.n} items, {writer.m} images, "
              f"{'with' if with_answers else 'no'} answers", file=sys.stderr)
    return writer.n, skipped


def parse_args(argv):
    ap = argparse.ArgumentParser(prog="convert_dataset.py", description=__doc__.split("\n\n")[0],
                                 epilog="\n\n".join(__doc__.split("\n\n")[1:]),
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("inputs", nargs="+", metavar="INPUT", help="parquet/arrow/JSONL files or folders")
    ap.add_argument("-o", "--output", required=True, help="the HDF5 file to write (replaced atomically)")
    ap.add_argument("--image-root", help="folder that relative image paths are read from")
    ap.add_argument("--strict", action="store_true", help="fail on the first row that would be skipped")
    ap.add_argument("--no-answers", action="store_true", help="leave answers out (the split gets no 'answer')")
    ap.add_argument("--prepend-image-markers", action="store_true",
                    help="give a problem without <image> markers one per image at its start (as MM-UPT's sets)")
    ap.add_argument("--limit", type=int, default=0, help="stop after this many items (0: all)")
    ap.add_argument("-q", "--quiet", action="store_true", help="no progress or summary lines")
    return ap.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    try:
        run(args)
    except InputError as e:
        print(f"convert_dataset: error: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"convert_dataset: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
