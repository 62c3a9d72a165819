/* Internals of the tokenizer module, shared by its files and by the unit tests. */
#ifndef MMUPT_TOKENIZER_INTERNAL_H
#define MMUPT_TOKENIZER_INTERNAL_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stddef.h>
#include <stdint.h>

#include "mmupt/err.h"
#include "mmupt/tokenizer.h"

/* ---- growable buffers (fatal on exhaustion: sizes come from checked inputs) ---- */
struct tok_buf {
    char *p;
    size_t n, cap;
};
void tok_buf_reserve(struct tok_buf *b, size_t extra);
void tok_buf_append(struct tok_buf *b, const void *data, size_t n);

struct tok_ids {
    int32_t *v;
    size_t n, cap;
};
void tok_ids_push(struct tok_ids *ids, int32_t id);

/* ---- UTF-8 (utf8.c) ---- */
/* Convert bytes to valid UTF-8, each maximal invalid subpart becoming U+FFFD (EF BF BD), the
 * rule of Python's decode(errors='replace') and Rust's from_utf8_lossy. Appends to out. With
 * final == 0 a cut-off but so far valid sequence at the end is left unconsumed (for streaming);
 * returns the number of input bytes consumed. */
size_t tok_utf8_lossy(const unsigned char *in, size_t n, int final, struct tok_buf *out);
/* The same into out, which has room for 3 * n bytes; *out_n receives the bytes written. */
size_t tok_utf8_lossy_raw(const unsigned char *in, size_t n, int final, char *out, size_t *out_n);
/* 1 when the whole buffer is valid UTF-8. */
int tok_utf8_valid(const unsigned char *s, size_t n);
/* Decode the code point at s (valid UTF-8, n bytes available); returns its length. */
size_t tok_utf8_next(const unsigned char *s, size_t n, uint32_t *cp);
/* Encode cp as UTF-8 into out (4 bytes room); returns the length. */
size_t tok_utf8_put(uint32_t cp, unsigned char *out);
/* Unicode White_Space (Rust's \s), and Rust's \w word characters (approximated by general
 * category: letters, marks, decimal and letter numbers, connector punctuation, ZWJ/ZWNJ). */
int tok_is_space(uint32_t cp);
int tok_is_word(uint32_t cp);

/* ---- the GPT-2 byte <-> unicode map (bytelevel.c) ---- */
struct tok_bytemap {
    uint16_t cp[256];           /* byte -> code point it is shown as */
    int16_t byte_of[324];       /* code point (< 324) -> byte, or -1 */
};
void tok_bytemap_init(struct tok_bytemap *m);
/* The ByteLevel decoder on one token string: its bytes through the reverse map when every
 * character is in the map, else the string's own UTF-8 bytes (what the HF library does). */
void tok_bytemap_decode(const struct tok_bytemap *m, const char *s, size_t len, struct tok_buf *out);
/* The byte-level form (mapped characters, UTF-8) of raw bytes. */
void tok_bytemap_encode(const struct tok_bytemap *m, const unsigned char *s, size_t len, struct tok_buf *out);

/* ---- token strings: id -> string, string -> id (vocab.c) ---- */
enum { TOK_IN_VOCAB = 1, TOK_ADDED = 2, TOK_SPECIAL = 4, TOK_NORMALIZED = 8 };

struct tok_strmap {       /* open addressing over ids; the strings live in struct tok_vocab */
    int32_t *slot;        /* id, or -1 for empty */
    uint32_t *hash;       /* the slot's string hash, to skip most string compares */
    size_t mask;
};

struct tok_vocab {
    int64_t n_ids;        /* max id + 1 */
    uint32_t *off;        /* per id: offset of its NUL-terminated string in strs, UINT32_MAX if none */
    uint16_t *len;
    uint8_t *flags;       /* TOK_IN_VOCAB | TOK_ADDED | TOK_SPECIAL | TOK_NORMALIZED */
    struct tok_buf strs;
    uint32_t *dec_off;    /* n_ids + 1 offsets: id decodes to decs[dec_off[id] .. dec_off[id + 1]) */
    struct tok_buf decs;
    struct tok_strmap model, added; /* the BPE model's strings; added-token contents */
};
uint32_t tok_hash(const char *s, size_t len);
void tok_strmap_init(struct tok_strmap *m, size_t expected);
void tok_strmap_free(struct tok_strmap *m);
/* Insert id under its string (already stored in v); returns the id already there, or -1. */
int32_t tok_strmap_put(struct tok_strmap *m, const struct tok_vocab *v, int32_t id);
int32_t tok_strmap_get(const struct tok_strmap *m, const struct tok_vocab *v, const char *s, size_t len);
/* Give id its string (first time) or check it is the same (second time). */
int tok_vocab_set(struct tok_vocab *v, int32_t id, const char *s, size_t len, struct mmupt_err *err);
const char *tok_vocab_str(const struct tok_vocab *v, int32_t id, size_t *len);
void tok_vocab_free(struct tok_vocab *v);

/* ---- BPE merges and the word cache (bpe.c) ---- */
struct tok_merge_slot {
    uint64_t key;          /* (left id << 32) | right id */
    uint32_t rank;
    int32_t new_id;        /* -1: empty slot */
};
struct tok_merges {
    struct tok_merge_slot *slot;
    size_t mask, n;
};
void tok_merges_init(struct tok_merges *m, size_t expected);
void tok_merges_free(struct tok_merges *m);
/* A later merge of the same pair replaces the earlier one, as in the HF library. */
void tok_merges_put(struct tok_merges *m, int32_t a, int32_t b, uint32_t rank, int32_t new_id);
const struct tok_merge_slot *tok_merges_get(const struct tok_merges *m, int32_t a, int32_t b);

