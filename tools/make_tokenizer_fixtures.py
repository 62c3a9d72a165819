#!/usr/bin/env python3
"""Tokenizer fixtures: what the Hugging Face `tokenizers` library says, for mmupt's C tokenizer
to match id for id.

Writes tests/fixtures/tokenizer/:
  corpus.json          the samples: {"samples": [{"name", "text"} or {"name", "hex", "clean"}]};
                       "hex" holds byte strings that are not valid UTF-8, "clean" what the library
                       sees of them: bytes.decode('utf-8', errors='replace'), as the C side does
  qwen_expected.json   ids from the shared Qwen tokenizer.json (../shared/assets/qwen-tokenizer)
  small/NAME.json      small byte-level BPE tokenizers trained here (vocab ~300), in the variants
                       the loader must read: as trained (pair merges, NFC, ByteLevel with the GPT-2
                       regex), legacy "a b" merges, the Qwen layout (Split + ByteLevel), prefix
                       space, several Split steps (a literal one) before ByteLevel with prefix
                       space and regex, added-token options (lstrip, rstrip, single_word, normalized) with
                       ignore_merges, and vocabularies with missing bytes (unk fused, unk not fused,
                       no unk)
  small/NAME.expected.json   ids for each variant

An expected file is {"tokenizer": path, "samples": [indices into corpus], "encode": [[ids]],
"decoded": [text or null], "decoded_skip": [text or null], "decode_cases": [{"ids", "skip_special",
"text"}]}. "decoded" is decode(encode(sample)); null means it equals the sample's text (after the
U+FFFD replacement), to keep the files small. "decoded_skip" is the same with skip_special_tokens,
null when it equals "decoded". decode_cases are id lists that break UTF-8 (byte tokens of cut
characters, random ids) with the library's decode of them.

Requires tokenizers (0.23.x; tools/requirements.txt). Run from the repository root:
  python3 tools/make_tokenizer_fixtures.py
"""
import copy
import json
import os
import random
import sys
import unicodedata

import tokenizers
from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
OUT = os.path.join(ROOT, "tests", "fixtures", "tokenizer")
QWEN = os.path.join(ROOT, "..", "shared", "assets", "qwen-tokenizer", "tokenizer.json")
QWEN_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
              r"\s*[\r\n]+|\s+(?!\S)|\s+")

# ---- the corpus ----

PROSE = [
    "The quick brown fox jumps over the lazy dog.",
    "It's a truth universally acknowledged that they'll need more data; we'd better start, hadn't we?",
    "SHE'S HERE. THEY'LL COME. I'M SURE WE'VE MET. YOU'D KNOW. DON'T.",
    "Mixed case contractions: It'S, they'Ll, we'Ve, I'M, you'D, isn'T.",
    "Numbers like 3.14159, 1,000,000 and -42 appear in text; so do dates (2024-05-17) and times (12:30:45).",
    "A long digit string: 12345678901234567890123456789012345678901234567890",
    "Phone: +1 (555) 010-9999, ext. 1234; ZIP 90210-1234.",
    "Email me at someone@example.com or visit https://example.org/path?q=1&r=two#frag.",
    "Hyphenated-words, em\u2014dashes, en\u2013dashes, ellipses\u2026 and \u201ccurly quotes\u201d.",
    "  leading spaces and trailing spaces   ",
    "Tabs\tbetween\t\twords\t\t\tand at the end\t",
    "Line one\nLine two\n\nLine four after a blank line\n",
    "Windows line endings\r\nsecond line\r\n\r\nlast\r\n",
    "Old Mac line endings\rsecond\rthird",
    "Multiple     spaces    between     words.",
    "a   b",
    "Trailing newlines\n\n\n",
    "\n\n\nLeading newlines",
    " \n \n \t \n",
    "    ",
    "x",
    "",
    "Non-breaking\u00a0space, thin\u2009space, ideographic\u3000space, zero\u200bwidth.",
    "NEL\u0085line and line\u2028separator and paragraph\u2029separator.",
    "Question? Exclamation! Semicolon; colon: comma, period. (Parens) [brackets] {braces} <angles>",
    "ALL CAPS SENTENCE WITH SOME NUMBERS 123 AND SYMBOLS #@!",
    "camelCaseIdentifier snake_case_identifier kebab-case-identifier SCREAMING_SNAKE",
    "The answer is \\boxed{42}.",
    "Solve for x: 2x + 3 = 7, so x = 2.",
]

