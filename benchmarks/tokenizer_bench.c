/* How fast does the tokenizer encode? Megabytes of UTF-8 per second, one thread.
 *
 *   tokenizer_bench TOKENIZER.json CORPUS.bin REPEATS
 *
 * CORPUS.bin is what benchmarks/tokenizer.sh writes: a u32 document count, then per document a
 * u32 byte length and the bytes (little-endian). Two measurements, each the best of REPEATS after
 * one warm-up pass (which fills the word cache, as the HF library's is filled by its warm-up):
 *   docs   every document encoded on its own (what a data loader does)
 *   whole  all documents joined into one text, encoded at once
 * Prints one JSON line per mode, with a checksum of the ids so both sides can be compared. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mmupt/tokenizer.h"

struct doc {
    char *p;
    uint32_t n;
};

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int read_u32(FILE *f, uint32_t *v)
{
    unsigned char b[4];
    if (fread(b, 1, 4, f) != 4) return -1;
    *v = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
    return 0;
}

static struct doc *read_corpus(const char *path, uint32_t *count)
{
    FILE *f = fopen(path, "rb");
    if (!f || read_u32(f, count) || *count > (1u << 24)) {
        fprintf(stderr, "tokenizer_bench: cannot read %s\n", path);
        exit(1);
    }
    struct doc *d = calloc(*count, sizeof *d);
    for (uint32_t i = 0; i < *count; i++) {
        if (read_u32(f, &d[i].n) || d[i].n > (1u << 28) || !(d[i].p = malloc(d[i].n + 1)) ||
            fread(d[i].p, 1, d[i].n, f) != d[i].n) {
            fprintf(stderr, "tokenizer_bench: %s: truncated\n", path);
            exit(1);
        }
    }
    fclose(f);
    return d;
}

/* Encode each text; returns the id count and a checksum of all ids in order. */
static size_t encode_all(struct tok *t, const struct doc *d, uint32_t n, uint64_t *sum)
{
    size_t total = 0;
    *sum = 1469598103934665603ull;
    for (uint32_t i = 0; i < n; i++) {
        int32_t *ids;
        size_t k;
        struct mmupt_err err;
        if (tok_encode(t, d[i].p, d[i].n, &ids, &k, &err)) {
            fprintf(stderr, "tokenizer_bench: %s\n", err.msg);
            exit(1);
        }
        for (size_t j = 0; j < k; j++) *sum = (*sum ^ (uint64_t)ids[j]) * 1099511628211ull;
        total += k;
        free(ids);
    }
    return total;
}

static void measure(const char *mode, struct tok *t, const struct doc *d, uint32_t n, int repeats)
{
    size_t bytes = 0;
    for (uint32_t i = 0; i < n; i++) bytes += d[i].n;
    uint64_t sum;
    size_t ids = encode_all(t, d, n, &sum); /* warm-up */
    double best = 1e30;
    for (int r = 0; r < repeats; r++) {
        double t0 = now();
        encode_all(t, d, n, &sum);
        double dt = now() - t0;
        if (dt < best) best = dt;
    }
    printf("{\"mode\": \"%s\", \"bytes\": %zu, \"ids\": %zu, \"checksum\": \"%016llx\", \"seconds\": %.6f, "
           "\"mb_per_s\": %.3f}\n",
           mode, bytes, ids, (unsigned long long)sum, best, (double)bytes / best / 1e6);
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: tokenizer_bench TOKENIZER.json CORPUS.bin REPEATS\n");
        return 2;
    }
    struct tok *t;
    struct mmupt_err err;
    double t0 = now();
    if (tok_load(&t, argv[1], &err)) {
        fprintf(stderr, "tokenizer_bench: %s\n", err.msg);
        return 1;
    }
    fprintf(stderr, "tokenizer_bench: loaded %s in %.3f s\n", argv[1], now() - t0);
    uint32_t n;
    struct doc *d = read_corpus(argv[2], &n);
    int repeats = atoi(argv[3]) > 0 ? atoi(argv[3]) : 1;
    measure("docs", t, d, n, repeats);
    size_t total = 0;
    for (uint32_t i = 0; i < n; i++) total += d[i].n;
    struct doc whole = {malloc(total + 1), 0};
    for (uint32_t i = 0; i < n; i++) {
        memcpy(whole.p + whole.n, d[i].p, d[i].n);
        whole.n += d[i].n;
    }
    measure("whole", t, &whole, 1, repeats);
    for (uint32_t i = 0; i < n; i++) free(d[i].p);
    free(d);
    free(whole.p);
    tok_free(t);
    return 0;
}
