/* Supervised fine-tuning (src/sft) and random initialisation (src/model/init.c):
 *  - model_init_random: deterministic, independent of the thread count, N(0, 0.02) weights, unit
 *    norms, zero biases, different seeds differ;
 *  - the loss equals a direct computation from model_forward + model_logprobs, only target tokens
 *    are scored (the gradient equals the one with zero weight on every prompt and image row);
 *  - 150 steps on four items drive the loss below 10% of its start, and greedy rollouts from the
 *    saved directory reproduce the trained responses.
 * usage: test_sft TINY_TRAIN_DIR SMALL_H5 */
#include <math.h>
#include <mpi.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../test.h"
#include "mmupt/rollout.h"
#include "mmupt/sft.h"
#include "sft_data.h"

static const char *model_dir, *small_h5;
static char tmpdir[] = "/tmp/mmupt_sft_XXXXXX";
static struct comm world;

/* ---- model_init_random ---- */

static void test_init_random(struct test_state *ts)
{
    struct model_config mc;
    struct mmupt_err err;
    int rc = model_config_load(&mc, model_dir, &err);
    CHECK_MSG(ts, rc == 0, "%s", err.msg);
    if (rc) return;
    struct model a, b, c;
    model_init(&a, &mc);
    model_init(&b, &mc);
    model_init(&c, &mc);
    int threads = omp_get_max_threads();
    omp_set_num_threads(1);
    model_init_random(&a, 7);
    omp_set_num_threads(threads > 1 ? threads : 2);
    model_init_random(&b, 7);
    omp_set_num_threads(threads);
    model_init_random(&c, 8);
    size_t bytes = (size_t)a.spec.total * sizeof(float);
    CHECK(ts, memcmp(a.params, b.params, bytes) == 0); /* same seed, other thread count */
    int64_t same = 0;
    for (int64_t i = 0; i < a.spec.total; i++) same += a.params[i] == c.params[i];
    /* Only the constant (norm, bias) entries may agree between seeds. */
    int64_t n_const = 0, n_normal = 0, n_one = 0;
    double sum = 0, sq = 0;
    int64_t within1 = 0;
    for (int k = 0; k < a.spec.n_params; k++) {
        const struct model_param *p = &a.spec.params[k];
        const float *w = a.params + p->offset;
        size_t n = strlen(p->name);
        int is_bias = n > 5 && strcmp(p->name + n - 5, ".bias") == 0;
        int is_norm = !is_bias && (strstr(p->name, "norm") || strstr(p->name, "ln_q"));
        int bad = 0;
        for (int64_t j = 0; j < p->numel; j++) {
            if (is_bias) bad |= w[j] != 0.0f;
            else if (is_norm) bad |= w[j] != 1.0f;
            else {
                sum += w[j], sq += (double)w[j] * w[j], within1 += fabsf(w[j]) < 0.02f;
            }
        }
        CHECK_MSG(ts, !bad, "%s is not %s", p->name, is_bias ? "all 0" : "all 1");
        if (is_bias || is_norm) n_const += p->numel;
        else n_normal += p->numel;
        n_one += is_norm ? p->numel : 0;
    }
    CHECK(ts, n_one > 0 && n_normal > 100000);
    CHECK_MSG(ts, same <= n_const + n_normal / 1000, "%lld equal entries between seeds 7 and 8", (long long)same);
    double mean = sum / (double)n_normal, sd = sqrt(sq / (double)n_normal - mean * mean);
    CHECK_MSG(ts, fabs(sd - 0.02) < 0.002 && fabs(mean) < 0.0005, "mean %g std %g", mean, sd);
    double share = (double)within1 / (double)n_normal; /* 68.3% of a normal lies within one std */
    CHECK_MSG(ts, fabs(share - 0.6827) < 0.01, "%.4f within one std", share);
    /* The largest single weight alone: the embedding. */
    const struct model_param *e = model_spec_find(&a.spec, "model.embed_tokens.weight");
    CHECK(ts, e != NULL);
    if (e) {
        double s = 0, q = 0;
        for (int64_t j = 0; j < e->numel; j++) s += a.params[e->offset + j], q += (double)a.params[e->offset + j] * a.params[e->offset + j];
        double m = s / (double)e->numel, sdev = sqrt(q / (double)e->numel - m * m);
        CHECK_MSG(ts, fabs(sdev - 0.02) < 0.002, "embedding std %g", sdev);
    }
    model_free(&a);
    model_free(&b);
    model_free(&c);
}

