/* cpu_sgemm (sgemm.h): OpenBLAS's sgemm when the build has it (MMUPT_HAVE_OPENBLAS), else plain loops
 * in an order that keeps the innermost loop contiguous where the layout allows. */
#ifdef MMUPT_HAVE_OPENBLAS
#include <cblas.h>
#endif

#include "sgemm.h"

#ifdef MMUPT_HAVE_OPENBLAS

void cpu_sgemm_prepare(void)
{
    if (openblas_get_num_threads() != 1) openblas_set_num_threads(1);
}

void cpu_sgemm(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda, const float *B,
               int ldb, float beta, float *C, int ldc)
{
    if (M <= 0 || N <= 0) return;
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, M, N, K,
                alpha, A, lda, B, ldb, beta, C, ldc);
}

#else

void cpu_sgemm_prepare(void) {}

static float a_at(const float *A, int lda, int trans_a, int i, int k)
{
    return trans_a ? A[(long)k * lda + i] : A[(long)i * lda + k];
}

void cpu_sgemm(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda, const float *B,
               int ldb, float beta, float *C, int ldc)
{
    for (int i = 0; i < M; i++) {
        float *c = C + (long)i * ldc;
        for (int j = 0; j < N; j++) c[j] = beta == 0.0f ? 0.0f : beta * c[j];
        if (trans_b) { /* B[N,K]: row j of B is contiguous along k, so dot products */
            for (int j = 0; j < N; j++) {
                const float *b = B + (long)j * ldb;
                float s = 0.0f;
                for (int k = 0; k < K; k++) s += a_at(A, lda, trans_a, i, k) * b[k];
                c[j] += alpha * s;
            }
        } else { /* B[K,N]: row k of B is contiguous along j, so scaled row additions */
            for (int k = 0; k < K; k++) {
                float a = alpha * a_at(A, lda, trans_a, i, k);
                const float *b = B + (long)k * ldb;
#pragma omp simd
                for (int j = 0; j < N; j++) c[j] += a * b[j];
            }
        }
    }
}

#endif
