/* synth_gather: every rank's counts and kept questions to rank 0 as one byte record per rank
 * (comm_gather_bytes). Rank 0 sums the counts and sorts the questions by (item, k): strided shards
 * interleave items, and sorting restores the order a one-rank run produces, so the written split is
 * byte-identical for any rank count. */
#include <stdlib.h>
#include <string.h>

#include "mmupt/comm.h"
#include "mmupt/synth.h"

struct wire_question {
    int64_t item;
    int32_t k, sample;
    int64_t len;
};

static void pack_result(const struct synth_result *r, struct comm_buf *b)
{
    comm_buf_put(b, &r->counts, sizeof r->counts);
    comm_buf_put(b, &r->seconds, sizeof r->seconds);
    comm_buf_put(b, &r->n, sizeof r->n);
    for (int64_t i = 0; i < r->n; i++) {
        const struct synth_question *q = &r->q[i];
        struct wire_question w = {.item = q->item, .k = q->k, .sample = q->sample, .len = (int64_t)strlen(q->text)};
        comm_buf_put(b, &w, sizeof w);
        comm_buf_put(b, q->text, (size_t)w.len);
    }
}

static int by_item(const void *a, const void *b)
{
    const struct synth_question *x = a, *y = b;
    if (x->item != y->item) return (x->item > y->item) - (x->item < y->item);
    return (x->k > y->k) - (x->k < y->k);
}

static void add_counts(struct synth_counts *to, const struct synth_counts *k)
{
    to->items += k->items;
    to->skipped_no_image += k->skipped_no_image;
    to->skipped_no_answer += k->skipped_no_answer;
    to->skipped_bad += k->skipped_bad;
    to->used += k->used;
    to->candidates += k->candidates;
    for (int v = 0; v < SYNTH_N_VERDICTS; v++) to->verdicts[v] += k->verdicts[v];
    to->tokens += k->tokens;
}

/* Rank 0: rebuild *r from every rank's record (bufs back to back, sizes in lens). */
static void merge(void *ctx, const char *bufs, const size_t *lens, int size)
{
    struct synth_result *r = ctx;
    struct synth_result out = {0};
    const char *p = bufs;
    for (int rank = 0; rank < size; rank++) {
        struct comm_reader u = {p, p + lens[rank]};
        struct synth_counts k;
        double seconds;
        int64_t n;
        comm_reader_get(&u, &k, sizeof k);
        comm_reader_get(&u, &seconds, sizeof seconds);
        comm_reader_get(&u, &n, sizeof n);
        add_counts(&out.counts, &k);
        if (seconds > out.seconds) out.seconds = seconds;
        MMUPT_CHECK(n >= 0 && n <= (int64_t)(lens[rank] / sizeof(struct wire_question)));
        out.q = realloc(out.q, (size_t)(out.n + n + 1) * sizeof *out.q);
        if (!out.q) MMUPT_DIE("out of memory for %lld questions", (long long)(out.n + n));
        for (int64_t i = 0; i < n; i++) {
            struct wire_question w;
            comm_reader_get(&u, &w, sizeof w);
            MMUPT_CHECK(w.len >= 0 && w.len <= u.end - u.p);
            char *t = mmupt_xmalloc((size_t)w.len + 1);
            comm_reader_get(&u, t, (size_t)w.len);
            t[w.len] = '\0';
            out.q[out.n++] = (struct synth_question){.item = w.item, .k = w.k, .sample = w.sample, .text = t};
        }
        MMUPT_CHECK(u.p == u.end);
        p += lens[rank];
    }
    out.cap = out.n;
    qsort(out.q, (size_t)out.n, sizeof *out.q, by_item);
    synth_result_free(r);
    *r = out;
}

int synth_gather(const struct comm *comm, struct synth_result *r, struct mmupt_err *err)
{
    struct comm_buf b = {0};
    pack_result(r, &b);
    int rc = comm_gather_records(comm, &b, merge, r, err);
    if (rc) mmupt_err_prefix(err, "synth: gathering the questions on rank 0");
    return rc;
}