struct tok_bpe {
    struct tok_merges merges;
    int32_t byte_id[256];  /* id of the one-character token of each byte, -1 if not in the vocab */
    int32_t unk_id;        /* -1: characters outside the vocab are dropped (HF without unk_token) */
    int fuse_unk;
    int ignore_merges;     /* a word that is itself a token skips the merges */
};

/* Word -> ids cache, bounded: when full it is emptied and refilled. */
#define TOK_CACHE_MAX_WORD 64
#define TOK_CACHE_ENTRIES 16384
struct tok_cache_entry {
    uint32_t hash, key_off, ids_off;
    uint16_t key_len, n_ids;
};
struct tok_cache {
    uint32_t *slot;        /* entry index + 1, 0 = empty; 2 * TOK_CACHE_ENTRIES slots */
    struct tok_cache_entry *e;
    size_t n;
    struct tok_buf keys;
    struct tok_ids ids;
};
void tok_cache_init(struct tok_cache *c);
void tok_cache_free(struct tok_cache *c);

/* Scratch space of the BPE merge loop, reused across words. */
struct tok_bpe_work {
    struct tok_bpe_sym *sym;
    size_t sym_cap;
    struct tok_bpe_item *heap;
    size_t heap_n, heap_cap;
    struct tok_buf mapped;
};
void tok_bpe_work_free(struct tok_bpe_work *w);

/* BPE of one pre-tokenized word (raw bytes), ids appended to out. */
void tok_bpe_word(const struct tok_bpe *b, const struct tok_vocab *v, const struct tok_bytemap *bm,
                  struct tok_bpe_work *w, const unsigned char *word, size_t len, struct tok_ids *out);
/* The same through the cache. */
void tok_bpe_word_cached(const struct tok_bpe *b, const struct tok_vocab *v, const struct tok_bytemap *bm,
                         struct tok_bpe_work *w, struct tok_cache *c, const unsigned char *word, size_t len,
                         struct tok_ids *out);

/* ---- added tokens (added.c) ---- */
struct tok_added {
    int32_t id;
    uint32_t off, len;     /* content (normalized when matched on normalized text) in the set's text */
    uint8_t first;         /* its first byte */
    uint8_t lstrip, rstrip, single_word;
};
struct tok_added_set {
    struct tok_added *v;   /* sorted by first byte, then longest first */
    size_t n;
    uint32_t first[257];   /* v[first[c] .. first[c+1]) start with byte c */
    struct tok_buf text;
};
void tok_added_set_add(struct tok_added_set *s, int32_t id, const char *content, size_t len, int lstrip,
                       int rstrip, int single_word);
void tok_added_set_finish(struct tok_added_set *s);
void tok_added_set_free(struct tok_added_set *s);
/* Find the next added token in text[from..n): leftmost, then longest, skipping single_word
 * tokens inside words; start/end include the whitespace lstrip/rstrip absorb (never before
 * `from`, where the previous match ended). Returns the id, or -1 when none is left. */
int32_t tok_added_find(const struct tok_added_set *s, const char *text, size_t n, size_t from, size_t *start,
                       size_t *end);

/* ---- normalizer and pre-tokenizer (pretok.c) ---- */
#define TOK_MAX_STAGES 8
enum tok_stage_kind { TOK_STAGE_SPLIT, TOK_STAGE_PREFIX_SPACE };
struct tok_stage {
    enum tok_stage_kind kind;
    pcre2_code *code;
    pcre2_match_data *md;
    int jit;
};
struct tok_pretok {
    int nfc;
    struct tok_stage stage[TOK_MAX_STAGES];
    int n_stages;
    pcre2_match_context *mctx;
    pcre2_jit_stack *jit_stack;
};
/* The regex of ByteLevel(use_regex=true): GPT-2's. */
extern const char tok_gpt2_regex[];
/* Compile a regex (Oniguruma syntax as HF writes it; PCRE2 reads the same constructs) as a stage;
 * literal = 1 for a Split pattern given as {"String": ...}. */
int tok_pretok_add_split(struct tok_pretok *p, const char *pattern, size_t len, int literal, const char *where,
                         struct mmupt_err *err);
int tok_pretok_add_prefix_space(struct tok_pretok *p, const char *where, struct mmupt_err *err);
void tok_pretok_free(struct tok_pretok *p);
/* NFC of s (valid UTF-8): returns 1 when s is certainly NFC already (out untouched), 0 when out
 * now holds the normalized text, -1 if utf8proc refuses it. */
int tok_nfc(const char *s, size_t len, struct tok_buf *out);

/* Called with each pre-tokenized piece. */
typedef void (*tok_piece_fn)(void *ctx, const unsigned char *piece, size_t len);
/* Run the stages from `first` on one piece. Returns 0, or -1 when a regex hits its match limit. */
int tok_pretok_run(const struct tok_pretok *p, int first, const unsigned char *s, size_t len, struct tok_buf *scratch,
                   tok_piece_fn fn, void *ctx, struct mmupt_err *err);

/* ---- the whole tokenizer ---- */
struct tok {
    char name[256];           /* file, for messages */
    struct tok_vocab vocab;
    struct tok_bytemap bytemap;
    struct tok_bpe bpe;
    struct tok_added_set added_raw, added_norm; /* "normalized": false / true */
    struct tok_pretok pretok;
    /* encode state (why the tokenizer is not thread-safe) */
    struct tok_cache cache;
    struct tok_bpe_work work;
    struct tok_buf clean, norm, scratch;
};

#endif
