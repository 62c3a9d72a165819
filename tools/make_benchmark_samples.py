#!/usr/bin/env python3
"""Write tiny synthetic stand-ins for the public math benchmarks, in their real on-disk layouts.

tests/fixtures/benchmarks/<name>/ gets 3-5 made-up rows per benchmark with small generated PNG
images, laid out as the public release ships (field names, types, nesting, file names):

  mathvista/data/testmini-00000-of-00001.parquet   AI4Math/MathVista on the Hugging Face hub
  mathverse/testmini.parquet, testmini_text_only.parquet   AI4Math/MathVerse on the hub
  mathvision/data/testmini-00000-of-00001.parquet  MathLLMs/MathVision on the hub
  wemath/testmini.json + 2steps/image/*.png ...    data/ of github.com/We-Math/We-Math

The questions are invented; the quirks are real (MathVista's answer as choice text, We-Math's
options as one string with odd separators, MathVerse's inline "Choices:" block and image-only
versions, MathVision's <image1> tags and letter-only options). docs/datasets.md ("Public
benchmarks") says where each layout was checked. Deterministic: the same bytes on every run with
the same pyarrow and Pillow.

  python3 tools/make_benchmark_samples.py        # from the repository root
"""
import argparse
import io
import json
import os

import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "benchmarks")

IMAGE_T = pa.struct([("bytes", pa.binary()), ("path", pa.string())])


def png(seed, size=(16, 12)):
    """A small PNG that differs per seed: a colour gradient with one bright diagonal."""
    w, h = size
    img = Image.new("RGB", size)
    img.putdata([((x * 16 + seed * 40) % 256, (y * 20 + seed * 70) % 256, 255 if x == y + seed % 4 else 60)
                 for y in range(h) for x in range(w)])
    b = io.BytesIO()
    img.save(b, "PNG")  # no timestamps or text chunks: the bytes depend only on the pixels
    return b.getvalue()


def write_parquet(path, columns, schema):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    table = pa.table(columns, schema=schema)
    # Fixed options keep the bytes stable: no statistics with floating values, one row group.
    pq.write_table(table, path, compression="snappy", write_statistics=False)


def mathvista():
    meta_t = pa.struct([("category", pa.string()), ("context", pa.string()), ("grade", pa.string()),
                        ("img_height", pa.int64()), ("img_width", pa.int64()), ("language", pa.string()),
                        ("skills", pa.list_(pa.string())), ("source", pa.string()), ("split", pa.string()),
                        ("task", pa.string())])
    schema = pa.schema([("pid", pa.string()), ("question", pa.string()), ("image", pa.string()),
                        ("decoded_image", IMAGE_T), ("choices", pa.list_(pa.string())), ("unit", pa.string()),
                        ("precision", pa.float64()), ("answer", pa.string()), ("question_type", pa.string()),
                        ("answer_type", pa.string()), ("metadata", meta_t), ("query", pa.string())])
    rows = [
        ("1", "Which bar is the tallest?", ["red", "green", "blue", "gray"], None, None, "blue",
         "multi_choice", "text", "FigureQA", "figure question answering"),
        ("2", "Find x. Round to the nearest tenth if necessary.", None, None, None, "14",
         "free_form", "integer", "Geometry3K", "geometry problem solving"),
        ("3", "What is the slope of the line at x = 2?", None, None, 2.0, "0.25",
         "free_form", "float", "FunctionQA", "textbook question answering"),
        ("4", "How old is the tree (in years)?", None, "years", None, "27",
         "free_form", "integer", "IconQA", "math word problem"),
    ]
    cols = {k: [] for k in schema.names}
    for k, (pid, q, choices, unit, precision, answer, qtype, atype, source, task) in enumerate(rows):
        cols["pid"].append(pid)
        cols["question"].append(q)
        cols["image"].append(f"images/{pid}.png")
        cols["decoded_image"].append({"bytes": png(k), "path": None})
        cols["choices"].append(choices)
        cols["unit"].append(unit)
        cols["precision"].append(precision)
        cols["answer"].append(answer)
        cols["question_type"].append(qtype)
        cols["answer_type"].append(atype)
        cols["metadata"].append({"category": "math-targeted-vqa", "context": "synthetic scene", "grade": "high school",
                                 "img_height": 12, "img_width": 16, "language": "english",
                                 "skills": ["arithmetic reasoning"], "source": source, "split": "testmini",
                                 "task": task})
        hint = ("Hint: Please answer the question and provide the correct option letter, e.g., A, B, C, D, at the end."
                if choices else "Hint: Please answer the question requiring an integer answer and provide the final "
                "value, e.g., 1, 2, 3, at the end.")
        cols["query"].append(f"{hint}\nQuestion: {q}" + ("\nChoices:\n" + "\n".join(
            f"({chr(65 + i)}) {c}" for i, c in enumerate(choices)) if choices else ""))
    write_parquet(os.path.join(OUT, "mathvista", "data", "testmini-00000-of-00001.parquet"), cols, schema)


