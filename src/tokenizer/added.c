/* Added tokens (<|im_start|>, <|image_pad|>, ...): found by exact match before any other step,
 * leftmost first and, at one position, longest first, as the HF library's Aho-Corasick automaton
 * in LeftmostLongest mode does. A handful of tokens needs no automaton: they are bucketed by
 * first byte, longest first, so the scan costs one table look-up per byte of text. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

void tok_added_set_add(struct tok_added_set *s, int32_t id, const char *content, size_t len, int lstrip,
                       int rstrip, int single_word)
{
    s->v = realloc(s->v, (s->n + 1) * sizeof *s->v);
    if (!s->v) MMUPT_DIE("out of memory");
    s->v[s->n++] = (struct tok_added){.id = id, .off = (uint32_t)s->text.n, .len = (uint32_t)len,
                                      .first = (uint8_t)content[0], .lstrip = (uint8_t)lstrip,
                                      .rstrip = (uint8_t)rstrip, .single_word = (uint8_t)single_word};
    tok_buf_append(&s->text, content, len);
}

static int by_first_then_longest(const void *pa, const void *pb)
{
    const struct tok_added *a = pa, *b = pb;
    if (a->first != b->first) return a->first < b->first ? -1 : 1;
    if (a->len != b->len) return a->len > b->len ? -1 : 1;
    return a->id < b->id ? -1 : a->id > b->id;
}

void tok_added_set_finish(struct tok_added_set *s)
{
    if (s->n) qsort(s->v, s->n, sizeof *s->v, by_first_then_longest);
    size_t k = 0;
    for (unsigned c = 0; c <= 256; c++) {
        while (k < s->n && s->v[k].first < c) k++;
        s->first[c] = (uint32_t)k;
    }
}

void tok_added_set_free(struct tok_added_set *s)
{
    free(s->v);
    free(s->text.p);
    memset(s, 0, sizeof *s);
}

/* The code point that ends just before `at` (text is valid UTF-8). */
static uint32_t cp_before(const char *text, size_t at, size_t *start)
{
    size_t i = at - 1;
    while (i > 0 && ((unsigned char)text[i] & 0xC0) == 0x80) i--;
    uint32_t cp;
    tok_utf8_next((const unsigned char *)text + i, at - i, &cp);
    *start = i;
    return cp;
}

/* single_word: the token must not touch a word character on either side. */
static int is_single_word(const char *text, size_t n, size_t start, size_t end)
{
    size_t i;
    uint32_t cp;
    if (start > 0 && tok_is_word(cp_before(text, start, &i))) return 0;
    if (end < n) {
        tok_utf8_next((const unsigned char *)text + end, n - end, &cp);
        if (tok_is_word(cp)) return 0;
    }
    return 1;
}

int32_t tok_added_find(const struct tok_added_set *s, const char *text, size_t n, size_t from, size_t *start,
                       size_t *end)
{
    if (s->n == 0) return -1;
    for (size_t pos = from; pos < n; pos++) {
        unsigned c = (unsigned char)text[pos];
        const struct tok_added *a = NULL;
        for (uint32_t k = s->first[c]; k < s->first[c + 1] && !a; k++) {
            const struct tok_added *t = &s->v[k];
            if (t->len <= n - pos && memcmp(text + pos, s->text.p + t->off, t->len) == 0) a = t;
        }
        if (!a) continue;
        size_t ms = pos, me = pos + a->len;
        if (a->single_word && !is_single_word(text, n, ms, me)) {
            pos = me - 1; /* the search goes on after the discarded match, never inside it */
            continue;
        }
        if (a->lstrip) {
            size_t i;
            while (ms > from && tok_is_space(cp_before(text, ms, &i))) ms = i;
        }
        if (a->rstrip) {
            uint32_t cp;
            size_t k;
            while (me < n && (k = tok_utf8_next((const unsigned char *)text + me, n - me, &cp), tok_is_space(cp)))
                me += k;
        }
        *start = ms;
        *end = me;
        return a->id;
    }
    return -1;
}
