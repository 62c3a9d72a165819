/* Loading a Hugging Face tokenizer.json: model (BPE: vocab, merges, options), added_tokens,
 * normalizer, pre_tokenizer, decoder. Everything the file says is checked before it is used, and
 * any part this module does not implement is refused by name instead of being ignored: a
 * tokenizer that loads encodes exactly as the HF library would. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "internal.h"
#include "mmupt/json.h"
#include "mmupt/strutil.h"

/* ---- small JSON helpers (messages name the file and the field) ---- */

static int opt_bool(const json_t *obj, const char *key, int dflt, int *out, const char *name, const char *where,
                    struct mmupt_err *err)
{
    const json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) {
        *out = dflt;
        return 0;
    }
    if (!json_is_boolean(v)) return mmupt_fail(err, "%s: %s.%s must be true or false", name, where, key);
    *out = json_is_true(v);
    return 0;
}

/* A string field that may be absent or null (*out = NULL then). */
static int opt_string(const json_t *obj, const char *key, const char **out, size_t *len, const char *name,
                      const char *where, struct mmupt_err *err)
{
    const json_t *v = json_object_get(obj, key);
    *out = NULL;
    *len = 0;
    if (!v || json_is_null(v)) return 0;
    if (!json_is_string(v)) return mmupt_fail(err, "%s: %s.%s must be a string", name, where, key);
    *out = json_string_value(v);
    *len = json_string_length(v);
    return 0;
}

static const char *type_of(const json_t *obj)
{
    const json_t *v = json_object_get(obj, "type");
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* A component object with a string "type", or NULL when the field is absent or null. */
static int component(const json_t *root, const char *key, const json_t **out, const char **type, const char *name,
                     struct mmupt_err *err)
{
    const json_t *v = json_object_get(root, key);
    *out = NULL;
    *type = NULL;
    if (!v || json_is_null(v)) return 0;
    if (!json_is_object(v) || !type_of(v))
        return mmupt_fail(err, "%s: %s must be an object with a string 'type'", name, key);
    *out = v;
    *type = type_of(v);
    return 0;
}

static int check_token_string(const char *s, size_t len, const char *name, const char *where, struct mmupt_err *err)
{
    if (len == 0) return mmupt_fail(err, "%s: %s: empty token string", name, where);
    if (len > TOK_MAX_TOKEN_BYTES)
        return mmupt_fail(err, "%s: %s: token of %zu bytes (at most %d)", name, where, len, TOK_MAX_TOKEN_BYTES);
    if (memchr(s, '\0', len)) return mmupt_fail(err, "%s: %s: token contains a NUL character", name, where);
    return 0;
}

/* ---- model: vocab and options ---- */

struct added_spec {
    int32_t id;
    const char *content;
    size_t len;
    int special, normalized, lstrip, rstrip, single_word;
};

/* First pass over vocab and added_tokens: check ids and strings, find the largest id. */
static int scan_vocab(const json_t *vocab, int64_t *max_id, const char *name, struct mmupt_err *err)
{
    if (!json_is_object(vocab)) return mmupt_fail(err, "%s: model.vocab must be an object (token -> id)", name);
    if (json_object_size(vocab) > TOK_MAX_VOCAB)
        return mmupt_fail(err, "%s: model.vocab has %zu tokens (at most %d)", name, json_object_size(vocab), TOK_MAX_VOCAB);
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)vocab, key, v) {
        if (check_token_string(key, strlen(key), name, "model.vocab", err)) return -1;
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) >= TOK_MAX_VOCAB)
            return mmupt_fail(err, "%s: model.vocab: id of '%s' must be an integer in [0, %d)", name, key, TOK_MAX_VOCAB);
        if (json_integer_value(v) > *max_id) *max_id = json_integer_value(v);
    }
    return 0;
}

