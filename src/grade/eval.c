/* The sympy step of grade_answer without sympy: an exact evaluator for what answers contain.
 *
 * mathruler parses "(gt)-(given)" with sympy (implicit multiplication, ^ as **) and calls it equal
 * when simplify() gives 0. Here a value is a + b*pi with a and b either exact rationals (64-bit,
 * overflow checked) or binary floats: sympy turns a decimal literal into a 53-bit Float, and
 * arithmetic that touches a Float is rounded to 53 bits, which is IEEE double arithmetic. So
 * "0.1" equals "1/10" but "0.1+0.2" does not equal "0.3", exactly as in sympy. Anything beyond
 * (symbols, pi^2, sqrt of a non-square, functions, overflow) is "cannot decide", answered as 0. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "grade_internal.h"
#include "gstr.h"

#define EVAL_MAX_DEPTH 200 /* CPython's parser refuses deeper parenthesis nesting */
#define EXACT_DOUBLE_MAX ((int64_t)1 << 53)

struct num {
    int fl;       /* 1: a Float (d); 0: the rational p/q, q > 0, reduced */
    int64_t p, q;
    double d;
};

struct val {
    struct num a, b; /* a + b*pi */
};

struct parser {
    const char *s;
    size_t i;
    int depth;
    int seed;      /* which assignment of values to symbols (see symbol_value) */
    int used_symbols;
};

static struct num num_int(int64_t v) { return (struct num){.p = v, .q = 1}; }
static struct num num_float(double d) { return (struct num){.fl = 1, .d = d}; }
static int num_zero(struct num x) { return x.fl ? x.d == 0.0 : x.p == 0; }

/* p/q reduced with q > 0; -1 on overflow or q == 0. */
static int num_make(__int128 p, __int128 q, struct num *out)
{
    if (q == 0) return -1;
    if (q < 0) {
        p = -p;
        q = -q;
    }
    __int128 a = p < 0 ? -p : p, b = q;
    while (b) {
        __int128 t = a % b;
        a = b;
        b = t;
    }
    if (a > 1) {
        p /= a;
        q /= a;
    }
    if (p > INT64_MAX || p < -INT64_MAX || q > INT64_MAX) return -1;
    *out = (struct num){.p = (int64_t)p, .q = (int64_t)q};
    return 0;
}

/* The Float sympy would make of an exact rational: correctly rounded, which a double division
 * gives when both parts are exact doubles. */
static int num_double(struct num x, double *d)
{
    if (x.fl) {
        *d = x.d;
        return 0;
    }
    if (x.p > EXACT_DOUBLE_MAX || x.p < -EXACT_DOUBLE_MAX || x.q > EXACT_DOUBLE_MAX) return -1;
    *d = (double)x.p / (double)x.q;
    return 0;
}

enum { OP_ADD, OP_SUB, OP_MUL, OP_DIV };

static int num_op(int op, struct num x, struct num y, struct num *out)
{
    if (x.fl || y.fl) {
        double a, b, r = 0;
        if (num_double(x, &a) || num_double(y, &b)) return -1;
        switch (op) {
        case OP_ADD: r = a + b; break;
        case OP_SUB: r = a - b; break;
        case OP_MUL: r = a * b; break;
        default:
            if (b == 0) return -1;
            r = a / b;
        }
        if (!isfinite(r)) return -1;
        *out = num_float(r);
        return 0;
    }
    __int128 p1 = x.p, q1 = x.q, p2 = y.p, q2 = y.q;
    switch (op) {
    case OP_ADD: return num_make(p1 * q2 + p2 * q1, q1 * q2, out);
    case OP_SUB: return num_make(p1 * q2 - p2 * q1, q1 * q2, out);
    case OP_MUL: return num_make(p1 * p2, q1 * q2, out);
    default: return num_make(p1 * q2, q1 * p2, out);
    }
}

static int val_add(int op, struct val x, struct val y, struct val *out)
{
    if (num_op(op, x.a, y.a, &out->a) || num_op(op, x.b, y.b, &out->b)) return -1;
    return 0;
}

