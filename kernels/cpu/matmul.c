/* Linear layers, CPU reference: out[M,N] = inp[M,K] @ weight[N,K]^T (+ bias), and its gradients.
 *
 * Two GEMM paths. With OpenBLAS (MMUPT_HAVE_OPENBLAS) the public functions call cblas_sgemm, which is
 * several times faster than anything short of a hand-tuned micro-kernel, single-threaded inside
 * slices that OpenMP threads share out (see blas_slices); they must not be called from inside an
 * OpenMP region. Without it (the GPU machines ship no
 * OpenBLAS) a cache-blocked OpenMP kernel does the work; it is exported under its own name so the
 * tests check it in every build.
 *
 * The blocked kernel knows one shape only, C[M,N] (+)= A[M,K] @ B[N,K]^T, in which both operands
 * are read along contiguous rows. The backward's other two shapes are brought to it by transposing
 * one operand into a scratch buffer: O(MK + NK) extra work against O(MNK) for the product. */
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#ifdef MMUPT_HAVE_OPENBLAS
#include <cblas.h>
#endif

#include "mmupt/bf16.h"
#include "mmupt/err.h"
#include "mmupt/kernels.h"

/* Tile sizes: a tile of MB rows of A meets NB rows of B, so NB rows of B (NB*K floats) stay in
 * cache while MB rows of A pass over them. Each thread owns whole tiles of C, so each output element
 * has one writer and its dot product runs in a fixed order: no dependence on the thread count. */
enum { MATMUL_MB = 16, MATMUL_NB = 64 };

/* Four dot products of one row of A against four rows of B, sharing the loads of A. */
static void dot_1x4(float out[4], const float *a, const float *b0, const float *b1, const float *b2,
                    const float *b3, int K)
{
    float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
#pragma omp simd reduction(+ : s0, s1, s2, s3)
    for (int k = 0; k < K; k++) {
        s0 += a[k] * b0[k];
        s1 += a[k] * b1[k];
        s2 += a[k] * b2[k];
        s3 += a[k] * b3[k];
    }
    out[0] = s0, out[1] = s1, out[2] = s2, out[3] = s3;
}

static float dot_1x1(const float *a, const float *b, int K)
{
    float s = 0.0f;
#pragma omp simd reduction(+ : s)
    for (int k = 0; k < K; k++) s += a[k] * b[k];
    return s;
}

/* C[M,N] = (accumulate ? C : 0) + (bias ? bias : 0) + A[M,K] @ B[N,K]^T. */
static void gemm_nt_blocked(float *C, const float *A, const float *B, const float *bias, int M, int K, int N,
                            int accumulate)
{
    int mt = (M + MATMUL_MB - 1) / MATMUL_MB, nt = (N + MATMUL_NB - 1) / MATMUL_NB;
#pragma omp parallel for schedule(static)
    for (long t = 0; t < (long)mt * nt; t++) {
        int i0 = (int)(t / nt) * MATMUL_MB, j0 = (int)(t % nt) * MATMUL_NB;
        int i1 = i0 + MATMUL_MB < M ? i0 + MATMUL_MB : M;
        int j1 = j0 + MATMUL_NB < N ? j0 + MATMUL_NB : N;
        for (int i = i0; i < i1; i++) {
            const float *a = A + (long)i * K;
            float *c = C + (long)i * N;
            int j = j0;
            for (; j + 4 <= j1; j += 4) {
                float s[4];
                const float *b = B + (long)j * K;
                dot_1x4(s, a, b, b + K, b + 2L * K, b + 3L * K, K);
                for (int u = 0; u < 4; u++) {
                    float base = (accumulate ? c[j + u] : 0.0f) + (bias ? bias[j + u] : 0.0f);
                    c[j + u] = base + s[u];
                }
            }
            for (; j < j1; j++) {
                float base = (accumulate ? c[j] : 0.0f) + (bias ? bias[j] : 0.0f);
                c[j] = base + dot_1x1(a, B + (long)j * K, K);
            }
        }
    }
}

/* dst[cols, rows] = src[rows, cols]^T, in tiles so both sides are touched a cache line at a time. */
static void transpose(float *dst, const float *src, int rows, int cols)
{
    enum { TB = 32 };
    int rt = (rows + TB - 1) / TB, ct = (cols + TB - 1) / TB;
#pragma omp parallel for schedule(static)
    for (long t = 0; t < (long)rt * ct; t++) {
        int r0 = (int)(t / ct) * TB, c0 = (int)(t % ct) * TB;
        int r1 = r0 + TB < rows ? r0 + TB : rows, c1 = c0 + TB < cols ? c0 + TB : cols;
        for (int r = r0; r < r1; r++)
            for (int c = c0; c < c1; c++) dst[(long)c * rows + r] = src[(long)r * cols + c];
    }
}

/* dbias[j] += sum_i dout[i, j]. Threads own blocks of columns and walk the rows in order, so the
 * sum does not depend on the thread count; double accumulation because M (tokens) can be large. */
