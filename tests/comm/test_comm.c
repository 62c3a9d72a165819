/* Collectives, the byte-record gather and ZeRO-1 AdamW on several ranks (run by test_comm.sh under
 * mpirun -np 1..4). Every float result must equal, BITWISE and on every rank, the serial sum
 * x_0 + x_1 + ... in rank order; the data mixes magnitudes so that any other order would round
 * differently. */
#include <limits.h>
#include <math.h>
#include <mpi.h>
#include <stdlib.h>
#include <string.h>

#include "../test.h"
#include "adamw_ref.h"
#include "mmupt/comm.h"
#include "mmupt/gpu.h"
#include "mmupt/optim.h"

/* Rank r's contribution to element i: large and small values of both signs, so sums are not
 * associative in float. Every rank can compute every rank's data, hence the serial reference. */
static float val(int r, size_t i)
{
    static const float big[4] = {1e7f, -1e7f, 3.25e-3f, 1.0f};
    return big[(r + i) % 4] + (float)((r * 7919 + (int)(i % 1013)) % 97) * 0.013f;
}

static float serial_sum(int p, size_t i)
{
    float s = val(0, i);
    for (int r = 1; r < p; r++) s += val(r, i);
    return s;
}

/* 1 on every rank iff every rank holds the same bytes as rank 0 (and this rank's check passed). */
static int same_everywhere(const struct comm *c, const void *buf, size_t bytes, int ok_here)
{
    char *r0 = mmupt_xmalloc(bytes + 1);
    memcpy(r0, buf, bytes);
    MPI_Bcast(r0, (int)bytes, MPI_BYTE, 0, c->mpi);
    int ok = ok_here && memcmp(r0, buf, bytes) == 0, all = 0;
    MPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_MIN, c->mpi);
    free(r0);
    return all;
}

static void test_shard(struct test_state *ts, const struct comm *c)
{
    (void)c;
    const size_t ns[] = {0, 1, 2, 3, 5, 7, 100, 1001};
    for (size_t k = 0; k < sizeof ns / sizeof *ns; k++)
        for (int p = 1; p <= 9; p++) {
            size_t next = 0, mn = (size_t)-1, mx = 0;
            for (int r = 0; r < p; r++) {
                size_t lo, hi;
                comm_shard(ns[k], p, r, &lo, &hi);
                CHECK_MSG(ts, lo == next && hi >= lo, "n=%zu p=%d r=%d [%zu,%zu)", ns[k], p, r, lo, hi);
                next = hi;
                mn = hi - lo < mn ? hi - lo : mn;
                mx = hi - lo > mx ? hi - lo : mx;
            }
            CHECK_MSG(ts, next == ns[k] && mx - mn <= 1, "n=%zu p=%d", ns[k], p);
        }
}

static const size_t sizes[] = {0, 1, 3, 5, 1000, 4097};
static const size_t chunks[] = {COMM_DEFAULT_CHUNK, 1, 3, 64};

static void test_allreduce(struct test_state *ts, const struct comm *c0)
{
    struct comm c = *c0;
    for (size_t ci = 0; ci < sizeof chunks / sizeof *chunks; ci++)
        for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
            size_t n = sizes[k];
            c.chunk = chunks[ci];
            float *buf = mmupt_xmalloc((n + 1) * sizeof(float));
            for (size_t i = 0; i < n; i++) buf[i] = val(c.rank, i);
            CHECK(ts, comm_allreduce_sum(&c, buf, n) == 0);
            int ok = 1;
            for (size_t i = 0; i < n; i++) {
                float want = serial_sum(c.size, i);
                ok &= memcmp(&buf[i], &want, sizeof want) == 0;
            }
            CHECK_MSG(ts, same_everywhere(&c, buf, n * sizeof(float), ok), "n=%zu chunk=%zu", n, c.chunk);
            free(buf);
        }
}

static void test_allreduce_f64(struct test_state *ts, const struct comm *c0)
{
    struct comm c = *c0;
    c.chunk = 5;
    enum { N = 203 };
    double buf[N];
    for (size_t i = 0; i < N; i++) buf[i] = (double)val(c.rank, i) * 1e9 + 1e-3 * (double)i;
    CHECK(ts, comm_allreduce_sum_f64(&c, buf, N) == 0);
    int ok = 1;
    for (size_t i = 0; i < N; i++) {
        double s = (double)val(0, i) * 1e9 + 1e-3 * (double)i;
        for (int r = 1; r < c.size; r++) s += (double)val(r, i) * 1e9 + 1e-3 * (double)i;
        ok &= memcmp(&buf[i], &s, sizeof s) == 0;
    }
    CHECK(ts, same_everywhere(&c, buf, sizeof buf, ok));
}

