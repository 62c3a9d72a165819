/* How long does one whole GRPO iteration take on one device? Rollout (P prompts x G samples, NEW
 * tokens each at temperature 1, no early stop), majority-vote rewards and group advantages, then per
 * micro-batch of MB sequences: the reference model's log-probs (KL term), the policy's forward,
 * the GRPO loss and backward; then one optimizer step. The same iteration as
 * benchmarks/iteration_torch.py, which benchmarks/iteration_cuda.sh runs beside it.
 *
 *   iteration [--device [--dtype fp32|bf16]] CONFIG.json P G PROMPT_LEN NEW MB
 *
 * Random weights and prompt tokens. The "answer" of a sample, for the vote, is its last token (a
 * stand-in for answer extraction, which is not what costs time). Prints one JSON line with the
 * seconds of each phase of the second of two iterations: the first, of the same shapes, is a
 * warm-up (as in iteration_torch.py). --device runs the model and the optimizer on the device
 * model (the GPU in a CUDA build, the emulator otherwise). --dtype: bf16 (the default with --device) runs the GEMMs in
 * bf16 over fp32 master weights (model_dev_set_bf16; the reference model gets its own bf16 copy),
 * fp32 everything in fp32; the CPU reference is fp32 only. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_random.h"
#include "mmupt/gpu_mem.h"
#include "mmupt/grpo.h"
#include "mmupt/kernels.h"
#include "mmupt/log.h"
#include "device_opts.h"
#include "mmupt/model_dev.h"
#include "mmupt/optim.h"
#include "mmupt/reward.h"
#include "mmupt/rollout.h"
#include "mmupt/runtime.h"

struct collected {
    struct rollout_sample *s; /* [P * G], by (question, sample) */
    int G;
};

/* Answers are token ids as text: equal when the same. */
static int same_text(const char *a, const char *b)
{
    return strcmp(a, b) == 0;
}

/* optim_step_device's step on host buffers (one learner, no collectives). */
static void host_step(struct optim *o, const struct optim_config *oc, float *params, const float *grads,
                      double *norm)
{
    *norm = sqrt(sumsq_cpu(grads, (long)o->n, 1.0));
    double scale;
    if (!optim_clip_scale(oc, *norm, &scale)) return;
    o->t++;
    adamw_update_cpu(params, grads, o->m, o->v, (long)o->n, oc->lr, oc->beta1, oc->beta2, oc->eps, oc->weight_decay,
                     scale, o->t);
}

static void collect(void *ctx, struct rollout_sample *s)
{
    struct collected *c = ctx;
    c->s[s->question * c->G + s->sample] = *s;
}

/* The compute: the CPU model, or its device copy (with the reference weights in a second buffer). */
struct engine {
    struct model *m;
    int on_device;
    struct gpu_ctx g;
    struct model_dev d;
    float *d_policy, *d_ref, *d_m, *d_v; /* device */
    uint16_t *d_policy_bf16, *d_ref_bf16; /* device: the GEMMs' copies of both (bf16; NULL in fp32) */
    float *ref;                          /* host reference weights (CPU path) */
};

/* Log-probs of batch b's targets under the policy (ref = 0) or the reference weights. */
static void logprobs(struct engine *e, const struct model_batch *b, const int64_t *targets, int ref, float *out)
{
    struct mmupt_err err;
    if (e->on_device) {
        /* The reference weights stand in for the policy's, with their bf16 copy where there is one. */
        e->d.params = ref ? e->d_ref : e->d_policy;
        e->d.params_bf16 = ref ? e->d_ref_bf16 : e->d_policy_bf16;
        if (model_dev_forward(&e->d, b, &err)) MMUPT_DIE("%s", err.msg);
        e->d.params = e->d_policy;
        e->d.params_bf16 = e->d_policy_bf16;
        model_dev_logprobs(&e->d, targets, 1.0f, out, NULL);
        return;
    }
    float *saved = e->m->params;
    if (ref) e->m->params = e->ref;
    if (model_forward(e->m, b, &err)) MMUPT_DIE("%s", err.msg);
    e->m->params = saved;
    model_logprobs(e->m, targets, 1.0f, out, NULL);
}

