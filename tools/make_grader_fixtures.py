#!/usr/bin/env python3
"""Build tests/fixtures/grade/table.jsonl: (given, reference) pairs with mathruler's verdict, and
model responses with mathruler's extract_boxed_content output. The C grader (src/grade) must agree
on >= 98% of the grading pairs and on every extraction; each disagreement is listed in
tests/fixtures/grade/known_disagreements.txt and docs/grading.md.

Needs: pip install mathruler==0.1.0 (pulls sympy and pylatexenc).
Usage: python3 tools/make_grader_fixtures.py [OUT]
"""
import itertools
import json
import sys

from mathruler.grader import extract_boxed_content, grade_answer

# Hand-written pairs, one or more per rule of grade_answer (given, reference).
HAND = [
    # path (a): MATH _strip_string
    ("\\frac{1}{2}", "\\dfrac{1}{2}"), ("\\tfrac12", "\\frac{1}{2}"), ("\\frac12", "\\frac{1}{2}"),
    ("\\frac1{72}", "\\frac{1}{72}"), ("0.5", "\\frac{1}{2}"), (".5", "0.5"), ("1/2", "\\frac{1}{2}"),
    ("\\left(1,2\\right)", "(1,2)"), ("90^{\\circ}", "90"), ("90^\\circ", "90"), ("\\$5", "5"),
    ("50\\%", "50"), ("50%", "50"), ("x = 5", "5"), ("k=3", "3"), ("abc=3", "3"), ("\\sqrt3", "\\sqrt{3}"),
    ("\\sqrt{3}", "\\sqrt3"), ("5 \\text{ cm}", "5"), ("5\\text{ cm}\\text{ m}", "5"), ("\\text{ 5}", "5"),
    ("\\!5", "5"), ("5\n", "5"), ("\\text{yes}", "yes"), ("\\text{Yes}", "yes"), ("  7  ", "7"),
    ("\\sqrt", "\\sqrt"), ("\\frac", "\\frac"), ("a\\sqrt", "a"), ("\\frac1", "\\frac1"), ("x=y=3", "3"),
    ("01/2", "1/2"), ("-1/2", "\\frac{-1}{2}"), ("1/-2", "\\frac{1}{-2}"), ("1/2/3", "\\frac{1}{2}/3"),
    ("\\\\frac{1}{2}", "\\frac{1}{2}"), ("\\text{\\frac{1}{2}}", "\\frac{1}{2}"), ("{.5}", "{0.5}"),
    # the strings MM-UPT votes with (mmupt.md 1.3)
    ("None", "None"), ("", ""), ("", "None"), ("None", ""), ("none", "None"), ("", "0"), ("0", ""),
    (" ", ""), ("\\text{}", ""),
    # path (b): _normalize
    ("5 cm", "5"), ("5 cm^2", "5"), ("5 meters", "5"), ("3 hours", "3"), ("2 days", "2"), ("10 feet", "10"),
    ("10 foot", "10"), ("4 inches", "4"), ("7 yards", "7"), ("6 miles", "6"), ("30 seconds", "30"),
    ("12 minutes", "12"), ("5 weeks", "5"), ("3 months", "3"), ("2 years", "2"), ("45 degrees", "45"),
    ("45^\\circ", "45"), ("45 ^ \\circ", "45"), ("45°", "45"), ("5 centimeters", "5"), ("5 m", "5"),
    ("5 km", "5"), ("5 kg", "5"), ("5 units", "5"), ("today", "to"), ("Monday", "Mon"), ("5 Cm", "5"),
    ("1 or 2", "1,2"), ("1 and 2", "1,2"), ("(1 or 2)", "(1,2)"), ("3 million", "3000000"),
    ("2 billion", "2000000000"), ("1 trillion", "10^12"), ("1.5 million", "1500000"),
    ("$5$", "5"), ("\\$5.00", "5"), ("5.0", "5"), ("5.00", "5"), ("5.000000001", "5"), ("4.9999999", "5"),
    ("0.99999999", "1"), ("0.99999999", "0"), ("1e3", "1000"), ("1E3", "1000"), ("1_000", "1000"),
    ("1,000", "1000"), ("1,000,000", "1000000"), ("10,000", "10000"), ("1,0000", "10000"), ("1, 000", "1000"),
    ("{5}", "5"), ("{{5}}", "5"), ("5,\\!000", "5000"), ("\\text{A}", "a"), ("A", "a"), ("B", "b"), ("ABC", "abc"),
    ("\\textbf{B}", "B"), ("\\mathrm{B}", "B"), ("(B)", "B"), ("B.", "B"), ("\\text{(B)}", "B"),
    ("\\pi", "pi"), ("2\\pi", "2pi"), ("\\frac{\\pi}{2}", "pi/2"), ("\\frac{\\pi}{2}", "\\pi/2"), ("\\pi/2", "0.5\\pi"),
    ("\\sqrt{2}", "sqrt(2)"), ("\\sqrt{4}", "2"), ("\\sqrt{9}", "3"), ("\\sqrt{8}", "2\\sqrt{2}"),
    ("\\sqrt{\\frac{1}{4}}", "\\frac{1}{2}"), ("\\sqrt{0.25}", "0.5"), ("\\sqrt[3]{8}", "2"), ("\\sqrt[3]{8}", "\\sqrt{8}"),
    ("\\infty", "inf"), ("\\infty", "\\infty"), ("-\\infty", "-inf"), ("(-\\infty, 2)", "(-inf,2)"),
    ("A \\cup B", "AUB"), ("2 \\cdot 3", "6"), ("2 \\times 3", "6"), ("6 \\div 2", "3"), ("\\alpha", "α"),
    ("\\theta", "θ"), ("\\Delta", "δ"), ("\\angle A", "∠A"), ("30^\\circ", "\\frac{\\pi}{6}"),
    ("\\frac{1+2}{3}", "1"), ("\\frac{1+2}{3}", "\\frac{5}{3}"), ("\\frac{3}{1+2}", "1"), ("3 \\frac{1}{2}", "3.5"),
    ("3\\frac{1}{2}", "\\frac{7}{2}"), ("7 3/4", "7.75"), ("- 5", "-5"), ("-  5", "-5"), ("1 2 3", "1+23"),
    ("\\left[1, 2\\right)", "[1,2)"), ("[1,2)", "(1,2]"), ("(1,2)", "(2,1)"), ("(1, 2)", "(1,2)"),
    ("(1,2,3)", "(1,2)"), ("[1,2]", "(1,2)"), ("(0.5, 1)", "(\\frac{1}{2}, 1)"), ("(2/4, 1)", "(1/2, 1)"),
    ("2/4", "1/2"), ("\\frac{2}{4}", "\\frac{1}{2}"), ("4/2", "2"), ("6/3", "2"), ("3/1", "3"), ("-3/6", "-1/2"),
    ("1/3", "0.333"), ("1/3", "0.3333333333333333"), ("0.25", "1/4"), ("0.1", "1/10"), ("0.2", "1/5"),
    ("0.1+0.2", "0.3"), ("0.3", "0.1+0.2"), ("1/4", "0.25"), ("0.125", "1/8"), ("2.5", "5/2"), ("2.50", "5/2"),
    ("2.5", "\\frac{5}{2}"), ("-2.5", "-\\frac{5}{2}"), ("1.5", "3/2"), ("1.5", "1.50"), ("3.14", "\\pi"),
    ("3.14159", "\\pi"), ("2^3", "8"), ("2^{3}", "8"), ("2**3", "8"), ("2^10", "1024"), ("2^(3)", "8"),
    ("(-2)^2", "4"), ("-2^2", "-4"), ("2^-1", "1/2"), ("2^-1", "0.5"), ("10^3", "1000"), ("1/0", "1/0"),
    ("1/0", "2"), ("x+1", "1+x"), ("2x", "x2"), ("2x", "2*x"), ("x", "y"), ("a+b", "b+a"), ("xyz", "zyx"),
    ("2(3)", "6"), ("(2)(3)", "6"), ("2\\sqrt{4}", "4"), ("\\sqrt{4}\\sqrt{9}", "6"), ("\\frac{6}{\\sqrt{4}}", "3"),
    ("\\frac{\\sqrt{3}}{2}", "\\frac{\\sqrt3}{2}"), ("\\frac{\\sqrt{3}}{2}", "0.866"), ("\\frac{3}{\\sqrt{3}}", "\\sqrt{3}"),
    ("6\\pi", "\\pi 6"), ("\\pi^2", "pi^2"), ("\\pi^2", "9.8696"), ("2\\pi r", "2 \\pi r"), ("4\\pi", "4pi"),
    ("12\\pi", "37.7"), ("\\frac{4}{3}\\pi", "\\frac{4\\pi}{3}"), ("\\frac{1}{2}\\pi", "\\frac{\\pi}{2}"),
    ("1.0e-3", "0.001"), ("1e-3", "1/1000"), ("1.2\\times10^{3}", "1200"), ("1.2 \\times 10^3", "1200"),
    ("6.02e23", "6.02 \\times 10^{23}"), ("3 \\times 10^2", "300"), ("5e2", "500"),
    ("-5", "-5.0"), ("-0", "0"), ("+5", "5"), ("−5", "-5"), ("5!", "120"), ("3!", "6"), ("007", "7"),
    ("x=5", "5"), ("x = 5", "x=5"), ("y=2x+1", "2x+1"), ("a=1,b=2", "1,2"), ("\\{1,2\\}", "{1,2}"),
    ("\\{1, 2\\}", "(1,2)"), ("1,2", "2,1"), ("1, 2", "1,2"), ("12,5", "125"),
    ("\\text{red}", "red"), ("Red", "red"), ("\\text{True}", "true"), ("yes", "Yes"), ("no", "No"),
    ("\\text{5 cm}", "5"), ("\\text{5} \\text{ cm}", "5"), ("5\\,\\text{cm}", "5"), ("5 \\mathrm{cm}", "5"),
    ("5 \\text{cm}^2", "5"), ("5\\ \\text{cm}", "5"), ("5 \\text{ cm}^2", "5"),
    ("\\dfrac{3}{4}", "0.75"), ("\\tfrac{3}{4}", "3/4"), ("\\frac34", "0.75"), ("\\frac{3}{4}", ".75"),
    ("75\\%", "0.75"), ("75%", "75"), ("0.75", "75%"), ("\\frac{75}{100}", "3/4"),
    ("\\mbox{5}", "5"), ("\\overline{AB}", "AB"), ("\\hat{x}", "x"), ("\\vec{v}", "v"),
    ("\\sin 30", "sin30"), ("\\log 2", "log(2)"), ("\\ln 2", "ln2"), ("\\cos\\theta", "cosθ"),
    ("a~b", "a b"), ("1--2", "1-2"), ("\\le", "≤"), ("x \\le 3", "x≤3"), ("x \\leq 3", "x \\le 3"),
    ("\\binom{5}{2}", "10"), ("\\binom{5}{2}", "52"), ("\\frac{a}{b}", "a/b"), ("\\frac{x}{2}", "x/2"),
    ("\\frac{x}{2}", "0.5x"), ("\\frac{1}{\\frac{1}{2}}", "2"), ("\\frac{\\frac{1}{2}}{2}", "1/4"),
    ("((((((1))))))", "1"), ("(((1)))", "((1))"), ("1+1", "2"), ("1+1", "2.0"), ("2-1", "1"), ("3/6", "0.5"),
    ("\\frac{10}{4}", "2.5"), ("\\frac{10}{4}", "\\frac{5}{2}"), ("10/4", "5/2"), ("\\frac{-1}{2}", "-\\frac{1}{2}"),
    ("-\\frac{1}{2}", "-0.5"), ("\\frac{1}{-2}", "-0.5"), ("(-1/2)", "-1/2"), ("0.5\\pi", "\\frac{\\pi}{2}"),
    ("0.333\\pi", "\\frac{\\pi}{3}"), ("2\\pi/3", "\\frac{2\\pi}{3}"), ("\\frac{2}{3}\\pi", "\\frac{2\\pi}{3}"),
    ("\\pi+1", "1+\\pi"), ("2\\pi-\\pi", "\\pi"), ("\\pi\\pi", "\\pi^2"), ("\\frac{\\pi}{\\pi}", "1"),
    ("\\sqrt{2}^2", "2"), ("\\sqrt{16}", "4.0"), ("\\sqrt{-4}", "2i"), ("\\sqrt{2}\\sqrt{2}", "2"),
    ("1\\frac{1}{2}", "1.5"), ("1 \\frac{1}{2}", "\\frac{3}{2}"), ("\\frac{0}{5}", "0"), ("0/5", "0"),
    ("5/0", "5/0"), ("00", "0"), ("0.0", "0"), ("-0.0", "0"), (".0", "0"), ("5.", "5"), ("5.5.5", "5.5"),
    ("1.2.3", "0.36"), ("12.", "12"), ("1,234.5", "1234.5"), ("1,234", "1234"), ("1,23", "123"),
    ("1\\,234", "1234"), ("1\\;234", "1234"), ("10^{6}", "1000000"), ("10^6", "1000000"),
    ("\\frac{1}{3}+\\frac{1}{6}", "\\frac{1}{2}"), ("\\frac13+\\frac16", "0.5"), ("0.\\overline{3}", "1/3"),
    ("2:3", "2/3"), ("3:4", "3:4"), ("1:2", "0.5"), ("45.0^\\circ", "45"), ("45.5°", "45.5"),
    ("\\text{(A)}", "A"), ("(A)", "(a)"), ("A)", "A"), ("Option A", "A"), ("\\boxed{5}", "5"),
    ("\\displaystyle\\frac{1}{2}", "0.5"), ("\\left|x\\right|", "|x|"), ("|-3|", "3"), ("\\lvert -3 \\rvert", "3"),
    ("3\\%", "0.03"), ("3\\%", "3"), ("100\\%", "1"), ("\\$1,000", "1000"), ("USD 5", "5"), ("5 dollars", "5"),
    ("\\frac{1}{2} cm", "0.5"), ("2 \\text{ and } 3", "2,3"), ("2 \\text{ or } 3", "2,3"), ("x=2 or x=3", "2,3"),
    ("(2, 3)", "\\left(2, 3\\right)"), ("(\\frac{1}{2}, \\frac{1}{3})", "(0.5, 1/3)"), ("[0, \\infty)", "[0,inf)"),
    ("(-\\infty, 0) \\cup (1, \\infty)", "(-inf,0)U(1,inf)"), ("(1,2", "(1,2)"), ("1,2)", "(1,2)"),
    ("(1)", "1"), ("(5)", "5"), ("[5]", "5"), ("(5, )", "(5)"), ("(,)", "(,)"), ("()", "()"),
    ("\\frac{\\sqrt{2}}{2}", "\\frac{1}{\\sqrt{2}}"), ("\\frac{\\sqrt{2}}{2}", "0.7071"), ("2\\sqrt{3}", "\\sqrt{12}"),
    ("\\sqrt{12}", "2\\sqrt3"), ("3\\sqrt{2}", "3 \\sqrt 2"), ("\\sqrt{x}", "x^{0.5}"), ("\\sqrt{x}", "sqrt(x)"),
    ("x^2", "x**2"), ("x^2+2x+1", "(x+1)^2"), ("x^{2}", "x^2"), ("e", "e"), ("e^2", "e^2"), ("2e", "2e"),
    ("\\mathbf{A}", "A"), ("\\mathbb{R}", "R"), ("\\emph{5}", "5"), ("\\textit{5}", "5"),
    ("5 \\text{cm}", "5 \\text{m}"), ("5 \\mathrm{~cm}", "5"), ("5\\mathrm{~m}^2", "5"), ("24 \\mathrm{~cm}^{2}", "24"),
    ("\\pi r^2", "\\pi r^{2}"), ("V=\\frac{4}{3}\\pi r^3", "\\frac{4}{3}\\pi r^3"), ("AB=5", "5"), ("AB = 5", "5"),
    ("\\angle ABC = 30^\\circ", "30"), ("m\\angle A = 30", "30"), ("x=\\frac{1}{2}", "0.5"),
]

