/* Fresh random weights, the way transformers' PreTrainedModel._init_weights sets up a Qwen2.5-VL (or
 * Qwen2-VL / Qwen2) model built from a config: every Linear, Conv3d (the patch embedding) and
 * Embedding weight ~ N(0, initializer_range), every bias 0, every RMSNorm/LayerNorm weight 1 and
 * LayerNorm bias 0. initializer_range is 0.02 in every released Qwen2(-VL) config and transformers'
 * default, so it is a constant here (config.json's value is not read).
 *
 * Element i of the flat buffer draws from the counter-based RNG keyed by (seed, i): the weights do not
 * depend on the thread count or on the order tensors are visited in, and a tied lm_head (which is the
 * embedding's storage) is simply the embedding. */
#include <math.h>
#include <string.h>

#include "mmupt/model.h"
#include "mmupt/sampler.h"

#define MODEL_INIT_STD 0.02
/* Keeps these draws apart from any other user of the sampler's RNG with the same seed. */
#define MODEL_INIT_STREAM 0x696e6974ull /* "init" */

enum init_kind { INIT_NORMAL, INIT_ZERO, INIT_ONE };

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* What _init_weights does to a tensor, from its Hugging Face name: norms are the modules whose
 * name has "norm" (input_layernorm, post_attention_layernorm, model.norm, norm1, norm2) or the
 * merger's ln_q. */
static enum init_kind kind_of(const char *name)
{
    if (ends_with(name, ".bias")) return INIT_ZERO;
    if (strstr(name, "norm") || strstr(name, ".ln_q.")) return INIT_ONE;
    return INIT_NORMAL;
}

/* One standard normal from two uniforms (Box-Muller); 1 - u keeps the log's argument in (0, 1]. */
static double normal_at(uint64_t seed, uint64_t i)
{
    double u1 = sample_rng_uniform(seed, MODEL_INIT_STREAM, i, 0);
    double u2 = sample_rng_uniform(seed, MODEL_INIT_STREAM, i, 1);
    return sqrt(-2.0 * log(1.0 - u1)) * cos(2.0 * M_PI * u2);
}

void model_init_random(struct model *m, uint64_t seed)
{
    for (int k = 0; k < m->spec.n_params; k++) {
        const struct model_param *p = &m->spec.params[k];
        float *w = m->params + p->offset;
        enum init_kind kind = kind_of(p->name);
#pragma omp parallel for schedule(static)
        for (int64_t j = 0; j < p->numel; j++) {
            if (kind == INIT_ZERO) w[j] = 0.0f;
            else if (kind == INIT_ONE) w[j] = 1.0f;
            else w[j] = (float)(MODEL_INIT_STD * normal_at(seed, (uint64_t)(p->offset + j)));
        }
    }
}
