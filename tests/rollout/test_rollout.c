/* The rollout engine: greedy samples reproduce transformers' generate; sampled answers are identical
 * however the questions are batched, ordered or packed into prefills (the RNG is keyed by question and
 * sample, not by position in the batch); stop tokens end a sample with finish reason "stop", max_new with "length";
 * the device engine draws what the CPU engine draws (on the device emulator).
 * usage: test_rollout FIXTURE_DIR (a model fixture with generate.* tensors) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../test.h"
#include "mmupt/gpu_mem.h"
#include "mmupt/model_dev.h"
#include "mmupt/rollout.h"
#include "mmupt/safetensors.h"

#define MAX_Q 4
#define MAX_G 3

struct collected {
    int count;
    int n[MAX_Q][MAX_G];
    int32_t ids[MAX_Q][MAX_G][16];
    float logp[MAX_Q][MAX_G][16];
    enum rollout_finish finish[MAX_Q][MAX_G];
    int64_t order_q[MAX_Q * MAX_G];
};

static const int64_t *question_of; /* request index -> question id, for the collector */

static void collect(void *ctx, struct rollout_sample *s)
{
    struct collected *c = ctx;
    int64_t qid = question_of[s->question];
    c->n[qid][s->sample] = s->n;
    memcpy(c->ids[qid][s->sample], s->ids, (size_t)s->n * sizeof *s->ids);
    memcpy(c->logp[qid][s->sample], s->logp, (size_t)s->n * sizeof *s->logp);
    c->finish[qid][s->sample] = s->finish;
    c->order_q[c->count++] = qid;
    free(s->ids);
    free(s->logp);
}

static struct model model;
static int64_t prompts[MAX_Q][12];
static int lens[MAX_Q];

static void make_questions(struct rollout_question *q, const int *order, int n)
{
    for (int i = 0; i < n; i++) {
        int k = order[i];
        q[i].id = k;
        q[i].prompt = (struct model_batch){.n_seq = 1, .seq_len = &lens[k], .tokens = prompts[k]};
    }
}

static void run(struct test_state *ts, const struct rollout_config *rc, const int *order, int n, struct collected *c)
{
    struct rollout_question q[MAX_Q];
    int64_t map[MAX_Q];
    make_questions(q, order, n);
    for (int i = 0; i < n; i++) map[i] = order[i];
    question_of = map;
    memset(c, 0, sizeof *c);
    struct mmupt_err err;
    CHECK_MSG(ts, rollout_run(&model, rc, q, n, collect, c, &err) == 0, "%s", err.msg);
}

static void test_batching_invariance(struct test_state *ts)
{
    struct rollout_config rc = {.G = 3, .max_new = 10, .n_slots = 1, .max_prompt = 16, .seed = 1234,
                                .sampling = {.temperature = 1.0f, .top_p = 0.95f, .top_k = 0}};
    const int forward[] = {0, 1, 2, 3}, backward[] = {3, 2, 1, 0};
    struct collected a, b, c;
    run(ts, &rc, forward, 4, &a);
    rc.n_slots = 5;
    run(ts, &rc, forward, 4, &b);
    rc.n_slots = 2;
    run(ts, &rc, backward, 4, &c);
    int diverse = 0;
    for (int k = 0; k < 4; k++)
        for (int g = 0; g < 3; g++) {
            CHECK(ts, a.n[k][g] == 10 && b.n[k][g] == 10 && c.n[k][g] == 10);
            CHECK_MSG(ts, memcmp(a.ids[k][g], b.ids[k][g], sizeof a.ids[k][g]) == 0, "q%d s%d: 1 slot vs 5 slots", k, g);
            CHECK_MSG(ts, memcmp(a.ids[k][g], c.ids[k][g], sizeof a.ids[k][g]) == 0, "q%d s%d: order/batch", k, g);
            for (int t = 0; t < 10; t++) CHECK(ts, fabsf(a.logp[k][g][t] - c.logp[k][g][t]) <= 1e-5f);
            diverse += g > 0 && memcmp(a.ids[k][g], a.ids[k][0], sizeof a.ids[k][0]) != 0;
        }
    CHECK_MSG(ts, diverse > 0, "the samples of a group never differ: the RNG is not keyed by sample");
    CHECK(ts, a.count == 12 && c.count == 12);
}

/* Prompts prefilled one at a time, three then one, or all four together: the same answers (ids
 * exactly, log-probs within fp32 rounding) - a packed prefill is the same arithmetic per prompt. */