# Equivalence classes in the style of real answers (MathVista, We-Math, Geo3K): every pair across a
# class and a sample of pairs across classes.
CLASSES = [
    ["0.5", "1/2", "\\frac{1}{2}", "\\dfrac{1}{2}", "\\frac12", ".5", "0.50", "50\\%", "\\text{0.5}", "$\\frac{1}{2}$"],
    ["12", "12.0", "12.00", "\\text{12}", "12 cm", "12\\text{ cm}", "12 \\mathrm{cm}", "{12}", "12^\\circ", "x=12"],
    ["1000", "1,000", "1000.0", "1\\,000", "10^3", "1e3", "1 \\times 10^3", "\\$1000", "1000 \\text{ m}"],
    ["-3", "-3.0", "- 3", "\\left(-3\\right)", "(-3)", "-\\frac{6}{2}", "−3", "-3^\\circ"],
    ["\\frac{2}{3}", "2/3", "\\dfrac{2}{3}", "0.6667", "0.\\overline{6}", "\\frac{4}{6}", "0.67"],
    ["2\\pi", "2 \\pi", "\\pi \\cdot 2", "6.28", "2pi", "\\frac{4\\pi}{2}", "360^\\circ"],
    ["\\sqrt{3}", "\\sqrt3", "3^{1/2}", "1.732", "\\sqrt{3}/1", "\\frac{3}{\\sqrt{3}}"],
    ["(1,2)", "(1, 2)", "\\left(1,2\\right)", "(1.0, 2.0)", "(\\frac{2}{2}, 2)", "[1,2]", "(2,1)"],
    ["[0,1)", "[0, 1)", "\\left[0,1\\right)", "[0,1]", "(0,1)"],
    ["A", "(A)", "\\text{A}", "a", "A.", "\\textbf{A}", "B"],
    ["30^\\circ", "30", "30°", "30 degrees", "\\frac{\\pi}{6}", "30.0"],
    ["25\\%", "25", "0.25", "\\frac{1}{4}", "25 percent"],
    ["3.5", "3\\frac{1}{2}", "3 \\frac{1}{2}", "\\frac{7}{2}", "7/2", "3.50"],
    ["6.02 \\times 10^{23}", "6.02e23", "602000000000000000000000", "6.02\\times10^{23}"],
    ["x=5", "5", "x = 5", "y=5", "5.0", "\\text{x=5}"],
    ["4\\sqrt{2}", "\\sqrt{32}", "5.66", "4 \\sqrt 2", "4\\sqrt2"],
    ["\\frac{\\pi}{4}", "\\pi/4", "0.25\\pi", "45^\\circ", "0.785"],
    ["1.5", "\\frac{3}{2}", "3/2", "1\\frac{1}{2}", "1.50", "150\\%"],
    ["-\\frac{1}{3}", "\\frac{-1}{3}", "-1/3", "-0.333", "\\frac{1}{-3}"],
    ["Yes", "yes", "\\text{Yes}", "YES", "True", "No"],
]

