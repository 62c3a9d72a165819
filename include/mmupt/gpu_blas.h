/* A cuBLAS handle bound to one stream: what the GEMM twins (matmul_*_cuda) need besides their
 * arguments. One per stream and thread that issues GEMMs; the caller owns it (no hidden global
 * handle). CUDA builds only. */
#ifndef MMUPT_GPU_BLAS_H
#define MMUPT_GPU_BLAS_H

#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <stdint.h>

#include "mmupt/err.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A failing cuBLAS call is fatal, reported like CUDA_CHECK (call, file, line, rank). */
#define CUBLAS_CHECK(call)                                                                          \
    do {                                                                                            \
        cublasStatus_t cublas_check_s_ = (call);                                                    \
        if (cublas_check_s_ != CUBLAS_STATUS_SUCCESS)                                               \
            mmupt_die_at(__FILE__, __LINE__, "%s: %s", #call, cublasGetStatusString(cublas_check_s_)); \
    } while (0)

struct gemm_lt_plans;
struct sdpa_plans;

struct gpu_blas {
    cublasHandle_t handle;
    cudaStream_t stream;
    /* cuBLASLt, for the GEMMs with a fused epilogue (the bf16 forward's bias: matmul.cu), and its
     * workspace (GPU_BLAS_LT_WORKSPACE bytes, device) */
    cublasLtHandle_t lt;
    void *lt_ws;
    int sms; /* the device's multiprocessors: the skinny GEMM's plan targets them */
    /* The skinny bf16 GEMM (kernels/cuda/matmul_skinny.cu), used by matmul_forward_bf16_cuda for
     * products of at most SKINNY_MAX_ROWS rows when on (gpu_blas_set_skinny: SKINNY_ON, or
     * SKINNY_PDL to launch it programmatically, overlapping the kernel before it), with its split-K
     * scratch: partial sums and one arrival counter per column tile (zero between calls). Calls on
     * one handle are stream-ordered, so they share it safely. */
    int skinny;
    float *skinny_part;
    unsigned *skinny_count;
    /* The bf16 GEMMs' cuBLASLt plans (src/gpu/gemm_lt.c), and whether they are tuned by timing
     * (gpu_blas_set_tune; MMUPT_GEMM_TUNE=1 through gpu_ctx_init): off, the bias GEMMs take
     * cuBLASLt's first choice through their plans and the others cublasGemmEx. */
    int tune;
    struct gemm_lt_plans *plans;
    /* cuDNN's SDPA graphs planned so far, and the cuDNN handle they run on, made on first use
     * (src/gpu/sdpa_cudnn.c; NULL in the SIMT interpreter, which has no cuDNN). */
    struct sdpa_plans *sdpa;
};

/* Create the handle on the current device and bind it to `stream` (NULL: the default stream). Pure
 * fp32 math (no TF32), so the fp32 twins can be compared with the CPU reference; -1 and err when
 * cuBLAS cannot start (no device). The skinny GEMM's mode comes from the environment:
 * MMUPT_GEMM_SKINNY=1 (on), =pdl (on, launched programmatically), =0 or unset (off); any other
 * value is an error. GEMM tuning starts off (gpu_blas_set_tune; gpu_ctx_init applies MMUPT_GEMM_TUNE). */
int gpu_blas_init(struct gpu_blas *b, cudaStream_t stream, struct mmupt_err *err);
void gpu_blas_free(struct gpu_blas *b);
/* The handle's SDPA plans (gpu_blas_init and gpu_blas_free call these): an empty set, or NULL where
 * the build has no cuDNN. */
struct sdpa_plans *sdpa_plans_new(void);
void sdpa_plans_free(struct sdpa_plans *p);

/* Tune the bf16 GEMMs' algorithms by timing (on 1) or take cuBLASLt's first choice (0); drops the
 * plans made so far, so every shape is planned again under the new rule. */
void gpu_blas_set_tune(struct gpu_blas *b, int on);

/* Tuning with a file of choices (MMUPT_GEMM_TUNE_FILE; src/gpu/gemm_lt.c): the shapes it lists take
 * its algorithm untimed, the others are timed and added, and the file is rewritten after each. Turns
 * tuning on (dropping the plans made so far). -1 with err (naming the file, line and field) when
 * the file exists but is not a valid tuning file: it is left as it was. */
int gpu_blas_set_tune_file(struct gpu_blas *b, const char *path, struct mmupt_err *err);

/* One bf16 GEMM, column-major as cuBLAS has it: C[m, n] = op(A) op(B) + beta C (+ bias[i] on row i),
 * A and B bf16, C fp32 or bf16 (ctype), fp32 accumulation, and split-K partial sums never rounded
 * to bf16. beta is 0 (C assigned, not read) or 1. */
struct gemm_lt_call {
    cublasOperation_t ta, tb;
    int m, n, k, lda, ldb, ldc;
    const uint16_t *a, *b;
    void *c;
    cudaDataType ctype;
    float beta;
    const float *bias; /* [m] fp32, or NULL */
    const void *cin;   /* with beta 1: C read from here and D written to c (out of place, same layout); NULL: c both */
};

/* Run c through cuBLASLt with its shape's plan (made on first sight: see src/gpu/gemm_lt.c, tuned
 * there when tuning is on and the stream is not capturing). 0, or -1 with nothing launched when
 * cuBLASLt has no algorithm for it: the caller falls back (cublasGemmEx). m, n, k > 0. */
int gemm_lt_bf16(const struct gpu_blas *blas, const struct gemm_lt_call *c);

/* What the plans hold: shapes planned, shapes tuned and the host time tuning took. */
struct gemm_lt_stats {
    int plans, tuned, from_file; /* from_file: plans whose algorithm a tuning file gave (untimed) */
    double tune_ms;
};
void gemm_lt_stats(const struct gpu_blas *blas, struct gemm_lt_stats *s);

/* The plan table's life (gpu_blas_init and gpu_blas_free call these). */
struct gemm_lt_plans *gemm_lt_plans_new(void);
void gemm_lt_plans_free(struct gemm_lt_plans *t);
/* The tuning file's choices into t (gpu_blas_set_tune_file). */
int gemm_lt_plans_load(struct gemm_lt_plans *t, const char *path, struct mmupt_err *err);

enum { SKINNY_OFF = 0, SKINNY_ON = 1, SKINNY_PDL = 2 };
enum { GPU_BLAS_LT_WORKSPACE = 32 << 20 };

/* Set the skinny GEMM's mode (SKINNY_*): on allocates its scratch (not inside a graph capture), off
 * frees it. -1 and err when the scratch cannot be allocated. */
int gpu_blas_set_skinny(struct gpu_blas *b, int mode, struct mmupt_err *err);

/* The skinny GEMM's limits: rows, the split-K scratch's floats and counters, and the partial sums
 * the last block of a column tile adds alone (splits * rows * 32 wn: 8 splits of 64 x 32). */
enum { SKINNY_MAX_ROWS = 64, SKINNY_PART_FLOATS = 1 << 22, SKINNY_COUNTERS = 1 << 16, SKINNY_LAST_FLOATS = 1 << 14 };

/* How matmul_skinny_bf16_cuda splits a product: column tiles of 32 wn columns (wn 1, 2 or 4 warps
 * across), each over `splits` ranges of kc values of k. */
struct matmul_skinny_plan {
    int wn, splits, kc, tiles;
};

/* The plan for out[M, N] = x[M, K] w[N, K]^T on `sms` multiprocessors; -1 when the kernel does not
 * take the shape (M > SKINNY_MAX_ROWS, K not a multiple of 32, scratch too small). */
int matmul_skinny_plan(int M, int K, int N, int sms, struct matmul_skinny_plan *p);

/* out = x w^T (+ bias) by the skinny kernel, x and w bf16 (16-byte aligned), out fp32; -1 (nothing
 * launched) when it does not take the call: the skinny GEMM is off, the plan refuses the shape or
 * an operand is misaligned. */
int matmul_skinny_bf16_cuda(float *out, const uint16_t *x, const uint16_t *w, const float *bias, int M, int K, int N,
                            const struct gpu_blas *blas);

#ifdef __cplusplus
}
#endif

#endif
