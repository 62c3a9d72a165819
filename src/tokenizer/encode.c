/* Encoding: the pipeline of tokenizer.h, step by step, and the simple queries. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

int64_t tok_vocab_size(const struct tok *t)
{
    return t->vocab.n_ids;
}

int32_t tok_id(const struct tok *t, const char *token)
{
    /* Added tokens first, as the HF library looks them up. */
    size_t len = strlen(token);
    int32_t id = tok_strmap_get(&t->vocab.added, &t->vocab, token, len);
    return id >= 0 ? id : tok_strmap_get(&t->vocab.model, &t->vocab, token, len);
}

const char *tok_str(const struct tok *t, int32_t id)
{
    return tok_vocab_str(&t->vocab, id, NULL);
}

int tok_is_special(const struct tok *t, int32_t id)
{
    return id >= 0 && id < t->vocab.n_ids && (t->vocab.flags[id] & TOK_SPECIAL) != 0;
}

struct piece_ctx {
    struct tok *t;
    struct tok_ids *out;
};

static void bpe_piece(void *ctx, const unsigned char *piece, size_t len)
{
    struct piece_ctx *c = ctx;
    struct tok *t = c->t;
    tok_bpe_word_cached(&t->bpe, &t->vocab, &t->bytemap, &t->work, &t->cache, piece, len, c->out);
}

static int pretokenize(struct tok *t, const char *s, size_t len, struct tok_ids *out, struct mmupt_err *err)
{
    struct piece_ctx c = {t, out};
    return tok_pretok_run(&t->pretok, 0, (const unsigned char *)s, len, &t->scratch, bpe_piece, &c, err);
}

/* Split text by one set of added tokens: the tokens' ids go out as they are, the stretches
 * between them go to `rest`. */
static int split_added(struct tok *t, const struct tok_added_set *set, const char *s, size_t len,
                       int (*rest)(struct tok *, const char *, size_t, struct tok_ids *, struct mmupt_err *),
                       struct tok_ids *out, struct mmupt_err *err)
{
    size_t from = 0;
    while (from < len) {
        size_t ms, me;
        int32_t id = tok_added_find(set, s, len, from, &ms, &me);
        size_t stop = id >= 0 ? ms : len;
        if (stop > from && rest(t, s + from, stop - from, out, err)) return -1;
        if (id < 0) break;
        tok_ids_push(out, id);
        from = me;
    }
    return 0;
}

/* A stretch between raw added tokens: normalize it, then split out the normalized added tokens. */
static int encode_stretch(struct tok *t, const char *s, size_t len, struct tok_ids *out, struct mmupt_err *err)
{
    if (t->pretok.nfc) {
        int rc = tok_nfc(s, len, &t->norm);
        if (rc < 0) return mmupt_fail(err, "%s: NFC normalization failed", t->name);
        if (rc == 0) {
            s = t->norm.p;
            len = t->norm.n;
        }
    }
    return split_added(t, &t->added_norm, s, len, pretokenize, out, err);
}

int tok_encode(struct tok *t, const char *text, size_t len, int32_t **ids, size_t *n, struct mmupt_err *err)
{
    const char *s = text;
    if (!tok_utf8_valid((const unsigned char *)text, len)) {
        t->clean.n = 0;
        tok_utf8_lossy((const unsigned char *)text, len, 1, &t->clean);
        s = t->clean.p;
        len = t->clean.n;
    }
    struct tok_ids out = {0};
    if (split_added(t, &t->added_raw, s, len, encode_stretch, &out, err)) {
        free(out.v);
        return -1;
    }
    *ids = out.v ? out.v : mmupt_xmalloc(sizeof **ids);
    *n = out.n;
    return 0;
}
