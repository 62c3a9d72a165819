/* The filters of `mmupt synth` (synth.h, docs/synth.md): extracting the question from a response,
 * length, "is it a question", answer leaks, exact and near duplicates. Pure functions over text. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "mmupt/synth.h"

static const char *const verdict_names[SYNTH_N_VERDICTS] = {
    "keep", "undecodable", "empty", "marker", "too_short", "too_long", "not_question",
    "answer_leak", "duplicate", "near_duplicate", "surplus",
};

const char *synth_verdict_name(enum synth_verdict v)
{
    return (unsigned)v < SYNTH_N_VERDICTS ? verdict_names[v] : "?";
}

static char *dup_n(const char *s, size_t n)
{
    char *o = mmupt_xmalloc(n + 1);
    memcpy(o, s, n);
    o[n] = '\0';
    return o;
}

/* ---- extracting the question ---- */

/* The full-width question mark U+FF1F (Chinese and Japanese text). */
static const char fw_qmark[] = "\xef\xbc\x9f";

/* Where the first question mark in s[0..n) ends (one past it), or NULL. */
static const char *after_qmark(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '?') return s + i + 1;
        if (i + 3 <= n && memcmp(s + i, fw_qmark, 3) == 0) return s + i + 3;
    }
    return NULL;
}

/* Quote characters stripped from either end: ASCII " ' ` and the curly, angle and CJK quotes. */
static const char *const quotes[] = {"\"", "'", "`", "\xe2\x80\x9c", "\xe2\x80\x9d", "\xe2\x80\x98", "\xe2\x80\x99",
                                     "\xc2\xab", "\xc2\xbb", "\xe2\x80\x9e", "\xe3\x80\x8c", "\xe3\x80\x8d"};
static const size_t n_quotes = sizeof quotes / sizeof quotes[0];

static int strip_space(const char **b, const char **e)
{
    const char *b0 = *b, *e0 = *e;
    while (*b < *e && isspace((unsigned char)**b)) (*b)++;
    while (*e > *b && isspace((unsigned char)(*e)[-1])) (*e)--;
    return *b != b0 || *e != e0;
}

static int strip_quotes(const char **b, const char **e)
{
    int changed = 0;
    for (size_t k = 0; k < n_quotes; k++) {
        size_t q = strlen(quotes[k]);
        if ((size_t)(*e - *b) >= q && memcmp(*b, quotes[k], q) == 0) *b += q, changed = 1;
        if ((size_t)(*e - *b) >= q && memcmp(*e - q, quotes[k], q) == 0) *e -= q, changed = 1;
    }
    return changed;
}

/* Markdown emphasis and heading marks at the ends ("**Question:** ...", "### ..."). */
static int strip_markdown(const char **b, const char **e)
{
    int changed = 0;
    while (*b < *e && (**b == '*' || **b == '#' || **b == '_')) (*b)++, changed = 1;
    while (*e > *b && ((*e)[-1] == '*' || (*e)[-1] == '_')) (*e)--, changed = 1;
    return changed;
}

/* "Question:", "New question:", "Q:", "问题：", optionally numbered ("Question 2:", "Q1:"), and
 * list bullets ("- ", "1. ", "2) "). */
static int strip_label(const char **b, const char **e)
{
    static const char *const labels[] = {"new question", "question", "q", "\xe9\x97\xae\xe9\xa2\x98"};
    for (size_t k = 0; k < sizeof labels / sizeof labels[0]; k++) {
        size_t n = strlen(labels[k]);
        if ((size_t)(*e - *b) < n || strncasecmp(*b, labels[k], n) != 0) continue;
        const char *p = *b + n;
        while (p < *e && (*p == ' ' || isdigit((unsigned char)*p))) p++;
        if (p < *e && *p == ':') return *b = p + 1, 1;
        if (*e - p >= 3 && memcmp(p, "\xef\xbc\x9a", 3) == 0) return *b = p + 3, 1; /* full-width colon */
    }
    if (*e - *b >= 2 && (**b == '-' || **b == '*') && (*b)[1] == ' ') return *b += 2, 1;
    const char *p = *b;
    while (p < *e && isdigit((unsigned char)*p)) p++;
    if (p > *b && p + 1 < *e && (*p == '.' || *p == ')') && p[1] == ' ') return *b = p + 2, 1;
    return 0;
}

