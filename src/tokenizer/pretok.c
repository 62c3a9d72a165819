/* Normalizer (NFC through utf8proc) and pre-tokenizer (regex splits through PCRE2).
 *
 * A pre-tokenizer is a list of stages, each refining the pieces of the one before, as the HF
 * library's Sequence does: Split(regex, Isolated) stages, then ByteLevel, which may prepend a
 * space to each piece (add_prefix_space) and may split with GPT-2's regex (use_regex). The byte
 * mapping itself happens in BPE, which works on raw bytes.
 *
 * The HF library runs these regexes with Oniguruma. PCRE2 reads the same constructs (\p{L},
 * (?i:...), lookahead) with the same leftmost-first alternation; with PCRE2_UCP its \s, \d and \w
 * use Unicode properties. The match semantics of the iteration follow Oniguruma's iterator: an
 * empty match splits the text, except right where the previous match ended.
 *
 * Unicode versions differ: PCRE2 10.42 knows Unicode 14, the HF library's Oniguruma Unicode 15.
 * Encoding every code point in several contexts with the Qwen tokenizer on both sides found one
 * difference, the Kaktovik numerals U+1D2C0..U+1D2D3 (\p{N} only for Oniguruma). */
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "internal.h"

const char tok_gpt2_regex[] = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

/* Oniguruma's default retry limit is 10 million too: a regex that backtracks more than this on
 * one piece fails instead of running for minutes. */
#define TOK_MATCH_LIMIT 10000000u

static void ensure_match_context(struct tok_pretok *p)
{
    if (p->mctx) return;
    p->mctx = pcre2_match_context_create(NULL);
    if (!p->mctx) MMUPT_DIE("out of memory (PCRE2 match context)");
    pcre2_set_match_limit(p->mctx, TOK_MATCH_LIMIT);
    p->jit_stack = pcre2_jit_stack_create(32 * 1024, 8 * 1024 * 1024, NULL);
    if (p->jit_stack) pcre2_jit_stack_assign(p->mctx, NULL, p->jit_stack);
}

int tok_pretok_add_split(struct tok_pretok *p, const char *pattern, size_t len, int literal, const char *where,
                         struct mmupt_err *err)
{
    if (p->n_stages == TOK_MAX_STAGES) return mmupt_fail(err, "%s: more than %d pre-tokenizer steps", where, TOK_MAX_STAGES);
    if (len == 0) return mmupt_fail(err, "%s: empty pattern", where);
    if (len > TOK_MAX_REGEX_BYTES)
        return mmupt_fail(err, "%s: pattern of %zu bytes (at most %d)", where, len, TOK_MAX_REGEX_BYTES);
    int code;
    PCRE2_SIZE at;
    uint32_t opts = PCRE2_UTF | (literal ? PCRE2_LITERAL : PCRE2_UCP); /* LITERAL refuses UCP */
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pattern, len, opts, &code, &at, NULL);
    if (!re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(code, msg, sizeof msg);
        return mmupt_fail(err, "%s: bad regex at offset %zu: %s", where, (size_t)at, (const char *)msg);
    }
    ensure_match_context(p);
    struct tok_stage *st = &p->stage[p->n_stages++];
    st->kind = TOK_STAGE_SPLIT;
    st->code = re;
    st->jit = pcre2_jit_compile(re, PCRE2_JIT_COMPLETE) == 0;
    st->md = pcre2_match_data_create_from_pattern(re, NULL);
    if (!st->md) MMUPT_DIE("out of memory (PCRE2 match data)");
    return 0;
}

int tok_pretok_add_prefix_space(struct tok_pretok *p, const char *where, struct mmupt_err *err)
{
    if (p->n_stages == TOK_MAX_STAGES) return mmupt_fail(err, "%s: more than %d pre-tokenizer steps", where, TOK_MAX_STAGES);
    p->stage[p->n_stages++] = (struct tok_stage){.kind = TOK_STAGE_PREFIX_SPACE};
    return 0;
}

void tok_pretok_free(struct tok_pretok *p)
{
    for (int i = 0; i < p->n_stages; i++) {
        pcre2_match_data_free(p->stage[i].md);
        pcre2_code_free(p->stage[i].code);
    }
    pcre2_match_context_free(p->mctx);
    pcre2_jit_stack_free(p->jit_stack);
    memset(p, 0, sizeof *p);
}

/* Code points NFC leaves alone whatever surrounds them: NFC_Quick_Check=Yes, combining class 0,
 * and never the second half of a canonical composition (checked against Python's unicodedata by
 * tools/make_tokenizer_fixtures.py). Text made only of these needs no normalization pass. */