static void bias_backward(float *dbias, const float *dout, int M, int N)
{
    enum { CB = 64 };
    int nb = (N + CB - 1) / CB;
#pragma omp parallel for schedule(static)
    for (int b = 0; b < nb; b++) {
        int j0 = b * CB, j1 = j0 + CB < N ? j0 + CB : N;
        double acc[CB] = {0};
        for (int i = 0; i < M; i++) {
            const float *row = dout + (long)i * N;
            for (int j = j0; j < j1; j++) acc[j - j0] += row[j];
        }
        for (int j = j0; j < j1; j++) dbias[j] += (float)acc[j - j0];
    }
}

void matmul_forward_blocked_cpu(float *out, const float *inp, const float *weight, const float *bias, int M, int K,
                                int N)
{
    MMUPT_CHECK(M >= 0 && K >= 0 && N >= 0);
    gemm_nt_blocked(out, inp, weight, bias, M, K, N, 0);
}

void matmul_backward_blocked_cpu(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                                 const float *weight, int M, int K, int N)
{
    MMUPT_CHECK(M >= 0 && K >= 0 && N >= 0);
    if (dinp && M > 0 && K > 0) {
        /* dinp[M,K] += dout[M,N] @ weight[N,K] = dout @ (weight^T)[K,N]^T */
        float *wt = mmupt_xmalloc((size_t)K * N * sizeof(float) + 1);
        transpose(wt, weight, N, K);
        gemm_nt_blocked(dinp, dout, wt, NULL, M, N, K, 1);
        free(wt);
    }
    if (dweight && N > 0 && K > 0) {
        /* dweight[N,K] += dout^T[N,M] @ inp[M,K] = dout^T @ (inp^T)[K,M]^T */
        float *dt = mmupt_xmalloc((size_t)N * M * sizeof(float) + 1);
        float *it = mmupt_xmalloc((size_t)K * M * sizeof(float) + 1);
        transpose(dt, dout, M, N);
        transpose(it, inp, M, K);
        gemm_nt_blocked(dweight, dt, it, NULL, N, M, K, 1);
        free(dt);
        free(it);
    }
    if (dbias) bias_backward(dbias, dout, M, N);
}

#ifdef MMUPT_HAVE_OPENBLAS

/* OpenBLAS (pthreads build) keeps its own spinning thread pool, and so does OpenMP: on a machine
 * with few cores the two pools busy-wait against each other and a training step gets 5-15x slower.
 * So OpenBLAS runs single-threaded and the OpenMP pool splits each product into independent
 * slices, one sgemm per thread: one pool for all of mmupt's CPU work. */
static int blas_slices(long m, long n, long k)
{
    if (openblas_get_num_threads() != 1) openblas_set_num_threads(1);
    int t = omp_get_max_threads();
    long work = m * n * (k > 0 ? k : 1);
    if (work < (1L << 18) || t < 2) return 1; /* too small to be worth a fork */
    return t;
}

static void slice(long total, int parts, int p, long *lo, long *hi)
{
    *lo = total * p / parts;
    *hi = total * (p + 1) / parts;
}

/* out[M,N] = beta * out + A[M,K] @ B[N,K]^T, sliced along the longer of M and N. */
static void gemm_nt(float *out, const float *A, const float *B, int M, int K, int N, float beta)
{
    int parts = blas_slices(M, N, K);
    int by_rows = M >= N;
#pragma omp parallel for schedule(static) if (parts > 1)
    for (int p = 0; p < parts; p++) {
        long lo, hi;
        slice(by_rows ? M : N, parts, p, &lo, &hi);
        if (hi <= lo) continue;
        if (by_rows)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)(hi - lo), N, K, 1.0f, A + lo * K, K > 0 ? K : 1,
                        B, K > 0 ? K : 1, beta, out + lo * N, N);
        else
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, (int)(hi - lo), K, 1.0f, A, K > 0 ? K : 1,
                        B + lo * K, K > 0 ? K : 1, beta, out + lo, N);
    }
}

void matmul_forward_cpu(float *out, const float *inp, const float *weight, const float *bias, int M, int K, int N)
{
    MMUPT_CHECK(M >= 0 && K >= 0 && N >= 0);
    MMUPT_CHECK(!omp_in_parallel()); /* the product forks its own OpenMP team */
    if (M == 0 || N == 0) return;
    /* The bias goes in first and the product is added with beta = 1: one pass over out. */
    if (bias)
        for (int i = 0; i < M; i++) memcpy(out + (long)i * N, bias, (size_t)N * sizeof(float));
    gemm_nt(out, inp, weight, M, K, N, bias ? 1.0f : 0.0f);
}