static void test_reduce_scatter_allgather(struct test_state *ts, const struct comm *c0)
{
    struct comm c = *c0;
    for (size_t ci = 0; ci < sizeof chunks / sizeof *chunks; ci++)
        for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
            size_t n = sizes[k], lo, hi;
            c.chunk = chunks[ci];
            comm_shard(n, c.size, c.rank, &lo, &hi);
            float *in = mmupt_xmalloc((n + 1) * sizeof(float)), *shard = mmupt_xmalloc((hi - lo + 1) * sizeof(float));
            float *out = mmupt_xmalloc((n + 1) * sizeof(float));
            for (size_t i = 0; i < n; i++) in[i] = val(c.rank, i);
            CHECK(ts, comm_reduce_scatter_sum(&c, in, shard, n) == 0);
            int ok = 1;
            for (size_t i = lo; i < hi; i++) {
                float want = serial_sum(c.size, i);
                ok &= memcmp(&shard[i - lo], &want, sizeof want) == 0;
            }
            CHECK_MSG(ts, ok, "reduce-scatter n=%zu chunk=%zu", n, c.chunk);
            /* all-gather of the summed shards = the all-reduce */
            memset(out, 0xff, (n + 1) * sizeof(float));
            CHECK(ts, comm_allgather(&c, shard, out, n) == 0);
            ok = 1;
            for (size_t i = 0; i < n; i++) {
                float want = serial_sum(c.size, i);
                ok &= memcmp(&out[i], &want, sizeof want) == 0;
            }
            CHECK_MSG(ts, same_everywhere(&c, out, n * sizeof(float), ok), "allgather n=%zu chunk=%zu", n, c.chunk);
            /* in place: the shard already sits at its place in the output */
            for (size_t i = 0; i < n; i++) in[i] = (i >= lo && i < hi) ? (float)i * 0.5f : -1.0f;
            CHECK(ts, comm_allgather(&c, in + lo, in, n) == 0);
            ok = 1;
            for (size_t i = 0; i < n; i++) ok &= in[i] == (float)i * 0.5f;
            CHECK_MSG(ts, ok, "in-place allgather n=%zu chunk=%zu", n, c.chunk);
            free(in);
            free(shard);
            free(out);
        }
}

/* Reduce-scatter in windows (the gradient buckets): the pieces of a partition of [0, n) - uneven,
 * some inside one shard, some spanning several, empty ones, taken in any order - give the whole
 * call's bits; outside the window the shard is untouched. */
static void test_reduce_scatter_range(struct test_state *ts, const struct comm *c0)
{
    struct comm c = *c0;
    const size_t n = 1001, cuts[] = {0, 0, 1, 7, 7, 250, 251, 600, 999, 1001};
    const size_t n_cuts = sizeof cuts / sizeof *cuts;
    size_t lo, hi;
    comm_shard(n, c.size, c.rank, &lo, &hi);
    float *in = mmupt_xmalloc(n * sizeof(float)), *whole = mmupt_xmalloc((hi - lo + 1) * sizeof(float));
    float *pieces = mmupt_xmalloc((hi - lo + 1) * sizeof(float));
    for (size_t i = 0; i < n; i++) in[i] = val(c.rank, i);
    for (size_t ci = 0; ci < sizeof chunks / sizeof *chunks; ci++) {
        c.chunk = chunks[ci];
        CHECK(ts, comm_reduce_scatter_sum(&c, in, whole, n) == 0);
        memset(pieces, 0xff, (hi - lo + 1) * sizeof(float));
        for (size_t k = n_cuts - 1; k > 0; k--) /* back to front, as a backward pass finishes them */
            CHECK(ts, comm_reduce_scatter_range(&c, in, pieces, n, cuts[k - 1], cuts[k]) == 0);
        CHECK_MSG(ts, memcmp(whole, pieces, (hi - lo) * sizeof(float)) == 0, "pieces vs whole, chunk=%zu", c.chunk);
        /* one window alone writes only its part of the shard */
        memset(pieces, 0xff, (hi - lo + 1) * sizeof(float));
        CHECK(ts, comm_reduce_scatter_range(&c, in, pieces, n, 240, 610) == 0);
        int ok = 1;
        for (size_t i = lo; i < hi; i++) {
            uint32_t bits;
            memcpy(&bits, &pieces[i - lo], sizeof bits);
            ok &= (i >= 240 && i < 610) ? memcmp(&pieces[i - lo], &whole[i - lo], sizeof(float)) == 0
                                         : bits == 0xffffffffu;
        }
        CHECK_MSG(ts, ok, "window [240, 610) alone, chunk=%zu", c.chunk);
    }
    CHECK(ts, comm_after_stream(&c, NULL) == 0 && comm_sync(&c) == 0); /* MPI: nothing to wait for */
    free(in);
    free(whole);
    free(pieces);
}

