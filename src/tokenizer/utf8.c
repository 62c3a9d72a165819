/* UTF-8 for the tokenizer: the lossy conversion (invalid bytes -> U+FFFD) both encode and decode
 * need, growable buffers, and the two character classes added tokens use. */
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "internal.h"

void tok_buf_reserve(struct tok_buf *b, size_t extra)
{
    if (b->p && b->cap - b->n >= extra) return; /* p is never NULL after this, even for 0 bytes */
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->n < extra) {
        if (cap > SIZE_MAX / 2) MMUPT_DIE("tokenizer buffer overflow");
        cap *= 2;
    }
    char *p = realloc(b->p, cap);
    if (!p) MMUPT_DIE("out of memory (%zu bytes) in the tokenizer", cap);
    b->p = p;
    b->cap = cap;
}

void tok_buf_append(struct tok_buf *b, const void *data, size_t n)
{
    tok_buf_reserve(b, n);
    if (n) memcpy(b->p + b->n, data, n);
    b->n += n;
}

void tok_ids_push(struct tok_ids *ids, int32_t id)
{
    if (ids->n == ids->cap) {
        size_t cap = ids->cap ? ids->cap * 2 : 64;
        int32_t *v = realloc(ids->v, cap * sizeof *v);
        if (!v) MMUPT_DIE("out of memory (%zu ids) in the tokenizer", cap);
        ids->v = v;
        ids->cap = cap;
    }
    ids->v[ids->n++] = id;
}

/* Length of the well-formed sequence a lead byte starts (Unicode Table 3-7), and the range its
 * second byte must fall in; 0 for a byte that cannot start one. */
static int utf8_lead(unsigned c, unsigned *lo, unsigned *hi)
{
    *lo = 0x80;
    *hi = 0xBF;
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) return 2;
    if (c == 0xE0) *lo = 0xA0;   /* no overlong 3-byte forms */
    if (c == 0xED) *hi = 0x9F;   /* no surrogates */
    if (c >= 0xE0 && c <= 0xEF) return 3;
    if (c == 0xF0) *lo = 0x90;   /* no overlong 4-byte forms */
    if (c == 0xF4) *hi = 0x8F;   /* nothing past U+10FFFF */
    if (c >= 0xF0 && c <= 0xF4) return 4;
    return 0;
}

static const char replacement[3] = {(char)0xEF, (char)0xBF, (char)0xBD};

size_t tok_utf8_lossy_raw(const unsigned char *in, size_t n, int final, char *out, size_t *out_n)
{
    size_t i = 0, o = 0;
    while (i < n) {
        unsigned lo, hi;
        int need = utf8_lead(in[i], &lo, &hi);
        if (need == 1) {
            out[o++] = (char)in[i++];
            continue;
        }
        /* The maximal subpart: the longest prefix of a well-formed sequence. It becomes one
         * U+FFFD when the sequence breaks off; a lone bad byte is a subpart of length 1. */
        int k = 1;
        while (k < need && i + (size_t)k < n) {
            unsigned c = in[i + (size_t)k];
            if (c < (k == 1 ? lo : 0x80) || c > (k == 1 ? hi : 0xBF)) break;
            k++;
        }
        if (need > 0 && k == need) {
            memcpy(out + o, in + i, (size_t)need);
            o += (size_t)need;
        } else if (need > 0 && i + (size_t)k == n && !final) {
            break; /* may still be completed by the next bytes */
        } else {
            memcpy(out + o, replacement, 3);
            o += 3;
        }
        i += (size_t)k;
    }
    *out_n = o;
    return i;
}

size_t tok_utf8_lossy(const unsigned char *in, size_t n, int final, struct tok_buf *out)
{
    tok_buf_reserve(out, 3 * n);
    size_t o;
    size_t used = tok_utf8_lossy_raw(in, n, final, out->p + out->n, &o);
    out->n += o;
    return used;
}

int tok_utf8_valid(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        /* ASCII runs are the common case: skip them eight bytes at a time. */
        while (i + 8 <= n) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            if (w & 0x8080808080808080ull) break;
            i += 8;
        }
        if (i >= n) break;
        unsigned lo, hi;
        int need = utf8_lead(s[i], &lo, &hi);
        if (need == 0 || i + (size_t)need > n) return 0;
        for (int k = 1; k < need; k++) {
            unsigned c = s[i + (size_t)k];
            if (c < (k == 1 ? lo : 0x80) || c > (k == 1 ? hi : 0xBF)) return 0;
        }
        i += (size_t)need;
    }
    return 1;
}

size_t tok_utf8_next(const unsigned char *s, size_t n, uint32_t *cp)
{
    unsigned lo, hi;
    int need = utf8_lead(s[0], &lo, &hi);
    if (need <= 1 || (size_t)need > n) {
        *cp = s[0];
        return 1;
    }
    uint32_t c = s[0] & (0xFF >> (need + 1));
    for (int k = 1; k < need; k++) c = (c << 6) | (s[k] & 0x3F);
    *cp = c;
    return (size_t)need;
}

size_t tok_utf8_put(uint32_t cp, unsigned char *out)
{
    if (cp < 0x80) {
        out[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (unsigned char)(0xC0 | (cp >> 6));
        out[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (unsigned char)(0xE0 | (cp >> 12));
        out[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (unsigned char)(0xF0 | (cp >> 18));
    out[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

int tok_is_space(uint32_t cp)
{
    /* The White_Space property: a short list that Unicode keeps stable. */
    if (cp >= 0x09 && cp <= 0x0D) return 1;
    if (cp >= 0x2000 && cp <= 0x200A) return 1;
    switch (cp) {
    case 0x20: case 0x85: case 0xA0: case 0x1680: case 0x2028: case 0x2029: case 0x202F: case 0x205F:
    case 0x3000:
        return 1;
    default:
        return 0;
    }
}

int tok_is_word(uint32_t cp)
{
    if (cp < 0x80) return (cp >= '0' && cp <= '9') || (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') || cp == '_';
    if (cp == 0x200C || cp == 0x200D) return 1;
    switch (utf8proc_category((utf8proc_int32_t)cp)) {
    case UTF8PROC_CATEGORY_LU: case UTF8PROC_CATEGORY_LL: case UTF8PROC_CATEGORY_LT: case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO: case UTF8PROC_CATEGORY_MN: case UTF8PROC_CATEGORY_MC: case UTF8PROC_CATEGORY_ME:
    case UTF8PROC_CATEGORY_ND: case UTF8PROC_CATEGORY_NL: case UTF8PROC_CATEGORY_PC:
        return 1;
    default:
        return 0;
    }
}