/* One micro-batch of sequences [first, first + n): loss and backward into the gradients. */
static void micro_step(struct engine *e, const struct collected *c, const int64_t *prompts, int S, const float *adv,
                       int first, int n, const struct grpo_params *gp)
{
    int *lens = malloc((size_t)n * sizeof *lens);
    int64_t T = 0;
    for (int i = 0; i < n; i++) T += lens[i] = S + c->s[first + i].n;
    int64_t *tok = malloc((size_t)T * sizeof *tok), *tgt = malloc((size_t)T * sizeof *tgt);
    float *a = malloc((size_t)T * sizeof *a), *mask = malloc((size_t)T * sizeof *mask);
    for (int i = 0, t = 0; i < n; i++) {
        const struct rollout_sample *s = &c->s[first + i];
        const int64_t *p = prompts + (int64_t)s->question * S;
        for (int k = 0; k < lens[i]; k++, t++) {
            tok[t] = k < S ? p[k] : s->ids[k - S];
            int64_t next = k + 1 < S ? p[k + 1] : (k + 1 < lens[i] ? s->ids[k + 1 - S] : -1);
            tgt[t] = k + 1 >= S ? next : -1; /* response tokens only */
            mask[t] = tgt[t] >= 0;
            a[t] = adv[first + i];
        }
    }
    struct model_batch b = {.n_seq = n, .seq_len = lens, .tokens = tok};
    float *ref = malloc((size_t)T * sizeof *ref), *lp = malloc((size_t)T * sizeof *lp);
    float *dlp = calloc((size_t)T, sizeof *dlp);
    logprobs(e, &b, tgt, 1, ref);
    logprobs(e, &b, tgt, 0, lp); /* on-policy: the old log-probs are these, as detached values */
    struct grpo_metrics gm;
    if (grpo_loss_cpu(lp, lp, ref, a, mask, T, gp, dlp, &gm)) MMUPT_DIE("non-finite loss inputs");
    if (e->on_device) model_dev_backward_logprobs(&e->d, tgt, 1.0f, dlp);
    else model_backward_logprobs(e->m, tgt, 1.0f, dlp);
    void *f[] = {lens, tok, tgt, a, mask, ref, lp, dlp};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) free(f[i]);
}

/* The device copies: policy (the model's own buffers), reference weights, the moments, and in bf16
 * both GEMM copies. */
static void dev_open(struct engine *e, int bf16)
{
    struct mmupt_err err;
    int64_t n = e->m->spec.total;
    size_t bytes = (size_t)n * sizeof(float);
    if (gpu_ctx_init(&e->g, &err)) {
        fprintf(stderr, "iteration: %s\n", err.msg);
        exit(1);
    }
    model_dev_init(&e->d, e->m, &e->g);
    e->d_policy = e->d.params;
    e->d_ref = gpu_alloc_floats(&e->g, n);
    gpu_copy(&e->g, e->d_ref, e->d_policy, bytes);
    e->d_m = gpu_zeros_floats(&e->g, n);
    e->d_v = gpu_zeros_floats(&e->g, n);
    if (bf16) {
        model_dev_set_bf16(&e->d, 1);
        e->d_policy_bf16 = e->d.params_bf16;
        e->d_ref_bf16 = gpu_alloc(&e->g, (size_t)n * sizeof *e->d_ref_bf16);
        gpu_copy(&e->g, e->d_ref_bf16, e->d_policy_bf16, (size_t)n * sizeof *e->d_ref_bf16);
    }
    gpu_sync(&e->g);
}

/* Seconds of each phase of one iteration: rollout, reward, learn (log-probs, loss, backward), optimizer. */
struct phases {
    double rollout, reward, learn, optim, norm;
    int64_t generated;
};