static void test_prefill_packing(struct test_state *ts)
{
    struct rollout_config rc = {.G = 2, .max_new = 8, .n_slots = 3, .max_prompt = 16, .seed = 99,
                                .sampling = {.temperature = 1.0f, .top_p = 1.0f, .top_k = 0}};
    const int order[] = {2, 0, 3, 1};
    struct collected all, one, three;
    run(ts, &rc, order, 4, &all); /* the engine's choice: all four */
    rc.prefill_prompts = 1;
    run(ts, &rc, order, 4, &one);
    rc.prefill_prompts = 3;
    run(ts, &rc, order, 4, &three);
    for (int k = 0; k < 4; k++)
        for (int g = 0; g < 2; g++) {
            CHECK(ts, all.n[k][g] == 8 && one.n[k][g] == 8 && three.n[k][g] == 8);
            CHECK_MSG(ts, memcmp(all.ids[k][g], one.ids[k][g], sizeof all.ids[k][g]) == 0, "q%d s%d: 4 vs 1", k, g);
            CHECK_MSG(ts, memcmp(all.ids[k][g], three.ids[k][g], sizeof all.ids[k][g]) == 0, "q%d s%d: 4 vs 3", k, g);
            for (int t = 0; t < 8; t++)
                CHECK(ts, fabsf(all.logp[k][g][t] - one.logp[k][g][t]) <= 1e-5f &&
                              fabsf(all.logp[k][g][t] - three.logp[k][g][t]) <= 1e-5f);
        }
    rc.prefill_prompts = -1;
    struct rollout_question q[1];
    const int first[] = {0};
    make_questions(q, first, 1);
    struct mmupt_err err;
    CHECK(ts, rollout_run(&model, &rc, q, 1, collect, &all, &err) == -1);
    CHECK_CONTAINS(ts, err.msg, "prefill_prompts");
}

/* How many prompts a prefill packs: at least 16; for short prompts every decode slot's question at
 * once up to 8192 tokens (the 0.5B rollout benchmark: 64 prompts of 128 in one forward); never more
 * than there are questions; an explicit count wins. */
static void test_prefill_prompts(struct test_state *ts)
{
    struct rollout_config rc = {.G = 1, .max_new = 256, .n_slots = 64, .max_prompt = 128};
    CHECK(ts, rollout_prefill_prompts(&rc, 64) == 64);
    CHECK(ts, rollout_prefill_prompts(&rc, 1000) == 64);
    CHECK(ts, rollout_prefill_prompts(&rc, 5) == 5);
    rc.max_prompt = 512; /* 8192 tokens: 16 prompts */
    CHECK(ts, rollout_prefill_prompts(&rc, 1000) == 16);
    rc.max_prompt = 4096; /* long prompts: 16, as always */
    CHECK(ts, rollout_prefill_prompts(&rc, 1000) == 16);
    rc.max_prompt = 64, rc.G = 8; /* 64 slots of 8 samples: 8 questions fill them; still 16 at least */
    CHECK(ts, rollout_prefill_prompts(&rc, 1000) == 16);
    rc.G = 1, rc.n_slots = 1000; /* 8192 / 64 = 128 prompts */
    CHECK(ts, rollout_prefill_prompts(&rc, 1000) == 128);
    rc.prefill_prompts = 3;
    CHECK(ts, rollout_prefill_prompts(&rc, 1000) == 3 && rollout_prefill_prompts(&rc, 2) == 2);
    CHECK(ts, rollout_prefill_prompts(&rc, 0) == 1);
}

static void test_stop_and_length(struct test_state *ts)
{
    struct rollout_config rc = {.G = 1, .max_new = 6, .n_slots = 2, .max_prompt = 16, .seed = 7,
                                .sampling = {.temperature = 0.0f, .top_p = 1.0f}};
    const int order[] = {0, 1};
    struct collected greedy, stopped;
    run(ts, &rc, order, 2, &greedy);
    CHECK(ts, greedy.finish[0][0] == ROLLOUT_LENGTH && greedy.n[0][0] == 6);
    int32_t stop = greedy.ids[0][0][2]; /* make question 0's third token a stop token */
    rc.stop_ids = &stop;
    rc.n_stop = 1;
    run(ts, &rc, order, 2, &stopped);
    int first = 0;
    while (greedy.ids[0][0][first] != stop) first++;
    CHECK_MSG(ts, stopped.n[0][0] == first + 1 && stopped.finish[0][0] == ROLLOUT_STOP, "n %d, first stop at %d",
              stopped.n[0][0], first);
    CHECK(ts, memcmp(stopped.ids[0][0], greedy.ids[0][0], (size_t)(first + 1) * sizeof(int32_t)) == 0);
}