static int scan_added(const json_t *arr, struct added_spec **out, size_t *n, int64_t *max_id, const char *name,
                      struct mmupt_err *err)
{
    *out = NULL;
    *n = 0;
    if (!arr || json_is_null(arr)) return 0;
    if (!json_is_array(arr)) return mmupt_fail(err, "%s: added_tokens must be a list", name);
    if (json_array_size(arr) > TOK_MAX_ADDED)
        return mmupt_fail(err, "%s: added_tokens has %zu entries (at most %d)", name, json_array_size(arr), TOK_MAX_ADDED);
    struct added_spec *a = mmupt_xcalloc(json_array_size(arr) + 1, sizeof *a);
    for (size_t i = 0; i < json_array_size(arr); i++) {
        const json_t *e = json_array_get(arr, i);
        char where[64];
        snprintf(where, sizeof where, "added_tokens[%zu]", i);
        struct added_spec *s = &a[i];
        int64_t id;
        const char *content;
        if (!json_is_object(e)) {
            free(a);
            return mmupt_fail(err, "%s: %s must be an object", name, where);
        }
        if (json_get_int(e, "id", &id, where, err) || json_get_string(e, "content", &content, where, err)) {
            mmupt_err_prefix(err, "%s", name);
            free(a);
            return -1;
        }
        s->content = content;
        s->len = json_string_length(json_object_get(e, "content"));
        if (id < 0 || id >= TOK_MAX_VOCAB) {
            free(a);
            return mmupt_fail(err, "%s: %s.id must be in [0, %d)", name, where, TOK_MAX_VOCAB);
        }
        s->id = (int32_t)id;
        if (check_token_string(content, s->len, name, where, err) ||
            opt_bool(e, "special", 0, &s->special, name, where, err) ||
            opt_bool(e, "normalized", !s->special, &s->normalized, name, where, err) ||
            opt_bool(e, "lstrip", 0, &s->lstrip, name, where, err) ||
            opt_bool(e, "rstrip", 0, &s->rstrip, name, where, err) ||
            opt_bool(e, "single_word", 0, &s->single_word, name, where, err)) {
            free(a);
            return -1;
        }
        if (id > *max_id) *max_id = id;
    }
    *out = a;
    *n = json_array_size(arr);
    return 0;
}

static int check_model_options(struct tok *t, const json_t *model, const char *name, struct mmupt_err *err)
{
    const char *s;
    size_t len;
    const json_t *dropout = json_object_get(model, "dropout");
    if (dropout && !json_is_null(dropout) && !(json_is_number(dropout) && json_number_value(dropout) == 0.0))
        return mmupt_fail(err, "%s: model.dropout: BPE dropout is not supported (must be null)", name);
    if (opt_string(model, "continuing_subword_prefix", &s, &len, name, "model", err)) return -1;
    if (len)
        return mmupt_fail(err, "%s: model.continuing_subword_prefix '%s' is not supported (byte-level BPE has none)",
                          name, s);
    if (opt_string(model, "end_of_word_suffix", &s, &len, name, "model", err)) return -1;
    if (len)
        return mmupt_fail(err, "%s: model.end_of_word_suffix '%s' is not supported (byte-level BPE has none)", name, s);
    int byte_fallback = 0;
    if (opt_bool(model, "byte_fallback", 0, &byte_fallback, name, "model", err) ||
        opt_bool(model, "fuse_unk", 0, &t->bpe.fuse_unk, name, "model", err) ||
        opt_bool(model, "ignore_merges", 0, &t->bpe.ignore_merges, name, "model", err))
        return -1;
    if (byte_fallback) return mmupt_fail(err, "%s: model.byte_fallback is not supported (byte-level BPE needs none)", name);
    t->bpe.unk_id = -1;
    if (opt_string(model, "unk_token", &s, &len, name, "model", err)) return -1;
    if (s) {
        t->bpe.unk_id = tok_strmap_get(&t->vocab.model, &t->vocab, s, len);
        if (t->bpe.unk_id < 0) return mmupt_fail(err, "%s: model.unk_token '%s' is not in model.vocab", name, s);
    }
    return 0;
}

static void alloc_ids(struct tok_vocab *v, int64_t n_ids)
{
    v->n_ids = n_ids;
    v->off = mmupt_xmalloc((size_t)n_ids * sizeof *v->off);
    v->len = mmupt_xcalloc((size_t)n_ids, sizeof *v->len);
    v->flags = mmupt_xcalloc((size_t)n_ids, sizeof *v->flags);
    for (int64_t i = 0; i < n_ids; i++) v->off[i] = UINT32_MAX;
}

static int fill_vocab(struct tok *t, const json_t *vocab, const char *name, struct mmupt_err *err)
{
    struct tok_vocab *v = &t->vocab;
    tok_strmap_init(&v->model, json_object_size(vocab));
    const char *key;
    const json_t *val;
    json_object_foreach((json_t *)vocab, key, val) {
        int32_t id = (int32_t)json_integer_value(val);
        if (tok_vocab_set(v, id, key, strlen(key), err)) {
            mmupt_err_prefix(err, "%s: model.vocab", name);
            return -1;
        }
        v->flags[id] |= TOK_IN_VOCAB;
        tok_strmap_put(&v->model, v, id);
    }
    return 0;
}

