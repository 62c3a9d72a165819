/* Byte-level BPE on one pre-tokenized word, and the word -> ids cache in front of it.
 *
 * The merge order is the HF library's: a min-heap of candidate merges keyed by (rank, position);
 * the lowest rank goes first and, among equal ranks, the leftmost. A popped candidate is used only
 * if its left symbol is still alive, still has a right neighbour, and the pair they form now still
 * merges into the same token (a stale entry whose pair changed into another pair with the same
 * result is therefore applied, exactly as there). */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* ---- the merges table: (left id, right id) -> (rank, merged id) ---- */

static uint64_t pair_key(int32_t a, int32_t b)
{
    return ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
}

static size_t pair_slot(uint64_t key, size_t mask)
{
    key ^= key >> 33;
    key *= 0xff51afd7ed558ccdull; /* murmur3's finaliser mixes both halves into the low bits */
    key ^= key >> 33;
    return (size_t)key & mask;
}

void tok_merges_init(struct tok_merges *m, size_t expected)
{
    size_t n = 16;
    while (n < 2 * expected) n *= 2;
    m->slot = mmupt_xmalloc(n * sizeof *m->slot);
    for (size_t i = 0; i < n; i++) m->slot[i].new_id = -1;
    m->mask = n - 1;
    m->n = 0;
}

void tok_merges_free(struct tok_merges *m)
{
    free(m->slot);
    memset(m, 0, sizeof *m);
}

void tok_merges_put(struct tok_merges *m, int32_t a, int32_t b, uint32_t rank, int32_t new_id)
{
    uint64_t key = pair_key(a, b);
    for (size_t i = pair_slot(key, m->mask);; i = (i + 1) & m->mask) {
        struct tok_merge_slot *s = &m->slot[i];
        if (s->new_id < 0) m->n++;
        else if (s->key != key) continue;
        s->key = key;
        s->rank = rank;
        s->new_id = new_id;
        return;
    }
}

const struct tok_merge_slot *tok_merges_get(const struct tok_merges *m, int32_t a, int32_t b)
{
    uint64_t key = pair_key(a, b);
    for (size_t i = pair_slot(key, m->mask);; i = (i + 1) & m->mask) {
        const struct tok_merge_slot *s = &m->slot[i];
        if (s->new_id < 0) return NULL;
        if (s->key == key) return s;
    }
}

/* ---- the merge loop ---- */

struct tok_bpe_sym {
    int32_t id;
    int32_t prev, next; /* neighbours, -1 at the ends */
    int alive;
};

struct tok_bpe_item {
    uint32_t rank, pos;
    int32_t new_id;
};

static int item_less(const struct tok_bpe_item *a, const struct tok_bpe_item *b)
{
    return a->rank != b->rank ? a->rank < b->rank : a->pos < b->pos;
}

static void heap_push(struct tok_bpe_work *w, struct tok_bpe_item it)
{
    if (w->heap_n == w->heap_cap) {
        w->heap_cap = w->heap_cap ? 2 * w->heap_cap : 64;
        w->heap = realloc(w->heap, w->heap_cap * sizeof *w->heap);
        if (!w->heap) MMUPT_DIE("out of memory in BPE");
    }
    size_t i = w->heap_n++;
    while (i > 0 && item_less(&it, &w->heap[(i - 1) / 2])) {
        w->heap[i] = w->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    w->heap[i] = it;
}

static struct tok_bpe_item heap_pop(struct tok_bpe_work *w)
{
    struct tok_bpe_item top = w->heap[0], last = w->heap[--w->heap_n];
    size_t i = 0, n = w->heap_n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && item_less(&w->heap[c + 1], &w->heap[c])) c++;
        if (!item_less(&w->heap[c], &last)) break;
        w->heap[i] = w->heap[c];
        i = c;
    }
    if (n > 0) w->heap[i] = last;
    return top;
}

static void push_pair(const struct tok_bpe *b, struct tok_bpe_work *w, int32_t pos)
{
    const struct tok_bpe_sym *s = w->sym;
    if (pos < 0 || s[pos].next < 0) return;
    const struct tok_merge_slot *m = tok_merges_get(&b->merges, s[pos].id, s[s[pos].next].id);
    if (m) heap_push(w, (struct tok_bpe_item){m->rank, (uint32_t)pos, m->new_id});
}

static void add_sym(struct tok_bpe_work *w, size_t *n, int32_t id)
{
    struct tok_bpe_sym *s = w->sym;
    s[*n] = (struct tok_bpe_sym){id, (int32_t)*n - 1, -1, 1};
    if (*n > 0) s[*n - 1].next = (int32_t)*n;
    (*n)++;
}