/* Peel the decorations off s[b..e) until nothing changes (bounded: each pass shrinks the text). */
static void clean(const char **b, const char **e)
{
    for (int pass = 0; pass < 16; pass++) {
        int changed = strip_space(b, e);
        changed |= strip_markdown(b, e);
        changed |= strip_label(b, e);
        changed |= strip_quotes(b, e);
        if (!changed) return;
    }
}

char *synth_extract_question(const char *response)
{
    if (!response) return NULL;
    /* First choice: the first line with a question mark, up to and including the mark. */
    for (const char *line = response; *line;) {
        const char *nl = strchr(line, '\n');
        size_t n = nl ? (size_t)(nl - line) : strlen(line);
        const char *end = after_qmark(line, n);
        if (end) {
            const char *b = line, *e = end;
            clean(&b, &e);
            if (e > b) return dup_n(b, (size_t)(e - b));
        }
        line += n + (nl ? 1 : 0);
    }
    /* No question mark: the first line with anything left after the clean-up. */
    for (const char *line = response; *line;) {
        const char *nl = strchr(line, '\n');
        size_t n = nl ? (size_t)(nl - line) : strlen(line);
        const char *b = line, *e = line + n;
        clean(&b, &e);
        if (e > b) return dup_n(b, (size_t)(e - b));
        line += n + (nl ? 1 : 0);
    }
    return dup_n("", 0);
}

/* ---- length and form ---- */

size_t synth_char_count(const char *s)
{
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) n += (*p & 0xC0) != 0x80;
    return n;
}

/* Interrogatives, auxiliaries that open yes/no questions, and the imperative task words of
 * exercise sheets ("Find x.", "Compute the area."). */
static const char *const question_words[] = {
    "what", "which", "who", "whom", "whose", "when", "where", "why", "how",
    "is", "are", "was", "were", "do", "does", "did", "can", "could", "will", "would", "should", "has", "have",
    "find", "compute", "calculate", "determine", "estimate", "count", "name", "identify", "give", "list", "state",
    "evaluate", "solve", "express", "simplify", "measure",
};

int synth_is_question(const char *s)
{
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1])) n--;
    if (n >= 1 && s[n - 1] == '?') return 1;
    if (n >= 3 && memcmp(s + n - 3, fw_qmark, 3) == 0) return 1;
    const char *p = s;
    while (*p && isspace((unsigned char)*p)) p++;
    size_t w = 0;
    while (isalpha((unsigned char)p[w])) w++;
    for (size_t k = 0; k < sizeof question_words / sizeof question_words[0]; k++)
        if (strlen(question_words[k]) == w && strncasecmp(p, question_words[k], w) == 0) return 1;
    return 0;
}

/* ---- normalisation and tokens ---- */

static int valid_utf8(const char *s)
{
    const utf8proc_uint8_t *p = (const utf8proc_uint8_t *)s;
    utf8proc_int32_t cp;
    for (;;) {
        utf8proc_ssize_t k = utf8proc_iterate(p, -1, &cp);
        if (k < 0) return 0;
        if (cp == 0) return 1;
        p += k;
    }
}

char *synth_normalize(const char *s)
{
    char *folded = NULL;
    if (valid_utf8(s)) {
        utf8proc_uint8_t *out = NULL;
        utf8proc_ssize_t n = utf8proc_map((const utf8proc_uint8_t *)s, 0, &out,
                                          UTF8PROC_NULLTERM | UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_CASEFOLD);
        if (n >= 0) folded = (char *)out;
        else free(out);
    }
    if (!folded) { /* invalid UTF-8: fold what we can read */
        folded = dup_n(s, strlen(s));
        for (char *p = folded; *p; p++) *p = (char)tolower((unsigned char)*p);
    }
    /* Trim and collapse white space in place. */
    char *w = folded;
    int space = 0;
    for (const char *p = folded; *p; p++) {
        if (isspace((unsigned char)*p)) {
            space = 1;
            continue;
        }
        if (space && w > folded) *w++ = ' ';
        space = 0;
        *w++ = *p;
    }
    *w = '\0';
    return folded;
}

struct token {
    const char *p;
    size_t n;
    int word; /* a word or number (n-grams use only these), not a punctuation mark */
};

struct tokens {
    struct token *t;
    size_t n, cap;
};

