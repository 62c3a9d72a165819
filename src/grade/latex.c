/* LaTeX to text, the subset of pylatexenc 2.11's LatexNodes2Text that answers use (mathruler's
 * _parse_latex runs it). Facts reproduced, learnt by running pylatexenc:
 *   - \frac{a}{b} prints "a/b" WITHOUT parentheses (so \frac{1+2}{3} is "1+2/3"); with missing
 *     arguments it prints the literal "%s/%s" followed by what it got;
 *   - \sqrt[n]{x} prints "√(x)" (the index is dropped); \sqrt with no argument raises;
 *   - unknown macros print nothing, but a following {group} is ordinary text, so \overline{AB} is
 *     "AB"; \mbox{..} and \hspace{..} swallow their argument;
 *   - a letter macro eats the white space after it ("\sin x" -> "sinx"), a symbol macro does not;
 *   - "~" is U+00A0, "--" an en dash, "---" an em dash, "&" three spaces, "\\" a newline.
 * Anything else (environments, \[..\] display indentation, \mathbf's Unicode bold) is out of scope:
 * docs/grading.md. */
#include <string.h>

#include "grade_internal.h"
#include "gstr.h"

#define LATEX_MAX_DEPTH 64

struct latex_sym {
    const char *name, *text;
};

/* Macros without arguments and what pylatexenc prints for them. */
static const struct latex_sym latex_syms[] = {
    {"alpha", "α"}, {"beta", "β"}, {"gamma", "γ"}, {"delta", "δ"}, {"epsilon", "ϵ"}, {"varepsilon", "ε"},
    {"zeta", "ζ"}, {"eta", "η"}, {"theta", "θ"}, {"vartheta", "ϑ"}, {"iota", "ι"}, {"kappa", "κ"},
    {"lambda", "λ"}, {"mu", "μ"}, {"nu", "ν"}, {"xi", "ξ"}, {"omicron", "ο"}, {"pi", "π"}, {"varpi", "ϖ"},
    {"rho", "ρ"}, {"sigma", "σ"}, {"tau", "τ"}, {"upsilon", "υ"}, {"phi", "ϕ"}, {"varphi", "φ"}, {"chi", "χ"},
    {"psi", "ψ"}, {"omega", "ω"}, {"Gamma", "Γ"}, {"Delta", "Δ"}, {"Theta", "Θ"}, {"Lambda", "Λ"},
    {"Xi", "Ξ"}, {"Pi", "Π"}, {"Sigma", "Σ"}, {"Upsilon", "Υ"}, {"Phi", "Φ"}, {"Psi", "Ψ"}, {"Omega", "Ω"},
    {"infty", "∞"}, {"cup", "∪"}, {"cap", "∩"}, {"cdot", "·"}, {"times", "×"}, {"div", "÷"}, {"circ", "∘"},
    {"angle", "∠"}, {"measuredangle", "∡"}, {"pm", "±"}, {"mp", "∓"}, {"le", "≤"}, {"leq", "≤"},
    {"ge", "≥"}, {"geq", "≥"}, {"neq", "≠"}, {"approx", "≈"}, {"cdots", "⋯"}, {"ldots", "…"},
    {"dots", "…"}, {"in", "∈"}, {"notin", "∉"}, {"perp", "⊥"}, {"parallel", "∥"}, {"mid", "|"},
    {"vert", "|"}, {"lvert", "|"}, {"rvert", "|"}, {"sim", "∼"}, {"sin", "sin"}, {"cos", "cos"},
    {"tan", "tan"}, {"log", "log"}, {"ln", "ln"}, {"exp", "exp"}, {"lim", "lim"}, {"max", "max"},
    {"min", "min"}, {"arcsin", "arcsin"}, {"arccos", "arccos"}, {"arctan", "arctan"}, {"sinh", "sinh"},
    {"cosh", "cosh"}, {"tanh", "tanh"}, {"to", "→"}, {"rightarrow", "→"}, {"Rightarrow", "⇒"},
    {"leftarrow", "←"}, {"cong", "≅"}, {"equiv", "≡"}, {"propto", "∝"}, {"square", "□"}, {"prime", "'"},
    {"ell", "ℓ"}, {"hbar", "ħ"}, {"setminus", "∖"}, {"emptyset", "∅"}, {"varnothing", "∅"},
    {"subset", "⊂"}, {"subseteq", "⊆"}, {"forall", "∀"}, {"exists", "∃"}, {"wedge", "∧"}, {"vee", "∨"},
    {"star", "⋆"}, {"ast", "∗"}, {"bullet", "∙"}, {"dagger", "†"}, {"partial", "∂"}, {"nabla", "∇"},
    {"leqslant", "⩽"}, {"geqslant", "⩾"}, {"quad", "  "}, {"qquad", "    "}, {"textdegree", "°"},
    {"backslash", "\\"}, {"textbackslash", "\\"},
};

