/* A single-threaded strided GEMM for CPU references that run many small products inside their own
 * OpenMP jobs (attention: one (segment, head) per job). matmul.c's public GEMMs fork a team of their
 * own and so cannot be called there. */
#ifndef MMUPT_KERNELS_CPU_SGEMM_H
#define MMUPT_KERNELS_CPU_SGEMM_H

/* Row-major C[M,N] = alpha * op(A) op(B) + beta * C, where op(A) is A[M,K] (lda >= K) or, with
 * trans_a, A[K,M]^T (lda >= M), and likewise op(B) is B[K,N] or B[N,K]^T. beta = 0 ignores C's old
 * contents. One thread, and a fixed order of operations for given shapes: results do not depend on
 * which thread runs the call. */
void cpu_sgemm(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda, const float *B,
               int ldb, float beta, float *C, int ldc);

/* Call once outside any OpenMP region before jobs call cpu_sgemm (OpenBLAS must not start its own
 * thread pool under OpenMP's; see matmul.c). */
void cpu_sgemm_prepare(void);

#endif