CODE = [
    "def fib(n):\n    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)\n",
    "import numpy as np\n\nx = np.arange(10, dtype=np.float32)\nprint(x.mean(), x.std())\n",
    "class Point:\n    def __init__(self, x: float, y: float) -> None:\n        self.x, self.y = x, y\n\n"
    "    def __repr__(self):\n        return f'Point({self.x!r}, {self.y!r})'\n",
    "for i in range(3):\n\tprint(i)  # tab-indented\n",
    "#include <stdio.h>\n\nint main(void)\n{\n    printf(\"hello, %s\\n\", \"world\");\n    return 0;\n}\n",
    "static inline uint32_t rotl(uint32_t x, int k) { return (x << k) | (x >> (32 - k)); }",
    "for (size_t i = 0; i < n; i++) {\n        sum += a[i] * b[i];\n}\n",
    "if (x != y && (p->next == NULL || *q >= 0x7f)) { return -1; }",
    "SELECT id, name FROM users WHERE age >= 18 ORDER BY name DESC LIMIT 10;",
    "{\"key\": [1, 2, 3], \"nested\": {\"a\": null, \"b\": true}}",
    "<div class=\"main\"><p>Hello &amp; welcome</p></div>",
    "$ ls -la | grep '.py$' | wc -l\n",
    "x = [i**2 for i in range(10) if i % 2 == 0]",
    "        \n    \n",
    "def f():\n    pass\n\n\n\ndef g():\n    pass",
]

LATEX = [
    "\\frac{a}{b} + \\sqrt{x^2 + y^2} = \\int_0^1 f(t)\\,dt",
    "The final answer is $\\boxed{\\frac{3}{4}}$.",
    "Therefore, \\(x = \\boxed{-2}\\) or \\(x = \\boxed{5}\\).",
    "\\begin{align}\n  a &= b + c \\\\\n  d &= e - f\n\\end{align}",
    "$$\\sum_{k=1}^{n} k = \\frac{n(n+1)}{2}$$",
    "Let $\\alpha, \\beta \\in \\mathbb{R}$ with $\\alpha < \\beta$; then $\\lim_{n\\to\\infty} a_n = 0$.",
    "\\boxed{\\text{(A)}}",
    "Area = \u03c0r\u00b2 \u2248 3.14 \u00d7 r\u00b2; \u2200x \u2203y: x \u2264 y \u2227 y \u2260 0 \u2192 \u221e",
    "\u222b\u2080\u00b9 x\u00b2 dx = \u2153",
]

CJK = [
    "\u4f60\u597d\uff0c\u4e16\u754c\uff01\u4eca\u5929\u5929\u6c14\u5f88\u597d\u3002",
    "\u8fd9\u662f\u4e00\u4e2a\u5173\u4e8e\u5927\u578b\u8bed\u8a00\u6a21\u578b\u7684\u6d4b\u8bd5\u53e5\u5b50\uff0c"
    "\u5305\u542b\u6570\u5b57123\u548c\u82f1\u6587English\u3002",
    "\u6570\u5b66\u95ee\u9898\uff1a\u5df2\u77e5 x + 2 = 5\uff0c\u6c42 x \u7684\u503c\u3002\u7b54\u6848\u662f \\boxed{3}\u3002",
    "\u3053\u3093\u306b\u3061\u306f\u3001\u4e16\u754c\u3002\u30ab\u30bf\u30ab\u30ca\u3068\u3072\u3089\u304c\u306a\u3002",
    "\u304c\u304e\u3050\u3052\u3054 vs \u304b\u3099\u304d\u3099 (decomposed voiced marks)",
    "\ud55c\uad6d\uc5b4 \ubb38\uc7a5\uc785\ub2c8\ub2e4. \uc548\ub155\ud558\uc138\uc694!",
    "\u1100\u1161\u11a8 (conjoining jamo that NFC composes)",
    "\u5168\u89d2\uff21\uff22\uff23\uff11\uff12\uff13\u3000\u534a\u89d2ABC123",
    "\u3010\u62ec\u5f27\u3011\u300c\u5f15\u7528\u300d\u300e\u4e8c\u91cd\u300f\u2026\u2026",
    "\U00020000\U0002a6d6 (CJK extension B)",
]

