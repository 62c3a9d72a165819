#!/usr/bin/env python3
"""Convert prompt datasets to mmupt's HDF5 prompt format (schema version 1, docs/datasets.md).

Inputs, one or more (their rows are concatenated in the order given), in MM-UPT's layout or in the
public layout of a math benchmark (--format, default auto: detected per input from its field names,
and reported): MathVista, We-Math, MathVerse, MathVision (docs/datasets.md, "Public benchmarks").
MM-UPT's layout:
  - parquet files, or a folder of them: the MM-UPT training sets' layout on the Hugging Face hub,
    with `problem`, optional `answer`, optional `id`/`source`, and `images`, a list of HF Image
    structs {bytes, path} (path alone is read from disk, relative to --image-root or the input's folder);
  - a Hugging Face dataset saved with `save_to_disk` (a folder with state.json and .arrow files);
  - JSONL files: one object per line with `problem`, optional `answer`/`id`/`source`, and `images`,
    a list of file paths relative to --image-root (default: the JSONL file's folder);
  - a .json file holding one array of such objects (or an object of them keyed by id).

Without `id`, a row's id is its row number (counted over all inputs, so ids stay unique); without
`source`, the input's name: the file's stem, or the folder's name for a folder. Images are stored exactly
as they come: the bytes of PNG or JPEG files.

Rows that break the schema's limits are skipped and counted by reason (--strict: the first one fails
the conversion instead): a missing or non-string problem, an <image> marker count that differs from
the number of images, more than 16 images, an image that is missing, empty, over 64 MiB or neither
PNG nor JPEG, a string over 1 MiB or holding a NUL byte or an unpaired surrogate.

  python3 tools/convert_dataset.py train.parquet -o data/geometry3k_train.h5
  python3 tools/convert_dataset.py items.jsonl --image-root imgs -o data/mine.h5
  python3 tools/convert_dataset.py MathVista/data/testmini-00000-of-00001-*.parquet -o data/mathvista_testmini.h5

Exit status: 0 done, 1 an input or output error (the message names file, row and field), 2 usage.
"""
import argparse
import collections
import json
import os
import re
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


def read_image_file(path, roots, label):
    for root in roots:
        full = path if os.path.isabs(path) else os.path.join(root, path)
        if os.path.isfile(full):
            size = os.path.getsize(full)
            if size > MAX_IMAGE:
                raise Skip("image too large", f"{label}: {full}: {size} bytes, more than {MAX_IMAGE}")
            with open(full, "rb") as f:
                return f.read()
    raise Skip("image file missing", f"{label}: '{path}' not found under {', '.join(roots)}")


def image_bytes(entry, label, roots):
    """The encoded bytes of one image: HF Image struct, raw bytes, or a path. `label` names the
    field in messages (images[0], decoded_image, image_path)."""
    if isinstance(entry, dict):
        data, path = entry.get("bytes"), entry.get("path")
        if data is None and path:
            data = read_image_file(path, roots, label)
    elif isinstance(entry, (bytes, bytearray)):
        data = bytes(entry)
    elif isinstance(entry, str):
        data = read_image_file(entry, roots, label)
    else:
        raise Skip("bad image entry", f"{label}: expected a path, bytes or an Image struct, got "
                   f"{type(entry).__name__}")
    if not data:
        raise Skip("empty image", f"{label} is empty")
    if len(data) > MAX_IMAGE:
        raise Skip("image too large", f"{label}: {len(data)} bytes, more than {MAX_IMAGE}")
    if image_kind(data) is None:
        raise Skip("image not PNG or JPEG", f"{label} is neither PNG nor JPEG (starts with {bytes(data[:4])!r})")
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
    # One cheap pass collects the field names (format detection, whether the split has answers),
    # since JSONL declares no schema.
    names = {}
    for _, obj in jsonl_rows(path):
        names.update(dict.fromkeys(obj))
    return list(names), jsonl_rows(path)


def json_document(path):
    """The rows of a .json file that is one JSON document: an array of objects (We-Math's and
    MathVerse's testmini.json) or an object of objects keyed by id (MathVista's testmini.json).
    None when the file is JSON Lines instead (several documents, or one object of plain fields)."""
    with open(path, encoding="utf-8", errors="surrogateescape") as f:
        body = f.read()
    try:
        doc = json.loads(body)
    except json.JSONDecodeError:
        return None
    if isinstance(doc, dict) and doc and all(isinstance(v, dict) for v in doc.values()):
        doc = list(doc.values())
    if not isinstance(doc, list):
        return None
    for k, obj in enumerate(doc):
        if not isinstance(obj, dict):
            raise InputError(f"{path}: element {k}: expected a JSON object, got {type(obj).__name__}")
    return doc