def mathverse():
    meta_t = pa.struct([("split", pa.string()), ("source", pa.string()), ("subject", pa.string()),
                        ("subfield", pa.string())])
    schema = pa.schema([("sample_index", pa.string()), ("problem_index", pa.string()),
                        ("problem_version", pa.string()), ("question", pa.string()), ("image", IMAGE_T),
                        ("answer", pa.string()), ("question_type", pa.string()), ("metadata", meta_t),
                        ("query_wo", pa.string()), ("query_cot", pa.string()), ("question_for_eval", pa.string())])
    mc = ("As shown in the figure, line EF meets AB at E and CD at F, angle 1 = 50.0, then angle 2 is "
          "equal to ()\nChoices:\nA:50°\nB:60°\nC:65°\nD:90°")
    main = [
        ("1", "1", "Text Dominant", mc, "C", "multi-choice"),
        ("2", "1", "Vision Only", "", "C", "multi-choice"),
        ("3", "2", "Text Lite", "The radius is 3 cm. Find L.\n\nGive your answer rounded down to the nearest cm.",
         "14", "free-form"),
        ("4", "1", "Vision Dominant", "Angle 2 is equal to ()", "(C)", "multi-choice"),
    ]
    text_only = [("5", "2", "Text Only", "A can has a height of 13 cm and a radius of 3 cm. Find L, the longest "
                  "straw that fits inside.", "14", "free-form")]
    for name, rows, with_image in (("testmini.parquet", main, True), ("testmini_text_only.parquet", text_only, False)):
        cols = {k: [] for k in schema.names}
        for k, (sample, problem, version, q, answer, qtype) in enumerate(rows):
            mcq = qtype == "multi-choice"
            ask = "provide the correct option letter, e.g., A, B, C, D" if mcq else "provide the final value, e.g., 1, 2.5, 300"
            cols["sample_index"].append(sample)
            cols["problem_index"].append(problem)
            cols["problem_version"].append(version)
            cols["question"].append(q)
            cols["image"].append({"bytes": png(10 + k), "path": None} if with_image else None)
            cols["answer"].append(answer)
            cols["question_type"].append(qtype)
            cols["metadata"].append({"split": "testmini", "source": "GeoQA", "subject": "Plane Geometry",
                                     "subfield": "Angle"})
            cols["query_wo"].append(f"Please directly answer the question and {ask}.\nQuestion: {q}")
            cols["query_cot"].append(f"Please first conduct reasoning, and then answer the question and {ask}, "
                                     f"at the end.\nQuestion: {q}")
            cols["question_for_eval"].append(q)
        write_parquet(os.path.join(OUT, "mathverse", name), cols, schema)


def mathvision():
    schema = pa.schema([("id", pa.string()), ("question", pa.string()), ("options", pa.list_(pa.string())),
                        ("image", pa.string()), ("decoded_image", IMAGE_T), ("answer", pa.string()),
                        ("solution", pa.string()), ("level", pa.int64()), ("subject", pa.string())])
    rows = [
        ("4", "How many different digits can you find in this picture?\n<image1>", [], "6", 1, "counting"),
        ("6", "Which kitten has ears of a different colour?\n<image1>", ["A", "B", "C", "D", "E"], "D", 3, "logic"),
        ("9", "Theresa moves a pencil along the line <image1> and then along <image2>. In which order does she "
         "meet the shapes?", ["$\\Delta, \\square$", "$\\square, \\Delta$", "$\\bullet, \\Delta$"], "B", 2,
         "combinatorial geometry"),
        ("12", "If x + x = 5, what is x?", [], "2.5", 1, "algebra"),
    ]
    cols = {k: [] for k in schema.names}
    for k, (ident, q, options, answer, level, subject) in enumerate(rows):
        cols["id"].append(ident)
        cols["question"].append(q)
        cols["options"].append(options)
        cols["image"].append(f"images/{ident}.png")
        cols["decoded_image"].append({"bytes": png(20 + k), "path": None})
        cols["answer"].append(answer)
        cols["solution"].append(None if k % 2 else "Count them one by one.")
        cols["level"].append(level)
        cols["subject"].append(subject)
    write_parquet(os.path.join(OUT, "mathvision", "data", "testmini-00000-of-00001.parquet"), cols, schema)


def wemath():
    rows = [
        ("2steps_1", "Length Units", "According to the diagram: OA = ( ) m, AB = ( ) m",
         "A. 300, 400;B. 400, 300;C. 3000, 4000;D. 4000, 3000; E. No correct answer", "C",
         "2steps/image/1-1.png", "2steps_1", 1),
        ("2steps_1", "Length Units", "Which cylinder is tallest?",
         "A. ①;B．②;C. ③; D. Cannot be determined; E. No correct answer", "B",
         "2steps/image/1-2.png", "2steps_2", 541),
        ("2steps_1", "Translation", "How does Shape A become Shape C?",
         "A. Shape A is moved 4 units right to get Shape ;C.; B. Shape A is turned to get Shape ;C.; C. No.; "
         "D. No correct answer", "A", "2steps/image/1-multi.png", "2steps_multi", 1081),
        ("3steps_165", "Angles", "What is the angle ( )?",
         "A. 45° B. 60° ;C. 120°; D. No correct answer", "C", "3steps/image/165-3.png", "3steps_3", 1575),
    ]
    items = []
    for k, (ident, concept, q, option, answer, image, key, number) in enumerate(rows):
        path = os.path.join(OUT, "wemath", image)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(png(30 + k))
        items.append({"ID": ident, "split": "testmini", "knowledge concept": concept, "question": q,
                      "option": option, "answer": answer, "image_path": image, "key": key,
                      "question number": number, "knowledge concept description": f"{concept}:\n1. A made-up note."})
    with open(os.path.join(OUT, "wemath", "testmini.json"), "w", encoding="utf-8") as f:
        json.dump(items, f, indent=4, ensure_ascii=False)
        f.write("\n")


def main():
    argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                            epilog="Takes no options: it rewrites tests/fixtures/benchmarks/.").parse_args()
    mathvista()
    mathverse()
    mathvision()
    wemath()
    total = sum(os.path.getsize(os.path.join(d, n)) for d, _, names in os.walk(OUT) for n in names)
    print(f"wrote {OUT}: {total} bytes")


if __name__ == "__main__":
    main()
