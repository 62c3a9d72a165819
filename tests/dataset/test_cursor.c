/* The dataset cursor: each epoch a permutation, different per epoch and seed; shards that split an
 * epoch's first floor(N/W)*W positions without overlap; exact resumption from (seed, epoch,
 * position); the edge cases N = 1 and N < W; file order without shuffling. */
#include <stdlib.h>
#include <string.h>

#include "../test.h"
#include "mmupt/dataset.h"

static void test_permutation(struct test_state *ts)
{
    static const int64_t sizes[] = {1, 2, 3, 4, 5, 7, 16, 17, 100, 1000, 1024, 1025, 4099};
    static const uint64_t seeds[] = {0, 1, 12345, 0xffffffffffffffffULL};
    for (size_t a = 0; a < sizeof sizes / sizeof sizes[0]; a++) {
        int64_t n = sizes[a];
        char *seen = malloc((size_t)n);
        for (size_t b = 0; b < sizeof seeds / sizeof seeds[0]; b++)
            for (int64_t epoch = 0; epoch < 3; epoch++) {
                memset(seen, 0, (size_t)n);
                int ok = 1;
                for (int64_t g = 0; g < n; g++) {
                    int64_t v = ds_permute(seeds[b], epoch, g, n);
                    if (v < 0 || v >= n || seen[v]) ok = 0;
                    else seen[v] = 1;
                }
                CHECK_MSG(ts, ok, "N=%lld seed=%llu epoch=%lld is not a permutation", (long long)n,
                          (unsigned long long)seeds[b], (long long)epoch);
            }
        free(seen);
    }
}

/* Positions where two orders of [0, n) agree; random permutations agree in about one. */
static int64_t agreements(uint64_t s1, int64_t e1, uint64_t s2, int64_t e2, int64_t n)
{
    int64_t same = 0;
    for (int64_t g = 0; g < n; g++) same += ds_permute(s1, e1, g, n) == ds_permute(s2, e2, g, n);
    return same;
}

static void test_orders_differ(struct test_state *ts)
{
    const int64_t n = 1000;
    CHECK(ts, agreements(7, 0, 7, 1, n) < 20);  /* epochs differ */
    CHECK(ts, agreements(7, 0, 8, 0, n) < 20);  /* seeds differ */
    CHECK(ts, agreements(7, 3, 7, 3, n) == n);  /* and the same key gives the same order */
    int64_t fixed = 0;                          /* not close to the identity */
    for (int64_t g = 0; g < n; g++) fixed += ds_permute(7, 0, g, n) == g;
    CHECK(ts, fixed < 20);
    /* The first item of an epoch is spread evenly over [0, 10) across seeds. */
    int count[10] = {0};
    for (uint64_t s = 0; s < 20000; s++) count[ds_permute(s, 0, 0, 10)]++;
    for (int v = 0; v < 10; v++) CHECK_MSG(ts, count[v] > 1700 && count[v] < 2300, "value %d: %d of 20000", v, count[v]);
}

/* One rank takes the epoch's order itself, epoch after epoch. */
static void test_single_rank(struct test_state *ts)
{
    const int64_t n = 37;
    struct ds_cursor c;
    ds_cursor_init(&c, 99, 1, 0, 1);
    for (int64_t epoch = 0; epoch < 3; epoch++)
        for (int64_t g = 0; g < n; g++) {
            int64_t v = ds_cursor_next(&c, n);
            CHECK(ts, v == ds_permute(99, epoch, g, n) && c.epoch == epoch && c.position == g + 1);
        }
}