EMOJI = [
    "I love pizza \U0001f355 and tacos \U0001f32e!",
    "Family: \U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466 and couple \U0001f469\u200d\u2764\ufe0f\u200d\U0001f468",
    "Skin tones: \U0001f44d\U0001f3fb \U0001f44d\U0001f3fc \U0001f44d\U0001f3fd \U0001f44d\U0001f3fe \U0001f44d\U0001f3ff",
    "Flags: \U0001f1fa\U0001f1f8 \U0001f1ef\U0001f1f5 \U0001f1e9\U0001f1ea and a rainbow flag \U0001f3f3\ufe0f\u200d\U0001f308",
    "Keycaps: 1\ufe0f\u20e3 #\ufe0f\u20e3 *\ufe0f\u20e3",
    "\U0001f600\U0001f603\U0001f604\U0001f601\U0001f606\U0001f605\U0001f602\U0001f923",
    "Text with \u2764 and \u2764\ufe0f and \u263a\ufe0e.",
    "\U0001f9d1\U0001f3fd\u200d\U0001f4bb coding at 3am \u2615",
]

SCRIPTS = [
    "\u0645\u0631\u062d\u0628\u0627 \u0628\u0627\u0644\u0639\u0627\u0644\u0645! \u0647\u0630\u0627 \u0646\u0635 \u0639\u0631\u0628\u064a.",
    "\u0627\u0644\u0639\u064e\u0631\u064e\u0628\u0650\u064a\u064e\u0651\u0629 \u0645\u0639 \u0627\u0644\u062a\u0634\u0643\u064a\u0644",
    "\u05e9\u05dc\u05d5\u05dd \u05e2\u05d5\u05dc\u05dd! \u05d6\u05d4\u05d5 \u05d8\u05e7\u05e1\u05d8 \u05d1\u05e2\u05d1\u05e8\u05d9\u05ea.",
    "Mixed direction: abc \u05d0\u05d1\u05d2 123 \u0627\u0628\u062a def",
    "\u0928\u092e\u0938\u094d\u0924\u0947 \u0926\u0941\u0928\u093f\u092f\u093e! \u092f\u0939 \u0939\u093f\u0902\u0926\u0940 \u0939\u0948\u0964",
    "\u0915\u094d\u0937\u0924\u094d\u0930\u093f\u092f \u0936\u094d\u0930\u0940 \u0926\u094d\u0935\u093e\u0930\u093e \u0967\u0968\u0969",
    "\u041f\u0440\u0438\u0432\u0435\u0442, \u043c\u0438\u0440! \u0401\u0436\u0438\u043a \u0438 \u0439\u043e\u0433\u0443\u0440\u0442.",
    "\u0393\u03b5\u03b9\u03ac \u03c3\u03bf\u03c5 \u03ba\u03cc\u03c3\u03bc\u03b5! \u0391\u03b8\u03ae\u03bd\u03b1",
    "\u0e2a\u0e27\u0e31\u0e2a\u0e14\u0e35\u0e04\u0e23\u0e31\u0e1a \u0e20\u0e32\u0e29\u0e32\u0e44\u0e17\u0e22",
    "\u10d2\u10d0\u10db\u10d0\u10e0\u10ef\u10dd\u10d1\u10d0 \u0540\u0561\u0575\u0565\u0580\u0565\u0576",
    "Stra\u00dfe, na\u00efve, fa\u00e7ade, \u00e9l\u00e8ve, \u00e5ngstr\u00f6m, \u0141\u00f3d\u017a, \u010ce\u0161tina",
    "Long s: \u017fs \u017fS and Kelvin \u212a with 'S and '\u017f",
    "Digits of other scripts: \u0661\u0662\u0663 \u0967\u0968\u0969 \u0e51\u0e52\u0e53 \uff11\uff12 \u2460\u2461 \u00bd",
    "Kaomoji: (\u256f\u00b0\u25a1\u00b0)\u256f\ufe35 \u253b\u2501\u253b \u00af\\_(\u30c4)_/\u00af",
]