static int val_mul(struct val x, struct val y, struct val *out)
{
    if (!num_zero(x.b) && !num_zero(y.b)) return -1; /* pi^2: beyond this evaluator */
    struct num t1, t2;
    if (num_op(OP_MUL, x.a, y.a, &out->a)) return -1;
    if (num_op(OP_MUL, x.a, y.b, &t1) || num_op(OP_MUL, x.b, y.a, &t2)) return -1;
    return num_op(OP_ADD, t1, t2, &out->b);
}

static int val_div(struct val x, struct val y, struct val *out)
{
    if (num_zero(y.b)) {
        if (num_op(OP_DIV, x.a, y.a, &out->a) || num_op(OP_DIV, x.b, y.a, &out->b)) return -1;
        return 0;
    }
    if (num_zero(y.a) && num_zero(x.a)) { /* (b pi) / (d pi) */
        out->b = num_int(0);
        return num_op(OP_DIV, x.b, y.b, &out->a);
    }
    return -1;
}

static int val_pow(struct val x, struct val y, struct val *out)
{
    if (!num_zero(y.b) || y.a.fl || y.a.q != 1) return -1; /* only integer exponents */
    int64_t e = y.a.p;
    if (!num_zero(x.b)) {
        if (e == 1) {
            *out = x;
            return 0;
        }
        if (e != 0) return -1;
    }
    if (e < -64 || e > 64) return -1;
    if (x.a.fl) {
        double r = pow(x.a.d, (double)e);
        if (!isfinite(r)) return -1;
        *out = (struct val){num_float(r), num_int(0)};
        return 0;
    }
    struct num acc = num_int(1);
    for (int64_t k = 0; k < (e < 0 ? -e : e); k++)
        if (num_op(OP_MUL, acc, x.a, &acc)) return -1;
    if (e < 0 && num_op(OP_DIV, num_int(1), acc, &acc)) return -1;
    *out = (struct val){acc, num_int(0)};
    return 0;
}

static int isqrt_exact(int64_t v, int64_t *r)
{
    if (v < 0) return -1;
    int64_t s = (int64_t)sqrtl((long double)v);
    while (s > 0 && (__int128)s * s > v) s--;
    while ((__int128)(s + 1) * (s + 1) <= v) s++;
    if ((__int128)s * s != v) return -1;
    *r = s;
    return 0;
}

static int val_sqrt(struct val x, struct val *out)
{
    if (!num_zero(x.b)) return -1;
    if (x.a.fl) {
        if (x.a.d < 0) return -1;
        *out = (struct val){num_float(sqrt(x.a.d)), num_int(0)};
        return 0;
    }
    int64_t p, q;
    if (isqrt_exact(x.a.p, &p) || isqrt_exact(x.a.q, &q)) return -1; /* sqrt(2) stays symbolic in sympy */
    *out = (struct val){num_int(p), num_int(0)};
    return num_make(p, q, &out->a);
}

static int parse_sum(struct parser *ps, struct val *out);

/* A decimal literal as Python's tokenizer reads it; integers are exact, the rest 53-bit Floats. */
static int parse_number(struct parser *ps, struct val *out)
{
    const char *s = ps->s + ps->i, *p = s;
    int digits = 0, sig = 0, is_float = 0;
    while (*p >= '0' && *p <= '9') {
        if (sig || *p != '0') sig++;
        p++, digits++;
    }
    if (*p == '.') {
        is_float = 1;
        p++;
        while (*p >= '0' && *p <= '9') {
            if (sig || *p != '0') sig++;
            p++, digits++;
        }
    }
    if (digits == 0) return -1;
    if ((*p == 'e' || *p == 'E') && ((p[1] >= '0' && p[1] <= '9') ||
                                     ((p[1] == '+' || p[1] == '-') && p[2] >= '0' && p[2] <= '9'))) {
        is_float = 1;
        p += 2;
        while (*p >= '0' && *p <= '9') p++;
    }
    ps->i += (size_t)(p - s);
    if (is_float) {
        if (sig > 15) return -1; /* sympy keeps more precision for long literals */
        char tmp[64];
        if ((size_t)(p - s) >= sizeof tmp) return -1;
        memcpy(tmp, s, (size_t)(p - s));
        tmp[p - s] = '\0';
        double d = strtod(tmp, NULL);
        if (!isfinite(d)) return -1;
        *out = (struct val){num_float(d), num_int(0)};
        return 0;
    }
    int64_t v = 0;
    for (const char *q = s; q < p; q++) {
        if (v > (INT64_MAX - 9) / 10) return -1;
        v = v * 10 + (*q - '0');
    }
    *out = (struct val){num_int(v), num_int(0)};
    return 0;
}