static void test_greedy_matches_transformers(struct test_state *ts, const char *dir)
{
    struct st_set exp;
    struct mmupt_err err;
    char path[1024];
    snprintf(path, sizeof path, "%s/expected.safetensors", dir);
    CHECK_MSG(ts, st_open(&exp, path, &err) == 0, "%s", err.msg);
    if (ts->current_failed) return;
    const struct st_tensor *in = st_find(&exp, "generate.input_ids"), *out = st_find(&exp, "generate.output_ids");
    int64_t *p = malloc((size_t)in->numel * sizeof *p), *want = malloc((size_t)out->numel * sizeof *want);
    st_copy_i64(in, p, in->numel, &err);
    st_copy_i64(out, want, out->numel, &err);
    int len = (int)in->numel;
    struct rollout_question q = {.id = 0, .prompt = {.n_seq = 1, .seq_len = &len, .tokens = p}};
    struct rollout_config rc = {.G = 2, .max_new = 8, .n_slots = 2, .max_prompt = len, .seed = 1,
                                .sampling = {.temperature = 0.0f, .top_p = 1.0f}};
    struct collected c;
    int64_t map[1] = {0};
    question_of = map;
    memset(&c, 0, sizeof c);
    CHECK_MSG(ts, rollout_run(&model, &rc, &q, 1, collect, &c, &err) == 0, "%s", err.msg);
    for (int g = 0; g < 2; g++)
        for (int t = 0; t < 8; t++)
            CHECK_MSG(ts, c.ids[0][g][t] == want[len + t], "sample %d token %d: %d vs transformers %lld", g, t,
                      c.ids[0][g][t], (long long)want[len + t]);
    free(p);
    free(want);
    st_close(&exp);
}

/* The device engine (rc.dev: device model, prefill, 2-D cache copies, first draws and step draws by
 * the device sampler) draws what the CPU engine draws. Run on the device emulator (a CPU-only build),
 * where the device model and sampler are bitwise the CPU's: every id and log-prob must be equal. On
 * a GPU the logits differ in rounding and a draw near a boundary may differ; train_cuda covers that
 * machine. Several questions per prefill and G > 1: prefix slots copied to sample slots. */
static void test_device_matches_cpu(struct test_state *ts)
{
    if (!gpu_emulated()) {
        printf("# skipped: not the device emulator (a CUDA build: the gpu suite's train_cuda runs this path)\n");
        return;
    }
    struct gpu_ctx g;
    struct mmupt_err err;
    CHECK_MSG(ts, gpu_ctx_init(&g, &err) == 0, "%s", err.msg);
    if (ts->current_failed) return;
    struct model_dev d;
    model_dev_init(&d, &model, &g);
    struct rollout_config rc = {.G = 3, .max_new = 9, .n_slots = 4, .max_prompt = 16, .seed = 99,
                                .sampling = {.temperature = 0.9f, .top_p = 0.9f, .top_k = 0}};
    const int order[] = {2, 0, 3, 1};
    struct collected cpu, dev;
    run(ts, &rc, order, 4, &cpu);
    rc.dev = &d;
    run(ts, &rc, order, 4, &dev);
    CHECK(ts, cpu.count == 12 && dev.count == 12);
    for (int k = 0; k < 4; k++)
        for (int s = 0; s < 3; s++) {
            CHECK_MSG(ts, dev.n[k][s] == cpu.n[k][s], "q%d s%d: %d tokens, the CPU %d", k, s, dev.n[k][s], cpu.n[k][s]);
            CHECK_MSG(ts, memcmp(dev.ids[k][s], cpu.ids[k][s], sizeof cpu.ids[k][s]) == 0, "q%d s%d: ids differ", k, s);
            CHECK_MSG(ts, memcmp(dev.logp[k][s], cpu.logp[k][s], sizeof cpu.logp[k][s]) == 0, "q%d s%d: log-probs differ",
                      k, s);
        }
    model_dev_free(&d);
    gpu_ctx_free(&g);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s TEXT_FIXTURE_DIR\n", argv[0]);
        return 2;
    }
    struct mmupt_err err;
    if (model_open(&model, argv[1], &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    for (int k = 0; k < MAX_Q; k++) {
        lens[k] = 5 + 2 * k;
        for (int i = 0; i < lens[k]; i++) prompts[k][i] = (k * 37 + i * 11) % 280;
    }
    struct test_state ts = {0};
    RUN(&ts, test_batching_invariance);
    RUN(&ts, test_prefill_packing);
    RUN(&ts, test_prefill_prompts);
    RUN(&ts, test_stop_and_length);
    RUN_ON(&ts, test_greedy_matches_transformers, argv[1]);
    RUN(&ts, test_device_matches_cpu);
    model_free(&model);
    return test_summary(&ts);
}