static void push(struct tokens *ts, const char *p, size_t n, int word)
{
    if (ts->n == ts->cap) {
        ts->cap = ts->cap ? 2 * ts->cap : 32;
        ts->t = realloc(ts->t, ts->cap * sizeof *ts->t);
        if (!ts->t) MMUPT_DIE("out of memory splitting text into tokens");
    }
    ts->t[ts->n++] = (struct token){p, n, word};
}

/* The kind of the character at p: 0 space, 1 letter (or digit, or anything not below), 2
 * punctuation or symbol. *len gets its byte length. Invalid bytes count as one-byte letters. */
static int char_kind(const char *p, size_t *len)
{
    unsigned char c = (unsigned char)*p;
    *len = 1;
    if (c < 0x80) return isspace(c) ? 0 : isalnum(c) ? 1 : 2;
    utf8proc_int32_t cp;
    utf8proc_ssize_t k = utf8proc_iterate((const utf8proc_uint8_t *)p, -1, &cp);
    if (k < 1) return 1;
    *len = (size_t)k;
    utf8proc_category_t cat = utf8proc_category(cp);
    if (cat >= UTF8PROC_CATEGORY_ZS && cat <= UTF8PROC_CATEGORY_ZP) return 0;
    if (cat >= UTF8PROC_CATEGORY_PC && cat <= UTF8PROC_CATEGORY_SO) return 2;
    return 1;
}

/* Split normalised text: numbers (digits with inner '.' or ',' between digits) and words are
 * single tokens, each punctuation mark or symbol is a token of its own, space separates. */
static void tokenize(const char *s, struct tokens *ts)
{
    ts->n = 0;
    for (const char *p = s; *p;) {
        size_t len;
        int kind = char_kind(p, &len);
        if (kind == 0) {
            p += len;
            continue;
        }
        if (kind == 2) {
            push(ts, p, len, 0);
            p += len;
            continue;
        }
        const char *b = p;
        if (isdigit((unsigned char)*p)) { /* a number: 3, 3.5, 1,000 */
            while (isdigit((unsigned char)*p) ||
                   ((*p == '.' || *p == ',') && p > b && isdigit((unsigned char)p[-1]) && isdigit((unsigned char)p[1])))
                p++;
            if (!isalpha((unsigned char)*p)) { /* "3" in "3个" stands alone; "3x", "2nd" are words */
                push(ts, b, (size_t)(p - b), 1);
                continue;
            }
        }
        /* A word: digits inside ASCII words stay (x3, 2nd), but digits and non-ASCII letters part,
         * since scripts without spaces would otherwise swallow the numbers ("有3个" is 有 3 个). */
        int prev_digit = 0, prev_wide = 0;
        while (*p && char_kind(p, &len) == 1) {
            int digit = isdigit((unsigned char)*p), wide = (unsigned char)*p >= 0x80;
            if (p > b && ((prev_digit && wide) || (prev_wide && digit))) break;
            prev_digit = digit;
            prev_wide = wide;
            p += len;
        }
        push(ts, b, (size_t)(p - b), 1);
    }
}

static int tok_eq(const struct token *a, const struct token *b)
{
    return a->n == b->n && memcmp(a->p, b->p, a->n) == 0;
}

int synth_answer_leaks(const char *question, const char *answer)
{
    if (!answer || !question) return 0;
    char *na = synth_normalize(answer), *nq = synth_normalize(question);
    int leak = 0;
    size_t chars = synth_char_count(na);
    /* A lone letter is no evidence of a leak; a lone digit only as a whole number token. */
    int usable = chars > 1 || (chars == 1 && isdigit((unsigned char)na[0]));
    if (usable) {
        struct tokens ta = {0}, tq = {0};
        tokenize(na, &ta);
        tokenize(nq, &tq);
        for (size_t i = 0; ta.n > 0 && i + ta.n <= tq.n && !leak; i++) {
            size_t k = 0;
            while (k < ta.n && tok_eq(&tq.t[i + k], &ta.t[k])) k++;
            leak = k == ta.n;
        }
        free(ta.t);
        free(tq.t);
    }
    free(na);
    free(nq);
    return leak;
}

/* ---- n-gram overlap ---- */