static void test_broadcast_barrier(struct test_state *ts, const struct comm *c)
{
    char buf[300];
    int root = c->size - 1;
    for (size_t i = 0; i < sizeof buf; i++) buf[i] = (char)(c->rank == root ? i * 7 : 0);
    CHECK(ts, comm_broadcast(c, buf, sizeof buf, root) == 0);
    int ok = 1;
    for (size_t i = 0; i < sizeof buf; i++) ok &= buf[i] == (char)(i * 7);
    CHECK(ts, ok);
    /* on MPI the queued form is done on return; comm_sync has nothing to wait for */
    for (size_t i = 0; i < sizeof buf; i++) buf[i] = (char)(c->rank == 0 ? i * 3 + 1 : 0);
    CHECK(ts, comm_broadcast_start(c, buf, sizeof buf, 0) == 0);
    ok = 1;
    for (size_t i = 0; i < sizeof buf; i++) ok &= buf[i] == (char)(i * 3 + 1);
    CHECK(ts, ok && comm_sync(c) == 0);
    CHECK(ts, comm_broadcast(c, buf, 0, 0) == 0);
    CHECK(ts, comm_barrier(c) == 0);
}

/* Without a GPU (or without CUDA in the build) asking for NCCL fails on every rank with a reason,
 * nobody hangs, and the communicator keeps working on MPI. */
static void test_nccl_refused(struct test_state *ts, const struct comm *c)
{
    struct gpu_info gi;
    gpu_query(&gi);
    if (gi.device_count > 0) return; /* the gpu suite's test_comm_nccl covers this machine */
    struct comm t;
    struct mmupt_err err;
    CHECK(ts, comm_split(c, 0, &t, &err) == 0);
    CHECK(ts, comm_nccl_open(&t, 0, &err) == -1);
    CHECK_CONTAINS(ts, err.msg, "comm:");
    CHECK(ts, t.nccl == NULL);
    float x = 1;
    CHECK(ts, comm_allreduce_sum(&t, &x, 1) == 0 && x == (float)c->size);
    comm_free(&t);
}

/* Roles: even and odd ranks form two groups; rank 0 may also opt out of a split. */
static void test_split(struct test_state *ts, const struct comm *c)
{
    struct comm g;
    struct mmupt_err err;
    CHECK(ts, comm_split(c, c->rank % 2, &g, &err) == 0);
    int members = (c->size + 1 - c->rank % 2) / 2;
    CHECK_MSG(ts, g.size == members && g.rank == c->rank / 2, "size %d rank %d", g.size, g.rank);
    float x = (float)(c->rank + 1), want = 0;
    for (int r = c->rank % 2; r < c->size; r += 2) want += (float)(r + 1);
    CHECK(ts, comm_allreduce_sum(&g, &x, 1) == 0 && x == want);
    comm_free(&g);
    CHECK(ts, g.mpi == MPI_COMM_NULL);

    CHECK(ts, comm_split(c, c->rank == 0 ? -1 : 3, &g, &err) == 0);
    if (c->rank == 0) {
        CHECK(ts, g.mpi == MPI_COMM_NULL && g.size == 0 && g.rank == -1);
    } else {
        CHECK(ts, g.size == c->size - 1 && g.rank == c->rank - 1);
        CHECK(ts, comm_barrier(&g) == 0);
    }
    comm_free(&g);
}

/* Counters: a known sequence adds exact calls and payload bytes per kind (the same on every rank,
 * whatever its shard), the barrier adds nothing, and a communicator without counters (NULL, as
 * comm_world and comm_split leave it) computes the same results. */
/* On one machine every rank is on the same node: local ranks 0..size-1 in world order; and the
 * device each would take (gpu_device_for_rank) on 1, 2 and 8 visible GPUs. */
