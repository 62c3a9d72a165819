/* Row moves between row-major [*, cols] arrays, CPU reference: gather (dst[i] = src[index[i]]) and
 * scatter (dst[index[i]] = src[i]). The device model uses them for KV-cache appends, the vision
 * tower's window permutation and the image rows of the embedding; on the CPU they are memcpy loops,
 * and pure copies, so the CUDA twins are bitwise equal. */
#include <string.h>

#include "mmupt/kernels.h"

void gather_rows_cpu(float *dst, const float *src, const int64_t *index, int n, long cols)
{
#pragma omp parallel for schedule(static) if (n > 64)
    for (int i = 0; i < n; i++) memcpy(dst + (long)i * cols, src + index[i] * cols, (size_t)cols * sizeof *dst);
}

void scatter_rows_cpu(float *dst, const float *src, const int64_t *index, int n, long cols)
{
#pragma omp parallel for schedule(static) if (n > 64)
    for (int i = 0; i < n; i++) memcpy(dst + index[i] * cols, src + (long)i * cols, (size_t)cols * sizeof *dst);
}