def json_source(path):
    doc = json_document(path)
    if doc is None:
        return jsonl_source(path)
    names = {}
    for obj in doc:
        names.update(dict.fromkeys(obj))
    return list(names), ((f"{path}: row {k}", obj) for k, obj in enumerate(doc))


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
        elif p.endswith(".jsonl"):
            out.append((p, "jsonl", stem))
        elif p.endswith(".json"):
            out.append((p, "json", stem))
        else:
            raise InputError(f"{p}: unknown input type (expected .parquet, .arrow, .jsonl, .json or a folder)")
    return out


def folder_name(path):
    return os.path.basename(os.path.normpath(os.path.abspath(path)))


def open_source(path, kind):
    if kind == "parquet":
        return parquet_source(path)
    if kind == "arrow":
        return arrow_source(path)
    if kind == "json":
        return json_source(path)
    return jsonl_source(path)


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


def mmupt_row(row, row_no, stem):
    """MM-UPT's own layout: the fields are already the schema's."""
    images = row.get("images")
    if images is None:
        images = []
    if not isinstance(images, list):
        raise Skip("bad images field", f"images: expected a list, got {type(images).__name__}")
    if len(images) > MAX_IMAGES:
        raise Skip("too many images", f"images: {len(images)}, more than {MAX_IMAGES}")
    return {
        "id": text(row, "id", str(row_no)),
        "source": text(row, "source", stem),
        "problem": text(row, "problem"),
        "answer": row.get("answer"),
        "images": [(f"images[{k}]", e) for k, e in enumerate(images)],
    }


def convert_row(item, roots, prepend_markers, with_answers):
    """Checks an item in the schema's fields (from mmupt_row or a benchmark adapter) and reads its
    images. item["images"] is a list of (field label, entry)."""
    problem = text(item, "problem")
    blobs = [image_bytes(e, label, roots) for label, e in item["images"]]
    markers = problem.count(MARKER)
    if markers == 0 and blobs and prepend_markers:
        problem = MARKER * len(blobs) + problem
        markers = len(blobs)
    if markers != len(blobs):
        raise Skip("marker count differs", f"problem: {markers} {MARKER} markers for {len(blobs)} images")
    return {
        "id": text(item, "id"),
        "source": text(item, "source"),
        "problem": problem,
        "answer": text(item, "answer", "") if with_answers else "",
        "images": blobs,
    }


# ---- public benchmarks ----
#
# Each adapter maps one row of a benchmark's public release to the schema's fields (docs/datasets.md,
# "Public benchmarks", says which fields and why). Multiple-choice items all get the same layout,
# which the evaluation's letter grading parses: the question, a line "Choices:", one line "(A) text"
# per option with letters in order, and the answer as the letter.

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def choices_block(question, options):
    """The question with the contract's choices block appended."""
    if len(options) > len(LETTERS):
        raise Skip("too many choices", f"choices: {len(options)}, more than {len(LETTERS)}")
    lines = []
    for letter, option in zip(LETTERS, options):
        if not isinstance(option, str):
            raise Skip("choice not text", f"choices: ({letter}) is {type(option).__name__}, not a string")
        # One option per line is the contract: a line break inside an option would split it.
        option = " ".join(option.split())
        if not option:
            raise Skip("empty choice", f"choices: ({letter}) is empty")
        lines.append(f"({letter}) {option}")
    return question + "\nChoices:\n" + "\n".join(lines)


def letter_of(answer, options, where):
    """The letter of an answer given as the text of one of the options."""
    hits = [LETTERS[k] for k, o in enumerate(options) if isinstance(o, str) and o.strip() == answer.strip()]
    if not hits:
        raise Skip("answer matches no choice", f"{where}: {answer!r} is none of the choices {options!r}")
    if len(hits) > 1:
        raise Skip("answer matches several choices", f"{where}: {answer!r} is choice {' and '.join(hits)}")
    return hits[0]


def check_letter(answer, n_options, where):
    letter = answer.strip().strip("()").strip()
    if len(letter) != 1 or letter not in LETTERS[:n_options]:
        raise Skip("answer not a choice letter", f"{where}: {answer!r} is not one of the letters "
                   f"A-{LETTERS[n_options - 1]}")
    return letter


