/* mmupt tokenize: encode stdin to ids, or decode ids to text, with a tokenizer.json. Binary-safe
 * both ways, so it can be checked byte for byte against the HF library. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "mmupt/err.h"
#include "mmupt/tokenizer.h"

static const char usage[] =
    "usage: mmupt tokenize --tokenizer FILE [--decode [--skip-special]]\n"
    "\n"
    "Encode all of standard input (any bytes) with the tokenizer in FILE (a tokenizer.json, or a\n"
    "directory holding one) and print the ids on one line, separated by spaces. Invalid UTF-8 is\n"
    "first replaced by U+FFFD, as Python's decode('utf-8', errors='replace') does.\n"
    "\n"
    "  --decode        read whitespace-separated ids instead and write their text exactly\n"
    "                  (no newline is added)\n"
    "  --skip-special  with --decode: leave out special tokens such as <|im_end|>\n"
    "\n"
    "Exit status: 0 ok, 1 bad input (the message names the id's position), 2 usage.\n";

/* Standard input is capped so a runaway pipe is an error, not an out-of-memory death. */
#define TOKENIZE_MAX_INPUT ((size_t)1 << 30)

static int read_stdin(char **out, size_t *len)
{
    size_t cap = 1 << 16, n = 0;
    char *buf = mmupt_xmalloc(cap + 1);
    for (;;) {
        if (n == cap) {
            if (cap >= TOKENIZE_MAX_INPUT) {
                free(buf);
                cli_error("tokenize", "standard input is larger than %zu bytes", TOKENIZE_MAX_INPUT);
                return -1;
            }
            cap *= 2;
            char *grown = realloc(buf, cap + 1);
            if (!grown) MMUPT_DIE("out of memory reading standard input");
            buf = grown;
        }
        size_t got = fread(buf + n, 1, cap - n, stdin);
        n += got;
        if (got == 0) break;
    }
    if (ferror(stdin)) {
        free(buf);
        cli_error("tokenize", "cannot read standard input: %s", strerror(errno));
        return -1;
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return 0;
}

static int encode(struct tok *t, const char *in, size_t len)
{
    int32_t *ids;
    size_t n;
    struct mmupt_err err;
    if (tok_encode(t, in, len, &ids, &n, &err)) {
        cli_error("tokenize", "%s", err.msg);
        return MMUPT_EXIT_ERROR;
    }
    for (size_t i = 0; i < n; i++) printf(i ? " %d" : "%d", (int)ids[i]);
    putchar('\n');
    free(ids);
    return MMUPT_EXIT_OK;
}

/* Parse whitespace-separated ids; each must be a decimal token id of t. */
static int parse_ids(const struct tok *t, const char *in, size_t len, int32_t **out, size_t *n)
{
    size_t cap = 256, count = 0, i = 0;
    int32_t *ids = mmupt_xmalloc(cap * sizeof *ids);
    while (i < len) {
        if (isspace((unsigned char)in[i])) {
            i++;
            continue;
        }
        size_t start = i;
        while (i < len && !isspace((unsigned char)in[i])) i++;
        const char *word = in + start;
        size_t wlen = i - start;
        long long v = -1;
        int digits = wlen <= 10;
        for (size_t k = 0; k < wlen && digits; k++) digits = isdigit((unsigned char)word[k]) != 0;
        if (digits) v = strtoll(word, NULL, 10);
        if (!digits || v >= tok_vocab_size(t) || !tok_str(t, (int32_t)v)) {
            cli_error("tokenize", "id #%zu ('%.*s', at byte %zu of the input) is not a token id (vocab size %lld)", count,
                      (int)(wlen > 40 ? 40 : wlen), word, start, (long long)tok_vocab_size(t));
            free(ids);
            return -1;
        }
        if (count == cap) {
            cap *= 2;
            ids = realloc(ids, cap * sizeof *ids);
            if (!ids) MMUPT_DIE("out of memory");
        }
        ids[count++] = (int32_t)v;
    }
    *out = ids;
    *n = count;
    return 0;
}

static int decode(const struct tok *t, const char *in, size_t len, int skip_special)
{
    int32_t *ids;
    size_t n, tlen;
    char *text;
    struct mmupt_err err;
    if (parse_ids(t, in, len, &ids, &n)) return MMUPT_EXIT_ERROR;
    int rc = tok_decode(t, ids, n, skip_special, &text, &tlen, &err);
    free(ids);
    if (rc) {
        cli_error("tokenize", "%s", err.msg);
        return MMUPT_EXIT_ERROR;
    }
    fwrite(text, 1, tlen, stdout);
    free(text);
    return MMUPT_EXIT_OK;
}

static int parse_flags(int argc, char **argv, const char **path, int *dec, int *skip)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--decode") == 0) {
            *dec = 1;
        } else if (strcmp(argv[i], "--skip-special") == 0) {
            *skip = 1;
        } else if (strcmp(argv[i], "--tokenizer") == 0 && i + 1 < argc) {
            *path = argv[++i];
        } else {
            int missing = strcmp(argv[i], "--tokenizer") == 0;
            cli_error("tokenize", "%s '%s'\n\n%s", missing ? "missing value after" : "unknown argument", argv[i], usage);
            return -1;
        }
    }
    if (!*path) {
        cli_error("tokenize", "--tokenizer FILE is required\n\n%s", usage);
        return -1;
    }
    if (*skip && !*dec) {
        cli_error("tokenize", "--skip-special only applies with --decode");
        return -1;
    }
    return 0;
}

int cmd_tokenize(int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        fputs(usage, stdout);
        return MMUPT_EXIT_OK;
    }
    const char *path = NULL;
    int dec = 0, skip = 0;
    if (parse_flags(argc, argv, &path, &dec, &skip)) return MMUPT_EXIT_USAGE;
    struct tok *t;
    struct mmupt_err err;
    if (tok_load(&t, path, &err)) {
        cli_error("tokenize", "%s", err.msg);
        return MMUPT_EXIT_ERROR;
    }
    char *in;
    size_t len;
    int rc = MMUPT_EXIT_ERROR;
    if (read_stdin(&in, &len) == 0) {
        rc = dec ? decode(t, in, len, skip) : encode(t, in, len);
        free(in);
    }
    tok_free(t);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        cli_error("tokenize", "cannot write standard output: %s", strerror(errno));
        return MMUPT_EXIT_ERROR;
    }
    return rc;
}
