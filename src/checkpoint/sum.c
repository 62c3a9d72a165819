/* ckpt_sum64: a checksum fast enough that verifying a checkpoint costs little next to reading it.
 * Four independent lanes over 8-byte words (so the multiplies pipeline), each word mixed by a
 * multiply and a rotation, then the lanes and the length folded together by splitmix64's finaliser.
 * Any single flipped bit changes the result; it is not meant to resist deliberate forgery. */
#include <string.h>

#include "mmupt/checkpoint.h"

#define P1 0x9e3779b185ebca87ull
#define P2 0xc2b2ae3d27d4eb4full

static uint64_t rotl(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }

static uint64_t lane(uint64_t h, uint64_t w) { return rotl(h ^ (w * P2), 31) * P1; }

static uint64_t fmix(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

uint64_t ckpt_sum64(const void *data, size_t n)
{
    const unsigned char *p = data;
    uint64_t h[4] = {P1, P2, P1 ^ P2, ~P1};
    size_t i = 0;
    for (; i + 32 <= n; i += 32)
        for (int j = 0; j < 4; j++) {
            uint64_t w;
            memcpy(&w, p + i + 8 * j, 8); /* native order: files are read on the architecture that wrote them */
            h[j] = lane(h[j], w);
        }
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        h[0] = lane(h[0], w);
    }
    uint64_t tail = 0;
    memcpy(&tail, p + i, n - i);
    h[1] = lane(h[1], tail ^ ((uint64_t)(n - i) << 56));
    uint64_t x = (uint64_t)n;
    for (int j = 0; j < 4; j++) x = fmix(x ^ h[j]) + (uint64_t)j;
    return x;
}