/* Values for the letters: distinct odd primes over small denominators, different per seed. */
static struct num symbol_value(int seed, char letter)
{
    static const int64_t primes[] = {101, 103, 107, 109, 113, 127, 131, 137, 139, 149, 151, 157, 163,
                                     167, 173, 179, 181, 191, 193, 197, 199, 211, 223, 227, 229, 233};
    int k = letter - 'a';
    struct num v;
    if (seed == 0) num_make(primes[k], 7, &v);
    else num_make(primes[25 - k] * 3 + 1, 11, &v);
    return v;
}

static int is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }

static int parse_primary(struct parser *ps, struct val *out)
{
    const char *s = ps->s + ps->i;
    if (*s == '(') {
        if (++ps->depth > EVAL_MAX_DEPTH) return -1;
        ps->i++;
        if (parse_sum(ps, out)) return -1;
        if (ps->s[ps->i] != ')') return -1;
        ps->i++;
        ps->depth--;
        return 0;
    }
    if ((*s >= '0' && *s <= '9') || (*s == '.' && s[1] >= '0' && s[1] <= '9')) return parse_number(ps, out);
    if (is_alpha(*s)) {
        size_t n = 0;
        while (is_alpha(s[n]) || (s[n] >= '0' && s[n] <= '9')) n++;
        ps->i += n;
        if (n == 2 && !memcmp(s, "pi", 2)) {
            *out = (struct val){num_int(0), num_int(1)};
            return 0;
        }
        if (n == 4 && !memcmp(s, "sqrt", 4) && s[4] == '(') {
            struct val arg;
            if (parse_primary(ps, &arg)) return -1;
            return val_sqrt(arg, out);
        }
        /* sympy splits an unknown name into one symbol per letter (split_symbols). A sum that is
         * zero for two unrelated assignments of values to the letters is taken as identically
         * zero: polynomial identity testing in place of simplify(). Names with digits, and
         * names sympy knows as functions or constants (ln, re, im, oo), are not decided. */
        if ((n == 2 && (!memcmp(s, "ln", 2) || !memcmp(s, "re", 2) || !memcmp(s, "im", 2) || !memcmp(s, "oo", 2))))
            return -1;
        *out = (struct val){num_int(1), num_int(0)};
        for (size_t k = 0; k < n; k++) {
            struct val v = {num_int(0), num_int(0)};
            if (s[k] >= 'a' && s[k] <= 'z') {
                v.a = symbol_value(ps->seed, s[k]);
            } else if (s[k] >= '0' && s[k] <= '9') { /* "x2" splits into x*2 */
                int64_t d = 0;
                for (; k < n && s[k] >= '0' && s[k] <= '9' && d < INT64_MAX / 100; k++) d = d * 10 + (s[k] - '0');
                if (k < n && s[k] >= '0' && s[k] <= '9') return -1;
                k--;
                v.a = num_int(d);
            } else {
                return -1;
            }
            if (val_mul(*out, v, out)) return -1;
        }
        ps->used_symbols = 1;
        return 0;
    }
    return -1;
}

static int starts_primary(const char *s)
{
    return *s == '(' || (*s >= '0' && *s <= '9') || *s == '.' || is_alpha(*s);
}

static int parse_unary(struct parser *ps, struct val *out);