/* Accents: the argument followed by a combining character. */
static const struct latex_sym latex_accents[] = {
    {"hat", "\xcc\x82"}, {"bar", "\xcc\x85"}, {"vec", "\xe2\x83\x97"}, {"tilde", "\xcc\x83"},
    {"dot", "\xcc\x87"}, {"ddot", "\xcc\x88"},
};

struct latex_ctx {
    const char *s;
    size_t i, n;
    int depth;
    int fail; /* pylatexenc would have raised */
};

static void latex_nodes(struct latex_ctx *c, struct gbuf *out, int in_group);

static int is_letter(char ch) { return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z'); }

static void skip_space(struct latex_ctx *c)
{
    while (c->i < c->n && (c->s[c->i] == ' ' || c->s[c->i] == '\t' || c->s[c->i] == '\n' || c->s[c->i] == '\r'))
        c->i++;
}

/* One macro argument: a {group}, a macro, or one character. Returns 0 when there is none. */
static int latex_arg(struct latex_ctx *c, struct gbuf *out)
{
    skip_space(c);
    if (c->i >= c->n || c->s[c->i] == '}') return 0;
    if (c->s[c->i] == '{') {
        c->i++;
        latex_nodes(c, out, 1);
        return 1;
    }
    if (c->s[c->i] == '\\') {
        /* a macro as argument: print it by parsing a one-node list */
        struct latex_ctx sub = *c;
        size_t j = c->i + 1;
        if (j < c->n && is_letter(c->s[j]))
            while (j < c->n && is_letter(c->s[j])) j++;
        else if (j < c->n)
            j += gs_cp_len(c->s + j);
        sub.n = j;
        latex_nodes(&sub, out, 0);
        c->i = sub.i > j ? sub.i : j;
        c->fail |= sub.fail;
        return 1;
    }
    size_t k = gs_cp_len(c->s + c->i);
    gbuf_put(out, c->s + c->i, k);
    c->i += k;
    return 1;
}

static void skip_optional(struct latex_ctx *c)
{
    skip_space(c);
    if (c->i < c->n && c->s[c->i] == '[') {
        const char *close = memchr(c->s + c->i, ']', c->n - c->i);
        c->i = close ? (size_t)(close - c->s) + 1 : c->n;
    }
}

static void latex_macro(struct latex_ctx *c, const char *name, size_t len, struct gbuf *out)
{
#define IS(lit) (len == sizeof(lit) - 1 && memcmp(name, lit, len) == 0)
    if (IS("frac") || IS("nicefrac") || IS("textfrac")) {
        struct gbuf a = {0}, b = {0};
        int na = latex_arg(c, &a);
        int nb = na && latex_arg(c, &b);
        if (na && nb) {
            gbuf_put(out, a.p, a.n);
            gbuf_putc(out, '/');
            gbuf_put(out, b.p, b.n);
        } else {
            gbuf_puts(out, "%s/%s");
            if (na) gbuf_put(out, a.p, a.n);
        }
        free(a.p);
        free(b.p);
        return;
    }
    if (IS("sqrt")) {
        skip_optional(c);
        struct gbuf a = {0};
        if (!latex_arg(c, &a)) c->fail = 1;
        gbuf_puts(out, "√(");
        if (a.n) gbuf_put(out, a.p, a.n);
        gbuf_putc(out, ')');
        free(a.p);
        return;
    }
    if (IS("mbox") || IS("hspace") || IS("vspace")) {
        struct gbuf a = {0};
        latex_arg(c, &a);
        free(a.p);
        if (IS("vspace")) gbuf_putc(out, '\n');
        return;
    }
    if (IS("mathbf")) { /* Unicode MATHEMATICAL BOLD letters and digits, as pylatexenc prints them */
        struct gbuf a = {0};
        latex_arg(c, &a);
        for (size_t k = 0; k < a.n; k++) {
            char ch = a.p[k];
            long cp = ch >= 'A' && ch <= 'Z' ? 0x1d400 + (ch - 'A')
                      : ch >= 'a' && ch <= 'z' ? 0x1d41a + (ch - 'a')
                      : ch >= '0' && ch <= '9' ? 0x1d7ce + (ch - '0') : -1;
            if (cp < 0) {
                gbuf_putc(out, ch);
                continue;
            }
            char enc[4] = {(char)(0xf0 | (cp >> 18)), (char)(0x80 | ((cp >> 12) & 0x3f)),
                           (char)(0x80 | ((cp >> 6) & 0x3f)), (char)(0x80 | (cp & 0x3f))};
            gbuf_put(out, enc, 4);
        }
        free(a.p);
        return;
    }
    for (size_t k = 0; k < sizeof latex_accents / sizeof latex_accents[0]; k++) {
        if (strlen(latex_accents[k].name) == len && !memcmp(latex_accents[k].name, name, len)) {
            if (latex_arg(c, out)) gbuf_puts(out, latex_accents[k].text);
            return;
        }
    }
    for (size_t k = 0; k < sizeof latex_syms / sizeof latex_syms[0]; k++) {
        if (strlen(latex_syms[k].name) == len && !memcmp(latex_syms[k].name, name, len)) {
            gbuf_puts(out, latex_syms[k].text);
            return;
        }
    }
    /* Unknown or argument-transparent macros (\text, \left, \mathrm, \boxed, ...) print nothing. */
#undef IS
}

static void latex_backslash(struct latex_ctx *c, struct gbuf *out)
{
    c->i++; /* the backslash */
    if (c->i >= c->n) return;
    char ch = c->s[c->i];
    if (is_letter(ch)) {
        size_t a = c->i;
        while (c->i < c->n && is_letter(c->s[c->i])) c->i++;
        size_t len = c->i - a;
        skip_space(c);
        latex_macro(c, c->s + a, len, out);
        return;
    }
    size_t k = gs_cp_len(c->s + c->i);
    c->i += k;
    switch (ch) {
    case ',': case ';': case ':': case ' ': gbuf_putc(out, ' '); break;
    case '\\': gbuf_putc(out, '\n'); break;
    case '{': case '}': case '%': case '$': case '&': case '#': case '_': gbuf_putc(out, ch); break;
    default: break; /* \! \( \) \[ \] and the rest print nothing */
    }
}

static void latex_nodes(struct latex_ctx *c, struct gbuf *out, int in_group)
{
    if (++c->depth > LATEX_MAX_DEPTH) {
        c->fail = 1;
        c->i = c->n;
    }
    while (c->i < c->n) {
        char ch = c->s[c->i];
        if (ch == '}') {
            c->i++;
            if (in_group) break;
            continue; /* a stray closing brace prints nothing */
        }
        if (ch == '{') {
            c->i++;
            latex_nodes(c, out, 1);
        } else if (ch == '\\') {
            latex_backslash(c, out);
        } else if (ch == '~') {
            gbuf_puts(out, "\xc2\xa0");
            c->i++;
        } else if (ch == '&') {
            gbuf_puts(out, "   ");
            c->i++;
        } else if (ch == '-' && c->i + 2 < c->n && c->s[c->i + 1] == '-' && c->s[c->i + 2] == '-') {
            gbuf_puts(out, "—");
            c->i += 3;
        } else if (ch == '-' && c->i + 1 < c->n && c->s[c->i + 1] == '-') {
            gbuf_puts(out, "–");
            c->i += 2;
        } else if (ch == '`' && c->i + 1 < c->n && c->s[c->i + 1] == '`') {
            gbuf_puts(out, "“");
            c->i += 2;
        } else if (ch == '\'' && c->i + 1 < c->n && c->s[c->i + 1] == '\'') {
            gbuf_puts(out, "”");
            c->i += 2;
        } else if (ch == '%') { /* a comment runs to the end of the line */
            while (c->i < c->n && c->s[c->i] != '\n') c->i++;
            if (c->i < c->n) c->i++;
        } else if (ch == '$') {
            c->i++;
        } else {
            gbuf_putc(out, ch);
            c->i++;
        }
    }
    c->depth--;
}

char *grade_latex_to_text(const char *s, int *fail)
{
    struct latex_ctx c = {.s = s, .n = strlen(s)};
    struct gbuf out = {0};
    latex_nodes(&c, &out, 0);
    *fail = c.fail;
    return gbuf_take(&out);
}