/* ---- the loss ---- */

/* Examples for items 0..2 of the split with the given responses. */
static int make_examples(struct tok *tok, const struct model *m, struct sft_example *ex, int n, struct mmupt_err *err)
{
    struct ds_reader *r;
    if (ds_open(&r, small_h5, err)) return -1;
    struct prompt_builder pb;
    struct img_proc_config ic;
    img_proc_config_default(&ic);
    ic.merge = (int)m->cfg.vision.merge;
    int rc = prompt_builder_init(&pb, tok, "", &ic, 0, err);
    for (int k = 0; k < n && rc == 0; k++) {
        struct ds_item it = {0};
        memset(&ex[k], 0, sizeof ex[k]);
        rc = ds_read(r, sft_item_index[k], &it, err);
        if (rc == 0)
            rc = prompt_build(&pb, it.problem, (const uint8_t *const *)it.image, it.image_len, it.n_images, &ex[k].prompt,
                              err);
        if (rc == 0)
            rc = sft_target(tok, sft_responses[k], tok_id(tok, "<|im_end|>"), 64, &ex[k].target, &ex[k].n_target, err);
        ds_item_free(&it);
    }
    ds_close(r);
    return rc;
}

static void test_loss(struct test_state *ts)
{
    struct model m;
    struct tok *tok = NULL;
    struct mmupt_err err;
    char tpath[1024];
    snprintf(tpath, sizeof tpath, "%s/tokenizer.json", model_dir);
    int rc = model_open(&m, model_dir, &err);
    if (rc == 0) rc = tok_load(&tok, tpath, &err);
    enum { N = 3 };
    struct sft_example ex[N];
    if (rc == 0) rc = make_examples(tok, &m, ex, N, &err);
    CHECK_MSG(ts, rc == 0, "%s", err.msg);
    if (rc) return;
    struct sft_batch b;
    sft_batch_pack(&b, ex, N, model_patch_dim(&m.cfg));
    CHECK(ts, b.n_images == 3); /* items 0 and 1: one and two images; item 2 none */

    /* The test's own view of which positions are scored: the last prompt position of each sequence
     * up to the one before the last target token. */
    int64_t *tgt = malloc((size_t)b.n_tokens * sizeof *tgt), n_scored = 0, t = 0;
    for (int k = 0; k < N; k++) {
        int P = (int)ex[k].prompt.n_ids, L = P + ex[k].n_target;
        CHECK(ts, b.seq_len[k] == L);
        for (int j = 0; j < L; j++) {
            int64_t next = j + 1 < L ? (j + 1 < P ? ex[k].prompt.ids[j + 1] : ex[k].target[j + 1 - P]) : -1;
            tgt[t + j] = j >= P - 1 && j + 1 < L ? next : -1;
            n_scored += tgt[t + j] >= 0;
        }
        CHECK(ts, b.tokens[t + L - 1] == tok_id(tok, "<|im_end|>"));
        t += L;
    }
    CHECK(ts, n_scored == b.n_scored);
    CHECK(ts, memcmp(tgt, b.targets, (size_t)b.n_tokens * sizeof *tgt) == 0);

    double loss = NAN;
    model_zero_grad(&m);
    rc = sft_batch_loss(&m, &b, 1, &loss, &err);
    CHECK_MSG(ts, rc == 0, "%s", err.msg);
    float *g_sft = malloc((size_t)m.spec.total * sizeof *g_sft);
    memcpy(g_sft, m.grads, (size_t)m.spec.total * sizeof *g_sft);

    /* Direct: a fresh forward over the same packed batch, log-probs of the test's targets. */
    struct model_batch mb = sft_batch_view(&b);
    CHECK(ts, model_forward(&m, &mb, &err) == 0);
    float *logp = malloc((size_t)b.n_tokens * sizeof *logp);
    model_logprobs(&m, tgt, 1.0f, logp, NULL);
    double sum = 0;
    for (int64_t i = 0; i < b.n_tokens; i++) sum += logp[i];
    double direct = -sum / (double)n_scored;
    CHECK_MSG(ts, loss == direct, "sft %.17g direct %.17g", loss, direct);
    CHECK_MSG(ts, loss > 1.0 && loss < 20.0, "loss %g", loss);
    /* The same from the logits in double: log-softmax by hand. */
    int64_t V = m.cfg.text.vocab;
    double by_hand = 0;
    float *dlogits = calloc((size_t)(b.n_tokens * V), sizeof *dlogits);
    for (int64_t i = 0; i < b.n_tokens; i++) {
        if (tgt[i] < 0) continue; /* prompt and image rows: weight 0, so their dlogits stay 0 */
        const float *z = m.logits + i * V;
        double mx = z[0], se = 0;
        for (int64_t v = 1; v < V; v++) mx = z[v] > mx ? z[v] : mx;
        for (int64_t v = 0; v < V; v++) se += exp(z[v] - mx);
        by_hand -= z[tgt[i]] - mx - log(se);
        for (int64_t v = 0; v < V; v++)
            dlogits[i * V + v] = (float)((exp(z[v] - mx) / se - (v == tgt[i])) / (double)n_scored);
    }
    by_hand /= (double)n_scored;
    CHECK_MSG(ts, fabs(by_hand - loss) < 1e-5 * fabs(loss), "by hand %.9g, sft %.9g", by_hand, loss);

    /* Gradient: the one of cross-entropy with zero weight on prompt rows. */
    model_zero_grad(&m);
    model_backward(&m, dlogits);
    double rel = test_rel_err(g_sft, m.grads, m.spec.total);
    CHECK_MSG(ts, rel < 1e-4, "gradient rel err %g", rel);
    /* Scoring one prompt row as well would change the loss: the targets are what select rows. */
    int64_t first_prompt_row = 3; /* inside sequence 0's prompt */
    CHECK(ts, b.targets[first_prompt_row] == -1);
    tgt[first_prompt_row] = b.tokens[first_prompt_row + 1];
    model_logprobs(&m, tgt, 1.0f, logp, NULL);
    CHECK(ts, logp[first_prompt_row] < 0.0f);
    /* Another response to the same prompts changes the loss; the prompts alone do not score. */
    int old_n = ex[0].n_target;
    free(ex[0].target);
    CHECK(ts, sft_target(tok, "something else entirely", tok_id(tok, "<|im_end|>"), 64, &ex[0].target,
                         &ex[0].n_target, &err) == 0);
    struct sft_batch b2;
    sft_batch_pack(&b2, ex, N, model_patch_dim(&m.cfg));
    double loss2 = NAN;
    CHECK(ts, sft_batch_loss(&m, &b2, 0, &loss2, &err) == 0);
    CHECK(ts, loss2 != loss && b2.n_scored == b.n_scored - old_n + ex[0].n_target);
    sft_batch_free(&b2);

    /* Refusals. */
    int32_t *ids;
    int n;
    CHECK(ts, sft_target(tok, "", 2, 64, &ids, &n, &err) == -1);
    CHECK_CONTAINS(ts, err.msg, "empty");
    CHECK(ts, sft_target(tok, "a long answer with many tokens in it", 2, 4, &ids, &n, &err) == -1);
    CHECK_CONTAINS(ts, err.msg, "target limit");

    free(dlogits);
    free(logp);
    free(tgt);
    free(g_sft);
    sft_batch_free(&b);
    for (int k = 0; k < N; k++) sft_example_free(&ex[k]);
    tok_free(tok);
    model_free(&m);
}

