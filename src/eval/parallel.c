/* Data-parallel evaluation: every rank grades its shard of the items (eval_config.shard_*), then
 * eval_gather sends each rank's graded items to rank 0 as one byte record per rank. Rank 0 sorts
 * them by item index and adds them again from zero, so every sum (the pass@k estimates and the
 * token means are floating point) is taken in the same order as a one-rank run: the results are
 * identical for any rank count, not just close. */
#include <stdlib.h>
#include <string.h>

#include "mmupt/comm.h"
#include "mmupt/eval.h"

/* Every field an item adds to its rows, as fixed-size integers. */
struct wire_item {
    int64_t index, sample_tokens;
    int32_t greedy, greedy_correct, greedy_no_answer, greedy_tokens;
    int32_t G, sample_correct, sample_no_answer, maj_correct, winner_votes, mc;
    uint32_t maj_k_mask;
    int32_t source_len; /* -1: no source */
};

static void pack_result(const struct eval_result *r, struct comm_buf *b)
{
    int64_t head[4] = {r->visited, r->skipped_no_answer, r->skipped_bad, r->n_items};
    comm_buf_put(b, head, sizeof head);
    comm_buf_put(b, &r->seconds, sizeof r->seconds);
    for (int64_t i = 0; i < r->n_items; i++) {
        const struct eval_item *it = &r->items[i];
        size_t sl = it->source ? strlen(it->source) : 0;
        MMUPT_CHECK(sl < INT32_MAX);
        struct wire_item w = {
            .index = it->index, .sample_tokens = it->sample_tokens, .greedy = it->greedy,
            .greedy_correct = it->greedy_correct, .greedy_no_answer = it->greedy_no_answer,
            .greedy_tokens = it->greedy_tokens, .G = it->G, .sample_correct = it->sample_correct,
            .sample_no_answer = it->sample_no_answer, .maj_correct = it->maj_correct,
            .winner_votes = it->winner_votes, .mc = it->mc, .maj_k_mask = it->maj_k_mask,
            .source_len = it->source ? (int32_t)sl : -1,
        };
        comm_buf_put(b, &w, sizeof w);
        if (sl) comm_buf_put(b, it->source, sl);
    }
}

static void unpack_item(struct comm_reader *u, struct eval_item *it)
{
    struct wire_item w;
    comm_reader_get(u, &w, sizeof w);
    *it = (struct eval_item){
        .index = w.index, .sample_tokens = w.sample_tokens, .greedy = w.greedy,
        .greedy_correct = w.greedy_correct, .greedy_no_answer = w.greedy_no_answer,
        .greedy_tokens = w.greedy_tokens, .G = w.G, .sample_correct = w.sample_correct,
        .sample_no_answer = w.sample_no_answer, .maj_correct = w.maj_correct, .winner_votes = w.winner_votes,
        .mc = w.mc, .maj_k_mask = w.maj_k_mask,
    };
    if (w.source_len >= 0) {
        it->source = mmupt_xmalloc((size_t)w.source_len + 1);
        comm_reader_get(u, it->source, (size_t)w.source_len);
        it->source[w.source_len] = '\0';
    }
}

static int by_index(const void *a, const void *b)
{
    int64_t x = ((const struct eval_item *)a)->index, y = ((const struct eval_item *)b)->index;
    return (x > y) - (x < y);
}

/* Rank 0: rebuild *r from every rank's record (bufs back to back, sizes in lens). */
static void merge(void *ctx, const char *bufs, const size_t *lens, int size)
{
    struct eval_result *r = ctx;
    struct eval_result out;
    eval_result_init(&out, r->G, r->vote, r->n_k, r->k);
    out.temperature = r->temperature;
    out.keep_items = r->keep_items;
    struct eval_item *items = NULL;
    int64_t n = 0;
    const char *p = bufs;
    for (int k = 0; k < size; k++) {
        struct comm_reader u = {p, p + lens[k]};
        int64_t head[4];
        double seconds;
        comm_reader_get(&u, head, sizeof head);
        comm_reader_get(&u, &seconds, sizeof seconds);
        out.visited += head[0];
        out.skipped_no_answer += head[1];
        out.skipped_bad += head[2];
        if (seconds > out.seconds) out.seconds = seconds;
        MMUPT_CHECK(head[3] >= 0 && head[3] <= (int64_t)(lens[k] / sizeof(struct wire_item)));
        items = realloc(items, (size_t)(n + head[3] + 1) * sizeof *items);
        if (!items) MMUPT_DIE("out of memory for %lld eval items", (long long)(n + head[3]));
        for (int64_t i = 0; i < head[3]; i++) unpack_item(&u, &items[n++]);
        MMUPT_CHECK(u.p == u.end);
        p += lens[k];
    }
    qsort(items, (size_t)n, sizeof *items, by_index);
    for (int64_t i = 0; i < n; i++) {
        eval_add_item(&out, items[i].source, &items[i]);
        free(items[i].source);
    }
    free(items);
    eval_result_free(r);
    *r = out;
}

int eval_gather(const struct comm *comm, struct eval_result *r, struct mmupt_err *err)
{
    MMUPT_CHECK(r->keep_items || r->all.items == 0);
    struct comm_buf b = {0};
    pack_result(r, &b);
    int rc = comm_gather_records(comm, &b, merge, r, err);
    if (rc) mmupt_err_prefix(err, "eval: gathering the results on rank 0");
    return rc;
}