def field(row, name, kind=str, optional=False):
    v = row.get(name)
    if v is None and optional:
        return None
    if not isinstance(v, kind) or isinstance(v, bool):
        got = "missing" if v is None else f"a {type(v).__name__}"
        raise Skip(f"bad {name}", f"{name}: expected a {kind.__name__}, got {got}")
    return v


def ident(row, name):
    """An id field: a string, or an integer that becomes one."""
    v = row.get(name)
    if isinstance(v, int) and not isinstance(v, bool):
        return str(v)
    return field(row, name)


def image_entry(row, names):
    """(label, entry) of the first of `names` that holds an image (a struct with bytes or a path,
    or a path string); the decoded HF image comes first where a release has both."""
    for name in names:
        v = row.get(name)
        if isinstance(v, dict) and (v.get("bytes") or v.get("path")):
            return name, v
        if isinstance(v, str) and v:
            return name, v
    raise Skip("no image", f"{'/'.join(names)}: missing")


def mathvista_row(row):
    question = field(row, "question")
    answer = field(row, "answer")
    meta = row.get("metadata") if isinstance(row.get("metadata"), dict) else {}
    source = meta.get("source") if isinstance(meta.get("source"), str) else ""
    kind = field(row, "question_type")
    choices = row.get("choices") or []
    if kind == "multi_choice":
        if not isinstance(choices, list) or not choices:
            raise Skip("multiple choice without choices", "choices: empty for a multi_choice question")
        question = choices_block(question, choices)
        answer = letter_of(answer, choices, "answer")
    return {
        "id": ident(row, "pid"),
        "source": f"mathvista/{source}" if source else "mathvista",
        "problem": MARKER + question,
        "answer": answer,
        "images": [image_entry(row, ("decoded_image", "image"))],
    }


# We-Math gives the options as one string, "A. 300, 400;B. 400, 300; E. No correct answer": an option
# starts at its letter and a period (ASCII or full-width) after the start, a ';' or a space, and holds
# some text before the next option starts (";C.;" inside an option's text is no option).
WEMATH_OPTION = re.compile(r"(?:^|(?<=[;\s]))([A-Z])[.\uff0e]\s*(?=[^;\s])")


def wemath_options(option):
    starts, want = [], 0
    for m in WEMATH_OPTION.finditer(option):
        if want < len(LETTERS) and m.group(1) == LETTERS[want]:
            starts.append(m)
            want += 1
    if not starts or starts[0].start() != len(option) - len(option.lstrip()):
        raise Skip("options not parsed", f"option: {option[:60]!r} does not start with 'A.'")
    ends = [m.start() for m in starts[1:]] + [len(option)]
    return [option[m.end():end].strip().rstrip("; \t") for m, end in zip(starts, ends)]


def wemath_row(row):
    options = wemath_options(field(row, "option"))
    return {
        "id": f"{ident(row, 'ID')}/{field(row, 'key')}",
        "source": f"wemath/{field(row, 'knowledge concept')}",
        "problem": MARKER + choices_block(field(row, "question"), options),
        "answer": check_letter(field(row, "answer"), len(options), "answer"),
        "images": [image_entry(row, ("image_path",))],
    }


# MathVerse writes its options into the question: "...\nChoices:\nA:40°\nB:60°". Questions whose
# options are drawn in the image (Vision Dominant/Only) have no such block.
MATHVERSE_CHOICES = re.compile(r"\n\s*Choices?\s*:\s*\n")
MATHVERSE_OPTION = re.compile(r"^\s*\(?([A-Z])\)?\s*[:.\uff1a\uff0e]\s*(.*?)\s*$")


def mathverse_choices(question):
    """(stem, options) when the question ends with a parsable choices block, else None."""
    found = list(MATHVERSE_CHOICES.finditer(question))
    if not found:
        return None
    m = found[-1]
    options = []
    for line in question[m.end():].split("\n"):
        if not line.strip():
            continue
        o = MATHVERSE_OPTION.match(line)
        if not o or len(options) >= len(LETTERS) or o.group(1) != LETTERS[len(options)]:
            return None
        options.append(o.group(2))
    return (question[:m.start()], options) if options else None


def mathverse_row(row):
    question = field(row, "question")
    answer = field(row, "answer")
    if field(row, "question_type") == "multi-choice":
        parsed = mathverse_choices(question)
        if parsed:
            stem, options = parsed
            question = choices_block(stem, options)
            try:
                answer = check_letter(answer, len(options), "answer")
            except Skip:
                answer = letter_of(answer, options, "answer")
        elif len(answer.strip().strip("()").strip()) == 1:
            answer = answer.strip().strip("()").strip()
    # The Text Only version has no image: "image" is empty (JSON) or null (parquet).
    image = row.get("image")
    images = [image_entry(row, ("image",))] if image else []
    version = field(row, "problem_version")
    return {
        "id": ident(row, "sample_index"),
        "source": f"mathverse/{version}",
        "problem": (MARKER if images else "") + question,
        "answer": answer,
        "images": images,
    }