static void test_shards(struct test_state *ts)
{
    const int64_t n = 103;
    const int world = 4;
    const int64_t per_rank = n / world; /* 25: three items dropped per epoch */
    for (int64_t epoch = 0; epoch < 2; epoch++) {
        int owner[103];
        for (int64_t k = 0; k < n; k++) owner[k] = -1;
        int overlap = 0;
        for (int rank = 0; rank < world; rank++) {
            struct ds_cursor c;
            ds_cursor_init(&c, 5, 1, rank, world);
            c.epoch = epoch;
            for (int64_t j = 0; j < per_rank; j++) {
                int64_t v = ds_cursor_next(&c, n);
                CHECK(ts, v == ds_permute(5, epoch, rank + j * world, n)); /* positions r, r+W, r+2W, ... */
                if (owner[v] >= 0) overlap = 1;
                owner[v] = rank;
            }
            CHECK(ts, c.epoch == epoch);
            ds_cursor_next(&c, n); /* the next call starts the next epoch */
            CHECK(ts, c.epoch == epoch + 1 && c.position == 1);
        }
        CHECK(ts, !overlap);
        /* The union is exactly the epoch's first floor(N/W)*W positions. */
        int64_t covered = 0;
        for (int64_t g = 0; g < n; g++) {
            int64_t v = ds_permute(5, epoch, g, n);
            if (g < per_rank * world) covered += owner[v] >= 0;
            else CHECK_MSG(ts, owner[v] == -1, "dropped position %lld was taken", (long long)g);
        }
        CHECK(ts, covered == per_rank * world);
    }
}

static void test_resume(struct test_state *ts)
{
    const int64_t n = 50;
    for (int64_t steps = 0; steps < 130; steps += 13) {
        struct ds_cursor a;
        ds_cursor_init(&a, 2024, 1, 1, 3);
        for (int64_t k = 0; k < steps; k++) ds_cursor_next(&a, n);
        /* What a checkpoint keeps: the three numbers (rank and world come from the new job). */
        uint64_t seed = a.seed;
        int64_t epoch = a.epoch, position = a.position;
        struct ds_cursor b;
        ds_cursor_init(&b, seed, 1, 1, 3);
        b.epoch = epoch;
        b.position = position;
        int same = 1;
        for (int k = 0; k < 100; k++) same &= ds_cursor_next(&a, n) == ds_cursor_next(&b, n);
        CHECK_MSG(ts, same, "resume after %lld steps diverged", (long long)steps);
        CHECK(ts, a.epoch == b.epoch && a.position == b.position);
    }
}

static void test_edges(struct test_state *ts)
{
    struct ds_cursor c;
    ds_cursor_init(&c, 1, 1, 0, 1);
    for (int k = 0; k < 5; k++) CHECK(ts, ds_cursor_next(&c, 1) == 0 && c.epoch == k); /* N = 1: an epoch a call */
    for (int rank = 0; rank < 4; rank++) { /* N < W: no rank gets an item, and nothing moves */
        ds_cursor_init(&c, 1, 1, rank, 4);
        CHECK(ts, ds_cursor_next(&c, 3) == -1 && c.epoch == 0 && c.position == 0);
    }
    ds_cursor_init(&c, 1, 1, 3, 4);
    CHECK(ts, ds_cursor_next(&c, 4) >= 0 && ds_cursor_next(&c, 4) >= 0 && c.epoch == 1); /* N = W: one each */
    CHECK(ts, ds_cursor_next(&c, 0) == -1);
}

static void test_file_order(struct test_state *ts)
{
    struct ds_cursor c;
    ds_cursor_init(&c, 77, 0, 1, 3);
    const int64_t want[] = {1, 4, 7, 1, 4, 7}; /* N = 10, W = 3: 3 per rank, item 9 dropped */
    for (int k = 0; k < 6; k++) CHECK(ts, ds_cursor_next(&c, 10) == want[k]);
    CHECK(ts, c.epoch == 1);
}

int main(void)
{
    struct test_state ts = {0};
    RUN(&ts, test_permutation);
    RUN(&ts, test_orders_differ);
    RUN(&ts, test_single_rank);
    RUN(&ts, test_shards);
    RUN(&ts, test_resume);
    RUN(&ts, test_edges);
    RUN(&ts, test_file_order);
    return test_summary(&ts);
}