/* The word's initial symbols: one per byte, unknown bytes becoming unk (fused or not) or dropped. */
static size_t initial_symbols(const struct tok_bpe *b, struct tok_bpe_work *w, const unsigned char *word, size_t len)
{
    if (w->sym_cap < len) {
        free(w->sym);
        w->sym_cap = len < 64 ? 64 : len;
        w->sym = mmupt_xmalloc(w->sym_cap * sizeof *w->sym);
    }
    size_t n = 0;
    int pending_unk = 0;
    for (size_t i = 0; i < len; i++) {
        int32_t id = b->byte_id[word[i]];
        if (id >= 0) {
            if (pending_unk) add_sym(w, &n, b->unk_id);
            pending_unk = 0;
            add_sym(w, &n, id);
        } else if (b->unk_id >= 0) {
            if (pending_unk && !b->fuse_unk) add_sym(w, &n, b->unk_id);
            pending_unk = 1;
        }
    }
    if (pending_unk) add_sym(w, &n, b->unk_id);
    return n;
}

void tok_bpe_word(const struct tok_bpe *b, const struct tok_vocab *v, const struct tok_bytemap *bm,
                  struct tok_bpe_work *w, const unsigned char *word, size_t len, struct tok_ids *out)
{
    if (len == 0) return;
    if (b->ignore_merges) {
        w->mapped.n = 0;
        tok_bytemap_encode(bm, word, len, &w->mapped);
        int32_t id = tok_strmap_get(&v->model, v, w->mapped.p, w->mapped.n);
        if (id >= 0) {
            tok_ids_push(out, id);
            return;
        }
    }
    size_t n = initial_symbols(b, w, word, len);
    struct tok_bpe_sym *s = w->sym;
    w->heap_n = 0;
    for (size_t i = 0; i + 1 < n; i++) push_pair(b, w, (int32_t)i);
    while (w->heap_n > 0) {
        struct tok_bpe_item top = heap_pop(w);
        struct tok_bpe_sym *left = &s[top.pos];
        if (!left->alive || left->next < 0) continue;
        const struct tok_merge_slot *m = tok_merges_get(&b->merges, left->id, s[left->next].id);
        if (!m || m->new_id != top.new_id) continue; /* stale entry */
        struct tok_bpe_sym *right = &s[left->next];
        left->id = top.new_id;
        left->next = right->next;
        right->alive = 0;
        if (right->next >= 0) s[right->next].prev = (int32_t)top.pos;
        push_pair(b, w, left->prev);
        push_pair(b, w, (int32_t)top.pos);
    }
    for (int32_t i = n ? 0 : -1; i >= 0; i = s[i].next) tok_ids_push(out, s[i].id);
}

void tok_bpe_work_free(struct tok_bpe_work *w)
{
    free(w->sym);
    free(w->heap);
    free(w->mapped.p);
    memset(w, 0, sizeof *w);
}

/* ---- the cache ---- */

#define CACHE_SLOTS (2 * TOK_CACHE_ENTRIES)

void tok_cache_init(struct tok_cache *c)
{
    memset(c, 0, sizeof *c);
    c->slot = mmupt_xcalloc(CACHE_SLOTS, sizeof *c->slot);
    c->e = mmupt_xmalloc(TOK_CACHE_ENTRIES * sizeof *c->e);
}

void tok_cache_free(struct tok_cache *c)
{
    free(c->slot);
    free(c->e);
    free(c->keys.p);
    free(c->ids.v);
    memset(c, 0, sizeof *c);
}

static void cache_clear(struct tok_cache *c)
{
    memset(c->slot, 0, CACHE_SLOTS * sizeof *c->slot);
    c->n = 0;
    c->keys.n = 0;
    c->ids.n = 0;
}

void tok_bpe_word_cached(const struct tok_bpe *b, const struct tok_vocab *v, const struct tok_bytemap *bm,
                         struct tok_bpe_work *w, struct tok_cache *c, const unsigned char *word, size_t len,
                         struct tok_ids *out)
{
    if (len > TOK_CACHE_MAX_WORD) {
        tok_bpe_word(b, v, bm, w, word, len, out);
        return;
    }
    uint32_t h = tok_hash((const char *)word, len);
    size_t i = h & (CACHE_SLOTS - 1);
    for (; c->slot[i]; i = (i + 1) & (CACHE_SLOTS - 1)) {
        const struct tok_cache_entry *e = &c->e[c->slot[i] - 1];
        if (e->hash != h || e->key_len != len || memcmp(c->keys.p + e->key_off, word, len) != 0) continue;
        for (size_t k = 0; k < e->n_ids; k++) tok_ids_push(out, c->ids.v[e->ids_off + k]);
        return;
    }
    size_t before = out->n;
    tok_bpe_word(b, v, bm, w, word, len, out);
    if (c->n == TOK_CACHE_ENTRIES) {
        /* Full: start over rather than track recency; the common words come straight back. */
        cache_clear(c);
        for (i = h & (CACHE_SLOTS - 1); c->slot[i]; i = (i + 1) & (CACHE_SLOTS - 1)) {}
    }
    struct tok_cache_entry *e = &c->e[c->n];
    *e = (struct tok_cache_entry){h, (uint32_t)c->keys.n, (uint32_t)c->ids.n, (uint16_t)len,
                                  (uint16_t)(out->n - before)};
    tok_buf_append(&c->keys, word, len);
    for (size_t k = before; k < out->n; k++) tok_ids_push(&c->ids, out->v[k]);
    c->slot[i] = (uint32_t)++c->n;
}
