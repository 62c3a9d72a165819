/* eval_gather under a real mpirun: every rank grades its strided share of 61 hand-made items (mixed
 * right, wrong and unanswered samples, several sources, some multiple choice), rank 0 gathers them,
 * and the result must equal, bit for bit, the one-process result over all items: counts, pass@k
 * sums (floating point, so the order of addition matters), maj@k, every source row.
 * Run as: mpirun -np P test_eval_mpi */
#include <mpi.h>
#include <stdio.h>
#include <string.h>

#include "../test.h"
#include "mmupt/comm.h"
#include "mmupt/eval.h"

#define N_ITEMS 61
#define G 6

static const char *const sources[] = {"geometry", "charts", "mc"};
static const char *const mc_problem = "Which?\nChoices:\n(A) 1\n(B) 2\n(C) 3\n";

/* Item i's sample g: a fixed pseudo-random mix of right, wrong and missing answers. */
static const char *sample_text(int i, int g)
{
    unsigned h = (unsigned)(i * 7919 + g * 104729) * 2654435761u;
    switch ((h >> 16) % 5) {
    case 0: case 1: return i % 3 == 2 ? "\\boxed{(B)}" : "\\boxed{42}";
    case 2: return i % 3 == 2 ? "\\boxed{C}" : "\\boxed{41}";
    case 3: return "\\boxed{7}";
    default: return "no answer";
    }
}

static void score_item(struct eval_result *r, int i)
{
    struct eval_response s[G], g;
    for (int k = 0; k < G; k++) {
        const char *t = sample_text(i, k);
        s[k] = (struct eval_response){.text = t, .len = strlen(t), .tokens = 3 + (i + k) % 11};
    }
    const char *gt = sample_text(i + 1000, 0);
    g = (struct eval_response){.text = gt, .len = strlen(gt), .tokens = 1 + i % 5};
    int mc = i % 3 == 2;
    struct eval_item it;
    eval_grade_item(r, mc ? mc_problem : "What is it?", mc ? "B" : "42", &g, s, &it);
    it.index = i;
    eval_add_item(r, sources[i % 3], &it);
    r->visited++;
}

static int same_row(const struct eval_counts *a, const struct eval_counts *b)
{
    return a->items == b->items && a->greedy_items == b->greedy_items && a->greedy_correct == b->greedy_correct &&
           a->greedy_no_answer == b->greedy_no_answer && a->greedy_tokens == b->greedy_tokens &&
           a->samples == b->samples && a->sample_correct == b->sample_correct &&
           a->sample_no_answer == b->sample_no_answer && a->sample_tokens == b->sample_tokens &&
           a->maj_correct == b->maj_correct && a->any_correct == b->any_correct &&
           a->majority_share == b->majority_share && a->mc_items == b->mc_items && a->n_k == b->n_k &&
           memcmp(a->pass_k, b->pass_k, sizeof a->pass_k) == 0 &&
           memcmp(a->maj_k_correct, b->maj_k_correct, sizeof a->maj_k_correct) == 0;
}

static void test_gather(struct test_state *ts, const struct comm *w)
{
    int k[3] = {1, 3, 5};
    struct eval_result mine, whole;
    struct mmupt_err err;
    eval_result_init(&mine, G, REWARD_VOTE_PAPER, 3, k);
    mine.keep_items = 1;
    /* Added in reverse here: the gather must restore index order by itself. */
    for (int i = N_ITEMS - 1; i >= 0; i--)
        if (i % w->size == w->rank) score_item(&mine, i);
    CHECK_MSG(ts, eval_gather(w, &mine, &err) == 0, "%s", err.msg);
    if (w->rank == 0) {
        eval_result_init(&whole, G, REWARD_VOTE_PAPER, 3, k);
        for (int i = 0; i < N_ITEMS; i++) score_item(&whole, i);
        CHECK(ts, mine.all.items == N_ITEMS && mine.visited == N_ITEMS && mine.all.mc_items == N_ITEMS / 3);
        CHECK(ts, same_row(&mine.all, &whole.all));
        CHECK(ts, mine.n_sources == 3 && whole.n_sources == 3);
        for (int s = 0; s < 3 && s < mine.n_sources; s++)
            CHECK_MSG(ts, strcmp(mine.sources[s].source, whole.sources[s].source) == 0 &&
                              same_row(&mine.sources[s], &whole.sources[s]),
                      "source %s", whole.sources[s].source);
        /* Something non-trivial was measured. */
        CHECK(ts, whole.all.maj_correct > 0 && whole.all.maj_correct < N_ITEMS && whole.all.pass_k[1] > 0);
        eval_result_free(&whole);
    }
    eval_result_free(&mine);
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    struct comm w;
    struct mmupt_err err;
    if (comm_world(&w, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    struct test_state ts = {0};
    RUN_WITH(&ts, test_gather, &w);
    int failed = ts.failed;
    comm_free(&w);
    MPI_Finalize();
    if (failed) return 1;
    return test_summary(&ts);
}