/* One whole iteration with rc (its max_new tokens per sample); the samples are freed after. */
static void iteration_once(struct engine *e, const struct rollout_config *rc, const struct rollout_question *q, int P,
                           const int64_t *prompts, int S, int MB, struct optim *opt, struct phases *ph)
{
    struct model *m = e->m;
    int G = rc->G;
    struct mmupt_err err;
    struct collected c = {.s = calloc((size_t)P * G, sizeof *c.s), .G = G};
    double t0 = mmupt_now();
    if (rollout_run(m, rc, q, P, collect, &c, &err)) {
        fprintf(stderr, "iteration: %s\n", err.msg);
        exit(1);
    }
    double t1 = mmupt_now();
    /* rewards: the majority of the samples' last tokens, then group advantages */
    float *rew = malloc((size_t)P * G * sizeof *rew), *adv = malloc((size_t)P * G * sizeof *adv);
    char (*ans)[24] = malloc((size_t)G * sizeof *ans);
    const char **ap = malloc((size_t)G * sizeof *ap);
    for (int i = 0; i < P; i++) {
        for (int k = 0; k < G; k++) {
            const struct rollout_sample *s = &c.s[i * G + k];
            snprintf(ans[k], sizeof ans[k], "%d", s->ids[s->n - 1]);
            ap[k] = ans[k];
        }
        struct reward_vote_result vote;
        reward_majority(ap, G, REWARD_VOTE_PAPER, 0.0, same_text, rew + i * G, &vote);
    }
    grpo_advantages(rew, P, G, 1e-6f, 0, adv);
    double t2 = mmupt_now();
    struct grpo_params gp;
    grpo_params_default(&gp);
    gp.tau = 1.0f;
    int n_seq = P * G, n_mb = (n_seq + MB - 1) / MB;
    gp.scale = 1.0f / (float)n_mb;
    if (e->on_device) model_dev_zero_grad(&e->d);
    else model_zero_grad(m);
    for (int f = 0; f < n_seq; f += MB) micro_step(e, &c, prompts, S, adv, f, n_seq - f < MB ? n_seq - f : MB, &gp);
    if (e->on_device) gpu_sync(&e->g); /* the backward's tail is the learn phase's, not the optimizer's */
    double t3 = mmupt_now();
    struct optim_config oc = {.lr = 1e-6, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = 0.01,
                              .clip_grad_norm = 1.0};
    if (e->on_device) {
        optim_step_device(opt, &oc, oc.lr, e->d_policy, model_dev_grads(&e->d), e->d_m, e->d_v, e->g.stream,
                          &ph->norm);
        model_dev_params_changed(&e->d); /* the policy's bf16 copy follows its new weights */
        gpu_sync(&e->g);
    } else {
        host_step(opt, &oc, m->params, m->grads, &ph->norm);
    }
    double t4 = mmupt_now();
    ph->rollout = t1 - t0;
    ph->reward = t2 - t1;
    ph->learn = t3 - t2;
    ph->optim = t4 - t3;
    ph->generated = 0;
    for (int i = 0; i < n_seq; i++) {
        ph->generated += c.s[i].n;
        free(c.s[i].ids);
        free(c.s[i].logp);
    }
    free(c.s);
    free(rew);
    free(adv);
    free(ans);
    free(ap);
}