def mathvision_row(row):
    question = field(row, "question")
    answer = field(row, "answer")
    options = row.get("options") or []
    if not isinstance(options, list):
        raise Skip("bad options", f"options: expected a list, got {type(options).__name__}")
    if options:
        question = choices_block(question, options)
        try:
            answer = check_letter(answer, len(options), "answer")
        except Skip:
            answer = letter_of(answer, options, "answer")
    # Every item has one image file; "<image1>" marks where it goes, and "<image2>"... (rare) name
    # parts of that same picture, so they stay as text.
    if "<image1>" in question:
        problem = question.replace("<image1>", MARKER, 1)
    else:
        problem = MARKER + question
    return {
        "id": ident(row, "id"),
        "source": f"mathvision/{field(row, 'subject')}",
        "problem": problem,
        "answer": answer,
        "images": [image_entry(row, ("decoded_image", "image"))],
    }


ADAPTERS = {"mathvista": mathvista_row, "wemath": wemath_row, "mathverse": mathverse_row,
            "mathvision": mathvision_row}

# Field names that identify each layout; the first match wins (mm-upt last: it only needs `problem`).
SIGNATURES = [
    ("mathvista", {"pid", "question", "choices", "question_type", "answer"}),
    ("mathverse", {"sample_index", "problem_index", "problem_version", "question", "answer"}),
    ("mathvision", {"id", "question", "options", "answer", "subject"}),
    ("wemath", {"ID", "question", "option", "answer", "knowledge concept"}),
    ("mm-upt", {"problem"}),
]


def detect_format(names):
    have = set(names)
    for name, need in SIGNATURES:
        if need <= have:
            return name
    return None


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
            # One element at a time: h5py turns an object array of equal-length images into a 2-D array
            # (and a one-element one too) and then refuses to write it.
            for j, b in enumerate(blobs):
                self.images[self.m + j] = b
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


def input_format(path, names, wanted, quiet):
    """The layout of one input: --format, or detected from its field names (and reported)."""
    if wanted != "auto":
        fmt = wanted
    else:
        fmt = detect_format(names)
        if fmt is None:
            raise InputError(f"{path}: cannot tell the format from its fields ({', '.join(names)}); "
                             f"pass --format")
        if not quiet:
            print(f"convert: {path}: detected format {fmt}", file=sys.stderr)
    if fmt == "mm-upt" and "problem" not in names:
        raise InputError(f"{path}: no 'problem' field (fields: {', '.join(names)})")
    return fmt


def run(args):
    inputs = expand_inputs(args.inputs)
    out_dir = os.path.dirname(os.path.abspath(args.output))
    if not os.path.isdir(out_dir):
        raise InputError(f"{args.output}: the folder {out_dir} does not exist")
    sources = []
    for path, kind, stem in inputs:
        names, rows = open_source(path, kind)
        sources.append((path, stem, input_format(path, names, args.format, args.quiet), names, rows))
    # Benchmarks always carry answers; MM-UPT's sets may not.
    with_answers = not args.no_answers and any(fmt != "mm-upt" or "answer" in names
                                               for _, _, fmt, names, _ in sources)
    writer = Writer(args.output, with_answers)
    skipped, shown, total = collections.Counter(), 0, 0
    progress = Progress(args.quiet)
    try:
        for path, stem, fmt, _, rows in sources:
            roots = [args.image_root] if args.image_root else [os.path.dirname(os.path.abspath(path))]
            for where, row in rows:
                total += 1
                try:
                    item = mmupt_row(row, total - 1, stem) if fmt == "mm-upt" else ADAPTERS[fmt](row)
                    writer.add(convert_row(item, roots, args.prepend_image_markers, with_answers))
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
    ap.add_argument("inputs", nargs="+", metavar="INPUT", help="parquet/arrow/JSONL/JSON files or folders")
    ap.add_argument("-o", "--output", required=True, help="the HDF5 file to write (replaced atomically)")
    ap.add_argument("--format", default="auto", choices=["auto", "mm-upt"] + sorted(ADAPTERS),
                    help="the inputs' layout (auto: detected per input from its field names)")
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
