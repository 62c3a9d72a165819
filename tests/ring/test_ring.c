/* The trajectory ring under a real mpirun (tests/ring/test_ring.sh runs it on 2, 3 and 4 ranks).
 * Roles: ranks below P are producers (P = 2 on 4 ranks, else 1), the rest consumers.
 * usage: test_ring [TOTAL]   (trajectories in the stress test, default 100000) */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mpi.h>

#include "../test.h"
#include "mmupt/ring.h"

struct world {
    int rank, size, nprod, ncons;
    int *is_producer;
    long total;
};

/* Every rank runs every test; a test fails when it failed on any rank, and rank 0 reports it. */
#define RING_RUN(ts, w, fn)                                                            \
    do {                                                                               \
        (ts)->current_failed = 0;                                                      \
        fn(ts, w);                                                                     \
        int any_ = 0;                                                                  \
        MPI_Allreduce(&(ts)->current_failed, &any_, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD); \
        if (any_) (ts)->failed++;                                                      \
        else (ts)->passed++;                                                           \
        if ((w)->rank == 0) printf("%s - %s (np=%d)\n", any_ ? "not ok" : "ok", #fn, (w)->size); \
    } while (0)

static uint64_t mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static void sleep_us(long us)
{
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
    nanosleep(&ts, NULL);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- the content of trajectory `id`, so consumers can check what arrived ---- */

static int traj_len(int64_t id) { return 1 + (int)(mix64((uint64_t)id) % 8); }

static void make_traj(int64_t id, int64_t version, struct ring_traj *t, int32_t *tok, float *lp)
{
    t->question = id / 4;
    t->sample = (int32_t)(id % 4);
    t->group = id / 16;
    t->policy_version = version;
    t->n = traj_len(id);
    for (int i = 0; i < t->n; i++) {
        tok[i] = (int32_t)(mix64((uint64_t)id) >> 40) + i;
        lp[i] = -0.25f * (float)(i + 1) - (float)(id % 7);
    }
    t->tokens = tok;
    t->logp = lp;
}

static int traj_ok(const struct ring_traj *t)
{
    int64_t id = t->question * 4 + t->sample;
    if (t->sample < 0 || t->sample >= 4 || t->group != id / 16 || t->n != traj_len(id)) return 0;
    for (int i = 0; i < t->n; i++)
        if (t->tokens[i] != (int32_t)(mix64((uint64_t)id) >> 40) + i ||
            t->logp[i] != -0.25f * (float)(i + 1) - (float)(id % 7))
            return 0;
    return 1;
}

/* ---- serialisation (local to each rank) ---- */

static void test_wire(struct test_state *ts, struct world *w)
{
    (void)w;
    int32_t tok[8];
    float lp[8];
    struct ring_traj t, back;
    make_traj(12345, 7, &t, tok, lp);
    size_t len = ring_wire_size(t.n);
    unsigned char buf[RING_WIRE_HEADER + 64];
    ring_wire_encode(&t, buf);
    struct mmupt_err err;
    CHECK(ts, ring_wire_decode(buf, len, 100, &back, &err) == 0);
    CHECK(ts, back.question == t.question && back.sample == t.sample && back.group == t.group &&
                  back.policy_version == 7 && traj_ok(&back));
    ring_traj_free(&back);
    CHECK(ts, ring_wire_decode(buf, len - 1, 100, &back, &err) == -1);
    CHECK_CONTAINS(ts, err.msg, "expected");
    CHECK(ts, ring_wire_decode(buf, 10, 100, &back, &err) == -1);
    CHECK_CONTAINS(ts, err.msg, "header");
    CHECK(ts, ring_wire_decode(buf, len, t.n - 1, &back, &err) == -1);
    CHECK_CONTAINS(ts, err.msg, "token count");
    int32_t bad = -5;
    memcpy(buf + 28, &bad, 4);
    CHECK(ts, ring_wire_decode(buf, len, 100, &back, &err) == -1);
    CHECK_CONTAINS(ts, err.msg, "-5");
}

static void test_open_rejects(struct test_state *ts, struct world *w)
{
    struct ring *r = NULL;
    struct mmupt_err err;
    struct ring_config bad = {.capacity = 0, .max_staleness = 1, .timeout_s = 1};
    CHECK(ts, ring_open(&r, MPI_COMM_WORLD, w->is_producer, &bad, &err) == -1 && r == NULL);
    CHECK_CONTAINS(ts, err.msg, "capacity 0");
    if (w->nprod >= 2) {
        struct ring_config small = {.capacity = 1, .max_staleness = 1, .timeout_s = 1};
        CHECK(ts, ring_open(&r, MPI_COMM_WORLD, w->is_producer, &small, &err) == -1);
        CHECK_CONTAINS(ts, err.msg, "below the 2 producers");
    }
    struct ring_config good = {.capacity = 2, .max_staleness = 1, .timeout_s = 1};
    int *all = malloc((size_t)w->size * sizeof(int));
    for (int i = 0; i < w->size; i++) all[i] = 1;
    CHECK(ts, ring_open(&r, MPI_COMM_WORLD, all, &good, &err) == -1);
    CHECK_CONTAINS(ts, err.msg, "at least one producer and one consumer");
    free(all);
}

/* ---- stress: everything arrives exactly once, within capacity and the staleness bound ---- */

enum { STRESS_CAPACITY = 4, STRESS_STALENESS = 2, VERSION_EVERY = 64 };

struct sums {
    int64_t count, sum_id;
    uint64_t sum_hash, sum_hash2;
    int64_t got, stale, bad_content, bad_bound;
};

static void stress_produce(struct test_state *ts, struct world *w, struct ring *r)
{
    int32_t tok[8];
    float lp[8];
    struct mmupt_err err;
    uint64_t rng = 1000 + (uint64_t)w->rank;
    int64_t k = 0;
    for (int64_t id = w->rank; id < w->total; id += w->nprod, k++) {
        rng = mix64(rng);
        if (rng % 500 == 0) sleep_us(500 + (long)(rng >> 54)); /* an occasional slow rollout */
        /* Mostly current, sometimes a few versions behind, so some arrive stale. */
        int64_t version = k / VERSION_EVERY - ((rng >> 8) % 4 == 0 ? (int64_t)((rng >> 16) % 6) : 0);
        struct ring_traj t;
        make_traj(id, version, &t, tok, lp);
        if (ring_push(r, &t, &err)) {
            CHECK_MSG(ts, 0, "rank %d: push: %s", w->rank, err.msg);
            return;
        }
    }
    CHECK_MSG(ts, ring_finish(r, &err) == 0, "rank %d: finish: %s", w->rank, err.msg);
}

static void stress_consume(struct test_state *ts, struct world *w, struct ring *r, struct sums *s)
{
    struct mmupt_err err;
    uint64_t rng = 2000 + (uint64_t)w->rank;
    int64_t version = 0;
    for (;;) {
        /* The learner follows the newest policy it has seen, as if weights synced every step. */
        struct ring_traj t;
        int rc = ring_pop(r, version, &t, &err);
        if (rc == RING_END) break;
        if (rc < 0) {
            CHECK_MSG(ts, 0, "rank %d: pop: %s", w->rank, err.msg);
            return;
        }
        int64_t id = t.question * 4 + t.sample;
        int too_old = t.policy_version < version - STRESS_STALENESS;
        if (rc == RING_GOT) s->got++;
        else s->stale++;
        s->bad_bound += (rc == RING_GOT) == too_old;
        s->bad_content += !traj_ok(&t);
        s->count++;
        s->sum_id += id;
        s->sum_hash += mix64((uint64_t)id);
        s->sum_hash2 += mix64(mix64((uint64_t)id) ^ 0x55);
        if (t.policy_version > version) version = t.policy_version;
        ring_traj_free(&t);
        rng = mix64(rng);
        if (rng % 500 == 0) sleep_us(500 + (long)(rng >> 54)); /* an occasional slow learner step */
    }
    struct ring_stats st;
    ring_get_stats(r, &st);
    CHECK_MSG(ts, st.stale == s->stale && st.popped == s->got, "stats %lld/%lld vs %lld/%lld", (long long)st.popped,
              (long long)st.stale, (long long)s->got, (long long)s->stale);
    CHECK_MSG(ts, st.max_in_flight >= 1 && st.max_in_flight <= STRESS_CAPACITY, "max in flight %lld",
              (long long)st.max_in_flight);
}

static void test_stress(struct test_state *ts, struct world *w)
{
    struct ring_config cfg = {.capacity = STRESS_CAPACITY, .max_staleness = STRESS_STALENESS, .timeout_s = 30};
    struct ring *r;
    struct mmupt_err err;
    if (ring_open(&r, MPI_COMM_WORLD, w->is_producer, &cfg, &err)) {
        CHECK_MSG(ts, 0, "open: %s", err.msg);
        return;
    }
    double t0 = now_s();
    struct sums s = {0};
    if (ring_is_producer(r)) stress_produce(ts, w, r);
    else stress_consume(ts, w, r, &s);
    struct ring_stats st;
    ring_get_stats(r, &st);
    if (ring_is_producer(r))
        CHECK(ts, st.pushed == (w->total - w->rank + w->nprod - 1) / w->nprod);
    ring_close(r);

    struct sums all;
    MPI_Allreduce(&s.count, &all.count, 1, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD);
    MPI_Allreduce(&s.sum_id, &all.sum_id, 1, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD);
    MPI_Allreduce(&s.sum_hash, &all.sum_hash, 1, MPI_UINT64_T, MPI_SUM, MPI_COMM_WORLD);
    MPI_Allreduce(&s.sum_hash2, &all.sum_hash2, 1, MPI_UINT64_T, MPI_SUM, MPI_COMM_WORLD);
    /* got, stale, bad_content, bad_bound: four adjacent int64 fields */
    MPI_Allreduce(&s.got, &all.got, 4, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD);
    uint64_t want_hash = 0, want_hash2 = 0;
    for (int64_t id = 0; id < w->total; id++) {
        want_hash += mix64((uint64_t)id);
        want_hash2 += mix64(mix64((uint64_t)id) ^ 0x55);
    }
    CHECK_MSG(ts, all.count == w->total, "%lld consumed, %ld sent", (long long)all.count, w->total);
    CHECK(ts, all.sum_id == (int64_t)w->total * (w->total - 1) / 2);
    CHECK(ts, all.sum_hash == want_hash && all.sum_hash2 == want_hash2);
    CHECK_MSG(ts, all.bad_content == 0, "%lld corrupted", (long long)all.bad_content);
    CHECK_MSG(ts, all.bad_bound == 0, "%lld on the wrong side of the staleness bound", (long long)all.bad_bound);
    /* Both outcomes must occur, or the staleness check above proved nothing. */
    CHECK_MSG(ts, all.stale > 0 && all.got > 0, "%lld fresh, %lld stale", (long long)all.got,
              (long long)all.stale);
    if (w->rank == 0)
        printf("# stress np=%d: %ld trajectories, %lld stale, %.2f s\n", w->size, w->total, (long long)all.stale,
               now_s() - t0);
}

/* ---- fairness: a slow producer is served as often as a fast one while both wait ---- */

enum { FAIR_QUOTA = 300, FAIR_WINDOW = 200 };

static void test_fairness(struct test_state *ts, struct world *w)
{
    if (w->nprod < 2) return;
    struct ring_config cfg = {.capacity = 2, .max_staleness = 1000, .timeout_s = 30};
    struct ring *r;
    struct mmupt_err err;
    if (ring_open(&r, MPI_COMM_WORLD, w->is_producer, &cfg, &err)) {
        CHECK_MSG(ts, 0, "open: %s", err.msg);
        return;
    }
    int64_t served[2] = {0, 0}, all[2];
    if (ring_is_producer(r)) {
        int32_t tok[8];
        float lp[8];
        for (int k = 0; k < FAIR_QUOTA; k++) {
            if (w->rank == 1) sleep_us(300); /* the slow producer; still faster than the learners */
            struct ring_traj t;
            make_traj((int64_t)k * 4 + w->rank, 0, &t, tok, lp);
            if (ring_push(r, &t, &err)) { CHECK_MSG(ts, 0, "push: %s", err.msg); break; }
        }
        CHECK_MSG(ts, ring_finish(r, &err) == 0, "finish: %s", err.msg);
    } else {
        struct ring_traj t;
        int rc;
        for (int k = 0; (rc = ring_pop(r, 0, &t, &err)) == RING_GOT; k++) {
            if (k < FAIR_WINDOW) served[t.sample == 1]++; /* sample = producer rank */
            ring_traj_free(&t);
            sleep_us(1500); /* learners are the bottleneck: producers wait for credits */
        }
        CHECK_MSG(ts, rc == RING_END, "rc %d: %s", rc, err.msg);
    }
    ring_close(r);
    MPI_Allreduce(served, all, 2, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD);
    CHECK_MSG(ts, all[0] + all[1] == (int64_t)FAIR_WINDOW * w->ncons, "%lld + %lld", (long long)all[0],
              (long long)all[1]);
    CHECK_MSG(ts, all[1] * 2 >= all[0] && all[0] * 2 >= all[1], "fast %lld, slow %lld", (long long)all[0],
              (long long)all[1]);
    if (w->rank == 0) printf("# fairness: fast producer %lld, slow producer %lld\n", (long long)all[0], (long long)all[1]);
}

/* ---- targeted pushes: no producer can hoard a consumer's credits ---- */

enum { TARGET_COUNT = 50 };

/* Producer 0 pushes only to consumer 1, producer 1 only to consumer 0, and consumer 1 does not pop
 * (so grants no credit) until consumer 0 has everything from producer 1: the trainer's situation
 * when one learner has its whole step and waits in a collective for another. Producer 0, blocked,
 * holds credits of consumer 0; if it could hold all of them, producer 1 would starve and consumer 0
 * would time out. Per-producer shares of the capacity rule that out. */
static void test_targeted_no_hoarding(struct test_state *ts, struct world *w)
{
    if (w->nprod < 2 || w->ncons < 2) return;
    struct ring_config cfg = {.capacity = 2, .max_staleness = 0, .timeout_s = 10};
    struct ring *r;
    struct mmupt_err err;
    if (ring_open(&r, MPI_COMM_WORLD, w->is_producer, &cfg, &err)) {
        CHECK_MSG(ts, 0, "open: %s", err.msg);
        return;
    }
    int cons = w->rank - w->nprod; /* consumer index: consumers are numbered in rank order */
    if (ring_is_producer(r)) {
        int32_t tok[8];
        float lp[8];
        for (int k = 0; k < TARGET_COUNT; k++) {
            struct ring_traj t;
            make_traj((int64_t)k * 4 + w->rank, 0, &t, tok, lp);
            if (ring_push_to(r, w->rank == 0 ? 1 : 0, &t, &err)) { CHECK_MSG(ts, 0, "push: %s", err.msg); break; }
        }
        CHECK_MSG(ts, ring_finish(r, &err) == 0, "finish: %s", err.msg);
    } else if (cons < 2) {
        int from_other = 0, wrong = 0, rc, go = 1;
        if (cons == 1) MPI_Recv(&go, 1, MPI_INT, w->nprod, 99, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        struct ring_traj t;
        while ((rc = ring_pop(r, 0, &t, &err)) == RING_GOT) {
            wrong += t.sample != (cons == 0 ? 1 : 0); /* sample = the producer's rank */
            if (cons == 0 && ++from_other == TARGET_COUNT) MPI_Send(&go, 1, MPI_INT, w->nprod + 1, 99, MPI_COMM_WORLD);
            ring_traj_free(&t);
        }
        CHECK_MSG(ts, rc == RING_END, "consumer %d: rc %d: %s", cons, rc, err.msg);
        CHECK_MSG(ts, wrong == 0, "consumer %d got %d trajectories meant for the other", cons, wrong);
        if (cons == 0 && from_other < TARGET_COUNT) MPI_Send(&go, 1, MPI_INT, w->nprod + 1, 99, MPI_COMM_WORLD);
    } else {
        struct ring_traj t;
        CHECK(ts, ring_pop(r, 0, &t, &err) == RING_END);
    }
    ring_close(r);
}

/* ---- shutdown ---- */

static void test_all_finish_without_work(struct test_state *ts, struct world *w)
{
    struct ring_config cfg = {.capacity = 3, .max_staleness = 0, .timeout_s = 10};
    struct ring *r;
    struct mmupt_err err;
    CHECK(ts, ring_open(&r, MPI_COMM_WORLD, w->is_producer, &cfg, &err) == 0);
    if (ring_is_producer(r)) {
        CHECK_MSG(ts, ring_finish(r, &err) == 0, "%s", err.msg);
    } else {
        struct ring_traj t;
        CHECK(ts, ring_pop(r, 0, &t, &err) == RING_END);
        CHECK(ts, ring_pop(r, 0, &t, &err) == RING_END); /* stays ended */
    }
    ring_close(r);
}

/* The last producer never sends anything; the others finish normally. Consumers must give up
 * within the timeout and name exactly the silent rank. */
static void test_silent_producer(struct test_state *ts, struct world *w)
{
    struct ring_config cfg = {.capacity = 2, .max_staleness = 0, .timeout_s = 0.5};
    struct ring *r;
    struct mmupt_err err;
    CHECK(ts, ring_open(&r, MPI_COMM_WORLD, w->is_producer, &cfg, &err) == 0);
    int silent = w->nprod - 1;
    if (ring_is_producer(r)) {
        if (w->rank != silent) CHECK_MSG(ts, ring_finish(r, &err) == 0, "%s", err.msg);
    } else {
        double t0 = now_s();
        struct ring_traj t;
        CHECK(ts, ring_pop(r, 0, &t, &err) == -1);
        double dt = now_s() - t0;
        CHECK_MSG(ts, dt >= 0.45 && dt < 3.0, "gave up after %.2f s", dt);
        char want[32];
        snprintf(want, sizeof want, "producer rank %d for", silent);
        CHECK_CONTAINS(ts, err.msg, want);
    }
    MPI_Barrier(MPI_COMM_WORLD); /* the silent producer stays alive until the consumers gave up */
    ring_close(r);
}

/* No consumer ever pops: a producer blocked on back-pressure gives up and names the consumers. */
static void test_consumers_never_pop(struct test_state *ts, struct world *w)
{
    struct ring_config cfg = {.capacity = 2, .max_staleness = 0, .timeout_s = 0.5};
    struct ring *r;
    struct mmupt_err err;
    CHECK(ts, ring_open(&r, MPI_COMM_WORLD, w->is_producer, &cfg, &err) == 0);
    if (ring_is_producer(r)) {
        int32_t tok[8];
        float lp[8];
        struct ring_traj t;
        make_traj(w->rank, 0, &t, tok, lp);
        double t0 = now_s();
        CHECK(ts, ring_push(r, &t, &err) == -1);
        double dt = now_s() - t0;
        CHECK_MSG(ts, dt >= 0.45 && dt < 3.0, "gave up after %.2f s", dt);
        char want[32];
        snprintf(want, sizeof want, "rank %d", w->nprod); /* the first consumer */
        CHECK_CONTAINS(ts, err.msg, "no credit");
        CHECK_CONTAINS(ts, err.msg, want);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    ring_close(r);
}

/* ring_set_idle: a consumer blocked in ring_pop runs the hook between empty polls - here it answers
 * a message the producers wait for before they push, as learner 0 answers weight requests; without
 * the hook every rank would wait for the other until the timeout. */
struct idle_ctx {
    int calls, answered, nprod;
};

static void answer_producers(void *p)
{
    struct idle_ctx *c = p;
    c->calls++;
    if (c->answered) return;
    for (int i = 0; i < c->nprod; i++) MPI_Send(&i, 1, MPI_INT, i, 77, MPI_COMM_WORLD);
    c->answered = 1;
}

static void test_idle_hook(struct test_state *ts, struct world *w)
{
    struct ring_config cfg = {.capacity = 4, .max_staleness = 0, .timeout_s = 10};
    struct ring *r;
    struct mmupt_err err;
    CHECK(ts, ring_open(&r, MPI_COMM_WORLD, w->is_producer, &cfg, &err) == 0);
    if (ring_is_producer(r)) {
        int32_t tok[8];
        float lp[8];
        struct ring_traj t;
        int answers = 0; /* one answer from each consumer (a deadline, so a missing hook fails, not hangs) */
        for (double t0 = now_s(); answers < w->ncons && now_s() - t0 < 5;) {
            int flag = 0, got = -1;
            MPI_Iprobe(MPI_ANY_SOURCE, 77, MPI_COMM_WORLD, &flag, MPI_STATUS_IGNORE);
            if (!flag) { sleep_us(1000); continue; }
            MPI_Recv(&got, 1, MPI_INT, MPI_ANY_SOURCE, 77, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
            CHECK(ts, got == w->rank);
            answers++;
        }
        CHECK_MSG(ts, answers == w->ncons, "%d of %d consumers answered from their idle hook", answers, w->ncons);
        for (int c = 0; c < w->ncons && answers == w->ncons; c++) { /* then one trajectory to each */
            make_traj(w->rank * 16 + c, 0, &t, tok, lp);
            CHECK_MSG(ts, ring_push_to(r, c, &t, &err) == 0, "%s", err.msg);
        }
        if (answers == w->ncons) CHECK_MSG(ts, ring_finish(r, &err) == 0, "%s", err.msg);
    } else {
        struct idle_ctx c = {.nprod = w->nprod};
        ring_set_idle(r, answer_producers, &c);
        struct ring_traj t;
        int got = 0, res;
        while ((res = ring_pop(r, 0, &t, &err)) == RING_GOT) {
            got++;
            ring_traj_free(&t);
        }
        CHECK_MSG(ts, res == RING_END, "%s", res < 0 ? err.msg : "stale");
        CHECK_MSG(ts, got == w->nprod && c.answered && c.calls >= 1, "got %d, hook calls %d", got, c.calls);
    }
    ring_close(r);
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    struct world w = {0};
    MPI_Comm_rank(MPI_COMM_WORLD, &w.rank);
    MPI_Comm_size(MPI_COMM_WORLD, &w.size);
    w.total = argc > 1 ? atol(argv[1]) : 100000;
    w.nprod = w.size >= 4 ? 2 : 1;
    w.ncons = w.size - w.nprod;
    w.is_producer = calloc((size_t)w.size, sizeof(int));
    for (int i = 0; i < w.nprod; i++) w.is_producer[i] = 1;

    struct test_state ts = {0};
    if (w.size < 2) {
        if (w.rank == 0) printf("SKIP: needs at least 2 ranks\n");
        MPI_Finalize();
        return TEST_SKIP;
    }
    RING_RUN(&ts, &w, test_wire);
    RING_RUN(&ts, &w, test_open_rejects);
    RING_RUN(&ts, &w, test_all_finish_without_work);
    RING_RUN(&ts, &w, test_stress);
    RING_RUN(&ts, &w, test_fairness);
    RING_RUN(&ts, &w, test_targeted_no_hoarding);
    RING_RUN(&ts, &w, test_silent_producer);
    RING_RUN(&ts, &w, test_consumers_never_pop);
    RING_RUN(&ts, &w, test_idle_hook);
    int rc = 0;
    if (w.rank == 0) rc = test_summary(&ts);
    else rc = ts.failed ? 1 : 0;
    free(w.is_producer);
    MPI_Finalize();
    return rc;
}