static uint64_t fnv(uint64_t h, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)p[i]) * 0x100000001b3ull;
    return (h ^ 0xff) * 0x100000001b3ull; /* a separator, so "ab"+"c" differs from "a"+"bc" */
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* The sorted, distinct hashes of the word 3-grams of s; *n gets their count. */
static uint64_t *grams(const char *s, size_t *n)
{
    char *ns = synth_normalize(s);
    struct tokens ts = {0};
    tokenize(ns, &ts);
    size_t w = 0;
    for (size_t i = 0; i < ts.n; i++)
        if (ts.t[i].word) ts.t[w++] = ts.t[i];
    size_t m = w >= 3 ? w - 2 : (w > 0 ? 1 : 0), span = w >= 3 ? 3 : w;
    uint64_t *g = mmupt_xmalloc((m ? m : 1) * sizeof *g);
    for (size_t i = 0; i < m; i++) {
        uint64_t h = 0xcbf29ce484222325ull;
        for (size_t k = 0; k < span; k++) h = fnv(h, ts.t[i + k].p, ts.t[i + k].n);
        g[i] = h;
    }
    qsort(g, m, sizeof *g, cmp_u64);
    size_t u = 0;
    for (size_t i = 0; i < m; i++)
        if (u == 0 || g[u - 1] != g[i]) g[u++] = g[i];
    free(ts.t);
    free(ns);
    *n = u;
    return g;
}

double synth_overlap(const char *a, const char *b)
{
    size_t na, nb;
    uint64_t *ga = grams(a, &na), *gb = grams(b, &nb);
    size_t both = 0;
    for (size_t i = 0, j = 0; i < na && j < nb;) {
        if (ga[i] == gb[j]) both++, i++, j++;
        else if (ga[i] < gb[j]) i++;
        else j++;
    }
    free(ga);
    free(gb);
    size_t either = na + nb - both;
    return either ? (double)both / (double)either : 1.0;
}

/* ---- the chain ---- */

static int is_duplicate(const char *nq, const char *other)
{
    char *no = synth_normalize(other);
    int same = strcmp(nq, no) == 0;
    free(no);
    return same;
}

static enum synth_verdict judge_text(const struct synth_filter *f, const struct synth_item_state *st, const char *q)
{
    if (!q[0]) return SYNTH_EMPTY;
    if (strstr(q, "<image>") || strstr(q, "<|")) return SYNTH_MARKER;
    size_t chars = synth_char_count(q);
    if (chars < (size_t)f->min_chars) return SYNTH_TOO_SHORT;
    if (chars > (size_t)f->max_chars) return SYNTH_TOO_LONG;
    if (f->require_question && !synth_is_question(q)) return SYNTH_NOT_QUESTION;
    if (st->answer && synth_answer_leaks(q, st->answer)) return SYNTH_ANSWER_LEAK;
    char *nq = synth_normalize(q);
    int dup = st->original && is_duplicate(nq, st->original);
    for (int i = 0; i < st->n_kept && !dup; i++) dup = is_duplicate(nq, st->kept[i]);
    free(nq);
    if (dup) return SYNTH_DUPLICATE;
    if (f->max_overlap <= 1.0) {
        if (st->original && synth_overlap(q, st->original) >= f->max_overlap) return SYNTH_NEAR_DUPLICATE;
        for (int i = 0; i < st->n_kept; i++)
            if (synth_overlap(q, st->kept[i]) >= f->max_overlap) return SYNTH_NEAR_DUPLICATE;
    }
    if (st->n_kept >= f->keep) return SYNTH_SURPLUS;
    return SYNTH_KEEP;
}

enum synth_verdict synth_judge(const struct synth_filter *f, struct synth_item_state *st, const char *text)
{
    if (!text || !valid_utf8(text)) return SYNTH_UNDECODABLE;
    char *q = synth_extract_question(text);
    enum synth_verdict v = judge_text(f, st, q);
    if (v != SYNTH_KEEP) {
        free(q);
        return v;
    }
    st->kept = realloc(st->kept, (size_t)(st->n_kept + 1) * sizeof *st->kept);
    if (!st->kept) MMUPT_DIE("out of memory keeping a question");
    st->kept[st->n_kept++] = q;
    return SYNTH_KEEP;
}

void synth_item_state_free(struct synth_item_state *st)
{
    for (int i = 0; i < st->n_kept; i++) free(st->kept[i]);
    free(st->kept);
    st->kept = NULL;
    st->n_kept = 0;
}
