/* The Qwen tokenizer: byte-level BPE read from a Hugging Face tokenizer.json, matching the HF
 * `tokenizers` library id for id.
 *
 * Encoding runs the same pipeline as the HF library:
 *   1. invalid UTF-8 in the input is replaced first, each maximal invalid subpart by one U+FFFD,
 *      exactly as Python's bytes.decode('utf-8', errors='replace') does (the HF library only
 *      ever sees Python str, so this is what a caller of it gets);
 *   2. added tokens (special or not) are split out by exact match, leftmost then longest, honouring
 *      their lstrip / rstrip / single_word flags; tokens with "normalized": true are matched after
 *      step 3, on the normalized text;
 *   3. the normalizer (NFC or none) runs on each stretch between added tokens;
 *   4. the pre-tokenizer splits with its regexes (PCRE2, Unicode properties): the Qwen Sequence of
 *      Split(regex, Isolated) + ByteLevel(use_regex=false), or a plain ByteLevel(use_regex=true)
 *      with the GPT-2 regex;
 *   5. each piece's UTF-8 bytes are mapped to the GPT-2 byte alphabet and BPE-merged by rank.
 * Decoding maps tokens back to bytes (the ByteLevel decoder) and turns them into valid UTF-8 with
 * U+FFFD for broken sequences, as the HF library does.
 *
 * The command-line front end is `mmupt tokenize` (src/cli/cmd_tokenize.c), whose entry point is
 *   int cmd_tokenize(int argc, char **argv);
 */
#ifndef MMUPT_TOKENIZER_H
#define MMUPT_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "mmupt/err.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Limits on what a tokenizer.json may hold. Real files are far inside them (Qwen: 151,665 tokens,
 * 151,387 merges, 11 MB); anything beyond is refused rather than allocated. */
#define TOK_MAX_FILE_BYTES (512u << 20)
#define TOK_MAX_VOCAB (1 << 22)
#define TOK_MAX_MERGES (1 << 22)
#define TOK_MAX_ADDED 65536
#define TOK_MAX_TOKEN_BYTES 1024
#define TOK_MAX_REGEX_BYTES 4096

/* A streaming push never writes more than this many bytes, whatever the id. */
#define TOK_STREAM_OUT_MAX (3 * (TOK_MAX_TOKEN_BYTES + 4))

struct tok; /* opaque */

/* Load a tokenizer.json, or a directory holding one. */
int tok_load(struct tok **out, const char *path, struct mmupt_err *err);
/* The same from a buffer holding the JSON text; `name` is used in messages. */
int tok_load_buffer(struct tok **out, const char *name, const char *json, size_t len, struct mmupt_err *err);
void tok_free(struct tok *t);

int64_t tok_vocab_size(const struct tok *t);             /* max id + 1 over vocab and added tokens */
int32_t tok_id(const struct tok *t, const char *token);  /* exact token string (e.g. "<|im_end|>"), -1 if absent */
const char *tok_str(const struct tok *t, int32_t id);    /* token string as stored, NULL if no such id */
int tok_is_special(const struct tok *t, int32_t id);     /* 1 for an added token marked special */

/* Encode len bytes of text (any bytes; see step 1 above). *ids is malloc'd (caller frees; it is
 * a valid pointer even when *n is 0). Not thread-safe on one struct tok: the word cache is
 * shared state. Fails only when a pre-tokenizer regex exceeds its match limit. */
int tok_encode(struct tok *t, const char *text, size_t len, int32_t **ids, size_t *n, struct mmupt_err *err);

/* Decode ids to UTF-8 text; *text is malloc'd and NUL-terminated (*len excludes the NUL). With
 * skip_special, special added tokens produce nothing. An id that is not a token is an error
 * naming its position. */
int tok_decode(const struct tok *t, const int32_t *ids, size_t n, int skip_special, char **text, size_t *len,
               struct mmupt_err *err);

/* Streaming decode for rollouts: text comes out as soon as it is complete UTF-8. The bytes of a
 * character split across tokens wait in `pending`; the concatenation of every push and the final
 * flush equals tok_decode of all the ids. */
struct tok_stream {
    const struct tok *t;
    int skip_special;
    unsigned char pending[4]; /* start of an incomplete UTF-8 sequence (at most 3 bytes) */
    int n_pending;
};
void tok_stream_init(struct tok_stream *s, const struct tok *t, int skip_special);
/* Append the text id completes to out (cap bytes; TOK_STREAM_OUT_MAX always suffices); returns
 * bytes written, or -1 with err set on a bad id or a too small cap (the stream is then unchanged). */
int tok_stream_push(struct tok_stream *s, int32_t id, char *out, size_t cap, struct mmupt_err *err);
/* Emit what is still pending (a cut-off sequence becomes U+FFFD) and reset; returns bytes written
 * (at most 3, so cap >= 3 always suffices; less room gives -1). */
int tok_stream_flush(struct tok_stream *s, char *out, size_t cap);

#ifdef __cplusplus
}
#endif

#endif