static int fill_added(struct tok *t, const struct added_spec *a, size_t n, const char *name, struct mmupt_err *err)
{
    struct tok_vocab *v = &t->vocab;
    tok_strmap_init(&v->added, n);
    for (size_t i = 0; i < n; i++) {
        int32_t in_vocab = tok_strmap_get(&v->model, v, a[i].content, a[i].len);
        if (in_vocab >= 0 && in_vocab != a[i].id)
            return mmupt_fail(err, "%s: added_tokens[%zu]: '%s' has id %d but model.vocab gives it id %d", name, i,
                              a[i].content, (int)a[i].id, (int)in_vocab);
        if (v->flags[a[i].id] & TOK_ADDED)
            return mmupt_fail(err, "%s: added_tokens[%zu]: id %d is given to two added tokens", name, i, (int)a[i].id);
        if (tok_vocab_set(v, a[i].id, a[i].content, a[i].len, err)) {
            mmupt_err_prefix(err, "%s: added_tokens[%zu]", name, i);
            return -1;
        }
        if (tok_strmap_put(&v->added, v, a[i].id) >= 0)
            return mmupt_fail(err, "%s: added_tokens[%zu]: '%s' is listed twice", name, i, a[i].content);
        v->flags[a[i].id] |= TOK_ADDED | (a[i].special ? TOK_SPECIAL : 0) | (a[i].normalized ? TOK_NORMALIZED : 0);
    }
    return 0;
}

/* ---- merges ---- */

static int merge_parts(const json_t *e, const char **a, size_t *alen, const char **b, size_t *blen)
{
    if (json_is_string(e)) {
        /* The older form, "left right": exactly one space (byte-level tokens contain none). */
        const char *s = json_string_value(e), *sp = strchr(s, ' ');
        if (!sp || strchr(sp + 1, ' ') || sp == s || sp[1] == '\0') return -1;
        *a = s;
        *alen = (size_t)(sp - s);
        *b = sp + 1;
        *blen = strlen(sp + 1);
        return 0;
    }
    if (json_is_array(e) && json_array_size(e) == 2 && json_is_string(json_array_get(e, 0)) &&
        json_is_string(json_array_get(e, 1))) {
        *a = json_string_value(json_array_get(e, 0));
        *alen = json_string_length(json_array_get(e, 0));
        *b = json_string_value(json_array_get(e, 1));
        *blen = json_string_length(json_array_get(e, 1));
        return 0;
    }
    return -1;
}

static int load_merges(struct tok *t, const json_t *merges, const char *name, struct mmupt_err *err)
{
    if (!json_is_array(merges)) return mmupt_fail(err, "%s: model.merges must be a list", name);
    size_t n = json_array_size(merges);
    if (n > TOK_MAX_MERGES) return mmupt_fail(err, "%s: model.merges has %zu entries (at most %d)", name, n, TOK_MAX_MERGES);
    struct tok_vocab *v = &t->vocab;
    tok_merges_init(&t->bpe.merges, n);
    char joined[2 * TOK_MAX_TOKEN_BYTES];
    for (size_t i = 0; i < n; i++) {
        const char *a, *b;
        size_t alen, blen;
        if (merge_parts(json_array_get(merges, i), &a, &alen, &b, &blen))
            return mmupt_fail(err, "%s: model.merges[%zu] must be \"left right\" or [left, right]", name, i);
        int32_t ia = tok_strmap_get(&v->model, v, a, alen), ib = tok_strmap_get(&v->model, v, b, blen);
        if (ia < 0 || ib < 0)
            return mmupt_fail(err, "%s: model.merges[%zu]: '%.*s' is not in model.vocab", name, i,
                              (int)(ia < 0 ? alen : blen), ia < 0 ? a : b);
        memcpy(joined, a, alen);
        memcpy(joined + alen, b, blen); /* both are vocab strings, so at most TOK_MAX_TOKEN_BYTES each */
        int32_t ij = tok_strmap_get(&v->model, v, joined, alen + blen);
        if (ij < 0)
            return mmupt_fail(err, "%s: model.merges[%zu]: the merged token '%.*s' is not in model.vocab", name, i,
                              (int)(alen + blen), joined);
        tok_merges_put(&t->bpe.merges, ia, ib, (uint32_t)i, ij);
    }
    return 0;
}

