/* GPT-2's byte <-> unicode map. Byte-level BPE works on bytes, but its vocab is written as text:
 * every byte is shown as one printable character. The printable Latin-1 bytes ('!'..'~',
 * U+00A1..U+00AC, U+00AE..U+00FF) stand for themselves; the other 68 (controls, space, DEL, NBSP,
 * soft hyphen) are shown as U+0100, U+0101, ... in byte order, so a space is 'Ġ' (U+0120). */
#include "internal.h"

static int shown_as_itself(unsigned b)
{
    return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

void tok_bytemap_init(struct tok_bytemap *m)
{
    for (int i = 0; i < 324; i++) m->byte_of[i] = -1;
    unsigned next = 256;
    for (unsigned b = 0; b < 256; b++) {
        m->cp[b] = (uint16_t)(shown_as_itself(b) ? b : next++);
        m->byte_of[m->cp[b]] = (int16_t)b;
    }
}

void tok_bytemap_decode(const struct tok_bytemap *m, const char *s, size_t len, struct tok_buf *out)
{
    tok_buf_reserve(out, len);
    size_t start = out->n, i = 0;
    const unsigned char *u = (const unsigned char *)s;
    while (i < len) {
        uint32_t cp;
        i += tok_utf8_next(u + i, len - i, &cp);
        if (cp >= 324 || m->byte_of[cp] < 0) {
            /* A character outside the map: the HF decoder then keeps the whole token as text. */
            out->n = start;
            tok_buf_append(out, s, len);
            return;
        }
        out->p[out->n++] = (char)m->byte_of[cp];
    }
}

void tok_bytemap_encode(const struct tok_bytemap *m, const unsigned char *s, size_t len, struct tok_buf *out)
{
    tok_buf_reserve(out, 2 * len);
    for (size_t i = 0; i < len; i++) out->n += tok_utf8_put(m->cp[s[i]], (unsigned char *)out->p + out->n);
}