static void test_node_rank(struct test_state *ts, const struct comm *c)
{
    struct mmupt_err err;
    int local = -1, nlocal = -1, shared = 0;
    CHECK_MSG(ts, comm_node_rank(c, &local, &nlocal, &err) == 0, "%s", err.msg);
    CHECK_MSG(ts, local == c->rank && nlocal == c->size, "rank %d of %d: local %d of %d", c->rank, c->size, local,
              nlocal);
    CHECK(ts, gpu_device_for_rank(local, nlocal, 1, &shared) == 0 && shared == (nlocal > 1));
    CHECK(ts, gpu_device_for_rank(3, 4, 2, &shared) == 1 && shared);
    CHECK(ts, gpu_device_for_rank(5, 8, 8, &shared) == 5 && !shared);
    CHECK(ts, gpu_device_for_rank(0, 1, 0, &shared) == 0 && !shared);
    /* Bound as the trainer binds (which it does only with a device: a CUDA build without one cannot
     * make device 0 current; a CPU-only build's binding of device 0 is a no-op). */
    struct gpu_info gi;
    gpu_query(&gi);
    if (gi.built && gi.device_count == 0) return;
    struct comm_gpu b;
    CHECK_MSG(ts, comm_bind_gpu(c, &b, &err) == 0, "%s", err.msg);
    CHECK(ts, b.local_rank == local && b.local_size == nlocal && b.count == gi.device_count &&
                  b.device == gpu_device_for_rank(local, nlocal, gi.device_count, &shared));
}

static void test_counters(struct test_state *ts, const struct comm *c0)
{
    struct comm c = *c0;
    CHECK(ts, c0->counters == NULL);
    struct comm_counters k = {0};
    c.counters = &k;
    const size_t n = 1001;
    float *a = mmupt_xmalloc(n * sizeof *a), *b = mmupt_xmalloc(n * sizeof *b), *shard = mmupt_xmalloc(n * sizeof *shard);
    double d[3] = {1, 2, 3};
    char bytes[77] = {0};
    for (size_t i = 0; i < n; i++) a[i] = b[i] = val(c.rank, i);
    CHECK(ts, comm_allreduce_sum(&c, a, n) == 0);
    CHECK(ts, comm_allreduce_sum_f64(&c, d, 3) == 0);
    CHECK(ts, comm_allreduce_sum_f64(&c, d, 1) == 0);
    CHECK(ts, comm_reduce_scatter_sum(&c, b, shard, n) == 0);
    CHECK(ts, comm_allgather(&c, shard, b, n) == 0);
    CHECK(ts, comm_allgather(&c, shard, b, n) == 0);
    CHECK(ts, comm_broadcast(&c, bytes, sizeof bytes, 0) == 0);
    CHECK(ts, comm_barrier(&c) == 0);
    const uint64_t calls[COMM_OP_COUNT] = {3, 1, 2, 1};
    const uint64_t want[COMM_OP_COUNT] = {n * 4 + 3 * 8 + 8, n * 4, 2 * n * 4, sizeof bytes};
    for (int op = 0; op < COMM_OP_COUNT; op++) {
        CHECK_MSG(ts, k.op[op].calls == calls[op] && k.op[op].bytes == want[op], "%s: %llu calls %llu bytes",
                  comm_op_names[op], (unsigned long long)k.op[op].calls, (unsigned long long)k.op[op].bytes);
        CHECK(ts, k.op[op].seconds >= 0 && k.op[op].seconds < 60);
    }
    /* The same all-reduce without counters: the same bits, and the counters did not move. */
    struct comm_counters before = k;
    float *u = mmupt_xmalloc(n * sizeof *u);
    for (size_t i = 0; i < n; i++) u[i] = val(c.rank, i);
    CHECK(ts, comm_allreduce_sum(c0, u, n) == 0);
    CHECK(ts, memcmp(u, a, n * sizeof *u) == 0);
    CHECK(ts, memcmp(&before, &k, sizeof k) == 0);
    comm_count(NULL, COMM_BROADCAST, 5, 1.0); /* NULL: a no-op, not a crash */
    comm_count(&k, COMM_BROADCAST, 5, 0.5);
    CHECK(ts, k.op[COMM_BROADCAST].calls == 2 && k.op[COMM_BROADCAST].bytes == sizeof bytes + 5);
    free(a), free(b), free(shard), free(u);
}