static int nfc_inert(uint32_t cp)
{
    return cp < 0x300 || (cp >= 0x3400 && cp < 0x4DC0) || (cp >= 0x4E00 && cp < 0xA000) ||
           (cp >= 0xAC00 && cp < 0xD7A4);
}

int tok_nfc(const char *s, size_t len, struct tok_buf *out)
{
    const unsigned char *u = (const unsigned char *)s;
    int inert = 1;
    for (size_t k = 0; k < len && inert;) {
        if (u[k] < 0x80) {
            k++;
            continue;
        }
        uint32_t cp;
        k += tok_utf8_next(u + k, len - k, &cp);
        inert = nfc_inert(cp);
    }
    if (inert) return 1;
    utf8proc_uint8_t *r = NULL;
    utf8proc_ssize_t n = utf8proc_map(u, (utf8proc_ssize_t)len, &r, UTF8PROC_STABLE | UTF8PROC_COMPOSE);
    if (n < 0) return -1;
    out->n = 0;
    tok_buf_append(out, r, (size_t)n);
    free(r);
    return 0;
}

struct run_ctx {
    const struct tok_pretok *p;
    struct tok_buf *scratch;
    tok_piece_fn fn;
    void *ctx;
    struct mmupt_err *err;
};

static int run_from(const struct run_ctx *r, int i, const unsigned char *s, size_t len);

static int match_at(const struct run_ctx *r, const struct tok_stage *st, const unsigned char *s, size_t len,
                    size_t at, size_t *ms, size_t *me)
{
    int rc = st->jit ? pcre2_jit_match(st->code, s, len, at, 0, st->md, r->p->mctx)
                     : pcre2_match(st->code, s, len, at, PCRE2_NO_UTF_CHECK, st->md, r->p->mctx);
    if (rc == PCRE2_ERROR_NOMATCH) return 0;
    if (rc < 0) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(rc, msg, sizeof msg);
        return mmupt_fail(r->err, "pre-tokenizer regex failed on a piece of %zu bytes: %s", len, (const char *)msg);
    }
    const PCRE2_SIZE *ov = pcre2_get_ovector_pointer(st->md);
    *ms = ov[0] < at ? at : ov[0]; /* \K could report a start before the search start */
    *me = ov[1] < *ms ? *ms : ov[1];
    return 1;
}

/* Split(Isolated): every match is a piece, and so is every stretch between matches. */
static int run_split(const struct run_ctx *r, int i, const unsigned char *s, size_t len)
{
    const struct tok_stage *st = &r->p->stage[i];
    size_t at = 0, prev = 0, last_end = (size_t)-1;
    while (at <= len) {
        size_t ms, me;
        int rc = match_at(r, st, s, len, at, &ms, &me);
        if (rc < 0) return -1;
        if (rc == 0) break;
        if (ms == me) {
            uint32_t cp;
            size_t step = me < len ? tok_utf8_next(s + me, len - me, &cp) : 1;
            at = me + step;
            if (me == last_end) continue; /* no empty match right after a match */
        } else {
            at = me;
        }
        if (ms > prev && run_from(r, i + 1, s + prev, ms - prev)) return -1;
        if (me > ms && run_from(r, i + 1, s + ms, me - ms)) return -1;
        prev = last_end = me;
    }
    if (prev < len && run_from(r, i + 1, s + prev, len - prev)) return -1;
    return 0;
}

static int run_from(const struct run_ctx *r, int i, const unsigned char *s, size_t len)
{
    if (i == r->p->n_stages) {
        r->fn(r->ctx, s, len);
        return 0;
    }
    if (r->p->stage[i].kind == TOK_STAGE_SPLIT) return run_split(r, i, s, len);
    if (len > 0 && s[0] == ' ') return run_from(r, i + 1, s, len);
    /* add_prefix_space: only one ByteLevel stage exists, so the scratch copy is not reused
     * before the stages after it are done with it. */
    r->scratch->n = 0;
    tok_buf_append(r->scratch, " ", 1);
    tok_buf_append(r->scratch, s, len);
    return run_from(r, i + 1, (const unsigned char *)r->scratch->p, r->scratch->n);
}

int tok_pretok_run(const struct tok_pretok *p, int first, const unsigned char *s, size_t len, struct tok_buf *scratch,
                   tok_piece_fn fn, void *ctx, struct mmupt_err *err)
{
    struct run_ctx r = {p, scratch, fn, ctx, err};
    return run_from(&r, first, s, len);
}