# Model responses for extraction (extract_boxed_content).
RESPONSES = [
    "The answer is \\boxed{5}.", "\\boxed{1} then \\boxed{2}", "\\boxed{\\frac{1}{2}}", "\\boxed{ 7 }",
    "\\boxed{}", "\\boxed{\\text{A}}", "no box here", "\\boxed{unclosed", "\\boxed {5}", "\\fbox{5}",
    "<answer>5</answer>", "\\boxed{a{b}c}", "\\boxed{{}}", "\\boxed{}}", "x \\boxed{3} y \\boxed{4", "\\boxed{3}}}",
    "Step 1: ... so the area is 12 cm^2.\n\nFinal: \\boxed{12 \\text{ cm}^2}", "\\boxed{\n5\n}", "\\boxed{\\boxed{5}}",
    "\\boxed{(1,2)}", "\\boxed{\\left[0,1\\right)}", "\\\\boxed{5}", "\\boxed{é}", "\\boxed{5}\u00a0",
    "\\boxed{\u00a05\u2003}", "", "\\boxed{", "}\\boxed{x}{", "\\boxed{" + "{" * 50 + "}" * 50 + "}",
    "Let's think. " * 40 + "\\boxed{42}", "\\boxed{B}. The answer is (C).", "\\boxed{5 \\text{ and } 6}",
]


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/grade/table.jsonl"
    pairs = list(HAND)
    for cls in CLASSES:
        pairs += [(a, b) for a, b in itertools.permutations(cls, 2)]
    # across classes: first two members of each class against the first of the next
    for c1, c2 in zip(CLASSES, CLASSES[1:]):
        pairs += [(c1[0], c2[0]), (c2[1], c1[1])]
    seen, rows = set(), []
    for given, ref in pairs:
        if (given, ref) in seen:
            continue
        seen.add((given, ref))
        rows.append({"given": given, "reference": ref, "equal": bool(grade_answer(given, ref))})
    for r in RESPONSES:
        rows.append({"response": r, "boxed": extract_boxed_content(r)})
    with open(out, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    n_grade = sum("given" in r for r in rows)
    print(f"{out}: {n_grade} grading pairs ({sum(r.get('equal', False) for r in rows)} equal), "
          f"{len(RESPONSES)} extractions")


if __name__ == "__main__":
    main()