void matmul_backward_cpu(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                         const float *weight, int M, int K, int N)
{
    MMUPT_CHECK(M >= 0 && K >= 0 && N >= 0);
    MMUPT_CHECK(!omp_in_parallel());
    int parts = blas_slices(M, N, K);
    /* dinp[M,K] += dout[M,N] @ weight[N,K], sliced by rows of dinp; dweight[N,K] += dout^T @ inp,
     * sliced by rows of dweight (columns of dout). Each slice has one writer. */
#pragma omp parallel for schedule(static) if (parts > 1)
    for (int p = 0; p < parts; p++) {
        long lo, hi;
        slice(M, parts, p, &lo, &hi);
        if (dinp && K > 0 && hi > lo)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)(hi - lo), K, N, 1.0f, dout + lo * N,
                        N > 0 ? N : 1, weight, K, 1.0f, dinp + lo * K, K);
        slice(N, parts, p, &lo, &hi);
        if (dweight && K > 0 && M > 0 && hi > lo)
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)(hi - lo), K, M, 1.0f, dout + lo, N, inp, K, 1.0f,
                        dweight + lo * K, K);
    }
    if (dbias) bias_backward(dbias, dout, M, N);
}

#else

/* The same rule as with OpenBLAS, so code that works in one build works in the other. */
void matmul_forward_cpu(float *out, const float *inp, const float *weight, const float *bias, int M, int K, int N)
{
    MMUPT_CHECK(!omp_in_parallel());
    matmul_forward_blocked_cpu(out, inp, weight, bias, M, K, N);
}

void matmul_backward_cpu(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                         const float *weight, int M, int K, int N)
{
    MMUPT_CHECK(!omp_in_parallel());
    matmul_backward_blocked_cpu(dinp, dweight, dbias, dout, inp, weight, M, K, N);
}

#endif

/* ---- Mixed precision (bf16 weights and rounded inputs, fp32 accumulation and outputs) ----
 * The reference widens the bf16 operands back to float32 and runs the fp32 GEMM: a product of two
 * bf16 values is exact in float32, so it differs from a tensor-core GEMM only in the order of the
 * fp32 sums. The bias and its gradient stay fp32 (as the fp32 dout they are summed from). */

/* x rounded to bf16 and widened back: what the GEMM sees of an fp32 activation. */
static float *round_bf16(const float *x, long n)
{
    float *w = mmupt_xmalloc((size_t)(n > 0 ? n : 1) * sizeof *w);
    for (long i = 0; i < n; i++) w[i] = bf16_to_f32(bf16_from_f32(x[i]));
    return w;
}

void matmul_forward_bf16_cpu(float *out, const float *inp, const uint16_t *weight, const float *bias, int M, int K,
                             int N)
{
    float *x = round_bf16(inp, (long)M * K), *w = bf16_widened(weight, (long)N * K);
    matmul_forward_cpu(out, x, w, bias, M, K, N);
    free(x);
    free(w);
}

void matmul_forward_bf16_res_cpu(float *out, const float *res, const float *inp, const uint16_t *weight, int M, int K,
                                 int N)
{
    matmul_forward_bf16_cpu(out, inp, weight, NULL, M, K, N);
    residual_forward_cpu(out, out, res, (long)M * N);
}

void matmul_forward_bf16_out16_cpu(uint16_t *out16, const float *inp, const uint16_t *weight, int M, int K, int N)
{
    long n = (long)M * N;
    float *out = mmupt_xmalloc((size_t)(n > 0 ? n : 1) * sizeof *out);
    matmul_forward_bf16_cpu(out, inp, weight, NULL, M, K, N);
    cast_bf16_cpu(out16, out, n);
    free(out);
}

/* The GEMMs of the bf16 backward from dy, dout rounded and widened already. */
static void backward_bf16(float *dinp, float *dweight, const float *dy, const float *inp, const uint16_t *weight, int M,
                          int K, int N)
{
    float *w = bf16_widened(weight, dinp ? (long)N * K : 0), *x = round_bf16(inp, dweight ? (long)M * K : 0);
    matmul_backward_cpu(dinp, dweight, NULL, dy, x, w, M, K, N);
    free(w);
    free(x);
}

void matmul_backward_bf16_cpu(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                              const uint16_t *weight, int M, int K, int N)
{
    float *dy = round_bf16(dout, (long)M * N);
    backward_bf16(dinp, dweight, dy, inp, weight, M, K, N);
    if (dbias) bias_backward(dbias, dout, M, N);
    free(dy);
}

void matmul_backward_bf16_dy_cpu(float *dinp, float *dweight, const uint16_t *dout16, const float *inp,
                                 const uint16_t *weight, int M, int K, int N)
{
    float *dy = bf16_widened(dout16, (long)M * N);
    backward_bf16(dinp, dweight, dy, inp, weight, M, K, N);
    free(dy);
}

void matmul_backward_bf16_dy16_cpu(uint16_t *dinp16, float *dweight, const uint16_t *dout16, const uint16_t *inp16,
                                   const uint16_t *weight, int M, int K, int N)
{
    long mk = (long)M * K;
    float *dinp = dinp16 ? mmupt_xcalloc((size_t)(mk > 0 ? mk : 1), sizeof *dinp) : NULL;
    float *x = dweight ? bf16_widened(inp16, mk) : NULL; /* already rounded: round_bf16 would keep it */
    matmul_backward_bf16_dy_cpu(dinp, dweight, dout16, x, weight, M, K, N);
    if (dinp16) cast_bf16_cpu(dinp16, dinp, mk);
    free(dinp);
    free(x);
}
