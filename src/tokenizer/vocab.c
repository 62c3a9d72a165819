/* Token strings: one string per id (in one arena), and hash tables from string to id. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

uint32_t tok_hash(const char *s, size_t len)
{
    /* FNV-1a: simple, and good enough for short token strings. */
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++) h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

void tok_strmap_init(struct tok_strmap *m, size_t expected)
{
    size_t n = 16;
    while (n < 2 * expected) n *= 2; /* load factor at most 1/2 */
    m->slot = mmupt_xmalloc(n * sizeof *m->slot);
    m->hash = mmupt_xmalloc(n * sizeof *m->hash);
    for (size_t i = 0; i < n; i++) m->slot[i] = -1;
    m->mask = n - 1;
}

void tok_strmap_free(struct tok_strmap *m)
{
    free(m->slot);
    free(m->hash);
    memset(m, 0, sizeof *m);
}

const char *tok_vocab_str(const struct tok_vocab *v, int32_t id, size_t *len)
{
    if (id < 0 || id >= v->n_ids || v->off[id] == UINT32_MAX) return NULL;
    if (len) *len = v->len[id];
    return v->strs.p + v->off[id];
}

int32_t tok_strmap_get(const struct tok_strmap *m, const struct tok_vocab *v, const char *s, size_t len)
{
    if (!m->slot) return -1;
    uint32_t h = tok_hash(s, len);
    for (size_t i = h & m->mask;; i = (i + 1) & m->mask) {
        int32_t id = m->slot[i];
        if (id < 0) return -1;
        if (m->hash[i] != h || v->len[id] != len) continue;
        if (memcmp(v->strs.p + v->off[id], s, len) == 0) return id;
    }
}

int32_t tok_strmap_put(struct tok_strmap *m, const struct tok_vocab *v, int32_t id)
{
    size_t len;
    const char *s = tok_vocab_str(v, id, &len);
    uint32_t h = tok_hash(s, len);
    for (size_t i = h & m->mask;; i = (i + 1) & m->mask) {
        int32_t other = m->slot[i];
        if (other < 0) {
            m->slot[i] = id;
            m->hash[i] = h;
            return -1;
        }
        if (m->hash[i] == h && v->len[other] == len && memcmp(v->strs.p + v->off[other], s, len) == 0) return other;
    }
}

int tok_vocab_set(struct tok_vocab *v, int32_t id, const char *s, size_t len, struct mmupt_err *err)
{
    if (v->off[id] != UINT32_MAX) {
        if (v->len[id] == len && memcmp(v->strs.p + v->off[id], s, len) == 0) return 0;
        return mmupt_fail(err, "id %d is given to both '%s' and '%s'", (int)id, v->strs.p + v->off[id], s);
    }
    if (v->strs.n > UINT32_MAX - len - 1) return mmupt_fail(err, "token strings too large in total");
    v->off[id] = (uint32_t)v->strs.n;
    v->len[id] = (uint16_t)len;
    tok_buf_append(&v->strs, s, len);
    tok_buf_append(&v->strs, "", 1);
    return 0;
}

void tok_vocab_free(struct tok_vocab *v)
{
    free(v->off);
    free(v->len);
    free(v->flags);
    free(v->strs.p);
    free(v->dec_off);
    free(v->decs.p);
    tok_strmap_free(&v->model);
    tok_strmap_free(&v->added);
    memset(v, 0, sizeof *v);
}
