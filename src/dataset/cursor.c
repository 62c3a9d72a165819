/* The shuffled, sharded, resumable walk over a split.
 *
 * Epoch e's order is a keyed bijection on [0, N), evaluated one position at a time, so no
 * permutation table of N entries is ever built and a cursor is three numbers. The bijection is a
 * balanced Feistel network on 2h bits (the smallest even width whose range holds N): each round
 * swaps the halves and mixes a keyed hash of one into the other, which is invertible whatever the
 * hash, hence a permutation of [0, 2^2h). Values that land at or past N are sent through the network
 * again ("cycle walking"): following the permutation's cycle from a value below N, the first value
 * below N met is unique to it, so the walk is a permutation of [0, N) too. With 2^2h < 4N the
 * expected number of passes is below 4. */
#include "mmupt/dataset.h"

#define FEISTEL_ROUNDS 6 /* 4 suffice for a pseudo-random permutation; 2 more cost nothing here */

/* splitmix64's finaliser: a fast 64-bit mix in which every input bit affects every output bit. */
static uint64_t mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

static uint64_t feistel(uint64_t x, uint64_t key, int half_bits)
{
    uint64_t mask = ((uint64_t)1 << half_bits) - 1;
    uint64_t left = x >> half_bits, right = x & mask;
    for (uint64_t round = 0; round < FEISTEL_ROUNDS; round++) {
        uint64_t f = mix64(key ^ mix64(right + (round << 56))) & mask;
        uint64_t next = left ^ f;
        left = right;
        right = next;
    }
    return (left << half_bits) | right;
}

int64_t ds_permute(uint64_t seed, int64_t epoch, int64_t g, int64_t n_items)
{
    MMUPT_CHECK(n_items > 0 && n_items <= ((int64_t)1 << 62) && g >= 0 && g < n_items);
    int bits = 0;
    while (((int64_t)1 << bits) < n_items) bits++;
    int half_bits = bits < 2 ? 1 : (bits + 1) / 2;
    /* The epoch is mixed before it meets the seed, so neighbouring seeds and epochs give unrelated keys. */
    uint64_t key = mix64(seed ^ mix64((uint64_t)epoch + 0x9e3779b97f4a7c15ULL));
    uint64_t x = (uint64_t)g;
    do x = feistel(x, key, half_bits);
    while (x >= (uint64_t)n_items);
    return (int64_t)x;
}

void ds_cursor_init(struct ds_cursor *c, uint64_t seed, int shuffle, int rank, int world)
{
    MMUPT_CHECK(world >= 1 && rank >= 0 && rank < world);
    *c = (struct ds_cursor){.seed = seed, .shuffle = shuffle != 0, .rank = rank, .world = world};
}

int64_t ds_cursor_next(struct ds_cursor *c, int64_t n_items)
{
    if (n_items <= 0) return -1;
    int64_t per_rank = n_items / c->world; /* drop_last: every rank takes the same number per epoch */
    if (per_rank == 0) return -1;
    if (c->position >= per_rank) {
        c->epoch++;
        c->position = 0;
    }
    int64_t g = c->rank + c->position * c->world;
    c->position++;
    return c->shuffle ? ds_permute(c->seed, c->epoch, g, n_items) : g;
}
