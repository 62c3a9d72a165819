/* Examples, packing and the supervised loss (see sft.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mmupt/sft.h"

void sft_example_free(struct sft_example *ex)
{
    prompt_item_free(&ex->prompt);
    free(ex->target);
    memset(ex, 0, sizeof *ex);
}

int sft_target(struct tok *tok, const char *response, int32_t stop_id, int64_t max_tokens, int32_t **ids, int *n,
               struct mmupt_err *err)
{
    if (!response || !response[0]) return mmupt_fail(err, "the answer (target response) is empty");
    int32_t *enc;
    size_t len;
    if (tok_encode(tok, response, strlen(response), &enc, &len, err)) {
        mmupt_err_prefix(err, "answer");
        return -1;
    }
    if ((int64_t)len + 1 > max_tokens) {
        free(enc);
        return mmupt_fail(err, "the answer has %zu tokens, more than the target limit %lld allows (with the stop "
                               "token)", len, (long long)max_tokens);
    }
    *ids = mmupt_xmalloc((len + 1) * sizeof **ids);
    if (len) memcpy(*ids, enc, len * sizeof **ids);
    (*ids)[len] = stop_id;
    *n = (int)len + 1;
    free(enc);
    return 0;
}

void sft_batch_pack(struct sft_batch *b, const struct sft_example *ex, int n, int64_t patch_dim)
{
    memset(b, 0, sizeof *b);
    b->n_seq = n;
    b->seq_len = mmupt_xmalloc((size_t)(n > 0 ? n : 1) * sizeof *b->seq_len);
    for (int k = 0; k < n; k++) {
        b->seq_len[k] = (int)ex[k].prompt.n_ids + ex[k].n_target;
        b->n_tokens += b->seq_len[k];
        b->n_images += ex[k].prompt.n_images;
        b->n_patches += ex[k].prompt.n_patches;
    }
    b->tokens = mmupt_xmalloc((size_t)(b->n_tokens ? b->n_tokens : 1) * sizeof *b->tokens);
    b->targets = mmupt_xmalloc((size_t)(b->n_tokens ? b->n_tokens : 1) * sizeof *b->targets);
    b->grid = mmupt_xmalloc((size_t)(3 * (b->n_images ? b->n_images : 1)) * sizeof *b->grid);
    b->pixels = mmupt_xmalloc((size_t)((b->n_patches ? b->n_patches : 1) * patch_dim) * sizeof *b->pixels);
    int64_t t = 0, img = 0, px = 0;
    for (int k = 0; k < n; k++) {
        const struct prompt_item *p = &ex[k].prompt;
        int P = (int)p->n_ids, L = b->seq_len[k];
        for (int j = 0; j < L; j++) b->tokens[t + j] = j < P ? p->ids[j] : ex[k].target[j - P];
        /* Position j predicts token j + 1: scored exactly when that token is a target token, so the
         * last prompt position predicts the first target token and the last position nothing. */
        for (int j = 0; j < L; j++) b->targets[t + j] = j + 1 < L && j + 1 >= P ? b->tokens[t + j + 1] : -1;
        b->n_scored += ex[k].n_target;
        if (p->n_images) {
            memcpy(b->grid + 3 * img, p->grid, (size_t)(3 * p->n_images) * sizeof *b->grid);
            memcpy(b->pixels + px * patch_dim, p->pixels, (size_t)(p->n_patches * patch_dim) * sizeof *b->pixels);
        }
        img += p->n_images;
        px += p->n_patches;
        t += L;
    }
}

void sft_batch_free(struct sft_batch *b)
{
    free(b->seq_len);
    free(b->tokens);
    free(b->targets);
    free(b->grid);
    free(b->pixels);
    memset(b, 0, sizeof *b);
}

struct model_batch sft_batch_view(const struct sft_batch *b)
{
    return (struct model_batch){.n_seq = b->n_seq, .seq_len = b->seq_len, .tokens = b->tokens,
                                .n_images = b->n_images, .grid_thw = b->grid, .pixels = b->pixels};
}

int sft_batch_loss(struct model *m, const struct sft_batch *b, int backward, double *loss, struct mmupt_err *err)
{
    if (b->n_scored < 1) return mmupt_fail(err, "the batch has no target tokens");
    struct model_batch mb = sft_batch_view(b);
    if (model_forward(m, &mb, err)) return -1;
    float *logp = mmupt_xmalloc((size_t)b->n_tokens * sizeof *logp);
    model_logprobs(m, b->targets, 1.0f, logp, NULL); /* unscored positions give 0 */
    double sum = 0.0;
    for (int64_t t = 0; t < b->n_tokens; t++) sum += logp[t];
    *loss = -sum / (double)b->n_scored;
    if (backward) {
        /* d loss / d logp[t] = -1 / n_scored on scored positions, 0 on prompt and image positions. */
        float *w = logp; /* reused: the log-probs are no longer needed */
        float g = (float)(-1.0 / (double)b->n_scored);
        for (int64_t t = 0; t < b->n_tokens; t++) w[t] = b->targets[t] >= 0 ? g : 0.0f;
        model_backward_logprobs(m, b->targets, 1.0f, w);
    }
    free(logp);
    return 0;
}