/* ---- normalizer, pre-tokenizer, decoder ---- */

static int load_normalizer(struct tok *t, const json_t *root, const char *name, struct mmupt_err *err)
{
    const json_t *n;
    const char *type;
    if (component(root, "normalizer", &n, &type, name, err)) return -1;
    if (!n) return 0;
    if (strcmp(type, "NFC") == 0) {
        t->pretok.nfc = 1;
        return 0;
    }
    if (strcmp(type, "Sequence") == 0) {
        const json_t *list = json_object_get(n, "normalizers");
        if (!json_is_array(list)) return mmupt_fail(err, "%s: normalizer.normalizers must be a list", name);
        for (size_t i = 0; i < json_array_size(list); i++) {
            const char *ti = type_of(json_array_get(list, i));
            if (!ti || strcmp(ti, "NFC") != 0)
                return mmupt_fail(err, "%s: normalizer.normalizers[%zu]: type '%s' is not supported (only NFC)", name, i,
                                  ti ? ti : "?");
            t->pretok.nfc = 1;
        }
        return 0;
    }
    return mmupt_fail(err, "%s: normalizer: type '%s' is not supported (only NFC, a Sequence of NFC, or none)", name, type);
}

static int load_split(struct tok *t, const json_t *s, const char *where, const char *name, struct mmupt_err *err)
{
    const json_t *pat = json_object_get(s, "pattern");
    const json_t *re = json_is_object(pat) ? json_object_get(pat, "Regex") : NULL;
    const json_t *lit = json_is_object(pat) ? json_object_get(pat, "String") : NULL;
    if (!json_is_string(re) && !json_is_string(lit))
        return mmupt_fail(err, "%s: %s.pattern must be {\"Regex\": ...} or {\"String\": ...}", name, where);
    const json_t *behavior = json_object_get(s, "behavior");
    if (!json_is_string(behavior) || strcmp(json_string_value(behavior), "Isolated") != 0)
        return mmupt_fail(err, "%s: %s.behavior '%s' is not supported (only Isolated)", name, where,
                          json_is_string(behavior) ? json_string_value(behavior) : "?");
    int invert = 0;
    if (opt_bool(s, "invert", 0, &invert, name, where, err)) return -1;
    if (invert) return mmupt_fail(err, "%s: %s.invert: inverted splits are not supported", name, where);
    const json_t *p = re ? re : lit;
    char full[128];
    snprintf(full, sizeof full, "%s: %s.pattern", name, where);
    return tok_pretok_add_split(&t->pretok, json_string_value(p), json_string_length(p), lit != NULL, full, err);
}

static int load_bytelevel(struct tok *t, const json_t *b, const char *where, const char *name, struct mmupt_err *err)
{
    int prefix = 0, use_regex = 0;
    if (opt_bool(b, "add_prefix_space", 1, &prefix, name, where, err) ||
        opt_bool(b, "use_regex", 1, &use_regex, name, where, err))
        return -1;
    char full[128];
    snprintf(full, sizeof full, "%s: %s", name, where);
    if (prefix && tok_pretok_add_prefix_space(&t->pretok, full, err)) return -1;
    if (use_regex && tok_pretok_add_split(&t->pretok, tok_gpt2_regex, strlen(tok_gpt2_regex), 0, full, err)) return -1;
    return 0;
}