/* comm_gather_bytes: records of different sizes per rank (empty ones, ones past the buffer's first
 * 4 KiB) packed with comm_buf_put and read back on rank 0 with comm_reader_get; an all-empty round;
 * an oversized record refused on every rank before any message moves. */
static size_t gather_len(int r) { return r == 0 ? 0 : r % 2 ? 5000 + (size_t)r : (size_t)r; }
static char gather_byte(int r, size_t i) { return (char)((r * 31 + (int)(i % 251) * 7) & 0xff); }

static void test_gather_bytes(struct test_state *ts, const struct comm *c)
{
    struct comm_buf b = {0};
    size_t n = gather_len(c->rank);
    for (size_t i = 0; i < n; i++) {
        char x = gather_byte(c->rank, i);
        comm_buf_put(&b, &x, 1);
    }
    CHECK(ts, b.n == n && b.cap >= n);
    char *all = (char *)1;
    size_t *lens = (size_t *)1;
    struct mmupt_err err = {{0}};
    CHECK_MSG(ts, comm_gather_bytes(c, b.p, b.n, &all, &lens, &err) == 0, "%s", err.msg);
    if (c->rank != 0) {
        CHECK(ts, all == NULL && lens == NULL);
    } else {
        CHECK(ts, all != NULL && lens != NULL);
        const char *p = all;
        for (int r = 0; r < c->size && all && lens; r++) {
            CHECK_MSG(ts, lens[r] == gather_len(r), "rank %d: %zu bytes", r, lens[r]);
            struct comm_reader u = {p, p + lens[r]};
            int same = 1;
            for (size_t i = 0; i < lens[r]; i++) {
                char x;
                comm_reader_get(&u, &x, 1);
                same &= x == gather_byte(r, i);
            }
            CHECK_MSG(ts, same && u.p == u.end, "rank %d's bytes", r);
            p += lens[r];
        }
    }
    free(all);
    free(lens);
    comm_buf_free(&b);
    CHECK(ts, b.p == NULL && b.n == 0 && b.cap == 0);

    /* Every record empty: rank 0 still gets a buffer and a length per rank. */
    CHECK(ts, comm_gather_bytes(c, NULL, 0, &all, &lens, &err) == 0);
    if (c->rank == 0) {
        CHECK(ts, all != NULL && lens != NULL);
        for (int r = 0; r < c->size && lens; r++) CHECK(ts, lens[r] == 0);
    } else {
        CHECK(ts, all == NULL && lens == NULL);
    }
    free(all);
    free(lens);

    /* One MPI message carries at most INT_MAX bytes. Every rank asks, so none waits for another. */
    char one = 0;
    CHECK(ts, comm_gather_bytes(c, &one, (size_t)INT_MAX + 1, &all, &lens, &err) == -1);
    CHECK_CONTAINS(ts, err.msg, "more than one MPI message carries");
    CHECK(ts, all == NULL && lens == NULL);
    /* The communicator still works afterwards. */
    CHECK(ts, comm_barrier(c) == 0);
    /* Only the last rank's record is too large: every rank fails, none waits for it. */
    size_t big = c->rank == c->size - 1 ? (size_t)INT_MAX + 1 : 1;
    CHECK(ts, comm_gather_bytes(c, &one, big, &all, &lens, &err) == -1);
    CHECK_CONTAINS(ts, err.msg, "more than one MPI message carries");
    CHECK(ts, all == NULL && lens == NULL);
    CHECK(ts, comm_barrier(c) == 0);
}

/* Rank r's gradient at step s. */
static float grad(int r, int s, size_t i) { return (float)(sin(0.37 * (double)i + s) * (1.0 + r) + 0.1 * r); }