int main(int argc, char **argv)
{
    mmupt_runtime_init();
    struct engine e = {0};
    struct bench_opts o;
    int first = bench_parse_opts("iteration", argc, argv, NULL, &o), bf16 = o.bf16;
    e.on_device = o.device;
    const char *usage = "usage: iteration [--device [--dtype fp32|bf16]] CONFIG.json P G PROMPT_LEN NEW MB\n";
    if (first == BENCH_HELP) return fputs(usage, stdout), 0;
    if (first < 0 || argc - first < 6) {
        fputs(usage, stderr);
        return 2;
    }
    argc -= first - 1;
    argv += first - 1;
    struct model_config cfg;
    struct mmupt_err err;
    if (model_config_load(&cfg, argv[1], &err)) {
        fprintf(stderr, "iteration: %s\n", err.msg);
        return 1;
    }
    int P = atoi(argv[2]), G = atoi(argv[3]), S = atoi(argv[4]), NEW = atoi(argv[5]), MB = atoi(argv[6]);
    if (P < 1 || G < 2 || S < 2 || NEW < 1 || MB < 1) return 2;
    struct model m;
    model_init(&m, &cfg);
    e.m = &m;
    uint64_t rng = 42;
    bench_random_weights(&m, &rng);
    size_t bytes = (size_t)m.spec.total * sizeof(float);
    struct optim opt;
    optim_init(&opt, (size_t)m.spec.total, 0, 1);
    if (e.on_device) dev_open(&e, bf16);
    else e.ref = memcpy(mmupt_xmalloc(bytes), m.params, bytes);
    int64_t *prompts = malloc((size_t)P * S * sizeof *prompts);
    /* text ids only: below the vision special tokens of a VL config */
    int64_t text_hi = cfg.has_vision ? (cfg.image_token_id < cfg.vision_start_token_id ? cfg.image_token_id
                                                                                       : cfg.vision_start_token_id)
                                     : cfg.text.vocab;
    for (int64_t i = 0; i < (int64_t)P * S; i++) prompts[i] = (int64_t)((bench_urand(&rng) + 0.5f) * (float)(text_hi - 1));
    int *plen = malloc((size_t)P * sizeof *plen);
    struct rollout_question *q = calloc((size_t)P, sizeof *q);
    for (int i = 0; i < P; i++) {
        plen[i] = S;
        q[i] = (struct rollout_question){.id = i, .prompt = {.n_seq = 1, .seq_len = &plen[i], .tokens = prompts + (int64_t)i * S}};
    }
    /* a VL config must not generate image or video tokens (no pixels to go with them): banned */
    int32_t ban_ids[2] = {(int32_t)cfg.image_token_id, (int32_t)cfg.video_token_id};
    float ban[2] = {-INFINITY, -INFINITY};
    struct rollout_config rc = {.G = G, .max_new = NEW, .n_slots = P * G < 64 ? P * G : 64, .max_prompt = S, .seed = 1,
                                .sampling = {.temperature = 1.0f, .top_p = 1.0f, .bias_ids = ban_ids, .bias = ban,
                                             .n_bias = cfg.has_vision ? 2 : 0},
                                .dev = e.on_device ? &e.d : NULL};


    /* A warm-up iteration of the same shapes first (both here and in iteration_torch.py): the
     * device's one-time costs - kernels loaded on first use, cuBLAS's choices and cuDNN's attention
     * plans per shape, the decode graphs' recording - are a process's, not every iteration's. It
     * was 16 new tokens until 2026-11-28, when cuDNN's attention became the default: the timed
     * iteration's 384-token micro-batches then planned their graphs (0.6 s) inside the timing. */
    struct phases ph;
    iteration_once(&e, &rc, q, P, prompts, S, MB, &opt, &ph);
    iteration_once(&e, &rc, q, P, prompts, S, MB, &opt, &ph);
    printf("{\"impl\": \"mmupt\", \"device\": \"%s\", \"dtype\": \"%s\", \"config\": \"%s\", \"params\": %lld, "
           "\"prompts\": %d, \"G\": %d, \"prompt\": %d, \"new\": %d, \"micro_batch\": %d, \"generated\": %lld, "
           "\"rollout_s\": %.4f, \"reward_s\": %.4f, \"learn_s\": %.4f, \"optim_s\": %.4f, \"iteration_s\": %.4f, "
           "\"grad_norm\": %.6g}\n",
           e.on_device ? (gpu_emulated() ? "emulator" : "cuda") : "cpu", bf16 ? "bf16" : "fp32", argv[1],
           (long long)m.spec.total, P, G, S, NEW, MB, (long long)ph.generated, ph.rollout, ph.reward, ph.learn, ph.optim,
           ph.rollout + ph.reward + ph.learn + ph.optim, ph.norm);
    return 0;
}
