/* cuDNN attention's calls of a packed batch (include/mmupt/sdpa_layout.h): the non-empty segments in
 * order, in calls of power-of-two entry counts largest first, each padded to its own longest segment
 * rounded up to SDPA_LEN_STEP; each call's lengths and ragged offsets (q/o, k/v, statistics: element
 * offsets, the last where the call's rows end) in arrays starting at multiples of 4 ints that do not
 * overlap; a batch without rows makes no call; offsets past int32 are refused. */
#include "../test.h"
#include "mmupt/sdpa_layout.h"

/* Every property of p against the segments it was made from. */
static void check_plan(struct test_state *ts, const struct sdpa_layout_plan *p, const int *seg, int n_seg, int hq,
                       int hk, int hd)
{
    int start[64], len[64], b = 0;
    for (int i = 0; i < n_seg; i++)
        if (seg[i + 1] > seg[i]) start[b] = seg[i], len[b] = seg[i + 1] - seg[i], b++;
    int covered = 0, popcount = 0;
    for (int v = b; v; v &= v - 1) popcount++;
    CHECK_MSG(ts, p->n_calls == popcount, "%d segments: %d calls, want %d", b, p->n_calls, popcount);
    int64_t end = 0;
    for (int c = 0; c < p->n_calls && !ts->current_failed; c++) {
        const struct sdpa_call_layout *k = &p->call[c];
        CHECK_MSG(ts, k->first == covered, "call %d starts at entry %d, want %d", c, k->first, covered);
        CHECK_MSG(ts, k->b > 0 && (k->b & (k->b - 1)) == 0, "call %d: %d entries, not a power of two", c, k->b);
        CHECK_MSG(ts, c == 0 || k->b < p->call[c - 1].b, "call %d: %d entries after %d", c, k->b, p->call[c - 1].b);
        int longest = 0;
        for (int e = k->first; e < k->first + k->b; e++) longest = len[e] > longest ? len[e] : longest;
        CHECK_MSG(ts, k->s % SDPA_LEN_STEP == 0 && k->s >= longest && k->s - longest < SDPA_LEN_STEP,
                  "call %d: padded to %d for a longest of %d", c, k->s, longest);
        const int64_t at[4] = {k->len, k->off_q, k->off_k, k->off_s}, n[4] = {k->b, k->b + 1, k->b + 1, k->b + 1};
        for (int a = 0; a < 4; a++) {
            CHECK_MSG(ts, at[a] % 4 == 0 && at[a] >= end, "call %d array %d at %lld (after %lld)", c, a,
                      (long long)at[a], (long long)end);
            end = at[a] + n[a];
        }
        CHECK(ts, end <= p->n_ints);
        if (ts->current_failed) return;
        for (int i = 0; i <= k->b; i++) {
            int e = k->first + i;
            int64_t row = i < k->b ? start[e] : (int64_t)start[e - 1] + len[e - 1];
            if (i < k->b) CHECK_MSG(ts, p->ints[k->len + i] == len[e], "call %d length %d", c, i);
            CHECK_MSG(ts, p->ints[k->off_q + i] == row * hq * hd && p->ints[k->off_k + i] == row * hk * hd &&
                              p->ints[k->off_s + i] == row * hq,
                      "call %d offset %d: %d/%d/%d for row %lld", c, i, p->ints[k->off_q + i], p->ints[k->off_k + i],
                      p->ints[k->off_s + i], (long long)row);
        }
        covered += k->b;
    }
    CHECK_MSG(ts, covered == b, "%d of %d segments in calls", covered, b);
}

static void test_thirteen(struct test_state *ts)
{
    /* 13 non-empty segments (two empty ones among them), lengths 1 .. 300 */
    const int seg[] = {0, 5, 5, 300, 301, 429, 430, 560, 700, 700, 701, 900, 1000, 1064, 1100, 1400};
    int n_seg = (int)(sizeof seg / sizeof seg[0]) - 1;
    struct sdpa_layout_plan p;
    CHECK(ts, sdpa_layout_make(&p, seg, n_seg, 12, 2, 128) == 0);
    CHECK(ts, p.n_calls == 3 && p.call[0].b == 8 && p.call[1].b == 4 && p.call[2].b == 1);
    CHECK(ts, p.call[0].s == 384 && p.call[1].s == 256 && p.call[2].s == 384); /* 295; 199; 300 */
    check_plan(ts, &p, seg, n_seg, 12, 2, 128);
    sdpa_layout_free(&p);
    CHECK(ts, p.ints == NULL && p.n_calls == 0);
}

static void test_powers_and_empty(struct test_state *ts)
{
    const int eight[] = {0, 384, 768, 1152, 1536, 1920, 2304, 2688, 3072}; /* the learner's micro-batch */
    struct sdpa_layout_plan p;
    CHECK(ts, sdpa_layout_make(&p, eight, 8, 12, 2, 128) == 0);
    CHECK(ts, p.n_calls == 1 && p.call[0].b == 8 && p.call[0].s == 384);
    check_plan(ts, &p, eight, 8, 12, 2, 128);
    sdpa_layout_free(&p);
    const int none[] = {0, 0, 0};
    CHECK(ts, sdpa_layout_make(&p, none, 2, 4, 2, 16) == 0 && p.n_calls == 0 && p.ints == NULL);
    CHECK(ts, sdpa_layout_make(&p, none, 0, 4, 2, 16) == 0 && p.n_calls == 0);
    const int one[] = {0, 0, 7, 7};
    CHECK(ts, sdpa_layout_make(&p, one, 3, 4, 2, 16) == 0 && p.n_calls == 1 && p.call[0].b == 1 && p.call[0].s == 128);
    check_plan(ts, &p, one, 3, 4, 2, 16);
    sdpa_layout_free(&p);
}

static void test_overflow(struct test_state *ts)
{
    /* 16 heads of 128: 2^20 rows end at element 2^31, past int32; one row fewer fits */
    const int over[] = {0, 1 << 20}, fits[] = {0, 5, (1 << 20) - 1};
    struct sdpa_layout_plan p;
    CHECK(ts, sdpa_layout_make(&p, over, 1, 16, 2, 128) == -1 && p.n_calls == 0 && p.ints == NULL);
    CHECK(ts, sdpa_layout_make(&p, fits, 2, 16, 2, 128) == 0 && p.n_calls == 1);
    check_plan(ts, &p, fits, 2, 16, 2, 128);
    sdpa_layout_free(&p);
}

/* Random layouts of 0-60 segments (a third empty), lengths to 700. */
static void test_random(struct test_state *ts)
{
    unsigned x = 12345u;
    for (int round = 0; round < 500 && !ts->current_failed; round++) {
        int seg[62], n_seg = (int)((x = x * 1103515245u + 12345u) >> 16) % 61;
        seg[0] = 0;
        for (int i = 0; i < n_seg; i++) {
            x = x * 1103515245u + 12345u;
            int len = (x >> 16) % 3 == 0 ? 0 : 1 + (int)((x >> 8) % 700);
            seg[i + 1] = seg[i] + len;
        }
        struct sdpa_layout_plan p;
        CHECK(ts, sdpa_layout_make(&p, seg, n_seg, 14, 2, 64) == 0);
        check_plan(ts, &p, seg, n_seg, 14, 2, 64);
        sdpa_layout_free(&p);
    }
}

int main(void)
{
    struct test_state ts = {0};
    RUN(&ts, test_thirteen);
    RUN(&ts, test_powers_and_empty);
    RUN(&ts, test_overflow);
    RUN(&ts, test_random);
    return test_summary(&ts);
}