static int load_pretokenizer(struct tok *t, const json_t *root, const char *name, struct mmupt_err *err)
{
    const json_t *p;
    const char *type;
    if (component(root, "pre_tokenizer", &p, &type, name, err)) return -1;
    if (!p) return mmupt_fail(err, "%s: pre_tokenizer is missing: a byte-level BPE needs ByteLevel", name);
    if (strcmp(type, "ByteLevel") == 0) return load_bytelevel(t, p, "pre_tokenizer", name, err);
    if (strcmp(type, "Sequence") != 0)
        return mmupt_fail(err, "%s: pre_tokenizer: type '%s' is not supported (ByteLevel, or a Sequence of Split and "
                          "ByteLevel)", name, type);
    const json_t *list = json_object_get(p, "pretokenizers");
    if (!json_is_array(list)) return mmupt_fail(err, "%s: pre_tokenizer.pretokenizers must be a list", name);
    size_t n = json_array_size(list);
    for (size_t i = 0; i < n; i++) {
        const json_t *e = json_array_get(list, i);
        const char *ti = json_is_object(e) ? type_of(e) : NULL;
        char where[64];
        snprintf(where, sizeof where, "pre_tokenizer.pretokenizers[%zu]", i);
        if (ti && strcmp(ti, "Split") == 0 && i + 1 < n) {
            if (load_split(t, e, where, name, err)) return -1;
        } else if (ti && strcmp(ti, "ByteLevel") == 0 && i + 1 == n) {
            return load_bytelevel(t, e, where, name, err);
        } else {
            return mmupt_fail(err, "%s: %s: type '%s' is not supported here (Split steps, then one ByteLevel last)", name,
                              where, ti ? ti : "?");
        }
    }
    return mmupt_fail(err, "%s: pre_tokenizer: the Sequence must end with ByteLevel", name);
}

static int check_other_parts(const json_t *root, const char *name, struct mmupt_err *err)
{
    const json_t *c;
    const char *type;
    if (component(root, "decoder", &c, &type, name, err)) return -1;
    if (!c || strcmp(type, "ByteLevel") != 0)
        return mmupt_fail(err, "%s: decoder: type '%s' is not supported (only ByteLevel)", name, c ? type : "none");
    if (component(root, "post_processor", &c, &type, name, err)) return -1;
    if (c && strcmp(type, "ByteLevel") != 0)
        return mmupt_fail(err, "%s: post_processor: type '%s' is not supported (only ByteLevel or none: a post-processor "
                          "that adds tokens would change the ids)", name, type);
    const char *keys[] = {"truncation", "padding"};
    for (int i = 0; i < 2; i++) {
        const json_t *v = json_object_get(root, keys[i]);
        if (v && !json_is_null(v)) return mmupt_fail(err, "%s: %s is not supported (must be null)", name, keys[i]);
    }
    return 0;
}

/* ---- derived tables ---- */

/* Two sets, as in the HF library: "normalized": false tokens are matched on the raw text first;
 * "normalized": true ones, by their normalized content, on what lies between, after NFC. */
static int build_added_sets(struct tok *t, const struct added_spec *a, size_t n, const char *name,
                            struct mmupt_err *err)
{
    for (size_t i = 0; i < n; i++) {
        const struct added_spec *s = &a[i];
        const char *c = s->content;
        size_t len = s->len;
        if (s->normalized && t->pretok.nfc) {
            int rc = tok_nfc(c, len, &t->norm);
            if (rc < 0) return mmupt_fail(err, "%s: added_tokens[%zu]: cannot normalize '%s'", name, i, c);
            if (rc == 0) c = t->norm.p, len = t->norm.n;
        }
        tok_added_set_add(s->normalized ? &t->added_norm : &t->added_raw, s->id, c, len, s->lstrip, s->rstrip,
                          s->single_word);
    }
    tok_added_set_finish(&t->added_raw);
    tok_added_set_finish(&t->added_norm);
    return 0;
}

static int build_decoded(struct tok *t, const char *name, struct mmupt_err *err)
{
    struct tok_vocab *v = &t->vocab;
    v->dec_off = mmupt_xmalloc((size_t)(v->n_ids + 1) * sizeof *v->dec_off);
    for (int64_t id = 0; id < v->n_ids; id++) {
        v->dec_off[id] = (uint32_t)v->decs.n;
        size_t len;
        const char *s = tok_vocab_str(v, (int32_t)id, &len);
        if (!s) continue;
        /* The HF library decodes a "normalized" added token from its normalized content (while
         * looking it up by the content as written): "cafe\u0301" decodes as "caf\u00e9" would. */
        int nf = (v->flags[id] & TOK_NORMALIZED) && (v->flags[id] & TOK_ADDED) && t->pretok.nfc;
        if (nf && tok_nfc(s, len, &t->norm) == 0) s = t->norm.p, len = t->norm.n;
        /* NFC can lengthen text (U+0958 becomes two code points); the streaming decoder's
         * buffers rely on this bound. */
        if (len > TOK_MAX_TOKEN_BYTES)
            return mmupt_fail(err, "%s: added token %lld is %zu bytes after NFC (at most %d)", name, (long long)id, len,
                              TOK_MAX_TOKEN_BYTES);
        tok_bytemap_decode(&t->bytemap, s, len, &v->decs);
    }
    v->dec_off[v->n_ids] = (uint32_t)v->decs.n;
    return 0;
}