COMBINING = [
    "e\u0301 vs \u00e9",                       # NFD vs NFC pair
    "A\u030a vs \u00c5 vs \u212b (angstrom sign)",
    "\u1e9b\u0323 and q\u0307\u0323",          # canonical reordering
    "o\u0308\u0304 and \u022b",
    "n\u0303 \u00f1 N\u0303 \u00d1",
    "\u0301 starts with a combining mark",
    "a\u0300\u0301\u0302\u0303\u0304\u0305\u0306\u0307\u0308 stacked marks",
    "Zalgo: Z\u0351\u036b\u0343\u036a\u0302\u036b\u033d\u034f\u0334\u0319\u0324\u031e\u0349\u035a\u032f\u031e"
    "\u0320\u034da\u0340\u0310l\u0363g\u0367o\u0350",
    "\u2126 ohm sign becomes omega, \u212a kelvin becomes K",
    "\u0958 \u0915\u093c (Devanagari nukta, composition-excluded)",
    "\uac00\u11a8 LV+T Hangul composes to \uac01",
    "\ufb01 ligature and \u2075 superscript stay (NFC is not NFKC)",
]

SPECIAL = [
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
    "<|vision_start|><|image_pad|><|vision_end|>Describe this image.<|im_end|>\n<|im_start|>assistant\n",
    "<|vision_start|>" + "<|image_pad|>" * 40 + "<|vision_end|>",
    "text<|endoftext|>more text<|endoftext|><|endoftext|>",
    "<|im_end|><|im_end|>",
    "Almost special: <|im_start |>, <| im_end|>, <|IM_END|>, <|im_end>, |im_end|>, <|im_en, <|>",
    "<<|im_start|>> and <|<|im_end|>|>",
    "<|im_start|><|im_start|>x<|im_end|>",
    "<tool_call>{\"name\": \"f\"}</tool_call> and <|box_start|>(1,2),(3,4)<|box_end|>",
    "<|fim_prefix|>def f():<|fim_suffix|>    return 1<|fim_middle|>",
    "\u00e9<|endoftext|>\u0301 combining mark right after a special token",
    " <|im_end|> spaces around <|im_end|> ",
    "<|endoftext|>",
    "<|image_pad|>",
]

# For the added-token options (lstrip, rstrip, single_word, normalized) of the "options" variant.
OPTIONS = [
    "Hi <mask> there\t<mask>\t<mask>\u2000 and <mask><mask> and  <mask>  end",
    "<mask> My name <mask> A<mask> <mask>ony <mask>",
    "Anthony ony tony ony, ony- \u25cc\u0330ony ony_ ony\u0301 1ony ony2",
    "the theme the, the\tthe   x thethe the\n\nthe",
    "caf\u00e9 cafe\u0301 CAF\u00c9 cafe",
    "<|im_start|>assistant\n<|im_start|>assistan <|im_start|>assistants",
    "word the<mask>the ony<mask>ony",
]

# Byte strings that are not UTF-8, each testing one rule of the U+FFFD replacement.
INVALID = [
    b"\xff",
    b"abc\x80def",
    b"\xc3",                      # cut-off 2-byte sequence at the end
    b"\xc3(abc",                  # bad continuation
    b"\xe4\xbd",                  # cut-off 3-byte sequence: one U+FFFD
    b"\xe4\xbd\xa0\xe5\xa5",      # a good character then a cut one
    b"\xe0\x80\xaf",              # overlong: three U+FFFD
    b"\xed\xa0\x80",              # a surrogate: three U+FFFD
    b"\xf0\x9f\x98",              # cut-off emoji: one U+FFFD
    b"\xf4\x90\x80\x80",          # past U+10FFFF
    b"\xf8\x88\x80\x80\x80",      # a 5-byte form
    b"\xc0\xaf \xc1\xbf",         # overlong 2-byte forms
    b"\x80\x80\x80 continuation bytes alone",
    b"mixed \xf0\x9f\x98\x80 good and \xf0\x9f bad \xe2\x82 and \xe2\x82\xac good",
    b"\xfe\xff\xfe\xff BOM-like",
    b"<|im_end|>\xff<|im_start|>",
    b"\xe2\x80",
    b"\xef\xbb\xbfBOM then text",
]