/* power := primary ('**' unary)?   (right-associative, binds tighter than unary minus) */
static int parse_power(struct parser *ps, struct val *out)
{
    if (parse_primary(ps, out)) return -1;
    if (ps->s[ps->i] == '*' && ps->s[ps->i + 1] == '*') {
        ps->i += 2;
        if (++ps->depth > EVAL_MAX_DEPTH) return -1;
        struct val e;
        if (parse_unary(ps, &e)) return -1;
        ps->depth--;
        return val_pow(*out, e, out);
    }
    return 0;
}

static int parse_unary(struct parser *ps, struct val *out)
{
    char c = ps->s[ps->i];
    if (c == '-' || c == '+') {
        ps->i++;
        if (++ps->depth > EVAL_MAX_DEPTH) return -1;
        if (parse_unary(ps, out)) return -1;
        ps->depth--;
        if (c == '-') {
            struct val zero = {num_int(0), num_int(0)};
            return val_add(OP_SUB, zero, *out, out);
        }
        return 0;
    }
    return parse_power(ps, out);
}

/* term := unary (('*' | '/' | juxtaposition) unary)*: sympy inserts '*' between adjacent operands. */
static int parse_term(struct parser *ps, struct val *out)
{
    if (parse_unary(ps, out)) return -1;
    for (;;) {
        const char *s = ps->s + ps->i;
        struct val rhs;
        if ((s[0] == '*' && s[1] != '*') || s[0] == '/') {
            if (s[0] == '/' && s[1] == '/') return -1; /* floor division */
            ps->i++;
            if (parse_unary(ps, &rhs)) return -1;
            if ((s[0] == '*' ? val_mul(*out, rhs, out) : val_div(*out, rhs, out))) return -1;
        } else if (starts_primary(s)) {
            if (parse_power(ps, &rhs) || val_mul(*out, rhs, out)) return -1;
        } else {
            return 0;
        }
    }
}

static int parse_sum(struct parser *ps, struct val *out)
{
    if (parse_term(ps, out)) return -1;
    while (ps->s[ps->i] == '+' || ps->s[ps->i] == '-') {
        int op = ps->s[ps->i] == '+' ? OP_ADD : OP_SUB;
        ps->i++;
        struct val rhs;
        if (parse_term(ps, &rhs) || val_add(op, *out, rhs, out)) return -1;
    }
    return 0;
}

/* grader.should_allow_eval: at most 2 distinct letters (after removing "sqrt" and "frac"), no
 * "^{" or "^(", no "^NN" exponent and no "^N^". */
static int allow_eval(const char *expr)
{
    char *t = gs_replace(gs_replace(gs_dup(expr), "sqrt", ""), "frac", "");
    int seen[128] = {0}, letters = 0;
    for (const unsigned char *p = (const unsigned char *)t; *p; p++) {
        if (*p >= 0x80) letters += 1; /* non-ASCII: the evaluator refuses it anyway */
        else if (((*p | 32) >= 'a' && (*p | 32) <= 'z') && !seen[*p]++) letters++;
    }
    free(t);
    if (letters > 2 || strstr(expr, "^{") || strstr(expr, "^(")) return 0;
    for (const char *p = strchr(expr, '^'); p; p = strchr(p + 1, '^')) {
        const char *d = p + 1;
        while (*d >= '0' && *d <= '9') d++;
        if (d - p - 1 >= 2 || (d > p + 1 && *d == '^')) return 0;
    }
    return 1;
}

int grade_exact_equal(const char *gt, const char *given)
{
    struct gbuf b = {0};
    gbuf_putc(&b, '(');
    gbuf_puts(&b, gt);
    gbuf_puts(&b, ")-(");
    gbuf_puts(&b, given);
    gbuf_putc(&b, ')');
    char *expr = gbuf_take(&b);
    int equal = 0;
    if (allow_eval(expr)) {
        char *py = gs_replace(gs_dup(expr), "^", "**");
        for (int seed = 0; seed < 2; seed++) {
            struct parser ps = {.s = py, .seed = seed};
            struct val v;
            equal = parse_sum(&ps, &v) == 0 && py[ps.i] == '\0' && num_zero(v.a) && num_zero(v.b);
            if (!equal || !ps.used_symbols) break;
        }
        free(py);
    }
    free(expr);
    return equal;
}