/* ---- overfitting four items, then greedy rollouts from the saved model ---- */

struct greedy_out {
    int32_t ids[64];
    int n;
};

static void collect(void *ctx, struct rollout_sample *s)
{
    struct greedy_out *o = ctx;
    o->n = s->n < 64 ? s->n : 64;
    memcpy(o->ids, s->ids, (size_t)o->n * sizeof *s->ids);
    free(s->ids);
    free(s->logp);
}

/* Greedy answer of the model in dir to item k; returns the decoded text (caller frees) or NULL. */
static char *greedy_answer(struct model *m, struct tok *tok, const char *dir, const struct sft_example *ex)
{
    int len = (int)ex->prompt.n_ids;
    int64_t *ids = malloc((size_t)len * sizeof *ids);
    for (int i = 0; i < len; i++) ids[i] = ex->prompt.ids[i];
    struct rollout_question q = {.id = 0, .prompt = {.n_seq = 1, .seq_len = &len, .tokens = ids,
                                                     .n_images = ex->prompt.n_images, .grid_thw = ex->prompt.grid,
                                                     .pixels = ex->prompt.pixels}};
    int32_t stops[8];
    struct rollout_config rc = {.G = 1, .max_new = 40, .n_slots = 1, .max_prompt = len, .seed = 1,
                                .sampling = {.temperature = 0.0f, .top_p = 1.0f},
                                .stop_ids = stops, .n_stop = rollout_default_stop_ids(dir, tok, stops, 8)};
    struct greedy_out out = {.n = 0};
    struct mmupt_err err;
    char *text = NULL;
    size_t tlen;
    if (rollout_run(m, &rc, &q, 1, collect, &out, &err) == 0 && tok_decode(tok, out.ids, (size_t)out.n, 1, &text, &tlen, &err))
        text = NULL;
    free(ids);
    return text;
}