def generated(rng, n):
    """Mixtures of fragments from every category, deterministic."""
    pool = PROSE + CODE + LATEX + CJK + EMOJI + SCRIPTS + COMBINING + SPECIAL
    seps = [" ", "", "\n", "  ", "\t", "\r\n", " \n ", "   \n\n"]
    out = []
    for _ in range(n):
        k = rng.randint(2, 4)
        parts = []
        for _ in range(k):
            s = rng.choice(pool)
            if len(s) > 60:
                a = rng.randrange(0, len(s) - 40)
                s = s[a:a + rng.randint(10, 60)]
            parts.append(s)
        out.append(rng.choice(seps).join(parts) + rng.choice(["", "", " ", "\n", "  "]))
    return out


def random_unicode(rng, n):
    """Short strings of random code points from many blocks, with whitespace and combining marks."""
    blocks = [(0x20, 0x7f), (0xa0, 0x250), (0x300, 0x370), (0x370, 0x530), (0x590, 0x700), (0x900, 0x980),
              (0xe00, 0xe80), (0x1100, 0x1200), (0x2000, 0x2070), (0x2100, 0x2400), (0x3000, 0x3100),
              (0x4e00, 0x4f00), (0xac00, 0xad00), (0xfe00, 0xfe10), (0xff00, 0xfff0), (0x1f300, 0x1f700),
              (0x1d400, 0x1d800)]
    out = []
    for _ in range(n):
        chars = []
        for _ in range(rng.randint(1, 24)):
            a, b = rng.choice(blocks)
            cp = rng.randrange(a, b)
            if unicodedata.category(chr(cp)) in ("Cs", "Cn", "Co"):
                cp = 0x41
            chars.append(chr(cp))
        out.append("".join(chars))
    return out


def corpus():
    rng = random.Random(20240517)
    samples = []
    for group, texts in [("prose", PROSE), ("code", CODE), ("latex", LATEX), ("cjk", CJK), ("emoji", EMOJI),
                         ("scripts", SCRIPTS), ("combining", COMBINING), ("special", SPECIAL),
                         ("options", OPTIONS)]:
        for i, t in enumerate(texts):
            samples.append({"name": f"{group}{i}", "text": t})
    for i, b in enumerate(INVALID):
        samples.append({"name": f"invalid{i}", "hex": b.hex(), "clean": b.decode("utf-8", errors="replace")})
    # Whitespace runs of every length and mix (trailing ones included) and long digit runs.
    for i, ws in enumerate([" " * 7, "\t" * 5, " \t" * 4, "\n" * 6, "\r\n" * 3, " \n" * 3, "\u3000" * 3, "\u00a0 " * 3]):
        samples.append({"name": f"ws{i}", "text": f"word{ws}next{ws}"})
        samples.append({"name": f"wsonly{i}", "text": ws})
    samples.append({"name": "digits", "text": "".join(str(rng.randrange(10)) for _ in range(200))})
    samples.append({"name": "longword", "text": "a" * 300 + " " + "ab" * 150 + " " + "\u00e9" * 100})
    samples.append({"name": "nul", "text": "before\x00after \x00\x01\x02 controls \x7f\x1b[0m"})
    for i, t in enumerate(generated(rng, 150)):
        samples.append({"name": f"mix{i}", "text": t})
    for i, t in enumerate(random_unicode(rng, 60)):
        samples.append({"name": f"rand{i}", "text": t})
    return samples


def sample_text(s):
    return s["text"] if "text" in s else bytes.fromhex(s["hex"]).decode("utf-8", errors="replace")


# ---- expectations ----

def bytes_to_unicode():
    """GPT-2's byte -> character map: printable Latin-1 bytes stand for themselves, the other 68
    are shown as U+0100, U+0101, ... in byte order."""
    shown = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    out, n = {}, 0
    for b in range(256):
        if b in shown:
            out[b] = chr(b)
        else:
            out[b] = chr(256 + n)
            n += 1
    return out


def byte_token_ids(tok):
    """Ids of the one-byte tokens, for building broken UTF-8 on purpose."""
    vocab = tok.get_vocab()
    return {b: vocab[c] for b, c in bytes_to_unicode().items() if c in vocab}