static void build_byte_ids(struct tok *t)
{
    for (int b = 0; b < 256; b++) {
        unsigned char one = (unsigned char)b;
        struct tok_buf s = {0};
        tok_bytemap_encode(&t->bytemap, &one, 1, &s);
        t->bpe.byte_id[b] = tok_strmap_get(&t->vocab.model, &t->vocab, s.p, s.n);
        free(s.p);
    }
}

static int load_root(struct tok *t, const json_t *root, const char *name, struct mmupt_err *err)
{
    if (!json_is_object(root)) return mmupt_fail(err, "%s: not a tokenizer.json (the top level must be an object)", name);
    const json_t *model = json_object_get(root, "model");
    if (!json_is_object(model)) return mmupt_fail(err, "%s: missing field 'model' (an object)", name);
    const char *mtype = type_of(model);
    if (!mtype || strcmp(mtype, "BPE") != 0)
        return mmupt_fail(err, "%s: model.type '%s' is not supported (only BPE)", name, mtype ? mtype : "(missing)");
    const json_t *vocab = json_object_get(model, "vocab"), *merges = json_object_get(model, "merges");
    if (!vocab) return mmupt_fail(err, "%s: missing field 'model.vocab'", name);
    if (!merges) return mmupt_fail(err, "%s: missing field 'model.merges'", name);
    int64_t max_id = -1;
    struct added_spec *added = NULL;
    size_t n_added = 0;
    if (scan_vocab(vocab, &max_id, name, err) || scan_added(json_object_get(root, "added_tokens"), &added, &n_added,
                                                             &max_id, name, err))
        return -1;
    if (max_id < 0) {
        free(added);
        return mmupt_fail(err, "%s: model.vocab is empty", name);
    }
    alloc_ids(&t->vocab, max_id + 1);
    tok_bytemap_init(&t->bytemap);
    int rc = fill_vocab(t, vocab, name, err) || fill_added(t, added, n_added, name, err) ||
             check_model_options(t, model, name, err) || load_merges(t, merges, name, err) ||
             load_normalizer(t, root, name, err) || load_pretokenizer(t, root, name, err) ||
             check_other_parts(root, name, err) || build_added_sets(t, added, n_added, name, err) ||
             build_decoded(t, name, err);
    free(added);
    if (rc) return -1;
    build_byte_ids(t);
    tok_cache_init(&t->cache);
    return 0;
}

int tok_load_buffer(struct tok **out, const char *name, const char *json, size_t len, struct mmupt_err *err)
{
    json_t *root;
    if (len > TOK_MAX_FILE_BYTES)
        return mmupt_fail(err, "%s: too large (%zu bytes; at most %u)", name, len, TOK_MAX_FILE_BYTES);
    if (json_parse_text(name, json, len, &root, err)) return -1;
    struct tok *t = mmupt_xcalloc(1, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    int rc = load_root(t, root, name, err);
    json_decref(root);
    if (rc) {
        tok_free(t);
        return -1;
    }
    *out = t;
    return 0;
}

int tok_load(struct tok **out, const char *path, struct mmupt_err *err)
{
    char file[4096];
    struct stat st;
    int n = stat(path, &st) == 0 && S_ISDIR(st.st_mode) ? snprintf(file, sizeof file, "%s/tokenizer.json", path)
                                                          : snprintf(file, sizeof file, "%s", path);
    if (n < 0 || (size_t)n >= sizeof file) return mmupt_fail(err, "%s: path too long", path);
    char *text;
    size_t len;
    if (file_read_all(file, TOK_MAX_FILE_BYTES, &text, &len, err)) return -1;
    int rc = tok_load_buffer(out, file, text, len, err);
    free(text);
    return rc;
}

void tok_free(struct tok *t)
{
    if (!t) return;
    tok_vocab_free(&t->vocab);
    tok_merges_free(&t->bpe.merges);
    tok_added_set_free(&t->added_raw);
    tok_added_set_free(&t->added_norm);
    tok_pretok_free(&t->pretok);
    tok_cache_free(&t->cache);
    tok_bpe_work_free(&t->work);
    free(t->clean.p);
    free(t->norm.p);
    free(t->scratch.p);
    free(t);
}