static void test_overfit(struct test_state *ts)
{
    char data[1100], out[1100];
    snprintf(data, sizeof data, "%s/sft.h5", tmpdir);
    snprintf(out, sizeof out, "%s/out", tmpdir);
    struct mmupt_err err;
    int rc = sft_write_split(small_h5, data, 1, &err);
    CHECK_MSG(ts, rc == 0, "%s", err.msg);
    if (rc) return;
    struct sft_config c;
    sft_config_default(&c);
    c.steps = 150;
    c.batch = 4;
    c.lr = 3e-3;
    c.warmup_ratio = 0.1;
    c.weight_decay = 0.0;
    c.log_every = 0;
    /* One thread: meson runs tests side by side on small machines, and OpenMP teams that busy-wait
     * against each other there made this test 5x slower. */
    int threads = omp_get_max_threads();
    omp_set_num_threads(1);
    double losses[150];
    struct sft_stats st = {.losses = losses};
    struct sft_paths p = {.model_dir = model_dir, .data = data, .out_dir = out};
    rc = sft_run(&p, &c, &world, NULL, &st, &err);
    omp_set_num_threads(threads);
    CHECK_MSG(ts, rc == 0, "%s", err.msg);
    if (rc) return;
    printf("# overfit: loss %.4f -> %.4f (last 10%%: %.4f), %.3f s/step\n", losses[0], losses[149], st.tail_loss,
           st.wall_s / (double)st.steps);
    CHECK(ts, st.steps == 150 && st.skipped_items == 0 && st.skipped_updates == 0);
    CHECK(ts, st.first_loss == losses[0]);
    CHECK_MSG(ts, losses[149] < 0.1 * losses[0] && st.tail_loss < 0.1 * losses[0], "loss %g -> %g", losses[0],
              losses[149]);
    /* A refused second run: the output is there now. */
    CHECK(ts, sft_run(&p, &c, &world, NULL, &st, &err) == -1);
    CHECK_CONTAINS(ts, err.msg, "not empty");

    struct model m;
    struct tok *tok = NULL;
    char tpath[1200];
    snprintf(tpath, sizeof tpath, "%s/tokenizer.json", out);
    rc = model_open(&m, out, &err);
    if (rc == 0) rc = tok_load(&tok, tpath, &err);
    struct sft_example ex[SFT_N_ITEMS];
    if (rc == 0) rc = make_examples(tok, &m, ex, SFT_N_ITEMS, &err);
    CHECK_MSG(ts, rc == 0, "%s", err.msg);
    if (rc) return;
    int exact = 0;
    for (int k = 0; k < SFT_N_ITEMS; k++) {
        char *text = greedy_answer(&m, tok, out, &ex[k]);
        int ok = text && strcmp(text, sft_responses[k]) == 0;
        exact += ok;
        printf("# item %d: '%s' %s\n", k, text ? text : "(failed)", ok ? "ok" : "differs");
        free(text);
        sft_example_free(&ex[k]);
    }
    CHECK_MSG(ts, exact >= 3, "%d of %d responses reproduced", exact, SFT_N_ITEMS);
    tok_free(tok);
    model_free(&m);
    test_remove_dir(out);
    unlink(data);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: test_sft TINY_TRAIN_DIR SMALL_H5\n");
        return 2;
    }
    model_dir = argv[1];
    small_h5 = argv[2];
    MPI_Init(&argc, &argv);
    struct mmupt_err err;
    if (!mkdtemp(tmpdir) || comm_world(&world, &err)) {
        fprintf(stderr, "cannot set up\n");
        return 1;
    }
    struct test_state ts = {0};
    RUN(&ts, test_init_random);
    RUN(&ts, test_loss);
    RUN(&ts, test_overfit);
    comm_free(&world);
    test_remove_dir(tmpdir);
    MPI_Finalize();
    return test_summary(&ts);
}
