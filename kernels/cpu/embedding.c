/* Token embedding lookup and its gradient, CPU reference. */
#include <string.h>

#include "mmupt/err.h"
#include "mmupt/kernels.h"

void embedding_forward_cpu(float *out, const int64_t *ids, const float *table, int n, int dim)
{
#pragma omp parallel for schedule(static)
    for (int i = 0; i < n; i++) memcpy(out + (long)i * dim, table + ids[i] * dim, (size_t)dim * sizeof(float));
}

/* A token id may repeat, so rows of dtable have several writers. Threads therefore own blocks of
 * columns and walk all tokens in order: every element has one writer and a fixed summation order,
 * whatever the thread count. */
void embedding_backward_cpu(float *dtable, const float *dout, const int64_t *ids, int n, int dim)
{
    enum { CB = 64 };
    int nb = (dim + CB - 1) / CB;
#pragma omp parallel for schedule(static)
    for (int b = 0; b < nb; b++) {
        int c0 = b * CB, c1 = c0 + CB < dim ? c0 + CB : dim;
        for (int i = 0; i < n; i++) {
            float *dst = dtable + ids[i] * dim;
            const float *src = dout + (long)i * dim;
            for (int c = c0; c < c1; c++) dst[c] += src[c];
        }
    }
}
