/* Each step's questions and their rollout.
 *
 * The step's questions are L * q_per_learner, stream-major: global index i belongs to learner
 * i / q_per_learner, whose own shuffled stream (dataset cursor l of L) supplies them in order. The
 * learner reads its stream itself; in split mode the rollout ranks split [0, L * q) into contiguous
 * ranges and each walks the streams its range touches, building every prompt of them (a skipped bad
 * item must be skipped identically on both sides) but generating only its own. So the question a
 * group belongs to, and the learner that trains on it, never depend on timing or on R. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mmupt/rollout.h"
#include "train_internal.h"

void step_init(struct step_data *d, int n_q, int G)
{
    memset(d, 0, sizeof *d);
    d->G = G;
    d->q = mmupt_xcalloc((size_t)(n_q > 0 ? n_q : 1), sizeof *d->q);
    d->samples = mmupt_xcalloc((size_t)(n_q > 0 ? n_q : 1) * (size_t)G, sizeof *d->samples);
}

void train_step_free(struct step_data *d)
{
    for (int i = 0; i < d->n_q; i++) {
        prompt_item_free(&d->q[i].prompt);
        ds_item_free(&d->q[i].item);
        free(d->q[i].ids64);
    }
    for (int i = 0; d->samples && i < d->n_q * d->G; i++) {
        free(d->samples[i].ids);
        free(d->samples[i].logp);
    }
    free(d->q);
    free(d->samples);
    memset(d, 0, sizeof *d);
}

/* Append the next question of stream l to d. */
static int next_question(struct trainer *tr, int l, struct step_data *d, struct mmupt_err *err)
{
    struct train_question *q = &d->q[d->n_q];
    if (prompt_loader_next(&tr->streams[l], &q->prompt, &q->item, err)) return -1;
    d->n_q++;
    q->len = (int)q->prompt.n_ids;
    q->ids64 = mmupt_xmalloc((size_t)q->len * sizeof *q->ids64);
    for (int k = 0; k < q->len; k++) q->ids64[k] = q->prompt.ids[k];
    return 0;
}

int train_collect_questions(struct trainer *tr, struct step_data *d, struct mmupt_err *err)
{
    double t0 = mmupt_now();
    step_init(d, tr->q_per_learner, (int)tr->cfg->rollout.n);
    int rc = 0;
    for (int i = 0; i < tr->q_per_learner && rc == 0; i++) rc = next_question(tr, tr->learner, d, err);
    tr->phase[PH_LOAD] += mmupt_now() - t0;
    return rc;
}

void train_rollout_range(const struct trainer *tr, int64_t *lo, int64_t *hi)
{
    size_t a, b;
    comm_shard((size_t)tr->n_learners * (size_t)tr->q_per_learner, tr->n_rollout, tr->world.rank - tr->n_learners,
               &a, &b);
    *lo = (int64_t)a;
    *hi = (int64_t)b;
}

int train_collect_range(struct trainer *tr, int64_t lo, int64_t hi, struct step_data *d, struct mmupt_err *err)
{
    double t0 = mmupt_now();
    int q = tr->q_per_learner, rc = 0;
    step_init(d, (int)(hi - lo), (int)tr->cfg->rollout.n);
    if (hi > lo)
        for (int l = (int)(lo / q); l <= (int)((hi - 1) / q) && rc == 0; l++)
            for (int64_t i = (int64_t)l * q; i < (int64_t)(l + 1) * q && rc == 0; i++) {
                if (i >= lo && i < hi) { rc = next_question(tr, l, d, err); continue; }
                /* Someone else's question: build it only to stay in step with the stream. */
                struct prompt_item p;
                struct ds_item it;
                rc = prompt_loader_next(&tr->streams[l], &p, &it, err);
                if (rc == 0) { prompt_item_free(&p); ds_item_free(&it); }
            }
    tr->phase[PH_LOAD] += mmupt_now() - t0;
    return rc;
}

static void collect_sample(void *ctx, struct rollout_sample *s)
{
    struct step_data *d = ctx;
    struct train_sample *t = &d->samples[s->question * d->G + s->sample];
    t->ids = s->ids;
    t->logp = s->logp;
    t->n = s->n;
}

/* The sampler's seed for one training step: the RNG is keyed by (seed, question, sample, token),
 * so the step is folded in to give a question seen again in a later epoch fresh draws. */
uint64_t train_mix_seed(uint64_t seed, uint64_t k)
{
    uint64_t x = seed ^ (k * 0x9e3779b97f4a7c15ull);
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

int train_rollout(struct trainer *tr, struct step_data *d, int64_t policy_version, struct mmupt_err *err)
{
    const struct cfg *c = tr->cfg;
    double t0 = mmupt_now();
    struct rollout_question *q = mmupt_xcalloc((size_t)(d->n_q > 0 ? d->n_q : 1), sizeof *q);
    for (int i = 0; i < d->n_q; i++) {
        struct train_question *tq = &d->q[i];
        q[i] = (struct rollout_question){.id = tq->item.index, .prompt = {.n_seq = 1, .seq_len = &tq->len,
                                         .tokens = tq->ids64, .n_images = tq->prompt.n_images,
                                         .grid_thw = tq->prompt.grid, .pixels = tq->prompt.pixels}};
    }
    /* <|image_pad|> gets rollout.image_pad_bias (MM-UPT: -100); the video token is banned outright:
     * this trainer has no video input, and a generated one would not be a valid prompt to learn on. */
    int32_t bias_id[2] = {(int32_t)tr->model.cfg.image_token_id, (int32_t)tr->model.cfg.video_token_id};
    float bias[2] = {(float)c->rollout.image_pad_bias, -INFINITY};
    struct rollout_config rc = {
        .G = d->G, .max_new = (int)c->rollout.max_new_tokens, .n_slots = d->n_q * d->G < 64 ? d->n_q * d->G : 64,
        .max_prompt = (int)c->data.max_prompt_length, .seed = train_mix_seed(train_rollout_seed(c), (uint64_t)tr->step),
        .sampling = {.temperature = (float)c->rollout.temperature, .top_p = (float)c->rollout.top_p,
                     .top_k = (int)c->rollout.top_k, .bias_ids = bias_id, .bias = bias,
                     .n_bias = tr->model.cfg.has_vision ? 2 : 0},
        .stop_ids = tr->stop_ids, .n_stop = tr->n_stop, .policy_version = policy_version,
        .dev = tr->on_device ? &tr->dev : NULL,
    };
    train_device_use(tr, tr->model.params);
    int rc_out = d->n_q ? rollout_run(&tr->model, &rc, q, d->n_q, collect_sample, d, err) : 0;
    if (tr->on_device && tr->dev.graph_error[0] && !tr->graph_warned) {
        log_warn(&tr->lg, "rollout: CUDA graphs off, decode steps run kernel by kernel (%s)", tr->dev.graph_error);
        tr->graph_warned = 1;
    }
    free(q);
    tr->phase[PH_ROLLOUT] += mmupt_now() - t0;
    return rc_out;
}
