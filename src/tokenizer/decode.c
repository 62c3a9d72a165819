/* Decoding, whole and streaming. Each token's bytes were worked out at load time (the ByteLevel
 * decoder's rule, tok_bytemap_decode); here they are concatenated and made valid UTF-8. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* The bytes id stands for (none when it is a special token being skipped); -1 if id is no token. */
static int token_bytes(const struct tok *t, int32_t id, int skip_special, const unsigned char **p, size_t *n)
{
    const struct tok_vocab *v = &t->vocab;
    if (id < 0 || id >= v->n_ids || v->off[id] == UINT32_MAX) return -1;
    *p = (const unsigned char *)v->decs.p + v->dec_off[id];
    *n = v->dec_off[id + 1] - v->dec_off[id];
    if (skip_special && (v->flags[id] & TOK_SPECIAL)) *n = 0;
    return 0;
}

static int bad_id(const struct tok *t, size_t pos, int32_t id, struct mmupt_err *err)
{
    return mmupt_fail(err, "id #%zu: %d is not a token id of %s (vocab size %lld)", pos, (int)id, t->name,
                      (long long)t->vocab.n_ids);
}

int tok_decode(const struct tok *t, const int32_t *ids, size_t n, int skip_special, char **text, size_t *len,
               struct mmupt_err *err)
{
    struct tok_buf raw = {0}, out = {0};
    for (size_t i = 0; i < n; i++) {
        const unsigned char *p;
        size_t k;
        if (token_bytes(t, ids[i], skip_special, &p, &k)) {
            free(raw.p);
            return bad_id(t, i, ids[i], err);
        }
        tok_buf_append(&raw, p, k);
    }
    tok_utf8_lossy((const unsigned char *)raw.p, raw.n, 1, &out);
    free(raw.p);
    tok_buf_append(&out, "", 1);
    *text = out.p;
    *len = out.n - 1;
    return 0;
}

void tok_stream_init(struct tok_stream *s, const struct tok *t, int skip_special)
{
    memset(s, 0, sizeof *s);
    s->t = t;
    s->skip_special = skip_special;
}

int tok_stream_push(struct tok_stream *s, int32_t id, char *out, size_t cap, struct mmupt_err *err)
{
    const unsigned char *p;
    size_t k;
    if (token_bytes(s->t, id, s->skip_special, &p, &k)) return bad_id(s->t, 0, id, err);
    /* The loader guarantees a token decodes to at most TOK_MAX_TOKEN_BYTES. */
    unsigned char in[TOK_MAX_TOKEN_BYTES + 4];
    MMUPT_CHECK(k <= TOK_MAX_TOKEN_BYTES);
    char text[TOK_STREAM_OUT_MAX];
    memcpy(in, s->pending, (size_t)s->n_pending);
    memcpy(in + s->n_pending, p, k);
    size_t n = (size_t)s->n_pending + k, wrote;
    size_t used = tok_utf8_lossy_raw(in, n, 0, text, &wrote);
    if (wrote > cap) return mmupt_fail(err, "stream decode: %zu bytes of text do not fit in %zu", wrote, cap);
    memcpy(out, text, wrote);
    s->n_pending = (int)(n - used);
    memcpy(s->pending, in + used, (size_t)s->n_pending);
    return (int)wrote;
}

int tok_stream_flush(struct tok_stream *s, char *out, size_t cap)
{
    char text[16];
    size_t wrote;
    tok_utf8_lossy_raw(s->pending, (size_t)s->n_pending, 1, text, &wrote);
    if (wrote > cap) return -1;
    memcpy(out, text, wrote);
    s->n_pending = 0;
    return (int)wrote;
}
