/* Token sampling over a batch of rows, CPU reference: one sample_token call per row with one
 * workspace for the whole batch. It is the yardstick sample_tokens_cuda is tested against, so it
 * adds nothing to sample_token's semantics (src/sampler/sample.c) beyond the batch layout. */
#include <stdlib.h>

#include "mmupt/err.h"
#include "mmupt/kernels.h"

void sample_tokens_cpu(int32_t *tokens, float *logp, const float *logits, int rows, int V, const struct sample_params *p,
                       const double *u)
{
    if (rows <= 0) return;
    size_t bytes = sample_scratch_size(V);
    void *scratch = mmupt_xmalloc(bytes ? bytes : 1); /* sample_token wants a non-NULL workspace */
    for (int r = 0; r < rows; r++) {
        /* V < 1 makes every row invalid; then no row pointer is formed from a negative size. */
        const float *row = V > 0 ? logits + (size_t)r * (size_t)V : logits;
        tokens[r] = sample_token(row, V, p, u[r], scratch, logp ? logp + r : NULL);
        if (tokens[r] < 0 && logp) logp[r] = 0.0f; /* sample_token leaves *logp untouched there */
    }
    free(scratch);
}