def decode_cases(tok, rng, n_random):
    cases = []
    byte_ids = byte_token_ids(tok)
    pieces = ["\u4f60\u597d", "\U0001f600", "\u00e9", "a\u20acb", "\u0915\u094d"]
    for p in pieces:
        raw = p.encode("utf-8")
        for cut in range(1, len(raw)):
            for ids in ([byte_ids[b] for b in raw[:cut] if b in byte_ids],
                        [byte_ids[b] for b in raw[cut:] if b in byte_ids],
                        [byte_ids[b] for b in raw[:cut] + b"x" + raw[cut:] if b in byte_ids]):
                cases.append({"ids": ids, "skip_special": False})
    size = tok.get_vocab_size(with_added_tokens=True)
    specials = [i for i in range(size) if tok.id_to_token(i) is not None and i >= size - 40]
    for _ in range(n_random):
        ids = [rng.randrange(size) for _ in range(rng.randint(1, 12))]
        ids = [i for i in ids if tok.id_to_token(i) is not None]
        if rng.random() < 0.5 and specials:
            ids.insert(rng.randrange(len(ids) + 1), rng.choice(specials))
        cases.append({"ids": ids, "skip_special": rng.random() < 0.5})
    for c in cases:
        c["text"] = tok.decode(c["ids"], skip_special_tokens=c["skip_special"])
    return cases


def expectations(tok, samples, indices, tokenizer_path, n_random_decode):
    enc = [tok.encode(sample_text(samples[i])).ids for i in indices]
    decoded, decoded_skip = [], []
    for i, ids in zip(indices, enc):
        d = tok.decode(ids, skip_special_tokens=False)
        ds = tok.decode(ids, skip_special_tokens=True)
        decoded.append(None if d == sample_text(samples[i]) else d)
        decoded_skip.append(None if ds == d else ds)
    return {"tokenizer": tokenizer_path, "tokenizers_version": tokenizers.__version__, "samples": indices,
            "encode": enc, "decoded": decoded, "decoded_skip": decoded_skip,
            "decode_cases": decode_cases(tok, random.Random(7), n_random_decode)}


# ---- the small tokenizers ----

def train_small(samples):
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, show_progress=False,
                                  special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    train = [s["text"] for s in samples if "text" in s and s["name"].startswith(("prose", "code", "latex"))]
    tok.train_from_iterator(train, trainer)
    tok.add_special_tokens(["<|image_pad|>", "<|vision_start|>", "<|vision_end|>"])
    return tok


def variant(base, edit):
    j = copy.deepcopy(base)
    edit(j)
    return j


def legacy_merges(j):
    j["model"]["merges"] = [" ".join(m) for m in j["model"]["merges"]]
    j["normalizer"] = None


def qwen_layout(j):
    j["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": QWEN_REGEX}, "behavior": "Isolated", "invert": False},
        {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False}]}


def literal_split(j):
    j["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"String": ", "}, "behavior": "Isolated", "invert": False},
        {"type": "Split", "pattern": {"Regex": "\\s+|\\d"}, "behavior": "Isolated", "invert": False},
        {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True}]}


def prefix_space(j):
    j["pre_tokenizer"]["add_prefix_space"] = True


def options(j):
    j["model"]["ignore_merges"] = True
    next_id = max(t["id"] for t in j["added_tokens"]) + 1
    extra = [("<mask>", dict(lstrip=True, rstrip=True, single_word=False, normalized=False, special=True)),
             ("ony", dict(lstrip=False, rstrip=False, single_word=True, normalized=True, special=False)),
             ("the", dict(lstrip=False, rstrip=True, single_word=True, normalized=False, special=False)),
             ("cafe\u0301", dict(lstrip=False, rstrip=False, single_word=False, normalized=True, special=False)),
             ("<|im_start|>assistant", dict(lstrip=False, rstrip=False, single_word=False, normalized=False,
                                            special=True))]
    for content, flags in extra:
        j["added_tokens"].append(dict(id=next_id, content=content, **flags))
        next_id += 1