/* ZeRO-1: replicas bitwise equal after every step; equal to a plain AdamW on the averaged gradient. */
static void test_zero1(struct test_state *ts, const struct comm *c0)
{
    struct comm c = *c0;
    c.chunk = 7; /* several rounds per collective */
    enum { N = 101, STEPS = 6 };
    const struct optim_config cfg = {.beta1 = 0.9, .beta2 = 0.95, .eps = 1e-8, .weight_decay = 0.01,
                                     .clip_grad_norm = 3.0};
    float p[N], g[N];
    double rp[N], rm[N] = {0}, rv[N] = {0}, rg[N];
    struct adamw_ref ref = {N, rp, rm, rv, 0};
    for (size_t i = 0; i < N; i++) rp[i] = p[i] = (float)cos((double)i);
    struct optim o;
    optim_init(&o, N, c.rank, c.size);
    for (int s = 0; s < STEPS; s++) {
        for (size_t i = 0; i < N; i++) {
            g[i] = grad(c.rank, s, i);
            rg[i] = 0;
            for (int r = 0; r < c.size; r++) rg[i] += grad(r, s, i);
            rg[i] /= c.size;
        }
        double lr = 1e-2 / (1 + s), norm = 0;
        int rc = optim_step(&o, &c, &cfg, lr, p, g, &norm);
        double rnorm = adamw_ref_step(&ref, lr, cfg.beta1, cfg.beta2, cfg.eps, cfg.weight_decay, cfg.clip_grad_norm, rg);
        CHECK_MSG(ts, rc == 0, "step %d rc %d", s, rc);
        CHECK_MSG(ts, fabs(norm - rnorm) <= 1e-6 * rnorm, "step %d norm %.9g vs %.9g", s, norm, rnorm);
        CHECK_MSG(ts, same_everywhere(&c, p, sizeof p, 1), "replicas differ after step %d", s);
        CHECK_MSG(ts, same_everywhere(&c, &norm, sizeof norm, 1), "norms differ after step %d", s);
    }
    double worst = 0;
    for (size_t i = 0; i < N; i++) worst = fmax(worst, fabs(p[i] - rp[i]));
    CHECK_MSG(ts, worst < 1e-6, "max |p - ref| = %g", worst);

    /* A NaN on the last rank alone makes every rank skip, leaving params and moments. */
    float before[N];
    memcpy(before, p, sizeof p);
    float *m_before = mmupt_xmalloc((o.hi - o.lo + 1) * sizeof(float));
    memcpy(m_before, o.m, (o.hi - o.lo) * sizeof(float));
    for (size_t i = 0; i < N; i++) g[i] = grad(c.rank, 0, i);
    if (c.rank == c.size - 1) g[N / 2] = NAN;
    double norm = 0;
    CHECK(ts, optim_step(&o, &c, &cfg, 1e-2, p, g, &norm) == 1 && !isfinite(norm));
    CHECK(ts, memcmp(p, before, sizeof p) == 0 && memcmp(o.m, m_before, (o.hi - o.lo) * sizeof(float)) == 0);
    CHECK(ts, o.t == STEPS);
    free(m_before);
    optim_free(&o);
}

#define RUN_C(ts, fn, c)                                                                           \
    do {                                                                                           \
        (ts)->current_failed = 0;                                                                  \
        fn(ts, c);                                                                                 \
        if ((ts)->current_failed) {                                                                \
            (ts)->failed++;                                                                        \
            fprintf(stderr, "not ok - %s (rank %d of %d)\n", #fn, (c)->rank, (c)->size);           \
        } else {                                                                                   \
            (ts)->passed++;                                                                        \
        }                                                                                          \
    } while (0)

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    struct comm world;
    struct mmupt_err err;
    if (comm_world(&world, &err) != 0) {
        fprintf(stderr, "%s\n", err.msg);
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    struct test_state ts = {0};
    RUN_C(&ts, test_shard, &world);
    RUN_C(&ts, test_allreduce, &world);
    RUN_C(&ts, test_allreduce_f64, &world);
    RUN_C(&ts, test_reduce_scatter_allgather, &world);
    RUN_C(&ts, test_reduce_scatter_range, &world);
    RUN_C(&ts, test_broadcast_barrier, &world);
    RUN_C(&ts, test_split, &world);
    RUN_C(&ts, test_zero1, &world);
    RUN_C(&ts, test_nccl_refused, &world);
    RUN_C(&ts, test_counters, &world);
    RUN_C(&ts, test_node_rank, &world);
    RUN_C(&ts, test_gather_bytes, &world);
    /* A test passes only if it passed on every rank; rank 0 reports. */
    /* Counts are summed over ranks: one test on 4 ranks counts 4 times. */
    int counts[2] = {ts.passed, ts.failed}, tot[2];
    MPI_Allreduce(counts, tot, 2, MPI_INT, MPI_SUM, world.mpi);
    if (world.rank == 0) printf("np=%d: %d passed, %d failed\n", world.size, tot[0], tot[1]);
    comm_free(&world);
    MPI_Finalize();
    return tot[1] ? 1 : 0;
}