def drop_bytes(j, unk, fuse):
    """Remove the one-byte tokens of bytes 0x80..0x8F (and every token and merge built on them),
    then renumber: the library gives added tokens ids after len(vocab), so ids must stay dense."""
    b2u = bytes_to_unicode()
    gone = {b2u[b] for b in range(0x80, 0x90)}
    old = j["model"]["vocab"]
    kept = [t for t in sorted(old, key=old.get) if not any(c in gone for c in t)]
    if unk:
        kept.append("<unk>")
        j["model"]["unk_token"] = "<unk>"
    j["model"]["vocab"] = {t: i for i, t in enumerate(kept)}
    j["model"]["merges"] = [m for m in j["model"]["merges"] if m[0] in j["model"]["vocab"] and m[1] in j["model"]["vocab"]]
    extra = 0
    for t in j["added_tokens"]:
        if t["content"] in j["model"]["vocab"]:
            t["id"] = j["model"]["vocab"][t["content"]]
        else:
            t["id"] = len(kept) + extra
            extra += 1
    j["model"]["fuse_unk"] = fuse


VARIANTS = {
    "tokenizer": lambda j: None,
    "legacy_merges": legacy_merges,
    "qwen_layout": qwen_layout,
    "prefix_space": prefix_space,
    "literal_split": literal_split,
    "options": options,
    "unk_fused": lambda j: drop_bytes(j, True, True),
    "unk_unfused": lambda j: drop_bytes(j, True, False),
    "no_unk": lambda j: drop_bytes(j, False, False),
}


def check_nfc_inert():
    """src/tokenizer/pretok.c skips normalization for text made only of these code points."""
    seconds = set()
    for cp in range(0x110000):
        d = unicodedata.decomposition(chr(cp)) if not 0xD800 <= cp < 0xE000 else ""
        if d and not d.startswith("<") and len(d.split()) == 2:
            seconds.add(int(d.split()[1], 16))
    for a, b in [(0, 0x300), (0x3400, 0x4DC0), (0x4E00, 0xA000), (0xAC00, 0xD7A4)]:
        for cp in range(a, b):
            c = chr(cp)
            assert unicodedata.is_normalized("NFC", c) and unicodedata.combining(c) == 0 and cp not in seconds, hex(cp)


def write_json(path, obj):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False, separators=(",", ":"))
        f.write("\n")


def main():
    check_nfc_inert()
    samples = corpus()
    os.makedirs(os.path.join(OUT, "small"), exist_ok=True)
    write_json(os.path.join(OUT, "corpus.json"), {"samples": samples})

    if os.path.exists(QWEN):
        qwen = Tokenizer.from_file(QWEN)
        exp = expectations(qwen, samples, list(range(len(samples))), "../shared/assets/qwen-tokenizer/tokenizer.json",
                           60)
        write_json(os.path.join(OUT, "qwen_expected.json"), exp)
    else:
        print(f"warning: {QWEN} not found; qwen_expected.json left as it was", file=sys.stderr)

    base = json.loads(train_small(samples).to_str())
    subset_rng = random.Random(99)
    for name, edit in VARIANTS.items():
        j = variant(base, edit)
        path = os.path.join(OUT, "small", name + ".json")
        with open(path, "w", encoding="utf-8") as f:
            json.dump(j, f, ensure_ascii=False, indent=1)
            f.write("\n")
        tok = Tokenizer.from_file(path)
        # The trained tokenizer sees the hand-written samples and an eighth of the generated ones;
        # the variants a deterministic subset (the fixtures must stay small).
        if name == "tokenizer":
            idx = [i for i, s in enumerate(samples) if not s["name"].startswith(("mix", "rand")) or i % 8 == 0]
        else:
            idx = sorted(subset_rng.sample(range(len(samples)), 16))
        if name == "options":
            idx = sorted(set(idx) | {i for i, s in enumerate(samples) if s["name"].startswith("options")})
        exp = expectations(tok, samples, idx, "small/" + name + ".json", 30 if name == "tokenizer" else 8)
        write_json(os.path.join(OUT, "small", name + ".expected.json"), exp)
    total = sum(os.path.getsize(os.path.join(dp, f)) for dp, _, fs in os.walk(OUT) for f in fs)
    print(f"wrote {len(samples)} samples, {len(VARIANTS)} small tokenizers; fixtures total {total} bytes")


if __name__ == "__main__":
    main()
